package lb

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requestDump answers with what the server saw of the request: its URL,
// its Host, every header sorted by name, and its body.
func requestDump(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	fmt.Fprintf(&b, "URL: %s\nHost: %s\n", r.URL.RequestURI(), r.Host)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.Header {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "%s: %q\n", name, r.Header[name])
	}
	body, err := io.ReadAll(r.Body)
	fmt.Fprintf(&b, "Body: %q %v\n", body, err)
	_, _ = io.WriteString(w, b.String())
}

// dumpVia sends raw to the server at url and returns the body of the
// answer.
func dumpVia(t *testing.T, url, raw string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second))) // a guard, not a measure
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	return string(body)
}

// withoutLine drops the line that starts with prefix from dump, returning
// it apart.
func withoutLine(dump, prefix string) (rest, line string) {
	var out []string
	for l := range strings.SplitSeq(dump, "\n") {
		if strings.HasPrefix(l, prefix) {
			line = l
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n"), line
}

// A handler server sees the request a URL server behind the same proxy
// sees: the same headers, cleaned and rewritten by the same rules.
func TestProxyHandlerServerSeesWhatAURLServerSees(t *testing.T) {
	t.Parallel()
	const hostile = "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: spoofed.example\r\n" +
		"X-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\nX-Real-Thing: kept\r\n"
	tests := []struct {
		name string
		raw  string
		// what a URL server sees that a handler server does not
		urlOnly string
	}{
		{
			name: "spoofed forwarding and hop-by-hop headers",
			raw: "GET /path?q=1&x=%zz HTTP/1.1\r\nHost: public.example\r\nUser-Agent: test\r\nAccept-Encoding: identity\r\n" + hostile +
				"Connection: keep-alive, X-Custom\r\nX-Custom: drop me\r\nKeep-Alive: timeout=5\r\n" +
				"Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nTe: trailers\r\nTrailer: X-T\r\n\r\n",
		},
		{
			name: "h2c upgrade",
			raw: "GET / HTTP/1.1\r\nHost: public.example\r\nUser-Agent: test\r\nAccept-Encoding: identity\r\n" + hostile +
				"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
		},
		{
			name: "websocket upgrade",
			raw: "GET /ws HTTP/1.1\r\nHost: public.example\r\nUser-Agent: test\r\nAccept-Encoding: identity\r\n" +
				"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
		},
		{
			name: "POST with a body",
			raw: "POST /form HTTP/1.1\r\nHost: public.example\r\nUser-Agent: test\r\nAccept-Encoding: identity\r\n" + hostile +
				"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
		},
		{
			name: "chunked PUT",
			raw: "PUT /put HTTP/1.1\r\nHost: public.example\r\nUser-Agent: test\r\nAccept-Encoding: identity\r\n" + hostile +
				"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		},
		{
			// The transport asks a URL server for gzip (and unzips the
			// answer itself) when the client did not say what it accepts;
			// a handler server answers the client directly.
			name:    "neither User-Agent nor Accept-Encoding",
			raw:     "GET / HTTP/1.1\r\nHost: public.example\r\n" + hostile + "\r\n",
			urlOnly: `Accept-Encoding: ["gzip"]`,
		},
	}
	for _, preserveHost := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/preserve host %v", tt.name, preserveHost), func(t *testing.T) {
				t.Parallel()
				urlServer := backend(t, "url", requestDump)
				handlerServer, err := NewHandlerServer("handler", http.HandlerFunc(requestDump))
				require.NoError(t, err)
				var opts []ProxyOption
				if preserveHost {
					opts = append(opts, WithPreserveHost())
				}
				p := newTestProxy(t, []*Server{urlServer, handlerServer}, opts...) // round robin: URL server first
				ts := httptest.NewServer(p)
				t.Cleanup(ts.Close)

				viaURL, viaHandler := dumpVia(t, ts.URL, tt.raw), dumpVia(t, ts.URL, tt.raw)
				viaURL, urlHost := withoutLine(viaURL, "Host: ")
				viaHandler, handlerHost := withoutLine(viaHandler, "Host: ")
				if tt.urlOnly != "" {
					var line string
					viaURL, line = withoutLine(viaURL, tt.urlOnly)
					assert.Equal(t, tt.urlOnly, line)
				}
				assert.Equal(t, viaURL, viaHandler)
				assert.NotContains(t, viaHandler, "6.6.6.6")
				assert.NotContains(t, viaHandler, "X-Custom")
				// A handler server has no host of its own: it sees the
				// client's, as it would mounted directly.
				assert.Equal(t, "Host: public.example", handlerHost)
				if preserveHost {
					assert.Equal(t, handlerHost, urlHost)
				} else {
					assert.Equal(t, "Host: "+urlServer.url.Host, urlHost)
				}
			})
		}
	}
}
