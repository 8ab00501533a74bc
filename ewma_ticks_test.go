package lb

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A balancer whose Dones come fewer than tickBurst to a tick reads the
// clock at each Done and starts no ticks: a timer firing every tick would cost
// far more than the clock reads it spares (each balancer has its own, so
// a process with many lightly loaded balancers would pay for all). The
// estimates are stamped with the time of the Done, and picks see it.
func TestLatencyBalancersNoTicksForSparseDones(t *testing.T) {
	for _, alg := range latencyAlgorithms {
		t.Run(alg.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, _ := newTestPool(t, 1, 1)
				b, err := alg.new(p, seeded(1))
				require.NoError(t, err)
				es := estimatesOf(t, b)
				require.True(t, es.coarse)
				for i := range 50 {
					time.Sleep(2 * tickEvery)
					// Now and then a few Dones at once, as requests
					// that arrive at random end: still too few.
					for range 1 + i%tickBurst {
						res, err := b.Pick(nil)
						require.NoError(t, err)
						res.Done(DoneInfo{StatusCode: 200, Duration: 10 * time.Millisecond})
					}
					assert.False(t, es.ticks.running.Load(), "ticks for %d Dones every 2 ticks", 1+i%tickBurst)
					assert.Equal(t, time.Now().UnixNano(), es.now.Load(), "picks see the time of the last Done")
					ests := es.current().ests
					assert.Equal(t, time.Now().UnixNano(), max(ests[0].stamp.Load(), ests[1].stamp.Load()), "stamped with the time of the Done")
				}
			})
		})
	}
}

// Dones that come more than tickBurst to a tick start the ticks.
func TestLatencyBalancersTicksStartForDenseDones(t *testing.T) {
	for _, alg := range latencyAlgorithms {
		t.Run(alg.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, _ := newTestPool(t, 1, 1)
				b, err := alg.new(p, seeded(1))
				require.NoError(t, err)
				es := estimatesOf(t, b)
				for range tickBurst + 1 {
					require.False(t, es.ticks.running.Load())
					res, err := b.Pick(nil)
					require.NoError(t, err)
					res.Done(DoneInfo{StatusCode: 200, Duration: 10 * time.Millisecond})
				}
				assert.True(t, es.ticks.running.Load())
				time.Sleep((idleTicks + 1) * tickEvery)
				synctest.Wait()
				assert.False(t, es.ticks.running.Load())
			})
		})
	}
}
