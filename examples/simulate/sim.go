package main

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/balancekit/lb"
)

// A scenario describes the servers and the traffic of one simulation.
type scenario struct {
	name, title string
	servers     []serverSpec
	// instances is the number of independent balancers (each with its own
	// view of the servers' in-flight counts) that share the traffic.
	instances int
	// burst, if positive, modulates arrivals: periods of burst seconds at
	// 1.6× the mean rate alternate with periods at 0.4×.
	burst float64
	// failure, if set, takes one server down for a while.
	failure *failure
	// chartLoad is the load its charts show, if not 80%.
	chartLoad float64
	// loads are the loads it runs at when -load is not given; nil means
	// defaultLoads.
	loads []float64
	// shift, if set, slows one server down for a while.
	shift *shift
	// subset, if set, restricts each instance to a subset of the servers.
	subset *subsetting
	// algorithms, if not nil, are the only algorithms it runs.
	algorithms []string
	// duration, if positive, caps the virtual seconds of its runs.
	duration float64
}

// subsetting restricts each of a scenario's instances to size of its
// servers: lb.SubsetOf's deterministic subsets, or random ones (each
// instance its own random draw) when random is set.
type subsetting struct {
	size   int
	random bool
}

// runs reports whether sc runs algorithm alg.
func (sc scenario) runs(alg algorithm) bool {
	return sc.algorithms == nil || slices.Contains(sc.algorithms, alg.name)
}

// defaultLoads are the loads of a scenario that does not name its own.
var defaultLoads = []float64{0.5, 0.8, 0.95}

// shift makes server factor times slower from start to end (fractions of
// the run): requests that begin service in that window take factor times
// longer on average.
type shift struct {
	server     int
	start, end float64
	factor     float64
}

// serverSpec is one simulated server: workers requests served at once, each
// taking an exponential time of mean service seconds times slowdown.
type serverSpec struct {
	workers  int
	service  float64
	slowdown float64 // 1 when normal
	weight   int
	// failFast servers answer every request with a 503 after 1 ms,
	// without queueing; no health check takes them out.
	failFast bool
}

// failFastTime is how long a failFast server takes to answer, in seconds.
const failFastTime = 0.001

// failure takes server down from start to end (fractions of the run); the
// health check notices detect seconds after each change. On recovery the
// server is cold: its service time starts warmup times longer and decays
// back with a time constant of cool seconds. slowStart, if positive, ramps
// it back in over that many seconds.
type failure struct {
	server     int
	start, end float64
	detect     float64
	warmup     float64
	cool       float64
	slowStart  float64
}

// capacity is the scenario's throughput at full load, in requests a second:
// what its servers that answer can serve, before any shift.
func (sc scenario) capacity() float64 {
	c := 0.0
	for _, s := range sc.servers {
		if !s.failFast {
			c += float64(s.workers) / (s.service * s.slowdown)
		}
	}
	return c
}

// algorithm names a balancer constructor.
type algorithm struct {
	name string
	new  func(pool *lb.Pool, rnd *rand.Rand) (lb.Balancer, error)
	// keyed balancers pick by a request key.
	keyed bool
	// oracle marks the reference policy, which the simulator itself
	// implements from the servers' true state (see oracleDelay); new is
	// nil.
	oracle bool
	// candidates is how many servers a pick examines, for balancers that
	// examine a fixed number and do not report it (see candidateReporter).
	candidates func(servers int) float64
}

// candidateReporter is implemented by balancers that count the servers
// they examine: picks made and candidates examined since construction.
type candidateReporter interface {
	CandidateStats() (picks, candidates uint64)
}

func one(int) float64     { return 1 }
func two(int) float64     { return 2 }
func every(n int) float64 { return float64(n) }

var algorithms = []algorithm{
	{name: "oracle", oracle: true, candidates: every},
	{name: "round-robin", candidates: one, new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewRoundRobin(p, lb.WithRand(r.IntN))
	}},
	{name: "weighted-rr", candidates: one, new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewWeightedRoundRobin(p, lb.WithRand(r.IntN))
	}},
	{name: "random", candidates: one, new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewRandom(p, lb.WithRand(r.IntN))
	}},
	{name: "least-conn", candidates: every, new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewLeastConn(p, lb.WithRand(r.IntN))
	}},
	{name: "p2c", candidates: two, new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewP2C(p, lb.WithRand(r.IntN))
	}},
	{name: "peak-ewma", candidates: two, new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewPeakEWMA(p, lb.WithRand(r.IntN))
	}},
	{name: "adaptive", new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewAdaptive(p, lb.WithRand(r.IntN))
	}},
	{name: "hash-bounded", keyed: true, new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewConsistentHash(p, lb.KeyHeader("X-Key"), lb.WithRand(r.IntN), lb.WithBoundedLoad(1.25))
	}},
}

// result is what one run measured.
type result struct {
	scenario, algorithm string
	load                float64
	requests            int       // arrivals
	served              int       // completed on a healthy server
	latencies           []float64 // seconds, sorted, of served requests
	picks               []int     // picks per server
	share               []float64 // fraction of picks per server
	peak                []int     // peak requests at each server (queued or in service)
	unhealthy           int       // requests sent to a server that was down
	failed              int       // requests answered with an error by a failFast server
	rejected            int       // requests with no server to pick
	// candidates is the mean number of servers examined per pick, NaN
	// when the balancer does not say.
	candidates float64
	// failShare is the share of picks made after the first second that
	// went to a failFast server.
	failShare float64
	// bins counts picks per server in binWidth intervals of the run.
	bins [][]int
	// For a shift scenario: seconds from the start of the shift to the end
	// of the first bin in which the slowed server's share is below a
	// quarter of its fair share, and from the end of the shift to the end
	// of the first bin in which it is back to at least 80% of it; NaN if
	// never. shiftShare and recoveredShare are its mean shares, as
	// fractions of the fair share, from 2 s after the shift starts to its
	// end, and from 10 s after it ends to the end of the run.
	shiftBelow, shiftBack      float64
	shiftShare, recoveredShare float64
	// instances is the number of independent balancers.
	instances int
	// connSpread and loadSpread are the max/mean over servers of the
	// instances whose pool holds each server (its connections), and of
	// the picks each got.
	connSpread, loadSpread float64
}

// spread returns the max/mean of counts.
func spread(counts []int) float64 {
	top, sum := 0, 0
	for _, c := range counts {
		top, sum = max(top, c), sum+c
	}
	if sum == 0 {
		return math.NaN()
	}
	return float64(top) * float64(len(counts)) / float64(sum)
}

// binWidth is the width, in seconds, of the intervals picks are counted in.
const binWidth = 0.5

func (r *result) percentile(p float64) float64 {
	if len(r.latencies) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(r.latencies)))) - 1
	return r.latencies[max(0, min(i, len(r.latencies)-1))]
}

func (r *result) mean() float64 {
	sum := 0.0
	for _, l := range r.latencies {
		sum += l
	}
	return sum / float64(len(r.latencies))
}

// event kinds
const (
	evArrival = iota
	evDone
	evDown     // the failing server stops
	evUp       // it comes back
	evDetect   // the health check marks it down
	evRecovery // the health check marks it up
)

type event struct {
	t    float64
	seq  uint64
	kind int
	req  *request
}

type request struct {
	arrive  float64
	server  int
	pick    lb.PickResult
	started bool
	failed  bool // answered by a failFast server
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].t != q[j].t {
		return q[i].t < q[j].t
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

var errServerDown = errors.New("server down")

// simulate runs scenario sc with algorithm alg at load (a fraction of
// capacity) for duration virtual seconds, reproducibly from seed. It drives
// the real balancers through Pick and Done, on virtual time.
func simulate(sc scenario, alg algorithm, load, duration float64, seed uint64) (*result, error) {
	rnd := rand.New(rand.NewPCG(seed, 0x5eed))
	epoch := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := 0.0
	clock := func() time.Time { return epoch.Add(time.Duration(now * float64(time.Second))) }

	n := len(sc.servers)
	instances := max(1, sc.instances)
	// Each instance has its own Server values for the same backends, so
	// it sees only its own requests in flight, as separate processes do.
	type instance struct {
		bal   lb.Balancer
		hash  *lb.ConsistentHash
		index map[*lb.Server]int
		all   []*lb.Server
		conns []int // the servers of its pool (its connections)
	}
	insts := make([]instance, instances)
	st := simState{sc: sc, busy: make([]int, n), queued: make([][]*request, n), down: make([]bool, n), recoveredAt: math.Inf(-1)}
	subsetRnd := rand.New(rand.NewPCG(seed, 0x5b5e7))
	for k := range insts {
		pool := new(lb.Pool)
		pool.SetClock(clock)
		in := instance{index: map[*lb.Server]int{}}
		for i, spec := range sc.servers {
			s, err := lb.NewServer(fmt.Sprintf("http://sim-%d.invalid", i), lb.WithName(fmt.Sprintf("s%d", i)), lb.WithWeight(max(1, spec.weight)))
			if err != nil {
				return nil, err
			}
			in.index[s] = i
			in.all = append(in.all, s)
		}
		members := in.all
		switch sub := sc.subset; {
		case sub == nil:
		case sub.random:
			members = nil
			for _, i := range subsetRnd.Perm(n)[:sub.size] {
				members = append(members, in.all[i])
			}
		default:
			var err error
			if members, err = lb.SubsetOf(in.all, k, instances, sub.size); err != nil {
				return nil, err
			}
		}
		if err := pool.Add(members...); err != nil {
			return nil, err
		}
		for _, s := range members {
			in.conns = append(in.conns, in.index[s])
		}
		var b lb.Balancer
		if alg.oracle {
			b = oracle(in.all, rand.New(rand.NewPCG(seed, uint64(k)+1)), &st)
		} else {
			var err error
			if b, err = alg.new(pool, rand.New(rand.NewPCG(seed, uint64(k)+1))); err != nil {
				return nil, err
			}
		}
		in.bal = b
		in.hash, _ = b.(*lb.ConsistentHash)
		insts[k] = in
	}

	res := &result{scenario: sc.name, algorithm: alg.name, load: load, share: make([]float64, n), peak: make([]int, n), instances: instances}
	conns := make([]int, n)
	for _, in := range insts {
		for _, i := range in.conns {
			conns[i]++
		}
	}
	res.connSpread = spread(conns)
	busy, queued, down := st.busy, st.queued, st.down
	picks := make([]int, n)
	res.bins = make([][]int, int(math.Ceil(duration/binWidth)))
	for b := range res.bins {
		res.bins[b] = make([]int, n)
	}
	failPicks, latePicks := 0, 0

	var q eventQueue
	var seq uint64
	push := func(t float64, kind int, r *request) {
		seq++
		heap.Push(&q, &event{t: t, seq: seq, kind: kind, req: r})
	}
	rate := load * sc.capacity()
	arrivalRate := func(t float64) float64 {
		if sc.burst > 0 && int(t/sc.burst)%2 == 0 {
			return rate * 1.6
		}
		if sc.burst > 0 {
			return rate * 0.4
		}
		return rate
	}
	serviceTime := func(i int) float64 {
		st.now = now
		return rnd.ExpFloat64() * st.meanService(i)
	}
	start := func(r *request) {
		r.started = true
		busy[r.server]++
		push(now+serviceTime(r.server), evDone, r)
	}

	push(rnd.ExpFloat64()/arrivalRate(0), evArrival, nil)
	if f := sc.failure; f != nil {
		push(f.start*duration, evDown, nil)
		push(f.start*duration+f.detect, evDetect, nil)
		push(f.end*duration, evUp, nil)
		push(f.end*duration+f.detect, evRecovery, nil)
	}
	if sh := sc.shift; sh != nil {
		st.shiftStart, st.shiftEnd = sh.start*duration, sh.end*duration
	}
	keyBuf := make([]string, 10_000)
	for i := range keyBuf {
		keyBuf[i] = fmt.Sprintf("user-%d", i)
	}

	for q.Len() > 0 {
		e := heap.Pop(&q).(*event)
		now = e.t
		switch e.kind {
		case evArrival:
			if now < duration {
				push(now+rnd.ExpFloat64()/arrivalRate(now), evArrival, nil)
			} else {
				continue
			}
			res.requests++
			in := insts[rnd.IntN(instances)]
			st.now = now
			var pick lb.PickResult
			var err error
			if in.hash != nil {
				pick, err = in.hash.PickKey(keyBuf[rnd.IntN(len(keyBuf))])
			} else {
				pick, err = in.bal.Pick(nil)
			}
			if err != nil {
				res.rejected++
				continue
			}
			i := in.index[pick.Server]
			picks[i]++
			res.bins[min(int(now/binWidth), len(res.bins)-1)][i]++
			if now >= 1 {
				latePicks++
				if sc.servers[i].failFast {
					failPicks++
				}
			}
			if down[i] {
				res.unhealthy++
				pick.Done(lb.DoneInfo{Err: errServerDown})
				continue
			}
			r := &request{arrive: now, server: i, pick: pick}
			if sc.servers[i].failFast {
				r.failed = true
				push(now+failFastTime, evDone, r)
				continue
			}
			if busy[i] < sc.servers[i].workers {
				start(r)
			} else {
				queued[i] = append(queued[i], r)
			}
			res.peak[i] = max(res.peak[i], busy[i]+len(queued[i]))
		case evDone:
			r := e.req
			i := r.server
			if r.failed {
				res.failed++
				r.pick.Done(lb.DoneInfo{StatusCode: 503, Duration: time.Duration(failFastTime * float64(time.Second))})
				continue
			}
			busy[i]--
			lat := now - r.arrive
			r.pick.Done(lb.DoneInfo{StatusCode: 200, Duration: time.Duration(lat * float64(time.Second))})
			res.served++
			res.latencies = append(res.latencies, lat)
			if len(queued[i]) > 0 && busy[i] < sc.servers[i].workers {
				next := queued[i][0]
				queued[i] = queued[i][1:]
				start(next)
			}
		case evDown:
			i := sc.failure.server
			down[i] = true
			// What it held is lost: its requests fail.
			for _, r := range queued[i] {
				res.unhealthy++
				r.pick.Done(lb.DoneInfo{Err: errServerDown})
			}
			queued[i] = nil
			q = slices.DeleteFunc(q, func(ev *event) bool {
				if ev.kind == evDone && ev.req.server == i {
					res.unhealthy++
					ev.req.pick.Done(lb.DoneInfo{Err: errServerDown})
					return true
				}
				return false
			})
			heap.Init(&q)
			busy[i] = 0
		case evDetect:
			for _, in := range insts {
				in.all[sc.failure.server].SetHealthy(false)
			}
		case evUp:
			down[sc.failure.server] = false
			st.recoveredAt = now
		case evRecovery:
			for _, in := range insts {
				s := in.all[sc.failure.server]
				s.SetHealthy(true)
				if w := sc.failure.slowStart; w > 0 {
					s.SlowStartAt(clock(), time.Duration(w*float64(time.Second)))
				}
			}
		}
	}
	total := 0
	for _, p := range picks {
		total += p
	}
	for i, p := range picks {
		res.share[i] = float64(p) / float64(max(1, total))
	}
	res.picks = picks
	res.loadSpread = spread(picks)
	res.failShare = float64(failPicks) / float64(max(1, latePicks))
	res.candidates = math.NaN()
	var cpicks, ccands uint64
	for _, in := range insts {
		if cr, ok := in.bal.(candidateReporter); ok {
			p, c := cr.CandidateStats()
			cpicks += p
			ccands += c
		}
	}
	switch {
	case cpicks > 0:
		res.candidates = float64(ccands) / float64(cpicks)
	case alg.candidates != nil:
		res.candidates = alg.candidates(len(insts[0].conns))
	}
	res.shiftBelow, res.shiftBack = math.NaN(), math.NaN()
	res.shiftShare, res.recoveredShare = math.NaN(), math.NaN()
	if sh := sc.shift; sh != nil {
		res.measureShift(sh.server, st.shiftStart, st.shiftEnd, duration)
	}
	slices.Sort(res.latencies)
	for _, in := range insts {
		for _, s := range in.all {
			if s.InFlight() != 0 {
				return nil, fmt.Errorf("%s/%s: %s has %d in flight at the end", sc.name, alg.name, s.Name(), s.InFlight())
			}
		}
	}
	return res, nil
}

// simState is the servers' true state, which only the oracle reads.
type simState struct {
	sc     scenario
	now    float64
	busy   []int        // requests in service, per server
	queued [][]*request // requests waiting, per server, in order
	down   []bool
	// recoveredAt is when the failing server came back; shiftStart and
	// shiftEnd bound the shift (both zero without one).
	recoveredAt          float64
	shiftStart, shiftEnd float64
}

// meanService is server i's true mean service time at st.now, in seconds.
func (st *simState) meanService(i int) float64 {
	spec := st.sc.servers[i]
	mean := spec.service * spec.slowdown
	if f := st.sc.failure; f != nil && f.server == i && st.now >= st.recoveredAt {
		mean *= 1 + (f.warmup-1)*math.Exp(-(st.now-st.recoveredAt)/f.cool)
	}
	if sh := st.sc.shift; sh != nil && sh.server == i && st.now >= st.shiftStart && st.now < st.shiftEnd {
		mean *= sh.factor
	}
	return mean
}

// expectedDelay is the expected time from now until a request sent to
// server i now would be answered, knowing the true state. A server has c
// workers serving one FIFO queue; service times are exponential of mean
// m (memoryless, so time already spent in service does not matter). With
// k requests at the server (in service or waiting): if k < c the request
// starts at once, and E = m; otherwise it starts after k-c+1 more
// completions, which come at rate c/m, so E = m + (k-c+1)·m/c. A server
// that is down or fails every request has an infinite delay.
func (st *simState) expectedDelay(i int) float64 {
	spec := st.sc.servers[i]
	if st.down[i] || spec.failFast {
		return math.Inf(1)
	}
	m := st.meanService(i)
	c := spec.workers
	k := st.busy[i] + len(st.queued[i])
	if k < c {
		return m
	}
	return m + float64(k-c+1)*m/float64(c)
}

// oracle is the reference policy: it sends each request to the server with
// the shortest expected delay (expectedDelay), from the true service rates
// and the true number of requests at every server, over all instances (so
// it is a single, centralised scheduler even when the scenario has several
// balancers), ties broken at random. It is greedy: the best choice for
// each request on its own, not a proof of the best possible tail, but it is
// what a balancer that knew everything would do, and the line to reach.
func oracle(servers []*lb.Server, rnd *rand.Rand, st *simState) lb.Balancer {
	return lb.BalancerFunc(func(*http.Request) (lb.PickResult, error) {
		best, ties := -1, 0
		bestDelay := math.Inf(1)
		for i := range servers {
			d := st.expectedDelay(i)
			switch {
			case d < bestDelay:
				best, bestDelay, ties = i, d, 1
			case d == bestDelay && best >= 0:
				ties++
				if rnd.IntN(ties) == 0 {
					best = i
				}
			}
		}
		if best < 0 {
			return lb.PickResult{}, lb.ErrNoServer
		}
		return servers[best].Acquire(), nil
	})
}

// measureShift fills the shift measurements of r (see result) for server i,
// slowed from start to end seconds of a run of duration seconds.
func (r *result) measureShift(i int, start, end, duration float64) {
	fair := 1 / float64(len(r.share))
	binShare := func(b int) (float64, bool) {
		total := 0
		for _, p := range r.bins[b] {
			total += p
		}
		if total == 0 {
			return 0, false
		}
		return float64(r.bins[b][i]) / float64(total), true
	}
	for b := range r.bins {
		lo, hi := float64(b)*binWidth, float64(b+1)*binWidth
		if lo < start || lo >= end {
			continue
		}
		if s, ok := binShare(b); ok && s < fair/4 {
			r.shiftBelow = hi - start
			break
		}
	}
	for b := range r.bins {
		lo, hi := float64(b)*binWidth, float64(b+1)*binWidth
		if lo < end {
			continue
		}
		if s, ok := binShare(b); ok && s >= 0.8*fair {
			r.shiftBack = hi - end
			break
		}
	}
	mean := func(from, to float64) float64 {
		picks, total := 0, 0
		for b, bin := range r.bins {
			if lo := float64(b) * binWidth; lo < from || lo >= to {
				continue
			}
			picks += bin[i]
			for _, p := range bin {
				total += p
			}
		}
		if total == 0 {
			return math.NaN()
		}
		return float64(picks) / float64(total) / fair
	}
	r.shiftShare = mean(start+2, end)
	r.recoveredShare = mean(end+10, duration)
}
