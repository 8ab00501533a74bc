package otel

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/balancekit/lb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Producer exports the latency histogram of each server of one or more
// pools as lb.request.duration, a cumulative explicit-bucket histogram in
// seconds with the attribute lb.server.name, to the SDK reader it is given
// to with [sdkmetric.WithProducer].
//
// The histogram is the [lb.Histogram.Octaves] of [lb.Server.Latency]: 22
// buckets, one to each doubling of the duration, whose bounds are 2^16 ns
// (65.536 µs), 2^17 ns, ... 2^35 ns (34.36 s) and 60.13 s (and one above),
// rather than the 83 buckets of Server.Latency; its sum and count are
// those of Server.Latency.
//
// Why a Producer: the metrics API has observable counters and gauges but
// no observable histogram, and a synchronous histogram would have to be
// recorded on every request, by a hook on the hot path that only proxied
// traffic goes through, into buckets of its own that would disagree with
// [lb.Server.Latency] (which the status page and the Prometheus metrics
// read). A Producer hands the reader the histogram lb already keeps, at
// no cost per request; it is the SDK's way to bring in metrics kept
// elsewhere. The price is that it works with the OpenTelemetry SDK (sdk/metric)
// only, not with another implementation of the API.
//
// The start time of a server's series is when the Producer first found
// that *lb.Server in the pools: when the Producer was made for the servers
// the pools held then, else the Produce that first exported it. A server
// replaced by a new *lb.Server of the same name, whose counts start again
// from zero, so gets a new start time, which tells the backend that the
// series was reset. The Producer forgets a server at the first Produce
// that no longer exports it; if it comes back, its series gets a new start
// time (though its counts go on from where they were).
//
// A server that belongs to several of the pools is exported once; of two
// different servers with one name, only the first, in the order of the
// pools, is. A name that is not valid UTF-8 is exported with U+FFFD for
// each run of bad bytes.
//
// The zero Producer is not usable: make one with [NewProducer]. A Producer
// is safe for concurrent use.
type Producer struct {
	pools []*lb.Pool

	mu sync.Mutex
	// starts holds the start time of each server exported by the last
	// Produce (or held by the pools when the Producer was made).
	starts map[*lb.Server]time.Time
}

var _ sdkmetric.Producer = (*Producer)(nil)

// NewProducer returns a Producer of the latency histograms of the servers
// of pools. A nil pool is an error.
func NewProducer(pools ...*lb.Pool) (*Producer, error) {
	for i, p := range pools {
		if p == nil {
			return nil, fmt.Errorf("lb: otel: producer: pool %d is nil", i)
		}
	}
	p := &Producer{pools: append([]*lb.Pool(nil), pools...)}
	all := servers(p.pools)
	now := time.Now()
	p.starts = make(map[*lb.Server]time.Time, len(all))
	for _, s := range all {
		p.starts[s.Server] = now
	}
	return p, nil
}

// startTimes returns the start time of each of all, in order: the one the
// Producer has for it, else now. It keeps those of all and forgets the
// others.
func (p *Producer) startTimes(all []named, now time.Time) []time.Time {
	out := make([]time.Time, len(all))
	starts := make(map[*lb.Server]time.Time, len(all))
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range all {
		start, ok := p.starts[s.Server]
		if !ok {
			start = now
		}
		out[i], starts[s.Server] = start, start
	}
	p.starts = starts
	return out
}

// Produce returns lb.request.duration for every server of the pools, in
// the scope [ScopeName].
func (p *Producer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	now := time.Now()
	all := servers(p.pools)
	starts := p.startTimes(all, now)
	points := make([]metricdata.HistogramDataPoint[float64], 0, len(all))
	for i, s := range all {
		bounds, counts, sum := latency(s.Server)
		var count uint64
		for _, c := range counts {
			count += c
		}
		points = append(points, metricdata.HistogramDataPoint[float64]{
			Attributes:   attribute.NewSet(ServerKey.String(s.name)),
			StartTime:    starts[i],
			Time:         now,
			Count:        count,
			Bounds:       bounds,
			BucketCounts: counts,
			Sum:          sum,
		})
	}
	return []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: ScopeName},
		Metrics: []metricdata.Metrics{{
			Name:        "lb.request.duration",
			Description: "Duration of the requests that reported one, by server.",
			Unit:        "s",
			Data: metricdata.Histogram[float64]{
				DataPoints:  points,
				Temporality: metricdata.CumulativeTemporality,
			},
		}},
	}}, nil
}

// latency returns the octaves of the latency histogram of s as
// OpenTelemetry wants them: the upper bounds in seconds (+Inf left out),
// the count of each bucket (one more than the bounds: the last is up to
// +Inf), and the sum in seconds.
func latency(s *lb.Server) (bounds []float64, counts []uint64, sum float64) {
	h := s.Latency().Octaves()
	bounds = make([]float64, 0, len(h.Buckets))
	counts = make([]uint64, 0, len(h.Buckets)+1)
	for _, b := range h.Buckets {
		if b.UpperBound == math.MaxInt64 {
			continue // the last bucket, counted below
		}
		bounds = append(bounds, b.UpperBound.Seconds())
		counts = append(counts, b.Count)
	}
	// The bucket above the last bound: the last one of lb's histogram, or
	// none if it ends with a finite bound.
	var over uint64
	if n := len(h.Buckets); n > 0 && h.Buckets[n-1].UpperBound == math.MaxInt64 {
		over = h.Buckets[n-1].Count
	}
	return bounds, append(counts, over), h.Sum.Seconds()
}
