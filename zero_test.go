package lb_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/balancekit/lb"
)

// TestZeroValues checks that the zero value of each type that needs a
// constructor fails with an error instead of a panic: its doc says it is
// not usable, and a mistake must not take the process down.
func TestZeroValues(t *testing.T) {
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Key", "k")
	for name, b := range map[string]lb.Balancer{
		"RoundRobin":         new(lb.RoundRobin),
		"WeightedRoundRobin": new(lb.WeightedRoundRobin),
		"LeastConn":          new(lb.LeastConn),
		"P2C":                new(lb.P2C),
		"Random":             new(lb.Random),
		"ConsistentHash":     new(lb.ConsistentHash),
		"PeakEWMA":           new(lb.PeakEWMA),
		"Adaptive":           new(lb.Adaptive),
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { _, err = b.Pick(req) })
			assert.ErrorIs(t, err, lb.ErrNoServer)
			if pb, ok := b.(lb.PoolBalancer); ok {
				assert.Nil(t, pb.Pool())
			}
		})
	}
	t.Run("ConsistentHash.PickKey", func(t *testing.T) {
		var err error
		require.NotPanics(t, func() { _, err = new(lb.ConsistentHash).PickKey("k") })
		assert.ErrorIs(t, err, lb.ErrNoServer)
	})
	t.Run("Proxy", func(t *testing.T) {
		w := httptest.NewRecorder()
		require.NotPanics(t, func() { new(lb.Proxy).ServeHTTP(w, req) })
		assert.Equal(t, http.StatusInternalServerError, w.Code)
	})
	t.Run("HealthChecker", func(t *testing.T) {
		hc := new(lb.HealthChecker)
		require.NotPanics(t, func() { hc.CheckOnce(context.Background()) })
		var err error
		require.NotPanics(t, func() { err = hc.Run(context.Background()) })
		assert.ErrorContains(t, err, "NewHealthChecker")
	})
	t.Run("TCPProxy", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		require.NotPanics(t, func() { err = new(lb.TCPProxy).Serve(ln) })
		assert.ErrorContains(t, err, "NewTCPProxy")
	})
}
