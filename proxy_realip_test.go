package lb

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProxyDropsUntrustedRealIP: X-Real-IP and True-Client-IP, which many
// frameworks take for the client's address, are dropped from an untrusted
// client, as X-Forwarded-For is, for URL and handler servers alike; a
// trusted proxy's are kept.
func TestProxyDropsUntrustedRealIP(t *testing.T) {
	seen := make(chan http.Header, 2)
	echoHeaders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	})
	be := httptest.NewServer(echoHeaders)
	t.Cleanup(be.Close)
	urlServer, err := NewServer(be.URL)
	require.NoError(t, err)
	handlerServer, err := NewHandlerServer("inproc", echoHeaders)
	require.NoError(t, err)

	for _, tc := range []struct {
		name    string
		trusted bool
	}{{"untrusted client", false}, {"trusted proxy", true}} {
		for _, s := range []*Server{urlServer, handlerServer} {
			t.Run(tc.name+"/"+s.Name(), func(t *testing.T) {
				pool, err := NewPool(s)
				require.NoError(t, err)
				rr, err := NewRoundRobin(pool)
				require.NoError(t, err)
				opts := []ProxyOption{quiet}
				if tc.trusted {
					opts = append(opts, WithTrustedProxies(netip.MustParsePrefix("192.0.2.0/24")))
				}
				p, err := NewProxy(rr, opts...)
				require.NoError(t, err)
				r := httptest.NewRequest(http.MethodGet, "/", nil) // from 192.0.2.1
				r.Header.Set("X-Real-IP", "203.0.113.7")
				r.Header.Set("True-Client-IP", "203.0.113.8")
				w := httptest.NewRecorder()
				p.ServeHTTP(w, r)
				require.Equal(t, http.StatusOK, w.Code)
				h := <-seen
				if tc.trusted {
					assert.Equal(t, "203.0.113.7", h.Get("X-Real-IP"))
					assert.Equal(t, "203.0.113.8", h.Get("True-Client-IP"))
				} else {
					assert.Empty(t, h.Values("X-Real-IP"))
					assert.Empty(t, h.Values("True-Client-IP"))
				}
			})
		}
	}
}
