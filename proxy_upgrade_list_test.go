package lb

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wsLike answers an upgrade request that lists "websocket" among its
// protocols with 101 Switching Protocols to websocket alone, as RFC 9110
// §7.8 lets a server do (and as WebSocket libraries do), then closes.
func wsLike(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header["Upgrade"], "websocket") {
		http.Error(w, "websocket only", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	_ = brw.Flush()
	_ = conn.Close()
}

// A client that lists several protocols in Upgrade gets a server's
// RFC-correct switch to one of them refused by the reverse proxy: that must
// be answered as the client's fault (400), never counted against the
// server, or a client can eject healthy WebSocket servers at will.
func TestProxyUpgradeListNotAServerFailure(t *testing.T) {
	t.Parallel()
	s := backend(t, "ws", wsLike)
	p := newTestProxy(t, []*Server{s}, WithMaxEjectionPercent(100), WithRetries(0))
	ts, served := frontend(t, p)
	for range 2 * DefaultFailures {
		req, err := http.NewRequest(http.MethodGet, ts+"/ws", nil)
		require.NoError(t, err)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket, x-other")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		wait(t, served)
	}
	assert.False(t, s.Ejected(), "a client's Upgrade list ejected a healthy server")
	assertNoneInFlight(t, s)

	// The one-protocol upgrade still goes through.
	req, err := http.NewRequest(http.MethodGet, ts+"/ws", nil)
	require.NoError(t, err)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
}

// plainWriter hides every optional interface of the writer it wraps, as a
// middleware that knows none of them does.
type plainWriter struct{ w http.ResponseWriter }

func (w plainWriter) Header() http.Header         { return w.w.Header() }
func (w plainWriter) Write(b []byte) (int, error) { return w.w.Write(b) }
func (w plainWriter) WriteHeader(code int)        { w.w.WriteHeader(code) }

// When the server has switched protocols but the client's connection cannot
// be taken over (here a middleware's writer hides it), the reverse proxy
// answers 502: that is no failure of the server, which answered, and must
// not eject it.
func TestProxyUpgradeUnhijackableNotAServerFailure(t *testing.T) {
	t.Parallel()
	s := backend(t, "ws", wsLike)
	p := newTestProxy(t, []*Server{s}, WithMaxEjectionPercent(100), WithRetries(0))
	ts, served := frontend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeHTTP(plainWriter{w}, r)
	}))
	for range 2 * DefaultFailures {
		req, err := http.NewRequest(http.MethodGet, ts+"/ws", nil)
		require.NoError(t, err)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
		wait(t, served)
	}
	assert.False(t, s.Ejected(), "a failed switch on the proxy's side ejected a healthy server")
	assertNoneInFlight(t, s)
}
