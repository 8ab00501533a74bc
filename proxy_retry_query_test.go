package lb

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A retry sends the inbound query joined to the new target's own, never the
// query of the first target.
func TestProxyRetryRebuildsQuery(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path + "?" + r.URL.RawQuery
	}))
	t.Cleanup(ts.Close)
	good, err := NewServer(ts.URL+"/?shard=b", WithName("b"))
	require.NoError(t, err)
	dead, err := NewServer("http://"+refusingAddr(t)+"/?shard=a", WithName("a"))
	require.NoError(t, err)

	p := newTestProxy(t, []*Server{dead, good})
	w := serve(p, "GET", "/x?q=1", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "/x?shard=b&q=1", <-got)
}
