package lb

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWatchDNSServerNameIsItsURL checks that a server WatchDNS makes is
// named by its URL whatever WithDNSServerOptions say: a WithName there would
// give every address the same name, and all but one would be left out.
func TestWatchDNSServerNameIsItsURL(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	for _, srv := range []bool{false, true} {
		pool := new(Pool)
		name := "api.test."
		opts := []DNSOption{WithDNSServerOptions(WithName("api"), WithLabels(map[string]string{"zone": "a"}))}
		if srv {
			d.setSRV(t, "_http._tcp.api.test", "10 5 8080 api.test.")
			name = "_http._tcp.api.test."
			opts = append(opts, WithDNSSRV())
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
	_, err := newDNSWatcher(new(Pool), "a.test", []DNSOption{WithDNSInterval(math.MaxInt64-time.Second, time.Hour)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lb: WatchDNS")
	assert.Contains(t, err.Error(), "jitter 1h0m0s")

	// The largest sum that fits is fine.
	w, err := newDNSWatcher(new(Pool), "a.test", []DNSOption{WithDNSInterval(math.MaxInt64-time.Hour, time.Hour)})
	require.NoError(t, err)
	w.o.randN = func(n int) int { return n - 1 }
	assert.Positive(t, w.wait())
}

// TestWatchDNSMaxServers checks that an answer with more addresses than
// the bound fails the lookup, keeping the last good set: with the default
// bound, nine SRV targets of 1,200 addresses each are refused rather than
// made into 10,800 servers.
func TestWatchDNSMaxServers(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	d.setSRV(t, "_http._tcp.api.test", "10 5 8080 api.test.")

	// A and AAAA, with a bound of 2.
	pool := new(Pool)
	w, err := startWatch(t, d, pool, "api.test.", WithDNSMaxServers(2))
	require.NoError(t, err)
	require.Equal(t, []string{"http://10.0.0.1:80", "http://10.0.0.2:80"}, poolNames(pool))
	d.setA("api.test", "10.0.0.1", "10.0.0.2", "10.0.0.3")
	err = w.refresh()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "above the maximum 2 (WithDNSMaxServers)")
	assert.Equal(t, []string{"http://10.0.0.1:80", "http://10.0.0.2:80"}, poolNames(pool), "the last good set stays")
	d.setA("api.test", "10.0.0.1", "10.0.0.2")

	// SRV, with the default bound.
	srvPool := new(Pool)
	ws, err := startWatch(t, d, srvPool, "_http._tcp.api.test.", WithDNSSRV())
	require.NoError(t, err)
	require.Equal(t, 2, srvPool.Len())
	var records []string
	for k := range 9 {
		target := fmt.Sprintf("big%d.test", k)
		records = append(records, "10 5 8080 "+target+".")
		addrs := make([]string, 1200)
		for i := range addrs {
			addrs[i] = fmt.Sprintf("10.%d.%d.%d", 10+k, i/250, i%250+1)
		}
		d.setA(target, addrs...)
	}
	d.setSRV(t, "_http._tcp.api.test", records...)
	err = ws.refresh()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "above the maximum 10000 (WithDNSMaxServers)")
	assert.Equal(t, 2, srvPool.Len(), "the last good set stays")

	_, err = newDNSWatcher(new(Pool), "a.test", []DNSOption{WithDNSMaxServers(0)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WithDNSMaxServers: 0 is not at least 1")
}
