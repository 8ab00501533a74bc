package lb_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/balancekit/lb"
)

// ExampleConsistentHash sends every request of one user to the same server,
// the same in every process that has servers of the same names.
func ExampleConsistentHash() {
	pool, _ := lb.NewPool(
		mustServer("http://10.0.0.1:8080", lb.WithName("cache-1")),
		mustServer("http://10.0.0.2:8080", lb.WithName("cache-2")),
		mustServer("http://10.0.0.3:8080", lb.WithName("cache-3")),
	)
	ch, err := lb.NewConsistentHash(pool, lb.KeyHeader("X-User"))
	if err != nil {
		panic(err)
	}
	pickFor := func(user string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-User", user)
		res, err := ch.Pick(r)
		if err != nil {
			panic(err)
		}
		defer res.Done(lb.DoneInfo{})
		return res.Server.Name()
	}
	for _, user := range []string{"alice", "bob", "carol", "alice", "bob"} {
		fmt.Println(user, "->", pickFor(user))
	}
	// Output:
	// alice -> cache-3
	// bob -> cache-2
	// carol -> cache-3
	// alice -> cache-3
	// bob -> cache-2
}

// ExampleBalancerFunc writes a custom balancer: prefer the servers labelled
// by name as local, fall back to any available server. It keeps the Pick
// contract through Server.Acquire, so in-flight counts, drains and the
// proxy's statistics work as with the built-in balancers.
func ExampleBalancerFunc() {
	pool, _ := lb.NewPool(
		mustServer("http://10.0.0.1:8080", lb.WithName("remote-1")),
		mustServer("http://10.0.1.1:8080", lb.WithName("local-1")),
	)
	preferLocal := lb.BalancerFunc(func(r *http.Request) (lb.PickResult, error) {
		servers := pool.Servers()
		for _, local := range []bool{true, false} {
			for _, s := range servers {
				if s.Available() && strings.HasPrefix(s.Name(), "local-") == local {
					if res := s.Acquire(); res.Server != nil {
						return res, nil
					}
				}
			}
		}
		return lb.PickResult{}, lb.ErrNoServer
	})

	res, err := preferLocal.Pick(nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Server.Name(), "in flight:", res.Server.InFlight())
	res.Done(lb.DoneInfo{StatusCode: http.StatusOK})
	fmt.Println(res.Server.Name(), "in flight:", res.Server.InFlight())

	pool.Server("local-1").SetHealthy(false)
	res, _ = preferLocal.Pick(nil)
	fmt.Println(res.Server.Name())
	res.Done(lb.DoneInfo{})
	// Output:
	// local-1 in flight: 1
	// local-1 in flight: 0
	// remote-1
}

// ExampleWithStickyCookie pins a client to the server that answered its
// first request.
func ExampleWithStickyCookie() {
	var servers []*lb.Server
	for _, name := range []string{"a", "b", "c"} {
		s, _ := lb.NewHandlerServer(name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, name)
		}))
		servers = append(servers, s)
	}
	pool, _ := lb.NewPool(servers...)
	rr, _ := lb.NewRoundRobin(pool, lb.WithRotationStart(0))
	proxy, err := lb.NewProxy(rr, lb.WithStickyCookie("lb", []byte("a secret of 16 bytes or more"), nil))
	if err != nil {
		panic(err)
	}

	get := func(cookie *http.Cookie) (string, *http.Cookie) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		proxy.ServeHTTP(w, r)
		var set *http.Cookie
		if cs := w.Result().Cookies(); len(cs) > 0 {
			set = cs[0]
		}
		return w.Body.String(), set
	}
	first, cookie := get(nil)
	fmt.Println("first:", first, "cookie set:", cookie != nil)
	for range 3 {
		body, _ := get(cookie) // round robin alone would answer b, c, a
		fmt.Println("with the cookie:", body)
	}
	body, _ := get(nil)
	fmt.Println("without:", body)
	// Output:
	// first: a cookie set: true
	// with the cookie: a
	// with the cookie: a
	// with the cookie: a
	// without: b
}

// ExampleStatusHandler serves a pool's state as JSON (or as an HTML page to
// a browser), for operators.
func ExampleStatusHandler() {
	pool, _ := lb.NewPool(
		mustServer("http://10.0.0.1:8080", lb.WithName("api-1")),
		mustServer("http://10.0.0.2:8080", lb.WithName("api-2"), lb.WithWeight(2)),
	)
	pool.Server("api-2").SetHealthy(false)
	status := lb.StatusHandler(pool) // mount it on an operators' listener

	w := httptest.NewRecorder()
	status.ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	var st lb.PoolStatus
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		panic(err)
	}
	fmt.Println("available:", st.Available)
	for _, s := range st.Servers {
		fmt.Println(s.Name, "weight", s.Weight, "healthy", s.Healthy)
	}
	// Output:
	// available: 1
	// api-1 weight 1 healthy true
	// api-2 weight 2 healthy false
}

// ExampleAdminHandler adds a server to a running pool and drains another
// out of it, as an operator would with curl.
func ExampleAdminHandler() {
	pool, _ := lb.NewPool(mustServer("http://10.0.0.1:8080", lb.WithName("old")))
	admin, err := lb.AdminHandler(pool)
	if err != nil {
		panic(err)
	}
	do := func(method, target, body string) {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, r)
		fmt.Println(method, target, w.Code)
	}
	do("POST", "/", `{"url": "http://10.0.0.2:8080", "name": "new", "weight": 2}`)
	do("POST", "/drain?name=old", "")
	for _, s := range pool.Servers() {
		fmt.Println(s.Name(), s.Weight())
	}
	// Output:
	// POST / 201
	// POST /drain?name=old 200
	// new 2
}
