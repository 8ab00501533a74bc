package lb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSubsetLeavesOutServersOfWeightZero checks that servers of weight 0 in
// the source (the backup priorities of WithDNSSRV, a server set to 0 by
// SetWeight) take no place in a subset: every instance gets size servers
// that can take picks, and a server whose weight comes back takes its
// place again.
func TestSubsetLeavesOutServersOfWeightZero(t *testing.T) {
	t.Parallel()
	servers := fleetServers(t, 12)
	for _, s := range servers[4:] {
		require.NoError(t, s.SetWeight(0)) // backups
	}
	src, err := NewPool(servers...)
	require.NoError(t, err)
	const instances, size = 6, 2
	for i := range instances {
		sub, err := NewSubset(src, i, instances, size)
		require.NoError(t, err)
		got := sub.Pool().Servers()
		require.NoError(t, sub.Close())
		require.Len(t, got, size, "instance %d", i)
		for _, s := range got {
			assert.Positive(t, s.Weight(), "instance %d has %s, of weight 0", i, s.Name())
		}
	}

	// Weights change: the subset follows.
	sub, err := NewSubset(src, 0, 1, 12)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	require.Len(t, sub.Pool().Servers(), 4)
	require.NoError(t, servers[4].SetWeight(3))
	waitSubset(t, sub, mustSubsetOf(t, servers[:5], 0, 1, 12))
	require.NoError(t, servers[0].SetWeight(0))
	waitSubset(t, sub, mustSubsetOf(t, servers[1:5], 0, 1, 12))
}

func mustSubsetOf(t *testing.T, servers []*Server, instance, instances, size int) []*Server {
	t.Helper()
	out, err := SubsetOf(servers, instance, instances, size)
	require.NoError(t, err)
	return out
}
