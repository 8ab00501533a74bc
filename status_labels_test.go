package lb

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStatusHandlerLabels checks that the status page shows each server's
// labels, escaped, in HTML and in JSON.
func TestStatusHandlerLabels(t *testing.T) {
	t.Parallel()
	s, err := NewHandlerServer("a", http.NotFoundHandler(), WithLabels(map[string]string{"zone": "eu-1", "v": "<b>2</b>"}))
	require.NoError(t, err)
	p, err := NewPool(s)
	require.NoError(t, err)

	r := httptest.NewRequest("GET", "/status", nil)
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	StatusHandler(p).ServeHTTP(w, r)
	body := w.Body.String()
	assert.Contains(t, body, `<td class="name"><b>a</b> <small>v=&lt;b&gt;2&lt;/b&gt;</small> <small>zone=eu-1</small>`)

	w = httptest.NewRecorder()
	StatusHandler(p).ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	var got PoolStatus
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Len(t, got.Servers, 1)
	assert.Equal(t, map[string]string{"zone": "eu-1", "v": "<b>2</b>"}, got.Servers[0].Labels)
}
