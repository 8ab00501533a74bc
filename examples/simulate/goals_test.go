package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdaptiveMeetsGoals runs, on shorter runs than docs/sim's, every goal
// of the goals table for the adaptive balancer. The goal of a p99 three
// times better than least-conn's and P2C's in het is left out: the oracle
// itself is not that much better there (see docs/sim/results.md).
func TestAdaptiveMeetsGoals(t *testing.T) {
	t.Parallel()
	for _, g := range goals {
		if strings.Contains(g.what, "3× better") {
			continue
		}
		t.Run(g.scenario+"/"+strings.ReplaceAll(g.what, " ", "_"), func(t *testing.T) {
			t.Parallel()
			sc := scenarioNamed(t, g.scenario)
			peers := []string{"adaptive"}
			switch {
			case strings.Contains(g.what, "oracle"):
				peers = append(peers, "oracle")
			case strings.Contains(g.what, "least-conn"):
				peers = append(peers, "least-conn")
			}
			rs := map[string]*result{}
			for _, name := range peers {
				r, err := simulate(sc, algorithmNamed(t, name), g.load, 30, 7)
				require.NoError(t, err)
				rs[name] = r
			}
			v, met := g.measure(rs["adaptive"], rs)
			assert.True(t, met, "%s at %.0f%%: %s, measured %s", g.scenario, g.load*100, g.what, v)
		})
	}
}
