package lb

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One outlying observation (a request that took an hour, or a caller's
// bogus Duration) moves a server's own estimate, but not the neutral
// estimate every new or stale server is measured by: that moves by at most
// a bounded factor per observation, so a new server is not judged an hour
// slow.
func TestOutlierDoesNotPoisonTheNeutralEstimate(t *testing.T) {
	for _, alg := range latencyAlgorithms {
		for _, outlier := range []time.Duration{time.Hour, math.MaxInt64} {
			t.Run(alg.name+"/"+outlier.String(), func(t *testing.T) {
				p, _ := newTestPool(t, 1, 1)
				clock := newFakeClock(p)
				b, err := alg.new(p, seeded(1))
				require.NoError(t, err)
				serveFor(t, b, clock, 200, 2*time.Millisecond, func(string) DoneInfo {
					return DoneInfo{StatusCode: 200, Duration: 10 * time.Millisecond}
				})
				res, err := b.Pick(nil)
				require.NoError(t, err)
				clock.advance(2 * time.Millisecond)
				res.Done(DoneInfo{StatusCode: 200, Duration: outlier})
				fresh, err := NewServer("http://10.0.0.9:80", WithName("fresh"))
				require.NoError(t, err)
				require.NoError(t, p.Add(fresh))
				got := estimateOf(b.Estimates(), "fresh")
				require.False(t, got.Observed)
				assert.LessOrEqual(t, got.Latency, 2*10*time.Millisecond, "neutral estimate after one outlier")
				for _, e := range b.Estimates() {
					assert.GreaterOrEqual(t, e.Latency, time.Duration(0), "%s", e.Server)
				}
			})
		}
	}
}

// Pick and a Done that teaches (a duration, a failure) allocate nothing:
// TestPickAllocatesNothing ends its picks with no duration, which skips
// the learning.
func TestLatencyAwareLearningAllocatesNothing(t *testing.T) {
	for _, alg := range latencyAlgorithms {
		for _, n := range []int{3, 16} {
			p, servers := newTestPool(t, ones(n)...)
			servers[1].SetHealthy(false)
			b, err := alg.new(p)
			require.NoError(t, err)
			i := 0
			pickDone := func() {
				res, err := b.Pick(nil)
				if err != nil {
					panic(err)
				}
				i++
				if i%5 == 0 {
					res.Done(DoneInfo{StatusCode: 503, Duration: time.Millisecond})
					return
				}
				res.Done(DoneInfo{StatusCode: 200, Duration: time.Duration(i%7+1) * time.Millisecond})
			}
			pickDone()
			assert.Zero(t, testing.AllocsPerRun(1000, pickDone), "%s over %d", alg.name, n)
		}
	}
}

// When tables for two snapshots of the pool are built at once (two picks
// meeting two changes of the pool), the weight shares of the newer one
// stand, whichever is built last.
func TestAdaptiveShareOfTheNewerSnapshotStands(t *testing.T) {
	p, servers := newTestPool(t, 1, 1)
	a, err := NewAdaptive(p)
	require.NoError(t, err)
	a.es.current()
	older := p.load()
	heavy, err := NewServer("http://10.0.0.9:80", WithName("heavy"), WithWeight(4))
	require.NoError(t, err)
	require.NoError(t, p.Add(heavy))
	old := a.es.table.Load()
	a.es.current()            // the newer snapshot's table, kept
	a.es.newTable(older, old) // the older one's, built late and dropped
	e := a.es.current().ests[0]
	require.Same(t, servers[0], e.s)
	assert.Equal(t, 2.0, f64(&e.share), "mean weight 6/3 over weight 1")
}
