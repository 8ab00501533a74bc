package lb

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusHandlerJSON(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 2, 1, 0)
	servers[1].SetHealthy(false)
	res := servers[0].Acquire()
	res.Done(DoneInfo{StatusCode: 502, Duration: 3 * time.Millisecond})
	servers[0].Acquire()

	w := httptest.NewRecorder()
	StatusHandler(p).ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var got PoolStatus
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	assert.False(t, got.Time.IsZero())
	got.Time = time.Time{} // the wall clock's
	require.Len(t, got.Servers, 3)
	assert.False(t, got.Servers[1].Since.IsZero(), "the time s1 went down")
	got.Servers[1].Since = time.Time{}
	assert.Equal(t, PoolStatus{
		Version:   1,
		Available: 1,
		InFlight:  1,
		Requests:  1,
		Failures:  1,
		Errors:    ErrorCounts{Status5xx: 1},
		Servers: []Stats{
			{Name: "s0", URL: "http://10.0.0.1:80", Weight: 2, Healthy: true, State: "up", Ramp: 1, InFlight: 1, Requests: 1, Failures: 1,
				// One duration of 3 ms, in the bucket (2621440, 3145728].
				Errors: ErrorCounts{Status5xx: 1}, P50: 2883584, P90: 3093299, P99: 3140485},
			{Name: "s1", URL: "http://10.0.0.2:80", Weight: 1, Healthy: false, State: "down", Reason: reasonMarkedDown, Ramp: 1},
			{Name: "s2", URL: "http://10.0.0.3:80", Weight: 0, Healthy: true, State: "up", Ramp: 1},
		},
	}, got)
}

func TestStatusHandlerHTML(t *testing.T) {
	t.Parallel()
	evil, err := NewHandlerServer("<script>alert(1)</script>", http.NotFoundHandler())
	require.NoError(t, err)
	p, err := NewPool(evil)
	require.NoError(t, err)
	r := httptest.NewRequest("GET", "/status", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	w := httptest.NewRecorder()
	StatusHandler(p).ServeHTTP(w, r)
	assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	body := w.Body.String()
	assert.Contains(t, body, "1 of 1 servers available")
	assert.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;", "names are escaped")
	assert.NotContains(t, body, "<script>")
	assert.NotContains(t, body, "http://", "self-contained: no external assets")
}

func TestStatusHandlerMethods(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1)
	w := httptest.NewRecorder()
	StatusHandler(p).ServeHTTP(w, httptest.NewRequest("POST", "/status", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
	assert.Equal(t, "GET, HEAD", w.Header().Get("Allow"))
}

func TestWantsHTML(t *testing.T) {
	t.Parallel()
	for accept, want := range map[string]bool{
		"":                                  false,
		"*/*":                               false,
		"application/json":                  false,
		"text/html":                         true,
		"application/json, text/html":       false,
		"text/html;q=0.9, application/json": true,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", accept)
		assert.Equal(t, want, wantsHTML(r), accept)
	}
}
