package lb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConsistentHashStartWithFallback: WithStart sets the position of the
// default fallback, so beside WithFallback it would be silently ignored;
// the pair is an error instead, in either order.
func TestConsistentHashStartWithFallback(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1, 1)
	rr, err := NewRoundRobin(p)
	require.NoError(t, err)
	for _, opts := range [][]Option{
		{WithStart(1), WithFallback(rr)},
		{WithFallback(rr), WithStart(1)},
	} {
		_, err := NewConsistentHash(p, KeyPath(), opts...)
		assert.EqualError(t, err, "lb: NewConsistentHash: WithStart applies to the default fallback, not to one set by WithFallback")
	}
	_, err = NewConsistentHash(p, KeyPath(), WithStart(1))
	assert.NoError(t, err)
	_, err = NewConsistentHash(p, KeyPath(), WithFallback(rr))
	assert.NoError(t, err)
}
