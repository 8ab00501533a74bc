package lb_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/balancekit/lb"
)

// mustServer is for examples only: real code handles the error.
func mustServer(raw string, opts ...lb.ServerOption) *lb.Server {
	s, err := lb.NewServer(raw, opts...)
	if err != nil {
		panic(err)
	}
	return s
}

func ExampleRoundRobin() {
	pool, err := lb.NewPool(
		mustServer("http://10.0.0.1:8080"),
		mustServer("http://10.0.0.2:8080"),
		mustServer("http://10.0.0.3:8080"),
	)
	if err != nil {
		panic(err)
	}
	rr, err := lb.NewRoundRobin(pool, lb.WithRotationStart(0))
	if err != nil {
		panic(err)
	}
	for range 4 {
		res, err := rr.Pick(nil)
		if err != nil {
			panic(err)
		}
		fmt.Println(res.Server.URL().Host)
		res.Done(lb.DoneInfo{})
	}
	// Output:
	// 10.0.0.1:8080
	// 10.0.0.2:8080
	// 10.0.0.3:8080
	// 10.0.0.1:8080
}

func ExampleWeightedRoundRobin() {
	pool, _ := lb.NewPool(
		mustServer("http://10.0.0.1:8080", lb.WithName("a"), lb.WithWeight(5)),
		mustServer("http://10.0.0.2:8080", lb.WithName("b")),
		mustServer("http://10.0.0.3:8080", lb.WithName("c")),
	)
	wrr, _ := lb.NewWeightedRoundRobin(pool, lb.WithRotationStart(0))
	for range 7 {
		res, _ := wrr.Pick(nil)
		fmt.Print(res.Server.Name(), " ")
		res.Done(lb.DoneInfo{})
	}
	fmt.Println()
	// Output:
	// a a b a c a a
}

func ExampleLeastConn() {
	a := mustServer("http://10.0.0.1:8080", lb.WithName("a"))
	b := mustServer("http://10.0.0.2:8080", lb.WithName("b"))
	pool, _ := lb.NewPool(a, b)
	lc, _ := lb.NewLeastConn(pool)

	// A long request is in flight on a.
	long := a.Acquire()

	res, _ := lc.Pick(nil)
	fmt.Println("picked", res.Server.Name(), "while a has", a.InFlight(), "in flight")
	res.Done(lb.DoneInfo{})

	long.Done(lb.DoneInfo{})
	fmt.Println("in flight:", a.InFlight(), b.InFlight())
	// Output:
	// picked b while a has 1 in flight
	// in flight: 0 0
}

func ExampleRandom() {
	pool, _ := lb.NewPool(
		mustServer("http://10.0.0.1:8080", lb.WithName("small"), lb.WithWeight(1)),
		mustServer("http://10.0.0.2:8080", lb.WithName("big"), lb.WithWeight(3)),
	)
	// A seeded source makes the draws reproducible.
	rd, _ := lb.NewRandom(pool, lb.WithRand(rand.New(rand.NewPCG(1, 2)).IntN))
	counts := map[string]int{}
	for range 100_000 {
		res, _ := rd.Pick(nil)
		counts[res.Server.Name()]++
		res.Done(lb.DoneInfo{})
	}
	fmt.Printf("big %.0f%%, small %.0f%%\n", float64(counts["big"])/1000, float64(counts["small"])/1000)
	// Output:
	// big 75%, small 25%
}

func ExampleP2C() {
	servers := []*lb.Server{
		mustServer("http://10.0.0.1:8080", lb.WithName("a")),
		mustServer("http://10.0.0.2:8080", lb.WithName("b")),
		mustServer("http://10.0.0.3:8080", lb.WithName("c")),
	}
	pool, _ := lb.NewPool(servers...)
	p2c, _ := lb.NewP2C(pool, lb.WithRand(rand.New(rand.NewPCG(1, 2)).IntN))

	// Hold 300 requests: the loads stay close together.
	var held []lb.PickResult
	for range 300 {
		res, _ := p2c.Pick(nil)
		held = append(held, res)
	}
	for _, s := range servers {
		fmt.Println(s.Name(), s.InFlight() >= 95 && s.InFlight() <= 105)
	}
	for _, res := range held {
		res.Done(lb.DoneInfo{})
	}
	// Output:
	// a true
	// b true
	// c true
}

func ExamplePool() {
	a := mustServer("http://10.0.0.1:8080", lb.WithName("a"))
	b := mustServer("http://10.0.0.2:8080", lb.WithName("b"))
	pool, _ := lb.NewPool(a)
	rr, _ := lb.NewRoundRobin(pool, lb.WithRotationStart(0))

	// The pool changes while balancers use it.
	if err := pool.Add(b); err != nil {
		panic(err)
	}
	fmt.Println(pool.Len(), "servers, version", pool.Version())
	if err := pool.Add(mustServer("http://10.0.0.9:8080", lb.WithName("a"))); errors.Is(err, lb.ErrDuplicateServer) {
		fmt.Println(err)
	}

	a.SetHealthy(false) // a health check would do this
	res, _ := rr.Pick(nil)
	fmt.Println("picked", res.Server.Name())
	res.Done(lb.DoneInfo{})

	_ = pool.Remove(b)
	if _, err := rr.Pick(nil); errors.Is(err, lb.ErrNoServer) {
		fmt.Println(err)
	}
	// Output:
	// 2 servers, version 2
	// lb: duplicate server: "a"
	// picked b
	// lb: no server available
}

func ExampleNewServer() {
	_, err := lb.NewServer("localhost:8080")
	fmt.Println(err)
	_, err = lb.NewServer("http://localhost:8080", lb.WithWeight(-1))
	fmt.Println(err)
	// Output:
	// lb: server URL "localhost:8080": missing scheme or host (want scheme://host[:port])
	// lb: server URL "http://localhost:8080": weight -1 is negative
}

func ExampleServer_Stats() {
	s := mustServer("http://10.0.0.1:8080")
	show := func() {
		st := s.Stats()
		fmt.Printf("%s: state %s, in flight %d, requests %d, failures %d (5xx %d), p50 %v\n",
			st.Name, st.State, st.InFlight, st.Requests, st.Failures, st.Errors.Status5xx, st.P50)
	}
	res := s.Acquire()
	show()
	res.Done(lb.DoneInfo{StatusCode: 502, Duration: 1500 * time.Microsecond})
	show()
	// Output:
	// http://10.0.0.1:8080: state up, in flight 1, requests 0, failures 0 (5xx 0), p50 0s
	// http://10.0.0.1:8080: state up, in flight 0, requests 1, failures 1 (5xx 1), p50 1.441792ms
}

func ExampleHealthChecker() {
	flaky := true
	api, _ := lb.NewHandlerServer("api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if flaky {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	pool, _ := lb.NewPool(api)
	hc, _ := lb.NewHealthChecker(pool, lb.WithCheckRiseFall(1, 2), lb.WithCheckLogger(slog.New(slog.DiscardHandler)))

	// Run(ctx) probes on its own schedule; CheckOnce probes once, now.
	for range 2 {
		hc.CheckOnce(context.Background())
	}
	fmt.Println("healthy:", api.Healthy())
	flaky = false
	hc.CheckOnce(context.Background())
	fmt.Println("healthy:", api.Healthy())
	// Output:
	// healthy: false
	// healthy: true
}

func ExampleProxy() {
	// Three backends; in real life these are other services.
	var urls []string
	for _, name := range []string{"a", "b", "c"} {
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", name, r.URL.Path)
		}))
		defer backend.Close()
		urls = append(urls, backend.URL)
	}

	pool := new(lb.Pool)
	for _, u := range urls { // "http://10.0.0.1:8080", ...
		s, err := lb.NewServer(u)
		if err != nil {
			panic(err)
		}
		if err := pool.Add(s); err != nil {
			panic(err)
		}
	}
	bal, err := lb.NewRoundRobin(pool, lb.WithRotationStart(0))
	if err != nil {
		panic(err)
	}
	proxy, err := lb.NewProxy(bal)
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/api/", proxy) // or http.ListenAndServe("127.0.0.1:8080", proxy)
	front := httptest.NewServer(mux)
	defer front.Close()

	for range 4 {
		resp, err := http.Get(front.URL + "/api/users")
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(body))
	}
	// Output:
	// a /api/users
	// b /api/users
	// c /api/users
	// a /api/users
}

func ExampleNewHandlerServer() {
	// Balance between two in-process versions of a handler: no network.
	handlerV1 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "v1") })
	handlerV2 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "v2") })

	v1, _ := lb.NewHandlerServer("v1", handlerV1, lb.WithWeight(3))
	v2, _ := lb.NewHandlerServer("v2", handlerV2)
	pool, _ := lb.NewPool(v1, v2)
	wrr, _ := lb.NewWeightedRoundRobin(pool, lb.WithRotationStart(0))
	proxy, _ := lb.NewProxy(wrr) // v1 v1 v2 v1 v1 v1 v2 v1 ...

	for range 8 {
		w := httptest.NewRecorder()
		proxy.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		fmt.Print(w.Body.String(), " ")
	}
	fmt.Println()
	// Output:
	// v1 v1 v2 v1 v1 v1 v2 v1
}

// ExampleTCPProxy balances TCP connections over two echo servers with
// least connections.
func ExampleTCPProxy() {
	var backends []*lb.Server
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		defer ln.Close()
		go func() { // an echo server
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_, _ = io.Copy(c, c)
				}()
			}
		}()
		backends = append(backends, mustServer("tcp://"+ln.Addr().String()))
	}
	pool, _ := lb.NewPool(backends...)
	lc, _ := lb.NewLeastConn(pool)
	proxy, err := lb.NewTCPProxy(lc, lb.WithIdleTimeout(time.Minute))
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go proxy.Serve(ln)
	defer proxy.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Fprint(c, "hello over TCP")
	c.(*net.TCPConn).CloseWrite() // the echo server sees the end and closes
	answer, _ := io.ReadAll(c)
	fmt.Println(string(answer))
	// Output:
	// hello over TCP
}
