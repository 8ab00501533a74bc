package lb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrDuplicateServer is returned by [NewPool], [Pool.Add] and [Pool.Update]
// when a server, or another server with the same name, is already present.
var ErrDuplicateServer = errors.New("lb: duplicate server")

// ErrUnknownServer is returned by [Pool.Remove] for a server that is not a
// member of the pool.
var ErrUnknownServer = errors.New("lb: server not in pool")

// errDraining is the error of a Drain of a server already being drained.
var errDraining = errors.New("already draining")

// errDrainCanceled is the error of a drain called off (see beginDrain).
var errDrainCanceled = errors.New("drain called off")

// Pool is the live set of servers that balancers choose from. It may change
// at any time while traffic flows: Add, Remove and Update are safe to call
// concurrently with Pick.
//
// The membership is an immutable snapshot behind an atomic pointer: every
// Pick loads it once and never locks, and every change builds a new snapshot
// under a mutex that only writers take. Once a change has returned, every
// Pick that starts afterwards sees it; in particular, no Pick that starts
// after Remove returns picks the removed server.
//
// A Pool is usually shared by several balancers (one per route, say) and by
// a health checker. The zero Pool is an empty, usable pool.
type Pool struct {
	mu    sync.Mutex // serializes writers; readers never take it
	state atomic.Pointer[poolState]
	// panicAt is the panic threshold (float64 bits); 0 means never.
	panicAt atomic.Uint64
	// clock, if set, replaces time.Now for slow-start ramps.
	clock atomic.Pointer[func() time.Time]
	// obs are the pool's observers (see Observe).
	obs observers
}

// poolState is one immutable snapshot of a pool's membership, with what the
// balancers derive from it.
type poolState struct {
	version uint64
	servers []*Server          // every member, in the order added
	byName  map[string]*Server // members by name
	// active holds the members with weight > 0, the only ones a balancer
	// may pick, in the same order.
	active []*Server
	// weights holds the weights of active as this snapshot read them:
	// the tables derived from the snapshot use these, not the servers'
	// live weights, which SetWeight may change before it rebuilds it.
	weights []int
	// equal is true when every active server has the same weight, so the
	// weighted algorithms can take their unweighted fast paths.
	equal bool
	// total is the sum of the active servers' weights.
	total uint64
	// alias is the weighted random table (Walker's alias method), built
	// on first use by the first Random that picks from this snapshot.
	alias atomic.Pointer[aliasTable]
	// ring is the consistent-hash ring, built on first use by the first
	// ConsistentHash that picks from this snapshot.
	ring atomic.Pointer[hashRing]
	// changed is closed when this snapshot is replaced.
	changed chan struct{}
	// smooth is the weighted round-robin order, built on first use by the
	// first WeightedRoundRobin that picks from this snapshot.
	smooth atomic.Pointer[[]int32]
}

// noPoolState is the empty snapshot of a nil *Pool, which the zero value
// of a balancer has: every pick from it finds no server.
var noPoolState = newPoolState(0, nil)

func newPoolState(version uint64, servers []*Server) *poolState {
	st := &poolState{
		version: version,
		servers: servers,
		byName:  make(map[string]*Server, len(servers)),
		equal:   true,
		changed: make(chan struct{}),
	}
	for _, s := range servers {
		st.byName[s.name] = s
		w := int(s.weight.Load())
		if w == 0 {
			continue
		}
		if len(st.weights) > 0 && w != st.weights[0] {
			st.equal = false
		}
		st.active = append(st.active, s)
		st.weights = append(st.weights, w)
		st.total += uint64(w)
	}
	return st
}

// NewPool returns a pool holding servers. A nil server, one not made by
// [NewServer] or [NewHandlerServer], a server given twice or two servers
// with the same name are an error.
func NewPool(servers ...*Server) (*Pool, error) {
	p := new(Pool)
	if err := p.Add(servers...); err != nil {
		return nil, err
	}
	return p, nil
}

// load returns the current snapshot: one atomic load, no lock.
func (p *Pool) load() *poolState {
	if p == nil {
		return noPoolState // a balancer's zero value: it picks nothing
	}
	if st := p.state.Load(); st != nil {
		return st
	}
	// A zero Pool: give it its own empty snapshot.
	p.state.CompareAndSwap(nil, newPoolState(0, nil))
	return p.state.Load()
}

// store replaces the snapshot old with next and wakes the watchers of old.
// The caller holds p.mu.
func (p *Pool) store(old, next *poolState) {
	p.state.Store(next)
	close(old.changed)
}

// Add adds servers to the pool. Either all of them are added or, on error,
// none: a nil server or one not made by [NewServer] or [NewHandlerServer]
// is an error, and one whose name is already in the pool (or given twice)
// is an error wrapping [ErrDuplicateServer]. Each server added is
// reported to the pool's observers as [EventAdded].
func (p *Pool) Add(servers ...*Server) error {
	if len(servers) == 0 {
		return nil
	}
	defer p.obs.deliver() // after the unlock: observers are called outside it
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.load()
	next := slices.Grow(slices.Clone(old.servers), len(servers))
	if err := checkNew(old.byName, servers); err != nil {
		return err
	}
	st := newPoolState(old.version+1, append(next, servers...))
	p.store(old, st)
	p.joined(servers)
	p.restale(st)
	return nil
}

// checkNew returns an error if any of servers is nil or was not made by a
// constructor, shares a name with another of them, or is named in have.
func checkNew(have map[string]*Server, servers []*Server) error {
	seen := make(map[string]bool, len(servers))
	for i, s := range servers {
		if s == nil {
			return fmt.Errorf("lb: server %d is nil", i)
		}
		if s.ev == nil {
			return fmt.Errorf("lb: server %d was not made by NewServer or NewHandlerServer", i)
		}
		if have[s.name] != nil || seen[s.name] {
			return fmt.Errorf("%w: %q", ErrDuplicateServer, s.name)
		}
		seen[s.name] = true
	}
	return nil
}

// Remove takes servers out of the pool. Either all of them are removed or,
// on error, none: a server that is not a member is an error wrapping
// [ErrUnknownServer]. Requests already in flight on a removed server are not
// affected, and their Done still works; to wait for them, drain the server
// first. Each server removed is reported to the pool's observers as
// [EventRemoved].
func (p *Pool) Remove(servers ...*Server) error {
	defer p.obs.deliver() // after the unlock: observers are called outside it
	return p.remove(servers, Event{Kind: EventRemoved})
}

// remove takes servers out of the pool, as Remove says, and reports each
// with e.
func (p *Pool) remove(servers []*Server, e Event) error {
	if len(servers) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.load()
	gone := make(map[*Server]bool, len(servers))
	for _, s := range servers {
		if s == nil || old.byName[s.name] != s {
			return fmt.Errorf("%w: %v", ErrUnknownServer, s)
		}
		gone[s] = true
	}
	next := make([]*Server, 0, len(old.servers))
	for _, s := range old.servers {
		if !gone[s] {
			next = append(next, s)
		}
	}
	p.store(old, newPoolState(old.version+1, next))
	for _, s := range old.servers {
		if gone[s] {
			p.left(s, e)
		}
	}
	return nil
}

// Update replaces the whole membership with servers, as a service-discovery
// refresh does. Servers already in the pool keep their state and counters
// (pass the same *Server values); the others are added or removed. A nil
// server or a repeated name is an error, and the pool is then left as it
// was. The pool's observers hear [EventRemoved] for each server that left
// and [EventAdded] for each that joined; those that stay are not
// reported.
func (p *Pool) Update(servers ...*Server) error {
	if err := checkNew(nil, servers); err != nil {
		return err
	}
	defer p.obs.deliver() // after the unlock: observers are called outside it
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.load()
	next := newPoolState(old.version+1, slices.Clone(servers))
	p.store(old, next)
	for _, s := range old.servers {
		if next.byName[s.name] != s {
			p.left(s, Event{Kind: EventRemoved})
		}
	}
	for _, s := range servers {
		if old.byName[s.name] != s {
			p.joined([]*Server{s})
		}
	}
	p.restale(next)
	return nil
}

// weightChanged rebuilds the snapshot after a change of the weight of s,
// if s is a member, so that the balancers' tables are derived again; the
// version grows by one.
func (p *Pool) weightChanged(s *Server) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.load(); st.byName[s.name] == s {
		p.store(st, newPoolState(st.version+1, st.servers))
	}
}

// restale rebuilds st, the snapshot just stored, if the weight of one of
// its servers changed since st read it. The caller holds p.mu and has made
// the new members know p (Pool.joined): a SetWeight either stored its
// weight before that, and is seen here, or finds p among the pools of its
// server, and rebuilds the snapshot itself.
func (p *Pool) restale(st *poolState) {
	if st.stale() {
		p.store(st, newPoolState(st.version+1, st.servers))
	}
}

// stale reports whether the weight of a member differs from the one st
// read.
func (st *poolState) stale() bool {
	j := 0 // st.active is st.servers less those of weight 0, in order
	for _, s := range st.servers {
		w := int(s.weight.Load())
		if j < len(st.active) && st.active[j] == s {
			if w != st.weights[j] {
				return true
			}
			j++
		} else if w != 0 {
			return true
		}
	}
	return false
}

// Servers returns the pool's members in the order they were added. The
// slice is a copy: changing it does not change the pool.
func (p *Pool) Servers() []*Server { return slices.Clone(p.load().servers) }

// Server returns the member named name, or nil if there is none.
func (p *Pool) Server(name string) *Server { return p.load().byName[name] }

// Len returns the number of servers in the pool.
func (p *Pool) Len() int { return len(p.load().servers) }

// Version returns a number that grows by one with every change of
// membership, and with every change of a member's weight
// ([Server.SetWeight]), starting from 0 for an empty new pool.
func (p *Pool) Version() uint64 { return p.load().version }

// Changed returns a channel that is closed when the pool's membership, or a
// member's weight, next changes. A watcher reads the state it needs, then waits on the channel it
// got before reading, so that no change is missed.
func (p *Pool) Changed() <-chan struct{} { return p.load().changed }

// Drain takes s out of the pool gracefully: balancers stop picking it at
// once, Drain waits until its requests in flight have ended or ctx is done,
// and then removes it from the pool. It returns ctx's error if requests
// were still in flight when it gave up, an error wrapping
// [ErrUnknownServer] if s is not a member, or an error if s is already
// being drained.
//
// Draining is a state of the server: if it is also in other pools, they
// stop picking it too until Drain returns. A pick that began before the
// drain either lands on s before Drain has seen it idle, and Drain waits
// for it as for any other, or does not land on it at all: once Drain has
// returned nil, no pick of this package's balancers holds s. (A late pick
// may count itself on s for an instant before it backs out, so InFlight may
// read 1 just then.) A custom balancer that calls [Server.Acquire] gets
// that guarantee only for a drain under way: see there.
//
// The pool's observers hear [EventDraining] when the drain begins and
// [EventDrained] once s is idle and out of the pool, or [EventRemoved],
// with Err set to the error Drain returns, if ctx ended first. The
// observers of the server's other pools hear neither.
func (p *Pool) Drain(ctx context.Context, s *Server) error {
	finish, err := p.beginDrain(s)
	if err != nil {
		return err
	}
	return finish(ctx, nil)
}

// beginDrain is the first half of Drain: once it has returned, balancers
// no longer pick s. finish is the second half: it waits for s to go idle
// or for ctx, and removes s. If cancel is closed first, with requests
// still in flight, the drain is called off instead: s stays in the pool,
// is picked again, and the pool's observers hear [EventDrainCanceled];
// finish then returns errDrainCanceled.
func (p *Pool) beginDrain(s *Server) (finish func(ctx context.Context, cancel <-chan struct{}) error, err error) {
	if s == nil || p.Server(s.name) != s {
		return nil, fmt.Errorf("%w: %v", ErrUnknownServer, s)
	}
	if !s.startDrain(p) {
		return nil, fmt.Errorf("lb: drain %q: %w", s.name, errDraining)
	}
	// Done wakes ch when the count reaches 0 with the flag set; the count
	// is read after ch is in place, so neither side can miss the other.
	ch := make(chan struct{})
	s.idle.Store(&ch)
	return func(ctx context.Context, cancel <-chan struct{}) error {
		var err error
		if s.InFlight() > 0 {
			select {
			case <-ch:
			case <-cancel:
				s.idle.CompareAndSwap(&ch, nil)
				s.cancelDrain(p)
				return errDrainCanceled
			case <-ctx.Done():
				err = fmt.Errorf("lb: drain %q: %d requests still in flight: %w", s.name, s.InFlight(), ctx.Err())
			}
		}
		s.idle.CompareAndSwap(&ch, nil)
		end := Event{Kind: EventDrained}
		if err != nil {
			end = Event{Kind: EventRemoved, Err: err}
		}
		if rerr := p.remove([]*Server{s}, end); rerr != nil && err == nil {
			err = rerr // removed meanwhile by someone else
		}
		s.endDrain()
		p.obs.deliver()
		return err
	}, nil
}

// acquire counts a request in flight on s, which a pick chose from the
// snapshot st of p, and returns its PickResult; it reports false, counting
// nothing, if a Drain of s has begun or if s has left p since st was
// loaded (a Drain that has ended meanwhile, a Remove). A balancer then
// treats s as unavailable. Hot paths write it out as
// p.counted(st, s) || p.recheck(s), which inlines.
func (p *Pool) acquire(st *poolState, s *Server) (PickResult, bool) {
	if p.counted(st, s) || p.recheck(s) {
		return s.picked(), true
	}
	return PickResult{}, false
}

// counted counts a request in flight on s and reports whether the pick may
// keep it without a closer look: s is not draining and the pool has not
// changed since st. Counted first, checked after: see Server.acquire. A
// Drain removes s before it clears its flag, so a pick that saw the flag
// clear after a whole drain sees a new snapshot here. When it reports
// false, recheck decides.
func (p *Pool) counted(st *poolState, s *Server) bool {
	s.load.Add(loadPick)
	return s.flags.Load()&flagDraining == 0 && p.state.Load() == st
}

// recheck is the slow path of acquire, once counted has said no: it
// reports whether the pick may keep s (it is not draining and still a
// member), and otherwise takes the count back.
//
//go:noinline
func (p *Pool) recheck(s *Server) bool {
	if s.flags.Load()&flagDraining == 0 && p.state.Load().byName[s.name] == s {
		return true
	}
	return s.backOut()
}

// SetPanicThreshold sets the pool's panic mode: when the fraction of its
// servers (of weight above 0) that are healthy and not ejected falls below
// threshold, balancers pick among all of them as if they were healthy
// (draining servers excepted), rather than pile the whole load onto the few
// that are left (Envoy's panic threshold). With a threshold of 0, the
// default, they never do: when no server is available, Pick fails fast with
// [ErrNoServer] and a [Proxy] answers 503. Any threshold above 0 covers the
// case where every server is down.
//
// The fraction is worked out only by picks whose first choice is not
// available, so panic mode costs nothing while servers are healthy.
func (p *Pool) SetPanicThreshold(threshold float64) error {
	if !(threshold >= 0 && threshold <= 1) {
		return fmt.Errorf("lb: SetPanicThreshold: threshold %v is not between 0 and 1", threshold)
	}
	p.panicAt.Store(math.Float64bits(threshold))
	return nil
}

// panics reports whether the pool is in panic mode, given its active
// servers.
func (p *Pool) panics(active []*Server) bool {
	threshold := math.Float64frombits(p.panicAt.Load())
	if threshold == 0 || len(active) == 0 {
		return false
	}
	up := 0
	for _, s := range active {
		if s.flags.Load()&(flagDown|flagEjected) == 0 {
			up++
		}
	}
	return float64(up) < threshold*float64(len(active))
}

// SetClock makes the pool's balancers read the time for slow-start ramps
// from now instead of [time.Now]: for simulations that run on virtual time
// (with [Server.SlowStartAt]). nil restores time.Now.
func (p *Pool) SetClock(now func() time.Time) {
	if now == nil {
		p.clock.Store(nil)
		return
	}
	p.clock.Store(&now)
}

// now returns the pool's time.
func (p *Pool) now() time.Time {
	if f := p.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}
