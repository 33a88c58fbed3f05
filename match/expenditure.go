package match

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

// ExpenditureInput is a cash expenditure line as a person or a file gives it (interfaces.md
// expenditure.csv). A negative amount is a credit note; its InvoiceRef names the invoice it
// credits.
type ExpenditureInput struct {
	Heading     string    // staff, delivery or other
	DefrayedOn  time.Time // the date the money left the account
	Payee       string
	Description string
	Amount      decimal.Decimal // incl. irrecoverable VAT only; negative for a credit note
	EvidenceRef string
	InvoiceRef  string // optional (empty for payroll lines)
}

// Expenditure is a recorded expenditure line.
type Expenditure struct {
	ID          int64
	Heading     string
	DefrayedOn  time.Time
	Payee       string
	Description string
	Amount      decimal.Decimal
	EvidenceRef string
	InvoiceRef  string
	Credits     int64 // for a credit note, the line it credits
	Generation  int
	EntryID     int64
	Period      string
	RecordedAt  time.Time
	RecordedBy  string
	ReversedBy  int64
	Replayed    bool // true when RecordExpenditure found this identical line recorded already (M5)
}

// ImportExpenditure imports an expenditure.csv file (interfaces.md) as by: all or nothing,
// every bad row reported, lines already recorded skipped.
func (s *Service) ImportExpenditure(ctx context.Context, by access.User, r io.Reader, opts ImportOptions) (ImportResult, error) {
	return s.importFile(ctx, by, r, opts, &expImport{base{s: s, by: by, progress: opts.Progress}})
}

// RecordExpenditure records one expenditure line as by, by the same rules as an import, and
// posts it (Dr the heading, Cr cash; a credit note the other way) in the same transaction. It
// takes the single-entry path (single.go).
func (s *Service) RecordExpenditure(ctx context.Context, by access.User, in ExpenditureInput) (Expenditure, error) {
	return s.recordExpenditureOne(ctx, by, trimExp(in))
}

func trimExp(in ExpenditureInput) ExpenditureInput {
	in.Heading, in.Payee, in.Description = strings.TrimSpace(in.Heading), strings.TrimSpace(in.Payee), strings.TrimSpace(in.Description)
	in.EvidenceRef, in.InvoiceRef = strings.TrimSpace(in.EvidenceRef), strings.TrimSpace(in.InvoiceRef)
	return in
}

type expImport struct{ base }

func (x *expImport) spec() fileSpec        { return expSpec }
func (x *expImport) action() access.Action { return access.ImportExpenditure }

func (x *expImport) stageDDL() string {
	return `row_no bigint NOT NULL, heading text COLLATE "C", defrayed_on date, payee text, description text,
		amount numeric(14, 2), evidence_ref text, invoice_ref text`
}

func (x *expImport) stageColumns() []string {
	return []string{"row_no", "heading", "defrayed_on", "payee", "description", "amount", "evidence_ref", "invoice_ref", "rules", "msgs"}
}

func (x *expImport) parse(r *record) []any {
	in, _ := r.typed.(ExpenditureInput)
	dateOK, amountOK := true, true
	if r.typed == nil {
		in = ExpenditureInput{Heading: r.get("heading"), Payee: r.get("payee"), Description: r.get("description"),
			EvidenceRef: r.get("evidence_ref"), InvoiceRef: r.get("invoice_ref")}
		var err error
		if in.DefrayedOn, err = programme.ParseDate(r.get("defrayed_on")); err != nil {
			r.fail(RuleFormat, "defrayed_on %s is not a date in the form YYYY-MM-DD", quote(r.get("defrayed_on")))
			dateOK = false
		}
		if in.Amount, err = ParseMoney(r.get("amount")); err != nil {
			r.failWith(err)
			amountOK = false
		}
	} else if in.DefrayedOn.IsZero() {
		r.fail(RuleFormat, "the defrayal date is missing")
		dateOK = false
	}
	s := x.s
	switch h, ok := s.p.Heading(in.Heading); {
	case in.Heading == "":
		r.fail(RuleFormat, "the heading is missing")
	case !ok:
		r.fail(RuleRef, "heading %s is not one of %s", quote(in.Heading), strings.Join(s.cash, ", "))
	case h.Kind == programme.KindInKind:
		r.fail(RuleRef, "officer time is recorded as time entries (time.csv), not as expenditure")
	case !slices.Contains(s.cash, in.Heading):
		r.fail(RuleR64, "heading %s is covered by the flat rate and takes no real-cost lines", in.Heading)
	}
	if dateOK {
		s.checkDate(r, apperr.Phrase("defrayal date"), in.DefrayedOn)
	}
	checkText(r, map[string]string{"heading": in.Heading, "payee": in.Payee, "description": in.Description,
		"evidence_ref": in.EvidenceRef, "invoice_ref": in.InvoiceRef})
	if in.Payee == "" {
		r.fail(RuleFormat, "the payee is missing")
	}
	if in.Description == "" {
		r.fail(RuleFormat, "the description is missing")
	}
	if amountOK {
		switch {
		case in.Amount.IsZero():
			r.fail(RuleMoney, "the amount is zero")
		case !in.Amount.Equal(in.Amount.Truncate(2)) || in.Amount.Abs().GreaterThanOrEqual(decimal.New(1, 10)):
			r.fail(RuleMoney, "amount %s must be pounds and pence below 10,000,000,000", in.Amount)
		case in.Amount.IsNegative() && in.InvoiceRef == "":
			r.fail(RuleCredit, "a negative amount is a credit note and must name the invoice it credits in invoice_ref")
		}
	}
	if in.EvidenceRef == "" {
		r.fail(RuleV7, "the evidence reference is missing")
	}
	vals := []any{in.Heading, nil, in.Payee, in.Description, nil, in.EvidenceRef, in.InvoiceRef}
	if dateOK {
		vals[1] = in.DefrayedOn
	}
	if amountOK {
		vals[4] = in.Amount
	}
	return vals
}

// expLockKey serialises expenditure recordings of an operation, so that credit notes are checked
// against a stable set of lines.
const expLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('infuse.expenditure:' || $1, 0))`

func (x *expImport) check(ctx context.Context, tx pgx.Tx) error {
	op := x.s.p.OperationID
	if _, err := tx.Exec(ctx, expLockSQL, op); err != nil {
		return db.Translate("match.expenditure", err)
	}
	// Each row resolved against the lines of its identity (M5): the live one, the next
	// generation, and whether a reversed line is identical to it (withdrawn: skipped, as a replay
	// of the live line is). Within the file the first row of an identity that is not withdrawn
	// counts; a later identical row is a replay, a different one a conflict (M5).
	_, err := tx.Exec(ctx, `CREATE TEMP TABLE t_rows ON COMMIT DROP AS
		WITH ex AS (
			SELECT heading, evidence_ref, description, max(generation) + 1 AS next_gen,
			       max(id) FILTER (WHERE reversed_by IS NULL) AS live_id
			  FROM expenditure
			 WHERE operation_id = $1 AND (heading, evidence_ref, description) IN (SELECT heading, evidence_ref, description FROM stage)
			 GROUP BY 1, 2, 3
		), rx AS (
			SELECT DISTINCT heading, evidence_ref, description, defrayed_on, payee, amount, invoice_ref
			  FROM expenditure
			 WHERE operation_id = $1 AND reversed_by IS NOT NULL
			   AND (heading, evidence_ref, description) IN (SELECT heading, evidence_ref, description FROM stage)
		), r AS (
			SELECT s.row_no, s.heading, s.defrayed_on, s.payee, s.description, s.amount, s.evidence_ref, s.invoice_ref,
			       coalesce(ex.next_gen, 0) AS generation, ex.live_id, rx.heading IS NOT NULL AS withdrawn
			  FROM stage s
			  LEFT JOIN ex ON ex.heading = s.heading AND ex.evidence_ref = s.evidence_ref AND ex.description = s.description
			  LEFT JOIN rx ON rx.heading = s.heading AND rx.evidence_ref = s.evidence_ref AND rx.description = s.description
			        AND rx.defrayed_on = s.defrayed_on AND rx.payee = s.payee AND rx.amount = s.amount AND rx.invoice_ref = s.invoice_ref
			 WHERE s.rules IS NULL
		)
		SELECT r.*,
		       first_value(r.row_no) OVER k AS first_row,
		       (r.defrayed_on, r.payee, r.amount, r.invoice_ref) IS NOT DISTINCT FROM
		       (first_value(r.defrayed_on) OVER k, first_value(r.payee) OVER k, first_value(r.amount) OVER k, first_value(r.invoice_ref) OVER k) AS same
		  FROM r
		WINDOW k AS (PARTITION BY r.heading, r.evidence_ref, r.description, r.withdrawn ORDER BY r.row_no)`, op)
	if err != nil {
		return db.Translate("match.expenditure", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO t_err (row_no, rule, key, args)
		SELECT r.row_no, 'M5', CASE WHEN e.invoice_ref = ''
		            THEN 'line %s (%s, evidence %s, %s) is recorded already with defrayal date %s, payee %s, amount %s and no invoice; reverse it before recording a different one'
		            ELSE 'line %s (%s, evidence %s, %s) is recorded already with defrayal date %s, payee %s, amount %s, invoice %s; reverse it before recording a different one' END,
		       ARRAY[e.id::text, e.heading::text, e.evidence_ref::text, e.description::text, e.defrayed_on::text, e.payee::text, e.amount::text]
		       || CASE WHEN e.invoice_ref = '' THEN '{}'::text[] ELSE ARRAY[e.invoice_ref::text] END
		  FROM t_rows r JOIN expenditure e ON e.operation_id = $1 AND e.id = r.live_id
		 WHERE NOT r.withdrawn AND (e.defrayed_on, e.payee, e.amount, e.invoice_ref) IS DISTINCT FROM (r.defrayed_on, r.payee, r.amount, r.invoice_ref)
		UNION ALL
		SELECT row_no, 'M5', 'row %s has the same heading, evidence reference and description with a different date, payee, amount or invoice',
		       ARRAY[first_row::text]
		  FROM t_rows WHERE NOT withdrawn AND row_no <> first_row AND NOT same`, op)
	if err != nil {
		return db.Translate("match.expenditure", err)
	}
	// A withdrawn row identical to the live line is that line's replay.
	if err := x.countWithdrawn(ctx, tx, `NOT EXISTS (SELECT 1 FROM expenditure e WHERE e.operation_id = $1 AND e.id = live_id
			AND (e.defrayed_on, e.payee, e.amount, e.invoice_ref) = (t_rows.defrayed_on, t_rows.payee, t_rows.amount, t_rows.invoice_ref))`, op); err != nil {
		return err
	}
	if err := x.countRepeated(ctx, tx, `SELECT count(*) FROM t_rows
			WHERE live_id IS NULL AND NOT withdrawn AND row_no <> first_row AND same`); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `CREATE TEMP TABLE t_new ON COMMIT DROP AS
		SELECT nextval('expenditure_id_seq') AS id, row_no, heading, defrayed_on, payee, description, amount, evidence_ref,
		       invoice_ref, generation, NULL::bigint AS credits
		  FROM t_rows WHERE live_id IS NULL AND NOT withdrawn AND row_no = first_row`)
	if err != nil {
		return db.Translate("match.expenditure", err)
	}
	return x.allocateCredits(ctx, tx)
}

// allocateCredits finds the line each new credit note credits (M4). A credit note names its
// invoice, and corrects one line of it (domain.md §5), so it credits no more than that line has
// left: its amount less the live credit notes that credit it. It credits the first line of its
// heading and invoice with enough left (recorded lines by id, then the file's by row), and the
// file's credit notes take their lines in row order, each leaving less for the next. A credit
// note that no line has room for is refused. A line that live credit notes credit cannot be
// reversed (ReverseExpenditure), so what a line has left never goes below zero.
func (x *expImport) allocateCredits(ctx context.Context, tx pgx.Tx) error {
	type line struct {
		id   int64
		left decimal.Decimal
	}
	type key struct{ heading, invoice string }
	var some bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM t_new WHERE amount < 0)`).Scan(&some); err != nil || !some {
		return db.Translate("match.expenditure", err)
	}
	rows, err := tx.Query(ctx, `WITH k AS (SELECT DISTINCT heading, invoice_ref FROM t_new WHERE amount < 0)
		SELECT l.id, l.heading, l.invoice_ref, l.left_, 0 AS file_row
		  FROM (`+creditLinesSQL+`) l
		 WHERE (l.heading, l.invoice_ref) IN (SELECT heading, invoice_ref FROM k)
		UNION ALL
		SELECT n.id, n.heading, n.invoice_ref, n.amount, n.row_no
		  FROM t_new n
		 WHERE n.amount > 0 AND (n.heading, n.invoice_ref) IN (SELECT heading, invoice_ref FROM k)
		 ORDER BY file_row, id`, x.s.p.OperationID)
	if err != nil {
		return db.Translate("match.expenditure", err)
	}
	lines := map[key][]*line{}
	var (
		l       line
		k       key
		fileRow int64
	)
	_, err = pgx.ForEachRow(rows, []any{&l.id, &k.heading, &k.invoice, &l.left, &fileRow}, func() error {
		lines[k] = append(lines[k], &line{id: l.id, left: l.left})
		return nil
	})
	if err != nil {
		return db.Translate("match.expenditure", err)
	}
	rows, err = tx.Query(ctx, `SELECT row_no, heading, invoice_ref, amount FROM t_new WHERE amount < 0 ORDER BY row_no`)
	if err != nil {
		return db.Translate("match.expenditure", err)
	}
	var (
		row                    int64
		amount                 decimal.Decimal
		creditRows, creditsIDs []int64
		badRows                []int64 // credit notes no line has room for, with the most any line of theirs has left
		badMost                []*decimal.Decimal
	)
	_, err = pgx.ForEachRow(rows, []any{&row, &k.heading, &k.invoice, &amount}, func() error {
		var most *decimal.Decimal
		for _, c := range lines[k] {
			if c.left.Add(amount).Sign() >= 0 {
				c.left = c.left.Add(amount)
				creditRows, creditsIDs = append(creditRows, row), append(creditsIDs, c.id)
				return nil
			}
			if most == nil || c.left.GreaterThan(*most) {
				left := c.left
				most = &left
			}
		}
		badRows, badMost = append(badRows, row), append(badMost, most)
		return nil
	})
	if err != nil {
		return db.Translate("match.expenditure", err)
	}
	_, err = tx.Exec(ctx, `UPDATE t_new n SET credits = u.credits
		  FROM unnest($1::bigint[], $2::bigint[]) AS u(row_no, credits) WHERE n.row_no = u.row_no`, creditRows, creditsIDs)
	if err != nil || len(badRows) == 0 {
		return db.Translate("match.expenditure", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO t_err (row_no, rule, key, args)
		SELECT n.row_no, 'M4',
		       CASE WHEN u.most IS NULL THEN 'credit note for invoice %s: no %s line with that invoice reference is recorded'
		            ELSE 'credit note for invoice %s credits %s, more than any %s line of that invoice has left to credit (at most %s)' END,
		       CASE WHEN u.most IS NULL THEN ARRAY[n.invoice_ref::text, n.heading::text]
		            ELSE ARRAY[n.invoice_ref::text, (-n.amount)::text, n.heading::text, (u.most::numeric(14, 2))::text] END
		  FROM unnest($1::bigint[], $2::numeric[]) AS u(row_no, most) JOIN t_new n ON n.row_no = u.row_no`, badRows, badMost)
	return db.Translate("match.expenditure", err)
}

func (x *expImport) write(ctx context.Context, tx pgx.Tx, importID func() (int64, error)) (written, replayed int64, err error) {
	staged, n, err := countNew(ctx, tx)
	if err != nil || n == 0 {
		return 0, staged, err
	}
	id, err := importID()
	if err != nil {
		return 0, 0, err
	}
	by := x.by.Email
	err = postNew(ctx, tx, x.s.l, n, `SELECT id, heading, defrayed_on, payee, description, amount, evidence_ref, generation FROM t_new`,
		func(r pgx.Rows) (ledger.EntryInput, int64, error) {
			var (
				id                             int64
				heading, payee, desc, evidence string
				date                           time.Time
				amount                         decimal.Decimal
				gen                            int
			)
			if err := r.Scan(&id, &heading, &date, &payee, &desc, &amount, &evidence, &gen); err != nil {
				return ledger.EntryInput{}, 0, err
			}
			return expLedgerInput(by, id, heading, date, payee, desc, amount, evidence, gen), id, nil
		}, x.progress)
	if err != nil {
		return 0, 0, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO expenditure (operation_id, id, heading, defrayed_on, payee, description, amount,
			evidence_ref, invoice_ref, credits, generation, entry_id, period, import_id, recorded_at, recorded_by)
		SELECT $1, n.id, n.heading, n.defrayed_on, n.payee, n.description, n.amount, n.evidence_ref, n.invoice_ref,
		       n.credits, n.generation, p.entry_id, p.period, nullif($2, 0), $3, $4
		  FROM t_new n JOIN t_posted p ON p.id = n.id
		 ORDER BY n.amount < 0, n.row_no`, x.s.p.OperationID, id, x.s.stamp(), by)
	if err != nil {
		return 0, 0, db.Translate("match.expenditure", err)
	}
	x.written = n
	return n, staged - n, nil
}

// expLedgerInput is the ledger entry of a new expenditure line id (Dr the heading, Cr cash; a
// credit note the other way), the same for an import and a single recording.
func expLedgerInput(by string, id int64, heading string, date time.Time, payee, desc string, amount decimal.Decimal, evidence string, gen int) ledger.EntryInput {
	what := "Expenditure"
	if amount.IsNegative() {
		what = "Credit note"
	}
	return ledger.EntryInput{
		EffectiveDate: date, Source: "expenditure", Reference: fmt.Sprint(id), RecordedBy: by,
		Description:    clip(fmt.Sprintf("%s (%s): %s, %s", what, heading, payee, desc), 200),
		IdempotencyKey: ExpenditureKey(heading, evidence, desc, gen),
		Postings: []ledger.Posting{
			{Account: ledger.HeadingAccount(heading), Amount: amount},
			{Account: ledger.Cash, Amount: amount.Neg()},
		},
	}
}

// ExpenditureKey is the ledger idempotency key of the generation-th recording of the line
// identified by heading, evidence reference and description (M5).
func ExpenditureKey(heading, evidence, description string, generation int) string {
	h := sha256.Sum256([]byte(heading + "\x00" + evidence + "\x00" + description))
	return fmt.Sprintf("expenditure:%s:%d", hex.EncodeToString(h[:12]), generation)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

const expColumns = `id, heading, defrayed_on, payee, description, amount, evidence_ref, invoice_ref, coalesce(credits, 0),
	generation, entry_id, period, recorded_at, recorded_by, coalesce(reversed_by, 0)`

func scanExpenditure(r pgx.Row) (Expenditure, error) {
	var e Expenditure
	err := r.Scan(&e.ID, &e.Heading, &e.DefrayedOn, &e.Payee, &e.Description, &e.Amount, &e.EvidenceRef, &e.InvoiceRef,
		&e.Credits, &e.Generation, &e.EntryID, &e.Period, &e.RecordedAt, &e.RecordedBy, &e.ReversedBy)
	return e, err
}

// Expenditure returns the expenditure line with id.
func (s *Service) Expenditure(ctx context.Context, id int64) (Expenditure, error) {
	e, err := scanExpenditure(s.l.Pool().QueryRow(ctx, `SELECT `+expColumns+` FROM expenditure
		WHERE operation_id = $1 AND id = $2`, s.p.OperationID, id))
	if err == pgx.ErrNoRows {
		return Expenditure{}, apperr.New(apperr.NotFound, RuleRef, "there is no expenditure line %d", id)
	}
	return e, db.Translate("match.Expenditure", err)
}

// postNew posts the n new lines that query returns, in chunks: a server-side cursor feeds
// ledger.PostBatch (ledger.Post for a single line), and each entry's id and booking period go
// into t_posted, keyed by the line's id, for the INSERT … SELECT that writes the lines. The
// expenditure import posts so: its lines are a transaction list's hundreds, and their
// descriptions and keys are made in Go (expLedgerInput). The time import, which reaches a
// million lines, posts set-based in SQL (ledger.PostTransfers).
func postNew(ctx context.Context, tx pgx.Tx, l *ledger.Ledger, n int64, query string,
	scan func(pgx.Rows) (ledger.EntryInput, int64, error), progress func(Progress)) error {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE t_posted (id bigint PRIMARY KEY, entry_id bigint NOT NULL, period text COLLATE "C" NOT NULL) ON COMMIT DROP`); err != nil {
		return db.Translate("match.post", err)
	}
	if n == 1 {
		rows, err := tx.Query(ctx, query)
		if err != nil {
			return db.Translate("match.post", err)
		}
		in, id, err := collectOne(rows, scan)
		if err != nil {
			return err
		}
		e, err := postOne(ctx, tx, l, in)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO t_posted (id, entry_id, period) VALUES ($1, $2, $3)`, id, e.ID, e.Period)
		return db.Translate("match.post", err)
	}
	if _, err := tx.Exec(ctx, `DECLARE t_cur NO SCROLL CURSOR FOR `+query); err != nil {
		return db.Translate("match.post", err)
	}
	ins := make([]ledger.EntryInput, 0, postChunk)
	ids := make([]int64, 0, postChunk)
	posted := make([][]any, 0, postChunk)
	var done int64
	for {
		// Describe each time: the cursor's columns differ between imports on one connection.
		rows, err := tx.Query(ctx, fmt.Sprintf(`FETCH %d FROM t_cur`, postChunk), pgx.QueryExecModeDescribeExec)
		if err != nil {
			return db.Translate("match.post", err)
		}
		ins, ids = ins[:0], ids[:0]
		for rows.Next() {
			in, id, err := scan(rows)
			if err != nil {
				rows.Close()
				return db.Translate("match.post", err)
			}
			ins = append(ins, in)
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return db.Translate("match.post", err)
		}
		if len(ins) == 0 {
			break
		}
		out, err := l.PostBatch(ctx, tx, ins)
		if err != nil {
			return err
		}
		posted = posted[:0]
		for i, e := range out {
			if e.Replayed {
				return apperr.New(apperr.Conflict, "L4", "the ledger already holds entry %d for a line of this import; run it again", e.ID)
			}
			posted = append(posted, []any{ids[i], e.ID, e.Period})
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"t_posted"}, []string{"id", "entry_id", "period"}, pgx.CopyFromRows(posted)); err != nil {
			return db.Translate("match.post", err)
		}
		done += int64(len(ins))
		if progress != nil {
			progress(Progress{Phase: "posting", Rows: done, Total: n})
		}
	}
	_, err := tx.Exec(ctx, `CLOSE t_cur`)
	return db.Translate("match.post", err)
}

// collectOne scans the one row of rows.
func collectOne(rows pgx.Rows, scan func(pgx.Rows) (ledger.EntryInput, int64, error)) (ledger.EntryInput, int64, error) {
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return ledger.EntryInput{}, 0, db.Translate("match.post", err)
		}
		return ledger.EntryInput{}, 0, apperr.New(apperr.Internal, "", "internal error")
	}
	in, id, err := scan(rows)
	if err != nil {
		return in, id, db.Translate("match.post", err)
	}
	rows.Close()
	return in, id, db.Translate("match.post", rows.Err())
}
