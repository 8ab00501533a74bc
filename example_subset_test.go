package lb_test

import (
	"fmt"

	"github.com/balancekit/lb"
)

// Each of 4 instances of a fleet uses 3 of 6 servers; together they give
// every server the same number of instances.
func ExampleSubsetOf() {
	var servers []*lb.Server
	for i := range 6 {
		s, _ := lb.NewServer(fmt.Sprintf("http://10.0.0.%d:8080", i+1))
		servers = append(servers, s)
	}
	uses := map[string]int{}
	for instance := range 4 {
		subset, _ := lb.SubsetOf(servers, instance, 4, 3)
		for _, s := range subset {
			uses[s.Name()]++
		}
	}
	for _, s := range servers {
		fmt.Println(s.Name(), uses[s.Name()])
	}
	// Output:
	// http://10.0.0.1:8080 2
	// http://10.0.0.2:8080 2
	// http://10.0.0.3:8080 2
	// http://10.0.0.4:8080 2
	// http://10.0.0.5:8080 2
	// http://10.0.0.6:8080 2
}

// A Subset follows the fleet's whole pool; the instance balances within its
// part of it.
func ExampleNewSubset() {
	all, _ := lb.NewPool()
	for i := range 10 {
		s, _ := lb.NewServer(fmt.Sprintf("http://10.0.0.%d:8080", i+1))
		_ = all.Add(s)
	}
	subset, err := lb.NewSubset(all, 2, 5, 4) // instance 2 of 5, 4 servers each
	if err != nil {
		fmt.Println(err)
		return
	}
	defer subset.Close()
	p2c, _ := lb.NewP2C(subset.Pool())
	res, _ := p2c.Pick(nil)
	res.Done(lb.DoneInfo{})
	fmt.Println(subset.Pool().Len(), "servers;", res.Server.Stats().Requests, "request on one of them")
	// Output:
	// 4 servers; 1 request on one of them
}
