package prometheus

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/balancekit/lb"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// BenchmarkCollect measures one scrape of a pool of 1,000 servers through
// a registry: Collect, and the registry's checks and sorting (Gather).
func BenchmarkCollect(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	var servers []*lb.Server
	for i := range 1000 {
		s, err := lb.NewHandlerServer(fmt.Sprintf("server-%04d", i), ok)
		require.NoError(b, err)
		for range 3 {
			s.Acquire().Done(lb.DoneInfo{StatusCode: http.StatusOK, Duration: 1500000})
		}
		servers = append(servers, s)
	}
	pool, err := lb.NewPool(servers...)
	require.NoError(b, err)
	c, err := NewCollector(pool)
	require.NoError(b, err)
	reg := prom.NewRegistry()
	require.NoError(b, reg.Register(c))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
