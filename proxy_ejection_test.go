package lb

import (
	"fmt"
	"math"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// switchable returns handler servers that answer 503 while *failing is true,
// and 200 otherwise.
func switchable(t *testing.T, failing *atomic.Bool, names ...string) []*Server {
	t.Helper()
	out := make([]*Server, len(names))
	for i, name := range names {
		s, err := NewHandlerServer(name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failing.Load() {
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, name)
		}))
		require.NoError(t, err)
		out[i] = s
	}
	return out
}

func ejected(servers []*Server) (n int) {
	for _, s := range servers {
		if s.Ejected() {
			n++
		}
	}
	return n
}

// With the default settings a one-server pool never ejects its server: once
// the backend recovers, the next request reaches it.
func TestProxyNeverEjectsTheOnlyServer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var failing atomic.Bool
		failing.Store(true)
		servers := switchable(t, &failing, "only")
		p := newTestProxy(t, servers)
		for range 2 * DefaultFailures {
			assert.Equal(t, http.StatusServiceUnavailable, serve(p, "GET", "/", "").Code)
		}
		assert.False(t, servers[0].Ejected())
		failing.Store(false)
		assert.Equal(t, http.StatusOK, serve(p, "GET", "/", "").Code)
	})
}

// At most the given share of a pool's servers is ejected at once (rounded
// down); when one comes back, another failing server may take its place.
func TestProxyMaxEjectionPercent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		servers, percent, max int
	}{
		{1, DefaultMaxEjectionPercent, 0},
		{2, DefaultMaxEjectionPercent, 1},
		{3, DefaultMaxEjectionPercent, 1},
		{4, DefaultMaxEjectionPercent, 2},
		{4, 0, 0},
		{4, 25, 1},
		{4, 100, 4},
		{1, 100, 1},
	} {
		t.Run(fmt.Sprintf("%d servers %d%%", tc.servers, tc.percent), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var failing atomic.Bool
				failing.Store(true)
				names := make([]string, tc.servers)
				for i := range names {
					names[i] = fmt.Sprintf("s%d", i)
				}
				servers := switchable(t, &failing, names...)
				p := newTestProxy(t, servers, WithPassiveHealth(2, 10*time.Second), WithMaxEjectionPercent(tc.percent))
				for range 4 * tc.servers {
					serve(p, "GET", "/", "")
				}
				require.Equal(t, tc.max, ejected(servers))
				if tc.max == 0 || tc.max == tc.servers {
					return
				}
				first := make(map[string]bool)
				for _, s := range servers {
					first[s.Name()] = s.Ejected()
				}
				// The cool-down ends; the servers that were kept in
				// service have failed often enough to go in their turn.
				time.Sleep(10 * time.Second)
				synctest.Wait()
				require.Zero(t, ejected(servers))
				for range 4 * tc.servers {
					serve(p, "GET", "/", "")
				}
				assert.Equal(t, tc.max, ejected(servers))
				for _, s := range servers {
					if s.Ejected() {
						assert.False(t, first[s.Name()], "%s was out already: another's turn", s.Name())
					}
				}
			})
		})
	}
}

// Ejection is shared by every proxy over a server, and the cap counts the
// pool's ejected servers whichever proxy ejected them.
func TestProxyMaxEjectionAcrossProxies(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var failing atomic.Bool
		failing.Store(true)
		servers := switchable(t, &failing, "a", "b")
		pool, err := NewPool(servers...)
		require.NoError(t, err)
		only := func(name string) Balancer {
			rr, err := NewRoundRobin(pool)
			require.NoError(t, err)
			return poolBalancerFunc{pool, func(*http.Request) (PickResult, error) {
				for {
					res, err := rr.Pick(nil)
					if err != nil || res.Server.Name() == name {
						return res, err
					}
					res.Cancel()
				}
			}}
		}
		pa, err := NewProxy(only("a"), quiet, WithPassiveHealth(1, time.Second))
		require.NoError(t, err)
		pb, err := NewProxy(only("b"), quiet, WithPassiveHealth(1, time.Second))
		require.NoError(t, err)
		serve(pa, "GET", "/", "")
		require.True(t, servers[0].Ejected())
		for range 3 {
			serve(pb, "GET", "/", "")
		}
		assert.False(t, servers[1].Ejected(), "one of two is the most that may be out")
	})
}

// poolBalancerFunc is a PoolBalancer made of a function.
type poolBalancerFunc struct {
	pool *Pool
	f    func(*http.Request) (PickResult, error)
}

func (b poolBalancerFunc) Pick(r *http.Request) (PickResult, error) { return b.f(r) }
func (b poolBalancerFunc) Pool() *Pool                              { return b.pool }

// A balancer that names no pool: the proxy cannot tell how many servers are
// left, so it ejects only when told that every server may go.
func TestProxyEjectionWithoutPool(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var failing atomic.Bool
		failing.Store(true)
		servers := switchable(t, &failing, "a")
		b := BalancerFunc(func(*http.Request) (PickResult, error) {
			if !servers[0].Available() {
				return PickResult{}, ErrNoServer
			}
			return servers[0].Acquire(), nil
		})
		p, err := NewProxy(b, quiet, WithPassiveHealth(1, time.Second))
		require.NoError(t, err)
		for range 3 {
			serve(p, "GET", "/", "")
		}
		assert.False(t, servers[0].Ejected())

		p, err = NewProxy(b, quiet, WithPassiveHealth(1, time.Second), WithMaxEjectionPercent(100))
		require.NoError(t, err)
		serve(p, "GET", "/", "")
		assert.True(t, servers[0].Ejected())
		time.Sleep(time.Second)
		synctest.Wait()
		assert.False(t, servers[0].Ejected())
	})
}

func TestWithMaxEjectionPercentRejects(t *testing.T) {
	t.Parallel()
	b := BalancerFunc(func(*http.Request) (PickResult, error) { return PickResult{}, ErrNoServer })
	for _, v := range []int{-1, 101, math.MaxInt} {
		_, err := NewProxy(b, WithMaxEjectionPercent(v))
		require.Error(t, err)
		assert.Equal(t, fmt.Sprintf("lb: NewProxy: WithMaxEjectionPercent: %d is not between 0 and 100", v), err.Error())
	}
}
