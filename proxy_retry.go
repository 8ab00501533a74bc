package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"sync/atomic"
)

// retryTransport sends the outbound request, and retries it on other
// servers when that is safe.
type retryTransport struct{ p *Proxy }

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(stateKey{}).(*proxyState)
	if st == nil {
		return t.p.transport.RoundTrip(req)
	}
	t.p.budget.enter()
	defer t.p.budget.leave()
	for {
		if st.replay != nil {
			req.Body, req.GetBody = st.replayBody()
		}
		resp, err := t.p.transport.RoundTrip(req)
		if err == nil {
			st.answer()
		}
		if err == nil && t.p.o.retryStatus[resp.StatusCode] && st.statusRetryable(req) && t.p.budget.spend() {
			if next, ok := st.repickAfter(req, resp); ok {
				req = next
				continue
			}
			t.p.budget.refund()
		}
		if err == nil {
			st.info.StatusCode = resp.StatusCode
			if sk := t.p.o.sticky; sk != nil && st.pinned != st.res.Server {
				resp.Header.Add("Set-Cookie", sk.cookie(st.in, st.res.Server))
			}
			if resp.StatusCode != http.StatusSwitchingProtocols { // an upgrade's body is the connection
				st.watched = watchedBody{ReadCloser: resp.Body, st: st}
				resp.Body = &st.watched
			}
			return resp, nil
		}
		st.fail(err)
		if !st.retryable(req, err) || !t.p.budget.spend() {
			return nil, err
		}
		next, ok := st.repick(req)
		if !ok {
			t.p.budget.refund()
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

// statusRetryable reports whether an attempt whose status is one of
// [WithRetryOnStatus] may be tried again on another server: the method is
// idempotent and the body, if any, was kept.
func (st *proxyState) statusRetryable(req *http.Request) bool {
	return st.tries <= st.p.o.retries && !clientGone(st.in) &&
		idempotent(req.Method) && (!st.hasBody || st.replay != nil)
}

// retryDrainLimit bounds how much of a response that is given up for a
// retry is read, so that its connection can be used again; the rest, if
// any, is dropped with the connection.
const retryDrainLimit = 64 << 10

// repickAfter picks a server not yet tried for the request whose attempt
// answered resp; if there is one, it reads resp's body (up to
// retryDrainLimit) and closes it, ends the attempt, and returns the next
// outbound request. If there is none, resp is left as it is.
func (st *proxyState) repickAfter(answered *http.Request, resp *http.Response) (*http.Request, bool) {
	res, ok := st.untried()
	if !ok {
		return nil, false
	}
	_, _ = io.CopyN(io.Discard, resp.Body, retryDrainLimit)
	_ = resp.Body.Close()
	st.info.StatusCode = resp.StatusCode
	st.end()
	return st.next(answered, res), true
}

// repick ends the failed attempt and picks a server not yet tried for the
// next one, returning its outbound request.
func (st *proxyState) repick(failed *http.Request) (*http.Request, bool) {
	st.end()
	res, ok := st.untried()
	if !ok {
		return nil, false
	}
	return st.next(failed, res), true
}

// next begins the attempt on res that follows the one of prev, and returns
// its outbound request.
func (st *proxyState) next(prev *http.Request, res PickResult) *http.Request {
	st.begin(res)
	out := prev.Clone(prev.Context())
	u := *st.in.URL
	u.RawQuery = st.query // the inbound query; target adds the server's
	out.URL = &u
	st.p.target(&httputil.ProxyRequest{In: st.in, Out: out}, res.Server)
	if st.tracked != nil {
		out.Body = io.NopCloser(st.tracked) // the transport closes bodies on errors
	}
	return out
}

// untried picks a URL server not yet tried for this request (see
// pickUntried).
func (st *proxyState) untried() (PickResult, bool) {
	return pickUntried(st.p.bal,
		func() (PickResult, error) { return st.p.bal.Pick(st.in) },
		func(s *Server) bool { return s.url != nil && !st.hasTried(s) })
}

// pickUntried picks a server that want accepts, for a retry of the HTTP
// or the TCP proxy: from pick, a few times, then, since a load-aware
// balancer may keep choosing the server that just failed (it looks idle),
// the least loaded available server of b's pool that want accepts, if b
// names a pool. Every pick it does not return is given back with Cancel. A
// pick with no server (a custom balancer's, say) ends the search, as it
// does for a request's first pick.
func pickUntried(b Balancer, pick func() (PickResult, error), want func(*Server) bool) (PickResult, bool) {
	const draws = 4
	for range draws {
		res, err := pick()
		if err != nil {
			return PickResult{}, false
		}
		if res.Server == nil || res.Done == nil {
			if res.Done != nil {
				res.Cancel()
			}
			return PickResult{}, false
		}
		if want(res.Server) {
			return res, true
		}
		res.Cancel()
	}
	pb, ok := b.(PoolBalancer)
	if !ok {
		return PickResult{}, false
	}
	pool := pb.Pool()
	if pool == nil {
		return PickResult{}, false
	}
	var best *Server
	for _, s := range pool.Servers() {
		if !want(s) || !s.Available() {
			continue
		}
		if best == nil || s.InFlight()*int64(best.weight.Load()) < best.InFlight()*int64(s.weight.Load()) {
			best = s
		}
	}
	if best == nil {
		return PickResult{}, false
	}
	// Count it first, then check that no drain of it has begun and that it
	// is still in the pool, as the balancers do: a Drain that returned
	// meanwhile must not find it in use.
	best.load.Add(loadPick)
	if !pool.recheck(best) {
		return PickResult{}, false
	}
	return best.picked(), true
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

// retryBudget bounds how many retries a Proxy makes: each request earns a
// share of a retry (the percent of [WithRetryBudget]) and each retry spends
// a whole one. The credit starts at the floor and is capped at the larger
// of the floor and that share of the requests in flight, so that what was
// earned in quiet times cannot pay for a storm. Over any stretch of time,
// retries are therefore at most the floor plus the share of the requests.
// The zero retryBudget allows every retry.
type retryBudget struct {
	on       bool
	deposit  int64 // credit a request earns, in millionths of a retry
	floor    int64 // credit at the start, and the least cap, in millionths
	credit   atomic.Int64
	inFlight atomic.Int64 // requests in the retrying transport now
}

// retryUnit is the credit a retry spends.
const retryUnit = 1_000_000

func newRetryBudget(o *proxyOptions) *retryBudget {
	b := &retryBudget{
		on:      !o.noBudget && o.retries > 0, // no retries: nothing to count
		deposit: int64(math.Round(o.budgetPercent * retryUnit / 100)),
		floor:   int64(o.budgetFloor) * retryUnit,
	}
	b.credit.Store(b.floor)
	return b
}

// enter counts a request in flight and earns its share of a retry.
func (b *retryBudget) enter() {
	if !b.on {
		return
	}
	limit := max(b.floor, b.inFlight.Add(1)*b.deposit)
	for {
		c := b.credit.Load()
		if c >= limit || b.credit.CompareAndSwap(c, min(c+b.deposit, limit)) {
			return
		}
	}
}

// leave ends what enter began.
func (b *retryBudget) leave() {
	if b.on {
		b.inFlight.Add(-1)
	}
}

// spend takes one retry from the budget, if there is one.
func (b *retryBudget) spend() bool {
	if !b.on {
		return true
	}
	for {
		c := b.credit.Load()
		if c < retryUnit {
			return false
		}
		if b.credit.CompareAndSwap(c, c-retryUnit) {
			return true
		}
	}
}

// refund gives back a retry that was spent and not made.
func (b *retryBudget) refund() {
	if b.on {
		b.credit.Add(retryUnit)
	}
}
