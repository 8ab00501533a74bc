package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeterministicSubsetsSpreadLoad checks the subsetting goal: 100
// instances, each over 12 of 100 servers by lb.SubsetOf, give every server
// the same number of connections, and with P2C inside each subset the
// busiest server gets at most 1.10× the mean of the requests; random
// subsets do much worse.
func TestDeterministicSubsetsSpreadLoad(t *testing.T) {
	t.Parallel()
	p2c := algorithmNamed(t, "p2c")
	det, err := simulate(scenarioNamed(t, "subset-100-12"), p2c, 0.8, 2, 7)
	require.NoError(t, err)
	assert.InDelta(t, 1, det.connSpread, 1e-9, "connections max/mean")
	assert.LessOrEqual(t, det.loadSpread, 1.10, "requests max/mean")
	t.Logf("requests max/mean: deterministic %.3f", det.loadSpread)

	random, err := simulate(scenarioNamed(t, "subset-100-12-random"), p2c, 0.8, 2, 7)
	require.NoError(t, err)
	assert.Greater(t, random.connSpread, 1.3, "connections max/mean, random subsets")
	assert.Greater(t, random.loadSpread, det.loadSpread+0.1, "requests max/mean, random subsets")
}

func TestHerdTable(t *testing.T) {
	t.Parallel()
	var all []*result
	for _, name := range herds[0].scenarios {
		for _, alg := range herdBalancers {
			r, err := simulate(scenarioNamed(t, name), algorithmNamed(t, alg), 0.8, 3, 7)
			require.NoError(t, err)
			require.Equal(t, max(1, scenarioNamed(t, name).instances), r.instances)
			all = append(all, r)
		}
	}
	var b strings.Builder
	writeHerds(&b, all)
	out := b.String()
	assert.Contains(t, out, "### 4 servers, one 10× slower, load 80%")
	assert.Contains(t, out, "| algorithm | 1 instance | 8 instances | 32 instances |")
	for _, alg := range herdBalancers {
		assert.Contains(t, out, "| "+alg+" | ")
	}
}
