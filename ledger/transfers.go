package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
)

// PostTransfers posts, set-based and without the rows leaving the database, one two-posting
// entry for each row of the caller's table src, in the caller's transaction: amount debited to
// debit_account and credited to credit_account (a negative amount turns them round). It is the
// bulk path of architecture.md: the rows are checked with SQL and posted with INSERT … SELECT.
//
// src has the columns
//
//	ref bigint (the caller's id of the row, unique), effective_date date, description text,
//	source text, reference text, idempotency_key text (NULL or '' for none), recorded_by text,
//	debit_account text, credit_account text (account codes), amount numeric
//
// and PostTransfers creates the temporary table dst (ON COMMIT DROP) with a row for each row of
// src, whose columns include ref, entry_id and period (the booking period), for the caller to
// join on ref.
//
// The rows are new lines, which the caller has checked: a row that breaks a rule of Post's is an
// internal error, and an idempotency key the ledger holds already is a conflict (L4), not a
// replay. Each entry's request fingerprint is the one Post would record for the same entry, so a
// later Post with the same key and request is a replay of it. It returns the number of entries.
func (l *Ledger) PostTransfers(ctx context.Context, tx pgx.Tx, src, dst string) (int64, error) {
	s, d := pgx.Identifier{src}.Sanitize(), pgx.Identifier{dst}.Sanitize()

	// The booking period of each date from the first to the last (domain.md §6, BookingPeriod),
	// from the periods as they stand; a period locked meanwhile is refused at commit (IL003).
	var (
		first, last *time.Time
		periods     []PeriodState
	)
	b := &pgx.Batch{}
	b.Queue(tokenSQL)
	b.Queue(`SELECT min(effective_date), max(effective_date) FROM ` + s).QueryRow(func(r pgx.Row) error {
		return r.Scan(&first, &last)
	})
	b.Queue(periodsSQL, l.op).Query(func(rows pgx.Rows) (err error) {
		periods, err = collectPeriods(rows)
		return err
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, db.Translate("ledger.PostTransfers", err)
	}
	var dates []time.Time
	var codes []string
	if first != nil && len(periods) > 0 {
		// Only the days of the periods can have one: the rest stay without, and are refused.
		from, to := dateOnly(*first), dateOnly(*last)
		if start := periods[0].Start; from.Before(start) {
			from = start
		}
		if end := periods[len(periods)-1].End; to.After(end) {
			to = end
		}
		for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
			if code, ok := BookingPeriod(periods, day); ok {
				dates, codes = append(dates, day), append(codes, code)
			}
		}
	}

	// One pass over src: each row with its entry id, its booking period, its accounts, its
	// request fingerprint and the first rule of Post's (validate) it breaks, if any. The ids are
	// given in the order of ref (nextval runs after the sort), and the rows are written in that
	// order: a caller whose refs follow its keys (the time import's follow officer and date) has
	// each index of entry filled page by page rather than at random, about a seventh faster.
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE `+d+` ON COMMIT DROP AS
		WITH bp AS MATERIALIZED (
			SELECT * FROM unnest($3::date[], $4::text[]) AS bp(effective_date, period)
		), a AS MATERIALIZED (
			SELECT code, id FROM account WHERE operation_id = $1
		)
		SELECT s.ref, nextval('entry_id_seq') AS entry_id, bp.period, s.effective_date, s.description, s.source,
		       s.reference, nullif(s.idempotency_key, '') AS idempotency_key, s.recorded_by, da.id AS debit_id, ca.id AS credit_id,
		       s.amount::numeric(16, 2) AS amount,
		       CASE WHEN s.idempotency_key <> '' THEN
		           ledger_transfer_fingerprint(s.effective_date, s.description, s.source, s.reference,
		                                       s.debit_account, s.credit_account, s.amount::numeric(16, 2)) END AS fingerprint,
		       CASE WHEN s.ref IS NULL THEN '|the row has no ref'
		            WHEN s.effective_date IS NULL THEN 'L5|the entry has no effective date'
		            WHEN s.effective_date < $2 THEN format('L5|%s is before the operation''s first period', s.effective_date)
		            WHEN coalesce(s.amount, 0) = 0 THEN 'L1|the amount is zero'
		            WHEN s.amount <> round(s.amount, 2) THEN format('L2|amount %s has more than two decimal places', s.amount)
		            WHEN da.id IS NULL THEN format('L3|there is no account %s', s.debit_account)
		            WHEN ca.id IS NULL THEN format('L3|there is no account %s', s.credit_account)
		            WHEN coalesce(s.description, '') = '' THEN '|the entry has no description'
		            WHEN s.source IS NULL OR s.source !~ '^[a-z][a-z_]*$' THEN format('|the entry''s source %L is not a lower-case word', s.source)
		            WHEN coalesce(s.recorded_by, '') = '' THEN '|the entry does not say who recorded it'
		       END AS problem
		  FROM `+s+` s
		  LEFT JOIN bp ON bp.effective_date = s.effective_date
		  LEFT JOIN a da ON da.code = s.debit_account
		  LEFT JOIN a ca ON ca.code = s.credit_account
		 ORDER BY s.ref`, l.op, l.firstDay, dates, codes); err != nil {
		return 0, db.Translate("ledger.PostTransfers", err)
	}
	var (
		n       int64
		ref     *int64
		problem *string
		none    *time.Time
	)
	err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+d+`),
		       b.ref, b.problem, (SELECT min(effective_date) FROM `+d+` WHERE period IS NULL)
		  FROM (SELECT 1) one LEFT JOIN (SELECT ref, problem FROM `+d+` WHERE problem IS NOT NULL LIMIT 1) b ON true`).
		Scan(&n, &ref, &problem, &none)
	if err != nil {
		return 0, db.Translate("ledger.PostTransfers", err)
	}
	if problem != nil {
		// The caller builds its rows from lines it has checked: a broken one is its bug, which
		// the log names and people see as an internal error.
		detail := *problem // "rule|message"
		if rule, msg, _ := strings.Cut(detail, "|"); rule == "" {
			detail = msg
		} else {
			detail = rule + ": " + msg
		}
		row := "NULL"
		if ref != nil {
			row = strconv.FormatInt(*ref, 10)
		}
		return 0, apperr.Wrap("ledger.PostTransfers", fmt.Errorf("the entry for row %s of %s is refused: %s", row, src, detail))
	}
	if none != nil {
		return 0, l.noPeriodError(*none)
	}
	if n >= bulkThreshold {
		// Tells the commit-time check to hash this transaction's rows rather than look each up.
		if _, err := tx.Exec(ctx, `SELECT set_config('infuse.ledger_bulk', 'on', true)`); err != nil {
			return 0, db.Translate("ledger.PostTransfers", err)
		}
	}

	// The entries and their postings (the commit-time check queues them for sealing). A key used
	// before breaks entry_idempotency_uq: the transaction cannot go on, and the caller's import is
	// refused.
	at := l.now().UTC().Truncate(time.Microsecond)
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO entry (operation_id, id, effective_date, period, description, source, reference,
	                            idempotency_key, fingerprint, recorded_at, recorded_by)
		SELECT $1, entry_id, effective_date, period, description, source, reference, idempotency_key, fingerprint, $2, recorded_by
		  FROM `+d, l.op, at)
	// Entry by entry, line by line: posting_pkey then grows at its right-hand end only, where
	// PostgreSQL appends without searching the tree (all first lines, then all second lines,
	// split every page of it).
	b.Queue(`INSERT INTO posting (operation_id, entry_id, line, account_id, amount)
		SELECT $1, d.entry_id, v.line, v.account_id, v.amount
		  FROM `+d+` d CROSS JOIN LATERAL (VALUES (1::smallint, d.debit_id, d.amount), (2::smallint, d.credit_id, -d.amount)) AS v(line, account_id, amount)`, l.op)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		if pg := (*pgconn.PgError)(nil); errors.As(err, &pg) && pg.ConstraintName == "entry_idempotency_uq" {
			return 0, apperr.New(apperr.Conflict, "L4", "the ledger already holds an entry for a line of this batch; run it again")
		}
		return 0, db.Translate("ledger.PostTransfers", err)
	}
	return n, nil
}
