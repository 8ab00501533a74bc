package lb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHistogramBuckets checks the bucket of given durations: each lands in
// the bucket whose upper bound is the least at or above it.
func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d     time.Duration
		upper time.Duration
	}{
		{1, 49152},
		{49152, 49152}, // 1.5·2^15 ns: the first bucket's bound
		{49153, 57344},
		{57344, 57344},
		{57345, 65536},
		{65536, 65536},
		{65537, 81920},
		{100 * time.Microsecond, 114688},
		{time.Millisecond, 1048576},
		{10 * time.Millisecond, 10485760},
		{time.Second, 1073741824},
		{60129542144, 60129542144}, // 1.75·2^35 ns: the last finite bound
		{60129542145, math.MaxInt64},
		{time.Hour, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64},
	} {
		assert.Equal(t, tc.upper, histBound(histIndex(int64(tc.d))), "%d ns", int64(tc.d))
	}
}

// TestHistogramBounds checks the buckets as a whole: 83 of them, from
// about 50 µs to about 60 s and then unbounded, each at most a quarter
// wider than its lower bound, and every bound in its own bucket.
func TestHistogramBounds(t *testing.T) {
	t.Parallel()
	require.Equal(t, 83, histBuckets)
	assert.Equal(t, time.Duration(49152), histBound(0))
	assert.Equal(t, time.Duration(60129542144), histBound(histBuckets-2))
	assert.Equal(t, time.Duration(math.MaxInt64), histBound(histBuckets-1))
	for i := 0; i < histBuckets-1; i++ {
		b := histBound(i)
		assert.Equal(t, i, histIndex(int64(b)), "bound %d", b)
		assert.Equal(t, i+1, histIndex(int64(b)+1), "bound %d + 1", b)
		if i > 0 {
			lower := histBound(i - 1)
			assert.Greater(t, b, lower)
			assert.LessOrEqual(t, float64(b-lower)/float64(lower), 0.25, "bucket %d: (%d, %d]", i, lower, b)
		}
	}
}

// TestServerLatency checks what Done records: every positive duration in
// its bucket, the sum, and nothing for a Done without a duration or for a
// pick not used.
func TestServerLatency(t *testing.T) {
	t.Parallel()
	s := newTestServers(t, 1)[0]
	for _, d := range []time.Duration{time.Millisecond, time.Millisecond, 10 * time.Millisecond, 0, time.Hour} {
		s.Acquire().Done(DoneInfo{Duration: d})
	}
	s.Acquire().Done(DoneInfo{Err: errNotUsed, Duration: time.Second})
	h := s.Latency()
	require.Len(t, h.Buckets, histBuckets)
	assert.Equal(t, uint64(4), h.Count)
	assert.Equal(t, 12*time.Millisecond+time.Hour, h.Sum)
	counts := map[time.Duration]uint64{}
	for _, b := range h.Buckets {
		if b.Count != 0 {
			counts[b.UpperBound] = b.Count
		}
	}
	assert.Equal(t, map[time.Duration]uint64{1048576: 2, 10485760: 1, math.MaxInt64: 1}, counts)
}

// TestHistogramQuantile checks quantiles of known data: linear
// interpolation within the bucket that holds the rank.
func TestHistogramQuantile(t *testing.T) {
	t.Parallel()
	s := newTestServers(t, 1)[0]
	assert.Zero(t, s.Latency().Quantile(0.5), "empty")
	for i := range 100 {
		d := time.Millisecond // bucket (917504, 1048576]
		if i%2 == 1 {
			d = 10 * time.Millisecond // bucket (8388608, 10485760]
		}
		s.Acquire().Done(DoneInfo{Duration: d})
	}
	h := s.Latency()
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0, 917504},             // the lower bound of the first bucket with a count
		{0.25, 983040},          // halfway through the first bucket
		{0.5, 1048576},          // its top
		{0.9, 10066329},         // 8388608 + 0.8·2097152
		{0.99, 10443816},        // 8388608 + 0.98·2097152
		{1, 10485760},           // the top of the last bucket with a count
		{-1, 917504},            // clamped to 0
		{2, 10485760},           // clamped to 1
		{math.NaN(), 0},         // no quantile
		{math.Inf(1), 10485760}, // clamped to 1
	} {
		assert.Equal(t, tc.want, h.Quantile(tc.q), "q=%v", tc.q)
	}
	st := s.Stats()
	assert.Equal(t, [3]time.Duration{1048576, 10066329, 10443816}, [3]time.Duration{st.P50, st.P90, st.P99})

	// Above the last finite bound, the estimate is that bound.
	var over Histogram
	over.Buckets = append(over.Buckets, Bucket{UpperBound: histBound(histBuckets - 2)}, Bucket{UpperBound: math.MaxInt64, Count: 3})
	over.Count = 3
	assert.Equal(t, histBound(histBuckets-2), over.Quantile(0.99))
	assert.Zero(t, Histogram{}.Quantile(0.5))
}

// timeoutErr is a net.Error that timed out, as a dial timeout is.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

// TestErrorClasses checks the class Done counts each outcome in, and that
// Failures keeps its meaning: transport, timeout and 5xx.
func TestErrorClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		info DoneInfo
		want ErrorCounts
	}{
		{"ok", DoneInfo{StatusCode: 200}, ErrorCounts{}},
		{"redirect", DoneInfo{StatusCode: 302}, ErrorCounts{}},
		{"no status", DoneInfo{}, ErrorCounts{}},
		{"404", DoneInfo{StatusCode: 404}, ErrorCounts{Status4xx: 1}},
		{"499", DoneInfo{StatusCode: 499}, ErrorCounts{Status4xx: 1}},
		{"500", DoneInfo{StatusCode: 500}, ErrorCounts{Status5xx: 1}},
		{"503", DoneInfo{StatusCode: 503}, ErrorCounts{Status5xx: 1}},
		{"dial", DoneInfo{Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, ErrorCounts{Transport: 1}},
		{"error and 502", DoneInfo{Err: errors.New("broken"), StatusCode: 502}, ErrorCounts{Transport: 1}},
		{"deadline", DoneInfo{Err: fmt.Errorf("x: %w", context.DeadlineExceeded)}, ErrorCounts{Timeout: 1}},
		{"net timeout", DoneInfo{Err: &net.OpError{Op: "read", Err: timeoutErr{}}}, ErrorCounts{Timeout: 1}},
		{"canceled", DoneInfo{Err: fmt.Errorf("x: %w", context.Canceled), StatusCode: 502}, ErrorCounts{ClientGone: 1}},
		{"client body", DoneInfo{Err: clientBodyError(errors.New("bad chunk"))}, ErrorCounts{ClientGone: 1}},
		{"canceled after a timeout", DoneInfo{Err: fmt.Errorf("%w: %w", context.Canceled, context.DeadlineExceeded)}, ErrorCounts{ClientGone: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServers(t, 1)[0]
			s.Acquire().Done(tc.info)
			s.Acquire().Done(DoneInfo{Err: errNotUsed, StatusCode: 500}) // counts nothing
			st := s.Stats()
			assert.Equal(t, tc.want, st.Errors)
			assert.Equal(t, tc.want.Transport+tc.want.Timeout+tc.want.Status5xx, st.Failures)
			assert.Equal(t, uint64(1), st.Requests)
		})
	}
}

// TestStatsJSONHistogramFields checks the names of the fields this part
// adds to Stats.
func TestStatsJSONHistogramFields(t *testing.T) {
	t.Parallel()
	s := newTestServers(t, 1)[0]
	s.Acquire().Done(DoneInfo{StatusCode: 503, Duration: time.Millisecond})
	s.Acquire().Done(DoneInfo{StatusCode: 404, Duration: time.Millisecond})
	s.ctr.retries.Add(1)
	raw, err := json.Marshal(s.Stats())
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got))
	assert.Equal(t, map[string]any{"transport": 0.0, "timeout": 0.0, "status_5xx": 1.0, "status_4xx": 1.0, "client_gone": 0.0}, got["errors"])
	// Two durations in (917504, 1048576]: ranks 1, 1.8 and 1.98 of 2.
	assert.Equal(t, 983040.0, got["p50_ns"])
	assert.Equal(t, 1035468.0, got["p90_ns"])
	assert.Equal(t, 1047265.0, got["p99_ns"])
	assert.Equal(t, 1.0, got["retries"])
	assert.NotContains(t, got, "last_latency_ns")
}

// TestPickDoneLatencyAllocs checks that recording a duration and an error
// class allocates nothing.
func TestPickDoneLatencyAllocs(t *testing.T) {
	p, _ := newTestPool(t, ones(3)...)
	rr, err := NewRoundRobin(p)
	require.NoError(t, err)
	errTimeout := fmt.Errorf("x: %w", context.DeadlineExceeded)
	infos := []DoneInfo{{StatusCode: 200, Duration: time.Millisecond}, {StatusCode: 503, Duration: time.Second}, {Err: errTimeout, Duration: time.Hour}}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		res, err := rr.Pick(nil)
		if err != nil {
			panic(err)
		}
		res.Done(infos[i%len(infos)])
		i++
	})
	assert.Zero(t, allocs)
}
