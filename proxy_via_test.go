package lb

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Via entry of a request costs no allocation for the protocols clients
// use (HTTP/1.0, 1.1 and 2), and names the version the proxy received.
func TestProxyViaEntryAllocatesNothing(t *testing.T) {
	p, err := NewProxy(BalancerFunc(func(*http.Request) (PickResult, error) { return PickResult{}, ErrNoServer }),
		quiet, WithVia("edge"))
	require.NoError(t, err)
	for _, tc := range []struct {
		major, minor int
		want         string
	}{{1, 0, "1.0 edge"}, {1, 1, "1.1 edge"}, {2, 0, "2 edge"}, {3, 0, "3 edge"}} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.ProtoMajor, r.ProtoMinor = tc.major, tc.minor
		assert.Equal(t, tc.want, p.viaEntry(r))
		if tc.major <= 2 {
			assert.Zero(t, testing.AllocsPerRun(100, func() { _ = p.viaEntry(r) }), "HTTP/%d.%d", tc.major, tc.minor)
		}
	}
}
