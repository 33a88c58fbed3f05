package match

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
)

// How an import runs (architecture.md, "bulk paths are set-based"), in one transaction:
//
//  1. The file is streamed, a record at a time, through the CSV reader. Each field is parsed and
//     every rule a row can be checked against on its own (formats, V1, V2, V3 per entry, V7) is
//     checked in Go; the typed values and the row's problems are COPYed into a temporary staging
//     table. Nothing holds the whole file in memory.
//  2. SQL resolves the rows against what is recorded (officers, rate versions, live lines), with
//     the rows that must be serialised locked first, and checks the rules that need other rows:
//     V4, V3's daily total, V5, V6, V8 (asked of access.Can per authority), R5.3, M3–M5.
//  3. If any row has a problem, every problem is reported, row by row, and the transaction rolls
//     back: nothing is written.
//  4. Otherwise the new lines are posted to the ledger with ledger.PostBatch in chunks, and the
//     rows are written with one INSERT … SELECT from the staging tables.
//
// Rows identical to what is recorded are replays and are skipped, so importing the same file
// again writes nothing. That holds after a correction too: a row identical to a line that was
// reversed is the line its officer withdrew, so it is skipped (and counted as Withdrawn), not
// recorded again, even where a corrected line has been recorded since; a row that differs in
// any field is a correction and is recorded as the next generation. The checks that concern
// only the rows that would be written (V3's daily total, V4, V7's approver who is the recorder,
// M4) pass over the skipped rows.

// MaxFileName bounds a file's name as an import records it: most file systems allow 255 bytes.
const MaxFileName = 255

// ImportOptions are the optional settings of an import.
type ImportOptions struct {
	// Name is the file's name for the audit trail (import_run.file_name), recorded as db.Clip
	// makes it, at most MaxFileName bytes.
	Name string
	// Progress, when set, is called as the import moves on: after every chunk of rows read
	// or posted, and at each phase.
	Progress func(Progress)
}

// Progress reports how far an import has got.
type Progress struct {
	Phase string // "reading", "checking", "posting", "writing"
	Rows  int64  // rows read (reading) or lines posted (posting) so far
	Total int64  // lines to post (posting), 0 otherwise
}

// ImportResult says what an import did.
type ImportResult struct {
	Kind      string // officers, time, expenditure
	Rows      int64  // data rows read
	Written   int64  // lines (or rate versions) written
	Replayed  int64  // rows already recorded, skipped (Withdrawn among them)
	Withdrawn int64  // of Replayed, rows identical to lines reversed earlier: not recorded again
	Repeated  int64  // of Replayed, rows identical to an earlier row of the file that is new: recorded once
	Closure   int64  // of Written, lines booked in the closure period, which no claim covers (the final claim is submitted)
	Officers  int64  // officers created (officers files)
	ImportID  int64  // the import_run row, 0 when nothing was written
}

// progressEvery is how many rows pass between two progress reports.
const progressEvery = 10_000

// postChunk is how many ledger entries one PostBatch call takes: large enough that the
// per-call round trips do not matter, small enough to bound memory.
const postChunk = 10_000

// importer is what differs between the three files.
type importer interface {
	spec() fileSpec
	action() access.Action
	// stage is the staging table's DDL (without the leading CREATE TEMP TABLE name) and the
	// columns COPY fills; the last two are always rules and msgs (the row's problems).
	stageDDL() string
	stageColumns() []string
	// parse turns a record into the staging values (without row_no, rules and msgs), noting
	// problems on the record.
	parse(r *record) []any
	// check runs the SQL checks, inserting problems into t_err.
	check(ctx context.Context, tx pgx.Tx) error
	// write posts and writes the new lines and returns how many lines were written and replayed.
	write(ctx context.Context, tx pgx.Tx, importID func() (int64, error)) (written, replayed int64, err error)
	// withdrawnRows is how many rows check found identical to reversed lines, and skipped.
	withdrawnRows() int64
	// repeatedRows is how many rows check found identical to an earlier new row of the file.
	repeatedRows() int64
}

// base is what every importer holds.
type base struct {
	s         *Service
	by        access.User
	act       access.Action // what by does: an import, or a single recording (access.RecordTime …)
	progress  func(Progress)
	written   int64
	withdrawn int64 // rows identical to reversed lines, skipped (set by check)
	repeated  int64 // rows identical to an earlier new row of the file, skipped (set by check)
}

func (b *base) withdrawnRows() int64 { return b.withdrawn }
func (b *base) repeatedRows() int64  { return b.repeated }

// countRepeated sets b.repeated to the count query gives.
func (b *base) countRepeated(ctx context.Context, tx pgx.Tx, query string) error {
	return db.Translate("match.check", tx.QueryRow(ctx, query).Scan(&b.repeated))
}

// countWithdrawn sets b.withdrawn to the number of t_rows' withdrawn rows that match where (the
// rows skipped as withdrawn rather than as replays of a live line).
func (b *base) countWithdrawn(ctx context.Context, tx pgx.Tx, where string, args ...any) error {
	err := tx.QueryRow(ctx, `SELECT count(*) FROM t_rows WHERE withdrawn AND `+where, args...).Scan(&b.withdrawn)
	return db.Translate("match.check", err)
}

// do returns the action the importer performs: act when set, else its import action.
func (b *base) do(imp importer) access.Action {
	if b.act != "" {
		return b.act
	}
	return imp.action()
}

// countNew returns how many rows were staged and how many are new (t_new; none when the checks
// stopped before making it).
func countNew(ctx context.Context, tx pgx.Tx) (staged, n int64, err error) {
	if err = tx.QueryRow(ctx, `SELECT count(*) FROM stage`).Scan(&staged); err != nil {
		return 0, 0, db.Translate("match.count", err)
	}
	var exists bool
	if err = tx.QueryRow(ctx, `SELECT to_regclass('pg_temp.t_new') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return staged, 0, db.Translate("match.count", err)
	}
	err = tx.QueryRow(ctx, `SELECT count(*) FROM t_new`).Scan(&n)
	return staged, n, db.Translate("match.count", err)
}

// source yields records to stage: a CSV file, or the records a single Record call builds.
type source interface {
	next(rec *record) error // io.EOF at the end
	rows() int64
}

// stager is COPY's source: it reads the next record, parses it and hands COPY its values. It
// keeps the problems the Go checks find, with their message keys, for the report.
type stager struct {
	src      source
	imp      importer
	rec      record
	vals     []any
	probs    []RowError
	err      error
	progress func(Progress)
}

func (s *stager) Next() bool {
	if err := s.src.next(&s.rec); err != nil {
		if err != io.EOF {
			s.err = err
		}
		return false
	}
	var vals []any
	if s.rec.fields != nil || s.rec.typed != nil {
		vals = s.imp.parse(&s.rec)
	} else {
		vals = make([]any, len(s.imp.stageColumns())-3)
	}
	s.probs = append(s.probs, s.rec.probs...)
	var rules, msgs []string
	for _, p := range s.rec.probs {
		rules = append(rules, p.Rule)
		msgs = append(msgs, p.Message)
	}
	s.vals = append(append(append(s.vals[:0], s.rec.row), vals...), nullStrings(rules), nullStrings(msgs))
	if s.progress != nil && s.src.rows()%progressEvery == 0 { // by records: row numbers skip empty lines
		s.progress(Progress{Phase: "reading", Rows: s.src.rows()})
	}
	return true
}

func (s *stager) Values() ([]any, error) { return s.vals, nil }
func (s *stager) Err() error             { return s.err }

func nullStrings(s []string) any {
	if len(s) == 0 {
		return nil
	}
	return s
}

// hashingReader hashes what is read through it, for the audit trail.
type hashingReader struct {
	r io.Reader
	h hash.Hash
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	return n, err
}

// importFile runs one import of a CSV file in one transaction.
func (s *Service) importFile(ctx context.Context, by access.User, r io.Reader, opts ImportOptions, imp importer) (ImportResult, error) {
	if err := access.Can(by, imp.action(), ""); err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{Kind: imp.spec().kind}
	opts.Name = db.Clip(opts.Name, MaxFileName)
	attempts := 0
	hr := &hashingReader{r: r, h: sha256.New()}
	err := db.WithTx(ctx, s.l.Pool(), func(tx pgx.Tx) error {
		if attempts++; attempts > 1 {
			// The file has been read: it cannot be read again for a retry.
			return apperr.New(apperr.Conflict, apperr.RuleRetry, "the import met a concurrent change and was rolled back; run it again")
		}
		f, headerProbs, err := openCSV(hr, imp.spec())
		if err != nil {
			return apperr.Wrap("match.import", err)
		}
		if headerProbs != nil {
			return importFailed(opts.Name, headerProbs)
		}
		var n int64
		n, err = s.stageAndCheck(ctx, tx, by, f, imp, opts.Name, opts.Progress)
		res.Rows = n
		if err != nil {
			return err
		}
		sum := hr.h.Sum(nil)
		res.Written, res.Replayed, err = imp.write(ctx, tx, func() (int64, error) {
			// Written is known once the checks are done: every new line is written or none.
			_, newLines, err := countNew(ctx, tx)
			if err != nil {
				return 0, err
			}
			err = tx.QueryRow(ctx, `INSERT INTO import_run (operation_id, kind, file_name, file_sha256, rows_read, rows_written,
					recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
				s.p.OperationID, imp.spec().kind, opts.Name, sum, n, newLines, s.stamp(), by.Email).Scan(&res.ImportID)
			return res.ImportID, db.Translate("match.import", err)
		})
		if _, officers := imp.(*officersImport); err == nil && !officers && res.Written > 0 {
			// Every line posted is in t_posted with its booking period (domain.md §6).
			err = tx.QueryRow(ctx, `SELECT count(*) FROM t_posted WHERE period = $1`, ledger.ClosurePeriod).Scan(&res.Closure)
			err = db.Translate("match.import", err)
		}
		if progress := opts.Progress; progress != nil && err == nil {
			progress(Progress{Phase: "done", Rows: n})
		}
		return err
	})
	if err != nil {
		return ImportResult{}, err
	}
	if oi, ok := imp.(*officersImport); ok {
		res.Officers = oi.officers
	}
	res.Withdrawn, res.Repeated = imp.withdrawnRows(), imp.repeatedRows()
	return res, nil
}

// stageAndCheck creates the staging tables, streams src into them and runs every check. It
// returns the number of data rows read, and an ImportError (wrapped) if any row has a problem.
func (s *Service) stageAndCheck(ctx context.Context, tx pgx.Tx, by access.User, src source, imp importer, name string, progress func(Progress)) (int64, error) {
	// The checks hash and sort every row of a large file; give them room to do it in memory.
	// JIT compilation is off: the planner guesses the staging tables' sizes before they are
	// analysed, and compiling the import's wide statements cost more than it saved (on a
	// 200,000-row file, a second on the statement that prepares the ledger entries and a quarter
	// of one on the statement that writes the lines).
	if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '256MB'; SET LOCAL jit = off`); err != nil {
		return 0, db.Translate("match.stage", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE stage (`+imp.stageDDL()+`, rules text[], msgs text[]) ON COMMIT DROP;
		CREATE TEMP TABLE t_err (row_no bigint NOT NULL, rule text NOT NULL, key text NOT NULL, args text[] NOT NULL) ON COMMIT DROP`); err != nil {
		return 0, db.Translate("match.stage", err)
	}
	st := &stager{src: src, imp: imp, progress: progress}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"stage"}, imp.stageColumns(), st)
	if err != nil {
		var ae *apperr.Error
		if errors.As(err, &ae) {
			return 0, err
		}
		return 0, db.Translate("match.stage", err)
	}
	if progress != nil {
		progress(Progress{Phase: "checking", Rows: n})
	}
	if err := imp.check(ctx, tx); err != nil {
		return n, err
	}
	probs, err := collectProblems(ctx, tx, st.probs)
	if err != nil {
		return n, err
	}
	if len(probs) > 0 {
		return n, importFailed(name, probs)
	}
	return src.rows(), nil
}

// analyzeIfLarge gathers statistics on a large staging table, so that the plans that read it
// are made for its size (PostgreSQL never analyses temporary tables itself). Small ones are not
// worth the time: the planner's guess from the table's pages is good enough.
func analyzeIfLarge(ctx context.Context, tx pgx.Tx, table string) error {
	var big bool
	if err := tx.QueryRow(ctx, `SELECT pg_relation_size($1::regclass) > 256 * 1024`, table).Scan(&big); err != nil || !big {
		return db.Translate("match.analyze", err)
	}
	_, err := tx.Exec(ctx, `ANALYZE `+pgx.Identifier{table}.Sanitize())
	return db.Translate("match.analyze", err)
}

// collectProblems returns every problem found, the Go checks' (goProbs, in row order) and the
// SQL checks' (in t_err, each a message key and its arguments), in row order: a row's Go
// problems first, then its SQL problems by rule and message.
func collectProblems(ctx context.Context, tx pgx.Tx, goProbs []RowError) ([]RowError, error) {
	rows, err := tx.Query(ctx, `SELECT row_no, rule, key, args, format(key, VARIADIC args) FROM t_err`)
	if err != nil {
		return nil, db.Translate("match.check", err)
	}
	var sqlProbs []RowError
	var e RowError
	var args []pgtype.Text // a NULL argument reads as empty, as format() prints it: the problem is still reported
	_, err = pgx.ForEachRow(rows, []any{&e.Row, &e.Rule, &e.Key, &args, &e.Message}, func() error {
		e.Args = make([]any, len(args))
		for i, a := range args {
			e.Args[i] = a.String
		}
		sqlProbs = append(sqlProbs, e)
		return nil
	})
	if err != nil {
		return nil, db.Translate("match.check", err)
	}
	slices.SortFunc(sqlProbs, func(a, b RowError) int {
		return cmp.Or(cmp.Compare(a.Row, b.Row), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Message, b.Message))
	})
	out := append(append([]RowError{}, goProbs...), sqlProbs...)
	sortRowErrors(out)
	return out, nil
}

// importFailed is the error of a file with problems: invalid, with the first problem's rule,
// wrapping the ImportError that lists them all.
func importFailed(name string, probs []RowError) error {
	sortRowErrors(probs)
	rows := len((&ImportError{Rows: probs}).BadRows())
	var e *apperr.Error
	switch {
	case rows == 1 && name == "":
		e = apperr.New(apperr.Invalid, probs[0].Rule, "%d row has problems; nothing in the file was recorded", rows)
	case name == "":
		e = apperr.New(apperr.Invalid, probs[0].Rule, "%d rows have problems; nothing in the file was recorded", rows)
	case rows == 1:
		e = apperr.New(apperr.Invalid, probs[0].Rule, "%d row has problems; nothing in %s was recorded", rows, name)
	default:
		e = apperr.New(apperr.Invalid, probs[0].Rule, "%d rows have problems; nothing in %s was recorded", rows, name)
	}
	e.Err = &ImportError{File: name, Rows: probs}
	return e
}

// AsImportError returns the row problems carried by err, or nil.
func AsImportError(err error) *ImportError {
	var ie *ImportError
	if errors.As(err, &ie) {
		return ie
	}
	return nil
}

// singleError turns the problems of a one-row recording into the error of that recording: the
// first problem, with its code (V5 and M5 conflicts, V8 forbidden, the rest invalid).
func singleError(err error) error {
	ie := AsImportError(err)
	if ie == nil || len(ie.Rows) == 0 {
		return err
	}
	p := ie.Rows[0]
	code := apperr.Invalid
	switch p.Rule {
	case RuleV5, RuleLine, RuleR53:
		code = apperr.Conflict
	case RuleV8, access.RuleRole:
		code = apperr.Forbidden
	}
	var msgs apperr.Texts
	for _, r := range ie.Rows {
		if r.Rule == p.Rule {
			msgs = append(msgs, apperr.Text{Key: r.Key, Args: r.Args, Message: r.Message})
		}
	}
	e := apperr.New(code, p.Rule, "%s", msgs)
	e.Err = ie
	return e
}

// refusals are the reasons access.Can gave for refusing authorities, as message keys and their
// arguments (joined by the unit separator, for SQL's string_to_array), one per authority.
type refusals struct{ keys, args []string }

// authorityRefusals asks access.Can about every distinct authority of the staged rows and
// returns the refused ones with the reasons, for the SQL checks to mark their rows (V8).
func authorityRefusals(ctx context.Context, tx pgx.Tx, by access.User, act access.Action) ([]string, refusals, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT authority FROM stage WHERE rules IS NULL`)
	if err != nil {
		return nil, refusals{}, db.Translate("match.check", err)
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, refusals{}, db.Translate("match.check", err)
	}
	auths, why := []string{}, refusals{keys: []string{}, args: []string{}} // never NULL: "x = ANY(NULL)" is not false
	for _, a := range all {
		if err := access.Can(by, act, a); err != nil {
			e := apperr.As(err)
			args := make([]string, len(e.Args))
			for i, x := range e.Args {
				args[i] = fmt.Sprint(x)
			}
			auths = append(auths, a)
			why.keys = append(why.keys, e.Key)
			why.args = append(why.args, strings.Join(args, "\x1f"))
		}
	}
	return auths, why, nil
}

// sliceSource stages records built in memory, for the single-line Record calls.
type sliceSource struct {
	recs []record
	i    int
}

func (s *sliceSource) next(rec *record) error {
	if s.i >= len(s.recs) {
		return io.EOF
	}
	*rec = s.recs[s.i]
	s.i++
	return nil
}

func (s *sliceSource) rows() int64 { return int64(s.i) }

// recordOne runs a one-row import of a typed value in its own transaction.
func (s *Service) recordOne(ctx context.Context, by access.User, typed any, imp importer, act access.Action) error {
	if err := access.Can(by, act, ""); err != nil {
		return err
	}
	return db.WithTx(ctx, s.l.Pool(), func(tx pgx.Tx) error {
		src := &sliceSource{recs: []record{{row: 1, typed: typed}}}
		if _, err := s.stageAndCheck(ctx, tx, by, src, imp, "", nil); err != nil {
			return singleError(err)
		}
		_, _, err := imp.write(ctx, tx, func() (int64, error) { return 0, nil })
		return err
	})
}
