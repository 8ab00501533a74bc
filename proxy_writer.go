package lb

import (
	"net/http"
)

// statusWriter records the status an in-process handler answers with.
type statusWriter struct {
	http.ResponseWriter
	st      *proxyState
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written && code >= 200 {
		w.written = true
		w.st.info.StatusCode = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.written = true
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
