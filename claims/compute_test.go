package claims

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/programme"
)

var dec = decimal.RequireFromString

func m(kv ...string) map[string]decimal.Decimal {
	out := map[string]decimal.Decimal{}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = dec(kv[i+1])
	}
	return out
}

// inkind returns period sums whose in-kind expenditure equals the match income (R4.7).
func period(code string, headings map[string]decimal.Decimal, inkind ...string) PeriodSums {
	return PeriodSums{Code: code, Headings: headings, InKind: m(inkind...), Match: m(inkind...)}
}

// baseInput is InFuSe's programme (9/14, 15% flat rate, £3.6m award, 12 quarters) with the
// given periods, line facts that agree with the figures, and targets of the given authorities.
func baseInput(periods ...PeriodSums) Input {
	prog := programme.Default()
	in := Input{
		Rate: prog.Rate, FlatRate: prog.FlatRate, Award: prog.Award, Headings: prog.Headings,
		Periods: periods, TotalPeriods: 12,
	}
	for _, a := range prog.Authorities {
		in.Authorities = append(in.Authorities, Target{Code: a.Code})
	}
	in.Facts.Lines = linesOf(&in)
	return in
}

// linesOf returns line facts that agree with the last period's figures (so C3 passes).
func linesOf(in *Input) *LineFacts {
	last := in.Periods[len(in.Periods)-1]
	tot := map[string]decimal.Decimal{}
	for k, v := range last.Headings {
		tot[k] = v
	}
	for _, v := range last.InKind {
		tot[programme.HeadingOfficerTime] = tot[programme.HeadingOfficerTime].Add(v)
	}
	return &LineFacts{Totals: tot}
}

func setTarget(in *Input, code, target string) {
	for i := range in.Authorities {
		if in.Authorities[i].Code == code {
			in.Authorities[i].Target = dec(target)
		}
	}
}

func compute(t *testing.T, in Input) Figures {
	t.Helper()
	f, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func eq(t *testing.T, what string, got decimal.Decimal, want string) {
	t.Helper()
	if !got.Equal(dec(want)) {
		t.Errorf("%s = %s, want %s", what, got.StringFixed(2), want)
	}
}

func pair(t *testing.T, what string, got Pair, period, cumulative string) {
	t.Helper()
	eq(t, what+" (period)", got.Period, period)
	eq(t, what+" (cumulative)", got.Cumulative, cumulative)
}

func findingIDs(f Figures, severity string) []string {
	var out []string
	for _, x := range f.Findings {
		if x.Severity == severity {
			out = append(out, x.ID)
		}
	}
	return out
}

func hasFinding(f Figures, id, severity string) bool {
	for _, x := range f.Findings {
		if x.ID == id && x.Severity == severity {
			return true
		}
	}
	return false
}

// threeQuarters is the worked example of the package tests, computed by hand:
//
//	            staff     indirect  delivery   other    officer_time  total
//	2021Q1   10000.00     1500.00   20000.00  1234.56     7345.67    40080.23
//	2021Q2   10000.01     1500.00       0.00  -100.00     3000.50    14400.51
//	2021Q3    3333.33      499.99   12345.67     0.00     1999.99    18178.98
//	cum      23333.34     3499.99   32345.67  1134.56    12346.16    72659.72
//
// indirect truncates 15% per period (1500.0015 → 1500.00, 499.9995 → 499.99), so the
// cumulative flat amount 3499.99 is not 15% of the cumulative staff (3500.00).
//
//	C_total × 9/14:  Q1 40080.23 × 9/14 = 25765.862142…  → 25765.86
//	                 Q2 54480.74 × 9/14 = 35023.332857…  → 35023.33   esf_due  9257.47
//	                 Q3 72659.72 × 9/14 = 46709.82 exactly            esf_due 11686.49
var threeQuarters = []PeriodSums{
	period("2021Q1", m("staff", "10000.00", "delivery", "20000.00", "other", "1234.56"), "GB-NWP", "5000.00", "GB-CRF", "2345.67"),
	period("2021Q2", m("staff", "10000.01", "other", "-100.00"), "GB-NWP", "3000.50"),
	period("2021Q3", m("staff", "3333.33", "delivery", "12345.67"), "GB-NWP", "1000.00", "GB-MON", "999.99"),
}

func TestComputeWorkedThreeQuarters(t *testing.T) {
	t.Parallel()
	cases := []struct {
		n                                      int
		staff, indirect, delivery, other, time [2]string
		total, due                             [2]string
		previous, art69                        string
		exact, floored, residual               string
	}{
		{1, [2]string{"10000.00", "10000.00"}, [2]string{"1500.00", "1500.00"}, [2]string{"20000.00", "20000.00"},
			[2]string{"1234.56", "1234.56"}, [2]string{"7345.67", "7345.67"},
			[2]string{"40080.23", "40080.23"}, [2]string{"25765.86", "25765.86"}, "0", "32734.56",
			"25765.862143", "25765.860000", "0.002143"},
		{2, [2]string{"10000.01", "20000.01"}, [2]string{"1500.00", "3000.00"}, [2]string{"0", "20000.00"},
			[2]string{"-100.00", "1134.56"}, [2]string{"3000.50", "10346.17"},
			[2]string{"14400.51", "54480.74"}, [2]string{"9257.47", "35023.33"}, "25765.86", "44134.57",
			"35023.332857", "35023.330000", "0.002857"},
		{3, [2]string{"3333.33", "23333.34"}, [2]string{"499.99", "3499.99"}, [2]string{"12345.67", "32345.67"},
			[2]string{"0", "1134.56"}, [2]string{"1999.99", "12346.16"},
			[2]string{"18178.98", "72659.72"}, [2]string{"11686.49", "46709.82"}, "35023.33", "60313.56",
			"46709.820000", "46709.820000", "0.000000"},
	}
	for _, c := range cases {
		t.Run(threeQuarters[c.n-1].Code, func(t *testing.T) {
			t.Parallel()
			in := baseInput(threeQuarters[:c.n]...)
			f := compute(t, in)
			if f.Period != threeQuarters[c.n-1].Code || f.ClaimNumber != c.n {
				t.Errorf("claim %s number %d, want %s number %d", f.Period, f.ClaimNumber, threeQuarters[c.n-1].Code, c.n)
			}
			pair(t, "staff", f.Heading("staff"), c.staff[0], c.staff[1])
			pair(t, "indirect", f.Heading("indirect"), c.indirect[0], c.indirect[1])
			pair(t, "delivery", f.Heading("delivery"), c.delivery[0], c.delivery[1])
			pair(t, "other", f.Heading("other"), c.other[0], c.other[1])
			pair(t, "officer_time", f.Heading("officer_time"), c.time[0], c.time[1])
			pair(t, "total eligible", f.TotalEligible, c.total[0], c.total[1])
			pair(t, "ESF due", f.ESFDue, c.due[0], c.due[1])
			eq(t, "previous due", f.PreviousDue, c.previous)
			eq(t, "Art 69 cap", f.Art69Cap, c.art69)
			if f.Rounding != (Rounding{c.exact, c.floored, c.residual}) {
				t.Errorf("rounding = %+v, want %s %s %s", f.Rounding, c.exact, c.floored, c.residual)
			}
			if got := findingIDs(f, SeverityBlock); len(got) != 0 {
				t.Errorf("blocking findings %v: %+v", got, f.Findings)
			}
			if f.CapApplied != "" {
				t.Errorf("cap applied %q, want none", f.CapApplied)
			}
		})
	}

	t.Run("FlatRateWorking", func(t *testing.T) {
		t.Parallel()
		f := compute(t, baseInput(threeQuarters...))
		w := f.FlatRate
		if w.Kind != programme.FlatIndirect {
			t.Errorf("kind %s", w.Kind)
		}
		eq(t, "percent", w.Percent, "15")
		eq(t, "base", w.Base, "3333.33")
		if !w.Exact.Equal(dec("499.9995")) {
			t.Errorf("exact = %s, want 499.9995", w.Exact)
		}
		eq(t, "amount", w.Amount, "499.99")
	})

	t.Run("MatchAgainstProRataTarget", func(t *testing.T) {
		t.Parallel()
		in := baseInput(threeQuarters...)
		setTarget(&in, "GB-NWP", "36000.00") // pro rata 3/12 = 9000.00; cum 9000.50: +0.01%
		setTarget(&in, "GB-MON", "8000.00")  // pro rata 2000.00; cum 999.99: −50.00%
		setTarget(&in, "GB-CRF", "10000.00") // pro rata 2500.00; cum 2345.67: −6.17%
		f := compute(t, in)
		if len(f.Match) != 10 {
			t.Fatalf("%d authorities, want all 10", len(f.Match))
		}
		byCode := map[string]AuthorityMatch{}
		for _, x := range f.Match {
			byCode[x.Code] = x
		}
		want := []struct{ code, period, cum, prorata, variance string }{
			{"GB-NWP", "1000.00", "9000.50", "9000.00", "0.01"},
			{"GB-MON", "999.99", "999.99", "2000.00", "-50.00"},
			{"GB-CRF", "0", "2345.67", "2500.00", "-6.17"},
			{"GB-TOF", "0", "0", "0", "0"},
		}
		for _, w := range want {
			x := byCode[w.code]
			eq(t, w.code+" period", x.Period, w.period)
			eq(t, w.code+" cumulative", x.Cumulative, w.cum)
			eq(t, w.code+" pro rata", x.ProRata, w.prorata)
			eq(t, w.code+" variance", x.VariancePct, w.variance)
		}
		var c6 []string
		for _, x := range f.Findings {
			if x.ID == "C6" {
				if x.Severity != SeverityWarn {
					t.Errorf("C6 severity %s", x.Severity)
				}
				c6 = append(c6, x.Message)
			}
		}
		// Its amounts are written for people to read, in pounds with thousands separators.
		if len(c6) != 1 || !strings.Contains(c6[0], "GB-MON") ||
			!strings.Contains(c6[0], "is £999.99, £1,000.01 short of its pro-rata target of £2,000.00 (-50.00%") {
			t.Errorf("C6 findings %q, want one about GB-MON, its amounts in pounds", c6)
		}
	})
}

func TestComputeCases(t *testing.T) {
	t.Parallel()
	q := func(code string, h map[string]decimal.Decimal, inkind ...string) PeriodSums {
		return period(code, h, inkind...)
	}
	cases := []struct {
		name    string
		in      func() Input
		check   func(t *testing.T, f Figures)
		blocks  []string
		warns   []string
		infos   []string
		wantErr bool
	}{
		{
			name: "NilClaimIsAnOrdinaryClaim",
			in:   func() Input { return baseInput(q("2021Q1", nil)) },
			check: func(t *testing.T, f Figures) {
				pair(t, "total", f.TotalEligible, "0", "0")
				pair(t, "ESF due", f.ESFDue, "0", "0")
				if len(f.Headings) != 5 || len(f.Match) != 10 {
					t.Errorf("%d headings, %d authorities", len(f.Headings), len(f.Match))
				}
				if f.Rounding.Residual != "0.000000" {
					t.Errorf("residual %s", f.Rounding.Residual)
				}
			},
		},
		{
			name: "AwardCap",
			in: func() Input {
				in := baseInput(q("2021Q1", m("delivery", "1000.00")), q("2021Q2", m("delivery", "1000.00")))
				in.Award = dec("1000.00")
				return in
			},
			check: func(t *testing.T, f Figures) {
				// Q1: floor(1000 × 9/14) = 642.85; Q2: floor(2000 × 9/14) = 1285.71 → capped at 1000.00
				eq(t, "share", f.ShareAtRate, "1285.71")
				pair(t, "ESF due", f.ESFDue, "357.15", "1000.00")
				eq(t, "previous", f.PreviousDue, "642.85")
				if f.CapApplied != "award" {
					t.Errorf("cap %q", f.CapApplied)
				}
			},
			warns: []string{"C5"},
		},
		{
			name: "AwardCapBindsBeforeThisClaim",
			in: func() Input {
				in := baseInput(q("2021Q1", m("delivery", "2000.00")), q("2021Q2", m("delivery", "500.00")))
				in.Award = dec("1000.00")
				return in
			},
			check: func(t *testing.T, f Figures) {
				pair(t, "ESF due", f.ESFDue, "0", "1000.00")
				eq(t, "previous", f.PreviousDue, "1000.00")
			},
			warns: []string{"C5"},
		},
		{
			name: "Art69WarnsOnInterimClaims",
			in: func() Input {
				return baseInput(q("2021Q1", m("delivery", "100.00"), "GB-NWP", "1000.00"))
			},
			check: func(t *testing.T, f Figures) {
				// 1100 × 9/14 = 707.142857… → 707.14 > 100.00 cash: warned, not capped.
				eq(t, "share", f.ShareAtRate, "707.14")
				eq(t, "art69 cap", f.Art69Cap, "100.00")
				pair(t, "ESF due", f.ESFDue, "707.14", "707.14")
			},
			warns: []string{"C4"},
		},
		{
			name: "Art69CapsAndBlocksTheFinalClaim",
			in: func() Input {
				in := baseInput(q("2021Q1", m("delivery", "100.00")), q("2021Q2", m("staff", "100.00"), "GB-NWP", "1000.00"))
				in.Final, in.Art69Enforced = true, true
				return in
			},
			check: func(t *testing.T, f Figures) {
				// C_total = 100 + 100 + 15 + 1000 = 1215 → 781.07; cap 100 + 100 + 15 = 215.00.
				eq(t, "share", f.ShareAtRate, "781.07")
				eq(t, "art69 cap", f.Art69Cap, "215.00")
				pair(t, "ESF due", f.ESFDue, "150.72", "215.00") // 215.00 − floor(100 × 9/14)
				if f.CapApplied != "art69" || !f.Art69Enforced || !f.Final {
					t.Errorf("cap %q enforced %v final %v", f.CapApplied, f.Art69Enforced, f.Final)
				}
				// The history caps only the final claim: the interim claim before was not.
				if h := f.History; len(h) != 2 || h[0].CumDue.StringFixed(2) != "64.28" || h[0].Due.StringFixed(2) != "64.28" ||
					h[1].CumDue.StringFixed(2) != "215.00" || h[1].Due.StringFixed(2) != "150.72" || h[1].Indirect.StringFixed(2) != "15.00" {
					t.Errorf("history %+v", h)
				}
			},
			blocks: []string{"C4"},
		},
		{
			name: "Art69NotBreachedOnTheFinalClaim",
			in: func() Input {
				in := baseInput(q("2021Q1", m("delivery", "1000.00"), "GB-NWP", "100.00"))
				in.Final, in.Art69Enforced = true, true
				return in
			},
			check: func(t *testing.T, f Figures) {
				pair(t, "ESF due", f.ESFDue, "707.14", "707.14")
			},
		},
		{
			// Art 69 limits the ESF claimed, which the award caps first: a final claim whose
			// share at the rate is above both the award and the cash, but whose cash covers the
			// award, complies.
			name: "Art69NotBreachedWhenTheAwardCaps",
			in: func() Input {
				in := baseInput(q("2021Q1", m("delivery", "600.00"), "GB-NWP", "1000.00"))
				in.Final, in.Art69Enforced = true, true
				in.Award = decimal.RequireFromString("500.00")
				return in
			},
			check: func(t *testing.T, f Figures) {
				// C_total 1600.00 → 1028.57 at the rate, capped at the award 500.00 ≤ cash 600.00.
				eq(t, "share", f.ShareAtRate, "1028.57")
				eq(t, "art69 cap", f.Art69Cap, "600.00")
				pair(t, "ESF due", f.ESFDue, "500.00", "500.00")
				if f.CapApplied != "award" {
					t.Errorf("cap %q, want award", f.CapApplied)
				}
				if h := f.History; len(h) != 1 || h[0].CumDue.StringFixed(2) != "500.00" || h[0].Cumulative.StringFixed(2) != "1600.00" {
					t.Errorf("history %+v", h)
				}
			},
			warns: []string{"C5"},
		},
		{
			name: "DisallowanceMakesTheNextClaimNegative",
			in: func() Input {
				// Q1 claimed 14000 → 9000.00; WEFO disallowed 1400.00 of it, adjusted in Q2.
				return baseInput(q("2021Q1", m("delivery", "14000.00")), q("2021Q2", m("delivery", "-1400.00")))
			},
			check: func(t *testing.T, f Figures) {
				pair(t, "total", f.TotalEligible, "-1400.00", "12600.00")
				pair(t, "ESF due", f.ESFDue, "-900.00", "8100.00")
			},
		},
		{
			name: "NegativeCumulativeTotalFloorsDown",
			in: func() Input {
				return baseInput(q("2021Q1", m("other", "-0.01")))
			},
			check: func(t *testing.T, f Figures) {
				// −0.01 × 9/14 = −0.006428… → floor −0.01; residual 0.003571…
				pair(t, "ESF due", f.ESFDue, "-0.01", "-0.01")
				if f.Rounding != (Rounding{"-0.006429", "-0.010000", "0.003571"}) {
					t.Errorf("rounding %+v", f.Rounding)
				}
			},
		},
		{
			name: "NegativeStaffTruncatesTowardZero",
			in: func() Input {
				return baseInput(q("2021Q1", m("staff", "-33.33")))
			},
			check: func(t *testing.T, f Figures) {
				pair(t, "indirect", f.Heading("indirect"), "-4.99", "-4.99") // −4.9995 toward zero
			},
			warns: []string{"C4"}, // share −24.64 > cash + indirect −38.32
		},
		{
			name: "NoFlatRate",
			in: func() Input {
				in := baseInput(q("2021Q1", m("staff", "1000.00")))
				in.FlatRate = programme.FlatRate{Kind: programme.FlatNone}
				return in
			},
			check: func(t *testing.T, f Figures) {
				pair(t, "indirect", f.Heading("indirect"), "0", "0")
				pair(t, "total", f.TotalEligible, "1000.00", "1000.00")
			},
		},
		{
			name: "FortyPercentOtherCosts",
			in: func() Input {
				in := baseInput(q("2021Q1", m("staff", "1000.01")))
				in.FlatRate = programme.FlatRate{Kind: programme.FlatOther, Percent: dec("40")}
				return in
			},
			check: func(t *testing.T, f Figures) {
				pair(t, "indirect", f.Heading("indirect"), "400.00", "400.00") // 400.004
				eq(t, "art69 cap", f.Art69Cap, "1400.01")
			},
		},
		{
			name: "InKindMismatchBlocks",
			in: func() Input {
				in := baseInput(PeriodSums{Code: "2021Q1", InKind: m("GB-NWP", "100.00"), Match: m("GB-NWP", "99.99")})
				in.Facts.InKindMismatch = []int64{42}
				return in
			},
			check: func(t *testing.T, f Figures) {
				for _, x := range f.Findings {
					if x.ID == "C1" && (!slices.Equal(x.Entries, []int64{42}) || !strings.Contains(x.Message, "GB-NWP")) {
						t.Errorf("C1 %+v", x)
					}
				}
				// The match shown is the match income.
				eq(t, "match", f.Match[6].Period, "99.99")
			},
			blocks: []string{"C1"},
			warns:  []string{"C4"},
		},
		{
			name: "TrialBalanceReconciles",
			in: func() Input {
				in := baseInput(q("2021Q1", m("staff", "10.00")), q("2021Q2", m("staff", "5.00"), "GB-NWP", "1.00"))
				in.Facts.TrialBalance = m("exp:staff", "15.00", "inkind:GB-NWP", "1.00", "match:GB-NWP", "-1.00", "cash", "-15.00")
				in.Facts.HeadingAccounts = map[string][]string{"staff": {"exp:staff"}, "officer_time": {"inkind:GB-NWP", "inkind:GB-CRF"}}
				return in
			},
		},
		{
			name: "TrialBalanceNotZeroBlocks",
			in: func() Input {
				in := baseInput(q("2021Q1", m("staff", "10.00")))
				in.Facts.TrialBalance = m("exp:staff", "10.00", "cash", "-9.99")
				return in
			},
			blocks: []string{"C2"},
		},
		{
			name: "TrialBalanceDisagreesWithClaimBlocks",
			in: func() Input {
				in := baseInput(q("2021Q1", m("staff", "10.00")))
				in.Facts.TrialBalance = m("exp:staff", "11.00", "cash", "-11.00")
				in.Facts.HeadingAccounts = map[string][]string{"staff": {"exp:staff"}}
				return in
			},
			blocks: []string{"C2"},
		},
		{
			name: "TransactionListDisagreesBlocks",
			in: func() Input {
				in := baseInput(q("2021Q1", m("delivery", "100.00")))
				in.Facts.Lines.Totals["delivery"] = dec("99.00")
				return in
			},
			blocks: []string{"C3"},
		},
		{
			name: "NoLineDetailIsReported",
			in: func() Input {
				in := baseInput(q("2021Q1", nil))
				in.Facts.Lines = nil
				return in
			},
			infos: []string{"C3"},
		},
		{
			name: "LateItemsAreInformation",
			in: func() Input {
				in := baseInput(q("2021Q1", nil), q("2021Q2", m("other", "5.00")))
				in.Facts.Late, in.Facts.LateCount = []int64{7, 9}, 2
				return in
			},
			check: func(t *testing.T, f Figures) {
				if f.LateItems != 2 {
					t.Errorf("late items %d", f.LateItems)
				}
			},
			infos: []string{"C7"},
		},
		{
			name: "MissingEvidenceAndApproverBlock",
			in: func() Input {
				in := baseInput(q("2021Q1", nil))
				in.Facts.Lines.MissingEvidence = []int64{3}
				in.Facts.Lines.MissingApprover = []int64{4, 5}
				in.Facts.Lines.Unlined = []int64{6}
				return in
			},
			blocks: []string{"C8", "C8", "C8"},
		},
		{
			name: "MatchVarianceBoundary",
			in: func() Input {
				// Pro rata 1/12 of 12000 = 1000.00: 1150.00 is +15.00% (no warning), 849.99 is −15.001%.
				in := baseInput(q("2021Q1", nil, "GB-NWP", "1150.00", "GB-CRF", "849.99", "GB-MON", "850.00"))
				setTarget(&in, "GB-NWP", "12000.00")
				setTarget(&in, "GB-CRF", "12000.00")
				setTarget(&in, "GB-MON", "12000.00")
				in.Facts.Lines = linesOf(&in)
				return in
			},
			check: func(t *testing.T, f Figures) {
				for _, x := range f.Findings {
					if x.ID == "C6" && !strings.Contains(x.Message, "GB-CRF") {
						t.Errorf("unexpected %+v", x)
					}
				}
			},
			warns: []string{"C4", "C6"},
		},
		{
			name: "InvalidRate",
			in: func() Input {
				in := baseInput(q("2021Q1", nil))
				in.Rate = programme.Rate{}
				return in
			},
			wantErr: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, err := Compute(c.in())
			if c.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.check != nil {
				c.check(t, f)
			}
			for sev, want := range map[string][]string{SeverityBlock: c.blocks, SeverityWarn: c.warns, SeverityInfo: c.infos} {
				if got := findingIDs(f, sev); !slices.Equal(got, want) {
					t.Errorf("%s findings %v, want %v: %+v", sev, got, want, f.Findings)
				}
			}
			// Invariants of every claim.
			sum := decimal.Zero
			for _, h := range f.Headings {
				sum = sum.Add(h.Cumulative)
			}
			if !sum.Equal(f.TotalEligible.Cumulative) {
				t.Errorf("headings add up to %s, total %s", sum, f.TotalEligible.Cumulative)
			}
			if !f.ESFDue.Period.Equal(f.ESFDue.Cumulative.Sub(f.PreviousDue)) {
				t.Errorf("esf_due(p) %s ≠ cum_due(p) %s − cum_due(p−1) %s", f.ESFDue.Period, f.ESFDue.Cumulative, f.PreviousDue)
			}
		})
	}
}

// floorShare is floor(total × 9/14) to the penny, computed on integer pence, independently of
// programme.Rate.
func floorShare(total decimal.Decimal) decimal.Decimal {
	pence := total.Shift(2).BigInt()
	q := new(big.Int).Mul(pence, big.NewInt(9))
	q.Div(q, big.NewInt(14)) // Euclidean: floor for a positive divisor
	return decimal.NewFromBigInt(q, -2)
}

// TestComputeProperty checks R9.3c over twelve quarters of random data, credit notes and
// disallowances included: the cumulative ESF due always equals floor(cumulative total × 9/14)
// capped at the award, the claims' ESF due add up to it, and the residual stays under a penny.
func TestComputeProperty(t *testing.T) {
	t.Parallel()
	prog := programme.Default()
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 14))
		penny := func(max int64) decimal.Decimal { return decimal.New(rng.Int64N(max*100), -2) }
		award := prog.Award
		if seed%3 == 0 {
			award = penny(400000) // small enough to bind sometimes
		}
		var ps []PeriodSums
		cumTotal := decimal.Zero
		claimed := decimal.Zero
		for qn := 1; qn <= 12; qn++ {
			h := map[string]decimal.Decimal{
				"staff": penny(60000), "delivery": penny(200000), "other": penny(20000),
			}
			if rng.IntN(4) == 0 { // a credit note or a disallowance adjustment
				h["other"] = h["other"].Sub(penny(40000))
			}
			if rng.IntN(6) == 0 {
				h["staff"] = h["staff"].Neg()
			}
			inkind := map[string]decimal.Decimal{}
			for _, a := range prog.Authorities {
				if rng.IntN(3) > 0 {
					inkind[a.Code] = penny(20000)
				}
			}
			ps = append(ps, PeriodSums{Code: fmt.Sprintf("Q%d", qn), Headings: h, InKind: inkind, Match: inkind})

			// The expected figures, from the formulas, computed here independently.
			total := h["staff"].Add(h["delivery"]).Add(h["other"]).Add(h["staff"].Mul(dec("0.15")).Truncate(2))
			for _, v := range inkind {
				total = total.Add(v)
			}
			cumTotal = cumTotal.Add(total)
			want := decimal.Min(floorShare(cumTotal), award)

			in := baseInput(ps...)
			in.Award = award
			f, err := Compute(in)
			if err != nil {
				t.Fatal(err)
			}
			if !f.TotalEligible.Cumulative.Equal(cumTotal) || !f.TotalEligible.Period.Equal(total) {
				t.Fatalf("seed %d Q%d: total %s/%s, want %s/%s", seed, qn, f.TotalEligible.Period, f.TotalEligible.Cumulative, total, cumTotal)
			}
			if !f.ESFDue.Cumulative.Equal(want) {
				t.Fatalf("seed %d Q%d: cum_due %s, want floor(%s × 9/14) capped at %s = %s", seed, qn, f.ESFDue.Cumulative, cumTotal, award, want)
			}
			claimed = claimed.Add(f.ESFDue.Period)
			if !claimed.Equal(f.ESFDue.Cumulative) {
				t.Fatalf("seed %d Q%d: the claims' ESF due add up to %s, cum_due is %s", seed, qn, claimed, f.ESFDue.Cumulative)
			}
			res := dec(f.Rounding.Residual)
			if res.IsNegative() || !res.LessThan(dec("0.01")) {
				t.Fatalf("seed %d Q%d: residual %s", seed, qn, f.Rounding.Residual)
			}
		}
	}
}

func TestWithin(t *testing.T) {
	d := decimal.RequireFromString
	for _, c := range []struct {
		amount, limit string
		want          bool
	}{
		{"0", "100.00", true}, {"100.00", "100.00", true}, {"100.01", "100.00", false}, {"-0.01", "100.00", false},
		{"0", "-405.00", true}, {"-405.00", "-405.00", true}, {"-405.01", "-405.00", false}, {"0.01", "-405.00", false},
		{"0", "0", true}, {"0.01", "0", false},
	} {
		if got := within(d(c.amount), d(c.limit)); got != c.want {
			t.Errorf("within(%s, %s) = %v, want %v", c.amount, c.limit, got, c.want)
		}
	}
}

// TestComputeHistory: the history lists every claim to this one, whose cumulative totals add
// its period totals up, whose ESF due are the differences of cum_due, and whose last two lines
// are this claim's cum_due(p) and cum_due(p−1) (R9.3c), flat rate and all.
func TestComputeHistory(t *testing.T) {
	t.Parallel()
	f := compute(t, baseInput(threeQuarters...))
	if len(f.History) != len(threeQuarters) {
		t.Fatalf("history of %d claims, want %d", len(f.History), len(threeQuarters))
	}
	var cum, due, indirect decimal.Decimal
	for i, h := range f.History {
		cum, due, indirect = cum.Add(h.Total), due.Add(h.Due), indirect.Add(h.Indirect)
		if h.Period != threeQuarters[i].Code || !h.Cumulative.Equal(cum) || !h.CumDue.Equal(due) ||
			!h.Total.Equal(h.Cash.Add(h.Indirect).Add(h.InKind)) {
			t.Errorf("history line %d: %+v (running total %s, due %s)", i, h, cum, due)
		}
	}
	last, prev := f.History[len(f.History)-1], f.History[len(f.History)-2]
	if !last.CumDue.Equal(f.ESFDue.Cumulative) || !last.Due.Equal(f.ESFDue.Period) || !prev.CumDue.Equal(f.PreviousDue) ||
		!last.Total.Equal(f.TotalEligible.Period) || !cum.Equal(f.TotalEligible.Cumulative) ||
		!indirect.Equal(f.Heading(programme.HeadingIndirect).Cumulative) {
		t.Errorf("history's last lines %+v, %+v against the figures %+v", prev, last, f)
	}
}

// TestMatchBeyondIsExact: C6 compares the variance exactly, and the match carries that result:
// 15.0032% shows as 15.00% to two places, yet is beyond ±15%.
func TestMatchBeyondIsExact(t *testing.T) {
	t.Parallel()
	in := baseInput(period("2021Q1", nil, "GB-NWP", "2875.08"))
	setTarget(&in, "GB-NWP", "30000.00") // claim 1 of 12: pro rata 2500.00
	f := compute(t, in)
	for _, m := range f.Match {
		if m.Code != "GB-NWP" {
			continue
		}
		if m.VariancePct.StringFixed(2) != "15.00" || !m.Beyond {
			t.Errorf("GB-NWP: variance %s, beyond %v; want 15.00 shown and beyond", m.VariancePct, m.Beyond)
		}
	}
	var c6 bool
	for _, x := range f.Findings {
		c6 = c6 || x.ID == "C6" && strings.Contains(x.Message, "GB-NWP")
	}
	if !c6 {
		t.Error("no C6 finding for GB-NWP")
	}
}
