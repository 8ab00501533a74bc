package lb

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func tcpAddr(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func TestAppendProxyHeader(t *testing.T) {
	v4s, v4d := tcpAddr("192.0.2.1:56324"), tcpAddr("198.51.100.2:443")
	v6s, v6d := tcpAddr("[2001:db8::1]:56324"), tcpAddr("[2001:db8::2]:443")
	for _, tc := range []struct {
		name     string
		version  int
		src, dst net.Addr
		want     string
	}{
		{"v1 TCP4", 1, v4s, v4d, "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"},
		{"v1 TCP6", 1, v6s, v6d, "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"},
		{"v1 mixed", 1, v4s, v6d, "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 56324 443\r\n"},
		{"v1 mapped", 1, tcpAddr("[::ffff:192.0.2.1]:1"), v4d, "PROXY TCP4 192.0.2.1 198.51.100.2 1 443\r\n"},
		{"v1 unknown", 1, &net.UnixAddr{Name: "/x", Net: "unix"}, v4d, "PROXY UNKNOWN\r\n"},
		{"v2 TCP4", 2, v4s, v4d, proxyV2Sig + "\x21\x11\x00\x0c" + "\xc0\x00\x02\x01" + "\xc6\x33\x64\x02" + "\xdc\x04" + "\x01\xbb"},
		{"v2 TCP6", 2, v6s, v6d, proxyV2Sig + "\x21\x21\x00\x24" +
			"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" +
			"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02" + "\xdc\x04" + "\x01\xbb"},
		{"v2 unknown", 2, nil, v4d, proxyV2Sig + "\x21\x00\x00\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := appendProxyHeader(nil, tc.version, tc.src, tc.dst)
			assert.Equal(t, tc.want, string(h))
			assert.LessOrEqual(t, len(h), proxyHeaderMax)
		})
	}
}

func TestReadProxyHeader(t *testing.T) {
	for _, tc := range []struct {
		name, in, src, dst, err string
	}{
		{name: "v1 TCP4", in: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nrest", src: "192.0.2.1:56324", dst: "198.51.100.2:443"},
		{name: "v1 TCP6", in: "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\nrest", src: "[2001:db8::1]:1", dst: "[2001:db8::2]:2"},
		{name: "v1 unknown", in: "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nrest"},
		{name: "v2 TCP4 with TLV", in: proxyV2Sig + "\x21\x11\x00\x11" + "\xc0\x00\x02\x01" + "\xc6\x33\x64\x02" + "\xdc\x04" + "\x01\xbb" + "\x04\x00\x02ab" + "rest",
			src: "192.0.2.1:56324", dst: "198.51.100.2:443"},
		{name: "v2 local", in: proxyV2Sig + "\x20\x00\x00\x00rest"},
		{name: "v2 unix", in: proxyV2Sig + "\x21\x31\x00\x04abcdrest"},
		{name: "not a header", in: "GET / HTTP/1.1\r\n\r\n", err: "no PROXY signature"},
		{name: "short", in: "PROXY", err: "unexpected EOF"},
		{name: "v1 no CRLF", in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", err: "CRLF"},
		{name: "v1 too long", in: "PROXY TCP4 " + string(bytes.Repeat([]byte("1"), 200)), err: "longer than 107 bytes"},
		{name: "v1 family mismatch", in: "PROXY TCP4 2001:db8::1 1.2.3.4 1 2\r\n", err: `address "2001:db8::1"`},
		{name: "v1 bad port", in: "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", err: `port "65536"`},
		{name: "v1 protocol", in: "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", err: `protocol "UDP4"`},
		{name: "v1 fields", in: "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", err: "want 6 fields"},
		{name: "v2 version", in: proxyV2Sig + "\x11\x11\x00\x00", err: "version/command byte 0x11"},
		{name: "v2 short block", in: proxyV2Sig + "\x21\x11\x00\x04abcd", err: "address block of 4 bytes"},
		{name: "v2 cut", in: proxyV2Sig + "\x21\x11\x00\x0cabc", err: "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader([]byte(tc.in))
			src, dst, err := readProxyHeader(r)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Contains(t, err.Error(), "lb: ")
				return
			}
			require.NoError(t, err)
			if tc.src == "" {
				assert.Nil(t, src)
				assert.Nil(t, dst)
			} else {
				assert.Equal(t, tc.src, src.String())
				assert.Equal(t, tc.dst, dst.String())
			}
			rest := make([]byte, 16)
			n, _ := r.Read(rest)
			assert.Equal(t, "rest", string(rest[:n]), "reads the header and nothing more")
		})
	}
}

// FuzzReadProxyHeader: the parser never panics, never reads past what it
// accepts, and what it accepts survives a round trip through both
// versions.
func FuzzReadProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(appendProxyHeader(nil, 2, tcpAddr("192.0.2.1:1"), tcpAddr("192.0.2.2:2")))
	f.Add(appendProxyHeader(nil, 2, tcpAddr("[2001:db8::1]:1"), tcpAddr("[2001:db8::2]:2")))
	f.Add([]byte(proxyV2Sig + "\x21\x11\x00\x11" + "\xc0\x00\x02\x01" + "\xc6\x33\x64\x02" + "\xdc\x04" + "\x01\xbb" + "\x04\x00\x02ab"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		src, dst, err := readProxyHeader(r)
		if err != nil {
			return
		}
		used := len(data) - r.Len()
		// The header alone parses the same.
		src2, dst2, err := readProxyHeader(bytes.NewReader(data[:used]))
		require.NoError(t, err)
		require.Equal(t, src, src2)
		require.Equal(t, dst, dst2)
		if src == nil {
			return
		}
		for _, v := range []int{1, 2} {
			h := appendProxyHeader(nil, v, src, dst)
			s, d, err := readProxyHeader(bytes.NewReader(h))
			require.NoError(t, err, "version %d: %q", v, h)
			require.Equal(t, src.String(), s.String())
			require.Equal(t, dst.String(), d.String())
		}
	})
}

func TestHealthCheckerTCPProbe(t *testing.T) {
	be := newTCPBackend(t, func(*net.TCPConn) {})
	servers := tcpServers(t, be.addr, refusedAddr(t))
	pool, err := NewPool(servers...)
	require.NoError(t, err)
	hc, err := NewHealthChecker(pool, WithCheckRiseFall(1, 1), WithCheckLogger(discardLogger()))
	require.NoError(t, err)
	hc.CheckOnce(context.Background())
	assert.True(t, servers[0].Stats().Healthy)
	assert.False(t, servers[1].Stats().Healthy)

	require.NoError(t, CheckTCP(context.Background(), servers[0]))
	err = CheckTCP(context.Background(), servers[1])
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lb: TCP probe of ")
	h, err := NewHandlerServer("h", http.NotFoundHandler())
	require.NoError(t, err)
	assert.EqualError(t, CheckTCP(context.Background(), h), `lb: TCP probe of "h": a handler server has no address`)
}
