package lb

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeyClientIPAddressForms checks KeyClientIP on every form RemoteAddr
// takes: host:port as net/http sets it, and a bare IP as real-IP
// middlewares set it, for IPv4 and IPv6, with and without a zone.
func TestKeyClientIPAddressForms(t *testing.T) {
	// Not parallel: AllocsPerRun.
	plain := KeyClientIP()
	trusted := KeyClientIP(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48"),
		netip.MustParsePrefix("fe80::/10"))
	for _, tc := range []struct {
		remote string
		key    string // without trust
		viaXFF bool   // a trusted proxy: the key is X-Forwarded-For's client
	}{
		{"192.0.2.10:5555", "192.0.2.10", false},
		{"192.0.2.10", "192.0.2.10", false},
		{"10.1.2.3:80", "10.1.2.3", true},
		{"10.1.2.3", "10.1.2.3", true},
		{"[2001:db8::1]:443", "2001:db8::1", false},
		{"2001:db8::1", "2001:db8::1", false},
		{"2001:db8::2", "2001:db8::2", false},
		{"[2001:db8::2]", "2001:db8::2", false},
		{"::1", "::1", false},
		{"::ffff:192.0.2.10", "::ffff:192.0.2.10", false},
		{"[::ffff:10.1.2.3]:80", "::ffff:10.1.2.3", true},
		{"2001:db8:ffff::7", "2001:db8:ffff::7", true},
		{"[2001:db8:ffff::7]:8443", "2001:db8:ffff::7", true},
		{"fe80::1%eth0", "fe80::1%eth0", true},
		{"[fe80::1%eth0]:8080", "fe80::1%eth0", true},
		{"fe80::2%eth0", "fe80::2%eth0", true},
		{"proxy.internal:80", "proxy.internal", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("X-Forwarded-For", "203.0.113.5, 10.9.9.9")
		assert.Equal(t, tc.key, plain(r), "%s without trust", tc.remote)
		want := tc.key
		if tc.viaXFF {
			want = "203.0.113.5"
		}
		assert.Equal(t, want, trusted(r), "%s with trust", tc.remote)
		assert.Zero(t, testing.AllocsPerRun(100, func() {
			_ = plain(r)
			_ = trusted(r)
		}), tc.remote)
	}

	// Distinct bare IPv6 clients get distinct keys.
	keyOf := func(remote string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		return plain(r)
	}
	assert.NotEqual(t, keyOf("2001:db8::1"), keyOf("2001:db8::2"))
	assert.NotEqual(t, keyOf("2001:db8:0:1::1"), keyOf("2001:db8:0:2::1"))
	assert.Equal(t, keyOf("[2001:db8::1]:1"), keyOf("[2001:db8::1]:2"), "the port is not part of the key")

	// Hops of X-Forwarded-For in host:port form are keyed by their host.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "2001:db8:ffff::1"
	r.Header.Set("X-Forwarded-For", "[2001:db8::5]:1234, [2001:db8:ffff::2]:80")
	assert.Equal(t, "2001:db8::5", trusted(r))
	r.Header.Set("X-Forwarded-For", "2001:db8:ffff::3, 2001:db8:ffff::2")
	assert.Equal(t, "2001:db8:ffff::3", trusted(r), "every hop trusted: the first one")
}

// TestProxyTrustsBareIPv6 checks that the proxy recognises a trusted
// proxy whose RemoteAddr is a bare IPv6 address.
func TestProxyTrustsBareIPv6(t *testing.T) {
	t.Parallel()
	pool, err := NewPool(handlerServers(t, "a")...)
	require.NoError(t, err)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	p, err := NewProxy(rr, quiet, WithTrustedProxies(netip.MustParsePrefix("2001:db8::/32")))
	require.NoError(t, err)
	for remote, want := range map[string]bool{
		"2001:db8::1":        true,
		"[2001:db8::1]:8080": true,
		"2001:db9::1":        false,
		"[2001:db9::1]:8080": false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		assert.Equal(t, want, p.trusts(r), remote)
	}
}
