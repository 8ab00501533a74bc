package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// HealthChecker probes every server of a pool and marks it down or up, so
// that balancers skip the servers that fail. Each server has its own probe
// loop, so a server that hangs delays no other. A server goes down after
// fall consecutive failed probes and comes back after rise consecutive
// passes (HAProxy's rise and fall; defaults 2 and 3), which keeps a flapping
// server from thrashing in and out.
//
// By default a probe is an HTTP GET of "/" on a URL server (with the
// credentials of its URL, as [NewServer] says), or a call of an in-process
// server's handler, and passes on a status from 200 to 399 within
// 2 s; a "tcp://host:port" server passes when a connection to it succeeds
// within that time ([CheckTCP]); [WithCheckFunc] replaces it with any check (a TCP dial, a gRPC health
// call). Servers are probed every 5 s while up and every 2 s while down, each
// interval varied by up to ±10% so that probes do not march in step.
//
// The checker follows the pool: servers added while it runs are probed from
// then on, removed ones are no longer probed. A server starts as it is
// (healthy, unless made with [WithDown]) unless [WithCheckStartDown] says new
// servers wait for their first passing probe. Transitions are logged and
// counted; single probes are not logged. Transitions are also reported to
// the observers of the servers' pools ([Pool.Observe]): [EventDown] with
// the error of the probe that took the server down, [EventUp], and the
// slow-start events of [WithCheckSlowStart].
//
// Start it with Run, which returns once its context is done and every probe
// goroutine it started has stopped. A HealthChecker is safe for concurrent
// use.
//
// The zero HealthChecker is not usable: make one with NewHealthChecker (its
// Run returns an error).
type HealthChecker struct {
	pool *Pool
	o    healthOptions

	running atomic.Bool
	mu      sync.Mutex              // guards state
	state   map[*Server]*probeState // per server: consecutive results

	probes, failures, downs, ups atomic.Uint64

	// live counts the probe goroutines that Run and CheckOnce have started
	// and that have not yet returned; tests read it.
	live atomic.Int64
}

// probeState is one server's run of results. It is guarded by its own
// mutex, since Run's loop and CheckOnce may probe the same server.
type probeState struct {
	mu      sync.Mutex
	passes  int
	fails   int
	pending bool // waiting for a first pass (WithCheckStartDown)
	joined  bool // added to the pool after the checker first saw it

	// handlerBusy is set while a probe's call of an in-process server's
	// handler runs, which may outlast the probe (a handler that ignores its
	// context): no other call starts until it returns.
	handlerBusy atomic.Bool
}

// A HealthOption configures a [HealthChecker].
type HealthOption func(*healthOptions) error

type healthOptions struct {
	method           string
	path             string
	statusLo         int
	statusHi         int
	timeout          time.Duration
	upInterval       time.Duration
	downInterval     time.Duration
	jitter           float64
	rise, fall       int
	probe            func(context.Context, *Server) error
	rand             func() float64 // draws the jitter, in [0, 1)
	logger           *slog.Logger
	slowStart        time.Duration
	startDown        bool
	client           *http.Client
	defaultTransport *http.Transport
}

// WithCheckPath sets the path of HTTP probes: an absolute path on the
// server's host (the path of the server's URL is not prefixed). The default
// is "/".
func WithCheckPath(path string) HealthOption {
	return func(o *healthOptions) error {
		if path == "" || path[0] != '/' {
			return fmt.Errorf("WithCheckPath: path %q does not start with /", path)
		}
		o.path = path
		return nil
	}
}

// WithCheckMethod sets the method of HTTP probes. The default is GET. A
// method that is not an HTTP token (RFC 9110, section 9.1) is an error: no
// probe with it could be sent, and every server would be marked down.
func WithCheckMethod(method string) HealthOption {
	return func(o *healthOptions) error {
		if method == "" {
			return errors.New("WithCheckMethod: empty method")
		}
		if !httpToken(method) {
			return fmt.Errorf("WithCheckMethod: method %q is not an HTTP token", method)
		}
		o.method = method
		return nil
	}
}

// WithCheckStatus sets the range of statuses, lo to hi inclusive, with
// which an HTTP probe passes. The default is 200 to 399.
func WithCheckStatus(lo, hi int) HealthOption {
	return func(o *healthOptions) error {
		if lo < 100 || hi > 999 || lo > hi {
			return fmt.Errorf("WithCheckStatus: invalid range %d to %d", lo, hi)
		}
		o.statusLo, o.statusHi = lo, hi
		return nil
	}
}

// WithCheckTimeout bounds each probe. The default is 2 s.
func WithCheckTimeout(d time.Duration) HealthOption {
	return func(o *healthOptions) error {
		if d <= 0 {
			return fmt.Errorf("WithCheckTimeout: %v is not positive", d)
		}
		o.timeout = d
		return nil
	}
}

// minInterval is the shortest period of a repeated probe or lookup: below
// it, a duration was most likely given without its unit.
const minInterval = 10 * time.Millisecond

// WithCheckInterval sets the time between probes of a server that is up,
// and of one that is down (often shorter, so that it comes back sooner).
// The defaults are 5 s and 2 s. Both must be at least 10 ms: a bare number
// such as 5 is 5 ns, which would probe without pause.
func WithCheckInterval(up, down time.Duration) HealthOption {
	return func(o *healthOptions) error {
		if up <= 0 || down <= 0 {
			return fmt.Errorf("WithCheckInterval: intervals %v and %v must be positive", up, down)
		}
		if up < minInterval || down < minInterval {
			return fmt.Errorf("WithCheckInterval: intervals %v and %v must be at least %v (a duration without its unit?)", up, down, time.Duration(minInterval))
		}
		o.upInterval, o.downInterval = up, down
		return nil
	}
}

// WithCheckJitter varies each interval at random by up to the fraction f of
// it, either way. The default is 0.1; 0 makes probes strictly periodic. An
// interval the jitter would take past the largest [time.Duration] is capped
// there.
func WithCheckJitter(f float64) HealthOption {
	return func(o *healthOptions) error {
		if !(f >= 0 && f < 1) {
			return fmt.Errorf("WithCheckJitter: fraction %v is not in [0, 1)", f)
		}
		o.jitter = f
		return nil
	}
}

// WithCheckRiseFall sets how many consecutive passing probes bring a server up
// (rise) and how many failing ones take it down (fall). The defaults are 2
// and 3.
func WithCheckRiseFall(rise, fall int) HealthOption {
	return func(o *healthOptions) error {
		if rise < 1 || fall < 1 {
			return fmt.Errorf("WithCheckRiseFall: rise %d and fall %d must be at least 1", rise, fall)
		}
		o.rise, o.fall = rise, fall
		return nil
	}
}

// WithCheckFunc replaces the HTTP probe with f, which returns nil when s is
// healthy. f gets a context that ends at the probe timeout, and must return
// soon after it ends.
func WithCheckFunc(f func(ctx context.Context, s *Server) error) HealthOption {
	return func(o *healthOptions) error {
		if f == nil {
			return errors.New("WithCheckFunc: nil function")
		}
		o.probe = f
		return nil
	}
}

// WithCheckLogger sets the logger for health transitions. The default is
// [slog.Default].
func WithCheckLogger(l *slog.Logger) HealthOption {
	return func(o *healthOptions) error {
		if l == nil {
			return errors.New("WithCheckLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithCheckSlowStart makes servers that come back up, and servers added to the
// pool while the checker runs, ramp their share of traffic up over window
// (see [Server.SlowStart]). The default is no slow start.
func WithCheckSlowStart(window time.Duration) HealthOption {
	return func(o *healthOptions) error {
		if window < 0 {
			return fmt.Errorf("WithCheckSlowStart: negative window %v", window)
		}
		o.slowStart = window
		return nil
	}
}

// WithCheckStartDown makes servers wait for their first passing probe before
// they take traffic: the checker marks each server down when it first sees
// it, and up at its first pass. By default a server keeps the health it
// has (new servers are healthy) until fall probes fail.
func WithCheckStartDown() HealthOption {
	return func(o *healthOptions) error {
		o.startDown = true
		return nil
	}
}

// WithCheckClient sets the HTTP client of probes. Its own timeout, if any,
// applies on top of the probe timeout. The default client has its own
// transport, which ignores proxy environment variables.
func WithCheckClient(c *http.Client) HealthOption {
	return func(o *healthOptions) error {
		if c == nil {
			return errors.New("WithCheckClient: nil client")
		}
		o.client = c
		return nil
	}
}

// NewHealthChecker returns a checker for the servers of pool. It does
// nothing until Run or CheckOnce is called.
func NewHealthChecker(pool *Pool, opts ...HealthOption) (*HealthChecker, error) {
	if pool == nil {
		return nil, errors.New("lb: NewHealthChecker: nil pool")
	}
	o := healthOptions{
		method:       http.MethodGet,
		path:         "/",
		statusLo:     200,
		statusHi:     399,
		timeout:      2 * time.Second,
		upInterval:   5 * time.Second,
		downInterval: 2 * time.Second,
		jitter:       0.1,
		rise:         2,
		fall:         3,
		rand:         rand.Float64,
	}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("lb: NewHealthChecker: option %d is nil", i)
		}
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("lb: NewHealthChecker: %w", err)
		}
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.client == nil {
		o.defaultTransport = &http.Transport{
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     30 * time.Second,
		}
		o.client = &http.Client{
			Transport: o.defaultTransport,
			// A redirect is an answer: its status decides.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &HealthChecker{pool: pool, o: o, state: make(map[*Server]*probeState)}, nil
}

// HealthStats counts what a [HealthChecker] has done.
//
// It is a plain value.
type HealthStats struct {
	Probes   uint64 `json:"probes"`   // probes made
	Failures uint64 `json:"failures"` // probes that failed
	Downs    uint64 `json:"downs"`    // servers marked down
	Ups      uint64 `json:"ups"`      // servers marked up
}

// Stats returns the checker's counters.
func (hc *HealthChecker) Stats() HealthStats {
	return HealthStats{
		Probes:   hc.probes.Load(),
		Failures: hc.failures.Load(),
		Downs:    hc.downs.Load(),
		Ups:      hc.ups.Load(),
	}
}

// Run probes the pool's servers until ctx is done, following changes of
// membership, and returns nil once every probe goroutine has stopped. It
// returns an error at once if the checker is already running.
//
// The one call Run may leave behind is that of an in-process server's
// handler that ignores its request's context: a probe fails at its
// timeout, but the call goes on until the handler returns. Until then, the
// server's probes fail without calling it again.
func (hc *HealthChecker) Run(ctx context.Context) error {
	if hc.pool == nil {
		return errors.New("lb: HealthChecker.Run: the HealthChecker was not made by NewHealthChecker")
	}
	if !hc.running.CompareAndSwap(false, true) {
		return errors.New("lb: HealthChecker.Run: already running")
	}
	defer hc.running.Store(false)
	defer hc.closeIdle()

	var wg sync.WaitGroup
	probers := make(map[*Server]context.CancelFunc)
	defer func() {
		for _, cancel := range probers {
			cancel()
		}
		wg.Wait()
	}()
	for first := true; ; first = false {
		changed := hc.pool.Changed() // before reading, so no change is missed
		current := hc.pool.Servers()
		members := make(map[*Server]bool, len(current))
		for _, s := range current {
			members[s] = true
			if probers[s] != nil {
				continue
			}
			pctx, cancel := context.WithCancel(ctx)
			probers[s] = cancel
			st := hc.track(s, !first)
			hc.goProbe(&wg, func() { hc.loop(pctx, s, st) })
		}
		for s, cancel := range probers {
			if !members[s] {
				cancel()
				delete(probers, s)
				hc.untrack(s)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// CheckOnce probes every server of the pool once, concurrently, applies the
// results as Run does, and returns when all probes are done. It suits tests
// and start-up (to know the servers' health before taking traffic), and
// may be called while Run runs.
func (hc *HealthChecker) CheckOnce(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range hc.pool.Servers() {
		st := hc.track(s, false)
		hc.goProbe(&wg, func() { hc.probeAndApply(ctx, s, st) })
	}
	wg.Wait()
	// Forget servers that have left the pool, which Run does for the
	// servers it watches; without it, CheckOnce alone would keep them.
	hc.mu.Lock()
	defer hc.mu.Unlock()
	for s := range hc.state {
		if hc.pool.Server(s.name) != s {
			delete(hc.state, s)
		}
	}
}

// goProbe runs f in a goroutine of wg, counted in hc.live while it runs.
func (hc *HealthChecker) goProbe(wg *sync.WaitGroup, f func()) {
	hc.live.Add(1)
	wg.Go(func() {
		defer hc.live.Add(-1)
		f()
	})
}

// track returns the state of s, making it on first sight. joined tells
// that s joined the pool while Run was running, rather than being there
// when it started.
func (hc *HealthChecker) track(s *Server, joined bool) *probeState {
	defer s.flush() // after the unlock: observers are called outside it
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if st := hc.state[s]; st != nil {
		return st
	}
	st := &probeState{joined: joined}
	if hc.o.startDown {
		st.pending = true
		s.setHealth(false, errStartDown)
	} else if joined && hc.o.slowStart > 0 {
		s.slowStartAt(time.Now(), hc.o.slowStart)
	}
	hc.state[s] = st
	return st
}

func (hc *HealthChecker) untrack(s *Server) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	delete(hc.state, s)
}

func (hc *HealthChecker) closeIdle() {
	if hc.o.defaultTransport != nil {
		hc.o.defaultTransport.CloseIdleConnections()
	}
}

// loop probes s until ctx is done.
func (hc *HealthChecker) loop(ctx context.Context, s *Server, st *probeState) {
	timer := time.NewTimer(0) // the first probe at once
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if !hc.probeAndApply(ctx, s, st) {
			return
		}
		interval := hc.o.upInterval
		if !s.Healthy() {
			interval = hc.o.downInterval
		}
		timer.Reset(jittered(interval, hc.o.jitter, hc.o.rand()))
	}
}

// jittered returns d varied by up to the fraction f of it, either way: by
// -f at r = 0 and towards +f as r approaches 1. It saturates at the largest
// Duration rather than overflow, and stays above 0.
func jittered(d time.Duration, f, r float64) time.Duration {
	if f == 0 {
		return d
	}
	v := float64(d) * (1 + f*(2*r-1))
	if v >= math.MaxInt64 { // float64(math.MaxInt64) is 2^63, past the largest int64
		return math.MaxInt64
	}
	return max(time.Duration(v), 1)
}

// probeAndApply probes s once and updates its health. It reports false if
// ctx ended during the probe, whose result then counts for nothing.
func (hc *HealthChecker) probeAndApply(ctx context.Context, s *Server, st *probeState) bool {
	err := hc.probe(ctx, s, &st.handlerBusy)
	if ctx.Err() != nil {
		return false
	}
	hc.probes.Add(1)
	defer s.flush() // after the unlock: observers are called outside it
	st.mu.Lock()
	defer st.mu.Unlock()
	if err == nil {
		st.fails, st.passes = 0, st.passes+1
		if !s.Healthy() && (st.pending || st.passes >= hc.o.rise) {
			// The ramp starts before the server is healthy, so that no
			// pick sees it back at its full share.
			if hc.o.slowStart > 0 && (!st.pending || st.joined) {
				s.slowStartAt(time.Now(), hc.o.slowStart)
			}
			if s.setHealth(true, nil) {
				hc.ups.Add(1)
				hc.o.logger.LogAttrs(ctx, slog.LevelInfo, "lb: server up",
					slog.String("server", s.Name()), slog.Int("passes", st.passes))
			}
		}
		st.pending = false
		return true
	}
	hc.failures.Add(1)
	st.passes, st.fails = 0, st.fails+1
	if s.Healthy() && st.fails >= hc.o.fall && s.setHealth(false, err) {
		hc.downs.Add(1)
		hc.o.logger.LogAttrs(ctx, slog.LevelWarn, "lb: server down",
			slog.String("server", s.Name()), slog.Int("failures", st.fails), slog.Any("err", err))
	}
	return true
}

// probe runs one probe of s, bounded by the timeout, and turns a panic in
// it into an error.
func (hc *HealthChecker) probe(ctx context.Context, s *Server, handlerBusy *atomic.Bool) (err error) {
	ctx, cancel := context.WithTimeout(ctx, hc.o.timeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("lb: probe of %q panicked: %v", s.Name(), v)
			hc.o.logger.LogAttrs(ctx, slog.LevelError, "lb: probe panicked",
				slog.String("server", s.Name()), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		}
	}()
	switch {
	case hc.o.probe != nil:
		return hc.o.probe(ctx, s)
	case s.handler != nil:
		return hc.probeHandler(ctx, s, handlerBusy)
	case s.url.Scheme == "tcp":
		return CheckTCP(ctx, s)
	default:
		return hc.probeURL(ctx, s)
	}
}

func (hc *HealthChecker) probeURL(ctx context.Context, s *Server) error {
	u := *s.url
	u.Path, u.RawPath, u.RawQuery = hc.o.path, "", ""
	// The user info goes in the header, as the Proxy sends it, and not in
	// the URL, which the client's errors (logged) would show.
	u.User = nil
	req, err := http.NewRequestWithContext(ctx, hc.o.method, u.String(), nil)
	if err != nil {
		return fmt.Errorf("lb: probe: %w", err)
	}
	if user := s.url.User; user != nil {
		password, _ := user.Password()
		req.SetBasicAuth(user.Username(), password)
	}
	req.Header.Set("User-Agent", "lb-health-check")
	resp, err := hc.o.client.Do(req)
	if err != nil {
		return fmt.Errorf("lb: probe: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return hc.checkStatus(resp.StatusCode)
}

// probeHandler calls an in-process server's handler. A handler that
// outlives the timeout fails the probe; its goroutine ends when it returns.
func (hc *HealthChecker) probeHandler(ctx context.Context, s *Server, busy *atomic.Bool) error {
	if !busy.CompareAndSwap(false, true) {
		return fmt.Errorf("lb: probe of %q: the handler has not returned from an earlier probe", s.Name())
	}
	req, err := http.NewRequestWithContext(ctx, hc.o.method, hc.o.path, nil)
	if err != nil {
		busy.Store(false)
		return fmt.Errorf("lb: probe: %w", err)
	}
	req.RemoteAddr = "127.0.0.1:0"
	req.Header.Set("User-Agent", "lb-health-check")
	w := &probeWriter{header: make(http.Header)}
	done := make(chan error, 1)
	go func() {
		defer busy.Store(false)
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("lb: probe of %q: handler panicked: %v", s.Name(), v)
			}
		}()
		s.handler.ServeHTTP(w, req)
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			return err
		}
		return hc.checkStatus(w.status())
	case <-ctx.Done():
		return fmt.Errorf("lb: probe: %w", ctx.Err())
	}
}

func (hc *HealthChecker) checkStatus(code int) error {
	if code < hc.o.statusLo || code > hc.o.statusHi {
		return fmt.Errorf("lb: probe: status %d", code)
	}
	return nil
}

// probeWriter is the ResponseWriter of handler probes: it keeps the status
// and discards the body.
type probeWriter struct {
	header http.Header
	code   atomic.Int32
}

func (w *probeWriter) Header() http.Header { return w.header }

func (w *probeWriter) WriteHeader(code int) {
	if code >= 200 {
		w.code.CompareAndSwap(0, int32(code))
	}
}

func (w *probeWriter) Write(b []byte) (int, error) {
	w.code.CompareAndSwap(0, http.StatusOK)
	return len(b), nil
}

func (w *probeWriter) status() int {
	if c := w.code.Load(); c != 0 {
		return int(c)
	}
	return http.StatusOK
}
