package match_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
)

var officerSeq atomic.Int64

// officer records a new officer of auth with one rate version and returns its payroll ref.
func (f *fixture) officer(t testing.TB, auth, validFrom, cost, fte string) string {
	t.Helper()
	ref := fmt.Sprintf("%s-%06d", auth[3:], officerSeq.Add(1))
	f.version(t, auth, ref, validFrom, cost, fte)
	return ref
}

func (f *fixture) version(t testing.TB, auth, ref, validFrom, cost, fte string) {
	t.Helper()
	_, err := f.s.RecordOfficer(f.ctx, f.pm, match.OfficerInput{Authority: auth, PayrollRef: ref, Name: "Officer " + ref,
		ValidFrom: date(validFrom), AnnualCost: dec(cost), FTE: dec(fte)})
	if err != nil {
		t.Fatalf("record officer %s: %v", ref, err)
	}
}

// entry is a time entry of the officer ref of auth.
func entry(auth, ref, day, hours, activity string) match.TimeInput {
	return match.TimeInput{Authority: auth, PayrollRef: ref, WorkDate: date(day), Hours: dec(hours), Activity: activity,
		EvidenceRef: "TS-" + day + "-" + ref, ApprovedBy: "Gareth Morgan"}
}

func (f *fixture) record(by access.User, in match.TimeInput) error {
	_, err := f.s.RecordTime(f.ctx, by, in)
	return err
}

func (f *fixture) spend(by access.User, heading, day, payee, desc, amount, evidence, invoice string) error {
	_, err := f.s.RecordExpenditure(f.ctx, by, match.ExpenditureInput{Heading: heading, DefrayedOn: date(day), Payee: payee,
		Description: desc, Amount: dec(amount), EvidenceRef: evidence, InvoiceRef: invoice})
	return err
}

// TestRules has, for every rule id, a case that passes and one that breaks the rule.
func TestRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	type rc struct {
		rule string
		name string
		code apperr.Code
		run  func(t *testing.T) (pass, fail error)
	}
	nwp := func(t *testing.T) string { return f.officer(t, "GB-NWP", "2021-01-01", "44750.00", "0.8") }
	cases := []rc{
		{"V1", "WorkDateInsideWindow", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := f.officer(t, "GB-NWP", "2020-01-01", "44750.00", "0.8")
			return f.record(f.pm, entry("GB-NWP", ref, "2021-01-01", "7", "lab")), f.record(f.pm, entry("GB-NWP", ref, "2020-12-31", "7", "lab"))
		}},
		{"V1", "DefrayalDateInsideWindow", apperr.Invalid, func(t *testing.T) (error, error) {
			return f.spend(f.pm, "other", "2021-01-01", "Venue", "Hall V1", "10.00", "R-V1a", ""),
				f.spend(f.pm, "other", "2020-12-31", "Venue", "Hall V1", "10.00", "R-V1b", "")
		}},
		{"V2", "NotInTheFuture", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := nwp(t)
			return f.record(f.pm, entry("GB-NWP", ref, "2022-07-15", "7", "lab")), f.record(f.pm, entry("GB-NWP", ref, "2022-07-16", "7", "lab"))
		}},
		{"V3", "HoursOfOneEntry", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := nwp(t)
			return f.record(f.pm, entry("GB-NWP", ref, "2021-05-04", "12", "lab")), f.record(f.pm, entry("GB-NWP", ref, "2021-05-05", "12.25", "lab"))
		}},
		{"V3", "ZeroHours", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := nwp(t)
			return f.record(f.pm, entry("GB-NWP", ref, "2021-05-04", "0.25", "lab")), f.record(f.pm, entry("GB-NWP", ref, "2021-05-05", "0", "lab"))
		}},
		{"V3", "DailyTotal", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := nwp(t)
			if err := f.record(f.pm, entry("GB-NWP", ref, "2021-05-04", "8", "lab")); err != nil {
				return err, nil
			}
			pass := f.record(f.pm, entry("GB-NWP", ref, "2021-05-04", "4", "coaching"))
			return pass, f.record(f.pm, entry("GB-NWP", ref, "2021-05-04", "0.25", "steering"))
		}},
		{"V4", "AnnualCap", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := f.officer(t, "GB-NWP", "2021-01-01", "400.00", "0.01") // 17.2 hours a year
			if err := f.record(f.pm, entry("GB-NWP", ref, "2021-03-01", "12", "lab")); err != nil {
				return err, nil
			}
			pass := f.record(f.pm, entry("GB-NWP", ref, "2021-03-02", "5.2", "lab"))
			return pass, f.record(f.pm, entry("GB-NWP", ref, "2021-03-03", "0.01", "lab"))
		}},
		{"V4", "HighestFTEInForceDuringTheYear", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := f.officer(t, "GB-NWP", "2021-01-01", "400.00", "0.01")
			f.version(t, "GB-NWP", ref, "2021-07-01", "800.00", "0.02") // 34.4 hours a year from 2021 on
			for i, d := range []string{"2021-02-01", "2021-02-02"} {
				if err := f.record(f.pm, entry("GB-NWP", ref, d, "12", "lab")); err != nil {
					return err, nil
				}
				_ = i
			}
			pass := f.record(f.pm, entry("GB-NWP", ref, "2021-02-03", "10.4", "lab")) // 34.4 in all
			return pass, f.record(f.pm, entry("GB-NWP", ref, "2021-02-04", "0.01", "lab"))
		}},
		{"V5", "ReplayOrConflict", apperr.Conflict, func(t *testing.T) (error, error) {
			ref := nwp(t)
			in := entry("GB-NWP", ref, "2021-05-04", "7.25", "lab")
			first, err := f.s.RecordTime(f.ctx, f.pm, in)
			if err != nil {
				return err, nil
			}
			again, pass := f.s.RecordTime(f.ctx, f.foNWP, in)
			if pass == nil && (!again.Replayed || again.ID != first.ID || again.EntryID != first.EntryID) {
				t.Errorf("replay returned %+v, first %+v", again, first)
			}
			in.Hours = dec("7.5")
			return pass, f.record(f.pm, in)
		}},
		{"V6", "RateVersionForTheDate", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := f.officer(t, "GB-NWP", "2021-06-01", "44750.00", "0.8")
			return f.record(f.pm, entry("GB-NWP", ref, "2021-06-01", "7", "lab")), f.record(f.pm, entry("GB-NWP", ref, "2021-05-31", "7", "lab"))
		}},
		{"V7", "Evidence", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := nwp(t)
			bad := entry("GB-NWP", ref, "2021-05-05", "7", "lab")
			bad.EvidenceRef = " "
			return f.record(f.pm, entry("GB-NWP", ref, "2021-05-04", "7", "lab")), f.record(f.pm, bad)
		}},
		{"V7", "ApproverPresent", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := nwp(t)
			bad := entry("GB-NWP", ref, "2021-05-05", "7", "lab")
			bad.ApprovedBy = ""
			return f.record(f.pm, entry("GB-NWP", ref, "2021-05-04", "7", "lab")), f.record(f.pm, bad)
		}},
		{"V7", "ApproverIsNotTheRecorder", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := nwp(t)
			bad := entry("GB-NWP", ref, "2021-05-05", "7", "lab")
			bad.ApprovedBy = "  rhian   EVANS " // the finance officer recording it
			return f.record(f.foNWP, entry("GB-NWP", ref, "2021-05-04", "7", "lab")), f.record(f.foNWP, bad)
		}},
		{"V7", "ExpenditureEvidence", apperr.Invalid, func(t *testing.T) (error, error) {
			return f.spend(f.pm, "other", "2021-06-01", "Venue", "Hall V7", "10.00", "R-V7", ""),
				f.spend(f.pm, "other", "2021-06-01", "Venue", "Hall V7b", "10.00", "", "")
		}},
		{"V8", "FinanceOfficerOwnAuthority", apperr.Forbidden, func(t *testing.T) (error, error) {
			own := nwp(t)
			other := f.officer(t, "GB-CRF", "2021-01-01", "39000.00", "1")
			return f.record(f.foNWP, entry("GB-NWP", own, "2021-05-04", "7", "lab")), f.record(f.foNWP, entry("GB-CRF", other, "2021-05-04", "7", "lab"))
		}},
		{"A1", "RoleMayRecord", apperr.Forbidden, func(t *testing.T) (error, error) {
			ref := nwp(t)
			return f.record(f.foNWP, entry("GB-NWP", ref, "2021-05-04", "7", "lab")), f.record(f.audit, entry("GB-NWP", ref, "2021-05-05", "7", "lab"))
		}},
		{"A1", "FinanceOfficersRecordNoExpenditure", apperr.Forbidden, func(t *testing.T) (error, error) {
			return f.spend(f.pm, "other", "2021-06-01", "Venue", "Hall A1", "10.00", "R-A1", ""),
				f.spend(f.foNWP, "other", "2021-06-01", "Venue", "Hall A1b", "10.00", "R-A1b", "")
		}},
		{"R5.1", "FTEInRange", apperr.Invalid, func(t *testing.T) (error, error) {
			in := match.OfficerInput{Authority: "GB-BGE", PayrollRef: "BGE-R51", Name: "Carys Hughes", ValidFrom: date("2021-04-01"), AnnualCost: dec("38456.78"), FTE: dec("0.74")}
			_, pass := f.s.RecordOfficer(f.ctx, f.pm, in)
			in.ValidFrom, in.FTE = date("2022-04-01"), dec("1.2")
			_, fail := f.s.RecordOfficer(f.ctx, f.pm, in)
			return pass, fail
		}},
		{"R5.1", "AnnualCostAboveZero", apperr.Invalid, func(t *testing.T) (error, error) {
			in := match.OfficerInput{Authority: "GB-BGE", PayrollRef: "BGE-R51b", Name: "Carys Hughes", ValidFrom: date("2021-04-01"), AnnualCost: dec("38456.78"), FTE: dec("1")}
			_, pass := f.s.RecordOfficer(f.ctx, f.pm, in)
			in.ValidFrom, in.AnnualCost = date("2022-04-01"), dec("0")
			_, fail := f.s.RecordOfficer(f.ctx, f.pm, in)
			return pass, fail
		}},
		{"R5.3", "VersionNeverChanges", apperr.Conflict, func(t *testing.T) (error, error) {
			in := match.OfficerInput{Authority: "GB-BGE", PayrollRef: "BGE-R53", Name: "Carys Hughes", ValidFrom: date("2021-04-01"), AnnualCost: dec("38456.78"), FTE: dec("0.74")}
			if _, err := f.s.RecordOfficer(f.ctx, f.pm, in); err != nil {
				return err, nil
			}
			_, pass := f.s.RecordOfficer(f.ctx, f.pm, in) // the same version again: nothing changes
			in.AnnualCost = dec("39000.00")
			_, fail := f.s.RecordOfficer(f.ctx, f.pm, in)
			return pass, fail
		}},
		{"R6.4", "FlatRateHeadingTakesNoLines", apperr.Invalid, func(t *testing.T) (error, error) {
			return f.spend(f.pm, "delivery", "2021-06-30", "Nesta", "Lab R6.4", "100.00", "INV-R64", "R64"),
				f.spend(f.pm, "indirect", "2021-06-30", "Nesta", "Lab R6.4", "100.00", "INV-R64b", "R64b")
		}},
		{"R9.1", "PenceOnly", apperr.Invalid, func(t *testing.T) (error, error) {
			return f.spend(f.pm, "other", "2021-06-30", "Venue", "Hall R9.1", "10.01", "R-R91", ""),
				f.spend(f.pm, "other", "2021-06-30", "Venue", "Hall R9.1b", "10.015", "R-R91b", "")
		}},
		{"M1", "WellFormedFields", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := nwp(t)
			_, pass := f.importTime(f.pm, "GB-NWP,"+ref+",2021-05-04,7,lab,TS-M1,Gareth Morgan")
			_, fail := f.importTime(f.pm, "GB-NWP,"+ref+",04/05/2021,7,lab,TS-M1b,Gareth Morgan")
			return pass, fail
		}},
		{"R9.1", "ImportedAmountsInPence", apperr.Invalid, func(t *testing.T) (error, error) {
			body := "heading,defrayed_on,payee,description,amount,evidence_ref\n"
			_, pass := f.s.ImportExpenditure(f.ctx, f.pm, strings.NewReader(body+"other,2021-06-30,Venue,Hall R9.1c,1250.00,R-R91c\n"), match.ImportOptions{})
			_, fail := f.s.ImportExpenditure(f.ctx, f.pm, strings.NewReader(body+"other,2021-06-30,Venue,Hall R9.1d,\"1,250.00\",R-R91d\n"), match.ImportOptions{})
			return pass, fail
		}},
		{"M2", "KnownOfficer", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := nwp(t)
			return f.record(f.pm, entry("GB-NWP", ref, "2021-05-04", "7", "lab")), f.record(f.pm, entry("GB-NWP", ref+"-X", "2021-05-04", "7", "lab"))
		}},
		{"M2", "KnownActivity", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := nwp(t)
			return f.record(f.pm, entry("GB-NWP", ref, "2021-05-04", "7", "experiment")), f.record(f.pm, entry("GB-NWP", ref, "2021-05-04", "7", "training"))
		}},
		{"M3", "OfficerName", apperr.Invalid, func(t *testing.T) (error, error) {
			in := match.OfficerInput{Authority: "GB-TOF", PayrollRef: "TOF-M3", Name: "Eleri Price", ValidFrom: date("2021-04-01"), AnnualCost: dec("30000.00"), FTE: dec("1")}
			if _, err := f.s.RecordOfficer(f.ctx, f.pm, in); err != nil {
				return err, nil
			}
			in.ValidFrom, in.Name = date("2022-04-01"), " eleri  PRICE" // the same name, typed differently
			_, pass := f.s.RecordOfficer(f.ctx, f.pm, in)
			in.ValidFrom, in.Name = date("2023-04-01"), "Eleri Jones"
			_, fail := f.s.RecordOfficer(f.ctx, f.pm, in)
			return pass, fail
		}},
		{"M4", "CreditNoteNamesItsInvoice", apperr.Invalid, func(t *testing.T) (error, error) {
			if err := f.spend(f.pm, "delivery", "2021-06-30", "Y Lab", "Lab M4", "1000.00", "INV-M4", "M4-1"); err != nil {
				return err, nil
			}
			pass := f.spend(f.pm, "delivery", "2021-07-15", "Y Lab", "Credit M4", "-250.00", "CN-M4", "M4-1")
			return pass, f.spend(f.pm, "delivery", "2021-07-15", "Y Lab", "Credit M4b", "-250.00", "CN-M4b", "M4-2")
		}},
		{"M4", "CreditsNoMoreThanInvoiced", apperr.Invalid, func(t *testing.T) (error, error) {
			if err := f.spend(f.pm, "delivery", "2021-06-30", "Y Lab", "Lab M4c", "1000.00", "INV-M4c", "M4-3"); err != nil {
				return err, nil
			}
			pass := f.spend(f.pm, "delivery", "2021-07-15", "Y Lab", "Credit M4c", "-1000.00", "CN-M4c", "M4-3")
			return pass, f.spend(f.pm, "delivery", "2021-07-15", "Y Lab", "Credit M4d", "-0.01", "CN-M4d", "M4-3")
		}},
		{"M4", "CreditNoteWithoutInvoiceRef", apperr.Invalid, func(t *testing.T) (error, error) {
			return nil, f.spend(f.pm, "delivery", "2021-07-15", "Y Lab", "Credit M4e", "-5.00", "CN-M4e", "")
		}},
		{"M5", "ExpenditureReplayOrConflict", apperr.Conflict, func(t *testing.T) (error, error) {
			if err := f.spend(f.pm, "delivery", "2021-06-30", "Nesta", "Lab M5", "18250.00", "INV-M5", "M5"); err != nil {
				return err, nil
			}
			pass := f.spend(f.pm, "delivery", "2021-06-30", "Nesta", "Lab M5", "18250.00", "INV-M5", "M5")
			return pass, f.spend(f.pm, "delivery", "2021-06-30", "Nesta", "Lab M5", "18350.00", "INV-M5", "M5")
		}},
		{"M6", "ReversedOnce", apperr.Conflict, func(t *testing.T) (error, error) {
			ref := nwp(t)
			e, err := f.s.RecordTime(f.ctx, f.pm, entry("GB-NWP", ref, "2021-05-04", "7", "lab"))
			if err != nil {
				return err, nil
			}
			_, pass := f.s.ReverseTime(f.ctx, f.pm, e.ID, "wrong hours")
			_, fail := f.s.ReverseTime(f.ctx, f.pm, e.ID, "again")
			return pass, fail
		}},
		{"M6", "ReasonRequired", apperr.Invalid, func(t *testing.T) (error, error) {
			ref := nwp(t)
			e, err := f.s.RecordTime(f.ctx, f.pm, entry("GB-NWP", ref, "2021-05-04", "7", "lab"))
			if err != nil {
				return err, nil
			}
			_, fail := f.s.ReverseTime(f.ctx, f.pm, e.ID, "  ")
			return nil, fail
		}},
	}
	for _, c := range cases {
		t.Run(c.rule+"/"+c.name, func(t *testing.T) {
			t.Parallel()
			pass, fail := c.run(t)
			if pass != nil {
				t.Fatalf("passing case refused: %v", pass)
			}
			wantRule(t, fail, c.code, c.rule)
		})
	}
}

// TestR64UnderTheFortyPercentOption: with the 40% flat rate only staff and officer time take lines.
func TestR64UnderTheFortyPercentOption(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := programme.Default()
	p.FlatRate = programme.FlatRate{Kind: programme.FlatOther, Percent: dec("40")}
	s, err := match.New(f.l, p, match.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	in := match.ExpenditureInput{Heading: "staff", DefrayedOn: date("2021-06-30"), Payee: "Payroll", Description: "Salary June",
		Amount: dec("3000.00"), EvidenceRef: "PAY-2021-06"}
	if _, err := s.RecordExpenditure(f.ctx, f.pm, in); err != nil {
		t.Fatal(err)
	}
	in.Heading, in.EvidenceRef = "delivery", "INV-1"
	_, err = s.RecordExpenditure(f.ctx, f.pm, in)
	wantRule(t, err, apperr.Invalid, "R6.4")
}

// TestNewVersionNeverReprices: R5.3 — a version added later prices later lines only.
func TestNewVersionNeverReprices(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.officer(t, "GB-CAY", "2021-04-01", "38456.78", "0.74")
	first, err := f.s.RecordTime(f.ctx, f.pm, entry("GB-CAY", ref, "2021-05-04", "7.5", "lab"))
	if err != nil || first.Amount.StringFixed(2) != "226.61" {
		t.Fatalf("first = %+v, %v", first, err)
	}
	f.version(t, "GB-CAY", ref, "2021-05-01", "41280.00", "1") // back-dated pay award: £24.00 an hour
	again, err := f.s.TimeEntry(f.ctx, first.ID)
	if err != nil || !again.Amount.Equal(first.Amount) || !again.RateValidFrom.Equal(date("2021-04-01")) {
		t.Fatalf("the earlier line was repriced: %+v, %v", again, err)
	}
	second, err := f.s.RecordTime(f.ctx, f.pm, entry("GB-CAY", ref, "2021-05-05", "7.5", "lab"))
	if err != nil || second.Amount.StringFixed(2) != "180.00" || !second.RateValidFrom.Equal(date("2021-05-01")) {
		t.Fatalf("second = %+v, %v", second, err)
	}
	if got := f.balance(t, ledger.InKind("GB-CAY")); got.StringFixed(2) != "406.61" {
		t.Fatalf("in-kind GB-CAY = %s", got)
	}
}

// TestNamesCompareComposed: a name typed with a composed letter (â, as people type it) and the
// same name exported decomposed (a then a combining circumflex, as some systems write it) are one
// name to the rules that compare names: the officer's (M3) and the approver who is the recorder
// (V7).
func TestNamesCompareComposed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const composed, decomposed = "Siân Prydderch", "Sia\u0302n Prydderch"
	f.officers(t, "GB-NWP,NWP-NFC-1,"+composed+",2021-01-01,40000.00,1")
	res, err := f.s.ImportOfficers(f.ctx, f.pm, strings.NewReader("authority,payroll_ref,name,valid_from,annual_cost,fte\n"+
		"GB-NWP,NWP-NFC-1,"+decomposed+",2021-01-01,40000.00,1\n"), match.ImportOptions{})
	if err != nil || res.Written != 0 {
		t.Fatalf("the same officer, its name decomposed: %+v, %v\n%v", res, err, match.AsImportError(err))
	}

	in := entry("GB-NWP", "NWP-NFC-1", "2021-05-04", "2", "lab")
	in.ApprovedBy = "Rhia\u0302n Evans" // the recorder, foNWP, is Rhian Evans: not the same name
	if err := f.record(f.foNWP, in); err != nil {
		t.Fatalf("an approver who is not the recorder: %v", err)
	}
	self := entry("GB-NWP", "NWP-NFC-1", "2021-05-05", "2", "lab")
	self.ApprovedBy = "Sia\u0302n Morgan" // the programme manager, Siân Morgan, recording
	wantRule(t, f.record(f.pm, self), apperr.Invalid, match.RuleV7)
}

// The schema bounds text as the parsers do (M1, migrations/0023): a row written past them, by
// raw SQL, is refused with the same rule.
func TestTheSchemaBoundsText(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.officer(t, "GB-NWP", "2021-01-01", "40000.00", "1")
	if err := f.record(f.pm, entry("GB-NWP", ref, "2021-05-04", "2", "lab")); err != nil {
		t.Fatal(err)
	}
	if err := f.spend(f.pm, "delivery", "2021-05-04", "Y Lab", "Facilitation", "100.00", "INV-1", "1"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("ŵ", 1001)
	for table, field := range map[string]string{"officer": "name", "time_entry": "evidence_ref", "expenditure": "description"} {
		// A copy of the table's row with the one field too long: the checks come before the keys.
		_, err := f.pool.Exec(f.ctx, fmt.Sprintf(`INSERT INTO %[1]s OVERRIDING SYSTEM VALUE
			SELECT (jsonb_populate_record(NULL::%[1]s, to_jsonb(x) || jsonb_build_object('%[2]s', $1::text))).* FROM %[1]s x LIMIT 1`,
			table, field), long)
		wantRule(t, db.Translate("test", err), apperr.Invalid, match.RuleFormat)
	}
	// 1,000 characters, the limit, are allowed: as many bytes again past it in ŵ.
	if _, err := f.pool.Exec(f.ctx, `INSERT INTO officer (operation_id, authority, payroll_ref, name, recorded_at, recorded_by)
		VALUES ($1, 'GB-NWP', 'NWP-LONG', $2, now(), 'test')`, f.p.OperationID, long[len("ŵ"):]); err != nil {
		t.Errorf("an officer named with 1,000 characters: %v", err)
	}
}

// TestAnnualCapShownInFull: V4's message shows a maximum with more than two places in full, so
// that a total just over it (5.68 against 1720 × 0.0033 = 5.676) never reads as equal to it; a
// single recording and an import say the same.
func TestAnnualCapShownInFull(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.officer(t, "GB-NWP", "2021-01-01", "100.00", "0.0033")
	if err := f.record(f.pm, entry("GB-NWP", ref, "2021-03-01", "5.67", "lab")); err != nil {
		t.Fatal(err)
	}
	const want = "more than the annual maximum of 5.676 (1720 hours × FTE 0.0033, R5.2)"
	err := f.record(f.pm, entry("GB-NWP", ref, "2021-03-02", "0.01", "lab"))
	if apperr.RuleOf(err) != "V4" || !strings.Contains(apperr.Public(err), want) {
		t.Errorf("single recording: %v", err)
	}
	_, err = f.importTime(f.pm, csvRow(entry("GB-NWP", ref, "2021-03-02", "0.01", "lab")))
	if ie := match.AsImportError(err); ie == nil || len(ie.Rows) != 1 || ie.Rows[0].Rule != "V4" || !strings.Contains(ie.Rows[0].Message, want) {
		t.Errorf("import: %v", err)
	}
}
