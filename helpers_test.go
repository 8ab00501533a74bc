package lb

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// newTestServers returns one URL server per weight, named s0, s1, ...
func newTestServers(t testing.TB, weights ...int) []*Server {
	t.Helper()
	out := make([]*Server, len(weights))
	for i, w := range weights {
		s, err := NewServer(fmt.Sprintf("http://10.0.0.%d:80", i+1), WithName(fmt.Sprintf("s%d", i)), WithWeight(w))
		require.NoError(t, err)
		out[i] = s
	}
	return out
}

// newTestPool returns a pool of newTestServers(weights...).
func newTestPool(t testing.TB, weights ...int) (*Pool, []*Server) {
	t.Helper()
	servers := newTestServers(t, weights...)
	p, err := NewPool(servers...)
	require.NoError(t, err)
	return p, servers
}

// ones returns n weights of 1.
func ones(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// seeded returns a WithRand option with a fixed PCG seed, for tests that run
// on one goroutine.
func seeded(seed uint64) Option {
	return WithRand(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).IntN)
}

// algorithm names a balancer constructor, for tests that run over all of
// them.
type algorithm struct {
	name string
	new  func(*Pool, ...Option) (Balancer, error)
	// ordered balancers take WithRotationStart.
	ordered bool
}

// startAtZero returns WithRotationStart(0) for the balancers that take it.
func (a algorithm) startAtZero() []Option {
	if a.ordered {
		return []Option{WithRotationStart(0)}
	}
	return nil
}

func adapt[B Balancer](f func(*Pool, ...Option) (B, error)) func(*Pool, ...Option) (Balancer, error) {
	return func(p *Pool, opts ...Option) (Balancer, error) {
		b, err := f(p, opts...)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
}

var algorithms = []algorithm{
	{"RoundRobin", adapt(NewRoundRobin), true},
	{"WeightedRoundRobin", adapt(NewWeightedRoundRobin), true},
	{"Random", adapt(NewRandom), false},
	{"LeastConn", adapt(NewLeastConn), false},
	{"P2C", adapt(NewP2C), false},
	{"PeakEWMA", adapt(NewPeakEWMA), false},
	{"Adaptive", adapt(NewAdaptive), false},
	{"ConsistentHash", func(p *Pool, opts ...Option) (Balancer, error) {
		h, err := NewConsistentHash(p, KeyHeader("X-Key"), opts...)
		if err != nil {
			return nil, err
		}
		return &keyedPicks{h: h}, nil
	}, true},
}

// keyedPicks picks with a ConsistentHash, each time with the next of 4,096
// keys, so that the generic tests exercise keyed picks.
type keyedPicks struct {
	h *ConsistentHash
	i atomic.Uint64
}

var pickKeys = func() []string {
	out := make([]string, 4096)
	for i := range out {
		out[i] = fmt.Sprintf("key-%d", i)
	}
	return out
}()

func (k *keyedPicks) Pick(*http.Request) (PickResult, error) {
	return k.h.PickKey(pickKeys[k.i.Add(1)%uint64(len(pickKeys))])
}

// pickNames makes n picks, calling Done after each, and returns the names of
// the servers picked.
func pickNames(t testing.TB, b Balancer, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		res, err := b.Pick(nil)
		require.NoError(t, err)
		out[i] = res.Server.Name()
		res.Done(DoneInfo{})
	}
	return out
}

// countPicks makes n picks, calling Done after each, and counts them by
// server name.
func countPicks(t testing.TB, b Balancer, n int) map[string]int {
	t.Helper()
	counts := make(map[string]int)
	for _, name := range pickNames(t, b, n) {
		counts[name]++
	}
	return counts
}

// hold makes n picks and does not end them, returning their Done funcs.
func hold(t testing.TB, b Balancer, n int) (names []string, done func()) {
	t.Helper()
	var dones []func(DoneInfo)
	for range n {
		res, err := b.Pick((*http.Request)(nil))
		require.NoError(t, err)
		names = append(names, res.Server.Name())
		dones = append(dones, res.Done)
	}
	return names, func() {
		for _, d := range dones {
			d(DoneInfo{})
		}
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
