package main

import (
	"context"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/hostile"
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
	// counts lists the rows of every table an import writes, and their total.
	counts := func() (string, int64) {
		var s string
		var total int64
		if err := pool.QueryRow(ctx, `WITH n(v) AS (VALUES ((SELECT count(*) FROM entry)), ((SELECT count(*) FROM posting)),
			((SELECT count(*) FROM officer)), ((SELECT count(*) FROM rate_version)), ((SELECT count(*) FROM time_entry)),
			((SELECT count(*) FROM expenditure)), ((SELECT count(*) FROM import_run)))
			SELECT string_agg(v::text, ','), sum(v) FROM n`).Scan(&s, &total); err != nil {
			t.Fatal(err)
		}
		return s, total
	}
	if _, errOut, code := c.run("import", "officers", c.file("officers.csv", hostile.Officers)); code != exitOK {
		t.Fatalf("officers: %d %s", code, errOut)
	}
	cases := hostile.CSVs()
	before, beforeRows := counts()
	for _, tc := range cases {
		_, errOut, code := c.run("import", tc.Kind, c.file("hostile.csv", tc.Body))
		if code != exitFail {
			t.Errorf("%s: exit %d, want %d", tc.Name, code, exitFail)
		}
		m := rowRule.FindAllStringSubmatch(errOut, -1)
		if len(m) == 0 || m[0][2] != tc.Rule {
			t.Errorf("%s: rejected rows %v, want rule %s\n%.300s", tc.Name, m, tc.Rule, errOut)
		}
		if cliInternal.MatchString(errOut) {
			t.Errorf("%s: internal detail: %.300s", tc.Name, errOut)
		}
	}
	// Path tricks: the CLI reads the file it is given, and refuses what is not a CSV of the kind.
	paths := []string{"../../../../../../etc/passwd", "/etc/passwd", "/nonexistent/x.csv", "a\x00b.csv", c.dir, "/dev/null"}
	for _, p := range paths {
		_, errOut, code := c.run("import", "time", p)
		if code == exitOK {
			t.Errorf("import of %q succeeded", p)
		}
		if cliInternal.MatchString(errOut) {
			t.Errorf("import of %q: internal detail: %.300s", p, errOut)
		}
	}
	after, afterRows := counts()
	if after != before {
		t.Errorf("refused imports wrote rows: %s -> %s", before, after)
	}
	reliability.Record(t, "hostile_cli", "hostile CSV files and path tricks through `infuse import` exit 1 with row-numbered rule ids and write nothing",
		map[string]any{"inputs": len(cases) + len(paths), "rows_written": afterRows - beforeRows})
}
