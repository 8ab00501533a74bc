package lb

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawRequest writes raw to the server at url over a new connection, closing
// the writing side after it when halfClose is set, and returns the status of
// the answer (-1 if none could be read).
func rawRequest(t *testing.T, url, raw string, halfClose bool) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second))) // a guard, not a measure
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	if halfClose {
		require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return -1
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// An inbound body that cannot be read is the client's fault: the client
// gets 400 (413 over a size limit), and the server is neither blamed nor
// ejected, so honest clients keep being served.
func TestProxyBrokenInboundBodyIsTheClientsFault(t *testing.T) {
	t.Parallel()
	const badChunk = "5\r\nhello\r\nzz\r\n"
	longBadChunk := "5\r\nhello\r\n" + strings.Repeat("10\r\n0123456789abcdef\r\n", 4) + "zz\r\n"
	tests := []struct {
		name      string
		opts      []ProxyOption
		maxBytes  int64 // an http.MaxBytesHandler around the proxy, if > 0
		raw       string
		halfClose bool
		want      int
	}{
		{
			name: "POST with a bad chunk",
			raw:  "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + badChunk,
			want: http.StatusBadRequest,
		},
		{
			name: "PUT with a bad chunk past the retry-body limit",
			opts: []ProxyOption{WithRetryBodyLimit(16)},
			raw:  "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + longBadChunk,
			want: http.StatusBadRequest,
		},
		{
			name: "PUT with a bad chunk within the retry-body limit",
			raw:  "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + badChunk,
			want: http.StatusBadRequest,
		},
		{
			name: "POST with a bad chunk, retries off",
			opts: []ProxyOption{WithRetries(0)},
			raw:  "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + badChunk,
			want: http.StatusBadRequest,
		},
		{
			name:     "POST over an http.MaxBytesHandler limit",
			maxBytes: 8,
			raw:      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("x", 64),
			want:     http.StatusRequestEntityTooLarge,
		},
		{
			name:     "PUT over an http.MaxBytesHandler limit past the retry-body limit",
			opts:     []ProxyOption{WithRetryBodyLimit(4)},
			maxBytes: 8,
			raw:      "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("x", 64),
			want:     http.StatusRequestEntityTooLarge,
		},
		{
			name:      "POST whose client stops sending mid-body",
			raw:       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 10),
			halfClose: true,
			want:      http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := backend(t, "only", func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, "ok")
			})
			p := newTestProxy(t, []*Server{s}, tt.opts...)
			var h http.Handler = p
			if tt.maxBytes > 0 {
				h = http.MaxBytesHandler(p, tt.maxBytes)
			}
			ts := httptest.NewServer(h)
			t.Cleanup(ts.Close)

			for i := range DefaultFailures + 1 {
				assert.Equal(t, tt.want, rawRequest(t, ts.URL, tt.raw, tt.halfClose), "attempt %d", i)
			}
			assert.False(t, s.Ejected(), "a client's broken body never ejects the server")
			assert.Zero(t, s.Stats().Failures, "nor counts against it")
			assert.Equal(t, http.StatusOK, rawRequest(t, ts.URL, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false),
				"an honest client is still served")
			assertNoneInFlight(t, s)
		})
	}
}

// A request to switch to a protocol whose name is not printable is a bad
// request, refused before any server is picked or blamed.
func TestProxyInvalidUpgradeIsABadRequest(t *testing.T) {
	t.Parallel()
	s := backend(t, "only", nil)
	h, err := NewHandlerServer("handler", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	require.NoError(t, err)
	p := newTestProxy(t, []*Server{s, h})
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	for i := range 2 * (DefaultFailures + 1) {
		assert.Equal(t, http.StatusBadRequest,
			rawRequest(t, ts.URL, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: web\xffsocket\r\n\r\n", false), "attempt %d", i)
	}
	for _, s := range []*Server{s, h} {
		assert.Zero(t, s.Stats().Requests, "%s is never picked", s.Name())
		assert.False(t, s.Ejected())
	}
}

// A handler server that fails on a client's broken body is not blamed for
// it either.
func TestProxyHandlerServerBrokenBodyIsTheClientsFault(t *testing.T) {
	t.Parallel()
	h, err := NewHandlerServer("handler", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "cannot read", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		infos []DoneInfo
	)
	pool, err := NewPool(h)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	b := BalancerFunc(func(r *http.Request) (PickResult, error) {
		res, err := rr.Pick(r)
		done := res.Done
		res.Done = func(info DoneInfo) {
			mu.Lock()
			infos = append(infos, info)
			mu.Unlock()
			done(info)
		}
		return res, err
	})
	p, err := NewProxy(b, quiet, WithPassiveHealth(1, time.Hour))
	require.NoError(t, err)
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	for range 2 {
		rawRequest(t, ts.URL, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", false)
	}
	mu.Lock()
	got := slices.Clone(infos)
	mu.Unlock()
	require.Len(t, got, 2)
	for _, info := range got {
		assert.ErrorIs(t, info.Err, ErrClientBody)
	}
	assert.False(t, h.Ejected())
	assert.Zero(t, h.Stats().Failures)
	assert.Equal(t, http.StatusOK, rawRequest(t, ts.URL, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false))
}

// A request whose body broke on the way is not retried on another server.
func TestProxyBrokenInboundBodyIsNotRetried(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	h := func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}
	a, b := backend(t, "a", h), backend(t, "b", h)
	p := newTestProxy(t, []*Server{a, b}, WithRetryBodyLimit(16))
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	raw := "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n" +
		strings.Repeat("10\r\n0123456789abcdef\r\n", 4) + "zz\r\n"
	assert.Equal(t, http.StatusBadRequest, rawRequest(t, ts.URL, raw, false))
	assert.EqualValues(t, 1, a.Stats().Requests+b.Stats().Requests, "one attempt")
	assert.LessOrEqual(t, hits.Load(), int32(1))
	assertNoneInFlight(t, a, b)
}
