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
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	}
}
