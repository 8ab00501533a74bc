package lb

import (
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An observer that holds up the goroutine that ejected a server does not
// hold up the server's readmission: the cool-down runs from the ejection,
// as EjectedUntil says.
func TestEjectionCooldownNotHeldByObserver(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1)
		s := servers[0]
		release := make(chan struct{})
		p.Observe(func(e Event) {
			if e.Kind == EventEjected {
				<-release
			}
		})
		health := passiveHealth{failures: 1, cooldown: time.Second, failStatus: map[int]bool{503: true},
			maxEjection: 100, logger: discardLogger()}
		go health.observe(s, DoneInfo{StatusCode: 503})
		synctest.Wait()
		require.True(t, s.Ejected())
		until := s.Stats().EjectedUntil
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.False(t, s.Ejected(), "still ejected %v after the end of its cool-down", time.Since(until))
		close(release)
		synctest.Wait()
	})
}

// A Server not made by a constructor is refused by a pool, with an error,
// rather than breaking it.
func TestPoolRefusesZeroServer(t *testing.T) {
	t.Parallel()
	_, err := NewPool(&Server{})
	require.ErrorContains(t, err, "lb: server 0 was not made by NewServer or NewHandlerServer")
	p, servers := newTestPool(t, 1)
	require.Error(t, p.Add(&Server{}))
	require.Error(t, p.Update(servers[0], &Server{}))
	assert.Equal(t, servers, p.Servers())
}

// The sum of a server's latencies does not wrap negative: past the largest
// Duration it stays there.
func TestLatencySumSaturates(t *testing.T) {
	t.Parallel()
	s := newTestServers(t, 1)[0]
	for range 3 {
		s.Acquire().Done(DoneInfo{Duration: math.MaxInt64 / 2})
	}
	h := s.Latency()
	assert.Equal(t, uint64(3), h.Count)
	assert.Equal(t, time.Duration(math.MaxInt64), h.Sum)
	assert.NotZero(t, s.Stats().P50)
}
