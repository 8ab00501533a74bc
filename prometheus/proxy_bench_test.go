package prometheus

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/balancekit/lb"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// BenchmarkProxyObserved measures what observation costs a proxy: lb's
// Proxy alone (name=lb.Proxy), and the same proxy observed
// (name=lb.Proxy+collector+observers): a Collector of its pool registered in
// a registry that a goroutine scrapes over HTTP through promhttp every
// 100 ms (far more often than Prometheus would), an attempt observer that
// counts each attempt in a CounterVec by server and class, and a pool
// observer that counts events. The load is that of the core's
// BenchmarkProxy: 32 keep-alive clients, a 1 KiB body, all on loopback.
// Each variant has its own backend, pool, proxy and client. B/op,
// allocs/op and cpu-µs/req (CPU time, user and system, where the system
// tells it) count the whole process: clients, proxy, backend and scraper.
// Runs of the variants one after the other (-count 1 in a loop) compare
// them under the same load better than -count:
//
//	for i in $(seq 10); do go test -run '^$' -bench BenchmarkProxyObserved -benchtime 20000x -count 1 ./...; done > obs.txt
//	benchstat -col /name obs.txt
func BenchmarkProxyObserved(b *testing.B) {
	for _, v := range []struct {
		name    string
		observe bool
	}{
		{"lb.Proxy", false},
		{"lb.Proxy+collector+observers", true},
	} {
		// name=: benchstat's -col /name needs the key.
		b.Run("name="+v.name, func(b *testing.B) {
			be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(benchBody)
			}))
			defer be.Close()
			srv, err := lb.NewServer(be.URL)
			if err != nil {
				b.Fatal(err)
			}
			pool, err := lb.NewPool(srv)
			if err != nil {
				b.Fatal(err)
			}
			rr, err := lb.NewRoundRobin(pool)
			if err != nil {
				b.Fatal(err)
			}
			opts := []lb.ProxyOption{lb.WithProxyLogger(slog.New(slog.DiscardHandler))}
			if v.observe {
				opt, stop := observe(b, pool)
				defer stop(srv)
				opts = append(opts, opt)
			}
			p, err := lb.NewProxy(rr, opts...)
			if err != nil {
				b.Fatal(err)
			}
			loadFront(b, p)
			if n := srv.InFlight(); n != 0 {
				b.Errorf("%d requests still in flight", n)
			}
		})
	}
}

// observe attaches to pool what a service that exports its metrics to
// Prometheus would: a Collector in a registry scraped every 100 ms, a pool
// observer, and an attempt observer (the option it returns) counting
// attempts by server and class in the same registry. stop ends the
// scrapes and the pool observer, waits for the scraping goroutine, and
// checks that the attempt observer counted b.N attempts to srv, all "ok".
func observe(b *testing.B, pool *lb.Pool) (opt lb.ProxyOption, stop func(srv *lb.Server)) {
	c, err := NewCollector(pool)
	if err != nil {
		b.Fatal(err)
	}
	reg := prom.NewRegistry()
	attempts := prom.NewCounterVec(prom.CounterOpts{
		Name: "app_proxy_attempts_total",
		Help: "Attempts of the proxy, by server and class.",
	}, []string{"server", "class"})
	reg.MustRegister(c, attempts)
	opt = lb.WithAttemptObserver(func(a lb.Attempt) {
		attempts.WithLabelValues(a.Server.Name(), attemptClass(a)).Inc()
	})

	var events atomic.Int64
	stopObserve := pool.Observe(func(lb.Event) { events.Add(1) })

	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	client := &http.Client{Timeout: 10 * time.Second}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var scrapes atomic.Int64
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			resp, err := client.Get(metrics.URL)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("scrape: status %d", resp.StatusCode)
				return
			}
			scrapes.Add(1)
		}
	})
	return opt, func(srv *lb.Server) {
		close(done)
		wg.Wait()
		stopObserve()
		client.CloseIdleConnections()
		metrics.Close()
		b.ReportMetric(float64(scrapes.Load()), "scrapes")
		var m dto.Metric
		if err := attempts.WithLabelValues(srv.Name(), "ok").Write(&m); err != nil {
			b.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != float64(b.N) {
			b.Errorf("the attempt observer counted %v attempts, want %d", got, b.N)
		}
	}
}

// attemptClass returns the class of an attempt as lb_request_errors_total
// names it, or "ok" for one that is no error. It allocates nothing for an
// attempt without an error.
func attemptClass(a lb.Attempt) string {
	switch {
	case a.ClientGone:
		return "client_gone"
	case a.Err != nil && isTimeout(a.Err):
		return "timeout"
	case a.Err != nil:
		return "transport"
	case a.StatusCode >= 500:
		return "status_5xx"
	case a.StatusCode >= 400:
		return "status_4xx"
	}
	return "ok"
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// benchClients is the number of keep-alive clients of the proxy benchmark,
// a multiple of GOMAXPROCS, as in the core's BenchmarkProxy.
const benchClients = 32

// benchBody is the body the benchmark's backends answer with: 1 KiB.
var benchBody = bytes.Repeat([]byte("0123456789abcdef"), 1024/16)

// loadFront serves h on loopback and sends it b.N GETs from benchClients
// keep-alive clients, reporting req/s and, where the system tells it, the
// process's CPU time per request. It returns once the front server has
// finished every request.
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
