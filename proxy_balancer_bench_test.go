package lb

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkProxyBalancer compares requests per second through lb's Proxy
// with round robin and with the latency-aware balancers, over 4 loopback
// backends, in the setting of BenchmarkProxy (32 keep-alive clients, a
// 1 KiB body). As there, interleaved runs compare best:
//
//	for i in $(seq 10); do go test -run '^$' -bench 'BenchmarkProxyBalancer$' -benchtime 20000x -count 1 .; done > bal.txt
//	benchstat -col /balancer bal.txt
func BenchmarkProxyBalancer(b *testing.B) {
	balancers := []struct {
		name string
		new  func(*Pool) (Balancer, error)
	}{
		{"round-robin", func(p *Pool) (Balancer, error) { return NewRoundRobin(p) }},
		{"p2c", func(p *Pool) (Balancer, error) { return NewP2C(p) }},
		{"peak-ewma", func(p *Pool) (Balancer, error) { return NewPeakEWMA(p) }},
		{"adaptive", func(p *Pool) (Balancer, error) { return NewAdaptive(p) }},
	}
	for _, bal := range balancers {
		b.Run("balancer="+bal.name, func(b *testing.B) {
			pool := new(Pool)
			for range 4 {
				be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write(benchBody)
				}))
				defer be.Close()
				s, err := NewServer(be.URL)
				if err != nil {
					b.Fatal(err)
				}
				if err := pool.Add(s); err != nil {
					b.Fatal(err)
				}
			}
			lbal, err := bal.new(pool)
			if err != nil {
				b.Fatal(err)
			}
			p, err := NewProxy(lbal, quiet)
			if err != nil {
				b.Fatal(err)
			}
			loadFront(b, p)
			for _, s := range pool.Servers() {
				if n := s.InFlight(); n != 0 {
					b.Errorf("%s: %d requests still in flight", s, n)
				}
			}
		})
	}
}
