package lb

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// closingDialFailure fails the first request it sees as a refused dial,
// closing its body first as a transport may (Go 1.25's did), and sends the
// others on.
type closingDialFailure struct {
	failed atomic.Bool
	next   http.RoundTripper
}

func (c *closingDialFailure) RoundTrip(r *http.Request) (*http.Response, error) {
	if !c.failed.Swap(true) {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	return c.next.RoundTrip(r)
}

// A retry after a failed dial sends the whole body, even when the transport
// closed the body of the failed attempt.
func TestProxyRetryAfterDialFailureKeepsTheBody(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("0123456789", 10)
	tests := []struct {
		name, method, body string
	}{
		{"POST", "POST", "the body"},
		{"PUT over the retry-body limit", "PUT", big},
		{"PUT within the retry-body limit", "PUT", "kept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got atomic.Value
			handler := func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				got.Store(string(body))
				_, _ = io.WriteString(w, "ok")
			}
			first, second := backend(t, "first", handler), backend(t, "second", handler)
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			p := newTestProxy(t, []*Server{first, second},
				WithTransport(&closingDialFailure{next: tr}), WithRetryBodyLimit(int64(len(big)/2)))
			ts := httptest.NewServer(p)
			t.Cleanup(ts.Close)

			req, err := http.NewRequest(tt.method, ts.URL, strings.NewReader(tt.body))
			require.NoError(t, err)
			resp, err := ts.Client().Do(req)
			require.NoError(t, err)
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode, "answer %q", answer)
			assert.Equal(t, tt.body, got.Load(), "the second server got the whole body")
			assert.EqualValues(t, 1, first.Stats().Failures)
			assertNoneInFlight(t, first, second)
		})
	}
}

// The body the proxy sends on is never the client's own: closing it (as a
// transport may on a failed dial) leaves the client's body unread and open.
func TestProxyNeverHandsOnTheClientsBody(t *testing.T) {
	t.Parallel()
	p := newTestProxy(t, []*Server{backend(t, "a", nil)}, WithRetryBodyLimit(4))
	for _, method := range []string{"POST", "PUT"} { // streamed: not idempotent, and over the limit
		in := httptest.NewRequest(method, "/", strings.NewReader("the whole body"))
		client := &closeRecorder{ReadCloser: in.Body}
		in.Body = client
		st := &proxyState{p: p}
		out, ok := p.prepareBody(httptest.NewRecorder(), in, st)
		require.True(t, ok)
		require.NoError(t, out.Body.Close())
		assert.False(t, client.closed, "%s: the client's body is not closed", method)
		body, err := io.ReadAll(out.Body)
		require.NoError(t, err, method)
		assert.Equal(t, "the whole body", string(body), method)
	}
}

type closeRecorder struct {
	io.ReadCloser
	closed bool
}

func (c *closeRecorder) Close() error {
	c.closed = true
	return c.ReadCloser.Close()
}
