package lb_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/balancekit/lb"
)

// TestZeroValuesClose checks that closing the zero value of a type that
// needs a constructor does not panic: a deferred Close or Shutdown runs
// on the error path of code that never got to the constructor, and must
// not turn that error into a crash.
func TestZeroValuesClose(t *testing.T) {
	for name, close := range map[string]func() error{
		"TCPProxy.Close":    func() error { return new(lb.TCPProxy).Close() },
		"TCPProxy.Shutdown": func() error { return new(lb.TCPProxy).Shutdown(context.Background()) },
		"Subset.Close":      func() error { return new(lb.Subset).Close() },
	} {
		t.Run(name, func(t *testing.T) {
			require.NotPanics(t, func() { _ = close() })
		})
	}
}
