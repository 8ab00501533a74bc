package lb

import (
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// metricsContentType is the media type of the Prometheus text exposition
// format, version 0.0.4.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// errorClasses are the values of the class label of
// lb_request_errors_total, in the order they are written.
var errorClasses = [...]string{"transport", "timeout", "status_5xx", "status_4xx", "client_gone"}

// serverStates are the values of the state label of lb_server_state (those
// of Stats.State), in the order they are written.
var serverStates = [...]string{"up", "down", "ejected", "draining"}

// MetricsHandler returns a handler that serves the metrics of the servers
// of pools in the Prometheus text exposition format (version 0.0.4), for a
// Prometheus server to scrape. It needs nothing but the standard library;
// the module github.com/balancekit/lb/prometheus offers the same metrics as
// a Collector for a Prometheus registry.
//
// Every series has the label server, the server's name:
//
//	lb_requests_total                 counter: requests that have ended
//	lb_request_errors_total           counter, by class: transport, timeout,
//	                                  status_5xx, status_4xx, client_gone
//	lb_in_flight_requests             gauge: requests picked, not yet done
//	lb_server_weight                  gauge
//	lb_server_state                   gauge, by state: 1 for the server's
//	                                  state (up, down, ejected, draining),
//	                                  0 for the others
//	lb_ejections_total                counter
//	lb_retries_total                  counter: attempts that were retries
//	lb_request_duration_seconds       histogram: 22 buckets, one to each
//	                                  doubling of the duration
//
// The histogram is the [Histogram.Octaves] of [Server.Latency]: its
// buckets end at 2^16 ns (65.536 µs), 2^17 ns, ... 2^35 ns (34.36 s),
// 60.13 s and +Inf, rather than at the 83 bounds of Server.Latency, which
// would make 83 series for each server; its sum and count are those of
// Server.Latency.
//
// A server that belongs to several of pools is shown once. Servers are
// told apart by name: of two different servers with one name (in two
// pools), only the first, in the order of pools, is shown, since two
// series with the same labels would make the output invalid. A name that
// is not valid UTF-8 is shown with U+FFFD for each run of bad bytes. Nil
// pools are skipped. The handler reads each server's figures without a
// lock, so under traffic they may be a few requests apart; it answers GET
// and HEAD only. Mount it where only operators (and the scraper) can
// reach it.
func MetricsHandler(pools ...*Pool) http.Handler {
	pools = append([]*Pool(nil), pools...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", metricsContentType)
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodHead {
			return
		}
		writeMetrics(w, metricsServers(pools))
	})
}

// metricsServers returns the servers of pools, each once, with no two of
// the same name: the first of each name, in the order of pools.
func metricsServers(pools []*Pool) []*Server {
	var out []*Server
	seen := make(map[string]bool)
	for _, p := range pools {
		if p == nil {
			continue
		}
		for _, s := range p.load().servers {
			if name := labelValue(s.name); !seen[name] {
				seen[name] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// serverMetrics is what the metrics show of one server.
type serverMetrics struct {
	Stats
	// errors holds the error counts in the order of errorClasses.
	errors  [len(errorClasses)]uint64
	latency Histogram
}

// metricsOf reads the figures of s: its latency histogram read into
// scratch (of length histBuckets) and merged into octaves (of length
// octBuckets), which the result keeps.
func metricsOf(s *Server, scratch, octaves []Bucket) serverMetrics {
	st := s.Stats()
	e := st.Errors
	return serverMetrics{
		Stats:   st,
		errors:  [...]uint64{e.Transport, e.Timeout, e.Status5xx, e.Status4xx, e.ClientGone},
		latency: s.latencyInto(scratch).octavesInto(octaves),
	}
}

// metricsChunk is the size of output writeMetrics gathers before it
// writes it.
const metricsChunk = 32 << 10

// writeMetrics writes the metrics of servers to w in the text format, in
// chunks of about metricsChunk bytes. After an error from w (the client
// went away) it writes nothing more.
func writeMetrics(w io.Writer, servers []*Server) {
	ms := make([]serverMetrics, len(servers))
	var scratch [histBuckets]Bucket
	octaves := make([]Bucket, len(servers)*octBuckets) // one allocation for all
	for i, s := range servers {
		ms[i] = metricsOf(s, scratch[:], octaves[i*octBuckets:(i+1)*octBuckets])
	}
	b := make([]byte, 0, metricsChunk+4<<10)
	var err error
	flush := func() {
		if len(b) >= metricsChunk {
			if err == nil {
				_, err = w.Write(b)
			}
			b = b[:0]
		}
	}
	family := func(name, typ, help string, each func(b []byte, m *serverMetrics) []byte) {
		b = append(b, "# HELP "...)
		b = append(b, name...)
		b = append(b, ' ')
		b = append(b, help...)
		b = append(b, "\n# TYPE "...)
		b = append(b, name...)
		b = append(b, ' ')
		b = append(b, typ...)
		b = append(b, '\n')
		for i := range ms {
			b = each(b, &ms[i])
			flush()
		}
	}
	family("lb_requests_total", "counter", "Requests that have ended, by server.", func(b []byte, m *serverMetrics) []byte {
		return appendSample(b, "lb_requests_total", m.Name, "", "", m.Requests)
	})
	family("lb_request_errors_total", "counter", "Requests that ended in an error, by server and class.", func(b []byte, m *serverMetrics) []byte {
		for i, class := range errorClasses {
			b = appendSample(b, "lb_request_errors_total", m.Name, "class", class, m.errors[i])
		}
		return b
	})
	family("lb_in_flight_requests", "gauge", "Requests picked and not yet done, by server.", func(b []byte, m *serverMetrics) []byte {
		return appendSampleInt(b, "lb_in_flight_requests", m.Name, m.InFlight)
	})
	family("lb_server_weight", "gauge", "Weight of the server.", func(b []byte, m *serverMetrics) []byte {
		return appendSampleInt(b, "lb_server_weight", m.Name, int64(m.Weight))
	})
	family("lb_server_state", "gauge", "1 for the state the server is in, 0 for the others.", func(b []byte, m *serverMetrics) []byte {
		for _, state := range serverStates {
			v := uint64(0)
			if state == m.State {
				v = 1
			}
			b = appendSample(b, "lb_server_state", m.Name, "state", state, v)
		}
		return b
	})
	family("lb_ejections_total", "counter", "Times passive health took the server out, by server.", func(b []byte, m *serverMetrics) []byte {
		return appendSample(b, "lb_ejections_total", m.Name, "", "", m.Ejections)
	})
	family("lb_retries_total", "counter", "Attempts on the server that were retries, by server.", func(b []byte, m *serverMetrics) []byte {
		return appendSample(b, "lb_retries_total", m.Name, "", "", m.Retries)
	})
	family("lb_request_duration_seconds", "histogram", "Duration of the requests that reported one, by server.", func(b []byte, m *serverMetrics) []byte {
		return appendHistogram(b, "lb_request_duration_seconds", m.Name, m.latency)
	})
	if len(b) > 0 && err == nil {
		_, _ = w.Write(b)
	}
}

// appendSample appends one line: name{server="server"} v, with a second
// label if label is not empty.
func appendSample(b []byte, name, server, label, value string, v uint64) []byte {
	b = appendSeries(b, name, server, label, value)
	b = strconv.AppendUint(b, v, 10)
	return append(b, '\n')
}

// appendSampleInt is appendSample for a gauge that may be negative.
func appendSampleInt(b []byte, name, server string, v int64) []byte {
	b = appendSeries(b, name, server, "", "")
	b = strconv.AppendInt(b, v, 10)
	return append(b, '\n')
}

// appendSeries appends name{server="server",label="value"} and a space.
func appendSeries(b []byte, name, server, label, value string) []byte {
	b = append(b, name...)
	b = append(b, `{server="`...)
	b = appendLabelValue(b, server)
	if label != "" {
		b = append(b, `",`...)
		b = append(b, label...)
		b = append(b, `="`...)
		b = appendLabelValue(b, value)
	}
	return append(b, `"} `...)
}

// appendHistogram appends the _bucket, _sum and _count lines of h, with
// cumulative buckets in seconds. The count is the sum of the buckets, so
// that it matches the +Inf bucket even when h was read under traffic.
func appendHistogram(b []byte, name, server string, h Histogram) []byte {
	var cum uint64
	inf := false
	for _, bk := range h.Buckets {
		cum += bk.Count
		b = append(b, name...)
		b = append(b, `_bucket{server="`...)
		b = appendLabelValue(b, server)
		b = append(b, `",le="`...)
		if bk.UpperBound == math.MaxInt64 {
			b, inf = append(b, "+Inf"...), true
		} else {
			b = strconv.AppendFloat(b, bk.UpperBound.Seconds(), 'g', -1, 64)
		}
		b = append(b, `"} `...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	if !inf {
		b = appendSample(b, name+"_bucket", server, "le", "+Inf", cum)
	}
	b = append(b, name...)
	b = append(b, "_sum"...)
	b = appendSeries(b, "", server, "", "")
	b = strconv.AppendFloat(b, h.Sum.Seconds(), 'g', -1, 64)
	b = append(b, '\n')
	b = append(b, name...)
	b = append(b, "_count"...)
	return appendSample(b, "", server, "", "", cum)
}

// labelEscaper escapes a label value as the text format wants: backslash,
// double quote and line feed.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// appendLabelValue appends v escaped for a label value, as labelValue
// makes it.
func appendLabelValue(b []byte, v string) []byte {
	v = labelValue(v)
	if !strings.ContainsAny(v, "\\\"\n") {
		return append(b, v...)
	}
	return append(b, labelEscaper.Replace(v)...)
}

// labelValue returns name as a label value, which must be valid UTF-8:
// with each run of bytes that are not replaced by U+FFFD.
func labelValue(name string) string {
	if utf8.ValidString(name) {
		return name
	}
	return strings.ToValidUTF8(name, "\uFFFD")
}
