package lb

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A retry's pick that comes back with no server and no error (a
// BalancerFunc returning Server.Acquire of a server whose drain has begun)
// ends the retries, as the first pick's does with a 503: it must not make
// the proxy call a nil Done and panic.
func TestProxyRetryPickWithoutServer(t *testing.T) {
	t.Parallel()
	dead := deadServer(t, "dead")
	draining := backend(t, "draining", nil)
	draining.setFlag(flagDraining)
	var picks atomic.Int32
	b := BalancerFunc(func(*http.Request) (PickResult, error) {
		if picks.Add(1) == 1 {
			return dead.Acquire(), nil
		}
		return draining.Acquire(), nil // drained: no Server, no Done
	})
	p, err := NewProxy(b, quiet)
	require.NoError(t, err)
	t.Cleanup(p.CloseIdleConnections)
	var code int
	require.NotPanics(t, func() { code = serve(p, http.MethodGet, "/", "").Code })
	assert.Equal(t, http.StatusBadGateway, code)
	assertNoneInFlight(t, dead, draining)
}

// A retry over a PoolBalancer whose Pool is nil, whose picks keep naming
// the server that failed, ends the retries: it does not look for an
// untried server in a pool that is not there.
func TestProxyRetryPoolBalancerWithoutPool(t *testing.T) {
	t.Parallel()
	dead := deadServer(t, "dead")
	b := nilPoolBalancer{BalancerFunc(func(*http.Request) (PickResult, error) { return dead.Acquire(), nil })}
	p, err := NewProxy(b, quiet)
	require.NoError(t, err)
	t.Cleanup(p.CloseIdleConnections)
	var code int
	require.NotPanics(t, func() { code = serve(p, http.MethodGet, "/", "").Code })
	assert.Equal(t, http.StatusBadGateway, code)
	assertNoneInFlight(t, dead)
}
