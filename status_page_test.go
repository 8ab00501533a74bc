package lb

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statusHTML returns the status page of pool as a browser gets it.
func statusHTML(t *testing.T, pool *Pool) string {
	t.Helper()
	r := httptest.NewRequest("GET", "/status", nil)
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	StatusHandler(pool).ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code)
	return w.Body.String()
}

// TestStatusPageFigures checks what the page shows of each server and of
// the pool: the URL only when it is not the name, error rates by class,
// p50 and p99, slow-start progress, and the summary line.
func TestStatusPageFigures(t *testing.T) {
	t.Parallel()
	plain, err := NewServer("http://10.0.0.1:80")
	require.NoError(t, err)
	named, err := NewServer("http://user:secret@10.0.0.2:80", WithName("beta"))
	require.NoError(t, err)
	local, err := NewHandlerServer("local", http.NotFoundHandler())
	require.NoError(t, err)
	pool, err := NewPool(plain, named, local)
	require.NoError(t, err)
	clock := newFakeClock(pool)

	for range 3 {
		plain.Acquire().Done(DoneInfo{StatusCode: 200, Duration: time.Millisecond})
	}
	plain.Acquire().Done(DoneInfo{StatusCode: 503, Duration: 10 * time.Millisecond})
	named.Acquire().Done(DoneInfo{StatusCode: 404, Duration: 100 * time.Microsecond})
	named.Acquire()                           // in flight
	local.SlowStartAt(clock.now(), time.Hour) // by the pool's clock, not the wall's

	body := statusHTML(t, pool)
	assert.Contains(t, body, "<b>3 of 3 servers available</b> · 1 in flight · 5 requests · failures 20% · 5xx 20% · 4xx 20% · version 1")
	assert.Equal(t, 1, strings.Count(body, "http://10.0.0.1:80"), "a URL that is the name is shown once")
	assert.Contains(t, body, "<b>beta</b><br><small>http://10.0.0.2:80</small>")
	assert.NotContains(t, body, "secret")
	assert.Contains(t, body, "<b>local</b><br><small>in process</small>")
	// plain: 3 of 4 in (917504, 1048576], 1 in (8388608, 10485760]; the
	// median is 2/3 through the first.
	assert.Contains(t, body, `data-l="Errors"><span>5xx 25%</span>`)
	assert.Contains(t, body, `data-l="p50">1ms<`)
	assert.Contains(t, body, `data-l="p99">10.4ms<`)
	assert.Contains(t, body, `data-l="Errors"><span>4xx 100%</span>`, "a request in flight has not ended")
	assert.Contains(t, body, `data-l="Errors"><span>–</span>`)
	assert.Contains(t, body, `slow start 10%`)
	assert.Contains(t, body, `name="viewport" content="width=device-width, initial-scale=1"`)
}

func TestStatusFormats(t *testing.T) {
	t.Parallel()
	for f, want := range map[float64]string{0: "0%", 0.00001: "<0.01%", 0.0001: "0.01%", 0.0123: "1.2%", 0.25: "25%", 1: "100%"} {
		assert.Equal(t, want, percent(f), "%v", f)
	}
	for d, want := range map[time.Duration]string{0: "–", 147456: "147µs", 2883584: "2.88ms", 1500 * time.Millisecond: "1.5s"} {
		assert.Equal(t, want, fmtLatency(d), "%d", d)
	}
	for d, want := range map[time.Duration]string{1500 * time.Millisecond: "2s", 192 * time.Second: "3m12s", 26*time.Hour + 29*time.Second: "26h0m"} {
		assert.Equal(t, want, fmtAge(d), "%v", d)
	}
}
