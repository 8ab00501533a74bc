package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExpectedDelay(t *testing.T) {
	t.Parallel()
	sc := scenario{servers: []serverSpec{
		{workers: 4, service: 0.010, slowdown: 1},
		{workers: 2, service: 0.010, slowdown: 4},
		{workers: 4, service: 0.010, slowdown: 1, failFast: true},
		{workers: 4, service: 0.010, slowdown: 1},
	}, shift: &shift{server: 3, factor: 20}}
	st := simState{sc: sc, busy: make([]int, 4), queued: make([][]*request, 4), down: make([]bool, 4),
		recoveredAt: math.Inf(-1), shiftStart: 10, shiftEnd: 20}
	for _, tc := range []struct {
		name   string
		server int
		now    float64
		busy   int
		queued int
		down   bool
		want   float64
	}{
		{name: "idle", server: 0, want: 0.010},
		{name: "a worker free", server: 0, busy: 3, want: 0.010},
		{name: "all busy", server: 0, busy: 4, want: 0.010 + 0.010/4},
		{name: "two waiting", server: 0, busy: 4, queued: 2, want: 0.010 + 3*0.010/4},
		{name: "slow, two workers busy, one waiting", server: 1, busy: 2, queued: 1, want: 0.040 + 2*0.040/2},
		{name: "fails fast", server: 2, want: math.Inf(1)},
		{name: "down", server: 0, down: true, want: math.Inf(1)},
		{name: "before the shift", server: 3, now: 9.9, want: 0.010},
		{name: "during the shift", server: 3, now: 10, busy: 4, want: 0.200 + 0.200/4},
		{name: "after the shift", server: 3, now: 20, want: 0.010},
	} {
		st.now = tc.now
		clear(st.busy)
		clear(st.down)
		for i := range st.queued {
			st.queued[i] = nil
		}
		st.busy[tc.server] = tc.busy
		st.queued[tc.server] = make([]*request, tc.queued)
		st.down[tc.server] = tc.down
		assert.InDelta(t, tc.want, st.expectedDelay(tc.server), 1e-12, tc.name)
	}
}

func algorithmNamed(t *testing.T, name string) algorithm {
	for _, alg := range algorithms {
		if alg.name == name {
			return alg
		}
	}
	t.Fatalf("no algorithm %q", name)
	return algorithm{}
}

func TestOracleAvoidsSlowAndFailingServers(t *testing.T) {
	t.Parallel()
	oracle := algorithmNamed(t, "oracle")

	het, err := simulate(scenarioNamed(t, "het"), oracle, 0.8, 20, 7)
	require.NoError(t, err)
	lc, err := simulate(scenarioNamed(t, "het"), algorithmNamed(t, "least-conn"), 0.8, 20, 7)
	require.NoError(t, err)
	// At 80% the 12 fast servers can take everything, faster than a slow
	// one serves a single request.
	for i := 12; i < 16; i++ {
		assert.Zero(t, het.picks[i], "slow server %d", i)
	}
	assert.Less(t, het.percentile(0.99), lc.percentile(0.99))
	assert.InDelta(t, 16, het.candidates, 0)

	ff, err := simulate(scenarioNamed(t, "fast-fail"), oracle, 0.8, 20, 7)
	require.NoError(t, err)
	assert.Zero(t, ff.picks[3])
	assert.Zero(t, ff.failed)
	assert.Zero(t, ff.failShare)
}

func TestFastFailCountsErrors(t *testing.T) {
	t.Parallel()
	r, err := simulate(scenarioNamed(t, "fast-fail"), algorithmNamed(t, "round-robin"), 0.8, 20, 7)
	require.NoError(t, err)
	assert.Equal(t, r.picks[3], r.failed, "every request to the failing server fails")
	assert.Equal(t, r.requests, r.served+r.failed)
	assert.InDelta(t, 0.25, r.failShare, 0.001)
	// Least-conn sees the failing server idle most of the time.
	lc, err := simulate(scenarioNamed(t, "fast-fail"), algorithmNamed(t, "least-conn"), 0.8, 20, 7)
	require.NoError(t, err)
	assert.Greater(t, lc.failShare, 0.4)
}

func TestMeasureShift(t *testing.T) {
	t.Parallel()
	// 4 servers, bins of 0.5 s over 10 s; server 3 is slowed from 2 s to
	// 5 s. Its picks per bin:
	ours := []int{25, 25, 25, 25, 20, 10, 4, 1, 0, 0, 10, 15, 20, 25, 25, 25, 25, 25, 25, 25}
	r := &result{share: make([]float64, 4)}
	for _, p := range ours {
		r.bins = append(r.bins, []int{25, 25, 25, p})
	}
	r.measureShift(3, 2, 5, 10)
	// Fair share 25%, a quarter of it 6.25%: bin 6 (3.0–3.5 s), 4/79.
	assert.InDelta(t, 1.5, r.shiftBelow, 1e-9)
	// 80% of fair is 20%: bin 12 (6.0–6.5 s), 20/95 = 21%.
	assert.InDelta(t, 1.5, r.shiftBack, 1e-9)
	// From 4 s to 5 s: bins 8 and 9, no picks.
	assert.InDelta(t, 0, r.shiftShare, 1e-9)
	// The run is too short for 10 s after recovery.
	assert.True(t, math.IsNaN(r.recoveredShare))
}

func TestShiftScenario(t *testing.T) {
	t.Parallel()
	sc := scenarioNamed(t, "shift")
	rr, err := simulate(sc, algorithmNamed(t, "round-robin"), 0.5, 60, 7)
	require.NoError(t, err)
	assert.True(t, math.IsNaN(rr.shiftBelow), "round robin never moves traffic")
	assert.InDelta(t, 0.5, rr.shiftBack, 1e-9)
	or, err := simulate(sc, algorithmNamed(t, "oracle"), 0.5, 60, 7)
	require.NoError(t, err)
	assert.InDelta(t, 0.5, or.shiftBelow, 1e-9)
	assert.InDelta(t, 0, or.shiftShare, 0.01)
	assert.InDelta(t, 1, or.recoveredShare, 0.1)
	assert.Less(t, or.percentile(0.99), rr.percentile(0.99)/10)
}

func TestScenarioLoads(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run([]string{"-scenario", "fast-fail", "-duration", "3"}, &out))
	assert.Contains(t, out.String(), "load 50%")
	assert.Contains(t, out.String(), "load 80%")
	assert.NotContains(t, out.String(), "load 95%")
	assert.Contains(t, out.String(), "to failing after 1 s")
	out.Reset()
	require.NoError(t, run([]string{"-scenario", "fast-fail", "-duration", "3", "-load", "0.6"}, &out))
	assert.Contains(t, out.String(), "load 60%")
	assert.NotContains(t, out.String(), "load 50%")
}

func TestRunWritesGoalsAndTimeline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, run([]string{"-scenario", "shift", "-load", "0.5", "-duration", "40", "-out", dir}, &out))
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| scenario | goal | adaptive | peak-ewma |")
	assert.Contains(t, string(md), "| shift, load 50% | slowed server below ¼ of its fair share within 2 s |")
	assert.NotContains(t, string(md), "| het, load", "goals of scenarios not run")

	f, err := os.Open(filepath.Join(dir, "timeline-shift-50.svg"))
	require.NoError(t, err)
	defer f.Close()
	lines := 0
	dec := xml.NewDecoder(f)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "well-formed XML")
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "polyline" {
			lines++
		}
	}
	assert.Equal(t, 5, lines, "oracle, least-conn, p2c, peak-ewma, adaptive")
}
