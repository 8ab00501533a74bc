package lb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTCPProxyBalancerReturnsNothing: a custom balancer that returns no
// server (or no Done) and no error, as one that passes on a failed
// Server.Acquire does, gets the connection closed, as the HTTP proxy
// answers 503; the proxy does not panic.
func TestTCPProxyBalancerReturnsNothing(t *testing.T) {
	servers := tcpServers(t, "127.0.0.1:1")
	for name, res := range map[string]PickResult{
		"no server and no Done": {},
		"no Done":               {Server: servers[0]},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := NewTCPProxy(BalancerFunc(func(*http.Request) (PickResult, error) { return res, nil }),
				WithTCPLogger(discardLogger()))
			require.NoError(t, err)
			defer p.Close()
			req := &http.Request{RemoteAddr: "127.0.0.1:1234", Header: http.Header{}}
			require.NotPanics(t, func() {
				_, ok := p.pick(req, "127.0.0.1", nil)
				assert.False(t, ok)
			})
		})
	}
}

// TestTCPProxyFallbackDrainRace: the fallback pick (the least loaded
// untried server of the pool) may find its server draining by the time it
// counts it; Acquire then returns no server, which pick must not hand on
// as a server to dial. The drain flag flips on another goroutine, so the
// race is hit by chance: a bounded number of tries.
func TestTCPProxyFallbackDrainRace(t *testing.T) {
	h, err := NewHandlerServer("handler", http.NotFoundHandler())
	require.NoError(t, err)
	a := tcpServers(t, "127.0.0.1:1")[0]
	pool, err := NewPool(h, a)
	require.NoError(t, err)
	// The balancer only ever names the handler server, which the proxy
	// cannot use: every pick ends in the fallback.
	b := poolBalancerFunc{pool: pool, f: func(*http.Request) (PickResult, error) { return h.Acquire(), nil }}
	p, err := NewTCPProxy(b, WithTCPLogger(discardLogger()))
	require.NoError(t, err)
	defer p.Close()

	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		for {
			select {
			case <-stop:
				a.clearFlag(flagDraining)
				return
			default:
				a.setFlag(flagDraining)
				a.clearFlag(flagDraining)
			}
		}
	}()
	req := &http.Request{RemoteAddr: "127.0.0.1:1234", Header: http.Header{}}
	var bad int
	for i := 0; i < 200_000 && bad == 0; i++ {
		res, ok := p.pick(req, "", nil)
		if !ok {
			continue
		}
		if res.Server == nil {
			bad++
			continue
		}
		res.Cancel()
	}
	close(stop)
	<-flipped
	assert.Zero(t, bad, "pick reported a server and returned none")
	assert.Zero(t, a.InFlight())
	assert.Zero(t, h.InFlight())
}

// TestWithTCPPassiveHealthTooManyFailures: a failure count above what the
// server's counter holds is an error naming it, as for WithPassiveHealth,
// rather than a count cut to 32 bits (2^32 would eject at the first
// failure).
func TestWithTCPPassiveHealthTooManyFailures(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("int is 32 bits")
	}
	big := math.MaxInt32
	big++ // 2^31: int has 64 bits
	_, err := NewTCPProxy(BalancerFunc(nil), WithTCPPassiveHealth(big, time.Second))
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprint(big))
}

// TestWithIdleTimeoutTooLong: an idle timeout so long that the proxy's
// deadline arithmetic (the timeout plus a quarter of it) would overflow is
// an error naming it; it used to put every write deadline in the past, so
// that each connection was cut at its first byte.
func TestWithIdleTimeoutTooLong(t *testing.T) {
	_, err := NewTCPProxy(BalancerFunc(nil), WithIdleTimeout(math.MaxInt64))
	require.Error(t, err)
	assert.Contains(t, err.Error(), time.Duration(math.MaxInt64).String())
	_, err = NewTCPProxy(BalancerFunc(nil), WithIdleTimeout(MaxIdleTimeout))
	require.NoError(t, err)
}

// withTCPDial replaces the proxy's dialer.
func withTCPDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) TCPOption {
	return func(o *tcpOptions) error { o.dial = dial; return nil }
}

// TestTCPProxyLocalDialErrors: a dial that fails for want of a local
// resource (file descriptors, ephemeral ports, buffers), as a flood of
// client connections causes, says nothing about the server: it is neither
// ejected nor charged with a failure, and its count returns to zero. The
// connection is still tried elsewhere.
func TestTCPProxyLocalDialErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.EADDRNOTAVAIL, syscall.ENOBUFS} {
		t.Run(errno.Error(), func(t *testing.T) {
			be := newTCPBackend(t, echo)
			servers := tcpServers(t, refusedAddr(t), be.addr)
			pool, err := NewPool(servers...)
			require.NoError(t, err)
			rr, err := NewRoundRobin(pool, WithRotationStart(0))
			require.NoError(t, err)
			var d net.Dialer
			var calls atomic.Int64
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				if calls.Add(1) == 1 {
					return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("socket", errno)}
				}
				return d.DialContext(ctx, network, addr)
			}
			_, addr := newTCPTestProxy(t, rr, WithTCPPassiveHealth(1, time.Hour), withTCPDial(dial))

			c := dialTCP(t, addr)
			_, err = c.Write([]byte("ping"))
			require.NoError(t, err)
			require.NoError(t, c.CloseWrite())
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			assert.Equal(t, "ping", string(got), "tried on the other server")
			assert.False(t, servers[0].Ejected(), "ejected for a local error")
			assert.Zero(t, servers[0].Stats().Failures)
			assert.Zero(t, servers[0].InFlight())
		})
	}
}

// smallSendBuffer is a TCP listener whose connections have a small send
// buffer, so that a slow reader holds back the proxy's writes soon.
type smallSendBuffer struct{ net.Listener }

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		_ = c.(*net.TCPConn).SetWriteBuffer(64 << 10)
	}
	return c, err
}

// TestTCPProxyIdleTimeoutSlowReader: a client that reads a large answer
// slowly but without pause is not idle: bytes move every few milliseconds,
// far within the idle timeout. The proxy used to give each write a
// deadline of the idle timeout (and a quarter) from the start of a copy of
// up to 1 MiB (a splice pipe), and cut such a client as soon as a
// megabyte took longer than that to drain.
func TestTCPProxyIdleTimeoutSlowReader(t *testing.T) {
	const size = 4 << 20
	data := randomBytes(size, 7)
	be := newTCPBackend(t, func(c *net.TCPConn) {
		_, _ = c.Write(data)
	})
	pool, err := NewPool(tcpServers(t, be.addr)...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	b, dones := doneRecorder(rr)
	p, err := NewTCPProxy(b, WithIdleTimeout(200*time.Millisecond), WithTCPLogger(discardLogger()))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = p.Serve(smallSendBuffer{ln}) }()
	t.Cleanup(func() { p.Close() })

	c := dialTCP(t, ln.Addr().String())
	var got []byte
	buf := make([]byte, 4<<10)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
		time.Sleep(2 * time.Millisecond) // a slow reader: pacing, not waiting for a state
	}
	assert.Equal(t, size, len(got), "the proxy cut a client that was reading")
	assert.True(t, bytes.Equal(data, got))
	require.NoError(t, (<-dones).Err)
}

// TestTCPProxyResetBlame: a reset is put on the side that sent it, whichever
// direction of the copy meets it. A client that stops reading a stream and
// resets used to be put on the server about half the time (the write to the
// client fails with ECONNRESET, which was taken for the server's read), so
// that any client could charge a server with failures; and a server that
// resets while the client uploads was put on the client.
func TestTCPProxyResetBlame(t *testing.T) {
	chunk := make([]byte, 64<<10)
	t.Run("client resets a download", func(t *testing.T) {
		be := newTCPBackend(t, func(c *net.TCPConn) {
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		})
		servers, rr := tcpRoundRobin(t, be.addr)
		b, dones := doneRecorder(rr)
		_, addr := newTCPTestProxy(t, b)
		for range 20 {
			c := dialTCP(t, addr)
			_, err := c.Read(make([]byte, 1)) // the stream has begun; the client reads no more
			require.NoError(t, err)
			require.NoError(t, c.SetLinger(0))
			require.NoError(t, c.Close())
			if info := <-dones; info.Err != nil {
				assert.ErrorIs(t, info.Err, context.Canceled)
			}
		}
		assert.Zero(t, servers[0].Stats().Failures)
	})
	t.Run("server resets an upload", func(t *testing.T) {
		be := newTCPBackend(t, func(c *net.TCPConn) {
			_, _ = io.ReadFull(c, make([]byte, 1))
			_ = c.SetLinger(0) // close sends a reset
		})
		_, rr := tcpRoundRobin(t, be.addr)
		b, dones := doneRecorder(rr)
		_, addr := newTCPTestProxy(t, b)
		for range 20 {
			c := dialTCP(t, addr)
			for {
				if _, err := c.Write(chunk); err != nil {
					break // the proxy closed the connection
				}
			}
			info := <-dones
			require.Error(t, info.Err)
			assert.False(t, clientFault(info.Err), "a server's reset is put on the client: %v", info.Err)
		}
	})
}

// acceptSignal is a listener that says when Accept is called.
type acceptSignal struct {
	net.Listener
	calls chan<- struct{}
}

func (l acceptSignal) Accept() (net.Conn, error) {
	select {
	case l.calls <- struct{}{}:
	default:
	}
	return l.Listener.Accept()
}

// TestTCPProxyMaxConnsListeners: the limit is over all listeners, and a
// listener with no client holds none of it. Serve used to take a slot
// before it accepted, so that with a limit of 1 an idle listener kept the
// only slot and clients of another were never served.
func TestTCPProxyMaxConnsListeners(t *testing.T) {
	be := newTCPBackend(t, echo)
	pool, err := NewPool(tcpServers(t, be.addr)...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	p, err := NewTCPProxy(rr, WithMaxConns(1, false), WithTCPLogger(discardLogger()))
	require.NoError(t, err)
	idle, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 2)
	accepting := make(chan struct{}, 1)
	go func() { served <- p.Serve(acceptSignal{idle, accepting}) }()
	<-accepting // the idle listener's Serve waits in Accept
	go func() { served <- p.Serve(busy) }()

	for range 3 {
		c := dialTCP(t, busy.Addr().String())
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second))) // a failure, not a measure
		_, err = c.Write([]byte("ping"))
		require.NoError(t, err)
		require.NoError(t, c.CloseWrite())
		got, err := io.ReadAll(c)
		require.NoError(t, err, "the client of the second listener was not served")
		require.Equal(t, "ping", string(got))
		require.NoError(t, c.Close())
	}
	require.NoError(t, p.Shutdown(context.Background()))
	require.ErrorIs(t, <-served, ErrTCPProxyClosed)
	require.ErrorIs(t, <-served, ErrTCPProxyClosed)
}

// noAddrConn is a connection that does not know its addresses, as some
// wrapped or in-memory connections do not.
type noAddrConn struct{ net.Conn }

func (noAddrConn) RemoteAddr() net.Addr { return nil }
func (noAddrConn) LocalAddr() net.Addr  { return nil }

// noAddrListener hands out noAddrConns.
type noAddrListener struct{ net.Listener }

func (l noAddrListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return noAddrConn{c}, nil
}

// TestTCPProxyConnWithoutAddresses: a listener of the user's whose
// connections have no addresses gets them proxied (with an UNKNOWN PROXY
// header) rather than a panic that ends the program.
func TestTCPProxyConnWithoutAddresses(t *testing.T) {
	got := make(chan [2]string, 1)
	be := proxyHeaderBackend(t, len("PROXY UNKNOWN\r\n"), got)
	pool, err := NewPool(tcpServers(t, be.addr)...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	p, err := NewTCPProxy(rr, WithProxyProtocol(1), WithAcceptProxyProtocol(netip.MustParsePrefix("127.0.0.0/8")),
		WithTCPLogger(discardLogger()))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = p.Serve(noAddrListener{ln}) }()
	t.Cleanup(func() { p.Close() })

	c := dialTCP(t, ln.Addr().String())
	_, err = c.Write([]byte("payload"))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	assert.Equal(t, [2]string{"PROXY UNKNOWN\r\n", "payload"}, <-got)
}

// TestTCPProxyCloseDuringProxyHeader: closing the proxy while a trusted
// peer's PROXY header is awaited is no fault of the peer: nothing is
// logged as a warning.
func TestTCPProxyCloseDuringProxyHeader(t *testing.T) {
	be := newTCPBackend(t, echo)
	pool, err := NewPool(tcpServers(t, be.addr)...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	logs := &logRecorder{}
	p, err := NewTCPProxy(rr, WithAcceptProxyProtocol(netip.MustParsePrefix("127.0.0.0/8")),
		WithTCPLogger(slog.New(logs)))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()

	dialTCP(t, ln.Addr().String()) // sends no header
	require.Eventually(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.conns) == 1
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, p.Close())
	require.ErrorIs(t, <-served, ErrTCPProxyClosed)
	assert.Empty(t, logs.messages(slog.LevelWarn))
}
