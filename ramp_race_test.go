package lb

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRampNotCancelledByLatePick walks through the race step by step: a
// pick finds a server's ramp over, a recovery starts a new ramp, and the
// pick then ends the ramp it found over. The new ramp must survive.
func TestRampNotCancelledByLatePick(t *testing.T) {
	t.Parallel()
	s := newTestServers(t, 1)[0]
	t0 := time.Unix(1000, 0)
	const window = time.Minute
	s.SlowStartAt(t0, window)
	later := t0.Add(2 * window).UnixNano()

	frac, over, seen := s.rampAt(later) // the pick: the ramp is over
	require.True(t, over)
	require.Equal(t, 1.0, frac)

	s.SlowStartAt(time.Unix(0, later), window) // a recovery starts a new ramp
	s.endRamp(seen)                            // the pick ends what it saw

	frac, over, _ = s.rampAt(later)
	assert.False(t, over)
	assert.InDelta(t, minRamp, frac, 1e-9, "the new ramp was cancelled")
	assert.NotZero(t, s.flags.Load()&flagRamping, "the ramp's flag was cleared")
	// The pick path itself leaves it alone, and ends it once it is over.
	assert.InDelta(t, minRamp, s.ramp(later), 1e-9)
	assert.Equal(t, 1.0, s.ramp(later+int64(window)))
	assert.Zero(t, s.flags.Load()&flagRamping, "an ended ramp costs the picks nothing")
}

// TestRampRaceWithPicks starts, over and over, a ramp that is already
// over and then a fresh one, while another goroutine runs the picks' ramp
// check on the server. Once both are done, the fresh ramp must be in
// place.
func TestRampRaceWithPicks(t *testing.T) {
	// Not parallel: its goroutines must not overlap tests that count
	// the process's goroutines.
	s := newTestServers(t, 1)[0]
	t0 := time.Unix(1000, 0)
	now := t0.UnixNano()
	const window = time.Minute
	for i := range 2000 {
		s.SlowStartAt(t0.Add(-2*window), window) // over at now
		var wg sync.WaitGroup
		wg.Go(func() { s.ramp(now) })
		s.SlowStartAt(t0, window) // fresh at now
		wg.Wait()
		frac, over, _ := s.rampAt(now)
		require.False(t, over, "round %d", i)
		require.InDelta(t, minRamp, frac, 1e-9, "round %d: the fresh ramp was cancelled", i)
	}
}

// TestRampSetBeforeHealthy: when the checker brings a server back with
// slow start, the ramp is in place by the time the server is healthy, so
// no pick sees it healthy at full share. The checker's "server up" log
// line, written right after the server is marked healthy, looks.
func TestRampSetBeforeHealthy(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1)
		s := servers[0]
		s.SetHealthy(false)
		var (
			mu    sync.Mutex
			ramps []float64
		)
		logger := slog.New(rampLogHook(func(r slog.Record) {
			if r.Message == "lb: server up" {
				mu.Lock()
				ramps = append(ramps, s.Stats().Ramp)
				mu.Unlock()
			}
		}))
		hc, err := NewHealthChecker(p, WithCheckLogger(logger), WithCheckRiseFall(1, 1), WithCheckSlowStart(time.Minute),
			WithCheckFunc(func(context.Context, *Server) error { return nil }))
		require.NoError(t, err)
		hc.CheckOnce(t.Context())
		require.True(t, s.Healthy())
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, ramps, 1)
		assert.InDelta(t, minRamp, ramps[0], 1e-9, "healthy before its ramp began")
	})
}

// rampLogHook is a slog.Handler that calls f for each record.
type rampLogHook func(slog.Record)

func (f rampLogHook) Enabled(context.Context, slog.Level) bool { return true }
func (f rampLogHook) Handle(_ context.Context, r slog.Record) error {
	f(r)
	return nil
}
func (f rampLogHook) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f rampLogHook) WithGroup(string) slog.Handler      { return f }
