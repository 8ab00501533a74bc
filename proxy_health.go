package lb

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// observe feeds the outcome of one attempt to passive health.
func (p *Proxy) observe(s *Server, info DoneInfo) {
	if p.o.failures == 0 || errors.Is(info.Err, ErrNotUsed) {
		return
	}
	if clientFault(info.Err) {
		return // neither a failure nor a success of the server
	}
	if info.Err == nil && !p.o.failStatus[info.StatusCode] {
		if s.fails.Load() != 0 {
			s.fails.Store(0)
		}
		return
	}
	if s.fails.Add(1) < uint32(p.o.failures) || !s.setFlag(flagEjected) {
		return
	}
	p.o.logger.LogAttrs(context.Background(), slog.LevelWarn, "lb: server ejected",
		slog.String("server", s.Name()), slog.Int("failures", p.o.failures),
		slog.Duration("cooldown", p.o.cooldown))
	time.AfterFunc(p.o.cooldown, func() {
		s.fails.Store(0)
		if s.clearFlag(flagEjected) {
			p.o.logger.LogAttrs(context.Background(), slog.LevelInfo, "lb: server back from ejection",
				slog.String("server", s.Name()))
		}
	})
}
