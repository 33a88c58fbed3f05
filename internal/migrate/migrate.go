// Package migrate applies the embedded migrations in order, each in its own transaction, under a
// PostgreSQL advisory lock so that two instances starting at once cannot race.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/migrations"
)

// lockKey is the advisory lock that serialises migration runs ("infuse-migrate").
const lockKey int64 = 0x696e667573656d67

var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// All returns the embedded migrations in version order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[1])
		body, err := fs.ReadFile(migrations.FS, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrate: two migrations numbered %04d", out[i].Version)
		}
	}
	return out, nil
}

// Up applies every migration that conn's database has not had yet and returns how many it applied.
func Up(ctx context.Context, conn *pgx.Conn) (int, error) {
	all, err := All()
	if err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		return 0, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey) //nolint:errcheck // released with the session anyway

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migration (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("migrate: create schema_migration: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migration`)
	if err != nil {
		return 0, fmt.Errorf("migrate: read applied: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, fmt.Errorf("migrate: read applied: %w", err)
	}
	for _, v := range versions {
		applied[int(v)] = true
	}
	if err := newer(versions, all); err != nil {
		return 0, err
	}
	n := 0
	for _, m := range all {
		if applied[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migration (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("migrate: %04d_%s: %w", m.Version, m.Name, err)
		}
		n++
	}
	return n, nil
}

// RuleNewer is the rule an older build breaks on a database a newer one migrated.
const RuleNewer = "B6"

// newer refuses a database holding a migration this build does not know: a newer release
// migrated it (or restored a backup of it here), and this build's code would misread its schema.
func newer(applied []int32, all []Migration) error {
	known := map[int]bool{}
	for _, m := range all {
		known[m.Version] = true
	}
	for _, v := range applied {
		if !known[int(v)] {
			return apperr.New(apperr.Invalid, RuleNewer, "the database was migrated by a newer release of infuse (it holds migration %04d, which this one, at %04d, does not know): run that release or a later one",
				v, all[len(all)-1].Version)
		}
	}
	return nil
}

// Pending reports how many embedded migrations conn's database has not had yet; a database a
// newer release migrated is an error (B6).
func Pending(ctx context.Context, conn interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) (int, error) {
	all, err := All()
	if err != nil {
		return 0, err
	}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migration`)
	var versions []int32
	if err == nil {
		versions, err = pgx.CollectRows(rows, pgx.RowTo[int32])
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "42P01" { // undefined_table: nothing applied yet
		return len(all), nil
	}
	if err != nil {
		return 0, fmt.Errorf("migrate: read applied: %w", err)
	}
	if err := newer(versions, all); err != nil {
		return 0, err
	}
	return len(all) - len(versions), nil
}
