package lb

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSetWeightEvent checks that SetWeight reports EventWeightChanged,
// with both weights, to the observers of every pool of the server, once
// the pools' snapshots have been rebuilt, and reports nothing when the
// weight stays.
func TestSetWeightEvent(t *testing.T) {
	t.Parallel()
	p, s := newTestPool(t, 1, 2)
	p2, err := NewPool(s[1])
	require.NoError(t, err)
	r, r2 := observed(t, p), observed(t, p2)
	v := p.Version()
	var versionSeen uint64
	t.Cleanup(p.Observe(func(e Event) {
		if e.Kind == EventWeightChanged {
			versionSeen = p.Version()
		}
	}))

	require.NoError(t, s[1].SetWeight(5))
	for _, rec := range []*recorder{r, r2} {
		events := rec.take()
		require.Len(t, events, 1)
		e := events[0]
		assert.Equal(t, EventWeightChanged, e.Kind)
		assert.Same(t, s[1], e.Server)
		assert.Equal(t, 5, e.Weight)
		assert.Equal(t, 2, e.OldWeight)
		assert.False(t, e.Time.IsZero())
	}
	assert.Equal(t, v+1, versionSeen, "heard once the snapshot was rebuilt")

	require.NoError(t, s[1].SetWeight(5))
	require.Error(t, s[1].SetWeight(-1))
	assert.Empty(t, r.take(), "no change, no event")

	require.NoError(t, p.Remove(s[1]))
	r.take()
	require.NoError(t, s[1].SetWeight(0))
	assert.Empty(t, r.take(), "a pool the server left hears nothing")
	events := r2.take()
	require.Len(t, events, 1)
	assert.Equal(t, 0, events[0].Weight)
}

// TestWatchDNSDiscoveryFailedEvent checks that a failed lookup is reported
// to the pool's observers, with its cause, and that the pool keeps its
// servers.
func TestWatchDNSDiscoveryFailedEvent(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	d.setA("api.test", "10.0.0.1")
	pool := new(Pool)
	r := observed(t, pool)
	w, err := startWatch(t, d, pool, "api.test.")
	require.NoError(t, err)
	added := r.take()
	require.Len(t, added, 1)
	assert.Equal(t, EventAdded, added[0].Kind)

	d.setRcode("api.test", dns.RcodeServerFailure)
	require.Error(t, w.refresh())
	events := r.take()
	require.Len(t, events, 1)
	e := events[0]
	assert.Equal(t, EventDiscoveryFailed, e.Kind)
	assert.Nil(t, e.Server)
	require.Error(t, e.Err)
	assert.Contains(t, e.Err.Error(), `lb: DNS lookup of "api.test.": `)
	assert.Contains(t, e.Err.Error(), "server misbehaving")
	assert.Equal(t, 1, pool.Len())

	d.setRcode("api.test", dns.RcodeSuccess)
	require.NoError(t, w.refresh())
	assert.Empty(t, r.take(), "an unchanged answer reports nothing")
}

// TestPoolRestale checks the step of Add and Update that closes their race
// with SetWeight: a weight stored after the new snapshot read it, by a
// SetWeight that did not yet know the pool, makes the snapshot be built
// again; an unchanged one does not.
func TestPoolRestale(t *testing.T) {
	t.Parallel()
	p, s := newTestPool(t, 1, 0, 2)
	p.mu.Lock()
	st := p.load()
	p.restale(st)
	assert.Same(t, st, p.load(), "nothing changed")
	for _, c := range []struct {
		i, w int
		want []int
	}{
		{2, 3, []int{1, 3}},    // an active server's weight
		{1, 4, []int{1, 4, 3}}, // a weight-0 server's
		{0, 0, []int{4, 3}},    // down to 0
	} {
		s[c.i].weight.Store(int32(c.w)) // as a racing SetWeight would
		st := p.load()
		p.restale(st)
		assert.Equal(t, st.version+1, p.load().version)
		assert.Equal(t, c.want, p.load().weights)
	}
	p.mu.Unlock()
}
