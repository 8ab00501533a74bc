// Command tcp balances TCP connections over three in-process echo servers
// with least connections:
//
//	go run ./examples/tcp                 # a demo: 9 clients, then exit
//	go run ./examples/tcp -serve -addr 127.0.0.1:7000
//	nc 127.0.0.1 7000                     # each line comes back from a backend
//
// The demo opens -clients connections through the proxy and keeps them
// open, so that least connections spreads them evenly, prints how many
// each echo server holds, then shuts the proxy down. With -serve it
// proxies until interrupted. Everything listens on 127.0.0.1 only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
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
		slog.Error("tcp", "err", err)
		os.Exit(1)
	}
}

// errUsage marks errors in the command line.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tcp", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "127.0.0.1:0", "address the proxy listens on")
	clients := fs.Int("clients", 9, "connections the demo opens (1 to 1000)")
	serve := fs.Bool("serve", false, "proxy until interrupted instead of running the demo")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *clients < 1 || *clients > 1000 {
		return fmt.Errorf("%w: -clients %d is not between 1 and 1000", errUsage, *clients)
	}

	var backends []*echoServer
	var servers []*lb.Server
	for _, name := range []string{"alpha", "beta", "gamma"} {
		e, err := startEcho(name)
		if err != nil {
			return err
		}
		defer e.close()
		s, err := lb.NewServer("tcp://"+e.ln.Addr().String(), lb.WithName(name))
		if err != nil {
			return err
		}
		backends, servers = append(backends, e), append(servers, s)
	}
	pool, err := lb.NewPool(servers...)
	if err != nil {
		return err
	}
	lc, err := lb.NewLeastConn(pool)
	if err != nil {
		return err
	}
	proxy, err := lb.NewTCPProxy(lc, lb.WithIdleTimeout(5*time.Minute), lb.WithMaxConns(1000, false))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- proxy.Serve(ln) }()
	fmt.Fprintf(out, "tcp: proxy on %s, least connections over alpha, beta, gamma\n", ln.Addr())

	if *serve {
		<-ctx.Done()
	} else if err := demo(ln.Addr().String(), *clients, backends, out); err != nil {
		proxy.Close()
		<-served
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = proxy.Shutdown(shutdownCtx)
	if serr := <-served; !errors.Is(serr, lb.ErrTCPProxyClosed) {
		return serr
	}
	return err
}

// demo opens n connections through the proxy at addr, each checked with
// an echo, prints how many each backend holds, and closes them.
func demo(addr string, n int, backends []*echoServer, out io.Writer) error {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := fmt.Sprintf("hello %d\n", i)
		if _, err := io.WriteString(c, msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if string(got) != msg {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
	}
	var parts []string
	for _, b := range backends {
		parts = append(parts, fmt.Sprintf("%s=%d", b.name, b.open()))
	}
	fmt.Fprintf(out, "tcp: %d connections open: %s\n", n, strings.Join(parts, " "))
	return nil
}

// echoServer is a TCP echo server on 127.0.0.1.
type echoServer struct {
	name string
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	cs   map[net.Conn]struct{}
}

func startEcho(name string) (*echoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &echoServer{name: name, ln: ln, cs: map[net.Conn]struct{}{}}
	e.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.cs[c] = struct{}{}
			e.mu.Unlock()
			e.wg.Go(func() {
				defer func() {
					e.mu.Lock()
					delete(e.cs, c)
					e.mu.Unlock()
					c.Close()
				}()
				_, _ = io.Copy(c, c)
			})
		}
	})
	return e, nil
}

// open returns the number of connections the server holds.
func (e *echoServer) open() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.cs)
}

func (e *echoServer) close() {
	e.ln.Close()
	e.mu.Lock()
	for c := range e.cs {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}
