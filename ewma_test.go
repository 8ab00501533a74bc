package lb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock for a pool (Pool.SetClock).
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock(p *Pool) *fakeClock {
	c := &fakeClock{t: time.Unix(1_000_000, 0)}
	p.SetClock(c.now)
	return c
}
func estimateOf(es []Estimate, name string) Estimate {
	for _, e := range es {
		if e.Server == name {
			return e
		}
	}
	return Estimate{}
}

// latencyBalancer is a balancer that keeps estimates.
type latencyBalancer interface {
	Balancer
	Estimator
	CandidateStats() (picks, candidates uint64)
}

// latencyAlgorithms are the balancers that learn from DoneInfo.
var latencyAlgorithms = []struct {
	name string
	new  func(*Pool, ...Option) (latencyBalancer, error)
}{
	{"PeakEWMA", func(p *Pool, o ...Option) (latencyBalancer, error) { return NewPeakEWMA(p, o...) }},
	{"Adaptive", func(p *Pool, o ...Option) (latencyBalancer, error) { return NewAdaptive(p, o...) }},
}

// serveFor makes n picks, one per step of the clock, each ended at once
// with the outcome outcome(server) gives, and returns the picks per server.
func serveFor(t *testing.T, b Balancer, clock *fakeClock, n int, step time.Duration, outcome func(name string) DoneInfo) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		res, err := b.Pick(nil)
		require.NoError(t, err)
		name := res.Server.Name()
		counts[name]++
		clock.advance(step)
		res.Done(outcome(name))
	}
	return counts
}

func TestWithDecayValidated(t *testing.T) {
	p, _ := newTestPool(t, 1, 1)
	for _, d := range []time.Duration{0, -time.Second, time.Microsecond, 2 * time.Hour} {
		_, err := NewPeakEWMA(p, WithDecay(d))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "lb: NewPeakEWMA: WithDecay: "+d.String())
		_, err = NewAdaptive(p, WithDecay(d))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "lb: NewAdaptive: WithDecay: "+d.String())
	}
	_, err := NewP2C(p, WithDecay(time.Second))
	require.ErrorContains(t, err, "WithDecay) does not apply")
	_, err = NewAdaptive(p, WithRotationStart(0))
	require.ErrorContains(t, err, "WithRotationStart) does not apply")
	_, err = NewPeakEWMA(nil)
	require.ErrorContains(t, err, "lb: NewPeakEWMA: nil pool")
	_, err = NewAdaptive(p, WithDecay(time.Millisecond), WithDecay(time.Hour))
	require.NoError(t, err)
}

func TestPeakEWMAEstimateExact(t *testing.T) {
	p, _ := newTestPool(t, 1)
	clock := newFakeClock(p)
	b, err := NewPeakEWMA(p, WithDecay(10*time.Second))
	require.NoError(t, err)
	observe := func(after, d time.Duration) time.Duration {
		clock.advance(after)
		res, err := b.Pick(nil)
		require.NoError(t, err)
		res.Done(DoneInfo{StatusCode: 200, Duration: d})
		return b.Estimates()[0].Latency
	}
	assert.Equal(t, 10*time.Millisecond, observe(0, 10*time.Millisecond), "the first observation")
	assert.Equal(t, 30*time.Millisecond, observe(time.Second, 30*time.Millisecond), "a slower one: at once")
	// A faster one τ later: 10 ms + (30 ms - 10 ms)·e^-1, by elapsed time.
	want := 10*time.Millisecond + time.Duration(float64(20*time.Millisecond)*math.Exp(-1))
	assert.InDelta(t, float64(want), float64(observe(10*time.Second, 10*time.Millisecond)), 1000)
	// Ten fast ones a microsecond apart barely move it: decay is by time,
	// not per sample.
	var got time.Duration
	for range 10 {
		got = observe(time.Microsecond, 10*time.Millisecond)
	}
	assert.InDelta(t, float64(want), float64(got), float64(10*time.Microsecond))
}

func TestLatencyBalancersLearnNothingFromTheClient(t *testing.T) {
	outcomes := []DoneInfo{
		{Err: context.Canceled, Duration: 10 * time.Second},
		{Err: fmt.Errorf("proxy: %w", context.Canceled), StatusCode: 502, Duration: time.Second},
		{Err: fmt.Errorf("read: %w", ErrClientBody), StatusCode: 400, Duration: time.Second},
		{Err: errNotUsed},
	}
	for _, alg := range latencyAlgorithms {
		t.Run(alg.name, func(t *testing.T) {
			p, servers := newTestPool(t, 1)
			clock := newFakeClock(p)
			b, err := alg.new(p)
			require.NoError(t, err)
			for _, info := range outcomes {
				res, err := b.Pick(nil)
				require.NoError(t, err)
				clock.advance(time.Second)
				res.Done(info)
			}
			est := b.Estimates()[0]
			assert.False(t, est.Observed)
			assert.Zero(t, est.Latency)
			assert.Zero(t, est.Failures)
			assert.Zero(t, servers[0].InFlight())
			assert.Zero(t, servers[0].Stats().Failures)
		})
	}
}

func TestLatencyBalancersAvoidSlowServerAndComeBack(t *testing.T) {
	for _, alg := range latencyAlgorithms {
		t.Run(alg.name, func(t *testing.T) {
			p, _ := newTestPool(t, 1, 1, 1, 1)
			clock := newFakeClock(p)
			b, err := alg.new(p, seeded(7), WithDecay(time.Second))
			require.NoError(t, err)
			slow := true
			outcome := func(name string) DoneInfo {
				if name == "s3" && slow {
					return DoneInfo{StatusCode: 200, Duration: 100 * time.Millisecond}
				}
				return DoneInfo{StatusCode: 200, Duration: 10 * time.Millisecond}
			}
			serveFor(t, b, clock, 1000, time.Millisecond, outcome) // learn
			counts := serveFor(t, b, clock, 4000, time.Millisecond, outcome)
			assert.Less(t, counts["s3"], 4000/4/4, "the slow server's share falls below a quarter of its fair share")

			slow = false
			serveFor(t, b, clock, 40_000, time.Millisecond, outcome) // 40 s
			counts = serveFor(t, b, clock, 4000, time.Millisecond, outcome)
			assert.Greater(t, counts["s3"], 4000/4*8/10, "the recovered server gets 80%% of its fair share back")
		})
	}
}

func TestLatencyBalancersPenaliseFailures(t *testing.T) {
	failures := map[string]DoneInfo{
		"error":       {Err: errors.New("connection refused"), Duration: time.Millisecond},
		"status 503":  {StatusCode: 503, Duration: time.Millisecond},
		"no duration": {Err: errors.New("reset")},
	}
	for _, alg := range latencyAlgorithms {
		for what, failure := range failures {
			t.Run(alg.name+"/"+what, func(t *testing.T) {
				p, servers := newTestPool(t, 1, 1, 1, 1)
				clock := newFakeClock(p)
				b, err := alg.new(p, seeded(3))
				require.NoError(t, err)
				outcome := func(name string) DoneInfo {
					if name == "s3" {
						return failure
					}
					return DoneInfo{StatusCode: 200, Duration: 10 * time.Millisecond}
				}
				serveFor(t, b, clock, 1000, time.Millisecond, outcome)
				counts := serveFor(t, b, clock, 10_000, time.Millisecond, outcome)
				assert.Less(t, counts["s3"], 100, "a server failing fast gets at most 1%% of the requests")
				for _, s := range servers {
					assert.Zero(t, s.InFlight())
				}
			})
		}
	}
}

func TestLatencyBalancersStartNewServersNeutral(t *testing.T) {
	for _, alg := range latencyAlgorithms {
		t.Run(alg.name, func(t *testing.T) {
			p, _ := newTestPool(t, 1, 1)
			clock := newFakeClock(p)
			b, err := alg.new(p, seeded(5))
			require.NoError(t, err)
			outcome := func(string) DoneInfo { return DoneInfo{StatusCode: 200, Duration: 10 * time.Millisecond} }
			serveFor(t, b, clock, 1000, time.Millisecond, outcome)
			extra, err := NewServer("http://10.0.0.9:80", WithName("new"))
			require.NoError(t, err)
			require.NoError(t, p.Add(extra))
			est := estimateOf(b.Estimates(), "new")
			assert.False(t, est.Observed)
			assert.InDelta(t, float64(10*time.Millisecond), float64(est.Latency), float64(time.Millisecond), "the neutral estimate")
			counts := serveFor(t, b, clock, 3000, time.Millisecond, outcome)
			assert.Greater(t, counts["new"], 3000/3*8/10)
			assert.True(t, estimateOf(b.Estimates(), "new").Observed)
		})
	}
}
