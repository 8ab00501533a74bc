package lb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWatchDNSAddressBackWhileDraining removes an address while a request
// is in flight on its server, then puts it back: the draining server is
// left to finish, and a new one is added as soon as the drain has ended.
func TestWatchDNSAddressBackWhileDraining(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	pool := new(Pool)
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
	require.NoError(t, w.refresh())
	assert.Same(t, old, pool.Server("http://10.0.0.2:80"), "still the draining one")
	assert.True(t, old.Draining())

	held.Done(DoneInfo{})
	<-reapplied // the drain has ended: the address is added again
	fresh := pool.Server("http://10.0.0.2:80")
	require.NotNil(t, fresh)
	assert.NotSame(t, old, fresh)
	assert.True(t, fresh.Available())
	assert.Equal(t, 2, pool.Len())
}

// TestWatchDNSDrainTimeout checks that a drain that outlives
// DNSDrainTimeout takes the server out of the pool anyway, with its
// request still in flight.
func TestWatchDNSDrainTimeout(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1", "10.0.0.2")
	pool := new(Pool)
	w, err := startWatch(t, d, pool, "api.test.", DNSDrainTimeout(time.Millisecond))
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
