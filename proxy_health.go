package lb

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// observe feeds the outcome of one attempt to passive health.
func (p *Proxy) observe(s *Server, info DoneInfo) {
	if p.o.failures == 0 || errors.Is(info.Err, ErrNotUsed) {
		return
	}
	if clientFault(info.Err) || errors.Is(info.Err, errSwitch) {
		return // neither a failure nor a success of the server
	}
	if info.Err == nil && !p.o.failStatus[info.StatusCode] {
		if s.fails.Load() != 0 {
			s.fails.Store(0)
		}
		return
	}
	if s.fails.Add(1) < uint32(p.o.failures) || !p.eject(s) {
		return
	}
	p.o.logger.LogAttrs(context.Background(), slog.LevelWarn, "lb: server ejected",
		slog.String("server", s.Name()), slog.Int("failures", p.o.failures),
		slog.Duration("cooldown", p.o.cooldown))
	// The timer belongs to the server's ejection, not to the proxy: it
	// runs out even if the proxy is discarded meanwhile.
	time.AfterFunc(p.o.cooldown, func() {
		s.fails.Store(0)
		if s.clearFlag(flagEjected) {
			p.o.logger.LogAttrs(context.Background(), slog.LevelInfo, "lb: server back from ejection",
				slog.String("server", s.Name()))
		}
	})
}

// ejectMu serializes ejections, so that two servers failing at once cannot
// both pass the cap. Only an ejection takes it, never a pick.
var ejectMu sync.Mutex

// eject takes s out for the cool-down, unless it is ejected already or
// that would put more than the allowed share of the balancer's pool out of
// service at once, counting servers ejected, marked down or draining
// ([WithMaxEjectionPercent]). It reports whether it ejected s.
func (p *Proxy) eject(s *Server) bool {
	if p.o.maxEjection >= 100 {
		return s.setFlag(flagEjected)
	}
	var pool *Pool
	if pb, ok := p.bal.(PoolBalancer); ok {
		pool = pb.Pool()
	}
	if pool == nil || p.o.maxEjection == 0 {
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
	if (out+1)*100 > len(servers)*p.o.maxEjection {
		return false
	}
	return s.setFlag(flagEjected)
}
