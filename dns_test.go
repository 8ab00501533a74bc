package lb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// poolNames returns the names of the pool's servers, sorted.
func poolNames(p *Pool) []string {
	var out []string
	for _, s := range p.Servers() {
		out = append(out, s.Name())
	}
	slices.Sort(out)
	return out
}

// poolWeights returns the weights of the pool's servers, by name.
func poolWeights(p *Pool) map[string]int {
	out := map[string]int{}
	for _, s := range p.Servers() {
		out[s.Name()] = s.Weight()
	}
	return out
}

// waitLeft waits until s has left p.
func waitLeft(t *testing.T, p *Pool, s *Server) {
	t.Helper()
	for {
		ch := p.Changed()
		if p.Server(s.Name()) != s {
			return
		}
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never left the pool", s.Name())
		}
	}
}

func TestWatchDNSBadArguments(t *testing.T) {
	t.Parallel()
	// A resolver that must not be used: bad arguments fail before any lookup.
	never := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		t.Error("a lookup was made")
		return nil, fmt.Errorf("no")
	}}
	cases := []struct {
		name string
		pool *Pool
		host string
		opts []DNSOption
		want string
	}{
		{"nil pool", nil, "a.test", nil, "lb: WatchDNS: nil pool"},
		{"empty name", new(Pool), "", nil, `lb: WatchDNS: empty name ""`},
		{"nil option", new(Pool), "a.test", []DNSOption{nil}, `lb: WatchDNS "a.test": option 1 is nil`},
		{"port 0", new(Pool), "a.test", []DNSOption{WithDNSPort(0)}, "port 0 is not between 1 and 65535"},
		{"port too large", new(Pool), "a.test", []DNSOption{WithDNSPort(65536)}, "port 65536"},
		{"scheme", new(Pool), "a.test", []DNSOption{WithDNSScheme("ftp")}, `scheme "ftp"`},
		{"tcp without port", new(Pool), "a.test", []DNSOption{WithDNSScheme("tcp")}, `the scheme "tcp" needs a port`},
		{"interval", new(Pool), "a.test", []DNSOption{WithDNSInterval(0, 0)}, "interval 0s is not above 0"},
		{"jitter", new(Pool), "a.test", []DNSOption{WithDNSInterval(time.Second, 2*time.Second)}, "jitter 2s"},
		{"negative jitter", new(Pool), "a.test", []DNSOption{WithDNSInterval(time.Second, -1)}, "jitter -1ns"},
		{"timeout", new(Pool), "a.test", []DNSOption{WithDNSTimeout(-time.Second)}, "timeout -1s"},
		{"failover", new(Pool), "a.test", []DNSOption{WithDNSFailoverCheck(0)}, "period 0s"},
		{"drain", new(Pool), "a.test", []DNSOption{WithDNSDrainTimeout(0)}, "timeout 0s"},
		{"slow start", new(Pool), "a.test", []DNSOption{WithDNSSlowStart(0)}, "window 0s"},
		{"nil resolver", new(Pool), "a.test", []DNSOption{WithDNSResolver(nil)}, "nil resolver"},
		{"nil logger", new(Pool), "a.test", []DNSOption{WithDNSLogger(nil)}, "nil logger"},
		{"nil server option", new(Pool), "a.test", []DNSOption{WithDNSServerOptions(nil)}, "option 0 is nil"},
		{"bad server option", new(Pool), "a.test", []DNSOption{WithDNSServerOptions(WithWeight(-2))}, "weight -2 is negative"},
		{"bad labels", new(Pool), "a.test", []DNSOption{WithDNSServerOptions(WithLabels(map[string]string{"": "x"}))}, `empty label key ""`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := append([]DNSOption{WithDNSResolver(never)}, c.opts...)
			err := WatchDNS(context.Background(), c.pool, c.host, opts...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), "lb: WatchDNS")
		})
	}
}

// TestWatchDNSRecords follows A and AAAA records as they are added,
// removed and changed: unchanged servers keep their state, and a removed
// one drains.
func TestWatchDNSRecords(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2", "fd00::1")
	pool := new(Pool)
	w, err := startWatch(t, d, pool, "api.test.", WithDNSPort(8080), WithDNSServerOptions(WithLabels(map[string]string{"from": "dns"})))
	require.NoError(t, err)
	assert.Equal(t, []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://[fd00::1]:8080"}, poolNames(pool))
	one := pool.Server("http://10.0.0.1:8080")
	assert.Equal(t, map[string]string{"from": "dns"}, one.Labels())
	two := pool.Server("http://10.0.0.2:8080")
	one.Acquire().Done(DoneInfo{StatusCode: 500})
	one.SetHealthy(false)
	held := two.Acquire() // a request in flight on the server about to go

	d.setA("api.test", "10.0.0.1", "10.0.0.3", "fd00::1")
	require.NoError(t, w.refresh())
	assert.Same(t, one, pool.Server("http://10.0.0.1:8080"), "unchanged: the same server")
	st := one.Stats()
	assert.EqualValues(t, 1, st.Requests)
	assert.EqualValues(t, 1, st.Failures)
	assert.False(t, st.Healthy, "health kept")
	assert.NotNil(t, pool.Server("http://10.0.0.3:8080"))
	assert.Same(t, two, pool.Server("http://10.0.0.2:8080"), "still in the pool while it drains")
	assert.True(t, two.Draining())
	assert.False(t, two.Available())

	held.Done(DoneInfo{})
	waitLeft(t, pool, two)
	assert.Equal(t, []string{"http://10.0.0.1:8080", "http://10.0.0.3:8080", "http://[fd00::1]:8080"}, poolNames(pool))

	// The address comes back: a new server.
	d.setA("api.test", "10.0.0.2")
	require.NoError(t, w.refresh())
	assert.Equal(t, []string{"http://10.0.0.2:8080"}, poolNames(pool)[:1])
	assert.NotSame(t, two, pool.Server("http://10.0.0.2:8080"))
}

// TestWatchDNSFailuresKeepLastGoodSet checks that a failed lookup or an
// empty answer leaves the pool as it was, is logged, and that the pool
// converges once the answers come back.
func TestWatchDNSFailuresKeepLastGoodSet(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	var logs syncBuffer
	pool := new(Pool)
	w, err := startWatch(t, d, pool, "api.test.", WithDNSTimeout(2*time.Second),
		WithDNSLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	want := []string{"http://10.0.0.1:80", "http://10.0.0.2:80"}
	require.Equal(t, want, poolNames(pool))
	servers := pool.Servers()
	v := pool.Version()

	cases := []struct {
		name   string
		break_ func()
		want   string
	}{
		{"NXDOMAIN", func() { d.setRcode("api.test", dns.RcodeNameError) }, "no such host"},
		{"SERVFAIL", func() { d.setRcode("api.test", dns.RcodeServerFailure) }, "server misbehaving"},
		{"empty answer", func() { d.setA("api.test") }, "no such host"},
		{"silent server", func() { d.setSilent(true) }, "timeout"},
		{"unspecified address", func() { d.setA("api.test", "0.0.0.0") }, "no usable address"},
	}
	for _, c := range cases {
		c.break_()
		err := w.refresh()
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
		assert.Equal(t, servers, pool.Servers(), "%s: the pool keeps its servers", c.name)
		assert.Equal(t, v, pool.Version(), c.name)
		d.setRcode("api.test", dns.RcodeSuccess)
		d.setSilent(false)
		d.setA("api.test", "10.0.0.1", "10.0.0.2")
	}
	assert.Contains(t, logs.String(), "lb: DNS lookup failed; the pool keeps its servers")

	d.setA("api.test", "10.0.0.2", "10.0.0.4")
	require.NoError(t, w.refresh())
	assert.Equal(t, []string{"http://10.0.0.2:80", "http://10.0.0.4:80"}, poolNames(pool))
	assert.Contains(t, logs.String(), "lb: DNS lookup succeeded again")
}

// TestWatchDNSTruncated answers with more records than fit in a UDP
// answer: the resolver asks again over TCP and every address is found.
func TestWatchDNSTruncated(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	var addrs []string
	for i := range 200 {
		addrs = append(addrs, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1))
	}
	d.setA("big.test", addrs...)
	pool := new(Pool)
	_, err := startWatch(t, d, pool, "big.test.")
	require.NoError(t, err)
	assert.Equal(t, 200, pool.Len())
	assert.Positive(t, d.tcp.Load(), "the truncated answer was asked again over TCP")
}

// TestWatchDNSSRV checks SRV records: targets resolved, weights from the
// records and changed in place, bad records skipped, and the priority
// groups used in order as their servers go down and come back.
func TestWatchDNSSRV(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setSRV(t, "_http._tcp.api.test",
		"10 10 8080 a.test.",
		"10 30 8081 b.test.",
		"10 5 0 c.test.", // port 0: skipped
		"10 5 8082 missing.test.",
		"10 5 8083 bad!name.test.", // not a host name: left out by the resolver
		"20 0 9090 backup.test.",
	)
	d.setA("a.test", "10.0.0.1")
	d.setA("b.test", "10.0.0.2", "10.0.0.3")
	d.setA("c.test", "10.0.0.9")
	d.setA("backup.test", "10.0.1.1")
	var logs syncBuffer
	pool := new(Pool)
	failover := make(chan time.Time)
	reapplied := make(chan struct{})
	after := func(dur time.Duration) <-chan time.Time {
		if dur == 7*time.Second {
			return failover
		}
		return nil
	}
	w, err := startWatchAfter(t, d, pool, "_http._tcp.api.test.", after, func() { reapplied <- struct{}{} },
		WithDNSSRV(), WithDNSFailoverCheck(7*time.Second), WithDNSLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{
		"http://10.0.0.1:8080": 10,
		"http://10.0.0.2:8081": 30,
		"http://10.0.0.3:8081": 30,
		"http://10.0.1.1:9090": 0, // standby: the next priority
	}, poolWeights(pool))
	assert.Contains(t, logs.String(), "SRV record skipped: no port or no target")
	assert.Contains(t, logs.String(), "SRV target skipped: it does not resolve")
	assert.Contains(t, logs.String(), "lb: DNS: records skipped")

	// Reweighted in place.
	a := pool.Server("http://10.0.0.1:8080")
	v := pool.Version()
	d.setSRV(t, "_http._tcp.api.test", "10 60 8080 a.test.", "10 30 8081 b.test.", "20 0 9090 backup.test.")
	require.NoError(t, w.refresh())
	assert.Same(t, a, pool.Server("http://10.0.0.1:8080"))
	assert.Equal(t, 60, a.Weight())
	assert.Equal(t, v+1, pool.Version(), "one rebuild, by SetWeight")

	// Every server of priority 10 goes down: priority 20 takes over at the
	// next failover check, and gives back when one recovers.
	for _, s := range pool.Servers() {
		if s.Weight() > 0 {
			s.SetHealthy(false)
		}
	}
	failover <- time.Time{}
	<-reapplied
	assert.Equal(t, map[string]int{
		"http://10.0.0.1:8080": 0,
		"http://10.0.0.2:8081": 0,
		"http://10.0.0.3:8081": 0,
		"http://10.0.1.1:9090": 1,
	}, poolWeights(pool))
	rr, err := NewWeightedRoundRobin(pool)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"http://10.0.1.1:9090": 10}, countPicks(t, rr, 10))

	pool.Server("http://10.0.0.2:8081").SetHealthy(true)
	failover <- time.Time{}
	<-reapplied
	assert.Equal(t, map[string]int{
		"http://10.0.0.1:8080": 60,
		"http://10.0.0.2:8081": 30,
		"http://10.0.0.3:8081": 30,
		"http://10.0.1.1:9090": 0,
	}, poolWeights(pool))
	assert.Equal(t, map[string]int{"http://10.0.0.2:8081": 10}, countPicks(t, rr, 10))

	// All down everywhere: the lowest priority stands.
	pool.Server("http://10.0.0.2:8081").SetHealthy(false)
	pool.Server("http://10.0.1.1:9090").SetHealthy(false)
	require.NoError(t, w.refresh())
	assert.Equal(t, 0, pool.Server("http://10.0.1.1:9090").Weight())
	assert.Equal(t, 60, a.Weight())

	// A target whose lookup fails (SERVFAIL, not NXDOMAIN) fails the whole
	// lookup: nothing changes.
	d.setSRV(t, "_http._tcp.api.test", "10 60 8080 a.test.", "10 30 8081 slow.test.")
	d.setA("slow.test", "10.0.0.5")
	d.setRcode("slow.test", dns.RcodeServerFailure)
	before := poolWeights(pool)
	require.Error(t, w.refresh())
	assert.Equal(t, before, poolWeights(pool))
}

// TestWatchDNSOwnsOnlyItsServers checks that servers added by hand are
// never changed or removed, even when one has the name of an address.
func TestWatchDNSOwnsOnlyItsServers(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	manual, err := NewServer("http://10.0.0.2:80", WithWeight(7))
	require.NoError(t, err)
	other, err := NewHandlerServer("local", http.NotFoundHandler())
	require.NoError(t, err)
	pool, err := NewPool(manual, other)
	require.NoError(t, err)
	var logs syncBuffer
	w, err := startWatch(t, d, pool, "api.test.", WithDNSLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	assert.Equal(t, []string{"http://10.0.0.1:80", "http://10.0.0.2:80", "local"}, poolNames(pool))
	assert.Same(t, manual, pool.Server("http://10.0.0.2:80"))
	assert.Contains(t, logs.String(), "the pool has a server of that name that WatchDNS did not add")

	d.setA("api.test", "10.0.0.3")
	require.NoError(t, w.refresh())
	dnsOne := pool.Server("http://10.0.0.1:80")
	if dnsOne != nil {
		waitLeft(t, pool, dnsOne)
	}
	assert.Equal(t, []string{"http://10.0.0.2:80", "http://10.0.0.3:80", "local"}, poolNames(pool))
	assert.Same(t, manual, pool.Server("http://10.0.0.2:80"))
	assert.False(t, manual.Draining())

	// A server of its own removed by other hands is added again.
	three := pool.Server("http://10.0.0.3:80")
	require.NoError(t, pool.Remove(three))
	require.NoError(t, w.refresh())
	assert.NotNil(t, pool.Server("http://10.0.0.3:80"))
	assert.NotSame(t, three, pool.Server("http://10.0.0.3:80"))
}

// TestWatchDNSTiming checks the refresh timing with an injected timer:
// the first lookup at once, then each after the interval plus a jitter
// below the bound, so a DNS change reaches the pool within one interval
// plus jitter.
func TestWatchDNSTiming(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1")
	type timer struct {
		d  time.Duration
		ch chan time.Time
	}
	timers := make(chan timer)
	after := func(dur time.Duration) <-chan time.Time {
		ch := make(chan time.Time)
		timers <- timer{dur, ch}
		return ch
	}
	pool := new(Pool)
	const interval, jitter = 10 * time.Second, 2 * time.Second
	w, err := startWatchAfter(t, d, pool, "api.test.", after, nil,
		WithDNSInterval(interval, jitter), testRand(seededIntN(7)))
	require.NoError(t, err, "the first lookup, at once")
	require.Equal(t, []string{"http://10.0.0.1:80"}, poolNames(pool))
	var waits []time.Duration
	for i := range 5 {
		tm := <-timers
		require.GreaterOrEqual(t, tm.d, interval)
		require.Less(t, tm.d, interval+jitter)
		waits = append(waits, tm.d)
		addr := fmt.Sprintf("10.0.0.%d", i+2)
		d.setA("api.test", addr)
		tm.ch <- time.Time{} // the wait is over
		require.NoError(t, <-w.results)
		require.Equal(t, []string{"http://" + addr + ":80"}, poolNames(pool)[len(poolNames(pool))-1:])
	}
	assert.Len(t, slices.Compact(slices.Clone(waits)), 5, "jittered: %v", waits)
	go func() { // the last wait asked for, while the watch stops
		for range timers {
		}
	}()
	w.stop()
	close(timers)
}

// seededIntN returns a seeded source for testRand.
func seededIntN(seed uint64) func(int) int {
	var r fastRand
	r.state = seed
	return func(n int) int { return int(r.intN(uint64(n))) }
}

// testRand sets the source of the jitter.
func testRand(f func(int) int) DNSOption {
	return func(o *dnsOptions) error { o.randN = f; return nil }
}

// TestWatchDNSNoRequestCut sends a request through a Proxy to a backend
// found by DNS, removes the backend's record while the request is in
// flight, and checks that the request completes, and that the server
// leaves the pool once it has.
func TestWatchDNSNoRequestCut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer backend.Close()
	u, err := url.Parse(backend.URL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)

	d := newTestDNS(t)
	d.setA("api.test", "127.0.0.1")
	pool := new(Pool)
	w, err := startWatch(t, d, pool, "api.test.", WithDNSPort(port))
	require.NoError(t, err)
	s := pool.Server(backend.URL)
	require.NotNil(t, s)
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	proxy, err := NewProxy(rr, WithProxyLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	front := httptest.NewServer(proxy)
	defer front.Close()

	var wg sync.WaitGroup
	var body string
	var code int
	wg.Go(func() {
		resp, err := http.Get(front.URL + "/slow")
		if !assert.NoError(t, err) {
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body, code = string(b), resp.StatusCode
	})
	<-entered
	d.setA("api.test", "10.0.0.1") // the backend leaves the answer
	require.NoError(t, w.refresh())
	assert.True(t, s.Draining())
	assert.EqualValues(t, 1, s.InFlight())
	close(release)
	wg.Wait()
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", body)
	waitLeft(t, pool, s)
	assert.Zero(t, s.InFlight())
}

// TestWatchDNSStops ends the watch while a removed server still drains:
// WatchDNS returns, having stopped its drain, and the server has left.
func TestWatchDNSStops(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	pool := new(Pool)
	w, err := startWatch(t, d, pool, "api.test.")
	require.NoError(t, err)
	s := pool.Server("http://10.0.0.2:80")
	held := s.Acquire()
	d.setA("api.test", "10.0.0.1")
	require.NoError(t, w.refresh())
	require.True(t, s.Draining())
	w.stop() // returns only once the drain has stopped
	assert.Nil(t, pool.Server("http://10.0.0.2:80"), "left at the end of the watch")
	assert.Equal(t, []string{"http://10.0.0.1:80"}, poolNames(pool))
	held.Done(DoneInfo{})
	assert.Zero(t, s.InFlight())
}

// TestWatchDNSNewServers checks WithDNSServerOptions(WithDown()) and
// WithDNSSlowStart: new servers start down, or slow-start, but those of the
// first lookup take their full share.
func TestWatchDNSNewServers(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1")
	pool := new(Pool)
	now := time.Unix(1000, 0)
	pool.SetClock(func() time.Time { return now })
	w, err := startWatch(t, d, pool, "api.test.", WithDNSSlowStart(time.Minute))
	require.NoError(t, err)
	first := pool.Server("http://10.0.0.1:80")
	_, over, r := first.rampAt(now.UnixNano())
	assert.Nil(t, r, "no ramp for the first lookup's servers")
	assert.False(t, over)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	require.NoError(t, w.refresh())
	f, _, _ := pool.Server("http://10.0.0.2:80").rampAt(now.Add(30 * time.Second).UnixNano())
	assert.InDelta(t, minRamp+(1-minRamp)/2, f, 1e-9, "slow start from the pool's clock")

	down := new(Pool)
	_, err = startWatch(t, d, down, "api.test.", WithDNSServerOptions(WithDown()), WithDNSScheme("https"))
	require.NoError(t, err)
	require.Equal(t, []string{"https://10.0.0.1:443", "https://10.0.0.2:443"}, poolNames(down))
	for _, s := range down.Servers() {
		assert.False(t, s.Healthy(), s.Name())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
