package lb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestIntervalFloor checks that a probe or lookup period given without its
// unit (30 meaning 30 ns) is an error naming the value, not a storm of
// probes or lookups, and that 10 ms is accepted.
func TestIntervalFloor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  func(time.Duration) error
	}{
		{"WithCheckInterval up", func(d time.Duration) error { return WithCheckInterval(d, time.Second)(&healthOptions{}) }},
		{"WithCheckInterval down", func(d time.Duration) error { return WithCheckInterval(time.Second, d)(&healthOptions{}) }},
		{"WithDNSInterval", func(d time.Duration) error { return WithDNSInterval(d, 0)(&dnsOptions{}) }},
		{"WithDNSFailoverCheck", func(d time.Duration) error { return WithDNSFailoverCheck(d)(&dnsOptions{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorContains(t, tc.err(30), "30ns")
			assert.ErrorContains(t, tc.err(30), "10ms")
			assert.ErrorContains(t, tc.err(9*time.Millisecond), "9ms")
			assert.NoError(t, tc.err(10*time.Millisecond))
		})
	}
}
