package main

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
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
}

// serverSpec is one simulated server: workers requests served at once, each
// taking an exponential time of mean service seconds times slowdown.
type serverSpec struct {
	workers  int
	service  float64
	slowdown float64 // 1 when normal
	weight   int
}

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

// capacity is the scenario's throughput at full load, in requests a second.
func (sc scenario) capacity() float64 {
	c := 0.0
	for _, s := range sc.servers {
		c += float64(s.workers) / (s.service * s.slowdown)
	}
	return c
}

// algorithm names a balancer constructor.
type algorithm struct {
	name string
	new  func(pool *lb.Pool, rnd *rand.Rand) (lb.Balancer, error)
	// keyed balancers pick by a request key.
	keyed bool
}

var algorithms = []algorithm{
	{name: "round-robin", new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewRoundRobin(p, lb.WithRand(r.IntN))
	}},
	{name: "weighted-rr", new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewWeightedRoundRobin(p, lb.WithRand(r.IntN))
	}},
	{name: "random", new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewRandom(p, lb.WithRand(r.IntN))
	}},
	{name: "least-conn", new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewLeastConn(p, lb.WithRand(r.IntN))
	}},
	{name: "p2c", new: func(p *lb.Pool, r *rand.Rand) (lb.Balancer, error) {
		return lb.NewP2C(p, lb.WithRand(r.IntN))
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
	rejected            int       // requests with no server to pick
}

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
	}
	insts := make([]instance, instances)
	for k := range insts {
		pool := new(lb.Pool)
		pool.SetClock(clock)
		in := instance{index: map[*lb.Server]int{}}
		for i, spec := range sc.servers {
			s, err := lb.NewServer(fmt.Sprintf("http://sim-%d.invalid", i), lb.WithName(fmt.Sprintf("s%d", i)), lb.WithWeight(max(1, spec.weight)))
			if err != nil {
				return nil, err
			}
			if err := pool.Add(s); err != nil {
				return nil, err
			}
			in.index[s] = i
			in.all = append(in.all, s)
		}
		b, err := alg.new(pool, rand.New(rand.NewPCG(seed, uint64(k)+1)))
		if err != nil {
			return nil, err
		}
		in.bal = b
		in.hash, _ = b.(*lb.ConsistentHash)
		insts[k] = in
	}

	res := &result{scenario: sc.name, algorithm: alg.name, load: load, share: make([]float64, n), peak: make([]int, n)}
	busy := make([]int, n)
	queued := make([][]*request, n)
	picks := make([]int, n)
	down := make([]bool, n)
	recoveredAt := math.Inf(-1)

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
		spec := sc.servers[i]
		mean := spec.service * spec.slowdown
		if f := sc.failure; f != nil && f.server == i && now >= recoveredAt {
			mean *= 1 + (f.warmup-1)*math.Exp(-(now-recoveredAt)/f.cool)
		}
		return rnd.ExpFloat64() * mean
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
			if down[i] {
				res.unhealthy++
				pick.Done(lb.DoneInfo{Err: errServerDown})
				continue
			}
			r := &request{arrive: now, server: i, pick: pick}
			if busy[i] < sc.servers[i].workers {
				start(r)
			} else {
				queued[i] = append(queued[i], r)
			}
			res.peak[i] = max(res.peak[i], busy[i]+len(queued[i]))
		case evDone:
			r := e.req
			i := r.server
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
			recoveredAt = now
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
