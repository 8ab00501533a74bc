package lb

import (
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The numeric options of retries and passive health: every value is either
// used as given or refused with an error naming it.
func TestProxyRetryOptionBounds(t *testing.T) {
	t.Parallel()
	b := BalancerFunc(func(*http.Request) (PickResult, error) { return PickResult{}, ErrNoServer })
	for _, tc := range []struct {
		opt  ProxyOption
		want string
	}{
		{WithPassiveHealth(math.MaxInt32, time.Second), ""},
		{WithPassiveHealth(3, -time.Second), "WithPassiveHealth: cool-down -1s is not positive"},
		{WithPassiveHealth(3, math.MaxInt64), ""},
		{WithRetries(math.MaxInt), ""},
		{WithRetryAfterHeader(math.MaxInt64), ""},
		{WithFlushInterval(math.MinInt64), ""},
		{WithFlushInterval(math.MaxInt64), ""},
		{WithResponseHeaderTimeout(math.MaxInt64), ""},
		{WithResponseHeaderTimeout(-1), "WithResponseHeaderTimeout: negative duration -1ns"},
	} {
		_, err := NewProxy(b, tc.opt)
		if tc.want == "" {
			assert.NoError(t, err)
			continue
		}
		require.Error(t, err)
		assert.Equal(t, "lb: NewProxy: "+tc.want, err.Error())
	}
}

// A failure count above 2^32 used to wrap to 0 and eject on the first
// failure.
func TestProxyPassiveHealthHugeCount(t *testing.T) {
	t.Parallel()
	if strconv.IntSize < 64 {
		t.Skip("an int cannot hold 1<<32")
	}
	big := int64(1) << 32
	b := BalancerFunc(func(*http.Request) (PickResult, error) { return PickResult{}, ErrNoServer })
	_, err := NewProxy(b, WithPassiveHealth(int(big), time.Second))
	require.Error(t, err)
	assert.Equal(t, "lb: NewProxy: WithPassiveHealth: failure count 4294967296 is above the maximum 2147483647", err.Error())
}

// Retry-After holds the whole seconds of any duration, on 32-bit platforms
// too.
func TestProxyRetryAfterHuge(t *testing.T) {
	t.Parallel()
	b := BalancerFunc(func(*http.Request) (PickResult, error) { return PickResult{}, ErrNoServer })
	p, err := NewProxy(b, quiet, WithRetryAfterHeader(math.MaxInt64))
	require.NoError(t, err)
	w := serve(p, "GET", "/", "")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, "9223372036", w.Header().Get("Retry-After"))
}
