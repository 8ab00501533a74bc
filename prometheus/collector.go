// Package prometheus exports the per-server metrics of lb pools to a
// Prometheus registry (github.com/prometheus/client_golang). It is a module
// of its own, so that importers of lb that do not use Prometheus do not
// pull in its client.
//
// Its name clashes with client_golang's package; import it under another:
//
//	import lbprom "github.com/balancekit/lb/prometheus"
//
//	c, err := lbprom.NewCollector(pool)
//	...
//	registry.MustRegister(c)
//
// The metrics are those of [lb.MetricsHandler], which serves the same
// names and values without client_golang.
package prometheus

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/balancekit/lb"
	prom "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Collector is a [prom.Collector] of the metrics of the servers of one or
// more pools. Every series has the label server, the server's name:
//
//	lb_requests_total                 counter: requests that have ended
//	lb_request_errors_total           counter, by class: transport, timeout,
//	                                  status_5xx, status_4xx, client_gone
//	lb_in_flight_requests             gauge: requests picked, not yet done
//	lb_server_weight                  gauge
//	lb_server_state                   gauge, by state: 1 for the server's
//	                                  state (up, down, ejected, draining),
//	                                  0 for the others
//	lb_ejections_total                counter
//	lb_retries_total                  counter: attempts that were retries
//	lb_request_duration_seconds       histogram: 22 classic buckets, one
//	                                  to each doubling of the duration
//
// The histogram is the [lb.Histogram.Octaves] of [lb.Server.Latency]: its
// buckets end at 2^16 ns (65.536 µs), 2^17 ns, ... 2^35 ns (34.36 s),
// 60.13 s and +Inf, rather than at the 83 bounds of Server.Latency, which
// would make 83 series for each server; its sum and count are those of
// Server.Latency.
//
// Each Collect reads the servers the pools hold then, without a lock. A
// server that belongs to several of the pools is collected once; of two
// different servers with one name, only the first, in the order of the
// pools, is, since a registry rejects two series with the same labels. A
// name that is not valid UTF-8 is shown with U+FFFD for each run of bad
// bytes.
//
// Give one Collector all the pools a registry is to show: a registry
// refuses a second Collector, whose metrics have the same names.
//
// The zero Collector is not usable: make one with [NewCollector]. A
// Collector is safe for concurrent use.
type Collector struct {
	pools []*lb.Pool
}

var (
	descRequests = prom.NewDesc("lb_requests_total",
		"Requests that have ended, by server.", []string{"server"}, nil)
	descErrors = prom.NewDesc("lb_request_errors_total",
		"Requests that ended in an error, by server and class.", []string{"server", "class"}, nil)
	descInFlight = prom.NewDesc("lb_in_flight_requests",
		"Requests picked and not yet done, by server.", []string{"server"}, nil)
	descWeight = prom.NewDesc("lb_server_weight",
		"Weight of the server.", []string{"server"}, nil)
	descState = prom.NewDesc("lb_server_state",
		"1 for the state the server is in, 0 for the others.", []string{"server", "state"}, nil)
	descEjections = prom.NewDesc("lb_ejections_total",
		"Times passive health took the server out, by server.", []string{"server"}, nil)
	descRetries = prom.NewDesc("lb_retries_total",
		"Attempts on the server that were retries, by server.", []string{"server"}, nil)
	descDuration = prom.NewDesc("lb_request_duration_seconds",
		"Duration of the requests that reported one, by server.", []string{"server"}, nil)
)

// states are the values of the state label of lb_server_state.
var states = [...]string{"up", "down", "ejected", "draining"}

// NewCollector returns a collector of the metrics of the servers of pools.
// A nil pool is an error.
func NewCollector(pools ...*lb.Pool) (*Collector, error) {
	for i, p := range pools {
		if p == nil {
			return nil, fmt.Errorf("lb: prometheus collector: pool %d is nil", i)
		}
	}
	return &Collector{pools: append([]*lb.Pool(nil), pools...)}, nil
}

// Describe sends the descriptions of the metrics to ch.
func (c *Collector) Describe(ch chan<- *prom.Desc) {
	for _, d := range []*prom.Desc{descRequests, descErrors, descInFlight, descWeight,
		descState, descEjections, descRetries, descDuration} {
		ch <- d
	}
}

// Collect sends the metrics of every server of the pools to ch.
func (c *Collector) Collect(ch chan<- prom.Metric) {
	l := newLabelPairs()
	seen := make(map[string]bool)
	for _, p := range c.pools {
		for _, s := range p.Servers() {
			name := labelValue(s.Name())
			if seen[name] {
				continue
			}
			seen[name] = true
			collectServer(ch, s, name, l)
		}
	}
}

// labelValue returns name as a label value: valid UTF-8, with each run of
// bytes that are not replaced by U+FFFD.
func labelValue(name string) string {
	if utf8.ValidString(name) {
		return name
	}
	return strings.ToValidUTF8(name, "\uFFFD")
}

// collectServer sends the metrics of s, labelled server=name, to ch. It builds the metrics
// itself rather than through NewConstMetric, whose label pairs, made and
// sorted anew for each metric, took most of the time of a scrape: here
// the server's label pair is made once and shared by its metrics, and the
// class and state pairs once per Collect (l).
func collectServer(ch chan<- prom.Metric, s *lb.Server, name string, l *labelPairs) {
	st := s.Stats()
	server := &dto.LabelPair{Name: proto.String("server"), Value: proto.String(name)}
	one := []*dto.LabelPair{server}
	send := func(d *prom.Desc, t prom.ValueType, v float64, labels []*dto.LabelPair) {
		ch <- &metric{desc: d, typ: t, value: v, labels: labels}
	}
	send(descRequests, prom.CounterValue, float64(st.Requests), one)
	for i, n := range errorCounts(st) {
		// "class" sorts before "server".
		send(descErrors, prom.CounterValue, float64(n), []*dto.LabelPair{l.classes[i], server})
	}
	send(descInFlight, prom.GaugeValue, float64(st.InFlight), one)
	send(descWeight, prom.GaugeValue, float64(st.Weight), one)
	current := st.State
	for i, name := range states {
		v := 0.0
		if name == current {
			v = 1
		}
		// "server" sorts before "state".
		send(descState, prom.GaugeValue, v, []*dto.LabelPair{server, l.states[i]})
	}
	ejections, retries := counts(st)
	send(descEjections, prom.CounterValue, float64(ejections), one)
	send(descRetries, prom.CounterValue, float64(retries), one)
	ch <- &metric{desc: descDuration, labels: one, hist: latency(s)}
}

// labelPairs holds the label pairs of the classes and the states, made
// once for each Collect and shared by the metrics of every server.
type labelPairs struct {
	classes [len(errorClasses)]*dto.LabelPair
	states  [len(states)]*dto.LabelPair
}

func newLabelPairs() *labelPairs {
	l := new(labelPairs)
	for i, c := range errorClasses {
		l.classes[i] = &dto.LabelPair{Name: proto.String("class"), Value: proto.String(c)}
	}
	for i, st := range states {
		l.states[i] = &dto.LabelPair{Name: proto.String("state"), Value: proto.String(st)}
	}
	return l
}

// metric is one counter, gauge or (if hist is not nil) histogram of one
// server, with its labels sorted by name as a registry wants them.
type metric struct {
	desc   *prom.Desc
	labels []*dto.LabelPair
	typ    prom.ValueType
	value  float64
	hist   *dto.Histogram
}

// Desc returns the description of m.
func (m *metric) Desc() *prom.Desc { return m.desc }

// Write writes m into out.
func (m *metric) Write(out *dto.Metric) error {
	out.Label = m.labels
	switch {
	case m.hist != nil:
		out.Histogram = m.hist
	case m.typ == prom.CounterValue:
		out.Counter = &dto.Counter{Value: proto.Float64(m.value)}
	default:
		out.Gauge = &dto.Gauge{Value: proto.Float64(m.value)}
	}
	return nil
}

// errorClasses are the values of the class label of
// lb_request_errors_total, in the order errorCounts returns them.
var errorClasses = [...]string{"transport", "timeout", "status_5xx", "status_4xx", "client_gone"}

// errorCounts returns the error counts of st in the order of errorClasses.
func errorCounts(st lb.Stats) [len(errorClasses)]uint64 {
	e := st.Errors
	return [...]uint64{e.Transport, e.Timeout, e.Status5xx, e.Status4xx, e.ClientGone}
}

// counts returns the ejections and retries of the server of st.
func counts(st lb.Stats) (ejections, retries uint64) { return st.Ejections, st.Retries }

// latency returns the octaves of the latency histogram of s in seconds,
// with cumulative buckets, +Inf left out. The count is the sum of the
// buckets, so that it matches them even when read under traffic.
func latency(s *lb.Server) *dto.Histogram {
	h := s.Latency().Octaves()
	// One allocation for each kind of value rather than one per value.
	n := len(h.Buckets)
	buckets := make([]dto.Bucket, n)
	counts := make([]uint64, n+1)
	bounds := make([]float64, n)
	sum := h.Sum.Seconds()
	out := &dto.Histogram{SampleSum: &sum, Bucket: make([]*dto.Bucket, 0, n)}
	var count uint64
	for i, b := range h.Buckets {
		count += b.Count
		if b.UpperBound == math.MaxInt64 {
			continue // +Inf: the count
		}
		counts[i], bounds[i] = count, b.UpperBound.Seconds()
		buckets[i].CumulativeCount, buckets[i].UpperBound = &counts[i], &bounds[i]
		out.Bucket = append(out.Bucket, &buckets[i])
	}
	counts[n] = count
	out.SampleCount = &counts[n]
	return out
}

var _ prom.Collector = (*Collector)(nil)
