// Command dynamic changes a pool at run time through an admin API, while a
// least-connections proxy serves traffic over it.
//
//	go run ./examples/dynamic
//	curl 127.0.0.1:8080/                                   # traffic
//	curl 127.0.0.1:8081/admin/                             # the pool, as JSON
//	curl -X POST -H 'Content-Type: application/json' 127.0.0.1:8081/demo  # start one more demo backend and add it
//	curl -X POST -H 'Content-Type: application/json' -d '{"url":"http://127.0.0.1:9000","weight":2}' 127.0.0.1:8081/admin/
//	curl -X POST -H 'Content-Type: application/json' '127.0.0.1:8081/admin/drain?name=demo-1'  # drain, then remove
//	curl -X DELETE -H 'Content-Type: application/json' '127.0.0.1:8081/admin/?name=demo-2'     # remove at once
//
// The admin API listens on its own loopback address, apart from traffic.
// Its changes, and POST /demo, must be sent as JSON (Content-Type:
// application/json), and requests from web pages (with an Origin header)
// are refused.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
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

// demos starts demo backends on loopback and stops them all at the end.
type demos struct {
	mu    sync.Mutex
	n     int
	stops []func()
}

func (d *demos) start() (*lb.Server, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	name := fmt.Sprintf("demo-%d", d.n)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "backend %s\n", name)
		}),
	}
	go func() { _ = srv.Serve(ln) }()
	d.stops = append(d.stops, func() { _ = srv.Close() })
	return lb.NewServer("http://"+ln.Addr().String(), lb.WithName(name))
}

func (d *demos) stopAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, stop := range d.stops {
		stop()
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dynamic", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8080", "address for traffic")
	adminAddr := fs.String("admin", "127.0.0.1:8081", "address for the admin API (keep it private)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))

	var d demos
	defer d.stopAll()
	var pool lb.Pool
	for range 2 {
		s, err := d.start()
		if err != nil {
			return err
		}
		if err := pool.Add(s); err != nil {
			return err
		}
	}
	lc, err := lb.NewLeastConn(&pool)
	if err != nil {
		return err
	}
	proxy, err := lb.NewProxy(lc, lb.WithProxyLogger(logger))
	if err != nil {
		return err
	}

	adminAPI, err := lb.AdminHandler(&pool)
	if err != nil {
		return err
	}
	admin := http.NewServeMux()
	admin.Handle("/admin/", http.StripPrefix("/admin", adminAPI))
	admin.HandleFunc("POST /demo", func(w http.ResponseWriter, r *http.Request) {
		// The admin API's rules: no request from a web page (a browser
		// adds Origin), and JSON only, which a page cannot send across
		// sites without a CORS preflight.
		if _, ok := r.Header["Origin"]; ok {
			http.Error(w, "requests from web pages are refused", http.StatusForbidden)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			http.Error(w, "send Content-Type: application/json", http.StatusUnsupportedMediaType)
			return
		}
		s, err := d.start()
		if err == nil {
			err = pool.Add(s)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "added %s at %s\n", s.Name(), s.URL())
	})

	servers := []*http.Server{
		{Handler: proxy, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute},
		{Handler: admin, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute},
	}
	var listeners []net.Listener
	for _, a := range []string{*addr, *adminAddr} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, ln)
	}
	fmt.Fprintf(stdout, "traffic on http://%s/\nadmin on http://%s/admin/\n", listeners[0].Addr(), listeners[1].Addr())

	errs := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errs <- srv.Serve(listeners[i]) }()
	}
	var serveErr error
	select {
	case serveErr = <-errs:
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil && serveErr == nil {
			serveErr = err
		}
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}
