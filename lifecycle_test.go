package lb

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// share returns the fraction of n picks (each ended at once) that went to
// name.
func share(t *testing.T, b Balancer, n int, name string) float64 {
	return float64(countPicks(t, b, n)[name]) / float64(n)
}

// heldShare returns the fraction of n held picks that went to name, then
// ends them.
func heldShare(t *testing.T, b Balancer, n int, name string) float64 {
	names, release := hold(t, b, n)
	defer release()
	k := 0
	for _, got := range names {
		if got == name {
			k++
		}
	}
	return float64(k) / float64(n)
}

func TestSlowStartShares(t *testing.T) {
	t.Parallel()
	const window = 100 * time.Second
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, servers := newTestPool(t, 1, 1)
				b, err := alg.new(p, append(alg.startAtZero(), seeded(21))...)
				require.NoError(t, err)
				measure := func() float64 {
					if alg.name == "LeastConn" || alg.name == "P2C" || alg.name == "PeakEWMA" || alg.name == "Adaptive" {
						// Load-aware: the share of what is in flight.
						return heldShare(t, b, 2000, "s1")
					}
					return share(t, b, 20_000, "s1")
				}
				start := time.Now()
				servers[1].SlowStart(window)
				// At each point the ramping server's weight is f of
				// full, f = 0.1 + 0.9·elapsed/window, so its share
				// against an equal server is f/(1+f); consistent
				// hashing gives it f of its half of the keys.
				for _, point := range []struct {
					elapsed time.Duration
					f       float64
				}{
					{0, 0.1},
					{10 * time.Second, 0.19},
					{50 * time.Second, 0.55},
					{window, 1},
				} {
					time.Sleep(time.Until(start.Add(point.elapsed)))
					want := point.f / (1 + point.f)
					if alg.name == "ConsistentHash" {
						want = point.f / 2
					}
					assert.InDelta(t, want, measure(), 0.02, "at %v", point.elapsed)
				}
				assert.InDelta(t, 1, servers[1].Stats().Ramp, 0)
				assert.Zero(t, servers[1].flags.Load(), "the ramp has ended")
			})
		})
	}
}

func TestSlowStartEndsEarly(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newTestServers(t, 1)[0]
		s.SlowStart(time.Minute)
		assert.InDelta(t, 0.1, s.Stats().Ramp, 1e-9)
		assert.True(t, s.Available(), "ramping is available, at a reduced share")
		time.Sleep(30 * time.Second)
		assert.InDelta(t, 0.55, s.Stats().Ramp, 1e-9)
		s.SlowStart(0)
		assert.InDelta(t, 1, s.Stats().Ramp, 0)
	})
}

func TestPanicMode(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 1, 1, 1)
	assert.ErrorContains(t, p.SetPanicThreshold(1.5), "threshold 1.5 is not between 0 and 1")
	assert.Error(t, p.SetPanicThreshold(-0.1))
	for _, s := range servers[1:] {
		s.SetHealthy(false)
	}
	for _, alg := range algorithms {
		b, err := alg.new(p, append(alg.startAtZero(), seeded(5))...)
		require.NoError(t, err)

		// Fail fast (the default): only the healthy server.
		require.NoError(t, p.SetPanicThreshold(0))
		assert.Equal(t, map[string]int{"s0": 40}, countPicks(t, b, 40), alg.name)

		// Below the threshold (1 of 4 up < 50%): all of them.
		require.NoError(t, p.SetPanicThreshold(0.5))
		assert.Len(t, countPicks(t, b, 400), 4, alg.name)

		// At the threshold (2 of 4 up): healthy ones only.
		servers[1].SetHealthy(true)
		assert.Len(t, countPicks(t, b, 400), 2, alg.name)
		servers[1].SetHealthy(false)

		// All down: still served, and a draining server never is.
		servers[0].SetHealthy(false)
		servers[3].setFlag(flagDraining)
		counts := countPicks(t, b, 300)
		assert.Len(t, counts, 3, alg.name)
		assert.Zero(t, counts["s3"], alg.name)
		servers[3].clearFlag(flagDraining)
		servers[0].SetHealthy(true)

		require.NoError(t, p.SetPanicThreshold(0))
		servers[0].SetHealthy(false)
		_, err = b.Pick(nil)
		assert.ErrorIs(t, err, ErrNoServer, alg.name)
		servers[0].SetHealthy(true)
	}
}

func TestDrain(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1, 1)
		rr, err := NewRoundRobin(p, WithRotationStart(0))
		require.NoError(t, err)
		a := servers[0].Acquire()
		b := servers[0].Acquire()

		drained := make(chan error, 1)
		go func() { drained <- p.Drain(context.Background(), servers[0]) }()
		synctest.Wait() // Drain is now waiting
		assert.True(t, servers[0].Draining())
		assert.EqualError(t, p.Drain(context.Background(), servers[0]), `lb: drain "s0": already draining`,
			"a second drain would wait on a signal the first one takes")
		assert.Equal(t, map[string]int{"s1": 10}, countPicks(t, rr, 10), "no new picks")

		a.Done(DoneInfo{})
		synctest.Wait()
		select {
		case <-drained:
			t.Fatal("Drain returned with a request in flight")
		default:
		}
		b.Done(DoneInfo{})
		require.NoError(t, <-drained)
		assert.Nil(t, p.Server("s0"), "removed once idle")
		assert.False(t, servers[0].Draining(), "the flag goes with the drain")
		assert.EqualValues(t, 2, servers[0].Stats().Requests)
	})
}

func TestDrainGivesUp(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1, 1)
		held := servers[0].Acquire()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := p.Drain(ctx, servers[0])
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorContains(t, err, `lb: drain "s0": 1 requests still in flight`)
		assert.Nil(t, p.Server("s0"), "removed all the same")
		held.Done(DoneInfo{})
		assert.Zero(t, servers[0].InFlight())

		// An idle server drains at once; a stranger is an error.
		require.NoError(t, p.Drain(context.Background(), servers[1]))
		assert.Zero(t, p.Len())
		assert.True(t, errors.Is(p.Drain(context.Background(), servers[1]), ErrUnknownServer))
	})
}

func TestPoolChanged(t *testing.T) {
	t.Parallel()
	var p Pool
	ch := p.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any change")
	default:
	}
	require.NoError(t, p.Add(newTestServers(t, 1)...))
	select {
	case <-ch:
	default:
		t.Fatal("not closed by Add")
	}
	next := p.Changed()
	assert.NotEqual(t, ch, next)
	require.Error(t, p.Add(nil)) // a failed change is no change
	select {
	case <-next:
		t.Fatal("closed by a failed Add")
	default:
	}
}

func TestPoolClockDrivesSlowStart(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 1)
	virtual := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	p.SetClock(func() time.Time { return virtual })
	servers[1].SlowStartAt(virtual, 100*time.Second)
	rd, err := NewRandom(p, seeded(3))
	require.NoError(t, err)
	assert.InDelta(t, 0.1/1.1, share(t, rd, 20_000, "s1"), 0.02)
	virtual = virtual.Add(50 * time.Second)
	assert.InDelta(t, 0.55/1.55, share(t, rd, 20_000, "s1"), 0.02)
	virtual = virtual.Add(50 * time.Second)
	assert.InDelta(t, 0.5, share(t, rd, 20_000, "s1"), 0.02)
	p.SetClock(nil)
	assert.WithinDuration(t, time.Now(), p.now(), time.Minute)
}

func TestStatsDoNotEndARamp(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1)
		servers[0].SlowStart(time.Minute)
		time.Sleep(2 * time.Minute)
		assert.InDelta(t, 1, servers[0].Stats().Ramp, 0)
		assert.NotZero(t, servers[0].flags.Load()&flagRamping, "reading stats changes nothing")
		rr, err := NewRoundRobin(p)
		require.NoError(t, err)
		pickNames(t, rr, 1)
		assert.Zero(t, servers[0].flags.Load(), "the first pick after the ramp ends it")
	})
}
