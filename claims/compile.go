package claims

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/programme"
)

// sealAttempts bounds how often Compile seals and reads again when entries of the claim's
// periods arrive between sealing and reading.
const sealAttempts = 5

// Compile compiles (or recompiles) the draft claim of period: it seals the ledger, reads the
// period and cumulative sums in one REPEATABLE READ snapshot, computes the figures and findings,
// and stores them as the draft with the ledger position they were read at. Recompiling a draft
// replaces it and clears its review (and drops the draft's stored pack); a submitted claim is
// frozen (CL3). StorePack renders and stores the draft's pack.
func (s *Service) Compile(ctx context.Context, period string, by access.User) (*Claim, error) {
	if err := authorize(by, access.CompileClaim); err != nil {
		return nil, err
	}
	per, err := s.period(period)
	if err != nil {
		return nil, err
	}
	if c, err := s.claim(ctx, s.pool, period, false); err == nil && c.Status.Frozen() {
		return nil, frozenError(c)
	}
	fig, snap, err := s.computeSealed(ctx, per)
	if err != nil {
		return nil, err
	}
	return s.store(ctx, per, fig, snap, by)
}

// Preview computes the figures of period as Compile would, without storing anything.
func (s *Service) Preview(ctx context.Context, period string) (Figures, error) {
	per, err := s.period(period)
	if err != nil {
		return Figures{}, err
	}
	fig, _, err := s.computeSealed(ctx, per)
	return fig, err
}

// errSealRace marks the conflict of a compile that entries kept overtaking: it passes, and a
// compile a little later succeeds.
var errSealRace = errors.New("entries arrived faster than they were sealed")

// computeSealed seals the ledger and computes the figures of per from a snapshot whose ledger
// position covers every entry of the claim's periods.
func (s *Service) computeSealed(ctx context.Context, per Period) (Figures, *snapshot, error) {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		s.doing("sealing the ledger's new entries")
		sealed, err := s.ledger.Seal(ctx)
		if err != nil {
			return Figures{}, nil, err
		}
		sealTime := time.Since(start)
		var snap *snapshot
		s.doing("reading the balances of " + per.Code)
		err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
			func(tx pgx.Tx) error {
				var err error
				snap, err = s.read(ctx, tx, per)
				return err
			})
		if err != nil {
			return Figures{}, nil, db.Translate("claims.Compile", err)
		}
		if snap.unsealed && attempt < sealAttempts {
			continue // entries arrived after sealing; seal them too so the position covers them
		}
		if snap.unsealed {
			e := apperr.New(apperr.Conflict, apperr.RuleRetry,
				"entries keep arriving in the periods up to %s faster than they are sealed; try again", per.Code)
			e.Err = errSealRace
			return Figures{}, nil, e
		}
		fig, err := Compute(s.input(per, snap))
		if err != nil {
			return Figures{}, nil, apperr.Wrap("claims.Compile", err)
		}
		fig.TrialBalance = snap.tb
		snap.sealed, snap.sealTime, snap.readTime = sealed, sealTime, time.Since(start)-sealTime
		return fig, snap, nil
	}
}

// input turns a snapshot into the pure computation's input.
func (s *Service) input(per Period, snap *snapshot) Input {
	in := Input{
		Rate: s.prog.Rate, FlatRate: s.prog.FlatRate, Award: s.prog.Award, Headings: s.prog.Headings,
		Periods: snap.periods, TotalPeriods: len(s.prog.Periods()),
		Final: per.Final, Art69Enforced: per.Final, Facts: snap.facts,
	}
	for _, a := range s.prog.Authorities {
		in.Authorities = append(in.Authorities, Target{Code: a.Code, Target: a.MatchTarget})
	}
	return in
}

// store writes the draft, replacing an earlier draft of the period and clearing its review.
func (s *Service) store(ctx context.Context, per Period, fig Figures, snap *snapshot, by access.User) (*Claim, error) {
	figJSON, err := json.Marshal(fig)
	if err != nil {
		return nil, apperr.Wrap("claims.store", err)
	}
	op := s.prog.OperationID
	var out *Claim
	start := time.Now()
	err = db.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.lockKey(per.Code)); err != nil {
			return err
		}
		now := s.stamp()
		prior, err := s.claim(ctx, tx, per.Code, true)
		switch {
		case err == nil && prior.Status.Frozen():
			return frozenError(prior)
		case err == nil && prior.Position.Seq > snap.position.Seq:
			// A compilation that read a later ledger position stored its draft while this one
			// was computing: keep the newer figures.
			out = prior
			return nil
		case err != nil && apperr.CodeOf(err) != apperr.NotFound:
			return err
		}
		detail := map[string]any{
			"esf_due": fig.ESFDue.Period.StringFixed(2), "cum_due": fig.ESFDue.Cumulative.StringFixed(2),
			"total_eligible": fig.TotalEligible.Cumulative.StringFixed(2), "blocking": len(fig.Blocking()),
			"findings": len(fig.Findings), "position": snap.position.Seq,
		}
		if prior == nil {
			_, err = tx.Exec(ctx, `INSERT INTO claim (operation_id, period, claim_number, status, figures, total_eligible,
					esf_due, cum_due, blocking, basis, position_seq, position_entry_id, position_link, compiled_at, compiled_by)
				VALUES ($1, $2, $3, 'draft', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
				op, per.Code, per.Seq, figJSON, fig.TotalEligible.Cumulative, fig.ESFDue.Period, fig.ESFDue.Cumulative,
				len(fig.Blocking()), snap.basis, snap.position.Seq, snap.position.LastEntryID, linkOf(snap.position.Link),
				now, by.Email)
		} else {
			detail["replaced"] = true
			detail["review_cleared"] = prior.Status == Reviewed
			_, err = tx.Exec(ctx, `UPDATE claim SET status = 'draft', figures = $3, total_eligible = $4, esf_due = $5,
					cum_due = $6, blocking = $7, basis = $8, position_seq = $9, position_entry_id = $10, position_link = $11,
					compiled_at = $12, compiled_by = $13, reviewed_at = NULL, reviewed_by = NULL
				WHERE operation_id = $1 AND period = $2`,
				op, per.Code, figJSON, fig.TotalEligible.Cumulative, fig.ESFDue.Period, fig.ESFDue.Cumulative,
				len(fig.Blocking()), snap.basis, snap.position.Seq, snap.position.LastEntryID, linkOf(snap.position.Link),
				now, by.Email)
			if err == nil {
				// The draft's pack rendered the figures just replaced.
				_, err = tx.Exec(ctx, `DELETE FROM claim_pack WHERE operation_id = $1 AND period = $2`, op, per.Code)
			}
		}
		if err != nil {
			return err
		}
		if err := s.event(ctx, tx, per.Code, "compiled", by, now, detail); err != nil {
			return err
		}
		out, err = s.claim(ctx, tx, per.Code, false)
		return err
	})
	if err != nil {
		return nil, db.Translate("claims.Compile", err)
	}
	s.log.Info("claim compiled", "period", per.Code, "esf_due", out.Figures.ESFDue.Period.StringFixed(2),
		"cum_due", out.Figures.ESFDue.Cumulative.StringFixed(2), "findings", len(out.Figures.Findings),
		"blocking", len(out.Figures.Blocking()), "late_items", out.Figures.LateItems, "position", out.Position.Seq,
		"sealed", snap.sealed, "seal_ms", snap.sealTime.Milliseconds(), "read_ms", snap.readTime.Milliseconds(),
		"store_ms", time.Since(start).Milliseconds(), "by", by.Email)
	return out, nil
}

// linkOf returns the chain link of a position; before anything is sealed it is 32 zero bytes,
// as the chain's first link is.
func linkOf(link []byte) []byte {
	if len(link) == 32 {
		return link
	}
	return make([]byte, 32)
}

func frozenError(c *Claim) error {
	return apperr.New(apperr.Locked, RuleFrozen, "the claim for %s is %s: it is frozen as submitted and cannot change", c.Period.Code, c.Status)
}

// EndedWithoutClaim returns the claim periods that have ended on the service's clock and have no
// claim yet, in order: what the scheduler compiles.
func (s *Service) EndedWithoutClaim(ctx context.Context) ([]Period, error) {
	rows, err := s.pool.Query(ctx, `SELECT period FROM claim WHERE operation_id = $1`, s.prog.OperationID)
	if err != nil {
		return nil, db.Translate("claims.EndedWithoutClaim", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, db.Translate("claims.EndedWithoutClaim", err)
	}
	got := map[string]bool{}
	for _, p := range have {
		got[p] = true
	}
	today := s.today()
	var out []Period
	for _, p := range Periods(s.prog) {
		if p.Ended(today) && !got[p.Code] {
			out = append(out, p)
		}
	}
	return out, nil
}

// dayOf returns the date part of t, midnight UTC.
func dayOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return programme.Date(y, m, d)
}

// validMoney checks an amount given by a person: at most two decimal places (R9.1).
func validMoney(what string, d decimal.Decimal) error {
	if !d.Equal(d.Truncate(2)) {
		return apperr.New(apperr.Invalid, "R9.1", "%s %s has more than two decimal places", what, d.String())
	}
	return nil
}
