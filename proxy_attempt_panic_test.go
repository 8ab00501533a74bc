package lb

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestProxyAttemptObserverPanic checks that a panicking attempt observer
// neither fails the request nor leaks its count, and that its first panic
// is logged, once.
func TestProxyAttemptObserverPanic(t *testing.T) {
	t.Parallel()
	s := backend(t, "ok", nil)
	var log bytes.Buffer
	p := newTestProxy(t, []*Server{s},
		WithAttemptObserver(func(Attempt) { panic("observer bug") }),
		WithProxyLogger(slog.New(slog.NewTextHandler(&log, nil))))
	for range 3 {
		w := httptest.NewRecorder()
		assert.NotPanics(t, func() { p.ServeHTTP(w, httptest.NewRequest("GET", "/", nil)) })
		assert.Equal(t, 200, w.Code)
		assert.Equal(t, "ok", w.Body.String())
	}
	assertNoneInFlight(t, s)
	assert.Equal(t, 1, strings.Count(log.String(), "the attempt observer panicked"), log.String())
	assert.Contains(t, log.String(), "observer bug")
}
