package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// EventKind says what an [Event] reports. The zero EventKind is no kind:
// no event has it.
type EventKind int

// The kinds of [Event].
const (
	// EventAdded: Server joined the pool (Add, Update). Weight is its
	// weight.
	EventAdded EventKind = iota + 1
	// EventRemoved: Server left the pool (Remove, Update, or a Drain that
	// gave up with requests still in flight; Err is then the drain's
	// error).
	EventRemoved
	// EventWeightChanged: Server's weight changed from OldWeight to Weight.
	EventWeightChanged
	// EventDraining: a [Pool.Drain] of Server began.
	EventDraining
	// EventDrained: the drained Server went idle and left the pool. No
	// EventRemoved follows.
	EventDrained
	// EventUp: Server was marked healthy (by a [HealthChecker] or a call of
	// [Server.SetHealthy]). Err is nil.
	EventUp
	// EventDown: Server was marked unhealthy. Err is the cause: the error
	// of the probe that took it down (an error naming the status for an
	// HTTP probe that got a bad one), or nil when a caller of
	// [Server.SetHealthy] did it.
	EventDown
	// EventEjected: a [Proxy] or [TCPProxy]'s passive health took Server
	// out. Failures is the number of consecutive failures that did it,
	// Until the end of the cool-down, and Err the last failure (an error
	// naming the status when that was a status).
	EventEjected
	// EventReadmitted: Server's ejection ended.
	EventReadmitted
	// EventSlowStartBegan: Server's slow start began; Until is the end of
	// its ramp.
	EventSlowStartBegan
	// EventSlowStartEnded: Server's ramp ended, because its window ran out
	// or because SlowStart was called with a window of 0. A ramp replaced
	// by a new one reports no end of its own.
	EventSlowStartEnded
	// EventDiscoveryFailed: a discovery lookup for the pool failed, and the
	// pool kept its last good set of servers. Server is nil; Err is the
	// lookup's error.
	EventDiscoveryFailed
	// EventDrainCanceled: the drain of Server was called off before it
	// went idle, and it takes picks again: [WatchDNS] does so when the
	// address of a server it drains comes back in the answer. No
	// EventDrained or EventRemoved follows.
	EventDrainCanceled
)

var eventKindNames = [...]string{
	EventAdded:           "added",
	EventRemoved:         "removed",
	EventWeightChanged:   "weight-changed",
	EventDraining:        "draining",
	EventDrained:         "drained",
	EventUp:              "up",
	EventDown:            "down",
	EventEjected:         "ejected",
	EventReadmitted:      "readmitted",
	EventSlowStartBegan:  "slow-start-began",
	EventSlowStartEnded:  "slow-start-ended",
	EventDiscoveryFailed: "discovery-failed",
	EventDrainCanceled:   "drain-canceled",
}

// String returns the kind's name, such as "added" or "slow-start-began",
// or "EventKind(N)" for a number that is not a kind.
func (k EventKind) String() string {
	if k >= EventAdded && int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event reports one change of a pool or of one of its servers. Only the
// fields that the kind's documentation names are set; the others are
// zero. An Event is a plain value, which an observer may keep and pass to
// other goroutines; the zero Event reports nothing.
type Event struct {
	Kind EventKind
	// Server is the server that changed; nil for an event about the pool
	// as a whole.
	Server *Server
	// Time is when the change happened, read from [time.Now].
	Time time.Time
	// Err is the cause of a change to a worse state.
	Err error
	// Failures is the number of consecutive failures that ejected Server.
	Failures int
	// Until is when an ejection or a slow start ends.
	Until time.Time
	// Weight is Server's weight after the change.
	Weight int
	// OldWeight is Server's weight before the change.
	OldWeight int
}

// Observer is a function that [Pool.Observe] calls with each change of a
// pool and of its servers. The pool never calls one observer concurrently
// with itself (see Observe); an observer given to several pools may be
// called by them at once.
type Observer func(Event)

// maxPendingEvents bounds the events a pool holds for its observers while
// one of them is slow; further events are dropped, and logged.
const maxPendingEvents = 1 << 14

// Observe calls o with every change of the pool and of its servers from now
// on, and returns a function that stops the calls. The pool may have any
// number of observers. A nil o is ignored (stop does nothing).
//
// Which changes a pool reports: its own membership (added, removed,
// draining, drained, and a failed discovery lookup for it), and every
// change of state of each server while it is a member (up, down, ejected,
// readmitted, slow start), whoever made it: a [HealthChecker], a
// [Proxy] or [TCPProxy] (with or without a pool behind its balancer), or a
// call of [Server.SetHealthy] or [Server.SlowStart]. A server in several
// pools has its changes of state heard by the observers of each of them,
// and a membership change only by those of the pool concerned (a drain
// too: the other pools of a server being drained do not hear it, though
// they do not pick it meanwhile, and [Stats].State says "draining"
// everywhere).
//
// Observers are called outside every lock of this package and never on
// the path of a Pick or a Done that changes nothing, so an observer may
// call any method of the pool or its servers (Servers, Add, Remove, ...).
// The changes a pool reports reach its observers in the order they
// happened, one call at a time: an observer is never called concurrently
// with itself or with another observer of the same pool. The call is made
// by the goroutine that made the change, or by one that is still
// reporting an earlier change, so the method that made a change may return
// before its event is reported (always so when an observer makes the
// change: its event follows once the observer returns).
//
// An observer should return quickly: while it runs, later events of the
// pool wait, and so does the goroutine that calls it. If more than 16,384
// events wait, further ones are dropped (and that is logged). A panic in an
// observer is recovered: the first one of each observer is logged, with
// its stack, through [slog.Default]; the observer keeps getting later
// events.
//
// After stop returns, o is not called again, except in a call already
// under way or about to begin (a delivery that checked o before stop): at
// most one more call per pool. stop may be called more than once, and from
// within o.
func (p *Pool) Observe(o Observer) (stop func()) {
	if o == nil {
		return func() {}
	}
	return p.obs.add(o)
}

// emit reports e to the pool's observers; a zero e.Time is set to now. It
// costs one atomic load when the pool has no observer. The caller must hold
// no lock that an observer's calls may take.
func (p *Pool) emit(e Event) {
	if p.obs.list.Load() == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	p.obs.enqueue(e)
	p.obs.deliver()
}

// observers is the set of a pool's observers and the queue of events on
// their way to them. Its zero value has no observer.
type observers struct {
	// list is the current observers, nil when there are none; it is
	// replaced, never changed in place, under mu.
	list atomic.Pointer[[]*observer]

	mu         sync.Mutex // guards the fields below; never held while calling out
	seq        uint64     // the number of the last event queued
	queue      []queuedEvent
	spare      []queuedEvent // an empty buffer for the next queue
	delivering bool          // some goroutine is delivering the queue
	dropping   bool          // events are being dropped; logged on the first
}

type queuedEvent struct {
	seq uint64
	e   Event
}

// observer is one function given to Observe.
type observer struct {
	f        Observer
	after    uint64 // the number of the last event queued before it came
	stopped  atomic.Bool
	panicked atomic.Bool
}

func (o *observers) add(f Observer) (stop func()) {
	ob := &observer{f: f}
	o.mu.Lock()
	ob.after = o.seq
	var list []*observer
	if l := o.list.Load(); l != nil {
		list = *l
	}
	list = append(slices.Clip(list), ob)
	o.list.Store(&list)
	o.mu.Unlock()
	return func() { o.remove(ob) }
}

func (o *observers) remove(ob *observer) {
	if ob.stopped.Swap(true) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.list.Load()
	if l == nil {
		return
	}
	list := slices.DeleteFunc(slices.Clone(*l), func(x *observer) bool { return x == ob })
	if len(list) == 0 {
		o.list.Store(nil)
		clear(o.queue)
		o.queue = o.queue[:0]
		return
	}
	o.list.Store(&list)
}

// enqueue adds e to the queue, if the pool has observers.
func (o *observers) enqueue(e Event) {
	if o.list.Load() == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.list.Load() == nil {
		return
	}
	if len(o.queue) >= maxPendingEvents {
		if !o.dropping {
			o.dropping = true
			slog.Default().LogAttrs(context.Background(), slog.LevelError,
				"lb: a pool observer is too slow: events are being dropped",
				slog.Int("pending", len(o.queue)), slog.String("event", e.Kind.String()))
		}
		return
	}
	o.seq++
	o.queue = append(o.queue, queuedEvent{seq: o.seq, e: e})
}

// deliver calls the observers with the queued events, unless another
// goroutine is at it already (it then delivers these too).
func (o *observers) deliver() {
	if o.list.Load() == nil {
		return
	}
	o.mu.Lock()
	if o.delivering || len(o.queue) == 0 {
		o.mu.Unlock()
		return
	}
	o.delivering = true
	finished := false
	defer func() {
		if !finished { // an observer called runtime.Goexit
			o.mu.Lock()
			o.delivering = false
			o.mu.Unlock()
		}
	}()
	for len(o.queue) > 0 {
		batch := o.queue
		o.queue, o.spare = o.spare, nil
		o.mu.Unlock()
		for i := range batch {
			if l := o.list.Load(); l != nil {
				for _, ob := range *l {
					ob.call(batch[i])
				}
			}
		}
		clear(batch)
		o.mu.Lock()
		o.spare = batch[:0]
	}
	o.delivering, o.dropping = false, false
	finished = true
	o.mu.Unlock()
}

// call gives q to the observer, unless it has stopped or q happened before
// it came, and recovers from a panic in it.
func (ob *observer) call(q queuedEvent) {
	if q.seq <= ob.after || ob.stopped.Load() {
		return
	}
	defer func() {
		if v := recover(); v != nil && !ob.panicked.Swap(true) {
			slog.Default().LogAttrs(context.Background(), slog.LevelError,
				"lb: a pool observer panicked; later panics of this observer are not logged",
				slog.String("event", q.e.Kind.String()), slog.Any("panic", v),
				slog.String("stack", string(debug.Stack())))
		}
	}()
	ob.f(q.e)
}

// Server states, as [Stats].State shows them.
const (
	stateUp       = "up"
	stateDown     = "down"
	stateEjected  = "ejected"
	stateDraining = "draining"
)

// stateOf returns the state that flags make: draining over down over
// ejected over up.
func stateOf(flags uint32) string {
	switch {
	case flags&flagDraining != 0:
		return stateDraining
	case flags&flagDown != 0:
		return stateDown
	case flags&flagEjected != 0:
		return stateEjected
	}
	return stateUp
}

// reasonMarkedDown is the reason shown for a server marked unhealthy by a
// caller of SetHealthy, or made with WithDown.
const reasonMarkedDown = "marked unhealthy (WithDown or Server.SetHealthy)"

// errStartDown is the cause of the down event of a server that a
// HealthChecker with WithCheckStartDown sees for the first time.
var errStartDown = errors.New("lb: waiting for a first passing probe (WithCheckStartDown)")

// serverEvents is the part of a server that only its changes of state
// touch: never a pick, nor a Done that changes nothing.
type serverEvents struct {
	// mu serializes the server's changes of state and of membership, so
	// that its record and its events follow the order of the changes.
	// Lock order: Pool.mu, then mu, then observers.mu.
	mu sync.Mutex
	// pools are the pools the server is a member of; replaced, never
	// changed in place. They are weak pointers, so that a pool that is no
	// longer used is collected even while its servers live on: such a
	// pool is left out of every report and dropped at the next change of
	// membership.
	pools []weak.Pointer[Pool]
	// rec is the state as Stats shows it.
	rec       atomic.Pointer[stateRecord]
	ejections atomic.Uint64

	downErr      error     // why the server was marked down; nil: by a caller
	ejectErr     error     // the last failure before the ejection
	ejectedUntil time.Time // the end of the ejection
	// ramp is the slow-start ramp whose end is still to be reported, and
	// rampTimer the timer that reports it.
	ramp      *slowStart
	rampTimer *time.Timer
}

// stateRecord is one state of a server, as Stats shows it. It is never
// changed once stored.
type stateRecord struct {
	state        string
	reason       string
	since        time.Time // zero for the state the server was made in
	ejectedUntil time.Time
}

func newServerEvents(flags uint32) *serverEvents {
	ev := new(serverEvents)
	r := &stateRecord{state: stateOf(flags)}
	if r.state == stateDown {
		r.reason = reasonMarkedDown
	}
	ev.rec.Store(r)
	return ev
}

// change makes one change of state of s under its lock: apply makes it,
// reports whether anything changed and returns the event (its Server and
// Time are filled in; a zero Kind reports nothing). The new state is
// recorded and the event queued for the observers of the pool to, or of
// every pool of s if to is nil. The caller then calls those observers, once
// it holds no lock, with flush (or, for to, to.obs.deliver).
func (s *Server) change(to *Pool, apply func(ev *serverEvents, now time.Time) (Event, bool)) (changed bool) {
	ev := s.ev
	ev.mu.Lock()
	defer ev.mu.Unlock()
	now := time.Now()
	e, ok := apply(ev, now)
	if !ok {
		return false
	}
	ev.record(s.flags.Load(), now)
	if e.Kind == 0 {
		return true // recorded; nothing to report
	}
	e.Server, e.Time = s, now
	if to != nil {
		to.obs.enqueue(e)
		return true
	}
	for _, wp := range ev.pools {
		if p := wp.Value(); p != nil {
			p.obs.enqueue(e)
		}
	}
	return true
}

// flush calls the observers of the pools of s with the events queued for
// them. The caller must hold no lock that an observer's calls may take. (A
// pool that s has left since its event was queued delivers it with the
// event of that removal.)
func (s *Server) flush() {
	s.ev.mu.Lock()
	pools := s.ev.pools
	s.ev.mu.Unlock()
	for _, wp := range pools {
		if p := wp.Value(); p != nil {
			p.obs.deliver()
		}
	}
}

// record stores the state that flags make. The caller holds ev.mu.
func (ev *serverEvents) record(flags uint32, now time.Time) {
	old := ev.rec.Load()
	r := &stateRecord{state: stateOf(flags), since: old.since}
	if r.state != old.state {
		r.since = now
	}
	switch r.state {
	case stateDown:
		r.reason = reasonMarkedDown
		if ev.downErr != nil {
			r.reason = ev.downErr.Error()
		}
	case stateEjected:
		if ev.ejectErr != nil {
			r.reason = ev.ejectErr.Error()
		}
	}
	if flags&flagEjected != 0 {
		r.ejectedUntil = ev.ejectedUntil
	}
	ev.rec.Store(r)
}

// setHealth marks s healthy or not, with the cause of a fall (nil for a
// caller's SetHealthy), and queues the change for the pools of s (see
// flush). It reports whether the health changed.
func (s *Server) setHealth(healthy bool, cause error) bool {
	return s.change(nil, func(ev *serverEvents, _ time.Time) (Event, bool) {
		if healthy {
			if !s.clearFlag(flagDown) {
				return Event{}, false
			}
			ev.downErr = nil
			return Event{Kind: EventUp}, true
		}
		if !s.setFlag(flagDown) {
			return Event{}, false
		}
		ev.downErr = cause
		return Event{Kind: EventDown, Err: cause}, true
	})
}

// eject marks s ejected until cooldown from now, after failures
// consecutive failures of which the last was cause, and queues the change
// (see flush). It reports whether s was not ejected already.
func (s *Server) eject(failures int, cooldown time.Duration, cause error) bool {
	return s.change(nil, func(ev *serverEvents, now time.Time) (Event, bool) {
		if !s.setFlag(flagEjected) {
			return Event{}, false
		}
		ev.ejections.Add(1)
		ev.ejectErr, ev.ejectedUntil = cause, now.Add(cooldown)
		return Event{Kind: EventEjected, Failures: failures, Until: ev.ejectedUntil, Err: cause}, true
	})
}

// readmit ends the ejection of s, reports it, and reports whether s was
// ejected.
func (s *Server) readmit() bool {
	changed := s.change(nil, func(ev *serverEvents, _ time.Time) (Event, bool) {
		if !s.clearFlag(flagEjected) {
			return Event{}, false
		}
		ev.ejectErr, ev.ejectedUntil = nil, time.Time{}
		return Event{Kind: EventReadmitted}, true
	})
	s.flush()
	return changed
}

// startDrain marks s draining and reports it to p only; it reports false
// if s is being drained already.
func (s *Server) startDrain(p *Pool) bool {
	changed := s.change(p, func(*serverEvents, time.Time) (Event, bool) {
		return Event{Kind: EventDraining}, s.setFlag(flagDraining)
	})
	p.obs.deliver()
	return changed
}

// cancelDrain clears the draining mark of s, whose drain from p is called
// off, and reports it to p's observers.
func (s *Server) cancelDrain(p *Pool) {
	s.change(p, func(*serverEvents, time.Time) (Event, bool) {
		return Event{Kind: EventDrainCanceled}, s.clearFlag(flagDraining)
	})
	p.obs.deliver()
}

// endDrain clears the draining mark of s; the event that ends a drain
// (drained, or removed) is the pool's.
func (s *Server) endDrain() {
	s.change(nil, func(*serverEvents, time.Time) (Event, bool) {
		return Event{}, s.clearFlag(flagDraining)
	})
}

// emit reports e, an event about s such as a change of weight, to the
// observers of every pool s is a member of. It must be called with no lock
// held that an observer's calls may take.
func (s *Server) emit(e Event) {
	s.change(nil, func(*serverEvents, time.Time) (Event, bool) { return e, true })
	s.flush()
}

// rampChanged reports a new ramp r of s (nil: the ramp ended at once). It
// arms a timer that reports the end of r when its window has run out on
// the real clock (at most window from now), and cancels the report of the
// end of the ramp it replaces. The caller holds ev.mu.
func (s *Server) rampChanged(ev *serverEvents, r *slowStart, window time.Duration) (Event, bool) {
	if ev.rampTimer != nil {
		ev.rampTimer.Stop()
		ev.rampTimer = nil
	}
	old := ev.ramp
	ev.ramp = r
	if r == nil {
		return Event{Kind: EventSlowStartEnded}, old != nil
	}
	end := r.start + r.window
	if end < r.start {
		end = math.MaxInt64 // past the year 2262
	}
	until := time.Unix(0, end)
	ev.rampTimer = time.AfterFunc(min(max(time.Until(until), 0), window), func() { s.rampOver(r) })
	return Event{Kind: EventSlowStartBegan, Until: until}, true
}

// rampOver reports the end of ramp r, unless it has been replaced or
// ended meanwhile. It leaves ending r to the picks, which read the pool's
// clock.
func (s *Server) rampOver(r *slowStart) {
	s.change(nil, func(ev *serverEvents, _ time.Time) (Event, bool) {
		if ev.ramp != r {
			return Event{}, false
		}
		ev.ramp, ev.rampTimer = nil, nil
		return Event{Kind: EventSlowStartEnded}, true
	})
	s.flush()
}

// joined makes servers, just added to p, members of it and reports them.
// The caller holds p.mu.
func (p *Pool) joined(servers []*Server) {
	for _, s := range servers {
		s.change(p, func(ev *serverEvents, _ time.Time) (Event, bool) {
			ev.pools = append(ev.without(nil), weak.Make(p))
			return Event{Kind: EventAdded, Weight: int(s.weight.Load())}, true
		})
	}
}

// left makes s, just taken out of p, no longer a member of it and reports
// e (a removal, or the end of a drain). The caller holds p.mu.
func (p *Pool) left(s *Server, e Event) {
	s.change(p, func(ev *serverEvents, _ time.Time) (Event, bool) {
		ev.pools = ev.without(p)
		return e, true
	})
}

// without returns a new slice of the pools of s but p and those that have
// been collected. The caller holds ev.mu.
func (ev *serverEvents) without(p *Pool) []weak.Pointer[Pool] {
	out := make([]weak.Pointer[Pool], 0, len(ev.pools)+1)
	for _, wp := range ev.pools {
		if x := wp.Value(); x != nil && x != p {
			out = append(out, wp)
		}
	}
	return out
}

// describeFailure returns the error of a failed attempt: its error, or one
// naming its status.
func describeFailure(info DoneInfo) error {
	if info.Err != nil {
		return info.Err
	}
	return fmt.Errorf("lb: status %d", info.StatusCode)
}
