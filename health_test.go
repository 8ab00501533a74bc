package lb

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// probeLog records, for each probe of each server, whether the server was
// healthy when the probe began, and when it began.
type probeLog struct {
	mu     sync.Mutex
	health map[string][]bool
	times  map[string][]time.Time
}

func newProbeLog() *probeLog {
	return &probeLog{health: map[string][]bool{}, times: map[string][]time.Time{}}
}

func (l *probeLog) record(s *Server) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.health[s.Name()] = append(l.health[s.Name()], s.Healthy())
	l.times[s.Name()] = append(l.times[s.Name()], time.Now())
}

func (l *probeLog) healthOf(name string) []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bool(nil), l.health[name]...)
}

func (l *probeLog) timesOf(name string) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.times[name]...)
}

func (l *probeLog) count(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.health[name])
}

// runChecker starts hc.Run in the bubble and returns a func that stops it
// and waits for it.
func runChecker(t *testing.T, hc *HealthChecker) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- hc.Run(ctx) }()
	return func() {
		cancel()
		assert.NoError(t, <-done)
	}
}

var quietCheck = WithCheckLogger(slog.New(slog.DiscardHandler))

func TestNewHealthCheckerRejects(t *testing.T) {
	t.Parallel()
	p, _ := newTestPool(t, 1)
	_, err := NewHealthChecker(nil)
	assert.EqualError(t, err, "lb: NewHealthChecker: nil pool")
	tests := []struct {
		opt  HealthOption
		want string
	}{
		{nil, "option 0 is nil"},
		{WithCheckPath("healthz"), `WithCheckPath: path "healthz" does not start with /`},
		{WithCheckMethod(""), "WithCheckMethod: empty method"},
		{WithCheckStatus(300, 200), "WithCheckStatus: invalid range 300 to 200"},
		{WithCheckTimeout(0), "WithCheckTimeout: 0s is not positive"},
		{WithCheckInterval(time.Second, 0), "WithCheckInterval: intervals 1s and 0s must be positive"},
		{WithCheckJitter(1), "WithCheckJitter: fraction 1 is not in [0, 1)"},
		{WithCheckRiseFall(0, 3), "WithCheckRiseFall: rise 0 and fall 3 must be at least 1"},
		{WithCheckFunc(nil), "WithCheckFunc: nil function"},
		{WithCheckLogger(nil), "WithCheckLogger: nil logger"},
		{WithCheckSlowStart(-time.Second), "WithCheckSlowStart: negative window -1s"},
		{WithCheckClient(nil), "WithCheckClient: nil client"},
	}
	for _, tt := range tests {
		_, err := NewHealthChecker(p, tt.opt)
		assert.EqualError(t, err, "lb: NewHealthChecker: "+tt.want)
	}
}

func TestHealthFallAndRise(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1)
		s := servers[0]
		log := newProbeLog()
		var failing sync.Map
		failing.Store(s, true)
		logs := &logRecorder{}
		hc, err := NewHealthChecker(p, WithCheckLogger(slog.New(logs)), WithCheckJitter(0),
			WithCheckInterval(5*time.Second, 2*time.Second), WithCheckRiseFall(2, 3),
			WithCheckFunc(func(ctx context.Context, s *Server) error {
				log.record(s)
				if v, _ := failing.Load(s); v == true {
					return errors.New("refused")
				}
				return nil
			}))
		require.NoError(t, err)
		stop := runChecker(t, hc)

		// Up: probes at 0, 5 and 10 s fail; the third takes it down. Then
		// probes every 2 s.
		time.Sleep(14 * time.Second)
		synctest.Wait()
		assert.False(t, s.Healthy())
		assert.Equal(t, []bool{true, true, true, false, false}, log.healthOf("s0"))
		times := log.timesOf("s0")
		var at []time.Duration
		for _, tm := range times {
			at = append(at, tm.Sub(times[0]))
		}
		assert.Equal(t, []time.Duration{0, 5 * time.Second, 10 * time.Second, 12 * time.Second, 14 * time.Second}, at)

		// Passing again: up after the second pass.
		failing.Store(s, false)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		assert.True(t, s.Healthy())
		assert.Equal(t, []bool{true, true, true, false, false, false, false}, log.healthOf("s0"))
		stop()

		assert.Equal(t, HealthStats{Probes: 7, Failures: 5, Downs: 1, Ups: 1}, hc.Stats())
		assert.Equal(t, []string{"lb: server down", "lb: server up"}, logs.messages(slog.LevelInfo), "transitions only, not probes")
	})
}

func TestHealthFlappingDoesNotThrash(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1)
		var n int
		hc, err := NewHealthChecker(p, quietCheck, WithCheckJitter(0), WithCheckRiseFall(2, 3),
			WithCheckFunc(func(context.Context, *Server) error {
				n++
				if n%2 == 0 {
					return errors.New("flap")
				}
				return nil
			}))
		require.NoError(t, err)
		stop := runChecker(t, hc)
		time.Sleep(100 * time.Second)
		synctest.Wait()
		stop()
		assert.GreaterOrEqual(t, n, 20)
		assert.True(t, servers[0].Healthy())
		assert.Zero(t, hc.Stats().Downs)
		assert.Zero(t, hc.Stats().Ups)
	})
}

func TestHealthHungServer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1, 1)
		hung, fine := servers[0], servers[1]
		log := newProbeLog()
		hc, err := NewHealthChecker(p, quietCheck, WithCheckJitter(0), WithCheckTimeout(2*time.Second),
			WithCheckInterval(time.Second, time.Second), WithCheckRiseFall(1, 2),
			WithCheckFunc(func(ctx context.Context, s *Server) error {
				log.record(s)
				if s == hung {
					<-ctx.Done() // never answers
					return ctx.Err()
				}
				return nil
			}))
		require.NoError(t, err)
		stop := runChecker(t, hc)
		// The hung server's probes end at the 2 s timeout; two of them
		// (at 0 s and 3 s) take it down at 5 s.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		assert.False(t, hung.Healthy())
		assert.True(t, fine.Healthy())
		// Meanwhile the other server was probed every second, on time.
		assert.Equal(t, 6, log.count("s1"))
		assert.Equal(t, 2, log.count("s0"))
		stop()
	})
}

func TestHealthFollowsPool(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1, 1)
		log := newProbeLog()
		hc, err := NewHealthChecker(p, quietCheck, WithCheckJitter(0), WithCheckInterval(time.Second, time.Second),
			WithCheckSlowStart(time.Minute),
			WithCheckFunc(func(ctx context.Context, s *Server) error {
				log.record(s)
				return nil
			}))
		require.NoError(t, err)
		stop := runChecker(t, hc)
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		assert.Equal(t, 3, log.count("s0"))

		require.NoError(t, p.Remove(servers[0]))
		extra := newTestServers(t, 1, 1, 1)[2]
		require.NoError(t, p.Add(extra))
		synctest.Wait()
		assert.InDelta(t, 0.1, extra.Stats().Ramp, 1e-9, "a server that joins slow-starts")
		assert.InDelta(t, 1, servers[1].Stats().Ramp, 0, "the initial ones do not")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		assert.Equal(t, 3, log.count("s0"), "a removed server is no longer probed")
		assert.Equal(t, 6, log.count("s1"))
		assert.Equal(t, 4, log.count("s2"), "a server added later is probed at once, then every second")

		// Many removes and adds, each seen by the checker: each re-add
		// probes at once, and one prober per server is left.
		before := log.count("s2")
		for range 50 {
			require.NoError(t, p.Remove(extra))
			synctest.Wait()
			require.NoError(t, p.Add(extra))
			synctest.Wait()
		}
		assert.Equal(t, 50, log.count("s2")-before)
		before = log.count("s2")
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, 1, log.count("s2")-before, "one probe a second: no duplicate probers")
		stop()
	})
}

func TestHealthRunStopsEverything(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, _ := newTestPool(t, ones(20)...)
		hc, err := NewHealthChecker(p, quietCheck, WithCheckFunc(func(ctx context.Context, s *Server) error {
			return nil
		}))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- hc.Run(ctx) }()
		synctest.Wait()
		assert.EqualValues(t, 20, hc.live.Load(), "one prober per server")
		assert.ErrorContains(t, hc.Run(ctx), "already running")
		cancel()
		require.NoError(t, <-done)
		assert.Zero(t, hc.live.Load(), "nothing left behind once Run returns")
	})
}

func TestHealthStartDownAndSlowStart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1)
		pass := make(chan struct{})
		hc, err := NewHealthChecker(p, quietCheck, WithCheckStartDown(), WithCheckRiseFall(3, 1), WithCheckSlowStart(time.Minute),
			WithCheckFunc(func(ctx context.Context, s *Server) error {
				select {
				case <-pass:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}))
		require.NoError(t, err)
		stop := runChecker(t, hc)
		synctest.Wait()
		assert.False(t, servers[0].Healthy(), "waits for a first pass")
		close(pass)
		synctest.Wait()
		assert.True(t, servers[0].Healthy(), "up at the first pass, not after rise")
		assert.InDelta(t, 1, servers[0].Stats().Ramp, 0, "servers there from the start do not ramp")
		stop()
	})
}

func TestHealthRecoverySlowStarts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1)
		servers[0].SetHealthy(false)
		hc, err := NewHealthChecker(p, quietCheck, WithCheckRiseFall(1, 1), WithCheckSlowStart(time.Minute),
			WithCheckFunc(func(context.Context, *Server) error { return nil }))
		require.NoError(t, err)
		hc.CheckOnce(context.Background())
		assert.True(t, servers[0].Healthy())
		assert.InDelta(t, 0.1, servers[0].Stats().Ramp, 1e-9)
		time.Sleep(time.Minute)
		assert.InDelta(t, 1, servers[0].Stats().Ramp, 0)
	})
}

func TestHealthHTTPProbes(t *testing.T) {
	t.Parallel()
	status := map[string]int{"ok": 200, "redirect": 302, "broken": 500, "missing": 404}
	var servers []*Server
	for _, name := range []string{"ok", "redirect", "broken", "missing"} {
		code := status[name]
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" || r.Method != http.MethodHead {
				http.Error(w, "wrong probe", http.StatusTeapot)
				return
			}
			if code == 302 {
				http.Redirect(w, r, "/elsewhere", code)
				return
			}
			w.WriteHeader(code)
		}))
		t.Cleanup(ts.Close)
		s, err := NewServer(ts.URL+"/base", WithName(name))
		require.NoError(t, err)
		servers = append(servers, s)
	}
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hung.Close)
	hs, err := NewServer(hung.URL, WithName("hung"))
	require.NoError(t, err)
	inproc, err := NewHandlerServer("inproc", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	require.NoError(t, err)
	panicky, err := NewHandlerServer("panicky", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	require.NoError(t, err)
	servers = append(servers, hs, inproc, panicky)
	p, err := NewPool(servers...)
	require.NoError(t, err)
	hc, err := NewHealthChecker(p, quietCheck, WithCheckPath("/healthz"), WithCheckMethod(http.MethodHead),
		WithCheckTimeout(time.Second), WithCheckRiseFall(1, 2))
	require.NoError(t, err)
	hc.CheckOnce(t.Context())
	for _, s := range servers {
		assert.True(t, s.Healthy(), "%s: one failure is below fall", s.Name())
	}
	hc.CheckOnce(t.Context())
	got := map[string]bool{}
	for _, s := range servers {
		got[s.Name()] = s.Healthy()
	}
	assert.Equal(t, map[string]bool{
		"ok": true, "redirect": true, "broken": false, "missing": false,
		"hung": false, "inproc": true, "panicky": false,
	}, got)
	assert.Equal(t, HealthStats{Probes: 14, Failures: 8, Downs: 4}, hc.Stats())
}

func TestHealthCheckOnceForgetsRemovedServers(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 1)
	hc, err := NewHealthChecker(p, quietCheck, WithCheckFunc(func(context.Context, *Server) error { return nil }))
	require.NoError(t, err)
	hc.CheckOnce(t.Context())
	require.NoError(t, p.Remove(servers[0]))
	hc.CheckOnce(t.Context())
	hc.mu.Lock()
	defer hc.mu.Unlock()
	assert.Len(t, hc.state, 1)
	assert.NotNil(t, hc.state[servers[1]])
}
