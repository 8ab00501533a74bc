package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// A herd compares the load-aware balancers as the number of independent
// instances sharing the same servers grows: the same servers and traffic,
// run as scenarios of 1, 8 and 32 instances.
type herd struct {
	title string
	// scenarios are the scenarios of 1, 8 and 32 instances.
	scenarios [3]string
}

var herds = []herd{
	{title: "4 servers, one 10× slower", scenarios: [3]string{"slow", "herd", "herd-32"}},
	{title: "16 servers, 4 of them at 0.25× speed", scenarios: [3]string{"het", "herd-het", "herd-het-32"}},
}

// herdBalancers are the rows of a herd table.
var herdBalancers = []string{"oracle", "least-conn", "p2c", "peak-ewma", "adaptive"}

// writeHerds writes, for every herd and load whose three scenarios were
// run, each balancer's p99 with 1, 8 and 32 instances, the latter two also
// as multiples of the one-instance figure.
func writeHerds(w io.Writer, all []*result) {
	type key struct {
		scenario, algorithm string
		load                float64
	}
	byKey := map[key]*result{}
	var loads []float64
	for _, r := range all {
		byKey[key{r.scenario, r.algorithm, r.load}] = r
		if !slices.Contains(loads, r.load) {
			loads = append(loads, r.load)
		}
	}
	slices.Sort(loads)
	var b strings.Builder
	for _, h := range herds {
		for _, load := range loads {
			if byKey[key{h.scenarios[0], "oracle", load}] == nil || byKey[key{h.scenarios[1], "oracle", load}] == nil || byKey[key{h.scenarios[2], "oracle", load}] == nil {
				continue
			}
			fmt.Fprintf(&b, "\n### %s, load %.0f%%\n\n| algorithm | 1 instance | 8 instances | 32 instances |\n| --- | --- | --- | --- |\n", h.title, load*100)
			for _, name := range herdBalancers {
				one := byKey[key{h.scenarios[0], name, load}]
				if one == nil {
					continue
				}
				base := one.percentile(0.99)
				cells := []string{fmt.Sprintf("%.1f", base*1000)}
				for _, sc := range h.scenarios[1:] {
					r := byKey[key{sc, name, load}]
					if r == nil {
						cells = append(cells, "—")
						continue
					}
					p := r.percentile(0.99)
					cells = append(cells, fmt.Sprintf("%.1f (%s)", p*1000, orDash("%.2f×", p/base)))
				}
				fmt.Fprintf(&b, "| %s | %s |\n", name, strings.Join(cells, " | "))
			}
		}
	}
	if b.Len() == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Herds: p99 as independent instances share the servers\n\n"+
		"Each instance is a balancer of its own over its own Server values, so it counts only its own requests in flight, "+
		"as separate processes do; arrivals go to an instance at random. p99 in ms; in parentheses, over the one-instance p99. "+
		"The oracle is one central scheduler whatever the number of instances.\n%s", b.String())
}

// writeSubsets writes the subsetting scenarios side by side: for each, how
// evenly connections and requests spread over the servers.
func writeSubsets(w io.Writer, all []*result) {
	var lines []string
	for _, r := range all {
		sc, ok := scenarioByName(r.scenario)
		if !ok || sc.subset == nil {
			continue
		}
		kind := "deterministic (lb.SubsetOf)"
		if sc.subset.random {
			kind = "random"
		}
		lines = append(lines, fmt.Sprintf("| %d | %d | %d | %s | %s | %.2f | %.2f | %.1f |",
			r.instances, len(sc.servers), sc.subset.size, kind, r.algorithm, r.connSpread, r.loadSpread, r.percentile(0.99)*1000))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Subsetting: how evenly connections and requests spread\n\n"+
		"Each instance balances over its own subset of the servers only; runs of 10 virtual seconds over 100 servers, "+
		"4 over 1,000 (each server still gets thousands of requests). connections max/mean is over the servers of the "+
		"number of instances whose subset holds each; requests max/mean of the picks each server got. Every server can have "+
		"the same number of connections only when instances × size is a multiple of the servers' number; otherwise the best "+
		"plan gives some servers one more than others.\n\n"+
		"| instances | servers | size | subsets | algorithm | connections max/mean | requests max/mean | p99 (ms) |\n"+
		"| --- | --- | --- | --- | --- | --- | --- | --- |\n%s\n", strings.Join(lines, "\n"))
}
