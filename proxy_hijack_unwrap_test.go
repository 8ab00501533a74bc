package lb

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unwrapOnly is a middleware's writer that exposes the writer it wraps only
// through Unwrap, as many do: it is not an http.Hijacker itself.
type unwrapOnly struct{ http.ResponseWriter }

func (w unwrapOnly) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// A handler server that hijacks through http.ResponseController, behind a
// middleware whose writer only unwraps, must still have the connection
// counted in flight until it closes, with status 101.
func TestProxyHandlerHijackThroughUnwrap(t *testing.T) {
	t.Parallel()
	hijacked := make(chan net.Conn, 1)
	s, err := NewHandlerServer("ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
		_ = brw.Flush()
		hijacked <- conn
	}))
	require.NoError(t, err)
	pool, err := NewPool(s)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	rb := &recordingBalancer{b: rr, ended: make(chan struct{}, 16)}
	p, err := NewProxy(rb, quiet)
	require.NoError(t, err)
	returned := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeHTTP(unwrapOnly{w}, r)
		close(returned)
	}))
	t.Cleanup(ts.Close)

	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	conn := <-hijacked
	<-returned // the proxy has returned; the connection is still open
	assert.Equal(t, int64(1), s.InFlight(), "a hijacked connection left the count while open")
	require.NoError(t, conn.Close())
	<-rb.ended
	assert.Equal(t, int64(0), s.InFlight())
	infos := rb.done()
	require.Len(t, infos, 1)
	assert.Equal(t, http.StatusSwitchingProtocols, infos[0].StatusCode)
}

// A handler server that panics after hijacking the connection has given it
// up: the proxy closes it, so that the attempt leaves the in-flight count
// instead of holding it for good.
func TestProxyHandlerPanicAfterHijack(t *testing.T) {
	t.Parallel()
	s, err := NewHandlerServer("ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _, err := http.NewResponseController(w).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		panic(http.ErrAbortHandler)
	}))
	require.NoError(t, err)
	pool, err := NewPool(s)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	rb := &recordingBalancer{b: rr, ended: make(chan struct{}, 16)}
	p, err := NewProxy(rb, quiet)
	require.NoError(t, err)
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)

	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second))) // a guard, not a measure
	_, err = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"))
	require.NoError(t, err)
	_, err = bufio.NewReader(c).ReadByte()
	require.ErrorIs(t, err, io.EOF, "the proxy did not close the connection")
	wait(t, rb.ended)
	assert.Equal(t, int64(0), s.InFlight())
}
