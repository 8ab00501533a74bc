package lb

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testDNS is a DNS server on 127.0.0.1 (UDP and TCP on one port) that
// answers from records the test sets, or fails as it is told to.
type testDNS struct {
	addr string

	mu    sync.Mutex
	a     map[string][]string   // name → IPv4 and IPv6 addresses
	srv   map[string][]*dns.SRV // name → SRV records
	rcode map[string]int        // name → forced response code
	// silent drops every query: the server has gone quiet.
	silent bool

	udp, tcp atomic.Int64 // queries answered, by transport
}

// newTestDNS starts a testDNS; it stops when the test ends.
func newTestDNS(t testing.TB) *testDNS {
	t.Helper()
	d := &testDNS{a: map[string][]string{}, srv: map[string][]*dns.SRV{}, rcode: map[string]int{}}
	var pc net.PacketConn
	var ln net.Listener
	for range 20 { // one port for both transports
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	require.NotNil(t, pc, "no port free for both UDP and TCP")
	d.addr = pc.LocalAddr().String()
	servers := []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(d.serve)},
		{Listener: ln, Handler: dns.HandlerFunc(d.serve)},
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		wg.Go(func() { _ = s.ActivateAndServe() })
		<-started
	}
	t.Cleanup(func() {
		for _, s := range servers {
			_ = s.Shutdown()
		}
		wg.Wait()
	})
	return d
}

// resolver returns a pure-Go resolver that queries d, whatever the
// system's configuration.
func (d *testDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, d.addr)
	}}
}

// setA sets the addresses of name.
func (d *testDNS) setA(name string, addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.a[dns.Fqdn(name)] = addrs
}

// setSRV sets the SRV records of name; each is "priority weight port target".
func (d *testDNS) setSRV(t testing.TB, name string, records ...string) {
	t.Helper()
	var rrs []*dns.SRV
	for _, r := range records {
		rr, err := dns.NewRR(dns.Fqdn(name) + " 30 IN SRV " + r)
		require.NoError(t, err)
		rrs = append(rrs, rr.(*dns.SRV))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srv[dns.Fqdn(name)] = rrs
}

// setRcode makes every query of name fail with rcode (dns.RcodeSuccess:
// answer again).
func (d *testDNS) setRcode(name string, rcode int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rcode[dns.Fqdn(name)] = rcode
}

func (d *testDNS) setSilent(silent bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.silent = silent
}

func (d *testDNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.silent || len(r.Question) != 1 {
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	m := new(dns.Msg)
	if rc, ok := d.rcode[name]; ok && rc != dns.RcodeSuccess {
		m.SetRcode(r, rc)
		_ = w.WriteMsg(m)
		return
	}
	m.SetReply(r)
	m.Authoritative = true
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 30}
	}
	_, hasA := d.a[name]
	_, hasSRV := d.srv[name]
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		for _, s := range d.a[name] {
			ip := net.ParseIP(s)
			switch {
			case ip.To4() != nil && q.Qtype == dns.TypeA:
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: ip.To4()})
			case ip.To4() == nil && q.Qtype == dns.TypeAAAA:
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: ip})
			}
		}
	case dns.TypeSRV:
		for _, rr := range d.srv[name] {
			m.Answer = append(m.Answer, rr)
		}
	}
	if !hasA && !hasSRV {
		m.Rcode = dns.RcodeNameError
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size) // sets TC when records had to go: the client asks again over TCP
		d.udp.Add(1)
	} else {
		d.tcp.Add(1)
	}
	_ = w.WriteMsg(m)
}

// dnsWatch is a WatchDNS run by a test: lookups happen only when the test
// asks (refresh), unless the test gives a timer source of its own.
type dnsWatch struct {
	t       testing.TB
	lookup  chan struct{}
	results chan error
	stopped chan struct{}
	cancel  context.CancelFunc
}

// testHooks returns the option that wires a watch to the test.
func testHooks(lookup <-chan struct{}, done func(error), after func(time.Duration) <-chan time.Time, reapplied func()) DNSOption {
	return func(o *dnsOptions) error {
		o.lookup, o.done, o.reapplied = lookup, done, reapplied
		if after != nil {
			o.after = after
		}
		return nil
	}
}

// startWatch runs WatchDNS(pool, name) with the test's DNS server, and
// returns once its first lookup has ended, with that lookup's error.
func startWatch(t testing.TB, d *testDNS, pool *Pool, name string, opts ...DNSOption) (*dnsWatch, error) {
	t.Helper()
	return startWatchAfter(t, d, pool, name, func(time.Duration) <-chan time.Time { return nil }, nil, opts...)
}

func startWatchAfter(t testing.TB, d *testDNS, pool *Pool, name string, after func(time.Duration) <-chan time.Time, reapplied func(), opts ...DNSOption) (*dnsWatch, error) {
	t.Helper()
	w := &dnsWatch{t: t, lookup: make(chan struct{}), results: make(chan error), stopped: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	opts = append([]DNSOption{WithDNSResolver(d.resolver()), WithDNSTimeout(10 * time.Second), WithDNSLogger(slog.New(slog.DiscardHandler))}, opts...)
	done := func(err error) {
		select {
		case w.results <- err:
		case <-ctx.Done():
		}
	}
	opts = append(opts, testHooks(w.lookup, done, after, reapplied))
	go func() {
		defer close(w.stopped)
		assert.NoError(t, WatchDNS(ctx, pool, name, opts...))
	}()
	t.Cleanup(w.stop)
	return w, <-w.results
}

// refresh asks for a lookup and returns its error once it is applied.
func (w *dnsWatch) refresh() error {
	w.t.Helper()
	w.lookup <- struct{}{}
	return <-w.results
}

// stop ends the watch and waits for WatchDNS to return.
func (w *dnsWatch) stop() {
	w.cancel()
	<-w.stopped
}
