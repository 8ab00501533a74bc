package lb

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMetricsHandlerOctaves checks every line of one server's latency
// histogram: the 22 octaves of Histogram.Octaves, in order, cumulative,
// then the sum and the count of the histogram.
func TestMetricsHandlerOctaves(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	s, err := NewHandlerServer("one", ok)
	require.NoError(t, err)
	pool, err := NewPool(s)
	require.NoError(t, err)
	for _, d := range []time.Duration{
		30 * time.Microsecond, // (0, 65.536 µs]
		65536,                 // on the first bound
		time.Millisecond,      // (0.524288 ms, 1.048576 ms]
		time.Millisecond,      //
		50 * time.Millisecond, // (33.554432 ms, 67.108864 ms]
		2 * time.Second,       // (1.073741824 s, 2.147483648 s]
		40 * time.Second,      // (34.359738368 s, 60.129542144 s]
		2 * time.Minute,       // above 60.129542144 s
	} {
		s.Acquire().Done(DoneInfo{Duration: d})
	}
	var got []string
	for _, line := range metricLines(scrapeMetrics(t, MetricsHandler(pool))) {
		if strings.HasPrefix(line, "lb_request_duration_seconds") {
			got = append(got, line)
		}
	}
	assert.Equal(t, []string{
		`lb_request_duration_seconds_bucket{server="one",le="6.5536e-05"} 2`,
		`lb_request_duration_seconds_bucket{server="one",le="0.000131072"} 2`,
		`lb_request_duration_seconds_bucket{server="one",le="0.000262144"} 2`,
		`lb_request_duration_seconds_bucket{server="one",le="0.000524288"} 2`,
		`lb_request_duration_seconds_bucket{server="one",le="0.001048576"} 4`,
		`lb_request_duration_seconds_bucket{server="one",le="0.002097152"} 4`,
		`lb_request_duration_seconds_bucket{server="one",le="0.004194304"} 4`,
		`lb_request_duration_seconds_bucket{server="one",le="0.008388608"} 4`,
		`lb_request_duration_seconds_bucket{server="one",le="0.016777216"} 4`,
		`lb_request_duration_seconds_bucket{server="one",le="0.033554432"} 4`,
		`lb_request_duration_seconds_bucket{server="one",le="0.067108864"} 5`,
		`lb_request_duration_seconds_bucket{server="one",le="0.134217728"} 5`,
		`lb_request_duration_seconds_bucket{server="one",le="0.268435456"} 5`,
		`lb_request_duration_seconds_bucket{server="one",le="0.536870912"} 5`,
		`lb_request_duration_seconds_bucket{server="one",le="1.073741824"} 5`,
		`lb_request_duration_seconds_bucket{server="one",le="2.147483648"} 6`,
		`lb_request_duration_seconds_bucket{server="one",le="4.294967296"} 6`,
		`lb_request_duration_seconds_bucket{server="one",le="8.589934592"} 6`,
		`lb_request_duration_seconds_bucket{server="one",le="17.179869184"} 6`,
		`lb_request_duration_seconds_bucket{server="one",le="34.359738368"} 6`,
		`lb_request_duration_seconds_bucket{server="one",le="60.129542144"} 7`,
		`lb_request_duration_seconds_bucket{server="one",le="+Inf"} 8`,
		`lb_request_duration_seconds_sum{server="one"} 162.052095536`,
		`lb_request_duration_seconds_count{server="one"} 8`,
	}, got)
}
