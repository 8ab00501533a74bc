package lb

import (
	"math"
	"math/bits"
	"net/http"
)

// Random picks a server at random, in proportion to its weight: uniformly
// when all weights are equal. Weighted draws use Walker's alias method,
// whose table is built once per change of the pool's membership (and shared
// by every Random over that pool), so a pick costs O(1) whatever the pool's
// size, with no lock and no allocation. The table is exact: with integer
// weights, each server's probability is exactly weight/total.
//
// When the drawn server is unavailable it draws again, a few times, then
// falls back to an exact weighted draw over the available servers
// (O(servers)). Either way, each available server is picked with probability
// weight/(sum of available weights). Random is safe for concurrent use.
//
// The zero Random is not usable: make one with NewRandom (a pick by the zero
// value finds no server).
type Random struct {
	pool  *Pool
	randN func(int) int
	seed  func() uint64
}

// NewRandom returns a weighted random balancer over pool. [WithRand] sets the
// source of its draws.
func NewRandom(pool *Pool, opts ...Option) (*Random, error) {
	c, err := newConfig("NewRandom", pool, 0, opts)
	if err != nil {
		return nil, err
	}
	return &Random{pool: pool, randN: c.randN, seed: c.seed}, nil
}

// Pool returns the pool the balancer picks from.
func (rd *Random) Pool() *Pool { return rd.pool }

// Pick returns a random available server, weighted. r is not used.
func (rd *Random) Pick(*http.Request) (PickResult, error) {
	st := rd.pool.load()
	n := len(st.active)
	if n == 0 {
		return PickResult{}, ErrNoServer
	}
	var at *aliasTable
	if !st.equal {
		at = st.aliasTable()
	}
	var sp *slowPath
	for range 1 + redraws {
		var i int
		if at == nil {
			i = rd.randN(n)
		} else {
			i = at.draw(rd.randN)
		}
		s := st.active[i]
		if s.available() {
			if rd.pool.counted(st, s) || rd.pool.recheck(s) {
				return s.picked(), nil
			}
			continue
		}
		if sp == nil {
			sp = &slowPath{pool: rd.pool, st: st, active: st.active}
			sp.rnd.init(rd.seed)
		}
		if sp.accept(s) {
			if res, ok := sp.acquire(s); ok {
				return res, nil
			}
		}
	}
	if sp == nil {
		sp = &slowPath{pool: rd.pool, st: st, active: st.active}
		sp.rnd.init(rd.seed)
	}
	return weightedAmongUsable(sp, rd.randN)
}

// aliasTable is Walker's alias method in exact integer form. Column i of n
// holds total units: the first prob[i] go to server i, the rest to server
// alias[i]. A draw picks a column and a unit uniformly; server k owns
// weight[k]·n units in all, so it is drawn with probability weight[k]/total.
type aliasTable struct {
	prob  []uint64
	alias []int32
	total uint64 // units per column: the sum of the weights
}

// aliasTable returns the snapshot's alias table, building it on first use.
func (st *poolState) aliasTable() *aliasTable {
	if at := st.alias.Load(); at != nil {
		return at
	}
	weights := make([]uint64, len(st.weights))
	for i, w := range st.weights {
		weights[i] = uint64(w)
	}
	st.alias.CompareAndSwap(nil, newAliasTable(weights))
	return st.alias.Load()
}

// newAliasTable builds the table for weights (each at least 1) by Vose's
// method, in integers.
func newAliasTable(weights []uint64) *aliasTable {
	n := uint64(len(weights))
	at := &aliasTable{prob: make([]uint64, n), alias: make([]int32, n)}
	scaled := make([]uint64, n) // units still owned by each server
	var small, large []int32
	for i, w := range weights {
		at.total += w
		scaled[i] = w * n
	}
	for i := range weights {
		if scaled[i] < at.total {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		// Column s: its own units, topped up from l.
		at.prob[s], at.alias[s] = scaled[s], l
		scaled[l] -= at.total - scaled[s]
		if scaled[l] < at.total {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What is left fills whole columns (exactly, in integers).
	for _, i := range append(small, large...) {
		at.prob[i], at.alias[i] = at.total, i
	}
	return at
}

// draw returns a random server index with probability weight/total.
func (at *aliasTable) draw(randN func(int) int) int {
	n := uint64(len(at.prob))
	var col, unit uint64
	if at.total <= math.MaxInt/n {
		x := uint64(randN(int(n * at.total)))
		col, unit = x/at.total, x%at.total
	} else {
		col, unit = uint64(randN(int(n))), randBelow(randN, at.total, math.MaxInt)
	}
	if unit < at.prob[col] {
		return int(col)
	}
	return int(at.alias[col])
}

// weightedAmongUsable draws one of the servers the slow path may pick, with
// probability proportional to its effective weight, in two passes.
func weightedAmongUsable(sp *slowPath, randN func(int) int) (PickResult, error) {
	total := int64(0)
	for _, s := range sp.active {
		if w, ok := effectiveWeight(sp, s); ok {
			total += w
		}
	}
	if total == 0 {
		return PickResult{}, ErrNoServer
	}
	x := int64(randBelow(randN, uint64(total), math.MaxInt))
	for _, s := range sp.active {
		w, ok := effectiveWeight(sp, s)
		if !ok {
			continue
		}
		if x < w {
			if res, ok := sp.acquire(s); ok {
				return res, nil
			}
			break // drained meanwhile: take the first usable one
		}
		x -= w
	}
	// Servers that turned unavailable between the passes took x past
	// the end, or the one drawn was drained meanwhile.
	return sp.scan(0)
}

// randBelow returns a random value in [0, n), n > 0, drawn with randN,
// whose argument may be at most limit (math.MaxInt, which is 2^31−1 on
// 32-bit platforms). For n above limit it combines a draw over the high
// bits with one over the low bits, which covers [0, n) but for less than
// its last 2^-30 part.
func randBelow(randN func(int) int, n, limit uint64) uint64 {
	if n <= limit {
		return uint64(randN(int(n)))
	}
	shift := uint(bits.Len64(n) - bits.Len64(limit))
	if n>>shift > limit {
		shift++
	}
	hi := uint64(randN(int(n >> shift)))
	lo := randBelow(randN, 1<<shift, limit)
	return hi<<shift | lo
}
