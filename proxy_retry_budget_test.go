package lb

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingTransport counts the attempts that reach the transport.
type countingTransport struct {
	rt       http.RoundTripper
	attempts atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.attempts.Add(1)
	return c.rt.RoundTrip(r)
}

// With every server refusing connections, the retry budget keeps the
// upstream attempts near the requests: no more than 20% more, plus the
// floor.
func TestProxyRetryBudgetBoundsAttempts(t *testing.T) {
	t.Parallel()
	const requests, clients = 1000, 32
	servers := []*Server{refusingServer(t, "d0"), refusingServer(t, "d1"), refusingServer(t, "d2")}
	ct := &countingTransport{rt: newTransport(0)}
	t.Cleanup(ct.rt.(*http.Transport).CloseIdleConnections)
	p := newTestProxy(t, servers, WithTransport(ct), WithPassiveHealth(0, 0))
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)

	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: clients},
	}
	t.Cleanup(client.CloseIdleConnections)
	var next, badGateway atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for next.Add(1) <= requests {
				resp, err := client.Get(front.URL)
				if !assert.NoError(t, err) {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusBadGateway {
					badGateway.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, requests, badGateway.Load())
	attempts := ct.attempts.Load()
	t.Logf("%d requests, %d upstream attempts", requests, attempts)
	assert.LessOrEqual(t, attempts, int64(requests*12/10+DefaultRetryBudgetFloor))
	assertNoneInFlight(t, servers...)
}

// Serially, with every server failing: the budget's bound, and without it
// every request's three attempts.
func TestProxyRetryBudgetSerial(t *testing.T) {
	t.Parallel()
	const requests = 50
	servers := []*Server{refusingServer(t, "d0"), refusingServer(t, "d1"), refusingServer(t, "d2")}
	for _, tc := range []struct {
		name string
		opt  ProxyOption
		max  int64
	}{
		{"default", WithRetryBudget(DefaultRetryBudgetPercent, DefaultRetryBudgetFloor), requests*12/10 + DefaultRetryBudgetFloor},
		{"50%, floor 1", WithRetryBudget(50, 1), requests*15/10 + 1},
		// Without a floor, one request in flight earns less than a
		// whole retry: a service this quiet never retries.
		{"no floor", WithRetryBudget(50, 0), requests},
		{"no retries", WithRetryBudget(0, 0), requests},
		{"off", WithoutRetryBudget(), 3 * requests},
	} {
		ct := &countingTransport{rt: newTransport(0)}
		p := newTestProxy(t, servers, WithTransport(ct), WithPassiveHealth(0, 0), tc.opt)
		for range requests {
			require.Equal(t, http.StatusBadGateway, serve(p, "GET", "/", "").Code)
		}
		ct.rt.(*http.Transport).CloseIdleConnections()
		t.Logf("%s: %d requests, %d attempts", tc.name, requests, ct.attempts.Load())
		assert.LessOrEqual(t, ct.attempts.Load(), tc.max, tc.name)
		if tc.name == "off" || tc.name == "no retries" || tc.name == "no floor" {
			assert.Equal(t, tc.max, ct.attempts.Load(), tc.name)
		}
	}
	assertNoneInFlight(t, servers...)
}

// The budget's arithmetic: the floor to start with, a share of a retry per
// request, capped by the share of the requests in flight.
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	spendAll := func(b *retryBudget) (n int) {
		for b.spend() {
			n++
		}
		return n
	}
	b := newRetryBudget(&proxyOptions{retries: DefaultRetries, budgetPercent: 20, budgetFloor: 3})
	assert.Equal(t, 3, spendAll(b), "the floor")
	for range 5 {
		b.enter()
		b.leave()
	}
	assert.Equal(t, 1, spendAll(b), "five requests earn one retry")
	for range 100 {
		b.enter()
		b.leave()
	}
	assert.Equal(t, 3, spendAll(b), "one at a time, savings stop at the floor")
	for range 100 {
		b.enter() // 100 in flight at once
	}
	for range 100 {
		b.leave()
	}
	assert.Equal(t, 20, spendAll(b), "20% of the requests in flight")
	b.refund()
	assert.Equal(t, 1, spendAll(b))

	b = newRetryBudget(&proxyOptions{retries: DefaultRetries, noBudget: true})
	for range 1000 {
		require.True(t, b.spend())
	}
	var zero retryBudget
	assert.True(t, zero.spend(), "the zero budget allows every retry")
	b = newRetryBudget(&proxyOptions{budgetPercent: 20, budgetFloor: 3})
	assert.False(t, b.on, "no retries, no budget to keep")
}

func TestWithRetryBudgetRejects(t *testing.T) {
	t.Parallel()
	b := BalancerFunc(func(*http.Request) (PickResult, error) { return PickResult{}, ErrNoServer })
	for _, tc := range []struct {
		opt  ProxyOption
		want string
	}{
		{WithRetryBudget(-1, 3), "lb: NewProxy: WithRetryBudget: percent -1 is not between 0 and 100"},
		{WithRetryBudget(100.5, 3), "lb: NewProxy: WithRetryBudget: percent 100.5 is not between 0 and 100"},
		{WithRetryBudget(math.NaN(), 3), "lb: NewProxy: WithRetryBudget: percent NaN is not between 0 and 100"},
		{WithRetryBudget(math.Inf(1), 3), "lb: NewProxy: WithRetryBudget: percent +Inf is not between 0 and 100"},
		{WithRetryBudget(20, -1), "lb: NewProxy: WithRetryBudget: floor -1 is not between 0 and 1000000"},
		{WithRetryBudget(20, math.MaxInt), fmt.Sprintf("lb: NewProxy: WithRetryBudget: floor %d is not between 0 and 1000000", math.MaxInt)},
	} {
		_, err := NewProxy(b, tc.opt)
		require.Error(t, err)
		assert.Equal(t, tc.want, err.Error())
	}
}

// refusingServer returns a server whose address refuses connections (see
// refusingAddr).
func refusingServer(t *testing.T, name string) *Server {
	t.Helper()
	s, err := NewServer("http://"+refusingAddr(t), WithName(name))
	require.NoError(t, err)
	return s
}

// refusingAddr returns a loopback address that refuses connections for the
// whole test: its port is held by the client end of a loopback connection,
// so no listener can take it over (deadServer's port, closed, may be reused
// by another test's listener).
func refusingAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	a, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	return c.LocalAddr().String()
}
