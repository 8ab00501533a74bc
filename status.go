package lb

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// PoolStatus is the state of a pool as [StatusHandler] serves it.
type PoolStatus struct {
	// Version counts the pool's changes of membership.
	Version uint64 `json:"version"`
	// Available is the number of servers balancers may pick now.
	Available int `json:"available"`
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
	out := PoolStatus{Version: st.version, Servers: make([]Stats, len(st.servers))}
	for i, s := range st.servers {
		out.Servers[i] = s.Stats()
		if s.Available() {
			out.Available++
		}
	}
	return out
}

// StatusHandler returns a handler that serves the state of pool: each
// server's name, URL, weight, health, requests in flight, counters and last
// latency. It answers with JSON ([PoolStatus]), or with a small
// self-contained HTML page when the client prefers text/html (a browser).
// It is read-only; mount it where only operators can reach it.
//
// For each of estimators (which may be none), it also shows the
// balancer's latency estimate of each server.
func StatusHandler(pool *Pool, estimators ...StatusEstimator) http.Handler {
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
			_ = statusPage.Execute(w, status)
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

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"ms": func(d time.Duration) string {
		if d == 0 {
			return "–"
		}
		return d.Round(10 * time.Microsecond).String()
	},
	"state": serverState,
	"class": func(s Stats) string { return strings.ReplaceAll(serverState(s), " ", "-") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>lb status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}th,td{padding:.35em .8em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#17692c}.down,.ejected{color:#b3261e}.draining,.slow-start,.weight-0{color:#8a5a00}
</style></head><body>
<h1>Pool status</h1>
<p>{{.Available}} of {{len .Servers}} servers available · version {{.Version}} · refreshes every 5 s</p>
<table><thead><tr><th>Server</th><th>URL</th><th>State</th><th>Weight</th><th>In flight</th><th>Requests</th><th>Failures</th><th>Last latency</th></tr></thead><tbody>
{{range .Servers}}<tr><td>{{.Name}}{{range $k, $v := .Labels}} <small>{{$k}}={{$v}}</small>{{end}}</td><td>{{if .URL}}{{.URL}}{{else}}in process{{end}}</td><td class="{{class .}}">{{state .}}</td><td class="n">{{.Weight}}</td><td class="n">{{.InFlight}}</td><td class="n">{{.Requests}}</td><td class="n">{{.Failures}}</td><td class="n">{{ms .LastLatency}}</td></tr>
{{end}}</tbody></table>
{{range .Estimates}}<h2>{{.Balancer}}: latency estimates</h2>
<table><thead><tr><th>Server</th><th>Estimate</th><th>Failure rate</th></tr></thead><tbody>
{{range .Servers}}<tr><td>{{.Server}}</td><td class="n">{{if .Observed}}{{ms .Latency}}{{else}}{{ms .Latency}} (neutral){{end}}</td><td class="n">{{printf "%.2f" .Failures}}</td></tr>
{{end}}</tbody></table>
{{end}}</body></html>
`))

// serverState names the state of a server for the status page.
func serverState(s Stats) string {
	switch {
	case s.Weight == 0:
		return "weight 0"
	case s.Draining:
		return "draining"
	case !s.Healthy:
		return "down"
	case s.Ejected:
		return "ejected"
	case s.Ramp < 1:
		return "slow start"
	}
	return "up"
}
