package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/internal/hostile"
)

// TestBackupRestoreCLI runs `infuse backup` and `infuse restore` as an operator would: a restore
// into an empty database, a refusal to overwrite one that holds data without --replace, a
// truncated backup refused with --replace, and a restore refused while the service is
// connected, each refusal leaving the database as it was.
func TestBackupRestoreCLI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newMatchCLI(t)
	mustRun := func(c *matchCLI, want int, wantText string, args ...string) {
		t.Helper()
		out, errOut, code := c.run(args...)
		if code != want || !strings.Contains(out+errOut, wantText) {
			t.Fatalf("infuse %s: exit %d, want %d with %q\n%s%s", strings.Join(args, " "), code, want, wantText, out, errOut)
		}
		if cliInternal.MatchString(out + errOut) {
			t.Errorf("infuse %s: internal detail:\n%s%s", strings.Join(args, " "), out, errOut)
		}
	}
	mustRun(src, exitOK, "added", "users", "add", "--email", "pm@monmouthshire.gov.uk", "--role", "programme_manager")
	mustRun(src, exitOK, "1 new rate version", "import", "officers", src.file("officers.csv", hostile.Officers))
	mustRun(src, exitOK, "1 new time entry", "import", "time", src.file("time.csv", hostile.File("time", "", "")))
	file := filepath.Join(src.dir, "infuse.backup")
	mustRun(src, exitOK, "backed up to", "backup", file)
	// An existing file is not replaced without --force, nor is a directory ever written over.
	mustRun(src, exitFail, "B3: "+file+" exists already: name a new file, or add --force", "backup", file)
	mustRun(src, exitFail, "B3: "+src.dir+" is a directory", "backup", "--force", src.dir)
	mustRun(src, exitOK, "backed up to", "backup", file, "--force")

	// books counts what an operator would miss after a bad restore.
	books := func(url string) string {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var s string
		if err := pool.QueryRow(ctx, `SELECT concat_ws(',', (SELECT count(*) FROM entry), (SELECT count(*) FROM posting),
			(SELECT count(*) FROM officer), (SELECT count(*) FROM time_entry), (SELECT count(*) FROM app_user),
			(SELECT coalesce(sum(amount) FILTER (WHERE amount > 0), 0) FROM posting))`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := books(src.url)

	// A database that holds data is not overwritten without --replace.
	mustRun(src, exitFail, "B1: the database is not empty", "restore", file)
	if got := books(src.url); got != want {
		t.Fatalf("a refused restore changed the books: %s, was %s", got, want)
	}

	// Into an empty (migrated, never used) database: restored whole and verified.
	dst := &matchCLI{t: t, url: dbtest.URL(t), dir: t.TempDir()}
	mustRun(dst, exitOK, "chain verified", "restore", file)
	if got := books(dst.url); got != want {
		t.Fatalf("restored books %s, want %s", got, want)
	}
	mustRun(dst, exitOK, "ledger verified", "ledger", "verify")
	mustRun(dst, exitFail, "B1: the database is not empty", "restore", file)

	// Into a database that `infuse migrate` has set up, as a new server is: nothing is lost.
	fresh := newMatchCLI(t)
	mustRun(fresh, exitOK, "chain verified", "restore", file)
	if got := books(fresh.url); got != want {
		t.Fatalf("restored books %s, want %s", got, want)
	}

	// A truncated backup is refused even with --replace, and the database kept.
	whole, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dst.dir, "cut.backup")
	if err := os.WriteFile(cut, whole[:len(whole)*3/4], 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(dst, exitFail, "B1: "+cut+" is truncated, damaged or not a backup", "restore", "--replace", cut)
	mustRun(dst, exitFail, "B1: cannot read the backup", "restore", "--replace", filepath.Join(dst.dir, "missing.backup"))
	if got := books(dst.url); got != want {
		t.Fatalf("a refused restore changed the books: %s, was %s", got, want)
	}

	// Not under a running service, which would carry on with its cached state: stop it first.
	service, err := pgxpool.New(ctx, dst.url)
	if err != nil {
		t.Fatal(err)
	}
	if err := service.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	mustRun(dst, exitFail, "B2: another connection to the database is open: stop the service (infuse serve)", "restore", "--replace", file)
	service.Close()
	mustRun(dst, exitOK, "chain verified", "restore", "--replace", file)
	mustRun(dst, exitUsage, "", "restore")
}
