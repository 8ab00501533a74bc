package lb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPickResultCancel checks that a cancelled pick leaves the in-flight
// count and records nothing, that a wrapping Done sees it as unused, and
// that the zero PickResult's Cancel does nothing.
func TestPickResultCancel(t *testing.T) {
	s := newTestServers(t, 1)[0]
	res := s.Acquire()
	require.EqualValues(t, 1, s.InFlight())
	res.Cancel()
	st := s.Stats()
	assert.EqualValues(t, 0, st.InFlight)
	assert.EqualValues(t, 0, st.Requests)
	assert.EqualValues(t, 0, s.Latency().Count)

	var seen []bool
	inner := s.Acquire()
	wrapped := PickResult{Server: s, Done: func(d DoneInfo) {
		seen = append(seen, d.Unused())
		inner.Done(d)
	}}
	wrapped.Cancel()
	second := s.Acquire()
	wrapped.Done = func(d DoneInfo) { seen = append(seen, d.Unused()); second.Done(d) }
	wrapped.Done(DoneInfo{StatusCode: 200, Duration: time.Millisecond})
	assert.Equal(t, []bool{true, false}, seen)
	assert.EqualValues(t, 0, s.InFlight())
	assert.EqualValues(t, 1, s.Stats().Requests)

	assert.NotPanics(t, func() { PickResult{}.Cancel() })
	assert.False(t, DoneInfo{}.Unused())
}
