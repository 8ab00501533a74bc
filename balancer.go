package lb

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"time"
)

// ErrNoServer is returned by Pick when no server can take the request: the
// pool is empty, or every server in it is unhealthy, draining or has weight 0.
// Balancers may wrap it; test for it with errors.Is.
var ErrNoServer = errors.New("lb: no server available")

// errNotUsed is the error of the DoneInfo that PickResult.Cancel passes to
// Done: see DoneInfo.Unused.
var errNotUsed = errors.New("lb: pick not used")

// A Balancer chooses a server for each request.
//
// Implementations must be safe for concurrent use, and Pick must not block.
// A successful Pick counts one more request in flight on the chosen server;
// the caller ends it by calling PickResult.Done exactly once. [Proxy] does
// this for HTTP requests; other callers (a database client, a queue consumer)
// do it themselves, typically with defer.
type Balancer interface {
	// Pick chooses a server for r. r may be nil for algorithms that do not
	// look at the request (all but the hashing ones). When no server can
	// take the request, the error satisfies errors.Is(err, ErrNoServer).
	Pick(r *http.Request) (PickResult, error)
}

// BalancerFunc adapts an ordinary function to the [Balancer] interface. The
// function must honour the Pick contract: count the request in flight, which
// [Server.Acquire] does, and return ErrNoServer when nothing is available
// (Acquire returns no Server when a drain of its server has begun).
type BalancerFunc func(r *http.Request) (PickResult, error)

// Pick calls f(r).
func (f BalancerFunc) Pick(r *http.Request) (PickResult, error) { return f(r) }

// PickResult is the outcome of a successful Pick.
//
// The zero PickResult has no server: it is what a failed Pick returns.
type PickResult struct {
	// Server is the chosen server.
	Server *Server
	// Done ends the request: it decrements the server's in-flight count and
	// records the outcome in its statistics. It is never nil, may be called
	// from any goroutine, and must be called exactly once.
	//
	// A Done called when the server has no request in flight changes
	// nothing; the first such call on each server is logged at level Error
	// through slog's default logger. A second Done for one pick while the
	// server has other picks in flight cannot be told from theirs: it ends
	// one of them early, and the count is right again once they have all
	// ended.
	Done func(DoneInfo)
}

// Cancel gives back a pick that was not used: the request was never sent to
// the server (a retry drew a server already tried, say, or the caller gave
// up before sending). It calls Done with a DoneInfo whose Unused method
// reports true: the server's in-flight count goes down, and no request,
// failure or latency is recorded, nor learnt by a latency-aware balancer.
// Call Cancel instead of Done, once per pick, never beside it. Cancel on
// the zero PickResult does nothing.
func (r PickResult) Cancel() {
	if r.Done != nil {
		r.Done(DoneInfo{Err: errNotUsed})
	}
}

// DoneInfo describes how a picked request ended. The zero DoneInfo is a
// success with no status and no duration.
type DoneInfo struct {
	// Err is nil when the request succeeded. An error that wraps
	// context.Canceled (the client went away) or [ErrClientBody] (the
	// client's request body could not be read) is the client's doing: it
	// is not counted as a failure of the server, whatever StatusCode says,
	// and a balancer that learns from outcomes should learn nothing from it.
	Err error
	// StatusCode is the HTTP status the server answered with, or 0 when no
	// response arrived or the request was not HTTP. A status of 500 or more
	// counts as a failure in the server's statistics.
	StatusCode int
	// Duration is the server's time on the request, when the caller
	// measured it: a caller that is not HTTP sets the time from Pick to
	// Done. [Proxy] sets the time from Pick to the response's header (to
	// Done if none came), less the time spent waiting for the client's
	// request body, so that a slow client does not make a server look slow.
	// A positive value is recorded in the server's latency histogram
	// ([Server.Latency]), unless Err says the client went away.
	Duration time.Duration
}

// Unused reports whether d ends a pick given back by [PickResult.Cancel]:
// the request never reached the server. A balancer that wraps Done to learn
// from outcomes should learn nothing from it, and pass it on; a wrapper
// that wraps Err (with %w) on the way keeps it unused.
func (d DoneInfo) Unused() bool {
	return d.Err != nil && (d.Err == errNotUsed || errors.Is(d.Err, errNotUsed))
}

// An Option configures a balancer. A bad option, or one that does not apply
// to the balancer (WithRotationStart on LeastConn, say), makes the constructor
// return an error naming it.
type Option func(*config) error

// config holds the settings shared by every balancer constructor.
type config struct {
	randN    func(n int) int
	seed     func() uint64 // 64 random bits; derived from randN when set
	start    uint64
	bound    float64  // ConsistentHash: WithBoundedLoad
	fallback Balancer // ConsistentHash: WithFallback
	set      optionSet

	decay time.Duration // PeakEWMA, Adaptive: WithDecay
}

// optionSet names options, for the constructors to say which they take.
type optionSet uint8

const (
	optStart optionSet = 1 << iota
	optBound
	optFallback
	optDecay
)

var optionNames = map[optionSet]string{optStart: "WithRotationStart", optBound: "WithBoundedLoad", optFallback: "WithFallback", optDecay: "WithDecay"}

// WithRand sets the source of random numbers: f(n) must return a value in
// [0, n). Balancers use it for random picks, tie-breaks and the starting
// offset of round robin, so a seeded source makes every choice reproducible,
// for example:
//
//	lb.WithRand(rand.New(rand.NewPCG(1, 2)).IntN)
//
// f is called concurrently when the balancer is, so it must then be safe for
// concurrent use; a *rand.Rand is not, and suits single-goroutine tests. The
// default is math/rand/v2's IntN.
func WithRand(f func(n int) int) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("WithRand: nil function")
		}
		c.randN = f
		c.seed = func() uint64 { return uint64(f(math.MaxInt)) }
		return nil
	}
}

// WithRotationStart fixes the position in its order where [RoundRobin] or
// [WeightedRoundRobin] (or the default fallback of [ConsistentHash]) makes
// its first pick (0 is the first server of the pool). Without it they start
// at a random position, so that many processes started together do not
// send their first requests to the same server. Other balancers reject it.
func WithRotationStart(i uint64) Option {
	return func(c *config) error {
		c.start = i
		c.set |= optStart
		return nil
	}
}

// newConfig applies opts for the constructor named ctor, over pool; takes
// names the options, beyond WithRand, that the constructor accepts.
func newConfig(ctor string, pool *Pool, takes optionSet, opts []Option) (config, error) {
	c := config{randN: rand.IntN, seed: rand.Uint64}
	if pool == nil {
		return c, fmt.Errorf("lb: %s: nil pool", ctor)
	}
	for i, opt := range opts {
		if opt == nil {
			return c, fmt.Errorf("lb: %s: option %d is nil", ctor, i)
		}
		before := c.set
		if err := opt(&c); err != nil {
			return c, fmt.Errorf("lb: %s: %w", ctor, err)
		}
		if extra := c.set &^ before &^ takes; extra != 0 {
			return c, fmt.Errorf("lb: %s: option %d (%s) does not apply", ctor, i, optionNames[extra])
		}
	}
	if takes&optStart != 0 && c.set&optStart == 0 {
		c.start = c.seed()
	}
	return c, nil
}

// fastRand is a small per-pick generator (wyrand), seeded once from the
// balancer's random source, for when a pick needs many random numbers (tie
// breaks over a long scan). It keeps such picks cheap and, with a seeded
// source, exactly reproducible.
type fastRand struct {
	state  uint64
	seeded bool
}

func (r *fastRand) init(seed func() uint64) {
	r.state = seed()
	r.seeded = true
}

// intN returns a value in [0, n) for 0 < n < 2^32.
func (r *fastRand) intN(n uint64) uint64 {
	r.state += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.state, r.state^0xe7037ed1a0b428db)
	return ((hi ^ lo) >> 32 * n) >> 32
}

// float returns a value in [0, 1).
func (r *fastRand) float() float64 { return float64(r.intN(1<<24)) / (1 << 24) }

// slowPath is what a pick works out, lazily, once its first choice turned
// out to have a flag set: whether the pool is in panic mode, the time for
// slow-start ramps, and coins for ramp acceptance. It lives on the stack of
// the pick.
type slowPath struct {
	pool       *Pool
	st         *poolState // the snapshot active comes from
	active     []*Server
	panicKnown bool
	panicking  bool
	now        int64
	rnd        fastRand
}

// usable reports whether s may be picked on this slow path, and the
// fraction of its weight it gets (below 1 while it slow-starts).
func (sp *slowPath) usable(s *Server) (bool, float64) {
	f := s.flags.Load()
	if f == 0 {
		return true, 1
	}
	if f&flagDraining != 0 {
		return false, 0
	}
	if f&(flagDown|flagEjected) != 0 && !sp.inPanic() {
		return false, 0
	}
	if f&flagRamping == 0 {
		return true, 1
	}
	if sp.now == 0 {
		sp.now = sp.pool.now().UnixNano()
	}
	return true, s.ramp(sp.now)
}

// accept reports whether s may be picked, tossing a coin for a ramping
// server: the round-robin and random picks move on when it says no.
func (sp *slowPath) accept(s *Server) bool {
	ok, frac := sp.usable(s)
	return ok && (frac >= 1 || sp.rnd.float() < frac)
}

// inPanic reports whether the pool is in panic mode for this pick (see
// Pool.SetPanicThreshold).
func (sp *slowPath) inPanic() bool {
	if !sp.panicKnown {
		sp.panicKnown = true
		sp.panicking = sp.pool.panics(sp.active)
	}
	return sp.panicking
}

// acquire counts a request on s, chosen on this slow path; false means s
// is to be treated as unavailable (see Pool.acquire).
func (sp *slowPath) acquire(s *Server) (PickResult, bool) {
	return sp.pool.acquire(sp.st, s)
}

// scan returns the first server at or after position start that the slow
// path may pick, wrapping around; ramping servers are taken at full share.
func (sp *slowPath) scan(start uint64) (PickResult, error) {
	n := uint64(len(sp.active))
	for i := range n {
		s := sp.active[(start+i)%n]
		if ok, _ := sp.usable(s); ok {
			if res, ok := sp.acquire(s); ok {
				return res, nil
			}
		}
	}
	return PickResult{}, ErrNoServer
}

// PoolBalancer is a [Balancer] that picks from a [Pool] it can name. All
// the balancers of this package are; [WithStickyCookie] needs one.
type PoolBalancer interface {
	Balancer
	Pool() *Pool
}
