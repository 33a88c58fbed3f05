package claims

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
	"github.com/ccr-infuse/infuse/reports"
)

// The lifecycle of domain.md §7: draft → reviewed → submitted → approved → paid. Each step runs
// in one transaction that holds the claim's row lock, records an event with who and when, and
// posts what the step posts; the schema's triggers keep the same rules (0003_claims.sql).

// Review records the four-eyes review of the draft claim of period (R3.13) by a programme
// manager or finance officer, of its current compilation. The reviewer may not then submit the
// claim.
func (s *Service) Review(ctx context.Context, period string, by access.User) (*Claim, error) {
	return s.ReviewCompilation(ctx, period, time.Time{}, by)
}

// ReviewCompilation is Review of the compilation the reviewer read, the one compiled at
// compiledAt: if the claim has been recompiled since, the review is refused (CL4), since it
// would cover figures the reviewer never saw. A zero compiledAt reviews the current one.
//
// The pack stored with the claim is rendered anew, saying "reviewed", and replaced in the
// review's transaction: the pack people download says what the claim is.
func (s *Service) ReviewCompilation(ctx context.Context, period string, compiledAt time.Time, by access.User) (*Claim, error) {
	if err := authorize(by, access.ReviewClaim); err != nil {
		return nil, err
	}
	read, err := s.Claim(ctx, period)
	if err != nil {
		return nil, err
	}
	if compiledAt.IsZero() {
		compiledAt = read.CompiledAt
	}
	// The pack is rendered before the transaction, as Submit renders it, for a draft of the
	// compilation being reviewed; the transaction refuses the review if that has changed.
	var pack []reports.File
	if read.Status == Draft && compiledAt.Equal(read.CompiledAt) {
		// The pack names its reviewer; when is recorded in the transaction.
		under := *read
		under.ReviewedBy = by.Email
		if pack, err = s.render(ctx, &under, Reviewed, ""); err != nil {
			return nil, err
		}
	}
	return s.step(ctx, period, func(tx pgx.Tx, c *Claim, now time.Time) error {
		switch {
		case c.Status.Frozen():
			return frozenError(c)
		case c.Status == Reviewed:
			return apperr.New(apperr.Conflict, RuleReview, "the claim for %s was reviewed already by %s", c.Period.Code, c.ReviewedBy)
		case !compiledAt.Equal(c.CompiledAt):
			return apperr.New(apperr.Conflict, RuleStale, "the claim for %s was recompiled after the figures you read; read them again before reviewing it", c.Period.Code)
		case pack == nil: // rendered for every draft of this compilation: it cannot be missing here
			return apperr.Wrap("claims.Review", errors.New("no pack was rendered for the compilation reviewed"))
		}
		// Figures the ledger has moved on from could not be submitted (CL4): a review of them
		// would only be cleared by the compilation they need.
		if stale, err := s.stale(ctx, tx, c); err != nil || stale {
			if err != nil {
				return err
			}
			return staleError(c.Period.Code)
		}
		if _, err := tx.Exec(ctx, `UPDATE claim SET status = 'reviewed', reviewed_at = $3, reviewed_by = $4
			WHERE operation_id = $1 AND period = $2`, s.prog.OperationID, c.Period.Code, now, by.Email); err != nil {
			return err
		}
		if err := s.storePack(ctx, tx, c, pack, Reviewed, by, now); err != nil {
			return err
		}
		return s.event(ctx, tx, c.Period.Code, "reviewed", by, now, map[string]any{
			"compiled_at": c.CompiledAt, "position": c.Position.Seq, "blocking": len(c.Figures.Blocking())})
	})
}

// Submit submits the reviewed claim of period to WEFO. Only a programme manager who did not
// review it may (R3.13); claims are submitted in period order (CL1); the period must have ended
// (CL5) and its ledger must be as the claim read it (CL4); a blocking finding refuses it. In one
// transaction it locks the period for ever (F1), stores the pack as submitted, and posts Dr ESF
// receivable / Cr ESF income with esf_due(p) (signs turned when negative, nothing when nil),
// dated the day of submission.
func (s *Service) Submit(ctx context.Context, period string, by access.User) (*Claim, error) {
	if err := authorize(by, access.SubmitClaim); err != nil {
		return nil, err
	}
	c, err := s.Claim(ctx, period)
	if err != nil {
		return nil, err
	}
	if err := s.canSubmit(ctx, s.pool, c, by); err != nil {
		return nil, err
	}
	// The pack is rendered before the transaction (it can take seconds for a large quarter) and
	// is valid if the claim and its ledger (its period's and every earlier one's) are still as
	// read, which the transaction checks under the period's lock.
	pack, err := s.render(ctx, c, Submitted, signerOf(by))
	if err != nil {
		return nil, err
	}
	out, err := s.step(ctx, period, func(tx pgx.Tx, cur *Claim, now time.Time) error {
		if err := s.canSubmit(ctx, tx, cur, by); err != nil {
			return err
		}
		if !cur.CompiledAt.Equal(c.CompiledAt) {
			return apperr.New(apperr.Conflict, RuleStale, "the claim for %s was recompiled while it was being submitted; review it again", period)
		}
		// Lock the period first: the ledger then waits for every transaction writing entries and
		// holds off new ones until this one commits, so the balances read next are complete and
		// nothing can be booked into the period after them (F1).
		if err := s.ledger.LockPeriod(ctx, tx, period, by.Email); err != nil {
			return err
		}
		basis, err := s.basisOf(ctx, tx, cur.Period)
		if err != nil {
			return err
		}
		if !bytes.Equal(basis, cur.Basis) {
			return staleError(period)
		}
		if err := s.storePack(ctx, tx, cur, pack, Submitted, by, now); err != nil {
			return err
		}
		// The claim is recognised on the day it is submitted, so the receivable is dated then
		// and lands in the open period containing that day: the claim's own period is locked,
		// and its balances stay exactly as the claim and its pack read them.
		var entryID any
		if due := cur.Figures.ESFDue.Period; !due.IsZero() {
			e, err := s.ledger.Post(ctx, tx, ledger.EntryInput{
				EffectiveDate: programme.DateIn(now, s.loc), Source: "claim", Reference: period,
				Description:    fmt.Sprintf("ESF claim %d for %s submitted to WEFO", cur.Number(), period),
				RecordedBy:     by.Email,
				IdempotencyKey: "claim:" + period + ":submission",
				Postings: []ledger.Posting{
					{Account: ledger.ESFReceivable, Amount: due},
					{Account: ledger.ESFIncome, Amount: due.Neg()},
				},
			})
			if err != nil {
				return err
			}
			entryID = e.ID
		}
		if _, err := tx.Exec(ctx, `UPDATE claim SET status = 'submitted', submitted_at = $3, submitted_by = $4,
				submitted_by_name = $6, receivable_entry_id = $5 WHERE operation_id = $1 AND period = $2`,
			s.prog.OperationID, period, now, by.Email, entryID, signerOf(by)); err != nil {
			return err
		}
		return s.event(ctx, tx, period, "submitted", by, now, map[string]any{
			"esf_due": cur.Figures.ESFDue.Period.StringFixed(2), "cum_due": cur.Figures.ESFDue.Cumulative.StringFixed(2),
			"receivable_entry": entryID, "position": cur.Position.Seq, "pack": packDigests(pack)})
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("claim submitted", "period", period, "esf_due", out.Figures.ESFDue.Period.StringFixed(2), "by", by.Email)
	return out, nil
}

// canSubmit checks the rules of submission that do not need the period's lock.
func (s *Service) canSubmit(ctx context.Context, q db.Querier, c *Claim, by access.User) error {
	period := c.Period.Code
	switch {
	case c.Status.Frozen():
		return apperr.New(apperr.Conflict, RuleFrozen, "the claim for %s is %s already", period, c.Status)
	case c.Status != Reviewed:
		return apperr.New(apperr.Invalid, RuleReview, "the claim for %s has not been reviewed: a programme manager or finance officer other than the submitter must review it first (R3.13)", period)
	case strings.EqualFold(c.ReviewedBy, by.Email):
		return apperr.New(apperr.Forbidden, RuleFourEyes, "%s reviewed the claim for %s and so may not submit it (four eyes)", by.Email, period)
	case !c.Period.Ended(s.today()):
		return apperr.New(apperr.Invalid, RuleEnded, "%s ends on %s: its claim can be submitted from the day after", period, c.Period.End.Format(programme.DateLayout))
	}
	if b := c.Figures.Blocking(); len(b) > 0 {
		return apperr.New(apperr.Invalid, b[0].ID, counted(len(b), "the claim for %s has %s blocking finding: %s",
			"the claim for %s has %s blocking findings: %s"), period, strconv.Itoa(len(b)), b[0].Text())
	}
	if c.Period.Seq > 1 {
		prev := Periods(s.prog)[c.Period.Seq-2]
		var status string
		err := q.QueryRow(ctx, `SELECT status FROM claim WHERE operation_id = $1 AND period = $2`, s.prog.OperationID, prev.Code).Scan(&status)
		if err != nil && err != pgx.ErrNoRows {
			return db.Translate("claims.Submit", err)
		}
		if !Status(status).Frozen() {
			return apperr.New(apperr.Conflict, RuleOrder, "claims are submitted in period order: submit the claim for %s before %s", prev.Code, period)
		}
	}
	return nil
}

// Decide records WEFO's decision on the submitted claim of period: the ESF approved, the
// eligible expenditure disallowed and why. A disallowance is posted as a negative adjustment
// (Dr ineligible / Cr the heading) in the next open period, so it flows into the next claim's
// cumulative figures (R9.3c) and makes its ESF due smaller, or negative.
func (s *Service) Decide(ctx context.Context, period string, d Decision, by access.User) (*Claim, error) {
	if err := authorize(by, access.RecordDecision); err != nil {
		return nil, err
	}
	if err := validMoney("the approved amount", d.Approved); err != nil {
		return nil, err
	}
	if err := validMoney("the disallowed amount", d.Disallowed); err != nil {
		return nil, err
	}
	switch {
	case d.DecidedOn.IsZero():
		return nil, apperr.New(apperr.Invalid, RuleOutcome, "the decision needs its date").On("decided_on")
	case d.Disallowed.IsNegative():
		return nil, apperr.New(apperr.Invalid, RuleOutcome, "the disallowed amount %s is negative", d.Disallowed.StringFixed(2)).On("disallowed")
	case d.Disallowed.IsPositive() && strings.TrimSpace(d.Reason) == "":
		return nil, apperr.New(apperr.Invalid, RuleOutcome, "a disallowance needs a reason").On("reason")
	}
	if c, control := match.ControlIn(d.Reason); control {
		return nil, match.ControlProblem("reason", c).On("reason")
	}
	if d.Heading == "" {
		d.Heading = programme.HeadingOther
		if !s.prog.AcceptsLines(d.Heading) {
			d.Heading = programme.HeadingStaff
		}
	}
	if h, ok := s.prog.Heading(d.Heading); !ok || h.Kind != programme.KindCash {
		return nil, apperr.New(apperr.Invalid, RuleOutcome, "a disallowance is made against a cash heading (staff, delivery or other), not %q", d.Heading).On("heading")
	}
	d.DecidedOn = dayOf(d.DecidedOn)
	out, err := s.step(ctx, period, func(tx pgx.Tx, c *Claim, now time.Time) error {
		switch {
		case c.Status == Approved || c.Status == Paid:
			return apperr.New(apperr.Conflict, RuleOutcome, "WEFO's decision on the claim for %s is recorded already", period)
		case c.Status != Submitted:
			return apperr.New(apperr.Conflict, RuleOutcome, "the claim for %s is %s: WEFO decides on submitted claims", period, c.Status)
		case d.DecidedOn.Before(programme.DateIn(*c.SubmittedAt, s.loc)):
			return apperr.New(apperr.Invalid, RuleOutcome, "the decision of %s is dated before the claim was submitted", d.DecidedOn.Format(programme.DateLayout)).On("decided_on")
		case d.DecidedOn.After(s.today()):
			return apperr.New(apperr.Invalid, RuleOutcome, "the decision of %s is dated after today", d.DecidedOn.Format(programme.DateLayout)).On("decided_on")
		case !within(d.Approved, c.Figures.ESFDue.Period):
			return apperr.New(apperr.Invalid, RuleOutcome, "the approved amount %s is not between 0.00 and the ESF claimed for %s, %s",
				d.Approved.StringFixed(2), period, c.Figures.ESFDue.Period.StringFixed(2)).On("approved")
		}
		// Decisions on different claims are serialised here, after the claim's own lock (so in
		// one order, without deadlock): each must see the disallowances the other made.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.lockKey("\x00decisions")); err != nil {
			return err
		}
		total, head, err := s.disallowanceRoom(ctx, tx, c, d.Heading)
		if err != nil {
			return err
		}
		if d.Disallowed.GreaterThan(total) {
			return apperr.New(apperr.Invalid, RuleOutcome, "the disallowed amount %s is more than the eligible expenditure claimed up to %s that WEFO has not disallowed already, %s",
				d.Disallowed.StringFixed(2), period, total.StringFixed(2)).On("disallowed")
		}
		if d.Disallowed.GreaterThan(head) {
			return apperr.New(apperr.Invalid, RuleOutcome, "the disallowed amount %s is more than the %s expenditure claimed up to %s that WEFO has not disallowed already, %s",
				d.Disallowed.StringFixed(2), d.Heading, period, head.StringFixed(2)).On("disallowed")
		}
		var entryID any
		if d.Disallowed.IsPositive() {
			// The adjustment goes into the next open period (domain.md §7), dated the decision's
			// day within it, else the nearest day of it: part of that claim, not a late item in
			// it, and never dated before the decision that made it when that falls in the
			// period. That is the period after the claim's unless WEFO decided after the next
			// claim was submitted too.
			next, err := s.nextOpenPeriod(ctx, tx, c.Period.End)
			if err != nil {
				return err
			}
			dated := d.DecidedOn
			if dated.Before(next.Start) {
				dated = next.Start
			} else if dated.After(next.End) {
				dated = next.End
			}
			e, err := s.ledger.Post(ctx, tx, ledger.EntryInput{
				EffectiveDate: dated, Source: "claim", Reference: period,
				Description: fmt.Sprintf("WEFO disallowance of %s on claim %d for %s (decision of %s): %s",
					d.Disallowed.StringFixed(2), c.Number(), period, d.DecidedOn.Format(programme.DateLayout), d.Reason),
				RecordedBy:     by.Email,
				IdempotencyKey: "claim:" + period + ":disallowance",
				Postings: []ledger.Posting{
					{Account: ledger.Ineligible, Amount: d.Disallowed},
					{Account: ledger.HeadingAccount(d.Heading), Amount: d.Disallowed.Neg()},
				},
			})
			if err != nil {
				return err
			}
			if e.Period != next.Code {
				// The next claim was submitted while this was recorded: its period is locked,
				// and the adjustment would be a late item dated in it. Nothing is kept.
				return apperr.New(apperr.Conflict, RuleOutcome,
					"the claim for %s was submitted while the decision was recorded; record the decision again", next.Code)
			}
			entryID = e.ID
		}
		if _, err := tx.Exec(ctx, `UPDATE claim SET status = 'approved', decided_at = $3, decided_on = $4, decided_by = $5,
				approved_amount = $6, disallowed_amount = $7, disallowance_reason = nullif($8, ''),
				disallowance_heading = CASE WHEN $7::numeric > 0 THEN $9 END, disallowance_entry_id = $10
			WHERE operation_id = $1 AND period = $2`,
			s.prog.OperationID, period, now, d.DecidedOn, by.Email, d.Approved, d.Disallowed, strings.TrimSpace(d.Reason),
			d.Heading, entryID); err != nil {
			return err
		}
		return s.event(ctx, tx, period, "decided", by, now, map[string]any{
			"decided_on": d.DecidedOn.Format(programme.DateLayout), "approved": d.Approved.StringFixed(2),
			"disallowed": d.Disallowed.StringFixed(2), "reason": d.Reason, "adjustment_entry": entryID})
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("claim decided", "period", period, "approved", d.Approved.StringFixed(2), "disallowed", d.Disallowed.StringFixed(2), "by", by.Email)
	return out, nil
}

// disallowanceRoom is how much a disallowance on claim c may take, in all and under heading: what
// is left of the expenditure claimed up to c (its cumulative figures, less the disallowances on
// claims up to c booked after its period, which its figures do not hold), and no more than what
// is left of each later submitted claim's (its cumulative figures less every disallowance booked
// after its period). The adjustment is posted against the heading, so more would take a claim's
// figures below nothing, and the Art 69 cap with them, whatever order WEFO decides in.
func (s *Service) disallowanceRoom(ctx context.Context, tx pgx.Tx, c *Claim, heading string) (total, head decimal.Decimal, err error) {
	type disallowance struct {
		claim, booked int // the periods (seq) of the claim and of the adjustment
		heading       string
		amount        decimal.Decimal
	}
	rows, err := tx.Query(ctx, `SELECT cp.seq, bp.seq, c.disallowance_heading, c.disallowed_amount FROM claim c
		JOIN entry e ON e.operation_id = c.operation_id AND e.id = c.disallowance_entry_id
		JOIN period bp ON bp.operation_id = e.operation_id AND bp.code = e.period
		JOIN period cp ON cp.operation_id = c.operation_id AND cp.code = c.period
		WHERE c.operation_id = $1`, s.prog.OperationID)
	if err != nil {
		return total, head, err
	}
	var ds []disallowance
	var x disallowance
	if _, err = pgx.ForEachRow(rows, []any{&x.claim, &x.booked, &x.heading, &x.amount}, func() error {
		ds = append(ds, x)
		return nil
	}); err != nil {
		return total, head, err
	}
	left := func(f *Figures, seq int, upTo int) (t, h decimal.Decimal) {
		t, h = f.TotalEligible.Cumulative, f.Heading(heading).Cumulative
		for _, d := range ds {
			if d.booked > seq && d.claim <= upTo {
				t = t.Sub(d.amount)
				if d.heading == heading {
					h = h.Sub(d.amount)
				}
			}
		}
		return t, h
	}
	total, head = left(&c.Figures, c.Period.Seq, c.Period.Seq)
	rows, err = tx.Query(ctx, `SELECT `+claimColumns+` FROM claim
		WHERE operation_id = $1 AND status IN ('submitted', 'approved', 'paid')
		  AND period IN (SELECT code FROM period WHERE operation_id = $1 AND seq > $2)`, s.prog.OperationID, c.Period.Seq)
	if err != nil {
		return total, head, err
	}
	defer rows.Close()
	for rows.Next() {
		k, err := s.scanClaim(rows)
		if err != nil {
			return total, head, err
		}
		t, h := left(&k.Figures, k.Period.Seq, math.MaxInt)
		total, head = decimal.Min(total, t), decimal.Min(head, h)
	}
	return total, head, rows.Err()
}

// Pay records WEFO's payment of the approved claim of period: Dr cash / Cr ESF receivable with
// the amount paid (a repayment, negative, turns the signs), dated the payment date.
func (s *Service) Pay(ctx context.Context, period string, p Payment, by access.User) (*Claim, error) {
	if err := authorize(by, access.RecordPayment); err != nil {
		return nil, err
	}
	if err := validMoney("the amount paid", p.Amount); err != nil {
		return nil, err
	}
	if p.PaidOn.IsZero() {
		return nil, apperr.New(apperr.Invalid, RuleOutcome, "the payment needs its date").On("paid_on")
	}
	p.PaidOn = dayOf(p.PaidOn)
	out, err := s.step(ctx, period, func(tx pgx.Tx, c *Claim, now time.Time) error {
		switch {
		case c.Status == Paid:
			return apperr.New(apperr.Conflict, RuleOutcome, "the payment of the claim for %s is recorded already", period)
		case c.Status != Approved:
			return apperr.New(apperr.Conflict, RuleOutcome, "the claim for %s is %s: record WEFO's decision before its payment", period, c.Status)
		case p.PaidOn.Before(c.Decision.DecidedOn):
			return apperr.New(apperr.Invalid, RuleOutcome, "the payment of %s is dated before WEFO's decision of %s",
				p.PaidOn.Format(programme.DateLayout), c.Decision.DecidedOn.Format(programme.DateLayout)).On("paid_on")
		case p.PaidOn.After(s.today()):
			return apperr.New(apperr.Invalid, RuleOutcome, "the payment of %s is dated after today", p.PaidOn.Format(programme.DateLayout)).On("paid_on")
		case !within(p.Amount, c.Decision.Approved) || p.Amount.IsZero() != c.Decision.Approved.IsZero():
			return apperr.New(apperr.Invalid, RuleOutcome, "the amount paid %s must be more than 0.00 and no more than WEFO's approved amount, %s (0.00 only when nothing was approved)",
				p.Amount.StringFixed(2), c.Decision.Approved.StringFixed(2)).On("amount")
		}
		var entryID any
		if !p.Amount.IsZero() {
			e, err := s.ledger.Post(ctx, tx, ledger.EntryInput{
				EffectiveDate: p.PaidOn, Source: "claim", Reference: period,
				Description:    fmt.Sprintf("WEFO payment of ESF claim %d for %s", c.Number(), period),
				RecordedBy:     by.Email,
				IdempotencyKey: "claim:" + period + ":payment",
				Postings: []ledger.Posting{
					{Account: ledger.Cash, Amount: p.Amount},
					{Account: ledger.ESFReceivable, Amount: p.Amount.Neg()},
				},
			})
			if err != nil {
				return err
			}
			entryID = e.ID
		}
		if _, err := tx.Exec(ctx, `UPDATE claim SET status = 'paid', paid_at = $3, paid_on = $4, paid_by = $5,
				paid_amount = $6, payment_entry_id = $7 WHERE operation_id = $1 AND period = $2`,
			s.prog.OperationID, period, now, p.PaidOn, by.Email, p.Amount, entryID); err != nil {
			return err
		}
		return s.event(ctx, tx, period, "paid", by, now, map[string]any{
			"paid_on": p.PaidOn.Format(programme.DateLayout), "amount": p.Amount.StringFixed(2), "payment_entry": entryID})
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("claim paid", "period", period, "amount", p.Amount.StringFixed(2), "by", by.Email)
	return out, nil
}

// within reports whether amount lies between zero and limit, both included, on limit's side of
// zero: WEFO approves and pays at most what was claimed, and a negative claim (after a
// disallowance) is approved and repaid the same way.
func within(amount, limit decimal.Decimal) bool {
	if limit.IsNegative() {
		amount, limit = amount.Neg(), limit.Neg()
	}
	return !amount.IsNegative() && amount.LessThanOrEqual(limit)
}

// step runs fn in a transaction holding the claim's advisory lock and row lock, and returns the
// claim as it stands after.
func (s *Service) step(ctx context.Context, period string, fn func(tx pgx.Tx, c *Claim, now time.Time) error) (*Claim, error) {
	var out *Claim
	err := db.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.lockKey(period)); err != nil {
			return err
		}
		c, err := s.claim(ctx, tx, period, true)
		if err != nil {
			return err
		}
		if err := fn(tx, c, s.stamp()); err != nil {
			return err
		}
		out, err = s.claim(ctx, tx, period, false)
		return err
	})
	if err != nil {
		return nil, db.Translate("claims."+period, err)
	}
	return out, nil
}

// nextOpenPeriod gives the open period the ledger books an entry of the day after end into
// (domain.md §6): the earliest open period after end. None is L5, as the ledger would say.
func (s *Service) nextOpenPeriod(ctx context.Context, tx pgx.Tx, end time.Time) (ledger.PeriodState, error) {
	periods, err := s.ledger.Periods(ctx, tx)
	if err != nil {
		return ledger.PeriodState{}, err
	}
	day := end.AddDate(0, 0, 1)
	if code, ok := ledger.BookingPeriod(periods, day); ok {
		for _, p := range periods {
			if p.Code == code {
				return p, nil
			}
		}
	}
	return ledger.PeriodState{}, apperr.New(apperr.Conflict, "L5", "no open period takes an adjustment after %s", end.Format(programme.DateLayout))
}

// Stale reports whether the ledger has moved since the draft (or reviewed) claim c was
// compiled, so that its figures, and its stored pack, are no longer the ledger's (CL4): it must
// be compiled again before it is reviewed, submitted or its pack handed out. A submitted claim
// is never stale: its figures are the ones submitted.
func (s *Service) Stale(ctx context.Context, c *Claim) (bool, error) {
	stale, err := s.stale(ctx, s.pool, c)
	return stale, db.Translate("claims.Stale", err)
}

func (s *Service) stale(ctx context.Context, q db.Querier, c *Claim) (bool, error) {
	if c.Status.Frozen() {
		return false, nil
	}
	basis, err := s.basisOf(ctx, q, c.Period)
	return err == nil && !bytes.Equal(basis, c.Basis), err
}

// staleError refuses whatever a stale claim is asked for: review, submission, its lines or its
// pack.
func staleError(period string) error {
	return apperr.New(apperr.Conflict, RuleStale, "the ledger of %s has changed since the claim was compiled; compile it again", period)
}
