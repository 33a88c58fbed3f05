package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/reliability"
)

// rowRule reads the rule ids of an import's rejected rows from the CLI's report, whose shape
// interfaces.md promises: "row N: <rule id>: <message>".
var rowRule = regexp.MustCompile(`(?m)row (\d+): ([A-Z][0-9A-Z.]*):`)

var cliInternal = regexp.MustCompile(`(?i)SQLSTATE|pgx|pgconn|goroutine|panic|runtime error|\.go:\d+`)

func TestHostileCLIImportsAndPaths(t *testing.T) {
	t.Parallel()
	c := newMatchCLI(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	counts := func() string {
		var s string
		if err := pool.QueryRow(ctx, `SELECT concat_ws(',', (SELECT count(*) FROM entry), (SELECT count(*) FROM posting),
			(SELECT count(*) FROM officer), (SELECT count(*) FROM rate_version), (SELECT count(*) FROM time_entry),
			(SELECT count(*) FROM expenditure), (SELECT count(*) FROM import_run))`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	officers := c.file("officers.csv", "authority,payroll_ref,name,valid_from,annual_cost,fte\nGB-NWP,NWP-1,Rhian Evans,2021-01-01,44750.00,0.8\n")
	if _, errOut, code := c.run("import", "officers", officers); code != exitOK {
		t.Fatalf("officers: %d %s", code, errOut)
	}
	const th = "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n"
	const eh = "heading,defrayed_on,payee,description,amount,evidence_ref,invoice_ref\n"
	cases := []struct {
		name, kind, csv string
		rule            string // the rule of the rejected row
	}{
		{"hours NaN", "time", th + "GB-NWP,NWP-1,2021-05-04,NaN,lab,TS-1,G M\n", "V3"},
		{"hours Inf", "time", th + "GB-NWP,NWP-1,2021-05-04,Inf,lab,TS-1,G M\n", "V3"},
		{"hours negative", "time", th + "GB-NWP,NWP-1,2021-05-04,-7.25,lab,TS-1,G M\n", "V3"},
		{"hours zero", "time", th + "GB-NWP,NWP-1,2021-05-04,0,lab,TS-1,G M\n", "V3"},
		{"hours 10000 digits", "time", th + "GB-NWP,NWP-1,2021-05-04," + strings.Repeat("9", 10000) + ",lab,TS-1,G M\n", "M1"},
		{"date 2021-02-30", "time", th + "GB-NWP,NWP-1,2021-02-30,7.25,lab,TS-1,G M\n", "M1"},
		{"invalid UTF-8", "time", th + "GB-NWP,NWP-1,2021-05-04,7.25,lab,TS-1,Si\xf4n\n", "M1"},
		{"1 MB field", "time", th + "GB-NWP,NWP-1,2021-05-04,7.25,lab," + strings.Repeat("x", 1<<20) + ",G M\n", "M1"},
		{"amount NaN", "expenditure", eh + "delivery,2021-06-30,Nesta,Lab,NaN,INV-1,1\n", "R9.1"},
		{"amount 10000 digits", "expenditure", eh + "delivery,2021-06-30,Nesta,Lab," + strings.Repeat("1", 10000) + ",INV-1,1\n", "M1"},
		{"amount exponent", "expenditure", eh + "delivery,2021-06-30,Nesta,Lab,1e5,INV-1,1\n", "R9.1"},
		{"heading formula", "expenditure", eh + "=cmd|' /C calc'!A0,2021-06-30,Nesta,Lab,1.00,INV-1,1\n", "M2"},
		{"fte NaN", "officers", "authority,payroll_ref,name,valid_from,annual_cost,fte\nGB-NWP,NWP-2,X,2021-01-01,1.00,NaN\n", "R5.1"},
	}
	before := counts()
	for _, tc := range cases {
		_, errOut, code := c.run("import", tc.kind, c.file("hostile.csv", tc.csv))
		if code != exitFail {
			t.Errorf("%s: exit %d, want %d", tc.name, code, exitFail)
		}
		m := rowRule.FindAllStringSubmatch(errOut, -1)
		if len(m) == 0 || m[0][2] != tc.rule {
			t.Errorf("%s: rejected rows %v, want rule %s\n%.300s", tc.name, m, tc.rule, errOut)
		}
		if cliInternal.MatchString(errOut) {
			t.Errorf("%s: internal detail: %.300s", tc.name, errOut)
		}
	}
	// Path tricks: the CLI reads the file it is given, and refuses what is not a CSV of the kind.
	for _, p := range []string{"../../../../../../etc/passwd", "/etc/passwd", "/nonexistent/x.csv", "a\x00b.csv", c.dir, "/dev/null"} {
		_, errOut, code := c.run("import", "time", p)
		if code == exitOK {
			t.Errorf("import of %q succeeded", p)
		}
		if cliInternal.MatchString(errOut) {
			t.Errorf("import of %q: internal detail: %.300s", p, errOut)
		}
	}
	if after := counts(); after != before {
		t.Errorf("refused imports wrote rows: %s -> %s", before, after)
	}
	reliability.Record(t, "hostile_cli", "hostile CSV files and path tricks through `infuse import` exit 1 with row-numbered rule ids and write nothing",
		map[string]any{"inputs": len(cases) + 6, "rows_written": 0})
}
