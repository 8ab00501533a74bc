package lb

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The TCP benchmarks run three ways in one run, all on 127.0.0.1: "direct"
// (the client connects to the server), "baseline" (a plain io.Copy proxy,
// below) and "lb" (a TCPProxy with RoundRobin over one server). The README
// gives the command.

// baselineProxy is the plain proxy the TCPProxy is measured against: one
// goroutine per direction, io.Copy (splice on Linux), close when both end.
type baselineProxy struct {
	ln      net.Listener
	backend string
	wg      sync.WaitGroup
}

func startBaselineProxy(tb testing.TB, backend string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &baselineProxy{ln: ln, backend: backend}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() {
				defer c.Close()
				s, err := net.Dial("tcp", p.backend)
				if err != nil {
					return
				}
				defer s.Close()
				done := make(chan struct{})
				go func() {
					_, _ = io.Copy(c, s)
					_ = c.(*net.TCPConn).CloseWrite()
					close(done)
				}()
				_, _ = io.Copy(s, c)
				_ = s.(*net.TCPConn).CloseWrite()
				<-done
			})
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return ln.Addr().String()
}

// benchTargets returns, for a backend made by newBackend (one per way, so
// that their ports do not share TIME_WAIT slots), the address to connect
// to for each way.
func benchTargets(b *testing.B, handle func(*net.TCPConn)) []struct{ name, addr string } {
	direct := newTCPBackend(b, handle)
	base := newTCPBackend(b, handle)
	viaLB := newTCPBackend(b, handle)
	pool, err := NewPool(tcpServers(b, viaLB.addr)...)
	require.NoError(b, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(b, err)
	_, lbAddr := newTCPTestProxy(b, rr)
	return []struct{ name, addr string }{
		{"direct", direct.addr},
		{"baseline", startBaselineProxy(b, base.addr)},
		{"lb", lbAddr},
	}
}

// sink reads everything, then closes.
func sink(c *net.TCPConn) {
	buf := make([]byte, 256<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// BenchmarkTCPBulk sends 256 MiB on each of 1 or 8 connections at once to
// a server that discards it; an op ends when the server has read it all
// (it closes, the client sees EOF).
func BenchmarkTCPBulk(b *testing.B) {
	const size = 256 << 20
	chunk := make([]byte, 1<<20)
	for _, t := range benchTargets(b, sink) {
		for _, streams := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/streams=%d", t.name, streams), func(b *testing.B) {
				b.SetBytes(int64(size * streams))
				b.ReportAllocs()
				for b.Loop() {
					var wg sync.WaitGroup
					for range streams {
						wg.Go(func() {
							c, err := net.Dial("tcp", t.addr)
							if err != nil {
								b.Error(err)
								return
							}
							defer c.Close()
							for sent := 0; sent < size; sent += len(chunk) {
								if _, err := c.Write(chunk); err != nil {
									b.Error(err)
									return
								}
							}
							_ = c.(*net.TCPConn).CloseWrite()
							_, _ = c.Read(chunk[:1]) // EOF once the server has it all
						})
					}
					wg.Wait()
				}
			})
		}
	}
}

// BenchmarkTCPConnRate: connect, echo 1 KiB, close, one connection after
// the other. Run it with a fixed count (-benchtime 3000x), so that the
// closed connections waiting in TIME_WAIT stay far below the port range.
func BenchmarkTCPConnRate(b *testing.B) {
	msg := make([]byte, 1024)
	got := make([]byte, 1024)
	for _, t := range benchTargets(b, echo) {
		b.Run(t.name, func(b *testing.B) {
			b.ReportAllocs() // the client's, the server's and the proxy's
			for b.Loop() {
				c, err := net.Dial("tcp", t.addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkTCPEchoLatency: a 1 KiB echo on an open connection; it reports
// the median and the 99th percentile of the op's time.
func BenchmarkTCPEchoLatency(b *testing.B) {
	msg := make([]byte, 1024)
	got := make([]byte, 1024)
	for _, t := range benchTargets(b, echo) {
		b.Run(t.name, func(b *testing.B) {
			c, err := net.Dial("tcp", t.addr)
			require.NoError(b, err)
			defer c.Close()
			times := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
				if len(times) < cap(times) {
					times = append(times, time.Since(start))
				}
			}
			slices.Sort(times)
			if n := len(times); n > 0 {
				b.ReportMetric(float64(times[n/2].Nanoseconds())/1e3, "p50-µs")
				b.ReportMetric(float64(times[n*99/100].Nanoseconds())/1e3, "p99-µs")
			}
		})
	}
}

// BenchmarkTCPIdleMemory opens 1,000 connections, each checked with a
// one-byte echo and then left idle, directly and through the proxy, and
// reports the heap and goroutine stacks in use per connection for each
// (client and server included), and their difference: the proxy's cost
// per idle connection. Each op opens and closes all of them.
func BenchmarkTCPIdleMemory(b *testing.B) {
	const n = 1000
	echoByte := func(c *net.TCPConn) {
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}
	targets := benchTargets(b, echoByte)
	perConn := map[string]float64{}
	for b.Loop() {
		for _, t := range []struct{ name, addr string }{targets[0], targets[2]} {
			inUse := func() uint64 {
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				return m.HeapInuse + m.StackInuse
			}
			before := inUse()
			conns := make([]net.Conn, 0, n)
			one := make([]byte, 1)
			for range n {
				c, err := net.Dial("tcp", t.addr)
				if err != nil {
					b.Fatal(err)
				}
				conns = append(conns, c)
				if _, err := c.Write(one); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, one); err != nil {
					b.Fatal(err)
				}
			}
			perConn[t.name] = float64(int64(inUse())-int64(before)) / n
			for _, c := range conns {
				c.Close()
			}
		}
	}
	b.ReportMetric(perConn["direct"], "direct-B/conn")
	b.ReportMetric(perConn["lb"], "lb-B/conn")
	b.ReportMetric(perConn["lb"]-perConn["direct"], "proxy-B/conn")
}
