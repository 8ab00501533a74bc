package otel

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/balancekit/lb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// backend starts an HTTP server on loopback that answers every request
// with code.
func backend(t *testing.T, code int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// serve sends n requests through a proxy over pool, whose passive health
// ejects a server after one failure.
func serve(t *testing.T, pool *lb.Pool, n int) {
	t.Helper()
	rr, err := lb.NewRoundRobin(pool, lb.WithRand(rand.New(rand.NewPCG(1, 2)).IntN))
	require.NoError(t, err)
	proxy, err := lb.NewProxy(rr, lb.WithPassiveHealth(1, time.Hour))
	require.NoError(t, err)
	front := httptest.NewServer(proxy)
	defer front.Close()
	for range n {
		resp, err := http.Get(front.URL + "/x")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// find returns the metric called name in rm.
func find(t *testing.T, rm metricdata.ResourceMetrics, name string) metricdata.Metrics {
	t.Helper()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				assert.Equal(t, ScopeName, sm.Scope.Name, name)
				return m
			}
		}
	}
	require.Failf(t, "no metric", "%s", name)
	return metricdata.Metrics{}
}

// point returns the value of the int64 data point of m whose attributes
// are attrs.
func point(t *testing.T, m metricdata.Metrics, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	want := attribute.NewSet(attrs...)
	var points []metricdata.DataPoint[int64]
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		points = d.DataPoints
	case metricdata.Gauge[int64]:
		points = d.DataPoints
	default:
		require.Failf(t, "not an int64 sum or gauge", "%s: %T", m.Name, m.Data)
	}
	for _, p := range points {
		if p.Attributes.Equals(&want) {
			return p.Value
		}
	}
	require.Failf(t, "no data point", "%s %v", m.Name, attrs)
	return 0
}

func TestRegisterManualReader(t *testing.T) {
	t.Parallel()
	ok, err := lb.NewServer(backend(t, http.StatusOK), lb.WithName("ok"), lb.WithWeight(3))
	require.NoError(t, err)
	e500, err := lb.NewServer(backend(t, http.StatusInternalServerError), lb.WithName("e500"))
	require.NoError(t, err)
	down, err := lb.NewServer("http://127.0.0.1:1", lb.WithName("down"), lb.WithDown())
	require.NoError(t, err)
	p1, err := lb.NewPool(ok, down)
	require.NoError(t, err)
	p2, err := lb.NewPool(e500, ok) // ok is in both pools, observed once
	require.NoError(t, err)
	okOnly, err := lb.NewPool(ok)
	require.NoError(t, err)
	serve(t, okOnly, 3)
	e500Only, err := lb.NewPool(e500)
	require.NoError(t, err)
	serve(t, e500Only, 2)

	// Two servers that answer 503: one of them is ejected (half the pool
	// at most).
	flaky1, err := lb.NewServer(backend(t, http.StatusServiceUnavailable), lb.WithName("flaky1"))
	require.NoError(t, err)
	flaky2, err := lb.NewServer(backend(t, http.StatusServiceUnavailable), lb.WithName("flaky2"))
	require.NoError(t, err)
	p3, err := lb.NewPool(flaky1, flaky2)
	require.NoError(t, err)
	serve(t, p3, 4)
	require.NotEqual(t, flaky1.Ejected(), flaky2.Ejected())
	out, in := flaky1, flaky2
	if !out.Ejected() {
		out, in = in, out
	}

	producer, err := NewProducer(p1, p2)
	require.NoError(t, err)
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(producer))
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { assert.NoError(t, provider.Shutdown(context.Background())) }()
	reg, err := Register(provider.Meter(ScopeName), p1, p2, p3)
	require.NoError(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))

	requests := find(t, rm, "lb.requests")
	assert.Equal(t, "{request}", requests.Unit)
	sum, isSum := requests.Data.(metricdata.Sum[int64])
	require.True(t, isSum)
	assert.True(t, sum.IsMonotonic)
	assert.Len(t, sum.DataPoints, 5, "ok, in two pools, once")
	server := ServerKey.String
	for _, tc := range []struct {
		metric string
		attrs  []attribute.KeyValue
		want   int64
	}{
		{"lb.requests", []attribute.KeyValue{server("ok")}, 3},
		{"lb.requests", []attribute.KeyValue{server("e500")}, 2},
		{"lb.requests", []attribute.KeyValue{server("down")}, 0},
		{"lb.request.errors", []attribute.KeyValue{server("ok"), ErrorTypeKey.String("transport")}, 0},
		{"lb.request.errors", []attribute.KeyValue{server("ok"), ErrorTypeKey.String("status_5xx")}, 0},
		{"lb.request.errors", []attribute.KeyValue{server("e500"), ErrorTypeKey.String("status_5xx")}, 2},
		{"lb.request.errors", []attribute.KeyValue{server("e500"), ErrorTypeKey.String("status_4xx")}, 0},
		{"lb.request.errors", []attribute.KeyValue{server("e500"), ErrorTypeKey.String("client_gone")}, 0},
		{"lb.active_requests", []attribute.KeyValue{server("ok")}, 0},
		{"lb.active_requests", []attribute.KeyValue{server("e500")}, 0},
		{"lb.server.weight", []attribute.KeyValue{server("ok")}, 3},
		{"lb.server.weight", []attribute.KeyValue{server("down")}, 1},
		{"lb.server.state", []attribute.KeyValue{server("ok"), StateKey.String("up")}, 1},
		{"lb.server.state", []attribute.KeyValue{server("ok"), StateKey.String("down")}, 0},
		{"lb.server.state", []attribute.KeyValue{server("down"), StateKey.String("down")}, 1},
		{"lb.server.state", []attribute.KeyValue{server("down"), StateKey.String("up")}, 0},
		{"lb.ejections", []attribute.KeyValue{server("ok")}, 0},
		{"lb.ejections", []attribute.KeyValue{server(out.Name())}, 1},
		{"lb.ejections", []attribute.KeyValue{server(in.Name())}, 0},
		{"lb.server.state", []attribute.KeyValue{server(out.Name()), StateKey.String("ejected")}, 1},
		{"lb.server.state", []attribute.KeyValue{server(out.Name()), StateKey.String("up")}, 0},
		{"lb.server.state", []attribute.KeyValue{server(in.Name()), StateKey.String("ejected")}, 0},
		{"lb.server.state", []attribute.KeyValue{server(in.Name()), StateKey.String("up")}, 1},
		{"lb.retries", []attribute.KeyValue{server("ok")}, 0},
	} {
		assert.Equal(t, tc.want, point(t, find(t, rm, tc.metric), tc.attrs...), "%s %v", tc.metric, tc.attrs)
	}

	duration := find(t, rm, "lb.request.duration")
	assert.Equal(t, "s", duration.Unit)
	hist, isHist := duration.Data.(metricdata.Histogram[float64])
	require.True(t, isHist)
	assert.Equal(t, metricdata.CumulativeTemporality, hist.Temporality)
	require.Len(t, hist.DataPoints, 3)
	wantCount := map[string]uint64{"ok": 3, "e500": 2, "down": 0}
	for _, p := range hist.DataPoints {
		name, _ := p.Attributes.Value(ServerKey)
		assert.Len(t, p.BucketCounts, len(p.Bounds)+1)
		assert.Len(t, p.Bounds, len(ok.Latency().Octaves().Buckets)-1, "every finite bound of the octaves of lb's histogram")
		var total uint64
		for _, c := range p.BucketCounts {
			total += c
		}
		assert.Equal(t, wantCount[name.AsString()], p.Count, name.AsString())
		assert.Equal(t, p.Count, total, name.AsString())
		assert.Equal(t, p.Count > 0, p.Sum > 0, name.AsString())
	}

	// Once unregistered, the callback observes nothing more.
	require.NoError(t, reg.Unregister())
	rm = metricdata.ResourceMetrics{}
	require.NoError(t, reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			assert.Equal(t, "lb.request.duration", m.Name, "only the producer's metric is left")
		}
	}
}

func TestRegisterBadInput(t *testing.T) {
	t.Parallel()
	provider := sdkmetric.NewMeterProvider()
	defer func() { assert.NoError(t, provider.Shutdown(context.Background())) }()
	_, err := Register(nil)
	assert.EqualError(t, err, "lb: otel: nil meter")
	_, err = Register(provider.Meter(ScopeName), nil)
	assert.EqualError(t, err, "lb: otel: pool 0 is nil")
	_, err = NewProducer(nil)
	assert.EqualError(t, err, "lb: otel: producer: pool 0 is nil")
}
