package lb

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdminRefusesCrossSiteAndBadInput(t *testing.T) {
	t.Parallel()
	const add = `{"url": "http://10.0.0.9:8080"}`
	tests := []struct {
		name    string
		opts    []AdminOption
		method  string
		target  string
		ctype   string // "-" for none
		headers map[string]string
		body    string
		code    int
		err     string // in the JSON error; "" when the request succeeds
		added   bool
	}{
		// Changes must be JSON: a cross-site form or fetch without a
		// preflight cannot send that.
		{name: "text/plain add", method: "POST", target: "/", ctype: "text/plain", body: add,
			code: 415, err: `Content-Type "text/plain" is not application/json`},
		{name: "form add", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: add,
			code: 415, err: "is not application/json"},
		{name: "no Content-Type", method: "POST", target: "/", ctype: "-", body: add,
			code: 415, err: `Content-Type "" is not application/json`},
		{name: "text/plain drain", method: "POST", target: "/drain?name=s0", ctype: "text/plain",
			code: 415, err: "is not application/json"},
		{name: "delete without type", method: "DELETE", target: "/?name=s0", ctype: "-",
			code: 415, err: "is not application/json"},
		{name: "JSON with charset", method: "POST", target: "/", ctype: "application/json; charset=utf-8", body: add,
			code: 201, added: true},

		// Origin: refused unless allowed.
		{name: "cross-site origin", method: "POST", target: "/", headers: map[string]string{"Origin": "https://evil.example"}, body: add,
			code: 403, err: `origin "https://evil.example" is not allowed`},
		{name: "origin on a read", method: "GET", target: "/", headers: map[string]string{"Origin": "https://evil.example"},
			code: 403, err: "is not allowed"},
		{name: "null origin", method: "POST", target: "/", headers: map[string]string{"Origin": "null"}, body: add,
			code: 403, err: `origin "null" is not allowed`},
		{name: "allowed origin", opts: []AdminOption{WithAdminOrigins("https://ops.example:8443")},
			method: "POST", target: "/", headers: map[string]string{"Origin": "https://OPS.example:8443"}, body: add,
			code: 201, added: true},
		{name: "another origin", opts: []AdminOption{WithAdminOrigins("https://ops.example:8443")},
			method: "POST", target: "/", headers: map[string]string{"Origin": "https://ops.example"}, body: add,
			code: 403, err: "is not allowed"},

		// Host allow-list.
		{name: "host allowed", opts: []AdminOption{WithAdminHosts("localhost:8081", "127.0.0.1")},
			method: "POST", target: "/", headers: map[string]string{"Host": "127.0.0.1:9999"}, body: add,
			code: 201, added: true},
		{name: "host and port allowed", opts: []AdminOption{WithAdminHosts("localhost:8081")},
			method: "GET", target: "/", headers: map[string]string{"Host": "LOCALHOST:8081"},
			code: 200},
		{name: "rebound host", opts: []AdminOption{WithAdminHosts("localhost:8081", "127.0.0.1")},
			method: "POST", target: "/", headers: map[string]string{"Host": "evil.example:8081"}, body: add,
			code: 403, err: `host "evil.example:8081" is not allowed`},
		{name: "wrong port", opts: []AdminOption{WithAdminHosts("localhost:8081")},
			method: "GET", target: "/", headers: map[string]string{"Host": "localhost:8082"},
			code: 403, err: "is not allowed"},
		{name: "IPv6 host", opts: []AdminOption{WithAdminHosts("[::1]:8081")},
			method: "GET", target: "/", headers: map[string]string{"Host": "[::1]:8081"},
			code: 200},

		// The body: one JSON object, nothing after it.
		{name: "trailing data", method: "POST", target: "/", body: add + ` trailing`,
			code: 400, err: "data after the JSON object"},
		{name: "two objects", method: "POST", target: "/", body: add + add,
			code: 400, err: "data after the JSON object"},
		{name: "a stray brace", method: "POST", target: "/", body: add + `}`,
			code: 400, err: "data after the JSON object"},
		{name: "trailing space", method: "POST", target: "/", body: add + " \n",
			code: 201, added: true},

		// Only the schemes the proxy speaks.
		{name: "ftp", method: "POST", target: "/", body: `{"url": "ftp://10.0.0.9:21"}`,
			code: 400, err: `server URL "ftp://10.0.0.9:21": scheme "ftp" is not http or https`},
		{name: "javascript", method: "POST", target: "/", body: `{"url": "javascript://10.0.0.9/%0aalert(1)"}`,
			code: 400, err: `scheme "javascript" is not http or https`},
		{name: "https", method: "POST", target: "/", body: `{"url": "HTTPS://10.0.0.9:8443"}`,
			code: 201, added: true},

		// 404 and 405 are JSON too.
		{name: "unknown path", method: "GET", target: "/nope",
			code: 404, err: `no such path "/nope"`},
		{name: "wrong method", method: "PUT", target: "/", body: add,
			code: 405, err: "method PUT not allowed"},
		{name: "GET drain", method: "GET", target: "/drain?name=s0",
			code: 405, err: "method GET not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, _ := newTestPool(t, 1)
			h := newAdmin(t, p, tt.opts...)
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			switch {
			case tt.ctype == "-":
			case tt.ctype != "":
				r.Header.Set("Content-Type", tt.ctype)
			case tt.method != "GET":
				r.Header.Set("Content-Type", "application/json")
			}
			for k, v := range tt.headers {
				if k == "Host" {
					r.Host = v
				} else {
					r.Header.Set(k, v)
				}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, tt.code, w.Code, w.Body.String())
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			var out map[string]any
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out), w.Body.String())
			if tt.err != "" {
				assert.Contains(t, out["error"], tt.err)
			} else {
				assert.Nil(t, out["error"])
			}
			want := 1
			if tt.added {
				want = 2
			}
			assert.Equal(t, want, p.Len(), "servers in the pool")
			if tt.code == http.StatusMethodNotAllowed {
				assert.NotEmpty(t, w.Header().Get("Allow"))
			}
		})
	}
}

func TestAdminCORSForAllowedOrigins(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1)
	h := newAdmin(t, p, WithAdminOrigins("https://ops.example"))

	// A preflight from an allowed origin is granted...
	r := httptest.NewRequest("OPTIONS", "/", nil)
	r.Header.Set("Origin", "https://ops.example")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusNoContent, w.Code)
	assert.Equal(t, "https://ops.example", w.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, w.Header().Get("Access-Control-Allow-Methods"), "POST")
	assert.Equal(t, "Content-Type", w.Header().Get("Access-Control-Allow-Headers"))

	// ... and one from elsewhere is not.
	r.Header.Set("Origin", "https://evil.example")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))

	// A read from the allowed origin carries the header.
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Origin", "https://ops.example")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "https://ops.example", w.Header().Get("Access-Control-Allow-Origin"))
}

func TestAdminHandlerRejectsBadOptions(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1)
	tests := []struct {
		opts []AdminOption
		err  string
	}{
		{[]AdminOption{WithAdminOrigins("ops.example")}, `origin "ops.example" is not of the form`},
		{[]AdminOption{WithAdminOrigins("https://ops.example/")}, `origin "https://ops.example/"`},
		{[]AdminOption{WithAdminOrigins("ftp://ops.example")}, `origin "ftp://ops.example"`},
		{[]AdminOption{WithAdminOrigins("*")}, `origin "*"`},
		{[]AdminOption{WithAdminHosts("")}, `host "" is not of the form host[:port]`},
		{[]AdminOption{WithAdminHosts("http://localhost")}, `host "http://localhost"`},
		{[]AdminOption{WithAdminHosts("localhost/admin")}, `host "localhost/admin"`},
		{[]AdminOption{WithAdminHosts("localhost:http")}, `host "localhost:http"`},
		{[]AdminOption{nil}, "option 0 is nil"},
	}
	for _, tt := range tests {
		_, err := AdminHandler(p, tt.opts...)
		assert.ErrorContains(t, err, tt.err)
		assert.ErrorContains(t, err, "lb: AdminHandler: ")
	}
	_, err := AdminHandler(nil)
	assert.EqualError(t, err, "lb: AdminHandler: nil pool")
}
