package prometheus

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/balancekit/lb"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
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

// scrape GETs url and parses the answer with expfmt's text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/plain; version=0.0.4") // the text format, not protobuf
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return families
}

// value returns the value of the series of family with the given labels
// (server first, then the others as name, value pairs).
func value(t *testing.T, families map[string]*dto.MetricFamily, family string, labels ...string) float64 {
	t.Helper()
	f, ok := families[family]
	require.True(t, ok, "no family %s", family)
	want := map[string]string{"server": labels[0]}
	for i := 1; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	require.Failf(t, "no series", "%s %v", family, labels)
	return 0
}

func TestCollectorScrape(t *testing.T) {
	t.Parallel()
	ok, err := lb.NewServer(backend(t, http.StatusOK), lb.WithName("ok"), lb.WithWeight(3))
	require.NoError(t, err)
	e500, err := lb.NewServer(backend(t, http.StatusInternalServerError), lb.WithName("e500"))
	require.NoError(t, err)
	e404, err := lb.NewServer(backend(t, http.StatusNotFound), lb.WithName("e404"))
	require.NoError(t, err)
	down, err := lb.NewServer("http://127.0.0.1:1", lb.WithName("down"), lb.WithDown())
	require.NoError(t, err)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // its port now refuses connections
	refused, err := lb.NewServer(closed.URL, lb.WithName("refused"))
	require.NoError(t, err)

	// One pool per answering backend, so that each proxy's traffic is
	// known exactly; ok is in two pools and is collected once.
	traffic := []struct {
		pool     []*lb.Server
		requests int
	}{
		{[]*lb.Server{ok}, 3},
		{[]*lb.Server{e500}, 2},
		{[]*lb.Server{e404, down}, 1}, // down is never picked
		{[]*lb.Server{ok}, 0},
		{[]*lb.Server{refused}, 1},
	}
	// Two servers that answer 503: after a failure each, passive health
	// ejects one of them (half the pool at most).
	var flaky []*lb.Server
	for _, name := range []string{"flaky1", "flaky2"} {
		s, err := lb.NewServer(backend(t, http.StatusServiceUnavailable), lb.WithName(name))
		require.NoError(t, err)
		flaky = append(flaky, s)
	}
	traffic = append(traffic, struct {
		pool     []*lb.Server
		requests int
	}{flaky, 4})
	var pools []*lb.Pool
	for _, tr := range traffic {
		pool, err := lb.NewPool(tr.pool...)
		require.NoError(t, err)
		pools = append(pools, pool)
		rr, err := lb.NewRoundRobin(pool, lb.WithRand(rand.New(rand.NewPCG(1, 2)).IntN))
		require.NoError(t, err)
		proxy, err := lb.NewProxy(rr, lb.WithPassiveHealth(1, time.Hour))
		require.NoError(t, err)
		front := httptest.NewServer(proxy)
		for range tr.requests {
			resp, err := http.Get(front.URL + "/x")
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		front.Close()
	}

	c, err := NewCollector(pools...)
	require.NoError(t, err)
	reg := prom.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	families := scrape(t, srv.URL)

	for _, tc := range []struct {
		family string
		labels []string
		want   float64
	}{
		{"lb_requests_total", []string{"ok"}, 3},
		{"lb_requests_total", []string{"e500"}, 2},
		{"lb_requests_total", []string{"e404"}, 1},
		{"lb_requests_total", []string{"down"}, 0},
		{"lb_in_flight_requests", []string{"ok"}, 0},
		{"lb_in_flight_requests", []string{"e500"}, 0},
		{"lb_in_flight_requests", []string{"e404"}, 0},
		{"lb_server_weight", []string{"ok"}, 3},
		{"lb_server_weight", []string{"down"}, 1},
		{"lb_server_state", []string{"ok", "state", "up"}, 1},
		{"lb_server_state", []string{"ok", "state", "down"}, 0},
		{"lb_server_state", []string{"down", "state", "down"}, 1},
		{"lb_server_state", []string{"down", "state", "up"}, 0},
		{"lb_requests_total", []string{"refused"}, 1},
		{"lb_request_errors_total", []string{"ok", "class", "status_5xx"}, 0},
		{"lb_request_errors_total", []string{"e500", "class", "status_5xx"}, 2},
		{"lb_request_errors_total", []string{"e500", "class", "status_4xx"}, 0},
		{"lb_request_errors_total", []string{"e404", "class", "status_4xx"}, 1},
		{"lb_request_errors_total", []string{"refused", "class", "transport"}, 1},
		{"lb_request_errors_total", []string{"refused", "class", "timeout"}, 0},
		{"lb_request_errors_total", []string{"refused", "class", "client_gone"}, 0},
		{"lb_ejections_total", []string{"ok"}, 0},
		{"lb_retries_total", []string{"ok"}, 0},
		// The histograms' sample counts: every request reported a
		// duration.
		{"lb_request_duration_seconds", []string{"ok"}, 3},
		{"lb_request_duration_seconds", []string{"e500"}, 2},
		{"lb_request_duration_seconds", []string{"e404"}, 1},
		{"lb_request_duration_seconds", []string{"down"}, 0},
	} {
		assert.Equal(t, tc.want, value(t, families, tc.family, tc.labels...), "%s %v", tc.family, tc.labels)
	}
	assert.Len(t, families["lb_requests_total"].GetMetric(), 7, "ok, in two pools, once")
	ejections := value(t, families, "lb_ejections_total", "flaky1") + value(t, families, "lb_ejections_total", "flaky2")
	assert.Equal(t, 1.0, ejections)
	for _, f := range flaky {
		want := 0.0
		if f.Ejected() {
			want = 1
		}
		assert.Equal(t, want, value(t, families, "lb_server_state", f.Name(), "state", "ejected"), f.Name())
		assert.Equal(t, 1-want, value(t, families, "lb_server_state", f.Name(), "state", "up"), f.Name())
	}
	okHist := families["lb_request_duration_seconds"].GetMetric()
	for _, m := range okHist {
		h := m.GetHistogram()
		require.NotEmpty(t, h.GetBucket())
		last := h.GetBucket()[len(h.GetBucket())-1]
		assert.Equal(t, h.GetSampleCount(), last.GetCumulativeCount(), "no observation above 60 s")
		if h.GetSampleCount() > 0 {
			assert.Positive(t, h.GetSampleSum())
		}
	}

	// The core's handler serves the same names and values.
	core := httptest.NewServer(lb.MetricsHandler(pools...))
	defer core.Close()
	assertSameFamilies(t, families, scrape(t, core.URL))
}

// assertSameFamilies checks that want and got hold the same families of
// lb metrics, with the same series and values, in any order.
func assertSameFamilies(t *testing.T, want, got map[string]*dto.MetricFamily) {
	t.Helper()
	names := func(fs map[string]*dto.MetricFamily) []string {
		var out []string
		for name := range fs {
			if strings.HasPrefix(name, "lb_") {
				out = append(out, name)
			}
		}
		sort.Strings(out)
		return out
	}
	require.Equal(t, names(want), names(got))
	for _, name := range names(want) {
		w, g := want[name], got[name]
		sortMetrics(w)
		sortMetrics(g)
		assert.True(t, proto.Equal(w, g), "%s:\ncollector: %v\ncore:      %v", name, w, g)
	}
}

// sortMetrics sorts the labels of each series of f by name, and the series
// by their labels.
func sortMetrics(f *dto.MetricFamily) {
	for _, m := range f.Metric {
		sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
	}
	key := func(m *dto.Metric) string {
		var b strings.Builder
		for _, l := range m.GetLabel() {
			b.WriteString(l.GetName() + "=" + l.GetValue() + ",")
		}
		return b.String()
	}
	sort.Slice(f.Metric, func(i, j int) bool { return key(f.Metric[i]) < key(f.Metric[j]) })
}

func TestNewCollectorNilPool(t *testing.T) {
	t.Parallel()
	_, err := NewCollector(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lb: prometheus collector: pool 0 is nil")
}

func TestCollectorInvalidUTF8Name(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	bad, err := lb.NewHandlerServer("bad\xff", ok)
	require.NoError(t, err)
	// Shown as the same name as bad: collected once.
	bad2, err := lb.NewHandlerServer("bad\xfe\xfe", ok)
	require.NoError(t, err)
	pool, err := lb.NewPool(bad, bad2)
	require.NoError(t, err)
	c, err := NewCollector(pool)
	require.NoError(t, err)
	reg := prom.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	families, err := reg.Gather()
	require.NoError(t, err)
	var servers []string
	for _, f := range families {
		if f.GetName() == "lb_requests_total" {
			for _, m := range f.GetMetric() {
				servers = append(servers, m.GetLabel()[0].GetValue())
			}
		}
	}
	assert.Equal(t, []string{"bad\uFFFD"}, servers)

	// The core's handler shows it the same way.
	core := httptest.NewServer(lb.MetricsHandler(pool))
	defer core.Close()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	assertSameFamilies(t, scrape(t, srv.URL), scrape(t, core.URL))
}

// A registry takes one Collector: a second one, even over other pools, is
// refused, as the Collector's doc says.
func TestCollectorOnePerRegistry(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	var collectors []*Collector
	for _, name := range []string{"a", "b"} {
		s, err := lb.NewHandlerServer(name, ok)
		require.NoError(t, err)
		pool, err := lb.NewPool(s)
		require.NoError(t, err)
		c, err := NewCollector(pool)
		require.NoError(t, err)
		collectors = append(collectors, c)
	}
	reg := prom.NewPedanticRegistry()
	require.NoError(t, reg.Register(collectors[0]))
	assert.Error(t, reg.Register(collectors[1]))
}
