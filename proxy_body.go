package lb

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
)

// prepareBody makes the request body replayable when a retry could use it.
// It returns the request to send on: a shallow copy of r when the body had
// to be replaced (a handler must not change its request), else r itself.
// It reports false if it has answered the request itself.
func (p *Proxy) prepareBody(w http.ResponseWriter, r *http.Request, st *proxyState) (*http.Request, bool) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return r, true
	}
	st.hasBody = true
	if p.o.retries == 0 {
		return r, true
	}
	if !idempotent(r.Method) || p.o.bodyLimit == 0 || r.ContentLength > p.o.bodyLimit {
		st.tracked = &trackedBody{ReadCloser: r.Body}
		return withBody(r, st.tracked), true
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, p.o.bodyLimit+1))
	if err != nil {
		if r.Context().Err() == nil {
			var tooLarge *http.MaxBytesError
			code := http.StatusBadRequest
			if errors.As(err, &tooLarge) {
				code = http.StatusRequestEntityTooLarge
			}
			http.Error(w, http.StatusText(code), code)
		}
		return r, false
	}
	if int64(len(buf)) <= p.o.bodyLimit {
		st.replay = buf
		return withBody(r, io.NopCloser(bytes.NewReader(buf))), true
	}
	// Too large to keep: stream what was read, then the rest. Until the
	// transport reads it, it is still intact.
	st.tracked = &trackedBody{ReadCloser: readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}}
	return withBody(r, st.tracked), true
}

// withBody returns a shallow copy of r with body as its Body.
func withBody(r *http.Request, body io.ReadCloser) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	r2.Body = body
	return r2
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// trackedBody records whether anything has read the body.
type trackedBody struct {
	io.ReadCloser
	read atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.ReadCloser.Read(p)
}

// replayBody returns a fresh reader of the kept body, and a GetBody that
// gives another (for the transport's own retries on a broken connection).
func (st *proxyState) replayBody() (io.ReadCloser, func() (io.ReadCloser, error)) {
	get := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(st.replay)), nil }
	body, _ := get()
	return body, get
}

type readCloser struct {
	io.Reader
	io.Closer
}
