package lb

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConstructorsRejectBadInput(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1)
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			t.Parallel()
			_, err := alg.new(nil)
			assert.EqualError(t, err, "lb: New"+alg.name+": nil pool")
			_, err = alg.new(p, WithRand(nil))
			assert.EqualError(t, err, "lb: New"+alg.name+": WithRand: nil function")
			_, err = alg.new(p, WithRand(rand.IntN), nil)
			assert.EqualError(t, err, "lb: New"+alg.name+": option 1 is nil")
			// Options that do not apply are errors, not silently ignored.
			other, err := NewRandom(p)
			require.NoError(t, err)
			hashing := alg.name == "ConsistentHash"
			for _, tt := range []struct {
				opt     Option
				name    string
				applies bool
			}{
				{WithRotationStart(1), "WithRotationStart", alg.ordered},
				{WithBoundedLoad(1.25), "WithBoundedLoad", hashing},
				{WithFallback(other), "WithFallback", hashing},
			} {
				_, err := alg.new(p, WithRand(rand.IntN), tt.opt)
				if tt.applies {
					assert.NoError(t, err, tt.name)
				} else {
					assert.EqualError(t, err, "lb: New"+alg.name+": option 1 ("+tt.name+") does not apply")
				}
			}
		})
	}
}

func TestNoServer(t *testing.T) {
	t.Parallel()
	pools := []struct {
		name    string
		weights []int
		down    []int
	}{
		{name: "empty pool"},
		{name: "all unhealthy", weights: []int{1, 2, 3}, down: []int{0, 1, 2}},
		{name: "all weight 0", weights: []int{0, 0}},
		{name: "up ones weight 0", weights: []int{0, 1, 0, 1}, down: []int{1, 3}},
		{name: "many unhealthy", weights: ones(100), down: seq(100)},
	}
	for _, alg := range algorithms {
		for _, tt := range pools {
			t.Run(alg.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				p, servers := newTestPool(t, tt.weights...)
				for _, i := range tt.down {
					servers[i].SetHealthy(false)
				}
				b, err := alg.new(p, seeded(1))
				require.NoError(t, err)
				res, err := b.Pick(nil)
				assert.ErrorIs(t, err, ErrNoServer)
				assert.Nil(t, res.Server)
				for _, s := range servers {
					assert.Zero(t, s.InFlight())
				}
			})
		}
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestUnavailableNeverPicked(t *testing.T) {
	t.Parallel()
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			t.Parallel()
			p, servers := newTestPool(t, 1, 2, 0, 3, 1, 5, 1, 1)
			b, err := alg.new(p, seeded(2))
			require.NoError(t, err)
			r := rand.New(rand.NewPCG(3, 4))
			var held []PickResult
			for step := range 5000 {
				if step%10 == 0 {
					servers[r.IntN(len(servers))].SetHealthy(r.IntN(2) == 0)
				}
				res, err := b.Pick(nil)
				if err != nil {
					require.ErrorIs(t, err, ErrNoServer)
					for _, s := range servers {
						require.False(t, s.available() && s.Weight() > 0, "ErrNoServer while %s is available", s.Name())
					}
					continue
				}
				require.True(t, res.Server.Healthy(), "step %d picked unhealthy %s", step, res.Server.Name())
				require.NotZero(t, res.Server.Weight(), "step %d picked weight-0 %s", step, res.Server.Name())
				if r.IntN(3) == 0 { // keep some in flight, for the load-aware ones
					held = append(held, res)
				} else {
					res.Done(DoneInfo{})
				}
				if len(held) > 20 {
					held[0].Done(DoneInfo{})
					held = held[1:]
				}
			}
			for _, res := range held {
				res.Done(DoneInfo{})
			}
			for _, s := range servers {
				assert.Zero(t, s.InFlight(), s.Name())
			}
		})
	}
}

func TestPickAllocatesNothing(t *testing.T) {
	// Not parallel: AllocsPerRun counts the allocations of the whole
	// process.
	for _, alg := range algorithms {
		for _, weights := range [][]int{ones(16), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}} {
			p, servers := newTestPool(t, weights...)
			servers[3].SetHealthy(false) // some picks take the slow paths
			b, err := alg.new(p)
			require.NoError(t, err)
			pickDone := func() {
				res, err := b.Pick(nil)
				if err != nil {
					panic(err)
				}
				res.Done(DoneInfo{StatusCode: 200})
			}
			pickDone() // builds the weighted order, once per snapshot
			assert.Zero(t, testing.AllocsPerRun(1000, pickDone), "%s %v", alg.name, weights)
		}
	}
}

func TestBalancerFunc(t *testing.T) {
	t.Parallel()
	servers := newTestServers(t, 1, 1)
	var b Balancer = BalancerFunc(func(*http.Request) (PickResult, error) {
		// Always the last healthy server.
		for i := len(servers) - 1; i >= 0; i-- {
			if servers[i].Healthy() {
				return servers[i].Acquire(), nil
			}
		}
		return PickResult{}, ErrNoServer
	})
	assert.Equal(t, []string{"s1", "s1"}, pickNames(t, b, 2))
	servers[1].SetHealthy(false)
	assert.Equal(t, []string{"s0"}, pickNames(t, b, 1))
}

// TestConcurrentPicksWithChurn runs 16 goroutines of 10,000 Pick+Done each
// while others add, remove and flip the health of servers. Afterwards every
// server's in-flight count is 0, and no Pick that started after a Remove
// returned picked the removed server.
func TestConcurrentPicksWithChurn(t *testing.T) {
	t.Parallel()
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			t.Parallel()
			const (
				pickers = 16
				picks   = 10_000
			)
			p, initial := newTestPool(t, 1, 2, 3, 4, 5, 6)
			b, err := alg.new(p)
			require.NoError(t, err)

			var (
				all       sync.Map // *Server → true, every server ever added
				removedAt sync.Map // *Server → epoch at which its Remove had returned
				epoch     atomic.Uint64
				stop      atomic.Bool
				changes   atomic.Int64 // membership changes made so far
				churn     sync.WaitGroup
				workers   sync.WaitGroup
			)
			for _, s := range initial {
				all.Store(s, true)
			}
			violations := make(chan string, pickers)

			churn.Go(func() { // membership
				r := rand.New(rand.NewPCG(1, 1))
				for i := 0; !stop.Load(); i++ {
					servers := p.Servers()
					if len(servers) > 3 {
						victim := servers[r.IntN(len(servers))]
						if err := p.Remove(victim); err != nil {
							violations <- err.Error()
							return
						}
						removedAt.Store(victim, epoch.Add(1))
					}
					fresh, err := NewServer("http://10.1.0.1:80", WithName("n"+strconv.Itoa(i)), WithWeight(1+r.IntN(5)))
					if err != nil {
						violations <- err.Error()
						return
					}
					all.Store(fresh, true)
					if err := p.Add(fresh); err != nil {
						violations <- err.Error()
						return
					}
					changes.Add(1)
				}
			})
			churn.Go(func() { // health
				r := rand.New(rand.NewPCG(2, 2))
				for !stop.Load() {
					servers := p.Servers()
					servers[r.IntN(len(servers))].SetHealthy(r.IntN(4) != 0)
				}
			})

			// Each picker makes at least picks picks, and goes on until the
			// pool has changed at least 100 times while it was picking.
			for range pickers {
				workers.Go(func() {
					until := changes.Load() + 100
					for i := 0; i < picks || changes.Load() < until; i++ {
						before := epoch.Load()
						res, err := b.Pick(nil)
						if err != nil {
							if !errors.Is(err, ErrNoServer) {
								violations <- err.Error()
								return
							}
							continue
						}
						if at, ok := removedAt.Load(res.Server); ok && at.(uint64) <= before {
							violations <- "picked " + res.Server.Name() + " after its removal"
						}
						res.Done(DoneInfo{})
					}
				})
			}
			workers.Wait()
			stop.Store(true)
			churn.Wait()
			close(violations)
			for v := range violations {
				t.Error(v)
			}
			n := 0
			all.Range(func(k, _ any) bool {
				n++
				assert.Zero(t, k.(*Server).InFlight(), k.(*Server).Name())
				return true
			})
			assert.Greater(t, n, len(initial)+100, "the pool changed during the run")
		})
	}
}
