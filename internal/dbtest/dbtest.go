// Package dbtest gives tests a real PostgreSQL database of their own: a fresh copy of a migrated
// template per test, so tests may commit, run in parallel and never see each other's rows.
//
// One cluster serves a whole test binary: a private pgserver cluster (fsync off) in a temporary
// directory (on /dev/shm when it can), started on the first New; or, when DATABASE_URL is set,
// that server, on which dbtest only creates and drops databases named after its pid
// (infuse_template_<pid>, t_<pid>_<n>). Each package using dbtest needs:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// Benchmarks that measure speed need a durable cluster: with INFUSE_BENCH_DURABLE=1 (set by
// `make bench`) the private cluster runs with fsync on, on disk rather than in memory.
//
// A test binary that is killed leaves no postgres behind (pgserver's parent-death signal); its
// directory is removed by the next binary that starts a cluster.
package dbtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/migrate"
	"github.com/ccr-infuse/infuse/internal/pgserver"
)

const (
	// DefaultMaxConns is the pool size New gives each test database.
	DefaultMaxConns = 8

	// cloneStrategy is how test databases are copied from the template. FILE_COPY copies the
	// template's files and checkpoints; WAL_LOG (PostgreSQL 15's default) reads every block and
	// writes it through the WAL. Measured on the 2-core dev VM, fsync off, cluster on tmpfs, the
	// migrated template at ~8 MB, create + drop per database: FILE_COPY 16–23 ms alone and
	// 16 ms of wall time per database with 2–4 creating at once; WAL_LOG 19–28 ms and 22–25 ms.
	cloneStrategy = "FILE_COPY"

	setupTimeout = 2 * time.Minute
	dropTimeout  = 30 * time.Second
	tempPrefix   = "infuse-dbtest-"

	shmDir     = "/dev/shm"
	tmpfsMagic = 0x01021994
	minShmFree = 1 << 30 // a cluster is ~40 MB plus ~8 MB per live test database; leave headroom
)

// cluster is the one server a test binary uses.
type cluster struct {
	srv       *pgserver.Server // nil when DATABASE_URL is used
	tempDir   string           // the private cluster's data directory, removed by Main
	tempLock  *os.File         // flock on tempDir, held while this binary lives (see sweepTempDirs)
	connFor   func(db string) string
	admin     *pgxpool.Pool // on the maintenance database, for CREATE/DROP DATABASE
	template  string
	templated bool // the template database was created, so teardown must drop it
}

var (
	once    sync.Once
	shared  *cluster
	initErr error
	seq     atomic.Int64
	// mu serialises setup and Main's teardown; it guards shared and tornDown.
	mu       sync.Mutex
	tornDown bool
)

// Main runs the package's tests, then stops the cluster the tests started (or drops the
// template on DATABASE_URL's server) and exits with the tests' code.
func Main(m *testing.M) {
	code := m.Run()
	if err := teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: teardown: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// New returns a pool on a fresh, migrated database of its own for tb. The pool is closed and the
// database dropped when tb finishes.
func New(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return NewWithConfig(tb, nil)
}

// NewWithConfig is New with a hook to adjust the pool's configuration before it is created (it
// starts with MaxConns = DefaultMaxConns and db.Configure's settings; a configure that replaces
// AfterConnect should call db.AfterConnect itself).
func NewWithConfig(tb testing.TB, configure func(*pgxpool.Config)) *pgxpool.Pool {
	tb.Helper()
	connString := URL(tb)
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	cfg.MaxConns = DefaultMaxConns
	db.Configure(cfg)
	if configure != nil {
		configure(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	tb.Cleanup(pool.Close) // runs before URL's drop: cleanups run last-registered first
	return pool
}

// URL creates a fresh, migrated database for tb, as New does, and returns its connection string
// for code that opens its own pool or connections (a CLI under test, say). The database is
// dropped WITH (FORCE) when tb finishes, so connections left open do not block it.
func URL(tb testing.TB) string {
	tb.Helper()
	c := get(tb)
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := c.clone(ctx, name); err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		if err := c.drop(ctx, name); err != nil {
			tb.Errorf("dbtest: %v", err)
		}
	})
	return c.connFor(name)
}

// Server starts the test cluster if need be and returns how to reach any database on it, for
// tests and benchmarks that manage databases themselves. Databases they create are theirs to
// drop; the private cluster disappears with the test binary anyway.
func Server(tb testing.TB) (connStringForDB func(db string) string) {
	tb.Helper()
	return get(tb).connFor
}

// get returns the binary's cluster with its migrated template, setting both up on first use.
func get(tb testing.TB) *cluster {
	tb.Helper()
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		initErr = setup(ctx)
	})
	if initErr != nil {
		tb.Fatalf("dbtest: %v", initErr)
	}
	return shared
}

// setup starts (or connects to) the server and creates the template. Whatever it managed to
// start is left in shared, even on error, for teardown to stop.
func setup(ctx context.Context) error {
	mu.Lock()
	defer mu.Unlock()
	if tornDown {
		return errors.New("used after Main's teardown")
	}
	c := &cluster{template: fmt.Sprintf("infuse_template_%d", os.Getpid())}
	var adminConn string
	if dsn := os.Getenv("DATABASE_URL"); dsn != "" {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return fmt.Errorf("DATABASE_URL: %w", err)
		}
		if cfg.Database == "" {
			cfg.Database = "postgres"
		}
		c.connFor = func(db string) string { return withDatabase(dsn, db) }
		adminConn = withDatabase(dsn, cfg.Database)
	} else {
		if err := c.startPrivate(ctx); err != nil {
			return errors.Join(err, c.close())
		}
		c.connFor = c.srv.ConnString
		adminConn = c.srv.ConnString("postgres")
	}
	// The cluster, if private, exists from here on: whatever fails next, teardown must stop it.
	shared = c

	cfg, err := pgxpool.ParseConfig(adminConn)
	if err != nil {
		return err
	}
	cfg.MaxConns = 4
	if c.admin, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return c.createTemplate(ctx)
}

// startPrivate starts a throwaway cluster in a temporary directory.
func (c *cluster) startPrivate(ctx context.Context) error {
	sweepTempDirs()
	dir, err := os.MkdirTemp(tempBase(), tempPrefix+"*")
	if err != nil {
		return err
	}
	c.tempDir = dir
	// MkdirTemp makes 0700 directories; as root the cluster runs as the postgres user, which
	// must be able to reach its data directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if c.tempLock, err = os.Open(dir); err == nil {
		err = syscall.Flock(int(c.tempLock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c.srv, err = pgserver.Start(ctx, pgserver.Options{DataDir: dir, Durable: durable(), Logger: log})
	return err
}

// tempBase is where the private cluster goes: /dev/shm when it is a tmpfs with room, else the
// usual temporary directory. On ext4 without a journal (this project's VMs) creating the ~1,000
// files of a database right after dropping another makes the kernel's inode allocator skip every
// recently deleted inode, and CREATE DATABASE slowed from ~40 ms to 200–700 ms under test churn;
// on tmpfs it stays at ~15 ms. The cluster is throwaway (fsync off) so memory is the right place.
func tempBase() string {
	if durable() {
		return os.TempDir()
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(shmDir, &st); err == nil &&
		st.Type == tmpfsMagic && uint64(st.Bavail)*uint64(st.Bsize) >= minShmFree {
		return shmDir
	}
	return os.TempDir()
}

// durable reports whether the cluster must be durable (fsync on, on disk), for benchmarks.
func durable() bool { return os.Getenv("INFUSE_BENCH_DURABLE") != "" }

// sweepTempDirs removes the directories of test binaries that were killed before Main could
// clean up. A live binary holds an flock on its directory; a directory nobody locks, older than
// a minute (so not one being created right now), is an orphan whose postgres, if any, the
// parent-death signal has already stopped.
func sweepTempDirs() {
	var dirs []string
	for _, base := range []string{shmDir, os.TempDir()} {
		found, _ := filepath.Glob(filepath.Join(base, tempPrefix+"*"))
		dirs = append(dirs, found...)
	}
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		f, err := os.Open(dir)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}

// createTemplate creates the template database and migrates it. Test databases are cloned from
// it, so the migrations run once per test binary rather than once per test.
func (c *cluster) createTemplate(ctx context.Context) error {
	if err := c.createDatabase(ctx, "CREATE DATABASE "+ident(c.template), c.template); err != nil {
		return err
	}
	c.templated = true
	conn, err := pgx.Connect(ctx, c.connFor(c.template))
	if err != nil {
		return fmt.Errorf("connect to template: %w", err)
	}
	_, err = migrate.Up(ctx, conn)
	// The template must have no sessions left, or CREATE DATABASE … TEMPLATE refuses it.
	if cerr := conn.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	return nil
}

func (c *cluster) clone(ctx context.Context, name string) error {
	return c.createDatabase(ctx,
		fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY %s", ident(name), ident(c.template), cloneStrategy), name)
}

// createDatabase runs create; if name already exists, it is a leftover of an earlier process
// with the same pid on a shared DATABASE_URL server, so it is dropped and created again.
func (c *cluster) createDatabase(ctx context.Context, create, name string) error {
	_, err := c.admin.Exec(ctx, create)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		if err := c.drop(ctx, name); err != nil {
			return err
		}
		_, err = c.admin.Exec(ctx, create)
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func (c *cluster) drop(ctx context.Context, name string) error {
	if _, err := c.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// teardown drops the template (on a shared server) or stops the private cluster and removes its
// directory. Test databases are dropped by each test's cleanup.
func teardown() error {
	mu.Lock()
	defer mu.Unlock()
	tornDown = true
	if shared == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if shared.srv == nil && shared.admin != nil && shared.templated {
		errs = append(errs, shared.drop(ctx, shared.template))
	}
	errs = append(errs, shared.close())
	return errors.Join(errs...)
}

func (c *cluster) close() error {
	var errs []error
	if c.admin != nil {
		c.admin.Close()
	}
	if c.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		errs = append(errs, c.srv.Stop(ctx))
	}
	if c.tempDir != "" {
		errs = append(errs, os.RemoveAll(c.tempDir))
	}
	if c.tempLock != nil {
		c.tempLock.Close()
	}
	return errors.Join(errs...)
}

// withDatabase returns the connection string dsn pointed at database db. It handles both URL
// and keyword/value forms: in the latter a later keyword overrides an earlier one.
func withDatabase(dsn, db string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path = "/" + db
			u.RawPath = ""
			q := u.Query()
			if q.Has("dbname") {
				q.Set("dbname", db)
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
	}
	return dsn + " dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(db) + "'"
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// WaitFor polls query, a boolean one, until it is true, failing tb after 20 s: for a test that
// must see another session reach a point (waiting on a lock, say) before it goes on.
func WaitFor(tb testing.TB, pool *pgxpool.Pool, query string, args ...any) {
	tb.Helper()
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(2 * time.Millisecond) {
		var ok bool
		if err := pool.QueryRow(context.Background(), query, args...).Scan(&ok); err != nil {
			tb.Fatal(err)
		}
		if ok {
			return
		}
	}
	tb.Fatalf("still false after 20 seconds: %s", query)
}
