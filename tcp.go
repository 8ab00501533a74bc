package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrTCPProxyClosed is returned by [TCPProxy.Serve] after a call to
// [TCPProxy.Shutdown] or [TCPProxy.Close].
var ErrTCPProxyClosed = errors.New("lb: TCP proxy closed")

// TCPProxy balances TCP connections over the servers of a [Balancer]: for
// each connection it accepts it picks a server, dials it, and copies bytes
// both ways until both directions have ended. It is layer 4: it never looks
// at the bytes (beyond a PROXY protocol header it was told to accept).
//
// A server is dialled at the host and port of its URL: "tcp://10.0.0.1:5432"
// (see [NewServer]), or an http or https URL, whose port defaults to 80 or
// 443. Handler servers cannot take a TCP connection and are passed over.
//
// Each connection is one request for the balancer: it is in flight on its
// server from Pick until both directions are done, so [LeastConn] and [P2C]
// balance open connections. A balancer with a PickKey(string) method (such
// as [ConsistentHash]) is given the client's IP address as the key; others
// get a request whose RemoteAddr is the client's address. When a dial
// fails, the proxy tries other servers, never one it has tried for this
// connection, up to [WithDialRetries] times. DoneInfo.Duration is the time
// from the pick to the end of the dial: how long the server took to answer,
// which is what latency-aware balancers ([PeakEWMA], [Adaptive]) should
// learn (a connection's life is the client's business: one held open for an
// hour must not make its server look an hour slow). DoneInfo.Err is the dial
// error, or the error that cut the copy short. An error on the client's side
// wraps [context.Canceled], like a client that goes away from a [Proxy], and
// counts nothing against the server; since a failed copy does not say which
// side failed, a reset or broken pipe is put on the client when the kernel
// has ended the client's connection (on Linux, which tells), else on the
// server; on other platforms, as far as the error code tells (ECONNRESET on
// the side read from, EPIPE on the side written to). A connection closed by
// the proxy itself (idle timeout, maximum lifetime, Shutdown) ends with a
// nil error.
//
// When both ends are *net.TCPConn (the listener is a TCP listener), bytes
// move with splice(2) on Linux, without passing through user space.
//
// A TCPProxy is safe for concurrent use; it may serve several listeners.
//
// The zero TCPProxy is not usable: make one with NewTCPProxy (its Serve
// returns an error; its Close and Shutdown do nothing).
type TCPProxy struct {
	bal    Balancer
	o      tcpOptions
	health passiveHealth
	slot   chan struct{} // one token per open connection; nil without a limit

	ctx    context.Context // canceled by Close: ends dials in progress
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	quit      chan struct{} // closed with closed set: Serve stops waiting for a slot
	listeners map[net.Listener]struct{}
	conns     map[*tcpConn]struct{}
	idle      chan struct{} // closed when conns empties after Shutdown
	wg        sync.WaitGroup
}

// A TCPOption configures a [TCPProxy].
type TCPOption func(*tcpOptions) error

type tcpOptions struct {
	dialTimeout time.Duration
	retries     int
	idle        time.Duration
	lifetime    time.Duration
	maxConns    int
	refuse      bool
	sendPP      int // PROXY protocol version sent to servers; 0 for none
	acceptPP    []netip.Prefix
	failures    int
	cooldown    time.Duration
	logger      *slog.Logger
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultDialTimeout is how long a [TCPProxy] waits for a connection to a
// server, unless told otherwise with [WithDialTimeout].
const DefaultDialTimeout = 5 * time.Second

// proxyHeaderTimeout bounds the wait for the PROXY protocol header of a
// trusted peer (see WithAcceptProxyProtocol).
const proxyHeaderTimeout = 5 * time.Second

// WithDialTimeout bounds each dial of a server. The default is
// [DefaultDialTimeout].
func WithDialTimeout(d time.Duration) TCPOption {
	return func(o *tcpOptions) error {
		if d <= 0 {
			return fmt.Errorf("WithDialTimeout: duration %v is not positive", d)
		}
		o.dialTimeout = d
		return nil
	}
}

// WithDialRetries sets how many other servers a connection may be tried on
// after a dial fails. The default is [DefaultRetries]; 0 turns retries off.
func WithDialRetries(n int) TCPOption {
	return func(o *tcpOptions) error {
		if n < 0 {
			return fmt.Errorf("WithDialRetries: negative count %d", n)
		}
		o.retries = n
		return nil
	}
}

// MaxIdleTimeout is the longest idle timeout [WithIdleTimeout] accepts.
const MaxIdleTimeout = time.Duration(1 << 62) // about 146 years

// WithIdleTimeout closes a connection, both sides, when no byte has moved
// either way for d. The proxy checks every d/4, so the connection is closed
// between d and 1.5·d after its last byte. Bytes move in chunks of up to
// 64 KiB: a peer so slow to read that a chunk takes longer than d to go out
// counts as idle too. The default is no idle timeout; d may be up to
// [MaxIdleTimeout].
func WithIdleTimeout(d time.Duration) TCPOption {
	return func(o *tcpOptions) error {
		if d < 0 {
			return fmt.Errorf("WithIdleTimeout: negative duration %v", d)
		}
		if d > MaxIdleTimeout {
			return fmt.Errorf("WithIdleTimeout: duration %v is above the maximum %v", d, MaxIdleTimeout)
		}
		o.idle = d
		return nil
	}
}

// WithMaxLifetime closes a connection, both sides, d after the proxy
// accepted it, busy or not. The default is no limit.
func WithMaxLifetime(d time.Duration) TCPOption {
	return func(o *tcpOptions) error {
		if d < 0 {
			return fmt.Errorf("WithMaxLifetime: negative duration %v", d)
		}
		o.lifetime = d
		return nil
	}
}

// WithMaxConns limits the connections open through the proxy at once, over
// all its listeners, to n. While n are open, the proxy stops accepting:
// each listener holds the one connection it has just accepted, and new
// ones wait in the listener's backlog (the kernel's), until one ends. With
// refuse, it accepts them and closes them at once instead. The default is
// no limit; n must be at least 1. Give [WithIdleTimeout] too: without it,
// clients that open connections and send nothing hold their share of the
// limit for as long as they like.
func WithMaxConns(n int, refuse bool) TCPOption {
	return func(o *tcpOptions) error {
		if n < 1 {
			return fmt.Errorf("WithMaxConns: limit %d is below 1", n)
		}
		o.maxConns, o.refuse = n, refuse
		return nil
	}
}

// WithProxyProtocol makes the proxy begin every connection to a server
// with a PROXY protocol header (HAProxy's format) of version 1 (text) or 2
// (binary), carrying the client's address and the address it connected to,
// so that the server sees the real client. The server must expect the
// header.
func WithProxyProtocol(version int) TCPOption {
	return func(o *tcpOptions) error {
		if version != 1 && version != 2 {
			return fmt.Errorf("WithProxyProtocol: version %d (want 1 or 2)", version)
		}
		o.sendPP = version
		return nil
	}
}

// WithAcceptProxyProtocol makes the proxy read a PROXY protocol header (v1
// or v2) from each connection whose peer is in one of prefixes (a load
// balancer in front), and take the client's address from it: for the
// balancer's key, for the header sent with [WithProxyProtocol], and for
// logs. A trusted peer must send the header within 5 seconds, or the
// connection is closed. Connections from other peers are not read: any
// header they send goes to the server as data.
func WithAcceptProxyProtocol(prefixes ...netip.Prefix) TCPOption {
	return func(o *tcpOptions) error {
		if len(prefixes) == 0 {
			return errors.New("WithAcceptProxyProtocol: no prefix")
		}
		for _, p := range prefixes {
			if !p.IsValid() {
				return fmt.Errorf("WithAcceptProxyProtocol: invalid prefix %v", p)
			}
		}
		o.acceptPP = append(o.acceptPP, prefixes...)
		return nil
	}
}

// WithTCPPassiveHealth ejects a server for cooldown after failures
// consecutive failed dials (a dial that fails for want of the proxy's own
// file descriptors, ephemeral ports or buffers does not count), like [WithPassiveHealth] for a [Proxy] (the
// ejection is the same state of the server, shared by both), and within
// the same cap: at most [DefaultMaxEjectionPercent] of the balancer's pool
// out at once (see [WithMaxEjectionPercent]), and none with a balancer
// that is not a [PoolBalancer]. The defaults are [DefaultFailures] and
// [DefaultCooldown]; failures 0 turns passive health off. failures may be
// up to 2^31-1. A successful dial resets the count.
func WithTCPPassiveHealth(failures int, cooldown time.Duration) TCPOption {
	return func(o *tcpOptions) error {
		if failures < 0 {
			return fmt.Errorf("WithTCPPassiveHealth: negative failure count %d", failures)
		}
		if failures > math.MaxInt32 {
			return fmt.Errorf("WithTCPPassiveHealth: failure count %d is above the maximum %d", failures, math.MaxInt32)
		}
		if failures > 0 && cooldown <= 0 {
			return fmt.Errorf("WithTCPPassiveHealth: cool-down %v is not positive", cooldown)
		}
		o.failures, o.cooldown = failures, cooldown
		return nil
	}
}

// WithTCPLogger sets the logger for dial failures, ejections and accept
// errors. The default is [slog.Default]. Nothing is logged per connection
// that ends normally.
func WithTCPLogger(l *slog.Logger) TCPOption {
	return func(o *tcpOptions) error {
		if l == nil {
			return errors.New("WithTCPLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// NewTCPProxy returns a TCP proxy that balances connections with b.
func NewTCPProxy(b Balancer, opts ...TCPOption) (*TCPProxy, error) {
	if b == nil {
		return nil, errors.New("lb: NewTCPProxy: nil balancer")
	}
	o := tcpOptions{
		dialTimeout: DefaultDialTimeout,
		retries:     DefaultRetries,
		failures:    DefaultFailures,
		cooldown:    DefaultCooldown,
	}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("lb: NewTCPProxy: option %d is nil", i)
		}
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("lb: NewTCPProxy: %w", err)
		}
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.dial == nil {
		d := &net.Dialer{Timeout: o.dialTimeout}
		o.dial = d.DialContext
	}
	p := &TCPProxy{bal: b, o: o, listeners: map[net.Listener]struct{}{}, conns: map[*tcpConn]struct{}{},
		quit: make(chan struct{})}
	p.health = passiveHealth{failures: o.failures, cooldown: o.cooldown,
		maxEjection: DefaultMaxEjectionPercent, bal: b, logger: o.logger}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if o.maxConns > 0 {
		p.slot = make(chan struct{}, o.maxConns)
	}
	return p, nil
}

// Serve accepts connections on ln and proxies each to a server, until ln
// fails or the proxy is shut down; it then returns the error, or
// [ErrTCPProxyClosed]. Serve closes ln when it returns. A temporary accept
// error (too many open files) is logged and retried after a pause.
func (p *TCPProxy) Serve(ln net.Listener) error {
	if ln == nil {
		return errors.New("lb: TCPProxy.Serve: nil listener")
	}
	if p.bal == nil {
		return errors.New("lb: TCPProxy.Serve: the TCPProxy was not made by NewTCPProxy")
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ln.Close()
		return ErrTCPProxyClosed
	}
	p.listeners[ln] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.listeners, ln)
		p.mu.Unlock()
		ln.Close()
	}()
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.isClosed() {
				return ErrTCPProxyClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				p.o.logger.LogAttrs(context.Background(), slog.LevelError, "lb: TCP accept failed; retrying",
					slog.Duration("pause", pause), slog.Any("error", err))
				t := time.NewTimer(pause)
				select {
				case <-t.C:
				case <-p.quit:
					t.Stop()
				}
				continue
			}
			return fmt.Errorf("lb: TCP proxy: accept: %w", err)
		}
		pause = 0
		// A slot is taken once a connection is there, not before: a
		// listener waiting for clients holds none.
		if p.slot != nil && p.o.refuse {
			select {
			case p.slot <- struct{}{}:
			default:
				c.Close()
				continue
			}
		} else if p.slot != nil {
			select {
			case p.slot <- struct{}{}:
			case <-p.quit:
				c.Close()
				return ErrTCPProxyClosed
			}
		}
		if !p.start(c) {
			c.Close()
			if p.slot != nil {
				<-p.slot
			}
			return ErrTCPProxyClosed
		}
	}
}

func (p *TCPProxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// start tracks c and runs it on a goroutine of its own, unless the proxy
// has been shut down.
func (p *TCPProxy) start(c net.Conn) bool {
	tc := &tcpConn{p: p, client: c, start: time.Now()}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.conns[tc] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	go tc.serve()
	return true
}

// finish forgets c once it has ended.
func (p *TCPProxy) finish(c *tcpConn) {
	p.mu.Lock()
	delete(p.conns, c)
	if p.idle != nil && len(p.conns) == 0 {
		close(p.idle)
		p.idle = nil
	}
	p.mu.Unlock()
	if p.slot != nil {
		<-p.slot
	}
	p.wg.Done()
}

// Shutdown stops the proxy: it closes the listeners, so that Serve
// returns, then waits for the open connections to end by themselves. When
// ctx ends first, it closes them, waits for their goroutines to return, and
// returns ctx's error. Once Shutdown returns, no goroutine of the proxy is
// left.
func (p *TCPProxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.stop()
	var idle chan struct{}
	if len(p.conns) > 0 {
		if p.idle == nil {
			p.idle = make(chan struct{})
		}
		idle = p.idle
	}
	p.mu.Unlock()
	var err error
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	p.Close()
	return err
}

// Close stops the proxy at once: it closes the listeners and every open
// connection, and waits for the proxy's goroutines to return.
func (p *TCPProxy) Close() error {
	p.mu.Lock()
	p.stop()
	if p.cancel != nil { // nil in the zero TCPProxy, which has nothing to stop
		p.cancel()
	}
	for c := range p.conns {
		c.abort()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// stop marks the proxy closed and closes its listeners; p.mu is held.
func (p *TCPProxy) stop() {
	if !p.closed {
		p.closed = true
		if p.quit != nil { // nil in the zero TCPProxy
			close(p.quit)
		}
	}
	for ln := range p.listeners {
		ln.Close()
	}
}

// tcpConn is one proxied connection.
type tcpConn struct {
	p      *TCPProxy
	client net.Conn
	start  time.Time

	mu       sync.Mutex
	server   net.Conn // nil until dialled
	aborted  bool     // closed by Close (or by an error): not by the peers
	lastSeen atomic.Int64
}

// abort closes both sides; the copies then end.
func (c *tcpConn) abort() {
	c.mu.Lock()
	c.aborted = true
	srv := c.server
	c.mu.Unlock()
	c.client.Close()
	if srv != nil {
		srv.Close()
	}
}

// serve connects the client to a server, then hands over to relay on a
// goroutine of its own: the dial's deep stack is not kept for the life of
// the connection.
func (c *tcpConn) serve() {
	server, res, took, ok := c.connect()
	if !ok {
		c.client.Close()
		c.p.finish(c)
		return
	}
	go c.relay(server, res, took)
}

// connect reads the PROXY header of a trusted peer, dials a server, and
// sends it the PROXY header if configured.
func (c *tcpConn) connect() (net.Conn, PickResult, time.Duration, bool) {
	p := c.p
	src, dst := c.client.RemoteAddr(), c.client.LocalAddr()
	if len(p.o.acceptPP) > 0 && inPrefixes(p.o.acceptPP, hostOnly(addrString(src))) {
		_ = c.client.SetReadDeadline(time.Now().Add(proxyHeaderTimeout))
		hs, hd, err := readProxyHeader(c.client)
		_ = c.client.SetReadDeadline(time.Time{})
		if err != nil {
			c.mu.Lock()
			aborted := c.aborted
			c.mu.Unlock()
			if !aborted { // else the proxy closed it: no fault of the peer
				p.o.logger.LogAttrs(context.Background(), slog.LevelWarn, "lb: PROXY header from a trusted peer",
					slog.String("peer", addrString(src)), slog.Any("error", err))
			}
			return nil, PickResult{}, 0, false
		}
		if hs != nil {
			src, dst = hs, hd
		}
	}
	server, res, took, ok := c.dial(src)
	if !ok {
		return nil, PickResult{}, 0, false
	}
	c.mu.Lock()
	c.server = server
	aborted := c.aborted
	c.mu.Unlock()
	var err error
	if !aborted {
		err = c.writeHeader(server, src, dst)
	}
	if aborted || err != nil {
		server.Close()
		res.Done(DoneInfo{Err: err, Duration: took})
		return nil, PickResult{}, 0, false
	}
	return server, res, took, true
}

// addrString is a's string, or "" for a connection (of a listener of the
// user's) that does not know its address.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// relay copies both ways until the connection ends, then ends the pick.
func (c *tcpConn) relay(server net.Conn, res PickResult, took time.Duration) {
	defer c.p.finish(c)
	defer c.client.Close()
	defer server.Close()
	err := c.pipe(server)
	c.mu.Lock()
	if c.aborted {
		err = nil // the proxy closed it
	}
	c.mu.Unlock()
	res.Done(DoneInfo{Err: err, Duration: took})
}

// dial picks a server and connects to it, trying others when a dial
// fails.
func (c *tcpConn) dial(client net.Addr) (net.Conn, PickResult, time.Duration, bool) {
	p := c.p
	req := &http.Request{RemoteAddr: addrString(client), Header: http.Header{}, URL: &url.URL{}}
	key := hostOnly(req.RemoteAddr)
	var tried []*Server
	for try := 0; try <= p.o.retries; try++ {
		picked := time.Now()
		res, ok := p.pick(req, key, tried)
		if !ok {
			if try == 0 {
				p.o.logger.LogAttrs(context.Background(), slog.LevelWarn, "lb: TCP connection: no server available",
					slog.String("client", req.RemoteAddr))
			}
			return nil, PickResult{}, 0, false
		}
		s := res.Server
		tried = append(tried, s)
		ctx, cancel := context.WithTimeout(p.ctx, p.o.dialTimeout)
		conn, err := p.o.dial(ctx, "tcp", tcpAddress(s.url))
		cancel()
		if err == nil {
			p.observe(s, DoneInfo{})
			return conn, res, time.Since(picked), true
		}
		if p.ctx.Err() != nil {
			// Closing: the dial was cut short; nothing to learn.
			res.Cancel()
			return nil, PickResult{}, 0, false
		}
		err = fmt.Errorf("lb: TCP dial %s: %w", s.Name(), err)
		if localDialError(err) {
			// The proxy's own shortage (as a flood of clients causes)
			// says nothing about the server: no failure, no ejection.
			res.Cancel()
		} else {
			res.Done(DoneInfo{Err: err, Duration: time.Since(picked)})
			p.observe(s, DoneInfo{Err: err})
		}
		p.o.logger.LogAttrs(context.Background(), slog.LevelWarn, "lb: TCP dial failed",
			slog.String("server", s.Name()), slog.Any("error", err))
	}
	return nil, PickResult{}, 0, false
}

// observe feeds a dial's outcome to passive health.
func (p *TCPProxy) observe(s *Server, info DoneInfo) { p.health.observe(s, info) }

// pickKeyer is a balancer that can pick by key, as [ConsistentHash] does.
type pickKeyer interface {
	PickKey(key string) (PickResult, error)
}

// pick chooses a server the proxy can dial and has not tried: from the
// balancer, a few times, then the least loaded such server of the
// balancer's pool, if it names one (a load-aware balancer may keep
// choosing the server that just failed: it looks idle).
func (p *TCPProxy) pick(req *http.Request, key string, tried []*Server) (PickResult, bool) {
	pick := func() (PickResult, error) { return p.bal.Pick(req) }
	if pk, ok := p.bal.(pickKeyer); ok && key != "" {
		pick = func() (PickResult, error) { return pk.PickKey(key) }
	}
	return pickUntried(p.bal, pick, func(s *Server) bool { return s.url != nil && !serverIn(tried, s) })
}

func serverIn(list []*Server, s *Server) bool {
	for _, t := range list {
		if t == s {
			return true
		}
	}
	return false
}

// tcpAddress is the address a TCP proxy dials for a server's URL.
func tcpAddress(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	switch u.Scheme {
	case "https", "tls":
		return net.JoinHostPort(u.Hostname(), "443")
	default:
		return net.JoinHostPort(u.Hostname(), "80")
	}
}

// writeHeader sends the PROXY protocol header, if configured.
func (c *tcpConn) writeHeader(server net.Conn, src, dst net.Addr) error {
	if c.p.o.sendPP == 0 {
		return nil
	}
	var buf [proxyHeaderMax]byte
	h := appendProxyHeader(buf[:0], c.p.o.sendPP, src, dst)
	if _, err := server.Write(h); err != nil {
		return fmt.Errorf("lb: TCP: writing the PROXY header: %w", err)
	}
	return nil
}

// errExpired ends a copy whose connection the proxy closes: idle or past
// its lifetime.
var errExpired = errors.New("lb: TCP connection expired")

// pipe copies both ways between the client and server until both
// directions end, and returns the first error, if any.
func (c *tcpConn) pipe(server net.Conn) error {
	c.lastSeen.Store(time.Now().UnixNano())
	if c.p.o.lifetime > 0 && c.p.o.idle == 0 {
		end := c.start.Add(c.p.o.lifetime)
		_ = c.client.SetDeadline(end)
		_ = server.SetDeadline(end)
	}
	// A direction that fails closes both sides, which ends the other.
	var first atomic.Pointer[error]
	run := func(dst, src net.Conn, toServer bool) {
		if err := c.copy(dst, src, toServer); err != nil {
			first.CompareAndSwap(nil, &err)
			c.closeBoth(server)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(c.client, server, false)
	}()
	run(server, c.client, true)
	<-done
	if err := first.Load(); err != nil && !errors.Is(*err, errExpired) && !errors.Is(*err, net.ErrClosed) {
		return *err
	}
	return nil
}

func (c *tcpConn) closeBoth(server net.Conn) {
	c.client.Close()
	server.Close()
}

// copy moves bytes from src to dst until src ends, then half-closes dst.
// toServer says which way it goes, to put errors on the right side.
func (c *tcpConn) copy(dst, src net.Conn, toServer bool) error {
	idle := c.p.o.idle
	var end time.Time
	if c.p.o.lifetime > 0 {
		end = c.start.Add(c.p.o.lifetime)
	}
	window := idle / 4
	// With an idle timeout, bytes move a chunk at a time, each under
	// deadlines of its own: a write deadline cannot be moved while a copy
	// is under way, and one over a whole copy (up to a 1 MiB splice pipe)
	// would cut a peer that reads slowly but steadily.
	var chunk *io.LimitedReader
	if idle > 0 {
		chunk = &io.LimitedReader{R: src}
	}
	for {
		var writeBy time.Time
		if idle > 0 {
			now := time.Now()
			readBy := now.Add(window)
			writeBy = now.Add(idle + window)
			if !end.IsZero() {
				readBy, writeBy = earliest(readBy, end), earliest(writeBy, end)
			}
			_ = src.SetReadDeadline(readBy)
			_ = dst.SetWriteDeadline(writeBy)
		}
		var n int64
		var err error
		if idle > 0 {
			chunk.N = tcpIdleChunk
			n, err = copyConn(dst, chunk)
		} else {
			n, err = copyConn(dst, src)
		}
		now := time.Now()
		if n > 0 {
			c.lastSeen.Store(now.UnixNano())
		}
		if err == nil && idle > 0 && chunk.N == 0 {
			continue // a whole chunk: src may have more
		}
		if err == nil {
			// src sent everything: pass its end on.
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			return nil
		}
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		if isTimeout(err) {
			if !end.IsZero() && !now.Before(end) {
				return errExpired
			}
			if idle > 0 {
				if !now.Before(writeBy) || now.Sub(time.Unix(0, c.lastSeen.Load())) >= idle {
					return errExpired
				}
				continue
			}
		}
		return c.blame(err, toServer)
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// tcpIdleChunk is the most a copy moves under one pair of deadlines when
// there is an idle timeout.
const tcpIdleChunk = 64 << 10

// copyConn copies src to dst, with splice when both are TCP connections
// (src possibly within an [io.LimitedReader]).
func copyConn(dst net.Conn, src io.Reader) (int64, error) {
	if d, ok := dst.(*net.TCPConn); ok {
		return d.ReadFrom(src)
	}
	return io.Copy(dst, src)
}

// blame wraps an error of the copy toward the server (toServer) or the
// client, putting it on the side it comes from. The error does not say
// which socket of the copy failed. On Linux the client's socket does: if
// the kernel has ended its connection (a reset), the client did it, else
// the server. Elsewhere, a reset is put on the side read from, a broken
// pipe on the side written to.
func (c *tcpConn) blame(err error, toServer bool) error {
	fromClient, known := tcpGone(c.client)
	if !known {
		fromClient = toServer // the side read from
		if errors.Is(err, syscall.EPIPE) {
			fromClient = !toServer
		}
	}
	if fromClient {
		return fmt.Errorf("lb: TCP: client connection: %w (%w)", context.Canceled, err)
	}
	return fmt.Errorf("lb: TCP: server connection: %w", err)
}

// CheckTCP is a health probe: it returns nil when a TCP connection to s
// (the host and port of its URL, as a [TCPProxy] dials it) succeeds before
// ctx ends, and closes the connection at once. A [HealthChecker] uses it for
// "tcp://host:port" servers; WithCheckFunc(CheckTCP) makes it the probe of
// every server.
func CheckTCP(ctx context.Context, s *Server) error {
	if s.url == nil {
		return fmt.Errorf("lb: TCP probe of %q: a handler server has no address", s.Name())
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", tcpAddress(s.url))
	if err != nil {
		return fmt.Errorf("lb: TCP probe of %q: %w", s.Name(), err)
	}
	return c.Close()
}
