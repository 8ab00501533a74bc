package lb

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		opts      []ServerOption
		wantErr   string // substring; "" means success
		wantName  string
		wantW     int
	}{
		{name: "ok", raw: "http://10.0.0.1:8080", wantName: "http://10.0.0.1:8080", wantW: 1},
		{name: "https with path", raw: "https://api.internal/v1", wantName: "https://api.internal/v1", wantW: 1},
		{name: "weight", raw: "http://a:1", opts: []ServerOption{WithWeight(7)}, wantName: "http://a:1", wantW: 7},
		{name: "weight 0 is drained", raw: "http://a:1", opts: []ServerOption{WithWeight(0)}, wantName: "http://a:1", wantW: 0},
		{name: "name", raw: "http://a:1", opts: []ServerOption{WithName("alpha")}, wantName: "alpha", wantW: 1},
		{name: "host:port only", raw: "localhost:8080", wantErr: `"localhost:8080": missing scheme or host`},
		{name: "no host", raw: "http://", wantErr: `"http://": missing scheme or host`},
		{name: "path only", raw: "/backend", wantErr: `"/backend": missing scheme or host`},
		{name: "empty", raw: "", wantErr: `"": missing scheme or host`},
		{name: "unparsable", raw: "http://[::1", wantErr: `"http://[::1"`},
		{name: "control character", raw: "http://a\x7f:1", wantErr: `server URL "http://a\x7f:1"`},
		{name: "negative weight", raw: "http://a:1", opts: []ServerOption{WithWeight(-2)}, wantErr: `"http://a:1": weight -2 is negative`},
		{name: "huge weight", raw: "http://a:1", opts: []ServerOption{WithWeight(MaxWeight + 1)}, wantErr: "weight 1000001 is above the maximum"},
		{name: "empty name", raw: "http://a:1", opts: []ServerOption{WithName("")}, wantErr: `WithName: empty name`},
		{name: "nil option", raw: "http://a:1", opts: []ServerOption{nil}, wantErr: "option 0 is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewServer(tt.raw, tt.opts...)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Regexp(t, "^lb: ", err.Error())
				assert.Nil(t, s)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantName, s.Name())
			assert.Equal(t, tt.wantW, s.Weight())
			assert.Equal(t, tt.raw, s.URL().String())
			assert.Nil(t, s.Handler())
			assert.True(t, s.Healthy())
		})
	}
}

func TestNewHandlerServer(t *testing.T) {
	t.Parallel()
	h := http.NotFoundHandler()
	s, err := NewHandlerServer("v1", h, WithWeight(9))
	require.NoError(t, err)
	assert.Equal(t, "v1", s.Name())
	assert.Equal(t, "v1", s.String())
	assert.Equal(t, 9, s.Weight())
	assert.Nil(t, s.URL())
	assert.NotNil(t, s.Handler())

	_, err = NewHandlerServer("", h)
	assert.EqualError(t, err, `lb: handler server: empty name ""`)
	_, err = NewHandlerServer("v2", nil)
	assert.EqualError(t, err, `lb: handler server "v2": nil handler`)
	_, err = NewHandlerServer("v3", h, WithWeight(-1))
	assert.EqualError(t, err, `lb: handler server "v3": weight -1 is negative`)
}

func TestServerURLIsACopy(t *testing.T) {
	t.Parallel()
	s, err := NewServer("http://user:pw@10.0.0.1:80/base")
	require.NoError(t, err)
	u := s.URL()
	u.Host = "evil:1"
	u.User = nil
	assert.Equal(t, "http://user:pw@10.0.0.1:80/base", s.URL().String())
	assert.Equal(t, "http://10.0.0.1:80/base", s.Stats().URL, "stats never show a password")
}

func TestServerHealth(t *testing.T) {
	t.Parallel()
	s := newTestServers(t, 1)[0]
	assert.True(t, s.Healthy())
	assert.False(t, s.SetHealthy(true), "already healthy")
	assert.True(t, s.SetHealthy(false))
	assert.False(t, s.Healthy())
	assert.False(t, s.SetHealthy(false), "already down")
	assert.True(t, s.SetHealthy(true))
	assert.True(t, s.Healthy())

	down, err := NewServer("http://a:1", WithDown())
	require.NoError(t, err)
	assert.False(t, down.Healthy())
}

func TestServerAcquireDone(t *testing.T) {
	t.Parallel()
	s := newTestServers(t, 1)[0]
	results := make([]PickResult, 3)
	for i := range results {
		results[i] = s.Acquire()
		assert.Same(t, s, results[i].Server)
		require.NotNil(t, results[i].Done)
	}
	assert.EqualValues(t, 3, s.InFlight())
	assert.EqualValues(t, 0, s.Stats().Requests)

	results[0].Done(DoneInfo{StatusCode: 200, Duration: 5 * time.Millisecond})
	results[1].Done(DoneInfo{Err: context.Canceled, Duration: 7 * time.Millisecond})
	st := s.Stats()
	assert.EqualValues(t, 1, st.InFlight)
	assert.EqualValues(t, 2, st.Requests)
	assert.EqualValues(t, 0, st.Failures, "a client that went away is not a failure")
	assert.EqualValues(t, 1, s.Latency().Count, "a client that went away: its duration is not the server's")

	results[2].Done(DoneInfo{StatusCode: 503})
	st = s.Stats()
	assert.EqualValues(t, 0, st.InFlight)
	assert.EqualValues(t, 3, st.Requests)
	assert.EqualValues(t, 1, st.Failures)
	assert.EqualValues(t, 1, s.Latency().Count, "no duration, nothing recorded")
}

func TestServerFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		info   DoneInfo
		failed bool
	}{
		{"ok", DoneInfo{StatusCode: 200}, false},
		{"not found", DoneInfo{StatusCode: 404}, false},
		{"no response info", DoneInfo{}, false},
		{"error", DoneInfo{Err: errors.New("connection refused")}, true},
		{"wrapped cancel", DoneInfo{Err: errors.Join(errors.New("proxy"), context.Canceled)}, false},
		{"deadline", DoneInfo{Err: context.DeadlineExceeded}, true},
		{"internal error", DoneInfo{StatusCode: 500}, true},
		{"bad gateway", DoneInfo{StatusCode: 502}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServers(t, 1)[0]
			s.Acquire().Done(tt.info)
			want := uint64(0)
			if tt.failed {
				want = 1
			}
			assert.Equal(t, want, s.Stats().Failures)
			assert.EqualValues(t, 1, s.Stats().Requests)
		})
	}
}

func TestServerCountersDoNotInterfere(t *testing.T) {
	t.Parallel()
	// In-flight and completed counts share one word; neither may spill
	// into the other across many requests.
	s := newTestServers(t, 1)[0]
	const n = 100_000
	dones := make([]func(DoneInfo), 0, n)
	for range n {
		dones = append(dones, s.Acquire().Done)
	}
	assert.EqualValues(t, n, s.InFlight())
	for i, d := range dones {
		d(DoneInfo{})
		if i == n/2 {
			assert.EqualValues(t, n-n/2-1, s.InFlight())
			assert.EqualValues(t, n/2+1, s.Stats().Requests)
		}
	}
	assert.EqualValues(t, 0, s.InFlight())
	assert.EqualValues(t, n, s.Stats().Requests)

	// A Done too many is ignored: the count never goes below zero.
	s.Acquire().Done(DoneInfo{})
	s.done(DoneInfo{})
	assert.EqualValues(t, 0, s.InFlight())
	assert.EqualValues(t, n+1, s.Stats().Requests)
}

func TestServerLayout(t *testing.T) {
	t.Parallel()
	// The hot fields fill the first cache line and the size is a multiple
	// of it, so that servers allocated side by side do not share lines.
	assert.Zero(t, unsafe.Sizeof(Server{})%cacheLine, "size %d", unsafe.Sizeof(Server{}))
	assert.Equal(t, uintptr(cacheLine), unsafe.Offsetof(Server{}.name))
}
