package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/reliability"
	"github.com/ccr-infuse/infuse/programme"
)

// TestLoadServeHoldsTheBooks builds the infuse binary, starts `infuse serve` as a process of its
// own on a test database, and lets concurrent clients use it over TCP for a fixed time: time
// entries (some replayed), expenditure lines, CSV imports as multipart uploads, claim reads and
// the odd compile, one write in ten bad by design. Then, with the service stopped, it holds the
// books to account: every accepted request present exactly once (by the id the service
// answered and the evidence reference the client chose), every refused one absent, nothing
// else written, a zero trial balance, and `infuse ledger verify` clean. The latency of each
// kind of request is recorded. `make test` runs it for a few seconds; `make soak` for
// INFUSE_LOAD_SECONDS (default 60) with more clients.
func TestLoadServeHoldsTheBooks(t *testing.T) {
	t.Parallel()
	secs, clients := 3, 6
	if os.Getenv(envSoak) != "" {
		secs, clients = 60, 16
		if n, err := strconv.Atoi(os.Getenv("INFUSE_LOAD_SECONDS")); err == nil && n > 0 {
			secs = n
		}
	}
	cli := newMatchCLI(t)
	lt := newLoadTarget(t, cli, clients)
	bin := buildBinary(t)
	srv := startServe(t, newChild(t, bin, shortTempDir(t), "DATABASE_URL="+cli.url))

	ops := lt.drive(srv.base, time.Duration(secs)*time.Second)
	srv.stop()

	verified := verifiedLine(t, newChild(t, bin, shortTempDir(t), "DATABASE_URL="+cli.url).ok("ledger", "verify"))
	figures := lt.account(ops)
	figures["seconds"], figures["clients"] = secs, clients
	figures["ledger_verify"] = verified
	figures["server_exit"] = srv.exit
	reliability.Record(t, "load_serve", "concurrent clients against the real `infuse serve` process over TCP: every accepted request held exactly once, every refused one absent, nothing else written, a zero trial balance and `infuse ledger verify` clean after the service stopped",
		figures)
}

// serveProcess is a running `infuse serve`.
type serveProcess struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT
	done chan error
	mu   sync.Mutex
	out  bytes.Buffer // everything it printed
	exit int
}

// startServe starts `infuse serve` on a free loopback port and waits until it is ready.
func startServe(t *testing.T, c *child) *serveProcess {
	t.Helper()
	cmd := exec.Command(c.bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = c.env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	s := &serveProcess{t: t, cmd: cmd, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		pw.Close()
		s.done <- err
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	listening := regexp.MustCompile(`serving on (http://127\.0\.0\.1:\d+)`)
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.out.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	select {
	case s.base = <-urls:
	case err := <-s.done:
		t.Fatalf("infuse serve ended before listening (%v):\n%s", err, s.output())
	case <-time.After(2 * time.Minute):
		t.Fatalf("infuse serve did not listen within 2 minutes:\n%s", s.output())
	}
	resp, err := http.Get(s.base + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("infuse serve is not ready: %v %v\n%s", resp, err, s.output())
	}
	resp.Body.Close()
	return s
}

func (s *serveProcess) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// stop sends SIGTERM, as an operator's service manager would, and expects a clean exit with
// nothing alarming printed (a panic, a data race, an internal error).
func (s *serveProcess) stop() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-s.done:
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		s.t.Fatalf("infuse serve did not stop within a minute of SIGTERM:\n%s", s.output())
	}
	s.exit = s.cmd.ProcessState.ExitCode()
	if err != nil {
		s.t.Errorf("infuse serve exited %d after SIGTERM: %v", s.exit, err)
	}
	// The scheduler's own refusals under load are logged as errors and are not the service
	// failing a request; a request that failed inside the service is logged as "request failed".
	if out := s.output(); regexp.MustCompile(`DATA RACE|panic|msg="request failed"`).MatchString(out) {
		s.t.Errorf("infuse serve printed trouble:\n%s", out)
	}
}

// loadTarget is the test database's users, tokens and officers, and what the clients may write
// without meeting each other under V3, V4 or V5: every client has officers of its own.
type loadTarget struct {
	t       *testing.T
	cli     *matchCLI
	clients int
	tokens  map[string]string // pm, fo (GB-NWP), auditor
	first   time.Time         // the first work date
	days    int
}

const loadOfficersPerClient = 4

var loadActivities = []string{"lab", "experiment", "coaching", "steering", "other"}

func newLoadTarget(t *testing.T, cli *matchCLI, clients int) *loadTarget {
	t.Helper()
	prog := programme.Default()
	lt := &loadTarget{t: t, cli: cli, clients: clients, tokens: map[string]string{}, first: prog.WindowStart,
		days: int(prog.WindowEnd.Sub(prog.WindowStart).Hours() / 24)}
	for name, args := range map[string][]string{
		"pm":      {"--email", "pm@monmouthshire.gov.uk", "--role", "programme_manager"},
		"fo":      {"--email", "fo@newport.gov.uk", "--role", "finance_officer", "--authority", "GB-NWP"},
		"auditor": {"--email", "auditor@wefo.gov.wales", "--role", "auditor"},
	} {
		if _, errOut, code := cli.run(append([]string{"users", "add"}, args...)...); code != exitOK {
			t.Fatalf("users add %s: %s", name, errOut)
		}
		out, errOut, code := cli.run("tokens", "create", "--email", args[1])
		if code != exitOK {
			t.Fatalf("tokens create %s: %s", name, errOut)
		}
		lt.tokens[name] = strings.TrimSpace(out)
	}
	var b strings.Builder
	b.WriteString("authority,payroll_ref,name,valid_from,annual_cost,fte\n")
	for c := range clients {
		for i := range loadOfficersPerClient {
			a, ref := lt.officer(c, i)
			fmt.Fprintf(&b, "%s,%s,Load Officer %d %d,%s,44750.00,1\n", a, ref, c, i, prog.WindowStart.Format("2006-01-02"))
		}
	}
	if _, errOut, code := cli.run("import", "officers", cli.file("officers.csv", b.String())); code != exitOK {
		t.Fatalf("import officers: %s", errOut)
	}
	return lt
}

// officer is client c's i-th officer. Every fourth client is the finance officer of GB-NWP,
// whose officers are all there.
func (lt *loadTarget) officer(c, i int) (authority, ref string) {
	auths := programme.Default().Authorities
	authority = auths[(c*loadOfficersPerClient+i)%len(auths)].Code
	if c%4 == 0 {
		authority = "GB-NWP"
	}
	return authority, fmt.Sprintf("%s-L%02d%02d", strings.TrimPrefix(authority, "GB-"), c, i)
}

// loadRequest is one request a client made, and what became of it.
type loadRequest struct {
	kind     string // time, time_replay, expenditure, import, claim_read, claim_compile
	token    string // the evidence reference of what it would write ("" for reads)
	rows     int    // rows it would write
	status   int
	accepted bool
	id       int64 // the id the service answered for a recorded line
	written  int64 // the rows an accepted import said it wrote
	latency  time.Duration
}

// drive runs lt.clients concurrent clients against base for d and returns every request made.
func (lt *loadTarget) drive(base string, d time.Duration) []loadRequest {
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: lt.clients}}
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var all []loadRequest
	var wg sync.WaitGroup
	for c := range lt.clients {
		wg.Go(func() {
			reqs := lt.client(hc, base, c, deadline)
			mu.Lock()
			all = append(all, reqs...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all
}

// client is one client's loop: it may not call t.Fatal, so it reports with t.Errorf.
func (lt *loadTarget) client(hc *http.Client, base string, c int, deadline time.Time) []loadRequest {
	rng := rand.New(rand.NewPCG(uint64(c), 7))
	user := "pm"
	if c%4 == 0 {
		user = "fo"
	}
	slot := 0 // the next free (officer, day, activity) of this client
	nextSlot := func() (a, ref, day, act string, ok bool) {
		i, n := slot%loadOfficersPerClient, slot/loadOfficersPerClient
		slot++
		if n/len(loadActivities) >= lt.days {
			return "", "", "", "", false
		}
		a, ref = lt.officer(c, i)
		return a, ref, lt.first.AddDate(0, 0, n/len(loadActivities)).Format("2006-01-02"), loadActivities[n%len(loadActivities)], true
	}
	send := func(method, path, user, contentType string, body []byte) (int, []byte) {
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			lt.t.Errorf("%s %s: %v", method, path, err)
			return 0, nil
		}
		req.Header.Set("Authorization", "Bearer "+lt.tokens[user])
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := hc.Do(req)
		if err != nil {
			lt.t.Errorf("%s %s: %v", method, path, err)
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			lt.t.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode, b
	}
	post := func(path, user string, v any) (int, []byte) {
		j, _ := json.Marshal(v)
		return send("POST", path, user, "application/json", j)
	}
	var out []loadRequest
	for seq := 1; time.Now().Before(deadline); seq++ {
		token := fmt.Sprintf("LOAD-%02d-%06d", c, seq)
		bad := rng.IntN(10) == 0
		r := loadRequest{token: token, rows: 1}
		var answer []byte
		start := time.Now()
		switch k := rng.IntN(20); {
		case k < 9: // a time entry; a bad one has impossible hours; some are sent twice
			a, ref, day, act, ok := nextSlot()
			if !ok {
				continue
			}
			hours := "0.25"
			if bad {
				hours = []string{"NaN", "0", "-1", "1e3", "99", "0.251"}[rng.IntN(6)]
			}
			body := map[string]any{"authority": a, "payroll_ref": ref, "work_date": day, "hours": hours, "activity": act,
				"evidence_ref": token, "approved_by": "Line Manager"}
			r.kind = "time"
			r.status, answer = post("/api/v1/time-entries", user, body)
			r.accepted = r.status == http.StatusCreated
			r.id = answerID(answer)
			if r.accepted && rng.IntN(5) == 0 {
				again := time.Now()
				status, rep := post("/api/v1/time-entries", user, body)
				out = append(out, loadRequest{kind: "time_replay", token: token, status: status, accepted: status == http.StatusOK,
					id: answerID(rep), latency: time.Since(again)})
				if status != http.StatusOK || answerID(rep) != r.id {
					lt.t.Errorf("replay of %s: status %d, id %d; want 200 and id %d", token, status, answerID(rep), r.id)
				}
			}
		case k < 13: // an expenditure line; a bad one is dated 2021-02-30
			day := lt.first.AddDate(0, 0, rng.IntN(lt.days)).Format("2006-01-02")
			if bad {
				day = "2021-02-30"
			}
			body := map[string]any{"heading": []string{"staff", "delivery", "other"}[rng.IntN(3)], "defrayed_on": day,
				"payee": "Payee " + token, "description": "load", "amount": fmt.Sprintf("%d.%02d", 1+rng.IntN(5000), rng.IntN(100)),
				"evidence_ref": token, "invoice_ref": token}
			r.kind = "expenditure"
			r.status, answer = post("/api/v1/expenditure", "pm", body)
			r.accepted = r.status == http.StatusCreated
			r.id = answerID(answer)
		case k < 15: // a CSV upload of up to 20 rows; a bad file has one bad row and writes nothing
			var b strings.Builder
			b.WriteString("authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n")
			r.rows = 0
			for row := range 20 {
				a, ref, day, act, ok := nextSlot()
				if !ok {
					break
				}
				hours := "0.25"
				if bad && row == 7 {
					hours = "0.251"
				}
				fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s-%02d,Line Manager\n", a, ref, day, hours, act, token, row)
				r.rows++
			}
			if r.rows == 0 {
				continue
			}
			body, ct := multipartCSV(token+".csv", b.String())
			r.kind = "import"
			r.status, answer = send("POST", "/api/v1/imports/time", user, ct, body)
			r.accepted = r.status == http.StatusOK
			var res struct{ Rows, Written, Replayed int64 }
			_ = json.Unmarshal(answer, &res)
			r.written = res.Written
			if bad && r.accepted {
				lt.t.Errorf("import %s with a bad row was accepted", token)
			}
		case k < 19:
			r = loadRequest{kind: "claim_read"}
			r.status, _ = send("GET", "/api/v1/claims/2021Q1", "auditor", "", nil)
			r.accepted = r.status == http.StatusOK || r.status == http.StatusNotFound
		default:
			r = loadRequest{kind: "claim_compile"}
			r.status, _ = send("POST", "/api/v1/claims/2021Q2/compile", "pm", "", nil)
			r.accepted = r.status == http.StatusOK || r.status == http.StatusCreated
		}
		r.latency = time.Since(start)
		out = append(out, r)
	}
	return out
}

// answerID reads the id of a recorded line from the service's answer (0 when there is none).
func answerID(b []byte) int64 {
	var v struct {
		ID int64 `json:"id"`
	}
	_ = json.Unmarshal(b, &v)
	return v.ID
}

func multipartCSV(name, csv string) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = io.WriteString(fw, csv)
	_ = mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// account checks the books against the requests made and returns the figures.
func (lt *loadTarget) account(reqs []loadRequest) map[string]any {
	t := lt.t
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, lt.cli.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	q := func(sql string, args ...any) int64 {
		var n int64
		if err := pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	var tb string
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(amount), 0)::numeric(16,2)::text FROM posting`).Scan(&tb); err != nil {
		t.Fatal(err)
	}
	if tb != "0.00" {
		t.Errorf("trial balance %s, want 0.00", tb)
	}
	var accepted, refused, rowsHeld, missing, doubled, refusedPresent, transport int
	lat := map[string][]time.Duration{}
	for _, r := range reqs {
		lat[r.kind] = append(lat[r.kind], r.latency)
		if r.status == 0 {
			transport++
		}
		var held int64
		switch r.kind {
		case "time":
			held = q(`SELECT count(*) FROM time_entry WHERE evidence_ref = $1`, r.token)
			if r.accepted && q(`SELECT count(*) FROM time_entry WHERE evidence_ref = $1 AND id = $2`, r.token, r.id) != 1 {
				t.Errorf("time entry %s: the service answered id %d, which does not hold it", r.token, r.id)
			}
		case "expenditure":
			held = q(`SELECT count(*) FROM expenditure WHERE evidence_ref = $1`, r.token)
			if r.accepted && q(`SELECT count(*) FROM expenditure WHERE evidence_ref = $1 AND id = $2`, r.token, r.id) != 1 {
				t.Errorf("expenditure %s: the service answered id %d, which does not hold it", r.token, r.id)
			}
		case "import":
			held = q(`SELECT count(*) FROM time_entry WHERE evidence_ref LIKE $1`, r.token+"-%")
			if r.accepted && r.written != int64(r.rows) {
				t.Errorf("import %s: the service said it wrote %d of %d rows", r.token, r.written, r.rows)
			}
		default:
			continue // reads and replays write nothing of their own
		}
		switch {
		case r.accepted && held < int64(r.rows):
			missing += r.rows - int(held)
			t.Errorf("accepted %s %s holds %d rows, want %d", r.kind, r.token, held, r.rows)
		case r.accepted && held > int64(r.rows):
			doubled += int(held) - r.rows
			t.Errorf("accepted %s %s holds %d rows, want %d", r.kind, r.token, held, r.rows)
		case !r.accepted && held != 0:
			refusedPresent += int(held)
			t.Errorf("refused %s %s (status %d) holds %d rows", r.kind, r.token, r.status, held)
		}
		if r.accepted {
			accepted++
			rowsHeld += r.rows
		} else {
			refused++
		}
	}
	// Nothing else was written: every line in the books is one an accepted request wrote, and
	// every entry in the ledger beyond the operation's setup posts one of them.
	lines := q(`SELECT count(*) FROM time_entry`) + q(`SELECT count(*) FROM expenditure`)
	if lines != int64(rowsHeld) {
		t.Errorf("the books hold %d lines, accepted requests wrote %d", lines, rowsHeld)
	}
	posted := q(`SELECT count(DISTINCT entry_id) FROM (SELECT entry_id FROM time_entry UNION ALL SELECT entry_id FROM expenditure) l`)
	if entries := q(`SELECT count(*) FROM entry WHERE source <> 'setup'`); entries != lines || posted != lines {
		t.Errorf("the ledger holds %d entries beyond its setup, %d of them posting the %d lines", entries, posted, lines)
	}
	if accepted == 0 || refused == 0 {
		t.Errorf("%d writes accepted and %d refused: the load did not exercise both", accepted, refused)
	}
	figures := map[string]any{"requests": len(reqs), "writes_accepted": accepted, "writes_refused": refused,
		"rows_held": rowsHeld, "rows_missing": missing, "rows_doubled": doubled, "refused_rows_present": refusedPresent,
		"transport_errors": transport, "trial_balance": tb}
	for kind, ds := range lat {
		figures["latency_"+kind] = reliability.Latency(ds)
		t.Logf("%-14s %s", kind, figures["latency_"+kind])
	}
	return figures
}
