// Package backup copies the whole database to a file and back, with PostgreSQL's own pg_dump and
// pg_restore, so that a backup holds exactly what the server held: schema, ledger, chain and
// claims. Restoring is all or nothing (one transaction), and the caller verifies the ledger's
// chain afterwards.
package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/durable"
	"github.com/ccr-infuse/infuse/internal/pgserver"
)

// RuleBackup is the rule a refused restore names: a backup is read whole before it is restored,
// and it replaces a database that holds data only when told to.
const RuleBackup = "B1"

// RuleAlone is the rule a restore refused while others use the database names: a restore
// replaces every table under a running service, which would carry on with what it had cached
// (the ledger's chain head, sessions, claims) and write into the restored books.
const RuleAlone = "B2"

// closingWait is how long a restore waits for client connections that are closing (a service
// just stopped, a command just finished) to be gone before it refuses.
const closingWait = 3 * time.Second

// tool returns the path of a PostgreSQL client program from the server's binary directory.
func tool(name string) (string, error) {
	dir, err := pgserver.FindBinDir()
	if err != nil {
		return "", apperr.Wrap("backup", err)
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", apperr.Wrap("backup", fmt.Errorf("%s not found beside the server binaries: %w", name, err))
	}
	return p, nil
}

// trailerPrefix starts the line Dump appends to pg_dump's archive: the SHA-256 of the archive,
// in hex. pg_restore reads an archive by its table of contents and never reaches the line, so the
// file stays a pg_dump archive; Check recomputes the hash, which pg_restore alone cannot do for
// the archive's schema text (damage there can restore silently).
const trailerPrefix = "\ninfuse-backup sha256 "

// trailerLen is the length of the appended line: the prefix, 64 hex digits and a newline.
const trailerLen = len(trailerPrefix) + 64 + 1

// RuleFile is the rule a refused backup file names: a backup is written to a new file, and
// replaces an existing one only when told to (--force); never a directory.
const RuleFile = "B3"

// DumpOptions says how Dump treats the file it writes.
type DumpOptions struct {
	// Force replaces a file of that name; without it Dump refuses one (B3).
	Force bool
}

// CheckTarget refuses file as the destination of a backup when it is a directory, or when it
// exists and force is not set (B3), so that a backup never silently replaces an older one.
// Dump checks again as it puts the backup in place.
func CheckTarget(file string, force bool) error {
	fi, err := os.Lstat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return apperr.Wrap("backup", err)
	case fi.IsDir():
		return apperr.New(apperr.Invalid, RuleFile, "%s is a directory: name the file to write the backup to", file)
	case !force:
		return apperr.New(apperr.Conflict, RuleFile, "%s exists already: name a new file, or add --force to replace it", file)
	}
	return nil
}

// Dump writes the database at conn (a libpq connection string or URL) to file in pg_dump's
// custom format, followed by the archive's SHA-256. It refuses a file that exists unless
// opts.Force (B3). It writes to a temporary file beside file and puts it in place only when all
// of it is written and synced, then syncs the directory, so a failed backup never leaves a
// truncated file under the real name and a finished one survives a crash.
func Dump(ctx context.Context, conn, file string, opts DumpOptions) error {
	if err := CheckTarget(file, opts.Force); err != nil {
		return err
	}
	pgDump, err := tool("pg_dump")
	if err != nil {
		return err
	}
	dir := filepath.Dir(file)
	clearDeadTemps(dir, filepath.Base(file))
	// The temporary name carries this process's id, so that a later backup to the same file
	// can tell the leftovers of a killed one (kill -9, power loss) from a live one's.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+"."+strconv.Itoa(os.Getpid())+".*.tmp")
	if err != nil {
		reason := err
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			reason = pe.Err // "permission denied", not the temporary file's pattern
		}
		return &apperr.Error{Code: apperr.Invalid, Rule: RuleFile, Op: "backup", Err: err,
			Message: fmt.Sprintf("cannot write the backup into %s: %v", dir, reason)}
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := run(ctx, pgDump, "--format=custom", "--no-owner", "--file="+tmp.Name(), "--dbname="+conn); err != nil {
		return err
	}
	if err := appendTrailer(tmp.Name()); err != nil {
		return apperr.Wrap("backup", err)
	}
	if err := place(tmp.Name(), file, opts.Force); err != nil {
		return err
	}
	if err := durable.SyncDir(dir); err != nil {
		return apperr.Wrap("backup", err)
	}
	return nil
}

// clearDeadTemps removes the temporary files that backups to base in dir left when they were
// killed: .BASE.PID.*.tmp of a process that no longer runs. A live backup's is left alone.
func clearDeadTemps(dir, base string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	// Exactly .BASE.PID.RANDOM.tmp: a backup to BASE.more writes .BASE.more.PID.RANDOM.tmp,
	// which must not be read as one of BASE's.
	name := regexp.MustCompile(`^\.` + regexp.QuoteMeta(base) + `\.(\d+)\.\d+\.tmp$`)
	for _, e := range ents {
		m := name.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 {
			continue
		}
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// place puts the finished backup tmp in place as file. Without force it links rather than
// renames, so that a file created under that name meanwhile is refused, not replaced; on a file
// system without hard links it checks and renames.
func place(tmp, file string, force bool) error {
	if !force {
		err := os.Link(tmp, file)
		if err == nil {
			return nil
		}
		if errors.Is(err, fs.ErrExist) {
			return CheckTarget(file, false)
		}
		if err := CheckTarget(file, false); err != nil {
			return err
		}
	} else if err := CheckTarget(file, true); err != nil {
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		return apperr.Wrap("backup", err)
	}
	return nil
}

// appendTrailer appends the SHA-256 line to the archive at path and syncs it.
func appendTrailer(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%s%x\n", trailerPrefix, h.Sum(nil)); err != nil {
		return err
	}
	return f.Sync()
}

// intact reports whether file ends with the SHA-256 line of what precedes it.
func intact(file string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	size := fi.Size() - int64(trailerLen)
	if size <= 0 {
		return false, nil
	}
	trailer := make([]byte, trailerLen)
	if _, err := f.ReadAt(trailer, size); err != nil {
		return false, err
	}
	want, ok := strings.CutPrefix(string(trailer), trailerPrefix)
	if !ok {
		return false, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return false, err
	}
	return fmt.Sprintf("%x\n", h.Sum(nil)) == want, nil
}

// Restore loads file, made by Dump, into the database at conn, replacing what is there, in one
// transaction: if anything fails, the database is left as it was. It first reads the whole file,
// every data block included, so that a truncated or damaged backup is refused before the
// database is touched, and refuses while other clients are connected to the database (B2). The ledger's write checks would refuse rows written by earlier
// transactions: pg_restore creates its triggers and its token constraints (NOT VALID,
// migrations/0013) only after loading the rows, so a backup must hold the schema as well as the
// data. The caller must verify the ledger afterwards.
func Restore(ctx context.Context, conn, file string) error {
	if err := Check(ctx, file); err != nil {
		return err
	}
	if err := alone(ctx, conn); err != nil {
		return err
	}
	pgRestore, err := tool("pg_restore")
	if err != nil {
		return err
	}
	return run(ctx, pgRestore, "--clean", "--if-exists", "--no-owner",
		"--single-transaction", "--exit-on-error", "--dbname="+conn, file)
}

// Check reads the whole of file, checks its SHA-256 and that pg_restore can read every part of
// it, without a database, and refuses a file that is missing, truncated, damaged or not a backup
// made by Dump.
func Check(ctx context.Context, file string) error {
	if why := unreadable(file); why != "" {
		return apperr.New(apperr.Invalid, RuleBackup, "cannot read the backup %s: %s", file, why)
	}
	pgRestore, err := tool("pg_restore")
	if err != nil {
		return err
	}
	ok, err := intact(file)
	if err == nil && ok {
		err = run(ctx, pgRestore, "--file="+os.DevNull, file) // this pg_restore can read all of it
	} else if err == nil {
		err = errors.New("the SHA-256 at its end is missing or does not match")
	}
	if err != nil {
		return &apperr.Error{Code: apperr.Invalid, Rule: RuleBackup, Op: "backup.Check", Err: err,
			Message: fmt.Sprintf("%s is truncated, damaged or not a backup made by infuse backup; nothing was restored", file)}
	}
	return nil
}

// alone refuses (B2) while client connections other than its own are open to the database at
// conn, after giving connections that are closing closingWait to go. Background processes
// (autovacuum, the checkpointer) are not clients. A client that connects after the check is not
// kept out; the message tells the operator to stop the service, which is what matters.
func alone(ctx context.Context, conn string) error {
	c, err := pgx.Connect(ctx, conn)
	if err != nil {
		return apperr.Wrap("backup.alone", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	deadline := time.Now().Add(closingWait)
	for {
		var n int
		var apps string
		// backend_type is hidden from a role that may not see other roles' sessions: such a
		// session counts as a client.
		err := c.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(DISTINCT nullif(application_name, ''), ', '), '')
			FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
			AND (backend_type = 'client backend' OR backend_type IS NULL)`).Scan(&n, &apps)
		if err != nil {
			return apperr.Wrap("backup.alone", err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if apps != "" {
				apps = " (" + apps + ")"
			}
			open := fmt.Sprintf("%d other connections to the database are open", n)
			if n == 1 {
				open = "another connection to the database is open"
			}
			return apperr.New(apperr.Conflict, RuleAlone,
				"%s%s: stop the service (infuse serve) and anything else using the database, then restore again; nothing was restored",
				open, apps)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// setupTables are the tables `infuse migrate` writes as it sets the operation up (ledger.Setup):
// the operation, its periods and chart of accounts, the chain's head, and the allocation
// entries (the award and the match pledges, source 'setup') with their postings and, once
// sealed, their seals and balances.
var setupTables = map[string]bool{"operation": true, "period": true, "account": true, "chain_head": true,
	"entry": true, "posting": true, "seal_queue": true, "seal": true, "balance": true, "ledger_txn": true}

// Occupied returns the tables of the database at conn that hold rows a restore would overwrite.
// An empty or new database has none, and neither has one that holds only the record of applied
// migrations and what `infuse migrate` sets up, since the backup brings its own.
func Occupied(ctx context.Context, conn string) ([]string, error) {
	c, err := pgx.Connect(ctx, conn)
	if err != nil {
		return nil, apperr.Wrap("backup.Occupied", err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migration'
		ORDER BY table_name`)
	if err != nil {
		return nil, apperr.Wrap("backup.Occupied", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, apperr.Wrap("backup.Occupied", err)
	}
	var out []string
	setupOnly := true
	for _, t := range tables {
		var held bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+t+`)`).Scan(&held); err != nil {
			return nil, apperr.Wrap("backup.Occupied", err)
		}
		if held {
			out = append(out, t)
			setupOnly = setupOnly && setupTables[t]
		}
	}
	if setupOnly && len(out) > 0 {
		var entered bool // an entry of anyone's but the setup's
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT FROM entry WHERE source <> 'setup')`).Scan(&entered); err != nil {
			return nil, apperr.Wrap("backup.Occupied", err)
		}
		if !entered {
			return nil, nil
		}
	}
	return out, nil
}

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		return apperr.Wrap("backup", fmt.Errorf("%s: %w: %s", filepath.Base(name), err, msg))
	}
	return nil
}

// unreadable says why file cannot be read as a backup, "" when it can be opened.
func unreadable(file string) string {
	f, err := os.Open(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file or directory"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case err != nil:
		return "it cannot be opened"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return "it is a directory"
	}
	return ""
}
