package lb

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The secrets of these tests: a user name and a password, and a token
// given as a user name alone ("https://TOKEN@host"), as some services
// take it.
const (
	secretUser     = "opsuser"
	secretPassword = "hunter2"
	secretToken    = "tok3nXYZ"
)

// assertNoSecret checks that text shows none of the test secrets, nor any
// piece of them.
func assertNoSecret(t *testing.T, text string, msgAndArgs ...any) {
	t.Helper()
	for _, s := range []string{secretUser, secretPassword, secretToken, "hunt", "ter2", "tok3n", "XYZ"} {
		assert.NotContains(t, text, s, msgAndArgs...)
	}
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// logBuffer is a slog handler's output, safe for concurrent writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogBuffer() (*logBuffer, *slog.Logger) {
	b := new(logBuffer)
	return b, slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestServerNameHidesUserInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, name, url string
	}{
		{"http://" + secretUser + ":" + secretPassword + "@10.0.0.1:8080", "http://10.0.0.1:8080", "http://10.0.0.1:8080"},
		{"https://" + secretToken + "@api.internal/v1?x=1", "https://api.internal/v1?x=1", "https://api.internal/v1?x=1"},
		{"http://" + secretUser + ":" + secretPassword + "@h:1/@me#f", "http://h:1/@me#f", "http://h:1/@me#f"},
		{"http://" + secretUser + ":p%40ss" + secretPassword + "@h:1", "http://h:1", "http://h:1"},
		{"HTTP://" + secretUser + "@h:1/a%2Fb", "HTTP://h:1/a%2Fb", "http://h:1/a%2Fb"},
		// Without user info, the name is the URL as given.
		{"http://10.0.0.1:8080/x/", "http://10.0.0.1:8080/x/", "http://10.0.0.1:8080/x/"},
	}
	for _, tt := range tests {
		s, err := NewServer(tt.raw)
		require.NoError(t, err, tt.raw)
		assert.Equal(t, tt.name, s.Name(), tt.raw)
		assert.Equal(t, tt.url, s.Stats().URL, tt.raw)
		assertNoSecret(t, s.Name()+s.String()+fmt.Sprint(s)+s.Stats().URL, tt.raw)
		// The URL itself keeps the credentials: the proxy needs them.
		assert.Equal(t, tt.raw != tt.name, s.URL().User != nil, tt.raw)
	}
}

func TestNewServerErrorsHideUserInfo(t *testing.T) {
	t.Parallel()
	u, p := secretUser, secretPassword
	for _, raw := range []string{
		"http://" + u + ":" + p + "@10.0.0.1:80x",      // bad port
		"http://" + u + ":" + p + "@",                  // no host
		u + ":" + p + "@10.0.0.1:8080",                 // no scheme
		"http://" + u + ":hun/ter2@10.0.0.1",           // a "/" in the password
		"http://" + u + ":hun#ter2@10.0.0.1",           // a "#" in the password
		"http://" + u + ":hun%zzter2@10.0.0.1",         // a bad escape in the password
		"http://" + secretToken + "@10.0.0.1:80x",      // a token, and a bad port
		"http://" + u + ":" + p + "@10.0.0.1 bad/path", // a space in the host
	} {
		_, err := NewServer(raw)
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), "lb: server URL", raw)
		assertNoSecret(t, err.Error(), raw)
	}
	_, err := NewServer("http://"+u+":"+p+"@10.0.0.1:8080", WithWeight(-1))
	require.Error(t, err)
	assertNoSecret(t, err.Error())
	// Without user info, the error names the URL as given, with the
	// parser's reason.
	_, err = NewServer("http://10.0.0.1:80x")
	assert.ErrorContains(t, err, `lb: server URL "http://10.0.0.1:80x": invalid port ":80x" after host`)
}

func TestStatusHidesUserInfo(t *testing.T) {
	t.Parallel()
	a, err := NewServer("http://" + secretUser + ":" + secretPassword + "@10.0.0.1:8080")
	require.NoError(t, err)
	b, err := NewServer("https://" + secretToken + "@10.0.0.2:8443/v1")
	require.NoError(t, err)
	p, err := NewPool(a, b)
	require.NoError(t, err)
	for _, accept := range []string{"application/json", "text/html"} {
		for name, h := range map[string]http.Handler{"status": StatusHandler(p), "admin": newAdmin(t, p)} {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Accept", accept)
			h.ServeHTTP(w, r)
			require.Equal(t, http.StatusOK, w.Code)
			assert.Contains(t, w.Body.String(), "10.0.0.2:8443/v1", name, accept)
			assertNoSecret(t, w.Body.String(), name, accept)
		}
	}
}

func TestLogsHideUserInfo(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	a, err := NewServer("http://" + secretUser + ":" + secretPassword + "@" + addr)
	require.NoError(t, err)
	b, err := NewServer("http://" + secretToken + "@" + addr + "/b")
	require.NoError(t, err)
	p, err := NewPool(a, b)
	require.NoError(t, err)

	// A proxy error (the dial is refused) and an ejection.
	logs, logger := newLogBuffer()
	rr, err := NewRoundRobin(p, WithRotationStart(0))
	require.NoError(t, err)
	proxy, err := NewProxy(rr, WithProxyLogger(logger), WithPassiveHealth(1, DefaultCooldown))
	require.NoError(t, err)
	front := httptest.NewServer(proxy)
	defer front.Close()
	resp, err := http.Get(front.URL + "/x")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Contains(t, logs.String(), "lb: proxy error")
	assert.Contains(t, logs.String(), "lb: server ejected")
	assertNoSecret(t, logs.String())

	// Health transitions, whose causes are the HTTP client's errors.
	logs, logger = newLogBuffer()
	hc, err := NewHealthChecker(p, WithCheckLogger(logger), WithCheckRiseFall(1, 1))
	require.NoError(t, err)
	hc.CheckOnce(context.Background())
	assert.False(t, a.Healthy())
	assert.False(t, b.Healthy())
	assert.Equal(t, 2, strings.Count(logs.String(), "lb: server down"), logs.String())
	assert.Contains(t, logs.String(), "connection refused")
	assertNoSecret(t, logs.String())
}

// authRecorder is a backend that wants Basic credentials opsuser/hunter2
// and records the Authorization header of each request.
type authRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (a *authRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Header.Get("Authorization"))
	a.mu.Unlock()
	if user, pw, ok := r.BasicAuth(); !ok || user != secretUser || pw != secretPassword {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

func (a *authRecorder) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		return "(none)"
	}
	return a.seen[len(a.seen)-1]
}

func TestURLCredentialsOneRule(t *testing.T) {
	t.Parallel()
	backend := new(authRecorder)
	bs := httptest.NewServer(backend)
	defer bs.Close()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(secretUser+":"+secretPassword))
	s, err := NewServer(strings.Replace(bs.URL, "://", "://"+secretUser+":"+secretPassword+"@", 1))
	require.NoError(t, err)
	p, err := NewPool(s)
	require.NoError(t, err)

	// The checker sends the credentials...
	hc, err := NewHealthChecker(p, quietCheck, WithCheckRiseFall(1, 1))
	require.NoError(t, err)
	hc.CheckOnce(context.Background())
	assert.True(t, s.Healthy())
	assert.Equal(t, basic, backend.last(), "probe")

	// ... and so does the proxy, unless the client sent its own.
	rr, err := NewRoundRobin(p)
	require.NoError(t, err)
	proxy, err := NewProxy(rr, WithProxyLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	front := httptest.NewServer(proxy)
	defer front.Close()
	tests := []struct {
		name, auth string
		code       int
		seen       string
	}{
		{"no Authorization", "", http.StatusOK, basic},
		{"the client's own", "Bearer abc", http.StatusUnauthorized, "Bearer abc"},
		{"the client's own Basic", "Basic Zm9vOmJhcg==", http.StatusUnauthorized, "Basic Zm9vOmJhcg=="},
	}
	for _, tt := range tests {
		req, err := http.NewRequest("GET", front.URL+"/x", nil)
		require.NoError(t, err)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, tt.code, resp.StatusCode, tt.name)
		assert.Equal(t, tt.seen, backend.last(), tt.name)
	}
}

func TestURLCredentialsNotCarriedToRetry(t *testing.T) {
	t.Parallel()
	// The first server, with credentials, refuses the connection; the
	// retry goes to the second, which has none and must get none.
	plain := new(authRecorder)
	bs := httptest.NewServer(plain)
	defer bs.Close()
	dead, err := NewServer("http://" + secretUser + ":" + secretPassword + "@" + closedAddr(t))
	require.NoError(t, err)
	live, err := NewServer(bs.URL)
	require.NoError(t, err)
	other := new(authRecorder)
	ownSrv := httptest.NewServer(other)
	defer ownSrv.Close()
	withOwn, err := NewServer(strings.Replace(ownSrv.URL, "://", "://other:pw@", 1))
	require.NoError(t, err)

	for _, tt := range []struct {
		name   string
		second *Server
		rec    *authRecorder
		want   string
	}{
		{"no credentials", live, plain, ""},
		{"credentials of its own", withOwn, other, "Basic " + base64.StdEncoding.EncodeToString([]byte("other:pw"))},
	} {
		p, err := NewPool(dead, tt.second)
		require.NoError(t, err)
		rr, err := NewRoundRobin(p, WithRotationStart(0))
		require.NoError(t, err)
		proxy, err := NewProxy(rr, WithProxyLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		front := httptest.NewServer(proxy)
		resp, err := http.Get(front.URL + "/x")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		front.Close()
		assert.Equal(t, tt.want, tt.rec.last(), tt.name)
	}
}
