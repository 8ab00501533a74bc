package lb

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDrainDuringLeastConnPick drains both servers of a pool in the
// middle of a LeastConn pick, after it has checked their flags and before
// it counts its choice: the random source, called for the tie-break,
// runs both drains to completion. Once Drain has returned, the pick must
// not hold a drained server; the pool is empty, so it finds nothing.
func TestDrainDuringLeastConnPick(t *testing.T) {
	t.Parallel()
	for seed := range 4 {
		p, servers := newTestPool(t, 1, 1)
		var drained atomic.Bool
		randN := func(n int) int {
			if drained.CompareAndSwap(false, true) {
				for _, s := range servers {
					require.NoError(t, p.Drain(context.Background(), s))
				}
			}
			return (seed * 977) % n
		}
		b, err := NewLeastConn(p, WithRand(randN))
		require.NoError(t, err)
		res, err := b.Pick(nil)
		require.True(t, drained.Load(), "the tie-break ran the drains")
		if err == nil {
			res.Cancel()
			t.Fatalf("seed %d: the pick landed on %s after its Drain returned", seed, res.Server)
		}
		require.ErrorIs(t, err, ErrNoServer)
		for _, s := range servers {
			assert.Zero(t, s.InFlight(), s.Name())
		}
	}
}

// TestDrainDuringP2CPick is the same race on P2C's pair draw, with one
// server drained and one left: the pick must land on the one left.
func TestDrainDuringP2CPick(t *testing.T) {
	t.Parallel()
	for _, first := range []int{0, 1} {
		p, servers := newTestPool(t, 1, 1, 1)
		var calls atomic.Int32
		randN := func(n int) int {
			if calls.Add(1) == 1 {
				// The pair draw: (first, 2).
				return first*(3-1) + 1
			}
			return 0
		}
		b, err := NewP2C(p, WithRand(randN))
		require.NoError(t, err)
		// Server 2 slow-starts, so the pick reads the pool's clock after
		// it has checked first's flags and before it counts its choice:
		// the clock drains first to completion in that gap.
		t0 := time.Unix(1000, 0)
		servers[2].SlowStartAt(t0, time.Hour)
		var once sync.Once
		p.SetClock(func() time.Time {
			once.Do(func() { require.NoError(t, p.Drain(context.Background(), servers[first])) })
			return t0
		})
		res, err := b.Pick(nil)
		require.NoError(t, err)
		assert.NotSame(t, servers[first], res.Server, "landed on the drained server")
		res.Done(DoneInfo{})
		assert.Zero(t, servers[first].InFlight())
	}
}

// TestAcquireDraining: Acquire on a server whose Drain has begun counts
// nothing and returns no server, whichever path calls it (a balancer, the
// sticky cookie, the proxy's retry), and Drain is not left waiting.
func TestAcquireDraining(t *testing.T) {
	t.Parallel()
	_, servers := newTestPool(t, 1)
	s := servers[0]
	s.setFlag(flagDraining) // as Drain does before it reads the count
	res := s.Acquire()
	assert.Nil(t, res.Server)
	assert.Nil(t, res.Done)
	assert.Zero(t, s.InFlight())
	assert.Zero(t, s.Stats().Requests)
	s.clearFlag(flagDraining)
	res = s.Acquire()
	require.Same(t, s, res.Server)
	res.Done(DoneInfo{})
}

// TestDrainAddLoadRoundRobin picks from several goroutines while another
// drains a server and adds it back, over and over. Between a Drain that
// returned nil and the Add after it, no pick may hold the server: a picker
// that holds it checks that no such window is open before its Done. Each
// round waits for a pick of the server, so every drain meets live picks.
func TestDrainAddLoadRoundRobin(t *testing.T) {
	// Not parallel: its goroutines must not overlap tests that count
	// the process's goroutines.
	p, servers := newTestPool(t, 1, 1, 1, 1)
	target := servers[0]
	b, err := NewRoundRobin(p)
	require.NoError(t, err)
	// The target slow-starts, so a pick of it reads the pool's clock
	// between checking its flags and counting it; the clock yields there,
	// which widens the gap a drain can fall into.
	t0 := time.Unix(1000, 0)
	target.SlowStartAt(t0.Add(-59*time.Minute), time.Hour) // at 98.5%
	p.SetClock(func() time.Time {
		runtime.Gosched()
		return t0
	})

	var (
		drained    atomic.Bool // Drain of target returned nil, Add not yet
		violations atomic.Int64
		stop       atomic.Bool
		wg         sync.WaitGroup
		picked     = make(chan struct{}, 1)
	)
	for range 3 {
		wg.Go(func() {
			for !stop.Load() {
				runtime.Gosched() // spinning pickers would starve the drainer
				res, err := b.Pick(nil)
				if err != nil {
					assert.ErrorIs(t, err, ErrNoServer)
					continue
				}
				if res.Server == target {
					late := drained.Load()
					select {
					case picked <- struct{}{}:
					default:
					}
					runtime.Gosched() // hold it a little: a Drain must wait
					if late || drained.Load() {
						violations.Add(1)
					}
				}
				res.Done(DoneInfo{})
			}
		})
	}
	const rounds = 1000
	for range rounds {
		<-picked
		require.NoError(t, p.Drain(context.Background(), target))
		drained.Store(true)
		require.Nil(t, p.Server(target.Name()))
		for range 3 {
			runtime.Gosched() // leave a late pick time to show
		}
		drained.Store(false)
		require.NoError(t, p.Add(target))
	}
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, violations.Load(), "picks that held the server after its Drain returned")
	for _, s := range servers {
		assert.Zero(t, s.InFlight(), s.Name())
	}
}

// TestDrainDuringConsistentHashPick is the race on ConsistentHash, bounded
// and not: the key's server slow-starts (at nearly its full share), so
// the pick reads the pool's clock after checking its flags and before
// counting it, and the clock drains it to completion there. The pick must
// go to the other server.
func TestDrainDuringConsistentHashPick(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]Option{nil, {WithBoundedLoad(1.25)}} {
		p, servers := newTestPool(t, 1, 1)
		h, err := NewConsistentHash(p, KeyHeader("X-Key"), opts...)
		require.NoError(t, err)
		const key = "some key"
		res, err := h.PickKey(key)
		require.NoError(t, err)
		owner := res.Server
		res.Done(DoneInfo{})

		t0 := time.Unix(1000, 0)
		for _, s := range servers {
			s.SlowStartAt(t0.Add(-time.Hour+time.Millisecond), time.Hour) // 99.99…%
		}
		var once sync.Once
		p.SetClock(func() time.Time {
			once.Do(func() { require.NoError(t, p.Drain(context.Background(), owner)) })
			return t0
		})
		res, err = h.PickKey(key)
		require.NoError(t, err)
		assert.NotSame(t, owner, res.Server, "landed on the drained server (options %v)", len(opts))
		res.Done(DoneInfo{})
		assert.Zero(t, owner.InFlight())
	}
}
