package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/pgserver"
)

// TestProblemsToFixAreNotInternal: a file or directory a person named that cannot be used, and
// a database that cannot be reached, are failures to fix (exit 1) with a message saying what is
// wrong, never "internal error"; Ctrl-C is "interrupted".
func TestProblemsToFixAreNotInternal(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.record()
	c.must("claims", "compile", "--period", "2021Q1")
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect := func(out string, code, want int, wantText string) {
		t.Helper()
		if code != want || !strings.Contains(out, wantText) || strings.Contains(out, "internal error") || cliInternal.MatchString(out) {
			t.Errorf("exit %d, want %d with %q and no internal detail:\n%s", code, want, wantText, out)
		}
	}
	out, code := c.run("claims", "pack", "--period", "2021Q1", "--out", file)
	expect(out, code, exitFail, "cannot write the claim pack into "+file)
	out, code = c.run("claims", "pack", "--period", "2021Q1", "--out", filepath.Join(file, "pack"))
	expect(out, code, exitFail, "is a file")
	out, code = c.run("backup", dir)
	expect(out, code, exitFail, dir)

	// A server that is not there: named without its password, and no log line of internals.
	var stdout, stderr bytes.Buffer
	code = run(context.Background(), []string{"ledger", "verify"}, &stdout, &stderr, func(k string) string {
		if k == "DATABASE_URL" {
			return "postgres://nobody:s3cret@127.0.0.1:1/infuse?connect_timeout=5"
		}
		return ""
	})
	out = stdout.String() + stderr.String()
	expect(out, code, exitFail, `cannot connect to PostgreSQL at 127.0.0.1:1 (database "infuse", user "nobody"): nothing is listening there`)
	if strings.Contains(out, "s3cret") {
		t.Errorf("the password is shown: %s", out)
	}

	// Ctrl-C: the context is cancelled, and whatever failed with it is the interruption.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stdout.Reset()
	stderr.Reset()
	code = run(ctx, []string{"ledger", "verify"}, &stdout, &stderr, cliEnv(c.url))
	if out := stdout.String() + stderr.String(); code != exitInterrupted || out != "infuse: interrupted\n" {
		t.Errorf("interrupted: exit %d %q, want %d and only \"infuse: interrupted\"", code, out, exitInterrupted)
	}
}

// TestForPeople reads file-system errors by kind, whatever their text; root meets no permission
// errors, so they are made here.
func TestForPeople(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code apperr.Code
		want string
	}{
		{apperr.Wrap("x", &fs.PathError{Op: "open", Path: "/srv/a.csv", Err: syscall.EACCES}), apperr.Invalid, "cannot read /srv/a.csv: permission denied"},
		{apperr.Wrap("x", &fs.PathError{Op: "open", Path: "/srv/a.csv", Err: syscall.ENOENT}), apperr.NotFound, "cannot read /srv/a.csv: no such file or directory"},
		{apperr.Wrap("x", &pgconn.PgError{Code: "53100", Message: "could not extend file: No space left on device"}), apperr.Invalid,
			"the database server ran out of resources (could not extend file: No space left on device, SQLSTATE 53100); the step that failed was not kept: make room and run the command again"},
		{apperr.Wrap("x", &os.LinkError{Op: "rename", Old: "/srv/.tmp", New: "/srv/b", Err: syscall.EISDIR}), apperr.Invalid, "cannot write /srv/b: it is a directory"},
		{apperr.Wrap("x", &os.LinkError{Op: "link", Old: "/srv/.tmp", New: "/srv/b", Err: syscall.EEXIST}), apperr.Conflict, "cannot write /srv/b: it exists already"},
		{apperr.Wrap("x", &fs.PathError{Op: "mkdir", Path: "/srv/d", Err: syscall.ENOSPC}), apperr.Invalid, "cannot create the directory /srv/d: no space left"},
		{apperr.Wrap("x", &fs.PathError{Op: "read", Path: "/srv/d", Err: syscall.EIO}), apperr.Internal, "internal error"},
		{apperr.New(apperr.Invalid, "M1", "kept"), apperr.Invalid, "M1: kept"},
		{apperr.Wrap("x", &pgserver.SetupError{Msg: "choose a shorter data directory"}), apperr.Invalid, "embedded PostgreSQL: choose a shorter data directory"},
	} {
		got := forPeople(tc.err)
		if apperr.CodeOf(got) != tc.code || !strings.Contains(apperr.Public(got), tc.want) {
			t.Errorf("%v: %s %q, want %s %q", tc.err, apperr.CodeOf(got), apperr.Public(got), tc.code, tc.want)
		}
	}
}

// TestProgressLineClearedBeforeOutput: the progress line a claims command shows on a terminal is
// cleared before its result is written, so that the result starts on a clean line.
func TestProgressLineClearedBeforeOutput(t *testing.T) {
	var term bytes.Buffer
	line := &progressLine{w: &term, label: "claims"}
	out := clearing{w: &term, line: line}
	line.say("sealing the ledger's new entries")
	fmt.Fprintln(out, "Claim 1")
	fmt.Fprintln(out, "done")
	if got, want := term.String(), "\r\033[Kclaims: sealing the ledger's new entries…\r\033[KClaim 1\ndone\n"; got != want {
		t.Errorf("terminal got %q, want %q", got, want)
	}
}
