package lb

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrapeMetrics serves one GET of h and returns the body, after checking
// the status and the media type.
func scrapeMetrics(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", rec.Header().Get("Content-Type"))
	return rec.Body.String()
}

// metricLines returns the lines of body that are samples (not comments).
func metricLines(body string) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

func TestMetricsHandlerLines(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	a, err := NewHandlerServer("alpha", ok, WithWeight(3))
	require.NoError(t, err)
	// A name with every character the format escapes.
	odd, err := NewHandlerServer("o\"dd\\na\nme", ok)
	require.NoError(t, err)
	down, err := NewHandlerServer("down", ok, WithDown(), WithWeight(0))
	require.NoError(t, err)
	p1, err := NewPool(a, odd)
	require.NoError(t, err)
	p2, err := NewPool(a, down) // alpha is in both pools
	require.NoError(t, err)

	// alpha: two requests ended, one in flight.
	a.Acquire().Done(DoneInfo{StatusCode: 200, Duration: time.Millisecond})
	a.Acquire().Done(DoneInfo{StatusCode: 503, Duration: 3 * time.Millisecond})
	inFlight := a.Acquire()
	defer inFlight.Done(DoneInfo{})
	odd.Acquire().Done(DoneInfo{Err: errors.New("boom")})

	lines := metricLines(scrapeMetrics(t, MetricsHandler(p1, nil, p2)))
	for _, want := range []string{
		`lb_requests_total{server="alpha"} 2`,
		`lb_requests_total{server="o\"dd\\na\nme"} 1`,
		`lb_requests_total{server="down"} 0`,
		`lb_in_flight_requests{server="alpha"} 1`,
		`lb_in_flight_requests{server="down"} 0`,
		`lb_server_weight{server="alpha"} 3`,
		`lb_server_weight{server="o\"dd\\na\nme"} 1`,
		`lb_server_weight{server="down"} 0`,
		`lb_server_state{server="alpha",state="up"} 1`,
		`lb_server_state{server="alpha",state="down"} 0`,
		`lb_server_state{server="alpha",state="ejected"} 0`,
		`lb_server_state{server="alpha",state="draining"} 0`,
		`lb_server_state{server="down",state="up"} 0`,
		`lb_server_state{server="down",state="down"} 1`,
		`lb_request_errors_total{server="alpha",class="transport"} 0`,
		`lb_request_errors_total{server="alpha",class="timeout"} 0`,
		`lb_request_errors_total{server="alpha",class="status_5xx"} 1`,
		`lb_request_errors_total{server="alpha",class="status_4xx"} 0`,
		`lb_request_errors_total{server="alpha",class="client_gone"} 0`,
		`lb_request_errors_total{server="o\"dd\\na\nme",class="transport"} 1`,
		`lb_ejections_total{server="alpha"} 0`,
		`lb_retries_total{server="alpha"} 0`,
		// One bucket to each doubling (Histogram.Octaves): 1 ms falls
		// in (0.524288 ms, 1.048576 ms], 3 ms in (2.097152 ms,
		// 4.194304 ms].
		`lb_request_duration_seconds_bucket{server="alpha",le="6.5536e-05"} 0`,
		`lb_request_duration_seconds_bucket{server="alpha",le="0.000524288"} 0`,
		`lb_request_duration_seconds_bucket{server="alpha",le="0.001048576"} 1`,
		`lb_request_duration_seconds_bucket{server="alpha",le="0.002097152"} 1`,
		`lb_request_duration_seconds_bucket{server="alpha",le="0.004194304"} 2`,
		`lb_request_duration_seconds_bucket{server="alpha",le="34.359738368"} 2`,
		`lb_request_duration_seconds_bucket{server="alpha",le="60.129542144"} 2`,
		`lb_request_duration_seconds_bucket{server="alpha",le="+Inf"} 2`,
		`lb_request_duration_seconds_sum{server="alpha"} 0.004`,
		`lb_request_duration_seconds_count{server="alpha"} 2`,
		`lb_request_duration_seconds_bucket{server="down",le="+Inf"} 0`,
		`lb_request_duration_seconds_sum{server="down"} 0`,
		`lb_request_duration_seconds_count{server="down"} 0`,
	} {
		assert.Contains(t, lines, want)
	}
	// A server in two pools is shown once.
	n := 0
	for _, line := range lines {
		if strings.HasPrefix(line, `lb_requests_total{server="alpha"}`) {
			n++
		}
	}
	assert.Equal(t, 1, n, "alpha, in both pools, is shown once")
	// Every octave of the server's histogram, the last one as +Inf.
	n = 0
	for _, line := range lines {
		if strings.HasPrefix(line, `lb_request_duration_seconds_bucket{server="alpha",`) {
			n++
		}
	}
	assert.Equal(t, len(a.Latency().Octaves().Buckets), n)
	assert.Equal(t, 22, n)
}

func TestMetricsHandlerFamilies(t *testing.T) {
	t.Parallel()
	body := scrapeMetrics(t, MetricsHandler())
	assert.Equal(t, `# HELP lb_requests_total Requests that have ended, by server.
# TYPE lb_requests_total counter
# HELP lb_request_errors_total Requests that ended in an error, by server and class.
# TYPE lb_request_errors_total counter
# HELP lb_in_flight_requests Requests picked and not yet done, by server.
# TYPE lb_in_flight_requests gauge
# HELP lb_server_weight Weight of the server.
# TYPE lb_server_weight gauge
# HELP lb_server_state 1 for the state the server is in, 0 for the others.
# TYPE lb_server_state gauge
# HELP lb_ejections_total Times passive health took the server out, by server.
# TYPE lb_ejections_total counter
# HELP lb_retries_total Attempts on the server that were retries, by server.
# TYPE lb_retries_total counter
# HELP lb_request_duration_seconds Duration of the requests that reported one, by server.
# TYPE lb_request_duration_seconds histogram
`, body)
}

func TestMetricsHandlerSameNameTwoPools(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	first, err := NewHandlerServer("x", ok, WithWeight(2))
	require.NoError(t, err)
	second, err := NewHandlerServer("x", ok, WithWeight(5))
	require.NoError(t, err)
	p1, err := NewPool(first)
	require.NoError(t, err)
	p2, err := NewPool(second)
	require.NoError(t, err)
	lines := metricLines(scrapeMetrics(t, MetricsHandler(p1, p2)))
	assert.Contains(t, lines, `lb_server_weight{server="x"} 2`, "the first pool's server")
	assert.NotContains(t, lines, `lb_server_weight{server="x"} 5`)
}

func TestMetricsHandlerDraining(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	s, err := NewHandlerServer("s", ok)
	require.NoError(t, err)
	p, err := NewPool(s)
	require.NoError(t, err)
	synctest.Test(t, func(t *testing.T) {
		busy := s.Acquire()
		drained := make(chan error, 1)
		go func() { drained <- p.Drain(t.Context(), s) }()
		synctest.Wait() // Drain waits for the request in flight
		require.True(t, s.Draining())
		lines := metricLines(scrapeMetrics(t, MetricsHandler(p)))
		assert.Contains(t, lines, `lb_server_state{server="s",state="draining"} 1`)
		assert.Contains(t, lines, `lb_server_state{server="s",state="up"} 0`)
		busy.Done(DoneInfo{})
		require.NoError(t, <-drained)
	})
}

func TestMetricsHandlerMethods(t *testing.T) {
	t.Parallel()
	h := MetricsHandler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/metrics", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/metrics", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Empty(t, rec.Body.String())
}

func TestMetricsHandlerInvalidUTF8Name(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	bad, err := NewHandlerServer("bad\xff", ok)
	require.NoError(t, err)
	bad2, err := NewHandlerServer("bad\xfe\xfe", ok) // shown as the same name
	require.NoError(t, err)
	p, err := NewPool(bad, bad2)
	require.NoError(t, err)
	lines := metricLines(scrapeMetrics(t, MetricsHandler(p)))
	assert.Contains(t, lines, "lb_requests_total{server=\"bad\uFFFD\"} 0")
	assert.Contains(t, lines, "lb_server_state{server=\"bad\uFFFD\",state=\"up\"} 1")
	n := 0
	for _, line := range lines {
		assert.True(t, utf8.ValidString(line), line)
		if strings.HasPrefix(line, "lb_requests_total{") {
			n++
		}
	}
	assert.Equal(t, 1, n)
}

// failingWriter is a ResponseWriter whose Write fails, as for a client
// that went away, and counts the calls.
type failingWriter struct {
	header http.Header
	writes int
}

func (f *failingWriter) Header() http.Header { return f.header }

func (f *failingWriter) Write(p []byte) (int, error) {
	f.writes++
	return 0, errors.New("broken pipe")
}

func (f *failingWriter) WriteHeader(int) {}

// After a failed write, the handler writes nothing more.
func TestMetricsHandlerStopsWritingOnError(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	var servers []*Server
	for i := range 100 { // several chunks of output
		s, err := NewHandlerServer(fmt.Sprintf("server-%03d", i), ok)
		require.NoError(t, err)
		servers = append(servers, s)
	}
	p, err := NewPool(servers...)
	require.NoError(t, err)
	w := &failingWriter{header: make(http.Header)}
	MetricsHandler(p).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, 1, w.writes)
}
