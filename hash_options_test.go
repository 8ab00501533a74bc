package lb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConsistentHashStartWithFallback: WithRotationStart sets the position of the
// default fallback, so beside WithFallback it would be silently ignored;
// the pair is an error instead, in either order.
func TestConsistentHashStartWithFallback(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1, 1)
	rr, err := NewRoundRobin(p)
	require.NoError(t, err)
	for _, opts := range [][]Option{
		{WithRotationStart(1), WithFallback(rr)},
		{WithFallback(rr), WithRotationStart(1)},
	} {
		_, err := NewConsistentHash(p, KeyPath(), opts...)
		assert.EqualError(t, err, "lb: NewConsistentHash: WithRotationStart applies to the default fallback, not to one set by WithFallback")
	}
	_, err = NewConsistentHash(p, KeyPath(), WithRotationStart(1))
	assert.NoError(t, err)
	_, err = NewConsistentHash(p, KeyPath(), WithFallback(rr))
	assert.NoError(t, err)
}
