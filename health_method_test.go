package lb

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckMethodMustBeToken: a method that is not an HTTP token would make
// every probe fail before it is sent, and take every server out of service
// with nothing wrong on them; it is an error naming the value instead.
func TestCheckMethodMustBeToken(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1)
	for _, m := range []string{"GET /", "GET\r\nX-Evil: 1", "HEAD ", "G:ET", "ÄGET"} {
		_, err := NewHealthChecker(p, quietCheck, WithCheckMethod(m))
		require.Error(t, err, "%q", m)
		assert.Contains(t, err.Error(), "WithCheckMethod")
		assert.Contains(t, err.Error(), fmt.Sprintf("%q", m))
	}
	for _, m := range []string{"GET", "HEAD", "OPTIONS", "X-PROBE"} {
		_, err := NewHealthChecker(p, quietCheck, WithCheckMethod(m))
		assert.NoError(t, err, "%q", m)
	}
}

// TestCheckMethodTokenProbes: a valid method other than GET reaches the
// server, and a healthy one stays up.
func TestCheckMethodTokenProbes(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Method }))
	t.Cleanup(backend.Close)
	s, err := NewServer(backend.URL)
	require.NoError(t, err)
	p, err := NewPool(s)
	require.NoError(t, err)
	hc, err := NewHealthChecker(p, quietCheck, WithCheckMethod("HEAD"), WithCheckRiseFall(1, 1))
	require.NoError(t, err)
	hc.CheckOnce(context.Background())
	assert.Equal(t, "HEAD", <-got)
	assert.True(t, s.Healthy())
}
