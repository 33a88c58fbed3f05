package match

import (
	"context"
	"iter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/programme"
)

// The claims package's view of the lines: what a claim pack shows for the lines BOOKED in a
// ledger period (domain.md §6, §8). Each function reads through q, so claims can call it in its
// own transaction and snapshot; the iterators stream (a quarter's lines are never collected
// here) and hold q's connection busy until the loop ends, so do not issue other queries on q
// inside the loop. They find a period's lines by the booking period stored on each line and
// correction (indexed), ordered by ledger entry id.

// TimeLine is an officer-time line of a claim: a time entry booked in the period, or the
// reversal of one (Reversal set, Hours and Amount negative).
type TimeLine struct {
	EntryID         int64  // the ledger entry (the reversal's, for a reversal)
	Period          string // booking period
	EffectivePeriod string // the period of the work date; differs from Period for a late item
	Late            bool   // EffectivePeriod is earlier than Period
	TimeEntryID     int64
	Authority       string
	PayrollRef      string
	OfficerName     string
	WorkDate        time.Time
	Hours           decimal.Decimal // negative for a reversal
	Activity        string
	RateValidFrom   time.Time       // the rate version that priced the line (R5.3)
	AnnualCost      decimal.Decimal // AGEC of that version
	FTE             decimal.Decimal
	HourlyRate      decimal.Decimal // R5.1 to 4 decimal places, for display; Amount is computed exactly
	Amount          decimal.Decimal // R9.3a; negative for a reversal
	EvidenceRef     string
	ApprovedBy      string
	RecordedBy      string
	RecordedAt      time.Time
	Reversal        bool
	Reverses        int64  // for a reversal, the ledger entry it reverses
	Reason          string // for a reversal, why
}

// CashLine is a transaction-list line of a claim: an expenditure line or credit note booked in
// the period, or the reversal of one (Reversal set, Amount of opposite sign).
type CashLine struct {
	EntryID         int64
	Period          string
	EffectivePeriod string
	Late            bool
	ExpenditureID   int64
	Heading         string
	DefrayedOn      time.Time
	Payee           string
	Description     string
	Amount          decimal.Decimal // signed: negative for a credit note, opposite to the line for a reversal
	EvidenceRef     string
	InvoiceRef      string
	CreditNote      bool  // the line is a credit note …
	Credits         int64 // … of this expenditure line
	CreditsEntryID  int64 // … posted as this ledger entry
	RecordedBy      string
	RecordedAt      time.Time
	Reversal        bool
	Reverses        int64 // for a reversal, the ledger entry it reverses
	Reason          string
}

// RateVersionUse is one officer rate version used by a period's time lines: the staff-cost
// workings of a claim (AGEC, FTE and rate per officer version).
type RateVersionUse struct {
	Authority   string
	PayrollRef  string
	OfficerName string
	ValidFrom   time.Time
	AnnualCost  decimal.Decimal
	FTE         decimal.Decimal
	HourlyRate  decimal.Decimal // R5.1 to 4 decimal places
	Lines       int64           // time lines (reversals included) of the period priced by it
	Hours       decimal.Decimal // their net hours
	Amount      decimal.Decimal // their net amount
}

// periodJoin finds the claim period of an effective date (d) among the operation's periods.
func periodJoin(alias, date string) string {
	return ` JOIN period ` + alias + ` ON ` + alias + `.operation_id = t.operation_id AND ` + date + ` BETWEEN ` +
		alias + `.starts_on AND ` + alias + `.ends_on`
}

var timeLinesSQL = `
SELECT t.entry_id, t.period, ep.code, ep.seq < bp.seq, t.id, o.authority, o.payroll_ref, o.name, t.work_date, t.hours,
       t.activity, t.rate_valid_from, rv.annual_cost, rv.fte, t.amount, t.evidence_ref, t.approved_by, t.recorded_by,
       t.recorded_at, false, 0::bigint, ''
  FROM time_entry t
  JOIN officer o ON o.operation_id = t.operation_id AND o.id = t.officer_id
  JOIN rate_version rv ON rv.operation_id = t.operation_id AND rv.officer_id = t.officer_id AND rv.valid_from = t.rate_valid_from
  JOIN period bp ON bp.operation_id = t.operation_id AND bp.code = t.period` + periodJoin("ep", "t.work_date") + `
 WHERE t.operation_id = $1 AND t.period = $2
UNION ALL
SELECT c.entry_id, c.period, ep.code, ep.seq < bp.seq, t.id, o.authority, o.payroll_ref, o.name, t.work_date, -t.hours,
       t.activity, t.rate_valid_from, rv.annual_cost, rv.fte, -t.amount, t.evidence_ref, t.approved_by, c.recorded_by,
       c.recorded_at, true, t.entry_id, c.reason
  FROM correction c
  JOIN time_entry t ON t.operation_id = c.operation_id AND t.id = c.time_entry_id
  JOIN officer o ON o.operation_id = t.operation_id AND o.id = t.officer_id
  JOIN rate_version rv ON rv.operation_id = t.operation_id AND rv.officer_id = t.officer_id AND rv.valid_from = t.rate_valid_from
  JOIN period bp ON bp.operation_id = c.operation_id AND bp.code = c.period` + periodJoin("ep", "t.work_date") + `
 WHERE c.operation_id = $1 AND c.period = $2 AND c.time_entry_id IS NOT NULL
 ORDER BY 1`

// TimeLines streams the officer-time lines booked in period, in ledger entry order.
func TimeLines(ctx context.Context, q db.Querier, p *programme.Programme, period string) iter.Seq2[TimeLine, error] {
	return func(yield func(TimeLine, error) bool) {
		rows, err := q.Query(ctx, timeLinesSQL, p.OperationID, period)
		if err != nil {
			yield(TimeLine{}, db.Translate("match.TimeLines", err))
			return
		}
		defer rows.Close()
		var l TimeLine
		dest := []any{&l.EntryID, &l.Period, &l.EffectivePeriod, &l.Late, &l.TimeEntryID, &l.Authority, &l.PayrollRef,
			&l.OfficerName, &l.WorkDate, &l.Hours, &l.Activity, &l.RateValidFrom, &l.AnnualCost, &l.FTE, &l.Amount,
			&l.EvidenceRef, &l.ApprovedBy, &l.RecordedBy, &l.RecordedAt, &l.Reversal, &l.Reverses, &l.Reason}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				yield(TimeLine{}, db.Translate("match.TimeLines", err))
				return
			}
			l.HourlyRate = RoundRat(HourlyRate(l.AnnualCost, l.FTE, p.HoursBasis), 4)
			if !yield(l, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(TimeLine{}, db.Translate("match.TimeLines", err))
		}
	}
}

var cashLinesSQL = `
SELECT t.entry_id, t.period, ep.code, ep.seq < bp.seq, t.id, t.heading, t.defrayed_on, t.payee, t.description, t.amount,
       t.evidence_ref, t.invoice_ref, t.credits IS NOT NULL, coalesce(t.credits, 0), coalesce(cr.entry_id, 0),
       t.recorded_by, t.recorded_at, false, 0::bigint, ''
  FROM expenditure t
  LEFT JOIN expenditure cr ON cr.operation_id = t.operation_id AND cr.id = t.credits
  JOIN period bp ON bp.operation_id = t.operation_id AND bp.code = t.period` + periodJoin("ep", "t.defrayed_on") + `
 WHERE t.operation_id = $1 AND t.period = $2
UNION ALL
SELECT c.entry_id, c.period, ep.code, ep.seq < bp.seq, t.id, t.heading, t.defrayed_on, t.payee, t.description, -t.amount,
       t.evidence_ref, t.invoice_ref, t.credits IS NOT NULL, coalesce(t.credits, 0), coalesce(cr.entry_id, 0),
       c.recorded_by, c.recorded_at, true, t.entry_id, c.reason
  FROM correction c
  JOIN expenditure t ON t.operation_id = c.operation_id AND t.id = c.expenditure_id
  LEFT JOIN expenditure cr ON cr.operation_id = t.operation_id AND cr.id = t.credits
  JOIN period bp ON bp.operation_id = c.operation_id AND bp.code = c.period` + periodJoin("ep", "t.defrayed_on") + `
 WHERE c.operation_id = $1 AND c.period = $2 AND c.expenditure_id IS NOT NULL
 ORDER BY 1`

// CashLines streams the expenditure lines (credit notes and reversals included) booked in
// period, in ledger entry order.
func CashLines(ctx context.Context, q db.Querier, p *programme.Programme, period string) iter.Seq2[CashLine, error] {
	return func(yield func(CashLine, error) bool) {
		rows, err := q.Query(ctx, cashLinesSQL, p.OperationID, period)
		if err != nil {
			yield(CashLine{}, db.Translate("match.CashLines", err))
			return
		}
		defer rows.Close()
		var l CashLine
		dest := []any{&l.EntryID, &l.Period, &l.EffectivePeriod, &l.Late, &l.ExpenditureID, &l.Heading, &l.DefrayedOn,
			&l.Payee, &l.Description, &l.Amount, &l.EvidenceRef, &l.InvoiceRef, &l.CreditNote, &l.Credits, &l.CreditsEntryID,
			&l.RecordedBy, &l.RecordedAt, &l.Reversal, &l.Reverses, &l.Reason}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				yield(CashLine{}, db.Translate("match.CashLines", err))
				return
			}
			if !yield(l, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(CashLine{}, db.Translate("match.CashLines", err))
		}
	}
}

// RateVersionsUsed returns the rate versions that price the officer-time lines booked in period
// (reversals included), by authority, payroll reference and valid-from date.
func RateVersionsUsed(ctx context.Context, q db.Querier, p *programme.Programme, period string) ([]RateVersionUse, error) {
	rows, err := q.Query(ctx, `
		WITH l AS (
			SELECT officer_id, rate_valid_from, hours, amount FROM time_entry WHERE operation_id = $1 AND period = $2
			UNION ALL
			SELECT t.officer_id, t.rate_valid_from, -t.hours, -t.amount
			  FROM correction c JOIN time_entry t ON t.operation_id = c.operation_id AND t.id = c.time_entry_id
			 WHERE c.operation_id = $1 AND c.period = $2
		)
		SELECT o.authority, o.payroll_ref, o.name, rv.valid_from, rv.annual_cost, rv.fte, u.n, u.hours, u.amount
		  FROM (SELECT officer_id, rate_valid_from, count(*) AS n, sum(hours) AS hours, sum(amount) AS amount FROM l GROUP BY 1, 2) u
		  JOIN officer o ON o.operation_id = $1 AND o.id = u.officer_id
		  JOIN rate_version rv ON rv.operation_id = $1 AND rv.officer_id = u.officer_id AND rv.valid_from = u.rate_valid_from
		 ORDER BY o.authority, o.payroll_ref, rv.valid_from`, p.OperationID, period)
	if err != nil {
		return nil, db.Translate("match.RateVersionsUsed", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RateVersionUse, error) {
		var u RateVersionUse
		err := r.Scan(&u.Authority, &u.PayrollRef, &u.OfficerName, &u.ValidFrom, &u.AnnualCost, &u.FTE, &u.Lines, &u.Hours, &u.Amount)
		u.HourlyRate = RoundRat(HourlyRate(u.AnnualCost, u.FTE, p.HoursBasis), 4)
		return u, err
	})
	return out, db.Translate("match.RateVersionsUsed", err)
}
