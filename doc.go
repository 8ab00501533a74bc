// Package lb spreads requests over a set of backend servers with one of
// several load-balancing algorithms.
//
// A [Server] is one backend: a URL ([NewServer]) or an in-process
// [net/http.Handler] ([NewHandlerServer]). A [Pool] is the live set of
// servers; it may change at any time while traffic flows. A [Balancer]
// chooses a server from a pool for each request, with one method, Pick.
//
// # Algorithms
//
//   - [RoundRobin] takes the servers in turn and ignores weights.
//   - [WeightedRoundRobin] takes them in proportion to weight, in nginx's
//     smooth interleaved order (a a b a c a a for weights 5, 1, 1).
//   - [Random] draws at random, in proportion to weight.
//   - [LeastConn] takes the server with the fewest requests in flight
//     relative to its weight; ties are broken at random.
//   - [P2C] draws two servers at random and takes the less loaded: nearly
//     LeastConn's balance at O(1) cost.
//   - [ConsistentHash] sends equal keys (client address, header, cookie,
//     path) to the same server, with bounded loads as an option.
//   - [PeakEWMA] weighs two random servers by a peak-EWMA latency estimate
//     times their requests in flight (Finagle's and Linkerd's balancer).
//   - [Adaptive] learns each server's speed and failure rate from Done and
//     takes the server of shortest expected delay among two random ones
//     (more when both are slow).
//
// [Proxy] turns any balancer into an [http.Handler], with safe retries,
// passive health checks and sticky cookies; [HealthChecker] probes the
// servers of a pool; [StatusHandler] and [AdminHandler] show and change a
// pool at run time. [TCPProxy] balances TCP connections with the same
// balancers ("tcp://host:port" servers, PROXY protocol, splice on Linux).
// [WatchDNS] keeps a pool in step with DNS A, AAAA or SRV records, and
// [Server.SetWeight] changes a server's weight in place.
//
// Every balancer skips unhealthy and draining servers and servers of weight
// 0, and returns an error wrapping [ErrNoServer] when none is left. Every
// balancer is safe for concurrent use, and its Pick neither blocks, locks nor
// allocates (the weighted and hashing balancers build a table on the first
// pick after each change of the pool's membership or of a weight, and reuse
// it until the next). Every random choice goes through [WithRand], so tests can fix it.
//
// # Pick and Done
//
// A successful Pick counts one more request in flight on the chosen server
// and returns a [PickResult] whose Done func must be called exactly once,
// when the request has ended:
//
//	res, err := bal.Pick(nil)
//	if err != nil {
//		return err // errors.Is(err, lb.ErrNoServer)
//	}
//	defer res.Done(lb.DoneInfo{})
//	// ... use res.Server ...
//
// Done decrements the in-flight count (which LeastConn and P2C compare) and
// records the outcome in the server's [Stats]; PeakEWMA and Adaptive learn
// from its [DoneInfo], so a caller should fill it. This is gRPC's Pick/Done
// model: it keeps the load-aware algorithms right under concurrency, and it
// works for callers that are not HTTP at all.
package lb
