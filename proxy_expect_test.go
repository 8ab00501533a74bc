package lb

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// expectConn sends the head of a PUT with "Expect: 100-continue" to the
// server at url, without the body, and returns the connection and a reader
// of its answers.
func expectConn(t *testing.T, url, body string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second))) // a guard, not a measure
	_, err = io.WriteString(conn, "PUT /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: "+
		itoa(len(body))+"\r\n\r\n")
	require.NoError(t, err)
	return conn, bufio.NewReader(conn)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}

// A request with "Expect: 100-continue" reaches the server before the
// client is told to send its body: a server that refuses spares the client
// the upload, and one that accepts gets the body while the client sees one
// 100 Continue.
func TestProxyExpectContinue(t *testing.T) {
	t.Parallel()
	refusing := backend(t, "refusing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "who are you", http.StatusUnauthorized)
	})
	p := newTestProxy(t, []*Server{refusing}, WithResponseHeaderTimeout(time.Hour))
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	_, rd := expectConn(t, ts.URL, "hello")
	resp, err := http.ReadResponse(rd, nil)
	require.NoError(t, err)
	// Had the proxy read the body, its server would have sent 100 Continue
	// first.
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the refusal, with no 100 Continue before it")

	var got atomic.Value
	accepting := backend(t, "accepting", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.Store(string(body))
		_, _ = io.WriteString(w, "stored")
	})
	p = newTestProxy(t, []*Server{accepting}, WithResponseHeaderTimeout(time.Hour))
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	for i := range 20 {
		conn, rd := expectConn(t, front.URL, "hello")
		resp, err := http.ReadResponse(rd, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusContinue, resp.StatusCode, "request %d", i)
		_, err = io.WriteString(conn, "hello")
		require.NoError(t, err)
		resp, err = http.ReadResponse(rd, nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d: one 100 Continue, then the answer", i)
		assert.Equal(t, "stored", string(body))
		assert.Equal(t, "hello", got.Load())
	}
}
