package lb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func names(servers []*Server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.Name()
	}
	return out
}

func TestNewPoolRejects(t *testing.T) {
	t.Parallel()
	a, b := newTestServers(t, 1, 1)[0], newTestServers(t, 1)[0] // both named s0
	tests := []struct {
		name    string
		servers []*Server
		wantErr string
		dup     bool
	}{
		{name: "same server twice", servers: []*Server{a, a}, wantErr: `lb: duplicate server: "s0"`, dup: true},
		{name: "same name", servers: []*Server{a, b}, wantErr: `lb: duplicate server: "s0"`, dup: true},
		{name: "nil", servers: []*Server{a, nil}, wantErr: "lb: server 1 is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewPool(tt.servers...)
			require.EqualError(t, err, tt.wantErr)
			assert.Equal(t, tt.dup, errorsIs(err, ErrDuplicateServer))
			assert.Nil(t, p)
		})
	}
}

func TestPoolZeroValue(t *testing.T) {
	t.Parallel()
	var p Pool
	assert.Zero(t, p.Len())
	assert.Zero(t, p.Version())
	assert.Empty(t, p.Servers())
	assert.Nil(t, p.Server("s0"))
	rr, err := NewRoundRobin(&p)
	require.NoError(t, err)
	_, err = rr.Pick(nil)
	assert.ErrorIs(t, err, ErrNoServer)

	s := newTestServers(t, 1)[0]
	require.NoError(t, p.Add(s))
	res, err := rr.Pick(nil)
	require.NoError(t, err)
	assert.Same(t, s, res.Server)
	res.Done(DoneInfo{})
}

func TestPoolAddRemove(t *testing.T) {
	t.Parallel()
	servers := newTestServers(t, 1, 2, 3, 4)
	p, err := NewPool(servers[0], servers[1])
	require.NoError(t, err)
	assert.EqualValues(t, 1, p.Version())
	assert.Equal(t, []string{"s0", "s1"}, names(p.Servers()))

	require.NoError(t, p.Add(servers[2], servers[3]))
	assert.EqualValues(t, 2, p.Version())
	assert.Equal(t, []string{"s0", "s1", "s2", "s3"}, names(p.Servers()))
	assert.Same(t, servers[2], p.Server("s2"))

	// All or nothing: one duplicate and nothing is added.
	extra := newTestServers(t, 1, 1, 1, 1, 1, 1)[5] // s5
	err = p.Add(extra, servers[0])
	assert.ErrorIs(t, err, ErrDuplicateServer)
	assert.EqualValues(t, 2, p.Version())
	assert.Equal(t, 4, p.Len())

	require.NoError(t, p.Remove(servers[1], servers[3]))
	assert.Equal(t, []string{"s0", "s2"}, names(p.Servers()))
	assert.Nil(t, p.Server("s1"))
	assert.EqualValues(t, 3, p.Version())

	// Removing a non-member (or a different server of a member's name)
	// changes nothing.
	err = p.Remove(servers[0], servers[1])
	assert.ErrorIs(t, err, ErrUnknownServer)
	assert.ErrorContains(t, err, "s1")
	impostor := newTestServers(t, 1)[0] // named s0 too
	assert.ErrorIs(t, p.Remove(impostor), ErrUnknownServer)
	assert.ErrorIs(t, p.Remove(nil), ErrUnknownServer)
	assert.Equal(t, []string{"s0", "s2"}, names(p.Servers()))

	// A removed server can come back.
	require.NoError(t, p.Add(servers[1]))
	assert.Equal(t, []string{"s0", "s2", "s1"}, names(p.Servers()))

	assert.NoError(t, p.Add())
	assert.NoError(t, p.Remove())
}

func TestPoolServersIsACopy(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1, 1)
	got := p.Servers()
	got[0] = nil
	assert.NotNil(t, p.Servers()[0])
}

func TestPoolUpdate(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 1, 1)
	servers[0].Acquire() // state that must survive the update
	fresh := newTestServers(t, 1, 1, 1, 1)[3]

	require.NoError(t, p.Update(servers[2], servers[0], fresh))
	assert.Equal(t, []string{"s2", "s0", "s3"}, names(p.Servers()))
	assert.Same(t, servers[0], p.Server("s0"))
	assert.EqualValues(t, 1, p.Server("s0").InFlight())

	assert.ErrorIs(t, p.Update(fresh, fresh), ErrDuplicateServer)
	assert.EqualError(t, p.Update(nil), "lb: server 0 is nil")
	assert.Equal(t, []string{"s2", "s0", "s3"}, names(p.Servers()), "a failed update changes nothing")

	require.NoError(t, p.Update())
	assert.Zero(t, p.Len())
}

func TestPoolStatus(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 2, 0)
	servers[1].SetHealthy(false)
	servers[0].Acquire()
	status := p.Status()
	assert.EqualValues(t, 1, status.Version)
	assert.Equal(t, 1, status.Available)
	st := status.Servers
	require.Len(t, st, 2)
	assert.Equal(t, Stats{Name: "s0", URL: "http://10.0.0.1:80", Weight: 2, Healthy: true, State: "up", Ramp: 1, InFlight: 1}, st[0])
	assert.False(t, st[1].Since.IsZero(), "the time it went down")
	st[1].Since = time.Time{}
	assert.Equal(t, Stats{Name: "s1", URL: "http://10.0.0.2:80", Weight: 0, Healthy: false, State: "down",
		Reason: reasonMarkedDown, Ramp: 1}, st[1])
}
