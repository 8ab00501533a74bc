package lb

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Independent instances of a fleet (separate processes, each with its own
// Server values) agree with no shared state when they are given the same
// servers, in whatever order.

const fleetSize = 8

// fleetPools returns fleetSize pools, each of its own servers named after
// urls and added in its own order.
func fleetPools(t *testing.T, urls []string) []*Pool {
	t.Helper()
	rnd := rand.New(rand.NewPCG(8, 8))
	pools := make([]*Pool, fleetSize)
	for k := range pools {
		order := rnd.Perm(len(urls))
		servers := make([]*Server, len(urls))
		for i, j := range order {
			s, err := NewServer(urls[j])
			require.NoError(t, err)
			servers[i] = s
		}
		pool, err := NewPool(servers...)
		require.NoError(t, err)
		pools[k] = pool
	}
	return pools
}

// hashOwners returns, for each key, the name of the server h picks.
func hashOwners(t *testing.T, h *ConsistentHash, keys []string) []string {
	t.Helper()
	out := make([]string, len(keys))
	for i, key := range keys {
		res, err := h.PickKey(key)
		require.NoError(t, err)
		out[i] = res.Server.Name()
		res.Done(DoneInfo{})
	}
	return out
}

func TestFleetAgreesOnHashKeys(t *testing.T) {
	t.Parallel()
	const servers = 10
	urls := make([]string, servers)
	for i := range urls {
		urls[i] = fmt.Sprintf("http://10.0.1.%d:8080", i+1)
	}
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
	}
	pools := fleetPools(t, urls)
	hashes := make([]*ConsistentHash, len(pools))
	owners := make([][]string, len(pools))
	for k, pool := range pools {
		h, err := NewConsistentHash(pool, KeyHeader("X-Key"))
		require.NoError(t, err)
		hashes[k] = h
		owners[k] = hashOwners(t, h, keys)
	}
	for k := 1; k < len(pools); k++ {
		require.Equal(t, owners[0], owners[k], "instance %d disagrees with instance 0", k)
	}

	// Removing a server moves its keys: the busiest owns at most 1.1/N.
	share := map[string]int{}
	for _, o := range owners[0] {
		share[o]++
	}
	for name, n := range share {
		assert.LessOrEqual(t, float64(n)/float64(len(keys)), 1.1/servers, "%s owns %d keys", name, n)
	}

	// Each instance drops the same server, whatever its place in its
	// pool: only that server's keys move, about 1/N of them.
	gone := urls[3]
	for k, pool := range pools {
		require.NoError(t, pool.Remove(pool.Server(gone)))
		after := hashOwners(t, hashes[k], keys)
		moved := 0
		for i := range keys {
			if after[i] != owners[k][i] {
				moved++
				require.Equal(t, gone, owners[k][i], "key %q moved from a server that stayed", keys[i])
			}
		}
		assert.LessOrEqual(t, float64(moved)/float64(len(keys)), 1.1/servers, "instance %d: %d keys moved", k, moved)
		assert.Positive(t, moved)
		if k == 0 {
			t.Logf("%d servers, one removed: %.2f%% of keys moved (1/N = %.2f%%)", servers, 100*float64(moved)/float64(len(keys)), 100.0/servers)
		}
		owners[k] = after
	}
	for k := 1; k < len(pools); k++ {
		require.Equal(t, owners[0], owners[k], "after the removal, instance %d disagrees with instance 0", k)
	}
}

func TestFleetHonoursStickyCookies(t *testing.T) {
	t.Parallel()
	const servers = 4
	urls := make([]string, servers)
	for i := range urls {
		id := fmt.Sprintf("backend-%d", i)
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, id)
		}))
		t.Cleanup(backend.Close)
		urls[i] = backend.URL
	}
	secret := []byte("one secret for the whole fleet")
	var fleet []*httptest.Server
	for k, pool := range fleetPools(t, urls) {
		rr, err := NewRoundRobin(pool, WithRotationStart(uint64(k%servers)))
		require.NoError(t, err)
		p, err := NewProxy(rr, quiet, WithStickyCookie("srv", secret, nil))
		require.NoError(t, err)
		front := httptest.NewServer(p)
		t.Cleanup(front.Close)
		t.Cleanup(p.CloseIdleConnections)
		fleet = append(fleet, front)
	}
	get := func(front *httptest.Server, cookie string) (body, set string) {
		req, err := http.NewRequest("GET", front.URL, nil)
		require.NoError(t, err)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "srv", Value: cookie})
		}
		resp, err := front.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		for _, c := range resp.Cookies() {
			if c.Name == "srv" {
				set = c.Value
			}
		}
		return string(b), set
	}
	// Every instance issues cookies; every other honours them.
	pinned := map[string]bool{}
	for k, issuer := range fleet {
		for range servers {
			backend, cookie := get(issuer, "")
			require.NotEmpty(t, cookie, "instance %d set no cookie", k)
			pinned[backend] = true
			for j, other := range fleet {
				for range 3 {
					body, set := get(other, cookie)
					assert.Equal(t, backend, body, "cookie from instance %d sent to instance %d", k, j)
					assert.Empty(t, set, "instance %d re-issued a valid cookie", j)
				}
			}
		}
	}
	assert.Len(t, pinned, servers, "cookies for every backend were tried")
}
