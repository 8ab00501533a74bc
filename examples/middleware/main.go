// Command middleware balances between handlers a service already has, with
// no network hop: a 90/10 canary of two versions of an API handler, mounted
// in an existing http.ServeMux.
//
//	go run ./examples/middleware               # sends 100 requests, prints the split
//	go run ./examples/middleware -addr 127.0.0.1:8080   # and then serves
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/balancekit/lb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

// The handlers the service already has: two versions of one endpoint.
func ordersV1(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "orders v1") }
func ordersV2(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "orders v2 (canary)") }

// newMux builds the service's mux, with /api/orders split 90/10 between
// the two versions.
func newMux() (*http.ServeMux, *lb.Pool, error) {
	v1, err := lb.NewHandlerServer("v1", http.HandlerFunc(ordersV1), lb.WithWeight(90))
	if err != nil {
		return nil, nil, err
	}
	v2, err := lb.NewHandlerServer("v2", http.HandlerFunc(ordersV2), lb.WithWeight(10))
	if err != nil {
		return nil, nil, err
	}
	pool, err := lb.NewPool(v1, v2)
	if err != nil {
		return nil, nil, err
	}
	// Smooth weighted round robin: exactly 9 of every 10 requests to v1,
	// interleaved, not in bursts.
	wrr, err := lb.NewWeightedRoundRobin(pool)
	if err != nil {
		return nil, nil, err
	}
	canary, err := lb.NewProxy(wrr, lb.WithProxyLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		return nil, nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /api/orders", canary)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /debug/canary", lb.StatusHandler(pool))
	return mux, pool, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("middleware", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "", "serve on this address after the demo (e.g. 127.0.0.1:8080)")
	n := fs.Int("n", 100, "requests to send in process")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 0 {
		return fmt.Errorf("-n %d is negative", *n)
	}
	mux, _, err := newMux()
	if err != nil {
		return err
	}

	counts := map[string]int{}
	for range *n {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", "/api/orders", nil))
		counts[w.Body.String()]++
	}
	bodies := make([]string, 0, len(counts))
	for b := range counts {
		bodies = append(bodies, b)
	}
	sort.Strings(bodies)
	for _, b := range bodies {
		fmt.Fprintf(stdout, "%3d × %s", counts[b], b)
	}
	if *addr == "" {
		return nil
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	fmt.Fprintf(stdout, "serving on http://%s/api/orders (status: /debug/canary)\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	<-served
	return nil
}
