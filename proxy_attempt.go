package lb

import (
	"errors"
	"net/http"
	"runtime/debug"
	"time"
)

// Attempt describes one attempt of a request that a [Proxy] sent to a
// server: the first, or a retry on another server. An observer set with
// [WithAttemptObserver] gets one for each attempt, once its Done has been
// called. It is a plain value, which the observer may keep (its Request
// only to read); the zero Attempt describes no attempt.
type Attempt struct {
	// Server is the server the attempt went to.
	Server *Server
	// Request is the client's request, as the proxy received it. The
	// observer must not modify it.
	Request *http.Request
	// StatusCode is the status the server answered with, or 0 when no
	// answer came, as in [DoneInfo].
	StatusCode int
	// Duration is the server's time on the attempt, as in [DoneInfo].
	Duration time.Duration
	// Err is the error the attempt ended with, as in [DoneInfo]; nil on
	// success.
	Err error
	// Retry is true when the attempt is a retry of the request: another
	// server was tried before it.
	Retry bool
	// ClientGone is true when the attempt ended through the client's
	// doing: it went away (Err wraps context.Canceled), or its request
	// body could not be read (Err wraps [ErrClientBody]). Such an attempt
	// counts in [ErrorCounts].ClientGone and not as a failure.
	ClientGone bool
}

// WithAttemptObserver sets a function that the proxy calls once for each
// attempt of each request, retries included, for URL and handler servers
// alike, just after the attempt's Done: so that metrics need no wrapper
// around Done. It runs outside any lock, on the goroutine that serves the
// request (or, for a connection a handler server took over, on the one that
// closes it), and delays the proxy's answer or its next attempt while it
// runs: it should be quick, and it must be safe for concurrent use. A panic
// in it is recovered (the first one logged), and the request goes on. Without
// it, the proxy does no work for observation.
func WithAttemptObserver(f func(Attempt)) ProxyOption {
	return func(o *proxyOptions) error {
		if f == nil {
			return errors.New("WithAttemptObserver: nil function")
		}
		o.attempt = f
		return nil
	}
}

// attempted counts a retried attempt on its server and tells the attempt
// observer, if any, how the current attempt ended. end calls it after the
// attempt's Done.
func (st *proxyState) attempted() {
	retry := st.tries > 1
	if retry {
		st.res.Server.ctr.retries.Add(1)
	}
	if f := st.p.o.attempt; f != nil {
		st.p.observeAttempt(f, Attempt{
			Server:     st.res.Server,
			Request:    st.in,
			StatusCode: st.info.StatusCode,
			Duration:   st.info.Duration,
			Err:        st.info.Err,
			Retry:      retry,
			ClientGone: clientFault(st.info.Err),
		})
	}
}

// observeAttempt calls the attempt observer f with a. A panic in f is
// recovered, so that it cannot take down the process from a goroutine that
// closes a hijacked connection, and the first one is logged with its stack.
func (p *Proxy) observeAttempt(f func(Attempt), a Attempt) {
	defer func() {
		if v := recover(); v != nil && p.attemptPanicked.CompareAndSwap(false, true) {
			p.o.logger.Error("lb: the attempt observer panicked; later panics are not logged",
				"panic", v, "stack", string(debug.Stack()))
		}
	}()
	f(a)
}
