package lb

import (
	"bytes"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// captureStdLog sends the standard logger's output to a buffer until the
// test ends. Tests that use it must not be parallel.
func captureStdLog(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	flags := log.Flags()
	log.SetOutput(&buf)
	t.Cleanup(func() {
		log.SetOutput(os.Stderr)
		log.SetFlags(flags)
	})
	return &buf
}

// TestStickyCookieValidation checks that WithStickyCookie refuses a cookie
// name that is not an RFC 6265 token and attributes that net/http would
// drop with a log line, and that what it accepts pins clients silently.
func TestStickyCookieValidation(t *testing.T) {
	// Not parallel: it captures the standard logger.
	logged := captureStdLog(t)
	for _, tc := range []struct {
		name  string
		attrs *http.Cookie
		err   string // "" if valid
	}{
		{"srv", nil, ""},
		{"__Host-lb", &http.Cookie{Path: "/", Secure: true}, ""},
		{"lb_sticky.v1", &http.Cookie{Domain: "example.com", Path: "/app"}, ""},
		{"lb-sticky", &http.Cookie{Domain: ".example.com"}, ""},
		{"lb", &http.Cookie{Domain: "192.0.2.1"}, ""},
		{"!#$%&'*+-.^_`|~", nil, ""},

		{"lb:sticky", nil, `invalid cookie name "lb:sticky"`},
		{"a b", nil, `invalid cookie name "a b"`},
		{"a=b", nil, `invalid cookie name "a=b"`},
		{"(lb)", nil, `invalid cookie name "(lb)"`},
		{"lb/sticky", nil, `invalid cookie name "lb/sticky"`},
		{"lb\x7f", nil, `invalid cookie name "lb\x7f"`},
		{"sésame", nil, `invalid cookie name "sésame"`},
		{"", nil, `invalid cookie name ""`},
		{"srv", &http.Cookie{Domain: "exa mple.com"}, `invalid cookie Domain "exa mple.com"`},
		{"srv", &http.Cookie{Domain: "example.com:8080"}, `invalid cookie Domain "example.com:8080"`},
		{"srv", &http.Cookie{Domain: "-bad.example.com"}, `invalid cookie Domain "-bad.example.com"`},
		{"srv", &http.Cookie{Domain: "a..example.com"}, `invalid cookie Domain "a..example.com"`},
		{"srv", &http.Cookie{Domain: "2001:db8::1"}, `invalid cookie Domain "2001:db8::1"`},
		{"srv", &http.Cookie{Path: "/a;b"}, `invalid cookie Path "/a;b"`},
		{"srv", &http.Cookie{Path: "/", MaxAge: 3600}, ""},
		{"srv", &http.Cookie{Path: "/", MaxAge: -1}, `cookie MaxAge -1 is negative`},
	} {
		logged.Reset()
		pool, err := NewPool(handlerServers(t, "a", "b")...)
		require.NoError(t, err)
		rr, err := NewRoundRobin(pool, WithRotationStart(0))
		require.NoError(t, err)
		p, err := NewProxy(rr, quiet, WithStickyCookie(tc.name, stickySecret, tc.attrs))
		if err == nil {
			// Whatever is accepted must pin, and print nothing.
			r := httptest.NewRequest("GET", "/app/x", nil)
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			var set *http.Cookie
			for _, c := range w.Result().Cookies() {
				if c.Name == tc.name {
					set = c
				}
			}
			if assert.NotNil(t, set, "%q %+v: no cookie set (Set-Cookie %q)", tc.name, tc.attrs, w.Header().Values("Set-Cookie")) {
				assert.NotEmpty(t, set.Value, tc.name)
				assert.GreaterOrEqual(t, set.MaxAge, 0, "%q: a cookie deleted at once", tc.name)
				if tc.attrs != nil && tc.attrs.Domain != "" {
					assert.NotEmpty(t, set.Domain, "%q: the Domain attribute was dropped", tc.attrs.Domain)
				}
			}
			assert.Empty(t, logged.String(), "%q %+v: net/http logged", tc.name, tc.attrs)
		}
		if tc.err == "" {
			assert.NoError(t, err, tc.name)
			continue
		}
		if assert.Error(t, err, "%q %+v", tc.name, tc.attrs) {
			assert.Contains(t, err.Error(), "lb: NewProxy: WithStickyCookie: "+tc.err)
		}
	}
}
