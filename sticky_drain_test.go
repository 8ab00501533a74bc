package lb

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStickyPinDrainRace is the drain race of #10 item 12 on the
// sticky-cookie path: a request whose cookie names a server must not hold
// it once a Drain of that server has returned, nor get a 503 because the
// server began to drain after its cookie was read.
func TestStickyPinDrainRace(t *testing.T) {
	// Not parallel: its goroutines must not overlap tests that count the
	// process's goroutines.
	p, servers := newTestPool(t, 1, 1, 1)
	target := servers[0]
	b, err := NewRoundRobin(p)
	require.NoError(t, err)
	px, err := NewProxy(b, WithStickyCookie("pin", []byte("0123456789abcdef0123456789abcdef"), nil))
	require.NoError(t, err)
	sk := px.o.sticky
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: "pin", Value: sk.valueOf(target)})

	var (
		drained    atomic.Bool // Drain of target returned nil, Add not yet
		violations atomic.Int64
		stop       atomic.Bool
		wg         sync.WaitGroup
		pinned     = make(chan struct{}, 1)
	)
	for range 3 {
		wg.Go(func() {
			for !stop.Load() {
				runtime.Gosched()
				s, res := sk.pin(req)
				if s == nil {
					assert.Nil(t, res.Server)
					continue
				}
				assert.Same(t, target, s)
				assert.Same(t, target, res.Server)
				late := drained.Load()
				select {
				case pinned <- struct{}{}:
				default:
				}
				runtime.Gosched() // hold it a little: a Drain must wait
				if late || drained.Load() {
					violations.Add(1)
				}
				res.Done(DoneInfo{})
			}
		})
	}
	for range 300 {
		<-pinned
		require.NoError(t, p.Drain(context.Background(), target))
		drained.Store(true)
		for range 3 {
			runtime.Gosched() // leave a late pin time to show
		}
		drained.Store(false)
		require.NoError(t, p.Add(target))
	}
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, violations.Load(), "pins that held the server after its Drain returned")
	for _, s := range servers {
		assert.Zero(t, s.InFlight(), s.Name())
	}
}
