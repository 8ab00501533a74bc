package lb

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJitteredSaturates(t *testing.T) {
	t.Parallel()
	const maxD = time.Duration(math.MaxInt64)
	tests := []struct {
		d    time.Duration
		f, r float64
		want time.Duration
	}{
		{5 * time.Second, 0.1, 0.5, 5 * time.Second},
		{5 * time.Second, 0.1, 0, 4500 * time.Millisecond},
		{5 * time.Second, 0, 0.99, 5 * time.Second},
		{maxD, 0, 0.99, maxD},
		{maxD, 0.1, 0.99, maxD}, // would be 1.098 × the largest Duration
		{maxD / 4 * 3, 0.5, 0.99, maxD},
		{maxD, 0.1, 0.5, maxD},   // exactly d: 2^63 as a float64
		{maxD, 0.5, 0, maxD / 2}, // well inside
		{1, 0.5, 0, 1},           // never 0, which would fire at once
	}
	for _, tt := range tests {
		got := jittered(tt.d, tt.f, tt.r)
		if tt.want == maxD/2 {
			assert.InDelta(t, float64(tt.want), float64(got), 1024, "%v %v %v", tt.d, tt.f, tt.r)
			continue
		}
		assert.Equal(t, tt.want, got, "%v %v %v", tt.d, tt.f, tt.r)
		assert.Positive(t, got)
	}
}

func TestHealthHugeIntervalsNeverFireEarly(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, _ := newTestPool(t, 1)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var probes atomic.Int64
		hc, err := NewHealthChecker(p, quietCheck,
			WithCheckInterval(math.MaxInt64, math.MaxInt64), WithCheckTimeout(math.MaxInt64), WithCheckJitter(0.5),
			WithCheckFunc(func(context.Context, *Server) error {
				if probes.Add(1) >= 3 {
					cancel() // a runaway loop stops here
				}
				return nil
			}))
		require.NoError(t, err)
		hc.o.rand = func() float64 { return 0.99 } // the longest interval
		done := make(chan error, 1)
		go func() { done <- hc.Run(ctx) }()
		synctest.Wait()
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		assert.EqualValues(t, 1, probes.Load(), "the first probe only")
		cancel()
		require.NoError(t, <-done)
	})
}
