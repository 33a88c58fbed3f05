package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/dbtest"
)

// The load benchmark: a Go client on loopback against the real handler on a real listener and a
// real (with `make bench`, durable) database. Targets (issue 6): POST of single time entries from
// 50 concurrent clients at ≥ 2,000 requests/s with p99 ≤ 50 ms; GET of a claim with p99 ≤ 20 ms.
// Each phase runs for INFUSE_BENCH_SECONDS (default 5) seconds and stops by itself, after a
// warm-up of warmUp that is not measured: the pool's connections prepare their statements and
// the server's caches fill, as they have in a service that has been up for more than a second.

const benchClients = 50

const warmUp = time.Second

// getClients read a claim at once: the issue sets no concurrency for reads; a handful of
// auditors and a dashboard are what reads a claim.
const getClients = 8

func benchSeconds() time.Duration {
	if n, err := strconv.Atoi(os.Getenv("INFUSE_BENCH_SECONDS")); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 5 * time.Second
}

// load runs clients goroutines, each calling next(client, i) for its i-th request until d has
// passed, and returns every latency and the number of failures.
func load(d time.Duration, clients int, send func(c *http.Client, client, i int) error) ([]time.Duration, int, time.Duration) {
	tr := &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var all []time.Duration
	failures := 0
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for k := 0; k < clients; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			var mine []time.Duration
			fails := 0
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := send(c, k, i); err != nil {
					fails++
					if fails == 1 {
						fmt.Fprintln(os.Stderr, "bench request failed:", err)
					}
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			failures += fails
			mu.Unlock()
		}(k)
	}
	wg.Wait()
	return all, failures, time.Since(start)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[int(float64(len(ds)-1)*p)]
}

func benchEnv(b *testing.B) *testEnv {
	pool := dbtest.NewWithConfig(b, func(c *pgxpool.Config) {
		c.MaxConns = 16
		c.AfterConnect = db.AfterConnect
	})
	return newTestEnvWith(b, pool, nil)
}

func BenchmarkPostTimeEntries(b *testing.B) {
	e := benchEnv(b)
	for k := 0; k < benchClients; k++ {
		res := e.do("POST", "/api/v1/officers", "pm", map[string]any{"authority": "GB-NWP", "payroll_ref": fmt.Sprintf("NWP-%03d", k),
			"name": fmt.Sprintf("Officer %d", k), "valid_from": "2021-01-01", "annual_cost": "44750.00", "fte": "1"})
		if res.status != http.StatusCreated {
			b.Fatalf("seed: %d %s", res.status, res.body)
		}
	}
	token := e.tokens["pm"]
	first := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	activities := []string{"lab", "experiment", "coaching", "steering", "other"}
	sent := make([]int, benchClients) // the requests client k has sent, warm-up included
	post := func(c *http.Client, k, _ int) error {
		// Client k records for its own officer: one hour per date and activity, so no two
		// requests collide (V5) or break a daily (V3) or annual (V4) limit.
		j := sent[k]
		sent[k]++
		day := first.AddDate(0, 0, (j/len(activities))%190)
		body, _ := json.Marshal(map[string]string{"authority": "GB-NWP", "payroll_ref": fmt.Sprintf("NWP-%03d", k),
			"work_date": day.Format("2006-01-02"), "hours": "1", "activity": activities[j%len(activities)],
			"evidence_ref": fmt.Sprintf("TS-%d-%d", k, j), "approved_by": "Gareth Morgan"})
		req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/time-entries", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		return expect(c, req, http.StatusCreated)
	}
	if _, fails, _ := load(warmUp, benchClients, post); fails > 0 {
		b.Fatalf("warm-up: %d requests failed", fails)
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		lat, fails, took := load(benchSeconds(), benchClients, post)
		report(b, "POST /api/v1/time-entries", benchClients, lat, fails, took, 2000, 50*time.Millisecond)
	}
}

func BenchmarkGetClaim(b *testing.B) {
	e := benchEnv(b)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	for i := 1; i <= 20; i++ {
		if res := e.do("POST", "/api/v1/time-entries", "pm", timeEntry("GB-NWP", "NWP-1", fmt.Sprintf("2021-02-%02d", i))); res.status != 201 {
			b.Fatalf("%d %s", res.status, res.body)
		}
	}
	if res := e.do("POST", "/api/v1/claims/2021Q1/compile", "pm", nil); res.status != 200 {
		b.Fatalf("compile: %d %s", res.status, res.body)
	}
	token := e.tokens["auditor"]
	get := func(c *http.Client, k, i int) error {
		req, _ := http.NewRequest("GET", e.ts.URL+"/api/v1/claims/2021Q1", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return expect(c, req, http.StatusOK)
	}
	if _, fails, _ := load(warmUp, getClients, get); fails > 0 {
		b.Fatalf("warm-up: %d requests failed", fails)
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		lat, fails, took := load(benchSeconds(), getClients, get)
		report(b, "GET /api/v1/claims/{period}", getClients, lat, fails, took, 0, 20*time.Millisecond)
	}
}

func expect(c *http.Client, req *http.Request, status int) error {
	resp, err := c.Do(req.WithContext(context.Background()))
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return nil
}

// report records the phase's figures and compares them with the targets (minRate 0: none).
func report(b *testing.B, what string, clients int, lat []time.Duration, fails int, took time.Duration, minRate float64, maxP99 time.Duration) {
	rate := float64(len(lat)) / took.Seconds()
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	b.ReportMetric(rate, "req/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(fails), "failures")
	durable := os.Getenv("INFUSE_BENCH_DURABLE") != ""
	b.Logf("%s: %d requests from %d clients in %.1fs: %.0f req/s, p50 %v, p99 %v, %d failed (durable database: %v)",
		what, len(lat), clients, took.Seconds(), rate, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), fails, durable)
	if fails > 0 {
		b.Errorf("%s: %d requests failed", what, fails)
	}
	if rate < minRate || p99 > maxP99 {
		b.Errorf("%s misses its target (≥ %.0f req/s, p99 ≤ %v) on this (shared, 2-core) machine", what, minRate, maxP99)
	}
}
