package lb

import (
	"net/http"
	"time"
)

// Adaptive learns each server's speed and errors from Pick and Done and
// sends each request where it expects the shortest delay, in O(1): the
// balancer to start with when servers may not be equal.
//
// Per server it learns the expected delay of a request as a function of
// the requests in flight it meets: each pick records the count it meets,
// each Done adds the request's latency to a running average for that count
// (counts above 8 share buckets, 9-12, 13-16, 17-24 and 25 up). A count
// never met is estimated from the nearest lower one, in proportion to the
// count; a server never observed starts from a neutral estimate (the
// servers' typical latency, times the count). This table is a property of
// the server, not of the traffic it gets, so equal servers learn equal
// tables and the balancer then behaves as [P2C]; a slow server's delays
// are high at every count. A server's failure rate (errors, statuses of
// 500 or more) multiplies its expected delay by 1 + 20 × rate, so a server
// that fails fast never looks fast.
//
// A pick draws two distinct random servers and takes the one with the
// shorter expected delay, divided by its weight. When even the better one
// is slow (its delay with nothing in flight over twice the neutral
// estimate), it examines up to 4 more random servers, so that a pool where
// slow servers are many still finds fast ones. Random draws keep
// independent balancers over the same servers from herding.
//
// Averages move by a sixteenth of the gap at each observation, and by more
// for a server not observed for a while: the weight of the old value is
// e^(-elapsed/τ) at most, τ = 1 s unless set with [WithDecay]. An estimate
// not refreshed decays toward the neutral one, and the failure rate toward
// 0, at the same pace, so that a server that recovered is tried again. A
// Done whose error is the client's doing (wrapping context.Canceled or
// [ErrClientBody]) or is [ErrNotUsed] teaches nothing.
//
// The balancer learns from [DoneInfo]: [Proxy] fills it; a caller that is
// not HTTP must set Duration (the time from Pick to Done) on success, and
// Err or a StatusCode of 500 or more on failure. A success without a
// Duration only lowers the failure rate. Time is read from the pool's
// clock ([Pool.SetClock]) in Done only; a pick reads no clock, takes no
// lock and allocates nothing. Adaptive is safe for concurrent use.
type Adaptive struct {
	es     estimates
	randN  func(int) int
	costFn costFunc // a.cost, bound once
	tau    int64
}

const (
	// delayBuckets is the number of in-flight counts Adaptive learns a
	// delay for (see bucketOf).
	delayBuckets = 12
	// ringSize is the number of picks whose in-flight counts a server
	// remembers until their Done.
	ringSize = 16
	// adaptSlow is how many times the neutral delay a server's must be
	// for the pick to look further.
	adaptSlow = 2
	// adaptExtra is the most servers a pick examines beyond the first
	// two.
	adaptExtra = 4
	// adaptFailWeight scales the failure rate into the cost.
	adaptFailWeight = 20
	// adaptStep is the weight of a new observation in an average.
	adaptStep = 1.0 / 16
)

// bucketLow holds the least in-flight count of each bucket.
var bucketLow = [delayBuckets]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17, 25}

// bucketOf returns the bucket of in-flight count m ≥ 1.
func bucketOf(m int64) int {
	switch {
	case m <= 8:
		return int(max(m, 1)) - 1
	case m <= 12:
		return 8
	case m <= 16:
		return 9
	case m <= 24:
		return 10
	}
	return 11
}

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
	a := &Adaptive{es: estimates{pool: pool, met: true}, randN: c.randN, tau: int64(c.decay)}
	a.es.learn, a.costFn = a.learn, a.cost
	return a, nil
}

// Pool returns the pool the balancer picks from.
func (a *Adaptive) Pool() *Pool { return a.es.pool }

// Pick returns the server of shortest expected delay among those it
// examines. r is not used.
func (a *Adaptive) Pick(*http.Request) (PickResult, error) {
	return pickPair(&a.es, a.randN, a.costFn, adaptExtra)
}

// CandidateStats returns the number of picks made since the balancer was
// made (of the servers now in its pool) and the number of servers they
// examined: two per pick, more when the first two were slow, one from a
// pool of one, every server when the draws found none available.
func (a *Adaptive) CandidateStats() (picks, candidates uint64) { return a.es.candidateStats() }

// delay returns the expected delay of a request that meets m requests in
// flight on e's server (itself included), at time now, with the neutral
// delay per request ref, and e's failure rate.
func (a *Adaptive) delay(e *serverEst, m int64, now int64) (d, fail float64) {
	ref := f64(&a.es.ref)
	neutral := ref * float64(m)
	stamp := e.stamp.Load()
	if stamp == 0 {
		return neutral, 0
	}
	d = neutral
	for b := bucketOf(m); b >= 0; b-- {
		if v := f64(&e.delay[b]); v > 0 {
			if low := bucketLow[b]; m > low {
				v *= float64(m) / float64(low)
			}
			d = v
			break
		}
	}
	k := keep(now-stamp, a.tau)
	return neutral + (d-neutral)*k, f64(&e.fail) * k
}

// cost is e's expected delay, over the weight w, and whether e is slow.
func (a *Adaptive) cost(e *serverEst, w int64, now int64) (float64, bool) {
	d, fail := a.delay(e, e.s.InFlight()+1, now)
	slow := false
	if d1 := f64(&e.delay[0]); d1 > 0 {
		slow = d1 > adaptSlow*f64(&a.es.ref)
	}
	return max(d, 1) / float64(w) * (1 + adaptFailWeight*fail), slow
}

// learn folds one outcome into e; m is the in-flight count the request met.
func (a *Adaptive) learn(e *serverEst, info DoneInfo, m int64, now int64) {
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
		step := max(adaptStep, 1-k)
		x := float64(info.Duration)
		b := bucketOf(m)
		if prev := f64(&e.delay[b]); prev > 0 {
			x = prev + (x-prev)*step
		}
		setF64(&e.delay[b], x)
		// The neutral estimate averages the delay per request met.
		setF64(&e.rate, x/float64(max(m, 1)))
	}
	setF64(&e.fail, fail)
	e.stamp.Store(now)
}

// Estimates returns the balancer's estimate of each server it may pick, in
// pool order: the delay a request sent now would expect, and the failure
// rate.
func (a *Adaptive) Estimates() []Estimate {
	return a.es.estimateList(func(e *serverEst, now int64) (time.Duration, float64) {
		d, fail := a.delay(e, e.s.InFlight()+1, now)
		return time.Duration(d), fail
	})
}
