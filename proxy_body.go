package lb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// ErrClientBody is wrapped by the error a request ends with, in
// DoneInfo.Err, when the client's request body could not be read: it was
// malformed (a bad chunk), cut short (the client stopped sending), or over
// a size limit (an [http.MaxBytesReader] around the proxy; the error then
// wraps the [*http.MaxBytesError] too). That is the client's fault, not the
// server's: [Proxy] answers 400 Bad Request (413 Request Entity Too Large
// for a size limit), does not retry, and counts nothing against the server.
var ErrClientBody = errors.New("lb: the client's request body could not be read")

// clientFault reports whether err, from DoneInfo.Err, says the request
// failed through the client's doing: it went away, or its body could not be
// read. Such an outcome teaches nothing about the server.
func clientFault(err error) bool {
	return err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ErrClientBody))
}

// clientBodyError wraps err, met reading the client's body, as the error
// the request ends with.
func clientBodyError(err error) error {
	return fmt.Errorf("%w: %w", ErrClientBody, err)
}

// clientBodyStatus is the status that answers a request whose body failed
// with err: 413 for a size limit, else 400.
func clientBodyStatus(err error) int {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// prepareBody makes the request body replayable when a retry could use it,
// else wraps it so that its errors are recorded and nothing closes it. It
// returns the request to send on: a shallow copy of r when the body had to
// be replaced (a handler must not change its request), else r itself. It
// reports false if it has answered the request itself.
//
// The client's body itself is never handed on: a transport may close the
// body of a request it could not send, and a retry must still find it.
func (p *Proxy) prepareBody(w http.ResponseWriter, r *http.Request, st *proxyState) (*http.Request, bool) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return r, true
	}
	st.hasBody = true
	// A client that expects 100 Continue waits for the server's word before
	// it sends the body: the body is not read here, or the client would be
	// told to go on before the server has seen the request.
	if p.o.retries == 0 || !idempotent(r.Method) || p.o.bodyLimit == 0 || r.ContentLength > p.o.bodyLimit || expectsContinue(r) {
		st.body.r = r.Body
		st.tracked = &st.body
		return withBody(r, st.tracked), true
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, p.o.bodyLimit+1))
	if err != nil {
		if r.Context().Err() == nil {
			p.badBody(w, r, clientBodyError(err))
		}
		return r, false
	}
	if int64(len(buf)) <= p.o.bodyLimit {
		st.replay = buf
		return withBody(r, io.NopCloser(bytes.NewReader(buf))), true
	}
	// Too large to keep: stream what was read, then the rest. Until the
	// transport reads it, it is still intact.
	st.body.r = io.MultiReader(bytes.NewReader(buf), r.Body)
	st.tracked = &st.body
	return withBody(r, st.tracked), true
}

// badBody answers a request whose body, err, could not be read before a
// server was picked: 400, or 413 over a size limit, through the error
// handler if there is one.
func (p *Proxy) badBody(w http.ResponseWriter, r *http.Request, err error) {
	code := clientBodyStatus(err)
	p.o.logger.LogAttrs(r.Context(), slog.LevelDebug, "lb: bad request body",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	if p.o.errorHandler != nil {
		p.o.errorHandler(w, r, code, err)
		return
	}
	http.Error(w, http.StatusText(code), code)
}

// expectsContinue reports whether the client of r waits for 100 Continue
// before it sends the body.
func expectsContinue(r *http.Request) bool {
	for _, v := range r.Header["Expect"] {
		for token := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(token), "100-continue") {
				return true
			}
		}
	}
	return false
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

// errReadAfterReturn is what a late read of a request body gets once the
// proxy's handler has returned.
var errReadAfterReturn = errors.New("lb: read of the request body after the handler returned")

// trackedBody is the client's body as the proxy streams it on. It records
// whether anything has read it, and the first error reading it; its Close
// does nothing (the server that received the request closes the client's
// body), and once the proxy's handler has returned it reads nothing more.
type trackedBody struct {
	r      io.Reader
	read   atomic.Bool
	err    atomic.Pointer[error] // the first read error other than EOF
	closed atomic.Bool           // the handler has returned
	// wait is the time reads have spent waiting for the client, in
	// nanoseconds: not the server's time (see proxyState.end).
	wait atomic.Int64
}

func (b *trackedBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errReadAfterReturn
	}
	b.read.Store(true)
	t := time.Now()
	n, err := b.r.Read(p)
	b.wait.Add(int64(time.Since(t)))
	if err != nil && err != io.EOF {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

// Close does nothing: a retry may still need the body.
func (b *trackedBody) Close() error { return nil }

// failure returns the error the client's body failed with, or nil.
func (b *trackedBody) failure() error {
	if e := b.err.Load(); e != nil {
		return *e
	}
	return nil
}

// bodyError returns the error reading the client's body, wrapped as
// [ErrClientBody], or nil if it has not failed.
func (st *proxyState) bodyError() error {
	if st.tracked == nil {
		return nil
	}
	if err := st.tracked.failure(); err != nil {
		return clientBodyError(err)
	}
	return nil
}

// replayBody returns a fresh reader of the kept body, and a GetBody that
// gives another (for the transport's own retries on a broken connection).
func (st *proxyState) replayBody() (io.ReadCloser, func() (io.ReadCloser, error)) {
	get := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(st.replay)), nil }
	body, _ := get()
	return body, get
}
