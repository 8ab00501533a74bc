// Command routes mounts one balancer per route over a single pool of
// servers, with active health checks, and serves a status page and
// Prometheus metrics on a separate operator listener:
//
//	go run ./examples/routes
//	curl 127.0.0.1:8080/round-robin/
//	curl -H 'X-User: alice' 127.0.0.1:8080/hash/      # alice always lands on the same backend
//	curl -c jar -b jar 127.0.0.1:8080/sticky/         # pinned by a cookie
//	curl 127.0.0.1:9090/status                        # operator listener (-admin-addr)
//	curl 127.0.0.1:9090/metrics
//
// With no flags it starts three demo backends in process on 127.0.0.1
// (gamma answers 50 ms slower than the others, so least-connections and
// P2C visibly favour alpha and beta, and /peak-ewma/ and /adaptive/, which
// learn each backend's latency, all but avoid gamma; /status shows their
// estimates). -backend URL[=weight], repeated,
// balances real servers instead.
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
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/balancekit/lb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		slog.Error("routes", "err", err)
		os.Exit(1)
	}
}

// errUsage marks errors in the command line.
var errUsage = errors.New("usage")

// backendFlag collects the -backend URL[=weight] values as given; run
// checks them once the flags are parsed, so that an error never quotes a
// URL's user info (the flag package would quote the whole value).
type backendFlag []string

func (b *backendFlag) String() string { return fmt.Sprint(len(*b), " backends") }

func (b *backendFlag) Set(v string) error {
	*b = append(*b, v)
	return nil
}

// servers returns one server per -backend value, or an error naming the
// value without its user info.
func (b backendFlag) servers() ([]*lb.Server, error) {
	var servers []*lb.Server
	seen := map[string]bool{}
	for _, v := range b {
		raw, weight := v, 1
		// The weight follows the last "=" after any user info, where "="
		// may stand unescaped in a password.
		if i := strings.LastIndex(v, "="); i > strings.LastIndex(v, "@") {
			w, err := strconv.Atoi(v[i+1:])
			if err != nil { // after the user info: no part of a password
				return nil, fmt.Errorf("invalid value for flag -backend: weight %q is not a number", v[i+1:])
			}
			raw, weight = v[:i], w
		}
		s, err := lb.NewServer(raw, lb.WithWeight(weight))
		if err != nil {
			return nil, fmt.Errorf("invalid value for flag -backend: %w", err)
		}
		if seen[s.Name()] {
			return nil, fmt.Errorf("invalid value for flag -backend: %s given twice", s.Name())
		}
		seen[s.Name()] = true
		servers = append(servers, s)
	}
	return servers, nil
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("routes", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8080", "address to serve the routes on")
	adminAddr := fs.String("admin-addr", "127.0.0.1:9090", "address of the operator listener, which serves /status and /metrics; keep it off the public network")
	checkPath := fs.String("check-path", "/", "path of the health checks")
	var backends backendFlag
	fs.Var(&backends, "backend", "a server to balance, as URL or URL=weight (repeatable; default: three demo backends); a URL with = in its path or query needs the =weight")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	// Errors found after parsing are reported as the flag package reports
	// its own: the error, then the usage.
	usage := func(err error) error {
		fmt.Fprintln(fs.Output(), err)
		fs.Usage()
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return usage(fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if *adminAddr == "" {
		return usage(errors.New("invalid value for flag -admin-addr: empty (the operator listener is required)"))
	}
	servers, err := backends.servers()
	if err != nil {
		return usage(err)
	}
	logger := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))

	if len(servers) == 0 {
		demo, stopDemo, err := startDemoBackends()
		if err != nil {
			return err
		}
		defer stopDemo()
		servers = demo
	}
	pool, err := lb.NewPool(servers...)
	if err != nil {
		return err
	}
	checker, err := lb.NewHealthChecker(pool, lb.WithCheckPath(*checkPath),
		lb.WithCheckInterval(2*time.Second, time.Second), lb.WithCheckSlowStart(10*time.Second),
		lb.WithCheckLogger(logger))
	if err != nil {
		return err
	}
	mux, estimators, err := routes(pool, logger)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	adminLn, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		ln.Close()
		return err
	}
	srv := newHTTPServer(mux)
	adminSrv := newHTTPServer(adminRoutes(pool, estimators))
	base, adminBase := "http://"+ln.Addr().String(), "http://"+adminLn.Addr().String()
	fmt.Fprintf(stdout, "serving %d servers on %s\n", pool.Len(), base)
	fmt.Fprintf(stdout, "operator listener on %s: %s/status %s/metrics\n", adminBase, adminBase, adminBase)
	for _, r := range routeNames {
		fmt.Fprintf(stdout, "  %s/%s/\n", base, r)
	}
	fmt.Fprintf(stdout, "try: curl %s/round-robin/\n", base)

	checkCtx, stopChecks := context.WithCancel(context.Background())
	checked := make(chan error, 1)
	go func() { checked <- checker.Run(checkCtx) }()
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	go func() { served <- adminSrv.Serve(adminLn) }()

	select {
	case err = <-served: // failed to serve
	case <-ctx.Done():
	}
	// Shut both down; in-flight requests finish.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	serr := errors.Join(srv.Shutdown(shutdownCtx), adminSrv.Shutdown(shutdownCtx))
	cancel()
	if err == nil {
		err = serr
		<-served
	}
	<-served
	stopChecks()
	if cerr := <-checked; err == nil {
		err = cerr
	}
	if err == nil {
		fmt.Fprintln(stdout, "stopped")
	}
	return err
}

var routeNames = []string{"round-robin", "least-connections", "random", "weighted", "p2c", "peak-ewma", "adaptive", "hash", "sticky"}

// userKey keys /hash/ by the X-User header, or else by the client's
// address.
func userKey() lb.KeyFunc {
	byUser, byIP := lb.KeyHeader("X-User"), lb.KeyClientIP()
	return func(r *http.Request) string {
		if k := byUser(r); k != "" {
			return k
		}
		return byIP(r)
	}
}

// newHTTPServer returns a server for h with timeouts for every phase of a
// request.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// adminRoutes serves the operator's handlers: the status page of pool,
// with the estimates of the latency-aware balancers, and its metrics in
// the Prometheus text format.
func adminRoutes(pool *lb.Pool, estimators []lb.StatusEstimator) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /status", lb.StatusHandler(pool, estimators...))
	mux.Handle("GET /metrics", lb.MetricsHandler(pool))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "lb demo, operator listener:\n  /status\n  /metrics")
	})
	return mux
}

// routes mounts one proxy per algorithm, all over the same pool, and
// returns the latency-aware balancers for the status page.
func routes(pool *lb.Pool, logger *slog.Logger) (*http.ServeMux, []lb.StatusEstimator, error) {
	balancers := map[string]func(*lb.Pool, ...lb.Option) (lb.Balancer, error){
		"round-robin":       adapt(lb.NewRoundRobin),
		"least-connections": adapt(lb.NewLeastConn),
		"random":            adapt(lb.NewRandom),
		"weighted":          adapt(lb.NewWeightedRoundRobin),
		"p2c":               adapt(lb.NewP2C),
		"peak-ewma":         adapt(lb.NewPeakEWMA),
		"adaptive":          adapt(lb.NewAdaptive),
		"hash": func(p *lb.Pool, opts ...lb.Option) (lb.Balancer, error) {
			return lb.NewConsistentHash(p, userKey(), append(opts, lb.WithBoundedLoad(1.25))...)
		},
		"sticky": adapt(lb.NewRoundRobin),
	}
	mux := http.NewServeMux()
	var estimators []lb.StatusEstimator
	for _, name := range routeNames {
		b, err := balancers[name](pool)
		if err != nil {
			return nil, nil, err
		}
		if e, ok := b.(lb.Estimator); ok {
			estimators = append(estimators, lb.StatusEstimator{Name: "/" + name + "/", Estimator: e})
		}
		opts := []lb.ProxyOption{lb.WithProxyLogger(logger)}
		if name == "sticky" {
			opts = append(opts, lb.WithStickyCookie("lb-demo", stickySecret, nil))
		}
		proxy, err := lb.NewProxy(b, opts...)
		if err != nil {
			return nil, nil, err
		}
		mux.Handle("/"+name+"/", http.StripPrefix("/"+name, proxy))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "lb demo: one pool, one balancer per route")
		for _, name := range routeNames {
			fmt.Fprintf(w, "  /%s/\n", name)
		}
	})
	return mux, estimators, nil
}

func adapt[B lb.Balancer](f func(*lb.Pool, ...lb.Option) (B, error)) func(*lb.Pool, ...lb.Option) (lb.Balancer, error) {
	return func(p *lb.Pool, opts ...lb.Option) (lb.Balancer, error) {
		return f(p, opts...)
	}
}

// stickySecret signs the /sticky/ cookies. A real service reads it from
// its secret store, and shares it between its proxy instances.
var stickySecret = []byte("lb demo secret, not for production")

// startDemoBackends starts three servers on loopback that answer with their
// names; gamma is slower. Their weights are 3, 2 and 1.
func startDemoBackends() ([]*lb.Server, func(), error) {
	demos := []struct {
		name   string
		weight int
		delay  time.Duration
	}{
		{"alpha", 3, 0},
		{"beta", 2, 0},
		{"gamma", 1, 50 * time.Millisecond},
	}
	var servers []*lb.Server
	var stops []func()
	stopAll := func() {
		for _, stop := range stops {
			stop()
		}
	}
	for _, d := range demos {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		srv := &http.Server{
			ReadHeaderTimeout: 5 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(d.delay):
				case <-r.Context().Done():
					return
				}
				fmt.Fprintf(w, "backend %s: %s %s\n", d.name, r.Method, r.URL.Path)
			}),
		}
		go func() { _ = srv.Serve(ln) }()
		stops = append(stops, func() { _ = srv.Close() })
		s, err := lb.NewServer("http://"+ln.Addr().String(), lb.WithName(d.name), lb.WithWeight(d.weight))
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		servers = append(servers, s)
	}
	return servers, stopAll, nil
}
