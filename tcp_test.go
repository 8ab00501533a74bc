package lb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tcpBackend is a TCP server on 127.0.0.1 that runs handle on each
// connection it accepts, counting the open ones.
type tcpBackend struct {
	ln   net.Listener
	addr string
	open atomic.Int64
	peak atomic.Int64
	wg   sync.WaitGroup
	mu   sync.Mutex
	cs   map[net.Conn]struct{}
}

func newTCPBackend(t testing.TB, handle func(c *net.TCPConn)) *tcpBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &tcpBackend{ln: ln, addr: ln.Addr().String(), cs: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := b.open.Add(1)
			for p := b.peak.Load(); n > p && !b.peak.CompareAndSwap(p, n); p = b.peak.Load() {
			}
			b.mu.Lock()
			b.cs[c] = struct{}{}
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer func() {
					b.mu.Lock()
					delete(b.cs, c)
					b.mu.Unlock()
					c.Close()
					b.open.Add(-1)
				}()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(b.close)
	return b
}

func (b *tcpBackend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.cs {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// echo copies what it reads back, then closes its write side.
func echo(c *net.TCPConn) {
	_, _ = io.Copy(c, c)
	_ = c.CloseWrite()
}

// tcpServers makes "tcp://" servers for addrs.
func tcpServers(t testing.TB, addrs ...string) []*Server {
	t.Helper()
	out := make([]*Server, len(addrs))
	for i, a := range addrs {
		s, err := NewServer("tcp://" + a)
		require.NoError(t, err)
		out[i] = s
	}
	return out
}

// tcpRoundRobin returns one tcp:// server per address, and a round robin
// over a pool of them.
func tcpRoundRobin(t testing.TB, addrs ...string) ([]*Server, *RoundRobin) {
	t.Helper()
	servers := tcpServers(t, addrs...)
	pool, err := NewPool(servers...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	return servers, rr
}

// refusedAddr returns an address on 127.0.0.1 where nothing listens.
func refusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// serveTCP runs p on a new listener on 127.0.0.1 and returns its address;
// the proxy is closed when the test ends.
func serveTCP(t testing.TB, p *TCPProxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, p.Close())
		assert.ErrorIs(t, <-served, ErrTCPProxyClosed)
	})
	return ln.Addr().String()
}

// doneRecorder wraps a balancer and sends every DoneInfo it sees.
func doneRecorder(b Balancer) (Balancer, <-chan DoneInfo) {
	ch := make(chan DoneInfo, 2048)
	return BalancerFunc(func(r *http.Request) (PickResult, error) {
		res, err := b.Pick(r)
		if err != nil {
			return res, err
		}
		done := res.Done
		res.Done = func(info DoneInfo) {
			done(info)
			if !info.Unused() {
				ch <- info
			}
		}
		return res, nil
	}), ch
}

func newTCPTestProxy(t testing.TB, b Balancer, opts ...TCPOption) (*TCPProxy, string) {
	t.Helper()
	opts = append([]TCPOption{WithTCPLogger(discardLogger())}, opts...)
	p, err := NewTCPProxy(b, opts...)
	require.NoError(t, err)
	return p, serveTCP(t, p)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func dialTCP(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestTCPProxyLargeTransfer(t *testing.T) {
	be := newTCPBackend(t, echo)
	pool, err := NewPool(tcpServers(t, be.addr)...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	_, addr := newTCPTestProxy(t, rr)

	data := randomBytes(16<<20, 1)
	c := dialTCP(t, addr)
	got := make(chan []byte, 1)
	go func() {
		b, err := io.ReadAll(c)
		assert.NoError(t, err)
		got <- b
	}()
	_, err = c.Write(data)
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	require.True(t, bytes.Equal(data, <-got), "echo differs from what was sent")
}

// TestTCPProxyHalfClose: the client sends, closes its write side, and still
// reads the whole answer, which the server writes only after it has seen
// the end of the request.
func TestTCPProxyHalfClose(t *testing.T) {
	be := newTCPBackend(t, func(c *net.TCPConn) {
		req, err := io.ReadAll(c) // to the client's end
		if !assert.NoError(t, err) {
			return
		}
		for range 4 {
			_, _ = c.Write(bytes.ToUpper(req))
		}
	})
	pool, err := NewPool(tcpServers(t, be.addr)...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	_, addr := newTCPTestProxy(t, rr)

	c := dialTCP(t, addr)
	req := bytes.Repeat([]byte("abc"), 100_000)
	_, err = c.Write(req)
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat(bytes.ToUpper(req), 4), got)
}

func TestTCPProxyDialRetry(t *testing.T) {
	be := newTCPBackend(t, echo)
	servers := tcpServers(t, refusedAddr(t), be.addr)
	pool, err := NewPool(servers...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool, WithRotationStart(0)) // the refused one first
	require.NoError(t, err)
	b, dones := doneRecorder(rr)
	_, addr := newTCPTestProxy(t, b)

	c := dialTCP(t, addr)
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, "ping", string(got))

	failed := <-dones
	require.Error(t, failed.Err)
	var op *net.OpError
	require.ErrorAs(t, failed.Err, &op)
	assert.Equal(t, "dial", op.Op)
	ok := <-dones
	require.NoError(t, ok.Err)
	st0, st1 := servers[0].Stats(), servers[1].Stats()
	assert.Equal(t, uint64(1), st0.Failures)
	assert.Equal(t, uint64(1), st0.Requests)
	assert.Equal(t, uint64(0), st1.Failures)
	assert.Equal(t, uint64(1), st1.Requests)
	assert.Zero(t, st0.InFlight+st1.InFlight)
}

// TestTCPProxyDialRetryDistinct: with every server refusing, each is tried
// once and the client's connection is closed.
func TestTCPProxyDialRetryDistinct(t *testing.T) {
	servers := tcpServers(t, refusedAddr(t), refusedAddr(t), refusedAddr(t))
	pool, err := NewPool(servers...)
	require.NoError(t, err)
	lc, err := NewLeastConn(pool, WithRand(rand.New(rand.NewPCG(1, 2)).IntN))
	require.NoError(t, err)
	_, addr := newTCPTestProxy(t, lc, WithDialRetries(10), WithTCPPassiveHealth(0, 0))

	c := dialTCP(t, addr)
	n, err := c.Read(make([]byte, 1))
	require.Zero(t, n)
	require.ErrorIs(t, err, io.EOF)
	// Every attempt has ended before the client's connection is closed.
	for _, s := range servers {
		st := s.Stats()
		assert.Equal(t, uint64(1), st.Requests, s.Name())
		assert.Equal(t, uint64(1), st.Failures, s.Name())
		assert.Zero(t, st.InFlight, s.Name())
	}
}

func TestTCPProxyBackendResets(t *testing.T) {
	be := newTCPBackend(t, func(c *net.TCPConn) {
		_ = c.SetLinger(0) // close sends a reset
	})
	servers, rr := tcpRoundRobin(t, be.addr)
	b, dones := doneRecorder(rr)
	_, addr := newTCPTestProxy(t, b)

	c := dialTCP(t, addr)
	_, err := io.ReadAll(c) // ends with EOF or a reset: the proxy closed it
	_ = err
	info := <-dones
	require.Error(t, info.Err)
	assert.False(t, clientFault(info.Err), "a server's reset is put on the client: %v", info.Err)
	assert.Equal(t, uint64(1), servers[0].Stats().Failures)
	assert.Zero(t, servers[0].InFlight())
}

func TestTCPProxyClientResets(t *testing.T) {
	be := newTCPBackend(t, echo)
	servers, rr := tcpRoundRobin(t, be.addr)
	b, dones := doneRecorder(rr)
	_, addr := newTCPTestProxy(t, b)

	c := dialTCP(t, addr)
	_, err := c.Write([]byte("x"))
	require.NoError(t, err)
	_, err = io.ReadFull(c, make([]byte, 1))
	require.NoError(t, err)
	require.NoError(t, c.SetLinger(0))
	require.NoError(t, c.Close())
	info := <-dones
	if info.Err != nil { // a reset that arrives after the echo's end is no error
		assert.ErrorIs(t, info.Err, context.Canceled)
	}
	assert.Zero(t, servers[0].Stats().Failures)
}

// TestTCPProxyIdleTimeout: a server that never answers; the idle timeout
// closes both sides.
func TestTCPProxyIdleTimeout(t *testing.T) {
	serverSaw := make(chan error, 1)
	be := newTCPBackend(t, func(c *net.TCPConn) {
		_, err := io.ReadAll(c) // never answers; reads until the proxy closes
		serverSaw <- err
	})
	servers, rr := tcpRoundRobin(t, be.addr)
	b, dones := doneRecorder(rr)
	_, addr := newTCPTestProxy(t, b, WithIdleTimeout(50*time.Millisecond))

	c := dialTCP(t, addr)
	_, err := c.Write([]byte("hello?"))
	require.NoError(t, err)
	_, err = io.ReadAll(c) // returns when the proxy closes the client's side
	require.NoError(t, err)
	require.NoError(t, <-serverSaw) // the server's side saw its end
	info := <-dones
	require.NoError(t, info.Err)
	assert.Zero(t, servers[0].InFlight())
}

func TestTCPProxyMaxLifetime(t *testing.T) {
	be := newTCPBackend(t, echo)
	pool, err := NewPool(tcpServers(t, be.addr)...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	b, dones := doneRecorder(rr)
	_, addr := newTCPTestProxy(t, b, WithMaxLifetime(50*time.Millisecond))

	c := dialTCP(t, addr)
	// A busy connection: it still ends at its lifetime.
	go func() {
		for {
			if _, err := c.Write([]byte("tick")); err != nil {
				return
			}
		}
	}()
	_, err = io.Copy(io.Discard, c)
	_ = err // EOF, or a reset if the proxy closed with unread data
	require.NoError(t, (<-dones).Err)
}

func TestTCPProxyInFlight(t *testing.T) {
	be1, be2 := newTCPBackend(t, echo), newTCPBackend(t, echo)
	servers := tcpServers(t, be1.addr, be2.addr)
	pool, err := NewPool(servers...)
	require.NoError(t, err)
	lc, err := NewLeastConn(pool, WithRand(rand.New(rand.NewPCG(3, 4)).IntN))
	require.NoError(t, err)
	b, dones := doneRecorder(lc)
	_, addr := newTCPTestProxy(t, b)

	const n = 6
	conns := make([]*net.TCPConn, n)
	for i := range conns {
		conns[i] = dialTCP(t, addr)
		_, err := conns[i].Write([]byte{byte(i)})
		require.NoError(t, err)
		_, err = io.ReadFull(conns[i], make([]byte, 1)) // connected through
		require.NoError(t, err)
	}
	assert.Equal(t, int64(n), servers[0].InFlight()+servers[1].InFlight())
	assert.Equal(t, int64(n/2), servers[0].InFlight(), "least-conn spreads connections evenly")
	for _, c := range conns {
		require.NoError(t, c.Close())
	}
	for range n {
		info := <-dones
		assert.NoError(t, info.Err)
		assert.Positive(t, info.Duration)
	}
	assert.Zero(t, servers[0].InFlight())
	assert.Zero(t, servers[1].InFlight())
}

// TestTCPProxyPickKey: a hashing balancer gets the client's IP as its key,
// any other a request whose RemoteAddr is the client's address.
func TestTCPProxyPickKey(t *testing.T) {
	be := newTCPBackend(t, echo)
	servers := tcpServers(t, be.addr)
	remote := make(chan string, 1)
	_, addr := newTCPTestProxy(t, BalancerFunc(func(r *http.Request) (PickResult, error) {
		remote <- r.RemoteAddr
		return servers[0].Acquire(), nil
	}))
	c := dialTCP(t, addr)
	assert.Equal(t, c.LocalAddr().String(), <-remote)

	keys := make(chan string, 1)
	_, addr = newTCPTestProxy(t, keyRecorder{keys: keys, s: servers[0]})
	dialTCP(t, addr)
	assert.Equal(t, "127.0.0.1", <-keys)
}

type keyRecorder struct {
	keys chan string
	s    *Server
}

func (k keyRecorder) Pick(*http.Request) (PickResult, error) {
	return PickResult{}, errors.New("Pick called, PickKey expected")
}

func (k keyRecorder) PickKey(key string) (PickResult, error) {
	k.keys <- key
	return k.s.Acquire(), nil
}

// proxyHeaderBackend reads n bytes of header and then everything else.
func proxyHeaderBackend(t *testing.T, n int, got chan<- [2]string) *tcpBackend {
	return newTCPBackend(t, func(c *net.TCPConn) {
		h := make([]byte, n)
		_, err := io.ReadFull(c, h)
		assert.NoError(t, err)
		rest, err := io.ReadAll(c)
		assert.NoError(t, err)
		got <- [2]string{string(h), string(rest)}
	})
}

func TestTCPProxySendsProxyProtocol(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(string(rune('0'+version)), func(t *testing.T) {
			// The test's connection: 127.0.0.1:cport -> 127.0.0.1:pport.
			got := make(chan [2]string, 1)
			// Exact header length: v2 for IPv4 is 28 bytes; v1 is computed
			// once the client's port is known, so the backend reads a line.
			var be *tcpBackend
			if version == 2 {
				be = proxyHeaderBackend(t, 28, got)
			} else {
				be = newTCPBackend(t, func(c *net.TCPConn) {
					all, err := io.ReadAll(c)
					assert.NoError(t, err)
					h, rest, _ := strings.Cut(string(all), "\r\n")
					got <- [2]string{h + "\r\n", rest}
				})
			}
			pool, err := NewPool(tcpServers(t, be.addr)...)
			require.NoError(t, err)
			rr, err := NewRoundRobin(pool)
			require.NoError(t, err)
			_, addr := newTCPTestProxy(t, rr, WithProxyProtocol(version))

			c := dialTCP(t, addr)
			_, err = c.Write([]byte("payload"))
			require.NoError(t, err)
			require.NoError(t, c.CloseWrite())
			cl := c.LocalAddr().(*net.TCPAddr)
			px := c.RemoteAddr().(*net.TCPAddr)
			var want string
			if version == 1 {
				want = "PROXY TCP4 127.0.0.1 127.0.0.1 " + strconv.Itoa(cl.Port) + " " + strconv.Itoa(px.Port) + "\r\n"
			} else {
				want = "\r\n\r\n\x00\r\nQUIT\n" + "\x21\x11\x00\x0c" +
					"\x7f\x00\x00\x01" + "\x7f\x00\x00\x01" +
					string([]byte{byte(cl.Port >> 8), byte(cl.Port)}) +
					string([]byte{byte(px.Port >> 8), byte(px.Port)})
			}
			h := <-got
			assert.Equal(t, want, h[0])
			assert.Equal(t, "payload", h[1])
		})
	}
}

// TestTCPProxyAcceptsProxyProtocol: a trusted peer's v1 header gives the
// client address, which goes on to the server in a v2 header.
func TestTCPProxyAcceptsProxyProtocol(t *testing.T) {
	got := make(chan [2]string, 1)
	be := proxyHeaderBackend(t, 28, got)
	pool, err := NewPool(tcpServers(t, be.addr)...)
	require.NoError(t, err)
	keys := make(chan string, 1)
	_, addr := newTCPTestProxy(t, keyRecorder{keys: keys, s: pool.Servers()[0]},
		WithProxyProtocol(2), WithAcceptProxyProtocol(netip.MustParsePrefix("127.0.0.0/8")))

	c := dialTCP(t, addr)
	_, err = c.Write([]byte("PROXY TCP4 203.0.113.7 198.51.100.1 4242 443\r\npayload"))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	assert.Equal(t, "203.0.113.7", <-keys)
	h := <-got
	want := "\r\n\r\n\x00\r\nQUIT\n" + "\x21\x11\x00\x0c" +
		"\xcb\x00\x71\x07" + "\xc6\x33\x64\x01" + "\x10\x92" + "\x01\xbb"
	assert.Equal(t, want, h[0])
	assert.Equal(t, "payload", h[1])
}

// TestTCPProxyRejectsBadProxyHeader: a trusted peer without a valid header
// is closed, and no server is picked.
func TestTCPProxyRejectsBadProxyHeader(t *testing.T) {
	be := newTCPBackend(t, echo)
	servers, rr := tcpRoundRobin(t, be.addr)
	_, addr := newTCPTestProxy(t, rr, WithAcceptProxyProtocol(netip.MustParsePrefix("127.0.0.0/8")))

	c := dialTCP(t, addr)
	_, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	_, err = io.ReadAll(c)
	_ = err // EOF or reset
	assert.Zero(t, servers[0].Stats().Requests)
}

func TestTCPProxyShutdown(t *testing.T) {
	be := newTCPBackend(t, echo)
	servers, rr := tcpRoundRobin(t, be.addr)

	t.Run("waits for connections", func(t *testing.T) {
		p, err := NewTCPProxy(rr, WithTCPLogger(discardLogger()))
		require.NoError(t, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		served := make(chan error, 1)
		go func() { served <- p.Serve(ln) }()
		c := dialTCP(t, ln.Addr().String())
		_, err = c.Write([]byte("a"))
		require.NoError(t, err)
		_, err = io.ReadFull(c, make([]byte, 1))
		require.NoError(t, err)

		shut := make(chan error, 1)
		go func() { shut <- p.Shutdown(context.Background()) }()
		require.ErrorIs(t, <-served, ErrTCPProxyClosed)
		// The open connection still works.
		_, err = c.Write([]byte("b"))
		require.NoError(t, err)
		_, err = io.ReadFull(c, make([]byte, 1))
		require.NoError(t, err)
		require.NoError(t, c.CloseWrite())
		_, err = io.ReadAll(c)
		require.NoError(t, err)
		require.NoError(t, <-shut)
		assert.Zero(t, proxyGoroutines(t))
		assert.Zero(t, servers[0].InFlight())
		_, err = net.Dial("tcp", ln.Addr().String())
		assert.Error(t, err, "the listener is closed")
	})

	t.Run("closes them when ctx ends", func(t *testing.T) {
		p, err := NewTCPProxy(rr, WithTCPLogger(discardLogger()))
		require.NoError(t, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		served := make(chan error, 1)
		go func() { served <- p.Serve(ln) }()
		conns := make([]*net.TCPConn, 3)
		for i := range conns {
			conns[i] = dialTCP(t, ln.Addr().String())
			_, err = conns[i].Write([]byte("a"))
			require.NoError(t, err)
			_, err = io.ReadFull(conns[i], make([]byte, 1))
			require.NoError(t, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, p.Shutdown(ctx), context.Canceled)
		require.ErrorIs(t, <-served, ErrTCPProxyClosed)
		for _, c := range conns {
			_, err := io.ReadAll(c)
			require.NoError(t, err) // closed by the proxy
		}
		assert.Zero(t, proxyGoroutines(t))
		assert.Zero(t, servers[0].InFlight())
	})
}

// proxyGoroutines counts the goroutines running the TCP proxy's code. A
// goroutine that has just signalled its end to Shutdown (wg.Done) may
// still be returning: it yields to them, a bounded number of times, until
// none is left.
func proxyGoroutines(t *testing.T) int {
	t.Helper()
	n := countProxyGoroutines(t)
	for i := 0; n > 0 && i < 1000; i++ {
		runtime.Gosched()
		n = countProxyGoroutines(t)
	}
	return n
}

func countProxyGoroutines(t *testing.T) int {
	var buf bytes.Buffer
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&buf, 2))
	n := 0
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "lb.(*tcpConn)") || strings.Contains(g, "lb.(*TCPProxy)") {
			n++
		}
	}
	return n
}

// TestTCPProxyMaxConns: 1,000 clients at once through a proxy that keeps at
// most 100 connections open; every one is served.
func TestTCPProxyMaxConns(t *testing.T) {
	be := newTCPBackend(t, echo)
	servers, rr := tcpRoundRobin(t, be.addr)
	// The proxy's own count of open connections: picks not yet done. (The
	// backend's count lags: it sees a close only when it reads the EOF.)
	var open, peak atomic.Int64
	counting := BalancerFunc(func(r *http.Request) (PickResult, error) {
		res, err := rr.Pick(r)
		if err != nil {
			return res, err
		}
		n := open.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		done := res.Done
		res.Done = func(info DoneInfo) {
			open.Add(-1)
			done(info)
		}
		return res, nil
	})
	_, addr := newTCPTestProxy(t, counting, WithMaxConns(100, false))

	const clients = 1000
	var wg sync.WaitGroup
	var served atomic.Int64
	msg := bytes.Repeat([]byte("m"), 1024)
	for i := range clients {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if !assert.NoError(t, err) {
				return
			}
			defer c.Close()
			m := append([]byte{byte(i)}, msg...)
			if _, err := c.Write(m); !assert.NoError(t, err) {
				return
			}
			got := make([]byte, len(m))
			if _, err := io.ReadFull(c, got); assert.NoError(t, err) && assert.Equal(t, m, got) {
				served.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(clients), served.Load())
	assert.LessOrEqual(t, peak.Load(), int64(100))
	assert.Positive(t, be.peak.Load())
	st := servers[0].Stats() // one snapshot: both figures from one word
	assert.Equal(t, uint64(clients), st.Requests+uint64(st.InFlight))
}

// TestTCPProxyMaxConnsRefuse: over the limit, new connections are closed
// at once.
func TestTCPProxyMaxConnsRefuse(t *testing.T) {
	be := newTCPBackend(t, echo)
	servers, rr := tcpRoundRobin(t, be.addr)
	_, addr := newTCPTestProxy(t, rr, WithMaxConns(2, true))

	held := []*net.TCPConn{dialTCP(t, addr), dialTCP(t, addr)}
	for _, c := range held {
		_, err := c.Write([]byte("x"))
		require.NoError(t, err)
		_, err = io.ReadFull(c, make([]byte, 1))
		require.NoError(t, err)
	}
	over := dialTCP(t, addr)
	_, err := io.ReadAll(over)
	_ = err // EOF or reset: refused
	assert.Equal(t, int64(2), servers[0].InFlight())
}

func TestNewTCPProxyErrors(t *testing.T) {
	s := tcpServers(t, "127.0.0.1:1")
	pool, err := NewPool(s...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	for _, tc := range []struct {
		opt  TCPOption
		want string
	}{
		{WithDialTimeout(0), "WithDialTimeout: duration 0s is not positive"},
		{WithDialRetries(-1), "WithDialRetries: negative count -1"},
		{WithIdleTimeout(-time.Second), "WithIdleTimeout: negative duration -1s"},
		{WithMaxLifetime(-time.Second), "WithMaxLifetime: negative duration -1s"},
		{WithMaxConns(0, false), "WithMaxConns: limit 0 is below 1"},
		{WithProxyProtocol(3), "WithProxyProtocol: version 3 (want 1 or 2)"},
		{WithAcceptProxyProtocol(), "WithAcceptProxyProtocol: no prefix"},
		{WithTCPPassiveHealth(-1, time.Second), "WithTCPPassiveHealth: negative failure count -1"},
		{WithTCPPassiveHealth(1, 0), "WithTCPPassiveHealth: cool-down 0s is not positive"},
		{WithTCPLogger(nil), "WithTCPLogger: nil logger"},
		{nil, "option 0 is nil"},
	} {
		_, err := NewTCPProxy(rr, tc.opt)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
		assert.True(t, strings.HasPrefix(err.Error(), "lb: NewTCPProxy: "), err.Error())
	}
	_, err = NewTCPProxy(nil)
	assert.EqualError(t, err, "lb: NewTCPProxy: nil balancer")
	p, err := NewTCPProxy(rr)
	require.NoError(t, err)
	assert.EqualError(t, p.Serve(nil), "lb: TCPProxy.Serve: nil listener")
	require.NoError(t, p.Close())
}

func TestNewServerTCP(t *testing.T) {
	for _, raw := range []string{"tcp://127.0.0.1", "tcp://db:5432/x", "tcp://u:p@db:5432", "tcp://db:5432?a=b"} {
		_, err := NewServer(raw)
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), "a tcp URL is tcp://host:port")
		assert.NotContains(t, err.Error(), ":p@", "user info is not shown")
	}
	s, err := NewServer("tcp://db.internal:5432")
	require.NoError(t, err)
	assert.Equal(t, "tcp://db.internal:5432", s.Name())
	assert.Equal(t, "db.internal:5432", tcpAddress(s.url))
}

// TestTCPPassiveHealth: failed dials eject a server, as transport errors do
// for the HTTP proxy.
func TestTCPPassiveHealth(t *testing.T) {
	be := newTCPBackend(t, echo)
	servers := tcpServers(t, refusedAddr(t), be.addr)
	pool, err := NewPool(servers...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool, WithRotationStart(0))
	require.NoError(t, err)
	_, addr := newTCPTestProxy(t, rr, WithTCPPassiveHealth(2, time.Hour))

	for range 4 { // round robin: the refused server comes first twice
		c := dialTCP(t, addr)
		_, err := c.Write([]byte("x"))
		require.NoError(t, err)
		_, err = io.ReadFull(c, make([]byte, 1))
		require.NoError(t, err)
		require.NoError(t, c.Close())
	}
	assert.True(t, servers[0].Ejected())
	assert.False(t, servers[1].Ejected())
}

// TestHTTPProxyTCPServer: the HTTP proxy cannot speak to a tcp:// server;
// it fails cleanly with 502.
func TestHTTPProxyTCPServer(t *testing.T) {
	servers, rr := tcpRoundRobin(t, "127.0.0.1:1")
	p, err := NewProxy(rr, WithProxyLogger(discardLogger()))
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, http.StatusBadGateway, rec.Code)
	assert.Zero(t, servers[0].InFlight())
}

// TestTCPProxyShutdownAtLimit: Serve returns on Shutdown even while it
// waits for a free slot.
func TestTCPProxyShutdownAtLimit(t *testing.T) {
	be := newTCPBackend(t, echo)
	pool, err := NewPool(tcpServers(t, be.addr)...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	p, err := NewTCPProxy(rr, WithMaxConns(1, false), WithTCPLogger(discardLogger()))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	held := dialTCP(t, ln.Addr().String())
	_, err = held.Write([]byte("x"))
	require.NoError(t, err)
	_, err = io.ReadFull(held, make([]byte, 1))
	require.NoError(t, err)

	shut := make(chan error, 1)
	go func() { shut <- p.Shutdown(context.Background()) }()
	require.ErrorIs(t, <-served, ErrTCPProxyClosed) // while the connection is open
	require.NoError(t, held.Close())
	require.NoError(t, <-shut)
	assert.Zero(t, proxyGoroutines(t))
}

// TestTCPProxySkipsHandlerServers: an in-process handler server cannot
// take a TCP connection; the proxy passes over it.
func TestTCPProxySkipsHandlerServers(t *testing.T) {
	be := newTCPBackend(t, echo)
	h, err := NewHandlerServer("handler", http.NotFoundHandler())
	require.NoError(t, err)
	servers := append([]*Server{h}, tcpServers(t, be.addr)...)
	pool, err := NewPool(servers...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool, WithRotationStart(0)) // the handler server first
	require.NoError(t, err)
	_, addr := newTCPTestProxy(t, rr)

	c := dialTCP(t, addr)
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(got))
	assert.Zero(t, h.Stats().Requests)
	assert.Zero(t, h.InFlight())
}
