package lb

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// A KeyFunc extracts the affinity key of a request: requests with the same
// key go to the same server. An empty key means the request has none.
type KeyFunc func(r *http.Request) string

// KeyClientIP keys requests by the client's IP address: the host part of
// RemoteAddr. When that address is in one of the trusted prefixes (a proxy
// or load balancer in front of this one), it takes instead the rightmost
// address of X-Forwarded-For that is not trusted, which a client cannot
// forge. With no prefixes, X-Forwarded-For is ignored. It allocates nothing.
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
				if hop == "" {
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

// inPrefixes reports whether the address addr (an IP, without a port) is
// in one of prefixes.
func inPrefixes(prefixes []netip.Prefix, addr string) bool {
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

// hostOnly returns the host of a "host:port" address, without brackets, or
// the address itself if it has no port.
func hostOnly(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && !strings.Contains(addr[i:], "]") {
		addr = addr[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
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
type ConsistentHash struct {
	pool     *Pool
	key      KeyFunc
	bound    float64
	fallback Balancer
}

// WithBoundedLoad caps each server of a [ConsistentHash] at c times its
// share of the requests in flight (Mirrokni, Thorup and Zadimoghaddam,
// "Consistent Hashing with Bounded Loads", 2016): a server whose in-flight
// count would go above ceil(c × (in flight + 1) × weight/total weight) is
// passed over for the next one along the key's ring. c must be at least 1;
// 1.25 is a common choice. Without it, hashing is pure.
func WithBoundedLoad(c float64) Option {
	return func(o *config) error {
		if !(c >= 1) || math.IsInf(c, 0) {
			return fmt.Errorf("WithBoundedLoad: factor %v is below 1", c)
		}
		o.bound = c
		o.set |= optBound
		return nil
	}
}

// WithFallback sets the balancer that a [ConsistentHash] uses for requests
// without a key. The default is a RoundRobin over the same pool, which
// [WithStart] applies to.
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
	h := &ConsistentHash{pool: pool, key: key, bound: c.bound, fallback: c.fallback}
	if h.fallback == nil {
		rr := &RoundRobin{pool: pool}
		rr.next.Store(c.start)
		h.fallback = rr
	}
	return h, nil
}

// Pool returns the pool the balancer picks from.
func (h *ConsistentHash) Pool() *Pool { return h.pool }

// Pick returns the server for r's key, or the fallback balancer's pick if r
// has no key.
func (h *ConsistentHash) Pick(r *http.Request) (PickResult, error) {
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
	st := h.pool.load()
	if len(st.active) == 0 {
		return PickResult{}, ErrNoServer
	}
	ring := st.hashRing()
	x := hashString(key, 0)
	i := ring.locate(x)
	s := st.active[ring.points[i].owner]
	if h.bound == 0 && s.available() && (h.pool.counted(st, s) || h.pool.recheck(s)) {
		return s.picked(), nil
	}
	return h.walk(st, ring, x, i)
}

// walk goes along the ring from point i to the first server that may take
// the key.
func (h *ConsistentHash) walk(st *poolState, ring *hashRing, x uint64, i int) (PickResult, error) {
	sp := slowPath{pool: h.pool, st: st, active: st.active}
	var total int64 = -1 // in flight over the pool, summed when first needed
	n := len(ring.points)
	steps := min(n, 8*len(st.active)+64)
	var last *Server
	for range steps {
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
		if h.bound == 0 {
			if res, ok := sp.acquire(s); ok {
				return res, nil
			}
			continue
		}
		// An idle server is always under its cap (which is at least 1):
		// no need to sum the pool's load.
		if s.tryAcquire(1) && (h.pool.state.Load() == st || h.pool.recheck(s)) {
			return PickResult{Server: s, Done: s.done}, nil
		}
		if total < 0 {
			total = 0
			for _, a := range st.active {
				total += max(a.InFlight(), 0)
			}
		}
		limit := int64(math.Ceil(h.bound * float64(total+1) * float64(s.weight) / float64(st.total)))
		if s.tryAcquire(limit) && (h.pool.state.Load() == st || h.pool.recheck(s)) {
			return PickResult{Server: s, Done: s.done}, nil
		}
	}
	// Nothing along the ring (most servers down, or all full): the usable
	// server that ranks highest for this key (rendezvous hashing), which
	// is as consistent.
	var best *Server
	bestScore := math.Inf(-1)
	for _, s := range st.active {
		if ok, _ := sp.usable(s); !ok {
			continue
		}
		u := (float64(mix64(x^s.nameHash)>>11) + 0.5) / (1 << 53)
		if score := float64(s.weight) / -math.Log(u); score > bestScore {
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

// keyCoin returns a number in [0, 1) fixed by the key and the server, so a
// ramping server takes the same keys in every process.
func keyCoin(x uint64, s *Server) float64 {
	return float64(mix64(x^s.nameHash^0x5851f42d4c957f2d)>>11) / (1 << 53)
}

// tryAcquire counts one more request in flight if that keeps the count at
// or below limit.
func (s *Server) tryAcquire(limit int64) bool {
	for {
		l := s.load.Load()
		if inflight(l)+1 > limit {
			return false
		}
		if s.load.CompareAndSwap(l, l+loadPick) {
			if s.flags.Load()&flagDraining != 0 { // see Server.acquire
				s.release(DoneInfo{Err: ErrNotUsed})
				return false
			}
			return true
		}
	}
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
	st.ring.CompareAndSwap(nil, newHashRing(st.active))
	return st.ring.Load()
}

// newHashRing places each server's points: per server, perServer points
// scaled by its weight over the smallest weight, the j-th at the hash of
// its name and j.
func newHashRing(servers []*Server) *hashRing {
	minW := servers[0].weight
	totalW := 0
	for _, s := range servers {
		minW = min(minW, s.weight)
		totalW += s.weight
	}
	perServer := min(pointsPerServer, max(minPerServer, maxPoints/len(servers)))
	scale := float64(perServer) / float64(minW)
	if float64(totalW)*scale > maxPoints {
		scale = maxPoints / float64(totalW)
	}
	r := &hashRing{}
	var buf [8]byte
	for i, s := range servers {
		k := max(1, int(math.Round(float64(s.weight)*scale)))
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
