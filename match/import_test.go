package match_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
)

// thousandRows returns 1,000 good time rows: 50 officers (25 in Newport, 25 in Cardiff), each
// with a 7-hour lab day a week for 20 weeks from May 2021.
func thousandRows(t testing.TB, f *fixture) []string {
	t.Helper()
	var officers []string
	for i := 0; i < 50; i++ {
		auth := []string{"GB-NWP", "GB-CRF"}[i%2]
		officers = append(officers, fmt.Sprintf("%s,%s-%04d,Officer %d,2021-04-01,%d.%02d,%s", auth, auth[3:], i, i, 30000+i*97, i, []string{"1", "0.8", "0.74", "0.6"}[i%4]))
	}
	f.officers(t, officers...)
	var rows []string
	start := date("2021-05-04")
	for w := 0; w < 20; w++ {
		for i := 0; i < 50; i++ {
			auth := []string{"GB-NWP", "GB-CRF"}[i%2]
			d := start.AddDate(0, 0, 7*w+i%5)
			rows = append(rows, fmt.Sprintf("%s,%s-%04d,%s,7,lab,TS-%d-%d,Line Manager %d", auth, auth[3:], i, d.Format(time.DateOnly), w, i, i))
		}
	}
	return rows
}

type ledgerState struct {
	Entries, TimeEntries, Imports int
	InKind, Match                 string
}

func (f *fixture) state(t testing.TB) ledgerState {
	return ledgerState{f.count(t, "entry"), f.count(t, "time_entry"), f.count(t, "import_run"),
		f.balance(t, ledger.InKind("GB-NWP")).Add(f.balance(t, ledger.InKind("GB-CRF"))).StringFixed(2),
		f.balance(t, ledger.Match("GB-NWP")).Add(f.balance(t, ledger.Match("GB-CRF"))).StringFixed(2)}
}

func TestImportTimeThousandRowsFiveBad(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rows := thousandRows(t, f)
	good := append([]string(nil), rows...)
	// Five bad rows, each breaking a different rule. Data row i is spreadsheet row i+2.
	bad := map[int64]string{}
	breakRow := func(i int, rule, row string) { rows[i] = row; bad[int64(i+2)] = rule }
	breakRow(10, "M1", strings.Replace(rows[10], "2021-05-", "2021/05/", 1))
	breakRow(200, "V3", strings.Replace(rows[200], ",7,lab", ",13,lab", 1))
	breakRow(333, "M2", strings.Replace(rows[333], "-0033,", "-9999,", 1))
	breakRow(640, "V7", rows[640][:strings.LastIndex(rows[640], ",")+1])
	breakRow(999, "V1", "GB-NWP,NWP-0000,2020-12-01,7,lab,TS-early,Line Manager 0")
	before := f.state(t)

	_, err := f.importTime(f.pm, rows...)
	wantRule(t, err, apperr.Invalid, "M1")
	ie := match.AsImportError(err)
	got := map[int64]string{}
	for _, r := range ie.Rows {
		got[r.Row] = r.Rule
	}
	if !reflect.DeepEqual(got, bad) {
		t.Fatalf("reported %v, want exactly %v:\n%s", got, bad, ie)
	}
	if after := f.state(t); after != before {
		t.Fatalf("a refused import wrote: %+v → %+v", before, after)
	}

	res, err := f.importTime(f.pm, good...)
	if err != nil || res.Rows != 1000 || res.Written != 1000 || res.Replayed != 0 || res.ImportID == 0 {
		t.Fatalf("good file: %+v, %v\n%s", res, err, rowsOf(err))
	}
	once := f.state(t)
	if once.TimeEntries != 1000 || once.InKind != strings.TrimPrefix(once.Match, "-") {
		t.Fatalf("after the good file: %+v", once)
	}
	res, err = f.importTime(f.pm, good...)
	if err != nil || res.Written != 0 || res.Replayed != 1000 || res.ImportID != 0 {
		t.Fatalf("second import: %+v, %v", res, err)
	}
	if twice := f.state(t); twice != once {
		t.Fatalf("re-importing the same file changed %+v → %+v", once, twice)
	}
}

func TestImportTimeV8FinanceOfficerScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.officers(t, "GB-NWP,NWP-1,Rhian Evans,2021-04-01,44750.00,0.8", "GB-CRF,CRF-1,Dai Jones,2021-04-01,39000.00,1")
	_, err := f.importTime(f.foNWP,
		"GB-NWP,NWP-1,2021-05-04,7,lab,TS-1,Gareth Morgan",
		"GB-CRF,CRF-1,2021-05-04,7,lab,TS-2,Gareth Morgan")
	ie := match.AsImportError(err)
	if ie == nil || len(ie.Rows) != 1 || ie.Rows[0].Row != 3 || ie.Rows[0].Rule != "V8" {
		t.Fatalf("want row 3 refused by V8, got %v\n%s", err, rowsOf(err))
	}
	if n := f.count(t, "time_entry"); n != 0 {
		t.Fatalf("%d entries written", n)
	}
	if _, err := f.importTime(f.foNWP, "GB-NWP,NWP-1,2021-05-04,7,lab,TS-1,Gareth Morgan"); err != nil {
		t.Fatalf("own authority: %v", err)
	}
	// Officers too: a finance officer imports only its authority's.
	_, err = f.s.ImportOfficers(f.ctx, f.foNWP, strings.NewReader("authority,payroll_ref,name,valid_from,annual_cost,fte\nGB-CRF,CRF-2,Bethan Lloyd,2021-04-01,30000.00,1\n"), match.ImportOptions{})
	wantRule(t, err, apperr.Invalid, "V8")
	// And no expenditure at all.
	_, err = f.s.ImportExpenditure(f.ctx, f.foNWP, strings.NewReader("heading,defrayed_on,payee,description,amount,evidence_ref\n"), match.ImportOptions{})
	wantRule(t, err, apperr.Forbidden, "A1")
}

// TestV8RefusalRevealsNothing: a finance officer recording time for another authority's officer,
// by a file or one at a time, is told V8 and nothing else. The other rules' messages would
// describe that authority's records: whether the officer exists (M2), its rate versions (V6), its
// live entry with hours, evidence and approver (V5).
func TestV8RefusalRevealsNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.officers(t, "GB-CRF,CRF-1,Dai Jones,2021-01-01,39000.00,1", "GB-CRF,CRF-2,Bethan Lloyd,2021-06-01,41000.00,1",
		"GB-NWP,NWP-1,Rhian Evans,2021-01-01,44750.00,0.8")
	if _, err := f.importTime(f.foCRF, "GB-CRF,CRF-1,2021-05-04,7,lab,TS-CRF-SECRET,Secret Manager"); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"SECRET", "Secret", "2021-06-01", "no officer", "rate version", "7.00"}
	leaks := func(msg string) bool {
		for _, s := range secrets {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	others := []string{
		"GB-CRF,CRF-1,2021-05-04,5,lab,TS-9,Gareth Morgan",           // V5 against CRF-1's live entry
		"GB-CRF,CRF-2,2021-05-04,5,lab,TS-9,Gareth Morgan",           // V6: CRF-2's first version is from June
		"GB-CRF,CRF-9,2021-05-04,5,lab,TS-9,Gareth Morgan",           // M2: no such officer
		"GB-CRF,CRF-1,2021-05-04,7,lab,TS-CRF-SECRET,Secret Manager", // identical to the live entry
	}
	// check imports rows as Newport's finance officer and wants exactly the problems want (row:rule).
	check := func(t *testing.T, rows []string, want string) {
		t.Helper()
		_, err := f.importTime(f.foNWP, rows...)
		ie := match.AsImportError(err)
		if ie == nil {
			t.Fatalf("want V8 refusals, got %v", err)
		}
		var got []string
		for _, r := range ie.Rows {
			if r.Rule == "V8" && leaks(r.Message) {
				t.Errorf("row %d: %s: %s", r.Row, r.Rule, r.Message)
			}
			got = append(got, fmt.Sprintf("%d:%s", r.Row, r.Rule))
		}
		if strings.Join(got, " ") != want {
			t.Fatalf("problems %v, want %s\n%s", got, want, ie)
		}
	}
	t.Run("Import", func(t *testing.T) {
		check(t, append([]string{"GB-NWP,NWP-1,2021-05-04,7,lab,TS-1,Gareth Morgan"}, others...), "3:V8 4:V8 5:V8 6:V8")
	})
	t.Run("ImportNoKnownOfficer", func(t *testing.T) {
		// No officer of the file exists: the import's shortcut for that case refuses by V8 too.
		check(t, []string{"GB-CRF,CRF-9,2021-05-04,5,lab,TS-9,Gareth Morgan", "GB-NWP,NWP-9,2021-05-04,5,lab,TS-9,Gareth Morgan"}, "2:V8 3:M2")
	})
	t.Run("RecordTime", func(t *testing.T) {
		for _, row := range others {
			fields := strings.Split(row, ",")
			in := entry(fields[0], fields[1], fields[2], fields[3], fields[4])
			in.EvidenceRef, in.ApprovedBy = fields[5], fields[6]
			_, err := f.s.RecordTime(f.ctx, f.foNWP, in)
			wantRule(t, err, apperr.Forbidden, "V8")
			if e := apperr.As(err); leaks(e.Message) {
				t.Errorf("%s: %s", row, e.Message)
			}
		}
	})
	if n := f.count(t, "time_entry"); n != 1 {
		t.Fatalf("%d time entries, want the one recorded by Cardiff", n)
	}
}

func TestImportFileShape(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.officers(t, "GB-NWP,NWP-1,Rhian Evans,2021-04-01,44750.00,0.8")
	imp := func(body string) error {
		_, err := f.s.ImportTime(f.ctx, f.pm, strings.NewReader(body), match.ImportOptions{})
		return err
	}
	err := imp("authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by,notes\n")
	if ie := match.AsImportError(err); ie == nil || ie.Rows[0].Row != 1 || ie.Rows[0].Rule != "M1" || !strings.Contains(ie.Rows[0].Message, "notes") {
		t.Fatalf("unknown column: %v", err)
	}
	// BOM, columns in another order, CRLF, a blank trailing row: accepted.
	var phases []string
	res, err := f.s.ImportTime(f.ctx, f.pm, strings.NewReader("\xEF\xBB\xBFapproved_by,evidence_ref,activity,hours,work_date,payroll_ref,authority\r\n"+
		"Gareth Morgan,TS-1,lab,7.25,2021-05-04,NWP-1,GB-NWP\r\n,,,,,,\r\n"),
		match.ImportOptions{Progress: func(p match.Progress) { phases = append(phases, p.Phase) }})
	if err != nil {
		t.Fatalf("BOM and any order: %v\n%s", err, rowsOf(err))
	}
	if strings.Join(phases, ",") != "checking,posting,writing,done" {
		t.Fatalf("progress phases %v", phases)
	}
	if res.Rows != 1 || res.Written != 1 {
		t.Fatalf("a row and a blank row: %+v; want 1 row read (the blank one is not a row of the summary), 1 written", res)
	}
	// Within a file: an identical repeated row is a replay, counted as a repeat of the file's own
	// row (not as recorded before); a different one a conflict.
	twice := []string{"GB-NWP,NWP-1,2021-05-05,7,lab,TS-2,Gareth Morgan", "GB-NWP,NWP-1,2021-05-05,7,lab,TS-2,Gareth Morgan"}
	res, err = f.importTime(f.pm, twice...)
	if err != nil || res.Written != 1 || res.Replayed != 1 || res.Repeated != 1 {
		t.Fatalf("repeated row: %+v, %v", res, err)
	}
	if res, err = f.importTime(f.pm, twice...); err != nil || res.Written != 0 || res.Replayed != 2 || res.Repeated != 0 {
		t.Fatalf("the file again: %+v, %v; want both rows recorded before, none a repeat of a new row", res, err)
	}
	const expHeader = "heading,defrayed_on,payee,description,amount,evidence_ref\n"
	taxi := "other,2021-06-15,Travel Co,Taxi,45.50,REC-1\n"
	for i, want := range []match.ImportResult{{Written: 1, Replayed: 1, Repeated: 1}, {Written: 0, Replayed: 2, Repeated: 0}} {
		res, err := f.s.ImportExpenditure(f.ctx, f.pm, strings.NewReader(expHeader+taxi+taxi), match.ImportOptions{})
		if err != nil || res.Written != want.Written || res.Replayed != want.Replayed || res.Repeated != want.Repeated {
			t.Fatalf("expenditure file with a row twice, import %d: %+v, %v; want %+v", i+1, res, err, want)
		}
	}
	_, err = f.importTime(f.pm, "GB-NWP,NWP-1,2021-05-06,7,lab,TS-3,Gareth Morgan", "GB-NWP,NWP-1,2021-05-06,6,lab,TS-3,Gareth Morgan")
	if ie := match.AsImportError(err); ie == nil || len(ie.Rows) != 1 || ie.Rows[0].Row != 3 || ie.Rows[0].Rule != "V5" {
		t.Fatalf("conflicting rows: %v", rowsOf(err))
	}
	// V3 and V4 count the file's rows together with what is recorded.
	_, err = f.importTime(f.pm, "GB-NWP,NWP-1,2021-05-04,4,coaching,TS-4,Gareth Morgan", "GB-NWP,NWP-1,2021-05-04,1,steering,TS-5,Gareth Morgan")
	if ie := match.AsImportError(err); ie == nil || len(ie.BadRows()) != 2 || ie.Rows[0].Rule != "V3" {
		t.Fatalf("daily total over file and database: %v", rowsOf(err))
	}
}

// TestImportRowNumbersCountEmptyLines: a file with empty lines between its rows names each bad
// row by the row a spreadsheet shows it on, which is its line in the file.
func TestImportRowNumbersCountEmptyLines(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.officers(t, "GB-NWP,NWP-1,Rhian Evans,2021-04-01,44750.00,0.8")
	_, err := f.importTime(f.pm,
		"GB-NWP,NWP-1,2021-05-04,7,lab,TS-1,Gareth Morgan", // row 2
		"", // row 3
		"GB-NWP,NWP-1,2021-05-05,13,lab,TS-2,Gareth Morgan", // row 4: V3
		"", "", // rows 5 and 6
		"GB-NWP,NWP-9,2021-05-06,7,lab,TS-3,Gareth Morgan", // row 7: M2
	)
	ie := match.AsImportError(err)
	if ie == nil || fmt.Sprint(ie.BadRows()) != "[4 7]" {
		t.Fatalf("want rows 4 and 7, got %v\n%s", err, rowsOf(err))
	}
}

func TestImportOfficers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := "authority,payroll_ref,name,valid_from,annual_cost,fte\n" +
		"GB-NWP,NWP-004417,Rhian Evans,2021-04-01,44750.00,0.8\n" +
		"GB-NWP,NWP-004417,Rhian Evans,2022-04-01,46092.50,0.8\n" +
		"GB-MON,MON-1,Owain Davies,2021-04-01,52000.00,1\n"
	res, err := f.s.ImportOfficers(f.ctx, f.pm, strings.NewReader(body), match.ImportOptions{Name: "officers.csv"})
	if err != nil || res.Officers != 2 || res.Written != 3 {
		t.Fatalf("%+v, %v", res, err)
	}
	o, err := f.s.Officer(f.ctx, "GB-NWP", "NWP-004417")
	if err != nil || len(o.Versions) != 2 || o.Versions[1].HourlyRate.StringFixed(4) != "33.4975" {
		t.Fatalf("%+v, %v", o, err)
	}
	res, err = f.s.ImportOfficers(f.ctx, f.pm, strings.NewReader(body), match.ImportOptions{})
	if err != nil || res.Written != 0 || res.Replayed != 3 {
		t.Fatalf("again: %+v, %v", res, err)
	}
	bad := "authority,payroll_ref,name,valid_from,annual_cost,fte\n" +
		"GB-XXX,X-1,Nobody,2021-04-01,1.00,1\n" + // M2
		"GB-NWP,NWP-004417,Rhian Jones,2023-04-01,47000.00,0.8\n" + // M3
		"GB-NWP,NWP-004417,Rhian Evans,2022-04-01,46000.00,0.8\n" + // R5.3
		"GB-MON,MON-2,Ffion Rees,2021-04-01,£52000,1\n" + // R9.1
		"GB-MON,MON-3,Ffion Rees,2021-04-01,52000.00,1.5\n" // R5.1
	_, err = f.s.ImportOfficers(f.ctx, f.pm, strings.NewReader(bad), match.ImportOptions{})
	ie := match.AsImportError(err)
	var rules []string
	for _, r := range ie.Rows {
		rules = append(rules, fmt.Sprintf("%d:%s", r.Row, r.Rule))
	}
	if strings.Join(rules, " ") != "2:M2 3:M3 4:R5.3 5:R9.1 6:R5.1" {
		t.Fatalf("got %v\n%s", rules, ie)
	}
}

// TestImportPostsAsRecordTime: the import words, keys and fingerprints each ledger entry in SQL
// as timeLedgerInput does in Go for a single recording, so posting the Go entry again is a
// replay of the imported one.
func TestImportPostsAsRecordTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.officers(t, "GB-NWP,NWP-1,Rhian Evans,2021-04-01,44750.00,0.74")
	if _, err := f.importTime(f.pm, "GB-NWP,NWP-1,2021-05-04,7.25,lab,TS-1,Gareth Morgan",
		"GB-NWP,NWP-1,2021-05-05,8,coaching,TS-2,Gareth Morgan", "GB-NWP,NWP-1,2021-05-06,0.5,other,TS-3,Gareth Morgan"); err != nil {
		t.Fatal(err)
	}
	page, err := f.s.TimeEntries(f.ctx, f.pm, match.ListFilter{})
	if err != nil || len(page.Items) != 3 {
		t.Fatalf("time entries: %+v, %v", page, err)
	}
	for _, te := range page.Items {
		in := match.TimeLedgerInput(f.pm.Email, te.ID, te.OfficerID, te.Authority, te.PayrollRef, te.WorkDate, te.Activity,
			te.Generation, te.Hours.Shift(2).IntPart(), te.Amount)
		e, err := f.l.Post(f.ctx, f.pool, in)
		if err != nil || !e.Replayed || e.ID != te.EntryID {
			t.Fatalf("time entry %d (%s h): posting its entry again gave %+v, %v; want a replay of entry %d", te.ID, te.Hours, e, err, te.EntryID)
		}
		if posted, err := f.l.Entry(f.ctx, te.EntryID); err != nil || posted.Description != in.Description {
			t.Fatalf("entry %d reads %q, a single recording would read %q (%v)", te.EntryID, posted.Description, in.Description, err)
		}
	}
}
