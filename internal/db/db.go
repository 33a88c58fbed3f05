// Package db holds the PostgreSQL machinery every store shares: opening a pool, the one
// transaction helper, and the one translation of database errors into application errors.
package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// Querier is what both a pool and a transaction offer. Functions that take a Querier run in the
// caller's transaction when given one, and in their own single-statement transaction otherwise.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Beginner starts transactions: a pool, or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// AfterConnect prepares a new connection: shopspring decimals for numeric columns.
func AfterConnect(_ context.Context, c *pgx.Conn) error {
	pgxdecimal.Register(c.TypeMap())
	return nil
}

// Storable reports whether PostgreSQL can store s as text: valid UTF-8 without NUL. Text that
// is not is refused by the server with an error people should not see; callers check first.
func Storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// Clip makes s text PostgreSQL can store, of at most max bytes: bytes that are not UTF-8 become
// U+FFFD, NUL characters go, and what is longer is cut at a character boundary. It is for labels
// taken as they come (a file's name, an email typed at sign-in), which no one should be refused
// for.
func Clip(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// Configure gives a pool's configuration the project's connection settings: shopspring decimals
// for numeric columns (AfterConnect), and READ COMMITTED as the default isolation. The ledger
// writes in READ COMMITTED transactions only (its token is refused in any other, IL008), so a
// server, database or role whose default is another level must not stop it; transactions that
// need more (claims' REPEATABLE READ reads) ask for it.
func Configure(cfg *pgxpool.Config) {
	cfg.AfterConnect = AfterConnect
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
}

// Open connects a pool to url with the project's connection settings (Configure).
func Open(ctx context.Context, url string, configure ...func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, apperr.New(apperr.Invalid, apperr.RuleConfig, "the database address is not valid: %v", err)
	}
	Configure(cfg)
	for _, f := range configure {
		f(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: open: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("db: connect: %w", err)
	}
	return pool, nil
}

// maxAttempts bounds the retries of a transaction that lost a deadlock or serialisation race.
const maxAttempts = 5

// WithTx runs fn in a transaction: it commits when fn returns nil and rolls back otherwise (even
// when ctx was cancelled). A transaction that fails on a deadlock or a serialisation failure is
// retried from the start, so fn must do nothing but database work.
func WithTx(ctx context.Context, b Beginner, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err = runTx(ctx, b, fn)
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt*attempt) * time.Millisecond)
	}
	return err
}

func runTx(ctx context.Context, b Beginner, fn func(tx pgx.Tx) error) (err error) {
	tx, err := b.Begin(ctx)
	if err != nil {
		return fmt.Errorf("db: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("db: commit: %w", err)
	}
	return nil
}

func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
}

// ledgerCodes maps the SQLSTATEs raised by the schema's own triggers (migrations/0001) to codes,
// rule ids and what a person reads (in their language: the messages are keys of the catalogue).
// The trigger's own text, with its ids and figures, stays in the error for the log (Refusal).
var ledgerCodes = map[string]Constraint{
	"IL001": {Code: apperr.Invalid, Rule: "L1",
		Message: "the database refused a ledger entry: an entry needs two or more postings summing to zero"},
	"IL002": {Code: apperr.Locked, Rule: "F1",
		Message: "the database refused to change or delete ledger rows: the ledger is append-only; post a reversal or adjustment instead"},
	"IL003": {Code: apperr.Locked, Rule: "F1",
		Message: "the database refused a ledger entry: its period is locked or is not a period of the operation"},
	"IL004": {Code: apperr.Invalid, Rule: "L1",
		Message: "the database refused ledger rows that were not written by the ledger, or that add postings to an entry committed earlier"},
	"IL005": {Code: apperr.Locked, Rule: "F1",
		Message: "the database refused to change a period: a period is never redefined or deleted, and a lock is for ever"},
	"IL006": {Code: apperr.Invalid, Rule: "L3",
		Message: "the database refused a ledger entry: a posting names an account outside the operation's chart"},
	"IL007": {Code: apperr.Invalid, Rule: "L6",
		Message: "the database refused a reversal of an entry that does not exist or is itself a reversal"},
	"IL009": {Code: apperr.Invalid, Rule: "L5",
		Message: "the database refused a ledger entry: it is not booked into the period of its effective date (its own period if open, else the earliest open one after it)"},
	"IL008": {Code: apperr.Invalid, Rule: "F1",
		Message: "the database refused ledger rows written outside a READ COMMITTED transaction: the check at commit must see every period lock"},
}

// Refusal returns the database's own words, with their ids and figures, when err is one of the
// schema's refusals (IL001–IL009, or a row without the ledger token), for the log: a person reads
// the catalogue's message instead.
func Refusal(err error) (string, bool) {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		if _, ok := ledgerCodes[pg.Code]; ok || (violation(pg) && tokenConstraints[pg.ConstraintName]) {
			return pg.Code + ": " + pg.Message, true
		}
	}
	return "", false
}

// tokenConstraints refuse ledger rows naming another transaction than the one writing them
// (migrations/0013, 0016): they are read as IL004 is.
var tokenConstraints = map[string]bool{"entry_token_ck": true, "posting_token_ck": true}

// Constraint describes how a named constraint's violation reads to a person.
type Constraint struct {
	Code    apperr.Code
	Rule    string
	Message string
}

// constraints holds the named constraints whose violation is a user's mistake rather than a
// bug. Packages register theirs with RegisterConstraint at init.
var constraints = map[string]Constraint{
	"entry_idempotency_uq": {apperr.Conflict, "L4", "an entry with this idempotency key exists with different content"},
	"entry_reverses_uq":    {apperr.Conflict, "L6", "this entry has already been reversed"},
	"entry_token_ck":       ledgerCodes["IL004"], // see tokenConstraints
	"posting_token_ck":     ledgerCodes["IL004"],
}

// violation reports whether pg reports its constraint violated: a constraint of the schema
// (class 23) or one its triggers guard (their own codes). A limit exceeded (class 54) names a
// constraint too, an index whose row would be too large, which nothing violated.
func violation(pg *pgconn.PgError) bool { return !strings.HasPrefix(pg.Code, "54") }

// RegisterConstraint names how a violation of constraint reads to people. Call it from init.
func RegisterConstraint(name string, c Constraint) { constraints[name] = c }

// Translate turns a database error into an application error: the schema's own trigger codes and
// registered constraints become the code and rule they stand for, no rows becomes not_found, and
// anything else stays internal (op names where it happened, for the log).
func Translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if apperr.As(err) != nil {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &apperr.Error{Code: apperr.NotFound, Rule: apperr.RuleRef, Message: "not found", Op: op, Err: err}
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		if c, ok := ledgerCodes[pg.Code]; ok {
			return &apperr.Error{Code: c.Code, Rule: c.Rule, Message: c.Message, Op: op, Err: err}
		}
		if c, ok := constraints[pg.ConstraintName]; ok && violation(pg) {
			return &apperr.Error{Code: c.Code, Rule: c.Rule, Message: c.Message, Op: op, Err: err}
		}
		switch pg.Code {
		case "54000":
			// A value too long for its index (some 2,700 bytes): PostgreSQL names the index as
			// the constraint, but nothing was violated. Other limits exceeded are faults.
			if pg.ConstraintName != "" {
				return &apperr.Error{Code: apperr.Invalid, Rule: apperr.RuleFormat, Message: "a text is too long to be stored", Op: op, Err: err}
			}
		case "23505":
			return &apperr.Error{Code: apperr.Conflict, Rule: apperr.RuleRetry, Message: "this record exists already", Op: op, Err: err}
		case "23503", "23514", "23502", "22001", "22003", "22007", "22008", "22P02":
			return &apperr.Error{Code: apperr.Invalid, Rule: apperr.RuleFormat, Message: "the record breaks a rule of the schema", Op: op, Err: err}
		case "57014":
			return &apperr.Error{Code: apperr.Internal, Message: "internal error", Op: op, Err: err}
		}
	}
	return apperr.Wrap(op, err)
}
