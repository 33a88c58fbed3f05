package match

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
)

// Correction is the reversal of one recorded line (domain.md §6: corrections are new entries).
type Correction struct {
	ID            int64
	TimeEntryID   int64 // the line reversed: a time entry …
	ExpenditureID int64 // … or an expenditure line
	Reason        string
	EntryID       int64  // the reversal entry in the ledger
	Period        string // its booking period: the line's own if still open, else the earliest open one (a late item)
	RecordedAt    time.Time
	RecordedBy    string
}

// ReverseTime reverses time entry id, as by, with a reason (M6): the ledger entry is reversed in
// an open period and the entry stops being live, so the officer, date and activity can be
// recorded again correctly. An id that is not there is not_found (M6). A finance officer, who
// corrects only its own authority's entries (V8), is refused by V8 in the same words for another
// authority's entry as for an id that is not there: access.Can's refusal would tell that the id
// exists, and whose it is.
func (s *Service) ReverseTime(ctx context.Context, by access.User, id int64, reason string) (Correction, error) {
	reason, err := reversalAsked(by, reason, access.Correct)
	if err != nil {
		return Correction{}, err
	}
	var c Correction
	err = db.WithTx(ctx, s.l.Pool(), func(tx pgx.Tx) error {
		entry, _, err := s.timeReversible(ctx, tx, by, id, true)
		if err != nil {
			return err
		}
		c, err = s.reverse(ctx, tx, by, entry, reason, fmt.Sprintf("reverse:time_entry:%d", id), "time_entry_id", id)
		if err != nil {
			return err
		}
		c.TimeEntryID = id
		_, err = tx.Exec(ctx, `UPDATE time_entry SET reversed_by = $3 WHERE operation_id = $1 AND id = $2`, s.p.OperationID, id, c.ID)
		return db.Translate("match.ReverseTime", err)
	})
	return c, err
}

// PreviewReverseTime makes the checks of ReverseTime, writing nothing, and returns the period
// the reversal would be booked into now (L5): the line's own if still open, else the earliest
// open one, whose claim it reduces. A page shows it for confirmation before the reversal.
func (s *Service) PreviewReverseTime(ctx context.Context, by access.User, id int64, reason string) (string, error) {
	if _, err := reversalAsked(by, reason, access.Correct); err != nil {
		return "", err
	}
	_, date, err := s.timeReversible(ctx, s.l.Pool(), by, id, false)
	if err != nil {
		return "", err
	}
	return s.reversalPeriod(ctx, date)
}

// timeReversible checks that by may reverse time entry id now (V8, M2; M6: not reversed
// already) and returns its ledger entry and work date. With lock it takes the locks the reversal
// needs: the officer first, as recordings lock it, then the entry.
func (s *Service) timeReversible(ctx context.Context, q db.Querier, by access.User, id int64, lock bool) (entry int64, date time.Time, err error) {
	var auth string
	err = q.QueryRow(ctx, `SELECT o.authority FROM officer o
		WHERE o.operation_id = $1 AND o.id = (SELECT officer_id FROM time_entry WHERE operation_id = $1 AND id = $2)`+
		lockClause(lock, "FOR NO KEY UPDATE"), s.p.OperationID, id).Scan(&auth)
	if err == pgx.ErrNoRows || err == nil && access.Can(by, access.Correct, auth) != nil {
		// A finance officer (A2: the only users with an authority) is refused by V8 for
		// whatever is not its authority's, there or not; anyone else is told it is not there.
		code, rule := apperr.NotFound, RuleRef
		if by.Authority != "" {
			code, rule = apperr.Forbidden, RuleV8
		}
		return 0, time.Time{}, apperr.New(code, rule, "there is no time entry %d", id)
	}
	if err != nil {
		return 0, time.Time{}, db.Translate("match.ReverseTime", err)
	}
	var reversed int64
	if err := q.QueryRow(ctx, `SELECT entry_id, work_date, coalesce(reversed_by, 0) FROM time_entry WHERE operation_id = $1 AND id = $2`+
		lockClause(lock, "FOR UPDATE"), s.p.OperationID, id).Scan(&entry, &date, &reversed); err != nil {
		return 0, time.Time{}, db.Translate("match.ReverseTime", err)
	}
	if reversed != 0 {
		return 0, time.Time{}, apperr.New(apperr.Conflict, RuleCorr, "time entry %d has been reversed already (correction %d)", id, reversed)
	}
	return entry, date, nil
}

// ReverseExpenditure reverses expenditure line id, as by, with a reason (M6). A line that live
// credit notes credit cannot be reversed until they are (M4), nor one whose reversal would leave
// the live credit notes of its heading and invoice more than what is left invoiced (M4: a credit
// note recorded before credit notes were capped by their line may exceed its line and lean on
// the invoice's other lines). Reversing needs the right to record expenditure as well as to
// correct.
func (s *Service) ReverseExpenditure(ctx context.Context, by access.User, id int64, reason string) (Correction, error) {
	reason, err := reversalAsked(by, reason, access.RecordExpenditure, access.Correct)
	if err != nil {
		return Correction{}, err
	}
	var c Correction
	err = db.WithTx(ctx, s.l.Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, expLockSQL, s.p.OperationID); err != nil {
			return db.Translate("match.ReverseExpenditure", err)
		}
		entry, _, err := s.expenditureReversible(ctx, tx, id, true)
		if err != nil {
			return err
		}
		c, err = s.reverse(ctx, tx, by, entry, reason, fmt.Sprintf("reverse:expenditure:%d", id), "expenditure_id", id)
		if err != nil {
			return err
		}
		c.ExpenditureID = id
		_, err = tx.Exec(ctx, `UPDATE expenditure SET reversed_by = $3 WHERE operation_id = $1 AND id = $2`, s.p.OperationID, id, c.ID)
		return db.Translate("match.ReverseExpenditure", err)
	})
	return c, err
}

// PreviewReverseExpenditure makes the checks of ReverseExpenditure, writing nothing, and returns
// the period the reversal would be booked into now, as PreviewReverseTime does.
func (s *Service) PreviewReverseExpenditure(ctx context.Context, by access.User, id int64, reason string) (string, error) {
	if _, err := reversalAsked(by, reason, access.RecordExpenditure, access.Correct); err != nil {
		return "", err
	}
	_, date, err := s.expenditureReversible(ctx, s.l.Pool(), id, false)
	if err != nil {
		return "", err
	}
	return s.reversalPeriod(ctx, date)
}

// expenditureReversible checks that expenditure line id can be reversed now (M2; M6: not
// reversed already; M4: no live credit note leans on it) and returns its ledger entry and
// defrayal date. With lock it locks the line (the caller holds expLockSQL).
func (s *Service) expenditureReversible(ctx context.Context, q db.Querier, id int64, lock bool) (entry int64, date time.Time, err error) {
	var reversed int64
	var credits []int64
	var heading, invoice string
	var invoiced, credited decimal.Decimal // what stays live of the line's heading and invoice once it is reversed
	err = q.QueryRow(ctx, `SELECT x.entry_id, x.defrayed_on, coalesce(x.reversed_by, 0),
			coalesce((SELECT array_agg(c.id ORDER BY c.id) FROM expenditure c
			           WHERE c.operation_id = x.operation_id AND c.credits = x.id AND c.reversed_by IS NULL), '{}'),
			x.heading, x.invoice_ref, coalesce(i.invoiced, 0), coalesce(i.credited, 0)
		FROM expenditure x
		LEFT JOIN LATERAL (
			SELECT sum(e.amount) FILTER (WHERE e.amount > 0) AS invoiced, sum(e.amount) FILTER (WHERE e.amount < 0) AS credited
			  FROM expenditure e
			 WHERE e.operation_id = x.operation_id AND e.reversed_by IS NULL AND e.id <> x.id AND e.heading = x.heading
			   AND e.invoice_ref = x.invoice_ref AND x.amount > 0 AND x.invoice_ref <> '') i ON true
		WHERE x.operation_id = $1 AND x.id = $2`+lockClause(lock, "FOR UPDATE OF x"), s.p.OperationID, id).
		Scan(&entry, &date, &reversed, &credits, &heading, &invoice, &invoiced, &credited)
	if err == pgx.ErrNoRows {
		return 0, time.Time{}, apperr.New(apperr.NotFound, RuleRef, "there is no expenditure line %d", id)
	}
	if err != nil {
		return 0, time.Time{}, db.Translate("match.ReverseExpenditure", err)
	}
	switch {
	case reversed != 0:
		return 0, time.Time{}, apperr.New(apperr.Conflict, RuleCorr, "expenditure line %d has been reversed already (correction %d)", id, reversed)
	case len(credits) > 0:
		return 0, time.Time{}, apperr.New(apperr.Conflict, RuleCredit, "expenditure line %d is credited by credit notes %v: reverse them first", id, credits)
	case invoiced.Add(credited).IsNegative():
		// The credit notes would total more than is left invoiced once the line is reversed.
		return 0, time.Time{}, apperr.New(apperr.Conflict, RuleCredit, "credit notes for invoice %s total %s, more than the %s invoiced under %s",
			invoice, credited.Neg().StringFixed(2), invoiced.StringFixed(2), heading)
	}
	return entry, date, nil
}

// reversalAsked checks what a reversal asks of by before any line is read: the rights of
// actions and a reason (M6), which it returns trimmed.
func reversalAsked(by access.User, reason string, actions ...access.Action) (string, error) {
	for _, a := range actions {
		if err := access.Can(by, a, ""); err != nil {
			return "", err
		}
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return "", invalid(RuleCorr, "a correction needs a reason").On("reason")
	}
	if c, control := ControlIn(reason); control {
		return "", ControlProblem("reason", c).On("reason")
	}
	return reason, nil
}

// reversalPeriod is the period a reversal of a line dated d is booked into now (L5).
func (s *Service) reversalPeriod(ctx context.Context, d time.Time) (string, error) {
	periods, err := s.l.Periods(ctx, s.l.Pool())
	if err != nil {
		return "", err
	}
	booked, ok := ledger.BookingPeriod(periods, d)
	if !ok {
		return "", apperr.New(apperr.Conflict, "L5", "no period is open to book the reversal into")
	}
	return booked, nil
}

// lockClause is clause when lock is set, so that a check shared by a step and its preview locks
// only for the step.
func lockClause(lock bool, clause string) string {
	if lock {
		return " " + clause
	}
	return ""
}

// reverse posts the reversal of ledger entry `entry` and records the correction of the line
// whose id is in column col.
func (s *Service) reverse(ctx context.Context, tx pgx.Tx, by access.User, entry int64, reason, key, col string, id int64) (Correction, error) {
	e, err := s.l.Reverse(ctx, tx, entry, reason, by.Email, key)
	if err != nil {
		return Correction{}, err
	}
	c := Correction{Reason: reason, EntryID: e.ID, Period: e.Period, RecordedAt: s.stamp(), RecordedBy: by.Email}
	err = tx.QueryRow(ctx, `INSERT INTO correction (operation_id, `+col+`, reason, entry_id, period, recorded_at, recorded_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, s.p.OperationID, id, reason, e.ID, e.Period, c.RecordedAt, c.RecordedBy).Scan(&c.ID)
	return c, db.Translate("match.reverse", err)
}
