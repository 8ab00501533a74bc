package lb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// A KeyFunc extracts the affinity key of a request: requests with the same
// key go to the same server. An empty key means the request has none.
type KeyFunc func(r *http.Request) string

// KeyClientIP keys requests by the client's IP address: the host part of
// RemoteAddr, which may be "host:port" (as net/http sets it) or a bare IPv4
// or IPv6 address (as real-IP middlewares set it); an IPv6 zone is kept.
// When that address is in one of the trusted prefixes (a proxy or load
// balancer in front of this one), it takes instead the rightmost address of
// X-Forwarded-For that is not trusted, which a client cannot forge (without
// its port, if the hop has one). With no prefixes, X-Forwarded-For is
// ignored. It allocates nothing.
func KeyClientIP(trusted ...netip.Prefix) KeyFunc {
	trusted = slices.Clone(trusted)
	isTrusted := func(s string) bool { return inPrefixes(trusted, s) }
	return func(r *http.Request) string {
		if r == nil {
			return ""
		}
		ip := hostOnly(r.RemoteAddr)
		if len(trusted) == 0 || !isTrusted(ip) {
			return ip
		}
		xff := r.Header["X-Forwarded-For"]
		for i := len(xff) - 1; i >= 0; i-- {
			list := xff[i]
			for list != "" {
				var hop string
				if j := strings.LastIndexByte(list, ','); j >= 0 {
					hop, list = strings.TrimSpace(list[j+1:]), list[:j]
				} else {
					hop, list = strings.TrimSpace(list), ""
				}
				if hop = hostOnly(hop); hop == "" {
					continue
				}
				if !isTrusted(hop) {
					return hop
				}
				ip = hop
			}
		}
		return ip // every hop trusted: the first one
	}
}

// inPrefixes reports whether the address addr (an IP, without a port; an
// IPv6 zone is ignored) is in one of prefixes. It allocates nothing.
func inPrefixes(prefixes []netip.Prefix, addr string) bool {
	if i := strings.IndexByte(addr, '%'); i >= 0 {
		addr = addr[:i] // a zone: Prefix.Contains would say no
	}
	if !maybeIP(addr) {
		return false // spares ParseAddr an error, which allocates
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maybeIP reports whether s is made of the characters of an IP address:
// digits and dots, or hexadecimal digits, colons and dots with at least
// one colon.
func maybeIP(s string) bool {
	if s == "" {
		return false
	}
	colon, hex := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9' || c == '.':
		case c == ':':
			colon = true
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			hex = true
		default:
			return false
		}
	}
	return colon || !hex
}

// hostOnly returns the host of an address: "host:port", "[ipv6]:port" or
// "[ipv6]" without the brackets and the port, and a bare IPv4 or IPv6
// address (as real-IP middlewares set RemoteAddr), with any zone, as it is.
// It allocates nothing.
func hostOnly(addr string) string {
	if strings.HasPrefix(addr, "[") {
		if i := strings.IndexByte(addr, ']'); i > 0 {
			return addr[1:i]
		}
		return addr[1:]
	}
	// One colon: host:port. None: a bare host. More: a bare IPv6 address.
	if i := strings.IndexByte(addr, ':'); i >= 0 && strings.LastIndexByte(addr, ':') == i {
		return addr[:i]
	}
	return addr
}

// KeyHeader keys requests by the first value of the header name. It
// allocates nothing.
func KeyHeader(name string) KeyFunc {
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request) string {
		if r == nil {
			return ""
		}
		if v := r.Header[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
}

// KeyCookie keys requests by the value of the cookie name. Unlike
// [http.Request.Cookie] it allocates nothing.
func KeyCookie(name string) KeyFunc {
	return func(r *http.Request) string {
		if r == nil {
			return ""
		}
		return cookieValue(r, name)
	}
}

// cookieValue returns the value of the first cookie called name in r, or
// "".
func cookieValue(r *http.Request, name string) string {
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && k == name {
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v
			}
		}
	}
	return ""
}

// KeyPath keys requests by their URL path.
func KeyPath() KeyFunc {
	return func(r *http.Request) string {
		if r == nil || r.URL == nil {
			return ""
		}
		return r.URL.Path
	}
}

// ConsistentHash sends requests with the same key to the same server,
// consistently: when a server joins or leaves a pool of n, only about 1/n
// of the keys move, and only to or from that server. Two balancers over the
// same servers (in different processes, say) map every key to the same
// server, with no shared state: the mapping depends only on the servers'
// names and weights, never on random numbers or the order they were added.
//
// It is a hash ring with virtual nodes: each server owns points on a
// 64-bit ring, in proportion to its weight, and a key belongs to the owner
// of the first point at or after the key's hash. An index over the ring
// makes a lookup O(1) (a bucket and a short scan) rather than a binary
// search. The ring was chosen over Maglev, whose lookup is one table read
// but which moves some keys between servers that stayed, and over
// rendezvous hashing, whose lookup is O(servers). With 1,024 points per
// server (fewer above 256 servers, down to 64, to keep the ring at most
// 2^18 points and its lookups in cache), the busiest of 10 equal servers
// gets about 5% more keys than the mean.
// Points are given in proportion to weight/(smallest weight in the pool),
// so with unequal weights a change of the smallest weight moves more keys
// than the minimum.
//
// A server that cannot take the key (unhealthy, draining, or full under
// [WithBoundedLoad]) is passed over for the next server along the ring, so
// its keys spread over the others and come back when it recovers. Requests
// without a key go to a fallback balancer ([WithFallback]; round robin over
// the same pool by default). A ConsistentHash is safe for concurrent use.
//
// The zero ConsistentHash is not usable: make one with NewConsistentHash (a
// pick by the zero value finds no server).
type ConsistentHash struct {
	pool     *Pool
	key      KeyFunc
	bound    float64
	fallback Balancer
	loads    *boundedLoads // nil without WithBoundedLoad
}

// WithBoundedLoad caps each server of a [ConsistentHash] at c times its
// share of the requests in flight (Mirrokni, Thorup and Zadimoghaddam,
// "Consistent Hashing with Bounded Loads", 2016): a server whose in-flight
// count would go above
//
//	ceil(c × (in flight + 1) × weight / usable weight)
//
// is passed over for the next one along the key's ring. The counts are the
// balancer's own (its keyed picks whose Done has not been called yet;
// requests without a key, which go to [WithFallback]'s balancer, and other
// balancers' picks of the same servers are not counted), and the usable
// weight is that of the servers a pick may take (healthy, not ejected, not
// draining; in panic mode, see [Pool.SetPanicThreshold], also the unhealthy
// ones). A slow-starting server counts at its full weight.
//
// No pick passes a cap, even among concurrent picks: a server's count goes
// up only by a compare-and-swap against its cap, worked out from the total
// of that moment (Dones that later lower the total lower the caps too;
// requests in flight are not moved). And some usable server is always below
// its cap, since the caps of the usable servers add up to at least c × (in
// flight + 1), more than the requests they hold: when the walk along the
// ring finds none (most servers down), the pick takes the usable server
// below its cap that ranks highest for the key (rendezvous hashing). Only
// if concurrent picks and Dones change the counts under it through several
// scans of the pool in a row does a pick fail with [ErrNoServer] rather
// than pass a cap. A pick costs O(1) whatever the pool's size: the total in
// flight is a running count, not a sum.
//
// c must be a finite number of at least 1; 1.25 is a common choice. A c so
// large that no cap can be reached (1e18, say) is pure hashing. Without
// WithBoundedLoad, hashing is pure.
func WithBoundedLoad(c float64) Option {
	return func(o *config) error {
		if !(c >= 1) || math.IsInf(c, 0) {
			return fmt.Errorf("WithBoundedLoad: factor %v is not a finite number of at least 1", c)
		}
		o.bound = c
		o.set |= optBound
		return nil
	}
}

// WithFallback sets the balancer that a [ConsistentHash] uses for requests
// without a key. The default is a RoundRobin over the same pool, which
// [WithRotationStart] applies to; WithRotationStart beside WithFallback is an error.
func WithFallback(b Balancer) Option {
	return func(o *config) error {
		if b == nil {
			return fmt.Errorf("WithFallback: nil balancer")
		}
		o.fallback = b
		o.set |= optFallback
		return nil
	}
}

// NewConsistentHash returns a consistent-hash balancer over pool that keys
// requests with key.
func NewConsistentHash(pool *Pool, key KeyFunc, opts ...Option) (*ConsistentHash, error) {
	c, err := newConfig("NewConsistentHash", pool, optStart|optBound|optFallback, opts)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, fmt.Errorf("lb: NewConsistentHash: nil KeyFunc")
	}
	if c.set&optStart != 0 && c.set&optFallback != 0 {
		return nil, errors.New("lb: NewConsistentHash: WithRotationStart applies to the default fallback, not to one set by WithFallback")
	}
	h := &ConsistentHash{pool: pool, key: key, bound: c.bound, fallback: c.fallback}
	if h.bound > 0 {
		h.loads = &boundedLoads{c: h.bound}
	}
	if h.fallback == nil {
		rr := &RoundRobin{pool: pool}
		rr.next.Store(c.start)
		h.fallback = rr
	}
	return h, nil
}

// Pool returns the pool the balancer picks from.
func (h *ConsistentHash) Pool() *Pool { return h.pool }

// errZeroHash is the error of a pick by the zero ConsistentHash.
var errZeroHash = fmt.Errorf("lb: ConsistentHash not made by NewConsistentHash: %w", ErrNoServer)

// Pick returns the server for r's key, or the fallback balancer's pick if r
// has no key.
func (h *ConsistentHash) Pick(r *http.Request) (PickResult, error) {
	if h.key == nil {
		return PickResult{}, errZeroHash
	}
	key := h.key(r)
	if key == "" {
		return h.fallback.Pick(r)
	}
	return h.PickKey(key)
}

// PickKey returns the server for key, for callers that have the key at
// hand (a user ID, a shard name): it allocates nothing. An empty key is
// hashed like any other.
func (h *ConsistentHash) PickKey(key string) (PickResult, error) {
	x := hashString(key, 0)
	if h.loads != nil {
		return h.pickBounded(x)
	}
	st := h.pool.load()
	if len(st.active) == 0 {
		return PickResult{}, ErrNoServer
	}
	ring := st.hashRing()
	i := ring.locate(x)
	if s := st.active[ring.points[i].owner]; s.available() && (h.pool.counted(st, s) || h.pool.recheck(s)) {
		return s.picked(), nil
	}
	return h.walk(st, ring, x, i)
}

// walkSteps is the number of ring points a pick looks at before it falls
// back to rendezvous hashing.
func walkSteps(points, servers int) int { return min(points, 8*servers+64) }

// walk goes along the ring from point i to the first server that may take
// the key (unbounded hashing).
func (h *ConsistentHash) walk(st *poolState, ring *hashRing, x uint64, i int) (PickResult, error) {
	sp := slowPath{pool: h.pool, st: st, active: st.active}
	n := len(ring.points)
	var last *Server
	for range walkSteps(n, len(st.active)) {
		s := st.active[ring.points[i].owner]
		if i++; i == n {
			i = 0
		}
		if s == last {
			continue
		}
		last = s
		ok, frac := sp.usable(s)
		if !ok || (frac < 1 && keyCoin(x, s) >= frac) {
			continue // a ramping server takes a fraction f of its keys
		}
		if res, ok := sp.acquire(s); ok {
			return res, nil
		}
	}
	// Nothing along the ring (most servers down): the usable server that
	// ranks highest for this key (rendezvous hashing), which is as
	// consistent.
	var best *Server
	bestScore := math.Inf(-1)
	for _, s := range st.active {
		if ok, _ := sp.usable(s); !ok {
			continue
		}
		if score := rendezvousScore(x, s); score > bestScore {
			best, bestScore = s, score
		}
	}
	if best == nil {
		return PickResult{}, ErrNoServer
	}
	if res, ok := sp.acquire(best); ok {
		return res, nil
	}
	return PickResult{}, ErrNoServer
}

// rendezvousScore is s's weighted rendezvous score for the key hash x.
func rendezvousScore(x uint64, s *Server) float64 {
	u := (float64(mix64(x^s.nameHash)>>11) + 0.5) / (1 << 53)
	return float64(s.weight.Load()) / -math.Log(u)
}

// boundedLoads is the state of WithBoundedLoad: the balancer's requests in
// flight, in total and per server.
//
// Every count goes up in Pick and down in Done, in an order that keeps the
// sum of the per-server counts at or below the total at every instant: the
// total first on the way up, last on the way down. A pick counts itself in
// the total before it looks for a server, so the total it reads is "in
// flight + 1" of the paper.
type boundedLoads struct {
	total atomic.Int64
	_     [cacheLine - 8]byte // the total is the one word every pick writes
	c     float64
	table atomic.Pointer[loadTable]
}

// loadTable is the per-server state of bounded loads for one pool
// snapshot: loads[i] is that of st.active[i]. A server keeps its serverLoad
// from one snapshot to the next for as long as it stays in the pool.
type loadTable struct {
	st     *poolState
	loads  []*serverLoad
	usable atomic.Pointer[usableWeight]
}

// serverLoad is one server's count of the balancer's requests in flight,
// with the Done that ends one of them, bound once so that a pick allocates
// nothing.
type serverLoad struct {
	n    atomic.Int64
	done func(DoneInfo)
}

// usableWeight is the usable weight of a snapshot, as of a flag epoch and
// a panic threshold.
type usableWeight struct {
	epoch   uint64
	panicAt uint64
	// scale is c divided by the usable weight, so that a server's cap is
	// ceil(scale × total × weight); 0 if no server is usable.
	scale float64
}

// flagEpoch counts the changes of any server's flags (health, ejection,
// drain, slow start), so that bounded loads know when to work out the
// usable weight of a pool again: a read of it is a pick's only cost.
var flagEpoch atomic.Uint64

// flagsChanged records a change of some server's flags.
func flagsChanged() { flagEpoch.Add(1) }

// current returns the table for the pool's current snapshot (or a newer
// one), building it when the membership has changed.
func (b *boundedLoads) current(p *Pool) *loadTable {
	for {
		st := p.load()
		t := b.table.Load()
		if t != nil && t.st.version >= st.version {
			return t
		}
		if b.table.CompareAndSwap(t, b.newTable(st, t)) {
			return b.table.Load()
		}
	}
}

// newTable builds the table of st, keeping the serverLoad of every server
// that was in old.
func (b *boundedLoads) newTable(st *poolState, old *loadTable) *loadTable {
	kept := make(map[*Server]*serverLoad)
	if old != nil {
		for i, s := range old.st.active {
			kept[s] = old.loads[i]
		}
	}
	t := &loadTable{st: st, loads: make([]*serverLoad, len(st.active))}
	// New servers' counts side by side, in ring-owner order: a pick on a
	// large pool reads fewer cache lines.
	fresh := 0
	for _, s := range st.active {
		if kept[s] == nil {
			fresh++
		}
	}
	block := make([]serverLoad, fresh)
	for i, s := range st.active {
		l := kept[s]
		if l == nil {
			l = &block[0]
			block = block[1:]
			b.initServerLoad(l, s)
		}
		t.loads[i] = l
	}
	return t
}

// initServerLoad binds the Done of l, the count of s.
func (b *boundedLoads) initServerLoad(l *serverLoad, s *Server) {
	l.done = func(info DoneInfo) {
		if l.n.Add(-1) >= 0 {
			b.total.Add(-1)
		} else {
			l.n.Add(1) // a second Done of one pick: leave the counts be
		}
		s.done(info)
	}
}

// scale returns c over the usable weight of t's snapshot, working the
// weight out again only when a server's flags or the panic threshold have
// changed since it was last worked out.
func (t *loadTable) scale(p *Pool, c float64) float64 {
	epoch, panicAt := flagEpoch.Load(), p.panicAt.Load()
	if u := t.usable.Load(); u != nil && u.epoch == epoch && u.panicAt == panicAt {
		return u.scale
	}
	// The epoch was read before the flags: a change made while they are
	// read makes the next pick work the weight out again.
	u := &usableWeight{epoch: epoch, panicAt: panicAt}
	if w := usableWeightOf(p, t.st.active); w > 0 {
		u.scale = c / float64(w)
	}
	t.usable.Store(u)
	return u.scale
}

// usableWeightOf returns the weight of the servers of active that a pick
// may take, slow-starting ones at their full weight. It changes nothing.
func usableWeightOf(p *Pool, active []*Server) uint64 {
	var w uint64
	panicKnown, panicking := false, false
	for _, s := range active {
		f := s.flags.Load()
		if f&flagDraining != 0 {
			continue
		}
		if f&(flagDown|flagEjected) != 0 {
			if !panicKnown {
				panicKnown, panicking = true, p.panics(active)
			}
			if !panicking {
				continue
			}
		}
		w += uint64(s.weight.Load())
	}
	return w
}

// capOf returns ceil(f) as a count, saturated: a cap too large for an
// int64 is no cap.
func capOf(f float64) int64 {
	if f >= 1<<62 {
		return math.MaxInt64
	}
	return int64(math.Ceil(f))
}

// tryAcquire counts one more of the balancer's requests on the server if
// that keeps its count at or below its cap, ceil(scale × total × w), with
// the total read afresh at every attempt.
func (l *serverLoad) tryAcquire(total *atomic.Int64, scale float64, w int) bool {
	for {
		n := l.n.Load()
		if n+1 > capOf(scale*float64(total.Load())*float64(w)) {
			return false
		}
		if l.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// acquired counts the request on s itself, once l has counted it, and
// returns the pick, whose Done ends both counts. If s has begun to drain or
// has left the pool st was loaded from, it takes both counts back and
// reports false.
func (l *serverLoad) acquired(p *Pool, st *poolState, s *Server) (PickResult, bool) {
	if !p.counted(st, s) && !p.recheck(s) {
		l.n.Add(-1)
		return PickResult{}, false
	}
	return PickResult{Server: s, Done: l.done}, true
}

// pickBounded is PickKey under WithBoundedLoad: along the ring from the
// key's point to the first usable server below its cap.
func (h *ConsistentHash) pickBounded(x uint64) (PickResult, error) {
	b := h.loads
	t := b.current(h.pool)
	st := t.st
	if len(st.active) == 0 {
		return PickResult{}, ErrNoServer
	}
	scale := t.scale(h.pool, b.c)
	if scale == 0 {
		return PickResult{}, ErrNoServer
	}
	b.total.Add(1) // this request, before any server counts it
	ring := st.hashRing()
	i := ring.locate(x)
	sp := slowPath{pool: h.pool, active: st.active}
	n := len(ring.points)
	last := int32(-1)
	for range walkSteps(n, len(st.active)) {
		o := ring.points[i].owner
		if i++; i == n {
			i = 0
		}
		if o == last {
			continue
		}
		last = o
		s := st.active[o]
		if s.flags.Load() != 0 { // else usable, at full share
			ok, frac := sp.usable(s)
			if !ok || (frac < 1 && keyCoin(x, s) >= frac) {
				continue // a ramping server takes a fraction f of its keys
			}
		}
		if l := t.loads[o]; l.tryAcquire(&b.total, scale, int(s.weight.Load())) {
			if res, ok := l.acquired(h.pool, st, s); ok {
				return res, nil
			}
		}
	}
	res, err := h.rendezvous(t, x)
	if err != nil {
		b.total.Add(-1)
	}
	return res, err
}

// rendezvous is the last resort of a bounded pick whose walk along the
// ring found no server (most servers down, or a ramping server below its
// cap that the walk's coin passed over): the usable server below its cap
// that ranks highest for the key (rendezvous hashing), with the usable
// weight worked out afresh. The caller has counted the request in the
// total.
//
// The caps of the usable servers add up to at least c × total ≥ total,
// while the requests they hold are at most total - 1 (this one is not on
// any of them yet): at any instant, some usable server is below its cap.
// A scan reads the counts one after another while other picks and Dones
// change them, so it may see every server full; it then scans again, up to
// a few times, and if every scan saw every server full (which takes other
// goroutines changing the counts through all of them), the pick fails with
// ErrNoServer rather than pass a cap.
func (h *ConsistentHash) rendezvous(t *loadTable, x uint64) (PickResult, error) {
	b := h.loads
	sp := slowPath{pool: h.pool, active: t.st.active}
	for range 4 {
		var w uint64
		for _, s := range t.st.active {
			if ok, _ := sp.usable(s); ok {
				w += uint64(s.weight.Load())
			}
		}
		if w == 0 {
			return PickResult{}, ErrNoServer
		}
		scale := b.c / float64(w)
		best := -1
		bestScore := math.Inf(-1)
		for j, s := range t.st.active {
			if ok, _ := sp.usable(s); !ok {
				continue
			}
			if t.loads[j].n.Load()+1 > capOf(scale*float64(b.total.Load())*float64(s.weight.Load())) {
				continue
			}
			if score := rendezvousScore(x, s); score > bestScore {
				best, bestScore = j, score
			}
		}
		if best < 0 {
			continue
		}
		s, l := t.st.active[best], t.loads[best]
		if l.tryAcquire(&b.total, scale, int(s.weight.Load())) {
			if res, ok := l.acquired(h.pool, t.st, s); ok {
				return res, nil
			}
		}
	}
	return PickResult{}, ErrNoServer
}

// keyCoin returns a number in [0, 1) fixed by the key and the server, so a
// ramping server takes the same keys in every process.
func keyCoin(x uint64, s *Server) float64 {
	return float64(mix64(x^s.nameHash^0x5851f42d4c957f2d)>>11) / (1 << 53)
}

// hashRing is the consistent-hash ring of one pool snapshot.
type hashRing struct {
	points []ringPoint // sorted by hash
	// index[b] is the first point whose hash, shifted right by shift, is
	// at least b: about two points per bucket.
	index []int32
	shift uint
}

// ringPoint is one point of the ring: its hash and its owner, an index
// into poolState.active, side by side so a lookup reads one cache line.
type ringPoint struct {
	hash  uint64
	owner int32
}

const (
	pointsPerServer = 1024    // points per server of the smallest weight
	minPerServer    = 64      // the least, however large the pool
	maxPoints       = 1 << 18 // the most on a ring
)

// locate returns the first point at or after x, wrapping around.
func (r *hashRing) locate(x uint64) int {
	i := int(r.index[x>>r.shift])
	for i < len(r.points) && r.points[i].hash < x {
		i++
	}
	if i == len(r.points) {
		return 0
	}
	return i
}

// hashRing returns the snapshot's ring, building it on first use.
func (st *poolState) hashRing() *hashRing {
	if r := st.ring.Load(); r != nil {
		return r
	}
	st.ring.CompareAndSwap(nil, newHashRing(st.active, st.weights))
	return st.ring.Load()
}

// newHashRing places each server's points: per server, perServer points
// scaled by its weight (weights, in the same order) over the smallest
// weight, the j-th at the hash of its name and j.
func newHashRing(servers []*Server, weights []int) *hashRing {
	minW := weights[0]
	totalW := 0
	for _, w := range weights {
		minW = min(minW, w)
		totalW += w
	}
	perServer := min(pointsPerServer, max(minPerServer, maxPoints/len(servers)))
	scale := float64(perServer) / float64(minW)
	if float64(totalW)*scale > maxPoints {
		scale = maxPoints / float64(totalW)
	}
	r := &hashRing{}
	var buf [8]byte
	for i, s := range servers {
		k := max(1, int(math.Round(float64(weights[i])*scale)))
		base := s.nameHash
		for j := range k {
			binary.LittleEndian.PutUint64(buf[:], uint64(j))
			r.points = append(r.points, ringPoint{mix64(base ^ hashString(string(buf[:]), base)), int32(i)})
		}
	}
	// Ties (equal hashes) are ordered by name, so every process agrees.
	slices.SortFunc(r.points, func(a, b ringPoint) int {
		if a.hash != b.hash {
			if a.hash < b.hash {
				return -1
			}
			return 1
		}
		return strings.Compare(servers[a.owner].name, servers[b.owner].name)
	})
	// About two points per bucket of the index.
	bitsN := max(1, bits.Len(uint(len(r.points)/2)))
	r.shift = uint(64 - bitsN)
	r.index = make([]int32, 1<<bitsN)
	j := 0
	for b := range r.index {
		for j < len(r.points) && r.points[j].hash>>r.shift < uint64(b) {
			j++
		}
		r.index[b] = int32(j)
	}
	return r
}

// hashString is a fast 64-bit hash of s with a seed, the same in every
// process and on every platform (unlike hash/maphash, whose seeds are
// random).
func hashString(s string, seed uint64) uint64 {
	h := seed ^ uint64(len(s))*0x9e3779b97f4a7c15
	for len(s) >= 8 {
		h = mix64(h ^ binary.LittleEndian.Uint64([]byte(s[:8])))
		s = s[8:]
	}
	var tail uint64
	for i := len(s) - 1; i >= 0; i-- {
		tail = tail<<8 | uint64(s[i])
	}
	return mix64(h ^ tail ^ 0xbf58476d1ce4e5b9)
}

// mix64 is the SplitMix64 finalizer: every input bit affects every output
// bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
