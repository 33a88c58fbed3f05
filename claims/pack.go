package claims

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
	"github.com/ccr-infuse/infuse/reports"
)

// Declaration is the declaration the signatory of a claim certificate signs.
const Declaration = "I declare that the expenditure in this claim was defrayed by the lead beneficiary and its partners " +
	"in the period or, where shown as a late item, in the earlier period it relates to, is eligible under the ESF regulations and the funding agreement, is supported by evidence held " +
	"for audit, and has not been claimed from any other European or public source. Match funding in kind is the " +
	"documented time of officers whose salaries their authorities paid."

// Signatory is who signs the claim certificate.
type Signatory = reports.Signatory

// Pack returns the claim pack of the claim of period, as package reports renders it: the figures
// as compiled, at the claim's ledger position, with the line detail of the period (transaction
// list, officer time, staff-cost workings), the flat-rate workings, the findings and the trial
// balance. The line detail is read in one snapshot and must still be what the claim was compiled
// from: a draft whose ledger has moved since, in its period or any before it, must be recompiled
// first (CL4).
func (s *Service) Pack(ctx context.Context, period string) (*reports.Pack, error) {
	c, err := s.Claim(ctx, period)
	if err != nil {
		return nil, err
	}
	status := c.Status
	if status.Frozen() {
		// WEFO's decision and payment come after the pack it was sent: the pack of a frozen claim
		// is rebuilt as submitted, byte for byte by the same version of the service (§8; the
		// stored pack is what was sent).
		status = Submitted
	}
	return s.pack(ctx, c, status, c.Signer())
}

// pack builds the pack of c as it is (or will be, for a submission in progress) in status.
func (s *Service) pack(ctx context.Context, c *Claim, status Status, signer string) (*reports.Pack, error) {
	p := s.packHeader(c, status, signer)
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			if stale, err := s.stale(ctx, tx, c); err != nil || stale {
				if err != nil {
					return err
				}
				return staleError(c.Period.Code)
			}
			return s.lineDetail(ctx, tx, c, p)
		})
	if err != nil {
		return nil, db.Translate("claims.Pack", err)
	}
	return p, nil
}

// packHeader fills everything of a pack that comes from the stored claim.
func (s *Service) packHeader(c *Claim, status Status, signer string) *reports.Pack {
	prog, f := s.prog, &c.Figures
	authority := func(code string) reports.Authority {
		a, _ := prog.Authority(code)
		return reports.Authority{Code: a.Code, NameEN: a.NameEN, NameCY: a.NameCY}
	}
	lead := authority(prog.Lead)
	p := &reports.Pack{
		Operation:   reports.Operation{ID: prog.OperationID, Name: prog.Name, NameCY: prog.NameCY, Lead: lead},
		Period:      reports.Period{Code: c.Period.Code, Start: c.Period.Start, End: c.Period.End},
		ClaimNumber: c.Number(),
		Claims:      max(len(prog.Periods()), c.Number()),
		Final:       c.Period.Final,
		Status:      string(status),
		CompiledAt:  c.CompiledAt.UTC(),
		CompiledBy:  c.CompiledBy,
		ReviewedBy:  c.ReviewedBy,
		Position: reports.Position{EntriesSealed: c.Position.Seq, LastEntryID: c.Position.LastEntryID,
			ChainLink: hex.EncodeToString(c.Position.Link)},
		Award:         prog.Award,
		Rate:          prog.Rate,
		RateText:      prog.Rate.String(),
		TotalEligible: reports.Figure{Period: f.TotalEligible.Period, Cumulative: f.TotalEligible.Cumulative},
		ESFDue:        reports.Figure{Period: f.ESFDue.Period, Cumulative: f.ESFDue.Cumulative},
		PreviousDue:   f.PreviousDue,
		AwardCap:      f.AwardCap,
		Art69Cap:      f.Art69Cap,
		Art69Enforced: f.Art69Enforced,
		Rounding: reports.Rounding{ExactShare: f.Rounding.ExactShare, FlooredShare: f.Rounding.FlooredShare,
			Residual: f.Rounding.Residual},
		LateItems: f.LateItems,
		FlatRate: reports.FlatRateWorking{Kind: f.FlatRate.Kind, Percent: f.FlatRate.Percent, Base: f.FlatRate.Base,
			Exact: f.FlatRate.Exact, Amount: f.FlatRate.Amount},
		Declaration:      Declaration,
		Signatory:        s.signatory,
		GeneratorVersion: s.version,
	}
	// The time of the review is shown once the claim is submitted: the pack the review stores
	// is rendered before the review's time is recorded, and any pack of a reviewed claim must
	// be that pack, byte for byte.
	if c.ReviewedAt != nil && status != Reviewed {
		p.ReviewedAt = c.ReviewedAt.UTC()
	}
	if p.Signatory.Role == "" {
		p.Signatory.Role = "Programme manager, " + lead.NameEN
	}
	if p.Signatory.Name == "" {
		p.Signatory.Name = signer
	}
	for _, h := range f.Headings {
		ph, _ := prog.Heading(h.Code)
		p.Headings = append(p.Headings, reports.HeadingFigure{Code: h.Code, Name: ph.Name, Kind: ph.Kind,
			Period: h.Period, Cumulative: h.Cumulative})
	}
	for i, h := range f.History {
		p.History = append(p.History, reports.HistoryLine{ClaimNumber: i + 1, Period: h.Period, Cash: h.Cash, Indirect: h.Indirect,
			InKind: h.InKind, Total: h.Total, Cumulative: h.Cumulative, CumDue: h.CumDue, Due: h.Due})
	}
	for _, m := range f.Match {
		p.Match = append(p.Match, reports.AuthorityMatch{Authority: authority(m.Code), Period: m.Period,
			Cumulative: m.Cumulative, Target: m.Target, ProRataTarget: m.ProRata, VariancePct: m.VariancePct})
	}
	for _, x := range f.Findings {
		p.Findings = append(p.Findings, reports.Finding{ID: x.ID, Severity: x.Severity, Message: x.Message,
			Entries: append([]int64(nil), x.Entries...)})
	}
	for _, b := range f.TrialBalance {
		a, _ := s.ledger.Account(b.Code)
		p.TrialBalance = append(p.TrialBalance, reports.TrialBalanceLine{Code: b.Code, Name: a.Name, Kind: a.Kind,
			Balance: b.Balance})
	}
	return p
}

// render renders the pack of c as it will stand in status.
func (s *Service) render(ctx context.Context, c *Claim, status Status, signer string) ([]reports.File, error) {
	s.doing("reading the lines of " + c.Period.Code)
	p, err := s.pack(ctx, c, status, signer)
	if err != nil {
		return nil, err
	}
	n, lines := len(p.Transactions)+len(p.OfficerTime), "lines"
	if n == 1 {
		lines = "line"
	}
	s.doing(fmt.Sprintf("writing the pack of %s: %d %s", c.Period.Code, n, lines))
	files, _, err := reports.Build(p)
	return files, err
}

// CompileWithPack compiles the draft claim of period (Compile) and stores its pack with it
// (StorePack), as every way of compiling a draft for people does (the web, the CLI, the
// scheduler, the demo), so that the pack is there to download and to write byte for byte.
func (s *Service) CompileWithPack(ctx context.Context, period string, by access.User) (*Claim, error) {
	c, err := s.Compile(ctx, period, by)
	if err != nil {
		return nil, err
	}
	if _, err := s.StorePack(ctx, period); err != nil {
		return nil, err
	}
	return c, nil
}

// StorePack renders the pack of the draft (or reviewed) claim of period and stores it with the
// claim, replacing the draft's earlier pack. The scheduler stores the pack of every draft it
// compiles; a submitted claim's pack is stored by Submit and never changes.
func (s *Service) StorePack(ctx context.Context, period string) ([]reports.File, error) {
	c, err := s.Claim(ctx, period)
	if err != nil {
		return nil, err
	}
	if c.Status.Frozen() {
		return nil, apperr.New(apperr.Locked, RuleFrozen, "the claim for %s is %s: its pack is the one submitted", period, c.Status)
	}
	files, err := s.render(ctx, c, c.Status, "")
	if err != nil {
		return nil, err
	}
	_, err = s.step(ctx, period, func(tx pgx.Tx, cur *Claim, now time.Time) error {
		if !cur.CompiledAt.Equal(c.CompiledAt) || cur.Status != c.Status {
			return apperr.New(apperr.Conflict, RuleStale, "the claim for %s changed while its pack was rendered; try again", period)
		}
		return s.storePack(ctx, tx, cur, files, cur.Status, System, now)
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

// storePack replaces the stored pack of c with files, in tx, and records it in the claim's
// history as stored by by (the reviewer or submitter whose step stored it, else the service),
// with the files' hashes: an auditor comparing the hashes of packs downloaded at different
// times finds each pack there.
func (s *Service) storePack(ctx context.Context, tx pgx.Tx, c *Claim, files []reports.File, status Status, by access.User, now time.Time) error {
	if files == nil {
		return nil
	}
	op := s.prog.OperationID
	if _, err := tx.Exec(ctx, `DELETE FROM claim_pack WHERE operation_id = $1 AND period = $2`, op, c.Period.Code); err != nil {
		return err
	}
	for i, f := range files {
		sum := sha256.Sum256(f.Data)
		if _, err := tx.Exec(ctx, `INSERT INTO claim_pack (operation_id, period, name, position, claim_status, compiled_at,
				data, sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			op, c.Period.Code, f.Name, i+1, string(status), c.CompiledAt, f.Data, sum[:], now); err != nil {
			return err
		}
	}
	return s.event(ctx, tx, c.Period.Code, "pack_stored", by, now, map[string]any{"status": string(status), "files": packDigests(files)})
}

// StoredPack returns the files stored with the claim of period, in pack order, and the claim
// status they were rendered for (StoredPackOf).
func (s *Service) StoredPack(ctx context.Context, period string) ([]reports.File, Status, error) {
	c, err := s.Claim(ctx, period)
	if err != nil {
		return nil, "", err
	}
	return s.StoredPackOf(ctx, c)
}

// StoredPackOf returns the files stored with claim c. For a submitted claim they are exactly
// what was submitted. A draft's are refused once the ledger has moved since it was compiled
// (CL4): they would show figures the ledger no longer has.
func (s *Service) StoredPackOf(ctx context.Context, c *Claim) ([]reports.File, Status, error) {
	period := c.Period.Code
	if stale, err := s.Stale(ctx, c); err != nil || stale {
		if err != nil {
			return nil, "", err
		}
		return nil, "", staleError(period)
	}
	rows, err := s.pool.Query(ctx, `SELECT name, data, sha256, claim_status FROM claim_pack
		WHERE operation_id = $1 AND period = $2 ORDER BY position`, s.prog.OperationID, period)
	if err != nil {
		return nil, "", db.Translate("claims.StoredPack", err)
	}
	var files []reports.File
	var status string
	var name string
	var data, sum []byte
	if _, err := pgx.ForEachRow(rows, []any{&name, &data, &sum, &status}, func() error {
		files = append(files, reports.File{Name: name, Data: append([]byte(nil), data...), SHA256: hex.EncodeToString(sum)})
		return nil
	}); err != nil {
		return nil, "", db.Translate("claims.StoredPack", err)
	}
	if len(files) == 0 {
		return nil, "", apperr.New(apperr.NotFound, apperr.RuleRef, "no pack is stored for the claim of %s", period)
	}
	return files, Status(status), nil
}

// packDigests lists the files of a pack with their SHA-256, for the claim's events.
func packDigests(files []reports.File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		out[f.Name] = f.SHA256
	}
	return out
}

// lineDetail fills the pack's line detail from the lines booked in the claim's period, read
// through package match in tx: the transaction list (with the claims' own disallowance
// adjustments), every officer-time line and the rate versions that priced them.
func (s *Service) lineDetail(ctx context.Context, tx pgx.Tx, c *Claim, p *reports.Pack) error {
	period := c.Period.Code
	for l, err := range match.CashLines(ctx, tx, s.prog, period) {
		if err != nil {
			return err
		}
		desc := l.Description
		switch {
		case l.Reversal:
			desc = fmt.Sprintf("Reversal of entry %d (%s): %s", l.Reverses, l.Reason, l.Description)
		case l.CreditNote:
			// domain §5: a credit note references the line it corrects; the pack names it by the
			// entry that posted it, as it names every line.
			desc = fmt.Sprintf("Credit note against entry %d: %s", l.CreditsEntryID, l.Description)
		}
		p.Transactions = append(p.Transactions, reports.CashLine{EntryID: l.EntryID, Heading: l.Heading,
			DefrayedOn: l.DefrayedOn, Payee: l.Payee, Description: desc, Amount: l.Amount, EvidenceRef: l.EvidenceRef,
			InvoiceRef: l.InvoiceRef, BookingPeriod: l.Period, EffectivePeriod: l.EffectivePeriod})
	}
	adjustments, err := s.adjustments(ctx, tx, period)
	if err != nil {
		return err
	}
	p.Transactions = append(p.Transactions, adjustments...)
	for l, err := range match.TimeLines(ctx, tx, s.prog, period) {
		if err != nil {
			return err
		}
		tl := reports.TimeLine{EntryID: l.EntryID, Authority: l.Authority,
			PayrollRef: l.PayrollRef, OfficerName: l.OfficerName, WorkDate: l.WorkDate, Hours: l.Hours, Activity: l.Activity,
			RateValidFrom: l.RateValidFrom, HourlyRate: l.HourlyRate.StringFixed(4), Amount: l.Amount,
			Rate:        match.RoundRat(match.HourlyRate(l.AnnualCost, l.FTE, s.prog.HoursBasis), 12),
			EvidenceRef: l.EvidenceRef, Approver: l.ApprovedBy, RecordedBy: l.RecordedBy}
		if l.Reversal {
			tl.Reverses, tl.Reason = l.Reverses, l.Reason
		}
		if l.Late {
			tl.Late, tl.RelatesTo = true, l.EffectivePeriod
		}
		p.OfficerTime = append(p.OfficerTime, tl)
	}
	rates, err := match.RateVersionsUsed(ctx, tx, s.prog, period)
	if err != nil {
		return err
	}
	for _, r := range rates {
		p.StaffCosts = append(p.StaffCosts, reports.RateVersion{Authority: r.Authority, PayrollRef: r.PayrollRef,
			Name: r.OfficerName, ValidFrom: r.ValidFrom, AGEC: r.AnnualCost, FTE: r.FTE, HoursBasis: s.prog.HoursBasis,
			HourlyRate: r.HourlyRate.StringFixed(4)})
	}
	return nil
}

// adjustments returns the disallowance adjustments booked in period as transaction-list lines.
func (s *Service) adjustments(ctx context.Context, tx pgx.Tx, period string) ([]reports.CashLine, error) {
	rows, err := tx.Query(ctx, `SELECT e.id, e.effective_date, e.period, coalesce(ep.code, e.period), c.period, c.claim_number,
			c.disallowance_heading, c.disallowed_amount, c.disallowance_reason, c.decided_on
		FROM claim c
		JOIN entry e ON e.operation_id = c.operation_id AND e.id = c.disallowance_entry_id
		LEFT JOIN period ep ON ep.operation_id = e.operation_id AND e.effective_date BETWEEN ep.starts_on AND ep.ends_on
		WHERE c.operation_id = $1 AND e.period = $2 ORDER BY e.id`, s.prog.OperationID, period)
	if err != nil {
		return nil, err
	}
	var out []reports.CashLine
	var l reports.CashLine
	var claimPeriod, reason string
	var number int
	var amount decimal.Decimal
	var decided time.Time
	_, err = pgx.ForEachRow(rows, []any{&l.EntryID, &l.DefrayedOn, &l.BookingPeriod, &l.EffectivePeriod, &claimPeriod, &number,
		&l.Heading, &amount, &reason, &decided}, func() error {
		l.Payee = "WEFO"
		l.Amount = amount.Neg()
		l.Description = fmt.Sprintf("Disallowance on claim %d for %s: %s", number, claimPeriod, reason)
		l.EvidenceRef = "WEFO decision of " + decided.Format(programme.DateLayout)
		out = append(out, l)
		return nil
	})
	return out, err
}

// TBLine is one account's balance in the trial balance a claim was compiled with.
type TBLine struct {
	Code    string          `json:"code"`
	Balance decimal.Decimal `json:"balance"`
}
