package lb

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingBalancer picks from one server and keeps the DoneInfo of every
// pick, sending on ended after each.
type recordingBalancer struct {
	b     Balancer
	ended chan struct{}
	mu    sync.Mutex
	infos []DoneInfo
}

func (rb *recordingBalancer) Pick(r *http.Request) (PickResult, error) {
	res, err := rb.b.Pick(r)
	if err != nil {
		return res, err
	}
	done := res.Done
	res.Done = func(info DoneInfo) {
		rb.mu.Lock()
		rb.infos = append(rb.infos, info)
		rb.mu.Unlock()
		done(info)
		rb.ended <- struct{}{}
	}
	return res, nil
}

func (rb *recordingBalancer) done() []DoneInfo {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return append([]DoneInfo(nil), rb.infos...)
}

func newRecordingProxy(t *testing.T, s *Server) (*recordingBalancer, string) {
	t.Helper()
	pool, err := NewPool(s)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	rb := &recordingBalancer{b: rr, ended: make(chan struct{}, 16)}
	p, err := NewProxy(rb, quiet)
	require.NoError(t, err)
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	return rb, ts.URL
}

// upgradeEcho is a WebSocket-like handler that asserts its writer is an
// http.Hijacker, as many do, and echoes lines; if detach is set it serves
// the connection from a goroutine of its own and returns at once.
func upgradeEcho(detach bool, finished chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "not a hijacker", http.StatusInternalServerError)
			return
		}
		conn, brw, err := hj.Hijack()
		if err != nil {
			return
		}
		serve := func() {
			defer func() { finished <- struct{}{} }()
			defer conn.Close()
			fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			for {
				line, err := brw.ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprint(brw, "echo "+line)
				brw.Flush()
			}
		}
		if detach {
			go serve()
			return
		}
		serve()
	}
}

// A handler server can hijack the connection, as it could mounted
// directly: the attempt ends with 101, and counts as in flight until the
// connection closes.
func TestProxyHandlerServerHijacks(t *testing.T) {
	t.Parallel()
	for _, detach := range []bool{false, true} {
		t.Run(fmt.Sprintf("detached %v", detach), func(t *testing.T) {
			t.Parallel()
			finished := make(chan struct{}, 1)
			s, err := NewHandlerServer("ws", upgradeEcho(detach, finished))
			require.NoError(t, err)
			rb, url := newRecordingProxy(t, s)

			conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second))) // a guard, not a measure
			fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			rd := bufio.NewReader(conn)
			resp, err := http.ReadResponse(rd, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
			fmt.Fprint(conn, "hello\n")
			line, err := rd.ReadString('\n')
			require.NoError(t, err)
			assert.Equal(t, "echo hello\n", line)
			assert.EqualValues(t, 1, s.InFlight(), "an open hijacked connection is in flight")

			require.NoError(t, conn.Close())
			wait(t, finished)
			wait(t, rb.ended)
			assert.Zero(t, s.InFlight())
			infos := rb.done()
			require.Len(t, infos, 1)
			assert.Equal(t, http.StatusSwitchingProtocols, infos[0].StatusCode)
			assert.NoError(t, infos[0].Err)
		})
	}
}

// A handler server's writer is an io.ReaderFrom when the client's is.
func TestProxyHandlerServerReadFrom(t *testing.T) {
	t.Parallel()
	s, err := NewHandlerServer("copy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rf, ok := w.(io.ReaderFrom)
		if !ok {
			http.Error(w, "not a ReaderFrom", http.StatusInternalServerError)
			return
		}
		_, _ = rf.ReadFrom(strings.NewReader("copied"))
	}))
	require.NoError(t, err)
	rb, url := newRecordingProxy(t, s)
	resp, err := http.Get(url)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "copied", string(body))
	infos := rb.done()
	require.Len(t, infos, 1)
	assert.Equal(t, http.StatusOK, infos[0].StatusCode)

	// And is not one when the client's writer is not.
	p, err := NewProxy(rb, quiet)
	require.NoError(t, err)
	var plain struct{ http.ResponseWriter }
	plain.ResponseWriter = httptest.NewRecorder()
	p.ServeHTTP(plain, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, http.StatusInternalServerError, plain.ResponseWriter.(*httptest.ResponseRecorder).Code)
}
