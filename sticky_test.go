package lb

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var stickySecret = []byte("0123456789abcdef-sticky")

// stickyProxy returns a round-robin proxy with sticky cookies over servers.
func stickyProxy(t *testing.T, servers []*Server, attrs *http.Cookie) (*Proxy, *Pool) {
	t.Helper()
	pool, err := NewPool(servers...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool, WithRotationStart(0))
	require.NoError(t, err)
	p, err := NewProxy(rr, quiet, WithStickyCookie("srv", stickySecret, attrs))
	require.NoError(t, err)
	t.Cleanup(p.CloseIdleConnections)
	return p, pool
}

// get sends a GET with cookie (if not empty) and returns the body and the
// sticky cookie set by the answer ("" if none).
func stickyGet(t *testing.T, h http.Handler, cookie string) (body, set string) {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		r.Header.Set("Cookie", "other=1; srv="+cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.Name == "srv" {
			set = c.Value
		}
	}
	return w.Body.String(), set
}

func handlerServers(t *testing.T, names ...string) []*Server {
	t.Helper()
	var out []*Server
	for _, name := range names {
		s, err := NewHandlerServer(name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(name))
		}))
		require.NoError(t, err)
		out = append(out, s)
	}
	return out
}

func TestStickyCookiePins(t *testing.T) {
	t.Parallel()
	servers := []*Server{backend(t, "a", nil), backend(t, "b", nil), backend(t, "c", nil)}
	p, _ := stickyProxy(t, servers, nil)

	body, cookie := stickyGet(t, p, "")
	assert.Equal(t, "a", body)
	require.NotEmpty(t, cookie)
	for _, s := range servers {
		assert.NotContains(t, cookie, s.Name())
		assert.NotContains(t, cookie, s.URL().Host, "no address in the cookie")
	}
	for range 10 {
		body, set := stickyGet(t, p, cookie)
		assert.Equal(t, "a", body, "pinned, where round robin would rotate")
		assert.Empty(t, set, "a valid cookie is not re-issued")
	}
	// Without the cookie, balancing goes on.
	body, other := stickyGet(t, p, "")
	assert.Equal(t, "b", body)
	assert.NotEqual(t, cookie, other)
	assertNoneInFlight(t, servers...)
}

func TestStickyCookieTamperedOrStale(t *testing.T) {
	t.Parallel()
	servers := handlerServers(t, "a", "b", "c")
	p, pool := stickyProxy(t, servers, nil)
	_, cookieA := stickyGet(t, p, "")
	_, cookieB := stickyGet(t, p, "")

	for _, bad := range []string{"garbage", cookieA[:len(cookieA)-1] + "x", strings.ToUpper(cookieA)} {
		body, set := stickyGet(t, p, bad)
		require.NotNil(t, pool.Server(body))
		assert.Equal(t, p.o.sticky.valueOf(pool.Server(body)), set, "re-issued for the server that answered %q", bad)
		body2, again := stickyGet(t, p, set)
		assert.Equal(t, body, body2)
		assert.Empty(t, again, "the new cookie is valid")
	}

	// Stale: its server left the pool.
	require.NoError(t, pool.Remove(servers[1]))
	body, set := stickyGet(t, p, cookieB)
	assert.NotEqual(t, "b", body)
	assert.NotEmpty(t, set)
	assert.NotEqual(t, cookieB, set)
}

func TestStickyCookieFailsOver(t *testing.T) {
	t.Parallel()
	servers := handlerServers(t, "a", "b")
	p, _ := stickyProxy(t, servers, nil)
	_, cookie := stickyGet(t, p, "")
	servers[0].SetHealthy(false)
	body, set := stickyGet(t, p, cookie)
	assert.Equal(t, "b", body)
	require.NotEmpty(t, set, "re-pinned")
	servers[0].SetHealthy(true)
	body, again := stickyGet(t, p, set)
	assert.Equal(t, "b", body, "stays on the new pin after recovery")
	assert.Empty(t, again)
}

func TestStickyCookieRetryRepins(t *testing.T) {
	t.Parallel()
	dead, live := deadServer(t, "dead"), backend(t, "live", nil)
	p, _ := stickyProxy(t, []*Server{dead, live}, nil)
	// Pinned to dead (the first pick), its next request fails over on
	// retry and is re-pinned to live.
	sk := p.o.sticky
	body, set := stickyGet(t, p, sk.valueOf(dead))
	assert.Equal(t, "live", body)
	assert.Equal(t, sk.valueOf(live), set)
	assertNoneInFlight(t, dead, live)
}

func TestStickyCookieAcrossProxies(t *testing.T) {
	t.Parallel()
	p1, _ := stickyProxy(t, handlerServers(t, "a", "b", "c"), nil)
	p2, _ := stickyProxy(t, handlerServers(t, "c", "b", "a"), nil) // other instances, other order
	stickyGet(t, p1, "")
	body, cookie := stickyGet(t, p1, "") // pinned to b
	require.Equal(t, "b", body)
	body, set := stickyGet(t, p2, cookie)
	assert.Equal(t, "b", body, "another proxy with the same secret honours the cookie")
	assert.Empty(t, set)
}

func TestStickyCookieAttributes(t *testing.T) {
	t.Parallel()
	p, _ := stickyProxy(t, handlerServers(t, "a"), nil)
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	set := w.Header().Get("Set-Cookie")
	assert.Regexp(t, `^srv=[A-Za-z0-9_-]{24}; Path=/; HttpOnly; SameSite=Lax$`, set)

	r.TLS = &tls.ConnectionState{}
	w = httptest.NewRecorder()
	p.ServeHTTP(w, r)
	assert.Contains(t, w.Header().Get("Set-Cookie"), "; Secure")

	p, _ = stickyProxy(t, handlerServers(t, "a"), &http.Cookie{Name: "ignored", Value: "x", Path: "/app", MaxAge: 3600, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w = httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	assert.Regexp(t, `^srv=[A-Za-z0-9_-]{24}; Path=/app; Max-Age=3600; HttpOnly; Secure; SameSite=Strict$`, w.Header().Get("Set-Cookie"))
}

func TestStickyCookieRejects(t *testing.T) {
	t.Parallel()
	pool, _ := newTestPool(t, 1)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	_, err = NewProxy(rr, WithStickyCookie("", stickySecret, nil))
	assert.EqualError(t, err, `lb: NewProxy: WithStickyCookie: invalid cookie name "": not an RFC 6265 token`)
	_, err = NewProxy(rr, WithStickyCookie("a b", stickySecret, nil))
	assert.EqualError(t, err, `lb: NewProxy: WithStickyCookie: invalid cookie name "a b": not an RFC 6265 token`)
	_, err = NewProxy(rr, WithStickyCookie("srv", []byte("short"), nil))
	assert.EqualError(t, err, "lb: NewProxy: WithStickyCookie: secret of 5 bytes, want at least 16")
	_, err = NewProxy(BalancerFunc(rr.Pick), WithStickyCookie("srv", stickySecret, nil))
	assert.EqualError(t, err, "lb: NewProxy: WithStickyCookie: the balancer is not a PoolBalancer")
}
