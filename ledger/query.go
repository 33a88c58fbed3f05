package ledger

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
)

// Entry returns the entry with id and its postings.
func (l *Ledger) Entry(ctx context.Context, id int64) (Entry, error) {
	return l.entry(ctx, l.pool, id)
}

func (l *Ledger) entry(ctx context.Context, q db.Querier, id int64) (Entry, error) {
	var e Entry
	err := q.QueryRow(ctx, `SELECT id, effective_date, period, description, source, reference, coalesce(reverses, 0),
			coalesce(idempotency_key, ''), recorded_at, recorded_by
		FROM entry WHERE operation_id = $1 AND id = $2`, l.op, id).
		Scan(&e.ID, &e.EffectiveDate, &e.Period, &e.Description, &e.Source, &e.Reference, &e.Reverses,
			&e.IdempotencyKey, &e.RecordedAt, &e.RecordedBy)
	if err != nil {
		if err == pgx.ErrNoRows {
			return Entry{}, apperr.New(apperr.NotFound, apperr.RuleRef, "there is no ledger entry %d", id)
		}
		return Entry{}, db.Translate("ledger.Entry", err)
	}
	rows, err := q.Query(ctx, `SELECT account_id, amount FROM posting WHERE operation_id = $1 AND entry_id = $2 ORDER BY line`, l.op, id)
	if err != nil {
		return Entry{}, db.Translate("ledger.Entry", err)
	}
	e.Postings, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Posting, error) {
		var id int64
		var p Posting
		if err := r.Scan(&id, &p.Amount); err != nil {
			return p, err
		}
		a, _ := l.AccountByID(id)
		p.Account = a.Code
		return p, nil
	})
	if err != nil {
		return Entry{}, db.Translate("ledger.Entry", err)
	}
	return e, nil
}

// PeriodState is a booking period and whether it is locked.
type PeriodState struct {
	Code      string
	Seq       int
	Start     time.Time
	End       time.Time
	Claimable bool // false for the closure period after the window
	LockedAt  *time.Time
	LockedBy  string
}

// Locked reports whether the period is locked (F1).
func (p PeriodState) Locked() bool { return p.LockedAt != nil }

// Periods returns the operation's booking periods in order.
func (l *Ledger) Periods(ctx context.Context, q db.Querier) ([]PeriodState, error) {
	rows, err := q.Query(ctx, periodsSQL, l.op)
	if err != nil {
		return nil, db.Translate("ledger.Periods", err)
	}
	ps, err := collectPeriods(rows)
	return ps, db.Translate("ledger.Periods", err)
}

const periodsSQL = `SELECT code, seq, starts_on, ends_on, claimable, locked_at, coalesce(locked_by, '')
	FROM period WHERE operation_id = $1 ORDER BY seq`

func collectPeriods(rows pgx.Rows) ([]PeriodState, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (PeriodState, error) {
		var p PeriodState
		err := r.Scan(&p.Code, &p.Seq, &p.Start, &p.End, &p.Claimable, &p.LockedAt, &p.LockedBy)
		return p, err
	})
}

// BookingPeriod applies domain.md §6 to a set of periods: the period containing d if it is open,
// otherwise the earliest open period after it. ok is false when none can take d.
func BookingPeriod(periods []PeriodState, d time.Time) (code string, ok bool) {
	if len(periods) == 0 || d.Before(periods[0].Start) {
		return "", false
	}
	for _, p := range periods {
		if !p.End.Before(d) && !p.Locked() {
			return p.Code, true
		}
	}
	return "", false
}

// LockPeriod locks a period for ever (F1), in the caller's transaction: from its commit on the
// database refuses any entry booked into it. Locking a locked period is refused.
//
// It first takes a SHARE ROW EXCLUSIVE lock on entry, which waits for every transaction that is
// writing entries and holds off new writers until the caller commits, so that no entry can slip
// into the period between the lock and its commit, and the caller reads the period complete.
// Call it before the transaction writes any entry, so two lockers queue rather than deadlock.
func (l *Ledger) LockPeriod(ctx context.Context, tx pgx.Tx, code, by string) error {
	if _, err := tx.Exec(ctx, `LOCK TABLE entry IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return db.Translate("ledger.LockPeriod", err)
	}
	var locked bool
	err := tx.QueryRow(ctx, `SELECT locked_at IS NOT NULL FROM period WHERE operation_id = $1 AND code = $2 FOR UPDATE`,
		l.op, code).Scan(&locked)
	if err == pgx.ErrNoRows {
		return apperr.New(apperr.NotFound, apperr.RuleRef, "there is no period %s", code)
	}
	if err != nil {
		return db.Translate("ledger.LockPeriod", err)
	}
	if locked {
		return apperr.New(apperr.Locked, "F1", "period %s is locked already", code)
	}
	_, err = tx.Exec(ctx, `UPDATE period SET locked_at = $3, locked_by = $4 WHERE operation_id = $1 AND code = $2`,
		l.op, code, l.now().UTC().Truncate(time.Microsecond), by)
	return db.Translate("ledger.LockPeriod", err)
}

// Balances are read from balance_live: the sealed balances plus the postings still waiting to be
// sealed, so they include every committed entry.

// AccountBalance is an account's balance: debit positive, credit negative.
type AccountBalance struct {
	Account
	Balance decimal.Decimal
}

// Balance returns an account's balance over every period.
func (l *Ledger) Balance(ctx context.Context, code string) (decimal.Decimal, error) {
	return l.balanceWhere(ctx, code, `true`, nil)
}

// BalanceThroughPeriod returns an account's balance over the booking periods up to and
// including period.
func (l *Ledger) BalanceThroughPeriod(ctx context.Context, code, period string) (decimal.Decimal, error) {
	return l.balanceWhere(ctx, code,
		`b.period IN (SELECT code FROM period WHERE operation_id = $1 AND seq <= (SELECT seq FROM period WHERE operation_id = $1 AND code = $3))`,
		period)
}

func (l *Ledger) balanceWhere(ctx context.Context, code, where string, arg any) (decimal.Decimal, error) {
	a, err := l.Account(code)
	if err != nil {
		return decimal.Zero, err
	}
	args := []any{l.op, a.ID}
	if arg != nil {
		args = append(args, arg)
	}
	var sum decimal.Decimal
	err = l.pool.QueryRow(ctx, `SELECT coalesce(sum(b.amount), 0) FROM balance_live b
		WHERE b.operation_id = $1 AND b.account_id = $2 AND `+where, args...).Scan(&sum)
	return sum, db.Translate("ledger.Balance", err)
}

// BalanceAt returns an account's balance over the entries effective on or before date, whatever
// period they were booked in.
func (l *Ledger) BalanceAt(ctx context.Context, code string, date time.Time) (decimal.Decimal, error) {
	a, err := l.Account(code)
	if err != nil {
		return decimal.Zero, err
	}
	var sum decimal.Decimal
	err = l.pool.QueryRow(ctx, `SELECT coalesce(sum(p.amount), 0)
		FROM posting p JOIN entry e ON e.operation_id = p.operation_id AND e.id = p.entry_id
		WHERE p.operation_id = $1 AND p.account_id = $2 AND e.effective_date <= $3`, l.op, a.ID, dateOnly(date)).Scan(&sum)
	return sum, db.Translate("ledger.BalanceAt", err)
}

// TrialBalance returns every account's balance over the periods up to and including period
// ("" for all periods). The balances sum to zero.
func (l *Ledger) TrialBalance(ctx context.Context, q db.Querier, period string) ([]AccountBalance, error) {
	rows, err := q.Query(ctx, `SELECT a.id, coalesce(sum(b.amount), 0)
		FROM account a LEFT JOIN balance_live b ON b.operation_id = a.operation_id AND b.account_id = a.id
		     AND ($2 = '' OR b.period IN (SELECT code FROM period WHERE operation_id = $1
		                                   AND seq <= (SELECT seq FROM period WHERE operation_id = $1 AND code = $2)))
		WHERE a.operation_id = $1 GROUP BY a.id ORDER BY a.id`, l.op, period)
	if err != nil {
		return nil, db.Translate("ledger.TrialBalance", err)
	}
	tb, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AccountBalance, error) {
		var id int64
		var b AccountBalance
		if err := r.Scan(&id, &b.Balance); err != nil {
			return b, err
		}
		b.Account, _ = l.AccountByID(id)
		return b, nil
	})
	return tb, db.Translate("ledger.TrialBalance", err)
}

// PeriodBalances returns, for one booking period, the movement of every account that moved.
func (l *Ledger) PeriodBalances(ctx context.Context, q db.Querier, period string) (map[string]decimal.Decimal, error) {
	rows, err := q.Query(ctx, `SELECT account_id, amount FROM balance_live WHERE operation_id = $1 AND period = $2`, l.op, period)
	if err != nil {
		return nil, db.Translate("ledger.PeriodBalances", err)
	}
	out := map[string]decimal.Decimal{}
	var id int64
	var amt decimal.Decimal
	_, err = pgx.ForEachRow(rows, []any{&id, &amt}, func() error {
		a, _ := l.AccountByID(id)
		out[a.Code] = amt
		return nil
	})
	return out, db.Translate("ledger.PeriodBalances", err)
}
