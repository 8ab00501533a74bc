package lb

import (
	"net/http"
	"sync/atomic"
	"time"
)

// Adaptive learns each server's speed and errors from Pick and Done and
// sends each request where it expects the shortest delay, in O(1): the
// balancer to start with when servers may not be equal.
//
// Per server it keeps time-decayed averages (time constant 1 s unless set
// with [WithDecay]) of the latency of successful requests, of the requests
// in flight those requests met, and of the failure rate. Their ratio, the
// latency per request in flight, is what a request sent now costs per
// request already there: the expected delay of a server is that ratio
// times (in flight + 1), over its weight, raised by a factor that grows
// with the failure rate (1 + 20 × rate), so a server that fails fast never
// looks fast. A pick draws two distinct random servers and takes the one
// of lower expected delay; when even the better one is slow (its latency
// per request in flight is over 4 times the neutral estimate, an average
// over the servers), it examines up to 4 more random servers, so that a
// pool where slow servers are many still finds fast ones. Random draws keep
// independent balancers over the same servers from herding.
//
// A Done whose error is the client's doing (wrapping context.Canceled or
// [ErrClientBody]) or is [ErrNotUsed] teaches nothing. A server not
// observed yet starts at the neutral estimate, and an estimate not
// refreshed decays toward it (and its failure rate toward 0) at the pace
// of the time constant, so that a server that recovered is tried again.
//
// The balancer learns from [DoneInfo]: [Proxy] fills it; a caller that is
// not HTTP must set Duration (the time from Pick to Done) on success, and
// Err or a StatusCode of 500 or more on failure. A success without a
// Duration counts toward the failure rate only. Time is read from the
// pool's clock ([Pool.SetClock]) in Done only; a pick reads no clock,
// takes no lock and allocates nothing. Adaptive is safe for concurrent use.
type Adaptive struct {
	es     estimates
	randN  func(int) int
	costFn costFunc // a.cost, bound once
	tau    int64
	extra  atomic.Uint64
}

const (
	// adaptSlow is how many times the neutral latency per request in
	// flight a server's must be for the pick to look further.
	adaptSlow = 4
	// adaptExtra is the most servers a pick examines beyond the first
	// two.
	adaptExtra = 4
	// adaptFailWeight scales the failure rate into the cost.
	adaptFailWeight = 20
)

// NewAdaptive returns an adaptive balancer over pool. [WithRand] sets the
// source of its draws and [WithDecay] the time constant of its estimates.
func NewAdaptive(pool *Pool, opts ...Option) (*Adaptive, error) {
	c, err := newConfig("NewAdaptive", pool, optDecay, opts)
	if err != nil {
		return nil, err
	}
	if c.decay == 0 {
		c.decay = time.Second
	}
	a := &Adaptive{es: estimates{pool: pool}, randN: c.randN, tau: int64(c.decay)}
	a.es.learn, a.costFn = a.learn, a.cost
	return a, nil
}

// Pool returns the pool the balancer picks from.
func (a *Adaptive) Pool() *Pool { return a.es.pool }

// Pick returns the server of lowest expected delay among those it
// examines. r is not used.
func (a *Adaptive) Pick(*http.Request) (PickResult, error) {
	return pickPair(&a.es, a.randN, a.costFn, adaptExtra, &a.extra)
}

// ExtraCandidates returns the number of servers the balancer's picks have
// examined beyond the first two of each, since it was made.
func (a *Adaptive) ExtraCandidates() uint64 { return a.extra.Load() }

// rate returns e's latency per request in flight at time now, decayed
// toward the neutral one if not refreshed, and its failure rate.
func (a *Adaptive) rate(e *serverEst, now int64) (rate, fail, ref float64) {
	ref = f64(&a.es.ref)
	stamp := e.stamp.Load()
	if stamp == 0 {
		return ref, 0, ref
	}
	k := keep(now-stamp, a.tau)
	rate = f64(&e.rate)
	if rate > 0 {
		rate = ref + (rate-ref)*k
	} else {
		rate = ref
	}
	return rate, f64(&e.fail) * k, ref
}

// cost is e's expected delay, over the weight w.
func (a *Adaptive) cost(e *serverEst, w int64, now int64) (float64, bool) {
	rate, fail, ref := a.rate(e, now)
	slow := rate > adaptSlow*ref
	if rate <= 0 {
		rate = 1
	}
	return rate * float64(e.s.InFlight()+1) / float64(w) * (1 + adaptFailWeight*fail), slow
}

// learn folds one outcome into e; n is the server's in-flight count, this
// request included.
func (a *Adaptive) learn(e *serverEst, info DoneInfo, n int64, now int64) {
	stamp := e.stamp.Load()
	k := 0.0
	if stamp != 0 {
		k = keep(now-stamp, a.tau)
	}
	fail := f64(&e.fail) * k
	switch {
	case isFailure(info):
		fail += 1 - k
	case info.Duration > 0:
		x, occ := float64(info.Duration), float64(max(n, 1))
		if prev := f64(&e.occ); prev > 0 {
			x += (f64(&e.lat) - x) * k
			occ += (prev - occ) * k
		}
		setF64(&e.lat, x)
		setF64(&e.occ, occ)
		setF64(&e.rate, x/occ)
	}
	setF64(&e.fail, fail)
	e.stamp.Store(now)
}

// Estimates returns the balancer's estimate of each server it may pick, in
// pool order: the delay a request sent now would expect, and the failure
// rate.
func (a *Adaptive) Estimates() []Estimate {
	return a.es.estimateList(func(e *serverEst, now int64) (time.Duration, float64) {
		rate, fail, _ := a.rate(e, now)
		return time.Duration(rate * float64(e.s.InFlight()+1)), fail
	})
}
