package lb

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"testing"
)

// BenchmarkProxy compares requests per second through lb's Proxy and
// through a bare httputil.ReverseProxy with the same transport settings,
// without a BufferPool (as most programs use it) and with one: 32
// keep-alive clients (a multiple of GOMAXPROCS), a 1 KiB body, all on
// loopback. The "tutorial" variant builds a new ReverseProxy for every
// request, as many tutorial load balancers do. Each variant has its own
// backend, proxy and client, so that none inherits another's connections.
// B/op, allocs/op and cpu-µs/req (CPU time, user and system, where the
// system tells it) count the whole process: clients, proxy and backend;
// CPU time is less disturbed than req/s by other programs on the machine.
// Runs of the variants one after the other (-count 1 in a loop) compare
// them under the same load better than -count, which repeats each variant
// before the next:
//
//	for i in $(seq 10); do go test -run '^$' -bench 'BenchmarkProxy$' -benchtime 20000x -count 1 .; done > proxy.txt
//	benchstat -col /name proxy.txt
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
		{"bare-ReverseProxy+BufferPool", func(b *testing.B, target *url.URL) http.Handler {
			return &httputil.ReverseProxy{
				Rewrite: func(pr *httputil.ProxyRequest) {
					pr.SetURL(target)
					pr.SetXForwarded()
				},
				Transport:  newTransport(0),
				BufferPool: newBufferPool(),
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
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(benchBody)
			}))
			defer be.Close()
			target, err := url.Parse(be.URL)
			if err != nil {
				b.Fatal(err)
			}
			loadFront(b, v.make(b, target))
		})
	}
}

// benchClients is the number of keep-alive clients of the proxy benchmarks,
// a multiple of GOMAXPROCS.
const benchClients = 32

// benchBody is the body the proxy benchmarks' backends answer with: 1 KiB.
var benchBody = bytes.Repeat([]byte("0123456789abcdef"), 1024/16)

// loadFront serves h on loopback and sends it b.N GETs from benchClients
// keep-alive clients, reporting req/s and, where the system tells it, the
// process's CPU time per request.
func loadFront(b *testing.B, h http.Handler) {
	front := httptest.NewServer(h)
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	b.SetParallelism(max(1, benchClients/runtime.GOMAXPROCS(0)))
	cpu0, cpuOK := processCPU()
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
	if cpu1, ok := processCPU(); ok && cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
	}
}

// cannedTransport answers every request with status 200 and body, without
// a network.
type cannedTransport struct{ body []byte }

func (t cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		Body:          io.NopCloser(bytes.NewReader(t.body)),
		ContentLength: int64(len(t.body)),
		Request:       r,
	}, nil
}

// discardWriter is a ResponseWriter that drops what is written to it.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkInMemoryProxy measures the proxy's own cost per request, with
// no network: a transport that answers at once with a 1 KiB body, and a
// ResponseWriter that discards. Against the bare ReverseProxy, allocs/op
// and B/op are exact counts of what lb adds.
//
//	go test -run '^$' -bench BenchmarkInMemoryProxy -count 6 .
func BenchmarkInMemoryProxy(b *testing.B) {
	rt := cannedTransport{benchBody}
	target, err := url.Parse("http://127.0.0.1:8080")
	if err != nil {
		b.Fatal(err)
	}
	bare := func(pool httputil.BufferPool) http.Handler {
		return &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.SetXForwarded()
			},
			Transport:  rt,
			BufferPool: pool,
		}
	}
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
	p, err := NewProxy(rr, quiet, WithTransport(rt))
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		h    http.Handler
	}{
		{"bare-ReverseProxy", bare(nil)},
		{"bare-ReverseProxy+BufferPool", bare(newBufferPool())},
		{"lb.Proxy", p},
	} {
		b.Run(v.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				v.h.ServeHTTP(w, r)
			}
		})
	}
	if n := srv.InFlight(); n != 0 {
		b.Errorf("%d requests still in flight", n)
	}
}
