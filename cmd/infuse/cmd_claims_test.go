package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
	"github.com/ccr-infuse/infuse/reports"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// cli runs infuse command lines against one test database.
type cli struct {
	t   *testing.T
	url string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	c := &cli{t: t, url: dbtest.URL(t)}
	if out, code := c.run("migrate"); code != exitOK {
		t.Fatalf("migrate: %d %s", code, out)
	}
	return c
}

// cliEnv is the environment of a command line under test: the test's database, and only
// errors logged.
func cliEnv(url string) func(string) string {
	return func(k string) string {
		switch k {
		case "DATABASE_URL":
			return url
		case "INFUSE_LOG_LEVEL":
			return "error"
		}
		return ""
	}
}

// run runs one command line and returns its output (stdout, then stderr) and exit status.
func (c *cli) run(args ...string) (string, int) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut, cliEnv(c.url))
	return out.String() + errOut.String(), code
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, code := c.run(args...)
	if code != exitOK {
		c.t.Fatalf("infuse %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// record writes the lines of 2021Q1 as package match records them: ledger entries with their
// transaction-list and time-entry rows, and the users who act on claims.
func (c *cli) record() {
	c.t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, c.url)
	if err != nil {
		c.t.Fatal(err)
	}
	defer pool.Close()
	l, err := ledger.Open(ctx, pool, "infuse")
	if err != nil {
		c.t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		c.t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			c.t.Fatalf("%s: %v", sql, err)
		}
	}
	post := func(n int, date, debit, credit, amount string) ledger.Entry {
		c.t.Helper()
		a := decimal.RequireFromString(amount)
		d, _ := programme.ParseDate(date)
		e, err := l.Post(ctx, pool, ledger.EntryInput{EffectiveDate: d, Description: fmt.Sprintf("line %d", n),
			Source: "test", RecordedBy: "test", Postings: []ledger.Posting{{Account: debit, Amount: a}, {Account: credit, Amount: a.Neg()}}})
		if err != nil {
			c.t.Fatal(err)
		}
		return e
	}
	for i, x := range []struct{ heading, date, amount string }{
		{"staff", "2021-01-29", "12500.00"}, {"delivery", "2021-02-26", "18250.00"}, {"other", "2021-03-10", "1432.19"},
	} {
		e := post(i, x.date, ledger.HeadingAccount(x.heading), ledger.Cash, x.amount)
		exec(`INSERT INTO expenditure (operation_id, heading, defrayed_on, payee, description, amount, evidence_ref, generation,
				entry_id, period, recorded_at, recorded_by)
			VALUES ('infuse', $1, $2, 'Nesta', $3, $4, $5, 0, $6, $7, now(), 'test')`,
			x.heading, e.EffectiveDate, fmt.Sprintf("line %d", i), x.amount, fmt.Sprintf("INV-%d", i), e.ID, e.Period)
	}
	for i, x := range []struct{ authority, date, amount string }{
		{"GB-NWP", "2021-02-02", "3718.60"}, {"GB-CRF", "2021-03-03", "2901.25"}, {"GB-BGW", "2021-03-17", "411.77"},
	} {
		e := post(10+i, x.date, ledger.InKind(x.authority), ledger.Match(x.authority), x.amount)
		var officer int64
		if err := pool.QueryRow(ctx, `INSERT INTO officer (operation_id, authority, payroll_ref, name, recorded_at, recorded_by)
			VALUES ('infuse', $1, $2, 'Rhian Evans', now(), 'test') RETURNING id`, x.authority, fmt.Sprintf("P-%d", i)).Scan(&officer); err != nil {
			c.t.Fatal(err)
		}
		exec(`INSERT INTO rate_version (operation_id, officer_id, valid_from, annual_cost, fte, recorded_at, recorded_by)
			VALUES ('infuse', $1, '2021-01-01', 44750.00, 0.8, now(), 'test')`, officer)
		exec(`INSERT INTO time_entry (operation_id, officer_id, work_date, activity, generation, hours, evidence_ref, approved_by,
				rate_valid_from, amount, entry_id, period, recorded_at, recorded_by)
			VALUES ('infuse', $1, $2, 'lab', 0, 7.25, $3, 'Gareth Morgan', '2021-01-01', $4, $5, $6, now(), 'test')`,
			officer, e.EffectiveDate, fmt.Sprintf("TS-%d", i), x.amount, e.ID, e.Period)
	}
	for _, u := range []struct{ email, role string }{
		{"alice@monmouthshire.gov.uk", "programme_manager"}, {"bryn@monmouthshire.gov.uk", "programme_manager"},
	} {
		exec(`INSERT INTO app_user (operation_id, email, name, role, created_at, created_by)
			VALUES ('infuse', $1, 'Test user', $2, now(), 'test')`, u.email, u.role)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestClaimsCLI(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.record()

	// interfaces.md: compile --json and show --json print the claim figures, exactly.
	compiled := c.must("claims", "compile", "--period", "2021Q1", "--json")
	golden(t, "claim_2021Q1.json", compiled)
	if shown := c.must("claims", "show", "--period", "2021Q1", "--json"); shown != compiled {
		t.Errorf("show --json differs from compile --json:\n%s", shown)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(compiled), &v); err != nil {
		t.Fatal(err)
	}
	keys := []string{"claim_number", "esf_due", "findings", "headings", "late_items", "match_by_authority", "period", "status", "total_eligible"}
	if len(v) != len(keys) {
		t.Errorf("JSON has %d keys, want %v", len(v), keys)
	}
	if n := len(v["match_by_authority"].(map[string]any)); n != 10 {
		t.Errorf("%d authorities listed, want 10", n)
	}

	human := c.must("claims", "show", "--period", "2021Q1")
	for _, s := range []string{"Claim 1 (interim) for 2021Q1", "total eligible", "ESF due at 9/14", "GB-NWP", "C6 warn"} {
		if !strings.Contains(human, s) {
			t.Errorf("show lacks %q:\n%s", s, human)
		}
	}

	// The lifecycle through the CLI.
	if out, code := c.run("claims", "submit", "--period", "2021Q1", "--as", "bryn@monmouthshire.gov.uk"); code != exitFail || !strings.Contains(out, "CL2") {
		t.Errorf("submit before review: exit %d %s", code, out)
	}
	if out, code := c.run("claims", "review", "--period", "2021Q1", "--as", "nobody@example.org"); code != exitFail || !strings.Contains(out, "no user") {
		t.Errorf("review by an unknown user: exit %d %s", code, out)
	}
	if _, code := c.run("claims", "review", "--as", "alice@monmouthshire.gov.uk"); code != exitUsage {
		t.Errorf("review without --period: exit %d", code)
	}
	c.must("claims", "review", "--period", "2021Q1", "--as", "alice@monmouthshire.gov.uk")
	if out, code := c.run("claims", "submit", "--period", "2021Q1", "--as", "alice@monmouthshire.gov.uk"); code != exitFail || !strings.Contains(out, "R3.13") {
		t.Errorf("submit by the reviewer: exit %d %s", code, out)
	}
	out := c.must("claims", "submit", "--period", "2021Q1", "--as", "bryn@monmouthshire.gov.uk")
	if !strings.Contains(out, "submitted") {
		t.Errorf("submit: %s", out)
	}
	submitted := c.must("claims", "show", "--period", "2021Q1", "--json")
	if want := strings.Replace(compiled, `"status": "draft"`, `"status": "submitted"`, 1); submitted != want {
		t.Errorf("the submitted claim's figures differ from the draft's:\n%s", submitted)
	}

	// The pack written is the one stored at submission, byte for byte.
	dir := t.TempDir()
	c.must("claims", "pack", "--period", "2021Q1", "--out", dir)
	manifest, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Period string `json:"period"`
		Files  []struct {
			Name   string `json:"name"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil || m.Period != "2021Q1" || len(m.Files) != 2 {
		t.Fatalf("manifest %s: %v", manifest, err)
	}
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s does not match its manifest", f.Name)
		}
	}
	dir2 := t.TempDir()
	c.must("claims", "pack", "--period", "2021Q1", "--out", dir2)
	again, _ := os.ReadFile(filepath.Join(dir2, "manifest.json"))
	if !bytes.Equal(again, manifest) {
		t.Errorf("a second pack differs")
	}

	c.must("claims", "decide", "--period", "2021Q1", "--approved", "26414.23", "--disallowed", "150.00",
		"--reason", "travel outside the programme", "--as", "alice@monmouthshire.gov.uk")
	london, _ := time.LoadLocation("Europe/London")
	today := time.Now().In(london).Format(time.DateOnly) // the decision was dated today, in London
	if out, code := c.run("claims", "pay", "--period", "2021Q1", "--amount", "1.001", "--date", today, "--as", "alice@monmouthshire.gov.uk"); code != exitFail || !strings.Contains(out, "R9.1") {
		t.Errorf("pay with fractions of a penny: exit %d %s", code, out)
	}
	out = c.must("claims", "pay", "--period", "2021Q1", "--amount", "26414.23", "--date", today, "--as", "alice@monmouthshire.gov.uk")
	if !strings.Contains(out, "paid") {
		t.Errorf("pay: %s", out)
	}
	human = c.must("claims", "show", "--period", "2021Q1")
	for _, s := range []string{"ESF approved 26414.23, expenditure disallowed 150.00 (other: travel outside the programme)", "Paid " + today + ": 26414.23"} {
		if !strings.Contains(human, s) {
			t.Errorf("show lacks %q:\n%s", s, human)
		}
	}

	// The disallowance is in the next claim: other −150.00.
	next := c.must("claims", "compile", "--period", "2021Q2", "--json")
	if !strings.Contains(next, `"other": {
      "period": "-150.00",`) {
		t.Errorf("2021Q2 does not carry the disallowance:\n%s", next)
	}
}

// TestClaimsPackWritesTheStoredPack: a claim's pack stored as the service stores it (at
// compiling, and again at review, so that it says "reviewed") is what `claims pack` writes,
// byte for byte, so the files and hashes an auditor gets from the CLI are the ones the web
// serves; once recompiled, with no pack stored for the new compilation, the pack is rendered
// from the ledger.
func TestClaimsPackWritesTheStoredPack(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.record()
	ctx := context.Background()
	c.must("claims", "compile", "--period", "2021Q1")
	pool, err := db.Open(ctx, c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l, err := ledger.Open(ctx, pool, "infuse")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := claims.New(l, programme.Default(), claims.WithVersion(generatorVersion))
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := svc.StoredPack(ctx, "2021Q1") // compile stored it, as the web's and the scheduler's do
	if err != nil {
		t.Fatal(err)
	}
	c.must("claims", "review", "--period", "2021Q1", "--as", "alice@monmouthshire.gov.uk")
	dir := t.TempDir()
	out := c.must("claims", "pack", "--period", "2021Q1", "--out", dir)
	if !strings.Contains(out, "wrote the pack of claim 1 for 2021Q1 (reviewed)") {
		t.Errorf("pack: %s", out)
	}
	served, status, err := svc.StoredPack(ctx, "2021Q1") // what the web serves
	if err != nil || status != claims.Reviewed {
		t.Fatalf("stored pack of the reviewed claim: %s, %v", status, err)
	}
	for i, f := range served {
		data, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, f.Data) {
			t.Errorf("%s written by claims pack differs from the stored one the web serves", f.Name)
		}
		if bytes.Equal(data, stored[i].Data) {
			t.Errorf("%s is still the draft's, after the review", f.Name)
		}
	}
	if m, _ := os.ReadFile(filepath.Join(dir, reports.NameManifest)); !bytes.Contains(m, []byte(`"claim_status": "reviewed"`)) {
		t.Errorf("manifest of the reviewed pack:\n%s", m)
	}

	// Recompiled without storing a pack (as the service alone does): the stored pack is of an
	// earlier compilation, so the pack is rendered afresh.
	if _, err := svc.Compile(ctx, "2021Q1", access.System); err != nil {
		t.Fatal(err)
	}
	again := t.TempDir()
	out = c.must("claims", "pack", "--period", "2021Q1", "--out", again)
	if !strings.Contains(out, "(draft)") {
		t.Errorf("pack after recompiling: %s", out)
	}
	manifest, err := os.ReadFile(filepath.Join(again, reports.NameManifest))
	if err != nil {
		t.Fatal(err)
	}
	var m reports.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	cl, err := svc.Claim(ctx, "2021Q1")
	if err != nil {
		t.Fatal(err)
	}
	if !m.CompiledAt.Equal(cl.CompiledAt) || m.GeneratorVersion != generatorVersion {
		t.Errorf("rendered manifest: compiled at %v by %q, want %v by %q", m.CompiledAt, m.GeneratorVersion, cl.CompiledAt, generatorVersion)
	}

	// The ledger moves past the draft: its pack, stored or not, is refused, and show says why.
	if _, err := l.Post(ctx, pool, ledger.EntryInput{EffectiveDate: cl.Period.Start, Description: "late spend", Source: "test",
		RecordedBy: "test", Postings: []ledger.Posting{{Account: ledger.HeadingAccount("other"), Amount: decimal.RequireFromString("5.00")},
			{Account: ledger.Cash, Amount: decimal.RequireFromString("-5.00")}}}); err != nil {
		t.Fatal(err)
	}
	if out, code := c.run("claims", "pack", "--period", "2021Q1", "--out", t.TempDir()); code != exitFail || !strings.Contains(out, "CL4: the ledger of 2021Q1 has changed") {
		t.Errorf("pack of a stale draft: exit %d\n%s", code, out)
	}
	const note = "note: the ledger has changed since this claim was compiled (CL4): these figures are out of date"
	if out := c.must("claims", "show", "--period", "2021Q1"); !strings.HasPrefix(out, note) {
		t.Errorf("show of a stale draft does not say so first:\n%s", out)
	}
	// With --json the note goes to standard error, and standard output stays JSON.
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"claims", "show", "--period", "2021Q1", "--json"}, &stdout, &stderr, cliEnv(c.url)); code != exitOK ||
		!strings.HasPrefix(stderr.String(), note) || !json.Valid(stdout.Bytes()) {
		t.Errorf("show --json of a stale draft: exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
}
