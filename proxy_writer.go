package lb

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// statusWriter records the status an in-process handler answers with.
type statusWriter struct {
	http.ResponseWriter
	st      *proxyState
	written bool
}

// The writers a handler server gets: a statusWriter that is also an
// [http.Hijacker], an [io.ReaderFrom], or both, when the client's writer
// is (a Hijacker also when it unwraps to one), so that a handler's type
// assertions, and [http.ResponseController], find what they would find
// mounted directly, and a hijack always goes through the statusWriter.
type (
	hijackWriter         struct{ statusWriter }
	readFromWriter       struct{ statusWriter }
	hijackReadFromWriter struct{ statusWriter }
)

// newStatusWriter returns the writer a handler server gets for w, and the
// statusWriter inside it.
func newStatusWriter(w http.ResponseWriter, st *proxyState) (http.ResponseWriter, *statusWriter) {
	hj := canHijack(w)
	_, rf := w.(io.ReaderFrom)
	switch {
	case hj && rf:
		x := &hijackReadFromWriter{statusWriter{ResponseWriter: w, st: st}}
		return x, &x.statusWriter
	case hj:
		x := &hijackWriter{statusWriter{ResponseWriter: w, st: st}}
		return x, &x.statusWriter
	case rf:
		x := &readFromWriter{statusWriter{ResponseWriter: w, st: st}}
		return x, &x.statusWriter
	}
	x := &statusWriter{ResponseWriter: w, st: st}
	return x, x
}

// canHijack reports whether w, or a writer it unwraps to, is an
// [http.Hijacker], as [http.ResponseController] finds one: a middleware's
// writer may expose the client's connection only through Unwrap.
func canHijack(w http.ResponseWriter) bool {
	for {
		switch x := w.(type) {
		case http.Hijacker:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return false
		}
	}
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written && code >= 200 {
		w.written = true
		w.st.answer()
		w.st.info.StatusCode = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.written = true
		w.st.answer()
		w.st.info.StatusCode = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client, if the underlying writer can.
func (w *statusWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets [http.ResponseController] reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hijack takes over the client's connection: the attempt ends with 101
// Switching Protocols, when the handler has returned and the connection is
// closed, whichever comes last.
func (w *statusWriter) hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if !w.written {
		w.written = true
		w.st.answer()
		w.st.info.StatusCode = http.StatusSwitchingProtocols
	}
	if w.st.conn != nil { // a second hijack: the first one holds the attempt
		return conn, brw, nil
	}
	c := &hijackedConn{Conn: conn, st: w.st}
	c.refs.Store(2)
	w.st.conn = c
	return c, brw, nil
}

func (w *statusWriter) readFrom(r io.Reader) (int64, error) {
	if !w.written {
		w.written = true
		w.st.answer()
		w.st.info.StatusCode = http.StatusOK
	}
	return w.ResponseWriter.(io.ReaderFrom).ReadFrom(r)
}

// Hijack takes over the client's connection.
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.hijack() }

// ReadFrom copies r to the client.
func (w *readFromWriter) ReadFrom(r io.Reader) (int64, error) { return w.readFrom(r) }

// Hijack takes over the client's connection.
func (w *hijackReadFromWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.hijack() }

// ReadFrom copies r to the client.
func (w *hijackReadFromWriter) ReadFrom(r io.Reader) (int64, error) { return w.readFrom(r) }

// hijackedConn is a client connection a handler server took over. The
// attempt stays in flight until both the handler has returned and the
// connection is closed.
type hijackedConn struct {
	net.Conn
	st    *proxyState
	refs  atomic.Int32 // the handler and the connection, while they last
	close sync.Once
}

// Close closes the connection and, if the handler has returned, ends the
// attempt.
func (c *hijackedConn) Close() error {
	err := c.Conn.Close()
	c.close.Do(func() {
		if c.release() {
			c.st.end()
		}
	})
	return err
}

// release drops one of the two holders and reports whether it was the
// last.
func (c *hijackedConn) release() bool { return c.refs.Add(-1) == 0 }

// continueWriter is the writer of a request whose client expects 100
// Continue. It drops the 100 Continue that the reverse proxy relays from
// the server: the client's own server sends one when the client's body is
// first read, which the transport does only once the server has asked for
// the body (or has not answered in time), so a relayed one would be a
// second.
type continueWriter struct{ http.ResponseWriter }

func (w continueWriter) WriteHeader(code int) {
	if code == http.StatusContinue {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets [http.ResponseController] reach the underlying writer.
func (w continueWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
