package web

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The metrics are written by hand in the Prometheus text exposition format (version 0.0.4):
// a handful of counters and histograms do not justify client_golang's dependency tree.

// latencyBuckets are the upper bounds, in seconds, of the request-duration histogram.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type counterKey struct {
	method, route string
	code          int
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	count  uint64
	sum    float64
}

type metrics struct {
	mu        sync.Mutex
	requests  map[counterKey]uint64
	durations map[string]*histogram // by route
	started   time.Time
}

func newMetrics() *metrics {
	return &metrics{requests: map[counterKey]uint64{}, durations: map[string]*histogram{}, started: time.Now()}
}

func (m *metrics) observe(method, route string, code int, d time.Duration) {
	sec := d.Seconds()
	i := sort.SearchFloat64s(latencyBuckets, sec)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[counterKey{method, route, code}]++
	h := m.durations[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(latencyBuckets)+1)}
		m.durations[route] = h
	}
	h.counts[i]++
	h.count++
	h.sum += sec
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// write writes the HTTP metrics.
func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	keys := make([]counterKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.route != b.route {
			return a.route < b.route
		}
		if a.method != b.method {
			return a.method < b.method
		}
		return a.code < b.code
	})
	fmt.Fprintln(w, "# HELP infuse_http_requests_total HTTP requests served, by route pattern, method and status code.")
	fmt.Fprintln(w, "# TYPE infuse_http_requests_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "infuse_http_requests_total{route=\"%s\",method=\"%s\",code=\"%d\"} %d\n",
			escapeLabel(k.route), escapeLabel(k.method), k.code, m.requests[k])
	}
	routes := make([]string, 0, len(m.durations))
	for r := range m.durations {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	fmt.Fprintln(w, "# HELP infuse_http_request_duration_seconds Time to serve an HTTP request, by route pattern.")
	fmt.Fprintln(w, "# TYPE infuse_http_request_duration_seconds histogram")
	for _, r := range routes {
		h := m.durations[r]
		var cum uint64
		for i, le := range latencyBuckets {
			cum += h.counts[i]
			fmt.Fprintf(w, "infuse_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} %d\n", escapeLabel(r), formatFloat(le), cum)
		}
		fmt.Fprintf(w, "infuse_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %d\n", escapeLabel(r), h.count)
		fmt.Fprintf(w, "infuse_http_request_duration_seconds_sum{route=\"%s\"} %s\n", escapeLabel(r), formatFloat(h.sum))
		fmt.Fprintf(w, "infuse_http_request_duration_seconds_count{route=\"%s\"} %d\n", escapeLabel(r), h.count)
	}
	started := m.started
	m.mu.Unlock()
	fmt.Fprintln(w, "# HELP infuse_process_start_time_seconds When the process started, Unix seconds.")
	fmt.Fprintln(w, "# TYPE infuse_process_start_time_seconds gauge")
	fmt.Fprintf(w, "infuse_process_start_time_seconds %d\n", started.Unix())
	fmt.Fprintln(w, "# HELP infuse_go_goroutines Goroutines that exist now.")
	fmt.Fprintln(w, "# TYPE infuse_go_goroutines gauge")
	fmt.Fprintf(w, "infuse_go_goroutines %d\n", runtime.NumGoroutine())
}

func gauge(w io.Writer, name, help string, v int64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
}

func counter(w io.Writer, name, help string, v int64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
}

// serveMetrics writes every metric: HTTP, the database pool, and the claim scheduler's runs.
func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w)
	if p := s.cfg.Pool; p != nil {
		st := p.Stat()
		gauge(w, "infuse_db_pool_acquired_conns", "Database connections in use.", int64(st.AcquiredConns()))
		gauge(w, "infuse_db_pool_idle_conns", "Idle database connections.", int64(st.IdleConns()))
		gauge(w, "infuse_db_pool_max_conns", "Most database connections the pool opens.", int64(st.MaxConns()))
		counter(w, "infuse_db_pool_acquire_total", "Connections acquired from the pool.", st.AcquireCount())
		counter(w, "infuse_db_pool_empty_acquire_total", "Acquisitions that had to wait for a connection.", st.EmptyAcquireCount())
	}
	if m := s.cfg.Scheduler; m != nil {
		fmt.Fprintln(w, "# HELP infuse_claims_scheduler_runs_total Claim scheduler runs, by outcome (started counts every run begun).")
		fmt.Fprintln(w, "# TYPE infuse_claims_scheduler_runs_total counter")
		for _, o := range []struct {
			name string
			v    int64
		}{{"started", m.RunsStarted.Load()}, {"ok", m.RunsSucceeded.Load()}, {"failed", m.RunsFailed.Load()},
			{"panicked", m.RunsPanicked.Load()}, {"skipped", m.RunsSkipped.Load()}, {"interrupted", m.RunsInterrupted.Load()}} {
			fmt.Fprintf(w, "infuse_claims_scheduler_runs_total{outcome=\"%s\"} %d\n", o.name, o.v)
		}
		counter(w, "infuse_claims_scheduler_compiled_total", "Draft claims the scheduler compiled.", m.ClaimsCompiled.Load())
		gauge(w, "infuse_claims_scheduler_running", "Scheduler runs in progress in this process.", m.Running.Load())
		gauge(w, "infuse_claims_scheduler_last_run_timestamp_seconds", "When the last run finished, Unix seconds.", m.LastRunUnix.Load())
		gauge(w, "infuse_claims_scheduler_last_success_timestamp_seconds", "When the last successful run finished, Unix seconds.", m.LastSuccessUnix.Load())
	}
	return nil
}
