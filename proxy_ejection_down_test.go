package lb

import (
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A server marked down by active health is not in service: passive health
// must not eject the last server that is, or the pool answers 503 for the
// whole cool-down after that server has recovered.
func TestProxyEjectionCapCountsDownServers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var failing atomic.Bool
		failing.Store(true)
		servers := switchable(t, &failing, "a", "b")
		servers[1].SetHealthy(false)
		p := newTestProxy(t, servers)
		for range 2 * DefaultFailures {
			assert.Equal(t, http.StatusServiceUnavailable, serve(p, "GET", "/", "").Code)
		}
		require.False(t, servers[0].Ejected(), "the last server in service was ejected")
		failing.Store(false)
		assert.Equal(t, http.StatusOK, serve(p, "GET", "/", "").Code)
	})
}
