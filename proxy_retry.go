package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
)

// retryTransport sends the outbound request, and retries it on other
// servers when that is safe.
type retryTransport struct{ p *Proxy }

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(stateKey{}).(*proxyState)
	if st == nil {
		return t.p.transport.RoundTrip(req)
	}
	for {
		if st.replay != nil {
			req.Body, req.GetBody = st.replayBody()
		}
		resp, err := t.p.transport.RoundTrip(req)
		if err == nil {
			st.info.StatusCode = resp.StatusCode
			if sk := t.p.o.sticky; sk != nil && st.pinned != st.res.Server {
				resp.Header.Add("Set-Cookie", sk.cookie(st.in, st.res.Server))
			}
			if resp.StatusCode != http.StatusSwitchingProtocols { // an upgrade's body is the connection
				resp.Body = &watchedBody{ReadCloser: resp.Body, st: st}
			}
			return resp, nil
		}
		st.fail(err)
		if !st.retryable(req, err) {
			return nil, err
		}
		next, ok := st.repick(req)
		if !ok {
			return nil, err
		}
		req = next
	}
}

// watchedBody records an error that cuts a response body short.
type watchedBody struct {
	io.ReadCloser
	st *proxyState
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.st.info.Err == nil {
		b.st.fail(fmt.Errorf("lb: response body: %w", err))
	}
	return n, err
}

// retryable reports whether the attempt that failed with err may be tried
// again on another server.
func (st *proxyState) retryable(req *http.Request, err error) bool {
	if st.tries > st.p.o.retries || clientGone(st.in) {
		return false
	}
	bodyIntact := !st.hasBody || st.replay != nil || (st.tracked != nil && !st.tracked.read.Load())
	if !bodyIntact {
		return false
	}
	if neverReached(err) {
		return true // a dial that timed out never reached the server either
	}
	// A timeout after the request was sent is not retried: the server may
	// still be working on it.
	return !isTimeout(err) && idempotent(req.Method) && (!st.hasBody || st.replay != nil)
}

// repick ends the failed attempt and picks a server not yet tried for the
// next one, returning its outbound request.
func (st *proxyState) repick(failed *http.Request) (*http.Request, bool) {
	st.end()
	res, ok := st.untried()
	if !ok {
		return nil, false
	}
	st.begin(res)
	out := failed.Clone(failed.Context())
	u := *st.in.URL
	u.RawQuery = failed.URL.RawQuery // as cleaned for the first attempt
	out.URL = &u
	st.p.target(&httputil.ProxyRequest{In: st.in, Out: out}, res.Server)
	if st.tracked != nil {
		out.Body = io.NopCloser(st.tracked) // the transport closes bodies on errors
	}
	return out, true
}

// untried picks a URL server not yet tried for this request: from the
// balancer, a few times, then, since a load-aware balancer may keep
// choosing the server that just failed (it looks idle), the least loaded
// untried server of the balancer's pool, if it names one.
func (st *proxyState) untried() (PickResult, bool) {
	const draws = 4
	for range draws {
		res, err := st.p.bal.Pick(st.in)
		if err != nil {
			return PickResult{}, false
		}
		if res.Server != nil && res.Server.url != nil && !st.hasTried(res.Server) {
			return res, true
		}
		res.Done(DoneInfo{Err: ErrNotUsed})
	}
	pb, ok := st.p.bal.(PoolBalancer)
	if !ok {
		return PickResult{}, false
	}
	var best *Server
	for _, s := range pb.Pool().Servers() {
		if s.url == nil || !s.Available() || st.hasTried(s) {
			continue
		}
		if best == nil || s.InFlight()*int64(best.weight) < best.InFlight()*int64(s.weight) {
			best = s
		}
	}
	if best == nil {
		return PickResult{}, false
	}
	res := best.Acquire() // no Server if a drain of best has begun
	return res, res.Server != nil
}

// neverReached reports whether err shows that the request never reached
// the server: the connection could not be made.
func neverReached(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
