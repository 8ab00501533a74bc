package lb

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// observe feeds the outcome of one attempt to passive health.
func (p *Proxy) observe(s *Server, info DoneInfo) { p.passive().observe(s, info) }

// passive returns the proxy's passive health settings.
func (p *Proxy) passive() passiveHealth {
	return passiveHealth{failures: p.o.failures, cooldown: p.o.cooldown, failStatus: p.o.failStatus,
		maxEjection: p.o.maxEjection, bal: p.bal, logger: p.o.logger}
}

// passiveHealth ejects a server for a cool-down after consecutive failed
// attempts; the Proxy and the TCPProxy share it.
type passiveHealth struct {
	failures    int
	cooldown    time.Duration
	failStatus  map[int]bool // statuses that count as failures
	maxEjection int          // percent of the pool that may be out at once
	bal         Balancer     // names the pool, for maxEjection
	logger      *slog.Logger
}

// observe feeds the outcome of one attempt on s to passive health.
func (p passiveHealth) observe(s *Server, info DoneInfo) {
	if p.failures == 0 || info.Unused() {
		return
	}
	if info.Err != nil && (clientFault(info.Err) || errors.Is(info.Err, errSwitch) || localDialError(info.Err)) {
		return // neither a failure nor a success of the server
	}
	if info.Err == nil && !p.failStatus[info.StatusCode] {
		if s.fails.Load() != 0 {
			s.fails.Store(0)
		}
		return
	}
	n := s.fails.Add(1)
	if n < uint32(p.failures) || !p.eject(s, int(n), info) {
		return
	}
	p.logger.LogAttrs(context.Background(), slog.LevelWarn, "lb: server ejected",
		slog.String("server", s.Name()), slog.Int("failures", p.failures),
		slog.Duration("cooldown", p.cooldown))
	// The timer belongs to the server's ejection, not to the proxy: it
	// runs out even if the proxy is discarded meanwhile. It is armed
	// before the ejection is reported, so that an observer that takes its
	// time does not make the cool-down longer.
	time.AfterFunc(p.cooldown, func() {
		s.fails.Store(0)
		if s.readmit() {
			p.logger.LogAttrs(context.Background(), slog.LevelInfo, "lb: server back from ejection",
				slog.String("server", s.Name()))
		}
	})
	s.flush() // the ejection's event, outside ejectMu
}

// ejectMu serializes ejections, so that two servers failing at once cannot
// both pass the cap. Only an ejection takes it, never a pick.
var ejectMu sync.Mutex

// eject takes s out for the cool-down, unless it is ejected already or
// that would put more than the allowed share of the balancer's pool out of
// service at once, counting servers ejected, marked down or draining
// ([WithMaxEjectionPercent]). It reports whether it ejected s, after
// failures consecutive failures of which info was the last; the caller
// then reports the ejection with s.flush.
func (p passiveHealth) eject(s *Server, failures int, info DoneInfo) bool {
	if p.maxEjection >= 100 {
		return s.eject(failures, p.cooldown, describeFailure(info))
	}
	var pool *Pool
	if pb, ok := p.bal.(PoolBalancer); ok {
		pool = pb.Pool()
	}
	if pool == nil || p.maxEjection == 0 {
		return false // without the pool, how many would be left is unknown
	}
	ejectMu.Lock()
	defer ejectMu.Unlock()
	if s.Ejected() {
		return false
	}
	// Out of service: ejected, marked down by active health, or draining.
	// A server that is down already is not left in service by the cap.
	servers := pool.load().active
	out := 0
	for _, x := range servers {
		if x != s && x.flags.Load()&(flagDown|flagEjected|flagDraining) != 0 {
			out++
		}
	}
	if (out+1)*100 > len(servers)*p.maxEjection {
		return false
	}
	return s.eject(failures, p.cooldown, describeFailure(info))
}

// localDialError reports whether err is a dial that failed for want of a
// resource of the proxy's own host: file descriptors, ephemeral ports,
// buffer space or memory. It says nothing about the server.
func localDialError(err error) bool {
	if err == nil {
		return false // before op, which escapes: no allocation on success
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	for _, e := range [...]syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.EADDRNOTAVAIL, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
