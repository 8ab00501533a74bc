package otel_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/balancekit/lb"
	lbotel "github.com/balancekit/lb/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// The instruments and the latency histogram of a pool, read by an SDK
// reader; a service gives the Producer to its exporting reader instead.
func ExampleRegister() {
	s, err := lb.NewHandlerServer("local", http.NotFoundHandler())
	if err != nil {
		panic(err)
	}
	pool, err := lb.NewPool(s)
	if err != nil {
		panic(err)
	}
	s.Acquire().Done(lb.DoneInfo{StatusCode: http.StatusNotFound})

	producer, err := lbotel.NewProducer(pool)
	if err != nil {
		panic(err)
	}
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(producer))
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())
	reg, err := lbotel.Register(provider.Meter(lbotel.ScopeName), pool)
	if err != nil {
		panic(err)
	}
	defer reg.Unregister()

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "lb.requests" {
				for _, p := range sum.DataPoints {
					name, _ := p.Attributes.Value(lbotel.ServerKey)
					fmt.Println(m.Name, name.AsString(), p.Value)
				}
			}
		}
	}
	// Output:
	// lb.requests local 1
}
