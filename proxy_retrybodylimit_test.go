package lb

import (
	"math"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A retry-body limit too large to buffer is refused, naming the value,
// rather than failing every request with a body; the largest accepted one
// works.
func TestWithRetryBodyLimitBounds(t *testing.T) {
	t.Parallel()
	s := backend(t, "a", nil)
	pool, err := NewPool(s)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	for _, n := range []int64{MaxRetryBodyLimit + 1, 1 << 40, math.MaxInt64} {
		_, err := NewProxy(rr, WithRetryBodyLimit(n))
		require.Error(t, err, "%d", n)
		assert.Contains(t, err.Error(), strconv.FormatInt(n, 10))
		assert.Contains(t, err.Error(), "lb: NewProxy: WithRetryBodyLimit")
	}
	p := newTestProxy(t, []*Server{s}, WithRetryBodyLimit(MaxRetryBodyLimit))
	w := serve(p, "PUT", "/", "body")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "a", w.Body.String())
}
