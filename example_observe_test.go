package lb_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/balancekit/lb"
)

// An observer that logs every change of a pool: servers joining and
// leaving, health checks taking one down and bringing it back, a drain.
func ExamplePool_Observe() {
	failing := false
	api, _ := lb.NewHandlerServer("api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	spare, _ := lb.NewHandlerServer("spare", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	pool, _ := lb.NewPool(api)

	// The time is left out of the log lines so that the example's output
	// is always the same.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	stop := pool.Observe(func(e lb.Event) {
		level := slog.LevelInfo
		attrs := []slog.Attr{slog.String("event", e.Kind.String())}
		if e.Server != nil {
			attrs = append(attrs, slog.String("server", e.Server.Name()))
		}
		if e.Err != nil {
			level = slog.LevelWarn
			attrs = append(attrs, slog.String("err", e.Err.Error()))
		}
		logger.LogAttrs(context.Background(), level, "lb", attrs...)
	})
	defer stop()

	ctx := context.Background()
	_ = pool.Add(spare)
	hc, _ := lb.NewHealthChecker(pool, lb.WithCheckRiseFall(1, 1), lb.WithCheckLogger(slog.New(slog.DiscardHandler)))
	failing = true
	hc.CheckOnce(ctx)
	failing = false
	hc.CheckOnce(ctx)
	_ = pool.Drain(ctx, spare)
	// Output:
	// level=INFO msg=lb event=added server=spare
	// level=WARN msg=lb event=down server=api err="lb: probe: status 503"
	// level=INFO msg=lb event=up server=api
	// level=INFO msg=lb event=draining server=spare
	// level=INFO msg=lb event=drained server=spare
}
