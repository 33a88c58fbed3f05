package reports

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/gbp"
)

// The encoders never depend on the order a Pack's lists arrive in or on map iteration: every
// list is put into one fixed order here, with the ledger entry id (unique per line) as the last
// key that matters, so that the order is total.

// cashOrder returns the indexes of the cash lines in transaction-list order: by defrayal date,
// then ledger entry.
func cashOrder(lines []CashLine) []int32 {
	idx := identity(len(lines))
	slices.SortFunc(idx, func(a, b int32) int {
		x, y := &lines[a], &lines[b]
		return cmp.Or(
			x.DefrayedOn.Compare(y.DefrayedOn),
			cmp.Compare(x.EntryID, y.EntryID),
			strings.Compare(x.Heading, y.Heading),
			x.Amount.Cmp(y.Amount),
			cmp.Compare(a, b),
		)
	})
	return idx
}

// timeOrder returns the indexes of the officer-time lines by authority, officer, work date,
// activity and ledger entry, the order an auditor checks timesheets in.
func timeOrder(lines []TimeLine) []int32 {
	idx := identity(len(lines))
	slices.SortFunc(idx, func(a, b int32) int {
		x, y := &lines[a], &lines[b]
		return cmp.Or(
			strings.Compare(x.Authority, y.Authority),
			strings.Compare(x.PayrollRef, y.PayrollRef),
			x.WorkDate.Compare(y.WorkDate),
			strings.Compare(x.Activity, y.Activity),
			cmp.Compare(x.EntryID, y.EntryID),
			cmp.Compare(a, b), // the order given, should two lines share an entry: still total
		)
	})
	return idx
}

func identity(n int) []int32 {
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	return idx
}

// sortedRates returns the rate versions by authority, officer and valid-from date.
func sortedRates(in []RateVersion) []RateVersion {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(x, y RateVersion) int {
		return cmp.Or(
			strings.Compare(x.Authority, y.Authority),
			strings.Compare(x.PayrollRef, y.PayrollRef),
			x.ValidFrom.Compare(y.ValidFrom),
		)
	})
	return out
}

// sortedMatch returns the authorities by code.
func sortedMatch(in []AuthorityMatch) []AuthorityMatch {
	return matchBy(in, func(m AuthorityMatch) string { return m.Code })
}

// matchByName returns the authorities by English name (then code), for lists that show names
// without codes: by code, Bridgend (GB-BGE) came before Blaenau Gwent (GB-BGW).
func matchByName(in []AuthorityMatch) []AuthorityMatch {
	return matchBy(in, func(m AuthorityMatch) string { return m.NameEN })
}

// matchBy returns the authorities ordered by key, then code.
func matchBy(in []AuthorityMatch, key func(AuthorityMatch) string) []AuthorityMatch {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(x, y AuthorityMatch) int {
		return cmp.Or(strings.Compare(key(x), key(y)), strings.Compare(x.Code, y.Code))
	})
	return out
}

// sortedFindings returns the findings by check id (C1 before C8), then severity (block first),
// then message, each with its entries in ascending order.
func sortedFindings(in []Finding) []Finding {
	out := make([]Finding, len(in))
	for i, f := range in {
		f.Entries = slices.Clone(f.Entries)
		slices.Sort(f.Entries)
		out[i] = f
	}
	slices.SortStableFunc(out, func(x, y Finding) int {
		return cmp.Or(
			cmp.Compare(len(x.ID), len(y.ID)), // C2 before C10, should a check be added
			strings.Compare(x.ID, y.ID),
			cmp.Compare(severityRank(x.Severity), severityRank(y.Severity)),
			strings.Compare(x.Message, y.Message),
		)
	})
	return out
}

// checks are the claim's checks of domain.md §7, each with what it checks: a pack lists every
// one with its result, so that a check that found nothing is seen to have been made.
var checks = [][2]string{
	{"C1", "in-kind expenditure equals in-kind income, per period and authority"},
	{"C2", "the ledger's trial balance is zero and the claim's totals reconcile to it"},
	{"C3", "transaction-list totals equal the claim's totals per heading"},
	{"C4", "Art 69 cap (a warning on interim claims, blocking on the final claim)"},
	{"C5", "cumulative ESF due is at most the award"},
	{"C6", "match per authority against its pro-rata target (a warning beyond ±15%)"},
	{"C7", "late items present (for the record)"},
	{"C8", "every line has evidence; every time entry has an approver"},
}

// checkResults is each check of checks with its result in fs: the most severe finding it
// raised ("block", "warn", "info"), or "passed" when it raised none.
func checkResults(fs []Finding) [][3]string {
	out := make([][3]string, len(checks))
	for i, c := range checks {
		result := "passed"
		for _, f := range fs {
			if f.ID == c[0] && (result == "passed" || severityRank(f.Severity) < severityRank(result)) {
				result = f.Severity
			}
		}
		out[i] = [3]string{c[0], c[1], result}
	}
	return out
}

func severityRank(s string) int {
	switch s {
	case SeverityBlock:
		return 0
	case SeverityWarn:
		return 1
	default:
		return 2
	}
}

// kindRank orders trial-balance accounts as a trial balance reads: assets, liabilities,
// income, expenses, then the memo (allocation) accounts.
func kindRank(kind string) int {
	switch kind {
	case "asset":
		return 0
	case "liability":
		return 1
	case "income":
		return 2
	case "expense":
		return 3
	case "memo":
		return 5
	default:
		return 4
	}
}

// sortedTrialBalance returns the accounts by kind, then code.
func sortedTrialBalance(in []TrialBalanceLine) []TrialBalanceLine {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(x, y TrialBalanceLine) int {
		return cmp.Or(cmp.Compare(kindRank(x.Kind), kindRank(y.Kind)), strings.Compare(x.Code, y.Code))
	})
	return out
}

// officerTotal is one officer's time in the period.
type officerTotal struct {
	PayrollRef, Name string
	Lines            int
	Hours, Amount    decimal.Decimal
}

// authorityTime is one authority's time in the period, with its officers.
type authorityTime struct {
	Code          string
	Lines         int
	Hours, Amount decimal.Decimal
	Officers      []officerTotal
}

// timeByAuthority totals the officer-time lines per authority and officer, walking them in
// timeOrder so that the result is in authority, then payroll-ref order without a map.
func timeByAuthority(lines []TimeLine, order []int32) []authorityTime {
	var out []authorityTime
	for _, i := range order {
		l := &lines[i]
		if len(out) == 0 || out[len(out)-1].Code != l.Authority {
			out = append(out, authorityTime{Code: l.Authority})
		}
		a := &out[len(out)-1]
		a.Lines++
		a.Hours = a.Hours.Add(l.Hours)
		a.Amount = a.Amount.Add(l.Amount)
		if len(a.Officers) == 0 || a.Officers[len(a.Officers)-1].PayrollRef != l.PayrollRef {
			a.Officers = append(a.Officers, officerTotal{PayrollRef: l.PayrollRef, Name: l.OfficerName})
		}
		o := &a.Officers[len(a.Officers)-1]
		o.Lines++
		o.Hours = o.Hours.Add(l.Hours)
		o.Amount = o.Amount.Add(l.Amount)
	}
	return out
}

// dateText formats a date as the project writes dates in files.
func dateText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}

// numberText formats a number with thousands separators and the given decimal places.
func numberText(d decimal.Decimal, places int32) string {
	s := gbp.Group(d.Abs().StringFixed(places))
	if d.IsNegative() && s != gbp.Group(decimal.Zero.StringFixed(places)) {
		return "-" + s
	}
	return s
}

// intText formats an integer with thousands separators.
func intText(n int64) string {
	if n < 0 {
		return "-" + gbp.Group(decimal.NewFromInt(-n).String())
	}
	return gbp.Group(decimal.NewFromInt(n).String())
}

// yesNo renders a flag for people.
func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}
