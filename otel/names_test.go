package otel

import (
	"context"
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/balancekit/lb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// A server name that is not valid UTF-8 is exported with U+FFFD for each
// run of bad bytes, as the Prometheus metrics show it (OTLP's protobuf
// strings must be valid UTF-8: one bad value fails the whole export), and
// two names shown alike are exported once.
func TestInvalidUTF8Name(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	bad, err := lb.NewHandlerServer("bad\xff", ok)
	require.NoError(t, err)
	bad2, err := lb.NewHandlerServer("bad\xfe\xfe", ok) // shown as the same name
	require.NoError(t, err)
	pool, err := lb.NewPool(bad, bad2)
	require.NoError(t, err)

	producer, err := NewProducer(pool)
	require.NoError(t, err)
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(producer))
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { assert.NoError(t, provider.Shutdown(context.Background())) }()
	reg, err := Register(provider.Meter(ScopeName), pool)
	require.NoError(t, err)
	defer func() { assert.NoError(t, reg.Unregister()) }()

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	for _, name := range []string{"lb.requests", "lb.server.weight", "lb.request.duration"} {
		m := find(t, rm, name)
		var names []string
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				v, _ := p.Attributes.Value(ServerKey)
				names = append(names, v.AsString())
			}
		case metricdata.Gauge[int64]:
			for _, p := range d.DataPoints {
				v, _ := p.Attributes.Value(ServerKey)
				names = append(names, v.AsString())
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				v, _ := p.Attributes.Value(ServerKey)
				names = append(names, v.AsString())
			}
		}
		assert.Equal(t, []string{"bad\uFFFD"}, names, name)
		for _, n := range names {
			assert.True(t, utf8.ValidString(n), "%s: %q", name, n)
		}
	}
}
