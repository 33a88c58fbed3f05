package main

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/internal/apperr"
)

// runNoDB runs a command line that must not need a database.
func runNoDB(args ...string) (string, int) {
	out, errOut, code := runNoDBApart(args...)
	return out + errOut, code
}

// runNoDBApart runs a command line that must not need a database, and returns its standard
// output and standard error apart.
func runNoDBApart(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut, func(string) string { return "" })
	return out.String(), errOut.String(), code
}

// TestHelpFlagExitsZero: asking a command for its usage (-h, --help) is no failure, for every
// command, those taking a FILE included; the usage is the command's line from help and its flags.
func TestHelpFlagExitsZero(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		for _, h := range []string{"-h", "--help"} {
			args := append(strings.Fields(c.name), h)
			out, errOut, code := runNoDBApart(args...)
			if code != exitOK || !strings.Contains(out, "usage: "+commandLine(c.name)) || errOut != "" {
				t.Errorf("infuse %s: exit %d, want 0 with the usage on standard output\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
			}
		}
	}
	if out, _ := runNoDB("backup", "-h"); !strings.Contains(out, "-force") {
		t.Errorf("backup -h does not list --force:\n%s", out)
	}
	if out, code := runNoDB("backup"); code != exitUsage || !strings.Contains(out, "usage: infuse backup FILE [--force]") {
		t.Errorf("backup without FILE: exit %d\n%s", code, out)
	}
	// A wrong flag, and the usage after it, go to standard error.
	if out, errOut, code := runNoDBApart("claims", "show", "--bogus"); code != exitUsage || out != "" ||
		!strings.Contains(errOut, "flag provided but not defined: -bogus") || !strings.Contains(errOut, "usage: infuse claims show") {
		t.Errorf("claims show --bogus: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// TestHelpShowsOptionalFlagsAsOptional: help brackets the flags a command does without, so that
// WEFO's decision without a disallowance is not shown as needing --disallowed and --reason.
func TestHelpShowsOptionalFlagsAsOptional(t *testing.T) {
	t.Parallel()
	out, code := runNoDB("help")
	want := "claims decide --period P --approved AMOUNT [--disallowed AMOUNT --reason R] [--heading H] [--date YYYY-MM-DD] --as EMAIL"
	if code != exitOK || !strings.Contains(out, want) {
		t.Errorf("help: exit %d, want the line %q:\n%s", code, want, out)
	}
}

// TestServeRefusesAMalformedAddress as a usage error (2), before it starts anything.
func TestServeRefusesAMalformedAddress(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"nonsense", ":99999", "127.0.0.1:", "127.0.0.1:abc"} {
		if out, code := runNoDB("serve", "--addr", addr); code != exitUsage || !strings.Contains(out, "serve: --addr") {
			t.Errorf("serve --addr %q: exit %d\n%s", addr, code, out)
		}
	}
}

// TestAHangUpStopsACommand: SIGHUP (a closed terminal or SSH session) stops a command as Ctrl-C
// does, through its context, so that it stops its embedded cluster and rolls back, rather than
// dying at once.
func TestAHangUpStopsACommand(t *testing.T) {
	if signal.Ignored(syscall.SIGHUP) {
		t.Skip("this test binary was started to ignore SIGHUP (nohup), which commands then keep ignoring")
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGHUP did not end the command's context")
	}
}

// TestReadPasswordFromAPipe: users passwd reads the first line of a pipe or file; one that holds
// nothing (< /dev/null) is refused with what to do, not a bare EOF.
func TestReadPasswordFromAPipe(t *testing.T) {
	t.Parallel()
	e := &env{stderr: &bytes.Buffer{}}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = w.WriteString("correct horse battery\nsecond line\n"); w.Close() }()
	if pw, err := e.readPassword(context.Background(), r); err != nil || pw != "correct horse battery" {
		t.Errorf("from a pipe: %q, %v", pw, err)
	}
	r.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	_, err = e.readPassword(context.Background(), null)
	if apperr.RuleOf(err) != auth.RulePassword || !strings.Contains(apperr.Public(err), "no password on standard input: pipe it in") {
		t.Errorf("from /dev/null: %v", err)
	}
}
