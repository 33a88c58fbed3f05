package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/migrate"
	"github.com/ccr-infuse/infuse/internal/pgserver"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

// config is everything the binary reads from its environment, read once.
type config struct {
	DatabaseURL   string     // DATABASE_URL; empty: the embedded cluster
	DataDir       string     // INFUSE_DATA, default ./var
	ProgrammeFile string     // INFUSE_PROGRAMME: a programme definition replacing the embedded InFuSe one
	LogLevel      slog.Level // INFUSE_LOG_LEVEL: debug, info, warn, error
	ClaimSchedule string     // INFUSE_CLAIM_SCHEDULE: cron spec of the claim scheduler (Europe/London); empty: 06:00 on the first day of each quarter
	// Secure (INFUSE_SECURE=1 or true): users reach the service over TLS through a proxy, so
	// cookies are marked Secure and HSTS is sent.
	Secure bool
	// TrustedProxies (INFUSE_TRUSTED_PROXIES: addresses or CIDR prefixes, separated by commas
	// or spaces): the proxies whose X-Forwarded-For names the caller.
	TrustedProxies []netip.Prefix
}

// databaseName is the database the embedded cluster holds the ledger in.
const databaseName = "infuse"

func loadConfig(getenv func(string) string) (config, error) {
	c := config{DatabaseURL: getenv("DATABASE_URL"), DataDir: getenv("INFUSE_DATA"), ProgrammeFile: getenv("INFUSE_PROGRAMME"),
		ClaimSchedule: getenv("INFUSE_CLAIM_SCHEDULE")}
	if c.DataDir == "" {
		c.DataDir = "var"
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return c, apperr.New(apperr.Invalid, apperr.RuleConfig, "INFUSE_DATA %q is not a usable path", c.DataDir)
	}
	c.DataDir = abs
	c.LogLevel = slog.LevelWarn
	if v := getenv("INFUSE_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return c, apperr.New(apperr.Invalid, apperr.RuleConfig, "INFUSE_LOG_LEVEL %q is not one of debug, info, warn, error", v)
		}
	}
	if c.ClaimSchedule != "" {
		// Checked here, with the rest of the configuration, rather than by serve once the
		// database is up.
		if _, err := claims.ParseSchedule(c.ClaimSchedule); err != nil {
			return c, apperr.New(apperr.Invalid, apperr.RuleConfig, "INFUSE_CLAIM_SCHEDULE: %s", apperr.TextOf(err))
		}
	}
	switch v := strings.ToLower(strings.TrimSpace(getenv("INFUSE_SECURE"))); v {
	case "1", "true", "yes", "on":
		c.Secure = true
	case "", "0", "false", "no", "off":
	default:
		return c, apperr.New(apperr.Invalid, apperr.RuleConfig, "INFUSE_SECURE %q is not one of 1, true, yes, on, 0, false, no, off", v)
	}
	c.TrustedProxies, err = parseProxies(getenv("INFUSE_TRUSTED_PROXIES"))
	return c, err
}

// parseProxies reads INFUSE_TRUSTED_PROXIES: addresses (a proxy each) and CIDR prefixes (a
// network of them), separated by commas or spaces.
func parseProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, apperr.New(apperr.Invalid, apperr.RuleConfig, "INFUSE_TRUSTED_PROXIES: %q is neither an IP address nor a CIDR prefix such as 10.0.0.0/8", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Bits() == 0 {
			// Every caller could then name any address, and escape the throttle (AU3).
			return nil, apperr.New(apperr.Invalid, apperr.RuleConfig, "INFUSE_TRUSTED_PROXIES: %q would trust every caller to say who it is; list the proxies", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// env is one command's wiring: configuration, output, and what it opened.
type env struct {
	cfg    config
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger

	pg   *pgserver.Server
	pool *pgxpool.Pool
	prog *programme.Programme
	led  *ledger.Ledger // set up once, by ledger

	// end ends the command's context with a cause: the embedded cluster it uses has stopped
	// under it (errClusterGone). Nil when the command has no such context (tests of env alone).
	end context.CancelCauseFunc

	// line is the progress line of a claims command on a terminal, cleared before the
	// command's result or error is printed; nil for none.
	line *progressLine
	// serving: the command is infuse serve, whose claims service reports no progress (its
	// requests and scheduler run at once) and whose clean stop on losing the cluster is B5.
	serving bool
	// closing is closed by close, ending the watch of the embedded cluster.
	closing chan struct{}
	// hold is the connection an attached command holds to the embedded cluster (startCluster).
	hold *pgx.Conn
	// mayCreate: the command may create the embedded cluster where there is none (creators).
	mayCreate bool
}

// programme returns the programme definition: the file named by INFUSE_PROGRAMME, or the
// embedded InFuSe default.
func (e *env) programme() (*programme.Programme, error) {
	if e.prog != nil {
		return e.prog, nil
	}
	p := programme.Default()
	if e.cfg.ProgrammeFile != "" {
		var err error
		if p, err = programme.LoadFile(e.cfg.ProgrammeFile); err != nil {
			return nil, err
		}
	}
	e.prog = p
	return p, nil
}

// open connects to the database (starting the embedded cluster when there is no DATABASE_URL)
// and brings its schema up to date.
func (e *env) open(ctx context.Context) (*pgxpool.Pool, error) {
	if e.pool != nil {
		return e.pool, nil
	}
	url, err := e.databaseURL(ctx)
	if err != nil {
		return nil, err
	}
	pool, err := db.Open(ctx, url)
	if err != nil {
		return nil, apperr.Wrap("connect", err)
	}
	e.pool = pool
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, apperr.Wrap("connect", err)
	}
	defer conn.Release()
	n, err := migrate.Up(ctx, conn.Conn())
	if err != nil {
		return nil, apperr.Wrap("migrate", err)
	}
	if n > 0 {
		e.log.Info("applied migrations", "count", n)
	}
	return pool, nil
}

// waitForOtherClients waits, before this process stops the embedded cluster it started, until no
// other client uses it: another infuse command that attached to it would otherwise fail part way
// (B5). The last one out stops it. A command told to stop (Ctrl-C, SIGTERM: ctx ends) stops it
// at once, and so does a failure to ask who is connected.
func (e *env) waitForOtherClients(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	conn, err := pgx.Connect(ctx, e.pg.ConnString("postgres"))
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	told := false
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&n); err != nil || n == 0 {
			return
		}
		if !told {
			fmt.Fprintf(e.stderr, "infuse: waiting for %d other client(s) of the embedded PostgreSQL (another infuse command, or psql) to finish before stopping it; Ctrl-C stops it now\n", n)
			told = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// lostCluster reports whether err, a command's failure, is its embedded cluster stopping under
// it (B5): a query refused as the server shut down, a connection closed or refused, before the
// watch of the cluster noticed. It waits a little for the postmaster to be seen gone, only for
// such failures.
func (e *env) lostCluster(err error) bool {
	if e.pg == nil {
		return false
	}
	var pg *pgconn.PgError
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &pg) && strings.HasPrefix(pg.Code, "57P"), errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		return false
	}
	select {
	case <-e.pg.Gone():
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}

// startCluster starts the embedded cluster, or attaches to the one another infuse process
// started. Attached, it holds a connection from then on, so that the starter, which stops the
// cluster only once no other client uses it, counts this command; if the starter stopped it
// between the attach and that connection, it waits for it to be gone and starts it afresh.
func (e *env) startCluster(ctx context.Context) (*pgserver.Server, error) {
	for attempt := 0; ; attempt++ {
		srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: e.cfg.DataDir, Durable: true, Logger: e.log})
		if err != nil {
			return nil, apperr.Wrap("start embedded PostgreSQL", err)
		}
		if srv.Owned() {
			return srv, nil
		}
		hold, err := pgx.Connect(ctx, srv.ConnString("postgres"))
		if err == nil {
			e.hold = hold
			return srv, nil
		}
		select {
		case <-srv.Gone():
		case <-time.After(30 * time.Second):
		}
		_ = srv.Stop(ctx)
		if attempt > 0 || ctx.Err() != nil {
			return nil, apperr.Wrap("attach to embedded PostgreSQL", err)
		}
	}
}

// databaseURL returns how to reach the database: DATABASE_URL, or the embedded cluster, which it
// starts (or attaches to) and in which it creates the database on first use.
func (e *env) databaseURL(ctx context.Context) (string, error) {
	if e.cfg.DatabaseURL != "" {
		return e.cfg.DatabaseURL, nil
	}
	if e.pg == nil {
		if _, err := os.Stat(filepath.Join(e.cfg.DataDir, "postgres", "PG_VERSION")); errors.Is(err, fs.ErrNotExist) && !e.mayCreate {
			abs, _ := filepath.Abs(e.cfg.DataDir)
			return "", apperr.New(apperr.NotFound, apperr.RuleRef, "there is no database in %s (INFUSE_DATA, default ./var): set INFUSE_DATA to the service's data directory, or create one there with infuse migrate", abs)
		}
		srv, err := e.startCluster(ctx)
		if err != nil {
			return "", err
		}
		e.pg = srv
		if e.end != nil {
			// A cluster that stops under the command (its starter stopped it, or it died,
			// this process's own included) ends the command, saying so, rather than leave it
			// failing query after query: a service then exits, for its supervisor to restart.
			e.closing = make(chan struct{})
			go func() {
				select {
				case <-srv.Gone():
					e.end(errClusterGone)
				case <-e.closing:
				}
			}()
		}
		if err := srv.EnsureDatabase(ctx, databaseName); err != nil {
			return "", apperr.Wrap("create database", err)
		}
	}
	return e.pg.ConnString(databaseName), nil
}

// ledger opens the database and the operation's ledger, setting the operation up on first use,
// once a command: the services a command builds (claims, match, auth) share it.
func (e *env) ledger(ctx context.Context) (*ledger.Ledger, error) {
	if e.led != nil {
		return e.led, nil
	}
	pool, err := e.open(ctx)
	if err != nil {
		return nil, err
	}
	p, err := e.programme()
	if err != nil {
		return nil, err
	}
	l, err := ledger.Setup(ctx, pool, p, ledger.WithLogger(e.log))
	if err != nil {
		return nil, err
	}
	e.led = l
	return l, nil
}

// close releases what the command opened, stopping the embedded cluster if this process
// started it.
func (e *env) close(ctx context.Context) {
	if e.closing != nil {
		close(e.closing)
	}
	if e.pool != nil {
		e.pool.Close()
	}
	if e.hold != nil {
		_ = e.hold.Close(context.WithoutCancel(ctx))
	}
	if e.pg != nil && e.pg.Owned() {
		e.waitForOtherClients(ctx)
	}
	if e.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.pg.Stop(ctx); err != nil {
			fmt.Fprintf(e.stderr, "infuse: stopping the embedded PostgreSQL: %v\n", err)
		}
	}
}
