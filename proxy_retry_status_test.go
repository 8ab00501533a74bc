package lb

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eventTransport records, in order, each attempt and each close of a
// response body.
type eventTransport struct {
	rt     http.RoundTripper
	mu     sync.Mutex
	events []string
}

func (e *eventTransport) log(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, s)
}

func (e *eventTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	e.log("attempt " + r.URL.Host)
	resp, err := e.rt.RoundTrip(r)
	if err == nil {
		resp.Body = &closeLogged{ReadCloser: resp.Body, e: e, host: r.URL.Host}
	}
	return resp, err
}

type closeLogged struct {
	io.ReadCloser
	e    *eventTransport
	host string
	read int
}

func (c *closeLogged) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.read += n
	return n, err
}

func (c *closeLogged) Close() error {
	c.e.log(fmt.Sprintf("close %s after %d bytes", c.host, c.read))
	return c.ReadCloser.Close()
}

// statusServer answers every request with code and a body naming it,
// after reading the request body.
func statusServer(t *testing.T, name string, code int, bodies chan<- string) *Server {
	t.Helper()
	return backend(t, name, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if bodies != nil {
			bodies <- name + ":" + string(b)
		}
		w.WriteHeader(code)
		fmt.Fprint(w, name)
	})
}

func TestProxyRetryOnStatus(t *testing.T) {
	t.Parallel()
	bodies := make(chan string, 16)
	busy := statusServer(t, "busy", http.StatusServiceUnavailable, bodies)
	ok := statusServer(t, "ok", http.StatusOK, bodies)
	servers := []*Server{busy, ok}
	host := func(s *Server) string { return s.URL().Host }
	et := &eventTransport{rt: newTransport(0)}
	t.Cleanup(et.rt.(*http.Transport).CloseIdleConnections)
	front := func(opts ...ProxyOption) http.Handler {
		return newTestProxy(t, servers, append([]ProxyOption{WithTransport(et), WithPassiveHealth(0, 0)}, opts...)...)
	}
	through := func(h http.Handler, method, body string) (int, string) {
		ts := httptest.NewServer(h)
		defer ts.Close()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, ts.URL, rd)
		require.NoError(t, err)
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	drain := func() (out []string) {
		for {
			select {
			case b := <-bodies:
				out = append(out, b)
			default:
				return out
			}
		}
	}

	// Off by default: the 503 goes to the client.
	code, body := through(front(), "GET", "")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "busy", body)
	drain()

	// On: the 503 is read to its end and closed, then the next server
	// answers.
	p := front(WithRetryOnStatus(http.StatusServiceUnavailable))
	et.events = nil
	code, body = through(p, "GET", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", body)
	assert.Equal(t, []string{
		"attempt " + host(busy), "close " + host(busy) + " after 4 bytes",
		"attempt " + host(ok), "close " + host(ok) + " after 2 bytes",
	}, et.events)
	drain()

	// A PUT whose body was kept: retried with its whole body.
	code, _ = through(p, "PUT", "payload")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, []string{"busy:payload", "ok:payload"}, drain())

	// A POST, and a PUT whose body was too large to keep, are not.
	code, body = through(p, "POST", "payload")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "busy", body)
	assert.Equal(t, []string{"busy:payload"}, drain())
	code, _ = through(front(WithRetryOnStatus(503), WithRetryBodyLimit(3)), "PUT", "payload")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, []string{"busy:payload"}, drain())

	// Other statuses are not retried.
	code, _ = through(front(WithRetryOnStatus(http.StatusBadGateway)), "GET", "")
	assert.Equal(t, http.StatusServiceUnavailable, code)

	// No budget left: the client gets the 503.
	code, _ = through(front(WithRetryOnStatus(503), WithRetryBudget(0, 0)), "GET", "")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	drain()
	assertNoneInFlight(t, servers...)
	assert.EqualValues(t, 0, ok.fails.Load())
}

// With every server answering a retried status, the client gets the last
// attempt's answer, whole, and every other one was closed.
func TestProxyRetryOnStatusLastAnswerWins(t *testing.T) {
	t.Parallel()
	servers := []*Server{
		statusServer(t, "a", http.StatusTooManyRequests, nil),
		statusServer(t, "b", http.StatusTooManyRequests, nil),
		statusServer(t, "c", http.StatusServiceUnavailable, nil),
		statusServer(t, "d", http.StatusServiceUnavailable, nil),
	}
	et := &eventTransport{rt: newTransport(0)}
	t.Cleanup(et.rt.(*http.Transport).CloseIdleConnections)
	p := newTestProxy(t, servers, WithTransport(et), WithRetryOnStatus(429, 503))
	w := serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, "c", w.Body.String(), "two retries: a, b, c")
	assert.Len(t, et.events, 6)
	assertNoneInFlight(t, servers...)
	assert.EqualValues(t, 1, servers[2].fails.Load(), "a 503 counts for passive health")
	assert.EqualValues(t, 0, servers[0].fails.Load(), "a 429 does not, by default")
}

func TestWithRetryOnStatusRejects(t *testing.T) {
	t.Parallel()
	b := BalancerFunc(func(*http.Request) (PickResult, error) { return PickResult{}, ErrNoServer })
	for _, c := range []int{0, 200, 302, 399, 600, math.MaxInt} {
		_, err := NewProxy(b, WithRetryOnStatus(503, c))
		require.Error(t, err)
		assert.Equal(t, fmt.Sprintf("lb: NewProxy: WithRetryOnStatus: status %d is not between 400 and 599", c), err.Error())
	}
}
