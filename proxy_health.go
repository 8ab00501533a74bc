package lb

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// observe feeds the outcome of one attempt to passive health.
func (p *Proxy) observe(s *Server, info DoneInfo) {
	observeHealth(s, info, p.o.failures, p.o.cooldown, p.o.failStatus, p.o.logger)
}

// observeHealth feeds the outcome of one attempt on s to passive health:
// failures consecutive failures (errors, or a status in failStatus) eject
// s for cooldown. Both the Proxy and the TCPProxy use it.
func observeHealth(s *Server, info DoneInfo, failures int, cooldown time.Duration, failStatus map[int]bool, logger *slog.Logger) {
	if failures == 0 || errors.Is(info.Err, ErrNotUsed) {
		return
	}
	if clientFault(info.Err) {
		return // neither a failure nor a success of the server
	}
	if info.Err == nil && !failStatus[info.StatusCode] {
		if s.fails.Load() != 0 {
			s.fails.Store(0)
		}
		return
	}
	if s.fails.Add(1) < uint32(failures) || !s.setFlag(flagEjected) {
		return
	}
	logger.LogAttrs(context.Background(), slog.LevelWarn, "lb: server ejected",
		slog.String("server", s.Name()), slog.Int("failures", failures),
		slog.Duration("cooldown", cooldown))
	time.AfterFunc(cooldown, func() {
		s.fails.Store(0)
		if s.clearFlag(flagEjected) {
			logger.LogAttrs(context.Background(), slog.LevelInfo, "lb: server back from ejection",
				slog.String("server", s.Name()))
		}
	})
}
