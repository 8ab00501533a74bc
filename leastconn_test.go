package lb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLeastConnPrefersLeastLoaded(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 1, 1)
	lc, err := NewLeastConn(p, seeded(1))
	require.NoError(t, err)
	servers[0].Acquire()
	servers[0].Acquire()
	servers[1].Acquire()
	assert.Equal(t, map[string]int{"s2": 20}, countPicks(t, lc, 20))

	// Held picks fill the servers up evenly, least loaded first: the
	// loads 2, 1, 0 become 4, 4, 4 after nine picks.
	got, release := hold(t, lc, 9)
	defer release()
	assert.Equal(t, []string{"s2"}, got[:1])
	assert.ElementsMatch(t, []string{"s1", "s2"}, got[1:3])
	counts := make(map[string]int)
	for _, name := range got {
		counts[name]++
	}
	assert.Equal(t, map[string]int{"s0": 2, "s1": 3, "s2": 4}, counts)
	for _, s := range servers {
		assert.EqualValues(t, 4, s.InFlight(), s.Name())
	}
}

func TestLeastConnWeighted(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 3, 1)
	lc, err := NewLeastConn(p, seeded(2))
	require.NoError(t, err)
	// Idle, the heavier server wins: (0+1)/3 < (0+1)/1.
	assert.Equal(t, map[string]int{"s0": 10}, countPicks(t, lc, 10))

	// Held, the loads stay in proportion 3:1; a tie at any step may go
	// either way, so after 40 picks each is within one of its share.
	_, release := hold(t, lc, 40)
	assert.InDelta(t, 30, servers[0].InFlight(), 1)
	assert.InDelta(t, 10, servers[1].InFlight(), 1)
	release()

	// A heavy server with some load still beats an idle light one while
	// its load per weight is lower: (1+1)/3 < (0+1)/1.
	res := servers[0].Acquire()
	assert.Equal(t, map[string]int{"s0": 5}, countPicks(t, lc, 5))
	res.Done(DoneInfo{})
}

func TestLeastConnTiesSpread(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, ones(4)...)
	lc, err := NewLeastConn(p, seeded(3))
	require.NoError(t, err)
	// Every pick is a four-way tie (each ends before the next); reservoir
	// sampling spreads them evenly: each within 5% of 2,500.
	for name, n := range countPicks(t, lc, 10_000) {
		assert.InDelta(t, 2500, n, 125, name)
	}
}

func TestLeastConnTieBreakIsUniform(t *testing.T) {
	t.Parallel()
	// With a scripted source, each seed leads to one choice; over many
	// seeds every tied server is chosen, none twice as often as another.
	p, _ := newTestPool(t, ones(5)...)
	counts := make(map[string]int)
	for seed := range 5000 {
		lc, err := NewLeastConn(p, WithRand(func(int) int { return seed * 7919 }))
		require.NoError(t, err)
		counts[pickNames(t, lc, 1)[0]]++
	}
	require.Len(t, counts, 5)
	for name, n := range counts {
		assert.InDelta(t, 1000, n, 100, name)
	}
}

func TestDrawPairIsUniformAndDistinct(t *testing.T) {
	t.Parallel()
	for n := 2; n <= 9; n++ {
		seen := make(map[[2]int]int)
		r := 0
		script := func(m int) int {
			require.Equal(t, n*(n-1), m)
			return r
		}
		for r = 0; r < n*(n-1); r++ {
			i, j := drawPair(script, n)
			require.NotEqual(t, i, j)
			require.True(t, i >= 0 && i < n && j >= 0 && j < n)
			seen[[2]int{i, j}]++
		}
		// Every ordered pair of distinct servers, exactly once.
		assert.Len(t, seen, n*(n-1), "n=%d", n)
	}
}

func TestP2CTwoServersAlwaysCompareBoth(t *testing.T) {
	t.Parallel()
	// With two servers the two draws are always both of them, so held
	// picks alternate and the loads never differ by more than one.
	p, servers := newTestPool(t, 1, 1)
	for seed := range uint64(10) {
		b, err := NewP2C(p, seeded(seed))
		require.NoError(t, err)
		_, release := hold(t, b, 100)
		assert.EqualValues(t, 50, servers[0].InFlight())
		assert.EqualValues(t, 50, servers[1].InFlight())
		release()
	}
}

func TestP2CPrefersLessLoaded(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 1, 1)
	b, err := NewP2C(p, seeded(4))
	require.NoError(t, err)
	for range 5 {
		servers[0].Acquire()
	}
	// s0 loses every comparison it is drawn into.
	counts := countPicks(t, b, 300)
	assert.Zero(t, counts["s0"])
	assert.InDelta(t, 150, counts["s1"], 30)
	assert.InDelta(t, 150, counts["s2"], 30)
}

func TestP2CWeighted(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 10)
	b, err := NewP2C(p, seeded(5))
	require.NoError(t, err)
	for range 5 {
		servers[1].Acquire()
	}
	// (5+1)/10 < (0+1)/1: the heavy server still wins.
	assert.Equal(t, map[string]int{"s1": 20}, countPicks(t, b, 20))
}

func TestP2CSkipsUnavailable(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, ones(50)...)
	for _, s := range servers[1:] {
		s.SetHealthy(false)
	}
	b, err := NewP2C(p, seeded(6))
	require.NoError(t, err)
	// Most draws miss s0; after the redraws the scan finds it.
	assert.Equal(t, map[string]int{"s0": 200}, countPicks(t, b, 200))

	one, err := NewPool(servers[1])
	require.NoError(t, err)
	b, err = NewP2C(one)
	require.NoError(t, err)
	_, err = b.Pick(nil)
	assert.ErrorIs(t, err, ErrNoServer)
	servers[1].SetHealthy(true)
	assert.Equal(t, []string{"s1"}, pickNames(t, b, 1))
}
