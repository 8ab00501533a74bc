package lb

import (
	"context"
	"fmt"
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

func TestHealthAndPoolNumbersAtTheEdges(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1)
	rejected := []struct {
		opt  HealthOption
		want string
	}{
		{WithCheckStatus(99, 200), "WithCheckStatus: invalid range 99 to 200"},
		{WithCheckStatus(200, 1000), "WithCheckStatus: invalid range 200 to 1000"},
		{WithCheckStatus(math.MinInt, math.MaxInt), fmt.Sprintf("WithCheckStatus: invalid range %d to %d", math.MinInt, math.MaxInt)},
		{WithCheckTimeout(math.MinInt64), "WithCheckTimeout: -2562047h47m16.854775808s is not positive"},
		{WithCheckInterval(math.MinInt64, time.Second), "WithCheckInterval: intervals -2562047h47m16.854775808s and 1s must be positive"},
		{WithCheckJitter(math.NaN()), "WithCheckJitter: fraction NaN is not in [0, 1)"},
		{WithCheckJitter(math.Inf(1)), "WithCheckJitter: fraction +Inf is not in [0, 1)"},
		{WithCheckJitter(-0.1), "WithCheckJitter: fraction -0.1 is not in [0, 1)"},
		{WithCheckRiseFall(1, math.MinInt), fmt.Sprintf("WithCheckRiseFall: rise 1 and fall %d must be at least 1", math.MinInt)},
		{WithCheckSlowStart(math.MinInt64), "WithCheckSlowStart: negative window -2562047h47m16.854775808s"},
	}
	for _, tt := range rejected {
		_, err := NewHealthChecker(p, tt.opt)
		assert.ErrorContains(t, err, "lb: NewHealthChecker: "+tt.want)
	}
	// The largest values are accepted: they mean "practically never".
	for _, opt := range []HealthOption{
		WithCheckTimeout(math.MaxInt64), WithCheckInterval(math.MaxInt64, math.MaxInt64),
		WithCheckJitter(math.Nextafter(1, 0)), WithCheckRiseFall(math.MaxInt, math.MaxInt), WithCheckSlowStart(math.MaxInt64),
	} {
		_, err := NewHealthChecker(p, opt)
		assert.NoError(t, err)
	}

	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -0.1, 1.5, math.MaxFloat64} {
		err := p.SetPanicThreshold(v)
		assert.ErrorContains(t, err, fmt.Sprintf("lb: SetPanicThreshold: threshold %v is not between 0 and 1", v))
	}
	assert.NoError(t, p.SetPanicThreshold(math.SmallestNonzeroFloat64))
}
