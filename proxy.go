package lb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Proxy is an [http.Handler] that sends each request to a server chosen by a
// [Balancer]: through one shared [httputil.ReverseProxy] for URL servers, or
// by calling the handler of an in-process server. It keeps the accounting
// right on every path (Pick, then Done exactly once per attempt, even on
// panics, aborted bodies and retries), retries only when it is safe, takes
// failing servers out for a while (passive health), and answers errors
// without leaking internal details:
//
//   - 503 Service Unavailable, with Retry-After, when no server is available;
//   - 502 Bad Gateway when the server could not be reached or failed;
//   - 504 Gateway Timeout when it did not answer in time.
//
// # Retries
//
// A failed attempt is retried on another server, one not yet tried for this
// request, when that is safe: the attempt never reached the server (the dial
// failed) and the request body was not read, whatever the method; or the
// method is idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) and the body,
// if any, could be kept to send again (it is buffered up to a limit, 1 MiB by
// default; a larger body is streamed and not retried). A POST that may have
// reached the server is never retried, and neither is a timeout: the server
// may still be working on the request. Retries happen before anything is
// written to the client, and go to URL servers only. See [WithRetries].
//
// # Passive health
//
// A server whose requests fail several times in a row (transport errors, and
// the statuses 502, 503 and 504 by default) is ejected: balancers skip it
// for a cool-down, after which it takes traffic again. A client that goes
// away is never counted against a server. See [WithPassiveHealth].
//
// # Headers
//
// The outbound request gets X-Forwarded-For, X-Forwarded-Host and
// X-Forwarded-Proto from the proxy; the ones the client sent, and Forwarded,
// are dropped unless the client is a trusted proxy ([WithTrustedProxies]).
// Hop-by-hop headers, and those named in Connection, are removed both ways,
// so a client cannot use Connection to strip what the proxy adds. The Host
// header is the target's unless [WithPreserveHost] is given. An "Upgrade:
// h2c" request is forwarded without the upgrade.
//
// # Streaming
//
// Server-sent events and responses of unknown length are flushed as they
// arrive; upgraded connections (WebSockets) are passed through in both
// directions and count as in flight until they close.
//
// A Proxy is safe for concurrent use. It logs (through [WithLogger]) the
// causes of 502 and 504 answers, at most one line a second, and health
// transitions; never a line per successful request.
type Proxy struct {
	bal       Balancer
	rp        *httputil.ReverseProxy
	transport http.RoundTripper // the one that reaches the servers
	o         proxyOptions
	errLog    sampler
}

// A ProxyOption configures a [Proxy].
type ProxyOption func(*proxyOptions) error

type proxyOptions struct {
	transport          http.RoundTripper
	responseTimeout    time.Duration
	logger             *slog.Logger
	errorHandler       func(http.ResponseWriter, *http.Request, int, error)
	retries            int
	bodyLimit          int64
	failures           int
	cooldown           time.Duration
	failStatus         map[int]bool
	trusted            []netip.Prefix
	noXForwarded       bool
	preserveHost       bool
	flushInterval      time.Duration
	retryAfter         string
	transportSetByUser bool
	sticky             *sticky
}

// Defaults of the proxy options.
const (
	DefaultRetries        = 2                // retries of a failed request, when safe
	DefaultRetryBodyLimit = 1 << 20          // bytes of body kept for retries
	DefaultFailures       = 5                // consecutive failures that eject a server
	DefaultCooldown       = 10 * time.Second // how long an ejected server stays out
)

// WithTransport sets the RoundTripper used to reach URL servers. The
// default is a clone of [http.DefaultTransport] that ignores proxy
// environment variables, keeps up to 256 idle connections per server, and
// dials with a 5 s timeout.
func WithTransport(rt http.RoundTripper) ProxyOption {
	return func(o *proxyOptions) error {
		if rt == nil {
			return errors.New("WithTransport: nil RoundTripper")
		}
		o.transport, o.transportSetByUser = rt, true
		return nil
	}
}

// WithResponseHeaderTimeout bounds how long the default transport waits for
// a server's response headers, after the request is written; past it the
// client gets 504. The default is no limit beyond the client's own. With
// [WithTransport], set the timeout on that transport instead.
func WithResponseHeaderTimeout(d time.Duration) ProxyOption {
	return func(o *proxyOptions) error {
		if d < 0 {
			return fmt.Errorf("WithResponseHeaderTimeout: negative duration %v", d)
		}
		o.responseTimeout = d
		return nil
	}
}

// WithLogger sets the logger for errors and health transitions. The default
// is [slog.Default].
func WithLogger(l *slog.Logger) ProxyOption {
	return func(o *proxyOptions) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithErrorHandler sets a function that writes the error response instead
// of the default short text page. code is the status the proxy would send
// (502, 503 or 504) and err the cause, which must not be shown to clients.
// The outcome has been recorded (Done called) before it runs.
func WithErrorHandler(f func(w http.ResponseWriter, r *http.Request, code int, err error)) ProxyOption {
	return func(o *proxyOptions) error {
		if f == nil {
			return errors.New("WithErrorHandler: nil function")
		}
		o.errorHandler = f
		return nil
	}
}

// WithRetries sets how many times a failed request may be retried on other
// servers, when retrying is safe (see [Proxy]). The default is
// [DefaultRetries]; 0 turns retries off.
func WithRetries(n int) ProxyOption {
	return func(o *proxyOptions) error {
		if n < 0 {
			return fmt.Errorf("WithRetries: negative count %d", n)
		}
		o.retries = n
		return nil
	}
}

// WithRetryBodyLimit sets the size up to which the body of an idempotent
// request is buffered so that it can be sent again on a retry. A larger
// body is streamed and the request is not retried (unless it never reached
// a server). The default is [DefaultRetryBodyLimit]; 0 buffers nothing.
func WithRetryBodyLimit(n int64) ProxyOption {
	return func(o *proxyOptions) error {
		if n < 0 {
			return fmt.Errorf("WithRetryBodyLimit: negative size %d", n)
		}
		o.bodyLimit = n
		return nil
	}
}

// WithPassiveHealth ejects a server for cooldown after failures consecutive
// failed requests. The defaults are [DefaultFailures] and
// [DefaultCooldown]; failures 0 turns passive health off.
//
// Ejection is its own state of the server, apart from the health that a
// [HealthChecker] sets: when the cool-down ends the server takes traffic
// again, unless an active checker has marked it down meanwhile, in which
// case it waits for the checker to bring it back. Ejection is shared by
// every proxy and balancer over the server.
func WithPassiveHealth(failures int, cooldown time.Duration) ProxyOption {
	return func(o *proxyOptions) error {
		if failures < 0 {
			return fmt.Errorf("WithPassiveHealth: negative failure count %d", failures)
		}
		if failures > 0 && cooldown <= 0 {
			return fmt.Errorf("WithPassiveHealth: cool-down %v is not positive", cooldown)
		}
		o.failures, o.cooldown = failures, cooldown
		return nil
	}
}

// WithFailureStatus sets the response statuses that count as failures of
// the server for passive health. The default is 502, 503 and 504. Transport
// errors always count; a client that went away never does.
func WithFailureStatus(codes ...int) ProxyOption {
	return func(o *proxyOptions) error {
		set := make(map[int]bool, len(codes))
		for _, c := range codes {
			if c < 100 || c > 999 {
				return fmt.Errorf("WithFailureStatus: invalid status %d", c)
			}
			set[c] = true
		}
		o.failStatus = set
		return nil
	}
}

// WithTrustedProxies names the addresses of proxies in front of this one
// whose forwarding headers (X-Forwarded-For, X-Forwarded-Host,
// X-Forwarded-Proto, Forwarded) are kept and extended. From any other
// client they are dropped. The default trusts no one.
func WithTrustedProxies(prefixes ...netip.Prefix) ProxyOption {
	return func(o *proxyOptions) error {
		for _, p := range prefixes {
			if !p.IsValid() {
				return fmt.Errorf("WithTrustedProxies: invalid prefix %v", p)
			}
		}
		o.trusted = append(o.trusted, prefixes...)
		return nil
	}
}

// WithoutXForwarded stops the proxy from setting X-Forwarded-For,
// X-Forwarded-Host and X-Forwarded-Proto on outbound requests.
func WithoutXForwarded() ProxyOption {
	return func(o *proxyOptions) error {
		o.noXForwarded = true
		return nil
	}
}

// WithPreserveHost sends the client's Host header to the server, instead of
// the host of the server's URL (the default).
func WithPreserveHost() ProxyOption {
	return func(o *proxyOptions) error {
		o.preserveHost = true
		return nil
	}
}

// WithFlushInterval sets how often a response is flushed to the client
// while it is copied; a negative value flushes after every write. Streaming
// responses (server-sent events, unknown length) are always flushed at
// once. The default is 0: no periodic flush.
func WithFlushInterval(d time.Duration) ProxyOption {
	return func(o *proxyOptions) error {
		o.flushInterval = d
		return nil
	}
}

// WithRetryAfter sets the Retry-After header of 503 answers, in whole
// seconds. The default is 1 second.
func WithRetryAfter(d time.Duration) ProxyOption {
	return func(o *proxyOptions) error {
		if d < time.Second {
			return fmt.Errorf("WithRetryAfter: %v is below one second", d)
		}
		o.retryAfter = strconv.Itoa(int(d / time.Second))
		return nil
	}
}

// NewProxy returns a Proxy that sends each request to the server b picks.
func NewProxy(b Balancer, opts ...ProxyOption) (*Proxy, error) {
	if b == nil {
		return nil, errors.New("lb: NewProxy: nil balancer")
	}
	o := proxyOptions{
		retries:    DefaultRetries,
		bodyLimit:  DefaultRetryBodyLimit,
		failures:   DefaultFailures,
		cooldown:   DefaultCooldown,
		failStatus: map[int]bool{http.StatusBadGateway: true, http.StatusServiceUnavailable: true, http.StatusGatewayTimeout: true},
		retryAfter: "1",
	}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("lb: NewProxy: option %d is nil", i)
		}
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("lb: NewProxy: %w", err)
		}
	}
	if o.transportSetByUser && o.responseTimeout > 0 {
		return nil, errors.New("lb: NewProxy: WithResponseHeaderTimeout applies to the default transport; set it on the one given to WithTransport")
	}
	if o.sticky != nil {
		pb, ok := b.(PoolBalancer)
		if !ok {
			return nil, fmt.Errorf("lb: NewProxy: %w", errStickyNeedsPool)
		}
		o.sticky.pool = pb.Pool()
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.transport == nil {
		o.transport = newTransport(o.responseTimeout)
	}
	p := &Proxy{bal: b, transport: o.transport, o: o}
	p.rp = &httputil.ReverseProxy{
		Rewrite:       p.rewrite,
		Transport:     retryTransport{p},
		ErrorHandler:  p.handleError,
		FlushInterval: o.flushInterval,
		ErrorLog:      slog.NewLogLogger(o.logger.Handler(), slog.LevelDebug),
	}
	return p, nil
}

// newTransport returns the default transport: one per Proxy, shared by all
// its requests.
func newTransport(responseTimeout time.Duration) *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		// Proxy is nil: requests to the servers never go through
		// HTTP_PROXY, whatever the environment says.
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: responseTimeout,
	}
}

// CloseIdleConnections closes the idle connections of the proxy's transport,
// if it supports that.
func (p *Proxy) CloseIdleConnections() {
	if c, ok := p.transport.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// stateKey is the context key of a request's proxyState.
type stateKey struct{}

// proxyState follows one request through the proxy. It is used by one
// goroutine at a time: the handler's, and the transport's RoundTrip, which
// the handler waits for.
type proxyState struct {
	p     *Proxy
	in    *http.Request // the inbound request, with this state in its context
	res   PickResult    // the current attempt
	ended bool          // the current attempt's Done has been called
	info  DoneInfo      // the current attempt's outcome so far
	start time.Time     // when the current attempt was picked
	tries int           // attempts so far, the current one included
	tried [4]*Server    // servers tried, the first few
	more  []*Server     // and any beyond them

	replay  []byte       // the whole body, kept for retries; nil if not kept
	tracked *trackedBody // the body, if it is streamed
	hasBody bool

	pinned *Server // the server the request's sticky cookie named, if any
}

// ServeHTTP sends r to a server and copies the answer back to w.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &proxyState{p: p}
	r, ok := p.prepareBody(w, r, st)
	if !ok {
		return
	}
	st.in = r
	var res PickResult
	if sk := p.o.sticky; sk != nil {
		if st.pinned = sk.pinned(r); st.pinned != nil {
			res = st.pinned.Acquire()
		}
	}
	if st.pinned == nil {
		var err error
		if res, err = p.bal.Pick(r); err != nil {
			p.noServer(w, r, err)
			return
		}
	}
	if res.Server == nil || res.Done == nil {
		if res.Done != nil {
			res.Done(DoneInfo{Err: ErrNotUsed})
		}
		p.noServer(w, r, errors.New("lb: balancer returned no server and no error"))
		return
	}
	st.begin(res)
	defer func() {
		if v := recover(); v != nil {
			if st.info.Err == nil {
				st.fail(panicError(v, r))
			}
			st.end()
			panic(v)
		}
		st.end()
	}()
	if h := res.Server.handler; h != nil {
		if p.o.sticky != nil && st.pinned != res.Server {
			w.Header().Add("Set-Cookie", p.o.sticky.cookie(r, res.Server))
		}
		sw := &statusWriter{ResponseWriter: w, st: st}
		h.ServeHTTP(sw, r)
		if !sw.written {
			st.info.StatusCode = http.StatusOK
		}
		return
	}
	st.in = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	p.rp.ServeHTTP(w, st.in)
}

// prepareBody makes the request body replayable when a retry could use it.
// It returns the request to send on: a shallow copy of r when the body had
// to be replaced (a handler must not change its request), else r itself.
// It reports false if it has answered the request itself.
func (p *Proxy) prepareBody(w http.ResponseWriter, r *http.Request, st *proxyState) (*http.Request, bool) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return r, true
	}
	st.hasBody = true
	if p.o.retries == 0 {
		return r, true
	}
	if !idempotent(r.Method) || p.o.bodyLimit == 0 || r.ContentLength > p.o.bodyLimit {
		st.tracked = &trackedBody{ReadCloser: r.Body}
		return withBody(r, st.tracked), true
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, p.o.bodyLimit+1))
	if err != nil {
		if r.Context().Err() == nil {
			var tooLarge *http.MaxBytesError
			code := http.StatusBadRequest
			if errors.As(err, &tooLarge) {
				code = http.StatusRequestEntityTooLarge
			}
			http.Error(w, http.StatusText(code), code)
		}
		return r, false
	}
	if int64(len(buf)) <= p.o.bodyLimit {
		st.replay = buf
		return withBody(r, io.NopCloser(bytes.NewReader(buf))), true
	}
	// Too large to keep: stream what was read, then the rest. Until the
	// transport reads it, it is still intact.
	st.tracked = &trackedBody{ReadCloser: readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}}
	return withBody(r, st.tracked), true
}

// withBody returns a shallow copy of r with body as its Body.
func withBody(r *http.Request, body io.ReadCloser) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	r2.Body = body
	return r2
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// trackedBody records whether anything has read the body.
type trackedBody struct {
	io.ReadCloser
	read atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.ReadCloser.Read(p)
}

// replayBody returns a fresh reader of the kept body, and a GetBody that
// gives another (for the transport's own retries on a broken connection).
func (st *proxyState) replayBody() (io.ReadCloser, func() (io.ReadCloser, error)) {
	get := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(st.replay)), nil }
	body, _ := get()
	return body, get
}

type readCloser struct {
	io.Reader
	io.Closer
}

// begin starts an attempt on res.
func (st *proxyState) begin(res PickResult) {
	st.res, st.ended, st.info, st.start = res, false, DoneInfo{}, time.Now()
	if st.tries < len(st.tried) {
		st.tried[st.tries] = res.Server
	} else {
		st.more = append(st.more, res.Server)
	}
	st.tries++
}

// fail records err as the current attempt's error.
func (st *proxyState) fail(err error) { st.info.Err = err }

// end calls the current attempt's Done, once, and feeds passive health.
func (st *proxyState) end() {
	if st.ended {
		return
	}
	st.ended = true
	st.info.Duration = time.Since(st.start)
	if st.info.Err != nil && !errors.Is(st.info.Err, context.Canceled) && clientGone(st.in) {
		st.info.Err = fmt.Errorf("%w (client went away): %w", context.Canceled, st.info.Err)
	}
	st.res.Done(st.info)
	st.p.observe(st.res.Server, st.info)
}

// clientGone reports whether the client of r has gone away.
func clientGone(r *http.Request) bool {
	return r != nil && errors.Is(r.Context().Err(), context.Canceled)
}

// hasTried reports whether s has had an attempt of this request.
func (st *proxyState) hasTried(s *Server) bool {
	for _, t := range st.tried[:min(st.tries, len(st.tried))] {
		if t == s {
			return true
		}
	}
	for _, t := range st.more {
		if t == s {
			return true
		}
	}
	return false
}

// panicError turns a recovered panic value into the error recorded in
// DoneInfo.
func panicError(v any, r *http.Request) error {
	if v == http.ErrAbortHandler {
		if r.Context().Err() != nil {
			return fmt.Errorf("lb: response aborted: %w", context.Canceled)
		}
		return fmt.Errorf("lb: response aborted: %w", http.ErrAbortHandler)
	}
	if err, ok := v.(error); ok {
		return fmt.Errorf("lb: handler panic: %w", err)
	}
	return fmt.Errorf("lb: handler panic: %v", v)
}

// rewrite builds the outbound request of the first attempt.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(stateKey{}).(*proxyState)
	p.target(pr, st.res.Server)
	trusted := p.trusts(pr.In)
	if trusted {
		for _, h := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v, ok := pr.In.Header[h]; ok {
				pr.Out.Header[h] = slices.Clone(v)
			}
		}
	}
	if !p.o.noXForwarded {
		host, proto := pr.Out.Header["X-Forwarded-Host"], pr.Out.Header["X-Forwarded-Proto"]
		pr.SetXForwarded()
		if trusted && host != nil {
			pr.Out.Header["X-Forwarded-Host"] = host
		}
		if trusted && proto != nil {
			pr.Out.Header["X-Forwarded-Proto"] = proto
		}
	}
	if strings.EqualFold(pr.Out.Header.Get("Upgrade"), "h2c") {
		pr.Out.Header.Del("Upgrade")
		pr.Out.Header.Del("Connection")
	}
}

// target points the outbound request at server s.
func (p *Proxy) target(pr *httputil.ProxyRequest, s *Server) {
	pr.SetURL(s.url)
	if p.o.preserveHost {
		pr.Out.Host = pr.In.Host
	}
}

// trusts reports whether the client of r is a trusted proxy.
func (p *Proxy) trusts(r *http.Request) bool {
	return len(p.o.trusted) > 0 && inPrefixes(p.o.trusted, hostOnly(r.RemoteAddr))
}

// retryTransport sends the outbound request, and retries it on other
// servers when that is safe.
type retryTransport struct{ p *Proxy }

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(stateKey{}).(*proxyState)
	if st == nil {
		return t.p.transport.RoundTrip(req)
	}
	for {
		if st.replay != nil {
			req.Body, req.GetBody = st.replayBody()
		}
		resp, err := t.p.transport.RoundTrip(req)
		if err == nil {
			st.info.StatusCode = resp.StatusCode
			if sk := t.p.o.sticky; sk != nil && st.pinned != st.res.Server {
				resp.Header.Add("Set-Cookie", sk.cookie(st.in, st.res.Server))
			}
			if resp.StatusCode != http.StatusSwitchingProtocols { // an upgrade's body is the connection
				resp.Body = &watchedBody{ReadCloser: resp.Body, st: st}
			}
			return resp, nil
		}
		st.fail(err)
		if !st.retryable(req, err) {
			return nil, err
		}
		next, ok := st.repick(req)
		if !ok {
			return nil, err
		}
		req = next
	}
}

// watchedBody records an error that cuts a response body short.
type watchedBody struct {
	io.ReadCloser
	st *proxyState
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.st.info.Err == nil {
		b.st.fail(fmt.Errorf("lb: response body: %w", err))
	}
	return n, err
}

// retryable reports whether the attempt that failed with err may be tried
// again on another server.
func (st *proxyState) retryable(req *http.Request, err error) bool {
	if st.tries > st.p.o.retries || clientGone(st.in) {
		return false
	}
	bodyIntact := !st.hasBody || st.replay != nil || (st.tracked != nil && !st.tracked.read.Load())
	if !bodyIntact {
		return false
	}
	if neverReached(err) {
		return true // a dial that timed out never reached the server either
	}
	// A timeout after the request was sent is not retried: the server may
	// still be working on it.
	return !isTimeout(err) && idempotent(req.Method) && (!st.hasBody || st.replay != nil)
}

// repick ends the failed attempt and picks a server not yet tried for the
// next one, returning its outbound request.
func (st *proxyState) repick(failed *http.Request) (*http.Request, bool) {
	st.end()
	res, ok := st.untried()
	if !ok {
		return nil, false
	}
	st.begin(res)
	out := failed.Clone(failed.Context())
	u := *st.in.URL
	u.RawQuery = failed.URL.RawQuery // as cleaned for the first attempt
	out.URL = &u
	st.p.target(&httputil.ProxyRequest{In: st.in, Out: out}, res.Server)
	if st.tracked != nil {
		out.Body = io.NopCloser(st.tracked) // the transport closes bodies on errors
	}
	return out, true
}

// untried picks a URL server not yet tried for this request: from the
// balancer, a few times, then, since a load-aware balancer may keep
// choosing the server that just failed (it looks idle), the least loaded
// untried server of the balancer's pool, if it names one.
func (st *proxyState) untried() (PickResult, bool) {
	const draws = 4
	for range draws {
		res, err := st.p.bal.Pick(st.in)
		if err != nil {
			return PickResult{}, false
		}
		if res.Server != nil && res.Server.url != nil && !st.hasTried(res.Server) {
			return res, true
		}
		res.Done(DoneInfo{Err: ErrNotUsed})
	}
	pb, ok := st.p.bal.(PoolBalancer)
	if !ok {
		return PickResult{}, false
	}
	var best *Server
	for _, s := range pb.Pool().Servers() {
		if s.url == nil || !s.Available() || st.hasTried(s) {
			continue
		}
		if best == nil || s.InFlight()*int64(best.weight) < best.InFlight()*int64(s.weight) {
			best = s
		}
	}
	if best == nil {
		return PickResult{}, false
	}
	return best.Acquire(), true
}

// neverReached reports whether err shows that the request never reached
// the server: the connection could not be made.
func neverReached(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handleError answers a request whose last attempt failed with err.
func (p *Proxy) handleError(w http.ResponseWriter, out *http.Request, err error) {
	st, _ := out.Context().Value(stateKey{}).(*proxyState)
	code := http.StatusBadGateway
	if isTimeout(err) {
		code = http.StatusGatewayTimeout
	}
	in := out
	if st != nil {
		in = st.in
		st.fail(err)
		st.end()
	}
	if clientGone(in) {
		p.o.logger.LogAttrs(in.Context(), slog.LevelDebug, "lb: client went away",
			slog.String("method", in.Method), slog.String("path", in.URL.Path))
	} else if st != nil {
		p.logError(in, code, st.res.Server, err)
	}
	if p.o.errorHandler != nil {
		p.o.errorHandler(w, in, code, err)
		return
	}
	http.Error(w, http.StatusText(code), code)
}

// noServer answers a request for which no server could be picked.
func (p *Proxy) noServer(w http.ResponseWriter, r *http.Request, err error) {
	if p.o.errorHandler != nil {
		p.o.errorHandler(w, r, http.StatusServiceUnavailable, err)
		return
	}
	w.Header().Set("Retry-After", p.o.retryAfter)
	http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
}

// logError logs a 502 or 504, at most once a second, with the number of
// others left out since the last line.
func (p *Proxy) logError(r *http.Request, code int, s *Server, err error) {
	ok, skipped := p.errLog.allow(time.Now())
	if !ok {
		return
	}
	p.o.logger.LogAttrs(r.Context(), slog.LevelError, "lb: proxy error",
		slog.Int("status", code), slog.String("server", s.Name()),
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Any("err", err), slog.Int64("suppressed", skipped))
}

// sampler lets one event through per second and counts the others.
type sampler struct {
	next    atomic.Int64 // unix nanoseconds after which the next event passes
	skipped atomic.Int64
}

func (s *sampler) allow(now time.Time) (ok bool, skipped int64) {
	n, next := now.UnixNano(), s.next.Load()
	if n < next || !s.next.CompareAndSwap(next, n+int64(time.Second)) {
		s.skipped.Add(1)
		return false, 0
	}
	return true, s.skipped.Swap(0)
}

// observe feeds the outcome of one attempt to passive health.
func (p *Proxy) observe(s *Server, info DoneInfo) {
	if p.o.failures == 0 || errors.Is(info.Err, ErrNotUsed) {
		return
	}
	if errors.Is(info.Err, context.Canceled) {
		return // neither a failure nor a success of the server
	}
	if info.Err == nil && !p.o.failStatus[info.StatusCode] {
		if s.fails.Load() != 0 {
			s.fails.Store(0)
		}
		return
	}
	if s.fails.Add(1) < uint32(p.o.failures) || !s.setFlag(flagEjected) {
		return
	}
	p.o.logger.LogAttrs(context.Background(), slog.LevelWarn, "lb: server ejected",
		slog.String("server", s.Name()), slog.Int("failures", p.o.failures),
		slog.Duration("cooldown", p.o.cooldown))
	time.AfterFunc(p.o.cooldown, func() {
		s.fails.Store(0)
		if s.clearFlag(flagEjected) {
			p.o.logger.LogAttrs(context.Background(), slog.LevelInfo, "lb: server back from ejection",
				slog.String("server", s.Name()))
		}
	})
}

// statusWriter records the status an in-process handler answers with.
type statusWriter struct {
	http.ResponseWriter
	st      *proxyState
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written && code >= 200 {
		w.written = true
		w.st.info.StatusCode = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.written = true
		w.st.info.StatusCode = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client, if the underlying writer can.
func (w *statusWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets [http.ResponseController] reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
