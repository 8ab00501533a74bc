package lb

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// PoolStatus is the state of a pool as [StatusHandler] serves it.
//
// It is a plain value.
type PoolStatus struct {
	// Time is when the snapshot was taken, by the wall clock, as the
	// times in each server's Stats are.
	Time time.Time `json:"time"`
	// Version counts the pool's changes of membership.
	Version uint64 `json:"version"`
	// Available is the number of servers balancers may pick now.
	Available int `json:"available"`
	// InFlight, Requests, Failures, Retries and Errors are the sums of
	// the servers' figures of the same names.
	InFlight int64       `json:"in_flight"`
	Requests uint64      `json:"requests"`
	Failures uint64      `json:"failures"`
	Retries  uint64      `json:"retries"`
	Errors   ErrorCounts `json:"errors"`
	// Servers holds each member's statistics, in pool order.
	Servers []Stats `json:"servers"`
	// Estimates holds, for each latency-aware balancer given to
	// StatusHandler, its estimate of each server it may pick.
	Estimates []BalancerEstimates `json:"estimates,omitempty"`
}

// BalancerEstimates is what one latency-aware balancer estimates of the
// servers, as [StatusHandler] serves it.
type BalancerEstimates struct {
	// Balancer is the name StatusEstimator gave it.
	Balancer string `json:"balancer"`
	// Servers holds its estimates, in pool order.
	Servers []Estimate `json:"servers"`
}

// A StatusEstimator names a balancer whose estimates [StatusHandler]
// shows beside the pool's state: a [PeakEWMA] or an [Adaptive], say.
type StatusEstimator struct {
	// Name names the balancer on the page, as its route does.
	Name string
	// Estimator is the balancer.
	Estimator Estimator
}

// Status returns a snapshot of the pool's state.
func (p *Pool) Status() PoolStatus {
	st := p.load()
	out := PoolStatus{Time: time.Now(), Version: st.version, Servers: make([]Stats, len(st.servers))}
	now := p.now().UnixNano()
	for i, s := range st.servers {
		x := s.Stats()
		// The ramp by the pool's clock, which its balancers follow.
		x.Ramp, _, _ = s.rampAt(now)
		out.Servers[i] = x
		if s.Available() {
			out.Available++
		}
		out.InFlight += x.InFlight
		out.Requests += x.Requests
		out.Failures += x.Failures
		out.Retries += x.Retries
		out.Errors.add(x.Errors)
	}
	return out
}

// add adds the counts of e to c.
func (c *ErrorCounts) add(e ErrorCounts) {
	c.Transport += e.Transport
	c.Timeout += e.Timeout
	c.Status5xx += e.Status5xx
	c.Status4xx += e.Status4xx
	c.ClientGone += e.ClientGone
}

// StatusHandler returns a handler that serves the state of pool: a
// summary of the pool (servers available, requests in flight and ended,
// the share of failures and of each class of error), and each server's
// name, URL (when it is not the name), state, weight and slow-start
// progress, requests in flight and ended, share of each class of error,
// and median and 99th percentile latency. It answers with JSON
// ([PoolStatus], which has every field of each server's [Stats]), or with
// a small self-contained HTML page, readable on a phone, when the client
// prefers text/html (a browser). It is read-only; mount it where only
// operators can reach it.
//
// For each of estimators (which may be none), it also shows the
// balancer's latency estimate of each server. A nil pool is shown as an
// empty one.
func StatusHandler(pool *Pool, estimators ...StatusEstimator) http.Handler {
	if pool == nil {
		pool = new(Pool)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		status := pool.Status()
		for _, e := range estimators {
			if e.Estimator != nil {
				status.Estimates = append(status.Estimates, BalancerEstimates{Balancer: e.Name, Servers: e.Estimator.Estimates()})
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		if wantsHTML(r) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = statusPage.Execute(w, newStatusView(status))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(status)
	})
}

// wantsHTML reports whether the Accept header lists text/html before any
// JSON type.
func wantsHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		media, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.TrimSpace(media) {
		case "text/html":
			return true
		case "application/json":
			return false
		}
	}
	return false
}

// statusView is what the HTML status page shows: the snapshot, with each
// figure as the page writes it.
type statusView struct {
	PoolStatus
	Rows      []statusRow
	ErrorRate string   // failures (transport, timeout, 5xx), of all requests
	Rates     []string // by class, as "5xx 1.2%"
}

// statusRow is one server's line of the page.
type statusRow struct {
	Stats
	Where   string // the URL when it is not the name; "in process" for a handler server
	State   string
	Class   string // the CSS class of State
	For     string // time in the state, "" when unknown
	Reason  string
	Until   string // the end of an ejection, "" when none
	UntilAt string // the same, as a timestamp
	Ramp    string // slow-start progress, or why a weight of 0 takes no picks
	Rates   []string
	P50     string
	P99     string
}

func newStatusView(ps PoolStatus) statusView {
	v := statusView{PoolStatus: ps, Rows: make([]statusRow, len(ps.Servers))}
	v.Rates = errorRates(ps.Errors, ps.Requests)
	if ps.Requests > 0 {
		v.ErrorRate = percent(float64(ps.Failures) / float64(ps.Requests))
	}
	for i, s := range ps.Servers {
		r := statusRow{Stats: s, P50: fmtLatency(s.P50), P99: fmtLatency(s.P99)}
		switch {
		case s.URL == "":
			r.Where = "in process"
		case s.URL != s.Name:
			r.Where = s.URL
		}
		var since, until time.Time
		r.State, r.Reason, since, until = rowState(s)
		r.Class = strings.ReplaceAll(r.State, " ", "-")
		if !since.IsZero() && !ps.Time.Before(since) {
			r.For = fmtAge(ps.Time.Sub(since))
		}
		if !until.IsZero() && until.After(ps.Time) {
			r.Until = "ejection ends in " + fmtAge(until.Sub(ps.Time))
			r.UntilAt = until.UTC().Format(time.RFC3339)
		}
		switch {
		case s.Weight == 0:
			r.Ramp = "takes no picks"
		case s.Ramp < 1:
			r.Ramp = fmt.Sprintf("slow start %.0f%%", s.Ramp*100)
		}
		r.Rates = errorRates(s.Errors, s.Requests)
		v.Rows[i] = r
	}
	return v
}

// rowState returns the state the page shows for s, why it is in it, since
// when, and until when (both zero when unknown).
func rowState(s Stats) (state, reason string, since, until time.Time) {
	return s.State, s.Reason, s.Since, s.EjectedUntil
}

// errorRates returns the share of requests in each class of error that has
// any, as "5xx 1.2%".
func errorRates(e ErrorCounts, requests uint64) []string {
	if requests == 0 {
		return nil
	}
	var out []string
	for _, c := range [...]struct {
		name string
		n    uint64
	}{{"transport", e.Transport}, {"timeout", e.Timeout}, {"5xx", e.Status5xx}, {"4xx", e.Status4xx}, {"client gone", e.ClientGone}} {
		if c.n > 0 {
			out = append(out, c.name+" "+percent(float64(c.n)/float64(requests)))
		}
	}
	return out
}

// percent writes the fraction f as a percentage with two or three
// significant digits.
func percent(f float64) string {
	p := f * 100
	switch {
	case p == 0:
		return "0%"
	case p >= 10:
		return fmt.Sprintf("%.0f%%", p)
	case p >= 1:
		return fmt.Sprintf("%.1f%%", p)
	case p >= 0.01:
		return fmt.Sprintf("%.2f%%", p)
	}
	return "<0.01%"
}

// fmtLatency writes a latency with three significant digits or so; "–"
// for none.
func fmtLatency(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// fmtAge writes a time in a state: to the second below an hour, else to
// the minute.
func fmtAge(d time.Duration) string {
	if d = d.Round(time.Second); d < time.Hour {
		return d.String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"ms": fmtLatency,
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>lb status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.5em 0 .3em}
p.sum{margin:0 0 1em}
table{border-collapse:collapse}th,td{padding:.35em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{font-weight:600;white-space:nowrap}
th.n,td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
small{color:#666}
.up{color:#17692c}.down,.ejected{color:#b3261e}.draining,.slow-start{color:#8a5a00}
@media (max-width:640px){
body{margin:.8em}
table,tbody,tr,td{display:block}thead{display:none}
tr{border:1px solid #ddd;border-radius:6px;margin:0 0 .7em;padding:.3em .6em}
td,td.n{display:flex;justify-content:space-between;gap:1em;border:0;padding:.15em 0;text-align:right;white-space:normal}
td::before{content:attr(data-l);color:#666;text-align:left;flex:none}
td.name{display:block;text-align:left;font-size:1.05em}td.name::before{content:none}
}
</style></head><body>
<h1>Pool status</h1>
<p class="sum"><b>{{.Available}} of {{len .Servers}} servers available</b> · {{.InFlight}} in flight · {{.Requests}} requests{{if .ErrorRate}} · failures {{.ErrorRate}}{{end}}{{range .Rates}} · {{.}}{{end}}{{if .Retries}} · {{.Retries}} retries{{end}} · version {{.Version}} · refreshes every 5 s</p>
<table><thead><tr><th>Server</th><th>State</th><th class="n">Weight</th><th class="n">In flight</th><th class="n">Requests</th><th class="n">Errors</th><th class="n">p50</th><th class="n">p99</th></tr></thead><tbody>
{{range .Rows}}<tr><td class="name"><b>{{.Name}}</b>{{range $k, $v := .Labels}} <small>{{$k}}={{$v}}</small>{{end}}{{if .Where}}<br><small>{{.Where}}</small>{{end}}</td><td data-l="State"><span><span class="{{.Class}}">{{.State}}</span>{{if .For}} <small>for {{.For}}</small>{{end}}{{if .Until}}<br><small title="{{.UntilAt}}">{{.Until}}</small>{{end}}{{if .Reason}}<br><small>{{.Reason}}</small>{{end}}</span></td><td class="n" data-l="Weight"><span>{{.Weight}}{{if .Ramp}}<br><small class="slow-start">{{.Ramp}}</small>{{end}}</span></td><td class="n" data-l="In flight">{{.InFlight}}</td><td class="n" data-l="Requests">{{.Requests}}</td><td class="n" data-l="Errors"><span>{{range $i, $r := .Rates}}{{if $i}}<br>{{end}}{{$r}}{{else}}–{{end}}</span></td><td class="n" data-l="p50">{{.P50}}</td><td class="n" data-l="p99">{{.P99}}</td></tr>
{{end}}</tbody></table>
{{range .Estimates}}<h2>{{.Balancer}}: latency estimates</h2>
<table><thead><tr><th>Server</th><th class="n">Estimate</th><th class="n">Failure rate</th></tr></thead><tbody>
{{range .Servers}}<tr><td class="name">{{.Server}}</td><td class="n" data-l="Estimate">{{if .Observed}}{{ms .Latency}}{{else}}{{ms .Latency}} (neutral){{end}}</td><td class="n" data-l="Failure rate">{{printf "%.2f" .Failures}}</td></tr>
{{end}}</tbody></table>
{{end}}</body></html>
`))
