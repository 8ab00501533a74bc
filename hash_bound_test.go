package lb

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// boundedCap is the documented cap of WithBoundedLoad(c) for a server of
// weight w when the balancer has total requests in flight (this one
// included) over servers of usable weight usable.
func boundedCap(c float64, total int, w, usable int) int64 {
	return int64(math.Ceil(c * float64(total) * float64(w) / float64(usable)))
}

// availableWeight sums the weights of the servers that may be picked.
func availableWeight(servers []*Server) int {
	w := 0
	for _, s := range servers {
		if s.Available() {
			w += s.Weight()
		}
	}
	return w
}

// TestBoundedLoadNeverPassesCap holds keyed picks, one at a time, and
// checks after each that no server holds more than its cap: ceil(c × in
// flight × weight / usable weight), with down servers' weight left out.
func TestBoundedLoadNeverPassesCap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		weights []int
		down    []int
		c       float64
		key     func(i int) string
		picks   int
	}{
		// The scenario of the report: 10 servers, half down, 1,000 keys.
		{"10 servers half down, 1000 keys", ones(10), []int{0, 2, 4, 6, 8}, 1.25, func(i int) string { return fmt.Sprintf("user-%d", i) }, 1000},
		{"10 servers half down, tight", ones(10), []int{1, 3, 5, 7, 9}, 1, func(i int) string { return fmt.Sprintf("user-%d", i) }, 1000},
		{"10 servers half down, hot keys", ones(10), []int{0, 1, 2, 3, 4}, 1.25, func(i int) string { return fmt.Sprintf("hot-%d", i%3) }, 1000},
		{"one hot key, tight", ones(6), []int{0}, 1, func(int) string { return "one-key" }, 500},
		{"all up, hot keys", ones(8), nil, 1.1, func(i int) string { return fmt.Sprintf("hot-%d", i%2) }, 1000},
		{"weighted, one down", []int{1, 2, 3, 4, 5}, []int{4}, 1.25, func(i int) string { return fmt.Sprintf("hot-%d", i%5) }, 1000},
		{"one up of 300", ones(300), func() []int {
			out := make([]int, 299)
			for i := range out {
				out[i] = i
			}
			return out
		}(), 1.25, func(i int) string { return fmt.Sprintf("user-%d", i) }, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, servers := newTestPool(t, tc.weights...)
			for _, i := range tc.down {
				servers[i].SetHealthy(false)
			}
			usable := availableWeight(servers)
			h := newHash(t, p, WithBoundedLoad(tc.c))
			var dones []func(DoneInfo)
			for i := range tc.picks {
				res, err := h.PickKey(tc.key(i))
				require.NoError(t, err)
				require.True(t, res.Server.Available(), res.Server.Name())
				dones = append(dones, res.Done)
				for _, s := range servers {
					limit := boundedCap(tc.c, i+1, s.Weight(), usable)
					require.LessOrEqual(t, s.InFlight(), limit, "%s after %d picks", s.Name(), i+1)
				}
			}
			peak := int64(0)
			for _, s := range servers {
				peak = max(peak, s.InFlight())
			}
			t.Logf("busiest server: %d in flight of %d (cap of a weight-1 server %d)", peak, tc.picks, boundedCap(tc.c, tc.picks, 1, usable))
			for _, d := range dones {
				d(DoneInfo{})
			}
			for _, s := range servers {
				assert.Zero(t, s.InFlight(), s.Name())
			}
			assert.Zero(t, h.loads.total.Load())
		})
	}
}

// TestBoundedLoadParallel holds picks from several goroutines at once: the
// cap holds for the final total, no pick fails, and every count returns to
// zero.
func TestBoundedLoadParallel(t *testing.T) {
	t.Parallel()
	const (
		workers = 8
		each    = 250
		c       = 1.25
	)
	p, servers := newTestPool(t, ones(10)...)
	for _, s := range servers[:5] {
		s.SetHealthy(false)
	}
	h := newHash(t, p, WithBoundedLoad(c))
	var (
		mu   sync.Mutex
		held []func(DoneInfo)
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Half the picks churn (picked and ended at once), half
				// are held: the cap must hold while totals move.
				res, err := h.PickKey(fmt.Sprintf("hot-%d", (w+i)%4))
				if !assert.NoError(t, err) {
					return
				}
				res.Done(DoneInfo{})
				res, err = h.PickKey(fmt.Sprintf("user-%d-%d", w, i))
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				held = append(held, res.Done)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, held, workers*each)
	usable := availableWeight(servers)
	for _, s := range servers {
		assert.LessOrEqual(t, s.InFlight(), boundedCap(c, len(held), s.Weight(), usable), s.Name())
	}
	for _, d := range held {
		d(DoneInfo{})
	}
	for _, s := range servers {
		assert.Zero(t, s.InFlight(), s.Name())
	}
	assert.Zero(t, h.loads.total.Load())
}

// TestBoundedLoadFallbackCapped checks the last resort of a bounded pick,
// rendezvous hashing, when every usable server is full but one, the one
// that ranks last for the key: the pick goes there, not to a full server.
func TestBoundedLoadFallbackCapped(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, ones(6)...)
	servers[0].SetHealthy(false)
	h := newHash(t, p, WithBoundedLoad(1))
	tab := h.loads.current(p)
	x := hashString("one-key", 0)
	last := 1
	for i := 2; i < 6; i++ {
		if rendezvousScore(x, servers[i]) < rendezvousScore(x, servers[last]) {
			last = i
		}
	}
	// 499 in flight: 100 on each usable server but the last-ranked, which
	// has 99. With this pick counted, the caps are ceil(500/5) = 100.
	for i := 1; i < 6; i++ {
		n := int64(100)
		if i == last {
			n = 99
		}
		tab.loads[i].n.Store(n)
	}
	h.loads.total.Store(499 + 1)
	res, err := h.rendezvous(tab, x)
	require.NoError(t, err, "a server is below its cap")
	assert.Same(t, servers[last], res.Server)
	assert.Equal(t, int64(100), tab.loads[last].n.Load())

	// Every server full (a count the sum argument rules out, made up
	// here): no pick rather than one over a cap.
	h.loads.total.Store(500)
	_, err = h.rendezvous(tab, x)
	require.ErrorIs(t, err, ErrNoServer)
	for i := 1; i < 6; i++ {
		assert.Equal(t, int64(100), tab.loads[i].n.Load())
	}
}

// TestBoundedLoadCountsSurvivePoolChanges ends picks after their server
// left the pool and after others joined: every count returns to zero.
func TestBoundedLoadCountsSurvivePoolChanges(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, ones(4)...)
	h := newHash(t, p, WithBoundedLoad(1.25))
	var dones []func(DoneInfo)
	for _, k := range keys(200) {
		res, err := h.PickKey(k)
		require.NoError(t, err)
		dones = append(dones, res.Done)
	}
	require.NoError(t, p.Remove(servers[1]))
	extra := newTestServers(t, ones(6)...)[4:]
	require.NoError(t, p.Add(extra...))
	for _, k := range keys(100) {
		res, err := h.PickKey(k)
		require.NoError(t, err)
		require.NotSame(t, servers[1], res.Server)
		dones = append(dones, res.Done)
	}
	assert.Equal(t, int64(300), h.loads.total.Load())
	for _, d := range dones {
		d(DoneInfo{})
	}
	assert.Zero(t, h.loads.total.Load())
	for _, s := range append(servers, extra...) {
		assert.Zero(t, s.InFlight(), s.Name())
	}
	for _, l := range h.loads.current(p).loads {
		assert.Zero(t, l.n.Load())
	}
}

// TestBoundedLoadFactor checks WithBoundedLoad's argument: below 1, NaN and
// infinities are errors naming the value, and a huge factor is no bound at
// all (pure hashing), not a bound of 0.
func TestBoundedLoadFactor(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, ones(10)...)
	for _, c := range []float64{0.5, 0, -1, math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64} {
		_, err := NewConsistentHash(p, KeyPath(), WithBoundedLoad(c))
		assert.EqualError(t, err, fmt.Sprintf("lb: NewConsistentHash: WithBoundedLoad: factor %v is not a finite number of at least 1", c))
	}
	pure := newHash(t, p)
	want := owners(t, pure, keys(2000))
	for _, c := range []float64{1e300, math.MaxFloat64, 1 << 62, 1e18} {
		h := newHash(t, p, WithBoundedLoad(c))
		got := make(map[string]string, 2000)
		var dones []func(DoneInfo)
		for _, k := range keys(2000) {
			res, err := h.PickKey(k)
			require.NoError(t, err, "%v", c)
			got[k] = res.Server.Name()
			dones = append(dones, res.Done) // held: the pool is loaded
		}
		moved := 0
		for k, owner := range want {
			if got[k] != owner {
				moved++
			}
		}
		assert.Zero(t, moved, "WithBoundedLoad(%v) under load is pure hashing: keys moved", c)
		for _, d := range dones {
			d(DoneInfo{})
		}
	}
}

// BenchmarkBoundedLoad measures a bounded PickKey+Done on a loaded pool:
// before the timing starts, the balancer holds 4 requests per server, so
// servers are near their cap (5 at c = 1.25) and the bound decides picks.
// "half-down" marks every other server unhealthy first.
//
//	go test -run '^$' -bench BenchmarkBoundedLoad -count 3 .
func BenchmarkBoundedLoad(b *testing.B) {
	for _, tc := range []struct {
		n        int
		halfDown bool
	}{{16, false}, {256, false}, {256, true}, {4096, false}, {4096, true}} {
		name := fmt.Sprintf("servers=%d", tc.n)
		if tc.halfDown {
			name += "/half-down"
		}
		p, servers := newTestPool(b, ones(tc.n)...)
		if tc.halfDown {
			for i, s := range servers {
				if i%2 == 0 {
					s.SetHealthy(false)
				}
			}
		}
		h, err := NewConsistentHash(p, KeyHeader("X-Key"), WithBoundedLoad(1.25))
		if err != nil {
			b.Fatal(err)
		}
		up := len(servers)
		if tc.halfDown {
			up /= 2
		}
		var held []func(DoneInfo)
		for i := range 4 * up {
			res, err := h.PickKey(fmt.Sprintf("held-%d", i))
			if err != nil {
				b.Fatal(err)
			}
			held = append(held, res.Done)
		}
		b.Run(name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				res, err := h.PickKey(pickKeys[i%len(pickKeys)])
				if err != nil {
					b.Fatal(err)
				}
				res.Done(DoneInfo{})
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					res, err := h.PickKey(pickKeys[i%len(pickKeys)])
					if err != nil {
						b.Error(err)
						return
					}
					res.Done(DoneInfo{})
				}
			})
		})
		for _, d := range held {
			d(DoneInfo{})
		}
	}
}

// TestBoundedLoadChurn picks from several goroutines while servers go
// down and up and the membership changes: no pick takes an unusable
// server or fails while one is usable, and every count returns to zero.
func TestBoundedLoadChurn(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, ones(8)...)
	extra := newTestServers(t, ones(10)...)[8:]
	h := newHash(t, p, WithBoundedLoad(1.25))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			var held []func(DoneInfo)
			for i := 0; ; i++ {
				select {
				case <-stop:
					for _, d := range held {
						d(DoneInfo{})
					}
					return
				default:
				}
				res, err := h.PickKey(fmt.Sprintf("k-%d-%d", w, i%50))
				if !assert.NoError(t, err) {
					return
				}
				held = append(held, res.Done)
				if len(held) == 20 {
					for _, d := range held {
						d(DoneInfo{})
					}
					held = held[:0]
				}
			}
		})
	}
	// Servers 0 and 1 flap; the extras come and go. Servers 2 to 7 stay
	// up, so every pick has somewhere to go.
	for i := range 200 {
		servers[i%2].SetHealthy(i%3 != 0)
		if i%10 == 0 {
			require.NoError(t, p.Add(extra...))
		}
		if i%10 == 5 {
			require.NoError(t, p.Remove(extra...))
		}
		res, err := h.PickKey(fmt.Sprintf("main-%d", i))
		require.NoError(t, err)
		require.True(t, res.Server.Available() || res.Server == servers[0] || res.Server == servers[1], res.Server.Name())
		res.Done(DoneInfo{})
	}
	close(stop)
	wg.Wait()
	for _, s := range append(servers, extra...) {
		assert.Zero(t, s.InFlight(), s.Name())
	}
	assert.Zero(t, h.loads.total.Load())
}
