package lb

import (
	"encoding/json"
	"errors"
	"log/slog"
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
	for d, want := range map[time.Duration]string{1500 * time.Millisecond: "2s", 192 * time.Second: "3m12s", 26*time.Hour + 29*time.Second: "26h0m", time.Hour - time.Millisecond: "1h0m"} {
		assert.Equal(t, want, fmtAge(d), "%v", d)
	}
}

// TestStatusPageState checks each server's state on the page and in the
// JSON: why it is down or ejected, for how long, and when an ejection
// ends.
func TestStatusPageState(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 1, 1, 0)
	down, ejected := servers[0], servers[1]
	down.SetHealthy(false)
	ph := passiveHealth{failures: 1, cooldown: time.Hour, maxEjection: 100, logger: slog.New(slog.DiscardHandler)}
	ph.observe(ejected, DoneInfo{Err: errors.New("dial tcp 10.0.0.2:80: connection refused")})
	require.True(t, ejected.Ejected())

	body := statusHTML(t, p)
	assert.Contains(t, body, "<b>1 of 4 servers available</b>") // s2; s3 has weight 0
	assert.Regexp(t, `class="down">down</span> <small>for \d+s</small><br><small>marked unhealthy \(WithDown or Server.SetHealthy\)</small>`, body)
	assert.Regexp(t, `class="ejected">ejected</span> <small>for \d+s</small><br><small title="[0-9T:Z-]+">ejection ends in (59m\d+s|1h0m)</small><br><small>dial tcp 10.0.0.2:80: connection refused</small>`, body)
	assert.Equal(t, 2, strings.Count(body, `class="up">up</span></span>`), "never changed: no time in state")
	assert.Contains(t, body, `<span>0<br><small class="slow-start">takes no picks</small></span>`)

	w := httptest.NewRecorder()
	StatusHandler(p).ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	var got struct {
		Servers []map[string]any `json:"servers"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Len(t, got.Servers, 4)
	e := got.Servers[1]
	assert.Equal(t, "ejected", e["state"])
	assert.Equal(t, "dial tcp 10.0.0.2:80: connection refused", e["reason"])
	for _, k := range []string{"since", "ejected_until"} {
		ts, ok := e[k].(string)
		require.True(t, ok, k)
		_, err := time.Parse(time.RFC3339Nano, ts)
		assert.NoError(t, err, k)
	}
	assert.Equal(t, 1.0, e["ejections"])
	assert.NotContains(t, got.Servers[2], "ejected_until")
}
