package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestTheLastClientOutStopsTheCluster: a command that started the embedded cluster waits, once
// done, while another client (another infuse command attached to it) still uses it, saying so,
// and stops it once that one has gone: the other is not cut off part way (B5).
func TestTheLastClientOutStopsTheCluster(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // the cluster runs as an unprivileged user under root
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{cfg: config{DataDir: dir}, stdout: &bytes.Buffer{}, stderr: &stderr, log: slog.New(slog.DiscardHandler), mayCreate: true}
	ctx := context.Background()
	url, err := e.databaseURL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !e.pg.Owned() {
		t.Fatal("a fresh data directory's cluster was not started by this env")
	}
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { e.close(ctx); close(closed) }()
	time.Sleep(time.Second)
	if err := other.Ping(ctx); err != nil {
		t.Fatalf("the cluster was stopped under its other client: %v", err)
	}
	select {
	case <-closed:
		t.Fatal("close returned while another client used the cluster")
	default:
	}
	if !strings.Contains(stderr.String(), "waiting for 1 other client(s) of the embedded PostgreSQL") {
		t.Errorf("the wait was not said: %q", stderr.String())
	}
	other.Close(ctx)
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("close did not stop the cluster once its other client had gone")
	}
	select {
	case <-e.pg.Gone():
	default:
		t.Error("the cluster still runs after close")
	}
}

// TestACommandEndsWhenItsOwnClusterDies: the postmaster this process started dying (killed,
// out of memory) ends the command with B5, so that a service exits for its supervisor to
// restart rather than run on without a database.
func TestACommandEndsWhenItsOwnClusterDies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, end := context.WithCancelCause(context.Background())
	defer end(nil)
	e := &env{cfg: config{DataDir: dir}, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, log: slog.New(slog.DiscardHandler), end: end, mayCreate: true}
	defer e.close(ctx)
	if _, err := e.databaseURL(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(e.pg.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not end when its cluster died")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, errClusterGone) {
		t.Errorf("ended by %v, want B5", cause)
	}
}

// TestOnlyCreatorsMakeAnEmbeddedCluster: a command run where the data directory holds no
// database (the wrong working directory, INFUSE_DATA unset) says so, rather than make a new,
// empty cluster and, say, back that up.
func TestOnlyCreatorsMakeAnEmbeddedCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	getenv := func(k string) string {
		if k == "INFUSE_DATA" {
			return dir
		}
		return ""
	}
	for _, args := range [][]string{{"users", "list"}, {"backup", filepath.Join(dir, "b.dump")}, {"ledger", "verify"}} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut, getenv)
		if code != exitFail || !strings.Contains(errOut.String(), "M2: there is no database in "+dir) {
			t.Errorf("%v where there is no database: %d %s", args, code, errOut.String())
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the refused commands left %d entries in the data directory", len(ents))
	}
}
