package match_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
)

// csvRow renders a time input as a time.csv data row.
func csvRow(in match.TimeInput) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	d := ""
	if !in.WorkDate.IsZero() {
		d = in.WorkDate.Format("2006-01-02")
	}
	_ = w.Write([]string{in.Authority, in.PayrollRef, d, in.Hours.String(), in.Activity, in.EvidenceRef, in.ApprovedBy})
	w.Flush()
	return strings.TrimSuffix(b.String(), "\n")
}

// outcome is what a recording came to: its code and rule id ("ok" and "" when it wrote, "replay"
// when it found the identical entry recorded).
func outcome(err error, replayed bool) string {
	switch {
	case err != nil:
		return fmt.Sprintf("%s %s", apperr.CodeOf(err), apperr.RuleOf(err))
	case replayed:
		return "replay"
	}
	return "ok"
}

// TestSinglePathMatchesImport feeds the same good and bad entries through RecordTime (the
// single-entry path) and through a one-row ImportTime, each against its own officer with the
// same history, and wants the same outcome from both: the same code and rule id (the import's
// problems read as one recording's, by SingleError) and, when the entry is written, the same
// amount, rate version and generation.
func TestSinglePathMatchesImport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	type version struct{ from, cost, fte string }
	type tc struct {
		name     string
		auth     string    // the officer's authority
		versions []version // its rate versions (default: 2021-01-01, 44750.00, 0.8)
		before   func(ref string) []match.TimeInput
		reverse  bool // reverse what before records
		by       func() access.User
		in       func(ref string) match.TimeInput
		want     string
	}
	nwp := func(ref string) match.TimeInput { return entry("GB-NWP", ref, "2021-05-04", "7.25", "lab") }
	with := func(mod func(*match.TimeInput)) func(ref string) match.TimeInput {
		return func(ref string) match.TimeInput { in := nwp(ref); mod(&in); return in }
	}
	cases := []tc{
		{name: "Good", in: nwp, want: "ok"},
		{name: "GoodPartTimeRounding", versions: []version{{"2021-01-01", "38456.78", "0.74"}}, in: with(func(in *match.TimeInput) { in.Hours = dec("3.25") }), want: "ok"},
		{name: "GoodUnderNewerVersion", versions: []version{{"2021-01-01", "38456.78", "0.74"}, {"2021-05-01", "41280.00", "1"}}, in: nwp, want: "ok"},
		{name: "V1OutsideWindow", versions: []version{{"2020-01-01", "44750.00", "0.8"}}, in: with(func(in *match.TimeInput) { in.WorkDate = date("2020-12-31") }), want: "invalid V1"},
		{name: "V2Future", in: with(func(in *match.TimeInput) { in.WorkDate = date("2022-07-16") }), want: "invalid V2"},
		{name: "V3OneEntry", in: with(func(in *match.TimeInput) { in.Hours = dec("12.25") }), want: "invalid V3"},
		{name: "V3Zero", in: with(func(in *match.TimeInput) { in.Hours = dec("0") }), want: "invalid V3"},
		{name: "R93aPricesToNothing", versions: []version{{"2021-01-01", "1.00", "1"}}, in: with(func(in *match.TimeInput) { in.Hours = dec("0.25") }), want: "invalid R9.3a"},
		{name: "V3ThreePlaces", in: with(func(in *match.TimeInput) { in.Hours = dec("7.255") }), want: "invalid V3"},
		{name: "V3DailyTotal", before: func(ref string) []match.TimeInput {
			return []match.TimeInput{entry("GB-NWP", ref, "2021-05-04", "8", "coaching")}
		}, in: with(func(in *match.TimeInput) { in.Hours = dec("4.25") }), want: "invalid V3"},
		{name: "V3DailyTotalExactlyTheMaximum", before: func(ref string) []match.TimeInput {
			return []match.TimeInput{entry("GB-NWP", ref, "2021-05-04", "8", "coaching")}
		}, in: with(func(in *match.TimeInput) { in.Hours = dec("4") }), want: "ok"},
		{name: "V3ReversedHoursDoNotCount", before: func(ref string) []match.TimeInput {
			return []match.TimeInput{entry("GB-NWP", ref, "2021-05-04", "8", "coaching")}
		}, reverse: true, in: with(func(in *match.TimeInput) { in.Hours = dec("12") }), want: "ok"},
		{name: "V4AnnualCap", versions: []version{{"2021-01-01", "400.00", "0.01"}}, before: func(ref string) []match.TimeInput {
			return []match.TimeInput{entry("GB-NWP", ref, "2021-03-01", "12", "lab"), entry("GB-NWP", ref, "2021-03-02", "5", "lab")}
		}, in: with(func(in *match.TimeInput) { in.Hours = dec("0.25") }), want: "invalid V4"},
		{name: "V4AnnualCapOtherYearDoesNotCount", versions: []version{{"2021-01-01", "400.00", "0.01"}}, before: func(ref string) []match.TimeInput {
			return []match.TimeInput{entry("GB-NWP", ref, "2021-03-01", "12", "lab"), entry("GB-NWP", ref, "2022-03-02", "5", "lab")}
		}, in: with(func(in *match.TimeInput) { in.Hours = dec("5.2") }), want: "ok"},
		{name: "V4HighestFTEOfTheYear", versions: []version{{"2021-01-01", "400.00", "0.01"}, {"2021-07-01", "800.00", "0.02"}}, before: func(ref string) []match.TimeInput {
			return []match.TimeInput{entry("GB-NWP", ref, "2021-02-01", "12", "lab"), entry("GB-NWP", ref, "2021-02-02", "12", "lab")}
		}, in: with(func(in *match.TimeInput) { in.Hours = dec("10.4") }), want: "ok"},
		{name: "V4HighestFTEOfTheYearOnly", versions: []version{{"2021-01-01", "400.00", "0.01"}, {"2022-01-01", "800.00", "0.02"}}, before: func(ref string) []match.TimeInput {
			return []match.TimeInput{entry("GB-NWP", ref, "2021-02-01", "12", "lab")}
		}, in: with(func(in *match.TimeInput) { in.Hours = dec("5.21") }), want: "invalid V4"},
		{name: "V4VersionInForceOnNewYearsDay", versions: []version{{"2020-06-01", "800.00", "0.02"}, {"2021-01-02", "400.00", "0.01"}}, before: func(ref string) []match.TimeInput {
			return []match.TimeInput{entry("GB-NWP", ref, "2021-02-01", "12", "lab"), entry("GB-NWP", ref, "2021-02-02", "12", "lab")}
		}, in: with(func(in *match.TimeInput) { in.Hours = dec("10.4") }), want: "ok"},
		{name: "V5Replay", before: func(ref string) []match.TimeInput { return []match.TimeInput{nwp(ref)} }, in: nwp, want: "replay"},
		{name: "V5ReplayHoursWrittenDifferently", before: func(ref string) []match.TimeInput { return []match.TimeInput{nwp(ref)} },
			in: with(func(in *match.TimeInput) { in.Hours = dec("7.250") }), want: "replay"},
		{name: "V5ReplayAfterSpacesRecorded", before: func(ref string) []match.TimeInput {
			in := nwp(ref)
			in.EvidenceRef, in.ApprovedBy = in.EvidenceRef+" ", " Gareth Morgan "
			return []match.TimeInput{in}
		}, in: nwp, want: "replay"},
		{name: "V5ReplayWithSpaces", before: func(ref string) []match.TimeInput { return []match.TimeInput{nwp(ref)} },
			in: with(func(in *match.TimeInput) { in.EvidenceRef, in.ApprovedBy = " "+in.EvidenceRef+" ", in.ApprovedBy+" " }), want: "replay"},
		{name: "V5Conflict", before: func(ref string) []match.TimeInput { return []match.TimeInput{nwp(ref)} },
			in: with(func(in *match.TimeInput) { in.Hours = dec("7.5") }), want: "conflict V5"},
		{name: "V5ConflictApprover", before: func(ref string) []match.TimeInput { return []match.TimeInput{nwp(ref)} },
			in: with(func(in *match.TimeInput) { in.ApprovedBy = "Gareth Morgan-Jones" }), want: "conflict V5"},
		{name: "V5AfterReversal", before: func(ref string) []match.TimeInput { return []match.TimeInput{nwp(ref)} }, reverse: true,
			in: with(func(in *match.TimeInput) { in.Hours = dec("7.5") }), want: "ok"},
		{name: "V6NoVersionForTheDate", versions: []version{{"2021-06-01", "44750.00", "0.8"}}, in: nwp, want: "invalid V6"},
		{name: "V7Evidence", in: with(func(in *match.TimeInput) { in.EvidenceRef = " " }), want: "invalid V7"},
		{name: "V7Approver", in: with(func(in *match.TimeInput) { in.ApprovedBy = "" }), want: "invalid V7"},
		{name: "V7ApproverIsRecorder", by: func() access.User { return f.foNWP }, in: with(func(in *match.TimeInput) { in.ApprovedBy = " rhian EVANS" }), want: "invalid V7"},
		{name: "V7ApproverMayReplay", before: func(ref string) []match.TimeInput {
			in := nwp(ref)
			in.ApprovedBy = "Rhian Evans"
			return []match.TimeInput{in}
		}, by: func() access.User { return f.foNWP }, in: with(func(in *match.TimeInput) { in.ApprovedBy = "Rhian Evans" }), want: "replay"},
		{name: "V7AndV5ReportV5First", before: func(ref string) []match.TimeInput { return []match.TimeInput{nwp(ref)} },
			by: func() access.User { return f.foNWP }, in: with(func(in *match.TimeInput) { in.ApprovedBy = "Rhian Evans" }), want: "conflict V5"},
		{name: "V8OtherAuthority", auth: "GB-CRF", by: func() access.User { return f.foNWP }, in: with(func(in *match.TimeInput) { in.Authority = "GB-CRF" }), want: "forbidden V8"},
		{name: "V8OwnAuthority", by: func() access.User { return f.foNWP }, in: nwp, want: "ok"},
		{name: "V8HidesV5", auth: "GB-CRF", before: func(ref string) []match.TimeInput {
			in := nwp(ref)
			in.Authority = "GB-CRF"
			return []match.TimeInput{in}
		}, by: func() access.User { return f.foNWP }, in: with(func(in *match.TimeInput) { in.Authority, in.Hours = "GB-CRF", dec("1") }), want: "forbidden V8"},
		{name: "V8HidesV6", auth: "GB-CRF", versions: []version{{"2021-06-01", "44750.00", "0.8"}}, by: func() access.User { return f.foNWP },
			in: with(func(in *match.TimeInput) { in.Authority = "GB-CRF" }), want: "forbidden V8"},
		{name: "V8HidesUnknownOfficer", auth: "GB-CRF", by: func() access.User { return f.foNWP },
			in: with(func(in *match.TimeInput) { in.Authority, in.PayrollRef = "GB-CRF", in.PayrollRef+"-X" }), want: "forbidden V8"},
		{name: "A1RoleMayNotRecord", by: func() access.User { return f.audit }, in: nwp, want: "forbidden A1"},
		{name: "M1NoPayrollRef", in: with(func(in *match.TimeInput) { in.PayrollRef = "" }), want: "invalid M1"},
		{name: "M1NoDate", in: with(func(in *match.TimeInput) { in.WorkDate = time.Time{} }), want: "invalid M1"},
		{name: "M2UnknownOfficer", in: with(func(in *match.TimeInput) { in.PayrollRef += "-X" }), want: "invalid M2"},
		{name: "M2UnknownAuthority", in: with(func(in *match.TimeInput) { in.Authority = "GB-XYZ" }), want: "invalid M2"},
		{name: "M2UnknownActivity", in: with(func(in *match.TimeInput) { in.Activity = "training" }), want: "invalid M2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			auth := c.auth
			if auth == "" {
				auth = "GB-NWP"
			}
			versions := c.versions
			if versions == nil {
				versions = []version{{"2021-01-01", "44750.00", "0.8"}}
			}
			by := f.pm
			if c.by != nil {
				by = c.by()
			}
			// Two officers with the same history: one for each path.
			setup := func() string {
				ref := f.officer(t, auth, versions[0].from, versions[0].cost, versions[0].fte)
				for _, v := range versions[1:] {
					f.version(t, auth, ref, v.from, v.cost, v.fte)
				}
				if c.before != nil {
					for _, in := range c.before(ref) {
						e, err := f.s.RecordTime(f.ctx, f.pm, in)
						if err != nil {
							t.Fatalf("before: %v", err)
						}
						if c.reverse {
							if _, err := f.s.ReverseTime(f.ctx, f.pm, e.ID, "set-up"); err != nil {
								t.Fatalf("reverse: %v", err)
							}
						}
					}
				}
				return ref
			}
			single, viaImport := setup(), setup()

			in := c.in(single)
			got, err := f.s.RecordTime(f.ctx, by, in)
			singleOut := outcome(err, got.Replayed)

			in2 := c.in(viaImport)
			res, err := f.importTime(by, csvRow(in2))
			importOut := outcome(match.SingleError(err), err == nil && res.Written == 0)
			if err == nil && res.Written+res.Replayed != 1 {
				t.Fatalf("import: %+v", res)
			}

			if singleOut != c.want || importOut != c.want {
				t.Fatalf("RecordTime: %s, ImportTime: %s, want %s both", singleOut, importOut, c.want)
			}
			if c.want != "ok" && c.want != "replay" {
				return
			}
			// The lines written (or found) are the same, and RecordTime says what it recorded.
			var amount, hours, cost, fte string
			var from string
			var gen int
			if err := f.pool.QueryRow(f.ctx, `SELECT t.amount::text, t.hours::text, rv.annual_cost::text, rv.fte::text, t.rate_valid_from::text, t.generation
				FROM time_entry t JOIN officer o ON o.operation_id = t.operation_id AND o.id = t.officer_id
				JOIN rate_version rv ON rv.operation_id = t.operation_id AND rv.officer_id = t.officer_id AND rv.valid_from = t.rate_valid_from
				WHERE o.authority = $1 AND o.payroll_ref = $2 AND t.work_date = $3 AND t.activity = $4 AND t.reversed_by IS NULL`,
				in2.Authority, viaImport, in2.WorkDate, in2.Activity).Scan(&amount, &hours, &cost, &fte, &from, &gen); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%s %s %s %s %s %d", amount, hours, cost, fte, from, gen)
			gotS := fmt.Sprintf("%s %s %s %s %s %d", got.Amount.StringFixed(2), got.Hours.StringFixed(2), got.AnnualCost.StringFixed(2),
				got.FTE.StringFixed(4), got.RateValidFrom.Format("2006-01-02"), got.Generation)
			if gotS != want {
				t.Fatalf("RecordTime wrote %s, the import %s", gotS, want)
			}
			stored, err := f.s.TimeEntry(f.ctx, got.ID)
			if err != nil || stored.EntryID != got.EntryID || stored.Period != got.Period || !stored.Amount.Equal(got.Amount) ||
				stored.OfficerName != got.OfficerName || stored.RecordedBy != got.RecordedBy {
				t.Fatalf("RecordTime returned %+v, stored %+v, %v", got, stored, err)
			}
			entry, err := f.l.Entry(f.ctx, got.EntryID)
			if err != nil || len(entry.Postings) != 2 || entry.Postings[0].Account != ledger.InKind(in.Authority) ||
				!entry.Postings[0].Amount.Equal(got.Amount) || entry.Reference != fmt.Sprint(got.ID) {
				t.Fatalf("ledger entry %+v, %v", entry, err)
			}
		})
	}
}

// TestRecordTimeConcurrently: recordings for one officer that together would break a limit are
// serialised by the officer's lock, whichever path they take, so exactly the allowed ones are
// written.
func TestRecordTimeConcurrently(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	run := func(t *testing.T, ins []match.TimeInput) (ok int, fails []error) {
		var wg sync.WaitGroup
		errs := make([]error, len(ins))
		for i, in := range ins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%4 == 3 { // one in four by a one-row import: both paths lock the officer
					_, errs[i] = f.importTime(f.pm, csvRow(in))
					errs[i] = match.SingleError(errs[i])
					return
				}
				_, errs[i] = f.s.RecordTime(f.ctx, f.pm, in)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				fails = append(fails, err)
			}
		}
		return ok, fails
	}
	hoursOf := func(t *testing.T, ref, where string) string {
		var h string
		if err := f.pool.QueryRow(f.ctx, `SELECT coalesce(sum(t.hours), 0)::text FROM time_entry t JOIN officer o ON o.id = t.officer_id
			WHERE o.payroll_ref = $1 AND t.reversed_by IS NULL AND `+where, ref).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}

	t.Run("V3DailyMaximum", func(t *testing.T) {
		t.Parallel()
		ref := f.officer(t, "GB-NWP", "2021-01-01", "44750.00", "1")
		var ins []match.TimeInput
		for i, act := range append(match.Activities, match.Activities...)[:8] {
			in := entry("GB-NWP", ref, "2021-05-04", "5", act)
			in.EvidenceRef = fmt.Sprintf("TS-%d", i) // a second recording of an activity is a V5 conflict
			ins = append(ins, in)
		}
		ok, fails := run(t, ins)
		if ok != 2 {
			t.Fatalf("%d recordings of 5 hours written on one day, want 2 (daily maximum 12): %v", ok, fails)
		}
		for _, err := range fails {
			if r := apperr.RuleOf(err); r != match.RuleV3 && r != match.RuleV5 {
				t.Errorf("unexpected refusal: %v", err)
			}
		}
		if h := hoursOf(t, ref, "t.work_date = '2021-05-04'"); h != "10.00" {
			t.Fatalf("day total %s", h)
		}
	})

	t.Run("V4AnnualMaximum", func(t *testing.T) {
		t.Parallel()
		ref := f.officer(t, "GB-NWP", "2021-01-01", "400.00", "0.01") // 17.2 hours a year
		var ins []match.TimeInput
		for i := 0; i < 8; i++ {
			ins = append(ins, entry("GB-NWP", ref, fmt.Sprintf("2021-06-%02d", i+1), "3", "lab"))
		}
		ok, fails := run(t, ins)
		if ok != 5 {
			t.Fatalf("%d recordings of 3 hours written in 2021, want 5 (annual maximum 17.2): %v", ok, fails)
		}
		for _, err := range fails {
			if apperr.RuleOf(err) != match.RuleV4 || apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("unexpected refusal: %v", err)
			}
		}
		if h := hoursOf(t, ref, "true"); h != "15.00" {
			t.Fatalf("year total %s", h)
		}
	})

	t.Run("V5SameEntry", func(t *testing.T) {
		t.Parallel()
		ref := f.officer(t, "GB-NWP", "2021-01-01", "44750.00", "1")
		var ins []match.TimeInput
		for i := 0; i < 8; i++ {
			ins = append(ins, entry("GB-NWP", ref, "2021-05-04", "7", "lab"))
		}
		if ok, fails := run(t, ins); ok != 8 {
			t.Fatalf("identical recordings must all succeed (one writes, the rest replay): %v", fails)
		}
		if n := f.count(t, "time_entry t JOIN officer o ON o.id = t.officer_id WHERE o.payroll_ref = '"+ref+"'"); n != 1 {
			t.Fatalf("%d entries written", n)
		}
	})
}

// TestSingleExpenditureMatchesImport is TestSinglePathMatchesImport for expenditure lines: the
// same lines through RecordExpenditure and through a one-row ImportExpenditure, each path with
// its own copy of the history (evidence, description and invoice suffixed -a or -b).
func TestSingleExpenditureMatchesImport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	type tc struct {
		name    string
		before  func(sfx string) []match.ExpenditureInput
		reverse bool // reverse the first line before records
		by      func() access.User
		in      func(sfx string) match.ExpenditureInput
		want    string
	}
	line := func(sfx string) match.ExpenditureInput {
		return match.ExpenditureInput{Heading: "delivery", DefrayedOn: date("2021-06-30"), Payee: "Y Lab", Description: "Lab " + sfx,
			Amount: dec("1000.00"), EvidenceRef: "INV-" + sfx, InvoiceRef: "I-" + sfx}
	}
	creditNote := func(sfx string) match.ExpenditureInput {
		in := line(sfx)
		in.DefrayedOn, in.Description, in.Amount, in.EvidenceRef = date("2021-07-15"), "Credit "+sfx, dec("-250.00"), "CN-"+sfx
		return in
	}
	with := func(base func(string) match.ExpenditureInput, mod func(*match.ExpenditureInput)) func(string) match.ExpenditureInput {
		return func(sfx string) match.ExpenditureInput { in := base(sfx); mod(&in); return in }
	}
	invoice := func(sfx string) []match.ExpenditureInput { return []match.ExpenditureInput{line(sfx)} }
	payroll := with(line, func(in *match.ExpenditureInput) { in.Heading, in.InvoiceRef = "staff", "" })
	cases := []tc{
		{name: "Good", in: line, want: "ok"},
		{name: "GoodPayroll", in: payroll, want: "ok"},
		{name: "V1", in: with(line, func(in *match.ExpenditureInput) { in.DefrayedOn = date("2020-12-31") }), want: "invalid V1"},
		{name: "V2", in: with(line, func(in *match.ExpenditureInput) { in.DefrayedOn = date("2022-07-16") }), want: "invalid V2"},
		{name: "V7", in: with(line, func(in *match.ExpenditureInput) { in.EvidenceRef = "" }), want: "invalid V7"},
		{name: "R6.4", in: with(line, func(in *match.ExpenditureInput) { in.Heading = "indirect" }), want: "invalid R6.4"},
		{name: "M2Heading", in: with(line, func(in *match.ExpenditureInput) { in.Heading = "travel" }), want: "invalid M2"},
		{name: "M2InKind", in: with(line, func(in *match.ExpenditureInput) { in.Heading = "officer_time" }), want: "invalid M2"},
		{name: "R9.1Pence", in: with(line, func(in *match.ExpenditureInput) { in.Amount = dec("10.015") }), want: "invalid R9.1"},
		{name: "R9.1Zero", in: with(line, func(in *match.ExpenditureInput) { in.Amount = dec("0") }), want: "invalid R9.1"},
		{name: "M1Payee", in: with(line, func(in *match.ExpenditureInput) { in.Payee = "" }), want: "invalid M1"},
		{name: "A1", by: func() access.User { return f.foNWP }, in: line, want: "forbidden A1"},
		{name: "M5Replay", before: invoice, in: line, want: "replay"},
		{name: "M5ReplayAmountWrittenDifferently", before: invoice, in: with(line, func(in *match.ExpenditureInput) { in.Amount = dec("1000") }), want: "replay"},
		{name: "M5Conflict", before: invoice, in: with(line, func(in *match.ExpenditureInput) { in.Amount = dec("1000.01") }), want: "conflict M5"},
		{name: "M5ConflictPayee", before: invoice, in: with(line, func(in *match.ExpenditureInput) { in.Payee = "Nesta" }), want: "conflict M5"},
		{name: "M5ConflictPayroll", // a line with no invoice, as payroll lines are
			before: func(sfx string) []match.ExpenditureInput { return []match.ExpenditureInput{payroll(sfx)} },
			in:     with(payroll, func(in *match.ExpenditureInput) { in.Amount = dec("1000.01") }), want: "conflict M5"},
		{name: "M5AfterReversal", before: invoice, reverse: true, in: with(line, func(in *match.ExpenditureInput) { in.Amount = dec("900.00") }), want: "ok"},
		{name: "M4CreditNote", before: invoice, in: creditNote, want: "ok"},
		{name: "M4CreditNoteWholeInvoice", before: func(sfx string) []match.ExpenditureInput {
			cn := creditNote(sfx)
			cn.Amount = dec("-600.00")
			return []match.ExpenditureInput{line(sfx), cn}
		}, in: with(creditNote, func(in *match.ExpenditureInput) {
			in.Description, in.EvidenceRef, in.Amount = in.Description+" 2", in.EvidenceRef+"-2", dec("-400.00")
		}), want: "ok"},
		{name: "M4CreditsMoreThanInvoiced", before: func(sfx string) []match.ExpenditureInput {
			cn := creditNote(sfx)
			cn.Amount = dec("-600.00")
			return []match.ExpenditureInput{line(sfx), cn}
		}, in: with(creditNote, func(in *match.ExpenditureInput) {
			in.Description, in.EvidenceRef, in.Amount = in.Description+" 2", in.EvidenceRef+"-2", dec("-400.01")
		}), want: "invalid M4"},
		{name: "M4NoInvoice", in: creditNote, want: "invalid M4"},
		{name: "M4InvoiceUnderAnotherHeading", before: invoice, in: with(creditNote, func(in *match.ExpenditureInput) { in.Heading = "other" }), want: "invalid M4"},
		{name: "M4InvoiceReversed", before: invoice, reverse: true, in: creditNote, want: "invalid M4"},
		{name: "M4NoInvoiceRef", in: with(creditNote, func(in *match.ExpenditureInput) { in.InvoiceRef = "" }), want: "invalid M4"},
	}
	row := func(in match.ExpenditureInput) string {
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		_ = w.Write([]string{in.Heading, in.DefrayedOn.Format("2006-01-02"), in.Payee, in.Description, in.Amount.String(), in.EvidenceRef, in.InvoiceRef})
		w.Flush()
		return "heading,defrayed_on,payee,description,amount,evidence_ref,invoice_ref\n" + b.String()
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			by := f.pm
			if c.by != nil {
				by = c.by()
			}
			sfx := map[bool]string{true: c.name + "-a", false: c.name + "-b"}
			for _, single := range []bool{true, false} {
				if c.before != nil {
					for i, in := range c.before(sfx[single]) {
						e, err := f.s.RecordExpenditure(f.ctx, f.pm, in)
						if err != nil {
							t.Fatalf("before: %v", err)
						}
						if c.reverse && i == 0 {
							if _, err := f.s.ReverseExpenditure(f.ctx, f.pm, e.ID, "set-up"); err != nil {
								t.Fatalf("reverse: %v", err)
							}
						}
					}
				}
			}
			got, err := f.s.RecordExpenditure(f.ctx, by, c.in(sfx[true]))
			singleOut := outcome(err, got.Replayed)
			res, err := f.s.ImportExpenditure(f.ctx, by, strings.NewReader(row(c.in(sfx[false]))), match.ImportOptions{})
			importOut := outcome(match.SingleError(err), err == nil && res.Written == 0)
			if singleOut != c.want || importOut != c.want {
				t.Fatalf("RecordExpenditure: %s, ImportExpenditure: %s, want %s both", singleOut, importOut, c.want)
			}
			if c.want != "ok" && c.want != "replay" {
				return
			}
			stored, err := f.s.Expenditure(f.ctx, got.ID)
			if err != nil || stored.EntryID != got.EntryID || stored.Period != got.Period || !stored.Amount.Equal(got.Amount) ||
				stored.Credits != got.Credits || stored.Generation != got.Generation || stored.ReversedBy != 0 {
				t.Fatalf("RecordExpenditure returned %+v, stored %+v, %v", got, stored, err)
			}
			var other match.Expenditure
			if err := f.pool.QueryRow(f.ctx, `SELECT coalesce(credits, 0) <> 0, generation FROM expenditure
				WHERE evidence_ref = $1 AND description = $2 AND reversed_by IS NULL`, c.in(sfx[false]).EvidenceRef, c.in(sfx[false]).Description).
				Scan(new(bool), &other.Generation); err != nil || other.Generation != got.Generation || (got.Credits != 0) != (c.name[:2] == "M4") {
				t.Fatalf("import wrote generation %d, single %d (credits %d): %v", other.Generation, got.Generation, got.Credits, err)
			}
		})
	}
}

// TestRecordTimeInGroups: recordings for many officers at once are recorded in shared
// transactions (group.go), and each still gets the outcome it would have had alone: the good
// ones written once with their ledger entries, an identical pair written once and replayed once,
// each refusal (V6, V8, an unknown officer) writing nothing, and the ledger verifying.
func TestRecordTimeInGroups(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	type job struct {
		in   match.TimeInput
		by   access.User
		want string // the outcome; "ok|replay" for the two of an identical pair
		ref  string
	}
	var jobs []job
	const officers = 12
	refs := make([]string, officers)
	for k := range refs {
		auth, by, other := "GB-NWP", f.foNWP, f.foCRF
		if k%2 == 1 {
			auth, by, other = "GB-CRF", f.foCRF, f.foNWP
		}
		ref := f.officer(t, auth, "2021-03-01", "44750.00", "0.8")
		refs[k] = ref
		for d, act := range []string{"lab", "experiment", "coaching"} {
			jobs = append(jobs, job{in: entry(auth, ref, fmt.Sprintf("2021-05-%02d", d+3), "7.5", act), by: by, want: "ok", ref: ref})
		}
		pair := entry(auth, ref, "2021-06-01", "3", "steering")
		jobs = append(jobs, job{in: pair, by: by, want: "ok|replay", ref: ref}, job{in: pair, by: f.pm, want: "ok|replay", ref: ref})
		jobs = append(jobs, job{in: entry(auth, ref, "2021-02-26", "2", "lab"), by: by, want: "invalid V6", ref: ref})
		jobs = append(jobs, job{in: entry(auth, ref, "2021-06-02", "2", "lab"), by: other, want: "forbidden V8", ref: ref})
	}
	jobs = append(jobs, job{in: entry("GB-NWP", "NWP-NOBODY", "2021-05-03", "1", "lab"), by: f.pm, want: "invalid M2"})
	before := f.count(t, "time_entry")

	outcomes := make([]string, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := f.s.RecordTime(f.ctx, j.by, j.in)
			outcomes[i] = outcome(err, e.Replayed)
		}()
	}
	wg.Wait()

	perPair := map[string][]string{}
	for i, j := range jobs {
		if j.want == "ok|replay" {
			perPair[j.ref] = append(perPair[j.ref], outcomes[i])
			continue
		}
		if outcomes[i] != j.want {
			t.Errorf("%s %s %s by %s: %s, want %s", j.in.PayrollRef, j.in.WorkDate.Format("2006-01-02"), j.in.Activity,
				j.by.Email, outcomes[i], j.want)
		}
	}
	for ref, got := range perPair {
		if fmt.Sprint(got) != "[ok replay]" && fmt.Sprint(got) != "[replay ok]" {
			t.Errorf("%s: the identical pair came to %v, want one ok and one replay", ref, got)
		}
	}
	if n := f.count(t, "time_entry") - before; n != officers*4 {
		t.Fatalf("%d time entries written, want %d", n, officers*4)
	}
	// Each line has its own balanced entry of its own amount (R4.7), and fewer transactions
	// wrote them than there are lines: the recordings were grouped.
	var lines, txns int
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*), count(DISTINCT e.txid) FROM time_entry t
		JOIN entry e ON e.operation_id = t.operation_id AND e.id = t.entry_id
		JOIN posting p ON p.operation_id = e.operation_id AND p.entry_id = e.id AND p.line = 1 AND p.amount = t.amount
		JOIN officer o ON o.operation_id = t.operation_id AND o.id = t.officer_id
		WHERE o.payroll_ref = ANY($1) AND e.reference = t.id::text`, refs).Scan(&lines, &txns); err != nil {
		t.Fatal(err)
	}
	if lines != officers*4 {
		t.Fatalf("%d lines have their ledger entry, want %d", lines, officers*4)
	}
	if txns >= lines {
		t.Errorf("%d lines written by %d transactions: no recordings were grouped", lines, txns)
	}
	t.Logf("%d lines written by %d transactions", lines, txns)
	rep, err := f.l.Verify(f.ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

// TestRecordTimeGoesOnWhileAnOfficerIsLocked: while another transaction holds an officer (an
// import of its authority's file, say), recordings of other officers are not held up behind
// that officer's; its own wait for the lock, in their order, and are recorded once it is let go.
func TestRecordTimeGoesOnWhileAnOfficerIsLocked(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	held := f.officer(t, "GB-NWP", "2021-01-01", "44750.00", "1")
	free := f.officer(t, "GB-CRF", "2021-01-01", "44750.00", "1")
	other := f.officer(t, "GB-NWP", "2021-01-01", "44750.00", "1") // held too, with nothing queued for it
	tx, err := f.pool.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(f.ctx)
	if _, err := tx.Exec(f.ctx, `SELECT id FROM officer WHERE payroll_ref IN ($1, $2) FOR NO KEY UPDATE`, held, other); err != nil {
		t.Fatal(err)
	}
	type result struct {
		name string
		err  error
	}
	waiting := make(chan result, 2)
	record := func(name string, in match.TimeInput) {
		_, err := f.s.RecordTime(f.ctx, f.pm, in)
		waiting <- result{name, err}
	}
	// The first recording of the held officer waits for the lock (a session of this database
	// waiting on a lock); the second queues behind it.
	go record("first", entry("GB-NWP", held, "2021-05-04", "5", "lab"))
	waitingFor(t, f, "%")
	go record("second", entry("GB-NWP", held, "2021-05-04", "5", "experiment"))

	// Another officer's recordings go on meanwhile. Before, they queued behind the held officer's
	// group until the lock was let go: the deadline fails them, not the test's timeout.
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	for _, act := range []string{"lab", "experiment", "coaching"} {
		if _, err := f.s.RecordTime(ctx, f.pm, entry("GB-CRF", free, "2021-05-04", "2", act)); err != nil {
			t.Fatalf("%s of an officer nobody holds, while another is held: %v", act, err)
		}
	}
	// A recording refused by V8 needs no lock: it is refused at once, held officer or not.
	wantRule(t, func() error {
		_, err := f.s.RecordTime(ctx, f.foCRF, entry("GB-NWP", other, "2021-05-05", "1", "lab"))
		return err
	}(), apperr.Forbidden, match.RuleV8)
	select {
	case r := <-waiting:
		t.Fatalf("the %s recording of the held officer finished while it was held: %v", r.name, r.err)
	default:
	}

	if err := tx.Rollback(f.ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r := <-waiting; r.err != nil {
			t.Fatalf("%s recording once the officer was let go: %v", r.name, r.err)
		}
	}
	var acts []string
	if err := f.pool.QueryRow(f.ctx, `SELECT array_agg(t.activity::text ORDER BY t.id) FROM time_entry t JOIN officer o ON o.id = t.officer_id
		WHERE o.payroll_ref = $1`, held).Scan(&acts); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(acts) != "[lab experiment]" {
		t.Fatalf("the held officer's entries, in the order written: %v, want [lab experiment]", acts)
	}
}

// TestLaneTimesOutOnlyTheOfficersLock: the waiting lane's short lock timeout is for the officer's
// lock alone. Once it has the officer, its writes wait for other locks (a claim's submission
// locking the ledger's entries, say) as any recording's do, rather than failing.
func TestLaneTimesOutOnlyTheOfficersLock(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	match.SetLaneLockTimeout(f.s, "100ms")
	ref := f.officer(t, "GB-NWP", "2021-01-01", "44750.00", "1")
	officer, err := f.pool.Begin(f.ctx) // an import holding the officer
	if err != nil {
		t.Fatal(err)
	}
	defer officer.Rollback(f.ctx)
	if _, err := officer.Exec(f.ctx, `SELECT id FROM officer WHERE payroll_ref = $1 FOR NO KEY UPDATE`, ref); err != nil {
		t.Fatal(err)
	}
	entries, err := f.pool.Begin(f.ctx) // a submission holding the ledger's entries
	if err != nil {
		t.Fatal(err)
	}
	defer entries.Rollback(f.ctx)
	if _, err := entries.Exec(f.ctx, `LOCK TABLE entry IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.s.RecordTime(f.ctx, f.pm, entry("GB-NWP", ref, "2021-05-04", "5", "lab"))
		done <- err
	}()
	waitingFor(t, f, "%FROM officer%")
	if err := officer.Commit(f.ctx); err != nil {
		t.Fatal(err)
	}
	waitingFor(t, f, "%INSERT INTO entry%")
	time.Sleep(300 * time.Millisecond) // three times the lane's lock timeout
	if err := entries.Commit(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the recording, once the officer and the entries were let go: %v", err)
	}
}

// waitingFor waits until a session of f's database waits on a lock in a statement like query (a
// LIKE pattern).
func waitingFor(t *testing.T, f *fixture, query string) {
	t.Helper()
	dbtest.WaitFor(t, f.pool, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1)`, query)
}
