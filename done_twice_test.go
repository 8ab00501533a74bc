package lb

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// extraDoneLog is a slog.Handler that keeps the messages it is given.
type extraDoneLog struct {
	mu   sync.Mutex
	msgs []string
	attr map[string][]string
}

func (h *extraDoneLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *extraDoneLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	if h.attr == nil {
		h.attr = make(map[string][]string)
	}
	r.Attrs(func(a slog.Attr) bool {
		h.attr[a.Key] = append(h.attr[a.Key], a.Value.String())
		return true
	})
	return nil
}

func (h *extraDoneLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *extraDoneLog) WithGroup(string) slog.Handler      { return h }

func (h *extraDoneLog) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs...)
}

// logExtraDonesTo makes slog's default logger h for the rest of the test.
// The test must not be parallel: the default logger is the process's.
func logExtraDonesTo(t *testing.T, h slog.Handler) {
	old := slog.Default()
	slog.SetDefault(slog.New(h))
	t.Cleanup(func() { slog.SetDefault(old) })
}

// TestDoneTwiceIsNoOp: a second Done for one pick changes no count, and the
// next pick is counted as in flight, not as a completed request.
func TestDoneTwiceIsNoOp(t *testing.T) {
	logExtraDonesTo(t, new(extraDoneLog))
	for _, second := range []DoneInfo{{}, {Err: errNotUsed}, {StatusCode: 500}} {
		p, servers := newTestPool(t, 1)
		s := servers[0]
		b, err := NewRoundRobin(p)
		require.NoError(t, err)

		res, err := b.Pick(nil)
		require.NoError(t, err)
		res.Done(DoneInfo{StatusCode: 200})
		res.Done(second)
		require.Zero(t, s.InFlight(), "after a second Done %+v", second)
		st := s.Stats()
		require.Equal(t, uint64(1), st.Requests)
		require.Zero(t, st.Failures)

		next, err := b.Pick(nil)
		require.NoError(t, err)
		require.Equal(t, int64(1), s.InFlight())
		require.Equal(t, uint64(1), s.Stats().Requests, "the next pick is not a completed request")
		next.Done(DoneInfo{})
		require.Zero(t, s.InFlight())
		require.Equal(t, uint64(2), s.Stats().Requests)
	}
}

// TestDoneTwiceLeastConn: after a second Done on one server, LeastConn does
// not favour it: with one request held on each of two servers, picks
// alternate.
func TestDoneTwiceLeastConn(t *testing.T) {
	logExtraDonesTo(t, new(extraDoneLog))
	p, servers := newTestPool(t, 1, 1)
	b, err := NewLeastConn(p, seeded(1))
	require.NoError(t, err)
	res, err := b.Pick(nil)
	require.NoError(t, err)
	res.Done(DoneInfo{})
	res.Done(DoneInfo{}) // the bug under test
	for _, s := range servers {
		require.Zero(t, s.InFlight(), s.Name())
	}
	counts := map[*Server]int{}
	var held []PickResult
	for range 10 {
		r, err := b.Pick(nil)
		require.NoError(t, err)
		counts[r.Server]++
		held = append(held, r)
	}
	assert.Equal(t, 5, counts[servers[0]])
	assert.Equal(t, 5, counts[servers[1]])
	for _, r := range held {
		r.Done(DoneInfo{})
	}
}

// TestDoneTwiceLoggedOncePerServer: the first extra Done on a server is
// logged through slog's default logger, naming the server; later ones on
// the same server are not.
func TestDoneTwiceLoggedOncePerServer(t *testing.T) {
	h := new(extraDoneLog)
	logExtraDonesTo(t, h)
	p, servers := newTestPool(t, 1, 1)
	for _, s := range servers {
		for range 3 {
			res := s.Acquire()
			res.Done(DoneInfo{})
			res.Done(DoneInfo{})
			res.Cancel()
		}
		require.Zero(t, s.InFlight())
	}
	require.Len(t, h.messages(), 2)
	assert.Equal(t, []string{"s0", "s1"}, h.attr["server"])
	_ = p
}

// TestDoneTwiceConcurrent: picks and Dones on many goroutines, some of which
// call Done twice, never take the count below zero, and it is zero once
// every Done has returned.
func TestDoneTwiceConcurrent(t *testing.T) {
	logExtraDonesTo(t, new(extraDoneLog))
	p, servers := newTestPool(t, 1, 1, 1)
	b, err := NewP2C(p)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				res, err := b.Pick(nil)
				if !assert.NoError(t, err) {
					return
				}
				assert.GreaterOrEqual(t, res.Server.InFlight(), int64(0))
				res.Done(DoneInfo{})
				if (g+i)%7 == 0 {
					res.Done(DoneInfo{})
				}
			}
		})
	}
	wg.Wait()
	for _, s := range servers {
		assert.Zero(t, s.InFlight(), s.Name())
	}
}
