package lb_test

import (
	"math/rand/v2"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/balancekit/lb"
)

// TestCancelThroughBalancers checks, for every balancer, that a pick
// given back with Cancel through the balancer's own Done leaves no request
// in flight, records no request, failure or latency, and teaches a
// latency-aware balancer nothing.
func TestCancelThroughBalancers(t *testing.T) {
	mk := map[string]func(p *lb.Pool, r lb.Option) (lb.Balancer, error){
		"RoundRobin":         func(p *lb.Pool, r lb.Option) (lb.Balancer, error) { return lb.NewRoundRobin(p, r) },
		"WeightedRoundRobin": func(p *lb.Pool, r lb.Option) (lb.Balancer, error) { return lb.NewWeightedRoundRobin(p, r) },
		"LeastConn":          func(p *lb.Pool, r lb.Option) (lb.Balancer, error) { return lb.NewLeastConn(p, r) },
		"P2C":                func(p *lb.Pool, r lb.Option) (lb.Balancer, error) { return lb.NewP2C(p, r) },
		"Random":             func(p *lb.Pool, r lb.Option) (lb.Balancer, error) { return lb.NewRandom(p, r) },
		"PeakEWMA":           func(p *lb.Pool, r lb.Option) (lb.Balancer, error) { return lb.NewPeakEWMA(p, r) },
		"Adaptive":           func(p *lb.Pool, r lb.Option) (lb.Balancer, error) { return lb.NewAdaptive(p, r) },
		"ConsistentHash/bounded": func(p *lb.Pool, r lb.Option) (lb.Balancer, error) {
			return lb.NewConsistentHash(p, lb.KeyHeader("X-Key"), r, lb.WithBoundedLoad(1.25))
		},
	}
	for name, newB := range mk {
		t.Run(name, func(t *testing.T) {
			var servers []*lb.Server
			for _, u := range []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"} {
				s, err := lb.NewServer(u)
				require.NoError(t, err)
				servers = append(servers, s)
			}
			pool, err := lb.NewPool(servers...)
			require.NoError(t, err)
			b, err := newB(pool, lb.WithRand(rand.New(rand.NewPCG(1, 2)).IntN))
			require.NoError(t, err)
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("X-Key", "k")
			for range 100 {
				res, err := b.Pick(req)
				require.NoError(t, err)
				res.Cancel()
			}
			for _, s := range servers {
				st := s.Stats()
				assert.Zero(t, st.InFlight, s.Name())
				assert.Zero(t, st.Requests, s.Name())
				assert.Zero(t, st.Failures, s.Name())
				assert.Zero(t, st.Errors, s.Name())
				assert.Zero(t, s.Latency().Count, s.Name())
			}
			if e, ok := b.(lb.Estimator); ok {
				for _, est := range e.Estimates() {
					assert.False(t, est.Observed, est.Server)
				}
			}
			// A bounded ConsistentHash still spreads: its counts came back.
			if _, ok := b.(*lb.ConsistentHash); ok {
				var held []lb.PickResult
				seen := map[*lb.Server]bool{}
				for range 3 {
					res, err := b.Pick(req)
					require.NoError(t, err)
					seen[res.Server] = true
					held = append(held, res)
				}
				assert.Len(t, seen, 2, "with 3 in flight over 3 servers and a factor of 1.25, the key's server takes at most 2")
				for _, r := range held {
					r.Cancel()
				}
			}
		})
	}
}
