// Package otel exports the per-server metrics of lb pools through
// OpenTelemetry (go.opentelemetry.io/otel/metric). It is a module of its
// own, so that importers of lb that do not use OpenTelemetry do not pull it
// in.
//
// [Register] makes observable instruments, read by one callback at each
// collection, for every figure a server keeps as a count or a level.
// The latency distribution is exported by a [Producer] instead, because the
// metrics API has no observable histogram: see [Producer] for why.
//
//	producer, err := lbotel.NewProducer(pool)
//	...
//	meterProvider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(
//		sdkmetric.NewPeriodicReader(exporter, sdkmetric.WithProducer(producer))))
//	reg, err := lbotel.Register(meterProvider.Meter(lbotel.ScopeName), pool)
//	...
//	defer reg.Unregister()
//
// The instruments, each with the attribute lb.server.name (the server's
// name):
//
//	lb.requests               counter, {request}: requests that have ended
//	lb.request.errors         counter, {request}, by error.type: transport,
//	                          timeout, status_5xx, status_4xx, client_gone
//	lb.active_requests        up-down counter, {request}: picked, not done
//	lb.server.weight          gauge, {weight}
//	lb.server.state           gauge, by lb.server.state: 1 for the server's
//	                          state (up, down, ejected, draining), 0 for
//	                          the others
//	lb.ejections              counter, {ejection}
//	lb.retries                counter, {attempt}: attempts that were retries
//	lb.request.duration       histogram, s (from the Producer): one
//	                          bucket to each doubling, 22 in all
package otel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/balancekit/lb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the metrics: the name to get
// the meter for [Register] by, and the scope of the [Producer]'s metrics.
const ScopeName = "github.com/balancekit/lb/otel"

// Attribute keys of the metrics.
const (
	// ServerKey names the server a series is about.
	ServerKey = attribute.Key("lb.server.name")
	// ErrorTypeKey is the class of error of lb.request.errors.
	ErrorTypeKey = attribute.Key("error.type")
	// StateKey is the state of lb.server.state.
	StateKey = attribute.Key("lb.server.state")
)

// errorClasses are the values of error.type, in the order errorCounts
// returns them.
var errorClasses = [...]string{"transport", "timeout", "status_5xx", "status_4xx", "client_gone"}

// states are the values of lb.server.state.
var states = [...]string{"up", "down", "ejected", "draining"}

// Register makes the observable instruments of the package doc on meter,
// and registers one callback that observes every server of pools at each
// collection. A server that belongs to several of the pools is observed
// once; of two different servers with one name, only the first, in the
// order of the pools, is. A name that is not valid UTF-8 is exported with
// U+FFFD for each run of bad bytes. Unregister the returned registration
// to stop observing. A nil meter or a nil pool is an error.
func Register(meter metric.Meter, pools ...*lb.Pool) (metric.Registration, error) {
	if meter == nil {
		return nil, errors.New("lb: otel: nil meter")
	}
	for i, p := range pools {
		if p == nil {
			return nil, fmt.Errorf("lb: otel: pool %d is nil", i)
		}
	}
	pools = append([]*lb.Pool(nil), pools...)
	requests, err1 := meter.Int64ObservableCounter("lb.requests",
		metric.WithUnit("{request}"), metric.WithDescription("Requests that have ended, by server."))
	errs, err2 := meter.Int64ObservableCounter("lb.request.errors",
		metric.WithUnit("{request}"), metric.WithDescription("Requests that ended in an error, by server and class."))
	active, err3 := meter.Int64ObservableUpDownCounter("lb.active_requests",
		metric.WithUnit("{request}"), metric.WithDescription("Requests picked and not yet done, by server."))
	weight, err4 := meter.Int64ObservableGauge("lb.server.weight",
		metric.WithUnit("{weight}"), metric.WithDescription("Weight of the server."))
	state, err5 := meter.Int64ObservableGauge("lb.server.state",
		metric.WithDescription("1 for the state the server is in, 0 for the others."))
	ejections, err6 := meter.Int64ObservableCounter("lb.ejections",
		metric.WithUnit("{ejection}"), metric.WithDescription("Times passive health took the server out, by server."))
	retries, err7 := meter.Int64ObservableCounter("lb.retries",
		metric.WithUnit("{attempt}"), metric.WithDescription("Attempts on the server that were retries, by server."))
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7); err != nil {
		return nil, fmt.Errorf("lb: otel: %w", err)
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, s := range servers(pools) {
			st := s.Stats()
			server := ServerKey.String(s.name)
			one := metric.WithAttributes(server)
			o.ObserveInt64(requests, clamp(st.Requests), one)
			for i, n := range errorCounts(st) {
				o.ObserveInt64(errs, clamp(n), metric.WithAttributes(server, ErrorTypeKey.String(errorClasses[i])))
			}
			o.ObserveInt64(active, st.InFlight, one)
			o.ObserveInt64(weight, int64(st.Weight), one)
			current := st.State
			for _, name := range states {
				v := int64(0)
				if name == current {
					v = 1
				}
				o.ObserveInt64(state, v, metric.WithAttributes(server, StateKey.String(name)))
			}
			e, r := counts(st)
			o.ObserveInt64(ejections, clamp(e), one)
			o.ObserveInt64(retries, clamp(r), one)
		}
		return nil
	}, requests, errs, active, weight, state, ejections, retries)
	if err != nil {
		return nil, fmt.Errorf("lb: otel: %w", err)
	}
	return reg, nil
}

// named is a server and its name as exported: valid UTF-8.
type named struct {
	*lb.Server
	name string
}

// servers returns the servers of pools, each once, with no two of the
// same exported name: the first of each, in the order of pools.
func servers(pools []*lb.Pool) []named {
	var out []named
	seen := make(map[string]bool)
	for _, p := range pools {
		for _, s := range p.Servers() {
			if name := attrValue(s.Name()); !seen[name] {
				seen[name] = true
				out = append(out, named{s, name})
			}
		}
	}
	return out
}

// attrValue returns name as an attribute value, which must be valid UTF-8
// (OTLP's protobuf strings are, and an exporter fails the whole export on
// one that is not): each run of bytes that are not UTF-8 is replaced by
// U+FFFD.
func attrValue(name string) string {
	if utf8.ValidString(name) {
		return name
	}
	return strings.ToValidUTF8(name, "\uFFFD")
}

// clamp returns n as an int64, at most math.MaxInt64.
func clamp(n uint64) int64 { return int64(min(n, math.MaxInt64)) }

// errorCounts returns the error counts of st in the order of errorClasses.
func errorCounts(st lb.Stats) [len(errorClasses)]uint64 {
	e := st.Errors
	return [...]uint64{e.Transport, e.Timeout, e.Status5xx, e.Status4xx, e.ClientGone}
}

// counts returns the ejections and retries of the server of st.
func counts(st lb.Stats) (ejections, retries uint64) { return st.Ejections, st.Retries }
