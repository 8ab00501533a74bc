package lb

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A TRACE is answered with the request as the server received it (RFC 9110
// §9.3.8), so the credentials of the server's URL must not go with one:
// the client would read them. Other methods still carry them.
func TestProxyTraceCarriesNoServerCredentials(t *testing.T) {
	t.Parallel()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.Write(w) // the request as received, headers and all
	}))
	t.Cleanup(echo.Close)
	s, err := NewServer(strings.Replace(echo.URL, "://", "://ops:hunter2@", 1))
	require.NoError(t, err)
	p := newTestProxy(t, []*Server{s})
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	secret := base64.StdEncoding.EncodeToString([]byte("ops:hunter2"))

	for _, tc := range []struct {
		method string
		sent   bool
	}{{http.MethodTrace, false}, {http.MethodGet, true}} {
		req, err := http.NewRequest(tc.method, front.URL+"/x", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, tc.sent, strings.Contains(string(body), secret), "%s: credentials sent", tc.method)
	}
}
