package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/bits"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// MaxWeight is the largest weight a server may have. It keeps the weighted
// comparisons of [LeastConn] and [P2C] free of overflow.
const MaxWeight = 1_000_000

// Server is one backend: a URL to forward requests to, or an in-process
// [http.Handler] to call. Its name, URL or handler and labels are fixed
// when it is made; its weight may change ([Server.SetWeight]); its state
// (health, requests in flight, counters) lives in atomics, so reading it
// never takes a lock.
//
// A Server may belong to several pools and be shared by any number of
// balancers; its in-flight count is then the sum over all of them. It is
// safe for concurrent use and must not be copied after first use. The zero
// Server is not usable: make one with [NewServer] or [NewHandlerServer]
// (a pool refuses any other).
type Server struct {
	// The fields every pick and every Done touch share the first cache
	// line; the padding keeps other servers' hot fields off it.

	// load packs the two counters every Pick and Done touch into one word,
	// so that each is a single atomic add: the low loadBits bits hold the
	// in-flight count (two's complement), the bits above count completed
	// requests, modulo 2^(64-loadBits).
	load     atomic.Uint64
	flags    atomic.Uint32 // flagDown | flagDraining | flagEjected
	fails    atomic.Uint32 // consecutive failures seen by a Proxy
	weight   atomic.Int32  // 0..MaxWeight; see SetWeight
	failures atomic.Uint64
	// ctr holds the counters of ended requests (histogram, errors by
	// class, retries): apart from the Server, so that a scan of many
	// servers (LeastConn, the status page) touches only their small part.
	ctr *serverCounters
	_   [cacheLine - 32 - wordSize]byte

	name     string
	nameHash uint64       // hashString(name): the server's place in hashing
	url      *url.URL     // nil for a handler server
	handler  http.Handler // nil for a URL server
	done     func(DoneInfo)

	// slow is the slow-start ramp, nil when there is none; flagRamping
	// says there may be one, so that picks of other servers skip it.
	slow atomic.Pointer[slowStart]

	// idle, while the server drains, is closed when its in-flight count
	// reaches zero.
	idle atomic.Pointer[chan struct{}]

	// labels is the server's metadata, never changed once made; nil when
	// there is none.
	labels map[string]string

	// ev is what changes of state touch: their order, the state as Stats
	// shows it, the pools to report them to.
	ev *serverEvents

	// extraDoneSeen is set once an extra Done has been logged.
	extraDoneSeen atomic.Bool
	// The padding rounds the size up to whole cache lines, with ints and
	// pointers of 8 bytes (amd64, arm64) as of 4 (386, arm).
	_ [(cacheLine - coldSize%cacheLine) % cacheLine]byte
}

// wordSize is the size of an int or a pointer: 8 bytes on 64-bit
// platforms, 4 on 32-bit ones.
const wordSize = bits.UintSize / 8

// coldSize is the size of the fields of Server after its first cache line:
// ten words (name: 2, url: 1, handler: 2, done: 1, slow: 1, idle: 1,
// labels: 1, ev: 1), a 64-bit integer and a 32-bit one.
const coldSize = 10*wordSize + 8 + 4

// serverCounters are the counters of a server's ended requests that only
// a Done with an outcome to record and the readers of statistics touch.
type serverCounters struct {
	// latencySum is the total of the durations in hist, in nanoseconds,
	// modulo 2^64: unsigned, so that it reaches the largest Duration (292
	// years) long before it wraps.
	latencySum atomic.Uint64
	hist       histogram                      // the durations of ended requests
	errs       [numErrorClasses]atomic.Uint64 // ended requests by error class
	retries    atomic.Uint64                  // attempts that were retries (Proxy)
}

// slowStart is one slow-start ramp: the server's share grows from minRamp
// to full between start and start+window (Unix nanoseconds). It is never
// changed once made: a new ramp is a new value, so that a pick can end the
// ramp it found over, and only that one.
type slowStart struct {
	start, window int64
}

// cacheLine is the size the hot fields of Server and of the round-robin
// counters are padded to, so that two cores updating different ones do not
// contend for one cache line.
const cacheLine = 64

const (
	loadBits    = 24 // in-flight part of Server.load: up to 8,388,607 at once
	loadMask    = 1<<loadBits - 1
	loadPick    = 1               // Pick: one more in flight
	loadRelease = 1<<loadBits - 1 // Done: one less in flight, one more completed
	loadSign    = 1 << (loadBits - 1)

	flagDown     = 1 << 0 // marked unhealthy (SetHealthy, active checks)
	flagDraining = 1 << 1 // being drained
	flagEjected  = 1 << 2 // ejected by a Proxy's passive health
	flagRamping  = 1 << 3 // slow-starting

	// minRamp is the share of its weight a server gets as its slow start
	// begins.
	minRamp = 0.1
)

// A ServerOption configures a Server made by [NewServer] or
// [NewHandlerServer].
type ServerOption func(*serverOptions)

type serverOptions struct {
	weight  int
	name    string
	nameSet bool
	down    bool
	labels  map[string]string
	lerr    error // a bad WithLabels
}

// WithWeight sets the server's relative weight: a server of weight 2 gets
// twice the share of one of weight 1 from the weighted algorithms. The
// default is 1. Weight 0 means drained: the server stays in its pools (and
// in their status) but no balancer picks it. A weight below 0 or above
// [MaxWeight] is an error.
func WithWeight(w int) ServerOption {
	return func(o *serverOptions) { o.weight = w }
}

// WithName sets the server's name, which identifies it in its pools (no two
// members of a pool share a name), in logs, in statistics and, for the
// hashing balancers, in the hash. The default for a URL server is the URL as
// given to [NewServer], without its user info.
func WithName(name string) ServerOption {
	return func(o *serverOptions) { o.name, o.nameSet = name, true }
}

// WithLabels attaches labels to the server: key/value metadata such as
// its zone or version, which custom balancers read with [Server.Labels] and
// status pages show ([Stats].Labels). The map is copied; later changes to it
// do not reach the server. An empty key is an error. Given more than once,
// the last one counts.
func WithLabels(labels map[string]string) ServerOption {
	return func(o *serverOptions) {
		o.labels, o.lerr = nil, nil
		if len(labels) == 0 {
			return
		}
		if _, ok := labels[""]; ok {
			o.lerr = fmt.Errorf("WithLabels: empty label key \"\" (value %q)", labels[""])
			return
		}
		o.labels = maps.Clone(labels)
	}
}

// WithDown makes the server start unhealthy, so that it takes no traffic
// until something (a health check) marks it healthy.
func WithDown() ServerOption {
	return func(o *serverOptions) { o.down = true }
}

// NewServer returns a server that forwards to the URL raw, which must have a
// scheme and a host, such as "http://10.0.0.1:8080" or
// "https://api.internal/v1". Note that "localhost:8080" is rejected: it
// parses as the scheme "localhost" with no host. A server for a [TCPProxy]
// only, such as a database, is "tcp://10.0.0.1:5432": the port is required,
// and a [HealthChecker] probes it by connecting (see [CheckTCP]).
//
// User info in raw ("https://user:password@host") is a credential: a
// [Proxy] sends it on every request it forwards to the server but a TRACE
// (whose answer would show it to the client), as HTTP Basic
// authentication, unless the client's request has an Authorization header
// of its own (which is then forwarded as it is), and the HTTP probes
// of a [HealthChecker] send it too, so that a probe sees what clients see.
// It is never shown or logged: the default name, [Stats].URL, log lines and
// errors leave it out (errors about a URL that does not parse replace it
// with "***").
func NewServer(raw string, opts ...ServerOption) (*Server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		shown, redacted := redactRaw(raw)
		var uerr *url.Error
		if redacted || !errors.As(err, &uerr) {
			// The parser's message may quote part of the user info.
			return nil, fmt.Errorf("lb: server URL %q: does not parse as a URL", shown)
		}
		return nil, fmt.Errorf("lb: server URL %q: %w", shown, uerr.Err)
	}
	name := raw
	if u.User != nil {
		name = withoutUserinfo(raw)
	}
	if u.Scheme == "" || u.Host == "" {
		shown, _ := redactRaw(raw)
		return nil, fmt.Errorf("lb: server URL %q: missing scheme or host (want scheme://host[:port])", shown)
	}
	if u.Scheme == "tcp" && (u.Port() == "" || u.Path != "" || u.RawQuery != "" || u.User != nil) {
		shown, _ := redactRaw(raw)
		return nil, fmt.Errorf("lb: server URL %q: a tcp URL is tcp://host:port, with a port and nothing else", shown)
	}
	return newServer(fmt.Sprintf("server URL %q", name), name, u, nil, opts)
}

// NewHandlerServer returns a server that calls h in process, with no network
// hop: this is how a service balances between handlers it already has, and
// how tests run without sockets. name identifies the server and must not be
// empty.
func NewHandlerServer(name string, h http.Handler, opts ...ServerOption) (*Server, error) {
	if name == "" {
		return nil, errors.New(`lb: handler server: empty name ""`)
	}
	if h == nil {
		return nil, fmt.Errorf("lb: handler server %q: nil handler", name)
	}
	return newServer(fmt.Sprintf("handler server %q", name), name, nil, h, opts)
}

func newServer(what, name string, u *url.URL, h http.Handler, opts []ServerOption) (*Server, error) {
	o := serverOptions{weight: 1, name: name}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("lb: %s: option %d is nil", what, i)
		}
		opt(&o)
	}
	switch {
	case o.weight < 0:
		return nil, fmt.Errorf("lb: %s: weight %d is negative", what, o.weight)
	case o.weight > MaxWeight:
		return nil, fmt.Errorf("lb: %s: weight %d is above the maximum %d", what, o.weight, MaxWeight)
	case o.nameSet && o.name == "":
		return nil, fmt.Errorf(`lb: %s: WithName: empty name ""`, what)
	case o.lerr != nil:
		return nil, fmt.Errorf("lb: %s: %w", what, o.lerr)
	}
	s := &Server{name: o.name, nameHash: hashString(o.name, 0), url: u, handler: h, labels: o.labels, ctr: new(serverCounters)}
	s.weight.Store(int32(o.weight))
	if o.down {
		s.flags.Store(flagDown)
	}
	s.ev = newServerEvents(s.flags.Load())
	s.done = s.release // bound once: Pick and Done allocate nothing
	return s, nil
}

// Name returns the server's name.
func (s *Server) Name() string { return s.name }

// String returns the server's name.
func (s *Server) String() string { return s.name }

// URL returns a copy of the URL the server forwards to, or nil for a handler
// server. The copy keeps the URL's user info: show [Stats].URL instead.
func (s *Server) URL() *url.URL {
	if s.url == nil {
		return nil
	}
	u := *s.url
	if u.User != nil {
		ui := *u.User
		u.User = &ui
	}
	return &u
}

// Handler returns the in-process handler of a server made by
// [NewHandlerServer], or nil for a URL server.
func (s *Server) Handler() http.Handler { return s.handler }

// Weight returns the server's weight; 0 means it takes no picks.
func (s *Server) Weight() int { return int(s.weight.Load()) }

// SetWeight changes the server's weight while traffic flows, keeping its
// state and counters (requests in flight, statistics, health, slow start).
// Every balancer over every pool the server is in sees the new weight:
// [LeastConn], [P2C] and the latency-aware balancers at once, and the
// balancers that derive tables from the weights ([WeightedRoundRobin],
// [Random], [ConsistentHash]) once each pool has rebuilt its snapshot, as
// for a change of membership (its version grows by one), which SetWeight
// does before it returns. Weight 0 drains the server as [WithWeight] does:
// it stays in its pools and takes no picks; requests in flight are not
// affected. The observers of those pools hear [EventWeightChanged]. A
// weight below 0 or above [MaxWeight] is an error, and the weight is then
// left as it was. Setting the weight it already has changes nothing.
func (s *Server) SetWeight(w int) error {
	switch {
	case w < 0:
		return fmt.Errorf("lb: server %q: SetWeight: weight %d is negative", s.name, w)
	case w > MaxWeight:
		return fmt.Errorf("lb: server %q: SetWeight: weight %d is above the maximum %d", s.name, w, MaxWeight)
	}
	// The weight is stored and the pools read under the lock of the
	// server's changes, which Pool.Add and Pool.Update take to record
	// themselves among its pools: a pool either sees the new weight once
	// it has done so (Pool.restale), or is among the pools rebuilt here.
	var pools []*Pool
	s.change(nil, func(ev *serverEvents, _ time.Time) (Event, bool) {
		old := int(s.weight.Swap(int32(w)))
		if old == w {
			return Event{}, false
		}
		for _, wp := range ev.pools {
			if p := wp.Value(); p != nil {
				pools = append(pools, p)
			}
		}
		return Event{Kind: EventWeightChanged, Weight: w, OldWeight: old}, true
	})
	if pools == nil {
		return nil // unchanged, or in no pool
	}
	flagsChanged() // hashing's cached usable weight is worked out again
	for _, p := range pools {
		p.weightChanged(s)
	}
	s.flush() // EventWeightChanged, once the snapshots are rebuilt
	return nil
}

// Labels returns a copy of the server's labels (see [WithLabels]), or nil
// when it has none.
func (s *Server) Labels() map[string]string { return maps.Clone(s.labels) }

// Healthy reports whether the server is marked healthy. New servers are
// healthy unless made with [WithDown].
func (s *Server) Healthy() bool { return s.flags.Load()&flagDown == 0 }

// SetHealthy marks the server healthy or not, and reports whether that
// changed its state, so that callers can log transitions only. Balancers
// skip unhealthy servers; requests already in flight are not affected. A
// change is reported to the observers of the server's pools
// ([Pool.Observe]) as [EventUp] or [EventDown] (with a nil Err).
func (s *Server) SetHealthy(healthy bool) (changed bool) {
	changed = s.setHealth(healthy, nil)
	s.flush()
	return changed
}

// setFlag sets f and reports whether it was clear before.
func (s *Server) setFlag(f uint32) bool {
	changed := s.flags.Or(f)&f == 0
	if changed {
		flagsChanged()
	}
	return changed
}

// clearFlag clears f and reports whether it was set before.
func (s *Server) clearFlag(f uint32) bool {
	changed := s.flags.And(^f)&f != 0
	if changed {
		flagsChanged()
	}
	return changed
}

// Draining reports whether the server is being drained: it takes no new
// picks while its requests in flight finish.
func (s *Server) Draining() bool { return s.flags.Load()&flagDraining != 0 }

// SlowStart ramps the server's share of traffic up from 10% of its weight
// to all of it, linearly, over window starting now, so that a server that
// has just joined or recovered is not flooded (the slow start of HAProxy and
// Envoy). A window of 0 or less ends a ramp at once. [HealthChecker] calls
// it when a server comes back, if told to with [WithCheckSlowStart].
//
// How each balancer applies the ramp, at fraction f of the weight:
// [RoundRobin], [WeightedRoundRobin] and [Random] take a ramping server when
// its turn or draw comes up only with probability f, and otherwise move on
// to the next turn or draw; [LeastConn] and [P2C] compare its load as if its
// weight were f times its weight. Either way its share is close to f times
// what it would be. [ConsistentHash] sends it the fraction f of its keys
// (the same keys in every process) and the rest along the ring. A ramp
// costs the balancers nothing once it has ended.
//
// The observers of the server's pools hear of the ramp: see
// [Server.SlowStartAt].
func (s *Server) SlowStart(window time.Duration) { s.SlowStartAt(time.Now(), window) }

// SlowStartAt is SlowStart with a ramp that began at start, for a pool
// whose balancers run on a clock of their own ([Pool.SetClock]).
//
// The observers of the server's pools ([Pool.Observe]) hear
// [EventSlowStartBegan] at once, and [EventSlowStartEnded] when the ramp
// ends: when start+window comes on the real clock, but never later than
// window from the call (for a pool on a clock of its own), or at a call
// with a window of 0 or less. A new ramp replaces the one under way, whose
// end is then not reported.
func (s *Server) SlowStartAt(start time.Time, window time.Duration) {
	s.slowStartAt(start, window)
	s.flush()
}

// slowStartAt is SlowStartAt, but only queues its event (see flush).
func (s *Server) slowStartAt(start time.Time, window time.Duration) {
	var r *slowStart
	if window > 0 {
		r = &slowStart{start: start.UnixNano(), window: int64(window)}
	}
	s.change(nil, func(ev *serverEvents, _ time.Time) (Event, bool) {
		s.slow.Store(r)
		s.syncRampFlag()
		return s.rampChanged(ev, r, window)
	})
}

// endRamp ends the ramp r, which a pick found over, unless another ramp
// has replaced it meanwhile.
func (s *Server) endRamp(r *slowStart) {
	if s.slow.CompareAndSwap(r, nil) {
		s.syncRampFlag()
	}
}

// syncRampFlag makes flagRamping agree with s.slow after a change of it.
// Whoever clears the flag looks at the ramp again afterwards and sets the
// flag back if a new ramp has come in meanwhile, so a new ramp always ends
// with its flag set. (The flag may be left set with no ramp, by a race with
// an end; the next pick that looks ends that, through endRamp(nil).)
func (s *Server) syncRampFlag() {
	for {
		if s.slow.Load() != nil {
			s.setFlag(flagRamping)
			return
		}
		s.clearFlag(flagRamping)
		if s.slow.Load() == nil {
			return
		}
	}
}

// ramp returns the fraction of its weight the server gets at time now
// (Unix nanoseconds), and ends the ramp when it is over, so that picks go
// back to the fast path.
func (s *Server) ramp(now int64) float64 {
	f, over, r := s.rampAt(now)
	if over {
		s.endRamp(r)
	}
	return f
}

// rampAt returns the fraction of its weight the server gets at time now,
// whether a ramp has run its course, and the ramp it looked at; it changes
// nothing.
func (s *Server) rampAt(now int64) (frac float64, over bool, r *slowStart) {
	if s.flags.Load()&flagRamping == 0 {
		return 1, false, nil
	}
	r = s.slow.Load()
	if r == nil {
		return 1, true, nil // a flag left behind: ending nil clears it
	}
	elapsed := now - r.start
	if elapsed >= r.window {
		return 1, true, r
	}
	return minRamp + (1-minRamp)*float64(max(elapsed, 0))/float64(r.window), false, r
}

// Ejected reports whether a [Proxy]'s passive health check has taken the
// server out for a cool-down.
func (s *Server) Ejected() bool { return s.flags.Load()&flagEjected != 0 }

// Available reports whether balancers may pick the server now: it is
// healthy, not ejected, not draining, and its weight is above 0. A
// slow-starting server is available, at a reduced share.
func (s *Server) Available() bool {
	return s.weight.Load() > 0 && s.flags.Load()&(flagDown|flagEjected|flagDraining) == 0
}

// available is the balancers' fast check, for servers known to have weight
// > 0 (the only ones they see, see poolState.active): no flag at all. A
// server with any flag set goes through slowPath.usable.
func (s *Server) available() bool { return s.flags.Load() == 0 }

// InFlight returns the number of requests picked on this server whose Done
// has not been called yet, over every balancer that shares it.
func (s *Server) InFlight() int64 { return inflight(s.load.Load()) }

func inflight(load uint64) int64 {
	return int64(load&loadMask) - int64(load&loadSign)<<1
}

// Acquire counts one more request in flight on s and returns a PickResult
// whose Done ends it. Balancers call it once they have chosen s; a custom
// [Balancer] should do the same. It does not check health.
//
// It does check for a drain: if a [Pool.Drain] of s has begun, it counts
// nothing and returns the zero PickResult (nil Server and Done), so that a
// pick that chose s before the drain began cannot land on it after Drain
// has seen it idle. A caller that gets no Server should choose again or
// return [ErrNoServer]. Acquire cannot tell a drain that has ended: s has
// then left the pool, but Acquire does not know the pool, and counts the
// request. A custom balancer that chose s before a Drain began and calls
// Acquire after it returned lands on s.
func (s *Server) Acquire() PickResult {
	if !s.acquire() {
		return PickResult{}
	}
	return PickResult{Server: s, Done: s.done}
}

// picked returns the PickResult of a pick of s that has been counted.
func (s *Server) picked() PickResult { return PickResult{Server: s, Done: s.done} }

// acquire counts one more request in flight on s, unless a Drain of s has
// begun: it reports whether it did. It counts first and reads the flag
// after, while Drain sets the flag first and reads the count after, so
// either the pick sees the flag and backs out, or Drain sees the pick and
// waits for its Done.
func (s *Server) acquire() bool {
	s.load.Add(loadPick)
	return s.flags.Load()&flagDraining == 0 || s.backOut()
}

// backOut takes back a count that acquire made, waking Drain if it waits
// for it, and returns false. It is kept out of acquire so that acquire is
// inlined.
//
//go:noinline
func (s *Server) backOut() bool {
	s.release(DoneInfo{Err: errNotUsed})
	return false
}

// release is the Done of every PickResult for s.
//
// Done is one function per server, shared by all its picks, so it cannot
// tell which pick it ends. What it can tell is a Done that would take the
// in-flight count below zero: with no pick left to end, it is an extra
// Done (a second call for one pick), and it changes nothing. An extra Done
// while other picks of s are in flight cannot be told apart from theirs: it
// ends one of them early, and the Done of the last of them finds the count
// at zero and does nothing, so the count is right again once s is idle.
func (s *Server) release(info DoneInfo) {
	delta := uint64(loadRelease) // one less in flight, one more completed
	if info.Unused() {
		delta = ^uint64(0) // one less in flight, no request counted
	}
	for {
		l := s.load.Load()
		if inflight(l) <= 0 {
			s.extraDone()
			return
		}
		if s.load.CompareAndSwap(l, l+delta) {
			if inflight(l) == 1 && s.flags.Load()&flagDraining != 0 {
				s.signalIdle()
			}
			break
		}
	}
	if info.Unused() {
		return
	}
	if (info.Err != nil || info.StatusCode >= 400) && s.countError(info) == classClientGone {
		return // the request was cut short by its client: its time is not the server's
	}
	if d := int64(info.Duration); d > 0 {
		s.ctr.latencySum.Add(uint64(d))
		s.ctr.hist.observe(d)
	}
}

// countError counts a request that ended with an error or a status of 400
// or more in its class, and as a failure unless it was the client's doing
// or a 4xx. It is kept out of release, which is then small enough to stay
// fast. It returns the class.
func (s *Server) countError(info DoneInfo) int {
	c := errorClass(info)
	if c == classNone {
		return c
	}
	s.ctr.errs[c].Add(1)
	if c != class4xx && c != classClientGone {
		s.failures.Add(1)
	}
	return c
}

// extraDone reports a Done called with no request in flight on s, through
// slog's default logger, the first time it happens on s.
func (s *Server) extraDone() {
	if s.extraDoneSeen.CompareAndSwap(false, true) {
		slog.Default().LogAttrs(context.Background(), slog.LevelError,
			"lb: PickResult.Done called more times than Pick; extra calls are ignored",
			slog.String("server", s.name))
	}
}

// signalIdle wakes whoever waits for the draining server to go idle.
func (s *Server) signalIdle() {
	if ch := s.idle.Swap(nil); ch != nil {
		close(*ch)
	}
}

// Stats is a snapshot of a server's configuration and counters, as served by
// status pages. The fields are read one by one without a lock, so under
// traffic they may be a few requests apart.
type Stats struct {
	Name     string `json:"name"`
	URL      string `json:"url,omitempty"` // without user info; empty for a handler server
	Weight   int    `json:"weight"`
	Healthy  bool   `json:"healthy"`
	Draining bool   `json:"draining"`
	Ejected  bool   `json:"ejected"`
	// State is the server's state as balancers see it: "up", "down"
	// (marked unhealthy), "ejected" (by passive health) or "draining".
	// When several apply, the first of draining, down and ejected wins.
	State string `json:"state"`
	// Reason says why the server is in State, for "down" (the error of
	// the probe that took it down, or that a caller marked it down) and
	// "ejected" (the last failure before the ejection); empty otherwise.
	Reason string `json:"reason,omitempty"`
	// Since is when the server entered State; zero if it has been in it
	// since it was made.
	Since time.Time `json:"since,omitzero"`
	// EjectedUntil is when the server's ejection ends; zero when it is not
	// ejected.
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	// Ejections counts the times passive health has ejected the server.
	Ejections uint64 `json:"ejections"`
	// Ramp is the fraction of its weight the server gets while it slow
	// starts, from 0.1 to 1; 1 when it is not slow-starting.
	Ramp float64 `json:"ramp"`
	// InFlight is the number of requests picked and not yet done.
	InFlight int64 `json:"in_flight"`
	// Requests counts the requests that have ended (Done was called). It
	// wraps to 0 after 2^40 (about 10^12) requests.
	Requests uint64 `json:"requests"`
	// Failures counts the ended requests whose DoneInfo had an error or a
	// status of 500 or more, unless the error was the client's doing
	// (context.Canceled, [ErrClientBody]).
	Failures uint64 `json:"failures"`
	// Errors counts the ended requests by class of error (see
	// [ErrorCounts]). Transport, Timeout and Status5xx add up to Failures.
	Errors ErrorCounts `json:"errors"`
	// P50, P90 and P99 are the median, 90th and 99th percentiles of the
	// requests' durations, estimated from [Server.Latency]; 0 when no
	// request has reported a duration.
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	// Retries counts the attempts on this server that were retries of a
	// request by a [Proxy] (which tried another server first).
	Retries uint64 `json:"retries"`
	// Labels is a copy of the server's labels; nil when it has none.
	Labels map[string]string `json:"labels,omitempty"`
}

// Stats returns a snapshot of the server's state and counters.
func (s *Server) Stats() Stats {
	load, flags := s.load.Load(), s.flags.Load()
	ramp, _, _ := s.rampAt(time.Now().UnixNano()) // a read changes nothing
	st := Stats{
		Name:      s.name,
		Weight:    int(s.weight.Load()),
		Healthy:   flags&flagDown == 0,
		Draining:  flags&flagDraining != 0,
		Ejected:   flags&flagEjected != 0,
		State:     stateOf(flags),
		Ejections: s.ev.ejections.Load(),
		Ramp:      ramp,
		InFlight:  inflight(load),
		Requests:  load >> loadBits,
		Failures:  s.failures.Load(),
		Labels:    maps.Clone(s.labels),
		Errors:    s.errorCounts(),
		Retries:   s.ctr.retries.Load(),
	}
	if s.ctr.latencySum.Load() != 0 {
		var buf [histBuckets]Bucket
		h := s.latencyInto(buf[:])
		st.P50, st.P90, st.P99 = h.Quantile(0.5), h.Quantile(0.9), h.Quantile(0.99)
	}
	if r := s.ev.rec.Load(); r.state == st.State { // else a change is under way
		st.Reason, st.Since, st.EjectedUntil = r.reason, r.since, r.ejectedUntil
	}
	if s.url != nil {
		st.URL = displayURL(s.url)
	}
	return st
}
