package prometheus_test

import (
	"fmt"
	"net/http"

	"github.com/balancekit/lb"
	lbprom "github.com/balancekit/lb/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
)

// A Collector registered with a registry; a service serves the registry
// with promhttp.HandlerFor on its operator listener.
func ExampleNewCollector() {
	s, err := lb.NewHandlerServer("local", http.NotFoundHandler())
	if err != nil {
		panic(err)
	}
	pool, err := lb.NewPool(s)
	if err != nil {
		panic(err)
	}
	s.Acquire().Done(lb.DoneInfo{StatusCode: http.StatusNotFound})

	c, err := lbprom.NewCollector(pool)
	if err != nil {
		panic(err)
	}
	reg := prom.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range families {
		if f.GetName() == "lb_requests_total" {
			for _, m := range f.GetMetric() {
				fmt.Println(f.GetName(), m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
			}
		}
	}
	// Output:
	// lb_requests_total local 1
}
