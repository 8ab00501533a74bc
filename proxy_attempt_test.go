package lb

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// attemptLog returns an attempt observer that sends each attempt on the
// returned channel, after checking that its Done has been called.
func attemptLog(t *testing.T) (ProxyOption, <-chan Attempt) {
	ch := make(chan Attempt, 16)
	return WithAttemptObserver(func(a Attempt) {
		assert.Zero(t, a.Server.InFlight(), "observed before Done")
		ch <- a
	}), ch
}

// TestProxyErrorClasses sends requests that end in each class of error
// through a real server in front of the proxy, and checks the class the
// server's statistics count them in, with the attempt each observer call
// reports.
func TestProxyErrorClasses(t *testing.T) {
	t.Parallel()
	// blocked waits for its request to end, and tells arrived it came.
	blocked := func(arrived chan<- struct{}) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if arrived != nil {
				arrived <- struct{}{}
			}
			<-r.Context().Done()
		}
	}
	type request func(t *testing.T, front string) int // returns the status, 0 if none
	get := func(t *testing.T, front string) int {
		resp, err := http.Get(front + "/x")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name       string
		server     func(t *testing.T, arrived chan<- struct{}) *Server
		opts       []ProxyOption
		send       request
		status     int
		want       ErrorCounts
		clientGone bool
	}{
		{
			name:   "transport",
			server: func(t *testing.T, _ chan<- struct{}) *Server { return deadServer(t, "dead") },
			status: http.StatusBadGateway,
			want:   ErrorCounts{Transport: 1},
		},
		{
			name: "response header timeout",
			server: func(t *testing.T, _ chan<- struct{}) *Server {
				return backend(t, "slow", blocked(nil))
			},
			opts:   []ProxyOption{WithResponseHeaderTimeout(50 * time.Millisecond)},
			status: http.StatusGatewayTimeout,
			want:   ErrorCounts{Timeout: 1},
		},
		{
			name:   "5xx",
			server: func(t *testing.T, _ chan<- struct{}) *Server { return statusServer(t, "e500", 500, nil) },
			status: 500,
			want:   ErrorCounts{Status5xx: 1},
		},
		{
			name:   "4xx",
			server: func(t *testing.T, _ chan<- struct{}) *Server { return statusServer(t, "e404", 404, nil) },
			status: 404,
			want:   ErrorCounts{Status4xx: 1},
		},
		{
			name: "handler 503",
			server: func(t *testing.T, _ chan<- struct{}) *Server {
				s, err := NewHandlerServer("h503", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(503)
				}))
				require.NoError(t, err)
				return s
			},
			status: 503,
			want:   ErrorCounts{Status5xx: 1},
		},
		{
			name: "handler aborts",
			server: func(t *testing.T, _ chan<- struct{}) *Server {
				s, err := NewHandlerServer("abort", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					panic(http.ErrAbortHandler)
				}))
				require.NoError(t, err)
				return s
			},
			send: func(t *testing.T, front string) int {
				_, err := http.Get(front + "/x")
				require.Error(t, err) // the connection was dropped
				return 0
			},
			want: ErrorCounts{Transport: 1},
		},
		{
			name: "client goes away",
			server: func(t *testing.T, arrived chan<- struct{}) *Server {
				return backend(t, "waits", blocked(arrived))
			},
			want:       ErrorCounts{ClientGone: 1},
			clientGone: true,
		},
		{
			name: "client body malformed",
			server: func(t *testing.T, _ chan<- struct{}) *Server {
				return backend(t, "reads", func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
				})
			},
			send: func(t *testing.T, front string) int {
				conn, err := net.Dial("tcp", strings.TrimPrefix(front, "http://"))
				require.NoError(t, err)
				defer conn.Close()
				_, err = io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
				require.NoError(t, err)
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				require.NoError(t, err)
				_ = resp.Body.Close()
				return resp.StatusCode
			},
			status:     http.StatusBadRequest,
			want:       ErrorCounts{ClientGone: 1},
			clientGone: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			arrived := make(chan struct{}, 1)
			s := tc.server(t, arrived)
			observe, attempts := attemptLog(t)
			p := newTestProxy(t, []*Server{s}, append([]ProxyOption{WithRetries(0), observe}, tc.opts...)...)
			front := httptest.NewServer(p)
			t.Cleanup(front.Close)
			send := tc.send
			if send == nil {
				send = get
			}
			if tc.name == "client goes away" {
				ctx, cancel := context.WithCancel(context.Background())
				req, err := http.NewRequestWithContext(ctx, "GET", front.URL+"/x", nil)
				require.NoError(t, err)
				go func() { <-arrived; cancel() }()
				_, err = http.DefaultClient.Do(req)
				require.ErrorIs(t, err, context.Canceled)
			} else {
				assert.Equal(t, tc.status, send(t, front.URL))
			}
			a := <-attempts
			assert.Equal(t, s, a.Server)
			assert.False(t, a.Retry)
			assert.Equal(t, tc.clientGone, a.ClientGone)
			assert.Equal(t, tc.want.Transport+tc.want.Timeout+tc.want.ClientGone > 0, a.Err != nil, "err %v", a.Err)
			st := s.Stats()
			assert.Equal(t, tc.want, st.Errors)
			assert.Equal(t, tc.want.Transport+tc.want.Timeout+tc.want.Status5xx, st.Failures)
			assert.Equal(t, uint64(1), st.Requests)
			assert.Zero(t, st.Retries)
		})
	}
}

// TestProxyAttemptObserverRetries checks that the observer sees every
// attempt of a retried request, in order, with Retry set on the retries,
// and that Stats.Retries counts them on the server they went to.
func TestProxyAttemptObserverRetries(t *testing.T) {
	t.Parallel()
	t.Run("dial error", func(t *testing.T) {
		t.Parallel()
		dead, ok := deadServer(t, "dead"), backend(t, "ok", nil)
		observe, attempts := attemptLog(t)
		front := httptest.NewServer(newTestProxy(t, []*Server{dead, ok}, observe))
		t.Cleanup(front.Close)
		req, err := http.NewRequest("GET", front.URL+"/x?q=1", nil)
		require.NoError(t, err)
		req.Header.Set("X-Test", "mine")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, "ok", string(body))

		first, second := <-attempts, <-attempts
		assert.Equal(t, dead, first.Server)
		assert.False(t, first.Retry)
		assert.Error(t, first.Err)
		assert.Zero(t, first.StatusCode)
		assert.Equal(t, ok, second.Server)
		assert.True(t, second.Retry)
		assert.NoError(t, second.Err)
		assert.Equal(t, 200, second.StatusCode)
		assert.Positive(t, second.Duration)
		for _, a := range []Attempt{first, second} {
			assert.Equal(t, "/x", a.Request.URL.Path)
			assert.Equal(t, "q=1", a.Request.URL.RawQuery)
			assert.Equal(t, "mine", a.Request.Header.Get("X-Test"))
			assert.False(t, a.ClientGone)
		}
		assert.Empty(t, attempts)
		assert.Zero(t, dead.Stats().Retries)
		assert.Equal(t, uint64(1), ok.Stats().Retries)
	})
	t.Run("status", func(t *testing.T) {
		t.Parallel()
		busy, ok := statusServer(t, "busy", 503, nil), statusServer(t, "ok", 200, nil)
		observe, attempts := attemptLog(t)
		front := httptest.NewServer(newTestProxy(t, []*Server{busy, ok}, observe, WithRetryOnStatus(503)))
		t.Cleanup(front.Close)
		// Round robin: each request draws busy first, then ok.
		for range 2 {
			resp, err := http.Get(front.URL)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			var got []string
			for range 2 {
				a := <-attempts
				got = append(got, fmt.Sprintf("%s %d retry=%v", a.Server.Name(), a.StatusCode, a.Retry))
			}
			assert.Equal(t, []string{"busy 503 retry=false", "ok 200 retry=true"}, got)
		}
		assert.Zero(t, busy.Stats().Retries)
		assert.Equal(t, uint64(2), ok.Stats().Retries)
		assert.Equal(t, uint64(2), ok.Stats().Requests)
		assert.Equal(t, ErrorCounts{Status5xx: 2}, busy.Stats().Errors)
	})
	t.Run("nil observer", func(t *testing.T) {
		t.Parallel()
		_, err := NewProxy(BalancerFunc(func(*http.Request) (PickResult, error) { return PickResult{}, ErrNoServer }), WithAttemptObserver(nil))
		require.ErrorContains(t, err, "WithAttemptObserver: nil function")
	})
}
