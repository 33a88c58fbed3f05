// Package pgserver runs a private PostgreSQL cluster as a child process of the service: it finds
// the server binaries, initialises the cluster inside the service's data directory on first use,
// starts the postmaster on a Unix socket in that directory (and loopback TCP on a free port), and
// stops it again. A second process pointed at the same data directory attaches to the running
// postmaster instead of starting another one.
//
// Layout under Options.DataDir:
//
//	postgres/           the cluster (PGDATA), owned by the user the server runs as
//	run/                the Unix socket directory
//	postgres.log        initdb and server output
//	postgres-password   the superuser's password, for TCP connections (mode 0600)
//	.pgserver.lock      flock held while a process checks, initialises and starts the cluster
package pgserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// Superuser is the cluster's superuser role, created by initdb.
	Superuser = "postgres"

	// systemUser owns and runs the cluster when this process is root (initdb refuses root).
	systemUser = "postgres"

	// maxSocketPath is the longest Unix socket path we accept: sun_path holds 108 bytes
	// including the terminating NUL, and PostgreSQL rejects anything that does not fit.
	maxSocketPath = 107

	readyTimeout = 30 * time.Second // postmaster start until it accepts connections
	stopTimeout  = 30 * time.Second // fast shutdown (SIGINT) before escalating to SIGQUIT
	quitTimeout  = 10 * time.Second // immediate shutdown (SIGQUIT) before SIGKILL
	pollInterval = 50 * time.Millisecond
	logTailBytes = 4096
	maxLogSize   = 64 << 20
)

// Options configures Start.
type Options struct {
	// DataDir is the service's data directory (INFUSE_DATA, default ./var). The cluster lives in
	// DataDir/postgres, its Unix socket in DataDir/run, its log in DataDir/postgres.log.
	DataDir string
	// Durable turns fsync, full_page_writes and synchronous_commit on (the service, benchmarks).
	// False turns all three off: much faster, and a crash may lose or corrupt the cluster, which
	// is fine only for throwaway data (tests).
	Durable bool
	// Settings are extra server settings passed as -c name=value; they override the defaults
	// (listen_addresses=127.0.0.1, max_connections=200, shared_buffers=128MB, or when durable
	// an eighth of memory between 128MB and 1GB and wal_buffers=16MB,
	// unix_socket_permissions=0700 and the durability trio). port and unix_socket_directories are chosen by Start and may not be set
	// here.
	Settings map[string]string
	// BinDir holds initdb and postgres; empty means FindBinDir.
	BinDir string
	// Logger receives progress and warnings; nil discards them.
	Logger *slog.Logger
}

// Server is a running PostgreSQL cluster: one this process started (Owned) or one another
// process started on the same data directory and this process attached to.
type Server struct {
	log     *slog.Logger
	dataDir string
	pgData  string
	sockDir string
	port    int
	pid     int
	owned   bool

	proc    *postmaster // nil unless owned
	logFile *os.File    // nil unless owned

	stopOnce sync.Once
	stopErr  error

	goneOnce sync.Once
	gone     chan struct{} // closed once the attached postmaster has exited (Gone)
	unwatch  chan struct{} // closed by Stop of an attached server: stop watching its postmaster
}

// osUser is the system user the cluster runs as when this process is root.
type osUser struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32
}

// Start returns a running cluster for opts.DataDir. If a live postmaster already serves that
// directory and accepts connections, Start attaches to it (Owned reports false and Stop does
// nothing). Otherwise it runs initdb if the cluster does not exist yet, starts the postmaster as
// a child process and waits until it accepts connections. Concurrent Starts on one data
// directory, in one process or several, are serialised by a file lock: exactly one starts the
// postmaster, the others attach. An attached server keeps the settings it was started with.
//
// The postmaster is in its own process group, so a Ctrl-C aimed at the service's group does not
// reach it before Stop does, and on Linux it receives SIGINT (fast shutdown) if this process
// dies without calling Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("pgserver: Options.DataDir is empty")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: data directory %q: %w", opts.DataDir, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		log:     log,
		dataDir: dataDir,
		pgData:  filepath.Join(dataDir, "postgres"),
		sockDir: filepath.Join(dataDir, "run"),
	}
	if p := socketPath(s.sockDir, 65535); len(p) > maxSocketPath {
		return nil, &SetupError{Msg: fmt.Sprintf("data directory %s is too long: its socket path %s would be %d bytes, "+
			"the limit is %d; choose a shorter data directory", dataDir, p, len(p), maxSocketPath)}
	}
	settings, err := serverSettings(opts)
	if err != nil {
		return nil, err
	}
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	} else if err := checkBinDir(binDir); err != nil {
		return nil, fmt.Errorf("pgserver: bin directory %s: %w", binDir, err)
	}
	owner, err := clusterOwner()
	if err != nil {
		return nil, err
	}
	if err := prepareDataDir(dataDir, owner); err != nil {
		return nil, err
	}

	unlock, err := lockFile(ctx, filepath.Join(dataDir, ".pgserver.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	if ok, err := s.attach(ctx); err != nil {
		return nil, err
	} else if ok {
		return s, nil
	}
	if err := s.openLog(owner); err != nil {
		return nil, err
	}
	if err := s.initdb(ctx, binDir, owner, opts.Durable); err != nil {
		s.logFile.Close()
		return nil, err
	}
	if err := s.start(ctx, binDir, owner, settings); err != nil {
		s.logFile.Close()
		return nil, err
	}
	return s, nil
}

// ConnString returns a keyword/value connection string for database dbname over the Unix socket,
// as the superuser (trusted locally, so no password).
func (s *Server) ConnString(dbname string) string {
	return connString(s.sockDir, s.port, dbname)
}

// Owned reports whether this process started the postmaster (and so Stop stops it).
func (s *Server) Owned() bool { return s.owned }

// PID returns the postmaster's process id.
func (s *Server) PID() int { return s.pid }

// Port returns the port the postmaster listens on (loopback TCP, and the socket's name).
func (s *Server) Port() int { return s.port }

// SocketDir returns the directory holding the postmaster's Unix socket.
func (s *Server) SocketDir() string { return s.sockDir }

// Stop shuts an owned postmaster down: fast shutdown (SIGINT: active transactions are rolled
// back, sessions ended), escalating to immediate shutdown (SIGQUIT) if it has not exited within
// 30 s or when ctx ends, and to SIGKILL as a last resort. It waits until the process has exited.
// For an attached server Stop leaves the postmaster running and stops watching it (Gone). Stop
// is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	if !s.owned {
		s.goneOnce.Do(func() { s.gone = make(chan struct{}) }) // no watcher starts after Stop
		s.stopOnce.Do(func() {
			if s.unwatch != nil {
				close(s.unwatch)
			}
		})
		return nil
	}
	s.stopOnce.Do(func() {
		s.stopErr = s.stop(ctx)
		s.logFile.Close()
	})
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	began := time.Now()
	p := s.proc
	select {
	case <-p.exited:
		s.log.Warn("postgres had already exited", "pid", s.pid, "exit", exitString(p.err))
		return nil
	default:
	}
	p.signal(syscall.SIGINT)
	if p.wait(ctx, stopTimeout) {
		s.log.Info("postgres stopped", "pid", s.pid, "elapsed", time.Since(began).Round(time.Millisecond), "exit", exitString(p.err))
		return nil
	}
	cause := "timeout"
	if ctx.Err() != nil {
		cause = ctx.Err().Error()
	}
	s.log.Warn("postgres did not stop after SIGINT; sending SIGQUIT", "pid", s.pid, "cause", cause)
	p.signal(syscall.SIGQUIT)
	if p.wait(context.Background(), quitTimeout) {
		if ctx.Err() != nil {
			return fmt.Errorf("pgserver: stop postgres (pid %d): immediate shutdown after %w", s.pid, ctx.Err())
		}
		return nil
	}
	s.log.Error("postgres did not stop after SIGQUIT; sending SIGKILL", "pid", s.pid)
	p.signal(syscall.SIGKILL)
	if p.wait(context.Background(), quitTimeout) {
		return fmt.Errorf("pgserver: stop postgres (pid %d): killed after SIGINT and SIGQUIT failed", s.pid)
	}
	return fmt.Errorf("pgserver: stop postgres (pid %d): still running after SIGKILL", s.pid)
}

// SetupError is a problem with the data directory the operator chose, theirs to fix; Msg says
// what to do.
type SetupError struct{ Msg string }

func (e *SetupError) Error() string { return "pgserver: " + e.Msg }

// Gone returns a channel closed once the postmaster has exited. For a server this process
// attached to, that is whenever the process that started it stops it (or dies): the process
// checks every half second, until Stop, after which the channel never closes. A command
// attached to a cluster can so end, saying why, rather than fail query after query.
func (s *Server) Gone() <-chan struct{} {
	if s.owned {
		return s.proc.exited
	}
	s.goneOnce.Do(func() {
		s.gone = make(chan struct{})
		s.unwatch = make(chan struct{})
		go func() {
			t := time.NewTicker(goneInterval)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					if processState(s.pid) == procGone {
						close(s.gone)
						return
					}
				case <-s.unwatch:
					return
				}
			}
		}()
	})
	return s.gone
}

// goneInterval is how often Gone checks an attached postmaster.
const goneInterval = 500 * time.Millisecond

// EnsureDatabase creates database name if it does not exist. Two callers racing to create the
// same database both succeed.
func (s *Server) EnsureDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.ConnString("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: ensure database %s: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("pgserver: ensure database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || // duplicate_database
		pgErr.Code == "23505" && pgErr.ConstraintName == "pg_database_datname_index") { // lost a concurrent race
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgserver: create database %s: %w", name, err)
	}
	s.log.Info("database created", "database", name)
	return nil
}

// attach looks for a postmaster already serving the data directory. It reports true, having
// filled in s, if one is alive and accepts connections. A postmaster.pid naming a process that is
// gone is left for postgres to handle; one naming a live process that is not postgres (the pid
// was reused after a crash) is removed, since postgres would refuse to start because of it.
func (s *Server) attach(ctx context.Context) (bool, error) {
	pidPath := filepath.Join(s.pgData, "postmaster.pid")
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for {
		info, err := readPidFile(pidPath)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		case err != nil:
			lastErr = err // possibly being written by a postmaster starting right now
		default:
			switch processState(info.pid) {
			case procGone:
				s.log.Info("stale postmaster.pid, process gone", "pid", info.pid)
				return false, nil
			case procOther:
				s.log.Warn("postmaster.pid names a live process that is not postgres; removing it", "pid", info.pid)
				if err := os.Remove(pidPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return false, fmt.Errorf("pgserver: remove stale %s: %w", pidPath, err)
				}
				return false, nil
			}
			if info.sockDir == "" {
				return false, fmt.Errorf("pgserver: postmaster (pid %d) on %s has no Unix socket", info.pid, s.pgData)
			}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := ping(pctx, connString(info.sockDir, info.port, "postgres"))
			cancel()
			if err == nil {
				s.pid, s.port, s.sockDir, s.owned = info.pid, info.port, info.sockDir, false
				s.log.Info("attached to running postgres", "pid", s.pid, "port", s.port, "socket_dir", s.sockDir)
				return true, nil
			}
			lastErr = fmt.Errorf("postmaster (pid %d) does not accept connections: %w", info.pid, err)
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("pgserver: %s: %w", s.pgData, lastErr)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("pgserver: %s: %w (last: %v)", s.pgData, ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// initdb creates the cluster if DataDir/postgres is missing or empty. It initialises a sibling
// directory and renames it into place, so an interrupted initdb never leaves a half-made cluster
// where Start would take it for a real one.
func (s *Server) initdb(ctx context.Context, binDir string, owner *osUser, durable bool) error {
	if _, err := os.Stat(filepath.Join(s.pgData, "PG_VERSION")); err == nil {
		return nil
	}
	entries, err := os.ReadDir(s.pgData)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("pgserver: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("pgserver: %s is not empty but holds no PostgreSQL cluster (no PG_VERSION); "+
			"move it away or empty it", s.pgData)
	default:
		if err := os.Remove(s.pgData); err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
	}
	pwFile, err := passwordFile(filepath.Join(s.dataDir, "postgres-password"), owner)
	if err != nil {
		return err
	}

	tmp := s.pgData + ".initdb"
	began := time.Now()
	var runErr error
	for _, locale := range []string{"C.UTF-8", "C"} {
		if err := os.RemoveAll(tmp); err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		if err := mkdirOwned(tmp, 0o700, owner); err != nil {
			return err
		}
		args := []string{"-D", tmp, "-U", Superuser, "--auth-local=trust", "--auth-host=scram-sha-256",
			"--pwfile=" + pwFile, "-E", "UTF8", "--locale=" + locale}
		if !durable {
			args = append(args, "--no-sync")
		}
		offset := s.logSize()
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), args...)
		cmd.Dir = s.dataDir
		cmd.Env = childEnv()
		cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
		cmd.SysProcAttr = sysProcAttr(owner, syscall.SIGKILL)
		if runErr = cmd.Run(); runErr == nil {
			s.log.Info("initdb done", "data_dir", s.pgData, "locale", locale, "elapsed", time.Since(began).Round(time.Millisecond))
			break
		}
		runErr = fmt.Errorf("pgserver: initdb --locale=%s: %w; log tail:\n%s", locale, runErr, s.logTail(offset))
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("initdb failed", "locale", locale, "err", runErr)
	}
	if runErr != nil {
		os.RemoveAll(tmp)
		return runErr
	}
	if err := os.Rename(tmp, s.pgData); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

// start runs the postmaster, retrying on another port if the one picked was taken meanwhile.
func (s *Server) start(ctx context.Context, binDir string, owner *osUser, settings []string) error {
	if err := mkdirOwned(s.sockDir, 0o700, owner); err != nil {
		return err
	}
	// Sockets and their lock files left by a postmaster that died uncleanly: no postmaster
	// serves this directory now (attach said so, and we hold the lock), and each start picks a
	// new port, so nothing would ever remove them.
	stale, _ := filepath.Glob(filepath.Join(s.sockDir, ".s.PGSQL.*"))
	for _, f := range stale {
		os.Remove(f)
	}
	const attempts = 3
	for i := 1; ; i++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		err = s.startOn(ctx, binDir, owner, port, settings)
		var se *startError
		if err == nil || i == attempts || !errors.As(err, &se) || !se.portTaken {
			return err
		}
		s.log.Warn("port taken, retrying", "port", port)
	}
}

func (s *Server) startOn(ctx context.Context, binDir string, owner *osUser, port int, settings []string) error {
	args := []string{"-D", s.pgData, "-k", s.sockDir, "-p", strconv.Itoa(port)}
	for _, kv := range settings {
		args = append(args, "-c", kv)
	}
	offset := s.logSize()
	cmd := exec.Command(filepath.Join(binDir, "postgres"), args...)
	cmd.Dir = s.dataDir
	cmd.Env = postgresEnv()
	cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
	cmd.SysProcAttr = sysProcAttr(owner, syscall.SIGINT)
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgserver: start postgres: %w", err)
	}
	p := &postmaster{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()

	cs := connString(s.sockDir, port, "postgres")
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	var lastErr error
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		lastErr = ping(pctx, cs)
		cancel()
		if lastErr == nil {
			break
		}
		fail := ""
		select {
		case <-p.exited:
			tail := s.logTail(offset)
			return &startError{
				msg:       fmt.Sprintf("pgserver: postgres exited during start (%v); log tail:\n%s", p.err, tail),
				portTaken: strings.Contains(tail, "could not bind") || strings.Contains(tail, "ddress already in use"),
			}
		case <-ctx.Done():
			fail = ctx.Err().Error()
		case <-deadline.C:
			fail = fmt.Sprintf("not accepting connections after %s (%v)", readyTimeout, lastErr)
		case <-time.After(pollInterval):
			continue
		}
		p.signal(syscall.SIGQUIT)
		if !p.wait(context.Background(), quitTimeout) {
			p.signal(syscall.SIGKILL)
			p.wait(context.Background(), quitTimeout)
		}
		return fmt.Errorf("pgserver: start postgres: %s; log tail:\n%s", fail, s.logTail(offset))
	}
	s.proc, s.pid, s.port, s.owned = p, cmd.Process.Pid, port, true
	s.log.Info("postgres started", "pid", s.pid, "port", port, "socket_dir", s.sockDir,
		"data_dir", s.pgData, "elapsed", time.Since(began).Round(time.Millisecond))
	return nil
}

type startError struct {
	msg       string
	portTaken bool
}

func (e *startError) Error() string { return e.msg }

// postmaster is a child postgres process and its reaper.
type postmaster struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited and been reaped
	err    error         // cmd.Wait's result; read only after exited is closed
}

// signal sends sig and reports whether the process was still there to receive it.
func (p *postmaster) signal(sig os.Signal) bool {
	return p.cmd.Process.Signal(sig) == nil
}

// wait reports whether the process exited within d (or before ctx ended).
func (p *postmaster) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// openLog opens DataDir/postgres.log for appending, first moving it to postgres.log.1 if it has
// grown past maxLogSize, so a long-lived data directory does not fill the disk with it.
func (s *Server) openLog(owner *osUser) error {
	path := filepath.Join(s.dataDir, "postgres.log")
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxLogSize {
		if err := os.Rename(path, path+".1"); err != nil {
			return fmt.Errorf("pgserver: rotate log: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if owner != nil {
		if err := f.Chown(int(owner.uid), int(owner.gid)); err != nil {
			f.Close()
			return fmt.Errorf("pgserver: %w", err)
		}
	}
	s.logFile = f
	return nil
}

func (s *Server) logSize() int64 {
	fi, err := s.logFile.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail returns the end of what the log gained since offset, for error messages.
func (s *Server) logTail(offset int64) string {
	f, err := os.Open(s.logFile.Name())
	if err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > logTailBytes {
		offset = fi.Size() - logTailBytes
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}

// serverSettings merges the defaults with opts.Settings into sorted name=value pairs.
func serverSettings(opts Options) ([]string, error) {
	onOff := "off"
	if opts.Durable {
		onOff = "on"
	}
	m := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"max_connections":         "200",
		"shared_buffers":          "128MB",
		"unix_socket_permissions": "0700",
		"fsync":                   onOff,
		"full_page_writes":        onOff,
		"synchronous_commit":      onOff,
	}
	if opts.Durable {
		// A durable cluster holds the service's books, and its working set is the ledger's
		// tables and indexes: with PostgreSQL's 128MB, a batch of 50,000 entries already had
		// the backend writing out dirty pages to make room. Measured: batch posting about 10%
		// faster.
		m["shared_buffers"] = sharedBuffers(totalMemory())
		// The WAL buffers are one segment (what PostgreSQL gives itself from 512MB of shared
		// buffers). With 64MB, batches posted no faster and single entries about 8% slower: the
		// larger ring is more memory for every commit's records to pass through, and on a
		// virtual machine the first touch of each of its pages is costly. Measured, alternating,
		// single entries from 10 clients: 5,714 a second against 5,250 (mean of four runs each).
		m["wal_buffers"] = "16MB"
		// Group commit: a committing backend waits up to 100 µs for others to join its WAL
		// flush when at least five are active, so many small ledger transactions share one
		// fsync. Durability is unchanged: every commit is flushed before it is acknowledged.
		m["commit_delay"] = "100"
		m["commit_siblings"] = "5"
	}
	for k, v := range opts.Settings {
		switch k {
		case "port", "unix_socket_directories", "data_directory":
			return nil, fmt.Errorf("pgserver: setting %s is chosen by pgserver and cannot be overridden", k)
		}
		if k == "" || strings.ContainsAny(k, "= ") {
			return nil, fmt.Errorf("pgserver: invalid setting name %q", k)
		}
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// clusterOwner returns the system user to run the cluster as, or nil to run it as ourselves.
func clusterOwner() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(systemUser)
	if err != nil {
		return nil, fmt.Errorf("pgserver: running as root, so the cluster must run as the system user %q "+
			"(initdb refuses root): %w", systemUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgserver: user %s: %w", systemUser, err)
	}
	o := &osUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			o.groups = append(o.groups, uint32(n))
		}
	}
	return o, nil
}

// prepareDataDir creates dataDir and, when the cluster runs as another user, makes sure that
// user can reach it: dataDir is made traversable, and every parent must already be.
func prepareDataDir(dataDir string, owner *osUser) error {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if owner == nil {
		return nil
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if !owner.canTraverse(fi) {
		if err := os.Chmod(dataDir, fi.Mode().Perm()|0o755); err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
	}
	for dir := filepath.Dir(dataDir); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		if !owner.canTraverse(fi) {
			return &SetupError{Msg: fmt.Sprintf("directory %s (mode %04o) is not traversable by user %s, which runs the "+
				"cluster because this process is root; make it traversable (chmod o+x %s) or choose another data directory",
				dir, fi.Mode().Perm(), owner.name, dir)}
		}
		if dir == "/" || dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// canTraverse reports whether u may search directory fi by its mode bits (ACLs are ignored).
func (u *osUser) canTraverse(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	perm := fi.Mode().Perm()
	if !ok {
		return perm&0o001 != 0
	}
	if st.Uid == u.uid {
		return perm&0o100 != 0
	}
	inGroup := st.Gid == u.gid
	for _, g := range u.groups {
		inGroup = inGroup || st.Gid == g
	}
	if inGroup {
		return perm&0o010 != 0
	}
	return perm&0o001 != 0
}

func mkdirOwned(dir string, perm os.FileMode, owner *osUser) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if owner != nil {
		if err := os.Chown(dir, int(owner.uid), int(owner.gid)); err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
	}
	return nil
}

// passwordFile returns path, creating it with a random password if it does not exist. It is
// kept after initdb: it is the superuser's password for TCP (scram-sha-256) connections.
func passwordFile(path string, owner *osUser) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pgserver: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("pgserver: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(b) + "\n")
	if err == nil && owner != nil {
		err = f.Chown(int(owner.uid), int(owner.gid))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("pgserver: password file: %w", err)
	}
	return path, nil
}

// lockFile takes an exclusive flock on path, waiting until ctx ends. flock locks belong to the
// open file description, so two Starts in one process exclude each other too.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgserver: lock: %w", err)
	}
	fd := int(f.Fd())
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(fd, syscall.LOCK_UN) //nolint:errcheck // closing releases it anyway
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("pgserver: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("pgserver: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// pidInfo is what postmaster.pid says about a running postmaster.
type pidInfo struct {
	pid     int
	port    int
	sockDir string
}

// readPidFile parses postmaster.pid: line 1 the pid, 4 the port, 5 the first socket directory.
func readPidFile(path string) (pidInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pidInfo{}, err
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 5 {
		return pidInfo{}, fmt.Errorf("%s: incomplete (%d lines)", path, len(lines))
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err := errors.Join(err1, err2); err != nil {
		return pidInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	return pidInfo{pid: pid, port: port, sockDir: strings.TrimSpace(lines[4])}, nil
}

type procState int

const (
	procAlive procState = iota
	procGone            // no such process, or a zombie nobody has reaped
	procOther           // alive, but not postgres: the pid was reused
)

func processState(pid int) procState {
	if pid <= 0 {
		return procGone
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return procGone
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procAlive // no /proc: trust kill
	}
	// "pid (comm) state ...": comm may contain spaces and parentheses, so cut at the last ')'.
	open, closing := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || closing < open || len(stat) < closing+3 {
		return procAlive
	}
	if stat[closing+2] == 'Z' {
		return procGone
	}
	switch string(stat[open+1 : closing]) {
	case "postgres", "postmaster":
		return procAlive
	}
	return procOther
}

func sysProcAttr(owner *osUser, deathSig syscall.Signal) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if owner != nil {
		a.Credential = &syscall.Credential{Uid: owner.uid, Gid: owner.gid, Groups: owner.groups}
	}
	setDeathSignal(a, deathSig)
	return a
}

// childEnv is our environment without PG* variables (PGDATA, PGPORT, PGOPTIONS…), which would
// otherwise change what initdb and postgres do.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// sharedBuffers sizes a durable cluster's buffer cache: an eighth of the machine's memory,
// between PostgreSQL's default of 128MB and 1GB.
func sharedBuffers(memory uint64) string {
	const mb = 1 << 20
	return strconv.FormatUint(min(max(memory/8, 128*mb), 1024*mb)/mb, 10) + "MB"
}

// mallocTunables has glibc serve a backend's allocations under 16 MB from its heap, and keep up
// to 16 MB freed at the heap's top, instead of handing it back to the kernel. By default glibc
// trims the heap past a few hundred kB, and a backend frees and allocates again about that much
// in every transaction, so each transaction paid page faults for memory it had just given up:
// 20,000-25,000 a second under the ledger's single-entry benchmark, about 5% of the machine.
// Both are set because setting one stops glibc adjusting the other: with the trim threshold
// alone, every allocation of 128 kB or more would be mapped afresh each time.
const mallocTunables = "glibc.malloc.trim_threshold=16777216:glibc.malloc.mmap_threshold=16777216"

// postgresEnv is the postmaster's environment: childEnv, and mallocTunables unless the
// environment sets GLIBC_TUNABLES itself.
func postgresEnv() []string {
	env := childEnv()
	if _, ok := os.LookupEnv("GLIBC_TUNABLES"); !ok {
		env = append(env, "GLIBC_TUNABLES="+mallocTunables)
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgserver: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func socketPath(dir string, port int) string {
	return filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(port))
}

func ping(ctx context.Context, connString string) error {
	c, err := pgconn.Connect(ctx, connString)
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

func connString(host string, port int, dbname string) string {
	return strings.Join([]string{
		kv("host", host), kv("port", strconv.Itoa(port)), kv("user", Superuser), kv("dbname", dbname), "sslmode=disable",
	}, " ")
}

// kv renders one keyword=value pair, quoting the value when it needs it.
func kv(k, v string) string {
	if v == "" || strings.ContainsAny(v, " '\\\t\n") {
		v = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
	}
	return k + "=" + v
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
