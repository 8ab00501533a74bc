package lb

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

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
	via                string // the proxy's pseudonym in Via
	maxEjection        int    // percent of a pool's servers that may be ejected at once
	budgetPercent      float64
	budgetFloor        int
	noBudget           bool
	retryStatus        map[int]bool
	attempt            func(Attempt) // WithAttemptObserver
}

// Defaults of the proxy options.
const (
	DefaultRetries        = 2                // retries of a failed request, when safe
	DefaultRetryBodyLimit = 1 << 20          // bytes of body kept for retries
	DefaultFailures       = 5                // consecutive failures that eject a server
	DefaultCooldown       = 10 * time.Second // how long an ejected server stays out

	// DefaultMaxEjectionPercent is the largest share of a pool's servers,
	// in percent, that passive health ejects at once.
	DefaultMaxEjectionPercent = 50

	// DefaultRetryBudgetPercent and DefaultRetryBudgetFloor are the
	// defaults of [WithRetryBudget]: retries are at most 20% of the
	// requests, plus 3.
	DefaultRetryBudgetPercent = 20
	DefaultRetryBudgetFloor   = 3
)

// MaxRetryBodyLimit is the largest size [WithRetryBodyLimit] accepts: 1 GiB.
const MaxRetryBodyLimit = 1 << 30

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
// client gets 504. The default (and 0) is no limit beyond the client's own;
// any positive duration is valid. With [WithTransport], set the timeout on
// that transport instead.
func WithResponseHeaderTimeout(d time.Duration) ProxyOption {
	return func(o *proxyOptions) error {
		if d < 0 {
			return fmt.Errorf("WithResponseHeaderTimeout: negative duration %v", d)
		}
		o.responseTimeout = d
		return nil
	}
}

// WithProxyLogger sets the logger for errors and health transitions. The default
// is [slog.Default].
func WithProxyLogger(l *slog.Logger) ProxyOption {
	return func(o *proxyOptions) error {
		if l == nil {
			return errors.New("WithProxyLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithErrorHandler sets a function that writes the error response instead
// of the default short text page. code is the status the proxy would send
// (502, 503, 504; 400 or 413 when the client's request body could not be
// read, see [ErrClientBody]; 508 for a request that came round a loop, see
// [Proxy]) and err the cause, which must not be shown to clients.
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
// [DefaultRetries]; 0 turns retries off. Each retry goes to a server not yet
// tried for the request, so a count above the pool's size means trying
// every server once; retries are also bounded by [WithRetryBudget].
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
// a server). The default is [DefaultRetryBodyLimit]; 0 buffers nothing,
// and the most is [MaxRetryBodyLimit]: each request may hold that much.
func WithRetryBodyLimit(n int64) ProxyOption {
	return func(o *proxyOptions) error {
		if n < 0 {
			return fmt.Errorf("WithRetryBodyLimit: negative size %d", n)
		}
		if n > MaxRetryBodyLimit {
			return fmt.Errorf("WithRetryBodyLimit: size %d is above the most it buffers, %d bytes (MaxRetryBodyLimit)", n, MaxRetryBodyLimit)
		}
		o.bodyLimit = n
		return nil
	}
}

// WithPassiveHealth ejects a server for cooldown after failures consecutive
// failed requests. The defaults are [DefaultFailures] and
// [DefaultCooldown]; failures 0 turns passive health off. failures may be
// up to 2^31-1 and cooldown any positive duration.
//
// Ejection is its own state of the server, apart from the health that a
// [HealthChecker] sets: when the cool-down ends the server takes traffic
// again, unless an active checker has marked it down meanwhile, in which
// case it waits for the checker to bring it back. Ejection is shared by
// every proxy and balancer over the server. At most a share of the pool is
// ejected at once, so that a one-server pool never ejects its server: see
// [WithMaxEjectionPercent]. The observers of the server's pools hear each
// ejection, with the failures that made it, and its end ([Pool.Observe]).
func WithPassiveHealth(failures int, cooldown time.Duration) ProxyOption {
	return func(o *proxyOptions) error {
		if failures < 0 {
			return fmt.Errorf("WithPassiveHealth: negative failure count %d", failures)
		}
		if failures > math.MaxInt32 {
			return fmt.Errorf("WithPassiveHealth: failure count %d is above the maximum %d", failures, math.MaxInt32)
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
// errors always count, but for a dial that failed for want of the proxy's
// own file descriptors, ephemeral ports or buffers; a client that went
// away, or whose request body could not be read, never does.
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
// X-Forwarded-Proto, Forwarded) are kept and extended, and whose X-Real-IP
// and True-Client-IP are kept. From any other client they are dropped. The
// default trusts no one.
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
// once. The default is 0: no periodic flush. Any duration is valid.
func WithFlushInterval(d time.Duration) ProxyOption {
	return func(o *proxyOptions) error {
		o.flushInterval = d
		return nil
	}
}

// WithRetryAfterHeader sets the Retry-After header of 503 answers, in whole
// seconds (rounded down). The default is 1 second; any duration of a second
// or more is valid.
func WithRetryAfterHeader(d time.Duration) ProxyOption {
	return func(o *proxyOptions) error {
		if d < time.Second {
			return fmt.Errorf("WithRetryAfterHeader: %v is below one second", d)
		}
		o.retryAfter = strconv.FormatInt(int64(d/time.Second), 10)
		return nil
	}
}

// WithVia sets the pseudonym the proxy appends to the Via header of the
// requests it forwards, and by which it recognises a request that has come
// round a loop back to it (see [Proxy]). It must be an HTTP token (letters,
// digits and !#$%&'*+-.^_`|~), such as a host name without a port. Proxies
// that may forward to one another must have different pseudonyms. The
// default is "lb-" and 16 random hexadecimal digits, drawn for each Proxy.
func WithVia(pseudonym string) ProxyOption {
	return func(o *proxyOptions) error {
		if !httpToken(pseudonym) {
			return fmt.Errorf("WithVia: pseudonym %q is not an HTTP token", pseudonym)
		}
		o.via = pseudonym
		return nil
	}
}

// httpToken reports whether s is a token of RFC 9110, section 5.6.2.
func httpToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// WithMaxEjectionPercent caps passive health ([WithPassiveHealth]): a
// server is ejected only if that leaves at most percent % of the servers of
// the balancer's [Pool] (those of weight above 0) out of service at once,
// rounded down: ejected by any proxy, marked down by active health, or
// draining. The default is [DefaultMaxEjectionPercent], 50: of two servers
// one may be out, of three one, so the last server in service (a
// one-server pool's, or the one left when the others are down) is never
// ejected: it stays in service until an active [HealthChecker] marks it
// down. A server kept in
// service this way goes out at its next failure once the share allows.
// percent 0 turns ejection off; 100 allows every server to be ejected.
//
// A balancer that is not a [PoolBalancer] (or whose Pool is nil) names no
// pool, so the proxy cannot count: it then ejects only with percent 100.
func WithMaxEjectionPercent(percent int) ProxyOption {
	return func(o *proxyOptions) error {
		if percent < 0 || percent > 100 {
			return fmt.Errorf("WithMaxEjectionPercent: %d is not between 0 and 100", percent)
		}
		o.maxEjection = percent
		return nil
	}
}

// maxRetryBudgetFloor bounds the floor of [WithRetryBudget].
const maxRetryBudgetFloor = 1_000_000

// WithRetryBudget bounds the retries of the proxy ([WithRetries] bounds
// those of one request): each request to a URL server earns percent/100 of
// a retry, each retry spends one, and a retry is made only if a whole one
// is there. The credit starts at floor, and what requests earn accrues up
// to the larger of floor and percent % of the requests in flight (counted
// from the first attempt to the response headers), so that a quiet service
// can still retry and a busy one can absorb a burst, while savings from
// quiet times cannot pay for a storm. The budget is the proxy's own, shared
// by its requests and by no other proxy. Over any stretch of time the retries are at most
// floor plus percent % of the requests; with every server failing, the
// servers see at most 1 + percent/100 attempts per request, plus floor. A
// lone request may thus make at most max(floor, 1) retries whatever
// [WithRetries] says, and with floor 0 a service with fewer than
// 100/percent requests in flight never retries.
//
// The defaults are [DefaultRetryBudgetPercent] (20) and
// [DefaultRetryBudgetFloor] (3). Unlike Envoy's retry budget, which bounds
// the retries in flight, this one bounds the retries made: a failure such as
// a refused connection takes almost no time, so a bound on retries in
// flight barely slows a proxy that retries every one. percent must be
// between 0 and 100, floor between 0 and 1,000,000.
func WithRetryBudget(percent float64, floor int) ProxyOption {
	return func(o *proxyOptions) error {
		if !(percent >= 0 && percent <= 100) { // NaN too
			return fmt.Errorf("WithRetryBudget: percent %v is not between 0 and 100", percent)
		}
		if floor < 0 || floor > maxRetryBudgetFloor {
			return fmt.Errorf("WithRetryBudget: floor %d is not between 0 and %d", floor, maxRetryBudgetFloor)
		}
		o.budgetPercent, o.budgetFloor, o.noBudget = percent, floor, false
		return nil
	}
}

// WithoutRetryBudget turns the budget of [WithRetryBudget] off: every
// request may make the retries [WithRetries] allows, whatever the others
// do, so with every server failing each request makes 1 + that many
// attempts.
func WithoutRetryBudget() ProxyOption {
	return func(o *proxyOptions) error {
		o.noBudget = true
		return nil
	}
}

// WithRetryOnStatus retries a request whose answer has one of the statuses
// given, such as 503 (nginx's proxy_next_upstream http_503, Envoy's
// retriable status codes), on a server not yet tried for it: only if the
// method is idempotent and the body, if any, was kept ([WithRetryBodyLimit]),
// within [WithRetries] and the retry budget ([WithRetryBudget]). The answer
// given up is read (its first 64 KiB) and closed before the retry; when no
// retry is left, the client gets the last answer. Each status must be
// between 400 and 599. The default retries on no status; answers of
// in-process handler servers are never retried.
func WithRetryOnStatus(codes ...int) ProxyOption {
	return func(o *proxyOptions) error {
		set := make(map[int]bool, len(codes))
		for _, c := range codes {
			if c < 400 || c > 599 {
				return fmt.Errorf("WithRetryOnStatus: status %d is not between 400 and 599", c)
			}
			set[c] = true
		}
		o.retryStatus = set
		return nil
	}
}
