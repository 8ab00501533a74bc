package lb

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"sync"
)

// SubsetOf returns the servers that instance (counted from 0) of a fleet of
// instances should use, out of servers, when each instance uses size of
// them: deterministic subsetting, so that a large fleet does not open a
// connection from every instance to every server.
//
// Every instance that calls it with the same set of servers (in any order:
// only their names count) and the same instances and size gets its part of
// one plan, with no coordination. The servers are put in a fixed
// pseudo-random order (by a hash of their names, the same in every process),
// laid out evenly on a ring; instance i takes the size servers that follow
// position i/instances of the ring. So the subsets tile the ring evenly:
// every server is used by instances·size/len(servers) instances, rounded
// down or up, which is the best any plan can do. When a server joins or
// leaves, the others keep their order, so each instance's subset changes
// by a server or two at most (often none), never wholesale.
//
// The result is a new slice of the same *Server values, in ring order; all
// of servers when size is at least their number. instances must be at
// least 1, instance between 0 and instances-1 and size at least 1: anything
// else is an error naming the value. A nil server is an error; servers of
// the same name are not told apart (give them distinct names).
func SubsetOf(servers []*Server, instance, instances, size int) ([]*Server, error) {
	if err := checkSubset(instance, instances, size); err != nil {
		return nil, err
	}
	for i, s := range servers {
		if s == nil {
			return nil, fmt.Errorf("lb: SubsetOf: server %d is nil", i)
		}
	}
	return subsetOf(servers, instance, instances, size), nil
}

// checkSubset validates the numbers of a subset.
func checkSubset(instance, instances, size int) error {
	switch {
	case instances < 1:
		return fmt.Errorf("lb: subset: instances %d, want at least 1", instances)
	case instance < 0 || instance >= instances:
		return fmt.Errorf("lb: subset: instance %d is not between 0 and %d (instances %d)", instance, instances-1, instances)
	case size < 1:
		return fmt.Errorf("lb: subset: size %d, want at least 1", size)
	}
	return nil
}

// subsetOf is SubsetOf on checked input.
func subsetOf(servers []*Server, instance, instances, size int) []*Server {
	n := len(servers)
	if n == 0 {
		return nil
	}
	type keyed struct {
		key uint64
		s   *Server
	}
	ring := make([]keyed, n)
	for i, s := range servers {
		ring[i] = keyed{hashString(s.name, subsetSeed), s}
	}
	slices.SortFunc(ring, func(a, b keyed) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.s.name, b.s.name)
	})
	size = min(size, n)
	// The start is floor(instance·n/instances), exact for any ints.
	hi, lo := bits.Mul64(uint64(instance), uint64(n))
	start, _ := bits.Div64(hi, lo, uint64(instances))
	out := make([]*Server, size)
	for j := range out {
		out[j] = ring[(int(start)+j)%n].s
	}
	return out
}

// subsetSeed seeds the hash that orders servers on the subsetting ring.
const subsetSeed = 0x5b5e7c0de1a5e7

// Subset keeps a pool of the subset of another pool's servers that one
// instance of a fleet should use (see [SubsetOf]), and follows that pool as
// it changes: any balancer built over [Subset.Pool] then balances within the
// subset. The servers are the source pool's own (the same *Server values),
// so their state and counters are shared with it.
//
// Servers of weight 0 in the source take no place in the subset: the
// subset is drawn from the others (as [SubsetOf] would from them), and
// drawn again when a weight changes, so that every instance gets size
// servers that can take picks.
//
// The subset pool follows the source from a goroutine, a moment after each
// change; until then, a server just removed from the source may still be
// picked from the subset (a server being drained is not: draining is a
// state of the server). Close stops the goroutine.
//
// The zero Subset is not usable: build one with [NewSubset] (its Pool is
// nil and its Close does nothing). Its methods are safe for concurrent use.
type Subset struct {
	src, pool                 *Pool
	instance, instances, size int
	stop, done                chan struct{}
	once                      sync.Once
}

// NewSubset returns a Subset of src for instance (counted from 0) of a fleet
// of instances, each using size servers, and starts following src. The
// numbers are checked as by [SubsetOf]; a nil src is an error. Call Close
// when done with it.
func NewSubset(src *Pool, instance, instances, size int) (*Subset, error) {
	if src == nil {
		return nil, fmt.Errorf("lb: NewSubset: nil source pool")
	}
	if err := checkSubset(instance, instances, size); err != nil {
		return nil, err
	}
	sub := &Subset{
		src: src, pool: new(Pool),
		instance: instance, instances: instances, size: size,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	changed := sub.refresh()
	go sub.follow(changed)
	return sub, nil
}

// refresh sets the subset pool from the source's current membership, and
// returns the channel that tells of the source's next change.
func (sub *Subset) refresh() <-chan struct{} {
	changed := sub.src.Changed()
	// Servers of weight 0 take no picks (the backup priorities of
	// WithDNSSRV, a server set to 0): a place in the subset would be lost
	// on them. The snapshot's active members are the others.
	servers := subsetOf(sub.src.load().active, sub.instance, sub.instances, sub.size)
	// Updated even when the members are the same, so that what the
	// balancers derive from the members (weights) is built afresh too.
	// The servers come from a pool, so they are neither nil nor of
	// repeated names: Update cannot fail.
	_ = sub.pool.Update(servers...)
	return changed
}

// follow refreshes the subset on every change of the source, until Close.
func (sub *Subset) follow(changed <-chan struct{}) {
	defer close(sub.done)
	for {
		select {
		case <-changed:
			changed = sub.refresh()
		case <-sub.stop:
			return
		}
	}
}

// Pool returns the pool of this instance's subset, for balancers. Change
// the source pool, not this one: the subset overwrites changes made here.
func (sub *Subset) Pool() *Pool { return sub.pool }

// Close stops following the source pool; the subset pool keeps its last
// membership. Close waits for the goroutine to end, and may be called more
// than once.
func (sub *Subset) Close() error {
	if sub.stop == nil {
		return nil // the zero Subset: no goroutine to stop
	}
	sub.once.Do(func() { close(sub.stop) })
	<-sub.done
	return nil
}
