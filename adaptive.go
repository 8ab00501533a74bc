package lb

import (
	"math"
	"net/http"
	"time"
)

// Adaptive learns each server's speed and errors from Pick and Done and
// sends each request where it expects the shortest delay, in O(1): the
// balancer to start with when servers may not be equal.
//
// It models the delay of a request that meets m requests in flight on a
// server (itself included) as the server's speed, its delay met alone,
// times (m+3)/4: a shape between a server of one worker, whose delay grows
// by a full service time with every request ahead, and one of many, whose
// delay does not grow. Each pick records the count it meets (through the
// Done it returns, one bound per count; counts above 16 in 5 ranges), and
// each Done divides the request's latency by the shape at that count to
// learn the speed. The speed is a property of the server, not of the
// traffic it gets. A server's failure rate (errors, statuses of 500 or
// more) multiplies its expected delay by 1 + 20 × rate, so a server that
// fails fast never looks fast.
//
// Weight stands for capacity: a server's requests in flight count in
// proportion to the pool's mean weight over its own (a server of weight 2
// with 4 in flight counts as one of weight 1 with 2).
//
// A pick draws two distinct random servers (or examines all of a pool of
// 4 or fewer) and takes the one with the shorter expected delay. Speeds up
// to 1.2 times the neutral one (a running average over the servers) count
// as the neutral one, so that between servers that differ by no more than
// the noise of their estimates the requests in flight decide, as with
// [P2C]. When both servers drawn are slow (their speed as last learnt, not
// decayed, is over twice the neutral one), it examines up to 4 more random
// servers, stopping at the first that is not slow, so that a pool where
// slow servers are many still finds fast ones. Random draws keep
// independent balancers over the same servers from herding.
//
// A speed moves by 1/32 of the gap at each observation, and by more for a
// server not observed for a while: the weight of the old value is at most
// e^(-elapsed/τ), τ = 1 s unless set with [WithDecay]. A server not
// observed yet starts at the neutral speed, and a speed not refreshed
// decays toward half of it, and the failure rate toward 0, at the same
// pace, so that a server that recovered is tried again. A Done whose error
// is the client's doing (wrapping context.Canceled or [ErrClientBody]) or
// ends a pick given back by [PickResult.Cancel] teaches nothing.
//
// The balancer learns from [DoneInfo]: [Proxy] fills it; a caller that is
// not HTTP must set Duration (the time from Pick to Done) on success, and
// Err or a StatusCode of 500 or more on failure. A success without a
// Duration teaches nothing. Time is read in Done only: from the pool's
// clock at every Done if it has one ([Pool.SetClock], for tests and
// simulations); else, with a time constant of 100 ms or more and once
// more than 16 Dones have come within a millisecond, from a coarse clock
// that a timer reads from the monotonic clock once a millisecond, and
// stops reading 8 ms after the last Done (no goroutine is left running);
// else from the monotonic clock at every Done. A pick
// reads no clock, takes no lock and allocates nothing. Adaptive is safe for
// concurrent use.
//
// The zero Adaptive is not usable: make one with NewAdaptive (a pick by the
// zero value finds no server).
type Adaptive struct {
	es     estimates
	randN  func(int) int
	costFn costFunc // a.cost, bound once
	invTau float64  // 1 / the time constant in nanoseconds
}

const (
	// delayBuckets is the number of in-flight counts a pick records (see
	// bucketOf).
	delayBuckets = 21
	// adaptSlow is how many times the neutral speed a server's must be
	// for the pick to look further.
	adaptSlow = 2
	// adaptExtra is the most servers a pick examines beyond the first
	// two.
	adaptExtra = 4
	// adaptFailWeight scales the failure rate into the cost.
	adaptFailWeight = 20
	// adaptStep is the weight of a new observation in a server's speed.
	adaptStep = 1.0 / 32
	// adaptBand is how many times the neutral speed a server's may be
	// and still count as the neutral one (see Adaptive.delay).
	adaptBand = 1.2
	// adaptShape is c of shape.
	adaptShape = 3
)

// bucketMid holds the in-flight count each bucket stands for: its own
// count up to 16, then the middle of 17-24, 25-32, 33-48 and 49-64, and
// 65 for any count above 64.
var bucketMid = [delayBuckets]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20.5, 28.5, 40.5, 56.5, 65}

// bucketOf returns the bucket of in-flight count m ≥ 1.
func bucketOf(m int64) int {
	switch {
	case m <= 16:
		return int(max(m, 1)) - 1
	case m <= 24:
		return 16
	case m <= 32:
		return 17
	case m <= 48:
		return 18
	case m <= 64:
		return 19
	}
	return 20
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
	a := &Adaptive{es: estimates{pool: pool, met: true, start: time.Now(), coarse: c.decay >= coarseDecay}, randN: c.randN, invTau: 1 / float64(c.decay)}
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

// shape returns the delay of a request that meets m requests in flight
// (itself included), relative to one that meets no other: (m+c)/(1+c),
// with c = adaptShape. It lies between a server of one worker (c = 0: the
// delay grows with every request ahead) and one of many (the delay does
// not grow), and increases with m, so that between equal servers the one
// with fewer requests in flight wins, as with [P2C].
func shape(m float64) float64 { return (m + adaptShape) / (1 + adaptShape) }

// delay returns the expected delay of a request that meets m requests in
// flight on e's server (itself included), at time now, and e's failure
// rate.
func (a *Adaptive) delay(e *serverEst, m int64, now int64) (float64, float64) {
	speed, fail := a.speed(e, now)
	return speed * shape(float64(m)*f64(&e.share)), fail
}

// speed returns e's speed at time now, decayed if stale, and its failure
// rate.
func (a *Adaptive) speed(e *serverEst, now int64) (speed, fail float64) {
	ref := f64(&a.es.ref)
	speed = ref
	stamp := e.stamp.Load()
	if stamp != 0 {
		k := keep(now-stamp, a.invTau)
		if v := f64(&e.lat); v > 0 {
			stale := ref * staleTarget
			speed = stale + (v-stale)*k
		}
		fail = f64(&e.fail) * k
	}
	return speed, fail
}

// cost is e's expected delay, over the weight w, and whether e is slow.
func (a *Adaptive) cost(e *serverEst, w int64, now int64) (float64, bool) {
	// a.speed, written out: this is the hot path of a pick.
	ref, lat := f64(&a.es.ref), f64(&e.lat)
	speed, fail := ref, 0.0
	if stamp := e.stamp.Load(); stamp != 0 {
		k := keep(now-stamp, a.invTau)
		if lat > 0 {
			stale := ref * staleTarget
			speed = stale + (lat-stale)*k
		}
		fail = f64(&e.fail) * k
	}
	// Speeds up to adaptBand times the neutral one count as the neutral
	// one: between servers that differ by no more than the noise of their
	// estimates, the requests in flight decide, and a server whose
	// estimate happens to be low does not draw more than its share.
	if speed < adaptBand*ref {
		speed = ref
	} else {
		speed /= adaptBand
	}
	// Weight is capacity: the requests in flight count in proportion to
	// the pool's mean weight over the server's (w is scaled by
	// 2^rampBits, and lowered while the server slow-starts). Before
	// anything is learnt, a speed of 1 ns: the requests in flight decide.
	m := float64(e.s.InFlight()+1) * f64(&e.share)
	if full := int64(e.s.weight.Load()) << rampBits; w != full {
		m = m * float64(full) / float64(w)
	}
	d := max(speed, 1) * shape(m)
	if fail != 0 {
		d *= 1 + adaptFailWeight*fail
	}
	return d, lat > adaptSlow*ref
}

// learn folds one outcome into e; mid is the in-flight count the request
// met, as bucketMid gives it.
func (a *Adaptive) learn(e *serverEst, info DoneInfo, mid float64, now int64) {
	stamp := e.stamp.Load()
	k := 0.0
	if stamp != 0 {
		k = keep(now-stamp, a.invTau)
	}
	fail := f64(&e.fail) * k
	switch {
	case isFailure(info):
		fail += 1 - k
	case info.Duration > 0:
		speed := float64(info.Duration) / shape(mid*f64(&e.share))
		if prev := f64(&e.lat); prev > 0 {
			speed = prev + (speed-prev)*max(adaptStep, 1-k)
		}
		if e.lat.Load() != math.Float64bits(speed) {
			setF64(&e.lat, speed)
		}
	}
	// Stores only what changed: an atomic store costs as much as an add.
	if e.fail.Load() != math.Float64bits(fail) {
		setF64(&e.fail, fail)
	}
	if stamp != now {
		e.stamp.Store(now)
	}
}

// Estimates returns the balancer's estimate of each server it may pick, in
// pool order: the delay a request sent now would expect, and the failure
// rate.
func (a *Adaptive) Estimates() []Estimate {
	return a.es.estimateList(func(e *serverEst, now int64) (float64, float64) {
		return a.delay(e, e.s.InFlight()+1, now)
	})
}
