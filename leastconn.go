package lb

import (
	"math/bits"
	"net/http"
)

// LeastConn picks the server with the fewest requests in flight relative to
// its weight. It counts requests in flight (picked and not yet done), not TCP
// connections.
//
// Precisely, it picks the server whose load after taking the request,
// (in-flight+1)/weight, would be lowest, comparing by cross-multiplication so
// no division is needed: an idle server of weight 3 wins over an idle one of
// weight 1. Ties are broken uniformly at random (reservoir sampling), so a
// cold start does not pile onto the first server.
//
// A pick scans the whole pool: O(servers), with no lock and no allocation.
// Choosing and counting are separate steps, so two concurrent picks may both
// choose the same server; the count is a heuristic, not a reservation. For
// large pools, [P2C] gives nearly the same balance in O(1). LeastConn is safe
// for concurrent use.
//
// The zero LeastConn is not usable: make one with NewLeastConn (a pick by
// the zero value finds no server).
type LeastConn struct {
	pool *Pool
	seed func() uint64
}

// NewLeastConn returns a weighted least-connections balancer over pool.
// [WithRand] sets the source of its tie-breaks.
func NewLeastConn(pool *Pool, opts ...Option) (*LeastConn, error) {
	c, err := newConfig("NewLeastConn", pool, 0, opts)
	if err != nil {
		return nil, err
	}
	return &LeastConn{pool: pool, seed: c.seed}, nil
}

// Pool returns the pool the balancer picks from.
func (lc *LeastConn) Pool() *Pool { return lc.pool }

// Pick returns the available server with the lowest weighted load. r is not
// used.
func (lc *LeastConn) Pick(*http.Request) (PickResult, error) {
	return leastLoaded(lc.pool, lc.pool.load(), lc.seed, acquireTries)
}

// rampBits scales weights in load comparisons, so that a slow-starting
// server's weight can be a fraction of its configured one.
const rampBits = 10

// effectiveWeight returns the weight s is compared with, scaled by
// 2^rampBits, and whether s may be picked at all. Servers with no flag set
// take the fast path.
func effectiveWeight(sp *slowPath, s *Server) (int64, bool) {
	w := int64(s.weight.Load()) << rampBits
	if w == 0 {
		return 0, false // set to 0 since the snapshot was taken
	}
	if s.available() {
		return w, true
	}
	ok, frac := sp.usable(s)
	if !ok {
		return 0, false
	}
	return max(1, int64(float64(w)*frac)), true
}

// acquireTries bounds how many times leastLoaded chooses again when the
// server it chose was drained or removed in the meantime.
const acquireTries = 4

// leastLoaded returns the usable server of the snapshot st with the lowest
// (in-flight+1)/weight, ties broken at random by reservoir sampling. If a
// drain or a change of the pool takes its choice away before it is
// counted, it chooses again from the pool as it is then, up to tries
// times in all.
func leastLoaded(pool *Pool, st *poolState, seed func() uint64, tries int) (PickResult, error) {
	var (
		best            *Server
		bestLoad, bestW int64
		ties            uint64
		rnd             fastRand
		sp              = slowPath{pool: pool, st: st, active: st.active}
	)
	for _, s := range st.active {
		var w int64
		if s.flags.Load() == 0 {
			if w = int64(s.weight.Load()) << rampBits; w == 0 {
				continue // set to 0 since the snapshot was taken
			}
		} else {
			var ok bool
			if w, ok = effectiveWeight(&sp, s); !ok {
				continue
			}
		}
		load := s.InFlight() + 1
		if best != nil {
			// Compare load/w with bestLoad/bestW.
			switch c := load*bestW - bestLoad*w; {
			case c > 0:
				continue
			case c == 0:
				// The k-th tied server replaces the choice with
				// probability 1/k, so each of them ends up chosen
				// with probability 1/ties.
				ties++
				if !rnd.seeded {
					rnd.init(seed)
				}
				if rnd.intN(ties) != 0 {
					continue
				}
			default:
				ties = 1
			}
		} else {
			ties = 1
		}
		best, bestLoad, bestW = s, load, w
	}
	if best == nil {
		return PickResult{}, ErrNoServer
	}
	if pool.counted(st, best) || pool.recheck(best) {
		return best.picked(), nil
	}
	if tries <= 1 {
		return PickResult{}, ErrNoServer
	}
	return leastLoaded(pool, pool.load(), seed, tries-1)
}

// P2C is the power of two choices: it draws two distinct servers at random
// and picks the less loaded of the two, comparing requests in flight relative
// to weight as [LeastConn] does (a tie goes to either, at random).
//
// Its balance is close to LeastConn's (Mitzenmacher, "The Power of Two
// Choices in Randomized Load Balancing", 2001), but a pick costs O(1) whatever
// the pool's size, and concurrent pickers, including independent balancers in
// other processes, do not all herd onto the single least-loaded server. When
// a drawn server is unavailable it draws again a few times, then falls back
// to a scan of the pool. P2C is safe for concurrent use.
//
// The zero P2C is not usable: make one with NewP2C (a pick by the zero value
// finds no server).
type P2C struct {
	pool  *Pool
	randN func(int) int
	seed  func() uint64
}

// NewP2C returns a power-of-two-choices balancer over pool. [WithRand] sets
// the source of its draws.
func NewP2C(pool *Pool, opts ...Option) (*P2C, error) {
	c, err := newConfig("NewP2C", pool, 0, opts)
	if err != nil {
		return nil, err
	}
	return &P2C{pool: pool, randN: c.randN, seed: c.seed}, nil
}

// Pool returns the pool the balancer picks from.
func (p *P2C) Pool() *Pool { return p.pool }

// Pick returns the less loaded of two distinct random servers. r is not
// used.
func (p *P2C) Pick(*http.Request) (PickResult, error) {
	st := p.pool.load()
	servers := st.active
	n := len(servers)
	sp := slowPath{pool: p.pool, st: st, active: servers}
	switch n {
	case 0:
		return PickResult{}, ErrNoServer
	case 1:
		if _, ok := effectiveWeight(&sp, servers[0]); ok {
			if res, ok := p.pool.acquire(st, servers[0]); ok {
				return res, nil
			}
		}
		return PickResult{}, ErrNoServer
	}
	for range redraws {
		i, j := drawPair(p.randN, n)
		a, b := servers[i], servers[j]
		if a.flags.Load()|b.flags.Load() == 0 { // the fast path: no flags
			if (b.InFlight()+1)*int64(a.weight.Load()) < (a.InFlight()+1)*int64(b.weight.Load()) {
				a = b
			}
			if p.pool.counted(st, a) || p.pool.recheck(a) {
				return a.picked(), nil
			}
			continue
		}
		var s *Server
		wa, aok := effectiveWeight(&sp, a)
		wb, bok := effectiveWeight(&sp, b)
		switch {
		case aok && bok:
			// The pair is in random order, so a tie going to a is fair.
			s = a
			if (b.InFlight()+1)*wa < (a.InFlight()+1)*wb {
				s = b
			}
		case aok:
			s = a
		case bok:
			s = b
		default:
			continue
		}
		if res, ok := p.pool.acquire(st, s); ok {
			return res, nil
		}
	}
	return leastLoaded(p.pool, st, p.seed, acquireTries)
}

// pairDrawMax is the largest n for which n·(n−1) fits in an int: 2^31 with
// 64-bit ints, 2^15 with 32-bit ones.
const pairDrawMax = 1 << (bits.UintSize/2 - 1)

// drawPair returns two distinct random indexes below n (n ≥ 2), every
// ordered pair equally likely. One draw gives both: r encodes the pair, and
// j skips over i. Two draws are needed only if n·(n−1) might overflow.
func drawPair(randN func(int) int, n int) (i, j int) {
	if n <= pairDrawMax {
		r := randN(n * (n - 1))
		i, j = r/(n-1), r%(n-1)
	} else {
		i, j = randN(n), randN(n-1)
	}
	if j >= i {
		j++
	}
	return i, j
}
