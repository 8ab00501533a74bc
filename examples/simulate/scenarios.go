package main

// equalServers returns n servers of 4 workers and 10 ms mean service.
func equalServers(n int) []serverSpec {
	out := make([]serverSpec, n)
	for i := range out {
		out[i] = serverSpec{workers: 4, service: 0.010, slowdown: 1, weight: 1}
	}
	return out
}

// scenarios are the presets, in the order they are reported.
var scenarios = []scenario{
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
		title:     "10 independent balancers over 4 servers, one 10× slower",
		instances: 10,
		servers: func() []serverSpec {
			s := equalServers(4)
			s[3].slowdown = 10
			return s
		}(),
	},
}
