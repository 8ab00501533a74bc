package lb

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logRecorder is a slog handler that keeps every record, for tests that
// check what the proxy logs.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}

// messages returns the messages logged at level or above.
func (h *logRecorder) messages(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if r.Level >= level {
			out = append(out, r.Message)
		}
	}
	return out
}

var quiet = WithProxyLogger(slog.New(slog.DiscardHandler))

// backend starts a loopback server named name whose handler is h, or, if h
// is nil, one that answers with its name.
func backend(t *testing.T, name string, h http.HandlerFunc) *Server {
	t.Helper()
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) }
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	s, err := NewServer(ts.URL, WithName(name))
	require.NoError(t, err)
	return s
}

// deadServer returns a server whose address refuses connections.
func deadServer(t *testing.T, name string) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	s, err := NewServer("http://"+addr, WithName(name))
	require.NoError(t, err)
	return s
}

// newTestProxy returns a proxy with round robin from the first server over
// servers.
func newTestProxy(t *testing.T, servers []*Server, opts ...ProxyOption) *Proxy {
	t.Helper()
	pool, err := NewPool(servers...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool, WithRotationStart(0))
	require.NoError(t, err)
	p, err := NewProxy(rr, append([]ProxyOption{quiet}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(p.CloseIdleConnections)
	return p
}

// serve runs one request through h and returns the recorded answer.
func serve(h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, rd))
	return w
}

func assertNoneInFlight(t *testing.T, servers ...*Server) {
	t.Helper()
	for _, s := range servers {
		assert.Zero(t, s.InFlight(), "%s in flight", s.Name())
	}
}

// frontend serves h on a loopback server and returns its URL and a channel
// that receives once each time h has returned for a request.
func frontend(t *testing.T, h http.Handler) (string, <-chan struct{}) {
	t.Helper()
	served := make(chan struct{}, 16)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { served <- struct{}{} }()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, served
}

// wait receives from c, failing the test if nothing arrives in 10 s (a
// guard against hanging, not a timing assertion).
func wait(t *testing.T, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the proxy handler to return")
	}
}

func TestNewProxyRejects(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1)
	rr, err := NewRoundRobin(p)
	require.NoError(t, err)
	_, err = NewProxy(nil)
	assert.EqualError(t, err, "lb: NewProxy: nil balancer")
	tests := []struct {
		opt  ProxyOption
		want string
	}{
		{nil, "lb: NewProxy: option 1 is nil"},
		{WithTransport(nil), "lb: NewProxy: WithTransport: nil RoundTripper"},
		{WithProxyLogger(nil), "lb: NewProxy: WithProxyLogger: nil logger"},
		{WithErrorHandler(nil), "lb: NewProxy: WithErrorHandler: nil function"},
		{WithRetries(-1), "lb: NewProxy: WithRetries: negative count -1"},
		{WithRetryBodyLimit(-5), "lb: NewProxy: WithRetryBodyLimit: negative size -5"},
		{WithPassiveHealth(-1, time.Second), "lb: NewProxy: WithPassiveHealth: negative failure count -1"},
		{WithPassiveHealth(3, 0), "lb: NewProxy: WithPassiveHealth: cool-down 0s is not positive"},
		{WithFailureStatus(502, 42), "lb: NewProxy: WithFailureStatus: invalid status 42"},
		{WithTrustedProxies(netip.Prefix{}), "lb: NewProxy: WithTrustedProxies: invalid prefix invalid Prefix"},
		{WithResponseHeaderTimeout(-time.Second), "lb: NewProxy: WithResponseHeaderTimeout: negative duration -1s"},
		{WithRetryAfterHeader(time.Millisecond), "lb: NewProxy: WithRetryAfterHeader: 1ms is below one second"},
	}
	for _, tt := range tests {
		_, err := NewProxy(rr, quiet, tt.opt)
		assert.EqualError(t, err, tt.want)
	}
	_, err = NewProxy(rr, WithTransport(http.DefaultTransport), WithResponseHeaderTimeout(time.Second))
	assert.ErrorContains(t, err, "set it on the one given to WithTransport")
}

func TestProxyForwards(t *testing.T) {
	t.Parallel()
	servers := []*Server{backend(t, "a", nil), backend(t, "b", nil), backend(t, "c", nil)}
	p := newTestProxy(t, servers)
	var got []string
	for range 6 {
		w := serve(p, "GET", "/", "")
		require.Equal(t, http.StatusOK, w.Code)
		got = append(got, w.Body.String())
	}
	assert.Equal(t, []string{"a", "b", "c", "a", "b", "c"}, got)
	for _, s := range servers {
		st := s.Stats()
		assert.EqualValues(t, 2, st.Requests, s.Name())
		assert.Zero(t, st.Failures, s.Name())
		assert.EqualValues(t, 2, s.Latency().Count, s.Name())
		assert.Positive(t, st.P50, s.Name())
	}
	assertNoneInFlight(t, servers...)
}

func TestProxyURLJoinAndHost(t *testing.T) {
	t.Parallel()
	echo := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Host, r.URL.RequestURI())
	}
	ts := httptest.NewServer(http.HandlerFunc(echo))
	t.Cleanup(ts.Close)
	s, err := NewServer(ts.URL + "/base/?k=v")
	require.NoError(t, err)
	target := strings.TrimPrefix(ts.URL, "http://")

	p := newTestProxy(t, []*Server{s})
	w := serve(p, "GET", "http://public.example/x/y?q=1", "")
	assert.Equal(t, target+" /base/x/y?k=v&q=1", w.Body.String(), "target's host by default")

	p = newTestProxy(t, []*Server{s}, WithPreserveHost())
	w = serve(p, "GET", "http://public.example/x/y?q=1", "")
	assert.Equal(t, "public.example /base/x/y?k=v&q=1", w.Body.String())
}

func TestProxyHandlerServers(t *testing.T) {
	t.Parallel()
	ok, err := NewHandlerServer("ok", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "ok %s %s", r.Method, body)
	}))
	require.NoError(t, err)
	silent, err := NewHandlerServer("silent", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	require.NoError(t, err)
	broken, err := NewHandlerServer("broken", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	require.NoError(t, err)
	p := newTestProxy(t, []*Server{ok, silent, broken}, WithPassiveHealth(0, 0))

	w := serve(p, "PUT", "/", "data")
	assert.Equal(t, "ok PUT data", w.Body.String())
	w = serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusOK, w.Code)
	w = serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)

	assert.Equal(t, Stats{Name: "ok", Weight: 1, Healthy: true, State: "up", Ramp: 1, Requests: 1}, withoutLatency(ok.Stats()))
	assert.Equal(t, Stats{Name: "silent", Weight: 1, Healthy: true, State: "up", Ramp: 1, Requests: 1}, withoutLatency(silent.Stats()))
	assert.Equal(t, Stats{Name: "broken", Weight: 1, Healthy: true, State: "up", Ramp: 1, Requests: 1, Failures: 1, Errors: ErrorCounts{Status5xx: 1}}, withoutLatency(broken.Stats()))
}

func withoutLatency(s Stats) Stats {
	s.P50, s.P90, s.P99 = 0, 0, 0
	return s
}

func TestProxyNoServer(t *testing.T) {
	t.Parallel()
	var empty Pool
	rr, err := NewRoundRobin(&empty)
	require.NoError(t, err)
	p, err := NewProxy(rr, quiet)
	require.NoError(t, err)
	w := serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
	assert.Equal(t, "Service Unavailable\n", w.Body.String())

	a, b := backend(t, "a", nil), backend(t, "b", nil)
	a.SetHealthy(false)
	b.SetHealthy(false)
	p = newTestProxy(t, []*Server{a, b}, WithRetryAfterHeader(30*time.Second))
	w = serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, "30", w.Header().Get("Retry-After"))
	assertNoneInFlight(t, a, b)
}

func TestProxyBadGateway(t *testing.T) {
	t.Parallel()
	dead := deadServer(t, "dead")
	logs := &logRecorder{}
	p := newTestProxy(t, []*Server{dead}, WithProxyLogger(slog.New(logs)))
	w := serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusBadGateway, w.Code)
	assert.Equal(t, "Bad Gateway\n", w.Body.String(), "no address or Go error text")
	st := dead.Stats()
	assert.EqualValues(t, 1, st.Requests)
	assert.EqualValues(t, 1, st.Failures)
	assertNoneInFlight(t, dead)
	assert.Equal(t, []string{"lb: proxy error"}, logs.messages(slog.LevelError))
}

func TestProxyRetriesDialFailureWithBody(t *testing.T) {
	t.Parallel()
	dead := deadServer(t, "dead")
	var got atomic.Value
	live := backend(t, "live", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.Store(r.Method + " " + string(body))
		fmt.Fprint(w, "live")
	})
	p := newTestProxy(t, []*Server{dead, live})
	w := serve(p, "POST", "/", "the body")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "live", w.Body.String())
	assert.Equal(t, "POST the body", got.Load(), "the POST reached the live server with its body intact")
	assert.EqualValues(t, 1, dead.Stats().Failures)
	assert.EqualValues(t, 1, live.Stats().Requests)
	assertNoneInFlight(t, dead, live)
}

// dying returns a server that reads the whole request and then drops the
// connection without answering, counting its requests in hits.
func dying(t *testing.T, name string, hits *atomic.Int32) *Server {
	return backend(t, name, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
}

func TestProxyBackendDiesAfterReadingBody(t *testing.T) {
	t.Parallel()
	var hits, goodHits atomic.Int32
	die := dying(t, "dying", &hits)
	good := backend(t, "good", func(w http.ResponseWriter, r *http.Request) {
		goodHits.Add(1)
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "good %s", body)
	})

	// A POST that reached the server is never retried.
	p := newTestProxy(t, []*Server{die, good})
	w := serve(p, "POST", "/", "payload")
	assert.Equal(t, http.StatusBadGateway, w.Code)
	assert.EqualValues(t, 1, hits.Load())
	assert.Zero(t, goodHits.Load())

	// A GET, and a PUT whose body is kept, are.
	for _, method := range []string{"GET", "PUT"} {
		p = newTestProxy(t, []*Server{die, good})
		w = serve(p, method, "/", "payload")
		assert.Equal(t, http.StatusOK, w.Code, method)
		assert.Equal(t, "good payload", w.Body.String(), method)
	}
	assert.EqualValues(t, 3, hits.Load())
	assert.EqualValues(t, 2, goodHits.Load())
	assertNoneInFlight(t, die, good)
	assert.EqualValues(t, 3, die.Stats().Failures)
}

func TestProxyLargeBodyIsStreamedNotRetried(t *testing.T) {
	t.Parallel()
	var hits, goodHits atomic.Int32
	die := dying(t, "dying", &hits)
	var got atomic.Value
	good := backend(t, "good", func(w http.ResponseWriter, r *http.Request) {
		goodHits.Add(1)
		body, _ := io.ReadAll(r.Body)
		got.Store(string(body))
	})
	big := strings.Repeat("x", 64)

	p := newTestProxy(t, []*Server{die, good}, WithRetryBodyLimit(16))
	w := serve(p, "PUT", "/", big)
	assert.Equal(t, http.StatusBadGateway, w.Code)
	assert.Zero(t, goodHits.Load())

	// Streamed, it still arrives whole when nothing fails.
	p = newTestProxy(t, []*Server{good}, WithRetryBodyLimit(16))
	w = serve(p, "PUT", "/", big)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, big, got.Load())

	// And a dial failure, before anything read it, is still retried.
	p = newTestProxy(t, []*Server{deadServer(t, "dead"), good}, WithRetryBodyLimit(16))
	w = serve(p, "PUT", "/", big+"!")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, big+"!", got.Load())
	assertNoneInFlight(t, die, good)
}

func TestProxyRetriesAreBounded(t *testing.T) {
	t.Parallel()
	dead := []*Server{deadServer(t, "d0"), deadServer(t, "d1"), deadServer(t, "d2"), deadServer(t, "d3")}
	good := backend(t, "good", nil)
	servers := append(append([]*Server{}, dead...), good)

	p := newTestProxy(t, servers) // two retries: d0, d1, d2
	w := serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusBadGateway, w.Code)
	for i, s := range dead {
		want := uint64(0)
		if i < 3 {
			want = 1
		}
		assert.Equal(t, want, s.Stats().Requests, s.Name())
	}
	assert.Zero(t, good.Stats().Requests)

	p = newTestProxy(t, servers, WithRetries(4), WithoutRetryBudget()) // the budget's floor is 3
	w = serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "good", w.Body.String())

	p = newTestProxy(t, servers, WithRetries(0))
	w = serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusBadGateway, w.Code)
	assertNoneInFlight(t, servers...)
}

func TestProxyRetryNeverSameServer(t *testing.T) {
	t.Parallel()
	dead, good := deadServer(t, "dead"), backend(t, "good", nil)
	var picks atomic.Int32
	// A balancer that offers the dead server three times before the good
	// one.
	bal := BalancerFunc(func(*http.Request) (PickResult, error) {
		if picks.Add(1) <= 3 {
			return dead.Acquire(), nil
		}
		return good.Acquire(), nil
	})
	p, err := NewProxy(bal, quiet)
	require.NoError(t, err)
	w := serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.EqualValues(t, 4, picks.Load())
	assert.EqualValues(t, 1, dead.Stats().Requests, "repicks of a tried server are not requests")
	assert.EqualValues(t, 1, good.Stats().Requests)
	assertNoneInFlight(t, dead, good)
}

func TestProxyTimeout(t *testing.T) {
	t.Parallel()
	// A server that accepts and never answers; closed tells when the proxy
	// gave up the connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	closed := make(chan struct{}, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(io.Discard, conn) // until the proxy closes it
				conn.Close()
				closed <- struct{}{}
			}()
		}
	}()
	hung, err := NewServer("http://"+ln.Addr().String(), WithName("hung"))
	require.NoError(t, err)
	var goodHits atomic.Int32
	good := backend(t, "good", func(http.ResponseWriter, *http.Request) { goodHits.Add(1) })

	p := newTestProxy(t, []*Server{hung, good}, WithResponseHeaderTimeout(50*time.Millisecond))
	w := serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusGatewayTimeout, w.Code)
	assert.Equal(t, "Gateway Timeout\n", w.Body.String())
	assert.Zero(t, goodHits.Load(), "a timeout is not retried")
	assert.EqualValues(t, 1, hung.Stats().Failures)
	assertNoneInFlight(t, hung, good)
	wait(t, closed) // the connection to the hung server is gone
}

func TestProxyBodyCutShort(t *testing.T) {
	t.Parallel()
	cut := backend(t, "cut", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("only ten b"))
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // drops the connection
	})
	p := newTestProxy(t, []*Server{cut})

	// Under a real server the proxy aborts the response too.
	url, served := frontend(t, p)
	resp, err := http.Get(url)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	assert.Error(t, err, "the client sees the response cut short")
	wait(t, served)
	assert.EqualValues(t, 1, cut.Stats().Failures)

	// Called directly, the same outcome is recorded.
	w := serve(p, "GET", "/", "")
	assert.Equal(t, "only ten b", w.Body.String())
	assert.EqualValues(t, 2, cut.Stats().Failures)
	assertNoneInFlight(t, cut)
}

func TestProxyHandlerPanic(t *testing.T) {
	t.Parallel()
	boom, err := NewHandlerServer("boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	require.NoError(t, err)
	p := newTestProxy(t, []*Server{boom})
	assert.PanicsWithValue(t, "boom", func() { serve(p, "GET", "/", "") }, "the panic goes on to the server")
	assert.EqualValues(t, 1, boom.Stats().Failures)
	assertNoneInFlight(t, boom)
}

func TestProxyClientGoesAwayMidStream(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stream := backend(t, "stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	logs := &logRecorder{}
	p := newTestProxy(t, []*Server{stream}, WithProxyLogger(slog.New(logs)), WithPassiveHealth(1, time.Hour))
	url, served := frontend(t, p)

	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: one\n", line)
	assert.EqualValues(t, 1, stream.InFlight())
	cancel()
	resp.Body.Close()
	wait(t, served)

	st := stream.Stats()
	assert.Zero(t, st.InFlight)
	assert.EqualValues(t, 1, st.Requests)
	assert.Zero(t, st.Failures, "the client left; the server did nothing wrong")
	assert.True(t, stream.Available(), "not ejected, even with a threshold of one failure")
	assert.Empty(t, logs.messages(slog.LevelWarn))
}

func TestProxyServerSentEvents(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	sse := backend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			http.NewResponseController(w).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	p := newTestProxy(t, []*Server{sse})
	url, served := frontend(t, p)
	client := &http.Client{Timeout: 10 * time.Second} // fails, not hangs, if events are held back
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	// Each event arrives before the server is allowed to send the next.
	for i := range 3 {
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("data: %d\n", i), line)
		_, err = rd.ReadString('\n')
		require.NoError(t, err)
		next <- struct{}{}
	}
	wait(t, served)
	assertNoneInFlight(t, sse)
}

func TestProxyWebSocket(t *testing.T) {
	t.Parallel()
	echo := backend(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprint(brw, "echo "+line)
			brw.Flush()
		}
	})
	p := newTestProxy(t, []*Server{echo})
	url, served := frontend(t, p)

	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)

	for _, msg := range []string{"hello", "world"} {
		fmt.Fprint(conn, msg+"\n")
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "echo "+msg+"\n", line)
	}
	assert.EqualValues(t, 1, echo.InFlight(), "an open upgraded connection is in flight")
	conn.Close()
	wait(t, served)
	assertNoneInFlight(t, echo)
	assert.EqualValues(t, 1, echo.Stats().Requests)
}

// headerEcho answers with the request headers named in the query
// parameter h, one "Name: value" line each ("-" when absent).
func headerEcho(w http.ResponseWriter, r *http.Request) {
	for _, name := range r.URL.Query()["h"] {
		v := "-"
		if vv, ok := r.Header[http.CanonicalHeaderKey(name)]; ok {
			v = strings.Join(vv, " | ")
		}
		fmt.Fprintf(w, "%s: %s\n", name, v)
	}
}

func TestProxyForwardedHeaders(t *testing.T) {
	t.Parallel()
	s := backend(t, "echo", headerEcho)
	const query = "/?h=X-Forwarded-For&h=X-Forwarded-Host&h=X-Forwarded-Proto&h=Forwarded"
	request := func(remote string) *http.Request {
		r := httptest.NewRequest("GET", "http://public.example"+query, nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "6.6.6.6")
		r.Header.Set("X-Forwarded-Host", "spoofed.example")
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("Forwarded", "for=6.6.6.6")
		return r
	}
	tests := []struct {
		name   string
		opts   []ProxyOption
		remote string
		want   string
	}{
		{
			name:   "untrusted client",
			remote: "192.0.2.7:4000",
			want:   "X-Forwarded-For: 192.0.2.7\nX-Forwarded-Host: public.example\nX-Forwarded-Proto: http\nForwarded: -\n",
		},
		{
			name:   "trusted proxy",
			opts:   []ProxyOption{WithTrustedProxies(netip.MustParsePrefix("192.0.2.0/24"))},
			remote: "192.0.2.7:4000",
			want:   "X-Forwarded-For: 6.6.6.6, 192.0.2.7\nX-Forwarded-Host: spoofed.example\nX-Forwarded-Proto: https\nForwarded: for=6.6.6.6\n",
		},
		{
			name:   "client outside the trusted range",
			opts:   []ProxyOption{WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"))},
			remote: "192.0.2.7:4000",
			want:   "X-Forwarded-For: 192.0.2.7\nX-Forwarded-Host: public.example\nX-Forwarded-Proto: http\nForwarded: -\n",
		},
		{
			name:   "without X-Forwarded",
			opts:   []ProxyOption{WithoutXForwarded()},
			remote: "192.0.2.7:4000",
			want:   "X-Forwarded-For: -\nX-Forwarded-Host: -\nX-Forwarded-Proto: -\nForwarded: -\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestProxy(t, []*Server{s}, tt.opts...)
			w := httptest.NewRecorder()
			p.ServeHTTP(w, request(tt.remote))
			assert.Equal(t, tt.want, w.Body.String())
		})
	}
}

func TestProxyHopByHopHeaders(t *testing.T) {
	t.Parallel()
	s := backend(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "internal")
		w.Header().Set("Keep-Alive", "timeout=5")
		headerEcho(w, r)
	})
	p := newTestProxy(t, []*Server{s})
	r := httptest.NewRequest("GET", "/?h=X-Forwarded-For&h=X-Custom&h=Upgrade", nil)
	r.RemoteAddr = "192.0.2.9:1"
	// The Connection trick: naming X-Forwarded-For as hop-by-hop must not
	// remove the one the proxy adds.
	r.Header.Set("Connection", "X-Forwarded-For, X-Custom")
	r.Header.Set("X-Custom", "drop me")
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	assert.Equal(t, "X-Forwarded-For: 192.0.2.9\nX-Custom: -\nUpgrade: -\n", w.Body.String())
	assert.Empty(t, w.Header().Get("X-Secret"), "hop-by-hop response headers are stripped")
	assert.Empty(t, w.Header().Get("Keep-Alive"))

	// An h2c upgrade is not passed on.
	r = httptest.NewRequest("GET", "/?h=Upgrade&h=Connection", nil)
	r.Header.Set("Connection", "Upgrade, HTTP2-Settings")
	r.Header.Set("Upgrade", "h2c")
	r.Header.Set("HTTP2-Settings", "AAMAAABkAAQAAP__")
	w = httptest.NewRecorder()
	p.ServeHTTP(w, r)
	assert.Equal(t, "Upgrade: -\nConnection: -\n", w.Body.String())
}

func TestProxyPassiveHealth(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var healthy atomic.Bool
		flaky, err := NewHandlerServer("flaky", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !healthy.Load() {
				http.Error(w, "overloaded", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, "flaky")
		}))
		require.NoError(t, err)
		steady, err := NewHandlerServer("steady", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "steady")
		}))
		require.NoError(t, err)
		logs := &logRecorder{}
		p := newTestProxy(t, []*Server{flaky, steady}, WithProxyLogger(slog.New(logs)), WithPassiveHealth(3, 10*time.Second))

		codes := func(n int) []int {
			var out []int
			for range n {
				out = append(out, serve(p, "GET", "/", "").Code)
			}
			return out
		}
		// Round robin alternates until flaky's third failure ejects it.
		assert.Equal(t, []int{503, 200, 503, 200, 503, 200, 200, 200}, codes(8))
		assert.True(t, flaky.Ejected())
		assert.False(t, flaky.Available())
		assert.True(t, flaky.Healthy(), "ejection is not the health flag")
		assert.Equal(t, []string{"lb: server ejected"}, logs.messages(slog.LevelWarn))

		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		assert.True(t, flaky.Ejected(), "still cooling down")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		assert.False(t, flaky.Ejected(), "back after the cool-down")
		assert.Contains(t, logs.messages(slog.LevelInfo), "lb: server back from ejection")

		// A success resets the count: two failures, a success, two more
		// failures do not eject it.
		healthy.Store(true)
		assert.Equal(t, []int{200, 200}, codes(2))
		healthy.Store(false)
		codes(4) // flaky fails twice
		healthy.Store(true)
		codes(2)
		healthy.Store(false)
		codes(4)
		assert.False(t, flaky.Ejected())
	})
}

func TestProxyErrorHandler(t *testing.T) {
	t.Parallel()
	dead := deadServer(t, "dead")
	var seen []string
	p := newTestProxy(t, []*Server{dead}, WithRetries(0), WithErrorHandler(func(w http.ResponseWriter, r *http.Request, code int, err error) {
		// The outcome is recorded before the handler runs.
		seen = append(seen, fmt.Sprintf("%d in flight %d failures %d", code, dead.InFlight(), dead.Stats().Failures))
		w.WriteHeader(code)
		fmt.Fprint(w, "custom page")
	}))
	w := serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusBadGateway, w.Code)
	assert.Equal(t, "custom page", w.Body.String())
	dead.SetHealthy(false)
	w = serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, []string{"502 in flight 0 failures 1", "503 in flight 0 failures 1"}, seen)
}

func TestProxyLogsNothingOnSuccess(t *testing.T) {
	t.Parallel()
	logs := &logRecorder{}
	s := backend(t, "a", nil)
	p := newTestProxy(t, []*Server{s}, WithProxyLogger(slog.New(logs)))
	for range 20 {
		require.Equal(t, http.StatusOK, serve(p, "GET", "/", "").Code)
	}
	assert.Empty(t, logs.messages(slog.LevelDebug))
}

func TestProxyErrorLogIsSampled(t *testing.T) {
	t.Parallel()
	logs := &logRecorder{}
	p := newTestProxy(t, []*Server{deadServer(t, "dead")}, WithProxyLogger(slog.New(logs)), WithRetries(0), WithPassiveHealth(0, 0))
	for range 5 {
		serve(p, "GET", "/", "")
	}
	// Five errors within a second: one line.
	assert.Equal(t, []string{"lb: proxy error"}, logs.messages(slog.LevelError))
	var s sampler
	now := time.Unix(100, 0)
	ok, _ := s.allow(now)
	assert.True(t, ok)
	ok, _ = s.allow(now.Add(time.Second - 1))
	assert.False(t, ok)
	ok, skipped := s.allow(now.Add(time.Second))
	assert.True(t, ok)
	assert.EqualValues(t, 1, skipped)
}

func TestProxyHandlerServerStreams(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	events, err := NewHandlerServer("events", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 2 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			// Through the proxy's wrapper, as a handler would in a
			// real server.
			if err := http.NewResponseController(w).Flush(); err != nil {
				return
			}
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	require.NoError(t, err)
	p := newTestProxy(t, []*Server{events})
	url, served := frontend(t, p)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for i := range 2 {
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("data: %d\n", i), line, "arrives before the handler goes on")
		_, err = rd.ReadString('\n')
		require.NoError(t, err)
		next <- struct{}{}
	}
	wait(t, served)
	assertNoneInFlight(t, events)
	assert.EqualValues(t, 1, events.Stats().Requests)
}

func TestProxyRetryAvoidsTheFailedServerWithLeastConn(t *testing.T) {
	t.Parallel()
	// The dead server looks idle, so least-conn keeps choosing it; the
	// retry still reaches the live one.
	dead, live := deadServer(t, "dead"), backend(t, "live", nil)
	var held []PickResult
	for range 5 {
		held = append(held, live.Acquire())
	}
	pool, err := NewPool(dead, live)
	require.NoError(t, err)
	lc, err := NewLeastConn(pool)
	require.NoError(t, err)
	p, err := NewProxy(lc, quiet)
	require.NoError(t, err)
	w := serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "live", w.Body.String())
	assert.EqualValues(t, 1, dead.Stats().Requests)
	for _, res := range held {
		res.Done(DoneInfo{})
	}
	assertNoneInFlight(t, dead, live)
}

func TestProxyDoesNotChangeTheInboundRequest(t *testing.T) {
	t.Parallel()
	s := backend(t, "a", nil)
	for _, method := range []string{"PUT", "POST"} { // kept, and tracked
		p := newTestProxy(t, []*Server{s})
		r := httptest.NewRequest(method, "/", strings.NewReader("body"))
		body := r.Body
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		assert.Equal(t, http.StatusOK, w.Code, method)
		assert.True(t, r.Body == body, "%s: the handler's request keeps its Body", method)
	}
}

// dialTimeouts fails requests to one host as a dial that timed out (a
// loopback socket cannot be made to time out on dial) and sends the rest
// on.
type dialTimeouts struct {
	host string
	next http.RoundTripper
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func (d dialTimeouts) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == d.host {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}}
	}
	return d.next.RoundTrip(r)
}

func TestProxyRetriesDialTimeout(t *testing.T) {
	t.Parallel()
	slow, err := NewServer("http://127.0.0.1:9", WithName("unreachable"))
	require.NoError(t, err)
	var got atomic.Value
	live := backend(t, "live", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.Store(string(body))
	})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	p := newTestProxy(t, []*Server{slow, live}, WithTransport(dialTimeouts{host: "127.0.0.1:9", next: tr}))
	w := serve(p, "POST", "/", "payload")
	assert.Equal(t, http.StatusOK, w.Code, "a dial timeout never reached the server: retried, even a POST")
	assert.Equal(t, "payload", got.Load())
	assert.EqualValues(t, 1, slow.Stats().Failures)
	assertNoneInFlight(t, slow, live)
}
