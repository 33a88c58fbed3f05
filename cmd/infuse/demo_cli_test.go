package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// cancelOn passes output through and cancels once it has seen marker: Ctrl-C at a known step.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(b)
	if strings.Contains(w.buf.String(), w.marker) {
		w.cancel()
	}
	return n, err
}

func (w *cancelOn) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestDemoCLI: the demo, whose users share a published password, is never loaded over data; a
// first load stopped by Ctrl-C says "interrupted" and what to do, and is then refused as part
// loaded rather than served as if it were the demo.
func TestDemoCLI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	expect := func(c *matchCLI, wantCode int, wantOut string, args ...string) {
		t.Helper()
		out, errOut, code := c.run(args...)
		if code != wantCode || !strings.Contains(out+errOut, wantOut) || strings.Contains(out+errOut, "internal error") {
			t.Fatalf("infuse %s: exit %d, want %d with %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, wantOut, out, errOut)
		}
	}
	count := func(url, sql string) int {
		t.Helper()
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var n int
		if err := pool.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("RefusedOverData", func(t *testing.T) {
		t.Parallel()
		c := newMatchCLI(t)
		expect(c, exitOK, "added", "users", "add", "--email", "admin@monmouthshire.gov.uk", "--role", "admin", "--name", "Admin")
		expect(c, exitFail, "D1: the database holds data already", "demo")
		expect(c, exitFail, "point DATABASE_URL at a new, empty database", "demo", "--seed", "2")
		if n := count(c.url, `SELECT (SELECT count(*) FROM app_user) + (SELECT count(*) FROM officer) + (SELECT count(*) FROM entry WHERE source <> 'setup')`); n != 1 {
			t.Fatalf("a refused demo wrote: %d users, officers and entries, want the 1 user", n)
		}
		expect(c, exitOK, "the database holds data already: no demo data loaded", "demo", "--if-empty")
	})

	t.Run("InterruptedFirstLoad", func(t *testing.T) {
		t.Parallel()
		c := newMatchCLI(t)
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		out := &cancelOn{marker: "demo: 2021Q1: claim", cancel: cancel}
		var errOut bytes.Buffer
		code := run(runCtx, []string{"demo"}, out, &errOut, cliEnv(c.url))
		if code != exitInterrupted || !strings.HasPrefix(errOut.String(), "infuse: interrupted\n") ||
			!strings.Contains(errOut.String(), "the demo is part loaded: point DATABASE_URL at a new, empty database before loading it again") ||
			strings.Contains(errOut.String(), "internal error") {
			t.Fatalf("Ctrl-C during the demo: exit %d\nstdout: %s\nstderr: %s", code, out, errOut.String())
		}
		if n := count(c.url, `SELECT count(*) FROM officer`); n == 0 {
			t.Fatal("the demo was stopped before it wrote anything: the test proves nothing")
		}
		// make run's demo --if-empty must not serve the part-loaded demo, nor demo build on it,
		// nor serve started by itself.
		expect(c, exitFail, "D1: an earlier demo load stopped part way", "demo", "--if-empty")
		expect(c, exitFail, "D1: an earlier demo load stopped part way", "demo")
		expect(c, exitFail, "D1: the database holds part of the demo: a load is running (serve once it has finished) or stopped part way", "serve", "--addr", "127.0.0.1:0")
	})
}
