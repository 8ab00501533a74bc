package lb

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// BenchmarkProxy compares requests per second through lb's Proxy and
// through a bare httputil.ReverseProxy with the same transport settings:
// parallel clients, keep-alive, a small body, all on loopback. The
// "tutorial" variant builds a new ReverseProxy for every request, as many
// tutorial load balancers do. Each variant has its own backend, proxy and
// client, so that none inherits another's connections.
//
//	go test -run '^$' -bench BenchmarkProxy -benchtime 20000x -count 6 .
func BenchmarkProxy(b *testing.B) {
	variants := []struct {
		name string
		make func(b *testing.B, target *url.URL) http.Handler
	}{
		{"bare-ReverseProxy", func(b *testing.B, target *url.URL) http.Handler {
			return &httputil.ReverseProxy{
				Rewrite: func(pr *httputil.ProxyRequest) {
					pr.SetURL(target)
					pr.SetXForwarded()
				},
				Transport: newTransport(0),
			}
		}},
		{"lb.Proxy", func(b *testing.B, target *url.URL) http.Handler {
			srv, err := NewServer(target.String())
			if err != nil {
				b.Fatal(err)
			}
			pool, err := NewPool(srv)
			if err != nil {
				b.Fatal(err)
			}
			rr, err := NewRoundRobin(pool)
			if err != nil {
				b.Fatal(err)
			}
			p, err := NewProxy(rr, quiet)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				if n := srv.InFlight(); n != 0 {
					b.Errorf("%d requests still in flight", n)
				}
			})
			return p
		}},
		{"tutorial-per-request", func(b *testing.B, target *url.URL) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
			})
		}},
	}
	body := []byte("hello from the backend\n")
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(body)
			}))
			defer be.Close()
			target, err := url.Parse(be.URL)
			if err != nil {
				b.Fatal(err)
			}
			front := httptest.NewServer(v.make(b, target))
			defer front.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(front.URL)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
