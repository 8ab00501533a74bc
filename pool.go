package lb

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// ErrDuplicateServer is returned by [NewPool], [Pool.Add] and [Pool.Update]
// when a server, or another server with the same name, is already present.
var ErrDuplicateServer = errors.New("lb: duplicate server")

// ErrUnknownServer is returned by [Pool.Remove] for a server that is not a
// member of the pool.
var ErrUnknownServer = errors.New("lb: server not in pool")

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
	// equal is true when every active server has the same weight, so the
	// weighted algorithms can take their unweighted fast paths.
	equal bool
	// total is the sum of the active servers' weights.
	total uint64
	// alias is the weighted random table (Walker's alias method), built
	// on first use by the first Random that picks from this snapshot.
	alias atomic.Pointer[aliasTable]
	// smooth is the weighted round-robin order, built on first use by the
	// first WeightedRoundRobin that picks from this snapshot.
	smooth atomic.Pointer[[]int32]
}

var emptyState = newPoolState(0, nil)

func newPoolState(version uint64, servers []*Server) *poolState {
	st := &poolState{version: version, servers: servers, byName: make(map[string]*Server, len(servers)), equal: true}
	for _, s := range servers {
		st.byName[s.name] = s
		if s.weight == 0 {
			continue
		}
		if len(st.active) > 0 && s.weight != st.active[0].weight {
			st.equal = false
		}
		st.active = append(st.active, s)
		st.total += uint64(s.weight)
	}
	return st
}

// NewPool returns a pool holding servers. A nil server, a server given twice
// or two servers with the same name are an error.
func NewPool(servers ...*Server) (*Pool, error) {
	p := new(Pool)
	if err := p.Add(servers...); err != nil {
		return nil, err
	}
	return p, nil
}

// load returns the current snapshot: one atomic load, no lock.
func (p *Pool) load() *poolState {
	if st := p.state.Load(); st != nil {
		return st
	}
	return emptyState
}

// Add adds servers to the pool. Either all of them are added or, on error,
// none: a nil server, or one whose name is already in the pool (or given
// twice), is an error wrapping [ErrDuplicateServer].
func (p *Pool) Add(servers ...*Server) error {
	if len(servers) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.load()
	next := slices.Grow(slices.Clone(old.servers), len(servers))
	if err := checkNew(old.byName, servers); err != nil {
		return err
	}
	p.state.Store(newPoolState(old.version+1, append(next, servers...)))
	return nil
}

// checkNew returns an error if any of servers is nil, shares a name with
// another of them, or is named in have.
func checkNew(have map[string]*Server, servers []*Server) error {
	seen := make(map[string]bool, len(servers))
	for i, s := range servers {
		if s == nil {
			return fmt.Errorf("lb: server %d is nil", i)
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
// first.
func (p *Pool) Remove(servers ...*Server) error {
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
	p.state.Store(newPoolState(old.version+1, next))
	return nil
}

// Update replaces the whole membership with servers, as a service-discovery
// refresh does. Servers already in the pool keep their state and counters
// (pass the same *Server values); the others are added or removed. A nil
// server or a repeated name is an error, and the pool is then left as it
// was.
func (p *Pool) Update(servers ...*Server) error {
	if err := checkNew(nil, servers); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.load()
	p.state.Store(newPoolState(old.version+1, slices.Clone(servers)))
	return nil
}

// Servers returns the pool's members in the order they were added. The
// slice is a copy: changing it does not change the pool.
func (p *Pool) Servers() []*Server { return slices.Clone(p.load().servers) }

// Server returns the member named name, or nil if there is none.
func (p *Pool) Server(name string) *Server { return p.load().byName[name] }

// Len returns the number of servers in the pool.
func (p *Pool) Len() int { return len(p.load().servers) }

// Version returns a number that grows by one with every change of
// membership, starting from 0 for an empty new pool.
func (p *Pool) Version() uint64 { return p.load().version }

// Stats returns a snapshot of every member's statistics, in pool order.
func (p *Pool) Stats() []Stats {
	servers := p.load().servers
	out := make([]Stats, len(servers))
	for i, s := range servers {
		out[i] = s.Stats()
	}
	return out
}
