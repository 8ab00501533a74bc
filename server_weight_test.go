package lb

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSetWeightEveryBalancer checks that after SetWeight every balancer
// picks exactly as it does over a pool made with the new weights.
func TestSetWeightEveryBalancer(t *testing.T) {
	t.Parallel()
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			t.Parallel()
			changed, servers := newTestPool(t, 1, 1, 1, 1)
			fresh, _ := newTestPool(t, 5, 1, 0, 2)
			for i, w := range []int{5, 1, 0, 2} {
				require.NoError(t, servers[i].SetWeight(w))
			}
			got, err := alg.new(changed, append(alg.startAtZero(), seeded(7))...)
			require.NoError(t, err)
			want, err := alg.new(fresh, append(alg.startAtZero(), seeded(7))...)
			require.NoError(t, err)
			assert.Equal(t, pickNames(t, want, 800), pickNames(t, got, 800))
		})
	}
}

// TestSetWeightAfterPicks changes a weight under balancers that have
// already built their tables from the old one.
func TestSetWeightAfterPicks(t *testing.T) {
	t.Parallel()
	p, s := newTestPool(t, 1, 1)
	wrr, err := NewWeightedRoundRobin(p, WithRotationStart(0))
	require.NoError(t, err)
	rd, err := NewRandom(p, seeded(1))
	require.NoError(t, err)
	h, err := NewConsistentHash(p, KeyHeader("X-Key"))
	require.NoError(t, err)
	hashed := func() map[string]int {
		counts := map[string]int{}
		for i := range 2000 {
			res, err := h.PickKey(strconv.Itoa(i))
			require.NoError(t, err)
			counts[res.Server.Name()]++
			res.Done(DoneInfo{})
		}
		return counts
	}
	assert.Equal(t, map[string]int{"s0": 2, "s1": 2}, countPicks(t, wrr, 4))
	countPicks(t, rd, 10)
	before := hashed()

	require.NoError(t, s[1].SetWeight(3))
	assert.Equal(t, map[string]int{"s0": 1, "s1": 3}, countPicks(t, wrr, 4), "smooth order rebuilt")
	// A draw that cycles through every unit of the alias table once picks
	// each server exactly weight × servers times.
	var x int
	cycle := func(n int) int { x = (x + 1) % n; return x }
	rd.randN = cycle
	assert.Equal(t, map[string]int{"s0": 2, "s1": 6}, countPicks(t, rd, 8), "alias table rebuilt")
	after := hashed()
	assert.Greater(t, after["s1"], before["s1"]+500, "hash ring rebuilt: %v then %v", before, after)
}

func TestSetWeightLeastLoaded(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"LeastConn", "P2C"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, s := newTestPool(t, 1, 1)
			var b Balancer
			var err error
			if name == "LeastConn" {
				b, err = NewLeastConn(p, seeded(1))
			} else {
				b, err = NewP2C(p, seeded(1))
			}
			require.NoError(t, err)
			// s0 holds one request, s1 two.
			held := []PickResult{s[0].Acquire(), s[1].Acquire(), s[1].Acquire()}
			res, err := b.Pick(nil)
			require.NoError(t, err)
			assert.Equal(t, "s0", res.Server.Name(), "2/1 against 3/1")
			res.Done(DoneInfo{})
			require.NoError(t, s[1].SetWeight(3))
			res, err = b.Pick(nil)
			require.NoError(t, err)
			assert.Equal(t, "s1", res.Server.Name(), "2/1 against 3/3")
			res.Done(DoneInfo{})
			for _, r := range held {
				r.Done(DoneInfo{})
			}
		})
	}
}

func TestSetWeightKeepsState(t *testing.T) {
	t.Parallel()
	p, s := newTestPool(t, 1, 1)
	p2, err := NewPool(s[1])
	require.NoError(t, err)
	res := s[1].Acquire()
	done := s[1].Acquire()
	done.Done(DoneInfo{StatusCode: 500})
	s[1].SetHealthy(false)
	v1, v2 := p.Version(), p2.Version()

	require.NoError(t, s[1].SetWeight(4))
	assert.Equal(t, 4, s[1].Weight())
	st := s[1].Stats()
	assert.Equal(t, 4, st.Weight)
	assert.EqualValues(t, 1, st.InFlight)
	assert.EqualValues(t, 1, st.Requests)
	assert.EqualValues(t, 1, st.Failures)
	assert.False(t, st.Healthy)
	assert.Equal(t, v1+1, p.Version(), "every pool of the server rebuilt")
	assert.Equal(t, v2+1, p2.Version(), "every pool of the server rebuilt")
	assert.Same(t, s[1], p.Server("s1"))

	require.NoError(t, s[1].SetWeight(4))
	assert.Equal(t, v1+1, p.Version(), "no change, no rebuild")

	require.NoError(t, p.Remove(s[1]))
	v1 = p.Version()
	require.NoError(t, s[1].SetWeight(2))
	assert.Equal(t, v1, p.Version(), "a pool the server has left is not rebuilt")
	assert.Equal(t, v2+2, p2.Version())

	require.NoError(t, p.Update(s[0], s[1]))
	require.NoError(t, p2.Update(s[0]))
	v1, v2 = p.Version(), p2.Version()
	require.NoError(t, s[1].SetWeight(3))
	assert.Equal(t, v1+1, p.Version(), "rejoined by Update")
	assert.Equal(t, v2, p2.Version(), "left by Update")
	res.Done(DoneInfo{})
	assert.Zero(t, s[1].InFlight())
}

func TestSetWeightZeroDrains(t *testing.T) {
	t.Parallel()
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			t.Parallel()
			p, s := newTestPool(t, 1, 2, 1)
			b, err := alg.new(p, seeded(3))
			require.NoError(t, err)
			countPicks(t, b, 50)
			require.NoError(t, s[1].SetWeight(0))
			assert.Zero(t, countPicks(t, b, 200)["s1"])
			assert.Equal(t, 3, p.Len(), "still a member")
			assert.False(t, s[1].Available())
			require.NoError(t, s[1].SetWeight(1))
			assert.NotZero(t, countPicks(t, b, 200)["s1"])
		})
	}
}

func TestSetWeightBadValues(t *testing.T) {
	t.Parallel()
	_, s := newTestPool(t, 2)
	for _, w := range []int{-1, MaxWeight + 1, math.MaxInt} {
		err := s[0].SetWeight(w)
		require.ErrorContains(t, err, fmt.Sprintf("weight %d", w))
		require.ErrorContains(t, err, `lb: server "s0"`)
		assert.Equal(t, 2, s[0].Weight())
	}
	require.NoError(t, s[0].SetWeight(MaxWeight))
	require.NoError(t, s[0].SetWeight(0))
}

// TestSetWeightConcurrent changes weights (through 0) while every balancer
// picks and while the server joins and leaves pools: no pick fails while a
// server is available, and the tables of the last snapshot agree with the
// last weights.
func TestSetWeightConcurrent(t *testing.T) {
	t.Parallel()
	p, s := newTestPool(t, 1, 1, 1)
	var bs []Balancer
	for _, alg := range algorithms {
		b, err := alg.new(p)
		require.NoError(t, err)
		bs = append(bs, b)
	}
	other := new(Pool)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := b.Pick(nil)
				if !assert.NoError(t, err) {
					return
				}
				res.Done(DoneInfo{})
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			assert.NoError(t, other.Add(s[1]))
			assert.NoError(t, other.Remove(s[1]))
		}
	})
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		assert.NoError(t, s[1].SetWeight(r.IntN(4)))
		assert.NoError(t, s[2].SetWeight(r.IntN(4)))
	}
	close(stop)
	wg.Wait()
	require.NoError(t, s[1].SetWeight(3))
	require.NoError(t, other.Add(s[2]))
	require.NoError(t, s[2].SetWeight(2))
	st := p.load()
	assert.Equal(t, []int{1, 3, 2}, st.weights)
	assert.Equal(t, []int{2}, other.load().weights)
	for _, sv := range s {
		assert.Zero(t, sv.InFlight())
	}
}

func TestLabels(t *testing.T) {
	t.Parallel()
	in := map[string]string{"zone": "eu-1", "version": "v2"}
	s, err := NewServer("http://10.0.0.1:80", WithLabels(in))
	require.NoError(t, err)
	in["zone"] = "changed"
	assert.Equal(t, map[string]string{"zone": "eu-1", "version": "v2"}, s.Labels())
	s.Labels()["zone"] = "changed"
	assert.Equal(t, "eu-1", s.Labels()["zone"], "Labels returns a copy")
	st := s.Stats()
	assert.Equal(t, map[string]string{"zone": "eu-1", "version": "v2"}, st.Labels)
	js, err := json.Marshal(st)
	require.NoError(t, err)
	assert.Contains(t, string(js), `"labels":{"version":"v2","zone":"eu-1"}`)

	plain, err := NewHandlerServer("h", okHandlerForLabels{})
	require.NoError(t, err)
	assert.Nil(t, plain.Labels())
	js, err = json.Marshal(plain.Stats())
	require.NoError(t, err)
	assert.NotContains(t, string(js), "labels")

	_, err = NewServer("http://10.0.0.1:80", WithLabels(map[string]string{"": "x"}))
	require.ErrorContains(t, err, `empty label key ""`)
	require.ErrorContains(t, err, `lb: server URL "http://10.0.0.1:80"`)

	s, err = NewServer("http://10.0.0.1:80", WithLabels(map[string]string{"": "x"}), WithLabels(map[string]string{"a": ""}))
	require.NoError(t, err, "the last WithLabels counts")
	assert.Equal(t, map[string]string{"a": ""}, s.Labels())
}

type okHandlerForLabels struct{}

func (okHandlerForLabels) ServeHTTP(http.ResponseWriter, *http.Request) {}
