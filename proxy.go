package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
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
//   - 504 Gateway Timeout when it did not answer in time;
//   - 400 Bad Request when the client's request body could not be read
//     (malformed or cut short), 413 Request Entity Too Large when it was
//     over a size limit such as an [http.MaxBytesHandler] around the proxy.
//     That is the client's fault: it is not retried and not counted against
//     the server (see [ErrClientBody]).
//   - 508 Loop Detected when the request has come round a loop back to the
//     proxy (see Headers).
//
// # Retries
//
// A failed attempt is retried on another server, one not yet tried for this
// request, when that is safe: the attempt never reached the server (the dial
// failed) and the request body was not read, whatever the method; or the
// method is idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) and the body,
// if any, could be kept to send again (it is buffered up to a limit, 1 MiB by
// default; a larger body is streamed and not retried, and so is the body of
// a request with "Expect: 100-continue", which the server sees before the
// client is told to send the body). A POST that may have
// reached the server is never retried, and neither is a timeout: the server
// may still be working on the request. Retries happen before anything is
// written to the client, and go to URL servers only. See [WithRetries]. An
// idempotent request whose body was kept may also be retried when the
// server answers with a status of [WithRetryOnStatus] (none by default).
//
// Retries are bounded by a budget, so that they cannot multiply the load of
// servers that all fail: each request earns a fifth of a retry and each
// retry spends one; the budget starts with three and saves up to three, or
// a fifth of the requests in flight if that is more, so that a quiet
// service can retry. With every server failing, the servers see at most 1.2
// attempts per request, plus three. See [WithRetryBudget].
//
// # Passive health
//
// A server whose requests fail several times in a row (transport errors, and
// the statuses 502, 503 and 504 by default) is ejected: balancers skip it
// for a cool-down, after which it takes traffic again. Ejection never puts
// more than half of the balancer's pool out of service (ejected, down or
// draining) at once, so the last server in service never is (see
// [WithMaxEjectionPercent]). A client that goes away, or whose request body
// cannot be read, is never counted against a server, nor is an upgrade
// that the server accepted (101) and the proxy could not carry out (the
// client's connection cannot be taken over). See [WithPassiveHealth].
// Ejections and readmissions are reported as [EventEjected] and
// [EventReadmitted] to the observers of every pool the server is a member
// of ([Pool.Observe]), whether or not the proxy's balancer has a pool.
//
// # Headers
//
// The outbound request gets X-Forwarded-For, X-Forwarded-Host and
// X-Forwarded-Proto from the proxy; the ones the client sent, and
// Forwarded, X-Real-IP and True-Client-IP, are dropped unless the client is
// a trusted proxy ([WithTrustedProxies]).
// Via gets the protocol version the proxy received and its pseudonym
// appended, as RFC 9110 asks of a gateway; a request whose Via already
// names this proxy's pseudonym has come round a loop and is answered 508
// Loop Detected, without picking a server (see [WithVia]).
// Hop-by-hop headers, and those named in Connection, are removed both ways,
// so a client cannot use Connection to strip what the proxy adds. The Host
// header is the target's unless [WithPreserveHost] is given. An "Upgrade:
// h2c" request is forwarded without the upgrade; one that asks to switch to
// a protocol whose name is not printable ASCII, or to a list of protocols
// (the reverse proxy accepts only a switch to exactly what was asked), is
// answered 400 Bad Request.
//
// An in-process handler server gets a clone of the request cleaned and
// rewritten by the same rules, so it sees the headers a URL server would,
// with two differences: its Host is the client's (it has no host of its
// own), and it is not sent the Accept-Encoding: gzip that the transport
// adds, for a URL server, to a request that names no encoding.
//
// # Streaming
//
// Server-sent events and responses of unknown length are flushed as they
// arrive; upgraded connections (WebSockets) are passed through in both
// directions and count as in flight until they close. The writer a handler
// server gets is an [http.Hijacker] and an [io.ReaderFrom] when the
// client's writer is; a connection it hijacks counts as in flight, with
// status 101, until it is closed and the handler has returned. If the
// handler panics, the proxy closes the connection it hijacked.
//
// A Proxy is safe for concurrent use. It logs (through [WithProxyLogger]) the
// causes of 502, 504 and 508 answers, at most one line a second, and health
// transitions; never a line per successful request.
//
// The zero Proxy is not usable: make one with NewProxy (the zero value
// answers 500 and logs it once).
type Proxy struct {
	bal       Balancer
	rp        *httputil.ReverseProxy
	transport http.RoundTripper // the one that reaches the servers
	o         proxyOptions
	errLog    sampler
	via10     string // the Via entries of HTTP/1.0, HTTP/1.1 and HTTP/2
	via11     string // requests: "1.0 ", "1.1 " or "2 ", and the pseudonym
	via2      string
	budget    *retryBudget
	// attemptPanicked is set once a panic of the attempt observer has been
	// logged.
	attemptPanicked atomic.Bool
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
	o.maxEjection = DefaultMaxEjectionPercent
	o.budgetPercent, o.budgetFloor = DefaultRetryBudgetPercent, DefaultRetryBudgetFloor
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
		if !ok || pb.Pool() == nil {
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
	if o.via == "" {
		o.via = fmt.Sprintf("lb-%016x", rand.Uint64())
	}
	p := &Proxy{bal: b, transport: o.transport, o: o, via10: "1.0 " + o.via, via11: "1.1 " + o.via, via2: "2 " + o.via, budget: newRetryBudget(&o)}
	p.rp = &httputil.ReverseProxy{
		Rewrite:       p.rewrite,
		Transport:     retryTransport{p},
		ErrorHandler:  p.handleError,
		FlushInterval: o.flushInterval,
		BufferPool:    copyBuffers,
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

// stateCtx is the context of the request sent on to a server: the inbound
// request's context, with the request's proxyState as the value of
// stateKey. It lives inside the proxyState, so that it costs no
// allocation of its own (context.WithValue would).
type stateCtx struct {
	context.Context
	st *proxyState
}

// Value returns the proxyState for stateKey, else the parent's value.
func (c *stateCtx) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return c.st
	}
	return c.Context.Value(key)
}

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
	// answered is the server's time to the current attempt's response
	// header (0 until it has come), and waited the time reads of the
	// client's body had waited for the client at the attempt's start.
	answered, waited time.Duration
	tries            int        // attempts so far, the current one included
	tried            [4]*Server // servers tried, the first few
	more             []*Server  // and any beyond them

	replay  []byte       // the whole body, kept for retries; nil if not kept
	tracked *trackedBody // the body, if it is streamed: &body
	body    trackedBody
	hasBody bool

	pinned *Server // the server the request's sticky cookie named, if any

	conn    *hijackedConn // the connection a handler server took over, if any
	ctx     stateCtx      // the context of in: it carries this state
	watched watchedBody   // the body of the one response RoundTrip returns
	query   string        // the inbound query as cleaned for the first attempt
}

// ServeHTTP sends r to a server and copies the answer back to w.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.bal == nil {
		zeroValueUsed("Proxy", "NewProxy")
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	if p.looped(r) {
		p.loopDetected(w, r)
		return
	}
	if up := upgradeType(r.Header); up != "" && (!printable(up) || strings.Contains(up, ",")) {
		// The reverse proxy refuses it too: the client's fault, not a
		// server's. It also refuses a server's switch to one protocol of a
		// list, which RFC 9110 §7.8 allows: a list is the client's fault
		// too, not a failure of the server that switched.
		http.Error(w, http.StatusText(http.StatusBadRequest), http.StatusBadRequest)
		return
	}
	st := &proxyState{p: p}
	r, ok := p.prepareBody(w, r, st)
	if !ok {
		return
	}
	if st.tracked != nil {
		// Nothing reads the client's body once the handler has returned.
		defer st.tracked.closed.Store(true)
	}
	st.in = r
	var res PickResult
	if sk := p.o.sticky; sk != nil {
		st.pinned, res = sk.pin(r)
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
			res.Cancel()
		}
		p.noServer(w, r, errors.New("lb: balancer returned no server and no error"))
		return
	}
	st.begin(res)
	defer func() {
		v := recover()
		if v != nil && st.info.Err == nil {
			st.fail(panicError(v, r))
		}
		// A connection a handler server took over keeps the attempt in
		// flight until it closes; a handler that panics has given it up.
		if v != nil && st.conn != nil {
			_ = st.conn.Close()
		}
		if st.conn == nil || st.conn.release() {
			st.end()
		}
		if v != nil {
			panic(v)
		}
	}()
	st.ctx = stateCtx{Context: r.Context(), st: st}
	st.in = r.WithContext(&st.ctx)
	if h := res.Server.handler; h != nil {
		if p.o.sticky != nil && st.pinned != res.Server {
			w.Header().Add("Set-Cookie", p.o.sticky.cookie(r, res.Server))
		}
		hw, sw := newStatusWriter(w, st)
		h.ServeHTTP(hw, p.handlerRequest(st.in))
		if !sw.written {
			st.info.StatusCode = http.StatusOK
		}
		if err := st.bodyError(); err != nil {
			st.fail(err)
		}
		return
	}
	if st.tracked != nil && expectsContinue(r) {
		w = continueWriter{w}
	}
	p.rp.ServeHTTP(w, st.in)
}

// begin starts an attempt on res.
func (st *proxyState) begin(res PickResult) {
	st.res, st.ended, st.info, st.start = res, false, DoneInfo{}, time.Now()
	st.answered, st.waited = 0, st.bodyWait()
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
	d := st.answered
	if d == 0 {
		d = st.serverTime()
	}
	st.info.Duration = d
	if (st.info.Err != nil || st.info.StatusCode >= 500) && !errors.Is(st.info.Err, context.Canceled) && clientGone(st.in) {
		// A handler that fails because its client went away (its
		// context cancelled) has not failed.
		if st.info.Err == nil {
			st.info.Err = fmt.Errorf("%w (client went away): status %d", context.Canceled, st.info.StatusCode)
		} else {
			st.info.Err = fmt.Errorf("%w (client went away): %w", context.Canceled, st.info.Err)
		}
	}
	st.res.Done(st.info)
	st.p.observe(st.res.Server, st.info)
	st.attempted()
}

// bodyWait returns the time reads of the client's body have spent waiting
// for the client so far.
func (st *proxyState) bodyWait() time.Duration {
	if st.tracked == nil {
		return 0
	}
	return time.Duration(st.tracked.wait.Load())
}

// serverTime returns the time the current attempt has taken so far, less
// the time it spent waiting for the client's body: the server's time, not a
// slow client's.
func (st *proxyState) serverTime() time.Duration {
	return max(time.Since(st.start)-(st.bodyWait()-st.waited), 0)
}

// answer records that the current attempt's response header has come, the
// first time it is called: the server's latency, which the time the client
// then takes to read the answer does not lengthen.
func (st *proxyState) answer() {
	if st.answered == 0 {
		st.answered = max(st.serverTime(), 1)
	}
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
	st.query = pr.Out.URL.RawQuery // before the target's own query joins it
	p.target(pr, st.res.Server)
	trusted := p.trusts(pr.In)
	if trusted {
		for _, h := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v, ok := pr.In.Header[h]; ok {
				pr.Out.Header[h] = slices.Clone(v)
			}
		}
	} else {
		// Other headers that name the client's address, which many
		// frameworks believe: only a trusted proxy may set them.
		delete(pr.Out.Header, "X-Real-Ip")
		delete(pr.Out.Header, "True-Client-Ip")
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
	pr.Out.Header["Via"] = append(pr.Out.Header["Via"], p.viaEntry(pr.In))
}

// viaEntry returns what the proxy appends to the Via header of a request it
// forwards: the protocol version it received r with, and its pseudonym.
func (p *Proxy) viaEntry(r *http.Request) string {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return p.via11
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return p.via10
	case r.ProtoMajor == 2 && r.ProtoMinor == 0:
		return p.via2
	case r.ProtoMajor == 1:
		return fmt.Sprintf("1.%d %s", r.ProtoMinor, p.o.via)
	}
	return fmt.Sprintf("%d %s", r.ProtoMajor, p.o.via)
}

// looped reports whether r has already come through this proxy: its Via
// header names the proxy's pseudonym.
func (p *Proxy) looped(r *http.Request) bool {
	for _, v := range r.Header["Via"] {
		for elem := range strings.SplitSeq(v, ",") {
			// received-protocol RWS received-by [RWS comment]
			elem = strings.TrimLeft(elem, " \t")
			i := strings.IndexAny(elem, " \t")
			if i < 0 {
				continue
			}
			by := strings.TrimLeft(elem[i:], " \t")
			if j := strings.IndexAny(by, " \t"); j >= 0 {
				by = by[:j]
			}
			if by == p.o.via {
				return true
			}
		}
	}
	return false
}

// errLoop is the error of a request that came round a loop back to the
// proxy.
var errLoop = errors.New("lb: request loop: Via already names this proxy")

// loopDetected answers a request that came round a loop: 508.
func (p *Proxy) loopDetected(w http.ResponseWriter, r *http.Request) {
	if ok, skipped := p.errLog.allow(time.Now()); ok {
		p.o.logger.LogAttrs(r.Context(), slog.LevelError, "lb: request loop",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int64("suppressed", skipped))
	}
	if p.o.errorHandler != nil {
		p.o.errorHandler(w, r, http.StatusLoopDetected, errLoop)
		return
	}
	http.Error(w, http.StatusText(http.StatusLoopDetected), http.StatusLoopDetected)
}

// target points the outbound request at server s. A handler server has no
// URL: its request keeps the client's URL and Host.
func (p *Proxy) target(pr *httputil.ProxyRequest, s *Server) {
	if s.url == nil {
		return
	}
	pr.SetURL(s.url)
	if p.o.preserveHost {
		pr.Out.Host = pr.In.Host
	}
	// The credentials of the server's URL, unless the client sent its own
	// (see NewServer); a retry must not carry the last server's. Never on
	// a TRACE, whose answer shows the client the request as received (RFC
	// 9110 §9.3.8 forbids credentials in one).
	if _, own := pr.In.Header["Authorization"]; !own {
		if user := s.url.User; user != nil && pr.In.Method != http.MethodTrace {
			password, _ := user.Password()
			pr.Out.SetBasicAuth(user.Username(), password)
		} else {
			pr.Out.Header.Del("Authorization")
		}
	}
}

// trusts reports whether the client of r is a trusted proxy.
func (p *Proxy) trusts(r *http.Request) bool {
	return len(p.o.trusted) > 0 && inPrefixes(p.o.trusted, hostOnly(r.RemoteAddr))
}

// handleError answers a request whose last attempt failed with err.
func (p *Proxy) handleError(w http.ResponseWriter, out *http.Request, err error) {
	st, _ := out.Context().Value(stateKey{}).(*proxyState)
	code := http.StatusBadGateway
	if isTimeout(err) {
		code = http.StatusGatewayTimeout
	}
	in := out
	var bodyErr error
	if st != nil {
		in = st.in
		if bodyErr = st.bodyError(); bodyErr != nil {
			// The client's body broke while it was sent on: the
			// client's fault, whatever the transport made of it.
			err, code = bodyErr, clientBodyStatus(bodyErr)
		} else if st.info.StatusCode == http.StatusSwitchingProtocols {
			// The server answered 101; what failed is the switch.
			err = fmt.Errorf("%w: %w", errSwitch, err)
		}
		st.fail(err)
		st.end()
	}
	if clientGone(in) {
		p.o.logger.LogAttrs(in.Context(), slog.LevelDebug, "lb: client went away",
			slog.String("method", in.Method), slog.String("path", in.URL.Path))
	} else if bodyErr != nil {
		p.o.logger.LogAttrs(in.Context(), slog.LevelDebug, "lb: bad request body",
			slog.String("method", in.Method), slog.String("path", in.URL.Path), slog.Any("err", bodyErr))
	} else if st != nil {
		p.logError(in, code, st.res.Server, err)
	}
	if p.o.errorHandler != nil {
		p.o.errorHandler(w, in, code, err)
		return
	}
	http.Error(w, http.StatusText(code), code)
}

// errSwitch wraps the error of a request whose server switched protocols
// (101) but whose switch the reverse proxy then could not carry out: the
// client's connection could not be taken over, or the server switched to
// a protocol other than the one asked for. The server answered, so passive
// health counts it neither as a failure nor as a success.
var errSwitch = errors.New("lb: protocol switch failed after the server's 101")

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

// zeroValueUsed logs, through slog's default logger and once per type,
// that the zero value of a type that needs its constructor was used.
func zeroValueUsed(typ, constructor string) {
	if _, seen := zeroValuesSeen.LoadOrStore(typ, true); !seen {
		slog.Default().Error("lb: " + typ + " used without " + constructor + "; it serves nothing")
	}
}

// zeroValuesSeen holds the types whose zero value use has been logged.
var zeroValuesSeen sync.Map
