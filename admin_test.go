package lb

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newAdmin returns AdminHandler(p, opts...).
func newAdmin(t testing.TB, p *Pool, opts ...AdminOption) http.Handler {
	t.Helper()
	h, err := AdminHandler(p, opts...)
	require.NoError(t, err)
	return h
}

// adminDo sends a request to h, as JSON unless it is a GET or HEAD, and
// returns the status and the decoded JSON answer.
func adminDo(h http.Handler, method, target, body string) (int, map[string]any) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if method != http.MethodGet && method != http.MethodHead {
		r.Header.Set("Content-Type", "application/json")
	}
	h.ServeHTTP(w, r)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

func TestAdminAddRemove(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1)
	h := newAdmin(t, p)

	code, out := adminDo(h, "POST", "/", `{"url": "http://10.0.0.9:8080", "weight": 3}`)
	assert.Equal(t, http.StatusCreated, code)
	assert.Equal(t, "http://10.0.0.9:8080", out["name"])
	assert.EqualValues(t, 3, out["weight"])
	require.Equal(t, 2, p.Len())

	tests := []struct {
		body string
		code int
		err  string
	}{
		{`{"url": "http://10.0.0.9:8080"}`, http.StatusConflict, `duplicate server: "http://10.0.0.9:8080"`},
		{`{"url": "localhost:8080"}`, http.StatusBadRequest, `server URL "localhost:8080": missing scheme or host`},
		{`{"url": "http://a:1", "weight": -2}`, http.StatusBadRequest, "weight -2 is negative"},
		{`{"url": "http://a:1", "colour": "red"}`, http.StatusBadRequest, `unknown field "colour"`},
		{`not json`, http.StatusBadRequest, "admin: bad request body"},
	}
	for _, tt := range tests {
		code, out := adminDo(h, "POST", "/", tt.body)
		assert.Equal(t, tt.code, code, tt.body)
		assert.Contains(t, out["error"], tt.err, tt.body)
	}
	assert.Equal(t, 2, p.Len())

	code, _ = adminDo(h, "DELETE", "/?name="+url.QueryEscape("http://10.0.0.9:8080"), "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1, p.Len())
	code, out = adminDo(h, "DELETE", "/?name=ghost", "")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, `server not in pool: "ghost"`, out["error"])

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	assert.Contains(t, w.Body.String(), `"name": "s0"`)
}

func TestAdminDrain(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1, 1)
		h := newAdmin(t, p)
		held := servers[0].Acquire()

		code, out := adminDo(h, "POST", "/drain?name=s0&timeout=1s", "")
		assert.Equal(t, http.StatusGatewayTimeout, code)
		assert.Contains(t, out["error"], `drain "s0": 1 requests still in flight`)
		held.Done(DoneInfo{})

		code, _ = adminDo(h, "POST", "/drain?name=s1", "")
		assert.Equal(t, http.StatusOK, code)
		assert.Zero(t, p.Len())

		code, _ = adminDo(h, "POST", "/drain?name=s1", "")
		assert.Equal(t, http.StatusNotFound, code)
		require.NoError(t, p.Add(servers[0]))
		code, out = adminDo(h, "POST", "/drain?name=s0&timeout=soon", "")
		assert.Equal(t, http.StatusBadRequest, code)
		assert.Contains(t, out["error"], `timeout "soon" is not a positive duration`)
	})
}

func TestAdminDrainTwice(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1)
		h := newAdmin(t, p)
		held := servers[0].Acquire()
		first := make(chan int, 1)
		go func() {
			code, _ := adminDo(h, "POST", "/drain?name=s0", "")
			first <- code
		}()
		synctest.Wait()
		code, out := adminDo(h, "POST", "/drain?name=s0", "")
		assert.Equal(t, http.StatusConflict, code)
		assert.Equal(t, `drain "s0": already draining`, out["error"])
		held.Done(DoneInfo{})
		assert.Equal(t, http.StatusOK, <-first)
	})
}
