package lb

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram has log-spaced buckets: four to each doubling
// (octave) of the duration, whose bounds are 1, 1.25, 1.5, 1.75 and 2 times
// a power of two nanoseconds. The first bucket holds every duration up to
// 1.5·2^15 ns (49.152 µs), the last finite one ends at 1.75·2^35 ns (60.13
// s), and one more bucket holds everything above that.
const (
	// histBuckets is the number of buckets, the overflow bucket included.
	histBuckets = 83
	// histFirst is 4k+j of the bucket after the first, whose durations d
	// have d-1 in octave k (2^k ≤ d-1 < 2^(k+1)) and in its quarter j.
	histFirst = 15<<2 | 2
	// histFloor is the upper bound of the first bucket, in nanoseconds.
	histFloor = 6 << 13
)

// histogram counts the durations a server's requests took, per bucket. It
// is updated with one atomic add and read without a lock.
type histogram struct {
	buckets [histBuckets]atomic.Uint64
}

// histIndex returns the bucket of the duration d (in nanoseconds, > 0):
// the one whose upper bound is the least at or above d.
func histIndex(d int64) int {
	x := uint64(d - 1)
	if x < histFloor {
		return 0
	}
	k := bits.Len64(x) - 1 // x's octave: k ≥ 15
	i := (k<<2 | int(x>>(k-2)&3)) - histFirst + 1
	return min(i, histBuckets-1)
}

// histBound returns the upper bound of bucket i.
func histBound(i int) time.Duration {
	if i >= histBuckets-1 {
		return math.MaxInt64
	}
	m := i + histFirst - 1
	k, j := m>>2, m&3
	return time.Duration(int64(5+j) << (k - 2))
}

// observe counts one request that took d (> 0).
func (h *histogram) observe(d int64) { h.buckets[histIndex(d)].Add(1) }

// Bucket is one bucket of a [Histogram]: Count observations above the
// previous bucket's UpperBound (0 for the first bucket) and at most
// UpperBound. It is a plain value; the zero Bucket is an empty bucket
// with a bound of 0.
type Bucket struct {
	UpperBound time.Duration `json:"le_ns"`
	Count      uint64        `json:"count"`
}

// Histogram is a snapshot of the distribution of a server's latencies: the
// Duration of every DoneInfo whose Duration was above 0.
//
// Its buckets are fixed and log-spaced, four to each doubling of the
// duration: the first ends at 49.152 µs (1.5·2^15 ns), each next one ends
// at 1.25, 1.5, 1.75 or 2 times a power of two nanoseconds, up to 60.13 s
// (1.75·2^35 ns), and the last one, whose UpperBound is [math.MaxInt64],
// holds what took longer. A bucket is at most a quarter wider than its
// lower bound, which bounds the error of [Histogram.Quantile].
//
// The zero Histogram is empty. A Histogram is a value: it does not change
// once taken.
type Histogram struct {
	// Count is the number of observations: the sum of the buckets' counts.
	Count uint64 `json:"count"`
	// Sum is the total of the observed durations, or the largest Duration
	// if the total is larger.
	Sum time.Duration `json:"sum_ns"`
	// Buckets holds every bucket, in increasing order of UpperBound.
	Buckets []Bucket `json:"buckets"`
}

// Latency returns a snapshot of the distribution of the server's latencies
// (the Duration of each DoneInfo that had one). The buckets are read one by
// one without a lock, so under traffic Sum may be a few requests apart from
// the counts. It allocates the snapshot's buckets; a Pick or a Done never
// allocates.
func (s *Server) Latency() Histogram {
	return s.latencyInto(make([]Bucket, histBuckets))
}

// latencyInto is Latency with its buckets in buf, of length histBuckets.
func (s *Server) latencyInto(buf []Bucket) Histogram {
	// A sum past the largest Duration stays there.
	h := Histogram{Buckets: buf, Sum: time.Duration(min(s.ctr.latencySum.Load(), math.MaxInt64))}
	for i := range h.Buckets {
		c := s.ctr.hist.buckets[i].Load()
		h.Buckets[i] = Bucket{UpperBound: histBound(i), Count: c}
		h.Count += c
	}
	return h
}

// The octaves of [Histogram.Octaves]: one bucket to each doubling, whose
// upper bounds are the powers of two nanoseconds from 2^16 to 2^35, then
// the last finite bound of the histogram, then the overflow bucket.
const (
	// octFirst is k of the first octave's bound, 2^k ns (65.536 µs).
	octFirst = 16
	// octLast is k of the last power-of-two bound, 2^k ns (34.36 s).
	octLast = 35
	// octBuckets is the number of octaves, the overflow bucket included.
	octBuckets = octLast - octFirst + 3
)

// octBound returns the upper bound of octave i.
func octBound(i int) time.Duration {
	switch {
	case i < octBuckets-2:
		return 1 << (octFirst + i)
	case i == octBuckets-2:
		return histBound(histBuckets - 2)
	}
	return math.MaxInt64
}

// octIndex returns the octave whose upper bound is the least at or above
// the bound b.
func octIndex(b time.Duration) int {
	if b <= 1<<octFirst {
		return 0
	}
	k := bits.Len64(uint64(b - 1)) // 2^(k-1) < b ≤ 2^k
	switch {
	case k <= octLast:
		return k - octFirst
	case b <= histBound(histBuckets-2):
		return octBuckets - 2
	}
	return octBuckets - 1
}

// Octaves returns h with its buckets merged into one to each doubling of
// the duration: their upper bounds are the powers of two nanoseconds from
// 65.536 µs (2^16 ns) to 34.36 s (2^35 ns), then 60.13 s (1.75·2^35 ns,
// the last finite bound of [Server.Latency]), then [math.MaxInt64]; 22
// buckets in all. It is for exports where the 83 buckets of a server's
// histogram make too many series, as the metrics of [MetricsHandler] and
// of the prometheus and otel modules, which export the Octaves of each
// server's Latency.
//
// Each bucket of h is counted in the first octave whose bound is at or
// above its own, so for a Histogram from [Server.Latency] the merge is
// exact: every octave bound is a bound of h. Count and Sum are unchanged,
// as is the total of the counts. The price is precision: an octave is at
// most as wide as its lower bound, so [Histogram.Quantile] of the result,
// which lies in the octave that holds the true value, is off by less than
// the true value above 65.536 µs (rather than a quarter of it). Octaves of
// the zero Histogram has the 22 buckets, all empty. It allocates the
// result's buckets.
func (h Histogram) Octaves() Histogram {
	return h.octavesInto(make([]Bucket, octBuckets))
}

// octavesInto is Octaves with its buckets in buf, of length octBuckets.
func (h Histogram) octavesInto(buf []Bucket) Histogram {
	for i := range buf {
		buf[i] = Bucket{UpperBound: octBound(i)}
	}
	for _, b := range h.Buckets {
		buf[octIndex(b.UpperBound)].Count += b.Count
	}
	return Histogram{Count: h.Count, Sum: h.Sum, Buckets: buf}
}

// Quantile returns an estimate of the q-quantile of the observed durations
// (q = 0.99 for the 99th percentile): it finds the bucket that holds it and
// interpolates linearly between that bucket's bounds, as Prometheus's
// histogram_quantile does. The estimate lies in the same bucket as the true
// value, so it is off by less than the bucket's width: under 25% of the
// true value above 49 µs. In the last bucket (above 60.13 s) it returns
// that bucket's lower bound. It counts the observations from the buckets
// (not from Count). q is clamped to [0, 1]; an empty histogram or a NaN q
// gives 0.
func (h Histogram) Quantile(q float64) time.Duration {
	var total uint64
	for _, b := range h.Buckets {
		total += b.Count
	}
	if total == 0 || math.IsNaN(q) {
		return 0
	}
	rank := min(max(q, 0), 1) * float64(total)
	var cum float64
	var lower time.Duration
	for _, b := range h.Buckets {
		if b.Count == 0 {
			lower = b.UpperBound
			continue
		}
		c := float64(b.Count)
		if cum+c >= rank || cum+c == float64(total) {
			if b.UpperBound == math.MaxInt64 {
				return lower
			}
			frac := min((rank-cum)/c, 1)
			return lower + time.Duration(frac*float64(b.UpperBound-lower))
		}
		cum += c
		lower = b.UpperBound
	}
	return lower // not reached: the last bucket with a count returns
}

// ErrorCounts counts a server's requests that ended badly, by class of
// outcome. Each request is counted in one class at most: by its DoneInfo.Err
// if it had one, else by its StatusCode. It is a plain value, a snapshot;
// the zero ErrorCounts counts no error.
type ErrorCounts struct {
	// Transport counts the requests that ended with an error that is
	// neither a timeout nor the client's doing: the server could not be
	// reached, the connection broke, a handler server panicked.
	Transport uint64 `json:"transport"`
	// Timeout counts the requests whose error was a timeout: it wraps
	// context.DeadlineExceeded or is a net.Error whose Timeout is true (a
	// dial timeout, the proxy's [WithResponseHeaderTimeout]).
	Timeout uint64 `json:"timeout"`
	// Status5xx counts the requests with no error and a status of 500 or
	// more.
	Status5xx uint64 `json:"status_5xx"`
	// Status4xx counts the requests with no error and a status from 400 to
	// 499.
	Status4xx uint64 `json:"status_4xx"`
	// ClientGone counts the requests whose error was the client's doing:
	// it wraps context.Canceled (the client went away) or [ErrClientBody]
	// (its request body could not be read). They are not failures of the
	// server.
	ClientGone uint64 `json:"client_gone"`
}

// The error classes, as indexes of Server.errs.
const (
	classTransport = iota
	classTimeout
	class5xx
	class4xx
	classClientGone
	numErrorClasses
	classNone = -1 // not an error
)

// errorClass returns the class of a request that ended as info says, or
// classNone.
func errorClass(info DoneInfo) int {
	switch {
	case info.Err == nil:
		switch {
		case info.StatusCode >= 500:
			return class5xx
		case info.StatusCode >= 400:
			return class4xx
		}
		return classNone
	case clientFault(info.Err):
		return classClientGone
	case isTimeout(info.Err):
		return classTimeout
	}
	return classTransport
}

// errorCounts returns the server's counts of errors by class.
func (s *Server) errorCounts() ErrorCounts {
	return ErrorCounts{
		Transport:  s.ctr.errs[classTransport].Load(),
		Timeout:    s.ctr.errs[classTimeout].Load(),
		Status5xx:  s.ctr.errs[class5xx].Load(),
		Status4xx:  s.ctr.errs[class4xx].Load(),
		ClientGone: s.ctr.errs[classClientGone].Load(),
	}
}
