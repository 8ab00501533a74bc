package lb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of WatchDNS.
const (
	defaultDNSInterval = 30 * time.Second
	defaultDNSTimeout  = 5 * time.Second
	defaultDNSFailover = time.Second
	defaultDNSMax      = 10_000
)

// A DNSOption configures [WatchDNS]. A nil option, or one given a bad
// value, makes WatchDNS return an error naming it at once.
type DNSOption func(*dnsOptions) error

type dnsOptions struct {
	resolver   *net.Resolver
	srv        bool
	scheme     string
	port       int
	interval   time.Duration
	jitter     time.Duration
	jitterSet  bool
	timeout    time.Duration
	failover   time.Duration
	drainLimit time.Duration
	slowStart  time.Duration
	maxServers int
	serverOpts []ServerOption
	logger     *slog.Logger

	// For tests: the timer source, the jitter's source of randomness, a
	// channel that asks for a lookup at once, a hook called after each
	// lookup with its error, and one called after each re-evaluation
	// without a lookup.
	after     func(time.Duration) <-chan time.Time
	randN     func(int) int
	lookup    <-chan struct{}
	done      func(error)
	reapplied func()
}

// WithDNSResolver sets the resolver WatchDNS queries; the default is
// [net.DefaultResolver]. A resolver with PreferGo and a Dial of its own
// queries a DNS server of the caller's choosing.
func WithDNSResolver(r *net.Resolver) DNSOption {
	return func(o *dnsOptions) error {
		if r == nil {
			return errors.New("WithDNSResolver: nil resolver")
		}
		o.resolver = r
		return nil
	}
}

// WithDNSSRV makes WatchDNS look up SRV records for the name (such as
// "_http._tcp.api.default.svc.cluster.local") instead of A and AAAA ones.
// Each record's target is resolved to its addresses (A and AAAA), and each
// address becomes a server with the record's port and, as its weight, the
// record's weight (a weight of 0, which RFC 2782 gives a very small share,
// becomes 1). Only the records of the lowest priority value are used while
// any of their servers is healthy, not ejected and not draining; when all
// of them are down, those of the next priority are, and so on. The servers
// of the other priorities stay in the pool with weight 0, so that health
// checks go on probing them.
func WithDNSSRV() DNSOption {
	return func(o *dnsOptions) error {
		o.srv = true
		return nil
	}
}

// WithDNSScheme sets the scheme of the servers' URLs: "http" (the default),
// "https" or "tcp" (for a [TCPProxy]).
func WithDNSScheme(scheme string) DNSOption {
	return func(o *dnsOptions) error {
		switch scheme {
		case "http", "https", "tcp":
			o.scheme = scheme
			return nil
		}
		return fmt.Errorf("WithDNSScheme: scheme %q is not http, https or tcp", scheme)
	}
}

// WithDNSPort sets the port of the servers found through A and AAAA records
// (SRV records carry their own). The default is the scheme's: 80 for http,
// 443 for https; the tcp scheme needs it.
func WithDNSPort(port int) DNSOption {
	return func(o *dnsOptions) error {
		if port < 1 || port > 65535 {
			return fmt.Errorf("WithDNSPort: port %d is not between 1 and 65535", port)
		}
		o.port = port
		return nil
	}
}

// WithDNSInterval sets how often WatchDNS looks the name up again: after each
// lookup it waits interval plus a random part of jitter (uniform in [0,
// jitter)), so that many instances started together do not query in step.
// The default is 30 s with a jitter of a tenth of the interval. interval
// must be at least 10 ms (a bare number such as 30 is 30 ns: an error, not
// a lookup storm); jitter must be 0 or more and at most interval, and their
// sum must fit a [time.Duration].
func WithDNSInterval(interval, jitter time.Duration) DNSOption {
	return func(o *dnsOptions) error {
		if interval <= 0 {
			return fmt.Errorf("WithDNSInterval: interval %v is not above 0", interval)
		}
		if interval < minInterval {
			return fmt.Errorf("WithDNSInterval: interval %v is below %v (a duration without its unit?)", interval, time.Duration(minInterval))
		}
		if jitter < 0 || jitter > interval {
			return fmt.Errorf("WithDNSInterval: jitter %v is not between 0 and the interval %v", jitter, interval)
		}
		if jitter > math.MaxInt64-interval {
			return fmt.Errorf("WithDNSInterval: interval %v plus jitter %v is above the longest duration %v", interval, jitter, time.Duration(math.MaxInt64))
		}
		o.interval, o.jitter, o.jitterSet = interval, jitter, true
		return nil
	}
}

// WithDNSTimeout bounds each lookup (all its queries, for SRV the targets'
// too). The default is 5 s. A lookup that times out fails, and the pool
// keeps its servers.
func WithDNSTimeout(d time.Duration) DNSOption {
	return func(o *dnsOptions) error {
		if d <= 0 {
			return fmt.Errorf("WithDNSTimeout: timeout %v is not above 0", d)
		}
		o.timeout = d
		return nil
	}
}

// WithDNSFailoverCheck sets how often, between lookups, WatchDNS looks at the
// health of the servers of SRV records to move traffic to the next
// priority when every server of the one in use is down, and back when one
// recovers. The default is 1 s; d must be at least 10 ms. It costs a look
// at each server's flags and applies only when the records have more than
// one priority.
func WithDNSFailoverCheck(d time.Duration) DNSOption {
	return func(o *dnsOptions) error {
		if d <= 0 {
			return fmt.Errorf("WithDNSFailoverCheck: period %v is not above 0", d)
		}
		if d < minInterval {
			return fmt.Errorf("WithDNSFailoverCheck: period %v is below %v (a duration without its unit?)", d, time.Duration(minInterval))
		}
		o.failover = d
		return nil
	}
}

// WithDNSDrainTimeout bounds the drain of a server that has left the DNS
// answer: once d has passed, it leaves the pool even though requests are
// still in flight on it (they are not cut: see [Pool.Remove]). With no
// limit, the default, a drain waits for the last request in flight, or for
// the end of WatchDNS's context. An address that comes back while its
// server drains calls the drain off: the server takes picks again, with
// its state, and the pool's observers hear [EventDrainCanceled].
func WithDNSDrainTimeout(d time.Duration) DNSOption {
	return func(o *dnsOptions) error {
		if d <= 0 {
			return fmt.Errorf("WithDNSDrainTimeout: timeout %v is not above 0", d)
		}
		o.drainLimit = d
		return nil
	}
}

// WithDNSSlowStart makes the servers that appear after the first lookup
// slow-start over window (see [Server.SlowStart]); those of the first
// lookup take their full share at once.
func WithDNSSlowStart(window time.Duration) DNSOption {
	return func(o *dnsOptions) error {
		if window <= 0 {
			return fmt.Errorf("WithDNSSlowStart: window %v is not above 0", window)
		}
		o.slowStart = window
		return nil
	}
}

// WithDNSServerOptions sets options for every server WatchDNS makes, such as
// [WithDown] (the server takes no traffic until a health check passes),
// [WithLabels] or, for A and AAAA records, [WithWeight]. The server's name
// is its URL, and with [WithDNSSRV] its weight comes from the record, whatever
// the options say.
func WithDNSServerOptions(opts ...ServerOption) DNSOption {
	return func(o *dnsOptions) error {
		for i, opt := range opts {
			if opt == nil {
				return fmt.Errorf("WithDNSServerOptions: option %d is nil", i)
			}
		}
		o.serverOpts = append(o.serverOpts, opts...)
		return nil
	}
}

// WithDNSMaxServers bounds the addresses a lookup may give (with [WithDNSSRV], the
// SRV targets too): an answer with more, from a broken or hostile DNS
// server, fails the lookup as a timeout does, and the pool keeps its
// servers. The default is 10,000; n must be at least 1.
func WithDNSMaxServers(n int) DNSOption {
	return func(o *dnsOptions) error {
		if n < 1 {
			return fmt.Errorf("WithDNSMaxServers: %d is not at least 1", n)
		}
		o.maxServers = n
		return nil
	}
}

// WithDNSLogger sets the logger of lookups that fail, bad records and changes
// of the pool; the default is [slog.Default].
func WithDNSLogger(l *slog.Logger) DNSOption {
	return func(o *dnsOptions) error {
		if l == nil {
			return errors.New("WithDNSLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WatchDNS keeps pool in step with the DNS records of name, until ctx
// ends. It looks name up at once, then again every interval
// ([WithDNSInterval]), and each time brings the pool to the answer:
//
//   - an address that is new becomes a server, named by its URL (such as
//     "http://10.0.0.7:8080"), added to the pool (with [WithDNSServerOptions],
//     [WithDNSSlowStart]);
//   - a server whose address is still in the answer is left as it is, with
//     its state and counters (requests in flight, statistics, health, slow
//     start); with [WithDNSSRV], a changed weight is applied in place
//     ([Server.SetWeight]), and the weight of such a server is the
//     record's: a weight set by other hands is set back at the next lookup;
//   - a server whose address has left the answer is drained ([Pool.Drain]):
//     it takes no new request, and leaves the pool once its requests in
//     flight have ended (see [WithDNSDrainTimeout]); no request is cut. If
//     its address comes back first, the drain is called off.
//
// WatchDNS owns only the servers it has added: servers added to the pool by
// other means are never changed or removed, and an address whose URL names
// one of them is skipped (logged once). A server of its own that something
// else removes from the pool is forgotten, and added again (as a new
// server) at the next lookup that finds its address: DNS stays the source
// of truth.
//
// A lookup that fails (a timeout, SERVFAIL, NXDOMAIN) or whose answer has
// no usable address leaves the pool as it was: the last good set stays. It
// is logged at level Warn ([WithDNSLogger]) and reported to the pool's
// observers as [EventDiscoveryFailed], and the next lookup comes at the
// usual interval. A bad record (port 0 in SRV, a target that does not
// resolve) is skipped and logged; the rest of the answer is used.
//
// WatchDNS returns an error at once, having looked nothing up, for a nil
// pool, an empty name or a bad option. Otherwise it returns nil once ctx
// has ended and every goroutine it started (drains) has stopped; servers
// still draining then leave the pool at once. The pool keeps the servers
// it has.
//
// When the pool first has servers can be seen with [Pool.Changed].
func WatchDNS(ctx context.Context, pool *Pool, name string, opts ...DNSOption) error {
	w, err := newDNSWatcher(pool, name, opts)
	if err != nil {
		return err
	}
	w.run(ctx)
	return nil
}

// dnsWatcher is the state of one WatchDNS. Only its run goroutine touches
// it, but for the drain goroutines' channel.
type dnsWatcher struct {
	ctx  context.Context // run's: drains end with it
	pool *Pool
	name string
	o    dnsOptions
	log  *slog.Logger

	owned    map[netip.AddrPort]*dnsServer
	draining map[netip.AddrPort]*dnsDrain
	drained  chan drainEnd
	wg       sync.WaitGroup

	// last is the last good answer, sorted by priority; next is the
	// buffer the next lookup fills.
	last, next []dnsRecord
	gen        uint64 // counts applies, to mark servers seen
	applied    bool   // the first good answer has been applied
	conflicts  map[netip.AddrPort]bool
	multiPrio  bool // last has more than one priority
	failing    bool // the last lookup failed
}

// dnsServer is a server WatchDNS has added.
type dnsServer struct {
	s    *Server
	seen uint64 // the last apply whose answer had it
}

// dnsDrain is the drain of a server whose address left the answer.
type dnsDrain struct {
	s      *Server
	cancel chan struct{} // closed when the address comes back
	done   chan struct{} // closed by the drain goroutine once it has ended
	// canceled is set before done is closed: the drain was called off,
	// and s is still in the pool.
	canceled bool
}

// drainEnd is the end of a drain, as the drain goroutine reports it.
type drainEnd struct {
	addr netip.AddrPort
	dr   *dnsDrain
}

// dnsRecord is one address of the answer.
type dnsRecord struct {
	addr   netip.AddrPort
	prio   uint16
	weight int // 0 for A and AAAA records
}

func newDNSWatcher(pool *Pool, name string, opts []DNSOption) (*dnsWatcher, error) {
	if pool == nil {
		return nil, errors.New("lb: WatchDNS: nil pool")
	}
	if name == "" {
		return nil, errors.New(`lb: WatchDNS: empty name ""`)
	}
	o := dnsOptions{
		resolver:   net.DefaultResolver,
		scheme:     "http",
		interval:   defaultDNSInterval,
		timeout:    defaultDNSTimeout,
		failover:   defaultDNSFailover,
		maxServers: defaultDNSMax,
		logger:     slog.Default(),
		after:      time.After,
		randN:      rand.IntN,
	}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("lb: WatchDNS %q: option %d is nil", name, i)
		}
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("lb: WatchDNS %q: %w", name, err)
		}
	}
	if !o.jitterSet {
		o.jitter = o.interval / 10
	}
	if !o.srv && o.port == 0 {
		switch o.scheme {
		case "http":
			o.port = 80
		case "https":
			o.port = 443
		default:
			return nil, fmt.Errorf("lb: WatchDNS %q: the scheme %q needs a port (WithDNSPort) for A and AAAA records", name, o.scheme)
		}
	}
	// Try the server options once, so that a bad one fails now.
	if _, err := NewServer(o.scheme+"://192.0.2.1:1", o.serverOpts...); err != nil {
		return nil, fmt.Errorf("lb: WatchDNS %q: WithDNSServerOptions: %w", name, err)
	}
	return &dnsWatcher{
		pool:      pool,
		name:      name,
		o:         o,
		log:       o.logger.With(slog.String("name", name)),
		owned:     make(map[netip.AddrPort]*dnsServer),
		draining:  make(map[netip.AddrPort]*dnsDrain),
		drained:   make(chan drainEnd),
		conflicts: make(map[netip.AddrPort]bool),
	}, nil
}

// run is the watcher's loop.
func (w *dnsWatcher) run(ctx context.Context) {
	w.ctx = ctx
	defer w.wg.Wait()
	w.refresh(ctx)
	next := w.o.after(w.wait())
	var failover <-chan time.Time
	for {
		if failover == nil && w.multiPrio {
			failover = w.o.after(w.o.failover)
		}
		select {
		case <-ctx.Done():
			return
		case <-next:
			w.refresh(ctx)
			next = w.o.after(w.wait())
		case <-w.o.lookup:
			w.refresh(ctx)
		case <-failover:
			failover = nil
			w.reapply()
		case end := <-w.drained:
			if w.draining[end.addr] == end.dr { // else called off by apply
				delete(w.draining, end.addr)
				w.reapply()
			}
		}
	}
}

// wait returns the time until the next lookup: the interval plus a random
// part of the jitter.
func (w *dnsWatcher) wait() time.Duration {
	d := w.o.interval
	if w.o.jitter > 0 {
		d += time.Duration(randBelow(w.o.randN, uint64(w.o.jitter), math.MaxInt))
	}
	return d
}

// refresh looks the name up and, if that gave a usable answer, applies it.
func (w *dnsWatcher) refresh(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, w.o.timeout)
	err := w.lookup(lctx)
	cancel()
	if err == nil && len(w.next) == 0 {
		err = errors.New("no usable address in the answer")
	}
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: not a failure of the lookup
		}
		w.failing = true
		w.log.LogAttrs(context.Background(), slog.LevelWarn, "lb: DNS lookup failed; the pool keeps its servers",
			slog.Int("servers", len(w.owned)), slog.String("error", err.Error()))
		w.pool.emit(Event{Kind: EventDiscoveryFailed, Err: fmt.Errorf("lb: DNS lookup of %q: %w", w.name, err)})
		w.hook(err)
		return
	}
	if w.failing {
		w.failing = false
		w.log.LogAttrs(context.Background(), slog.LevelInfo, "lb: DNS lookup succeeded again")
	}
	w.last, w.next = w.next, w.last[:0]
	w.apply()
	w.hook(nil)
}

func (w *dnsWatcher) hook(err error) {
	if w.o.done != nil {
		w.o.done(err)
	}
}

// reapply applies the last good answer again, after a change of health or
// the end of a drain.
func (w *dnsWatcher) reapply() {
	if w.applied {
		w.apply()
	}
	if w.o.reapplied != nil {
		w.o.reapplied()
	}
}

// lookup fills w.next with the answer, sorted by priority then address,
// each address once (at its lowest priority).
func (w *dnsWatcher) lookup(ctx context.Context) error {
	w.next = w.next[:0]
	if !w.o.srv {
		ips, err := w.o.resolver.LookupNetIP(ctx, "ip", w.name)
		if err != nil {
			return err
		}
		if len(ips) > w.o.maxServers {
			return w.tooMany(len(ips))
		}
		for _, ip := range ips {
			w.add(netip.AddrPortFrom(ip.Unmap(), uint16(w.o.port)), 0, 0)
		}
	} else {
		_, srvs, err := w.o.resolver.LookupSRV(ctx, "", "", w.name)
		if err != nil {
			if len(srvs) == 0 {
				return err
			}
			// Go's resolver leaves out records with bad target names
			// and says so; the rest are good.
			w.log.LogAttrs(ctx, slog.LevelWarn, "lb: DNS: records skipped", slog.String("error", err.Error()))
		}
		var targets []string
		index := make(map[string]int, len(srvs))
		for _, r := range srvs {
			if r.Port == 0 || r.Target == "" || r.Target == "." {
				w.log.LogAttrs(ctx, slog.LevelWarn, "lb: DNS: SRV record skipped: no port or no target",
					slog.String("target", r.Target), slog.Int("port", int(r.Port)))
				continue
			}
			if _, ok := index[r.Target]; !ok {
				index[r.Target] = len(targets)
				targets = append(targets, r.Target)
			}
		}
		if len(targets) > w.o.maxServers {
			return w.tooMany(len(targets))
		}
		addrs, err := w.resolveTargets(ctx, targets)
		if err != nil {
			return err
		}
		for _, r := range srvs {
			i, ok := index[r.Target]
			if !ok || r.Port == 0 {
				continue
			}
			if n := len(w.next) + len(addrs[i]); n > w.o.maxServers {
				return w.tooMany(n)
			}
			for _, ip := range addrs[i] {
				w.add(netip.AddrPortFrom(ip.Unmap(), r.Port), r.Priority, max(int(r.Weight), 1))
			}
		}
	}
	slices.SortFunc(w.next, func(a, b dnsRecord) int {
		if c := cmp.Compare(a.prio, b.prio); c != 0 {
			return c
		}
		return a.addr.Compare(b.addr)
	})
	// Each address once, at its lowest priority.
	w.next = slices.CompactFunc(w.next, func(a, b dnsRecord) bool { return a.addr == b.addr })
	return nil
}

// tooMany is the error of an answer of n addresses, above the bound.
func (w *dnsWatcher) tooMany(n int) error {
	w.next = w.next[:0]
	return fmt.Errorf("the answer has %d addresses or more, above the maximum %d (WithDNSMaxServers)", n, w.o.maxServers)
}

// targetLookups bounds the lookups of SRV targets under way at once.
const targetLookups = 16

// resolveTargets looks up the addresses of the SRV targets, a few at a
// time. A target that does not exist is skipped (logged); any other
// failure fails the whole lookup.
func (w *dnsWatcher) resolveTargets(ctx context.Context, targets []string) ([][]netip.Addr, error) {
	addrs := make([][]netip.Addr, len(targets))
	errs := make([]error, len(targets))
	sem := make(chan struct{}, targetLookups)
	var wg sync.WaitGroup
	// The addresses found so far: past the bound, the lookups still to
	// come are not made, and those under way are cut short.
	var found atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, target := range targets {
		sem <- struct{}{}
		if n := found.Load(); n > int64(w.o.maxServers) {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			addrs[i], errs[i] = w.o.resolver.LookupNetIP(ctx, "ip", target)
			if found.Add(int64(len(addrs[i]))) > int64(w.o.maxServers) {
				cancel()
			}
		})
	}
	wg.Wait()
	if n := found.Load(); n > int64(w.o.maxServers) {
		return nil, w.tooMany(int(n))
	}
	for i, err := range errs {
		if err == nil {
			continue
		}
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			return nil, fmt.Errorf("SRV target %q: %w", targets[i], err)
		}
		w.log.LogAttrs(ctx, slog.LevelWarn, "lb: DNS: SRV target skipped: it does not resolve",
			slog.String("target", targets[i]), slog.String("error", err.Error()))
	}
	return addrs, nil
}

func (w *dnsWatcher) add(a netip.AddrPort, prio uint16, weight int) {
	if !a.Addr().IsValid() || a.Addr().IsUnspecified() {
		w.log.LogAttrs(context.Background(), slog.LevelWarn, "lb: DNS: address skipped", slog.String("address", a.String()))
		return
	}
	w.next = append(w.next, dnsRecord{addr: a, prio: prio, weight: weight})
}

// apply brings the pool to w.last.
func (w *dnsWatcher) apply() {
	w.gen++
	first := !w.applied
	w.applied = true
	prio := w.activePriority()
	st := w.pool.load()
	var added []*Server
	w.multiPrio = false
	for i := range w.last {
		r := &w.last[i]
		if r.prio != w.last[0].prio {
			w.multiPrio = true
		}
		want := r.weight
		if w.o.srv && r.prio != prio {
			want = 0
		}
		if dr := w.draining[r.addr]; dr != nil {
			w.callOff(r.addr, dr)
			st = w.pool.load()
		}
		if d := w.owned[r.addr]; d != nil {
			if st.byName[d.s.name] != d.s {
				// Removed by someone else: forget it, add a new one.
				delete(w.owned, r.addr)
			} else {
				d.seen = w.gen
				if w.o.srv && d.s.Weight() != want {
					if err := d.s.SetWeight(want); err == nil {
						w.log.LogAttrs(context.Background(), slog.LevelInfo, "lb: DNS: server weight changed",
							slog.String("server", d.s.name), slog.Int("weight", want))
					}
				}
				continue
			}
		}
		s := w.newServer(r, want, first)
		if s == nil {
			continue
		}
		if other := st.byName[s.name]; other != nil {
			if !w.conflicts[r.addr] {
				w.conflicts[r.addr] = true
				w.log.LogAttrs(context.Background(), slog.LevelWarn,
					"lb: DNS: address skipped: the pool has a server of that name that WatchDNS did not add",
					slog.String("server", s.name))
			}
			continue
		}
		delete(w.conflicts, r.addr)
		w.owned[r.addr] = &dnsServer{s: s, seen: w.gen}
		added = append(added, s)
	}
	if len(added) > 0 {
		w.addServers(added)
	}
	for a, d := range w.owned {
		if d.seen == w.gen {
			continue
		}
		delete(w.owned, a)
		if st.byName[d.s.name] != d.s {
			continue // removed by someone else
		}
		finish, err := w.pool.beginDrain(d.s)
		if err != nil {
			w.log.LogAttrs(context.Background(), slog.LevelWarn, "lb: DNS: server left the answer; not drained",
				slog.String("server", d.s.name), slog.String("error", err.Error()))
			continue
		}
		w.log.LogAttrs(context.Background(), slog.LevelInfo, "lb: DNS: server left the answer; draining it",
			slog.String("server", d.s.name))
		if d.s.InFlight() == 0 {
			_ = finish(w.ctx, nil) // idle: it leaves now
			continue
		}
		dr := &dnsDrain{s: d.s, cancel: make(chan struct{}), done: make(chan struct{})}
		w.draining[a] = dr
		w.wg.Add(1)
		go w.drain(a, dr, finish)
	}
}

// addServers adds servers to the pool, all at once if it can, else one by
// one (a server of the same name was added meanwhile by other means).
func (w *dnsWatcher) addServers(servers []*Server) {
	if err := w.pool.Add(servers...); err == nil {
		for _, s := range servers {
			w.log.LogAttrs(context.Background(), slog.LevelInfo, "lb: DNS: server added", slog.String("server", s.name))
		}
		return
	}
	for _, s := range servers {
		if err := w.pool.Add(s); err != nil {
			w.log.LogAttrs(context.Background(), slog.LevelWarn, "lb: DNS: server not added",
				slog.String("server", s.name), slog.String("error", err.Error()))
			for a, d := range w.owned {
				if d.s == s {
					delete(w.owned, a)
				}
			}
			continue
		}
		w.log.LogAttrs(context.Background(), slog.LevelInfo, "lb: DNS: server added", slog.String("server", s.name))
	}
}

// newServer makes the server of r, with weight want (SRV).
func (w *dnsWatcher) newServer(r *dnsRecord, want int, first bool) *Server {
	raw := (&url.URL{Scheme: w.o.scheme, Host: r.addr.String()}).String()
	// The name is the URL whatever the options say: WatchDNS tells its
	// servers apart by name.
	opts := append(slices.Clip(w.o.serverOpts), WithName(raw))
	if w.o.srv {
		opts = append(opts, WithWeight(want))
	}
	s, err := NewServer(raw, opts...)
	if err != nil {
		w.log.LogAttrs(context.Background(), slog.LevelWarn, "lb: DNS: address skipped",
			slog.String("address", r.addr.String()), slog.String("error", err.Error()))
		return nil
	}
	if !first && w.o.slowStart > 0 {
		s.SlowStartAt(w.pool.now(), w.o.slowStart)
	}
	return s
}

// callOff calls off the drain of the server of a, whose address is back
// in the answer, and waits for its goroutine to end. If the server was
// still draining, it takes picks again and is owned again, with its state;
// else it has left the pool, and a new server is made for a.
func (w *dnsWatcher) callOff(a netip.AddrPort, dr *dnsDrain) {
	close(dr.cancel)
	<-dr.done
	delete(w.draining, a)
	if dr.canceled && w.pool.load().byName[dr.s.name] == dr.s {
		w.owned[a] = &dnsServer{s: dr.s, seen: w.gen - 1}
		w.log.LogAttrs(context.Background(), slog.LevelInfo, "lb: DNS: server back in the answer; drain called off",
			slog.String("server", dr.s.name))
	}
}

// drain finishes the drain of dr.s, whose address left the answer, or
// calls it off when dr.cancel is closed, and reports when it is done.
func (w *dnsWatcher) drain(a netip.AddrPort, dr *dnsDrain, finish func(context.Context, <-chan struct{}) error) {
	s := dr.s
	defer w.wg.Done()
	ctx := w.ctx
	if w.o.drainLimit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.o.drainLimit)
		defer cancel()
	}
	err := finish(ctx, dr.cancel)
	dr.canceled = errors.Is(err, errDrainCanceled)
	close(dr.done)
	if err != nil && !dr.canceled && !errors.Is(err, ErrUnknownServer) && w.ctx.Err() == nil {
		w.log.LogAttrs(context.Background(), slog.LevelWarn, "lb: DNS: drain ended early; the server left the pool",
			slog.String("server", s.name), slog.String("error", err.Error()))
	}
	select {
	case w.drained <- drainEnd{addr: a, dr: dr}:
	case <-w.ctx.Done():
	}
}

// activePriority returns the priority whose servers take traffic: the
// lowest one with a server that is up (healthy, not ejected, not
// draining), or the lowest one if none is. Addresses not yet added count
// as up.
func (w *dnsWatcher) activePriority() uint16 {
	if len(w.last) == 0 {
		return 0
	}
	for i := range w.last {
		r := &w.last[i]
		d := w.owned[r.addr]
		if d == nil {
			if w.draining[r.addr] == nil && !w.conflicts[r.addr] {
				return r.prio // about to be added, healthy unless WithDown
			}
			continue
		}
		if d.s.flags.Load()&(flagDown|flagEjected|flagDraining) == 0 {
			return r.prio
		}
	}
	return w.last[0].prio
}
