package lb

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWatchDNSServerNameIsItsURL checks that a server WatchDNS makes is
// named by its URL whatever DNSServerOptions say: a WithName there would
// give every address the same name, and all but one would be left out.
func TestWatchDNSServerNameIsItsURL(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	for _, srv := range []bool{false, true} {
		pool := new(Pool)
		name := "api.test."
		opts := []DNSOption{DNSServerOptions(WithName("api"), WithLabels(map[string]string{"zone": "a"}))}
		if srv {
			d.setSRV(t, "_http._tcp.api.test", "10 5 8080 api.test.")
			name = "_http._tcp.api.test."
			opts = append(opts, DNSSRV())
		}
		_, err := startWatch(t, d, pool, name, opts...)
		require.NoError(t, err)
		want := []string{"http://10.0.0.1:80", "http://10.0.0.2:80"}
		if srv {
			want = []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080"}
		}
		assert.Equal(t, want, poolNames(pool), "SRV %v", srv)
		for _, s := range pool.Servers() {
			assert.Equal(t, map[string]string{"zone": "a"}, s.Labels(), "the other options still apply")
		}
	}
}

// TestWatchDNSIntervalBound checks that an interval and a jitter whose sum
// does not fit a time.Duration are refused: the wait would wrap around to
// a negative one, and WatchDNS would look the name up without pause.
func TestWatchDNSIntervalBound(t *testing.T) {
	t.Parallel()
	_, err := newDNSWatcher(new(Pool), "a.test", []DNSOption{DNSInterval(math.MaxInt64-time.Second, time.Hour)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lb: WatchDNS")
	assert.Contains(t, err.Error(), "jitter 1h0m0s")

	// The largest sum that fits is fine.
	w, err := newDNSWatcher(new(Pool), "a.test", []DNSOption{DNSInterval(math.MaxInt64-time.Hour, time.Hour)})
	require.NoError(t, err)
	w.o.randN = func(n int) int { return n - 1 }
	assert.Positive(t, w.wait())
}
