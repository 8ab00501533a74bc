package lb

import (
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// localErrorTransport fails every request as a dial does when the proxy's
// host runs out of file descriptors.
type localErrorTransport struct{}

func (localErrorTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)}
}

// TestProxyLocalDialErrorNotEjected: passive health, which the Proxy shares
// with the TCPProxy, does not eject a server for a dial that failed for
// want of the proxy's own resources (as a flood of clients causes).
func TestProxyLocalDialErrorNotEjected(t *testing.T) {
	var servers []*Server
	for _, raw := range []string{"http://127.0.0.1:1", "http://127.0.0.1:2"} {
		s, err := NewServer(raw)
		require.NoError(t, err)
		servers = append(servers, s)
	}
	p := newTestProxy(t, servers, WithTransport(localErrorTransport{}), WithPassiveHealth(1, time.Hour), WithRetries(0))
	rec := serve(p, "GET", "/", "")
	require.Equal(t, http.StatusBadGateway, rec.Code)
	assert.False(t, servers[0].Ejected(), "ejected for the proxy's own shortage")
	assert.Zero(t, servers[0].InFlight())
}

// TestPassiveHealthSuccessAllocatesNothing: observing a successful attempt,
// the common case of every proxied request, allocates nothing.
func TestPassiveHealthSuccessAllocatesNothing(t *testing.T) {
	s, err := NewServer("http://127.0.0.1:1")
	require.NoError(t, err)
	ph := passiveHealth{failures: DefaultFailures, cooldown: time.Second, failStatus: map[int]bool{502: true}}
	allocs := testing.AllocsPerRun(100, func() {
		ph.observe(s, DoneInfo{StatusCode: http.StatusOK, Duration: time.Millisecond})
	})
	assert.Zero(t, allocs)
}
