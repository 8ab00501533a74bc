package lb_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/balancekit/lb"
)

// An Adaptive balancer learns from the durations Done reports that one
// server is ten times slower than the other, and all but stops sending it
// requests; it still tries it now and then, in case it has recovered. The
// pool's clock is set so that the example runs on virtual time.
func ExampleNewAdaptive() {
	fast, _ := lb.NewServer("http://10.0.0.1:8080", lb.WithName("fast"))
	slow, _ := lb.NewServer("http://10.0.0.2:8080", lb.WithName("slow"))
	pool, _ := lb.NewPool(fast, slow)
	now := time.Unix(1_000_000, 0)
	pool.SetClock(func() time.Time { return now })
	bal, _ := lb.NewAdaptive(pool, lb.WithRand(rand.New(rand.NewPCG(1, 2)).IntN))

	picks := map[string]int{}
	for range 10_000 { // 10 s of requests, one every millisecond
		res, err := bal.Pick(nil)
		if err != nil {
			panic(err)
		}
		took := 10 * time.Millisecond
		if res.Server == slow {
			took = 100 * time.Millisecond
		}
		now = now.Add(time.Millisecond)
		res.Done(lb.DoneInfo{StatusCode: 200, Duration: took})
		picks[res.Server.Name()]++
	}
	fmt.Println("fast:", picks["fast"], "slow:", picks["slow"])
	// Output: fast: 9996 slow: 4
}
