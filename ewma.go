package lb

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// WithDecay sets the time constant of the latency estimates of [PeakEWMA]
// and [Adaptive]: an observation made d ago weighs 1/e of one made now,
// whatever the number of requests in between, and an estimate that has not
// been refreshed for a while decays at the same pace toward half the
// neutral estimate (a running average over the servers), so that a server
// that recovers is tried again. d must be between 1 ms and
// 1 hour. The defaults are 10 s for PeakEWMA and 1 s for Adaptive. Other
// balancers reject it.
func WithDecay(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Millisecond || d > time.Hour {
			return fmt.Errorf("WithDecay: %v is not between 1ms and 1h", d)
		}
		c.decay = d
		c.set |= optDecay
		return nil
	}
}

// Estimate is a latency-aware balancer's view of one server, as
// [PeakEWMA.Estimates] and [Adaptive.Estimates] return it.
type Estimate struct {
	// Server is the server's name.
	Server string `json:"server"`
	// Latency is the balancer's estimate of the server's latency: the
	// peak-EWMA latency for PeakEWMA, and for Adaptive the latency a
	// request sent now is expected to see, at the server's current
	// requests in flight. It is the neutral estimate for a server not
	// observed yet.
	Latency time.Duration `json:"latency_ns"`
	// Failures is the balancer's estimate of the server's failure rate,
	// from 0 to 1 (Adaptive only; 0 for PeakEWMA).
	Failures float64 `json:"failures"`
	// Observed reports whether the balancer has learnt from at least one
	// request on the server.
	Observed bool `json:"observed"`
}

// An Estimator is a balancer that keeps a latency estimate per server:
// [PeakEWMA] and [Adaptive]. [StatusHandler] shows the estimates of the
// estimators it is given.
type Estimator interface {
	Estimates() []Estimate
}

// estimates is the per-server state that the latency-aware balancers learn
// in Done and read in Pick, for the pool's current snapshot.
type estimates struct {
	pool  *Pool
	table atomic.Pointer[estTable]
	// now is a coarse clock (Unix nanoseconds) that picks read rather than
	// the clock: while the ticks run (see ticks), the time read by the last
	// tick, which Dones read too; else the time read by the last Done that
	// moved it on by refEvery or more.
	now atomic.Int64
	// fed is, with the ticking clock, the time of now at which a Done last
	// fed the neutral estimate.
	fed atomic.Int64
	// ticks keeps now up to date while Dones learn, when coarse is set.
	ticks ticker
	// coarse makes Dones read now rather than the clock while the ticks
	// run, which they may while the pool has no clock of its own: the
	// time constant is coarseDecay or more.
	coarse bool
	// ref is the neutral estimate (float64 bits): a time-sampled average of
	// the servers' estimates, which new servers start from and stale ones
	// decay toward.
	ref atomic.Uint64
	// learn updates e's estimates from a Done; m is the in-flight count
	// the request met at its pick, itself included (the least of its
	// bucket; 0 unless met), and now the time.
	learn func(e *serverEst, info DoneInfo, m float64, now int64)
	// met makes picks record the in-flight count they meet.
	met bool
	// start is when the balancer was made, with its monotonic reading.
	start time.Time
	// shareMu orders the writes of serverEst.share by tables built at
	// once for different snapshots (never taken by a pick of a pool that
	// has not changed).
	shareMu sync.Mutex
}

// smallPool is the size of pool up to which Adaptive examines every
// server.
const smallPool = 4

// staleTarget is the fraction of the neutral estimate that an estimate not
// refreshed decays toward: below 1, so that a server that stopped getting
// requests because it was slow is tried again, even when the others are as
// idle as it is.
const staleTarget = 0.5

// refOutlier is the most times the neutral estimate that one observation
// counts as when it is fed to it.
const refOutlier = 64

// refEvery is how often, at most, a Done moves the coarse clock of picks
// on and feeds the neutral estimate.
const refEvery = int64(time.Millisecond)

// coarseDecay is the least time constant for which Dones read the coarse
// clock, which lags the time by about a tick, rather than the clock.
const coarseDecay = 100 * tickEvery

// estTable holds the estimates of one pool snapshot: ests[i] is that of
// st.active[i]. A server keeps its estimates from one snapshot to the next
// for as long as it stays in the pool.
type estTable struct {
	st   *poolState
	ests []*serverEst
	// meanWeight is the mean weight of st's active servers.
	meanWeight float64
}

// serverEst is what a balancer has learnt about one server, with the Done
// that teaches it, bound once so that a pick allocates nothing. Values are
// float64 bits in atomics: a Done that races another may lose its update,
// which an average shrugs off.
type serverEst struct {
	lat   atomic.Uint64 // latency estimate (Adaptive: met alone), in nanoseconds; what the neutral estimate averages
	fail  atomic.Uint64 // Adaptive: failure rate, 0 to 1
	stamp atomic.Int64  // when last updated (Unix nanoseconds); 0 if never
	picks atomic.Uint64 // picks of the server
	// extra counts the candidates the picks of the server examined beyond
	// two each (less one for a pick from a pool of one). It is kept per
	// server so that cores picking at once do not share one counter.
	extra atomic.Int64
	share atomic.Uint64 // Adaptive: the pool's mean weight over the server's
	// shareOf is the version of the snapshot share was worked out for
	// (under estimates.shareMu).
	shareOf uint64
	s       *Server
	done    func(DoneInfo)

	// Adaptive: a Done per bucket of in-flight counts (see bucketOf), so
	// that the outcome of a pick is filed under the count it met.
	doneAt *[delayBuckets]func(DoneInfo)
	_      [2*cacheLine - 80]byte
}

func f64(u *atomic.Uint64) float64       { return math.Float64frombits(u.Load()) }
func setF64(u *atomic.Uint64, v float64) { u.Store(math.Float64bits(v)) }

// current returns the table for the pool's current snapshot (or a newer
// one), building it when the membership has changed.
func (es *estimates) current() *estTable {
	for {
		st := es.pool.load()
		t := es.table.Load()
		if t != nil && t.st.version >= st.version {
			return t
		}
		if es.table.CompareAndSwap(t, es.newTable(st, t)) {
			return es.table.Load()
		}
	}
}

// newTable builds the table of st, keeping the estimates of every server
// that was in old.
func (es *estimates) newTable(st *poolState, old *estTable) *estTable {
	kept := make(map[*Server]*serverEst)
	if old != nil {
		for i, s := range old.st.active {
			kept[s] = old.ests[i]
		}
	}
	t := &estTable{st: st, ests: make([]*serverEst, len(st.active))}
	if len(st.active) > 0 {
		t.meanWeight = float64(st.total) / float64(len(st.active))
	}
	fresh := 0
	for _, s := range st.active {
		if kept[s] == nil {
			fresh++
		}
	}
	block := make([]serverEst, fresh)
	es.shareMu.Lock()
	defer es.shareMu.Unlock()
	for i, s := range st.active {
		e := kept[s]
		if e == nil {
			e = &block[0]
			block = block[1:]
			es.bind(e, s)
		}
		// Tables for two snapshots may be built at once (only one is
		// kept): the share of the newer snapshot stands.
		if e.shareOf <= st.version {
			setF64(&e.share, t.meanWeight/float64(st.weights[i]))
			e.shareOf = st.version
		}
		t.ests[i] = e
	}
	return t
}

// bind makes e the estimates of s, with their Done.
func (es *estimates) bind(e *serverEst, s *Server) {
	e.s = s
	e.done = es.doneFunc(e, 0)
	if es.met {
		e.doneAt = new([delayBuckets]func(DoneInfo))
		for b := range e.doneAt {
			e.doneAt[b] = es.doneFunc(e, bucketMid[b])
		}
	}
}

// doneFunc returns a Done of e for picks that met m requests in flight
// (0 when not recorded).
func (es *estimates) doneFunc(e *serverEst, m float64) func(DoneInfo) {
	s := e.s
	return func(info DoneInfo) {
		// A success without a duration teaches nothing, and spares the
		// clock.
		if (info.Duration > 0 || isFailure(info)) && !info.Unused() && !clientFault(info.Err) {
			es.observe(e, info, m)
		}
		s.done(info)
	}
}

// observe learns from one outcome on e, at the time of the coarse clock
// when it ticks, else at the time read now.
func (es *estimates) observe(e *serverEst, info DoneInfo, m float64) {
	coarse := es.coarse && es.pool.clock.Load() == nil
	if coarse && es.ticks.running.Load() {
		now := es.ticks.now(es)
		es.learn(e, info, m, now)
		if last := es.fed.Load(); now != last && es.fed.CompareAndSwap(last, now) {
			es.feedRef(e)
		}
		return
	}
	now := es.clock()
	es.learn(e, info, m, now)
	if last := es.now.Load(); now-last >= refEvery || now < last {
		if es.now.CompareAndSwap(last, now) {
			if coarse {
				es.ticks.burst.Store(0)
			}
			es.feedRef(e)
		}
	} else if coarse && es.ticks.burst.Add(1) >= tickBurst {
		// tickBurst Dones within a tick of the last that moved the
		// clock on: Dones come often enough for the ticks to pay.
		es.ticks.start(es)
	}
}

// clock returns the time for a Done (Unix nanoseconds): the pool's clock
// if it has one (Pool.SetClock), else the time at the balancer's making
// plus the monotonic time elapsed since, which costs half a time.Now.
func (es *estimates) clock() int64 {
	if f := es.pool.clock.Load(); f != nil {
		return (*f)().UnixNano()
	}
	return es.monotonic()
}

// monotonic returns the time at the balancer's making plus the monotonic
// time elapsed since (Unix nanoseconds).
func (es *estimates) monotonic() int64 {
	return es.start.UnixNano() + int64(time.Since(es.start))
}

// tickEvery is the period of the coarse clock that Dones read (see
// ticker).
const tickEvery = time.Millisecond

// tickBurst is how many Dones, beyond the one that moved estimates.now on,
// must come within a tick to start the ticks: a tick costs about as much
// as that many reads of the clock.
const tickBurst = 16

// idleTicks is how many ticks in a row without a Done the coarse clock
// keeps ticking before it stops.
const idleTicks = 8

// ticker keeps estimates.now within about a tick of the time while Dones
// learn, reading the clock once a tick, so that a Done does not read it
// (a read of the monotonic clock costs as much as the rest of a Pick and
// Done). While the ticks are stopped, each Done reads the clock itself;
// the ticks start once tickBurst Dones have come within a tick of the last
// one that moved estimates.now on (a tick costs about as much as that many
// reads of the clock, so they would not pay for sparser Dones, and every
// balancer has ticks of its own), and stop after idleTicks ticks without
// a Done. No goroutine runs between ticks: each is a [time.AfterFunc], so
// nothing is left running once Dones stop.
type ticker struct {
	running atomic.Bool  // ticks are scheduled
	burst   atomic.Int32 // while they are not: Dones since now last moved on
	busy    atomic.Bool  // a Done has read the time since the last tick
	mu      sync.Mutex   // orders starts and ticks
	timer   *time.Timer  // under mu; nil until the first start
	idle    int          // under mu: ticks in a row without a Done
}

// now returns the time for a Done (Unix nanoseconds) from the coarse
// clock of es, whose ticks are running (or have just stopped).
func (tk *ticker) now(es *estimates) int64 {
	if !tk.busy.Load() {
		tk.busy.Store(true)
	}
	return es.now.Load()
}

// start reads the monotonic clock into es.now and schedules the next tick,
// unless the ticks are running.
func (tk *ticker) start(es *estimates) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if tk.running.Load() {
		return
	}
	es.now.Store(es.monotonic())
	tk.idle = 0
	tk.burst.Store(0)
	if tk.timer == nil {
		tk.timer = time.AfterFunc(tickEvery, es.tick)
	} else {
		tk.timer.Reset(tickEvery)
	}
	tk.running.Store(true)
}

// tick reads the monotonic clock into es.now and schedules the next tick,
// unless no Done has come for idleTicks ticks or the pool has a clock of
// its own.
func (es *estimates) tick() {
	tk := &es.ticks
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if es.pool.clock.Load() != nil {
		// The pool has a clock of its own now, which Dones read: the
		// ticks stop, and never call it from their goroutine.
		tk.running.Store(false)
		return
	}
	es.now.Store(es.monotonic())
	if tk.busy.Swap(false) {
		tk.idle = 0
	} else if tk.idle++; tk.idle >= idleTicks {
		tk.running.Store(false)
		return
	}
	tk.timer.Reset(tickEvery)
}

// feedRef moves the neutral estimate toward e's.
func (es *estimates) feedRef(e *serverEst) {
	x := f64(&e.lat)
	if !(x > 0) {
		return
	}
	if ref := f64(&es.ref); ref > 0 {
		// An outlier (a request that took an hour, a caller's bogus
		// Duration) counts as refOutlier times the neutral estimate at
		// most: one observation at most doubles it.
		x = ref + (min(x, refOutlier*ref)-ref)/64
	}
	setF64(&es.ref, x)
}

// isFailure reports whether info is a failure of the server: an error, or a
// status of 500 or more. The caller has ruled out the client's doing.
func isFailure(info DoneInfo) bool { return info.Err != nil || info.StatusCode >= 500 }

// keep returns the weight, e^(-age/tau), that an estimate age old keeps
// against a new observation, or against the neutral value when read;
// invTau is 1/tau. Short ages, the common case, take a polynomial rather
// than math.Exp.
func keep(age int64, invTau float64) float64 {
	if age <= 0 {
		// Inlined: within a tick of the coarse clock, the common case.
		return 1
	}
	return keepAged(age, invTau)
}

// keepAged is keep for an age above 0.
func keepAged(age int64, invTau float64) float64 {
	x := float64(age) * invTau
	if x < 0.125 {
		return 1 - x + x*x/2 - x*x*x/6
	}
	if x > 40 {
		return 0
	}
	return math.Exp(-x)
}

// estimateList returns the estimates of the pool's active servers, with
// latency worked out by cost at in-flight n.
func (es *estimates) estimateList(latency func(e *serverEst, now int64) (float64, float64)) []Estimate {
	t := es.current()
	now := es.now.Load()
	out := make([]Estimate, len(t.ests))
	for i, e := range t.ests {
		lat, fail := latency(e, now)
		out[i] = Estimate{Server: e.s.name, Latency: durationOf(lat), Failures: fail, Observed: e.stamp.Load() != 0}
	}
	return out
}

// durationOf returns the duration of x nanoseconds, the longest there is
// if x is beyond it (a conversion out of range would give any value).
func durationOf(x float64) time.Duration {
	if !(x < math.MaxInt64) {
		return math.MaxInt64
	}
	return time.Duration(x)
}

// costFunc returns the cost of sending a request to e's server, of
// weight w scaled by 2^rampBits, at time now, and whether its estimates
// say it is slow against the others.
type costFunc func(e *serverEst, w int64, now int64) (cost float64, slow bool)

// pickPair is the common pick of the latency-aware balancers: two distinct
// random servers, the cheaper by cost wins, with the redraws and the
// fallback scan of [P2C] when a drawn server is unavailable. While the
// better one is slow, up to maxExtra more random servers are examined, each
// counted in the chosen server's extra.
func pickPair(es *estimates, randN func(int) int, cost costFunc, maxExtra int) (PickResult, error) {
	t := es.current()
	active := t.st.active
	n := len(active)
	// sp is filled only when a server has a flag set: building it on
	// every pick costs more than the rest of the draw.
	var sp slowPath
	switch n {
	case 0:
		return PickResult{}, ErrNoServer
	case 1:
		sp = slowPath{pool: es.pool, st: t.st, active: active}
		if _, ok := effectiveWeight(&sp, active[0]); ok {
			if res, ok := es.take(t, 0, -1); ok {
				return res, nil
			}
		}
		return PickResult{}, ErrNoServer
	}
	now := es.now.Load()
	if n <= smallPool && maxExtra > 0 {
		// As cheap as two draws: examine every server, from a random
		// one so that ties go to any.
		return cheapest(es, t, now, cost, uint64(randN(n)))
	}
	for range redraws {
		i, j := drawPair(randN, n)
		a, b := active[i], active[j]
		var wa, wb int64
		aok, bok := true, true
		if a.flags.Load()|b.flags.Load() == 0 {
			wa, wb = int64(a.weight.Load())<<rampBits, int64(b.weight.Load())<<rampBits
			aok, bok = wa > 0, wb > 0 // 0: set so since the snapshot
		} else {
			if sp.pool == nil {
				sp = slowPath{pool: es.pool, st: t.st, active: active}
			}
			wa, aok = effectiveWeight(&sp, a)
			wb, bok = effectiveWeight(&sp, b)
		}
		best, bestCost, slow, bothSlow := -1, 0.0, false, false
		switch {
		case aok && bok:
			ca, sa := cost(t.ests[i], wa, now)
			cb, sb := cost(t.ests[j], wb, now)
			bothSlow = sa && sb
			if cb < ca {
				best, bestCost, slow = j, cb, sb
			} else {
				best, bestCost, slow = i, ca, sa
			}
		case aok:
			best, bestCost, slow = i, 0, false
		case bok:
			best, bestCost, slow = j, 0, false
		default:
			continue
		}
		k := 0
		if slow && bothSlow && maxExtra > 0 && n > 2 {
			for k < maxExtra {
				c := randN(n)
				if c == i || c == j {
					continue
				}
				k++
				w := int64(active[c].weight.Load()) << rampBits
				if w == 0 {
					continue // set to 0 since the snapshot was taken
				}
				if active[c].flags.Load() != 0 {
					if sp.pool == nil {
						sp = slowPath{pool: es.pool, st: t.st, active: active}
					}
					var ok bool
					if w, ok = effectiveWeight(&sp, active[c]); !ok {
						continue
					}
				}
				cc, cs := cost(t.ests[c], w, now)
				if cc < bestCost {
					best, bestCost = c, cc
				}
				if !cs {
					break
				}
			}
		}
		if res, ok := es.take(t, best, int64(k)); ok {
			return res, nil
		}
	}
	return cheapest(es, t, now, cost, 0)
}

// cheapest returns the usable server of t with the lowest cost, examining
// them all from the start-th: the pick of a small pool, and the last
// resort of a pick whose draws found none. If a drain or a change of the
// pool takes its choice away before it is counted, it chooses again from
// the pool as it is then, up to acquireTries times in all.
func cheapest(es *estimates, t *estTable, now int64, cost costFunc, start uint64) (PickResult, error) {
	for range acquireTries {
		sp := slowPath{pool: es.pool, st: t.st, active: t.st.active}
		best, bestCost := -1, 0.0
		n := uint64(len(t.st.active))
		for k := range n {
			i := int((start + k) % n)
			s := t.st.active[i]
			w, ok := effectiveWeight(&sp, s)
			if !ok {
				continue
			}
			if c, _ := cost(t.ests[i], w, now); best < 0 || c < bestCost {
				best, bestCost = i, c
			}
		}
		if best < 0 {
			return PickResult{}, ErrNoServer
		}
		if res, ok := es.take(t, best, int64(n)-2); ok {
			return res, nil
		}
		t = es.current()
	}
	return PickResult{}, ErrNoServer
}

// take counts a request in flight on the i-th server of t and returns the
// pick, whose Done teaches its estimates; extra is the number of
// candidates the pick examined beyond two. It reports false, counting
// nothing, if a Drain of the server has begun or the server has left the
// pool since t's snapshot.
func (es *estimates) take(t *estTable, i int, extra int64) (PickResult, bool) {
	e := t.ests[i]
	s := e.s
	done := e.done
	if es.met {
		done = e.doneAt[bucketOf(s.InFlight()+1)]
	}
	if !es.pool.counted(t.st, s) && !es.pool.recheck(s) {
		return PickResult{}, false
	}
	e.picks.Add(1)
	if extra != 0 {
		e.extra.Add(extra)
	}
	return PickResult{Server: s, Done: done}, true
}

// candidateStats returns the picks made from the servers of the pool now,
// and the candidates they examined.
func (es *estimates) candidateStats() (picks, candidates uint64) {
	var extra int64
	for _, e := range es.current().ests {
		picks += e.picks.Load()
		extra += e.extra.Load()
	}
	return picks, uint64(max(0, 2*int64(picks)+extra))
}

// CandidateStats returns the number of picks made since the balancer was
// made (of the servers now in its pool) and the number of servers they
// examined: two per pick, one from a pool of one, every server when the
// draws found none available.
func (p *PeakEWMA) CandidateStats() (picks, candidates uint64) { return p.es.candidateStats() }

// PeakEWMA is the peak-EWMA balancer of Finagle and Linkerd: it keeps, per
// server, a latency estimate that jumps at once to any slower observation
// and decays toward faster ones with a time constant (10 s unless set with
// [WithDecay]), by elapsed time rather than per request. A pick draws two
// distinct random servers and takes the one of lower cost, the estimate
// times (requests in flight + 1) divided by the weight.
//
// A failure (an error, or a status of 500 or more) is observed as a latency
// of at least one second, so that a server failing fast never looks fast.
// A Done whose error is the client's doing (wrapping context.Canceled or
// [ErrClientBody]) or ends a pick given back by [PickResult.Cancel] teaches nothing. A server not observed
// yet starts at the neutral estimate, an average of the other servers', and
// an estimate not refreshed decays at the same pace toward half the neutral
// one, so that a server that recovered is tried again.
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
// reads no clock, takes no lock and allocates nothing. PeakEWMA is safe for
// concurrent use.
//
// The zero PeakEWMA is not usable: make one with NewPeakEWMA (a pick by the
// zero value finds no server).
type PeakEWMA struct {
	es     estimates
	randN  func(int) int
	costFn costFunc // p.cost, bound once
	invTau float64  // 1 / the time constant in nanoseconds
}

// peakPenalty is the least latency a failure is observed as.
const peakPenalty = float64(time.Second)

// NewPeakEWMA returns a peak-EWMA balancer over pool. [WithRand] sets the
// source of its draws and [WithDecay] the time constant of its estimates.
func NewPeakEWMA(pool *Pool, opts ...Option) (*PeakEWMA, error) {
	c, err := newConfig("NewPeakEWMA", pool, optDecay, opts)
	if err != nil {
		return nil, err
	}
	if c.decay == 0 {
		c.decay = 10 * time.Second
	}
	p := &PeakEWMA{es: estimates{pool: pool, start: time.Now(), coarse: c.decay >= coarseDecay}, randN: c.randN, invTau: 1 / float64(c.decay)}
	p.es.learn, p.costFn = p.learn, p.cost
	return p, nil
}

// Pool returns the pool the balancer picks from.
func (p *PeakEWMA) Pool() *Pool { return p.es.pool }

// Pick returns the cheaper of two distinct random servers. r is not used.
func (p *PeakEWMA) Pick(*http.Request) (PickResult, error) {
	return pickPair(&p.es, p.randN, p.costFn, 0)
}

// latency returns e's estimate at time now, decayed toward the neutral one
// if it has not been refreshed.
func (p *PeakEWMA) latency(e *serverEst, now int64) float64 {
	ref := f64(&p.es.ref)
	stamp := e.stamp.Load()
	if stamp == 0 {
		return ref
	}
	lat, stale := f64(&e.lat), ref*staleTarget
	return stale + (lat-stale)*keep(now-stamp, p.invTau)
}

// cost is e's latency times (in flight + 1), over the weight w.
func (p *PeakEWMA) cost(e *serverEst, w int64, now int64) (float64, bool) {
	// Before anything is learnt, 1 ns: the requests in flight decide.
	return max(p.latency(e, now), 1) * float64(e.s.InFlight()+1) / float64(w), false
}

// learn folds one outcome into e.
func (p *PeakEWMA) learn(e *serverEst, info DoneInfo, _ float64, now int64) {
	x := float64(info.Duration)
	if isFailure(info) {
		x = max(x, peakPenalty)
	} else if x <= 0 {
		return
	}
	if stamp := e.stamp.Load(); stamp != 0 {
		if prev := f64(&e.lat); x < prev {
			x += (prev - x) * keep(now-stamp, p.invTau)
		}
	}
	if e.lat.Load() != math.Float64bits(x) {
		setF64(&e.lat, x)
	}
	if e.stamp.Load() != now {
		e.stamp.Store(now)
	}
}

// Estimates returns the balancer's latency estimate of each server it may
// pick, in pool order.
func (p *PeakEWMA) Estimates() []Estimate {
	return p.es.estimateList(func(e *serverEst, now int64) (float64, float64) {
		return p.latency(e, now), 0
	})
}
