package prometheus

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/balancekit/lb"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCollectorOctaves scrapes the latency histogram of servers with known
// durations over HTTP and checks, as expfmt parses it, every bucket: the
// 21 finite bounds of lb.Histogram.Octaves and +Inf, with the cumulative
// count of each, the sum and the count; and that the core's handler serves the
// same.
func TestCollectorOctaves(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	one, err := lb.NewHandlerServer("one", ok)
	require.NoError(t, err)
	idle, err := lb.NewHandlerServer("idle", ok)
	require.NoError(t, err)
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

	c, err := NewCollector(pool)
	require.NoError(t, err)
	reg := prom.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	families := scrape(t, srv.URL)

	hist := func(server string) *dto.Histogram {
		for _, m := range families["lb_request_duration_seconds"].GetMetric() {
			if m.GetLabel()[0].GetValue() == server {
				return m.GetHistogram()
			}
		}
		require.Failf(t, "no histogram", "%s", server)
		return nil
	}
	type bucket struct {
		le    float64
		count uint64
	}
	buckets := func(h *dto.Histogram) []bucket {
		var out []bucket
		for _, b := range h.GetBucket() {
			out = append(out, bucket{b.GetUpperBound(), b.GetCumulativeCount()})
		}
		return out
	}
	// The finite bounds: 2^16 ns to 2^35 ns, then 1.75·2^35 ns.
	var bounds []float64
	for k := 16; k <= 35; k++ {
		bounds = append(bounds, math.Ldexp(1, k)/1e9)
	}
	bounds = append(bounds, 60.129542144)
	// The cumulative counts of one at each bound.
	cum := []uint64{2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 7}
	require.Len(t, bounds, 21)
	require.Len(t, cum, 21)
	var want, wantIdle []bucket
	for i, le := range bounds {
		want = append(want, bucket{le, cum[i]})
		wantIdle = append(wantIdle, bucket{le, 0})
	}
	// The text format has the +Inf bucket, which the parser keeps.
	want = append(want, bucket{math.Inf(1), 8})
	wantIdle = append(wantIdle, bucket{math.Inf(1), 0})
	h := hist("one")
	assert.Equal(t, want, buckets(h))
	assert.Equal(t, uint64(8), h.GetSampleCount(), "the 2-minute request is counted, above the last bound")
	assert.InDelta(t, 162.052095536, h.GetSampleSum(), 1e-9)
	assert.Equal(t, wantIdle, buckets(hist("idle")))
	assert.Zero(t, hist("idle").GetSampleCount())

	// The core's handler serves the same histogram.
	core := httptest.NewServer(lb.MetricsHandler(pool))
	defer core.Close()
	assertSameFamilies(t, families, scrape(t, core.URL))
}
