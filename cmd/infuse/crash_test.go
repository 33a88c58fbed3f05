package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/pgserver"
	"github.com/ccr-infuse/infuse/internal/reliability"
	"github.com/ccr-infuse/infuse/programme"
)

// The crash tests run the real binary as a child process on its own embedded cluster, kill -9
// it in the middle of the long operations (a 200,000-row import, claim compilation, pack
// generation, the scheduler's compile run), restart, and prove that each operation either
// completed or left no trace, that the ledger verifies, and that no PostgreSQL process outlives
// the killed CLI. They take minutes, so they run under `make soak` (INFUSE_SOAK=1) only.

// envSoak enables the long resilience runs.
const envSoak = "INFUSE_SOAK"

func soakOnly(t *testing.T) {
	t.Helper()
	if os.Getenv(envSoak) == "" {
		t.Skipf("a soak test: set %s=1 (make soak)", envSoak)
	}
}

// crashRows is the size of the time import killed mid-way; INFUSE_CRASH_ROWS overrides it.
func crashRows() int {
	if n, err := strconv.Atoi(os.Getenv("INFUSE_CRASH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

// child runs the infuse binary on the data directory dir.
type child struct {
	t    *testing.T
	bin  string
	data string
	env  []string
	// kills counts the SIGKILLs sent, for the figures.
	kills int
}

func newChild(t *testing.T, bin, data string, extra ...string) *child {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "INFUSE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "INFUSE_DATA="+data, "INFUSE_LOG_LEVEL=warn")
	return &child{t: t, bin: bin, data: data, env: append(env, extra...)}
}

func (c *child) command(args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out
}

// ok runs the command to its end and fails the test unless it exits 0.
func (c *child) ok(args ...string) string {
	c.t.Helper()
	cmd, out := c.command(args...)
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("infuse %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out.String()
}

// killWhen starts the command, waits until ready reports true on the child's own cluster (or
// the command ends), then kills it with SIGKILL. It returns whether the kill landed before the
// command ended.
func (c *child) killWhen(ready func(ctx context.Context, pool *pgxpool.Pool) bool, extra time.Duration, args ...string) bool {
	c.t.Helper()
	cmd, out := c.command(args...)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pool := c.attachWhenUp(ctx, done)
	if pool != nil {
		for ctx.Err() == nil && !ready(ctx, pool) {
			select {
			case err := <-done:
				pool.Close()
				c.t.Logf("infuse %s ended (%v) before the kill\n%s", args[0], err, out)
				return false
			case <-time.After(20 * time.Millisecond):
			}
		}
		pool.Close()
	}
	select {
	case <-done:
		return false
	case <-time.After(extra):
	}
	_ = cmd.Process.Kill()
	c.kills++
	err := <-done
	killed := err != nil && strings.Contains(err.Error(), "killed")
	c.assertNoPostgres()
	return killed
}

// attachWhenUp waits until the child's cluster is ready and connects to it without owning it.
func (c *child) attachWhenUp(ctx context.Context, done chan error) *pgxpool.Pool {
	pidFile := filepath.Join(c.data, "postgres", "postmaster.pid")
	for ctx.Err() == nil {
		b, err := os.ReadFile(pidFile)
		if err == nil && strings.Contains(string(b), "ready") {
			srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: c.data, Durable: true})
			if err != nil {
				c.t.Fatal(err)
			}
			if srv.Owned() {
				c.t.Fatal("the test started the cluster: the child should have")
			}
			pool, err := pgxpool.New(ctx, srv.ConnString(databaseName))
			if err != nil {
				c.t.Fatal(err)
			}
			return pool
		}
		select {
		case err := <-done:
			done <- err
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// assertNoPostgres fails the test if a PostgreSQL process of the child's cluster is still alive
// once the parent-death signal has had time to act.
func (c *child) assertNoPostgres() {
	c.t.Helper()
	pgData := filepath.Join(c.data, "postgres")
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := clusterProcesses(pgData)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("PostgreSQL processes %v of %s outlived the killed CLI", left, pgData)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterProcesses lists the live processes whose command line names pgData (the postmaster)
// or that the postmaster named in postmaster.pid heads.
func clusterProcesses(pgData string) []int {
	var out []int
	if b, err := os.ReadFile(filepath.Join(pgData, "postmaster.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])); err == nil {
			if syscall.Kill(pid, 0) == nil && !zombie(pid) {
				out = append(out, pid)
			}
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(pgData)) && !zombie(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// inspect starts the (stopped) cluster in-process, runs fn on it and stops it again.
func (c *child) inspect(fn func(ctx context.Context, pool *pgxpool.Pool)) {
	c.t.Helper()
	ctx := context.Background()
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: c.data, Durable: true})
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = srv.Stop(ctx) }()
	pool, err := pgxpool.New(ctx, srv.ConnString(databaseName))
	if err != nil {
		c.t.Fatal(err)
	}
	defer pool.Close()
	fn(ctx, pool)
}

func count(ctx context.Context, t *testing.T, pool *pgxpool.Pool, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func activeQuery(pattern string) func(ctx context.Context, pool *pgxpool.Pool) bool {
	return func(ctx context.Context, pool *pgxpool.Pool) bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()
			AND state = 'active' AND query ~* $1`, pattern).Scan(&n)
		return err == nil && n > 0
	}
}

// writeCrashFixtures writes officers.csv (120 officers over the ten authorities) and a time.csv
// of rows valid rows spread over them, and returns their paths.
func writeCrashFixtures(t *testing.T, dir string, rows int) (string, string) {
	prog := programme.Default()
	const officers = 120
	var ob, tb strings.Builder
	ob.WriteString("authority,payroll_ref,name,valid_from,annual_cost,fte\n")
	refs := make([][2]string, officers)
	for i := range officers {
		a := prog.Authorities[i%len(prog.Authorities)].Code
		refs[i] = [2]string{a, fmt.Sprintf("%s-%06d", strings.TrimPrefix(a, "GB-"), i)}
		fmt.Fprintf(&ob, "%s,%s,Officer %d,%s,44750.00,1\n", a, refs[i][1], i, prog.WindowStart.Format("2006-01-02"))
	}
	tb.WriteString("authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n")
	activities := []string{"lab", "experiment", "coaching", "steering", "other"}
	// Each officer gets rows/120 entries of 0.5 h, five activities a day on consecutive days:
	// 2.5 h a day and well under 1720 h a year (V3, V4).
	for k := range rows {
		o := k % officers
		n := k / officers
		day := prog.WindowStart.AddDate(0, 0, n/len(activities))
		fmt.Fprintf(&tb, "%s,%s,%s,0.50,%s,TS-%d,Line Manager\n", refs[o][0], refs[o][1], day.Format("2006-01-02"),
			activities[n%len(activities)], k)
	}
	op, tp := filepath.Join(dir, "officers.csv"), filepath.Join(dir, "time.csv")
	if err := os.WriteFile(op, []byte(ob.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tp, []byte(tb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return op, tp
}

// buildBinary builds the infuse binary, with the race detector when this test binary has it (so
// that the packages come from the build cache and the child is checked for races too).
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "infuse")
	args := []string{"build", "-o", bin}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// shortTempDir is a data directory with a path short enough for a Unix socket inside it.
func shortTempDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "crash")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(d, 0o755)
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

type ledgerCounts struct{ entries, timeEntries, imports, claims, packs int64 }

func (c *child) counts() ledgerCounts {
	var lc ledgerCounts
	c.inspect(func(ctx context.Context, pool *pgxpool.Pool) {
		lc.entries = count(ctx, c.t, pool, `SELECT count(*) FROM entry`)
		lc.timeEntries = count(ctx, c.t, pool, `SELECT count(*) FROM time_entry`)
		lc.imports = count(ctx, c.t, pool, `SELECT count(*) FROM import_run`)
		lc.claims = count(ctx, c.t, pool, `SELECT count(*) FROM claim`)
		lc.packs = count(ctx, c.t, pool, `SELECT count(*) FROM claim_pack`)
	})
	return lc
}

func TestCrashKillNineLeavesNoTrace(t *testing.T) {
	soakOnly(t)
	bin := buildBinary(t)
	data := shortTempDir(t)
	c := newChild(t, bin, data)
	rows := crashRows()
	officersCSV, timeCSV := writeCrashFixtures(t, t.TempDir(), rows)
	c.ok("migrate")
	c.ok("import", "officers", officersCSV)
	faults, completed, none, partial, orphans := 0, 0, 0, 0, 0

	// 1. kill -9 during the large import, at growing depths into it; then let it finish.
	base := c.counts()
	for _, extra := range []time.Duration{0, time.Second, 3 * time.Second} {
		killed := c.killWhen(activeQuery(`copy|insert`), extra, "import", "time", timeCSV)
		after := c.counts()
		c.ok("ledger", "verify")
		switch {
		case after == base:
			none++
		case after.timeEntries == int64(rows) && after.entries == base.entries+int64(rows) && after.imports == base.imports+1:
			completed++
			base = after
		default:
			partial++
			t.Fatalf("import killed (%v after it began): partial state %+v, before %+v (%d rows)", extra, after, base, rows)
		}
		if killed {
			faults++
		}
	}
	if base.timeEntries == 0 {
		c.ok("import", "time", timeCSV)
		base = c.counts()
	}
	if base.timeEntries != int64(rows) {
		t.Fatalf("after the import: %d time entries, want %d", base.timeEntries, rows)
	}

	// 2. kill -9 during claims compile.
	period := "2021Q1"
	for _, p := range programme.Default().Periods() {
		if !p.End.Before(programme.Default().WindowStart) {
			period = p.Code
			break
		}
	}
	for _, extra := range []time.Duration{0, 50 * time.Millisecond, 200 * time.Millisecond} {
		if c.killWhen(activeQuery(`.`), extra, "claims", "compile", "--period", period) {
			faults++
		}
		c.inspect(func(ctx context.Context, pool *pgxpool.Pool) {
			claimsN := count(ctx, t, pool, `SELECT count(*) FROM claim WHERE period = $1`, period)
			packs := count(ctx, t, pool, `SELECT count(*) FROM claim_pack WHERE period = $1`, period)
			switch {
			case claimsN == 0 && packs == 0:
				none++
			case claimsN == 1:
				completed++
				if bad := count(ctx, t, pool, `SELECT count(*) FROM claim WHERE period = $1 AND (figures IS NULL OR figures = 'null'::jsonb)`, period); bad != 0 {
					t.Fatalf("half a claim: figures missing")
				}
			default:
				partial++
				t.Fatalf("compile killed: %d claims and %d pack files for %s", claimsN, packs, period)
			}
		})
		c.ok("ledger", "verify")
	}
	c.ok("claims", "compile", "--period", period)

	// 3. kill -9 during claims pack: the out directory holds the three final files or nothing.
	for _, extra := range []time.Duration{0, 100 * time.Millisecond, 400 * time.Millisecond} {
		out := filepath.Join(t.TempDir(), "pack")
		if c.killWhen(activeQuery(`.`), extra, "claims", "pack", "--period", period, "--out", out) {
			faults++
		}
		switch names := dirNames(t, out); {
		case len(names) == 0:
			none++
		case strings.Join(names, ",") == "claim.pdf,claim.xlsx,manifest.json":
			completed++
		default:
			partial++
			t.Errorf("pack killed %v in: the out directory holds %v", extra, names)
		}
		c.ok("claims", "pack", "--period", period, "--out", out)
		if names := dirNames(t, out); strings.Join(names, ",") != "claim.pdf,claim.xlsx,manifest.json" {
			orphans += len(names) - 3
			t.Errorf("pack after the kill: the out directory holds %v", names)
		}
	}
	// The narrowest window: kill the moment the first file appears in the out directory, then
	// run the pack again, as an operator would: only the three final files may remain.
	orphansAfterKill := 0
	for range 3 {
		out := filepath.Join(t.TempDir(), "pack")
		appeared := func(context.Context, *pgxpool.Pool) bool { return len(dirNames(t, out)) > 0 }
		if c.killWhen(appeared, 0, "claims", "pack", "--period", period, "--out", out) {
			faults++
		}
		for _, n := range dirNames(t, out) {
			if strings.HasPrefix(n, ".") {
				orphansAfterKill++
			}
		}
		c.ok("claims", "pack", "--period", period, "--out", out)
		if names := dirNames(t, out); strings.Join(names, ",") != "claim.pdf,claim.xlsx,manifest.json" {
			orphans += len(names) - 3
			t.Errorf("pack run again after a kill: the out directory holds %v", names)
		}
	}
	verified := verifiedLine(t, c.ok("ledger", "verify"))
	reliability.Record(t, "crash_cli", "kill -9 of the CLI during a large import, claims compile and claims pack leaves each all-or-nothing, the ledger verifying and no PostgreSQL process behind",
		map[string]any{"import_rows": rows, "kills": c.kills, "kills_mid_operation": faults, "left_nothing": none, "completed": completed,
			"partial_states": partial, "temp_files_seen_right_after_a_kill": orphansAfterKill, "orphan_files_after_restart": orphans,
			"ledger_verify": verified})
}

// verifiedLine returns the summary line of `infuse ledger verify` that passed, for the figures.
func verifiedLine(t *testing.T, out string) string {
	t.Helper()
	if !strings.Contains(out, "ledger verified") {
		t.Fatalf("ledger verify:\n%s", out)
	}
	return strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
}

// dirNames lists dir (nothing when it does not exist), sorted.
func dirNames(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestCrashSchedulerRedoesInterruptedCompile(t *testing.T) {
	soakOnly(t)
	bin := buildBinary(t)
	data := shortTempDir(t)
	c := newChild(t, bin, data, "INFUSE_CLAIM_SCHEDULE=@every 3s")
	rows := 20_000
	officersCSV, timeCSV := writeCrashFixtures(t, t.TempDir(), rows)
	c.ok("migrate")
	c.ok("import", "officers", officersCSV)
	c.ok("import", "time", timeCSV)

	// Kill serve while its scheduler's run is in progress.
	running := func(ctx context.Context, pool *pgxpool.Pool) bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM scheduler_run WHERE outcome = 'running'`).Scan(&n)
		return err == nil && n > 0
	}
	killed := c.killWhen(running, 0, "serve", "--addr", "127.0.0.1:0")
	if !killed {
		t.Fatal("serve was not killed mid-run")
	}
	var before int64
	c.inspect(func(ctx context.Context, pool *pgxpool.Pool) {
		before = count(ctx, t, pool, `SELECT count(*) FROM claim`)
		if n := count(ctx, t, pool, `SELECT count(*) FROM scheduler_run WHERE outcome = 'running' AND finished_at IS NULL`); n != 1 {
			t.Fatalf("%d interrupted runs recorded, want 1", n)
		}
	})

	// Restart: the scheduler catches up and compiles every ended period.
	want := int64(0)
	for _, p := range programme.Default().Periods() {
		if p.End.Before(time.Now()) {
			want++
		}
	}
	cmd, out := c.command("serve", "--addr", "127.0.0.1:0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pool := c.attachWhenUp(ctx, done)
	if pool == nil {
		t.Fatalf("serve ended: %s", out)
	}
	var claimsN, okRuns int64
	for ctx.Err() == nil {
		claimsN = count(ctx, t, pool, `SELECT count(*) FROM claim`)
		okRuns = count(ctx, t, pool, `SELECT count(*) FROM scheduler_run WHERE outcome = 'ok'`)
		if claimsN == want && okRuns > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	interrupted := count(ctx, t, pool, `SELECT count(*) FROM scheduler_run WHERE outcome = 'interrupted' AND finished_at IS NOT NULL`)
	stillRunning := count(ctx, t, pool, `SELECT count(*) FROM scheduler_run WHERE outcome = 'running'`)
	pool.Close()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-done
	c.assertNoPostgres()
	if claimsN != want || okRuns == 0 {
		t.Fatalf("after the restart: %d claims (want %d), %d successful runs\n%s", claimsN, want, okRuns, out)
	}
	if interrupted < 1 || stillRunning != 0 {
		t.Errorf("%d runs recorded as interrupted (want ≥ 1), %d still marked running (want 0)", interrupted, stillRunning)
	}
	verified := verifiedLine(t, c.ok("ledger", "verify"))
	reliability.Record(t, "crash_scheduler", "kill -9 of `infuse serve` during the scheduler's compile run: the restarted scheduler records the run as interrupted and compiles every ended period, the ledger verifies",
		map[string]any{"claims_before_restart": before, "claims_after_restart": claimsN, "interrupted_runs_on_record": interrupted,
			"ok_runs_after_restart": okRuns, "time_rows": rows, "ledger_verify": verified, "kills": c.kills,
			"runs_left_running": stillRunning})
}
