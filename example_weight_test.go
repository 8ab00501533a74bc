package lb_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/balancekit/lb"
)

// A weight changes while traffic flows: the server keeps its counters, and
// the weighted order follows at once.
func ExampleServer_SetWeight() {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	a, _ := lb.NewHandlerServer("a", ok)
	b, _ := lb.NewHandlerServer("b", ok, lb.WithLabels(map[string]string{"zone": "eu-1"}))
	pool, _ := lb.NewPool(a, b)
	wrr, _ := lb.NewWeightedRoundRobin(pool, lb.WithRotationStart(0))
	picks := func() {
		var names []string
		for range 4 {
			res, _ := wrr.Pick(nil)
			names = append(names, res.Server.Name())
			res.Done(lb.DoneInfo{})
		}
		fmt.Println(strings.Join(names, " "))
	}
	picks()
	if err := b.SetWeight(3); err != nil {
		fmt.Println(err)
	}
	picks()
	fmt.Println(b.Stats().Requests, b.Labels()["zone"])
	fmt.Println(b.SetWeight(-1))
	// Output:
	// a b a b
	// b a b b
	// 5 eu-1
	// lb: server "b": SetWeight: weight -1 is negative
}
