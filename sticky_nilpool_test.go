package lb

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nilPoolBalancer is a PoolBalancer that names no pool.
type nilPoolBalancer struct{ Balancer }

func (nilPoolBalancer) Pool() *Pool { return nil }

// WithStickyCookie over a balancer whose Pool is nil is an error at
// NewProxy, not a panic on the first request that carries the cookie.
func TestStickyCookieNeedsAPool(t *testing.T) {
	t.Parallel()
	s := backend(t, "a", nil)
	b := nilPoolBalancer{BalancerFunc(func(*http.Request) (PickResult, error) { return s.Acquire(), nil })}
	p, err := NewProxy(b, quiet, WithStickyCookie("lb", []byte("0123456789abcdef"), nil))
	if err == nil {
		t.Cleanup(p.CloseIdleConnections)
		assert.NotPanics(t, func() {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Cookie", "lb=x")
			p.ServeHTTP(httptest.NewRecorder(), r)
		})
	}
	require.ErrorIs(t, err, errStickyNeedsPool)
}
