package lb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seen is an Event as a test compares it: by server name and error text.
type seen struct {
	Kind      EventKind
	Server    string
	Time      time.Time
	Err       string
	Failures  int
	Until     time.Time
	Weight    int
	OldWeight int
}

func seenOf(e Event) seen {
	s := seen{Kind: e.Kind, Time: e.Time, Failures: e.Failures, Until: e.Until, Weight: e.Weight, OldWeight: e.OldWeight}
	if e.Server != nil {
		s.Server = e.Server.Name()
	}
	if e.Err != nil {
		s.Err = e.Err.Error()
	}
	return s
}

// recorder is an observer that keeps what it hears.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) observe(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// take returns the events heard since the last take.
func (r *recorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// seen returns the events heard since the last take, as seen values,
// ordered by server name and, for each server, in the order heard.
func (r *recorder) seen() []seen {
	out := []seen{}
	for _, e := range r.take() {
		out = append(out, seenOf(e))
	}
	slices.SortStableFunc(out, func(a, b seen) int { return cmp.Compare(a.Server, b.Server) })
	return out
}

// observed returns a recorder observing p until the test ends.
func observed(t *testing.T, p *Pool) *recorder {
	r := new(recorder)
	t.Cleanup(p.Observe(r.observe))
	return r
}

func TestEventKindString(t *testing.T) {
	t.Parallel()
	want := map[EventKind]string{
		EventAdded: "added", EventRemoved: "removed", EventWeightChanged: "weight-changed",
		EventDraining: "draining", EventDrained: "drained", EventUp: "up", EventDown: "down",
		EventEjected: "ejected", EventReadmitted: "readmitted", EventSlowStartBegan: "slow-start-began",
		EventSlowStartEnded: "slow-start-ended", EventDiscoveryFailed: "discovery-failed",
		EventDrainCanceled: "drain-canceled",
		0:                  "EventKind(0)", -1: "EventKind(-1)", EventDrainCanceled + 1: "EventKind(14)",
	}
	for k, name := range want {
		assert.Equal(t, name, k.String())
	}
}

// eventEnv is a pool of the handler servers a and b, and c outside it. a
// answers 503 while failing is set.
type eventEnv struct {
	p       *Pool
	a, b, c *Server
	failing atomic.Bool
	t0      time.Time
}

func newEventEnv(t *testing.T) *eventEnv {
	env := &eventEnv{t0: time.Now()}
	var err error
	env.a, err = NewHandlerServer("a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if env.failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	require.NoError(t, err)
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	env.b, err = NewHandlerServer("b", ok)
	require.NoError(t, err)
	env.c, err = NewHandlerServer("c", ok, WithWeight(3))
	require.NoError(t, err)
	env.p, err = NewPool(env.a, env.b)
	require.NoError(t, err)
	return env
}

func (env *eventEnv) checker(t *testing.T, opts ...HealthOption) *HealthChecker {
	hc, err := NewHealthChecker(env.p, append([]HealthOption{WithCheckRiseFall(1, 1), WithCheckLogger(discardLogger())}, opts...)...)
	require.NoError(t, err)
	return hc
}

// at returns the time d after the test began.
func (env *eventEnv) at(d time.Duration) time.Time { return env.t0.Add(d) }

// Each kind of event is reported once per change, with its fields, and
// nothing is reported when nothing changes.
func TestPoolObserveEvents(t *testing.T) {
	t.Parallel()
	errLookup := errors.New("lb: lookup example.internal: no such host")
	tests := []struct {
		name string
		act  func(t *testing.T, env *eventEnv)
		want func(env *eventEnv) []seen
	}{
		{"add", func(t *testing.T, env *eventEnv) {
			require.NoError(t, env.p.Add(env.c))
			require.NoError(t, env.p.Add())
			require.Error(t, env.p.Add(env.a))
		}, func(env *eventEnv) []seen {
			return []seen{{Kind: EventAdded, Server: "c", Time: env.t0, Weight: 3}}
		}},
		{"remove", func(t *testing.T, env *eventEnv) {
			require.NoError(t, env.p.Remove(env.a, env.a))
			require.Error(t, env.p.Remove(env.c))
			require.NoError(t, env.p.Remove())
		}, func(env *eventEnv) []seen {
			return []seen{{Kind: EventRemoved, Server: "a", Time: env.t0}}
		}},
		{"update", func(t *testing.T, env *eventEnv) {
			require.NoError(t, env.p.Update(env.a, env.b)) // no change
			time.Sleep(time.Second)
			require.NoError(t, env.p.Update(env.c, env.a))
			require.Error(t, env.p.Update(env.a, env.a))
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventRemoved, Server: "b", Time: env.at(time.Second)},
				{Kind: EventAdded, Server: "c", Time: env.at(time.Second), Weight: 3},
			}
		}},
		{"drain", func(t *testing.T, env *eventEnv) {
			res := env.a.Acquire()
			go func() {
				time.Sleep(time.Second)
				res.Done(DoneInfo{})
			}()
			require.NoError(t, env.p.Drain(context.Background(), env.a))
			require.Error(t, env.p.Drain(context.Background(), env.a), "not a member any more")
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventDraining, Server: "a", Time: env.t0},
				{Kind: EventDrained, Server: "a", Time: env.at(time.Second)},
			}
		}},
		{"drain that gives up", func(t *testing.T, env *eventEnv) {
			res := env.a.Acquire()
			defer res.Done(DoneInfo{})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			require.Error(t, env.p.Drain(ctx, env.a))
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventDraining, Server: "a", Time: env.t0},
				{Kind: EventRemoved, Server: "a", Time: env.at(time.Second),
					Err: `lb: drain "a": 1 requests still in flight: context deadline exceeded`},
			}
		}},
		{"SetHealthy", func(t *testing.T, env *eventEnv) {
			assert.True(t, env.a.SetHealthy(false))
			assert.False(t, env.a.SetHealthy(false))
			time.Sleep(time.Second)
			assert.True(t, env.a.SetHealthy(true))
			assert.False(t, env.a.SetHealthy(true))
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventDown, Server: "a", Time: env.t0},
				{Kind: EventUp, Server: "a", Time: env.at(time.Second)},
			}
		}},
		{"health checker", func(t *testing.T, env *eventEnv) {
			hc := env.checker(t)
			hc.CheckOnce(context.Background()) // all pass: no change
			env.failing.Store(true)
			hc.CheckOnce(context.Background())
			hc.CheckOnce(context.Background()) // still down
			time.Sleep(time.Second)
			env.failing.Store(false)
			hc.CheckOnce(context.Background())
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventDown, Server: "a", Time: env.t0, Err: "lb: probe: status 503"},
				{Kind: EventUp, Server: "a", Time: env.at(time.Second)},
			}
		}},
		{"health checker, start down", func(t *testing.T, env *eventEnv) {
			env.checker(t, WithCheckStartDown()).CheckOnce(context.Background())
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventDown, Server: "a", Time: env.t0, Err: errStartDown.Error()},
				{Kind: EventUp, Server: "a", Time: env.t0},
				{Kind: EventDown, Server: "b", Time: env.t0, Err: errStartDown.Error()},
				{Kind: EventUp, Server: "b", Time: env.t0},
			}
		}},
		{"health checker, slow start", func(t *testing.T, env *eventEnv) {
			hc := env.checker(t, WithCheckSlowStart(10*time.Second))
			env.failing.Store(true)
			hc.CheckOnce(context.Background())
			env.failing.Store(false)
			time.Sleep(time.Second)
			hc.CheckOnce(context.Background())
			time.Sleep(20 * time.Second)
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventDown, Server: "a", Time: env.t0, Err: "lb: probe: status 503"},
				{Kind: EventSlowStartBegan, Server: "a", Time: env.at(time.Second), Until: env.at(11 * time.Second)},
				{Kind: EventUp, Server: "a", Time: env.at(time.Second)},
				{Kind: EventSlowStartEnded, Server: "a", Time: env.at(11 * time.Second)},
			}
		}},
		{"slow start", func(t *testing.T, env *eventEnv) {
			env.a.SlowStart(5 * time.Second)
			time.Sleep(10 * time.Second)
			env.a.SlowStart(0) // no ramp: nothing to end
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventSlowStartBegan, Server: "a", Time: env.t0, Until: env.at(5 * time.Second)},
				{Kind: EventSlowStartEnded, Server: "a", Time: env.at(5 * time.Second)},
			}
		}},
		{"slow start replaced", func(t *testing.T, env *eventEnv) {
			env.a.SlowStart(5 * time.Second)
			time.Sleep(2 * time.Second)
			env.a.SlowStart(5 * time.Second)
			time.Sleep(10 * time.Second)
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventSlowStartBegan, Server: "a", Time: env.t0, Until: env.at(5 * time.Second)},
				{Kind: EventSlowStartBegan, Server: "a", Time: env.at(2 * time.Second), Until: env.at(7 * time.Second)},
				{Kind: EventSlowStartEnded, Server: "a", Time: env.at(7 * time.Second)},
			}
		}},
		{"slow start cut short", func(t *testing.T, env *eventEnv) {
			env.a.SlowStart(5 * time.Second)
			time.Sleep(time.Second)
			env.a.SlowStart(0)
			time.Sleep(10 * time.Second)
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventSlowStartBegan, Server: "a", Time: env.t0, Until: env.at(5 * time.Second)},
				{Kind: EventSlowStartEnded, Server: "a", Time: env.at(time.Second)},
			}
		}},
		{"slow start of a server that leaves", func(t *testing.T, env *eventEnv) {
			env.a.SlowStart(5 * time.Second)
			require.NoError(t, env.p.Remove(env.a))
			time.Sleep(10 * time.Second)
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventSlowStartBegan, Server: "a", Time: env.t0, Until: env.at(5 * time.Second)},
				{Kind: EventRemoved, Server: "a", Time: env.t0},
			}
		}},
		{"ejection", func(t *testing.T, env *eventEnv) {
			rr, err := NewRoundRobin(env.p, WithRotationStart(0))
			require.NoError(t, err)
			proxy, err := NewProxy(rr, quiet, WithRetries(0), WithPassiveHealth(2, 10*time.Second), WithMaxEjectionPercent(100))
			require.NoError(t, err)
			env.failing.Store(true)
			for range 6 { // a fails twice, then is out; b answers
				serve(proxy, "GET", "/", "")
			}
			require.True(t, env.a.Ejected())
			time.Sleep(20 * time.Second)
		}, func(env *eventEnv) []seen {
			return []seen{
				{Kind: EventEjected, Server: "a", Time: env.t0, Failures: 2, Until: env.at(10 * time.Second), Err: "lb: status 503"},
				{Kind: EventReadmitted, Server: "a", Time: env.at(10 * time.Second)},
			}
		}},
		{"weight changed", func(t *testing.T, env *eventEnv) {
			env.a.emit(Event{Kind: EventWeightChanged, Weight: 3, OldWeight: 1})
		}, func(env *eventEnv) []seen {
			return []seen{{Kind: EventWeightChanged, Server: "a", Time: env.t0, Weight: 3, OldWeight: 1}}
		}},
		{"discovery failed", func(t *testing.T, env *eventEnv) {
			env.p.emit(Event{Kind: EventDiscoveryFailed, Err: errLookup})
		}, func(env *eventEnv) []seen {
			return []seen{{Kind: EventDiscoveryFailed, Time: env.t0, Err: errLookup.Error()}}
		}},
	}
	covered := map[EventKind]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				env := newEventEnv(t)
				r := observed(t, env.p)
				tt.act(t, env)
				synctest.Wait()
				want := tt.want(env)
				assert.Equal(t, want, r.seen())
				for _, w := range want {
					covered[w.Kind] = true
				}
			})
		})
	}
	for k := EventAdded; k <= EventDiscoveryFailed; k++ {
		assert.True(t, covered[k], "no case for %v", k)
	}
}

// The state fields of Stats follow every change, whoever makes it.
func TestStatsState(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := newTestServers(t, 1)[0]
		p, err := NewPool(s)
		require.NoError(t, err)
		health := passiveHealth{failures: 1, cooldown: 10 * time.Second, failStatus: map[int]bool{503: true}, maxEjection: 100, logger: discardLogger()}
		type state struct {
			State, Reason       string
			Since, EjectedUntil time.Time
			Ejections           uint64
		}
		get := func() state {
			st := s.Stats()
			return state{st.State, st.Reason, st.Since, st.EjectedUntil, st.Ejections}
		}
		sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
		steps := []struct {
			name string
			act  func()
			want state
		}{
			{"new", func() {}, state{State: "up"}},
			{"marked down", func() { s.SetHealthy(false) }, state{"down", reasonMarkedDown, sec(2), time.Time{}, 0}},
			{"ejected while down", func() { health.observe(s, DoneInfo{StatusCode: 503}) },
				state{"down", reasonMarkedDown, sec(2), sec(13), 1}},
			{"up, still ejected", func() { s.SetHealthy(true) }, state{"ejected", "lb: status 503", sec(4), sec(13), 1}},
			{"readmitted", func() { time.Sleep(9 * time.Second) }, state{"up", "", sec(13), time.Time{}, 1}},
			{"ejected again", func() { health.observe(s, DoneInfo{Err: errors.New("lb: dial: refused")}) },
				state{"ejected", "lb: dial: refused", sec(15), sec(25), 2}},
			{"down by a probe", func() {
				hc, err := NewHealthChecker(p, WithCheckRiseFall(1, 1), WithCheckLogger(discardLogger()),
					WithCheckFunc(func(context.Context, *Server) error { return errors.New("lb: probe: status 500") }))
				require.NoError(t, err)
				hc.CheckOnce(context.Background())
			}, state{"down", "lb: probe: status 500", sec(16), sec(25), 2}},
			{"draining", func() {
				s.SetHealthy(true)
				res := s.Acquire()
				go func() { _ = p.Drain(context.Background(), s) }()
				synctest.Wait()
				t.Cleanup(func() { res.Done(DoneInfo{}) })
			}, state{"draining", "", sec(17), sec(25), 2}},
		}
		for _, step := range steps {
			time.Sleep(time.Second)
			step.act()
			assert.Equal(t, step.want, get(), step.name)
		}
	})
}

// A server made down starts in state "down", with no time of change.
func TestStatsStateStartDown(t *testing.T) {
	t.Parallel()
	s, err := NewHandlerServer("x", http.NotFoundHandler(), WithDown())
	require.NoError(t, err)
	st := s.Stats()
	assert.Equal(t, "down", st.State)
	assert.Equal(t, reasonMarkedDown, st.Reason)
	assert.True(t, st.Since.IsZero())
}

// Changes of a server's state reach the observers of every pool it is in;
// changes of membership, drains included, only those of the pool concerned.
func TestObserveSeveralPools(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := newTestServers(t, 1)[0]
		p1, err := NewPool(s)
		require.NoError(t, err)
		p2, err := NewPool()
		require.NoError(t, err)
		r1, r2 := observed(t, p1), observed(t, p2)

		require.NoError(t, p2.Add(s))
		s.SetHealthy(false)
		require.NoError(t, p1.Drain(context.Background(), s))
		s.SetHealthy(true) // only p2 now
		synctest.Wait()

		assert.Equal(t, []seen{
			{Kind: EventDown, Server: "s0", Time: t0},
			{Kind: EventDraining, Server: "s0", Time: t0},
			{Kind: EventDrained, Server: "s0", Time: t0},
		}, r1.seen())
		assert.Equal(t, []seen{
			{Kind: EventAdded, Server: "s0", Time: t0, Weight: 1},
			{Kind: EventDown, Server: "s0", Time: t0},
			{Kind: EventUp, Server: "s0", Time: t0},
		}, r2.seen())
	})
}

// onlyServer is a balancer without a pool: it always picks s.
type onlyServer struct{ s *Server }

func (b onlyServer) Pick(*http.Request) (PickResult, error) { return b.s.Acquire(), nil }

// A proxy whose balancer has no pool reports its ejections to the pools of
// the server. (Such a proxy ejects only with WithMaxEjectionPercent(100).)
func TestObserveEjectionWithoutPool(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		env := newEventEnv(t)
		r := observed(t, env.p)
		proxy, err := NewProxy(onlyServer{env.a}, quiet, WithRetries(0), WithPassiveHealth(1, time.Second), WithMaxEjectionPercent(100))
		require.NoError(t, err)
		env.failing.Store(true)
		serve(proxy, "GET", "/", "")
		synctest.Wait()
		assert.Equal(t, []seen{{Kind: EventEjected, Server: "a", Time: env.t0, Failures: 1,
			Until: env.at(time.Second), Err: "lb: status 503"}}, r.seen())
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []seen{{Kind: EventReadmitted, Server: "a", Time: env.at(time.Second)}}, r.seen())
	})
}

// After stop, an observer hears nothing more; stop may be called twice, and
// from within the observer; a nil observer is ignored.
func TestObserveStop(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, 1, 1)
	var n1, n2 atomic.Int32
	stop1 := p.Observe(func(Event) { n1.Add(1) })
	var stop2 func()
	stop2 = p.Observe(func(Event) {
		n2.Add(1)
		stop2()
	})
	p.Observe(nil)()

	servers[0].SetHealthy(false)
	assert.EqualValues(t, 1, n1.Load())
	assert.EqualValues(t, 1, n2.Load())
	stop1()
	stop1()
	servers[0].SetHealthy(true)
	servers[1].SetHealthy(false)
	assert.EqualValues(t, 1, n1.Load())
	assert.EqualValues(t, 1, n2.Load())
	assert.Nil(t, p.obs.list.Load(), "no observer left")

	// An observer that comes later hears only what happens after it came.
	r := observed(t, p)
	servers[1].SetHealthy(true)
	assert.Len(t, r.take(), 1)
}

// An observer may call the pool, its servers and its health checker: it is
// called without their locks held. Its own changes are reported after it
// returns, in order.
func TestObserverCallsThePool(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		env := newEventEnv(t)
		// Only a, so that the observer's probes do not overlap those of
		// the checker's first round (a handler server is not called again
		// until its last probe's call has returned).
		require.NoError(t, env.p.Remove(env.b))
		hc := env.checker(t)
		var kinds []string
		env.p.Observe(func(e Event) {
			kinds = append(kinds, e.Kind.String()+" "+e.Server.Name())
			_ = env.p.Servers()
			_ = e.Server.Stats()
			switch e.Kind {
			case EventDown:
				hc.CheckOnce(context.Background()) // probes a again
				require.NoError(t, env.p.Add(env.c))
				env.a.SlowStart(time.Second)
			case EventAdded:
				require.NoError(t, env.p.Remove(e.Server))
			case EventEjected:
				e.Server.SetHealthy(false)
			}
		})
		env.failing.Store(true)
		hc.CheckOnce(context.Background())
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"down a", "added c", "slow-start-began a", "removed c", "slow-start-ended a"}, kinds)
	})
}

// A slow observer holds up only the goroutine that calls it: other changes
// go on, and their events follow, in order, once it returns.
func TestSlowObserver(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1, 1)
		release := make(chan struct{})
		var order []string
		p.Observe(func(e Event) {
			if len(order) == 0 {
				<-release
			}
			order = append(order, e.Kind.String()+" "+e.Server.Name())
		})
		go servers[0].SetHealthy(false) // delivers, and waits in the observer
		synctest.Wait()
		servers[1].SetHealthy(false) // returns at once
		require.NoError(t, p.Remove(servers[1]))
		_ = servers[0].Stats()
		close(release)
		synctest.Wait()
		assert.Equal(t, []string{"down s0", "down s1", "removed s1"}, order)
	})
}

// A panicking observer is logged once, and breaks neither the pool nor the
// other observers, which hear every event.
func TestPanickingObserver(t *testing.T) {
	// Not parallel: it replaces slog's default logger.
	logs := new(extraDoneLog)
	logExtraDonesTo(t, logs)
	p, servers := newTestPool(t, 1)
	p.Observe(func(Event) { panic("observer bug") })
	r := observed(t, p)
	servers[0].SetHealthy(false)
	servers[0].SetHealthy(true)
	require.NoError(t, p.Remove(servers[0]))
	assert.Len(t, r.take(), 3)
	assert.Equal(t, []string{"lb: a pool observer panicked; later panics of this observer are not logged"}, logs.messages())
	assert.Equal(t, []string{"observer bug"}, logs.attr["panic"])
}

// Many goroutines changing servers while observers come and go: an
// observer present throughout hears each server's changes in the order
// they happened, ending with its state.
func TestObserveConcurrent(t *testing.T) {
	t.Parallel()
	p, servers := newTestPool(t, ones(4)...)
	type heard struct {
		mu   sync.Mutex
		last map[string]EventKind
		bad  []string
	}
	h := heard{last: map[string]EventKind{}}
	stop := p.Observe(func(e Event) {
		h.mu.Lock()
		defer h.mu.Unlock()
		name := e.Server.Name()
		if e.Kind == h.last[name] {
			h.bad = append(h.bad, fmt.Sprintf("%s twice for %s", e.Kind, name))
		}
		h.last[name] = e.Kind
	})
	defer stop()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			s := servers[g%len(servers)]
			for i := range 200 {
				s.SetHealthy(i%2 == 1)
				if i%50 == 0 {
					p.Observe(func(Event) {})()
				}
				res, err := NewRoundRobin(p)
				if assert.NoError(t, err) {
					if pick, err := res.Pick(nil); err == nil {
						pick.Done(DoneInfo{})
					}
				}
			}
		})
	}
	wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.Empty(t, h.bad)
	for _, s := range servers {
		want := EventDown
		if s.Healthy() {
			want = EventUp
		}
		assert.Equal(t, want, h.last[s.Name()], s.Name())
		assert.Equal(t, want.String(), s.Stats().State, s.Name())
	}
}

// An observer that blocks for good makes the pool drop events past the
// bound, with one log line, and keep working.
func TestObserverQueueBound(t *testing.T) {
	// Not parallel: it replaces slog's default logger.
	logs := new(extraDoneLog)
	logExtraDonesTo(t, logs)
	synctest.Test(t, func(t *testing.T) {
		p, servers := newTestPool(t, 1)
		release := make(chan struct{})
		var n atomic.Int64
		p.Observe(func(Event) {
			if n.Add(1) == 1 {
				<-release
			}
		})
		go servers[0].SetHealthy(false)
		synctest.Wait()
		for i := range maxPendingEvents + 10 {
			servers[0].SetHealthy(i%2 == 0)
		}
		close(release)
		synctest.Wait()
		assert.EqualValues(t, 1+maxPendingEvents, n.Load())
		assert.Equal(t, []string{"lb: a pool observer is too slow: events are being dropped"}, logs.messages())
	})
}

// A TCPProxy's ejections are reported as a Proxy's are: they share passive
// health.
func TestObserveTCPEjection(t *testing.T) {
	t.Parallel()
	be := newTCPBackend(t, echo)
	refused := refusedAddr(t)
	servers := tcpServers(t, refused, be.addr)
	pool, err := NewPool(servers...)
	require.NoError(t, err)
	r := observed(t, pool)
	rr, err := NewRoundRobin(pool, WithRotationStart(0))
	require.NoError(t, err)
	_, addr := newTCPTestProxy(t, rr, WithTCPPassiveHealth(2, time.Hour))

	for range 4 { // round robin: the refused server comes first twice
		c := dialTCP(t, addr)
		_, err := c.Write([]byte("x"))
		require.NoError(t, err)
		_, err = io.ReadFull(c, make([]byte, 1))
		require.NoError(t, err)
		require.NoError(t, c.Close())
	}
	events := r.take()
	require.Len(t, events, 1)
	e := events[0]
	assert.Equal(t, EventEjected, e.Kind)
	assert.Same(t, servers[0], e.Server)
	assert.Equal(t, 2, e.Failures)
	assert.Equal(t, time.Hour, e.Until.Sub(e.Time))
	assert.ErrorIs(t, e.Err, syscall.ECONNREFUSED)
	assert.Equal(t, "ejected", servers[0].Stats().State)
	assert.Equal(t, e.Err.Error(), servers[0].Stats().Reason)
}

// Picks and Dones report nothing and allocate nothing with observers
// attached.
func TestObserverNotOnPickPath(t *testing.T) {
	// Not parallel: AllocsPerRun counts the allocations of the whole
	// process.
	p, _ := newTestPool(t, 1, 2, 3)
	var n atomic.Int64
	defer p.Observe(func(Event) { n.Add(1) })()
	for _, alg := range algorithms {
		b, err := alg.new(p, seeded(1))
		require.NoError(t, err)
		pickDone := func() {
			res, err := b.Pick(nil)
			require.NoError(t, err)
			res.Done(DoneInfo{StatusCode: 200, Duration: time.Millisecond})
		}
		pickDone() // builds any table, once per snapshot
		assert.Zero(t, testing.AllocsPerRun(100, pickDone), alg.name)
	}
	assert.Zero(t, n.Load())
}

// A ramp too long to end before the largest time reports that time as its
// end, and no end before it.
func TestSlowStartEventLongWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		env := newEventEnv(t)
		r := observed(t, env.p)
		env.a.SlowStart(math.MaxInt64)
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, []seen{{Kind: EventSlowStartBegan, Server: "a", Time: env.t0, Until: time.Unix(0, math.MaxInt64)}}, r.seen())
		env.a.SlowStart(0)
		synctest.Wait()
		assert.Equal(t, []seen{{Kind: EventSlowStartEnded, Server: "a", Time: env.at(time.Hour)}}, r.seen())
	})
}

// A server does not keep alive the pools it was put in: one that is no
// longer used is collected, and forgotten at the server's next change of
// membership.
func TestServerForgetsCollectedPools(t *testing.T) {
	t.Parallel()
	s := newTestServers(t, 1)[0]
	for range 100 {
		p, err := NewPool(s)
		require.NoError(t, err)
		p.Observe(func(Event) {})
	}
	runtime.GC()
	p, err := NewPool(s)
	require.NoError(t, err)
	r := observed(t, p)
	s.SetHealthy(false)
	assert.Len(t, r.take(), 1)
	s.ev.mu.Lock()
	defer s.ev.mu.Unlock()
	assert.Len(t, s.ev.pools, 1, "only the pool in use")
}

// A server that joins while the checker runs starts its slow start, and
// its observers hear it outside the checker's locks: this one probes from
// within.
func TestObserveSlowStartOfJoiningServer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		env := newEventEnv(t)
		hc := env.checker(t, WithCheckSlowStart(10*time.Second), WithCheckInterval(time.Minute, time.Minute))
		r := observed(t, env.p)
		env.p.Observe(func(e Event) {
			if e.Kind == EventSlowStartBegan {
				hc.CheckOnce(context.Background())
			}
		})
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error)
		go func() { ran <- hc.Run(ctx) }()
		synctest.Wait()
		time.Sleep(time.Second)
		require.NoError(t, env.p.Add(env.c))
		synctest.Wait()
		assert.Equal(t, []seen{
			{Kind: EventAdded, Server: "c", Time: env.at(time.Second), Weight: 3},
			{Kind: EventSlowStartBegan, Server: "c", Time: env.at(time.Second), Until: env.at(11 * time.Second)},
		}, r.seen())
		cancel()
		require.NoError(t, <-ran)
	})
}
