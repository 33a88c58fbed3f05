package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/dbtest"
)

// matchCLI runs infuse command lines against one test database, separating stdout and stderr.
type matchCLI struct {
	t   *testing.T
	url string
	dir string
}

func newMatchCLI(t *testing.T) *matchCLI {
	t.Helper()
	c := &matchCLI{t: t, url: dbtest.URL(t), dir: t.TempDir()}
	if _, errOut, code := c.run("migrate"); code != exitOK {
		t.Fatalf("migrate: %d %s", code, errOut)
	}
	return c
}

func (c *matchCLI) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, cliEnv(c.url))
	return out.String(), errOut.String(), code
}

func (c *matchCLI) file(name, body string) string {
	c.t.Helper()
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func TestCLIImportsAndCorrections(t *testing.T) {
	t.Parallel()
	c := newMatchCLI(t)
	expect := func(wantCode int, wantOut string, args ...string) string {
		t.Helper()
		out, errOut, code := c.run(args...)
		if code != wantCode || !strings.Contains(out+errOut, wantOut) {
			t.Fatalf("infuse %s: exit %d, want %d with %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, wantOut, out, errOut)
		}
		return out + errOut
	}
	expect(exitOK, "added rhian.evans@newport.gov.uk (finance_officer, GB-NWP), Rhian Evans",
		"users", "add", "--email", "Rhian.Evans@newport.gov.uk", "--role", "finance_officer", "--authority", "GB-NWP")
	expect(exitOK, "Siân Morgan", "users", "add", "--email", "sian.morgan@monmouthshire.gov.uk", "--role", "programme_manager", "--name", "Siân Morgan")
	expect(exitFail, "A2: a finance officer needs an authority", "users", "add", "--email", "x@cardiff.gov.uk", "--role", "finance_officer")
	expect(exitUsage, "--role is required", "users", "add", "--email", "x@cardiff.gov.uk")
	expect(exitOK, "rhian.evans@newport.gov.uk", "users", "list")
	expect(exitFail, "M1: cannot read missing.csv: no such file or directory", "import", "time", "missing.csv")
	expect(exitFail, "M1: cannot read "+os.TempDir()+": it is a directory", "import", "time", os.TempDir())

	officers := c.file("officers.csv", "authority,payroll_ref,name,valid_from,annual_cost,fte\n"+
		"GB-NWP,NWP-004417,Gwyn Thomas,2021-04-01,44750.00,0.8\nGB-CRF,CRF-1,Dai Jones,2021-04-01,39000.00,1\n")
	expect(exitOK, "officers.csv: 2 rows read; 2 new rate versions (2 new officers); 0 already recorded", "import", "officers", officers)
	expect(exitOK, "0 new rate versions (0 new officers); 2 already recorded", "import", "officers", officers)

	good := c.file("time.csv", "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n"+
		"GB-NWP,NWP-004417,2021-05-04,7.25,lab,TS-2021-05-NWP-0117,Gareth Morgan\n")
	expect(exitOK, "time.csv: 1 row read; 1 new time entry; 0 already recorded", "import", "time", good, "--as", "rhian.evans@newport.gov.uk")
	expect(exitOK, "0 new time entries; 1 already recorded", "import", "time", "--as", "rhian.evans@newport.gov.uk", good)
	twice := c.file("twice.csv", "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n"+
		"GB-NWP,NWP-004417,2021-05-07,2,lab,TS-7,Gareth Morgan\nGB-NWP,NWP-004417,2021-05-07,2,lab,TS-7,Gareth Morgan\n")
	expect(exitOK, "twice.csv: 2 rows read; 1 new time entry; 0 already recorded; 1 row repeats an earlier row of the file, recorded once",
		"import", "time", twice)

	// Every bad row on stderr as "row N: rule: message", exit status 1, nothing written.
	bad := c.file("bad.csv", "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n"+
		"GB-NWP,NWP-004417,2021-05-05,7.5,lab,TS-1,Gareth Morgan\n"+
		"GB-CRF,CRF-1,2021-05-05,7.5,lab,TS-2,Gareth Morgan\n"+
		"GB-NWP,NWP-004417,2021-05-06,1.234,lab,TS-3,Gareth Morgan\n")
	out, errOut, code := c.run("import", "time", bad, "--as", "rhian.evans@newport.gov.uk")
	if code != exitFail || !strings.Contains(errOut, "row 3: V8: ") || !strings.Contains(errOut, "row 4: V3: hours \"1.234\" has 3 decimal places") ||
		strings.Contains(errOut, "row 2:") || !strings.Contains(errOut, "infuse: V8: 2 rows have problems; nothing in bad.csv was recorded") {
		t.Fatalf("bad file: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	expect(exitFail, "there is no user", "import", "time", good, "--as", "nobody@example.org")
	expect(exitFail, "cannot read", "import", "time", filepath.Join(c.dir, "missing.csv"))
	expect(exitUsage, "", "import", "time")

	// The entry recorded above is time entry 1: reverse it. Re-importing the file does not bring
	// it back; a corrected file records the correction.
	expect(exitFail, "M6: a correction needs a reason", "time", "reverse", "--id", "1", "--reason", " ")
	expect(exitOK, "time entry 1 reversed by ledger entry", "time", "reverse", "--id", "1", "--reason", "wrong day", "--as", "rhian.evans@newport.gov.uk")
	expect(exitFail, "M6: time entry 1 has been reversed already", "time", "reverse", "--id", "1", "--reason", "again")
	expect(exitOK, "0 new time entries; 0 already recorded; 1 row matches lines reversed earlier; not recorded again", "import", "time", good)
	corrected := c.file("corrected.csv", "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n"+
		"GB-NWP,NWP-004417,2021-05-05,7.25,lab,TS-2021-05-NWP-0117,Gareth Morgan\n")
	expect(exitOK, "1 new time entry; 0 already recorded", "import", "time", corrected)

	exp := c.file("expenditure.csv", "\xEF\xBB\xBFheading,defrayed_on,payee,description,amount,evidence_ref,invoice_ref\r\n"+
		"delivery,2021-06-30,Nesta,\"Lab facilitation, cohort Alpha\",18250.00,INV-88213,88213\r\n")
	expect(exitFail, "A1: rhian.evans@newport.gov.uk (finance officer) may not import expenditure", "import", "expenditure", exp, "--as", "rhian.evans@newport.gov.uk")
	expect(exitOK, "1 new expenditure line", "import", "expenditure", exp, "--as", "sian.morgan@monmouthshire.gov.uk")
	expect(exitOK, "expenditure line 1 reversed", "expenditure", "reverse", "--id", "1", "--reason", "duplicate invoice")

	// Officers are there, so the demo leaves the database alone.
	expect(exitOK, "no demo data loaded", "demo", "--if-empty")
}

// TestUsersDisableAndEnable: the operator disables a leaver and enables them again; a disabled
// user cannot act with --as (AU6), the list shows who is disabled, and both steps are audited.
func TestUsersDisableAndEnable(t *testing.T) {
	t.Parallel()
	c := newMatchCLI(t)
	if _, errOut, code := c.run("users", "add", "--email", "Leaver@X.example", "--role", "programme_manager"); code != exitOK {
		t.Fatalf("users add: %d %s", code, errOut)
	}
	out, errOut, code := c.run("users", "disable", "--email", "leaver@x.example")
	if code != exitOK || !strings.HasPrefix(out, "leaver@x.example: disabled ") || !strings.HasSuffix(out, " by system\n") {
		t.Fatalf("users disable: %d %q %s", code, out, errOut)
	}
	if out, _, _ := c.run("users", "list"); !strings.Contains(out, "STATUS") || !strings.Contains(out, "disabled ") {
		t.Errorf("users list:\n%s", out)
	}
	_, errOut, code = c.run("claims", "compile", "--period", "2021Q1", "--as", "leaver@x.example")
	if code == exitOK || !strings.Contains(errOut, "AU6") || !strings.Contains(errOut, "was disabled on") {
		t.Errorf("acting as a disabled user: %d %s", code, errOut)
	}
	if _, errOut, code := c.run("users", "disable", "--email", "nobody@x.example"); code == exitOK || !strings.Contains(errOut, `there is no user "nobody@x.example"`) {
		t.Errorf("disabling an unknown user: %d %s", code, errOut)
	}
	if out, errOut, code := c.run("users", "enable", "--email", "leaver@x.example"); code != exitOK || out != "leaver@x.example: active\n" {
		t.Errorf("users enable: %d %q %s", code, out, errOut)
	}
	if out, errOut, code := c.run("claims", "compile", "--period", "2021Q1", "--as", "leaver@x.example"); code != exitOK || !strings.Contains(out, "2021Q1") {
		t.Errorf("acting as an enabled user: %d %s %s", code, out, errOut)
	}
	pool, err := pgxpool.New(t.Context(), c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows, _ := pool.Query(t.Context(), `SELECT action || ' ' || target || ' ' || outcome FROM audit_event
		WHERE action IN ('users.disable', 'users.enable') ORDER BY id`)
	audited, err := pgx.CollectRows(rows, pgx.RowTo[string])
	want := []string{"users.disable leaver@x.example ok", "users.disable nobody@x.example failed", "users.enable leaver@x.example ok"}
	if err != nil || !slices.Equal(audited, want) {
		t.Errorf("audited %q, %v; want %q", audited, err, want)
	}
}

// TestANewerSchemaIsRefused: a database a newer release migrated (or a backup of one restored
// here) is refused by this one (B6), not run with a schema it would misread.
func TestANewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	c := newMatchCLI(t)
	pool, err := pgxpool.New(t.Context(), c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(t.Context(), `INSERT INTO schema_migration (version, name) VALUES (9999, 'from_the_future')`); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"migrate"}, {"users", "list"}} {
		if _, errOut, code := c.run(args...); code != exitFail || !strings.Contains(errOut, "B6: the database was migrated by a newer release of infuse (it holds migration 9999") {
			t.Errorf("%v on a newer schema: %d %s", args, code, errOut)
		}
	}
}
