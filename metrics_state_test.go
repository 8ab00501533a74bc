package lb

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A server that passive health ejected shows as ejected, with its ejection
// counted.
func TestMetricsHandlerEjected(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var failing atomic.Bool
		failing.Store(true)
		servers := switchable(t, &failing, "s0", "s1")
		p := newTestProxy(t, servers, WithPassiveHealth(1, time.Hour))
		for range 4 {
			serve(p, "GET", "/", "")
		}
		require.Equal(t, 1, ejected(servers), "half of two servers at most")
		out, in := servers[0], servers[1]
		if !out.Ejected() {
			out, in = in, out
		}
		pool, err := NewPool(servers...)
		require.NoError(t, err)
		lines := metricLines(scrapeMetrics(t, MetricsHandler(pool)))
		for _, want := range []string{
			`lb_server_state{server="` + out.Name() + `",state="ejected"} 1`,
			`lb_server_state{server="` + out.Name() + `",state="up"} 0`,
			`lb_ejections_total{server="` + out.Name() + `"} 1`,
			`lb_server_state{server="` + in.Name() + `",state="ejected"} 0`,
			`lb_server_state{server="` + in.Name() + `",state="up"} 1`,
			`lb_ejections_total{server="` + in.Name() + `"} 0`,
		} {
			assert.Contains(t, lines, want)
		}
	})
}
