// Package benchmarks measures lb's picks side by side with well-known Go
// load-balancing libraries, in one run. It is a module of its own, so that
// lb's go.mod stays free of them.
//
//	cd benchmarks && go test -run '^$' -bench . -count 3
package benchmarks

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/balancekit/lb"
	"github.com/buraksezer/consistent"
	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	kitlb "github.com/go-kit/kit/sd/lb"
	libbounded "github.com/lafikl/liblb/bounded"
	libconsistent "github.com/lafikl/liblb/consistent"
	libp2c "github.com/lafikl/liblb/p2c"
	libr2 "github.com/lafikl/liblb/r2"
	"github.com/smallnest/weighted"
	"github.com/vulcand/oxy/v2/roundrobin"
	zbalancer "github.com/zehuamama/balancer/balancer"
)

var sizes = []int{3, 16, 256}

func hosts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.0.%d.%d:8080", i/250, i%250+1)
	}
	return out
}

// weight of the i-th server in the weighted benchmarks: 1 to 4.
func weight(i int) int { return 1 + i%4 }

var keys = func() []string {
	out := make([]string, 4096)
	for i := range out {
		out[i] = fmt.Sprintf("user-%d", i)
	}
	return out
}()

// lbPool returns an lb pool of n servers, weighted or not.
func lbPool(b *testing.B, n int, weighted bool) *lb.Pool {
	pool := new(lb.Pool)
	for i, h := range hosts(n) {
		w := 1
		if weighted {
			w = weight(i)
		}
		s, err := lb.NewServer("http://"+h, lb.WithWeight(w))
		if err != nil {
			b.Fatal(err)
		}
		if err := pool.Add(s); err != nil {
			b.Fatal(err)
		}
	}
	return pool
}

// pickDone benchmarks Pick+Done of an lb balancer.
func pickDone(b *testing.B, bal lb.Balancer) {
	if res, err := bal.Pick(nil); err == nil { // builds any table first
		res.Done(lb.DoneInfo{})
	}
	bench(b, func(int) error {
		res, err := bal.Pick(nil)
		if err == nil {
			res.Done(lb.DoneInfo{})
		}
		return err
	})
}

// bench runs op once per iteration with a growing index (for rotating
// keys), and fails on its first error.
func bench(b *testing.B, op func(i int) error) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := op(i); err != nil {
			b.Fatal(err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func BenchmarkRoundRobin(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("lb/servers=%d", n), func(b *testing.B) {
			pickDone(b, must(lb.NewRoundRobin(lbPool(b, n, false))))
		})
		b.Run(fmt.Sprintf("go-kit/servers=%d", n), func(b *testing.B) {
			eps := make(sd.FixedEndpointer, n)
			for i := range eps {
				eps[i] = func(context.Context, any) (any, error) { return nil, nil }
			}
			rr := kitlb.NewRoundRobin(eps)
			bench(b, func(int) error { _, err := rr.Endpoint(); return err })
		})
		b.Run(fmt.Sprintf("oxy/servers=%d", n), func(b *testing.B) {
			rr := must(roundrobin.New(http.NotFoundHandler()))
			for _, h := range hosts(n) {
				if err := rr.UpsertServer(&url.URL{Scheme: "http", Host: h}); err != nil {
					b.Fatal(err)
				}
			}
			bench(b, func(int) error { _, err := rr.NextServer(); return err })
		})
		b.Run(fmt.Sprintf("liblb-r2/servers=%d", n), func(b *testing.B) {
			rr := libr2.New(hosts(n)...)
			bench(b, func(int) error { _, err := rr.Balance(); return err })
		})
		b.Run(fmt.Sprintf("zehuamama/servers=%d", n), func(b *testing.B) {
			zehuamama(b, zbalancer.R2Balancer, n)
		})
	}
}

// zehuamama benchmarks Balance, Inc and Done of one of its balancers.
func zehuamama(b *testing.B, algorithm string, n int) {
	bal := must(zbalancer.Build(algorithm, hosts(n)))
	bench(b, func(i int) error {
		h, err := bal.Balance(keys[i%len(keys)])
		bal.Inc(h)
		bal.Done(h)
		return err
	})
}

func BenchmarkWeightedRoundRobin(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("lb/servers=%d", n), func(b *testing.B) {
			pickDone(b, must(lb.NewWeightedRoundRobin(lbPool(b, n, true))))
		})
		b.Run(fmt.Sprintf("smallnest-smooth/servers=%d", n), func(b *testing.B) {
			var sw weighted.SW
			for i, h := range hosts(n) {
				sw.Add(h, weight(i))
			}
			bench(b, func(int) error { _ = sw.Next(); return nil })
		})
		b.Run(fmt.Sprintf("oxy/servers=%d", n), func(b *testing.B) {
			rr := must(roundrobin.New(http.NotFoundHandler()))
			for i, h := range hosts(n) {
				if err := rr.UpsertServer(&url.URL{Scheme: "http", Host: h}, roundrobin.Weight(weight(i))); err != nil {
					b.Fatal(err)
				}
			}
			bench(b, func(int) error { _, err := rr.NextServer(); return err })
		})
		b.Run(fmt.Sprintf("liblb-r2/servers=%d", n), func(b *testing.B) {
			rr := libr2.New()
			for i, h := range hosts(n) {
				rr.AddWeight(h, weight(i))
			}
			bench(b, func(int) error { _, err := rr.Balance(); return err })
		})
	}
}

func BenchmarkRandom(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("lb-weighted/servers=%d", n), func(b *testing.B) {
			pickDone(b, must(lb.NewRandom(lbPool(b, n, true))))
		})
		b.Run(fmt.Sprintf("smallnest-weighted/servers=%d", n), func(b *testing.B) {
			rw := weighted.NewRandW()
			for i, h := range hosts(n) {
				rw.Add(h, weight(i))
			}
			bench(b, func(int) error { _ = rw.Next(); return nil })
		})
		b.Run(fmt.Sprintf("lb/servers=%d", n), func(b *testing.B) {
			pickDone(b, must(lb.NewRandom(lbPool(b, n, false))))
		})
		b.Run(fmt.Sprintf("go-kit/servers=%d", n), func(b *testing.B) {
			eps := make(sd.FixedEndpointer, n)
			for i := range eps {
				eps[i] = endpoint.Nop
			}
			r := kitlb.NewRandom(eps, 1)
			bench(b, func(int) error { _, err := r.Endpoint(); return err })
		})
		b.Run(fmt.Sprintf("zehuamama/servers=%d", n), func(b *testing.B) {
			zehuamama(b, zbalancer.RandomBalancer, n)
		})
	}
}

func BenchmarkLeastConn(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("lb/servers=%d", n), func(b *testing.B) {
			pickDone(b, must(lb.NewLeastConn(lbPool(b, n, false))))
		})
		b.Run(fmt.Sprintf("zehuamama-least-load/servers=%d", n), func(b *testing.B) {
			zehuamama(b, zbalancer.LeastLoadBalancer, n)
		})
	}
}

func BenchmarkP2C(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("lb/servers=%d", n), func(b *testing.B) {
			pickDone(b, must(lb.NewP2C(lbPool(b, n, false))))
		})
		b.Run(fmt.Sprintf("zehuamama/servers=%d", n), func(b *testing.B) {
			zehuamama(b, zbalancer.P2CBalancer, n)
		})
		b.Run(fmt.Sprintf("liblb/servers=%d", n), func(b *testing.B) {
			p := libp2c.New(hosts(n)...)
			bench(b, func(i int) error {
				h, err := p.Balance(keys[i%len(keys)])
				p.Done(h)
				return err
			})
		})
	}
}

type member string

func (m member) String() string { return string(m) }

type fnv64 struct{}

func (fnv64) Sum64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func BenchmarkConsistentHash(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("lb/servers=%d", n), func(b *testing.B) {
			h := must(lb.NewConsistentHash(lbPool(b, n, false), lb.KeyPath()))
			hashPicks(b, h)
		})
		b.Run(fmt.Sprintf("buraksezer/servers=%d", n), func(b *testing.B) {
			members := make([]consistent.Member, n)
			for i, h := range hosts(n) {
				members[i] = member(h)
			}
			c := consistent.New(members, consistent.Config{Hasher: fnv64{}, PartitionCount: 7919, ReplicationFactor: 20, Load: 1.25})
			bkeys := make([][]byte, len(keys))
			for i, k := range keys {
				bkeys[i] = []byte(k)
			}
			bench(b, func(i int) error { _ = c.LocateKey(bkeys[i%len(bkeys)]); return nil })
		})
		b.Run(fmt.Sprintf("liblb/servers=%d", n), func(b *testing.B) {
			c := libconsistent.New(hosts(n)...)
			bench(b, func(i int) error { _, err := c.Balance(keys[i%len(keys)]); return err })
		})
		b.Run(fmt.Sprintf("zehuamama/servers=%d", n), func(b *testing.B) {
			zehuamama(b, zbalancer.ConsistentHashBalancer, n)
		})
	}
}

func BenchmarkBoundedLoad(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("lb/servers=%d", n), func(b *testing.B) {
			h := must(lb.NewConsistentHash(lbPool(b, n, false), lb.KeyPath(), lb.WithBoundedLoad(1.25)))
			hashPicks(b, h)
		})
		b.Run(fmt.Sprintf("liblb/servers=%d", n), func(b *testing.B) {
			c := libbounded.New(hosts(n)...)
			bench(b, func(i int) error {
				h, err := c.Balance(keys[i%len(keys)])
				c.Inc(h)
				c.Done(h)
				return err
			})
		})
		b.Run(fmt.Sprintf("zehuamama/servers=%d", n), func(b *testing.B) {
			zehuamama(b, zbalancer.BoundedBalancer, n)
		})
	}
}

// hashPicks benchmarks PickKey+Done over rotating keys.
func hashPicks(b *testing.B, h *lb.ConsistentHash) {
	if res, err := h.PickKey("warm"); err == nil { // builds the ring first
		res.Done(lb.DoneInfo{})
	}
	bench(b, func(i int) error {
		res, err := h.PickKey(keys[i%len(keys)])
		if err == nil {
			res.Done(lb.DoneInfo{})
		}
		return err
	})
}
