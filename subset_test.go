package lb

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fleetServers returns n servers with distinct names and addresses.
func fleetServers(t testing.TB, n int) []*Server {
	t.Helper()
	out := make([]*Server, n)
	for i := range out {
		s, err := NewServer(fmt.Sprintf("http://10.%d.%d.%d:80", i/62500, i/250%250, i%250+1))
		require.NoError(t, err)
		out[i] = s
	}
	return out
}

// subsetPlan returns, for every instance of a fleet, its subset of servers.
func subsetPlan(t testing.TB, servers []*Server, instances, size int) [][]*Server {
	t.Helper()
	plan := make([][]*Server, instances)
	for i := range plan {
		sub, err := SubsetOf(servers, i, instances, size)
		require.NoError(t, err)
		plan[i] = sub
	}
	return plan
}

// connections counts, per server, the instances whose subset holds it.
func connections(plan [][]*Server) map[*Server]int {
	n := map[*Server]int{}
	for _, sub := range plan {
		for _, s := range sub {
			n[s]++
		}
	}
	return n
}

// TestSubsetOfBalance checks that 100 instances spread their connections
// over 100 and 1,000 servers as evenly as any plan can: every server gets
// instances·size/servers of them, rounded down or up. Over 100 servers
// that is exact (max/mean 1); over 1,000 servers the mean is 1.2 to 2, so
// max/mean is 2/1.2 = 1.67 at worst, 1 at size 20. Random subsetting is
// logged beside it.
func TestSubsetOfBalance(t *testing.T) {
	t.Parallel()
	const instances = 100
	for _, n := range []int{100, 1000} {
		servers := fleetServers(t, n)
		for size := 12; size <= 20; size++ {
			t.Run(fmt.Sprintf("servers=%d/size=%d", n, size), func(t *testing.T) {
				plan := subsetPlan(t, servers, instances, size)
				conns := connections(plan)
				mean := float64(instances*size) / float64(n)
				lo, hi := int(math.Floor(mean)), int(math.Ceil(mean))
				for _, s := range servers {
					c := conns[s]
					require.True(t, c >= lo && c <= hi, "%s has %d connections, want %d to %d", s.Name(), c, lo, hi)
				}
				for i, sub := range plan {
					require.Len(t, sub, size, "instance %d", i)
					require.Len(t, compactSet(sub), size, "instance %d: a server twice", i)
				}
				if n == 100 {
					assert.Equal(t, size, hi, "exact balance")
				}
				// Random subsetting, for comparison.
				rnd := rand.New(rand.NewPCG(uint64(n), uint64(size)))
				random := map[int]int{}
				for range instances {
					for _, j := range rnd.Perm(n)[:size] {
						random[j]++
					}
				}
				worst := 0
				for _, c := range random {
					worst = max(worst, c)
				}
				t.Logf("max/mean: deterministic %.2f, random %.2f", float64(hi)/mean, float64(worst)/mean)
			})
		}
	}
}

// compactSet returns the distinct servers of s.
func compactSet(s []*Server) map[*Server]bool {
	m := map[*Server]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

// TestSubsetOfChurn checks what one server joining or leaving costs: each
// instance replaces at most two servers of its subset, and the share of
// all connections that move is logged (see SubsetOf).
func TestSubsetOfChurn(t *testing.T) {
	t.Parallel()
	const instances = 100
	for _, n := range []int{100, 1000} {
		servers := fleetServers(t, n+1)
		for _, size := range []int{12, 16, 20} {
			t.Run(fmt.Sprintf("servers=%d/size=%d", n, size), func(t *testing.T) {
				base := subsetPlan(t, servers[:n], instances, size)
				for _, change := range []struct {
					name  string
					after []*Server
				}{
					{"add", servers},
					{"remove", servers[1:n]},
				} {
					after := subsetPlan(t, change.after, instances, size)
					moved := 0
					for i := range base {
						now := compactSet(after[i])
						gone := 0
						for _, s := range base[i] {
							if !now[s] {
								gone++
							}
						}
						assert.LessOrEqual(t, gone, 2, "%s: instance %d replaced %d servers", change.name, i, gone)
						moved += gone
					}
					t.Logf("%s one server: %.2f%% of connections move (1/N = %.2f%%)", change.name,
						100*float64(moved)/float64(instances*size), 100/float64(n))
				}
			})
		}
	}
}

func TestSubsetOfIgnoresOrder(t *testing.T) {
	t.Parallel()
	servers := fleetServers(t, 50)
	want := subsetPlan(t, servers, 7, 9)
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		shuffled := slices.Clone(servers)
		rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		assert.Equal(t, want, subsetPlan(t, shuffled, 7, 9))
	}
}

func TestSubsetOfSmallPools(t *testing.T) {
	t.Parallel()
	servers := fleetServers(t, 5)
	sub, err := SubsetOf(servers, 3, 4, 8)
	require.NoError(t, err)
	assert.ElementsMatch(t, servers, sub, "size above the pool's: all of it")
	sub, err = SubsetOf(nil, 0, 1, 3)
	require.NoError(t, err)
	assert.Empty(t, sub)
}

func TestSubsetBadInput(t *testing.T) {
	t.Parallel()
	servers := fleetServers(t, 3)
	tests := []struct {
		name                      string
		instance, instances, size int
		want                      string
	}{
		{"no instances", 0, 0, 3, "instances 0"},
		{"negative instances", 0, -2, 3, "instances -2"},
		{"negative instance", -1, 4, 3, "instance -1 is not between 0 and 3"},
		{"instance too large", 4, 4, 3, "instance 4 is not between 0 and 3"},
		{"huge instance", math.MaxInt, 4, 3, fmt.Sprintf("instance %d", math.MaxInt)},
		{"zero size", 0, 4, 0, "size 0"},
		{"negative size", 0, 4, -1, "size -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SubsetOf(servers, tt.instance, tt.instances, tt.size)
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "lb: ")
			pool, err := NewPool(servers...)
			require.NoError(t, err)
			_, err = NewSubset(pool, tt.instance, tt.instances, tt.size)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := SubsetOf([]*Server{servers[0], nil}, 0, 1, 1)
	require.ErrorContains(t, err, "server 1 is nil")
	_, err = NewSubset(nil, 0, 1, 1)
	require.ErrorContains(t, err, "nil source pool")
}

func TestSubsetOfHugeNumbers(t *testing.T) {
	t.Parallel()
	servers := fleetServers(t, 10)
	sub, err := SubsetOf(servers, math.MaxInt-1, math.MaxInt, math.MaxInt)
	require.NoError(t, err)
	assert.Len(t, sub, 10)
	sub, err = SubsetOf(servers, math.MaxInt-1, math.MaxInt, 3)
	require.NoError(t, err)
	assert.Len(t, sub, 3)
}

// waitSubset waits until the subset pool holds want.
func waitSubset(t *testing.T, sub *Subset, want []*Server) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		ch := sub.Pool().Changed()
		if slices.Equal(sub.Pool().Servers(), want) {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			require.FailNow(t, "the subset did not follow its source", "have %v, want %v", sub.Pool().Servers(), want)
		}
	}
}

func TestSubsetFollowsSource(t *testing.T) {
	t.Parallel()
	all := fleetServers(t, 12)
	src, err := NewPool(all[:10]...)
	require.NoError(t, err)
	sub, err := NewSubset(src, 1, 4, 3)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })

	want, err := SubsetOf(src.Servers(), 1, 4, 3)
	require.NoError(t, err)
	require.Equal(t, want, sub.Pool().Servers(), "the subset is ready when NewSubset returns")

	// Any balancer works inside the subset, on the source's own servers.
	p2c, err := NewP2C(sub.Pool(), seeded(1))
	require.NoError(t, err)
	for range 100 {
		res, err := p2c.Pick(nil)
		require.NoError(t, err)
		require.Contains(t, want, res.Server)
		res.Done(DoneInfo{})
	}
	var served uint64
	for _, s := range want {
		served += s.Stats().Requests
	}
	assert.Equal(t, uint64(100), served, "counted on the source's servers")

	// A member leaves the source: the subset follows.
	require.NoError(t, src.Remove(want[0]))
	want, err = SubsetOf(src.Servers(), 1, 4, 3)
	require.NoError(t, err)
	waitSubset(t, sub, want)

	// Servers join.
	require.NoError(t, src.Add(all[10:]...))
	want, err = SubsetOf(src.Servers(), 1, 4, 3)
	require.NoError(t, err)
	waitSubset(t, sub, want)

	// After Close, the subset keeps its membership.
	require.NoError(t, sub.Close())
	require.NoError(t, sub.Close(), "Close twice")
	<-sub.done
	version := sub.Pool().Version()
	require.NoError(t, src.Remove(want...))
	assert.Equal(t, version, sub.Pool().Version())
}

// TestSubsetKeepsDrainingServersOut checks that a server being drained in
// the source is not picked from the subset either.
func TestSubsetKeepsDrainingServersOut(t *testing.T) {
	t.Parallel()
	servers := fleetServers(t, 2)
	src, err := NewPool(servers...)
	require.NoError(t, err)
	sub, err := NewSubset(src, 0, 1, 2)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	rr, err := NewRoundRobin(sub.Pool(), WithRotationStart(0))
	require.NoError(t, err)

	first, err := rr.Pick(nil)
	require.NoError(t, err)
	drained := make(chan error, 1)
	go func() { drained <- src.Drain(t.Context(), first.Server) }()
	// The drain waits for the request in flight; meanwhile, no pick from
	// the subset goes to its server.
	for !first.Server.Draining() {
		runtime.Gosched()
	}
	for range 10 {
		res, err := rr.Pick(nil)
		require.NoError(t, err)
		assert.NotSame(t, first.Server, res.Server)
		res.Done(DoneInfo{})
	}
	first.Done(DoneInfo{})
	require.NoError(t, <-drained)
}

// TestSubsetRefreshesOnEveryChange checks that a change of the source that
// leaves the subset's members as they were still gives the subset a new
// snapshot, so that what balancers derive from it is rebuilt.
func TestSubsetRefreshesOnEveryChange(t *testing.T) {
	t.Parallel()
	all := fleetServers(t, 40)
	src, err := NewPool(all[:10]...)
	require.NoError(t, err)
	sub, err := NewSubset(src, 0, 4, 3)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	before := sub.Pool().Servers()
	var outside *Server
	for _, s := range all[10:] {
		got, err := SubsetOf(append(src.Servers(), s), 0, 4, 3)
		require.NoError(t, err)
		if slices.Equal(got, before) {
			outside = s
			break
		}
	}
	require.NotNil(t, outside, "a server that stays out of the subset")
	changed := sub.Pool().Changed()
	require.NoError(t, src.Add(outside))
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the subset was not refreshed")
	}
	assert.Equal(t, before, sub.Pool().Servers())
}
