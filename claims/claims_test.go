package claims

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
	"github.com/ccr-infuse/infuse/reports"
)

func translate(err error) error { return db.Translate("test", err) }

func TestPeriods(t *testing.T) {
	t.Parallel()
	prog := programme.Default()
	ps := Periods(prog)
	if len(ps) != 12 || ps[0].Code != "2021Q1" || ps[11].Code != "2023Q4" || ps[2].Number() != 3 {
		t.Fatalf("periods %v", ps)
	}
	for i, p := range ps {
		if p.Final != (i == 11) || p.Seq != i+1 {
			t.Errorf("%s: seq %d final %v", p.Code, p.Seq, p.Final)
		}
	}
	if !ps[0].Ended(day("2021-04-01")) || ps[0].Ended(day("2021-03-31")) {
		t.Error("2021Q1 ends after 2021-03-31")
	}
	monthly := prog.Clone()
	monthly.Frequency = "monthly"
	ms := Periods(monthly)
	if len(ms) != 36 || ms[0].Code != "2021-01" || ms[35].Code != "2023-12" || !ms[35].Final {
		t.Fatalf("monthly periods %d %v", len(ms), ms[0])
	}
	if _, err := PeriodByCode(prog, "2024Q1"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("2024Q1: %v", err)
	}
}

// recordThreeQuarters records the lines of the worked example (compute_test.go) in the ledger.
func recordThreeQuarters(f *fixture) {
	f.spend("staff", "2021-01-31", "10000.00")
	f.spend("delivery", "2021-02-15", "20000.00")
	f.spend("other", "2021-03-01", "1234.56")
	f.work("GB-NWP", "2021-02-02", "5000.00")
	f.work("GB-CRF", "2021-03-03", "2345.67")

	f.spend("staff", "2021-04-30", "10000.01")
	f.spend("other", "2021-05-05", "-100.00")
	f.work("GB-NWP", "2021-06-06", "3000.50")

	f.spend("staff", "2021-07-31", "3333.33")
	f.spend("delivery", "2021-08-08", "12345.67")
	f.work("GB-NWP", "2021-09-09", "1000.00")
	f.work("GB-MON", "2021-09-10", "999.99")
}

func TestCompileWorkedExample(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-10-01")
	recordThreeQuarters(f)
	want := []struct{ period, total, cumTotal, due, cumDue string }{
		{"2021Q1", "40080.23", "40080.23", "25765.86", "25765.86"},
		{"2021Q2", "14400.51", "54480.74", "9257.47", "35023.33"},
		{"2021Q3", "18178.98", "72659.72", "11686.49", "46709.82"},
	}
	for _, w := range want {
		c := f.compile(w.period)
		pair(t, w.period+" total", c.Figures.TotalEligible, w.total, w.cumTotal)
		pair(t, w.period+" ESF due", c.Figures.ESFDue, w.due, w.cumDue)
		if c.Status != Draft || c.Position.Seq == 0 || len(c.Basis) != 32 {
			t.Errorf("%s: status %s position %+v", w.period, c.Status, c.Position)
		}
		if b := c.Figures.Blocking(); len(b) != 0 {
			t.Errorf("%s blocking: %+v", w.period, b)
		}
		for _, x := range c.Figures.Findings {
			if x.ID != "C6" {
				t.Errorf("%s: unexpected finding %+v", w.period, x)
			}
		}
	}
	c, err := f.svc.Claim(f.ctx, "2021Q3")
	if err != nil {
		t.Fatal(err)
	}
	pair(t, "indirect", c.Figures.Heading("indirect"), "499.99", "3499.99")
	pair(t, "officer_time", c.Figures.Heading("officer_time"), "1999.99", "12346.16")
	if c.Figures.Rounding.Residual != "0.000000" || len(c.Figures.TrialBalance) == 0 {
		t.Errorf("rounding %+v, trial balance %d lines", c.Figures.Rounding, len(c.Figures.TrialBalance))
	}

	// The claim JSON of interfaces.md.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, frag := range []string{
		`{"period":"2021Q3","claim_number":3,"status":"draft","headings":{"staff":{"period":"3333.33","cumulative":"23333.34"},"indirect":{"period":"499.99","cumulative":"3499.99"},"delivery":{"period":"12345.67","cumulative":"32345.67"},"other":{"period":"0.00","cumulative":"1134.56"},"officer_time":{"period":"1999.99","cumulative":"12346.16"}},`,
		`"total_eligible":{"period":"18178.98","cumulative":"72659.72"},"esf_due":{"period":"11686.49","cumulative":"46709.82"},"match_by_authority":{"GB-BGW":{"period":"0.00","cumulative":"0.00","target":"200000.00"},`,
		`"GB-NWP":{"period":"1000.00","cumulative":"9000.50","target":"200000.00"}`,
		`"late_items":0,"findings":[{"id":"C6","severity":"warn","message":`,
	} {
		if !strings.Contains(s, frag) {
			t.Errorf("JSON lacks %s\n%s", frag, s)
		}
	}
	if strings.Count(s, `"target":"200000.00"`) != 10 {
		t.Errorf("not all ten authorities: %s", s)
	}

	// Events record who compiled and when.
	evs, err := f.svc.Events(f.ctx, "2021Q3")
	if err != nil || len(evs) != 1 || evs[0].Event != "compiled" || evs[0].Actor != pmAlice.Email {
		t.Fatalf("events %+v, %v", evs, err)
	}
}

func TestNilClaim(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-04-01")
	c := f.compile("2021Q1")
	pair(t, "total", c.Figures.TotalEligible, "0", "0")
	pair(t, "ESF due", c.Figures.ESFDue, "0", "0")
	if _, err := f.svc.Review(f.ctx, "2021Q1", foCerys); err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.Submit(f.ctx, "2021Q1", pmAlice)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != Submitted || c.ReceivableEntryID != 0 {
		t.Fatalf("nil claim submitted as %s with receivable entry %d", c.Status, c.ReceivableEntryID)
	}
}

// TestClaimJSONFollowsTheClaim: the kept claim JSON is served again while the claim is unchanged
// and rendered anew, equal to json.Marshal of the claim read afresh, after each change.
func TestClaimJSONFollowsTheClaim(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-04-02")
	f.spend("delivery", "2021-02-01", "14000.00")
	if _, err := f.svc.ClaimJSON(f.ctx, "2021Q1"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("no claim yet: %v", err)
	}
	want := func(t *testing.T) []byte {
		t.Helper()
		c, err := f.svc.Claim(f.ctx, "2021Q1")
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.svc.ClaimJSON(f.ctx, "2021Q1")
		if err != nil || string(got) != string(b) {
			t.Fatalf("claim JSON\n%s, %v\nwant\n%s", got, err, b)
		}
		again, err := f.svc.ClaimJSON(f.ctx, "2021Q1")
		if err != nil || &again[0] != &got[0] {
			t.Fatalf("an unchanged claim was rendered again (%v)", err)
		}
		return got
	}
	f.compile("2021Q1")
	draft := want(t)
	f.work("GB-NWP", "2021-03-01", "700.00")
	f.compile("2021Q1")
	recompiled := want(t)
	if string(recompiled) == string(draft) {
		t.Fatal("the recompiled claim's JSON did not change")
	}
	if _, err := f.svc.Review(f.ctx, "2021Q1", foCerys); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Submit(f.ctx, "2021Q1", pmBryn); err != nil {
		t.Fatal(err)
	}
	if submitted := want(t); !strings.Contains(string(submitted), `"status":"submitted"`) {
		t.Fatalf("submitted claim JSON %s", submitted)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-04-02")
	f.spend("delivery", "2021-02-01", "14000.00")
	f.work("GB-NWP", "2021-03-01", "700.00")
	// C_total 14700.00 → 9450.00

	t.Run("SubmitWithoutReviewIsRefused", func(t *testing.T) {
		f.compile("2021Q1")
		_, err := f.svc.Submit(f.ctx, "2021Q1", pmBryn)
		wantErr(t, err, apperr.Invalid, RuleReview)
	})
	t.Run("OnlyProgrammeManagersAndFinanceOfficersReview", func(t *testing.T) {
		_, err := f.svc.Review(f.ctx, "2021Q1", auditDewi)
		wantErr(t, err, apperr.Forbidden, access.RuleRole)
		_, err = f.svc.Review(f.ctx, "2021Q1", adminEira)
		wantErr(t, err, apperr.Forbidden, access.RuleRole)
	})
	t.Run("SubmitByTheReviewerIsRefused", func(t *testing.T) {
		if _, err := f.svc.Review(f.ctx, "2021Q1", pmAlice); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Submit(f.ctx, "2021Q1", pmAlice)
		wantErr(t, err, apperr.Forbidden, RuleFourEyes)
	})
	t.Run("OnlyAProgrammeManagerSubmits", func(t *testing.T) {
		_, err := f.svc.Submit(f.ctx, "2021Q1", foCerys)
		wantErr(t, err, apperr.Forbidden, access.RuleRole)
	})
	t.Run("RecompilingClearsTheReview", func(t *testing.T) {
		c := f.compile("2021Q1")
		if c.Status != Draft || c.ReviewedAt != nil {
			t.Fatalf("recompiled claim is %s, reviewed %v", c.Status, c.ReviewedAt)
		}
		if _, err := f.svc.Review(f.ctx, "2021Q1", foCerys); err != nil {
			t.Fatal(err)
		}
	})
	var submitted *Claim
	t.Run("SubmissionPostsTheReceivableAndLocksThePeriod", func(t *testing.T) {
		c, err := f.svc.Submit(f.ctx, "2021Q1", pmBryn)
		if err != nil {
			t.Fatal(err)
		}
		submitted = c
		if c.Status != Submitted || c.SubmittedBy != pmBryn.Email || c.ReceivableEntryID == 0 {
			t.Fatalf("submitted claim %+v", c)
		}
		eq(t, "receivable", f.balance(ledger.ESFReceivable), "9450.00")
		eq(t, "income", f.balance(ledger.ESFIncome), "-9450.00")
		ps, err := f.l.Periods(f.ctx, f.pool)
		if err != nil || !ps[0].Locked() || ps[0].LockedBy != pmBryn.Email {
			t.Fatalf("2021Q1 not locked by the submitter: %+v %v", ps[0], err)
		}
	})
	t.Run("SubmittedClaimIsFrozen", func(t *testing.T) {
		_, err := f.svc.Compile(f.ctx, "2021Q1", pmAlice)
		wantErr(t, err, apperr.Locked, RuleFrozen)
		_, err = f.svc.Submit(f.ctx, "2021Q1", pmBryn)
		wantErr(t, err, apperr.Conflict, RuleFrozen)
		_, err = f.svc.Review(f.ctx, "2021Q1", pmAlice)
		wantErr(t, err, apperr.Locked, RuleFrozen)
	})
	t.Run("LateItemsLandInTheNextOpenPeriod", func(t *testing.T) {
		id := f.spend("other", "2021-03-15", "70.00")
		var period string
		if err := f.pool.QueryRow(f.ctx, `SELECT period FROM entry WHERE id = $1`, id).Scan(&period); err != nil || period != "2021Q2" {
			t.Fatalf("late item booked in %q (%v), want 2021Q2", period, err)
		}
		f.clock.Set(at("2021-07-01"))
		c := f.compile("2021Q2")
		if c.Figures.LateItems != 1 || !hasFinding(c.Figures, "C7", SeverityInfo) {
			t.Fatalf("late items %d, findings %+v", c.Figures.LateItems, c.Figures.Findings)
		}
		for _, x := range c.Figures.Findings {
			if x.ID == "C7" && !slices.Equal(x.Entries, []int64{id}) {
				t.Errorf("C7 lists %v, want [%d]", x.Entries, id)
			}
		}
		pair(t, "other", c.Figures.Heading("other"), "70.00", "70.00")
		var lateItems struct {
			LateItems int `json:"late_items"`
		}
		b, _ := json.Marshal(c)
		if err := json.Unmarshal(b, &lateItems); err != nil || lateItems.LateItems != 1 {
			t.Fatalf("JSON late_items %d: %s", lateItems.LateItems, b)
		}
	})
	t.Run("PaymentBeforeDecisionIsRefused", func(t *testing.T) {
		_, err := f.svc.Pay(f.ctx, "2021Q1", Payment{PaidOn: day("2021-06-30"), Amount: decimal.RequireFromString("9450.00")}, pmAlice)
		wantErr(t, err, apperr.Conflict, RuleOutcome)
	})
	t.Run("DisallowanceFlowsIntoTheNextClaim", func(t *testing.T) {
		_, err := f.svc.Decide(f.ctx, "2021Q1", Decision{DecidedOn: day("2021-06-15"), Approved: decimal.RequireFromString("9000.00"),
			Disallowed: decimal.RequireFromString("700.00")}, pmAlice)
		wantErr(t, err, apperr.Invalid, RuleOutcome) // a disallowance needs a reason
		_, err = f.svc.Decide(f.ctx, "2021Q1", Decision{DecidedOn: day("2021-06-15"), Approved: decimal.RequireFromString("9450.00"),
			Disallowed: decimal.RequireFromString("700.00"), Reason: "venue hire outside the window", Heading: "officer_time"}, pmAlice)
		wantErr(t, err, apperr.Invalid, RuleOutcome) // not a cash heading
		for _, d := range []Decision{
			{DecidedOn: day("2021-07-02"), Approved: decimal.RequireFromString("9450.00")},   // after today
			{DecidedOn: day("2021-06-15"), Approved: decimal.RequireFromString("9450.01")},   // more than claimed
			{DecidedOn: day("2021-06-15"), Approved: decimal.RequireFromString("-90000.00")}, // negative
			{DecidedOn: day("2021-06-15"), Approved: decimal.RequireFromString("9450.00"),
				Disallowed: decimal.RequireFromString("14700.01"), Reason: "more than was claimed"},
			{DecidedOn: day("2021-06-15"), Approved: decimal.RequireFromString("9450.00"), // more than the heading claimed:
				Disallowed: decimal.RequireFromString("14000.01"), Reason: "more than delivery claimed", Heading: "delivery"},
			{DecidedOn: day("2021-06-15"), Approved: decimal.RequireFromString("9450.00"), // other by default, which claimed nothing
				Disallowed: decimal.RequireFromString("700.00"), Reason: "venue hire outside the window"},
		} {
			_, err = f.svc.Decide(f.ctx, "2021Q1", d, pmAlice)
			wantErr(t, err, apperr.Invalid, RuleOutcome)
		}
		c, err := f.svc.Decide(f.ctx, "2021Q1", Decision{DecidedOn: day("2021-06-15"), Approved: decimal.RequireFromString("9450.00"),
			Disallowed: decimal.RequireFromString("700.00"), Reason: "a delivery invoice outside the window", Heading: "delivery"}, pmAlice)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != Approved || c.Decision == nil || c.Decision.EntryID == 0 || c.Decision.Heading != "delivery" {
			t.Fatalf("decided claim %+v %+v", c, c.Decision)
		}
		eq(t, "ineligible", f.balance(ledger.Ineligible), "700.00")
		_, err = f.svc.Decide(f.ctx, "2021Q1", Decision{DecidedOn: day("2021-06-15")}, pmAlice)
		wantErr(t, err, apperr.Conflict, RuleOutcome)

		// Q2: the late 70.00 and the −700.00 adjustment: C_total 14700 + 70 − 700 = 14070.00,
		// cum_due floor(14070 × 9/14) = 9045.00, esf_due 9045.00 − 9450.00 = −405.00.
		q2 := f.compile("2021Q2")
		pair(t, "delivery", q2.Figures.Heading("delivery"), "-700.00", "13300.00")
		pair(t, "other", q2.Figures.Heading("other"), "70.00", "70.00")
		pair(t, "ESF due", q2.Figures.ESFDue, "-405.00", "9045.00")
		if b := q2.Figures.Blocking(); len(b) != 0 {
			t.Fatalf("blocking %+v", b)
		}
		pack, err := f.svc.Pack(f.ctx, "2021Q2")
		if err != nil {
			t.Fatal(err)
		}
		var adjustment bool
		for _, l := range pack.Transactions {
			if l.Payee == "WEFO" && l.Amount.Equal(decimal.RequireFromString("-700.00")) && l.Heading == "delivery" && l.BookingPeriod == "2021Q2" {
				adjustment = true
			}
		}
		if !adjustment || len(pack.Transactions) != 2 {
			t.Errorf("2021Q2 transaction list %+v lacks the disallowance", pack.Transactions)
		}
		// The pack's history shows cum_due(p−1) and each claim's ESF due, and reconciles the
		// cumulative total to the ledger: the expenditure booked plus the flat rate (C2).
		if h := pack.History; len(h) != 2 || h[0].Period != "2021Q1" || h[0].Due.StringFixed(2) != "9450.00" ||
			h[1].Due.StringFixed(2) != "-405.00" || h[1].CumDue.StringFixed(2) != "9045.00" || pack.PreviousDue.StringFixed(2) != "9450.00" {
			t.Errorf("2021Q2 history %+v, previous due %s", h, pack.PreviousDue)
		}
		var booked, flat decimal.Decimal
		for _, l := range pack.TrialBalance {
			if strings.HasPrefix(l.Code, "exp:") || strings.HasPrefix(l.Code, "inkind:") {
				booked = booked.Add(l.Balance)
			}
		}
		for _, h := range pack.History {
			flat = flat.Add(h.Indirect)
		}
		if !booked.Add(flat).Equal(pack.TotalEligible.Cumulative) {
			t.Errorf("booked %s + flat rate %s is not the cumulative total %s", booked, flat, pack.TotalEligible.Cumulative)
		}
		if _, err := f.svc.Review(f.ctx, "2021Q2", pmAlice); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Submit(f.ctx, "2021Q2", pmBryn); err != nil {
			t.Fatal(err)
		}
		// A negative ESF due turns the receivable's signs: 9450.00 − 405.00.
		eq(t, "receivable", f.balance(ledger.ESFReceivable), "9045.00")
	})
	t.Run("Payment", func(t *testing.T) {
		_, err := f.svc.Pay(f.ctx, "2021Q1", Payment{PaidOn: day("2021-06-01"), Amount: decimal.RequireFromString("9450.00")}, pmAlice)
		wantErr(t, err, apperr.Invalid, RuleOutcome) // before the decision
		_, err = f.svc.Pay(f.ctx, "2021Q1", Payment{PaidOn: day("2021-07-20"), Amount: decimal.RequireFromString("9450.00")}, pmAlice)
		wantErr(t, err, apperr.Invalid, RuleOutcome) // after today
		f.clock.Set(at("2021-07-20"))
		_, err = f.svc.Pay(f.ctx, "2021Q1", Payment{PaidOn: day("2021-07-20"), Amount: decimal.RequireFromString("9450.001")}, pmAlice)
		wantErr(t, err, apperr.Invalid, "R9.1")
		for _, amount := range []string{"9450.01", "-1.00", "0"} { // more than approved, the wrong sign, nil
			_, err = f.svc.Pay(f.ctx, "2021Q1", Payment{PaidOn: day("2021-07-20"), Amount: decimal.RequireFromString(amount)}, pmAlice)
			wantErr(t, err, apperr.Invalid, RuleOutcome)
		}
		_, err = f.svc.Pay(f.ctx, "2021Q1", Payment{PaidOn: day("2021-07-20"), Amount: decimal.RequireFromString("9450.00")}, foCerys)
		wantErr(t, err, apperr.Forbidden, access.RuleRole)
		c, err := f.svc.Pay(f.ctx, "2021Q1", Payment{PaidOn: day("2021-07-20"), Amount: decimal.RequireFromString("9450.00")}, pmAlice)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != Paid || c.Payment == nil || c.Payment.EntryID == 0 {
			t.Fatalf("paid claim %+v", c)
		}
		eq(t, "cash receivable", f.balance(ledger.ESFReceivable), "-405.00")
		// The figures never changed.
		if !c.Figures.ESFDue.Period.Equal(submitted.Figures.ESFDue.Period) || !c.CompiledAt.Equal(submitted.CompiledAt) {
			t.Fatalf("figures changed after submission")
		}
	})
	t.Run("EveryEventIsRecorded", func(t *testing.T) {
		evs, err := f.svc.Events(f.ctx, "2021Q1")
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range evs {
			kinds = append(kinds, e.Event+":"+e.Actor)
		}
		// Every pack stored is in the history, with its hashes: after a review and at submission.
		want := []string{"compiled:" + pmAlice.Email, "pack_stored:" + pmAlice.Email, "reviewed:" + pmAlice.Email, "compiled:" + pmAlice.Email,
			"pack_stored:" + foCerys.Email, "reviewed:" + foCerys.Email, "pack_stored:" + pmBryn.Email, "submitted:" + pmBryn.Email,
			"decided:" + pmAlice.Email, "paid:" + pmAlice.Email}
		if !slices.Equal(kinds, want) {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	})
}

func TestSubmissionRules(t *testing.T) {
	t.Parallel()
	t.Run("OutOfOrderIsRefused", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, "2021-07-05")
		f.compile("2021Q1")
		f.compile("2021Q2")
		if _, err := f.svc.Review(f.ctx, "2021Q2", pmAlice); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Submit(f.ctx, "2021Q2", pmBryn)
		wantErr(t, err, apperr.Conflict, RuleOrder)
		// The database refuses it too.
		_, err = f.pool.Exec(f.ctx, `UPDATE claim SET status = 'submitted', submitted_at = now(), submitted_by = 'x@y.z'
			WHERE period = '2021Q2'`)
		wantErr(t, translate(err), apperr.Conflict, RuleOrder)
	})
	t.Run("BlockingFindingIsRefused", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, "2021-04-05")
		id := f.post("2021-02-01", ledger.Cash, ledger.HeadingAccount("delivery"), "500.00") // no line, no evidence
		c := f.compile("2021Q1")
		if !hasFinding(c.Figures, "C8", SeverityBlock) {
			t.Fatalf("findings %+v", c.Figures.Findings)
		}
		for _, x := range c.Figures.Findings {
			if x.ID == "C8" && !slices.Equal(x.Entries, []int64{id}) {
				t.Errorf("C8 lists %v, want [%d]", x.Entries, id)
			}
		}
		if _, err := f.svc.Review(f.ctx, "2021Q1", pmAlice); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Submit(f.ctx, "2021Q1", pmBryn)
		wantErr(t, err, apperr.Invalid, "C3") // the first blocking finding: the lines do not add up
		_, err = f.pool.Exec(f.ctx, `UPDATE claim SET status = 'submitted', submitted_at = now(), submitted_by = 'x@y.z'
			WHERE period = '2021Q1'`)
		wantErr(t, translate(err), apperr.Invalid, RuleBlocked) // the schema refuses it too
	})
	t.Run("ChangedLedgerIsRefused", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, "2021-04-05")
		f.spend("other", "2021-02-01", "10.00")
		f.compile("2021Q1")
		if _, err := f.svc.Review(f.ctx, "2021Q1", pmAlice); err != nil {
			t.Fatal(err)
		}
		f.spend("other", "2021-02-02", "20.00")
		_, err := f.svc.Submit(f.ctx, "2021Q1", pmBryn)
		wantErr(t, err, apperr.Conflict, RuleStale) // the new entry waits for the sealer
		if _, err := f.l.Seal(f.ctx); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Submit(f.ctx, "2021Q1", pmBryn)
		wantErr(t, err, apperr.Conflict, RuleStale) // the new entry is in the balances
		// Nor can figures the ledger has moved on from be reviewed again, and the claim says so.
		f.spend("other", "2021-02-03", "5.00")
		f.compile("2021Q1")
		f.spend("other", "2021-02-04", "5.00")
		_, err = f.svc.Review(f.ctx, "2021Q1", pmAlice)
		wantErr(t, err, apperr.Conflict, RuleStale)
		c, err := f.svc.Claim(f.ctx, "2021Q1")
		if err != nil {
			t.Fatal(err)
		}
		if stale, err := f.svc.Stale(f.ctx, c); err != nil || !stale {
			t.Fatalf("Stale of a draft the ledger moved on from = %v, %v", stale, err)
		}
		f.compile("2021Q1")
		if c, err = f.svc.Claim(f.ctx, "2021Q1"); err != nil {
			t.Fatal(err)
		}
		if stale, err := f.svc.Stale(f.ctx, c); err != nil || stale {
			t.Fatalf("Stale of a draft just compiled = %v, %v", stale, err)
		}
		if _, err := f.svc.Review(f.ctx, "2021Q1", pmAlice); err != nil {
			t.Fatal(err)
		}
		c, err = f.svc.Submit(f.ctx, "2021Q1", pmBryn)
		if err != nil {
			t.Fatal(err)
		}
		pair(t, "other", c.Figures.Heading("other"), "40.00", "40.00")
	})
	t.Run("ChangedEarlierPeriodIsRefused", func(t *testing.T) {
		// A claim's cumulative figures read every period before it. A later claim compiled
		// while an earlier period was still open is stale once that period moves, even after
		// the earlier claim is submitted with the move in it: submitting it as it was would
		// claim the move's ESF twice, or not at all.
		t.Parallel()
		f := newFixture(t, "2021-07-05")
		f.spend("delivery", "2021-02-01", "1.00")
		f.compile("2021Q1")
		f.spend("delivery", "2021-05-01", "14000.00")
		f.compile("2021Q2")
		if _, err := f.svc.Review(f.ctx, "2021Q2", pmAlice); err != nil {
			t.Fatal(err)
		}
		f.spend("delivery", "2021-03-01", "14000.00") // booked into 2021Q1, still open
		q1 := f.submit("2021Q1")
		pair(t, "2021Q1 ESF due", q1.Figures.ESFDue, "9000.64", "9000.64")
		_, err := f.svc.Submit(f.ctx, "2021Q2", pmBryn)
		wantErr(t, err, apperr.Conflict, RuleStale)
		if _, err := f.svc.Pack(f.ctx, "2021Q2"); apperr.RuleOf(err) != RuleStale {
			t.Fatalf("pack of the stale draft: %v, want %s", err, RuleStale)
		}
		q2 := f.submit("2021Q2")
		// C_total 28001.00 gives floor(18000.642857…) = 18000.64, of which 9000.64 was claimed.
		pair(t, "2021Q2 ESF due", q2.Figures.ESFDue, "9000.00", "18000.64")
		if got := f.balance(ledger.ESFReceivable); !got.Equal(decimal.RequireFromString("18000.64")) {
			t.Errorf("ESF receivable %s, want 18000.64", got)
		}
	})
	t.Run("PaymentDatedEarlierIsNotALateItem", func(t *testing.T) {
		// A payment dated in a period locked by the time it is recorded lands in the next open
		// one; it is a ledger entry of the claim, not a line, so no late item (interfaces.md).
		t.Parallel()
		f := newFixture(t, "2021-06-10")
		f.spend("delivery", "2021-02-01", "1400.00")
		f.submit("2021Q1")
		f.clock.Set(at("2021-07-05"))
		if _, err := f.svc.Decide(f.ctx, "2021Q1", Decision{DecidedOn: day("2021-06-15"), Approved: decimal.RequireFromString("900.00")}, pmAlice); err != nil {
			t.Fatal(err)
		}
		f.submit("2021Q2")
		c, err := f.svc.Pay(f.ctx, "2021Q1", Payment{PaidOn: day("2021-06-20"), Amount: decimal.RequireFromString("900.00")}, pmAlice)
		if err != nil {
			t.Fatal(err)
		}
		var period string
		if err := f.pool.QueryRow(f.ctx, `SELECT period FROM entry WHERE id = $1`, c.Payment.EntryID).Scan(&period); err != nil || period != "2021Q3" {
			t.Fatalf("payment booked in %q (%v), want 2021Q3", period, err)
		}
		if q3 := f.compile("2021Q3"); q3.Figures.LateItems != 0 || hasFinding(q3.Figures, "C7", SeverityInfo) {
			t.Fatalf("late items %d, findings %+v", q3.Figures.LateItems, q3.Figures.Findings)
		}
	})
	t.Run("ReviewOfFiguresRecompiledSinceIsRefused", func(t *testing.T) {
		// The reviewer read one compilation; a colleague recompiled before the review was
		// recorded: the review would cover figures the reviewer never saw (R3.13). A review
		// stores the claim's pack anew, saying "reviewed"; a refused one leaves the draft's.
		t.Parallel()
		f := newFixture(t, "2021-04-05")
		read := f.compile("2021Q1")
		f.clock.Set(at("2021-04-05").Add(time.Minute))
		f.spend("other", "2021-02-01", "10.00")
		if _, err := f.svc.CompileWithPack(f.ctx, "2021Q1", pmAlice); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.ReviewCompilation(f.ctx, "2021Q1", read.CompiledAt, foCerys)
		wantErr(t, err, apperr.Conflict, RuleStale)
		if _, status, err := f.svc.StoredPack(f.ctx, "2021Q1"); err != nil || status != Draft {
			t.Errorf("stored pack after a refused review: %s, %v", status, err)
		}
		now, err := f.svc.Claim(f.ctx, "2021Q1")
		if err != nil {
			t.Fatal(err)
		}
		if c, err := f.svc.ReviewCompilation(f.ctx, "2021Q1", now.CompiledAt, foCerys); err != nil || c.Status != Reviewed {
			t.Fatalf("review of the compilation read: %+v, %v", c, err)
		}
		files, status, err := f.svc.StoredPack(f.ctx, "2021Q1")
		if err != nil || status != Reviewed || len(files) != 3 || !bytes.Contains(files[2].Data, []byte(`"claim_status": "reviewed"`)) {
			t.Errorf("stored pack after the review: %d files, %s, %v", len(files), status, err)
		}
	})
	t.Run("BeforeThePeriodEndsIsRefused", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, "2021-03-31")
		f.compile("2021Q1")
		if _, err := f.svc.Review(f.ctx, "2021Q1", pmAlice); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Submit(f.ctx, "2021Q1", pmBryn)
		wantErr(t, err, apperr.Invalid, RuleEnded)
	})
	t.Run("Art69WarnsOnInterimAndBlocksTheFinalClaim", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, "2024-01-02")
		f.spend("delivery", "2021-02-01", "100.00")
		f.work("GB-NWP", "2021-02-02", "1000.00")
		f.work("GB-NWP", "2023-11-02", "1000.00")
		if c := f.compile("2021Q1"); !hasFinding(c.Figures, "C4", SeverityWarn) {
			t.Fatalf("2021Q1 findings %+v", c.Figures.Findings)
		}
		c := f.compile("2023Q4")
		if !hasFinding(c.Figures, "C4", SeverityBlock) || !c.Figures.Final || c.Figures.CapApplied != "art69" {
			t.Fatalf("2023Q4 findings %+v", c.Figures.Findings)
		}
		// cum_due capped at cash + indirect.
		// C_total 2100.00 gives 1350.00 at the rate, capped at cash + indirect 100.00; the claims
		// before it claimed floor(1100.00 × 9/14) = 707.14.
		pair(t, "ESF due", c.Figures.ESFDue, "-607.14", "100.00")
	})
}

// TestDatabaseRefuses checks the schema keeps the claim rules by itself, against raw SQL.
func TestDatabaseRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-07-05")
	f.spend("delivery", "2021-02-01", "1400.00")
	f.submit("2021Q1")
	f.compile("2021Q2")
	cases := []struct {
		name, sql string
		code      apperr.Code
		rule      string
	}{
		{"ChangingSubmittedFigures", `UPDATE claim SET esf_due = esf_due + 1 WHERE period = '2021Q1'`, apperr.Locked, RuleFrozen},
		{"ChangingSubmittedFiguresJSON", `UPDATE claim SET figures = '{}' WHERE period = '2021Q1'`, apperr.Locked, RuleFrozen},
		{"UndoingASubmission", `UPDATE claim SET status = 'reviewed' WHERE period = '2021Q1'`, apperr.Locked, RuleFrozen},
		{"ChangingTheSignature", `UPDATE claim SET submitted_by_name = 'Someone Else' WHERE period = '2021Q1'`, apperr.Locked, RuleFrozen},
		// WEFO's decision and payment within the claim (CL6), as Decide and Pay check them.
		{"ApprovingMoreThanClaimed", `UPDATE claim SET status = 'approved', decided_at = now(), decided_on = '2021-07-05', decided_by = 'x@y.z',
			approved_amount = esf_due + 0.01, disallowed_amount = 0 WHERE period = '2021Q1'`, apperr.Invalid, RuleOutcome},
		{"ApprovingANegativeAmount", `UPDATE claim SET status = 'approved', decided_at = now(), decided_on = '2021-07-05', decided_by = 'x@y.z',
			approved_amount = -1, disallowed_amount = 0 WHERE period = '2021Q1'`, apperr.Invalid, RuleOutcome},
		{"DisallowingMoreThanClaimed", `UPDATE claim SET status = 'approved', decided_at = now(), decided_on = '2021-07-05', decided_by = 'x@y.z',
			approved_amount = 0, disallowed_amount = total_eligible + 0.01, disallowance_reason = 'r', disallowance_heading = 'other'
			WHERE period = '2021Q1'`, apperr.Invalid, RuleOutcome},
		{"DeletingAClaim", `DELETE FROM claim WHERE period = '2021Q2'`, apperr.Locked, RuleFrozen},
		{"TruncatingClaims", `TRUNCATE claim CASCADE`, apperr.Locked, RuleFrozen},
		{"ReplacingTheSubmittedPack", `UPDATE claim_pack SET data = 'x', sha256 = sha256('x') WHERE period = '2021Q1'`, apperr.Locked, RuleFrozen},
		{"DeletingTheSubmittedPack", `DELETE FROM claim_pack WHERE period = '2021Q1'`, apperr.Locked, RuleFrozen},
		{"RewritingHistory", `UPDATE claim_event SET actor = 'someone@else' WHERE period = '2021Q1'`, apperr.Locked, RuleFrozen},
		{"DeletingHistory", `DELETE FROM claim_event`, apperr.Locked, RuleFrozen},
		{"ApprovingADraft", `UPDATE claim SET status = 'approved' WHERE period = '2021Q2'`, apperr.Conflict, RuleOutcome},
		{"SkippingReview", `UPDATE claim SET status = 'submitted', submitted_at = now(), submitted_by = 'x@y.z' WHERE period = '2021Q2'`, apperr.Conflict, RuleOutcome},
		{"CreatingASubmittedClaim", `INSERT INTO claim SELECT operation_id, '2021Q3', 3, 'submitted', figures, total_eligible, esf_due, cum_due,
			blocking, basis, position_seq, position_entry_id, position_link, compiled_at, compiled_by FROM claim WHERE period = '2021Q2'`, apperr.Conflict, RuleOutcome},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.pool.Exec(f.ctx, c.sql)
			wantErr(t, translate(err), c.code, c.rule)
		})
	}
	if _, err := f.svc.Decide(f.ctx, "2021Q1", Decision{DecidedOn: day("2021-07-05"), Approved: decimal.RequireFromString("900.00")}, pmAlice); err != nil {
		t.Fatal(err)
	}
	for _, paid := range []string{"900.01", "-1", "0"} { // more than approved, the wrong sign, nil
		_, err := f.pool.Exec(f.ctx, `UPDATE claim SET status = 'paid', paid_at = now(), paid_on = '2021-07-05', paid_by = 'x@y.z',
			paid_amount = $1 WHERE period = '2021Q1'`, paid)
		wantErr(t, translate(err), apperr.Invalid, RuleOutcome)
	}
	// The pack stored at submission is still there, unchanged.
	files, status, err := f.svc.StoredPack(f.ctx, "2021Q1")
	if err != nil || status != Submitted || len(files) != 3 {
		t.Fatalf("stored pack: %d files, %s, %v", len(files), status, err)
	}
}

// TestSubmittedPackIsReproducible: what auditors download is what was submitted, and rebuilding
// the pack of the submitted claim from the ledger gives the same bytes.
func TestSubmittedPackIsReproducible(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-04-05")
	recordThreeQuarters(f)
	q1 := f.submit("2021Q1")
	f.spend("other", "2021-03-30", "12.34") // a late item, booked into 2021Q2
	// WEFO's decision comes after the pack: the pack rebuilt is still the one submitted.
	if _, err := f.svc.Decide(f.ctx, "2021Q1", Decision{DecidedOn: day("2021-04-05"), Approved: q1.Figures.ESFDue.Period}, pmAlice); err != nil {
		t.Fatal(err)
	}
	stored, _, err := f.svc.StoredPack(f.ctx, "2021Q1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Pack(f.ctx, "2021Q1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != "submitted" || p.Signatory.Name != pmBryn.Name || p.ClaimNumber != 1 || len(p.TrialBalance) == 0 {
		t.Fatalf("pack %+v", p)
	}
	// The line detail: the transaction list, officer time and the rate versions that priced it.
	if len(p.Transactions) != 3 || len(p.OfficerTime) != 2 || len(p.StaffCosts) != 2 {
		t.Fatalf("pack lines: %d cash, %d time, %d rate versions", len(p.Transactions), len(p.OfficerTime), len(p.StaffCosts))
	}
	cash := decimal.Zero
	for _, l := range p.Transactions {
		cash = cash.Add(l.Amount)
	}
	eq(t, "transaction list", cash, "31234.56")
	if ot := p.OfficerTime[0]; ot.Authority != "GB-NWP" || ot.HourlyRate != "20.0000" || ot.Approver == "" || ot.EvidenceRef == "" {
		t.Errorf("officer time line %+v", ot)
	}
	rebuilt, _, err := reports.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range stored {
		if stored[i].Name != rebuilt[i].Name || stored[i].SHA256 != rebuilt[i].SHA256 {
			t.Errorf("%s: stored %s, rebuilt %s %s", stored[i].Name, stored[i].SHA256, rebuilt[i].Name, rebuilt[i].SHA256)
		}
	}
	// A draft whose period moved must be recompiled before its pack is built.
	f.clock.Set(at("2021-07-02"))
	f.compile("2021Q2")
	f.spend("other", "2021-05-01", "1.00")
	_, err = f.svc.Pack(f.ctx, "2021Q2")
	wantErr(t, err, apperr.Conflict, RuleStale)
}

// A credit note in the transaction list names the line it credits, by its ledger entry.
func TestPackNamesTheLineACreditNoteCredits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-07-05")
	recordThreeQuarters(f)
	f.submit("2021Q1")
	f.compile("2021Q2")
	p, err := f.svc.Pack(f.ctx, "2021Q2")
	if err != nil {
		t.Fatal(err)
	}
	var note, credited int64
	if err := f.pool.QueryRow(f.ctx, `SELECT n.entry_id, c.entry_id FROM expenditure n
		JOIN expenditure c ON c.operation_id = n.operation_id AND c.id = n.credits
		WHERE n.operation_id = 'infuse' AND n.period = '2021Q2'`).Scan(&note, &credited); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(p.Transactions, func(l reports.CashLine) bool { return l.EntryID == note })
	if want := fmt.Sprintf("Credit note against entry %d: ", credited); i < 0 || !strings.HasPrefix(p.Transactions[i].Description, want) {
		t.Errorf("2021Q2's transaction list %+v; want the credit note described %q…", p.Transactions, want)
	}
}

// TestDisallowanceAfterTheNextClaim: WEFO decides on a claim after the next one was submitted.
// The adjustment goes into the next open period, dated the decision's day, which falls in it:
// part of that claim, not a late item, not dated in a locked period, nor before the decision.
func TestDisallowanceAfterTheNextClaim(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-07-05")
	f.spend("delivery", "2021-02-01", "10000.00")
	f.spend("delivery", "2021-05-01", "2000.00")
	f.submit("2021Q1")
	f.submit("2021Q2")
	c, err := f.svc.Decide(f.ctx, "2021Q1", Decision{DecidedOn: day("2021-07-05"), Approved: decimal.RequireFromString("6428.57"),
		Disallowed: decimal.RequireFromString("300.00"), Reason: "an invoice outside the window", Heading: "delivery"}, pmAlice)
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.l.Entry(f.ctx, c.Decision.EntryID)
	if err != nil {
		t.Fatal(err)
	}
	if e.Period != "2021Q3" || !e.EffectiveDate.Equal(day("2021-07-05")) {
		t.Fatalf("adjustment booked in %s on %s; want 2021Q3 on 2021-07-05, the decision's day", e.Period, e.EffectiveDate.Format(time.DateOnly))
	}
	q3 := f.compile("2021Q3")
	if q3.Figures.LateItems != 0 || hasFinding(q3.Figures, "C7", SeverityInfo) {
		t.Errorf("2021Q3 counts %d late items, findings %+v; want none", q3.Figures.LateItems, q3.Figures.Findings)
	}
	pack, err := f.svc.Pack(f.ctx, "2021Q3")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(pack.Transactions, func(l reports.CashLine) bool { return l.EntryID == e.ID })
	if i < 0 || pack.Transactions[i].EffectivePeriod != "2021Q3" {
		t.Errorf("the adjustment in 2021Q3's transaction list: %+v; want it there, relating to 2021Q3", pack.Transactions)
	}
}

// TestDisallowancesNeverTakeAHeadingBelowNothing: a disallowance on a claim is bounded by what is
// left of its heading once the disallowances decided on it and on other claims since are taken
// off, seen from the claim and from every later submitted claim: two decisions cannot together
// disallow the same expenditure twice, and the order WEFO decides in does not change what is
// allowed.
func TestDisallowancesNeverTakeAHeadingBelowNothing(t *testing.T) {
	t.Parallel()
	// 2021Q1 claims 10,000.00 of delivery, 2021Q2 another 2,000.00 (12,000.00 up to it).
	setUp := func(t *testing.T) (*fixture, func(period, amount string) error) {
		f := newFixture(t, "2021-07-05")
		f.spend("delivery", "2021-02-01", "10000.00")
		f.spend("delivery", "2021-05-01", "2000.00")
		f.submit("2021Q1")
		f.submit("2021Q2")
		return f, func(period, amount string) error {
			_, err := f.svc.Decide(f.ctx, period, Decision{DecidedOn: day("2021-07-05"), Approved: decimal.Zero,
				Disallowed: decimal.RequireFromString(amount), Reason: "no procurement evidence", Heading: "delivery"}, pmAlice)
			return err
		}
	}
	t.Run("EarlierClaimFirst", func(t *testing.T) {
		t.Parallel()
		f, decide := setUp(t)
		if err := decide("2021Q1", "10000.00"); err != nil { // booked in 2021Q3, after 2021Q2's figures
			t.Fatal(err)
		}
		wantErr(t, decide("2021Q2", "2000.01"), apperr.Invalid, RuleOutcome)
		if err := decide("2021Q2", "2000.00"); err != nil {
			t.Fatal(err)
		}
		eq(t, "delivery", f.balance(ledger.HeadingAccount("delivery")), "0.00")
	})
	t.Run("LaterClaimFirst", func(t *testing.T) {
		t.Parallel()
		f, decide := setUp(t)
		if err := decide("2021Q2", "2000.00"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, decide("2021Q1", "10000.01"), apperr.Invalid, RuleOutcome) // more than is left, from 2021Q1 or 2021Q2
		if err := decide("2021Q1", "10000.00"); err != nil {
			t.Fatal(err)
		}
		eq(t, "delivery", f.balance(ledger.HeadingAccount("delivery")), "0.00")
	})
	t.Run("LaterClaimTookItAll", func(t *testing.T) {
		t.Parallel()
		_, decide := setUp(t)
		if err := decide("2021Q2", "12000.00"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, decide("2021Q1", "0.01"), apperr.Invalid, RuleOutcome)
	})
}

// TestDecisionsWaitForEachOther: a decision waits while another claim's decision is in flight, so
// that each sees the other's disallowance when it bounds its own (two decisions made at once
// could otherwise disallow the same expenditure twice).
func TestDecisionsWaitForEachOther(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-07-05")
	f.spend("delivery", "2021-02-01", "10000.00")
	f.submit("2021Q1")
	other, err := f.pool.Begin(f.ctx) // another claim's decision, in flight
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(f.ctx)
	if _, err := other.Exec(f.ctx, `SELECT pg_advisory_xact_lock($1)`, f.svc.lockKey("\x00decisions")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Decide(f.ctx, "2021Q1", Decision{DecidedOn: day("2021-07-05"), Approved: decimal.Zero,
			Disallowed: decimal.RequireFromString("100.00"), Reason: "an invoice outside the window", Heading: "delivery"}, pmAlice)
		done <- err
	}()
	// The decision waits for the one in flight (a session of this database on an advisory lock).
	dbtest.WaitFor(t, f.pool, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event = 'advisory')`)
	if err := other.Rollback(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCompileSaysWhatItDoes: with WithProgress, compiling and rendering the pack say each part
// as they start it, for a person at a terminal.
func TestCompileSaysWhatItDoes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-04-05")
	f.spend("delivery", "2021-02-01", "100.00")
	var said []string
	svc, err := New(f.l, f.prog, WithClock(f.clock.Now), WithVersion("infuse test"), WithProgress(func(doing string) { said = append(said, doing) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CompileWithPack(f.ctx, "2021Q1", pmAlice); err != nil {
		t.Fatal(err)
	}
	want := []string{"sealing the ledger's new entries", "reading the balances of 2021Q1", "reading the lines of 2021Q1",
		"writing the pack of 2021Q1: 1 line"}
	if !slices.Equal(said, want) {
		t.Errorf("said %q, want %q", said, want)
	}
}

// TestAReviewedPackIsReproducible: the pack the review stores names the reviewer without the
// review's time, which it cannot know yet; a pack of the reviewed claim rendered later is the
// same, byte for byte; once submitted, the pack gives the time too.
func TestAReviewedPackIsReproducible(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-04-15")
	f.spend("delivery", "2021-02-01", "1000.00")
	if _, err := f.svc.CompileWithPack(f.ctx, "2021Q1", pmAlice); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Review(f.ctx, "2021Q1", pmBryn); err != nil {
		t.Fatal(err)
	}
	stored, status, err := f.svc.StoredPack(f.ctx, "2021Q1")
	if err != nil || status != Reviewed {
		t.Fatalf("stored pack: %v, %v", status, err)
	}
	p, err := f.svc.Pack(f.ctx, "2021Q1")
	if err != nil {
		t.Fatal(err)
	}
	if p.ReviewedBy != pmBryn.Email || !p.ReviewedAt.IsZero() {
		t.Errorf("the reviewed claim's pack: reviewed by %q at %v", p.ReviewedBy, p.ReviewedAt)
	}
	again, _, err := reports.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range stored {
		if stored[i].SHA256 != again[i].SHA256 {
			t.Errorf("%s rendered again differs from the one the review stored", stored[i].Name)
		}
	}
	if _, err := f.svc.Submit(f.ctx, "2021Q1", pmAlice); err != nil {
		t.Fatal(err)
	}
	if p, err := f.svc.Pack(f.ctx, "2021Q1"); err != nil || p.ReviewedAt.IsZero() {
		t.Errorf("the submitted claim's pack gives no review time: %v", err)
	}
}
