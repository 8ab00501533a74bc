package lb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWatchDNSAddressBackWhileDraining removes an address while a request
// is in flight on its server, then puts it back: the drain is called off,
// and the server takes picks again with its state, owned by the watch as
// before (it drains again when the address leaves again).
func TestWatchDNSAddressBackWhileDraining(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	pool := new(Pool)
	rec := observed(t, pool)
	reapplied := make(chan struct{})
	w, err := startWatchAfter(t, d, pool, "api.test.", func(time.Duration) <-chan time.Time { return nil },
		func() { reapplied <- struct{}{} })
	require.NoError(t, err)
	old := pool.Server("http://10.0.0.2:80")
	held := old.Acquire()

	d.setA("api.test", "10.0.0.1")
	require.NoError(t, w.refresh())
	require.True(t, old.Draining())
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	require.NoError(t, w.refresh()) // the drain is called off, and the server owned again
	assert.Same(t, old, pool.Server("http://10.0.0.2:80"), "the same server, with its state")
	assert.False(t, old.Draining())
	assert.True(t, old.Available())
	assert.EqualValues(t, 1, old.InFlight())
	assert.Equal(t, 2, pool.Len())
	kinds := map[EventKind]int{}
	for _, e := range rec.seen() {
		if e.Server == old.Name() {
			kinds[e.Kind]++
		}
	}
	assert.Equal(t, map[EventKind]int{EventAdded: 1, EventDraining: 1, EventDrainCanceled: 1}, kinds)

	// Owned again: it drains when its address leaves again.
	d.setA("api.test", "10.0.0.1")
	require.NoError(t, w.refresh())
	assert.True(t, old.Draining())
	held.Done(DoneInfo{})
	<-reapplied // the drain has ended
	waitLeft(t, pool, old)
}

// TestWatchDNSFlappingKeepsServers answers with one address, then the
// other, while both have requests in flight: the pool keeps a server that
// takes picks, the one of the address in the answer.
func TestWatchDNSFlappingKeepsServers(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	pool := new(Pool)
	reapplied := make(chan struct{}, 4)
	w, err := startWatchAfter(t, d, pool, "api.test.", func(time.Duration) <-chan time.Time { return nil },
		func() { reapplied <- struct{}{} })
	require.NoError(t, err)
	one, two := pool.Server("http://10.0.0.1:80"), pool.Server("http://10.0.0.2:80")
	h1, h2 := one.Acquire(), two.Acquire()
	rr, err := NewRoundRobin(pool)
	require.NoError(t, err)
	for _, addr := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.2"} {
		d.setA("api.test", addr)
		require.NoError(t, w.refresh())
		res, err := rr.Pick(nil)
		require.NoError(t, err, "answer %s: a server of the answer is available", addr)
		assert.Equal(t, "http://"+addr+":80", res.Server.Name())
		res.Done(DoneInfo{})
	}
	h1.Done(DoneInfo{})
	h2.Done(DoneInfo{})
	waitLeft(t, pool, one)
	assert.Same(t, two, pool.Server("http://10.0.0.2:80"))
}

// TestWatchDNSDrainTimeout checks that a drain that outlives
// WithDNSDrainTimeout takes the server out of the pool anyway, with its
// request still in flight.
func TestWatchDNSDrainTimeout(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	pool := new(Pool)
	w, err := startWatch(t, d, pool, "api.test.", WithDNSDrainTimeout(time.Millisecond))
	require.NoError(t, err)
	s := pool.Server("http://10.0.0.2:80")
	held := s.Acquire()
	d.setA("api.test", "10.0.0.1")
	require.NoError(t, w.refresh())
	waitLeft(t, pool, s)
	assert.EqualValues(t, 1, s.InFlight(), "the request is not cut")
	held.Done(DoneInfo{})
	assert.Zero(t, s.InFlight())
}
