package lb

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkMetricsHandler measures one scrape of a pool of 1,000 servers
// through MetricsHandler.
func BenchmarkMetricsHandler(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	var servers []*Server
	for i := range 1000 {
		s, err := NewHandlerServer(fmt.Sprintf("server-%04d", i), ok)
		require.NoError(b, err)
		for range 3 {
			s.Acquire().Done(DoneInfo{StatusCode: http.StatusOK, Duration: 1500000})
		}
		servers = append(servers, s)
	}
	pool, err := NewPool(servers...)
	require.NoError(b, err)
	h := MetricsHandler(pool)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	w := &discardResponse{header: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(w.n)/float64(b.N), "bytes/scrape")
}

// discardResponse is a ResponseWriter that counts what is written to it
// and keeps nothing.
type discardResponse struct {
	header http.Header
	n      int
}

func (d *discardResponse) Header() http.Header { return d.header }

func (d *discardResponse) Write(p []byte) (int, error) {
	d.n += len(p)
	return len(p), nil
}

func (d *discardResponse) WriteHeader(int) {}
