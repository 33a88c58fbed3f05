package programme

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/London must load even where the host has no zoneinfo

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// problemsOf flattens an error joined by Validate or Load into its apperr errors, failing the
// test on any error in the tree that is not one.
func problemsOf(tb testing.TB, err error) []*apperr.Error {
	tb.Helper()
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*apperr.Error
		for _, e := range j.Unwrap() {
			out = append(out, problemsOf(tb, e)...)
		}
		return out
	}
	var e *apperr.Error
	if !errors.As(err, &e) {
		tb.Fatalf("error %v (%T) is not an *apperr.Error", err, err)
	}
	return []*apperr.Error{e}
}

// requireProblems checks that err holds exactly one invalid P1 problem per wanted field, in
// order, each message starting with its field's JSON path (the contract of Validate).
func requireProblems(tb testing.TB, err error, fields ...string) {
	tb.Helper()
	ps := problemsOf(tb, err)
	if len(ps) != len(fields) {
		tb.Fatalf("got %d problems, want %d (%q):\n%v", len(ps), len(fields), fields, err)
	}
	for i, p := range ps {
		if p.Code != apperr.Invalid || p.Rule != RuleDefinition {
			tb.Errorf("problem %d: code %q rule %q, want %q %q", i, p.Code, p.Rule, apperr.Invalid, RuleDefinition)
		}
		if !strings.HasPrefix(p.Message, fields[i]+": ") {
			tb.Errorf("problem %d: message %q does not start with field %q", i, p.Message, fields[i])
		}
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	p := Default()
	if err := p.Validate(); err != nil {
		t.Fatalf("default does not validate: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"operation id", p.OperationID, "infuse"},
		{"lead", p.Lead, "GB-MON"},
		{"award", p.Award.StringFixed(2), "3600000.00"},
		{"match total", p.MatchTotal.StringFixed(2), "2000000.00"},
		{"total eligible", p.TotalEligible().StringFixed(2), "5600000.00"},
		{"rate", p.Rate, Rate{9, 14}},
		{"window start", p.WindowStart, Date(2021, time.January, 1)},
		{"window end", p.WindowEnd, Date(2023, time.December, 31)},
		{"frequency", p.Frequency, Quarterly},
		{"flat rate kind", p.FlatRate.Kind, FlatIndirect},
		{"flat rate percent", p.FlatRate.Percent.String(), "15"},
		{"hours basis", p.HoursBasis, 1720},
		{"daily max", p.DailyMaxHours.String(), "12"},
		{"timezone", p.Timezone, "Europe/London"},
		{"retention", p.RetentionUntil == nil, true},
		{"areas", len(p.Areas), 2},
		{"authorities", len(p.Authorities), 10},
		{"headings", len(p.Headings), 5},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	// The award is exactly the rate of the total eligible cost: 9/14 of 5.6m is 3.6m.
	if got := p.Rate.FloorPenny(p.TotalEligible()); !got.Equal(p.Award) {
		t.Errorf("rate × total eligible = %s, want the award %s", got, p.Award)
	}
	for _, a := range p.Areas {
		if a.Rate != (Rate{9, 14}) {
			t.Errorf("area %s rate = %s, want 9/14", a.Code, a.Rate)
		}
	}
}

func TestDefaultReturnsIndependentCopies(t *testing.T) {
	t.Parallel()
	a := Default()
	a.Authorities[0].NameEN = "changed"
	a.Headings[0].Kind = KindFlat
	a.Areas[0].Rate = Rate{1, 2}
	b := Default()
	if b.Authorities[0].NameEN != "Blaenau Gwent" || b.Headings[0].Kind != KindCash || b.Areas[0].Rate != (Rate{9, 14}) {
		t.Fatal("changing one Default() changed another")
	}
	if a.Fingerprint() == b.Fingerprint() {
		t.Error("a changed definition has the default's fingerprint")
	}
}

func TestDefaultAuthorities(t *testing.T) {
	t.Parallel()
	// Domain §1, in the table's order; the Welsh names are compared byte for byte.
	want := []Authority{
		{Code: "GB-BGW", NameEN: "Blaenau Gwent", NameCY: "Blaenau Gwent", Area: "WWV"},
		{Code: "GB-BGE", NameEN: "Bridgend", NameCY: "Pen-y-bont ar Ogwr", Area: "WWV"},
		{Code: "GB-CAY", NameEN: "Caerphilly", NameCY: "Caerffili", Area: "WWV"},
		{Code: "GB-CRF", NameEN: "Cardiff", NameCY: "Caerdydd", Area: "EW"},
		{Code: "GB-MTY", NameEN: "Merthyr Tydfil", NameCY: "Merthyr Tudful", Area: "WWV"},
		{Code: "GB-MON", NameEN: "Monmouthshire", NameCY: "Sir Fynwy", Area: "EW"},
		{Code: "GB-NWP", NameEN: "Newport", NameCY: "Casnewydd", Area: "EW"},
		{Code: "GB-RCT", NameEN: "Rhondda Cynon Taf", NameCY: "Rhondda Cynon Taf", Area: "WWV"},
		{Code: "GB-TOF", NameEN: "Torfaen", NameCY: "Tor-faen", Area: "WWV"},
		{Code: "GB-VGL", NameEN: "Vale of Glamorgan", NameCY: "Bro Morgannwg", Area: "EW"},
	}
	p := Default()
	if len(p.Authorities) != len(want) {
		t.Fatalf("%d authorities, want %d", len(p.Authorities), len(want))
	}
	for i, w := range want {
		t.Run(w.Code, func(t *testing.T) {
			t.Parallel()
			got := p.Authorities[i]
			if got.Code != w.Code || got.NameEN != w.NameEN || got.NameCY != w.NameCY || got.Area != w.Area {
				t.Errorf("authority %d = %+v, want %+v", i, got, w)
			}
			if !got.MatchTarget.Equal(dec("200000.00")) {
				t.Errorf("match target = %s, want 200000.00", got.MatchTarget)
			}
			byCode, ok := p.Authority(w.Code)
			if !ok || byCode.NameCY != w.NameCY {
				t.Errorf("Authority(%q) = %+v, %v", w.Code, byCode, ok)
			}
			if r := p.AreaRate(w.Code); r != (Rate{9, 14}) {
				t.Errorf("AreaRate(%q) = %s, want 9/14", w.Code, r)
			}
		})
	}
}

func TestLookupsOfUnknownCodes(t *testing.T) {
	t.Parallel()
	p := Default()
	if _, ok := p.Authority("GB-XXX"); ok {
		t.Error("Authority found an unknown code")
	}
	if _, ok := p.Heading("venues"); ok {
		t.Error("Heading found an unknown code")
	}
	if _, ok := p.Area("NW"); ok {
		t.Error("Area found an unknown code")
	}
	if r := p.AreaRate("GB-XXX"); r.Valid() {
		t.Errorf("AreaRate of an unknown authority = %s, want an invalid rate", r)
	}
	// A different rate per area is the point of modelling areas.
	p.Areas[1].Rate = Rate{1, 2} // EW
	if r := p.AreaRate("GB-CRF"); r != (Rate{1, 2}) {
		t.Errorf("AreaRate(GB-CRF) = %s, want EW's 1/2", r)
	}
	if r := p.AreaRate("GB-RCT"); r != (Rate{9, 14}) {
		t.Errorf("AreaRate(GB-RCT) = %s, want WWV's 9/14", r)
	}
}

func TestPeriodsQuarterly(t *testing.T) {
	t.Parallel()
	want := []Period{
		{"2021Q1", 1, Date(2021, 1, 1), Date(2021, 3, 31)},
		{"2021Q2", 2, Date(2021, 4, 1), Date(2021, 6, 30)},
		{"2021Q3", 3, Date(2021, 7, 1), Date(2021, 9, 30)},
		{"2021Q4", 4, Date(2021, 10, 1), Date(2021, 12, 31)},
		{"2022Q1", 5, Date(2022, 1, 1), Date(2022, 3, 31)},
		{"2022Q2", 6, Date(2022, 4, 1), Date(2022, 6, 30)},
		{"2022Q3", 7, Date(2022, 7, 1), Date(2022, 9, 30)},
		{"2022Q4", 8, Date(2022, 10, 1), Date(2022, 12, 31)},
		{"2023Q1", 9, Date(2023, 1, 1), Date(2023, 3, 31)},
		{"2023Q2", 10, Date(2023, 4, 1), Date(2023, 6, 30)},
		{"2023Q3", 11, Date(2023, 7, 1), Date(2023, 9, 30)},
		{"2023Q4", 12, Date(2023, 10, 1), Date(2023, 12, 31)},
	}
	got := Default().Periods()
	if len(got) != len(want) {
		t.Fatalf("%d periods, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("period %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestPeriodsMonthly(t *testing.T) {
	t.Parallel()
	p := Default()
	p.Frequency = Monthly
	got := p.Periods()
	if len(got) != 36 {
		t.Fatalf("%d monthly periods, want 36", len(got))
	}
	tests := []struct {
		index int
		want  Period
	}{
		{0, Period{"2021-01", 1, Date(2021, 1, 1), Date(2021, 1, 31)}},
		{1, Period{"2021-02", 2, Date(2021, 2, 1), Date(2021, 2, 28)}},
		{13, Period{"2022-02", 14, Date(2022, 2, 1), Date(2022, 2, 28)}},
		{35, Period{"2023-12", 36, Date(2023, 12, 1), Date(2023, 12, 31)}},
	}
	for _, tt := range tests {
		if got[tt.index] != tt.want {
			t.Errorf("period %d = %+v, want %+v", tt.index, got[tt.index], tt.want)
		}
	}
	// The periods tile the window: each starts the day after the previous one ends.
	for i := 1; i < len(got); i++ {
		if !got[i].Start.Equal(got[i-1].End.AddDate(0, 0, 1)) {
			t.Errorf("gap or overlap between %s and %s", got[i-1].Code, got[i].Code)
		}
	}
}

func TestPeriodsCutToAWindowThatIsNotWholeQuarters(t *testing.T) {
	t.Parallel()
	p := Default()
	p.WindowStart = Date(2021, 2, 15)
	p.WindowEnd = Date(2021, 7, 10)
	want := []Period{
		{"2021Q1", 1, Date(2021, 2, 15), Date(2021, 3, 31)},
		{"2021Q2", 2, Date(2021, 4, 1), Date(2021, 6, 30)},
		{"2021Q3", 3, Date(2021, 7, 1), Date(2021, 7, 10)},
	}
	got := p.Periods()
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("period %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	p.WindowEnd = Date(2020, 1, 1)
	if got := p.Periods(); got != nil {
		t.Errorf("inverted window gave periods %+v", got)
	}
}

func TestPeriodOf(t *testing.T) {
	t.Parallel()
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		date   time.Time
		want   string // period code, "" when outside the window
		wantOK bool
	}{
		{"first day of the window", Date(2021, 1, 1), "2021Q1", true},
		{"last day of a quarter", Date(2021, 3, 31), "2021Q1", true},
		{"first day of a quarter", Date(2021, 4, 1), "2021Q2", true},
		{"leap day", Date(2024, 2, 29), "", false},
		{"last day of the window", Date(2023, 12, 31), "2023Q4", true},
		{"day before the window", Date(2020, 12, 31), "", false},
		{"day after the window", Date(2024, 1, 1), "", false},
		{"clock time ignored", time.Date(2021, 6, 30, 23, 59, 59, 0, time.UTC), "2021Q2", true},
		// Only the calendar date in the time's own zone counts: 00:30 BST on 1 July is 23:30 UTC
		// on 30 June, and it is still 1 July to the person who wrote it.
		{"date in its own zone", time.Date(2021, 7, 1, 0, 30, 0, 0, london), "2021Q3", true},
	}
	p := Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := p.PeriodOf(tt.date)
			if ok != tt.wantOK || got.Code != tt.want {
				t.Errorf("PeriodOf(%s) = %q, %v; want %q, %v", tt.date, got.Code, ok, tt.want, tt.wantOK)
			}
			if ok != p.InWindow(tt.date) {
				t.Errorf("InWindow(%s) = %v, disagrees with PeriodOf", tt.date, !ok)
			}
		})
	}
}

func TestPeriodByCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		freq   Frequency
		code   string
		wantOK bool
		start  time.Time
	}{
		{Quarterly, "2021Q3", true, Date(2021, 7, 1)},
		{Quarterly, "2023Q4", true, Date(2023, 10, 1)},
		{Quarterly, "2024Q1", false, time.Time{}},
		{Quarterly, "2021-07", false, time.Time{}},
		{Monthly, "2021-07", true, Date(2021, 7, 1)},
		{Monthly, "2021Q3", false, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.freq)+"/"+tt.code, func(t *testing.T) {
			t.Parallel()
			p := Default()
			p.Frequency = tt.freq
			got, ok := p.PeriodByCode(tt.code)
			if ok != tt.wantOK || !got.Start.Equal(tt.start) {
				t.Errorf("PeriodByCode(%q) = %+v, %v", tt.code, got, ok)
			}
		})
	}
}

func TestFloorPenny(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		rate   Rate
		amount string
		want   string
	}{
		{"100 at 9/14 is 64.285714…", Rate{9, 14}, "100.00", "64.28"},
		{"the whole operation", Rate{9, 14}, "5600000.00", "3600000.00"},
		{"exact result kept", Rate{9, 14}, "14.00", "9.00"},
		{"one penny", Rate{9, 14}, "0.01", "0.00"},
		{"just under a penny more", Rate{9, 14}, "1.57", "1.00"}, // 1.0092857…
		{"zero", Rate{9, 14}, "0", "0.00"},
		{"rate one", Rate{1, 1}, "123.45", "123.45"},
		{"unreduced rate", Rate{18, 28}, "100.00", "64.28"},
		// Negative (a cumulative total after a disallowance): floor goes toward minus infinity,
		// so −64.285714… becomes −64.29, not −64.28 — ESF due is never overstated.
		{"negative floors toward minus infinity", Rate{9, 14}, "-100.00", "-64.29"},
		{"negative exact result kept", Rate{9, 14}, "-14.00", "-9.00"},
		{"negative penny", Rate{9, 14}, "-0.01", "-0.01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.rate.FloorPenny(dec(tt.amount))
			if got.StringFixed(2) != tt.want || got.Exponent() != -2 {
				t.Errorf("%s.FloorPenny(%s) = %s (exp %d), want %s", tt.rate, tt.amount, got, got.Exponent(), tt.want)
			}
			// Floor means: not above the exact share, and less than a penny below it.
			exact := tt.rate.Exact(dec(tt.amount))
			residual := exact.Sub(exact, got.Rat())
			if residual.Sign() < 0 || residual.Cmp(dec("0.01").Rat()) >= 0 {
				t.Errorf("residual %s not in [0, 0.01)", residual.FloatString(6))
			}
		})
	}
}

func TestRate(t *testing.T) {
	t.Parallel()
	r := Rate{9, 14}
	if r.String() != "9/14" {
		t.Errorf("String() = %q", r.String())
	}
	if got := r.Exact(dec("100.00")).FloatString(6); got != "64.285714" {
		t.Errorf("Exact(100) = %s", got)
	}
	if r.Rat().Cmp(dec("3.6").Div(dec("5.6")).Rat()) == 0 {
		t.Error("Rat should be exact, not equal to a 16-digit division")
	}
	b, err := json.Marshal(r)
	if err != nil || string(b) != `{"num":9,"den":14}` {
		t.Errorf("JSON = %s, %v", b, err)
	}
	tests := []struct {
		rate Rate
		want bool
	}{
		{Rate{9, 14}, true},
		{Rate{1, 1}, true},
		{Rate{0, 14}, false},
		{Rate{15, 14}, false},
		{Rate{9, 0}, false},
		{Rate{-9, -14}, false},
		{Rate{}, false},
	}
	for _, tt := range tests {
		if got := tt.rate.Valid(); got != tt.want {
			t.Errorf("%s.Valid() = %v, want %v", tt.rate, got, tt.want)
		}
	}
}

func TestFlatRateAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		flat  FlatRate
		staff string
		want  string
	}{
		{"15% truncates 185.1855", FlatRate{FlatIndirect, dec("15")}, "1234.57", "185.18"},
		{"15% of 6p is 0.9p", FlatRate{FlatIndirect, dec("15")}, "0.06", "0.00"},
		{"15% exact", FlatRate{FlatIndirect, dec("15")}, "1000.00", "150.00"},
		{"40% option", FlatRate{FlatOther, dec("40")}, "1234.57", "493.82"}, // 493.828
		{"fractional percent", FlatRate{FlatIndirect, dec("12.5")}, "0.99", "0.12"},
		{"none is zero", FlatRate{FlatNone, decimal.Zero}, "1234.57", "0.00"},
		{"unknown kind is zero", FlatRate{"bogus", dec("15")}, "1234.57", "0.00"},
		// R9.3b truncates toward zero, so a credit is −185.18, not −185.19.
		{"negative truncates toward zero", FlatRate{FlatIndirect, dec("15")}, "-1234.57", "-185.18"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.flat.Amount(dec(tt.staff)); got.StringFixed(2) != tt.want || !got.Equal(dec(tt.want)) {
				t.Errorf("Amount(%s) = %s, want %s", tt.staff, got, tt.want)
			}
		})
	}
}

func TestAcceptsLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind FlatRateKind
		want map[string]bool
	}{
		{FlatIndirect, map[string]bool{"staff": true, "indirect": false, "delivery": true, "other": true, "officer_time": true, "unknown": false}},
		{FlatNone, map[string]bool{"staff": true, "indirect": false, "delivery": true, "other": true, "officer_time": true, "unknown": false}},
		{FlatOther, map[string]bool{"staff": true, "indirect": false, "delivery": false, "other": false, "officer_time": true, "unknown": false}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			p := Default()
			p.FlatRate.Kind = tt.kind
			for heading, want := range tt.want {
				if got := p.AcceptsLines(heading); got != want {
					t.Errorf("AcceptsLines(%q) = %v, want %v", heading, got, want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(p *Programme)
		fields []string // fields named by the expected problems, in order
	}{
		{"default is valid", func(p *Programme) {}, nil},
		{"monthly is valid", func(p *Programme) { p.Frequency = Monthly }, nil},
		{"40% option is valid", func(p *Programme) { p.FlatRate = FlatRate{FlatOther, dec("40")} }, nil},
		{"no flat rate is valid", func(p *Programme) { p.FlatRate = FlatRate{FlatNone, decimal.Zero} }, nil},
		{"retention after the window is valid", func(p *Programme) { d := Date(2033, 12, 31); p.RetentionUntil = &d }, nil},
		{"one-day window is valid", func(p *Programme) { p.WindowEnd = p.WindowStart }, nil},

		{"operation id empty", func(p *Programme) { p.OperationID = "" }, []string{"operation_id"}},
		{"operation id upper case", func(p *Programme) { p.OperationID = "InFuSe" }, []string{"operation_id"}},
		{"operation id starts with digit", func(p *Programme) { p.OperationID = "1infuse" }, []string{"operation_id"}},
		{"operation id too long", func(p *Programme) { p.OperationID = "a" + strings.Repeat("b", 32) }, []string{"operation_id"}},
		{"operation id one character", func(p *Programme) { p.OperationID = "a" }, []string{"operation_id"}},
		{"name missing", func(p *Programme) { p.Name = "" }, []string{"name"}},
		{"Welsh name missing", func(p *Programme) { p.NameCY = "" }, []string{"name_cy"}},

		{"award zero", func(p *Programme) { p.Award = decimal.Zero }, []string{"award"}},
		{"award negative", func(p *Programme) { p.Award = dec("-1.00") }, []string{"award"}},
		{"award three decimals", func(p *Programme) { p.Award = dec("3600000.001") }, []string{"award"}},
		{"match zero", func(p *Programme) {
			p.MatchTotal = decimal.Zero
			for i := range p.Authorities {
				p.Authorities[i].MatchTarget = decimal.Zero
			}
		}, []string{"match_total"}},
		{"match three decimals", func(p *Programme) { p.MatchTotal = dec("2000000.001") }, []string{"match_total", "match_total"}},
		{"trailing zeros are not extra decimals", func(p *Programme) { p.Award = dec("3600000.000") }, nil},

		{"rate zero", func(p *Programme) { p.Rate = Rate{0, 14} }, []string{"rate"}},
		{"rate over one", func(p *Programme) { p.Rate = Rate{15, 14} }, []string{"rate"}},
		{"rate zero denominator", func(p *Programme) { p.Rate = Rate{9, 0} }, []string{"rate.den"}},
		{"rate negative denominator", func(p *Programme) { p.Rate = Rate{-9, -14} }, []string{"rate.den"}},

		{"no areas", func(p *Programme) { p.Areas = nil }, []string{"areas",
			"authorities[0].area", "authorities[1].area", "authorities[2].area", "authorities[3].area", "authorities[4].area",
			"authorities[5].area", "authorities[6].area", "authorities[7].area", "authorities[8].area", "authorities[9].area"}},
		{"area rate over one", func(p *Programme) { p.Areas[1].Rate = Rate{15, 14} }, []string{"areas[1].rate"}},
		{"area rate zero denominator", func(p *Programme) { p.Areas[0].Rate = Rate{} }, []string{"areas[0].rate.den"}},
		{"area code duplicated", func(p *Programme) { p.Areas[1].Code = "WWV" }, []string{"areas[1].code",
			"authorities[3].area", "authorities[5].area", "authorities[6].area", "authorities[9].area"}},
		{"area code empty", func(p *Programme) { p.Areas = append(p.Areas, Area{Name: "x", Rate: Rate{18, 28}}) }, []string{"areas[2].code"}},
		{"area rate differs from the programme's", func(p *Programme) { p.Areas[1].Rate = Rate{7, 10} }, []string{"areas[1].rate"}},
		{"area name missing", func(p *Programme) { p.Areas[0].Name = "" }, []string{"areas[0].name"}},

		{"no authorities", func(p *Programme) { p.Authorities = nil }, []string{"authorities", "lead"}},
		{"authority code not ISO", func(p *Programme) { p.Authorities[0].Code = "BGW" }, []string{"authorities[0].code"}},
		{"authority code lower case", func(p *Programme) { p.Authorities[0].Code = "GB-bgw" }, []string{"authorities[0].code"}},
		{"authority code duplicated", func(p *Programme) { p.Authorities[1].Code = "GB-BGW" }, []string{"authorities[1].code"}},
		{"authority English name missing", func(p *Programme) { p.Authorities[2].NameEN = "" }, []string{"authorities[2].name_en"}},
		{"authority Welsh name missing", func(p *Programme) { p.Authorities[2].NameCY = "" }, []string{"authorities[2].name_cy"}},
		{"authority area unknown", func(p *Programme) { p.Authorities[4].Area = "NW" }, []string{"authorities[4].area"}},
		{"authority target negative", func(p *Programme) {
			p.Authorities[0].MatchTarget = dec("-1.00")
			p.Authorities[1].MatchTarget = dec("400001.00")
		}, []string{"authorities[0].match_target"}},
		{"authority target three decimals", func(p *Programme) {
			p.Authorities[0].MatchTarget = dec("199999.995")
			p.Authorities[1].MatchTarget = dec("200000.005")
		}, []string{"authorities[0].match_target", "authorities[1].match_target"}},
		{"authority target zero is allowed", func(p *Programme) {
			p.Authorities[0].MatchTarget = decimal.Zero
			p.Authorities[1].MatchTarget = dec("400000.00")
		}, nil},
		{"targets do not add up", func(p *Programme) { p.Authorities[9].MatchTarget = dec("199999.99") }, []string{"match_total"}},
		{"lead not an authority", func(p *Programme) { p.Lead = "GB-ABC" }, []string{"lead"}},
		{"lead empty", func(p *Programme) { p.Lead = "" }, []string{"lead"}},

		{"window inverted", func(p *Programme) { p.WindowStart, p.WindowEnd = p.WindowEnd, p.WindowStart }, []string{"window_end"}},
		{"window start missing", func(p *Programme) { p.WindowStart = time.Time{} }, []string{"window_start"}},
		{"window end not midnight", func(p *Programme) { p.WindowEnd = p.WindowEnd.Add(time.Hour) }, []string{"window_end"}},
		{"window start in London time", func(p *Programme) {
			p.WindowStart = time.Date(2021, 7, 1, 0, 0, 0, 0, time.FixedZone("BST", 3600))
		}, []string{"window_start"}},
		{"retention inside the window", func(p *Programme) { d := Date(2022, 1, 1); p.RetentionUntil = &d }, []string{"retention_until"}},
		{"retention not midnight", func(p *Programme) { d := Date(2030, 1, 1).Add(time.Minute); p.RetentionUntil = &d }, []string{"retention_until"}},
		{"frequency unknown", func(p *Programme) { p.Frequency = "annual" }, []string{"frequency"}},
		{"frequency empty", func(p *Programme) { p.Frequency = "" }, []string{"frequency"}},

		{"flat rate kind unknown", func(p *Programme) { p.FlatRate.Kind = "lump" }, []string{"flat_rate.kind"}},
		{"flat rate over 100", func(p *Programme) { p.FlatRate.Percent = dec("100.01") }, []string{"flat_rate.percent"}},
		{"flat rate negative", func(p *Programme) { p.FlatRate.Percent = dec("-1") }, []string{"flat_rate.percent"}},
		{"flat rate none with percent", func(p *Programme) { p.FlatRate.Kind = FlatNone }, []string{"flat_rate.percent"}},

		{"heading missing", func(p *Programme) { p.Headings = p.Headings[:4] }, []string{"headings"}},
		{"heading extra", func(p *Programme) { p.Headings = append(p.Headings, Heading{"venues", "Venues", KindCash}) }, []string{"headings[5].code"}},
		{"heading duplicated", func(p *Programme) { p.Headings[4] = p.Headings[0] }, []string{"headings[4].code", "headings"}},
		{"heading of wrong kind", func(p *Programme) { p.Headings[1].Kind = KindCash }, []string{"headings[1].kind"}},
		{"in-kind heading as cash", func(p *Programme) { p.Headings[4].Kind = KindCash }, []string{"headings[4].kind"}},
		{"heading name missing", func(p *Programme) { p.Headings[2].Name = "" }, []string{"headings[2].name"}},

		{"hours basis zero", func(p *Programme) { p.HoursBasis = 0 }, []string{"hours_basis"}},
		{"daily max zero", func(p *Programme) { p.DailyMaxHours = decimal.Zero }, []string{"daily_max_hours"}},
		{"daily max over 24", func(p *Programme) { p.DailyMaxHours = dec("24.01") }, []string{"daily_max_hours"}},
		{"daily max 24 allowed", func(p *Programme) { p.DailyMaxHours = dec("24") }, nil},
		{"daily max three decimals", func(p *Programme) { p.DailyMaxHours = dec("7.125") }, []string{"daily_max_hours"}},
		{"timezone unknown", func(p *Programme) { p.Timezone = "Europe/Cardiff" }, []string{"timezone"}},
		{"timezone empty", func(p *Programme) { p.Timezone = "" }, []string{"timezone"}},
		{"timezone Local", func(p *Programme) { p.Timezone = "Local" }, []string{"timezone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Default()
			tt.change(p)
			requireProblems(t, p.Validate(), tt.fields...)
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	p := Default()
	p.OperationID = ""
	p.Award = decimal.Zero
	p.HoursBasis = -1
	p.Timezone = "Nowhere/Else"
	requireProblems(t, p.Validate(), "operation_id", "award", "hours_basis", "timezone")
}

func TestLoad(t *testing.T) {
	t.Parallel()
	valid := string(DefaultJSON())
	tests := []struct {
		name   string
		input  string
		fields []string // "" for a problem not about one field
	}{
		{"default file", valid, nil},
		{"unknown top-level field", strings.Replace(valid, `"lead":`, `"leader": "GB-MON", "lead":`, 1), []string{""}},
		{"unknown nested field", strings.Replace(valid, `"kind": "indirect"`, `"kind": "indirect", "cap": "1"`, 1), []string{""}},
		{"money as a JSON number", strings.Replace(valid, `"award": "3600000.00"`, `"award": 3600000.00`, 1), []string{"award"}},
		{"money with an exponent", strings.Replace(valid, `"award": "3600000.00"`, `"award": "3.6e6"`, 1), []string{"award"}},
		{"money with a separator", strings.Replace(valid, `"award": "3600000.00"`, `"award": "3,600,000.00"`, 1), []string{"award"}},
		{"money missing", strings.Replace(valid, `"award": "3600000.00",`, ``, 1), []string{"award"}},
		{"money with three decimals", strings.Replace(valid, `"award": "3600000.00"`, `"award": "3600000.005"`, 1), []string{"award"}},
		{"rate as a string", strings.Replace(valid, `"rate": {"num": 9, "den": 14}`, `"rate": "9/14"`, 1), []string{"rate"}},
		{"rate numerator not an integer", strings.Replace(valid, `"rate": {"num": 9, "den": 14}`, `"rate": {"num": 9.5, "den": 14}`, 1), []string{"rate.num"}},
		{"date that does not exist", strings.Replace(valid, `"2023-12-31"`, `"2023-02-30"`, 1), []string{"window_end"}},
		{"date with a time", strings.Replace(valid, `"2023-12-31"`, `"2023-12-31T00:00:00Z"`, 1), []string{"window_end"}},
		{"bad target", strings.Replace(valid, `"match_target": "200000.00"`, `"match_target": "lots"`, 1), []string{"authorities[0].match_target"}},
		{"bad retention date", strings.Replace(valid, `"timezone"`, `"retention_until": "2033-13-01", "timezone"`, 1), []string{"retention_until"}},
		{"validation runs after parsing", strings.Replace(valid, `"lead": "GB-MON"`, `"lead": "GB-XXX"`, 1), []string{"lead"}},
		{"trailing data", valid + `{}`, []string{""}},
		{"not JSON", `operation_id: infuse`, []string{""}},
		{"cut short", valid[:100], []string{""}},
		{"empty", ``, []string{""}},
		{"null", `null`, []string{"award", "match_total", "window_start", "window_end", "flat_rate.percent", "daily_max_hours"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Load(strings.NewReader(tt.input))
			if tt.fields == nil {
				if err != nil || p == nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if p != nil {
				t.Errorf("Load returned a programme with an error")
			}
			ps := problemsOf(t, err)
			if len(ps) != len(tt.fields) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(tt.fields), err)
			}
			for i, f := range tt.fields {
				if ps[i].Code != apperr.Invalid || ps[i].Rule != RuleDefinition {
					t.Errorf("problem %d: code %q rule %q", i, ps[i].Code, ps[i].Rule)
				}
				if f != "" && !strings.HasPrefix(ps[i].Message, f+": ") {
					t.Errorf("problem %d: message %q does not name %q", i, ps[i].Message, f)
				}
			}
		})
	}
}

func TestMarshalRoundTripAndFingerprint(t *testing.T) {
	t.Parallel()
	p := Default()
	fp := p.Fingerprint()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q is not hex SHA-256", fp)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"award": "3600000.00"`, `"window_end": "2023-12-31"`, `"percent": "15"`, `"match_target": "200000.00"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("marshalled definition lacks %s", want)
		}
	}
	q, err := Load(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("reloading the marshalled default: %v", err)
	}
	if q.Fingerprint() != fp {
		t.Error("round trip changed the fingerprint")
	}

	// The same definition written differently has the same fingerprint.
	restyled := strings.NewReplacer(
		`"percent": "15"`, `"percent": "15.00"`,
		`"award": "3600000.00"`, `"award": "3600000"`,
		`"daily_max_hours": "12"`, `"daily_max_hours": "12.0"`,
		"\n", "", "  ", "",
	).Replace(string(DefaultJSON()))
	r, err := Load(strings.NewReader(restyled))
	if err != nil {
		t.Fatalf("loading the restyled default: %v", err)
	}
	if r.Fingerprint() != fp {
		t.Error("restyling the file changed the fingerprint")
	}

	// Any change of substance changes it.
	changes := []func(p *Programme){
		func(p *Programme) { p.Rate = Rate{18, 28} },
		func(p *Programme) { p.Authorities[0].NameCY = "Blaenau  Gwent" },
		func(p *Programme) { d := Date(2033, 12, 31); p.RetentionUntil = &d },
		func(p *Programme) { p.FlatRate.Percent = dec("15.01") },
	}
	for i, change := range changes {
		c := Default()
		change(c)
		if c.Fingerprint() == fp {
			t.Errorf("change %d kept the fingerprint", i)
		}
	}
}

func TestUnmarshalJSONInsideAnotherDocument(t *testing.T) {
	t.Parallel()
	var doc struct {
		Programme *Programme `json:"programme"`
	}
	in := `{"programme": ` + string(DefaultJSON()) + `}`
	if err := json.Unmarshal([]byte(in), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Programme.Fingerprint() != Default().Fingerprint() {
		t.Error("embedded definition decoded differently")
	}
	bad := strings.Replace(in, `"lead":`, `"leader": "x", "lead":`, 1)
	if err := json.Unmarshal([]byte(bad), &doc); apperr.RuleOf(err) != RuleDefinition {
		t.Errorf("unknown field inside another document: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, DefaultJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(string(DefaultJSON()), `"GB-MON"`, `"GB-XXX"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}

	p, err := LoadFile(good)
	if err != nil || p.Fingerprint() != Default().Fingerprint() {
		t.Fatalf("LoadFile(good) = %v", err)
	}
	_, err = LoadFile(bad)
	if apperr.CodeOf(err) != apperr.Invalid || apperr.RuleOf(err) != RuleDefinition || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadFile(bad) = %v, want an invalid P1 error naming the file", err)
	}
	_, err = LoadFile(filepath.Join(dir, "missing.json"))
	if apperr.CodeOf(err) != apperr.Invalid || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want an invalid error wrapping ErrNotExist", err)
	}
}

func TestParseDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Time // zero when rejected
	}{
		{"2021-01-01", Date(2021, 1, 1)},
		{"2023-12-31", Date(2023, 12, 31)},
		{"2024-02-29", Date(2024, 2, 29)},
		{"2021-02-29", time.Time{}},
		{"2021-02-30", time.Time{}},
		{"2021-04-31", time.Time{}},
		{"2021-13-01", time.Time{}},
		{"2021-00-10", time.Time{}},
		{"2021-01-00", time.Time{}},
		{"0000-01-01", time.Time{}},
		{"2021-1-01", time.Time{}},
		{"2021-01-1", time.Time{}},
		{"21-01-01", time.Time{}},
		{"2021/01/01", time.Time{}},
		{"+202-01-01", time.Time{}},
		{" 2021-01-01", time.Time{}},
		{"2021-01-01T00:00:00Z", time.Time{}},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDate(tt.in)
			if tt.want.IsZero() {
				if err == nil || apperr.CodeOf(err) != apperr.Invalid {
					t.Errorf("ParseDate(%q) = %v, %v; want an invalid error", tt.in, got, err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestDateIn(t *testing.T) {
	t.Parallel()
	loc, err := Default().Location()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		instant time.Time
		want    time.Time
	}{
		{time.Date(2021, 6, 30, 23, 30, 0, 0, time.UTC), Date(2021, 7, 1)},    // 00:30 BST
		{time.Date(2021, 12, 31, 23, 30, 0, 0, time.UTC), Date(2021, 12, 31)}, // GMT in winter
	}
	for _, tt := range tests {
		if got := DateIn(tt.instant, loc); !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("DateIn(%s) = %s, want %s", tt.instant, got, tt.want)
		}
	}
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2021-01-01", "2021-02-30", "9999-12-31", "0001-01-01", "2021-1-1", "", "-001-01-01", "２０２１-01-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err != nil {
			if apperr.CodeOf(err) != apperr.Invalid {
				t.Fatalf("ParseDate(%q) error %v is not invalid", s, err)
			}
			return
		}
		// Whatever is accepted is a midnight-UTC date that prints back as the input.
		if !isDate(d) || d.Format(DateLayout) != s {
			t.Fatalf("ParseDate(%q) = %v, does not round-trip", s, d)
		}
	})
}
