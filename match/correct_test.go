package match_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
)

// TestCorrectionThenRecordAgain: a reversal posts in an open period, the line stops being live,
// and the officer, date and activity can be recorded again (generation 1). When the line's period
// is locked the reversal is a late item of the next open period, and so is a late timesheet.
func TestCorrectionThenRecordAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.officer(t, "GB-NWP", "2021-04-01", "44750.00", "0.8")
	e, err := f.s.RecordTime(f.ctx, f.pm, entry("GB-NWP", ref, "2021-05-04", "7.25", "lab"))
	if err != nil || e.Period != "2021Q2" || e.Amount.StringFixed(2) != "235.78" {
		t.Fatalf("%+v, %v", e, err)
	}
	// The quarter's claim is submitted: 2021Q2 is locked.
	if err := db.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error { return f.l.LockPeriod(f.ctx, tx, "2021Q2", "test") }); err != nil {
		t.Fatal(err)
	}
	c, err := f.s.ReverseTime(f.ctx, f.foNWP, e.ID, "7.5 hours, not 7.25")
	if err != nil || c.Period != "2021Q3" || c.TimeEntryID != e.ID {
		t.Fatalf("reversal %+v, %v", c, err)
	}
	again, err := f.s.RecordTime(f.ctx, f.foNWP, entry("GB-NWP", ref, "2021-05-04", "7.5", "lab"))
	if err != nil || again.Generation != 1 || again.Period != "2021Q3" || again.Amount.StringFixed(2) != "243.91" {
		t.Fatalf("recorded again: %+v, %v", again, err)
	}
	old, _ := f.s.TimeEntry(f.ctx, e.ID)
	if old.ReversedBy != c.ID {
		t.Fatalf("old entry %+v", old)
	}
	if got := f.balance(t, ledger.InKind("GB-NWP")); got.StringFixed(2) != "243.91" {
		t.Fatalf("in-kind = %s", got)
	}

	var lines []match.TimeLine
	for l, err := range match.TimeLines(f.ctx, f.pool, f.p, "2021Q3") {
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 2 {
		t.Fatalf("2021Q3 lines: %+v", lines)
	}
	rev, line := lines[0], lines[1]
	if !rev.Reversal || rev.Reverses != e.EntryID || rev.Amount.StringFixed(2) != "-235.78" || rev.Hours.String() != "-7.25" ||
		!rev.Late || rev.EffectivePeriod != "2021Q2" || rev.Reason != "7.5 hours, not 7.25" || rev.EntryID != c.EntryID {
		t.Fatalf("reversal line %+v", rev)
	}
	if line.Reversal || !line.Late || line.HourlyRate.StringFixed(4) != "32.5218" || line.AnnualCost.StringFixed(2) != "44750.00" ||
		line.OfficerName != "Officer "+ref || line.ApprovedBy != "Gareth Morgan" || line.EntryID != again.EntryID {
		t.Fatalf("line %+v", line)
	}
	used, err := match.RateVersionsUsed(f.ctx, f.pool, f.p, "2021Q3")
	if err != nil || len(used) != 1 || used[0].Lines != 2 || used[0].Amount.StringFixed(2) != "8.13" || used[0].Hours.String() != "0.25" {
		t.Fatalf("rate versions used: %+v, %v", used, err)
	}
	for l, err := range match.TimeLines(f.ctx, f.pool, f.p, "2021Q2") {
		if err != nil || l.EntryID != e.EntryID || l.Late {
			t.Fatalf("2021Q2: %+v, %v", l, err)
		}
	}
	// The finance officer of another authority may not correct it.
	_, err = f.s.ReverseTime(f.ctx, f.foCRF, again.ID, "no")
	wantRule(t, err, apperr.Forbidden, "V8")
}

func TestExpenditureCreditNoteAndReversal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.spend(f.pm, "delivery", "2021-06-30", "Nesta", "Lab facilitation, cohort Alpha", "18250.00", "INV-88213", "88213"); err != nil {
		t.Fatal(err)
	}
	cn, err := f.s.RecordExpenditure(f.ctx, f.pm, expIn("delivery", "2021-07-20", "Nesta", "Credit: one session cancelled", "-1250.00", "CN-0042", "88213"))
	if err != nil || cn.Credits == 0 || cn.Period != "2021Q3" {
		t.Fatalf("credit note %+v, %v", cn, err)
	}
	if got := f.balance(t, ledger.HeadingAccount("delivery")); got.StringFixed(2) != "17000.00" {
		t.Fatalf("delivery = %s", got)
	}
	if got := f.balance(t, ledger.Cash); got.StringFixed(2) != "-17000.00" {
		t.Fatalf("cash = %s", got)
	}
	// The invoice cannot be reversed while its credit note stands (M4); the credit note can.
	_, err = f.s.ReverseExpenditure(f.ctx, f.pm, cn.Credits, "wrong")
	wantRule(t, err, apperr.Conflict, "M4")
	if _, err := f.s.ReverseExpenditure(f.ctx, f.pm, cn.ID, "issued in error"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ReverseExpenditure(f.ctx, f.pm, cn.Credits, "wrong invoice"); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.ReverseExpenditure(f.ctx, f.foNWP, cn.Credits, "x")
	wantRule(t, err, apperr.Forbidden, "A1")
	if got := f.balance(t, ledger.HeadingAccount("delivery")); !got.IsZero() {
		t.Fatalf("delivery after reversals = %s", got)
	}
	var q3 []match.CashLine
	for l, err := range match.CashLines(f.ctx, f.pool, f.p, "2021Q3") {
		if err != nil {
			t.Fatal(err)
		}
		q3 = append(q3, l)
	}
	// Q3: the credit note, its reversal; Q2 keeps the invoice and its reversal (Q2 is open).
	if len(q3) != 2 || !q3[0].CreditNote || q3[0].Amount.StringFixed(2) != "-1250.00" || q3[0].CreditsEntryID == 0 ||
		!q3[1].Reversal || q3[1].Amount.StringFixed(2) != "1250.00" || q3[1].Reverses != q3[0].EntryID {
		t.Fatalf("Q3 lines %+v", q3)
	}
	n := 0
	for l, err := range match.CashLines(f.ctx, f.pool, f.p, "2021Q2") {
		if err != nil || l.Heading != "delivery" || l.InvoiceRef != "88213" || l.Late {
			t.Fatalf("%+v, %v", l, err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("Q2 has %d lines", n)
	}
	// Recorded again after the reversal: a new generation.
	again, err := f.s.RecordExpenditure(f.ctx, f.pm, expIn("delivery", "2021-06-30", "Nesta", "Lab facilitation, cohort Alpha", "18205.00", "INV-88213", "88213"))
	if err != nil || again.Generation != 1 {
		t.Fatalf("again %+v, %v", again, err)
	}
}

func expIn(heading, day, payee, desc, amount, evidence, invoice string) match.ExpenditureInput {
	return match.ExpenditureInput{Heading: heading, DefrayedOn: date(day), Payee: payee, Description: desc, Amount: dec(amount),
		EvidenceRef: evidence, InvoiceRef: invoice}
}

// TestConcurrentRecordingsKeepV3AndV4: recordings for the same officer are serialised (the
// officer row is locked), so two that each fit alone cannot together break the daily maximum or
// the annual cap.
func TestConcurrentRecordingsKeepV3AndV4(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	daily := f.officer(t, "GB-NWP", "2021-04-01", "44750.00", "0.8")
	annual := f.officer(t, "GB-NWP", "2021-01-01", "400.00", "0.01") // 17.2 hours a year
	for round := 0; round < 5; round++ {
		day := date("2021-06-01").AddDate(0, 0, round)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range 2 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				in := entry("GB-NWP", daily, day.Format("2006-01-02"), "7", []string{"lab", "experiment"}[i])
				errs[i] = f.record(f.pm, in)
			}()
			go func() {
				defer wg.Done()
				in := entry("GB-NWP", annual, date("2021-03-01").AddDate(0, 0, 2*round+i).Format("2006-01-02"), "10", "lab")
				errs[2+i] = f.record(f.pm, in)
			}()
		}
		wg.Wait()
		for pair, rule := range []string{"V3", "V4"} {
			a, b := errs[2*pair], errs[2*pair+1]
			if round > 0 && rule == "V4" {
				// The officer's year is full after round 0: both are refused.
				if apperr.RuleOf(a) != "V4" || apperr.RuleOf(b) != "V4" {
					t.Fatalf("round %d: %v / %v", round, a, b)
				}
				continue
			}
			if (a == nil) == (b == nil) || apperr.RuleOf(a)+apperr.RuleOf(b) != rule {
				t.Fatalf("round %d %s: want exactly one refused by %s, got %v / %v", round, rule, rule, a, b)
			}
		}
	}
	var hours string
	if err := f.pool.QueryRow(context.Background(), `SELECT max(h)::text FROM (SELECT sum(hours) AS h FROM time_entry GROUP BY officer_id, work_date) x`).Scan(&hours); err != nil || hours != "10.00" && hours != "7.00" {
		t.Fatalf("max hours a day %s, %v", hours, err)
	}
}

// TestRecordedLinesAreAppendOnly: the database refuses UPDATE and DELETE of recorded lines and
// rate versions (F1), except the one-time marking of a reversal.
func TestRecordedLinesAreAppendOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.officer(t, "GB-NWP", "2021-04-01", "44750.00", "0.8")
	e, err := f.s.RecordTime(f.ctx, f.pm, entry("GB-NWP", ref, "2021-05-04", "7", "lab"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE time_entry SET hours = 8`,
		`UPDATE time_entry SET amount = amount + 1, reversed_by = NULL`,
		`DELETE FROM time_entry`,
		`TRUNCATE time_entry CASCADE`,
		`UPDATE rate_version SET annual_cost = 1`,
		`DELETE FROM rate_version`,
		`UPDATE officer SET payroll_ref = 'X'`,
		`DELETE FROM officer`,
	} {
		_, err := f.pool.Exec(f.ctx, q)
		if err == nil || apperr.RuleOf(db.Translate("test", err)) != "F1" {
			t.Errorf("%s: %v", q, err)
		}
	}
	if _, err := f.pool.Exec(f.ctx, `UPDATE officer SET name = 'Renamed'`); err != nil {
		t.Errorf("renaming an officer: %v", err)
	}
	if _, err := f.s.ReverseTime(f.ctx, f.pm, e.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(f.ctx, `UPDATE time_entry SET reversed_by = NULL`); err == nil {
		t.Error("a reversal was undone")
	}
}

// TestOfficerYearFollowsTheEntries: officer_year, which V4's single-entry check reads, equals
// each officer's live hours a calendar year after imports, single recordings and reversals,
// and nothing but time_entry's triggers writes it.
func TestOfficerYearFollowsTheEntries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.officer(t, "GB-NWP", "2021-01-01", "44750.00", "1")
	b := f.officer(t, "GB-CRF", "2021-01-01", "30000.00", "0.5")
	if _, err := f.importTime(f.pm, csvRow(entry("GB-NWP", a, "2021-12-31", "7", "lab")),
		csvRow(entry("GB-NWP", a, "2022-01-03", "6.5", "lab")), csvRow(entry("GB-CRF", b, "2022-01-03", "3.25", "coaching"))); err != nil {
		t.Fatal(err)
	}
	single, err := f.s.RecordTime(f.ctx, f.pm, entry("GB-NWP", a, "2022-01-04", "2", "steering"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.RecordTime(f.ctx, f.pm, entry("GB-CRF", b, "2021-06-01", "1.5", "lab")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ReverseTime(f.ctx, f.pm, single.ID, "keyed against the wrong day"); err != nil {
		t.Fatal(err)
	}
	rows := func(sql string) string {
		t.Helper()
		var out string
		if err := f.pool.QueryRow(f.ctx, `SELECT coalesce(string_agg(o.payroll_ref || ' ' || x.year || ' ' || x.hours, ', '
			ORDER BY o.payroll_ref, x.year), '') FROM (`+sql+`) x JOIN officer o ON o.id = x.officer_id`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	kept := rows(`SELECT officer_id, year, live_hours AS hours FROM officer_year`)
	summed := rows(`SELECT officer_id, extract(year FROM work_date)::integer AS year, sum(hours) AS hours FROM time_entry
		WHERE reversed_by IS NULL GROUP BY 1, 2`)
	want := fmt.Sprintf("%s 2021 7.00, %s 2022 6.50, %s 2021 1.50, %s 2022 3.25", a, a, b, b)
	if a > b {
		want = fmt.Sprintf("%s 2021 1.50, %s 2022 3.25, %s 2021 7.00, %s 2022 6.50", b, b, a, a)
	}
	if kept != summed || summed != want {
		t.Fatalf("officer_year holds %q; the entries sum to %q; want %q", kept, summed, want)
	}
	for _, sql := range []string{`UPDATE officer_year SET live_hours = 0`, `DELETE FROM officer_year`,
		`INSERT INTO officer_year SELECT operation_id, officer_id, 2030, 1 FROM officer_year LIMIT 1`, `TRUNCATE officer_year`} {
		if _, err := f.pool.Exec(f.ctx, sql); err == nil {
			t.Errorf("%s was allowed", sql)
		}
	}
}

// TestReimportAfterReversal: re-importing a file is a no-op (interfaces.md), also after one of its
// lines was reversed: a row identical to a reversed line is the line the officer withdrew, so it
// is counted in the summary and not recorded again, whether or not a corrected line has been
// recorded in its place since. A corrected row (any field different) is a new generation.
func TestReimportAfterReversal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.officers(t, "GB-NWP,NWP-1,Gwyn Thomas,2021-04-01,44750.00,0.8")
	file := []string{
		"GB-NWP,NWP-1,2021-05-04,7.25,lab,TS-1,Gareth Morgan",
		"GB-NWP,NWP-1,2021-05-05,7,lab,TS-2,Gareth Morgan",
		"GB-NWP,NWP-1,2021-05-06,6,lab,TS-3,Gareth Morgan",
	}
	if _, err := f.importTime(f.pm, file...); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := f.pool.QueryRow(f.ctx, `SELECT id FROM time_entry WHERE evidence_ref = 'TS-2'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ReverseTime(f.ctx, f.pm, id, "not a lab day"); err != nil {
		t.Fatal(err)
	}
	before := f.state(t)
	res, err := f.importTime(f.pm, file...)
	if err != nil || res.Written != 0 || res.Replayed != 3 || res.Withdrawn != 1 || res.ImportID != 0 {
		t.Fatalf("re-import after the reversal: %+v, %v\n%s", res, err, rowsOf(err))
	}
	if after := f.state(t); after != before {
		t.Fatalf("re-importing the file changed %+v → %+v", before, after)
	}
	// The corrected row is recorded, as generation 1.
	corrected := append([]string(nil), file...)
	corrected[1] = "GB-NWP,NWP-1,2021-05-05,3.5,lab,TS-2,Gareth Morgan"
	res, err = f.importTime(f.pm, corrected...)
	if err != nil || res.Written != 1 || res.Replayed != 2 || res.Withdrawn != 0 {
		t.Fatalf("corrected file: %+v, %v\n%s", res, err, rowsOf(err))
	}
	var gen int
	if err := f.pool.QueryRow(f.ctx, `SELECT generation FROM time_entry WHERE evidence_ref = 'TS-2' AND reversed_by IS NULL`).Scan(&gen); err != nil || gen != 1 {
		t.Fatalf("corrected entry's generation %d, %v", gen, err)
	}
	// The original file once more: its withdrawn row is neither recorded nor a V5 conflict with
	// the correction, and both files together are a no-op too.
	before = f.state(t)
	res, err = f.importTime(f.pm, append(file, corrected[1])...)
	if err != nil || res.Written != 0 || res.Replayed != 4 || res.Withdrawn != 1 {
		t.Fatalf("original file after the correction: %+v, %v\n%s", res, err, rowsOf(err))
	}
	if after := f.state(t); after != before {
		t.Fatalf("re-importing the original file changed %+v → %+v", before, after)
	}
}

// TestReimportAsTheApprover: re-importing a recorded file writes nothing, so V7's "the approver
// is not the recorder" does not concern its rows: the approver may re-import it (a no-op), and
// re-send an identical entry, but not record a new one.
func TestReimportAsTheApprover(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.officers(t, "GB-NWP,NWP-1,Gwyn Thomas,2021-04-01,44750.00,0.8")
	row := "GB-NWP,NWP-1,2021-05-04,7.25,lab,TS-1,Rhian Evans" // approved by foNWP's user
	if _, err := f.importTime(f.pm, row); err != nil {
		t.Fatal(err)
	}
	res, err := f.importTime(f.foNWP, row)
	if err != nil || res.Written != 0 || res.Replayed != 1 {
		t.Fatalf("re-import by the approver: %+v, %v\n%s", res, err, rowsOf(err))
	}
	in := entry("GB-NWP", "NWP-1", "2021-05-04", "7.25", "lab")
	in.EvidenceRef, in.ApprovedBy = "TS-1", "Rhian Evans"
	if e, err := f.s.RecordTime(f.ctx, f.foNWP, in); err != nil || !e.Replayed {
		t.Fatalf("re-sent by the approver: %+v, %v", e, err)
	}
	// A new row in the same file is still refused, and so is the file.
	_, err = f.importTime(f.foNWP, row, "GB-NWP,NWP-1,2021-05-05,7,lab,TS-2,rhian evans")
	if ie := match.AsImportError(err); ie == nil || fmt.Sprint(ie.BadRows()) != "[3]" || ie.Rows[0].Rule != "V7" {
		t.Fatalf("new row approved by the recorder: %v\n%s", err, rowsOf(err))
	}
	in.WorkDate = date("2021-05-05")
	_, err = f.s.RecordTime(f.ctx, f.foNWP, in)
	wantRule(t, err, apperr.Invalid, "V7")
}

// TestReimportExpenditureAfterReversal is TestReimportAfterReversal for expenditure lines.
func TestReimportExpenditureAfterReversal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const header = "heading,defrayed_on,payee,description,amount,evidence_ref,invoice_ref\n"
	file := []string{
		"delivery,2021-06-30,Nesta,Lab facilitation,18250.00,INV-1,1",
		"other,2021-06-30,Venue,Hall hire,400.00,R-1,",
	}
	imp := func(rows ...string) (match.ImportResult, error) {
		return f.s.ImportExpenditure(f.ctx, f.pm, strings.NewReader(header+strings.Join(rows, "\n")+"\n"), match.ImportOptions{})
	}
	if _, err := imp(file...); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := f.pool.QueryRow(f.ctx, `SELECT id FROM expenditure WHERE evidence_ref = 'R-1'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ReverseExpenditure(f.ctx, f.pm, id, "paid twice"); err != nil {
		t.Fatal(err)
	}
	lines := func() int { return f.count(t, "expenditure") }
	n := lines()
	res, err := imp(file...)
	if err != nil || res.Written != 0 || res.Replayed != 2 || res.Withdrawn != 1 || lines() != n {
		t.Fatalf("re-import after the reversal: %+v, %v\n%s", res, err, rowsOf(err))
	}
	corrected := "other,2021-06-30,Venue,Hall hire,350.00,R-1,"
	res, err = imp(file[0], corrected)
	if err != nil || res.Written != 1 || res.Withdrawn != 0 {
		t.Fatalf("corrected file: %+v, %v\n%s", res, err, rowsOf(err))
	}
	n = lines()
	res, err = imp(append(file, corrected)...)
	if err != nil || res.Written != 0 || res.Replayed != 3 || res.Withdrawn != 1 || lines() != n {
		t.Fatalf("original file after the correction: %+v, %v\n%s", res, err, rowsOf(err))
	}
	if got := f.balance(t, ledger.HeadingAccount("other")); got.StringFixed(2) != "350.00" {
		t.Fatalf("other = %s", got)
	}
}

// TestCreditNoteCappedByItsLine: a credit note credits one line (domain.md §5: it references the
// line it corrects), so it credits no more than that line has left (M4): the first live line of
// its heading and invoice with enough left, by the single path and by an import alike. The credit
// notes of a line keep it from being reversed; reversing another line of the invoice is fine.
func TestCreditNoteCappedByItsLine(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	line := func(desc, amount, evidence string) match.Expenditure {
		t.Helper()
		e, err := f.s.RecordExpenditure(f.ctx, f.pm, expIn("delivery", "2021-06-30", "Y Lab", desc, amount, evidence, "9"))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	credit := func(amount, evidence string) (match.Expenditure, error) {
		return f.s.RecordExpenditure(f.ctx, f.pm, expIn("delivery", "2021-07-15", "Y Lab", "Credit "+evidence, amount, evidence, "9"))
	}
	a, b := line("Session A", "60.00", "INV-9A"), line("Session B", "40.00", "INV-9B")
	// 80 is within the invoice's 100 but more than either line.
	_, err := credit("-80.00", "CN-1")
	wantRule(t, err, apperr.Invalid, "M4")
	const header = "heading,defrayed_on,payee,description,amount,evidence_ref,invoice_ref\n"
	_, err = f.s.ImportExpenditure(f.ctx, f.pm, strings.NewReader(header+"delivery,2021-07-15,Y Lab,Credit CN-1,-80.00,CN-1,9\n"), match.ImportOptions{})
	wantRule(t, err, apperr.Invalid, "M4")
	// 50 fits A; 30 no longer fits A's 10, so it credits B; 20 fits neither.
	c1, err := credit("-50.00", "CN-2")
	if err != nil || c1.Credits != a.ID {
		t.Fatalf("credit note of 50: %+v, %v", c1, err)
	}
	c2, err := credit("-30.00", "CN-3")
	if err != nil || c2.Credits != b.ID {
		t.Fatalf("credit note of 30: %+v, %v", c2, err)
	}
	_, err = credit("-20.00", "CN-4")
	wantRule(t, err, apperr.Invalid, "M4")
	_, err = f.s.ReverseExpenditure(f.ctx, f.pm, b.ID, "wrong invoice")
	wantRule(t, err, apperr.Conflict, "M4")
	if _, err := f.s.ReverseExpenditure(f.ctx, f.pm, c2.ID, "issued in error"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ReverseExpenditure(f.ctx, f.pm, b.ID, "wrong invoice"); err != nil {
		t.Fatal(err)
	}
	if got := f.balance(t, ledger.HeadingAccount("delivery")); got.StringFixed(2) != "10.00" {
		t.Fatalf("delivery = %s", got)
	}

	// An import allocates its credit notes the same way, in row order, its own lines included.
	_, err = f.s.ImportExpenditure(f.ctx, f.pm, strings.NewReader(header+
		"other,2021-07-15,Venue,Credit 1,-50.00,CN-11,11\n"+
		"other,2021-06-30,Venue,Hall,60.00,INV-11A,11\n"+
		"other,2021-06-30,Venue,Tea,40.00,INV-11B,11\n"+
		"other,2021-07-15,Venue,Credit 2,-30.00,CN-12,11\n"+
		"other,2021-07-15,Venue,Credit 3,-10.01,CN-13,11\n"), match.ImportOptions{})
	ie := match.AsImportError(err)
	if ie == nil || fmt.Sprint(ie.BadRows()) != "[6]" || ie.Rows[0].Rule != "M4" {
		t.Fatalf("want row 6 refused by M4: %v\n%s", err, rowsOf(err))
	}
	// Its message names the credit and the most a line has left, and is made from its key.
	if p := ie.Rows[0]; len(p.Args) != 4 || p.Args[1] != "10.01" || p.Args[3] != "10.00" || fmt.Sprintf(p.Key, p.Args...) != p.Message {
		t.Fatalf("row 6: %+v", p)
	}
	res, err := f.s.ImportExpenditure(f.ctx, f.pm, strings.NewReader(header+
		"other,2021-07-15,Venue,Credit 1,-50.00,CN-11,11\n"+
		"other,2021-06-30,Venue,Hall,60.00,INV-11A,11\n"+
		"other,2021-06-30,Venue,Tea,40.00,INV-11B,11\n"+
		"other,2021-07-15,Venue,Credit 2,-30.00,CN-12,11\n"+
		"other,2021-07-15,Venue,Credit 3,-10.00,CN-13,11\n"), match.ImportOptions{})
	if err != nil || res.Written != 5 {
		t.Fatalf("import: %+v, %v\n%s", res, err, rowsOf(err))
	}
	var got string
	if err := f.pool.QueryRow(f.ctx, `SELECT string_agg(c.evidence_ref || '>' || l.evidence_ref, ' ' ORDER BY c.evidence_ref)
		FROM expenditure c JOIN expenditure l ON l.operation_id = c.operation_id AND l.id = c.credits
		WHERE c.invoice_ref = '11'`).Scan(&got); err != nil || got != "CN-11>INV-11A CN-12>INV-11B CN-13>INV-11A" {
		t.Fatalf("credit notes credit %q, %v", got, err)
	}
}

// TestReversalKeepsCreditsWithinTheInvoice: a credit note written before M4 capped credit notes
// by their line (here 80 against a line of 60, within the invoice's 100) still holds the other
// lines of its invoice: reversing one must not leave more credited than invoiced.
func TestReversalKeepsCreditsWithinTheInvoice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, err := f.s.RecordExpenditure(f.ctx, f.pm, expIn("delivery", "2021-06-30", "Y Lab", "Session A", "60.00", "INV-9A", "9"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.s.RecordExpenditure(f.ctx, f.pm, expIn("delivery", "2021-06-30", "Y Lab", "Session B", "40.00", "INV-9B", "9"))
	if err != nil {
		t.Fatal(err)
	}
	// The earlier credit note, written as RecordExpenditure used to write it.
	var id int64
	if err := f.pool.QueryRow(f.ctx, `SELECT nextval('expenditure_id_seq')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	e, err := f.l.Post(f.ctx, f.pool, match.ExpLedgerInput(f.pm.Email, id, "delivery", date("2021-07-15"), "Y Lab", "Credit", dec("-80.00"), "CN-1", 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(f.ctx, `INSERT INTO expenditure (operation_id, id, heading, defrayed_on, payee, description, amount,
			evidence_ref, invoice_ref, credits, generation, entry_id, period, recorded_at, recorded_by)
		VALUES ($1, $2, 'delivery', '2021-07-15', 'Y Lab', 'Credit', -80.00, 'CN-1', '9', $3, 0, $4, $5, now(), $6)`,
		f.p.OperationID, id, a.ID, e.ID, e.Period, f.pm.Email); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.ReverseExpenditure(f.ctx, f.pm, b.ID, "wrong invoice")
	wantRule(t, err, apperr.Conflict, "M4")
	if got := f.balance(t, ledger.HeadingAccount("delivery")); got.StringFixed(2) != "20.00" {
		t.Fatalf("delivery = %s", got)
	}
	// Once the credit note is reversed, so can the line be.
	if _, err := f.s.ReverseExpenditure(f.ctx, f.pm, id, "more than the line"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ReverseExpenditure(f.ctx, f.pm, b.ID, "wrong invoice"); err != nil {
		t.Fatal(err)
	}
}

// TestReverseWhatIsNotThere: reversing a line that does not exist is not_found under M6. A
// finance officer, who corrects only the entries of its own authority, is refused (V8) in the
// same words for another authority's entry as for an id that does not exist, so it cannot learn
// which ids the other authorities' entries have, nor whose they are. A role that may not correct
// at all is refused (A1) whatever the id.
func TestReverseWhatIsNotThere(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.officer(t, "GB-NWP", "2021-04-01", "44750.00", "0.8")
	e, err := f.s.RecordTime(f.ctx, f.pm, entry("GB-NWP", ref, "2021-05-04", "7.25", "lab"))
	if err != nil {
		t.Fatal(err)
	}
	const missing = 999999
	_, err = f.s.ReverseTime(f.ctx, f.pm, missing, "typo")
	wantRule(t, err, apperr.NotFound, "M2")
	_, err = f.s.ReverseExpenditure(f.ctx, f.pm, missing, "typo")
	wantRule(t, err, apperr.NotFound, "M2")

	_, errOther := f.s.ReverseTime(f.ctx, f.foCRF, e.ID, "not ours")
	_, errMissing := f.s.ReverseTime(f.ctx, f.foCRF, missing, "not ours")
	wantRule(t, errOther, apperr.Forbidden, "V8")
	wantRule(t, errMissing, apperr.Forbidden, "V8")
	other, gone := apperr.As(errOther), apperr.As(errMissing)
	if other.Key != gone.Key || strings.Replace(other.Message, fmt.Sprint(e.ID), fmt.Sprint(missing), 1) != gone.Message ||
		strings.Contains(other.Message, "GB-NWP") {
		t.Fatalf("another authority's entry: %q; a missing one: %q", other.Message, gone.Message)
	}
	for _, id := range []int64{e.ID, missing} {
		_, err := f.s.ReverseTime(f.ctx, f.audit, id, "audit")
		wantRule(t, err, apperr.Forbidden, "A1")
	}
	if got, err := f.s.TimeEntry(f.ctx, e.ID); err != nil || got.ReversedBy != 0 {
		t.Fatalf("entry %+v, %v", got, err)
	}
}

// TestPreviewOfAReversal: the preview a page confirms a reversal with makes the reversal's own
// checks, in its words, writes nothing, and names the period the reversal then books into.
func TestPreviewOfAReversal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.officer(t, "GB-NWP", "2021-04-01", "44750.00", "0.8")
	e, err := f.s.RecordTime(f.ctx, f.pm, entry("GB-NWP", ref, "2021-05-04", "7.25", "lab"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.s.PreviewReverseTime(f.ctx, f.foNWP, e.ID, "wrong day"); err != nil || got != "2021Q2" {
		t.Fatalf("preview in an open period: %q, %v", got, err)
	}
	if err := db.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error { return f.l.LockPeriod(f.ctx, tx, "2021Q2", "test") }); err != nil {
		t.Fatal(err)
	}
	booked, err := f.s.PreviewReverseTime(f.ctx, f.foNWP, e.ID, "wrong day")
	if err != nil || booked != "2021Q3" {
		t.Fatalf("preview once 2021Q2 is locked: %q, %v", booked, err)
	}
	_, err = f.s.PreviewReverseTime(f.ctx, f.foNWP, e.ID, "  ")
	wantRule(t, err, apperr.Invalid, "M6")
	_, err = f.s.PreviewReverseTime(f.ctx, f.foCRF, e.ID, "not ours")
	wantRule(t, err, apperr.Forbidden, "V8")
	_, err = f.s.PreviewReverseTime(f.ctx, f.pm, 999999, "typo")
	wantRule(t, err, apperr.NotFound, "M2")
	_, err = f.s.PreviewReverseTime(f.ctx, f.audit, e.ID, "audit")
	wantRule(t, err, apperr.Forbidden, "A1")
	if got, err := f.s.TimeEntry(f.ctx, e.ID); err != nil || got.ReversedBy != 0 {
		t.Fatalf("the previews reversed the entry: %+v, %v", got, err)
	}
	c, err := f.s.ReverseTime(f.ctx, f.foNWP, e.ID, "wrong day")
	if err != nil || c.Period != booked {
		t.Fatalf("reversal %+v, %v; the preview said %s", c, err, booked)
	}
	_, err = f.s.PreviewReverseTime(f.ctx, f.foNWP, e.ID, "again")
	wantRule(t, err, apperr.Conflict, "M6")

	// An invoice its live credit note leans on is refused by the preview too (M4).
	if err := f.spend(f.pm, "delivery", "2021-07-01", "Nesta", "Lab facilitation, cohort Beta", "900.00", "INV-9", "9"); err != nil {
		t.Fatal(err)
	}
	cn, err := f.s.RecordExpenditure(f.ctx, f.pm, expIn("delivery", "2021-07-20", "Nesta", "Credit: one session", "-100.00", "CN-9", "9"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.s.PreviewReverseExpenditure(f.ctx, f.pm, cn.Credits, "wrong")
	wantRule(t, err, apperr.Conflict, "M4")
	if got, err := f.s.PreviewReverseExpenditure(f.ctx, f.pm, cn.ID, "issued in error"); err != nil || got != "2021Q3" {
		t.Fatalf("preview of the credit note's reversal: %q, %v", got, err)
	}
	_, err = f.s.PreviewReverseExpenditure(f.ctx, f.foNWP, cn.ID, "x")
	wantRule(t, err, apperr.Forbidden, "A1")
}

// TestARecordingOfAReversedLineAgain: a single recording identical to a line reversed earlier is
// a deliberate act, recorded again as the next generation while no line of that officer, date and
// activity is live; an import of it is the withdrawn line, skipped (README).
func TestARecordingOfAReversedLineAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.officer(t, "GB-NWP", "2021-04-01", "44750.00", "0.8")
	in := entry("GB-NWP", ref, "2021-05-04", "7.25", "lab")
	e, err := f.s.RecordTime(f.ctx, f.pm, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ReverseTime(f.ctx, f.pm, e.ID, "reversed by mistake"); err != nil {
		t.Fatal(err)
	}
	res, err := f.importTime(f.pm, csvRow(in))
	if err != nil || res.Withdrawn != 1 || f.count(t, "time_entry") != 1 {
		t.Fatalf("the import of the reversed line: %+v, %v; %d time entries", res, err, f.count(t, "time_entry"))
	}
	again, err := f.s.RecordTime(f.ctx, f.pm, in)
	if err != nil || again.Generation != 1 || again.Replayed {
		t.Fatalf("recorded again: %+v, %v", again, err)
	}
}
