package pgserver_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ccr-infuse/infuse/internal/pgserver"
)

// helperEnv makes the test binary act as a service that starts a cluster and then waits to be
// killed, for TestLifecycle's kill -9 step.
const helperEnv = "PGSERVER_TEST_HELPER_DATADIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		s, err := pgserver.Start(context.Background(), pgserver.Options{DataDir: dir})
		if err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("pid %d owned %v\n", s.PID(), s.Owned())
		time.Sleep(time.Hour) // until killed
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// newDataDir returns an empty directory the postgres user can reach when we are root.
func newDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "var")
}

// TestLifecycle walks one data directory through everything a service does with it, paying
// for one initdb: concurrent first starts, attaching, databases, stop, a killed owner, restart.
func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	dataDir := newDataDir(t)
	opts := pgserver.Options{DataDir: dataDir, Settings: map[string]string{"max_connections": "50"}}

	// Two processes starting at once on a fresh directory: one initdbs and starts, one attaches.
	var (
		wg      sync.WaitGroup
		servers [2]*pgserver.Server
		errs    [2]error
	)
	for i := range servers {
		wg.Go(func() { servers[i], errs[i] = pgserver.Start(ctx, opts) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	owner, attached := servers[0], servers[1]
	if !owner.Owned() {
		owner, attached = attached, owner
	}
	t.Cleanup(func() { owner.Stop(context.Background()) })
	if !owner.Owned() || attached.Owned() {
		t.Fatalf("Owned: got %v and %v, want exactly one owner", owner.Owned(), attached.Owned())
	}
	if owner.PID() != attached.PID() || owner.ConnString("x") != attached.ConnString("x") {
		t.Fatalf("attached to pid %d (%s), owner is pid %d (%s)",
			attached.PID(), attached.ConnString("x"), owner.PID(), owner.ConnString("x"))
	}

	for name, want := range map[string]string{"fsync": "off", "synchronous_commit": "off",
		"full_page_writes": "off", "max_connections": "50", "shared_buffers": "128MB"} {
		if got := queryString(t, attached.ConnString("postgres"), "SHOW "+name); got != want {
			t.Errorf("SHOW %s = %q, want %q", name, got, want)
		}
	}
	// The backends keep the memory they free for the next transaction (mallocTunables). glibc
	// may rewrite the setting in place as it reads it (the separators become NULs): look for
	// the first tunable.
	first, _, _ := strings.Cut(pgserver.MallocTunables, ":")
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", owner.PID())); err != nil {
		t.Error(err)
	} else if _, set := os.LookupEnv("GLIBC_TUNABLES"); !set && !bytes.Contains(env, []byte("GLIBC_TUNABLES="+first)) {
		t.Errorf("the postmaster's environment lacks GLIBC_TUNABLES=%s: %q", pgserver.MallocTunables, env)
	}
	sysID := queryString(t, owner.ConnString("postgres"), "SELECT system_identifier::text FROM pg_control_system()")

	// EnsureDatabase is idempotent, also when two callers race.
	for range 2 {
		if err := owner.EnsureDatabase(ctx, "app"); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range servers {
		wg.Go(func() {
			if err := s.EnsureDatabase(ctx, "race"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	exec1(t, owner.ConnString("app"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')")

	// Stopping a server we only attached to leaves it running.
	if err := attached.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, attached.ConnString("app"), "SELECT v FROM kept"); got != "survives" {
		t.Fatalf("after attached Stop: got %q", got)
	}

	// Stopping the owner stops the postmaster, and a server attached to it learns that it has.
	watcher, err := pgserver.Start(ctx, opts)
	if err != nil || watcher.Owned() {
		t.Fatalf("attach again: owned %v, %v", watcher != nil && watcher.Owned(), err)
	}
	gone := watcher.Gone()
	select {
	case <-gone:
		t.Fatal("Gone closed while the postmaster runs")
	case <-time.After(1200 * time.Millisecond):
	}
	pid := owner.PID()
	if err := owner.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Fatalf("postmaster %d still running after Stop", pid)
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("an attached server's Gone did not close after its postmaster stopped")
	}
	watcher.Stop(ctx)
	if _, err := os.Stat(filepath.Join(dataDir, "postgres", "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("postmaster.pid after Stop: %v", err)
	}
	if err := owner.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// A service killed with SIGKILL takes its postmaster with it (parent-death signal).
	t.Run("KilledOwnerLeavesNoPostgres", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+dataDir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper: %v: %s", err, stderr.String())
		}
		var helperPid int
		var owned bool
		if _, err := fmt.Sscanf(line, "pid %d owned %t", &helperPid, &owned); err != nil || !owned {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper said %q (%v)", line, err)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		deadline := time.Now().Add(30 * time.Second)
		for !processGone(helperPid) {
			if time.Now().After(deadline) {
				syscall.Kill(helperPid, syscall.SIGQUIT)
				t.Fatalf("postmaster %d still running 30 s after its parent was killed", helperPid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	// Starting again reuses the cluster: same system identifier, data intact.
	again, err := pgserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Stop(context.Background()) })
	if !again.Owned() {
		t.Fatal("restart did not start its own postmaster")
	}
	if got := queryString(t, again.ConnString("postgres"), "SELECT system_identifier::text FROM pg_control_system()"); got != sysID {
		t.Fatalf("system identifier %s after restart, was %s: the cluster was re-initialised", got, sysID)
	}
	if got := queryString(t, again.ConnString("app"), "SELECT v FROM kept"); got != "survives" {
		t.Fatalf("after restart: got %q", got)
	}
	pid = again.PID()
	if err := again.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Fatalf("postmaster %d still running after Stop", pid)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	t.Parallel()
	long := "/tmp/" + strings.Repeat("d", 100)
	for name, opts := range map[string]pgserver.Options{
		"EmptyDataDir":   {},
		"DataDirTooLong": {DataDir: long},
		"PortSetting":    {DataDir: t.TempDir(), Settings: map[string]string{"port": "5432"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := pgserver.Start(t.Context(), opts)
			if err == nil {
				t.Fatal("Start succeeded")
			}
			t.Log(err)
		})
	}
	if _, err := os.Stat(long); err == nil {
		t.Errorf("Start created %s before rejecting it", long)
	}
}

func TestStartAsRootRejectsUntraversableParent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the cluster as another user")
	}
	t.Parallel()
	parent, err := os.MkdirTemp("", "pgserver-closed-") // 0700
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(parent)
	_, err = pgserver.Start(t.Context(), pgserver.Options{DataDir: filepath.Join(parent, "var")})
	if err == nil || !strings.Contains(err.Error(), parent+" ") {
		t.Fatalf("Start: got %v, want an error naming %s", err, parent)
	}
	t.Log(err)
}

func TestFindBinDir(t *testing.T) {
	t.Parallel()
	dir, err := pgserver.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}

func queryString(t *testing.T, connString, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), connString)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(t.Context(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func exec1(t *testing.T, connString, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), connString)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// processGone reports whether pid no longer runs. A zombie counts as gone: an orphaned
// postmaster is re-parented to pid 1, which in a container may never reap it.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}
