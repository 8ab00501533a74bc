package lb

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%d", i)
	}
	return out
}

// owners maps every key to the name of the server it is picked on.
func owners(t testing.TB, h *ConsistentHash, keys []string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		res, err := h.PickKey(k)
		require.NoError(t, err)
		out[k] = res.Server.Name()
		res.Done(DoneInfo{})
	}
	return out
}

func newHash(t testing.TB, p *Pool, opts ...Option) *ConsistentHash {
	t.Helper()
	h, err := NewConsistentHash(p, KeyHeader("X-User"), opts...)
	require.NoError(t, err)
	return h
}

func TestConsistentHashSameKeySameServer(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, ones(10)...)
	h := newHash(t, p)
	first := owners(t, h, keys(1000))
	assert.Equal(t, first, owners(t, h, keys(1000)))

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-User", "user-7")
	res, err := h.Pick(r)
	require.NoError(t, err)
	assert.Equal(t, first["user-7"], res.Server.Name())
	res.Done(DoneInfo{})
}

func TestConsistentHashBalance(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, ones(10)...)
	counts := map[string]int{}
	for _, s := range owners(t, newHash(t, p), keys(100_000)) {
		counts[s]++
	}
	require.Len(t, counts, 10)
	peak := 0
	for _, n := range counts {
		peak = max(peak, n)
	}
	ratio := float64(peak) / 10_000
	t.Logf("max/mean over 100,000 keys and 10 servers: %.3f", ratio)
	assert.LessOrEqual(t, ratio, 1.1)
}

func TestConsistentHashWeights(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1, 2, 3, 4)
	counts := map[string]int{}
	for _, s := range owners(t, newHash(t, p), keys(100_000)) {
		counts[s]++
	}
	for i, w := range []int{1, 2, 3, 4} {
		assert.InDelta(t, float64(w)/10, float64(counts[fmt.Sprintf("s%d", i)])/100_000, 0.02, "s%d", i)
	}
}

func TestConsistentHashMovement(t *testing.T) {
	t.Parallel()
	const n = 10
	p, servers := newTestPool(t, ones(n)...)
	h := newHash(t, p)
	ks := keys(100_000)
	before := owners(t, h, ks)

	// Remove one: only its keys move.
	require.NoError(t, p.Remove(servers[3]))
	after := owners(t, h, ks)
	moved := 0
	for _, k := range ks {
		if before[k] != after[k] {
			moved++
			assert.Equal(t, "s3", before[k], "a key of a server that stayed moved")
		}
	}
	frac := float64(moved) / float64(len(ks))
	t.Logf("removing 1 of %d servers moved %.4f of the keys (1/n = %.4f)", n, frac, 1.0/n)
	assert.LessOrEqual(t, frac, 1.5/n)

	// Add one: keys move only to it.
	extra := newTestServers(t, ones(n+1)...)[n]
	require.NoError(t, p.Add(extra))
	added := owners(t, h, ks)
	moved = 0
	for _, k := range ks {
		if after[k] != added[k] {
			moved++
			assert.Equal(t, extra.Name(), added[k], "a key moved between servers that stayed")
		}
	}
	frac = float64(moved) / float64(len(ks))
	t.Logf("adding 1 to %d servers moved %.4f of the keys (1/n = %.4f)", n-1, frac, 1.0/n)
	assert.LessOrEqual(t, frac, 1.5/n)
}

func TestConsistentHashIndependentInstancesAgree(t *testing.T) {
	t.Parallel()
	// Two pools of distinct Server values with the same names and weights,
	// built in different orders: the same mapping.
	a := newTestServers(t, 1, 2, 3, 1, 1)
	b := newTestServers(t, 1, 2, 3, 1, 1)
	pa, err := NewPool(a...)
	require.NoError(t, err)
	pb, err := NewPool(b[4], b[2], b[0], b[3], b[1])
	require.NoError(t, err)
	ks := keys(20_000)
	assert.Equal(t, owners(t, newHash(t, pa), ks), owners(t, newHash(t, pb), ks))
}

func TestConsistentHashUnhealthyOwner(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, ones(5)...)
	h := newHash(t, p)
	ks := keys(10_000)
	before := owners(t, h, ks)
	servers[2].SetHealthy(false)
	during := owners(t, h, ks)
	spread := map[string]int{}
	for _, k := range ks {
		if before[k] == "s2" {
			assert.NotEqual(t, "s2", during[k])
			spread[during[k]]++
		} else {
			assert.Equal(t, before[k], during[k], "keys of healthy servers stay")
		}
	}
	assert.Len(t, spread, 4, "a down server's keys spread over all the others")
	servers[2].SetHealthy(true)
	assert.Equal(t, before, owners(t, h, ks), "and come back after recovery")

	for _, s := range servers {
		s.SetHealthy(false)
	}
	_, err := h.PickKey("user-1")
	assert.ErrorIs(t, err, ErrNoServer)
}

func TestConsistentHashMostlyDown(t *testing.T) {
	t.Parallel()
	// One of 300 servers up: the walk along the ring gives up and the
	// rendezvous fallback finds it, for every key.
	p, servers := newTestPool(t, ones(300)...)
	for _, s := range servers[:299] {
		s.SetHealthy(false)
	}
	h := newHash(t, p)
	for _, owner := range owners(t, h, keys(500)) {
		assert.Equal(t, "s299", owner)
	}
}

func TestConsistentHashBoundedLoad(t *testing.T) {
	t.Parallel()
	const (
		n       = 8
		c       = 1.25
		workers = 8
		each    = 200
	)
	p, servers := newTestPool(t, ones(n)...)
	h := newHash(t, p, WithBoundedLoad(c))
	var (
		mu   sync.Mutex
		held []PickResult
		wg   sync.WaitGroup
	)
	// A hot key: without the bound every pick would land on one server.
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				res, err := h.PickKey(fmt.Sprintf("hot-%d", (w*each+i)%3))
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				held = append(held, res)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	total := workers * each
	limit := int64(math.Ceil(c * float64(total) / n))
	for _, s := range servers {
		assert.LessOrEqual(t, s.InFlight(), limit, s.Name())
		assert.Positive(t, s.InFlight(), "%s: the hot keys spill over to every server", s.Name())
	}
	for _, res := range held {
		res.Done(DoneInfo{})
	}
	for _, s := range servers {
		assert.Zero(t, s.InFlight())
	}

	// Unloaded, bounded hashing is pure hashing.
	pure := newHash(t, p)
	assert.Equal(t, owners(t, pure, keys(2000)), owners(t, h, keys(2000)))
}

func TestConsistentHashFallback(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, ones(3)...)
	h := newHash(t, p, WithRotationStart(0))
	var got []string
	for range 4 {
		res, err := h.Pick(httptest.NewRequest("GET", "/", nil)) // no X-User
		require.NoError(t, err)
		got = append(got, res.Server.Name())
		res.Done(DoneInfo{})
	}
	assert.Equal(t, []string{"s0", "s1", "s2", "s0"}, got, "round robin by default")

	one := newTestServers(t, 1)[0]
	h, err := NewConsistentHash(p, KeyHeader("X-User"), WithFallback(BalancerFunc(func(*http.Request) (PickResult, error) {
		return one.Acquire(), nil
	})))
	require.NoError(t, err)
	res, err := h.Pick(nil)
	require.NoError(t, err)
	assert.Same(t, one, res.Server)
	res.Done(DoneInfo{})

	_, err = NewConsistentHash(p, nil)
	assert.EqualError(t, err, "lb: NewConsistentHash: nil KeyFunc")
	_, err = NewConsistentHash(p, KeyPath(), WithBoundedLoad(0.5))
	assert.EqualError(t, err, "lb: NewConsistentHash: WithBoundedLoad: factor 0.5 is not a finite number of at least 1")
	_, err = NewConsistentHash(p, KeyPath(), WithFallback(nil))
	assert.EqualError(t, err, "lb: NewConsistentHash: WithFallback: nil balancer")
}

func TestKeyFuncs(t *testing.T) {
	// Not parallel: AllocsPerRun.
	r := httptest.NewRequest("GET", "/users/42?x=1", nil)
	r.RemoteAddr = "192.0.2.10:5555"
	r.Header.Set("X-Tenant", "acme")
	r.Header.Add("Cookie", `theme=dark; session="abc123"`)
	r.Header.Add("X-Forwarded-For", "203.0.113.5, 10.0.0.2")

	assert.Equal(t, "192.0.2.10", KeyClientIP()(r), "X-Forwarded-For ignored without trust")
	trusted := KeyClientIP(netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.0.0.0/8"))
	assert.Equal(t, "203.0.113.5", trusted(r), "the rightmost untrusted hop")
	r6 := httptest.NewRequest("GET", "/", nil)
	r6.RemoteAddr = "[2001:db8::1]:443"
	assert.Equal(t, "2001:db8::1", KeyClientIP()(r6))
	assert.Equal(t, "acme", KeyHeader("x-tenant")(r))
	assert.Equal(t, "", KeyHeader("X-Missing")(r))
	assert.Equal(t, "abc123", KeyCookie("session")(r))
	assert.Equal(t, "dark", KeyCookie("theme")(r))
	assert.Equal(t, "", KeyCookie("none")(r))
	assert.Equal(t, "/users/42", KeyPath()(r))
	for _, f := range []KeyFunc{KeyClientIP(), KeyHeader("a"), KeyCookie("a"), KeyPath()} {
		assert.Equal(t, "", f(nil))
	}
	cookie, header := KeyCookie("session"), KeyHeader("X-Tenant")
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		_ = trusted(r)
		_ = cookie(r)
		_ = header(r)
	}))
}

func TestConsistentHashPickAllocatesNothing(t *testing.T) {
	p, servers := newTestPool(t, ones(16)...)
	servers[5].SetHealthy(false)
	for _, h := range []*ConsistentHash{newHash(t, p), newHash(t, p, WithBoundedLoad(1.25))} {
		res, _ := h.PickKey("warm")
		res.Done(DoneInfo{})
		i, ks := 0, keys(64)
		assert.Zero(t, testing.AllocsPerRun(1000, func() {
			i++
			res, err := h.PickKey(ks[i%64])
			if err != nil {
				panic(err)
			}
			res.Done(DoneInfo{})
		}))
	}
}
