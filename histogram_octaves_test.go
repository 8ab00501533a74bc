package lb

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHistogramOctavesBounds checks the octaves' bounds: the powers of two
// nanoseconds from 2^16 to 2^35, the last finite bound of the histogram,
// and the overflow bucket; and that each octave is a union of whole
// buckets of the histogram, so the merge is exact.
func TestHistogramOctavesBounds(t *testing.T) {
	t.Parallel()
	var want []time.Duration
	for k := 16; k <= 35; k++ {
		want = append(want, time.Duration(1)<<k)
	}
	want = append(want, 60129542144, math.MaxInt64)
	require.Len(t, want, 22)
	var got []time.Duration
	for _, b := range (Histogram{}).Octaves().Buckets {
		got = append(got, b.UpperBound)
	}
	assert.Equal(t, want, got)
	assert.Equal(t, time.Duration(65536), want[0], "65.536 µs")
	assert.Equal(t, time.Duration(34359738368), want[19], "34.36 s")

	// Every octave bound is a bound of the histogram, so that no bucket of
	// it straddles two octaves.
	var bounds []time.Duration
	for i := range histBuckets {
		bounds = append(bounds, histBound(i))
	}
	for _, b := range want {
		assert.True(t, slices.Contains(bounds, b), "octave bound %d is a bucket bound", b)
	}
}

// TestHistogramOctaves checks the merged counts of a table of durations:
// each in the octave whose bound is the least at or above it, with Count
// and Sum unchanged.
func TestHistogramOctaves(t *testing.T) {
	t.Parallel()
	s := newTestServers(t, 1)[0]
	var sum time.Duration
	for _, tc := range []struct {
		d     time.Duration
		upper time.Duration // the octave it lands in
	}{
		{1, 65536},
		{49152, 65536}, // the histogram's first bound
		{57344, 65536},
		{65536, 65536}, // 2^16 ns
		{65537, 131072},
		{100 * time.Microsecond, 131072},
		{131072, 131072},
		{time.Millisecond, 1048576},
		{1048576, 1048576},
		{1048577, 2097152},
		{3 * time.Millisecond, 4194304},
		{10 * time.Millisecond, 16777216},
		{50 * time.Millisecond, 67108864},
		{time.Second, 1073741824},
		{34359738368, 34359738368}, // 2^35 ns
		{34359738369, 60129542144},
		{60129542144, 60129542144}, // the last finite bound
		{60129542145, math.MaxInt64},
		{time.Hour, math.MaxInt64},
	} {
		s.Acquire().Done(DoneInfo{Duration: tc.d})
		sum += tc.d
		// The octave holds the new duration: its count went up by one.
		before := octaveCounts(t, s.Latency().Octaves())[tc.upper]
		s.Acquire().Done(DoneInfo{Duration: tc.d})
		sum += tc.d
		assert.Equal(t, before+1, octaveCounts(t, s.Latency().Octaves())[tc.upper], "%d ns", int64(tc.d))
	}

	h := s.Latency()
	o := h.Octaves()
	require.Len(t, o.Buckets, 22)
	assert.Equal(t, map[time.Duration]uint64{
		65536:         8,
		131072:        6,
		1048576:       4,
		2097152:       2,
		4194304:       2,
		16777216:      2,
		67108864:      2,
		1073741824:    2,
		34359738368:   2,
		60129542144:   4,
		math.MaxInt64: 4,
	}, octaveCounts(t, o))
	assert.Equal(t, uint64(38), h.Count)
	assert.Equal(t, h.Count, o.Count)
	assert.Equal(t, sum, h.Sum)
	assert.Equal(t, h.Sum, o.Sum)
	var total uint64
	for _, b := range o.Buckets {
		total += b.Count
	}
	assert.Equal(t, o.Count, total)

	// The histogram itself is not changed by the merge.
	assert.Equal(t, h, s.Latency())
	assert.Len(t, h.Buckets, histBuckets)

	// The zero Histogram gives the 22 octaves, empty.
	z := Histogram{}.Octaves()
	assert.Len(t, z.Buckets, 22)
	assert.Zero(t, z.Count)
	assert.Zero(t, z.Sum)
	assert.Equal(t, map[time.Duration]uint64{}, octaveCounts(t, z))
}

// octaveCounts returns the non-zero counts of o by upper bound, after
// checking that its bounds increase.
func octaveCounts(t *testing.T, o Histogram) map[time.Duration]uint64 {
	t.Helper()
	out := map[time.Duration]uint64{}
	for i, b := range o.Buckets {
		if i > 0 {
			require.Greater(t, b.UpperBound, o.Buckets[i-1].UpperBound)
		}
		if b.Count != 0 {
			out[b.UpperBound] = b.Count
		}
	}
	return out
}

// TestHistogramOctavesQuantile checks that a quantile of the merged
// histogram lies in the octave that holds the true quantile, and equals
// the interpolation within that octave.
func TestHistogramOctavesQuantile(t *testing.T) {
	t.Parallel()
	s := newTestServers(t, 1)[0]
	// 60 requests at 1 ms, 30 at 10 ms, 10 at 300 ms.
	var data []time.Duration
	for i := range 100 {
		d := time.Millisecond // octave (524288, 1048576]
		switch {
		case i >= 90:
			d = 300 * time.Millisecond // octave (268435456, 536870912]
		case i >= 60:
			d = 10 * time.Millisecond // octave (8388608, 16777216]
		}
		data = append(data, d)
		s.Acquire().Done(DoneInfo{Duration: d})
	}
	o := s.Latency().Octaves()
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 524288 + 524288*5/6},         // 50 of the 60 in the first octave
		{0.6, 1048576},                     // its top
		{0.75, 8388608 + 8388608/2},        // 15 of the 30 in the second
		{0.9, 16777216},                    // its top
		{0.99, 268435456 + 268435456*9/10}, // 9 of the 10 in the third
	} {
		got := o.Quantile(tc.q)
		assert.InDelta(t, float64(tc.want), float64(got), 1, "q=%v", tc.q)
		// The true value: the observation of rank ⌈q·n⌉.
		truth := data[int(math.Ceil(tc.q*float64(len(data))))-1]
		i := octIndex(truth)
		lower := time.Duration(0)
		if i > 0 {
			lower = octBound(i - 1)
		}
		assert.GreaterOrEqual(t, got, lower, "q=%v: in the octave of %v", tc.q, truth)
		assert.LessOrEqual(t, got, octBound(i), "q=%v: in the octave of %v", tc.q, truth)
	}
}

// TestHistogramOctavesOtherBounds checks the merge of a Histogram made by
// hand, whose bounds are not those of Server.Latency: each bucket goes to
// the first octave at or above its bound.
func TestHistogramOctavesOtherBounds(t *testing.T) {
	t.Parallel()
	h := Histogram{Count: 6, Sum: time.Second, Buckets: []Bucket{
		{UpperBound: 0, Count: 1},
		{UpperBound: 1000, Count: 1},
		{UpperBound: 100000, Count: 1},
		{UpperBound: 40 * time.Second, Count: 1},
		{UpperBound: time.Minute, Count: 1},
		{UpperBound: math.MaxInt64, Count: 1},
	}}
	o := h.Octaves()
	assert.Equal(t, map[time.Duration]uint64{
		65536:         2,
		131072:        1,
		60129542144:   2,
		math.MaxInt64: 1,
	}, octaveCounts(t, o))
	assert.Equal(t, h.Count, o.Count)
	assert.Equal(t, h.Sum, o.Sum)
}
