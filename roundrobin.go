package lb

import (
	"net/http"
	"slices"
	"sync/atomic"
)

// redraws is how many more positions a round robin or random pick tries when
// the one it landed on is unavailable, before it falls back to scanning the
// pool. Redrawing keeps the shares of the healthy servers fair: a plain scan
// would hand every pick of a down server to the server after it.
const redraws = 16

// RoundRobin picks the servers of a pool in turn, one after another, and
// ignores their weights (except that weight 0 servers are never picked); see
// [WeightedRoundRobin] for the weighted order.
//
// Unhealthy and draining servers are skipped: the pick moves on to the next
// position, so the remaining servers share their turns evenly. A pick is one
// atomic add on a 64-bit counter and allocates nothing. RoundRobin is safe
// for concurrent use.
//
// The zero RoundRobin is not usable: make one with NewRoundRobin (a pick
// by the zero value finds no server).
type RoundRobin struct {
	pool *Pool
	next paddedCounter
}

// paddedCounter is an atomic counter alone on its cache line: it is written
// by every pick, and must not slow down reads of the fields beside it.
type paddedCounter struct {
	_ [cacheLine]byte
	atomic.Uint64
	_ [cacheLine - 8]byte
}

// NewRoundRobin returns a round-robin balancer over pool. It starts at a
// random position unless [WithRotationStart] fixes it; [WithRand] sets the source of
// that position.
func NewRoundRobin(pool *Pool, opts ...Option) (*RoundRobin, error) {
	c, err := newConfig("NewRoundRobin", pool, optStart, opts)
	if err != nil {
		return nil, err
	}
	rr := &RoundRobin{pool: pool}
	rr.next.Store(c.start)
	return rr, nil
}

// Pool returns the pool the balancer picks from.
func (rr *RoundRobin) Pool() *Pool { return rr.pool }

// Pick returns the next available server in turn. r is not used.
func (rr *RoundRobin) Pick(*http.Request) (PickResult, error) {
	st := rr.pool.load()
	servers := st.active
	n := uint64(len(servers))
	if n == 0 {
		return PickResult{}, ErrNoServer
	}
	i := rr.next.Add(1) - 1
	if s := servers[i%n]; s.available() && (rr.pool.counted(st, s) || rr.pool.recheck(s)) {
		return s.picked(), nil
	}
	return rotate(rr.pool, st, nil, &rr.next.Uint64, i)
}

// rotate is the slow path of the round-robin picks, once the server at
// position i of the order (order, or servers itself when order is nil) was
// not plainly available: it tries that server again on the slow path (it
// may be slow-starting, or the pool in panic mode), then the next
// positions, then scans the pool.
func rotate(pool *Pool, st *poolState, order []int32, next *atomic.Uint64, i uint64) (PickResult, error) {
	servers := st.active
	sp := slowPath{pool: pool, st: st, active: servers}
	sp.rnd.state = i // coins for ramps, reproducible from the position
	at := func(i uint64) *Server {
		if order == nil {
			return servers[i%uint64(len(servers))]
		}
		return servers[order[i%uint64(len(order))]]
	}
	if s := at(i); sp.accept(s) {
		if res, ok := sp.acquire(s); ok {
			return res, nil
		}
	}
	lap := uint64(len(servers))
	if order != nil {
		lap = uint64(len(order))
	}
	for range min(lap-1, redraws) {
		i = next.Add(1) - 1
		if s := at(i); sp.accept(s) {
			if res, ok := sp.acquire(s); ok {
				return res, nil
			}
		}
	}
	return sp.scan(next.Load())
}

// WeightedRoundRobin picks servers in proportion to their weights, in the
// smooth interleaved order of nginx's weighted round robin: weights a=5,
// b=1, c=1 give the lap a a b a c a a, never five a's in a row.
//
// The order is computed once per change of the pool's membership (and
// shared by every WeightedRoundRobin over that pool), so a pick is one atomic
// add and a table lookup, with no lock and no allocation. When all weights
// are equal it is plain round robin. Weights are exact as long as their sum,
// divided by their greatest common divisor, is at most 65,536 (or 4 times
// the number of servers, if that is more); beyond that they are scaled down
// in proportion to fit, and a server keeps at least one turn per lap.
//
// With every server available, the order is smooth within a proven bound:
// in any k consecutive picks, a server of weight w out of a total W, among
// n servers (weights as used, after any scaling), is picked k·w/W times
// give or take at most H_n − 1/n, where
// H_n = 1 + 1/2 + … + 1/n (under 2.83 for 10 servers, 4.48 for 50).
//
// Unhealthy and draining servers are skipped: their turns go to the next
// positions of the order. WeightedRoundRobin is safe for concurrent use.
//
// The zero WeightedRoundRobin is not usable: make one with
// NewWeightedRoundRobin (a pick by the zero value finds no server).
type WeightedRoundRobin struct {
	pool *Pool
	next paddedCounter
}

// NewWeightedRoundRobin returns a smooth weighted round-robin balancer over
// pool. It starts at a random position of its order unless [WithRotationStart] fixes
// it; [WithRand] sets the source of that position.
func NewWeightedRoundRobin(pool *Pool, opts ...Option) (*WeightedRoundRobin, error) {
	c, err := newConfig("NewWeightedRoundRobin", pool, optStart, opts)
	if err != nil {
		return nil, err
	}
	w := &WeightedRoundRobin{pool: pool}
	w.next.Store(c.start)
	return w, nil
}

// Pool returns the pool the balancer picks from.
func (w *WeightedRoundRobin) Pool() *Pool { return w.pool }

// Pick returns the server at the next position of the weighted order,
// skipping unavailable ones. r is not used.
func (w *WeightedRoundRobin) Pick(*http.Request) (PickResult, error) {
	st := w.pool.load()
	servers := st.active
	if len(servers) == 0 {
		return PickResult{}, ErrNoServer
	}
	var order []int32
	if !st.equal {
		order = st.smoothOrder()
	}
	i := w.next.Add(1) - 1
	var s *Server
	if order == nil {
		s = servers[i%uint64(len(servers))]
	} else {
		s = servers[order[i%uint64(len(order))]]
	}
	if s.available() && (w.pool.counted(st, s) || w.pool.recheck(s)) {
		return s.picked(), nil
	}
	return rotate(w.pool, st, order, &w.next.Uint64, i)
}

// smoothOrder returns the snapshot's weighted order, building it on first
// use. Concurrent first uses may each build it; they build the same order
// and one of them is kept.
func (st *poolState) smoothOrder() []int32 {
	if p := st.smooth.Load(); p != nil {
		return *p
	}
	order := smoothOrder(st.weights)
	st.smooth.CompareAndSwap(nil, &order)
	return *st.smooth.Load()
}

// maxLap bounds the length of a weighted round-robin lap (see
// WeightedRoundRobin).
const maxLap = 1 << 16

// smoothOrder returns one lap of nginx's smooth weighted round robin over
// weights (each at least 1), after dividing them by their greatest common
// divisor: a sequence of indexes into weights in which index i appears
// weights[i]/gcd times.
//
// nginx's algorithm, at each step, adds every weight to its server's
// current value, picks the first server with the largest current value and
// subtracts the total weight from it. Done naively a lap costs
// O(total·servers). Servers of equal weight, though, are always picked in
// index order, one after another; so it is enough to compare one candidate
// per distinct weight, which makes a lap O(total·distinct weights) and gives
// exactly nginx's sequence.
//
// The bound the order keeps: let p_j = w_j/W and let the lag of server j
// after t picks be L_j = t·p_j − (its picks so far), nginx's current weight
// divided by W. The lags sum to 0. A lag falls only when its server is
// picked, from the largest value before the pick, which is at least the
// mean 1/n, to that value minus 1: so every lag stays at least 1/n − 1.
// And the k largest lags sum to at most k·(H_n − H_k), by induction on t:
// adding the p_j raises any k of them by at most 1; a set of k lags that
// holds the picked server then loses 1; one that does not, with the picked
// server added, is a set of k+1 that summed to at most
// (k+1)·(H_n − H_{k+1}) + 1 before the pick and whose largest member was
// picked, so without it at most k/(k+1) of that is left, k·(H_n − H_k).
// Hence every lag is at most H_n − 1, and a window of k picks from t to
// t+k holds k·p_j + L_j(t) − L_j(t+k) picks of j: k·p_j ± (H_n − 1/n).
// The laps repeat (the lags are all 0 again after W picks), so windows
// across laps obey it too. The lag bound is reached for two servers of
// equal weight; ⌈k·p_j⌉ + 1 is not a bound on window counts (weights
// 1 1 1 1 49 1 37 37 37 1 exceed it).
func smoothOrder(weights []int) []int32 {
	if len(weights) == 0 {
		return nil
	}
	weights = fitLap(weights)
	type group struct {
		weight  int64
		members []int32 // indexes into weights, ascending
		picks   int64   // how many times the group was picked
	}
	var groups []*group
	byWeight := make(map[int]*group)
	var total int64
	for i, w := range weights {
		g := byWeight[w]
		if g == nil {
			g = &group{weight: int64(w)}
			byWeight[w] = g
			groups = append(groups, g)
		}
		g.members = append(g.members, int32(i))
		total += int64(w)
	}
	order := make([]int32, 0, total)
	for t := int64(1); t <= total; t++ {
		var best *group
		var bestCur int64
		var bestIdx int32
		for _, g := range groups {
			size := int64(len(g.members))
			// The group's candidate is its member with the fewest picks,
			// the lowest index among those; its current value is
			// t·weight − total·(its picks).
			idx := g.members[g.picks%size]
			cur := t*g.weight - total*(g.picks/size)
			if best == nil || cur > bestCur || (cur == bestCur && idx < bestIdx) {
				best, bestCur, bestIdx = g, cur, idx
			}
		}
		best.picks++
		order = append(order, bestIdx)
	}
	return order
}

// fitLap divides weights by their greatest common divisor and, while their
// sum is above the lap limit, scales them down in proportion (each stays at
// least 1). It returns a new slice.
func fitLap(weights []int) []int {
	out := slices.Clone(weights)
	limit := max(maxLap, 4*len(weights))
	for {
		// total is an int64: the sum of many weights passes 2^31.
		g, total := 0, int64(0)
		for _, w := range out {
			g = gcd(g, w)
		}
		for i := range out {
			out[i] /= g
			total += int64(out[i])
		}
		if total <= int64(limit) {
			return out
		}
		// Each round lowers the total: every weight above 1 shrinks by
		// at least one.
		for i, w := range out {
			out[i] = max(1, int(int64(w)*int64(limit)/total))
		}
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
