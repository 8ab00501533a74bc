package lb

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHealthHungHandlerServer: an in-process server whose handler hangs,
// ignoring its request's context, fails its probes, and the checker keeps
// at most one call of it running: it does not start a new one at every
// interval, leaving one more goroutine behind each time.
func TestHealthHungHandlerServer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var running, most atomic.Int32
		hung, err := NewHandlerServer("hung", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			<-release // ignores r.Context()
		}))
		require.NoError(t, err)
		p, err := NewPool(hung)
		require.NoError(t, err)
		hc, err := NewHealthChecker(p, quietCheck, WithCheckInterval(time.Second, time.Second),
			WithCheckJitter(0), WithCheckTimeout(100*time.Millisecond), WithCheckRiseFall(1, 2))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- hc.Run(ctx) }()
		time.Sleep(30 * time.Second) // virtual time: thirty probes
		synctest.Wait()
		assert.False(t, hung.Healthy(), "a hung server is down")
		assert.EqualValues(t, 1, most.Load(), "calls of the hung handler at once")
		cancel()
		require.NoError(t, <-done)
		close(release)
	})
}
