package main

import "fmt"

// equalServers returns n servers of 4 workers and 10 ms mean service.
func equalServers(n int) []serverSpec {
	out := make([]serverSpec, n)
	for i := range out {
		out[i] = serverSpec{workers: 4, service: 0.010, slowdown: 1, weight: 1}
	}
	return out
}

// scenarios are the presets, in the order they are reported.
var scenarios = append([]scenario{
	{
		name:    "equal",
		title:   "4 equal servers",
		servers: equalServers(4),
	},
	{
		name:  "slow",
		title: "4 servers, one 10× slower",
		servers: func() []serverSpec {
			s := equalServers(4)
			s[3].slowdown = 10
			return s
		}(),
	},
	{
		name:  "hetero",
		title: "capacities 1:2:3:4 with matching weights",
		servers: []serverSpec{
			{workers: 2, service: 0.010, slowdown: 1, weight: 1},
			{workers: 4, service: 0.010, slowdown: 1, weight: 2},
			{workers: 6, service: 0.010, slowdown: 1, weight: 3},
			{workers: 8, service: 0.010, slowdown: 1, weight: 4},
		},
	},
	{
		name:    "failure",
		title:   "one of 4 fails for 20% of the run, comes back cold",
		servers: equalServers(4),
		failure: &failure{server: 0, start: 0.3, end: 0.5, detect: 2, warmup: 5, cool: 5},
		// At 80% the three servers left are overloaded while the fourth
		// is down, whatever the algorithm; 50% shows the recovery.
		chartLoad: 0.5,
	},
	{
		name:      "failure-slowstart",
		title:     "the same, with a 20 s slow start",
		servers:   equalServers(4),
		failure:   &failure{server: 0, start: 0.3, end: 0.5, detect: 2, warmup: 5, cool: 5, slowStart: 20},
		chartLoad: 0.5,
	},
	{
		name:    "bursty",
		title:   "4 equal servers, arrivals alternating 1.6× and 0.4× every 2 s",
		servers: equalServers(4),
		burst:   2,
	},
	{
		name:      "herd",
		title:     "8 independent balancers over 4 servers, one 10× slower",
		instances: 8,
		servers:   oneSlow(),
	},
	{
		name:      "herd-32",
		title:     "32 independent balancers over 4 servers, one 10× slower",
		instances: 32,
		servers:   oneSlow(),
	},
	{
		name:    "het",
		title:   "16 servers, 4 of them at 0.25× speed",
		servers: slowServers(16, 4),
		loads:   []float64{0.8, 0.9},
	},
	{
		name:      "herd-het",
		title:     "8 independent balancers over het's 16 servers, 4 at 0.25× speed",
		servers:   slowServers(16, 4),
		instances: 8,
		loads:     []float64{0.8, 0.9},
	},
	{
		name:      "herd-het-32",
		title:     "32 independent balancers over het's 16 servers, 4 at 0.25× speed",
		servers:   slowServers(16, 4),
		instances: 32,
		loads:     []float64{0.8, 0.9},
	},
	{
		name:    "half-slow",
		title:   "16 servers, 8 of them at 0.25× speed",
		servers: slowServers(16, 8),
		loads:   []float64{0.8, 0.9},
	},
	{
		name:  "fast-fail",
		title: "4 servers, one answers every request with a 503 in 1 ms, no health checks",
		servers: func() []serverSpec {
			s := equalServers(4)
			s[3].failFast = true
			return s
		}(),
		// Loads are fractions of the three servers that answer.
		loads: []float64{0.5, 0.8},
	},
	{
		name:    "shift",
		title:   "4 servers, one 20× slower from 25% to 50% of the run (30 s of 120), then back",
		servers: equalServers(4),
		shift:   &shift{server: 3, start: 0.25, end: 0.5, factor: 20},
		// While it is slow, capacity is 76% of the nominal one.
		loads:     []float64{0.5, 0.7},
		chartLoad: 0.7,
	},
},
	subsetScenario(100, 12, false), subsetScenario(100, 12, true), subsetScenario(100, 20, false),
	subsetScenario(1000, 12, false), subsetScenario(1000, 20, false), subsetScenario(1000, 20, true),
)

// oneSlow returns 4 servers, the last one 10× slower.
func oneSlow() []serverSpec {
	s := equalServers(4)
	s[3].slowdown = 10
	return s
}

// subsetScenario returns a scenario of 100 instances over n equal servers,
// each instance restricted to size of them, by lb.SubsetOf or at random.
// Its runs are short (many servers make many events): 10 virtual seconds
// over 100 servers, 4 over 1,000, so each server still gets thousands of
// requests.
func subsetScenario(n, size int, random bool) scenario {
	kind, name := "deterministic", fmt.Sprintf("subset-%d-%d", n, size)
	if random {
		kind, name = "random", name+"-random"
	}
	return scenario{
		name:       name,
		title:      fmt.Sprintf("100 independent balancers over %d servers, each using %d of them (%s subsets)", n, size, kind),
		servers:    equalServers(n),
		instances:  100,
		subset:     &subsetting{size: size, random: random},
		algorithms: []string{"round-robin", "least-conn", "p2c"},
		loads:      []float64{0.8},
		duration:   min(10, 4000/float64(n)),
	}
}

// slowServers returns n servers of 4 workers and 10 ms mean service, the
// last slow of them at 0.25× speed.
func slowServers(n, slow int) []serverSpec {
	s := equalServers(n)
	for i := n - slow; i < n; i++ {
		s[i].slowdown = 4
	}
	return s
}
