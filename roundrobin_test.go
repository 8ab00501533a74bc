package lb

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundRobinCyclesFromAnyStart(t *testing.T) {
	t.Parallel()
	const n = 5
	p, _ := newTestPool(t, 1, 3, 1, 2, 1) // weights are ignored
	for start := range uint64(3 * n) {
		rr, err := NewRoundRobin(p, WithRotationStart(start))
		require.NoError(t, err)
		got := pickNames(t, rr, 3*n)
		for i, name := range got {
			assert.Equal(t, fmt.Sprintf("s%d", (start+uint64(i))%n), name, "start %d, pick %d", start, i)
		}
	}
}

func TestRoundRobinRandomStart(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, ones(1000)...)
	firsts := make(map[string]bool)
	for seed := range uint64(20) {
		rr, err := NewRoundRobin(p, seeded(seed))
		require.NoError(t, err)
		firsts[pickNames(t, rr, 1)[0]] = true
	}
	// 20 draws from 1,000 starts: with these seeds, no two alike.
	assert.Len(t, firsts, 20)
}

func TestRoundRobinSkipsUnavailable(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 1, 0, 1, 1)
	servers[1].SetHealthy(false)
	rr, err := NewRoundRobin(p, WithRotationStart(0))
	require.NoError(t, err)
	// Active servers are s0 s1 s3 s4 (s2 has weight 0); s1 is down, so its
	// turn goes to the next position and every lap of three turns holds
	// each available server once.
	got := pickNames(t, rr, 9)
	for lap := range 3 {
		assert.ElementsMatch(t, []string{"s0", "s3", "s4"}, got[3*lap:3*lap+3], "lap %d of %v", lap, got)
	}

	servers[1].SetHealthy(true)
	servers[0].SetHealthy(false)
	servers[4].SetHealthy(false)
	assert.Equal(t, map[string]int{"s1": 50, "s3": 50}, countPicks(t, rr, 100))
}

func TestRoundRobinFallsBackToScan(t *testing.T) {
	t.Parallel()
	// More consecutive down servers than redraws: the scan finds the one
	// that is up.
	p, servers := newTestPool(t, ones(3*redraws)...)
	for _, s := range servers[:len(servers)-1] {
		s.SetHealthy(false)
	}
	for _, alg := range []algorithm{algorithms[0], algorithms[1]} {
		b, err := alg.new(p, WithRotationStart(0))
		require.NoError(t, err)
		assert.Equal(t, map[string]int{servers[len(servers)-1].Name(): 10}, countPicks(t, b, 10), alg.name)
	}
}

func TestRoundRobinSeesPoolChanges(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 1)
	rr, err := NewRoundRobin(p, WithRotationStart(0))
	require.NoError(t, err)
	assert.Equal(t, []string{"s0", "s1"}, pickNames(t, rr, 2))
	extra := newTestServers(t, 1, 1, 1)[2]
	require.NoError(t, p.Add(extra))
	assert.ElementsMatch(t, []string{"s0", "s1", "s2"}, pickNames(t, rr, 3))
	require.NoError(t, p.Remove(servers[0]))
	assert.ElementsMatch(t, []string{"s1", "s2", "s1", "s2"}, pickNames(t, rr, 4))
}

func TestWeightedRoundRobinSmoothOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		weights []int
		want    string // one lap, servers as letters
	}{
		{[]int{5, 1, 1}, "aabacaa"},
		{[]int{10, 2, 2}, "aabacaa"}, // divided by the GCD
		{[]int{1, 1, 1}, "abc"},
		{[]int{2, 1}, "aba"},
		{[]int{3, 2}, "ababa"},
		{[]int{1, 5}, "bbabbb"},
		{[]int{4, 3, 2}, "abcabacba"},
		{[]int{1, 0, 2}, "cac"}, // weight 0 never picked
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			t.Parallel()
			p, _ := newTestPool(t, tt.weights...)
			w, err := NewWeightedRoundRobin(p, WithRotationStart(0))
			require.NoError(t, err)
			var got []byte
			for _, name := range pickNames(t, w, 2*len(tt.want)) {
				var i int
				_, err := fmt.Sscanf(name, "s%d", &i)
				require.NoError(t, err)
				got = append(got, byte('a'+i))
			}
			assert.Equal(t, tt.want+tt.want, string(got))
		})
	}
}

// naiveSmooth is nginx's smooth weighted round robin, step by step.
func naiveSmooth(weights []int) []int32 {
	total := 0
	for _, w := range weights {
		total += w
	}
	cur := make([]int, len(weights))
	var out []int32
	for range total {
		best := 0
		for i, w := range weights {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, int32(best))
	}
	return out
}

func TestSmoothOrderIsNginxOrder(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		weights := make([]int, 1+r.IntN(12))
		for i := range weights {
			weights[i] = 1 + r.IntN(20)
			if r.IntN(3) == 0 { // many equal weights: the grouped path
				weights[i] = 4
			}
		}
		g := 0
		for _, w := range weights {
			g = gcd(g, w)
		}
		reduced := make([]int, len(weights))
		for i, w := range weights {
			reduced[i] = w / g
		}
		require.Equal(t, naiveSmooth(reduced), smoothOrder(weights), "weights %v", weights)
	}
}

func TestSmoothOrderScalesHugeLaps(t *testing.T) {
	t.Parallel()
	weights := []int{MaxWeight, MaxWeight - 1, 333_333, 1}
	order := smoothOrder(weights)
	assert.LessOrEqual(t, len(order), maxLap+len(weights))
	counts := make([]int, len(weights))
	for _, i := range order {
		counts[i]++
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	for i, w := range weights {
		want := float64(w) / float64(total)
		got := float64(counts[i]) / float64(len(order))
		assert.InDelta(t, want, got, 0.0001, "server %d", i)
		assert.Positive(t, counts[i], "every server keeps a turn")
	}
}

func TestWeightedRoundRobinSkipsUnavailable(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 5, 1, 1)
	w, err := NewWeightedRoundRobin(p, WithRotationStart(0))
	require.NoError(t, err)
	servers[0].SetHealthy(false)
	assert.Equal(t, map[string]int{"s1": 50, "s2": 50}, countPicks(t, w, 100))
	servers[0].SetHealthy(true)
	servers[1].SetHealthy(false)
	w, err = NewWeightedRoundRobin(p, WithRotationStart(0))
	require.NoError(t, err)
	// b's turn in a a b a c a a is skipped: the pick takes the next
	// position instead, so a and c keep their 5:1 proportion exactly.
	assert.Equal(t, map[string]int{"s0": 50, "s2": 10}, countPicks(t, w, 60))
}

func TestWeightedRoundRobinSeesPoolChanges(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 2, 1)
	w, err := NewWeightedRoundRobin(p, WithRotationStart(0))
	require.NoError(t, err)
	assert.Equal(t, []string{"s0", "s1", "s0"}, pickNames(t, w, 3))
	extra := newTestServers(t, 1, 1, 3)[2]
	require.NoError(t, p.Add(extra))
	assert.Equal(t, map[string]int{"s0": 20, "s1": 10, "s2": 30}, countPicks(t, w, 60))
	require.NoError(t, p.Remove(servers[0]))
	assert.Equal(t, map[string]int{"s1": 10, "s2": 30}, countPicks(t, w, 40))
}

// FuzzSmoothOrder checks the properties of the weighted order for any
// weights: it is nginx's order, each lap holds each server exactly
// weight/gcd times, and the lags and window counts stay within the bound
// nginx's order guarantees (see checkSmoothBounds): in any k consecutive
// picks (windows wrap across laps) a server of weight w appears
// k·w/lap ± (H_n − 1/n) times.
func FuzzSmoothOrder(f *testing.F) {
	f.Add([]byte{5, 1, 1})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{100, 1})
	f.Add([]byte{3, 3, 3, 7})
	f.Add([]byte{0, 0, 0, 0, 48, 0, 36, 36, 36, 0}) // weights 1 1 1 1 49 1 37 37 37 1
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) == 0 || len(raw) > 12 {
			t.Skip()
		}
		weights := make([]int, len(raw))
		g := 0
		for i, b := range raw {
			weights[i] = int(b)%50 + 1
			g = gcd(g, weights[i])
		}
		order := smoothOrder(weights)
		reduced := reducedWeights(weights, g)
		require.Equal(t, naiveSmooth(reduced), order, "nginx's order for %v", weights)
		counts := make([]int, len(weights))
		for _, i := range order {
			counts[i]++
		}
		require.Equal(t, reduced, counts, "picks per lap for %v", weights)
		if msg := checkSmoothBounds(reduced, order); msg != "" {
			t.Fatalf("weights %v: %s", weights, msg)
		}
	})
}

func reducedWeights(weights []int, g int) []int {
	out := make([]int, len(weights))
	for i, w := range weights {
		out[i] = w / g
	}
	return out
}
