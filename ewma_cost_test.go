package lb

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// estimatesOf returns the estimates of a latency-aware balancer.
func estimatesOf(t *testing.T, b latencyBalancer) *estimates {
	t.Helper()
	switch b := b.(type) {
	case *PeakEWMA:
		return &b.es
	case *Adaptive:
		return &b.es
	}
	t.Fatalf("%T keeps no estimates", b)
	return nil
}

// With no clock set on the pool, Dones read a coarse clock that ticks
// while they come more than tickBurst to a tick: it stays within a tick of
// the time, the estimates are stamped with it, and it stops ticking once
// Dones stop, leaving nothing running (synctest.Test fails on a goroutine
// left behind).
func TestLatencyBalancersCoarseClock(t *testing.T) {
	for _, alg := range latencyAlgorithms {
		t.Run(alg.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, _ := newTestPool(t, 1, 1)
				b, err := alg.new(p, seeded(1))
				require.NoError(t, err)
				es := estimatesOf(t, b)
				require.True(t, es.coarse)
				require.False(t, es.ticks.running.Load(), "no tick before a Done learns")
				pickDone := func() {
					res, err := b.Pick(nil)
					require.NoError(t, err)
					res.Done(DoneInfo{StatusCode: 200, Duration: 10 * time.Millisecond})
				}
				for range 3 {
					for range tickBurst {
						pickDone()
						require.False(t, es.ticks.running.Load(), "a Done reads the clock, and starts no ticks")
					}
					pickDone()
					require.True(t, es.ticks.running.Load(), "tickBurst more Dones within a tick start them")
					assert.Equal(t, time.Now().UnixNano(), es.now.Load(), "the Done that starts the ticks reads the clock")
					for range 100 {
						time.Sleep(tickEvery / 3)
						pickDone()
						lag := time.Now().UnixNano() - es.now.Load()
						assert.GreaterOrEqual(t, lag, int64(0))
						assert.LessOrEqual(t, lag, int64(tickEvery))
					}
					var last int64
					for _, e := range es.current().ests {
						last = max(last, e.stamp.Load())
					}
					assert.Equal(t, es.now.Load(), last, "the last Done is stamped with the coarse time")
					time.Sleep((idleTicks + 1) * tickEvery)
					synctest.Wait()
					assert.False(t, es.ticks.running.Load(), "the ticks stop once Dones stop")
					time.Sleep(time.Second)
				}
			})
		})
	}
}

// With a time constant under coarseDecay, or with the pool's clock set,
// every Done reads the clock: no ticks.
func TestLatencyBalancersExactClock(t *testing.T) {
	for _, alg := range latencyAlgorithms {
		t.Run(alg.name, func(t *testing.T) {
			p, _ := newTestPool(t, 1, 1)
			b, err := alg.new(p, WithDecay(coarseDecay-time.Millisecond))
			require.NoError(t, err)
			require.False(t, estimatesOf(t, b).coarse)
			clocked, _ := newTestPool(t, 1, 1)
			clock := newFakeClock(clocked)
			c, err := alg.new(clocked)
			require.NoError(t, err)
			for _, b := range []latencyBalancer{b, c} {
				res, err := b.Pick(nil)
				require.NoError(t, err)
				res.Done(DoneInfo{StatusCode: 200, Duration: time.Millisecond})
				assert.False(t, estimatesOf(t, b).ticks.running.Load())
			}
			assert.Equal(t, clock.t.UnixNano(), estimatesOf(t, c).now.Load())
		})
	}
}

// A Drain that begins and ends between the choice of a latency-aware pick
// and its count (here while Adaptive looks past two slow candidates) must
// not leave the pick on the drained server: it chooses again, and the
// drained server counts nothing in flight.
func TestDrainDuringAdaptiveExtraDraw(t *testing.T) {
	p, servers := newTestPool(t, ones(6)...)
	newFakeClock(p)
	var drain atomic.Bool
	draws := 0
	randN := func(n int) int {
		draws++
		if draws == 1 {
			return 0 // the pair (0, 1)
		}
		if drain.CompareAndSwap(true, false) {
			require.NoError(t, p.Drain(context.Background(), servers[0]))
		}
		return 2 + draws%4
	}
	b, err := NewAdaptive(p, WithRand(randN))
	require.NoError(t, err)
	res, err := b.Pick(nil)
	require.NoError(t, err)
	res.Cancel()
	// Every server slow against the neutral estimate, server 0 the
	// least: the pair (0, 1) is both slow, so the pick draws more.
	setF64(&b.es.ref, float64(time.Millisecond))
	for i, e := range b.es.current().ests {
		setF64(&e.lat, float64(50+i)*float64(time.Millisecond))
		e.stamp.Store(b.es.now.Load())
	}
	draws = 0
	drain.Store(true)
	res, err = b.Pick(nil)
	require.NoError(t, err)
	require.False(t, drain.Load(), "the extra draw ran the drain")
	require.NotNil(t, res.Server)
	assert.NotEqual(t, "s0", res.Server.Name(), "the pick landed on the server drained under it")
	res.Cancel()
	for _, s := range servers {
		assert.Zero(t, s.InFlight(), s.Name())
	}
}

// Setting the pool's clock while the coarse clock ticks stops the ticks at
// the next one, which does not call the pool's clock: only Dones do, on
// the goroutine that calls them.
func TestLatencyBalancersTicksStopForThePoolsClock(t *testing.T) {
	for _, alg := range latencyAlgorithms {
		t.Run(alg.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, _ := newTestPool(t, 1, 1)
				b, err := alg.new(p)
				require.NoError(t, err)
				es := estimatesOf(t, b)
				for range tickBurst + 1 { // Dones within a tick that start the ticks
					res, err := b.Pick(nil)
					require.NoError(t, err)
					res.Done(DoneInfo{StatusCode: 200, Duration: time.Millisecond})
				}
				require.True(t, es.ticks.running.Load())
				var calls atomic.Int32
				at := time.Unix(1_000_000, 0)
				p.SetClock(func() time.Time { calls.Add(1); return at })
				time.Sleep(2 * tickEvery)
				synctest.Wait()
				assert.False(t, es.ticks.running.Load(), "the ticks stopped")
				assert.Zero(t, calls.Load(), "the ticks called the pool's clock")
				res, err := b.Pick(nil)
				require.NoError(t, err)
				res.Done(DoneInfo{StatusCode: 200, Duration: time.Millisecond})
				assert.Equal(t, int32(1), calls.Load(), "the Done read the pool's clock")
				assert.Equal(t, at.UnixNano(), es.now.Load())
			})
		})
	}
}
