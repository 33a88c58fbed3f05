package claims

import (
	"fmt"
	"math/big"
	"strconv"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/gbp"
	"github.com/ccr-infuse/infuse/programme"
)

// This file is the claim arithmetic of domain.md §7: a pure function of plain values, with no
// database and no clock, so that every figure can be checked by hand in a table-driven test.
// The queries that feed it live in query.go.

// Severity of a finding.
const (
	SeverityBlock = "block" // refuses submission
	SeverityWarn  = "warn"
	SeverityInfo  = "info"
)

// maxFindingEntries bounds the ledger entry ids one finding lists; the message gives the count.
const maxFindingEntries = 10000

// PeriodSums is what the ledger holds for one claim period: the amounts booked in it.
type PeriodSums struct {
	Code string
	// Headings holds the real-cost headings booked in the period (staff, delivery, other), as
	// the movement of their expenditure accounts. The flat-rate heading is computed, never read,
	// and officer_time is the sum of InKind.
	Headings map[string]decimal.Decimal
	// InKind is the in-kind expenditure (heading officer_time) booked per authority.
	InKind map[string]decimal.Decimal
	// Match is the in-kind match income booked per authority, as a positive amount.
	Match map[string]decimal.Decimal
}

// Target is an authority and its whole match target.
type Target struct {
	Code   string
	Target decimal.Decimal
}

// LedgerFacts are what the queries found about the ledger beyond the period sums, for the
// findings C1, C2, C3, C7 and C8.
type LedgerFacts struct {
	// TrialBalance is every account's balance through the claim period, by account code; nil
	// when not read (C2 is then not checked).
	TrialBalance map[string]decimal.Decimal
	// HeadingAccounts maps each heading to the accounts the trial balance holds it in (for C2).
	HeadingAccounts map[string][]string
	// InKindMismatch lists the entries of the period whose in-kind expenditure and match income
	// differ for some authority (C1).
	InKindMismatch []int64
	// Late lists the entries booked in the period whose effective date lies in an earlier
	// period (C7); LateCount is their number (Late may be cut short).
	Late      []int64
	LateCount int
	// Lines is the line detail of the period (transaction list and officer time); nil when it
	// could not be read, and C3 and C8 are then reported as not checked.
	Lines *LineFacts
}

// LineFacts summarises the lines booked in the claim period for C3 and C8.
type LineFacts struct {
	// Totals is the sum of the lines per heading: the transaction list per cash heading
	// (adjustments included) and the officer-time lines under officer_time.
	Totals map[string]decimal.Decimal
	// MissingEvidence lists the ledger entries of lines without an evidence reference;
	// MissingApprover those of time entries without an approver.
	MissingEvidence []int64
	MissingApprover []int64
	// Unlined lists ledger entries that moved a heading's account in the period with no line
	// behind them, so nothing evidences them.
	Unlined []int64
}

// Input is everything the claim computation needs.
type Input struct {
	Rate        programme.Rate
	FlatRate    programme.FlatRate
	Award       decimal.Decimal
	Headings    []programme.Heading // the programme's headings, in order
	Authorities []Target            // every authority, in the programme's order
	// Periods holds every claim period from the first up to and including the claim's own, in
	// order: cumulative figures are sums over it.
	Periods []PeriodSums
	// TotalPeriods is the number of claim periods of the operation, for the pro-rata profile of
	// the match targets.
	TotalPeriods int
	Final        bool // the claim is the operation's last
	// Art69Enforced applies the Art 69(1) cap to cum_due and makes a breach block submission
	// (R4.5: on the final claim); otherwise a breach is a warning.
	Art69Enforced bool
	Facts         LedgerFacts
}

// Pair is an amount for the claim period and cumulatively up to and including it.
type Pair struct {
	Period     decimal.Decimal `json:"period"`
	Cumulative decimal.Decimal `json:"cumulative"`
}

// HeadingFigure is a cost heading's period and cumulative amounts.
type HeadingFigure struct {
	Code string `json:"code"`
	Pair
}

// Rounding is the working of R9.3c on the cumulative total: the exact ESF share, the share
// floored to the penny and the residual between them, each to 6 decimal places.
type Rounding struct {
	ExactShare   string `json:"exact_share"`
	FlooredShare string `json:"floored_share"`
	Residual     string `json:"residual"`
}

// FlatRateWorking is the working of R9.3b for the claim period.
type FlatRateWorking struct {
	Kind    programme.FlatRateKind `json:"kind"`
	Percent decimal.Decimal        `json:"percent"`
	Base    decimal.Decimal        `json:"base"`   // direct staff costs of the period
	Exact   decimal.Decimal        `json:"exact"`  // Base × Percent ÷ 100, exactly
	Amount  decimal.Decimal        `json:"amount"` // Exact truncated to the penny
}

// AuthorityMatch is an authority's in-kind match against its pro-rata target.
type AuthorityMatch struct {
	Code       string          `json:"code"`
	Period     decimal.Decimal `json:"period"`
	Cumulative decimal.Decimal `json:"cumulative"`
	Target     decimal.Decimal `json:"target"`
	// ProRata is the target profiled evenly over the claim periods up to this one:
	// Target × claim number ÷ number of claims, half up to the penny.
	ProRata decimal.Decimal `json:"pro_rata"`
	// VariancePct is (Cumulative − ProRata) ÷ ProRata × 100 to 2 places; 0 when ProRata is 0.
	VariancePct decimal.Decimal `json:"variance_pct"`
	// Beyond is C6's warning: the variance, exactly, is beyond ±15% of the pro-rata target.
	Beyond bool `json:"beyond,omitempty"`
}

// Finding is the result of one claim check.
type Finding struct {
	ID       string  `json:"id"`       // C1 … C8
	Severity string  `json:"severity"` // block, warn or info
	Message  string  `json:"message"`
	Entries  []int64 `json:"entries,omitempty"` // ledger entries involved

	// Key is the English format of Message and Args its arguments, all data (codes, amounts,
	// counts), so that a page can show the finding in another language; Parts, when there are
	// any, are messages of their own that make the last argument, joined by "; ".
	Key   string   `json:"key,omitempty"`
	Args  []string `json:"args,omitempty"`
	Parts []Part   `json:"parts,omitempty"`
}

// Part is a message within a finding's: its English format and arguments.
type Part struct {
	Key  string   `json:"key"`
	Args []string `json:"args,omitempty"`
}

// Text returns the finding's message as an apperr.Text, for a page to render in its language.
// A finding compiled before findings kept their keys has only its English message.
func (f Finding) Text() apperr.Text {
	if f.Key == "" {
		return apperr.Text{Key: f.Message, Message: f.Message}
	}
	return apperr.Text{Key: f.Key, Args: f.args(), Message: f.Message}
}

// args are the arguments of the finding's key: its own, then its parts as one.
func (f Finding) args() []any {
	args := anys(f.Args)
	if len(f.Parts) > 0 {
		parts := make(apperr.Texts, len(f.Parts))
		for i, p := range f.Parts {
			pa := anys(p.Args)
			parts[i] = apperr.Text{Key: p.Key, Args: pa, Message: fmt.Sprintf(p.Key, pa...)}
		}
		args = append(args, parts)
	}
	return args
}

func anys(ss []string) []any {
	out := make([]any, len(ss), len(ss)+1)
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Figures are the computed claim: what domain.md §7 says a claim shows, and the workings.
type Figures struct {
	Period        string          `json:"period"`
	ClaimNumber   int             `json:"claim_number"`
	Final         bool            `json:"final"`
	Headings      []HeadingFigure `json:"headings"` // the programme's headings, in order
	Cash          Pair            `json:"cash"`     // staff + delivery + other
	InKind        Pair            `json:"inkind"`
	TotalEligible Pair            `json:"total_eligible"`
	ESFDue        Pair            `json:"esf_due"` // esf_due(p) and cum_due(p)
	// PreviousDue is cum_due(p−1), what the claims before this one claimed in all.
	PreviousDue decimal.Decimal `json:"previous_due"`
	// ShareAtRate is floor(C_total × rate) before any cap.
	ShareAtRate   decimal.Decimal  `json:"share_at_rate"`
	Rounding      Rounding         `json:"rounding"`
	AwardCap      decimal.Decimal  `json:"award_cap"`
	Art69Cap      decimal.Decimal  `json:"art69_cap"` // C_cash + C_indirect
	Art69Enforced bool             `json:"art69_enforced"`
	CapApplied    string           `json:"cap_applied,omitempty"` // "", "award" or "art69"
	FlatRate      FlatRateWorking  `json:"flat_rate"`
	Match         []AuthorityMatch `json:"match"`
	LateItems     int              `json:"late_items"`
	Findings      []Finding        `json:"findings"`
	// TrialBalance is the ledger's trial balance through the claim period as compiled, in
	// account order (set by the compilation, not by Compute).
	TrialBalance []TBLine `json:"trial_balance,omitempty"`
	// History is every claim up to this one as the ledger has it at this compilation: the
	// period figures and cum_due of each, whose differences are each claim's ESF due (R9.3c).
	// Claims compiled before it was kept have none.
	History []HistoryLine `json:"history,omitempty"`
}

// HistoryLine is one claim period's figures in a claim's history.
type HistoryLine struct {
	Period     string          `json:"period"`
	Cash       decimal.Decimal `json:"cash"`
	Indirect   decimal.Decimal `json:"indirect"` // the flat rate of the period's own staff costs, truncated (R9.3b)
	InKind     decimal.Decimal `json:"inkind"`
	Total      decimal.Decimal `json:"total"`
	Cumulative decimal.Decimal `json:"cumulative"` // C_total up to and including the period
	CumDue     decimal.Decimal `json:"cum_due"`    // cum_due of the period (Art 69 enforced on the final claim only)
	Due        decimal.Decimal `json:"due"`        // cum_due less the previous period's
}

// Heading returns the figure of the heading with code.
func (f *Figures) Heading(code string) Pair {
	for _, h := range f.Headings {
		if h.Code == code {
			return h.Pair
		}
	}
	return Pair{}
}

// Blocking returns the findings that refuse submission.
func (f *Figures) Blocking() []Finding {
	var out []Finding
	for _, x := range f.Findings {
		if x.Severity == SeverityBlock {
			out = append(out, x)
		}
	}
	return out
}

// periodTotals are one period's figures by the formulas of domain §7.
type periodTotals struct {
	heading  map[string]decimal.Decimal // every heading, indirect and officer_time included
	cash     decimal.Decimal
	indirect decimal.Decimal
	inkind   decimal.Decimal
	total    decimal.Decimal
}

func (in *Input) totals(ps PeriodSums) periodTotals {
	t := periodTotals{heading: map[string]decimal.Decimal{}}
	for _, h := range in.Headings {
		switch h.Kind {
		case programme.KindCash:
			v := ps.Headings[h.Code]
			t.heading[h.Code] = v
			t.cash = t.cash.Add(v)
		case programme.KindInKind:
			for _, a := range in.Authorities {
				t.inkind = t.inkind.Add(ps.InKind[a.Code])
			}
			t.heading[h.Code] = t.inkind
		}
	}
	// R9.3b: the flat rate is applied to each period's own staff costs and truncated there, so
	// the cumulative flat amount is the sum of the truncated period amounts.
	t.indirect = in.FlatRate.Amount(ps.Headings[programme.HeadingStaff])
	for _, h := range in.Headings {
		if h.Kind == programme.KindFlat {
			t.heading[h.Code] = t.indirect
		}
	}
	t.total = t.cash.Add(t.indirect).Add(t.inkind)
	return t
}

// cumDue is R9.3c: floor(C_total × rate), capped at the award and, when enforced, at
// C_cash + C_indirect (Art 69(1), R4.5). It also returns the uncapped share and which cap bound.
func (in *Input) cumDue(cTotal, art69Cap decimal.Decimal, enforce bool) (due, share decimal.Decimal, cap string) {
	share = in.Rate.FloorPenny(cTotal)
	due = share
	if due.GreaterThan(in.Award) {
		due, cap = in.Award, "award"
	}
	if enforce && due.GreaterThan(art69Cap) {
		due, cap = art69Cap, "art69"
	}
	return due, share, cap
}

// Compute returns the figures of the claim for the last period of in.Periods.
func Compute(in Input) (Figures, error) {
	if len(in.Periods) == 0 {
		return Figures{}, fmt.Errorf("claims.Compute: no periods")
	}
	if !in.Rate.Valid() {
		return Figures{}, fmt.Errorf("claims.Compute: intervention rate %s is not valid", in.Rate)
	}
	n := len(in.Periods)
	var t periodTotals // each period's, the last this claim's
	cum := periodTotals{heading: map[string]decimal.Decimal{}}
	var prevDue, share decimal.Decimal
	var capped string
	history := make([]HistoryLine, 0, n)
	for i, ps := range in.Periods {
		t = in.totals(ps)
		for k, v := range t.heading {
			cum.heading[k] = cum.heading[k].Add(v)
		}
		cum.cash = cum.cash.Add(t.cash)
		cum.indirect = cum.indirect.Add(t.indirect)
		cum.inkind = cum.inkind.Add(t.inkind)
		cum.total = cum.total.Add(t.total)
		// Every claim before the last is an interim claim, which Art 69 never caps.
		var due decimal.Decimal
		due, share, capped = in.cumDue(cum.total, cum.cash.Add(cum.indirect), i == n-1 && in.Art69Enforced)
		history = append(history, HistoryLine{Period: ps.Code, Cash: t.cash, Indirect: t.indirect, InKind: t.inkind, Total: t.total,
			Cumulative: cum.total, CumDue: due, Due: due.Sub(prevDue)})
		prevDue = due
	}
	cur, last := t, history[n-1]

	f := Figures{
		Period:        in.Periods[n-1].Code,
		ClaimNumber:   n,
		Final:         in.Final,
		Cash:          Pair{cur.cash, cum.cash},
		InKind:        Pair{cur.inkind, cum.inkind},
		TotalEligible: Pair{cur.total, cum.total},
		AwardCap:      in.Award,
		Art69Cap:      cum.cash.Add(cum.indirect),
		Art69Enforced: in.Art69Enforced,
		LateItems:     in.Facts.LateCount,
		Findings:      []Finding{},
	}
	for _, h := range in.Headings {
		f.Headings = append(f.Headings, HeadingFigure{Code: h.Code, Pair: Pair{cur.heading[h.Code], cum.heading[h.Code]}})
	}

	// R9.3c: this claim's due is its cum_due less the claim before's, as the history has them.
	f.ESFDue = Pair{Period: last.Due, Cumulative: last.CumDue}
	f.PreviousDue = last.CumDue.Sub(last.Due)
	f.ShareAtRate = share
	f.CapApplied = capped
	f.Rounding = rounding(in.Rate, cum.total, share)

	staff := in.Periods[n-1].Headings[programme.HeadingStaff]
	f.FlatRate = FlatRateWorking{Kind: in.FlatRate.Kind, Percent: in.FlatRate.Percent, Base: staff,
		Exact: decimal.Zero, Amount: cur.indirect}
	if in.FlatRate.Kind == programme.FlatIndirect || in.FlatRate.Kind == programme.FlatOther {
		f.FlatRate.Exact = staff.Mul(in.FlatRate.Percent).Shift(-2)
	}

	f.Match = in.match(n)
	f.History = history
	f.Findings = in.findings(&f)
	return f, nil
}

// rounding is the R9.3c working: exact share, floored share and residual to 6 places.
func rounding(r programme.Rate, total, floored decimal.Decimal) Rounding {
	exact := r.Exact(total)
	res := new(big.Rat).Sub(exact, floored.Rat())
	return Rounding{
		ExactShare:   exact.FloatString(6),
		FlooredShare: floored.StringFixed(6),
		Residual:     res.FloatString(6),
	}
}

// match is each authority's match, period and cumulative, against its pro-rata target.
func (in *Input) match(n int) []AuthorityMatch {
	out := make([]AuthorityMatch, 0, len(in.Authorities))
	total := in.TotalPeriods
	if total < n {
		total = n
	}
	for _, a := range in.Authorities {
		m := AuthorityMatch{Code: a.Code, Target: a.Target, Period: in.Periods[n-1].Match[a.Code]}
		for _, ps := range in.Periods {
			m.Cumulative = m.Cumulative.Add(ps.Match[a.Code])
		}
		m.ProRata = a.Target.Mul(decimal.NewFromInt(int64(n))).DivRound(decimal.NewFromInt(int64(total)), 2)
		if !m.ProRata.IsZero() {
			m.VariancePct = m.Cumulative.Sub(m.ProRata).Mul(decimal.NewFromInt(100)).DivRound(m.ProRata, 2)
			m.Beyond = m.Cumulative.Sub(m.ProRata).Abs().Mul(decimal.NewFromInt(100)).GreaterThan(m.ProRata.Mul(decimal.NewFromInt(15)))
		}
		out = append(out, m)
	}
	return out
}

// findings runs the checks C1–C8 of domain §7 on the figures and the ledger facts. Each message
// is made from its key and data arguments only (no English words as arguments: a count picks
// the key), so that it can be shown in Welsh (Finding.Key).
func (in *Input) findings(f *Figures) []Finding {
	var out []Finding
	add := func(id, sev string, entries []int64, parts []Part, format string, args ...string) {
		f := Finding{ID: id, Severity: sev, Entries: capEntries(entries), Key: format, Args: args, Parts: parts}
		f.Message = fmt.Sprintf(format, f.args()...)
		out = append(out, f)
	}
	last := in.Periods[len(in.Periods)-1]
	facts := &in.Facts

	// C1: in-kind expenditure equals in-kind match income, per period and authority (R4.7).
	var c1 []Part
	for _, a := range in.Authorities {
		if exp, inc := last.InKind[a.Code], last.Match[a.Code]; !exp.Equal(inc) {
			c1 = append(c1, Part{Key: "%s expenditure %s, income %s", Args: []string{a.Code, gbp.Pounds(exp), gbp.Pounds(inc)}})
		}
	}
	if len(c1) > 0 {
		add("C1", SeverityBlock, facts.InKindMismatch, c1, "in-kind expenditure and match income differ in %s (R4.7): %s", last.Code)
	}

	// C2: the trial balance is zero and the claim's cumulative totals are its balances.
	if facts.TrialBalance != nil {
		sum := decimal.Zero
		for _, v := range facts.TrialBalance {
			sum = sum.Add(v)
		}
		if !sum.IsZero() {
			add("C2", SeverityBlock, nil, nil, "the trial balance through %s sums to %s, not zero", last.Code, gbp.Pounds(sum))
		}
		for _, h := range in.Headings {
			accts, ok := facts.HeadingAccounts[h.Code]
			if !ok || h.Kind == programme.KindFlat {
				continue
			}
			tb := decimal.Zero
			for _, a := range accts {
				tb = tb.Add(facts.TrialBalance[a])
			}
			if got := f.Heading(h.Code).Cumulative; !got.Equal(tb) {
				add("C2", SeverityBlock, nil, nil, "cumulative %s is %s in the claim but %s in the trial balance",
					h.Code, gbp.Pounds(got), gbp.Pounds(tb))
			}
		}
	}

	// C3: transaction-list totals equal the claim totals per heading.
	if facts.Lines == nil {
		add("C3", SeverityInfo, nil, nil, "not checked: the line detail of %s could not be read", last.Code)
	} else {
		for _, h := range in.Headings {
			if h.Kind == programme.KindFlat {
				continue
			}
			lines, claimed := facts.Lines.Totals[h.Code], f.Heading(h.Code).Period
			if !lines.Equal(claimed) {
				add("C3", SeverityBlock, nil, nil, "the %s lines of %s add up to %s but the claim shows %s",
					h.Code, last.Code, gbp.Pounds(lines), gbp.Pounds(claimed))
			}
		}
	}

	// C4: Art 69(1) — the public support, ESF at the rate within the award, may not exceed
	// eligible expenditure excluding in-kind (R4.5). The award's cap comes first: ESF at the
	// rate above the award is never claimed, so it cannot breach Art 69.
	if support := decimal.Min(f.ShareAtRate, in.Award); support.GreaterThan(f.Art69Cap) {
		if in.Art69Enforced {
			add("C4", SeverityBlock, nil, nil,
				"Art 69(1): ESF at the rate within the award, %s, exceeds eligible expenditure excluding in-kind, %s; the final claim is capped at %s and cannot be submitted until the cash expenditure supports the ESF claimed (R4.5)",
				gbp.Pounds(support), gbp.Pounds(f.Art69Cap), gbp.Pounds(f.ESFDue.Cumulative))
		} else {
			add("C4", SeverityWarn, nil, nil,
				"Art 69(1): ESF at the rate within the award, %s, exceeds eligible expenditure excluding in-kind, %s, by %s; the final claim will be capped (R4.5)",
				gbp.Pounds(support), gbp.Pounds(f.Art69Cap), gbp.Pounds(support.Sub(f.Art69Cap)))
		}
	}

	// C5: cumulative ESF due never exceeds the award.
	switch {
	case f.ESFDue.Cumulative.GreaterThan(in.Award):
		add("C5", SeverityBlock, nil, nil, "cumulative ESF due %s exceeds the award %s", gbp.Pounds(f.ESFDue.Cumulative), gbp.Pounds(in.Award))
	case f.ShareAtRate.GreaterThan(in.Award):
		add("C5", SeverityWarn, nil, nil, "ESF at the rate, %s, exceeds the award %s; cumulative ESF due is capped at the award (R9.3c)",
			gbp.Pounds(f.ShareAtRate), gbp.Pounds(in.Award))
	}

	// C6: match per authority against its pro-rata target, a warning beyond ±15%.
	for _, m := range f.Match {
		if m.Beyond {
			args := []string{m.Code, last.Code, gbp.Pounds(m.Cumulative), gbp.Pounds(m.Cumulative.Sub(m.ProRata).Abs()), gbp.Pounds(m.ProRata),
				signed(m.VariancePct)}
			if m.Cumulative.LessThan(m.ProRata) {
				add("C6", SeverityWarn, nil, nil, "match of %s to %s is %s, %s short of its pro-rata target of %s (%s%%, beyond ±15%%)", args...)
			} else {
				add("C6", SeverityWarn, nil, nil, "match of %s to %s is %s, %s ahead of its pro-rata target of %s (%s%%, beyond ±15%%)", args...)
			}
		}
	}

	// C7: late items are shown with the claim they land in.
	if n := facts.LateCount; n > 0 {
		add("C7", SeverityInfo, facts.Late, nil, counted(n,
			"%s entry booked in %s has an effective date in an earlier period",
			"%s entries booked in %s have an effective date in an earlier period"), strconv.Itoa(n), last.Code)
	}

	// C8: every line has evidence and every time entry an approver (R7.1).
	if facts.Lines != nil {
		if n := len(facts.Lines.MissingEvidence); n > 0 {
			add("C8", SeverityBlock, facts.Lines.MissingEvidence, nil, counted(n,
				"%s line of %s has no evidence reference (R7.1)",
				"%s lines of %s have no evidence reference (R7.1)"), strconv.Itoa(n), last.Code)
		}
		if n := len(facts.Lines.MissingApprover); n > 0 {
			add("C8", SeverityBlock, facts.Lines.MissingApprover, nil, counted(n,
				"%s time entry of %s has no approver (R7.1)",
				"%s time entries of %s have no approver (R7.1)"), strconv.Itoa(n), last.Code)
		}
		if n := len(facts.Lines.Unlined); n > 0 {
			add("C8", SeverityBlock, facts.Lines.Unlined, nil, counted(n,
				"%s ledger entry of %s moved expenditure with no line or evidence behind it (R7.1)",
				"%s ledger entries of %s moved expenditure with no line or evidence behind them (R7.1)"), strconv.Itoa(n), last.Code)
		}
	}
	if out == nil {
		out = []Finding{}
	}
	return out
}

func capEntries(ids []int64) []int64 {
	if len(ids) > maxFindingEntries {
		ids = ids[:maxFindingEntries]
	}
	return append([]int64(nil), ids...)
}

// money writes an amount as the API and files do: 1234.56 (findings use gbp.Pounds, £1,234.56,
// since they are read, in the pack and on the pages, not parsed).
func money(d decimal.Decimal) string { return d.StringFixed(2) }

func signed(d decimal.Decimal) string {
	if d.Sign() > 0 {
		return "+" + d.StringFixed(2)
	}
	return d.StringFixed(2)
}

// counted picks the message for a count: one's for 1, many's otherwise.
func counted(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
