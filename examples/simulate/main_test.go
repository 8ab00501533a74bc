package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The expected results of the simulations, on short runs. They assert who
// beats whom, not exact figures.

func scenarioNamed(t *testing.T, name string) scenario {
	for _, sc := range scenarios {
		if sc.name == name {
			return sc
		}
	}
	t.Fatalf("no scenario %q", name)
	return scenario{}
}

func runAll(t *testing.T, sc scenario, load, duration float64) map[string]*result {
	t.Helper()
	out := map[string]*result{}
	for _, alg := range algorithms {
		r, err := simulate(sc, alg, load, duration, 7)
		require.NoError(t, err)
		require.Positive(t, r.served)
		out[alg.name] = r
	}
	return out
}

func TestSlowServerFavoursLoadAware(t *testing.T) {
	t.Parallel()
	rs := runAll(t, scenarioNamed(t, "slow"), 0.8, 20)
	for _, aware := range []string{"least-conn", "p2c"} {
		for _, blind := range []string{"round-robin", "random"} {
			assert.Less(t, rs[aware].percentile(0.99), rs[blind].percentile(0.99)/10,
				"%s p99 far below %s p99", aware, blind)
		}
	}
}

func TestRoundRobinExactShares(t *testing.T) {
	t.Parallel()
	r, err := simulate(scenarioNamed(t, "equal"), algorithmNamed(t, "round-robin"), 0.8, 20, 7)
	require.NoError(t, err)
	lo, hi := r.picks[0], r.picks[0]
	for _, p := range r.picks {
		lo, hi = min(lo, p), max(hi, p)
	}
	assert.LessOrEqual(t, hi-lo, 1, "picks %v", r.picks)
}

func TestWeightedSharesFollowWeights(t *testing.T) {
	t.Parallel()
	rs := runAll(t, scenarioNamed(t, "hetero"), 0.8, 20)
	for _, name := range []string{"weighted-rr", "random"} {
		for i, want := range []float64{0.1, 0.2, 0.3, 0.4} {
			assert.InDelta(t, want, rs[name].share[i], 0.01, "%s server %d", name, i)
		}
	}
}

func TestIndependentLeastConnDoesNotHerd(t *testing.T) {
	t.Parallel()
	rs := runAll(t, scenarioNamed(t, "herd"), 0.8, 20)
	assert.LessOrEqual(t, rs["least-conn"].percentile(0.99), rs["p2c"].percentile(0.99)*1.1)
}

func TestSlowStartSparesTheColdServer(t *testing.T) {
	t.Parallel()
	cold := runAll(t, scenarioNamed(t, "failure"), 0.5, 60)
	ramped := runAll(t, scenarioNamed(t, "failure-slowstart"), 0.5, 60)
	for _, name := range []string{"round-robin", "random"} {
		assert.Less(t, ramped[name].peak[0], cold[name].peak[0], "%s: queue at the recovered server", name)
		assert.Less(t, ramped[name].percentile(0.999), cold[name].percentile(0.999), name)
	}
	assert.Positive(t, cold["round-robin"].unhealthy, "requests sent before the failure was detected")
}

func TestSimulationIsReproducible(t *testing.T) {
	t.Parallel()
	sc := scenarioNamed(t, "bursty")
	p2c := algorithmNamed(t, "p2c")
	a, err := simulate(sc, p2c, 0.8, 10, 3)
	require.NoError(t, err)
	b, err := simulate(sc, p2c, 0.8, 10, 3)
	require.NoError(t, err)
	// Results hold NaN (measurements that do not apply), which is never
	// equal to itself: compare what was measured.
	assert.Equal(t, a.latencies, b.latencies)
	assert.Equal(t, a.bins, b.bins)
	assert.Equal(t, a.peak, b.peak)
	c, err := simulate(sc, p2c, 0.8, 10, 4)
	require.NoError(t, err)
	assert.NotEqual(t, a.latencies, c.latencies)
}

func TestRunWritesReport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, run([]string{"-scenario", "slow", "-load", "0.5,0.8", "-duration", "5", "-out", dir}, &out))
	assert.Contains(t, out.String(), "slow (4 servers, one 10× slower), load 80%")
	assert.Contains(t, out.String(), "least-conn")

	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| algorithm | mean | p50 | p99 | p99.9 | p99/oracle | cand/pick | share | peak | unhealthy | rejected |")
	assert.Contains(t, string(md), "| oracle | ")
	for _, name := range []string{"latency-slow.svg", "share-slow.svg"} {
		f, err := os.Open(filepath.Join(dir, name))
		require.NoError(t, err)
		rects := 0
		dec := xml.NewDecoder(f)
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			require.NoError(t, err, "%s is well-formed XML", name)
			if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "rect" {
				rects++
			}
		}
		f.Close()
		// Background, bars (6 algorithms × series), legend swatches.
		series := 3
		if strings.HasPrefix(name, "share") {
			series = 4
		}
		assert.Equal(t, 1+len(algorithms)*series+series, rects, name)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-scenario", "nope"},
		{"-load", "1.5"},
		{"-load", "x"},
		{"-duration", "0"},
		{"-format", "csv"},
	} {
		assert.Error(t, run(args, io.Discard), "%v", args)
	}
}

func TestNiceCeil(t *testing.T) {
	t.Parallel()
	for v, want := range map[float64]float64{0.3: 0.5, 1: 1, 1.2: 2, 7: 10, 45: 50} {
		assert.InDelta(t, want, niceCeil(v), 1e-9, "%v", v)
	}
}
