// Package reports renders claim packs, what WEFO's auditors receive for each claim (domain.md
// §8): an Excel workbook (claim.xlsx), a PDF (claim.pdf) and a manifest (manifest.json) with the
// SHA-256 of each file and the ledger position the claim was compiled from.
//
// Its input is a Pack, a plain value that package claims builds from the ledger at the claim's
// position; reports only turns it into bytes and never opens a database connection. The
// encoders write to an io.Writer. Output is reproducible: the only document date is the
// claim's compiled-at time and every list is written in a fixed order, so the same Pack gives
// byte-identical files.
package reports

import (
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/programme"
)

// Generator names this renderer in the manifest when the Pack does not name its generator.
const Generator = "infuse-reports/1"

// The file names of a pack, in the order Build returns them.
const (
	NameXLSX     = "claim.xlsx"
	NamePDF      = "claim.pdf"
	NameManifest = "manifest.json"
)

// Pack is everything a claim pack shows. Money and hours are decimal.Decimal, dates are
// time.Time at midnight UTC. Headings are shown in the order given (the programme's); every
// other list may come in any order, as the encoders sort them themselves.
type Pack struct {
	Operation   Operation
	Period      Period
	ClaimNumber int    // 1 for the first claim of the operation
	Claims      int    // the operation's claims in all (12 quarterly), which profile the match targets (C6)
	Final       bool   // the final claim of the operation (Art 69 is enforced on it, R4.5)
	Status      string // draft, reviewed, submitted, approved or paid
	// CompiledAt is when claims compiled the figures. It is the pack's only document date:
	// the workbook's and PDF's created and modified dates come from it, never from the clock.
	CompiledAt time.Time
	CompiledBy string // who compiled it (the system for the scheduler)
	// ReviewedBy is who made the four-eyes review (R3.13), when the pack is made after it or for
	// it; ReviewedAt when, zero for the pack the review itself stores.
	ReviewedBy string
	ReviewedAt time.Time
	Position   Position // the ledger position the claim was compiled from

	Award    decimal.Decimal // the ESF grant awarded
	Rate     programme.Rate  // intervention rate, 9/14
	RateText string          // the rate as people read it, "9/14"

	Headings      []HeadingFigure // every cost heading, in the programme's order
	TotalEligible Figure          // total(p) and C_total(p)
	ESFDue        Figure          // esf_due(p) and cum_due(p), R9.3c
	// PreviousDue is cum_due(p−1), what the claims before this one claimed in all: ESFDue.Period
	// is ESFDue.Cumulative less it (R9.3c).
	PreviousDue decimal.Decimal
	// History is every claim up to this one as the ledger has it at Position, in period order;
	// empty for a claim compiled before packs showed it.
	History []HistoryLine

	AwardCap      decimal.Decimal // cumulative ESF may not exceed the award (C5)
	Art69Cap      decimal.Decimal // C_cash(p) + C_indirect(p), R4.5
	Art69Enforced bool            // the Art 69 cap limits cum_due on this claim (the final claim)

	// Rounding holds the workings of R9.3c on the cumulative total, as claims computed them.
	Rounding Rounding

	Match     []AuthorityMatch // every authority, zeros included
	LateItems int              // lines booked in this period whose effective date is earlier

	Transactions []CashLine         // every cash expenditure line booked in the period
	OfficerTime  []TimeLine         // every officer-time line booked in the period
	StaffCosts   []RateVersion      // every officer rate version that prices a line of the period
	FlatRate     FlatRateWorking    // the flat-rate amount of the period, R9.3b
	Findings     []Finding          // C1–C8
	TrialBalance []TrialBalanceLine // the trial balance of the entries booked in periods up to Period's, at Position

	Declaration      string    // the declaration the signatory signs
	Signatory        Signatory // who signs the certificate
	GeneratorVersion string    // the software that compiled the claim, "infuse 1.5.0"
}

// Operation identifies the ESF operation the claim belongs to.
type Operation struct {
	ID     string // stable id, "infuse"
	Name   string
	NameCY string    // Welsh name
	Lead   Authority // the lead beneficiary
}

// Authority is a partner authority by its ISO 3166-2:GB code and its English and Welsh names.
type Authority struct {
	Code   string
	NameEN string
	NameCY string
}

// Period is the claim period: its code ("2021Q3") and first and last days, both inclusive.
type Period struct {
	Code       string
	Start, End time.Time
}

// Position is where in the ledger's tamper-evident chain the claim was read.
type Position struct {
	EntriesSealed int64  // entries covered by the chain
	LastEntryID   int64  // the entry sealed last, 0 when none
	ChainLink     string // that entry's chain link, lower-case hex (64 digits)
}

// Figure is an amount for the claim period and cumulatively up to and including it.
type Figure struct {
	Period     decimal.Decimal
	Cumulative decimal.Decimal
}

// HeadingFigure is a cost heading with its period and cumulative amounts.
type HeadingFigure struct {
	Code       string // staff, indirect, delivery, other, officer_time
	Name       string
	Kind       programme.HeadingKind
	Period     decimal.Decimal
	Cumulative decimal.Decimal
}

// Rounding is R9.3c's working: the exact ESF share of the cumulative total eligible cost, the
// share floored to the penny, and the residual between them (under a penny). Each is text with
// 6 decimal places, exactly as claims computed it, because the exact share has no finite
// decimal form.
type Rounding struct {
	ExactShare   string
	FlooredShare string
	Residual     string
}

// HistoryLine is one claim of the history: its period figures, the cumulative total eligible
// cost and cum_due up to it, and its ESF due, cum_due less the previous claim's (R9.3c).
type HistoryLine struct {
	ClaimNumber int
	Period      string
	Cash        decimal.Decimal // staff, delivery and other costs booked in the period
	Indirect    decimal.Decimal // the flat rate on the period's own staff costs, truncated (R9.3b)
	InKind      decimal.Decimal // officer time booked in the period
	Total       decimal.Decimal // total eligible cost of the period
	Cumulative  decimal.Decimal // total eligible cost up to and including the period
	CumDue      decimal.Decimal // cum_due of the period
	Due         decimal.Decimal // ESF due on the period's claim
}

// AuthorityMatch is one authority's in-kind match against its target.
type AuthorityMatch struct {
	Authority
	Period        decimal.Decimal // match delivered in the period
	Cumulative    decimal.Decimal // match delivered up to and including the period
	Target        decimal.Decimal // the authority's whole target
	ProRataTarget decimal.Decimal // the target profiled to the end of the period
	VariancePct   decimal.Decimal // (cumulative − pro-rata) ÷ pro-rata × 100; beyond ±15 is C6
}

// CashLine is one cash expenditure line (domain §5) as booked in the claim period.
type CashLine struct {
	EntryID         int64 // the ledger entry that posted it
	Heading         string
	DefrayedOn      time.Time
	Payee           string
	Description     string
	Amount          decimal.Decimal // negative for a credit note
	EvidenceRef     string
	InvoiceRef      string
	BookingPeriod   string // the claim it lands in
	EffectivePeriod string // the period its defrayal date lies in; differs for a late item
}

// TimeLine is one officer-time line (domain §4) as booked in the claim period.
type TimeLine struct {
	EntryID       int64 // the ledger entry that posted it
	Authority     string
	PayrollRef    string
	OfficerName   string
	WorkDate      time.Time
	Hours         decimal.Decimal
	Activity      string    // its code: lab, experiment, …
	Reverses      int64     // for a reversal, the ledger entry it reverses, else 0 …
	Reason        string    // … and why
	RateValidFrom time.Time // the rate version that priced the line (R5.3)
	HourlyRate    string    // that version's hourly rate to 4 decimal places (R5.1)
	// Rate is the exact hourly rate to 12 places, which the workbook holds (shown to 4), so that
	// hours × rate rounded to the penny there is Amount; zero when not given.
	Rate        decimal.Decimal
	Amount      decimal.Decimal // hours × exact rate, half up to the penny (R9.3a)
	EvidenceRef string
	Approver    string
	RecordedBy  string // the user who recorded it, whom V7 forbids to be its approver
	// Late marks a late item: booked here though its work date lies in an earlier period,
	// RelatesTo (domain.md §6), with which the claim shows it. RelatesTo is empty otherwise.
	Late      bool
	RelatesTo string
}

// RateVersion is the staff-cost working of one officer rate version (R5.1, R5.3).
type RateVersion struct {
	Authority  string
	PayrollRef string
	Name       string
	ValidFrom  time.Time
	AGEC       decimal.Decimal // annual gross employment cost
	FTE        decimal.Decimal
	HoursBasis int    // 1720 (CPR Art 68a(2))
	HourlyRate string // AGEC ÷ (HoursBasis × FTE) to 4 decimal places
}

// FlatRateWorking is R9.3b's working for the period.
type FlatRateWorking struct {
	Kind    programme.FlatRateKind
	Percent decimal.Decimal // 15 for 15%
	Base    decimal.Decimal // direct staff costs of the period
	Exact   decimal.Decimal // Base × Percent ÷ 100, exactly
	Amount  decimal.Decimal // Exact truncated to the penny: what is claimed
}

// Severity of a finding.
const (
	SeverityBlock = "block"
	SeverityWarn  = "warn"
	SeverityInfo  = "info"
)

// Finding is one result of the claim checks C1–C8.
type Finding struct {
	ID       string // C1 … C8
	Severity string // block, warn or info
	Message  string
	Entries  []int64 // the ledger entries involved
}

// TrialBalanceLine is one account's balance; debits are positive, credits negative, and the
// lines sum to zero.
type TrialBalanceLine struct {
	Code    string
	Name    string
	Kind    string // asset, liability, income, expense, memo
	Balance decimal.Decimal
}

// Signatory is who signs the claim certificate.
type Signatory struct {
	Name string
	Role string
}

// Validate reports whether p can be rendered: it names its claim, carries a valid rate and a
// compiled-at time, and its headings add up to its total eligible cost. A pack whose summary
// would contradict itself is refused rather than rendered.
func (p *Pack) Validate() error {
	if p == nil {
		return invalid("no claim pack")
	}
	switch {
	case p.Operation.ID == "":
		return invalid("the operation has no id")
	case p.Period.Code == "":
		return invalid("the claim has no period")
	case p.Period.End.Before(p.Period.Start):
		return invalid("period %s ends before it starts", p.Period.Code)
	case p.ClaimNumber < 1:
		return invalid("claim number %d is not positive", p.ClaimNumber)
	case p.CompiledAt.IsZero():
		return invalid("the claim has no compiled-at time")
	case !p.Rate.Valid():
		return invalid("intervention rate %s is not valid", p.Rate)
	case len(p.Headings) == 0:
		return invalid("the claim has no cost headings")
	}
	var per, cum decimal.Decimal
	for _, h := range p.Headings {
		per, cum = per.Add(h.Period), cum.Add(h.Cumulative)
	}
	if !per.Equal(p.TotalEligible.Period) || !cum.Equal(p.TotalEligible.Cumulative) {
		return invalid("headings add up to %s (period) and %s (cumulative), not the total eligible %s and %s",
			per.StringFixed(2), cum.StringFixed(2),
			p.TotalEligible.Period.StringFixed(2), p.TotalEligible.Cumulative.StringFixed(2))
	}
	for _, f := range p.Findings {
		switch f.Severity {
		case SeverityBlock, SeverityWarn, SeverityInfo:
		default:
			return invalid("finding %s has unknown severity %q", f.ID, f.Severity)
		}
	}
	return p.validHistory()
}

// validHistory refuses a history that does not end in this claim's figures, or whose
// reconciliation to the ledger does not give its cumulative total: the pack shows both as the
// workings of those figures (R9.3c, C2).
func (p *Pack) validHistory() error {
	n := len(p.History)
	if n == 0 {
		return nil
	}
	last, prevDue := p.History[n-1], decimal.Zero
	if n > 1 {
		prevDue = p.History[n-2].CumDue
	}
	if last.Period != p.Period.Code || !last.Cumulative.Equal(p.TotalEligible.Cumulative) || !last.Total.Equal(p.TotalEligible.Period) ||
		!last.CumDue.Equal(p.ESFDue.Cumulative) || !last.Due.Equal(p.ESFDue.Period) || !prevDue.Equal(p.PreviousDue) {
		return invalid("the claim history ends in %s with a total of %s, cumulative %s, and ESF due %s of %s after %s, not this claim's figures",
			last.Period, last.Total.StringFixed(2), last.Cumulative.StringFixed(2), last.Due.StringFixed(2), last.CumDue.StringFixed(2), prevDue.StringFixed(2))
	}
	if len(p.TrialBalance) == 0 {
		return nil
	}
	if booked, flat := p.reconciliation(); !booked.Add(flat).Equal(p.TotalEligible.Cumulative) {
		return invalid("the expenditure booked, %s, and the flat rate of every claim, %s, do not add up to the cumulative total eligible, %s",
			booked.StringFixed(2), flat.StringFixed(2), p.TotalEligible.Cumulative.StringFixed(2))
	}
	return nil
}

// reconciliation is the expenditure the ledger holds up to the claim (the exp: and inkind:
// accounts of the trial balance) and the flat rate of every claim, which is computed and never
// booked: together, the cumulative total eligible (C2).
func (p *Pack) reconciliation() (booked, flat decimal.Decimal) {
	for _, l := range p.TrialBalance {
		if strings.HasPrefix(l.Code, "exp:") || strings.HasPrefix(l.Code, "inkind:") {
			booked = booked.Add(l.Balance)
		}
	}
	for _, h := range p.History {
		flat = flat.Add(h.Indirect)
	}
	return booked, flat
}

// invalid refuses a pack that is incomplete or does not reconcile: C2, since a pack is what
// shows the claim's totals reconciling, and one that cannot is never written.
func invalid(format string, args ...any) error {
	return &apperr.Error{Code: apperr.Invalid, Rule: "C2", Message: fmt.Sprintf(format, args...), Op: "reports.Validate"}
}

// proRataText says how the pro-rata targets of the match were profiled (C6).
func proRataText(p *Pack) string {
	if p.Claims < 1 {
		return "Pro-rata target = the target profiled evenly over the operation's claims, to this one."
	}
	return fmt.Sprintf("Pro-rata target = the target × %d ÷ %d: the target profiled evenly over the operation's %d claims, to this one, claim %d.",
		p.ClaimNumber, p.Claims, p.Claims, p.ClaimNumber)
}

// generator returns the generator version to print.
func (p *Pack) generator() string {
	if p.GeneratorVersion != "" {
		return p.GeneratorVersion
	}
	return Generator
}

// rateText returns the rate as printed.
func (p *Pack) rateText() string {
	if p.RateText != "" {
		return p.RateText
	}
	return p.Rate.String()
}
