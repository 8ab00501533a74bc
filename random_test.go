package lb

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRandomWeightedDrawIsExact(t *testing.T) {
	t.Parallel()
	// Every value of the draw, in turn: each server is drawn for exactly
	// weight·n of the n·total values. s1 has weight 0 and is not active.
	p, _ := newTestPool(t, 2, 0, 3, 1, 7, 1)
	const n, total = 5, 14
	counts := make(map[string]int)
	for x := range n * total {
		rd, err := NewRandom(p, WithRand(func(m int) int {
			assert.Equal(t, n*total, m)
			return x
		}))
		require.NoError(t, err)
		counts[pickNames(t, rd, 1)[0]]++
	}
	assert.Equal(t, map[string]int{"s0": 2 * n, "s2": 3 * n, "s3": 1 * n, "s4": 7 * n, "s5": 1 * n}, counts)
}

func TestAliasTable(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 12))
	for range 500 {
		weights := make([]uint64, 1+r.IntN(30))
		var total uint64
		for i := range weights {
			weights[i] = 1 + uint64(r.IntN(1000))
			total += weights[i]
		}
		at := newAliasTable(weights)
		// Units owned by each server, over all columns.
		owned := make([]uint64, len(weights))
		for col := range weights {
			require.LessOrEqual(t, at.prob[col], total)
			owned[col] += at.prob[col]
			owned[at.alias[col]] += total - at.prob[col]
		}
		for i, w := range weights {
			require.Equal(t, w*uint64(len(weights)), owned[i], "weights %v", weights)
		}
	}
}

func TestRandomDistribution(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		weights []int
	}{
		{"uniform", []int{1, 1, 1, 1}},
		{"weighted", []int{1, 2, 3, 4}},
		{"skewed", []int{1, 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, servers := newTestPool(t, tt.weights...)
			rd, err := NewRandom(p, seeded(8))
			require.NoError(t, err)
			const n = 100_000
			counts := countPicks(t, rd, n)
			total := 0
			for _, w := range tt.weights {
				total += w
			}
			for i, s := range servers {
				want := float64(tt.weights[i]) / float64(total)
				assert.InDelta(t, want, float64(counts[s.Name()])/n, 0.005, s.Name())
			}
		})
	}
}

func TestRandomSkipsUnavailable(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 2, 3, 4)
	servers[3].SetHealthy(false)
	rd, err := NewRandom(p, seeded(9))
	require.NoError(t, err)
	const n = 60_000
	counts := countPicks(t, rd, n)
	assert.Zero(t, counts["s3"])
	// The rest keep their proportions 1:2:3.
	assert.InDelta(t, 1.0/6, float64(counts["s0"])/n, 0.005)
	assert.InDelta(t, 2.0/6, float64(counts["s1"])/n, 0.005)
	assert.InDelta(t, 3.0/6, float64(counts["s2"])/n, 0.005)
}

func TestRandomFallback(t *testing.T) {
	t.Parallel()
	// Two of 200 servers up: most picks exhaust the redraws and take the
	// exact weighted fallback, which keeps the 1:3 proportion.
	weights := ones(200)
	weights[7], weights[150] = 1, 3
	p, servers := newTestPool(t, weights...)
	for i, s := range servers {
		if i != 7 && i != 150 {
			s.SetHealthy(false)
		}
	}
	rd, err := NewRandom(p, seeded(10))
	require.NoError(t, err)
	const n = 20_000
	counts := countPicks(t, rd, n)
	assert.Len(t, counts, 2)
	assert.InDelta(t, 0.25, float64(counts["s7"])/n, 0.01)
	assert.InDelta(t, 0.75, float64(counts["s150"])/n, 0.01)
}
