package lb

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTCPProxyDurationIsTheDial: Done reports how long the dial took, not
// how long the connection lived, so that latency-aware balancers do not
// take a long-lived connection for a slow server.
func TestTCPProxyDurationIsTheDial(t *testing.T) {
	be := newTCPBackend(t, echo)
	_, rr := tcpRoundRobin(t, be.addr)
	b, dones := doneRecorder(rr)
	_, addr := newTCPTestProxy(t, b)

	start := time.Now()
	c := dialTCP(t, addr)
	buf := make([]byte, 1)
	_, err := c.Write([]byte{1})
	require.NoError(t, err)
	_, err = io.ReadFull(c, buf) // the proxy has dialled the server by now
	require.NoError(t, err)
	connected := time.Since(start)
	// The connection lives on for many more round trips than it took to
	// connect and make the first one.
	for range 200 {
		_, err = c.Write([]byte{2})
		require.NoError(t, err)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
	}
	lived := time.Since(start)
	require.NoError(t, c.Close())
	info := <-dones
	require.NoError(t, info.Err)
	assert.Positive(t, info.Duration)
	assert.LessOrEqual(t, info.Duration, connected, "the dial, not the connection's life (%v)", lived)
}
