package lb_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/balancekit/lb"
)

// TestCancelThroughAnnotatingDone checks that a pick given back with
// Cancel through a Done that annotates errors (a common wrapper: it adds
// context to every error before passing the outcome on) is still seen as
// unused: no request, no failure and no error class recorded, and the
// in-flight count back to zero.
func TestCancelThroughAnnotatingDone(t *testing.T) {
	s, err := lb.NewServer("http://127.0.0.1:1")
	require.NoError(t, err)
	inner := s.Acquire()
	var sawUnused bool
	wrapped := lb.PickResult{Server: s, Done: func(info lb.DoneInfo) {
		if info.Err != nil {
			info.Err = fmt.Errorf("backend %s: %w", s.Name(), info.Err)
		}
		sawUnused = info.Unused()
		inner.Done(info)
	}}
	wrapped.Cancel()
	assert.True(t, sawUnused, "Unused after the error was wrapped")
	st := s.Stats()
	assert.Zero(t, st.InFlight)
	assert.Zero(t, st.Requests)
	assert.Zero(t, st.Failures)
	assert.Zero(t, st.Errors)
}
