package lb

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdaptiveLearnsSpeedByInFlightMet(t *testing.T) {
	p, servers := newTestPool(t, 1)
	clock := newFakeClock(p)
	b, err := NewAdaptive(p)
	require.NoError(t, err)
	var dones []func(DoneInfo)
	for range 3 {
		res, err := b.Pick(nil)
		require.NoError(t, err)
		dones = append(dones, res.Done)
	}
	// The third pick met 3 in flight (itself included): its 60 ms are
	// a speed of 60 ms / ((3+3)/4) = 40 ms.
	dones[2](DoneInfo{StatusCode: 200, Duration: 60 * time.Millisecond})
	est := b.Estimates()[0]
	assert.True(t, est.Observed)
	// Two still in flight: a request sent now meets 3.
	assert.InDelta(t, float64(60*time.Millisecond), float64(est.Latency), 1)
	// The first met 1: 25 ms a millisecond later moves the speed by a
	// 32nd of the gap.
	clock.advance(time.Millisecond)
	dones[0](DoneInfo{StatusCode: 200, Duration: 25 * time.Millisecond})
	dones[1](DoneInfo{Err: errNotUsed})
	assert.Zero(t, servers[0].InFlight())
	speed := 40e6 + (25e6-40e6)/32.0
	// The neutral speed is still the first one learnt (it is fed at most
	// once a millisecond); the estimate is the speed met alone.
	assert.InDelta(t, speed, float64(b.Estimates()[0].Latency), 1)
}

func TestAdaptiveLooksFurtherOnlyWhenBothAreSlow(t *testing.T) {
	for _, tc := range []struct {
		slow      int
		wantExtra bool
	}{
		{slow: 0, wantExtra: false},
		{slow: 8, wantExtra: true},
	} {
		t.Run(fmt.Sprintf("%d slow of 16", tc.slow), func(t *testing.T) {
			p, _ := newTestPool(t, ones(16)...)
			clock := newFakeClock(p)
			b, err := NewAdaptive(p, seeded(11))
			require.NoError(t, err)
			outcome := func(name string) DoneInfo {
				var i int
				_, _ = fmt.Sscanf(name, "s%d", &i)
				if i >= 16-tc.slow {
					return DoneInfo{StatusCode: 200, Duration: 40 * time.Millisecond}
				}
				return DoneInfo{StatusCode: 200, Duration: 10 * time.Millisecond}
			}
			serveFor(t, b, clock, 2000, 100*time.Microsecond, outcome)
			picks0, cands0 := b.CandidateStats()
			counts := serveFor(t, b, clock, 10_000, 100*time.Microsecond, outcome)
			picks, cands := b.CandidateStats()
			require.Equal(t, uint64(10_000), picks-picks0)
			mean := float64(cands-cands0) / 10_000
			if !tc.wantExtra {
				assert.Equal(t, 2.0, mean)
				return
			}
			// Both slow in 8/16 × 7/15 of the picks; then one more draw,
			// another if it is slow too, up to 4.
			assert.Greater(t, mean, 2.2)
			assert.Less(t, mean, 2.5)
			slowPicks := 0
			for i := 16 - tc.slow; i < 16; i++ {
				slowPicks += counts[fmt.Sprintf("s%d", i)]
			}
			assert.Less(t, slowPicks, 10_000/100, "the slow half gets under 1%% when the fast half is idle")
		})
	}
}

// BenchmarkPickLatencyAware measures Pick+Done of the latency-aware
// balancers, each Done reporting a duration (so each learns), one of 8
// between 6 and 13 ms in turn so that the estimates keep moving as they do
// under real traffic, over 16, 256 and 4,096 servers, serial and parallel.
//
//	go test -run '^$' -bench BenchmarkPickLatencyAware -benchtime 1000000x .
func BenchmarkPickLatencyAware(b *testing.B) {
	var infos [8]DoneInfo
	for i := range infos {
		infos[i] = DoneInfo{StatusCode: 200, Duration: time.Duration(6+i) * time.Millisecond}
	}
	for _, alg := range latencyAlgorithms {
		for _, n := range []int{16, 256, 4096} {
			p, _ := newTestPool(b, ones(n)...)
			bal, err := alg.new(p)
			if err != nil {
				b.Fatal(err)
			}
			if res, err := bal.Pick(nil); err == nil { // builds the table
				res.Done(DoneInfo{})
			}
			name := fmt.Sprintf("%s/servers=%d", alg.name, n)
			b.Run(name+"/serial", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					res, err := bal.Pick(nil)
					if err != nil {
						b.Fatal(err)
					}
					i++
					res.Done(infos[i%len(infos)])
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						res, err := bal.Pick(nil)
						if err != nil {
							b.Error(err)
							return
						}
						i++
						res.Done(infos[i%len(infos)])
					}
				})
			})
		}
	}
}
