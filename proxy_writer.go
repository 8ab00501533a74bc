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
