package otel

import (
	"context"
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/balancekit/lb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// newHandlerServer returns a server named name over a handler that
// answers 200.
func newHandlerServer(t *testing.T, name string) *lb.Server {
	t.Helper()
	s, err := lb.NewHandlerServer(name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	require.NoError(t, err)
	return s
}

// histogramPoints returns the data points of lb.request.duration in sm,
// by server name.
func histogramPoints(t *testing.T, sm []metricdata.ScopeMetrics) map[string]metricdata.HistogramDataPoint[float64] {
	t.Helper()
	out := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, s := range sm {
		for _, m := range s.Metrics {
			if m.Name != "lb.request.duration" {
				continue
			}
			h, ok := m.Data.(metricdata.Histogram[float64])
			require.True(t, ok, "%T", m.Data)
			for _, p := range h.DataPoints {
				name, _ := p.Attributes.Value(ServerKey)
				out[name.AsString()] = p
			}
		}
	}
	return out
}

// TestProducerOctaves reads the latency histograms of servers with known
// durations through the SDK's manual reader and checks every bucket: the
// 21 finite bounds of lb.Histogram.Octaves, the count of each bucket and
// of the one above, the count and the sum.
func TestProducerOctaves(t *testing.T) {
	t.Parallel()
	one, idle := newHandlerServer(t, "one"), newHandlerServer(t, "idle")
	pool, err := lb.NewPool(one, idle)
	require.NoError(t, err)
	for _, d := range []time.Duration{
		30 * time.Microsecond, // (0, 65.536 µs]
		65536,                 // on the first bound
		time.Millisecond,      // (0.524288 ms, 1.048576 ms]
		time.Millisecond,
		50 * time.Millisecond, // (33.554432 ms, 67.108864 ms]
		2 * time.Second,       // (1.073741824 s, 2.147483648 s]
		40 * time.Second,      // (34.359738368 s, 60.129542144 s]
		2 * time.Minute,       // above 60.129542144 s
	} {
		one.Acquire().Done(lb.DoneInfo{Duration: d})
	}
	producer, err := NewProducer(pool)
	require.NoError(t, err)
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(producer))
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { assert.NoError(t, provider.Shutdown(context.Background())) }()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	points := histogramPoints(t, rm.ScopeMetrics)
	require.Len(t, points, 2)

	var bounds []float64
	for k := 16; k <= 35; k++ {
		bounds = append(bounds, math.Ldexp(1, k)/1e9)
	}
	bounds = append(bounds, 60.129542144)
	p := points["one"]
	assert.Equal(t, bounds, p.Bounds)
	//                   65µs 131µs 262µs 524µs 1ms 2ms 4ms 8ms 16ms 33ms 67ms
	assert.Equal(t, []uint64{2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1,
		// 134ms 268ms 536ms 1s 2s 4s 8s 17s 34s 60s +Inf
		0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1}, p.BucketCounts)
	assert.Equal(t, uint64(8), p.Count)
	assert.InDelta(t, 162.052095536, p.Sum, 1e-9)

	p = points["idle"]
	assert.Equal(t, bounds, p.Bounds)
	assert.Equal(t, make([]uint64, 22), p.BucketCounts)
	assert.Zero(t, p.Count)
	assert.Zero(t, p.Sum)
}

// TestProducerStartTimes checks the start time of each server's series:
// the Producer's creation for the servers there then, the first Produce
// for one added later; a new start time for a server replaced by another
// of the same name, and for one that left and came back; the same one for
// a server that stays.
func TestProducerStartTimes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a, b := newHandlerServer(t, "a"), newHandlerServer(t, "b")
		pool, err := lb.NewPool(a, b)
		require.NoError(t, err)
		t0 := time.Now()
		producer, err := NewProducer(pool)
		require.NoError(t, err)
		produce := func() map[string]metricdata.HistogramDataPoint[float64] {
			t.Helper()
			time.Sleep(time.Minute) // the fake clock moves on between collections
			sm, err := producer.Produce(context.Background())
			require.NoError(t, err)
			return histogramPoints(t, sm)
		}
		start := func(points map[string]metricdata.HistogramDataPoint[float64]) map[string]time.Time {
			out := map[string]time.Time{}
			for name, p := range points {
				out[name] = p.StartTime
			}
			return out
		}

		p1 := produce()
		assert.Equal(t, map[string]time.Time{"a": t0, "b": t0}, start(p1))
		a.Acquire().Done(lb.DoneInfo{Duration: time.Millisecond})
		p2 := produce()
		assert.Equal(t, map[string]time.Time{"a": t0, "b": t0}, start(p2))
		assert.Equal(t, uint64(1), p2["a"].Count)

		// a is replaced by a new server of the same name, whose counts
		// start from zero, and c joins: both start now.
		a2, c := newHandlerServer(t, "a"), newHandlerServer(t, "c")
		require.NoError(t, pool.Update(a2, b, c))
		t3 := time.Now().Add(time.Minute)
		p3 := produce()
		assert.Equal(t, map[string]time.Time{"a": t3, "b": t0, "c": t3}, start(p3))
		assert.Zero(t, p3["a"].Count)
		assert.True(t, p3["a"].Time.After(p2["a"].Time))

		// b leaves: forgotten. When it comes back, it starts anew.
		require.NoError(t, pool.Remove(b))
		p4 := produce()
		assert.Equal(t, map[string]time.Time{"a": t3, "c": t3}, start(p4))
		producer.mu.Lock()
		assert.Len(t, producer.starts, 2, "b is forgotten")
		producer.mu.Unlock()
		require.NoError(t, pool.Add(b))
		t5 := time.Now().Add(time.Minute)
		p5 := produce()
		assert.Equal(t, map[string]time.Time{"a": t3, "b": t5, "c": t3}, start(p5))
		for name, p := range p5 {
			assert.Equal(t, t5, p.Time, name)
			assert.Equal(t, attribute.NewSet(ServerKey.String(name)), p.Attributes)
		}
	})
}
