// Command fleet runs several independent lb proxies fed by the same DNS
// name, and shows that they act as one: their pools follow the DNS
// records as these change, they send each hash key to the same backend,
// and each honours the sticky cookies the others issue.
//
//	go run ./examples/fleet
//	go run ./examples/fleet -instances 5 -backends 6 -keys 1000
//
// Everything runs in this process, on 127.0.0.1 only: a DNS server that
// answers SRV records for _http._tcp.backends.fleet. (each backend is a
// target with its own port), the demo backends, and the proxies, each on
// its own port with two routes: /hash/ (consistent hashing on the X-User
// header) and /sticky/ (round robin pinned by a signed cookie). It makes a
// few changes to the records, prints each pool as it converges, and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/balancekit/lb"
	"github.com/miekg/dns"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// srvName is the name every instance watches.
const srvName = "_http._tcp.backends.fleet."

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(out)
	instances := fs.Int("instances", 3, "proxy instances (2 to 16)")
	backends := fs.Int("backends", 4, "demo backends at the start (2 to 32)")
	keys := fs.Int("keys", 300, "hash keys each instance is asked about (1 to 10000)")
	timeout := fs.Duration("timeout", 20*time.Second, "the longest the demo may run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *instances < 2 || *instances > 16:
		return fmt.Errorf("-instances %d: want 2 to 16", *instances)
	case *backends < 2 || *backends > 32:
		return fmt.Errorf("-backends %d: want 2 to 32", *backends)
	case *keys < 1 || *keys > 10000:
		return fmt.Errorf("-keys %d: want 1 to 10000", *keys)
	case *timeout <= 0:
		return fmt.Errorf("-timeout %v: want a positive duration", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	f := &fleet{out: out, names: map[string]string{}}
	defer f.close()
	if err := f.startDNS(); err != nil {
		return err
	}
	for range *backends {
		if err := f.addBackend(); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "dns: %s answers %s with %d SRV records\n", f.dnsAddr, srvName, *backends)
	for i := range *instances {
		if err := f.startInstance(ctx, i+1); err != nil {
			return err
		}
	}
	c := &http.Client{Timeout: 5 * time.Second}

	if err := f.converge(ctx, "start"); err != nil {
		return err
	}
	before, err := f.checkHash(ctx, c, *keys)
	if err != nil {
		return err
	}
	if err := f.checkSticky(ctx, c); err != nil {
		return err
	}

	// One backend leaves the records: every instance drains it, and only
	// its keys move.
	gone := f.removeBackend(1)
	if err := f.converge(ctx, "backend "+gone+" removed from DNS"); err != nil {
		return err
	}
	after, err := f.checkHash(ctx, c, *keys)
	if err != nil {
		return err
	}
	moved, fromGone := 0, 0
	for k, b := range before {
		if after[k] != b {
			moved++
			if b == gone {
				fromGone++
			}
		}
	}
	fmt.Fprintf(out, "hash: %d of %d keys moved, %d of them from %s\n", moved, len(before), fromGone, gone)
	if moved != fromGone {
		return fmt.Errorf("%d keys moved that were not on %s", moved-fromGone, gone)
	}

	// A new backend joins and another's weight changes.
	if err := f.addBackend(); err != nil {
		return err
	}
	f.setWeight(0, 3)
	if err := f.converge(ctx, "a backend added, "+f.backends[0].name+" reweighted to 3"); err != nil {
		return err
	}
	if _, err := f.checkHash(ctx, c, *keys); err != nil {
		return err
	}
	if err := f.checkSticky(ctx, c); err != nil {
		return err
	}
	fmt.Fprintln(out, "done")
	return nil
}

// fleet is the demo's state.
type fleet struct {
	out     io.Writer
	dnsAddr string
	closers []func()

	mu       sync.Mutex // guards backends, names, for the DNS handler
	backends []*backend
	names    map[string]string // server name (URL) → backend name
	n        int

	instances []*instance
}

type backend struct {
	name   string
	port   uint16
	weight uint16
}

type instance struct {
	id   int
	url  string
	pool *lb.Pool
}

func (f *fleet) close() {
	for _, c := range slices.Backward(f.closers) {
		c()
	}
}

// startDNS starts the DNS server on 127.0.0.1, UDP and TCP on one port.
func (f *fleet) startDNS() error {
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for range 20 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		return fmt.Errorf("dns: no port free for both UDP and TCP: %w", err)
	}
	f.dnsAddr = pc.LocalAddr().String()
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: dns.HandlerFunc(f.serveDNS)}, {Listener: ln, Handler: dns.HandlerFunc(f.serveDNS)}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() { defer close(done); _ = s.ActivateAndServe() }()
		<-started
		f.closers = append(f.closers, func() { _ = s.Shutdown(); <-done })
	}
	return nil
}

// serveDNS answers SRV queries for srvName, and A queries for the
// backends' targets (all 127.0.0.1).
func (f *fleet) serveDNS(w dns.ResponseWriter, r *dns.Msg) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 1}
	}
	name := strings.ToLower(q.Name)
	switch {
	case name == srvName:
		if q.Qtype == dns.TypeSRV {
			for _, b := range f.backends {
				m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr(dns.TypeSRV), Priority: 10, Weight: b.weight, Port: b.port, Target: b.name + ".fleet."})
			}
		}
	case strings.HasSuffix(name, ".fleet."):
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.IPv4(127, 0, 0, 1)})
		}
	default:
		m.Rcode = dns.RcodeNameError
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// addBackend starts a demo backend and adds its SRV record.
func (f *fleet) addBackend() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	name := fmt.Sprintf("backend-%d", f.n)
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, name)
		}),
	}
	go func() { _ = srv.Serve(ln) }()
	f.closers = append(f.closers, func() { _ = srv.Close() })
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	f.backends = append(f.backends, &backend{name: name, port: port, weight: 1})
	f.names[fmt.Sprintf("http://127.0.0.1:%d", port)] = name
	return nil
}

// removeBackend takes the i-th backend out of the records (the backend
// itself keeps running, as one being scaled down would until drained).
func (f *fleet) removeBackend(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := f.backends[i].name
	f.backends = slices.Delete(f.backends, i, i+1)
	return name
}

func (f *fleet) setWeight(i int, w uint16) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backends[i].weight = w
}

// startInstance starts one proxy instance: its own pool fed by WatchDNS,
// its own balancers, its own loopback port.
func (f *fleet) startInstance(ctx context.Context, id int) error {
	pool := new(lb.Pool)
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, f.dnsAddr)
	}}
	quiet := slog.New(slog.DiscardHandler)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() {
		watched <- lb.WatchDNS(watchCtx, pool, srvName, lb.WithDNSSRV(), lb.WithDNSResolver(resolver),
			lb.WithDNSInterval(100*time.Millisecond, 50*time.Millisecond), lb.WithDNSTimeout(time.Second), lb.WithDNSLogger(quiet))
	}()
	f.closers = append(f.closers, func() { stopWatch(); <-watched })

	hash, err := lb.NewConsistentHash(pool, lb.KeyHeader("X-User"))
	if err != nil {
		return err
	}
	hashProxy, err := lb.NewProxy(hash, lb.WithProxyLogger(quiet))
	if err != nil {
		return err
	}
	rr, err := lb.NewRoundRobin(pool)
	if err != nil {
		return err
	}
	// Every instance has the same secret: a cookie one issues, the
	// others honour.
	stickyProxy, err := lb.NewProxy(rr, lb.WithProxyLogger(quiet),
		lb.WithStickyCookie("fleet_pin", []byte("demo secret shared by the fleet"), nil))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/hash/", hashProxy)
	mux.Handle("/sticky/", stickyProxy)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	f.closers = append(f.closers, func() { _ = srv.Close() })
	in := &instance{id: id, url: "http://" + ln.Addr().String(), pool: pool}
	f.instances = append(f.instances, in)
	fmt.Fprintf(f.out, "instance %d: %s, watching %s\n", id, in.url, srvName)
	return nil
}

// want returns the pool every instance should reach: backend name →
// weight.
func (f *fleet) want() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, b := range f.backends {
		out[b.name] = int(b.weight)
	}
	return out
}

// poolOf returns the instance's pool as backend name → weight, leaving out
// servers that are draining.
func (f *fleet) poolOf(in *instance) map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, s := range in.pool.Servers() {
		if !s.Draining() {
			out[f.names[s.Name()]] = s.Weight()
		}
	}
	return out
}

// converge waits until every instance's pool matches the records, and
// prints it.
func (f *fleet) converge(ctx context.Context, what string) error {
	want := f.want()
	start := time.Now()
	for _, in := range f.instances {
		for {
			ch := in.pool.Changed()
			if mapsEqual(f.poolOf(in), want) {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return fmt.Errorf("%s: instance %d has %v, want %v: %w", what, in.id, f.poolOf(in), want, ctx.Err())
			}
		}
	}
	names := make([]string, 0, len(want))
	for n, w := range want {
		names = append(names, fmt.Sprintf("%s(weight %d)", n, w))
	}
	slices.Sort(names)
	fmt.Fprintf(f.out, "\n%s: all %d instances converged in %v on %s\n", what, len(f.instances),
		time.Since(start).Round(10*time.Millisecond), strings.Join(names, " "))
	return nil
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// get sends a GET to url with the header and cookie given, and returns the
// backend that answered and the response's cookies.
func get(ctx context.Context, c *http.Client, url, user string, cookie *http.Cookie) (string, []*http.Cookie, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", nil, err
	}
	if user != "" {
		req.Header.Set("X-User", user)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(body)), resp.Cookies(), nil
}

// checkHash asks every instance where each key goes, and returns the
// owners if they all agree.
func (f *fleet) checkHash(ctx context.Context, c *http.Client, keys int) (map[string]string, error) {
	owners := map[string]string{}
	perBackend := map[string]int{}
	for k := range keys {
		user := fmt.Sprintf("user-%d", k)
		for _, in := range f.instances {
			b, _, err := get(ctx, c, in.url+"/hash/", user, nil)
			if err != nil {
				return nil, err
			}
			if first, ok := owners[user]; !ok {
				owners[user] = b
				perBackend[b]++
			} else if b != first {
				return nil, fmt.Errorf("hash: key %s goes to %s on instance 1 but to %s on instance %d", user, first, b, in.id)
			}
		}
	}
	var spread []string
	for b, n := range perBackend {
		spread = append(spread, fmt.Sprintf("%s:%d", b, n))
	}
	slices.Sort(spread)
	fmt.Fprintf(f.out, "hash: all %d instances agree on %d of %d keys (%s)\n", len(f.instances), keys, keys, strings.Join(spread, " "))
	return owners, nil
}

// checkSticky gets a cookie from each instance in turn and sends it to
// every instance: each must send it to the backend it names.
func (f *fleet) checkSticky(ctx context.Context, c *http.Client) error {
	for _, issuer := range f.instances {
		first, cookies, err := get(ctx, c, issuer.url+"/sticky/", "", nil)
		if err != nil {
			return err
		}
		var pin *http.Cookie
		for _, ck := range cookies {
			if ck.Name == "fleet_pin" {
				pin = ck
			}
		}
		if pin == nil {
			return fmt.Errorf("sticky: instance %d issued no cookie", issuer.id)
		}
		for _, in := range f.instances {
			for range 3 {
				b, _, err := get(ctx, c, in.url+"/sticky/", "", pin)
				if err != nil {
					return err
				}
				if b != first {
					return fmt.Errorf("sticky: a cookie from instance %d for %s went to %s on instance %d", issuer.id, first, b, in.id)
				}
			}
		}
	}
	fmt.Fprintf(f.out, "sticky: the cookie of each instance is honoured by all %d (3 requests each)\n", len(f.instances))
	return nil
}
