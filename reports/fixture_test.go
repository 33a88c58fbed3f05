package reports

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/programme"
)

// Names that prove the embedded font draws Welsh letters: Tŷ Hywel is the Senedd's office
// building, Dŵr Cymru the Welsh water company.
const (
	welshOfficer = "Llŷr ap Gŵyn"
	welshPayee   = "Tŷ Hywel conference centre"
	formulaPayee = `=HYPERLINK("http://x")`
	formulaDesc  = "@SUM(A1)"
)

var dec = decimal.RequireFromString

// testPack returns a realistic claim pack for 2021Q3, claim 3 of InFuSe: the ten authorities,
// twelve officers each with their rate versions, timeLines officer-time lines priced as R9.3a
// prices them, some forty cash lines including a credit note and formula-like payee text,
// findings and a balanced trial balance. Lists come in a shuffled order, as a careless caller
// might pass them; the figures are consistent with the lines as claims would compile them.
func testPack(tb testing.TB, timeLines int) *Pack {
	tb.Helper()
	prog := programme.Default()
	rng := rand.New(rand.NewPCG(2021, 3))
	start, end := programme.Date(2021, 7, 1), programme.Date(2021, 9, 30)
	p := &Pack{
		Operation: Operation{ID: prog.OperationID, Name: prog.Name, NameCY: prog.NameCY,
			Lead: Authority{Code: "GB-MON", NameEN: "Monmouthshire", NameCY: "Sir Fynwy"}},
		Period:      Period{Code: "2021Q3", Start: start, End: end},
		ClaimNumber: 3,
		Claims:      12,
		Status:      "draft",
		CompiledAt:  time.Date(2021, 10, 1, 5, 0, 0, 0, time.UTC),
		Position: Position{EntriesSealed: int64(timeLines) + 5234, LastEntryID: int64(timeLines) + 5301,
			ChainLink: "9f2c4e1d7a6b3c5e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a"},
		Award:            prog.Award,
		Rate:             prog.Rate,
		RateText:         prog.Rate.String(),
		Declaration:      "I declare that the expenditure in this claim was defrayed by the lead beneficiary and its partners in the period or, where shown as a late item, in the earlier period it relates to, is eligible under the ESF regulations and the funding agreement, is supported by evidence held for audit, and has not been claimed from any other European or public source. Match funding in kind is the documented time of officers whose salaries their authorities paid.",
		Signatory:        Signatory{Name: "Rhian Evans", Role: "Programme manager, Monmouthshire County Council"},
		GeneratorVersion: "infuse test",
	}

	// Officers and their rate versions: some had a pay rise from August.
	type officer struct {
		auth, ref, name string
		versions        []RateVersion
	}
	first := []string{"Rhian", "Gareth", "Siân", "Dafydd", "Ffion", "Owain", "Carys", "Huw", "Nia", "Rhodri", "Eleri", "Iwan"}
	last := []string{"Evans", "Morgan", "Jones", "Williams", "Davies", "Thomas", "Roberts", "Hughes", "Lewis", "Price", "Powell", "Rees"}
	var officers []officer
	for ai, a := range prog.Authorities {
		for k := 0; k < 12; k++ {
			o := officer{auth: a.Code, ref: fmt.Sprintf("%s-%06d", a.Code[3:], 4400+k*17+ai), name: first[(k+ai)%12] + " " + last[(k*5+ai)%12]}
			if ai == 1 && k == 0 {
				o.name = welshOfficer
			}
			agec := decimal.NewFromInt(int64(32000 + rng.IntN(30000))).Add(decimal.New(int64(rng.IntN(100)), -2))
			fte := []decimal.Decimal{dec("1"), dec("0.8"), dec("0.6"), dec("1"), dec("0.5")}[rng.IntN(5)]
			o.versions = append(o.versions, rateVersion(a.Code, o.ref, o.name, programme.Date(2021, 1, 1), agec, fte))
			if k%3 == 0 {
				o.versions = append(o.versions, rateVersion(a.Code, o.ref, o.name, programme.Date(2021, 8, 1), agec.Mul(dec("1.0175")).Round(2), fte))
			}
			officers = append(officers, o)
			p.StaffCosts = append(p.StaffCosts, o.versions...)
		}
	}

	// Officer time.
	acts := []string{"lab", "experiment", "coaching", "steering", "other"}
	hoursSet := []decimal.Decimal{dec("7.5"), dec("3.25"), dec("7.4"), dec("2"), dec("6"), dec("1.75")}
	days := int(end.Sub(start).Hours()/24) + 1
	matchPeriod := map[string]decimal.Decimal{}
	var inkind decimal.Decimal
	entry := int64(10000)
	var late []int64
	for i := 0; i < timeLines; i++ {
		o := officers[rng.IntN(len(officers))]
		d := start.AddDate(0, 0, rng.IntN(days))
		isLate := i%97 == 5
		if isLate {
			d = programme.Date(2021, 6, 1+rng.IntN(30))
		}
		v := o.versions[0]
		for _, rv := range o.versions {
			if !rv.ValidFrom.After(d) {
				v = rv
			}
		}
		h := hoursSet[rng.IntN(len(hoursSet))]
		amount := h.Mul(v.AGEC).DivRound(decimal.NewFromInt(int64(v.HoursBasis)).Mul(v.FTE), 2)
		entry++
		l := TimeLine{EntryID: entry, Authority: o.auth, PayrollRef: o.ref, OfficerName: o.name, WorkDate: d, Hours: h,
			Activity: acts[rng.IntN(len(acts))], RateValidFrom: v.ValidFrom, HourlyRate: v.HourlyRate, Amount: amount,
			Rate:        v.AGEC.DivRound(decimal.NewFromInt(int64(v.HoursBasis)).Mul(v.FTE), 12),
			EvidenceRef: fmt.Sprintf("TS-%s-%s-%04d", d.Format("2006-01"), o.auth[3:], i%9000), Approver: "Gareth Morgan"}
		if isLate {
			l.Late, l.RelatesTo = true, "2021Q2"
			late = append(late, entry)
		}
		p.OfficerTime = append(p.OfficerTime, l)
		matchPeriod[o.auth] = matchPeriod[o.auth].Add(amount)
		inkind = inkind.Add(amount)
	}

	// Cash lines: monthly payroll, delivery invoices, a credit note, venues and travel.
	cash := map[string]decimal.Decimal{}
	add := func(heading string, day time.Time, payee, desc, amount, evidence, invoice string) {
		entry++
		a := dec(amount)
		eff := "2021Q3"
		if day.Before(start) {
			eff = "2021Q2"
			late = append(late, entry)
		}
		p.Transactions = append(p.Transactions, CashLine{EntryID: entry, Heading: heading, DefrayedOn: day, Payee: payee,
			Description: desc, Amount: a, EvidenceRef: evidence, InvoiceRef: invoice, BookingPeriod: "2021Q3", EffectivePeriod: eff})
		cash[heading] = cash[heading].Add(a)
	}
	team := []string{"Programme manager", "Programme officer", "Finance officer", "Evaluation officer"}
	for m := time.July; m <= time.September; m++ {
		payday := programme.Date(2021, m, 28)
		for k, role := range team {
			add("staff", payday, "Monmouthshire County Council payroll", fmt.Sprintf("%s salary, NIC and pension, %s", role, m),
				[]string{"4212.67", "3187.42", "2954.10", "3305.88"}[k], fmt.Sprintf("PAY-2021-%02d-%d", m, k+1), "")
		}
		add("delivery", payday.AddDate(0, 0, -10), "Y Lab (Cardiff University)", "Lab facilitation, cohort "+[]string{"Alpha", "Beta", "Gamma"}[m-7],
			"18250.00", fmt.Sprintf("INV-YL-%d", 880+int(m)), fmt.Sprintf("YL%d", 880+int(m)))
		add("delivery", payday.AddDate(0, 0, -3), "Nesta", "Experiment coaching", "9600.00", fmt.Sprintf("INV-N-%d", 4410+int(m)), fmt.Sprintf("N%d", 4410+int(m)))
		add("other", payday.AddDate(0, 0, -14), welshPayee, "Venue hire, lab days", "1450.00", fmt.Sprintf("INV-TH-%d", 20+int(m)), fmt.Sprintf("TH%d", 20+int(m)))
		add("other", payday.AddDate(0, 0, -5), "Dŵr Cymru Welsh Water", "Site visit, experiment day", "212.40", fmt.Sprintf("INV-DC-%d", m), "")
		for k := 0; k < 6; k++ {
			add("other", payday.AddDate(0, 0, -k), "Travel claims", fmt.Sprintf("Officer mileage batch %d", k+1),
				decimal.New(int64(4000+rng.IntN(20000)), -2).StringFixed(2), fmt.Sprintf("TRV-%02d-%d", m, k), "")
		}
	}
	add("delivery", programme.Date(2021, 9, 15), "Nesta", "Credit note: coaching day cancelled", "-1200.00", "CN-N-4418", "N4418")
	add("other", programme.Date(2021, 6, 29), "Cardiff University", "Printing (late invoice from June)", "318.75", "INV-CU-5521", "CU5521")
	add("other", programme.Date(2021, 8, 9), formulaPayee, formulaDesc, "99.99", "INV-EVIL-1", "+441234")
	add("other", programme.Date(2021, 8, 10), "-minus payee", "+plus description", "10.01", "INV-EVIL-2", "-7")

	// Headings, flat rate and totals, as claims compiles them (domain §7).
	// The claims before this one, as one: their officer time is the authorities' match before
	// this period (12,000 + 1,500 × i each, below), as the ledger keeps them equal (R4.7).
	prev := map[string]decimal.Decimal{"staff": dec("82345.67"), "delivery": dec("131200.00"), "other": dec("9876.55"), "officer_time": dec("187500.00")}
	p.FlatRate = FlatRateWorking{Kind: prog.FlatRate.Kind, Percent: prog.FlatRate.Percent, Base: cash["staff"],
		Exact: cash["staff"].Mul(prog.FlatRate.Percent).Shift(-2), Amount: prog.FlatRate.Amount(cash["staff"])}
	prev["indirect"] = prog.FlatRate.Amount(prev["staff"])
	period := map[string]decimal.Decimal{"staff": cash["staff"], "indirect": p.FlatRate.Amount, "delivery": cash["delivery"],
		"other": cash["other"], "officer_time": inkind}
	var prevTotal, prevCashInd decimal.Decimal
	for _, h := range prog.Headings {
		per, cum := period[h.Code], prev[h.Code].Add(period[h.Code])
		p.Headings = append(p.Headings, HeadingFigure{Code: h.Code, Name: h.Name, Kind: h.Kind, Period: per, Cumulative: cum})
		p.TotalEligible.Period = p.TotalEligible.Period.Add(per)
		p.TotalEligible.Cumulative = p.TotalEligible.Cumulative.Add(cum)
		prevTotal = prevTotal.Add(prev[h.Code])
		if h.Kind != programme.KindInKind {
			p.Art69Cap = p.Art69Cap.Add(cum)
			prevCashInd = prevCashInd.Add(prev[h.Code])
		}
	}
	_ = prevCashInd
	p.AwardCap = prog.Award
	floored := prog.Rate.FloorPenny(p.TotalEligible.Cumulative)
	cumDue := decimal.Min(floored, prog.Award)
	prevDue := decimal.Min(prog.Rate.FloorPenny(prevTotal), prog.Award)
	p.ESFDue = Figure{Period: cumDue.Sub(prevDue), Cumulative: cumDue}
	p.PreviousDue = prevDue
	// The history: the claims before as claim 1, a nil claim 2, and this one.
	prevCash := prev["staff"].Add(prev["delivery"]).Add(prev["other"])
	p.History = []HistoryLine{
		{ClaimNumber: 1, Period: "2021Q1", Cash: prevCash, Indirect: prev["indirect"], InKind: prev["officer_time"], Total: prevTotal,
			Cumulative: prevTotal, CumDue: prevDue, Due: prevDue},
		{ClaimNumber: 2, Period: "2021Q2", Cumulative: prevTotal, CumDue: prevDue},
		{ClaimNumber: 3, Period: "2021Q3", Cash: cash["staff"].Add(cash["delivery"]).Add(cash["other"]), Indirect: p.FlatRate.Amount,
			InKind: inkind, Total: p.TotalEligible.Period, Cumulative: p.TotalEligible.Cumulative, CumDue: cumDue, Due: p.ESFDue.Period},
	}
	exact := prog.Rate.Exact(p.TotalEligible.Cumulative)
	p.Rounding = Rounding{
		ExactShare:   exact.FloatString(6),
		FlooredShare: floored.StringFixed(6),
		Residual:     new(big.Rat).Sub(exact, floored.Rat()).FloatString(6),
	}
	p.LateItems = len(late)

	// Match by authority: claim 3 of 12, so the pro-rata target is a quarter of the target.
	for ai, a := range prog.Authorities {
		prevA := decimal.NewFromInt(int64(12000 + ai*1500))
		cum := prevA.Add(matchPeriod[a.Code])
		pro := a.MatchTarget.Mul(dec("3")).Div(dec("12")).Round(2)
		p.Match = append(p.Match, AuthorityMatch{Authority: Authority{Code: a.Code, NameEN: a.NameEN, NameCY: a.NameCY},
			Period: matchPeriod[a.Code], Cumulative: cum, Target: a.MatchTarget, ProRataTarget: pro,
			VariancePct: cum.Sub(pro).Mul(decimal.NewFromInt(100)).DivRound(pro, 2)})
	}

	p.Findings = []Finding{
		{ID: "C7", Severity: SeverityInfo, Message: fmt.Sprintf("%d late items booked in 2021Q3 relate to earlier periods.", len(late)), Entries: late},
		{ID: "C6", Severity: SeverityWarn, Message: "Pen-y-bont ar Ogwr / Bridgend: cumulative match is more than 15% below its pro-rata target.", Entries: nil},
		{ID: "C4", Severity: SeverityWarn, Message: "Cumulative ESF due exceeds the Art 69 cap of cash and flat-rate costs; enforced on the final claim.", Entries: []int64{}},
	}

	// A trial balance that sums to zero.
	paid := dec("61234.56")
	var spent decimal.Decimal
	for _, h := range p.Headings {
		switch h.Kind {
		case programme.KindFlat: // computed per claim, never booked
			p.TrialBalance = append(p.TrialBalance, TrialBalanceLine{Code: "exp:" + h.Code, Name: h.Name, Kind: "expense"})
		case programme.KindCash:
			p.TrialBalance = append(p.TrialBalance, TrialBalanceLine{Code: "exp:" + h.Code, Name: h.Name, Kind: "expense", Balance: h.Cumulative})
			spent = spent.Add(h.Cumulative)
		}
	}
	p.TrialBalance = append(p.TrialBalance,
		TrialBalanceLine{Code: "cash", Name: "Bank (lead beneficiary)", Kind: "asset", Balance: paid.Sub(spent)},
		TrialBalanceLine{Code: "esf_receivable", Name: "ESF grant receivable from WEFO", Kind: "asset", Balance: prevDue.Sub(paid)},
		TrialBalanceLine{Code: "esf_income", Name: "ESF grant income", Kind: "income", Balance: prevDue.Neg()},
		TrialBalanceLine{Code: "alloc:esf", Name: "ESF award allocated", Kind: "memo", Balance: prog.Award},
		TrialBalanceLine{Code: "alloc:budget", Name: "Programme budget (allocations)", Kind: "memo", Balance: prog.TotalEligible().Neg()},
	)
	for _, m := range p.Match {
		p.TrialBalance = append(p.TrialBalance,
			TrialBalanceLine{Code: "inkind:" + m.Code, Name: "In-kind officer time, " + m.NameEN, Kind: "expense", Balance: m.Cumulative},
			TrialBalanceLine{Code: "match:" + m.Code, Name: "In-kind match income, " + m.NameEN, Kind: "income", Balance: m.Cumulative.Neg()},
			TrialBalanceLine{Code: "alloc:match:" + m.Code, Name: "Match target, " + m.NameEN, Kind: "memo", Balance: m.Target},
		)
	}

	// Shuffle the lists: the encoders must not depend on the order they arrive in.
	rng.Shuffle(len(p.OfficerTime), func(i, j int) { p.OfficerTime[i], p.OfficerTime[j] = p.OfficerTime[j], p.OfficerTime[i] })
	rng.Shuffle(len(p.Transactions), func(i, j int) { p.Transactions[i], p.Transactions[j] = p.Transactions[j], p.Transactions[i] })
	rng.Shuffle(len(p.StaffCosts), func(i, j int) { p.StaffCosts[i], p.StaffCosts[j] = p.StaffCosts[j], p.StaffCosts[i] })
	rng.Shuffle(len(p.Match), func(i, j int) { p.Match[i], p.Match[j] = p.Match[j], p.Match[i] })
	if err := p.Validate(); err != nil {
		tb.Fatal(err)
	}
	return p
}

func rateVersion(auth, ref, name string, from time.Time, agec, fte decimal.Decimal) RateVersion {
	basis := decimal.NewFromInt(1720)
	return RateVersion{Authority: auth, PayrollRef: ref, Name: name, ValidFrom: from, AGEC: agec, FTE: fte, HoursBasis: 1720,
		HourlyRate: agec.DivRound(basis.Mul(fte), 4).StringFixed(4)}
}
