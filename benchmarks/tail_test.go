package benchmarks

// The tail-latency harness: real http.Server backends on 127.0.0.1, each
// with a fixed number of workers and exponential service times (so their
// capacity is real), behind lb.Proxy (itself a real http.Server), fed by
// open-loop Poisson arrivals. Each request's latency is timed from the
// moment it was scheduled to be sent, not from when the client got round
// to sending it, so a stalled client does not hide queueing (no
// coordinated omission). Every run is bounded in requests, in requests in
// flight and in time.
//
// It runs only when asked, as it takes real time and both cores:
//
//	cd benchmarks && LB_TAIL=60 go test -run TestTailLatency -v -timeout 30m
//
// LB_TAIL is the seconds each scenario may take (at most 60), shared
// evenly by the balancers, each run's share including up to 2 s of waiting
// for the last answers (the requests' timeout); LB_TAIL_SCENARIO and
// LB_TAIL_BALANCER, if set, run only the scenarios or balancers they name
// (comma-separated). LB_TAIL_SERVICE sets the mean service time (10ms
// unless set; arrivals scale with it): on a busy machine a longer one
// costs fewer requests a second, so the harness measures the balancers
// rather than its own lack of CPU.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/balancekit/lb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tailBalancer names a balancer the harness runs.
type tailBalancer struct {
	name string
	new  func(*lb.Pool) (lb.Balancer, error)
}

var tailBalancers = []tailBalancer{
	{"round-robin", func(p *lb.Pool) (lb.Balancer, error) { return lb.NewRoundRobin(p) }},
	{"least-conn", func(p *lb.Pool) (lb.Balancer, error) { return lb.NewLeastConn(p) }},
	{"p2c", func(p *lb.Pool) (lb.Balancer, error) { return lb.NewP2C(p) }},
	{"peak-ewma", func(p *lb.Pool) (lb.Balancer, error) { return lb.NewPeakEWMA(p) }},
	{"adaptive", func(p *lb.Pool) (lb.Balancer, error) { return lb.NewAdaptive(p) }},
}

// tailScenario says how server i behaves at a fraction frac of the run:
// its service times are factor times the nominal ones, or it fails every
// request at once with a 503.
type tailScenario struct {
	name, title string
	behave      func(i int, frac float64) (factor float64, fail bool)
}

// jumpAt is the fraction of the run at which the jump scenario's server
// slows down.
const jumpAt = 0.5

var tailScenarios = []tailScenario{
	{"equal", "4 equal servers", func(int, float64) (float64, bool) { return 1, false }},
	{"slow", "one of 4 ten times slower", func(i int, _ float64) (float64, bool) {
		if i == 3 {
			return 10, false
		}
		return 1, false
	}},
	{"fast-fail", "one of 4 answers every request with a 503 at once", func(i int, _ float64) (float64, bool) {
		return 1, i == 3
	}},
	{"jump", "one of 4 becomes ten times slower half-way through", func(i int, frac float64) (float64, bool) {
		if i == 3 && frac >= jumpAt {
			return 10, false
		}
		return 1, false
	}},
}

// tailConfig is one run's set-up.
type tailConfig struct {
	servers, workers int
	service          time.Duration // mean, exponential
	load             float64       // arrival rate as a fraction of nominal capacity
	duration         time.Duration // of arrivals
	maxInFlight      int           // arrivals beyond this many waiting answers are skipped
	timeout          time.Duration // a request unanswered by then counts as timed out
	warmup           time.Duration // picks before it are left out of the shares
	seed             uint64
}

// tailTimeout bounds each request of a run, and so how long a run waits
// for its last answers after its last arrival.
const tailTimeout = 2 * time.Second

// defaultTail is the set-up: 4 servers of 4 workers, 10 ms mean
// service, arrivals at 66% of the nominal capacity (1,056 a second).
func defaultTail(duration time.Duration) tailConfig {
	return tailConfig{servers: 4, workers: 4, service: 10 * time.Millisecond, load: 0.66,
		duration: duration, maxInFlight: 4096, timeout: tailTimeout, warmup: time.Second, seed: 1}
}

func (c tailConfig) rate() float64 {
	return c.load * float64(c.servers*c.workers) / c.service.Seconds()
}

// tailResult is what one run measured.
type tailResult struct {
	sent, ok, failed, timedOut, skipped int
	// latencies are those of 200 answers and, as the timeout, of the
	// requests that timed out; sorted.
	latencies []time.Duration
	// served[i] counts requests that reached server i, after the warm-up
	// (after[i]) and, in the jump scenario, from 2 s after the jump
	// (jumped[i]).
	served, after, jumped []int
	loadBefore, loadAfter string // /proc/loadavg
	// lags are how late each request was sent, after its scheduled time:
	// what the machine's load adds before the balancer is involved.
	lags []time.Duration
}

func (r *tailResult) percentile(p float64) time.Duration { return pct(r.latencies, p) }

// pct returns percentile p of sorted durations, 0 if there are none.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// share returns counts[i] over their sum.
func share(counts []int, i int) float64 {
	total := 0
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return math.NaN()
	}
	return float64(counts[i]) / float64(total)
}

// tailBackend is one server: workers requests served at once, in arrival
// order (a channel's waiting receivers are served first in, first out), each
// taking an exponential time. A worker keeps its own schedule: a request it
// takes starts when the worker's previous one was due to end, or now if
// that is past, and it sleeps until its own end. So a sleep that overshoots
// (a busy machine wakes timers late) delays that answer, not the worker's
// later ones, and the server's capacity stays what it claims.
type tailBackend struct {
	index                 int
	free                  chan *tailWorker
	mean                  time.Duration
	behave                func(i int, frac float64) (float64, bool)
	start                 time.Time
	length                time.Duration
	warm                  time.Duration
	mu                    sync.Mutex
	rnd                   *rand.Rand
	served, after, jumped atomic.Int64
}

func (b *tailBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	since := time.Since(b.start)
	frac := float64(since) / float64(b.length)
	b.served.Add(1)
	if since >= b.warm {
		b.after.Add(1)
	}
	if since >= time.Duration(jumpAt*float64(b.length))+2*time.Second {
		b.jumped.Add(1)
	}
	factor, fail := b.behave(b.index, frac)
	if fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var wk *tailWorker
	select {
	case wk = <-b.free:
	case <-r.Context().Done():
		return
	}
	defer func() { b.free <- wk }()
	b.mu.Lock()
	d := time.Duration(b.rnd.ExpFloat64() * factor * float64(b.mean))
	b.mu.Unlock()
	start := time.Now()
	if wk.due.After(start) {
		start = wk.due
	}
	wk.due = start.Add(d)
	t := time.NewTimer(time.Until(wk.due))
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return
	}
	io.WriteString(w, "ok\n")
}

// tailWorker is one worker of a tailBackend: when its last request was
// due to end.
type tailWorker struct{ due time.Time }

// loadavg returns the first three fields of /proc/loadavg, or "?" where
// there is none.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// runTail runs one balancer through one scenario.
func runTail(t testing.TB, cfg tailConfig, sc tailScenario, tb tailBalancer) *tailResult {
	res := &tailResult{loadBefore: loadavg()}
	start := time.Now().Add(100 * time.Millisecond) // time to set up
	pool := new(lb.Pool)
	backends := make([]*tailBackend, cfg.servers)
	for i := range backends {
		b := &tailBackend{index: i, free: make(chan *tailWorker, cfg.workers), mean: cfg.service, behave: sc.behave,
			start: start, length: cfg.duration, warm: cfg.warmup, rnd: rand.New(rand.NewPCG(cfg.seed, uint64(i)))}
		for range cfg.workers {
			b.free <- &tailWorker{}
		}
		backends[i] = b
		srv := httptest.NewServer(b)
		defer srv.Close()
		s, err := lb.NewServer(srv.URL, lb.WithName(fmt.Sprintf("s%d", i)))
		require.NoError(t, err)
		require.NoError(t, pool.Add(s))
	}
	bal, err := tb.new(pool)
	require.NoError(t, err)
	// No passive health and no retries: the balancer alone decides.
	proxy, err := lb.NewProxy(bal, lb.WithPassiveHealth(0, 0), lb.WithRetries(0))
	require.NoError(t, err)
	defer proxy.CloseIdleConnections()
	front := httptest.NewServer(proxy)
	defer front.Close()

	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        cfg.maxInFlight,
		MaxIdleConnsPerHost: cfg.maxInFlight,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: cfg.timeout}

	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		inFlight atomic.Int64
	)
	send := func(at time.Time) {
		defer wg.Done()
		defer inFlight.Add(-1)
		lag := time.Since(at)
		resp, err := client.Get(front.URL + "/")
		var code int
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		lat := time.Since(at)
		mu.Lock()
		defer mu.Unlock()
		res.lags = append(res.lags, lag)
		switch {
		case err != nil && errors.Is(err, context.DeadlineExceeded) || lat >= cfg.timeout:
			res.timedOut++
			res.latencies = append(res.latencies, cfg.timeout)
		case err != nil || code != http.StatusOK:
			res.failed++
		default:
			res.ok++
			res.latencies = append(res.latencies, lat)
		}
	}

	rnd := rand.New(rand.NewPCG(cfg.seed, 0xa77))
	rate := cfg.rate()
	at := 0.0
	for {
		at += rnd.ExpFloat64() / rate
		offset := time.Duration(at * float64(time.Second))
		if offset >= cfg.duration {
			break
		}
		when := start.Add(offset)
		if d := time.Until(when); d > 0 {
			time.Sleep(d)
		}
		res.sent++
		if inFlight.Load() >= int64(cfg.maxInFlight) {
			res.skipped++
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go send(when)
	}
	wg.Wait()
	for _, b := range backends {
		res.served = append(res.served, int(b.served.Load()))
		res.after = append(res.after, int(b.after.Load()))
		res.jumped = append(res.jumped, int(b.jumped.Load()))
	}
	slices.Sort(res.latencies)
	slices.Sort(res.lags)
	res.loadAfter = loadavg()
	return res
}

// tailSeconds reads LB_TAIL: the seconds a scenario may take, 0 if unset.
func tailSeconds(t *testing.T) float64 {
	v := os.Getenv("LB_TAIL")
	if v == "" {
		return 0
	}
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || !(s > 0 && s <= 60) {
		t.Fatalf("LB_TAIL=%q: want the seconds a scenario may take, above 0 and at most 60", v)
	}
	return s
}

func TestTailLatency(t *testing.T) {
	seconds := tailSeconds(t)
	if seconds == 0 {
		t.Skip("set LB_TAIL to the seconds each scenario may take (at most 60) to run the tail-latency harness")
	}
	var balancers []tailBalancer
	for _, b := range tailBalancers {
		if names := os.Getenv("LB_TAIL_BALANCER"); names == "" || slices.Contains(strings.Split(names, ","), b.name) {
			balancers = append(balancers, b)
		}
	}
	require.NotEmpty(t, balancers, "LB_TAIL_BALANCER names none of the balancers")
	// Each run also waits for its last answers, at most the timeout.
	per := time.Duration(seconds/float64(len(balancers))*float64(time.Second)) - tailTimeout - 200*time.Millisecond
	if per < time.Second {
		t.Fatalf("LB_TAIL=%v leaves %v of arrivals to each of %d balancers: want at least 1s", seconds, per, len(balancers))
	}
	cfg := defaultTail(per)
	if v := os.Getenv("LB_TAIL_SERVICE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Millisecond || d > time.Second {
			t.Fatalf("LB_TAIL_SERVICE=%q: want a mean service time from 1ms to 1s", v)
		}
		cfg.service = d
	}
	t.Logf("%d servers of %d workers, exponential service of mean %v, Poisson arrivals at %.0f/s (%.0f%% of nominal capacity), %v of arrivals a run, no passive health, no retries",
		cfg.servers, cfg.workers, cfg.service, cfg.rate(), cfg.load*100, per)
	t.Logf("| scenario | balancer | p50 ms | p99 ms | p99.9 ms | ok | failed | timed out | skipped | share of server 3 | send lag p99 ms | load before → after |")
	t.Logf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	ran := false
	results := map[string]map[string]*tailResult{}
	for _, sc := range tailScenarios {
		if names := os.Getenv("LB_TAIL_SCENARIO"); names != "" && !slices.Contains(strings.Split(names, ","), sc.name) {
			continue
		}
		ran = true
		for _, b := range balancers {
			r := runTail(t, cfg, sc, b)
			if results[sc.name] == nil {
				results[sc.name] = map[string]*tailResult{}
			}
			results[sc.name][b.name] = r
			// The share that matters to the scenario: after the
			// warm-up, or from 2 s after the jump.
			counts, what := r.after, "after 1 s"
			if sc.name == "jump" {
				counts, what = r.jumped, "from 2 s after the jump"
			}
			t.Logf("| %s | %s | %s | %s | %s | %d | %d | %d | %d | %.2f%% %s | %.1f | %s → %s |",
				sc.name, b.name, r.ms(0.5, cfg), r.ms(0.99, cfg), r.ms(0.999, cfg),
				r.ok, r.failed, r.timedOut, r.skipped, share(counts, 3)*100, what,
				float64(pct(r.lags, 0.99))/float64(time.Millisecond), r.loadBefore, r.loadAfter)
			assert.Equal(t, r.sent, r.ok+r.failed+r.timedOut+r.skipped, "%s/%s: every request accounted for", sc.name, b.name)
		}
	}
	require.True(t, ran, "LB_TAIL_SCENARIO names none of the scenarios")
	logTailGoals(t, results)
}

// logTailGoals logs, for the adaptive balancer, the goals whose runs were
// made: with one server ten times slower, a p99 at most half least-conn's
// and at most twice its own on equal servers; with a failing server, at
// most 1% of requests sent to it after the warm-up.
func logTailGoals(t *testing.T, results map[string]map[string]*tailResult) {
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	a := results["slow"]["adaptive"]
	if lc := results["slow"]["least-conn"]; a != nil && lc != nil {
		x := float64(a.percentile(0.99)) / float64(lc.percentile(0.99))
		t.Logf("goal: slow, adaptive p99 ≤ 0.5× least-conn's: %.2f× (%s)", x, mark(x <= 0.5))
	}
	if eq := results["equal"]["adaptive"]; a != nil && eq != nil {
		x := float64(a.percentile(0.99)) / float64(eq.percentile(0.99))
		t.Logf("goal: slow, adaptive p99 ≤ 2× its own on equal servers: %.2f× (%s)", x, mark(x <= 2))
	}
	if ff := results["fast-fail"]["adaptive"]; ff != nil {
		x := share(ff.after, 3)
		t.Logf("goal: fast-fail, adaptive sends ≤ 1%% to the failing server after 1 s: %.2f%% (%s)", x*100, mark(x <= 0.01))
	}
}

// ms formats percentile p in milliseconds, as "≥ timeout" when it is one.
func (r *tailResult) ms(p float64, cfg tailConfig) string {
	d := r.percentile(p)
	if d >= cfg.timeout {
		return fmt.Sprintf("≥ %.0f", float64(cfg.timeout)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

// TestTailHarness checks the harness itself on a short, light run: every
// request is accounted for, a failing server's requests are the failures,
// and a slow server's requests take longer.
func TestTailHarness(t *testing.T) {
	cfg := tailConfig{servers: 4, workers: 2, service: time.Millisecond, load: 0.1, duration: 300 * time.Millisecond,
		maxInFlight: 256, timeout: 10 * time.Second, warmup: 0, seed: 3}
	rr := tailBalancers[0]
	r := runTail(t, cfg, tailScenarios[2], rr) // fast-fail
	require.Positive(t, r.sent)
	assert.Equal(t, r.sent, r.ok+r.failed+r.timedOut+r.skipped)
	assert.Zero(t, r.timedOut+r.skipped)
	assert.Equal(t, r.served[3], r.failed, "the failing server's answers are the failures")
	assert.Equal(t, r.sent, r.served[0]+r.served[1]+r.served[2]+r.served[3])
	assert.Len(t, r.latencies, r.ok+r.timedOut)
	assert.True(t, slices.IsSorted(r.latencies))
	assert.Len(t, r.lags, r.sent-r.skipped)
}
