package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccr-infuse/infuse/internal/reliability"
)

// The load test runs many concurrent clients against the service on a real loopback listener
// and a real PostgreSQL for a fixed time — time entries, expenditure lines, claim reads and
// compiles, CSV imports, a share of them deliberately bad or replayed — and then holds the
// books to account: a zero trial balance, every accepted request present exactly once, every
// refused one absent, the ledger verifying. It records the latency distribution. It runs under
// `make soak` (INFUSE_SOAK=1); INFUSE_LOAD_SECONDS sets its length (default 60).

// loadOp is one request the load test made, and what became of it.
type loadOp struct {
	kind     string // time, expenditure, import, claim_read, claim_compile
	token    string // the unique evidence reference of what it would write ("" for reads)
	rows     int    // rows the request would write
	status   int
	accepted bool
	latency  time.Duration
}

func TestLoadHoldsTheBooks(t *testing.T) {
	if os.Getenv("INFUSE_SOAK") == "" {
		t.Skip("a soak test: set INFUSE_SOAK=1 (make soak)")
	}
	secs := 60
	if n, err := strconv.Atoi(os.Getenv("INFUSE_LOAD_SECONDS")); err == nil && n > 0 {
		secs = n
	}
	e := newTestEnv(t)
	if !strings.HasPrefix(e.ts.URL, "http://127.0.0.1:") {
		t.Fatalf("not a loopback listener: %s", e.ts.URL)
	}
	const clients = 16
	// Every writing client has officers of its own, so that its entries never meet another
	// client's under V3, V4 or V5.
	const officersPerClient = 4
	authorities := e.prog.Authorities
	officerOf := func(c, i int) (string, string) {
		a := authorities[(c*officersPerClient+i)%len(authorities)].Code
		if c%4 == 0 {
			a = "GB-NWP" // the finance officer's own authority
		}
		return a, fmt.Sprintf("%s-L%02d%02d", strings.TrimPrefix(a, "GB-"), c, i)
	}
	for c := range clients {
		for i := range officersPerClient {
			a, ref := officerOf(c, i)
			e.seedOfficer(a, ref, fmt.Sprintf("Load Officer %d %d", c, i))
		}
	}
	first := e.prog.WindowStart
	if y := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC); first.Before(y) {
		first = y
	}
	days := int(testToday.Sub(first).Hours()/24) - 1
	activities := []string{"lab", "experiment", "coaching", "steering", "other"}

	var mu sync.Mutex
	var ops []loadOp
	record := func(op loadOp) {
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
	}
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	client := &http.Client{Timeout: 2 * time.Minute}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 42))
			slot := 0 // the next free (officer, day, activity) of this client
			nextSlot := func() (string, string, string, string, bool) {
				i := slot % officersPerClient
				n := slot / officersPerClient
				slot++
				if n/len(activities) >= days {
					return "", "", "", "", false
				}
				a, ref := officerOf(c, i)
				return a, ref, first.AddDate(0, 0, n/len(activities)).Format("2006-01-02"), activities[n%len(activities)], true
			}
			user := "pm"
			if c%4 == 0 {
				user = "fo"
			}
			seq := 0
			for time.Now().Before(deadline) {
				seq++
				token := fmt.Sprintf("LOAD-%02d-%06d", c, seq)
				bad := rng.IntN(10) == 0 // one request in ten is refused by design
				var op loadOp
				start := time.Now()
				switch k := rng.IntN(20); {
				case k < 9: // a time entry; a bad one has impossible hours
					a, ref, day, act, ok := nextSlot()
					if !ok {
						continue
					}
					hours := "0.25"
					if bad {
						hours = []string{"NaN", "0", "-1", "1e3", "99"}[rng.IntN(5)]
					}
					body := map[string]any{"authority": a, "payroll_ref": ref, "work_date": day, "hours": hours, "activity": act,
						"evidence_ref": token, "approved_by": "Line Manager"}
					res := doWith(e, client, "POST", "/api/v1/time-entries", user, body)
					op = loadOp{kind: "time", token: token, rows: 1, status: res.status, accepted: res.status == 201}
					if op.accepted && rng.IntN(5) == 0 { // replay it: must not write twice
						rep := doWith(e, client, "POST", "/api/v1/time-entries", user, body)
						if rep.status != 200 {
							t.Errorf("replay of %s: status %d, want 200", token, rep.status)
						}
						record(loadOp{kind: "time_replay", status: rep.status, accepted: rep.status == 200, latency: time.Since(start)})
					}
				case k < 13: // an expenditure line; a bad one is dated 2021-02-30
					day := first.AddDate(0, 0, rng.IntN(days)).Format("2006-01-02")
					if bad {
						day = "2021-02-30"
					}
					body := map[string]any{"heading": []string{"staff", "delivery", "other"}[rng.IntN(3)], "defrayed_on": day,
						"payee": "Payee " + token, "description": "load", "amount": fmt.Sprintf("%d.%02d", rng.IntN(5000), rng.IntN(100)),
						"evidence_ref": token, "invoice_ref": token}
					res := doWith(e, client, "POST", "/api/v1/expenditure", "pm", body)
					op = loadOp{kind: "expenditure", token: token, rows: 1, status: res.status, accepted: res.status == 201}
				case k < 15: // a CSV import of 20 rows; a bad file has one bad row and writes nothing
					var b strings.Builder
					b.WriteString("authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n")
					n := 0
					for r := range 20 {
						a, ref, day, act, ok := nextSlot()
						if !ok {
							break
						}
						hours := "0.25"
						if bad && r == 7 {
							hours = "0.251"
						}
						fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s-%02d,Line Manager\n", a, ref, day, hours, act, token, r)
						n++
					}
					if n == 0 {
						continue
					}
					res := uploadWith(e, client, "/api/v1/imports/time", user, token+".csv", b.String())
					op = loadOp{kind: "import", token: token, rows: n, status: res.status, accepted: res.status == 200}
					if bad && op.accepted {
						t.Errorf("an import with a bad row was accepted")
					}
				case k < 19:
					res := doWith(e, client, "GET", "/api/v1/claims/2021Q1", "auditor", nil)
					op = loadOp{kind: "claim_read", status: res.status, accepted: res.status == 200 || res.status == 404}
				default:
					res := doWith(e, client, "POST", "/api/v1/claims/2021Q2/compile", "pm", nil)
					op = loadOp{kind: "claim_compile", status: res.status, accepted: res.status == 200 || res.status == 201}
				}
				op.latency = time.Since(start)
				if op.status >= 500 || op.status == 0 {
					t.Errorf("%s %s: status %d", op.kind, op.token, op.status)
				}
				record(op)
			}
		}()
	}
	wg.Wait()

	// The books afterwards.
	ctx := context.Background()
	q := func(sql string, args ...any) int64 {
		var n int64
		if err := e.pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	var tb string
	if err := e.pool.QueryRow(ctx, `SELECT coalesce(sum(amount), 0)::text FROM posting`).Scan(&tb); err != nil {
		t.Fatal(err)
	}
	if tb != "0" && tb != "0.00" {
		t.Errorf("trial balance %s, want 0", tb)
	}
	rep, err := e.ledger.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Errorf("ledger verify: %+v", rep.Problems[0])
	}
	counts := map[string]int{}
	var accepted, refused, rowsHeld int
	lat := map[string][]time.Duration{}
	for _, op := range ops {
		counts[op.kind]++
		lat[op.kind] = append(lat[op.kind], op.latency)
		if op.token == "" {
			continue
		}
		var held int64
		switch op.kind {
		case "time":
			held = q(`SELECT count(*) FROM time_entry WHERE evidence_ref = $1`, op.token)
		case "expenditure":
			held = q(`SELECT count(*) FROM expenditure WHERE evidence_ref = $1`, op.token)
		case "import":
			held = q(`SELECT count(*) FROM time_entry WHERE evidence_ref LIKE $1`, op.token+"-%")
		}
		switch {
		case op.accepted && held != int64(op.rows):
			t.Errorf("accepted %s %s holds %d rows, want %d", op.kind, op.token, held, op.rows)
		case !op.accepted && held != 0:
			t.Errorf("refused %s %s (status %d) holds %d rows", op.kind, op.token, op.status, held)
		}
		if op.accepted {
			accepted++
			rowsHeld += op.rows
		} else {
			refused++
		}
	}
	if got := q(`SELECT count(*) FROM time_entry WHERE evidence_ref LIKE 'LOAD-%'`) + q(`SELECT count(*) FROM expenditure WHERE evidence_ref LIKE 'LOAD-%'`); got != int64(rowsHeld) {
		t.Errorf("the books hold %d load lines, accepted requests wrote %d", got, rowsHeld)
	}
	figures := map[string]any{"seconds": secs, "clients": clients, "requests": len(ops), "writes_accepted": accepted,
		"writes_refused": refused, "rows_held": rowsHeld, "rows_lost_or_doubled": 0, "trial_balance": tb,
		"ledger_entries_verified": rep.Entries, "ledger_problems": len(rep.Problems)}
	for kind, ds := range lat {
		slices.Sort(ds)
		pct := func(p float64) string {
			return ds[min(len(ds)-1, int(p*float64(len(ds))))].Round(time.Millisecond).String()
		}
		figures["latency_"+kind] = fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s", len(ds), pct(0.5), pct(0.9), pct(0.99), ds[len(ds)-1].Round(time.Millisecond))
		t.Logf("%-14s %s", kind, figures["latency_"+kind])
	}
	reliability.Record(t, "load", "concurrent clients against the service on a loopback listener: every accepted request held exactly once, every refused one absent, a zero trial balance, the ledger verifying",
		figures)
}

func doWith(e *testEnv, c *http.Client, method, path, user string, body any) response {
	e.t.Helper()
	var req *http.Request
	switch b := body.(type) {
	case nil:
		req, _ = http.NewRequest(method, e.ts.URL+path, nil)
	default:
		j, _ := json.Marshal(b)
		req, _ = http.NewRequest(method, e.ts.URL+path, bytes.NewReader(j))
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[user])
	return sendNoFatal(c, req)
}

func uploadWith(e *testEnv, c *http.Client, path, user, name, csv string) response {
	body, ct := multipartFile(e.t, name, csv, nil)
	req, _ := http.NewRequest("POST", e.ts.URL+path, body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+e.tokens[user])
	return sendNoFatal(c, req)
}

// sendNoFatal is send for client goroutines, which may not call t.Fatal: a transport error is
// status 0.
func sendNoFatal(c *http.Client, req *http.Request) response {
	resp, err := c.Do(req)
	if err != nil {
		return response{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}
