package lb

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
)

// WithStickyCookie pins each client to a server with a cookie: the first
// response sets the cookie name to a value that identifies the server (an
// HMAC of its name under secret, so it shows neither the name nor the
// address, and cannot be forged), and later requests that carry it go to
// that server while it is available. A tampered, unknown or stale cookie
// (naming a server that has left the pool) is ignored: the request is
// balanced as usual and the cookie re-issued. When the pinned server is
// down, the request fails over and the cookie is re-pinned.
//
// Proxies that share the secret and have servers of the same names agree on
// every cookie, so a client keeps its server across many proxy instances.
// The secret must be at least 16 bytes. The balancer must be a
// [PoolBalancer] (all of this package's are) whose Pool is not nil.
//
// attrs, if not nil, gives the cookie's attributes (Path, Domain, MaxAge,
// Secure, HttpOnly, SameSite); its Name and Value are ignored. The default
// is Path "/", HttpOnly, SameSite Lax and a session cookie. Either way the
// cookie is Secure when the request came over TLS.
//
// name must be an RFC 6265 token (letters, digits and !#$%&'*+-.^_`|~; no
// ':', '/', '=', spaces or other separators), and the Domain and Path of
// attrs must be ones net/http writes as given (a domain name or an IPv4
// address; a path without ';' or control bytes), and its MaxAge must not be
// negative (which would delete the cookie): anything else is an error
// naming the value.
func WithStickyCookie(name string, secret []byte, attrs *http.Cookie) ProxyOption {
	return func(o *proxyOptions) error {
		if (&http.Cookie{Name: name}).Valid() != nil {
			return fmt.Errorf("WithStickyCookie: invalid cookie name %q: not an RFC 6265 token", name)
		}
		if len(secret) < 16 {
			return fmt.Errorf("WithStickyCookie: secret of %d bytes, want at least 16", len(secret))
		}
		c := http.Cookie{Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
		if attrs != nil {
			c = *attrs
		}
		c.Name, c.Value = name, ""
		// net/http drops an invalid Domain or the invalid bytes of a Path
		// with a line on the standard logger, on every response: refuse
		// them here instead.
		if err := (&http.Cookie{Name: name, Domain: c.Domain}).Valid(); err != nil {
			return fmt.Errorf("WithStickyCookie: invalid cookie Domain %q: %w", c.Domain, err)
		}
		if err := (&http.Cookie{Name: name, Path: c.Path}).Valid(); err != nil {
			return fmt.Errorf("WithStickyCookie: invalid cookie Path %q: %w", c.Path, err)
		}
		if c.MaxAge < 0 {
			// Max-Age=0: every client would drop the cookie at once.
			return fmt.Errorf("WithStickyCookie: cookie MaxAge %d is negative", c.MaxAge)
		}
		o.sticky = &sticky{attrs: c, secret: append([]byte(nil), secret...)}
		return nil
	}
}

// sticky is the state of WithStickyCookie.
type sticky struct {
	attrs  http.Cookie
	secret []byte
	pool   *Pool
	table  atomic.Pointer[stickyTable]
}

// stickyTable maps cookie values to the servers of one pool snapshot.
type stickyTable struct {
	version uint64
	server  map[string]*Server
	value   map[*Server]string
}

// lookup returns the pool's server for a cookie value, or nil.
func (sk *sticky) lookup(value string) *Server {
	return sk.current().server[value]
}

// current returns the table for the pool's current membership, building
// it when the membership has changed.
func (sk *sticky) current() *stickyTable {
	st := sk.pool.load()
	if t := sk.table.Load(); t != nil && t.version == st.version {
		return t
	}
	t := &stickyTable{
		version: st.version,
		server:  make(map[string]*Server, len(st.servers)),
		value:   make(map[*Server]string, len(st.servers)),
	}
	for _, s := range st.servers {
		v := sk.valueOf(s)
		t.server[v], t.value[s] = s, v
	}
	sk.table.Store(t)
	return t
}

// valueOf returns the cookie value that names s.
func (sk *sticky) valueOf(s *Server) string {
	mac := hmac.New(sha256.New, sk.secret)
	mac.Write([]byte("lb sticky\x00" + s.name))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:18])
}

// cookie returns the Set-Cookie value pinning r's client to s.
func (sk *sticky) cookie(r *http.Request, s *Server) string {
	c := sk.attrs
	if v, ok := sk.current().value[s]; ok {
		c.Value = v
	} else {
		c.Value = sk.valueOf(s)
	}
	if r.TLS != nil {
		c.Secure = true
	}
	return c.String()
}

// pinned returns the available server r's cookie names, or nil.
func (sk *sticky) pinned(r *http.Request) *Server {
	v := cookieValue(r, sk.attrs.Name)
	if v == "" {
		return nil
	}
	if s := sk.lookup(v); s != nil && s.Available() {
		return s
	}
	return nil
}

// pin counts a request on the available server r's cookie names and
// returns it with the pick. It returns nil if the cookie names no available
// server, or if the server has begun to drain or left the pool since it was
// looked up: the request is then balanced as usual.
func (sk *sticky) pin(r *http.Request) (*Server, PickResult) {
	s := sk.pinned(r)
	if s == nil {
		return nil, PickResult{}
	}
	s.load.Add(loadPick)
	if !sk.pool.recheck(s) {
		return nil, PickResult{}
	}
	return s, s.picked()
}

var errStickyNeedsPool = errors.New("WithStickyCookie: the balancer is not a PoolBalancer")
