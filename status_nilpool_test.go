package lb_test

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/balancekit/lb"
)

// TestStatusHandlerNilPool checks that StatusHandler over a nil pool
// serves an empty pool, as MetricsHandler skips nil pools, instead of
// panicking on every request.
func TestStatusHandlerNilPool(t *testing.T) {
	h := lb.StatusHandler(nil)
	for _, accept := range []string{"application/json", "text/html"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", accept)
		require.NotPanics(t, func() { h.ServeHTTP(w, r) }, accept)
		assert.Equal(t, 200, w.Code, accept)
	}
}
