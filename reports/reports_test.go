package reports

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jung-kurt/gofpdf"
	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/gbp"
)

const testLines = 300

// build renders the pack and returns its files by name.
func build(t testing.TB, p *Pack) (map[string]File, Manifest) {
	t.Helper()
	files, m, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{files[0].Name, files[1].Name, files[2].Name}; !slices.Equal(got, []string{NameXLSX, NamePDF, NameManifest}) {
		t.Fatalf("Build returned %v", got)
	}
	out := map[string]File{}
	for _, f := range files {
		out[f.Name] = f
	}
	return out, m
}

func openBook(t *testing.T, data []byte) *excelize.File {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// raw returns a cell's stored value, unformatted.
func raw(t *testing.T, f *excelize.File, sheet, ref string) string {
	t.Helper()
	v, err := f.GetCellValue(sheet, ref, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// eqMoney checks that a cell holds exactly the amount want.
func eqMoney(t *testing.T, f *excelize.File, sheet, ref string, want decimal.Decimal) {
	t.Helper()
	got := raw(t, f, sheet, ref)
	d, err := decimal.NewFromString(got)
	if err != nil || !d.Equal(want) {
		t.Errorf("%s!%s = %q, want %s", sheet, ref, got, want.StringFixed(2))
	}
}

// formula checks that a cell holds the formula want, with a cached value equal to value.
func formula(t *testing.T, f *excelize.File, sheet, ref, want string, value decimal.Decimal) {
	t.Helper()
	got, err := f.GetCellFormula(sheet, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s!%s formula = %q, want %q", sheet, ref, got, want)
	}
	eqMoney(t, f, sheet, ref, value)
	// A spreadsheet that recalculates gets the cached value too.
	calc, err := f.CalcCellValue(sheet, ref, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatalf("%s!%s: %v", sheet, ref, err)
	}
	if d, err := decimal.NewFromString(calc); err != nil || !d.Round(2).Equal(value) {
		t.Errorf("%s!%s recalculates to %q, cached %s", sheet, ref, calc, value.StringFixed(2))
	}
}

// findRow returns the 1-based row whose column A reads a.
func findRow(t *testing.T, f *excelize.File, sheet, a string) int {
	t.Helper()
	rows, err := f.GetRows(sheet)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if len(r) > 0 && r[0] == a {
			return i + 1
		}
	}
	t.Fatalf("%s: no row %q", sheet, a)
	return 0
}

func ref(col string, row int) string { return col + strconv.Itoa(row) }

func TestWriteXLSX(t *testing.T) {
	t.Parallel()
	p := testPack(t, testLines)
	if p.Rounding.Residual == "0.000000" {
		t.Fatal("fixture: choose figures whose ESF share leaves a rounding residual, so that it is tested")
	}
	files, _ := build(t, p)
	f := openBook(t, files[NameXLSX].Data)

	t.Run("EverySheetInOrder", func(t *testing.T) {
		if got := f.GetSheetList(); !slices.Equal(got, sheetOrder) {
			t.Errorf("sheets = %v, want %v", got, sheetOrder)
		}
	})

	t.Run("SummaryFigures", func(t *testing.T) {
		first := 0
		for i, h := range p.Headings {
			r := findRow(t, f, sheetSummary, h.Name)
			if i == 0 {
				first = r
			}
			eqMoney(t, f, sheetSummary, ref("B", r), h.Period)
			eqMoney(t, f, sheetSummary, ref("C", r), h.Cumulative)
		}
		last := first + len(p.Headings) - 1
		r := findRow(t, f, sheetSummary, "Total eligible expenditure")
		formula(t, f, sheetSummary, ref("B", r), fmt.Sprintf("SUM(B%d:B%d)", first, last), p.TotalEligible.Period)
		formula(t, f, sheetSummary, ref("C", r), fmt.Sprintf("SUM(C%d:C%d)", first, last), p.TotalEligible.Cumulative)
		r = findRow(t, f, sheetSummary, "ESF due at 9/14")
		eqMoney(t, f, sheetSummary, ref("B", r), p.ESFDue.Period)
		eqMoney(t, f, sheetSummary, ref("C", r), p.ESFDue.Cumulative)
		eqMoney(t, f, sheetSummary, ref("C", findRow(t, f, sheetSummary, "ESF award")), p.Award)
		eqMoney(t, f, sheetSummary, ref("C", findRow(t, f, sheetSummary, "Award cap (C5)")), p.AwardCap)
		eqMoney(t, f, sheetSummary, ref("C", findRow(t, f, sheetSummary, "Art 69 cap: cumulative cash and flat-rate costs (C4)")), p.Art69Cap)
		if got := raw(t, f, sheetSummary, ref("C", findRow(t, f, sheetSummary, "Intervention rate"))); got != "9/14" {
			t.Errorf("rate = %q", got)
		}
		for label, want := range map[string]string{
			"Exact ESF share: cumulative total × 9/14 (6 dp)": p.Rounding.ExactShare,
			"ESF share floored to the penny":                  p.Rounding.FlooredShare,
			"Rounding residual, not claimed (6 dp, R9.3c)":    p.Rounding.Residual,
		} {
			got := raw(t, f, sheetSummary, ref("C", findRow(t, f, sheetSummary, label)))
			if g, w := decimal.RequireFromString(got), decimal.RequireFromString(want); !g.Equal(w) {
				t.Errorf("%s = %s, want %s", label, got, want)
			}
		}
		if got := raw(t, f, sheetSummary, ref("B", findRow(t, f, sheetSummary, "Claim period"))); got != "2021Q3" {
			t.Errorf("period = %q", got)
		}
		if got := raw(t, f, sheetSummary, ref("B", findRow(t, f, sheetSummary, "Chain link (SHA-256)"))); got != p.Position.ChainLink {
			t.Errorf("chain link = %q", got)
		}
		decl := findRow(t, f, sheetSummary, "Declaration") + 1
		if got := raw(t, f, sheetSummary, ref("A", decl)); got != p.Declaration {
			t.Errorf("declaration = %q", got)
		}
	})

	t.Run("MoneyFormat", func(t *testing.T) {
		r := findRow(t, f, sheetSummary, "Total eligible expenditure")
		for _, c := range []struct{ sheet, ref string }{{sheetSummary, ref("B", r)}, {sheetCash, "F2"}, {sheetTime, "J2"}} {
			id, err := f.GetCellStyle(c.sheet, c.ref)
			if err != nil {
				t.Fatal(err)
			}
			st, err := f.GetStyle(id)
			if err != nil {
				t.Fatal(err)
			}
			if st.CustomNumFmt == nil || *st.CustomNumFmt != fmtMoney {
				t.Errorf("%s!%s number format = %v, want %s", c.sheet, c.ref, st.CustomNumFmt, fmtMoney)
			}
		}
		if got, _ := f.GetCellValue(sheetSummary, ref("C", findRow(t, f, sheetSummary, "ESF award"))); got != "£3,600,000.00" {
			t.Errorf("award shows as %q", got)
		}
	})

	t.Run("TransactionList", func(t *testing.T) {
		rows, err := f.GetRows(sheetCash, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		n := len(p.Transactions)
		if len(rows) != n+3 {
			t.Fatalf("%d rows, want header, %d lines, a blank and the total", len(rows), n)
		}
		byID := map[string]CashLine{}
		var total decimal.Decimal
		for _, l := range p.Transactions {
			byID[strconv.FormatInt(l.EntryID, 10)] = l
			total = total.Add(l.Amount)
		}
		prev := ""
		for _, r := range rows[1 : n+1] {
			l, ok := byID[r[0]]
			if !ok {
				t.Fatalf("row for unknown entry %q", r[0])
			}
			delete(byID, r[0])
			if r[1] != l.Heading || r[3] != l.Payee || r[4] != l.Description || r[6] != l.EvidenceRef || r[7] != l.InvoiceRef ||
				r[8] != l.BookingPeriod || r[9] != l.EffectivePeriod {
				t.Errorf("entry %s: row %q, want %+v", r[0], r, l)
			}
			if d := decimal.RequireFromString(r[5]); !d.Equal(l.Amount) {
				t.Errorf("entry %s: amount %s, want %s", r[0], r[5], l.Amount)
			}
			key := fmt.Sprintf("%s/%010s", r[2], r[0]) // Excel date serial, then entry: the sheet's order
			if key < prev {
				t.Errorf("entry %s out of order", r[0])
			}
			prev = key
		}
		if len(byID) != 0 {
			t.Errorf("%d lines missing", len(byID))
		}
		formula(t, f, sheetCash, ref("F", n+3), fmt.Sprintf("SUM(F2:F%d)", n+1), total)
	})

	t.Run("FormulaLikeTextStaysText", func(t *testing.T) {
		rows, _ := f.GetRows(sheetCash)
		var found int
		for i, r := range rows {
			for j, v := range r {
				if v != formulaPayee && v != formulaDesc && v != "+441234" && v != "-minus payee" && v != "+plus description" && v != "-7" {
					continue
				}
				found++
				cellRef, _ := excelize.CoordinatesToCellName(j+1, i+1)
				if fm, _ := f.GetCellFormula(sheetCash, cellRef); fm != "" {
					t.Errorf("%s holds formula %q", cellRef, fm)
				}
				if typ, _ := f.GetCellType(sheetCash, cellRef); typ != excelize.CellTypeInlineString && typ != excelize.CellTypeSharedString {
					t.Errorf("%s (%q) has type %v, want a string", cellRef, v, typ)
				}
			}
		}
		if found != 6 {
			t.Errorf("found %d formula-like texts, want 6", found)
		}
		// The quote prefix keeps the text text when someone edits the cell in Excel; ordinary
		// text does not carry it.
		xfs := cellXfs(t, zipMember(t, files[NameXLSX].Data, "xl/styles.xml"))
		payee, _ := f.GetCellStyle(sheetCash, ref("D", findRow(t, f, sheetCash, strconv.FormatInt(evilEntry(t, p), 10))))
		plain, _ := f.GetCellStyle(sheetCash, "D2")
		quoted := strings.Contains(xfs[payee], `quotePrefix="1"`) || strings.Contains(xfs[payee], `quotePrefix="true"`)
		if !quoted || strings.Contains(xfs[plain], `quotePrefix`) {
			t.Errorf("formula-like payee style %q, plain text style %q", xfs[payee], xfs[plain])
		}
		// And in the file itself: no formula but the workbook's own totals.
		sheetXML := zipMember(t, files[NameXLSX].Data, "xl/worksheets/sheet3.xml")
		if bytes.Contains(sheetXML, []byte("<f>HYPERLINK")) || bytes.Contains(sheetXML, []byte("<f>@")) {
			t.Error("formula-like text written as a formula")
		}
		if !bytes.Contains(sheetXML, []byte(`=HYPERLINK(&#34;http://x&#34;)`)) {
			t.Error("payee text not found as a string")
		}
	})

	t.Run("OfficerTime", func(t *testing.T) {
		rows, err := f.GetRows(sheetTime, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		n := len(p.OfficerTime)
		if len(rows) != n+3 {
			t.Fatalf("%d rows, want %d", len(rows), n+3)
		}
		byID := map[string]TimeLine{}
		var total, hours decimal.Decimal
		for _, l := range p.OfficerTime {
			byID[strconv.FormatInt(l.EntryID, 10)] = l
			total, hours = total.Add(l.Amount), hours.Add(l.Hours)
		}
		wantTitles := []string{"Ledger entry", "Authority", "Payroll ref", "Officer", "Work date", "Hours", "Activity",
			"Rate valid from", "Hourly rate", "Amount", "Evidence ref", "Approver", "Late item: relates to", "Reverses entry", "Reason for the reversal", "Recorded by"}
		if !slices.Equal(rows[0], wantTitles) {
			t.Errorf("titles %q", rows[0])
		}
		for k, r := range rows[1 : n+1] {
			l := byID[r[0]]
			if l.EntryID == 0 {
				t.Fatalf("row for unknown entry %q", r[0])
			}
			delete(byID, r[0])
			if r[1] != l.Authority || r[2] != l.PayrollRef || r[3] != l.OfficerName || r[6] != l.Activity ||
				r[10] != l.EvidenceRef || r[11] != l.Approver {
				t.Errorf("entry %s: row %q, want %+v", r[0], r, l)
			}
			// The rate is held exactly enough that hours × rate, rounded half up to the penny as
			// an auditor's spreadsheet would, is the line's amount (R9.3a); it shows to 4 places.
			rate := decimal.RequireFromString(r[8])
			if !decimal.RequireFromString(r[5]).Equal(l.Hours) || !decimal.RequireFromString(r[9]).Equal(l.Amount) ||
				!rate.Round(4).Equal(decimal.RequireFromString(l.HourlyRate)) || !l.Hours.Mul(rate).Round(2).Equal(l.Amount) {
				t.Errorf("entry %s: hours %s rate %s amount %s, want %s %s %s", r[0], r[5], r[8], r[9], l.Hours, l.HourlyRate, l.Amount)
			}
			if shown, _ := f.GetCellValue(sheetTime, ref("E", k+2)); shown != dateText(l.WorkDate) {
				t.Errorf("entry %s: work date shows %q, want %s", r[0], shown, dateText(l.WorkDate))
			}
			if shown, _ := f.GetCellValue(sheetTime, ref("H", k+2)); shown != dateText(l.RateValidFrom) {
				t.Errorf("entry %s: rate version shows %q", r[0], shown)
			}
			relates := ""
			if len(r) > 12 {
				relates = r[12]
			}
			if relates != l.RelatesTo {
				t.Errorf("entry %s: relates to %q, want %q", r[0], relates, l.RelatesTo)
			}
		}
		if len(byID) != 0 {
			t.Errorf("%d lines missing", len(byID))
		}
		formula(t, f, sheetTime, ref("F", n+3), fmt.Sprintf("SUM(F2:F%d)", n+1), hours)
		formula(t, f, sheetTime, ref("J", n+3), fmt.Sprintf("SUM(J2:J%d)", n+1), total)
	})

	t.Run("FrozenHeadersFiltersWidths", func(t *testing.T) {
		for _, s := range []string{sheetHeadings, sheetCash, sheetTime, sheetMatch, sheetStaff, sheetFindings, sheetTB} {
			panes, err := f.GetPanes(s)
			if err != nil {
				t.Fatal(err)
			}
			if !panes.Freeze || panes.YSplit != 1 {
				t.Errorf("%s: panes %+v, want the header row frozen", s, panes)
			}
		}
		names := map[string]string{}
		for _, dn := range f.GetDefinedName() {
			if dn.Name == "_xlnm._FilterDatabase" {
				names[dn.Scope] = dn.RefersTo
			}
		}
		if got, want := names[sheetTime], fmt.Sprintf("'%s'!$A$1:$P$%d", sheetTime, testLines+1); got != want {
			t.Errorf("officer time filter %q, want %q", got, want)
		}
		if got := names[sheetCash]; got == "" {
			t.Error("no filter on the transaction list")
		}
		if w, _ := f.GetColWidth(sheetCash, "D"); w < float64(len(welshPayee)) {
			t.Errorf("payee column width %v too narrow", w)
		}
		if w, _ := f.GetColWidth(sheetCash, "E"); w > maxColWidth {
			t.Errorf("description width %v over the cap", w)
		}
	})

	t.Run("ExpenditureByHeadingReconciles", func(t *testing.T) {
		n := len(p.Headings)
		for i, h := range p.Headings {
			r := i + 2
			eqMoney(t, f, sheetHeadings, ref("D", r), h.Period)
			eqMoney(t, f, sheetHeadings, ref("F", r), h.Period) // the fixture's lines add up
			eqMoney(t, f, sheetHeadings, ref("G", r), decimal.Zero)
			for col, want := range map[string]decimal.Decimal{"F": h.Period, "G": decimal.Zero} {
				calc, err := f.CalcCellValue(sheetHeadings, ref(col, r), excelize.Options{RawCellValue: true})
				if d, derr := decimal.NewFromString(calc); err != nil || derr != nil || !d.Round(2).Equal(want) {
					t.Errorf("%s%d (%s) recalculates to %q (%v), want %s", col, r, h.Code, calc, err, want)
				}
			}
		}
		formula(t, f, sheetHeadings, ref("D", n+2), fmt.Sprintf("SUM(D2:D%d)", n+1), p.TotalEligible.Period)
		formula(t, f, sheetHeadings, ref("E", n+2), fmt.Sprintf("SUM(E2:E%d)", n+1), p.TotalEligible.Cumulative)
		fm, _ := f.GetCellFormula(sheetHeadings, "F2")
		if !strings.HasPrefix(fm, "SUMIF('Transaction list'!") {
			t.Errorf("staff lines formula %q", fm)
		}
	})

	t.Run("MatchByAuthority", func(t *testing.T) {
		ms := sortedMatch(p.Match)
		var per, cum decimal.Decimal
		for i, m := range ms {
			r := i + 2
			if got := raw(t, f, sheetMatch, ref("C", r)); got != m.NameCY {
				t.Errorf("row %d Welsh name %q, want %q", r, got, m.NameCY)
			}
			eqMoney(t, f, sheetMatch, ref("D", r), m.Period)
			eqMoney(t, f, sheetMatch, ref("E", r), m.Cumulative)
			eqMoney(t, f, sheetMatch, ref("F", r), m.Target)
			eqMoney(t, f, sheetMatch, ref("G", r), m.ProRataTarget)
			eqMoney(t, f, sheetMatch, ref("H", r), m.VariancePct.Shift(-2)) // a fraction, shown as a percentage
			per, cum = per.Add(m.Period), cum.Add(m.Cumulative)
		}
		r := len(ms) + 2
		formula(t, f, sheetMatch, ref("D", r), fmt.Sprintf("SUM(D2:D%d)", r-1), per)
		formula(t, f, sheetMatch, ref("E", r), fmt.Sprintf("SUM(E2:E%d)", r-1), cum)
	})

	t.Run("StaffFlatFindingsTrialBalance", func(t *testing.T) {
		rates := sortedRates(p.StaffCosts)
		for i, v := range rates {
			r := i + 2
			eqMoney(t, f, sheetStaff, ref("E", r), v.AGEC)
			eqMoney(t, f, sheetStaff, ref("F", r), v.FTE)
			eqMoney(t, f, sheetStaff, ref("G", r), decimal.NewFromInt(1720))
			eqMoney(t, f, sheetStaff, ref("H", r), decimal.RequireFromString(v.HourlyRate))
		}
		eqMoney(t, f, sheetFlat, "B5", p.FlatRate.Percent.Shift(-2))
		eqMoney(t, f, sheetFlat, "B6", p.FlatRate.Base)
		eqMoney(t, f, sheetFlat, strings.ReplaceAll(flatAmountRef, "$", ""), p.FlatRate.Amount)
		eqMoney(t, f, sheetFlat, "B7", p.FlatRate.Exact)

		fs := sortedFindings(p.Findings)
		for i, fd := range fs {
			r := i + 2
			if got := raw(t, f, sheetFindings, ref("A", r)); got != fd.ID {
				t.Errorf("finding row %d = %s, want %s", r, got, fd.ID)
			}
			if got := raw(t, f, sheetFindings, ref("C", r)); got != fd.Message {
				t.Errorf("finding %s message %q", fd.ID, got)
			}
		}
		if got := raw(t, f, sheetFindings, "E4"); !strings.HasPrefix(got, strconv.FormatInt(fs[2].Entries[0], 10)+", ") {
			t.Errorf("C7 entries %q", got)
		}

		n := len(p.TrialBalance)
		formula(t, f, sheetTB, ref("F", n+2), fmt.Sprintf("SUM(F2:F%d)", n+1), decimal.Zero)
	})

	t.Run("ManifestSheet", func(t *testing.T) {
		r := findRow(t, f, sheetManifest, NamePDF)
		if got := raw(t, f, sheetManifest, ref("C", r)); got != files[NamePDF].SHA256 {
			t.Errorf("PDF hash on the Manifest sheet %q, want %q", got, files[NamePDF].SHA256)
		}
		if got := raw(t, f, sheetManifest, ref("B", r)); got != strconv.Itoa(len(files[NamePDF].Data)) {
			t.Errorf("PDF size %q", got)
		}
		if got := raw(t, f, sheetManifest, ref("C", findRow(t, f, sheetManifest, NameXLSX))); !strings.Contains(got, "manifest.json") {
			t.Errorf("workbook row %q does not point at manifest.json", got)
		}
	})

	t.Run("DocumentDatesFromTheClaim", func(t *testing.T) {
		props, err := f.GetDocProps()
		if err != nil {
			t.Fatal(err)
		}
		if props.Created != "2021-10-01T05:00:00Z" || props.Modified != "2021-10-01T05:00:00Z" {
			t.Errorf("created %q modified %q", props.Created, props.Modified)
		}
	})
}

// cellXfs returns the cell formats of a styles.xml, in order.
func cellXfs(t *testing.T, styles []byte) []string {
	t.Helper()
	s := string(styles)
	i, j := strings.Index(s, "<cellXfs"), strings.Index(s, "</cellXfs>")
	if i < 0 || j < i {
		t.Fatal("no cellXfs in styles.xml")
	}
	parts := strings.Split(s[i:j], "<xf ")
	return parts[1:]
}

// evilEntry returns the ledger entry of the cash line whose payee is formula-like.
func evilEntry(t *testing.T, p *Pack) int64 {
	t.Helper()
	for _, l := range p.Transactions {
		if l.Payee == formulaPayee {
			return l.EntryID
		}
	}
	t.Fatal("no formula-like payee in the fixture")
	return 0
}

func zipMember(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	r, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := r.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// needTool finds a command-line tool: a test that needs a missing one fails on CI and is
// skipped elsewhere.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: install poppler-utils (apt-get install -y poppler-utils)", name)
		}
		t.Skipf("%s not found (install poppler-utils); set CI to make this a failure", name)
	}
	return path
}

func pdfText(t *testing.T, data []byte) string {
	t.Helper()
	tool := needTool(t, "pdftotext")
	path := filepath.Join(t.TempDir(), "claim.pdf")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "-enc", "UTF-8", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return string(out)
}

func TestWritePDF(t *testing.T) {
	t.Parallel()
	p := testPack(t, testLines)
	var buf bytes.Buffer
	if err := WritePDF(&buf, p); err != nil {
		t.Fatal(err)
	}
	text := pdfText(t, buf.Bytes())
	pages := strings.Count(text, "\f")
	for _, want := range []string{
		"Claim certificate",
		"2021Q3",
		"claim 3 for period 2021Q3",
		"ESF due at 9/14",
		gbp.Pounds(p.ESFDue.Period),
		gbp.Pounds(p.ESFDue.Cumulative),
		gbp.Pounds(p.TotalEligible.Cumulative),
		"£3,600,000.00",
		"Pen-y-bont ar Ogwr",
		"Bro Morgannwg",
		welshOfficer, // ŷ and ŵ
		p.Rounding.Residual,
		"Match delivered against target",
		"Findings",
		"Officer time per authority",
		p.Signatory.Name,
		"Ledger position: " + intText(p.Position.EntriesSealed) + " entries sealed",
		p.Position.ChainLink[:16],
		fmt.Sprintf("Page 1 of %d", pages),
		fmt.Sprintf("Page %d of %d", pages, pages),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
	if strings.Contains(text, "{nb}") {
		t.Error("page count placeholder left in the PDF")
	}
	// The match table and the chart name authorities without their codes, so they are in the
	// order of the names.
	for _, section := range []string{"Match delivered against target", "Match by authority"} {
		at := strings.Index(text, section)
		if at < 0 {
			t.Errorf("PDF lacks %q", section)
			continue
		}
		blaenau, bridgend := strings.Index(text[at:], "Blaenau Gwent"), strings.Index(text[at:], "Bridgend")
		if blaenau < 0 || bridgend < 0 || blaenau > bridgend {
			t.Errorf("%s: Blaenau Gwent at %d, Bridgend at %d; want Blaenau Gwent first", section, blaenau, bridgend)
		}
	}
	if !regexp.MustCompile(`£\d{1,3}(,\d{3})*\.\d{2}`).MatchString(text) {
		t.Error("no £1,234.56-style figure")
	}
	// The transaction list and the staff-cost workings are in the PDF as well as the workbook
	// (domain §8): every cash line with its evidence, every rate version with its hourly rate.
	for _, want := range []string{"Transaction list", "Staff-cost workings"} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF lacks the section %q", want)
		}
	}
	var cash decimal.Decimal
	for _, l := range p.Transactions {
		cash = cash.Add(l.Amount)
		for _, want := range []string{l.EvidenceRef, gbp.Pounds(l.Amount), fmt.Sprint(l.EntryID)} {
			if !strings.Contains(text, want) {
				t.Errorf("PDF transaction list lacks %q of entry %d", want, l.EntryID)
			}
		}
	}
	if !strings.Contains(text, gbp.Pounds(cash)) {
		t.Errorf("PDF transaction list lacks the total %s", gbp.Pounds(cash))
	}
	for _, r := range p.StaffCosts {
		if !strings.Contains(text, "£"+r.HourlyRate) || !strings.Contains(text, gbp.Pounds(r.AGEC)) {
			t.Errorf("PDF staff-cost workings lack %s's version from %s (AGEC %s, rate £%s)", r.PayrollRef, dateText(r.ValidFrom),
				gbp.Pounds(r.AGEC), r.HourlyRate)
		}
	}
	// Late officer time is listed line by line, with the period it relates to (domain.md §6).
	late := 0
	_, lateSection, _ := strings.Cut(text, "Late officer time: ")
	for _, l := range p.OfficerTime {
		if l.RelatesTo != "" {
			late++
			for _, want := range []string{fmt.Sprint(l.EntryID), dateText(l.WorkDate), l.RelatesTo, gbp.Pounds(l.Amount)} {
				if !strings.Contains(lateSection, want) {
					t.Errorf("PDF's late officer time lacks %q of entry %d", want, l.EntryID)
				}
			}
		}
	}
	if late == 0 || !strings.HasPrefix(lateSection, intText(int64(late))+" lines") {
		t.Errorf("PDF lacks the late officer time (%d lines)", late)
	}
	// Every page carries the ledger position.
	if got := strings.Count(text, "Ledger position: "); got < pages {
		t.Errorf("ledger position on %d of %d pages", got, pages)
	}
}

func TestBuildIsReproducible(t *testing.T) {
	t.Parallel()
	a, _ := build(t, testPack(t, testLines))
	b, _ := build(t, testPack(t, testLines))
	// The same claim with its lists in another order gives the same files too.
	p := testPack(t, testLines)
	slices.Reverse(p.OfficerTime)
	slices.Reverse(p.Transactions)
	slices.Reverse(p.StaffCosts)
	slices.Reverse(p.Match)
	slices.Reverse(p.Findings)
	slices.Reverse(p.TrialBalance)
	c, _ := build(t, p)
	for _, name := range []string{NameXLSX, NamePDF, NameManifest} {
		if a[name].SHA256 != b[name].SHA256 {
			t.Errorf("%s differs between two builds", name)
		}
		if a[name].SHA256 != c[name].SHA256 {
			t.Errorf("%s depends on the order of the pack's lists", name)
		}
		sum := sha256.Sum256(a[name].Data)
		if hex.EncodeToString(sum[:]) != a[name].SHA256 {
			t.Errorf("%s: hash does not match its bytes", name)
		}
	}
	// The one-file encoders give the same bytes as Build.
	var x, y bytes.Buffer
	pk := testPack(t, testLines)
	if err := WriteXLSX(&x, pk); err != nil {
		t.Fatal(err)
	}
	if err := WritePDF(&y, pk); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x.Bytes(), a[NameXLSX].Data) || !bytes.Equal(y.Bytes(), a[NamePDF].Data) {
		t.Error("WriteXLSX or WritePDF differs from Build")
	}
}

func TestWriteDir(t *testing.T) {
	t.Parallel()
	p := testPack(t, testLines)
	dir := filepath.Join(t.TempDir(), "pack")
	m, err := WriteDir(t.Context(), dir, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{NamePDF, NameXLSX, NameManifest}) {
		t.Errorf("directory holds %v", names)
	}
	raw, err := os.ReadFile(filepath.Join(dir, NameManifest))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(raw, []byte("}\n")) {
		t.Error("manifest.json lacks its trailing newline")
	}
	var got Manifest
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Period != "2021Q3" || got.ClaimStatus != "draft" || got.ClaimNumber != 3 || got.Position.ChainLink != p.Position.ChainLink ||
		got.Position.LastEntryID != p.Position.LastEntryID || got.GeneratorVersion != "infuse test" ||
		!got.CompiledAt.Equal(p.CompiledAt) || got.PeriodStart != "2021-07-01" || got.PeriodEnd != "2021-09-30" {
		t.Errorf("manifest %+v", got)
	}
	if len(got.Files) != 2 || len(m.Files) != 2 {
		t.Fatalf("manifest lists %d files", len(got.Files))
	}
	for _, mf := range got.Files {
		data, err := os.ReadFile(filepath.Join(dir, mf.Name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != mf.SHA256 || int64(len(data)) != mf.Bytes {
			t.Errorf("%s: manifest says %d bytes %s, file has %d bytes %x", mf.Name, mf.Bytes, mf.SHA256, len(data), sum)
		}
	}
	// The field order is part of the interface.
	keys := regexp.MustCompile(`(?m)^  "([a-z_]+)"`).FindAllStringSubmatch(string(raw), -1)
	var order []string
	for _, k := range keys {
		order = append(order, k[1])
	}
	want := []string{"operation", "period", "period_start", "period_end", "claim_number", "ledger_position", "generator_version", "compiled_at", "files", "claim_status"}
	if !slices.Equal(order, want) {
		t.Errorf("manifest fields %v, want %v", order, want)
	}

	t.Run("RewriteReplacesWhole", func(t *testing.T) {
		if _, err := WriteDir(t.Context(), dir, p, nil); err != nil {
			t.Fatal(err)
		}
		again, _ := os.ReadFile(filepath.Join(dir, NameManifest))
		if !bytes.Equal(again, raw) {
			t.Error("rewriting the same pack changed manifest.json")
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 3 {
			t.Errorf("%d files after a rewrite", len(entries))
		}
	})

	t.Run("InvalidPackWritesNothing", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "out")
		bad := testPack(t, 10)
		bad.TotalEligible.Period = bad.TotalEligible.Period.Add(decimal.New(1, -2))
		_, err := WriteDir(t.Context(), empty, bad, nil)
		if apperr.CodeOf(err) != apperr.Invalid {
			t.Fatalf("err = %v, want invalid", err)
		}
		if _, err := os.Stat(empty); !os.IsNotExist(err) {
			t.Error("directory created for an invalid pack")
		}
	})

	t.Run("UnwritableDirLeavesNoTemp", func(t *testing.T) {
		parent := t.TempDir()
		blocker := filepath.Join(parent, "file")
		if err := os.WriteFile(blocker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		// Problems the person who named the directory can fix are theirs to read, not internal.
		userFacing := func(what string, err error, want string) {
			t.Helper()
			if err == nil {
				t.Fatalf("%s: no error", what)
			}
			if apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.Public(err), want) {
				t.Errorf("%s: %s %q, want invalid saying %q", what, apperr.CodeOf(err), apperr.Public(err), want)
			}
		}
		_, err := WriteDir(t.Context(), blocker, testPack(t, 10), nil)
		userFacing("a file as the directory", err, "cannot write the claim pack into "+blocker+": it, or a directory above it, is a file")
		_, err = WriteDir(t.Context(), filepath.Join(blocker, "pack"), testPack(t, 10), nil)
		userFacing("a directory under a file", err, "is a file")
		// A target name that is a directory makes the rename fail after every temp is written.
		target := filepath.Join(parent, "pack")
		if err := os.MkdirAll(filepath.Join(target, NameManifest, "x"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err = WriteDir(t.Context(), target, testPack(t, 10), nil)
		userFacing("a pack file's name taken by a directory", err, "a directory there has the name of a pack file")
		// Root writes anywhere, so a permission problem is made rather than met.
		userFacing("permission", dirError("/srv/pack", &fs.PathError{Op: "open", Path: "/srv/pack/x", Err: syscall.EACCES}),
			"cannot write the claim pack into /srv/pack: permission denied")
		if err := dirError("/srv/pack", errors.New("something else")); apperr.CodeOf(err) != apperr.Internal {
			t.Errorf("an unknown failure is %s, want internal", apperr.CodeOf(err))
		}
		entries, _ := os.ReadDir(target)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("temporary file %s left behind", e.Name())
			}
		}
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for name, spoil := range map[string]func(p *Pack){
		"NoPeriod":           func(p *Pack) { p.Period.Code = "" },
		"NoClaimNumber":      func(p *Pack) { p.ClaimNumber = 0 },
		"NoCompiledAt":       func(p *Pack) { p.CompiledAt = time.Time{} },
		"BadRate":            func(p *Pack) { p.Rate.Den = 0 },
		"HeadingsDoNotAddUp": func(p *Pack) { p.Headings[0].Cumulative = p.Headings[0].Cumulative.Add(decimal.New(1, -2)) },
		"UnknownSeverity":    func(p *Pack) { p.Findings[0].Severity = "fatal" },
		"EndBeforeStart":     func(p *Pack) { p.Period.End = p.Period.Start.AddDate(0, 0, -1) },
	} {
		t.Run(name, func(t *testing.T) {
			p := testPack(t, 5)
			spoil(p)
			if err := p.Validate(); apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("Validate = %v, want invalid", err)
			}
			if err := WriteXLSX(io.Discard, p); apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("WriteXLSX = %v, want invalid", err)
			}
			if err := WritePDF(io.Discard, p); apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("WritePDF = %v, want invalid", err)
			}
		})
	}
}

func TestNilClaim(t *testing.T) {
	t.Parallel()
	// R3.4: a claim with nothing spent is still a claim; its pack renders.
	p := testPack(t, 0)
	p.Transactions, p.Findings, p.StaffCosts = nil, nil, nil
	for i := range p.Headings {
		p.Headings[i].Period = decimal.Zero
	}
	var cum decimal.Decimal
	for _, h := range p.Headings {
		cum = cum.Add(h.Cumulative)
	}
	p.TotalEligible = Figure{Cumulative: cum}
	p.History = nil
	files, _ := build(t, p)
	f := openBook(t, files[NameXLSX].Data)
	if got := raw(t, f, sheetTime, "A3"); got != "Total of 0 lines" {
		t.Errorf("officer time total row %q", got)
	}
	if got := raw(t, f, sheetFindings, "C2"); got != "No findings." {
		t.Errorf("findings %q", got)
	}
}

func TestTextFormats(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, money, hours string }{
		{"0", "£0.00", "0.00"},
		{"1234.5", "£1,234.50", "1,234.50"},
		{"-0.01", "-£0.01", "-0.01"},
		{"3600000", "£3,600,000.00", "3,600,000.00"},
		{"-1234567.89", "-£1,234,567.89", "-1,234,567.89"},
		{"999.999", "£1,000.00", "1,000.00"},
	} {
		d := decimal.RequireFromString(c.in)
		if got := gbp.Pounds(d); got != c.money {
			t.Errorf("gbp.Pounds(%s) = %q, want %q", c.in, got, c.money)
		}
		if got := numberText(d, 2); got != c.hours {
			t.Errorf("numberText(%s) = %q, want %q", c.in, got, c.hours)
		}
	}
}

func TestFontsCoverWelsh(t *testing.T) {
	t.Parallel()
	d := &doc{}
	for _, s := range []string{"£", "ŵŷŴŶ", "âêîôûŵŷ äëïöüẅÿ áéíóúẃý àèìòùẁỳ", "–—‘’“”•…·×÷−±"} {
		if got := d.t(s); got != s {
			t.Errorf("font lacks glyphs: %q drawn as %q", s, got)
		}
	}
	if got := d.t("a😀b\x07c"); got != "a?b c" {
		t.Errorf("unsupported characters: %q", got)
	}
}

// TestLook writes the pack of a test claim to REPORTS_LOOK (a directory) for a person to look
// at: go test ./reports -run TestLook with REPORTS_LOOK=DIR (and
// REPORTS_LOOK_LINES=100000 for a large pack).
func TestLook(t *testing.T) {
	dir := os.Getenv("REPORTS_LOOK")
	if dir == "" {
		t.Skip("set REPORTS_LOOK to a directory to write a pack there")
	}
	lines := testLines
	if n, err := strconv.Atoi(os.Getenv("REPORTS_LOOK_LINES")); err == nil {
		lines = n
	}
	if _, err := WriteDir(t.Context(), dir, testPack(t, lines), nil); err != nil {
		t.Fatal(err)
	}
}

func TestLongAndOddText(t *testing.T) {
	t.Parallel()
	p := testPack(t, 20)
	long := strings.Repeat("Gŵyl Dewi 😀 ", 4000) // 52,000 characters
	p.Findings = append(p.Findings, Finding{ID: "C8", Severity: SeverityBlock, Message: long, Entries: []int64{1, 2, 3}})
	p.Transactions[0].Description = long
	p.OfficerTime[0].OfficerName = "Siân 😀\tTab"
	files, _ := build(t, p)
	f := openBook(t, files[NameXLSX].Data)
	rows, err := f.GetRows(sheetCash)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		if len(r) > 4 && strings.HasPrefix(r[4], "Gŵyl") {
			found = true
			if n := utf16Len(r[4]); n > maxCellChars || n < maxCellChars-1 || !strings.HasSuffix(r[4], "…") {
				t.Errorf("long description kept %d UTF-16 units, want %d ending in …", n, maxCellChars)
			}
		}
	}
	if !found {
		t.Error("long description not found")
	}
	text := pdfText(t, files[NamePDF].Data)
	if !strings.Contains(text, "Gŵyl Dewi ? Gŵyl") {
		t.Error("PDF does not show the long finding with the emoji replaced")
	}
}

// A word wider than its cell is broken into pieces that each fit, in time linear in its length:
// references of 1,000 characters without a space are accepted by the imports.
func TestLongWordsAreBrokenToFit(t *testing.T) {
	t.Parallel()
	f := gofpdf.New("P", "mm", "A4", "")
	f.AddUTF8FontFromBytes(font, "", bytes.Clone(goregular.TTF))
	f.SetFont(font, "", 8)
	d := &doc{f: f}
	word := strings.Repeat("PAY-2023-ŵ1-", 84) // 1,008 characters, no space
	const w = 24.0
	lines := d.wrap("Ref "+word+" end", w)
	if len(lines) < 10 || lines[0] != "Ref" || lines[len(lines)-1] == "" {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
	joined := strings.Join(lines[1:], "")
	if !strings.HasPrefix(joined, word) {
		t.Errorf("the pieces do not make up the word: %q", joined)
	}
	for i, l := range lines {
		if got := f.GetStringWidth(l); got > w-2+1e-9 {
			t.Errorf("line %q is %.2f mm wide, more than %.2f", l, got, w-2)
		}
		// Each piece of the word holds as many characters as fit: one more would not.
		if i > 0 && i < len(lines)-1 {
			next, _ := utf8.DecodeRuneInString(lines[i+1])
			if f.GetStringWidth(l+string(next)) <= w-2 {
				t.Errorf("line %q has room for %q, the start of the next", l, next)
			}
		}
	}
}

// TestConcurrentPacksAreIdentical writes packs at the same time, as the scheduler and auditors'
// downloads do: under -race it catches any state the encoders share (gofpdf once wrote into the
// package-level font bytes), and every copy must still be byte-identical.
func TestConcurrentPacksAreIdentical(t *testing.T) {
	t.Parallel()
	const n = 4
	sums := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			files, _, err := Build(testPack(t, 50))
			if err != nil {
				t.Error(err)
				return
			}
			for _, f := range files {
				sums[i] += f.SHA256
			}
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if sums[i] != sums[0] {
			t.Fatalf("pack %d differs from pack 0", i)
		}
	}
}

// TestClaimHistorySheet: the Claim history sheet lists every claim with formulas an auditor can
// follow (total = cash + flat rate + officer time, cumulative = the previous cumulative + the
// total, ESF due = cum_due − the previous cum_due), and reconciles the cumulative total to the
// ledger: the exp: and inkind: accounts of the trial balance plus the flat rate never booked (C2).
func TestClaimHistorySheet(t *testing.T) {
	t.Parallel()
	p := testPack(t, 10) // its history: the claims before as claim 1, a nil claim 2, this claim 3
	files, _ := build(t, p)
	f := openBook(t, files[NameXLSX].Data)
	h := p.History
	if got := raw(t, f, sheetHistory, "B4"); got != "2021Q3" {
		t.Errorf("B4 = %q", got)
	}
	formula(t, f, sheetHistory, "F2", "C2+D2+E2", h[0].Total)
	formula(t, f, sheetHistory, "G2", "F2", h[0].Cumulative)
	formula(t, f, sheetHistory, "I2", "H2", h[0].Due)
	formula(t, f, sheetHistory, "G3", "G2+F3", h[0].Cumulative)
	formula(t, f, sheetHistory, "I3", "H3-H2", decimal.Zero)
	formula(t, f, sheetHistory, "G4", "G3+F4", p.TotalEligible.Cumulative)
	formula(t, f, sheetHistory, "I4", "H4-H3", p.ESFDue.Period)
	var booked decimal.Decimal
	for _, l := range p.TrialBalance {
		if strings.HasPrefix(l.Code, "exp:") || strings.HasPrefix(l.Code, "inkind:") {
			booked = booked.Add(l.Balance)
		}
	}
	rows, err := f.GetRows(sheetHistory, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	r := slices.IndexFunc(rows, func(row []string) bool { return len(row) > 0 && row[0] == "Reconciliation to the ledger (C2)" })
	if r < 0 {
		t.Fatal("no reconciliation on the Claim history sheet")
	}
	flat := h[0].Indirect.Add(h[2].Indirect)
	eqMoney(t, f, sheetHistory, fmt.Sprintf("I%d", r+2), booked)
	formula(t, f, sheetHistory, fmt.Sprintf("I%d", r+3), "SUM(D2:D4)", flat)
	formula(t, f, sheetHistory, fmt.Sprintf("I%d", r+4), fmt.Sprintf("I%d+I%d", r+2, r+3), p.TotalEligible.Cumulative)
	// A history that does not end in the claim's figures, or does not reconcile, is refused.
	for _, spoil := range []func(q *Pack){
		func(q *Pack) { q.History[2].Due = q.History[2].Due.Add(dec("0.01")) },
		func(q *Pack) { q.History[1].CumDue = q.History[1].CumDue.Add(dec("0.01")) }, // cum_due(p−1) is PreviousDue
		func(q *Pack) { q.History[0].Indirect = q.History[0].Indirect.Add(dec("0.01")) },
	} {
		q := testPack(t, 10)
		spoil(q)
		if err := q.Validate(); apperr.RuleOf(err) != "C2" {
			t.Errorf("a spoilt history: %v", err)
		}
	}
	// The summary shows cum_due(p−1) and this claim's due as the difference.
	rows, err = f.GetRows(sheetSummary, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	r = slices.IndexFunc(rows, func(row []string) bool { return len(row) > 0 && strings.HasPrefix(row[0], "ESF due on this claim") })
	if r < 0 {
		t.Fatal("the summary does not work out this claim's ESF due")
	}
	formula(t, f, sheetSummary, fmt.Sprintf("C%d", r+1), fmt.Sprintf("C%d-C%d", r-1, r), p.ESFDue.Period)
}

// TestEveryCheckIsListed: the pack lists each check of domain §7 with its result, so that a
// check that found nothing is seen to have been made: the fixture raises C4 and C6 (warn) and C7
// (info); the others passed.
func TestEveryCheckIsListed(t *testing.T) {
	t.Parallel()
	p := testPack(t, 10)
	want := map[string]string{"C1": "passed", "C2": "passed", "C3": "passed", "C4": "warn", "C5": "passed", "C6": "warn", "C7": "info", "C8": "passed"}
	files, _ := build(t, p)
	f := openBook(t, files[NameXLSX].Data)
	rows, err := f.GetRows(sheetFindings)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		if len(r) == 3 && want[r[0]] != "" && r[1] != "" {
			got[r[0]] = r[1]
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("the workbook's checks %v, want %v", got, want)
	}
	text := pdfText(t, files[NamePDF].Data)
	if !strings.Contains(text, "Checks made") || !strings.Contains(text, "cumulative ESF due is at most the award") {
		t.Error("the PDF does not list the checks made")
	}
}

// TestThePDFExplainsReversals: an officer-time reversal is listed in the PDF with the entry it
// reverses and the reason given, not only as a negative line.
func TestThePDFExplainsReversals(t *testing.T) {
	t.Parallel()
	p := testPack(t, 10)
	orig := p.OfficerTime[0]
	p.OfficerTime = append(p.OfficerTime, TimeLine{EntryID: 999001, Authority: orig.Authority, PayrollRef: orig.PayrollRef,
		OfficerName: orig.OfficerName, WorkDate: orig.WorkDate, Hours: orig.Hours.Neg(), Activity: orig.Activity,
		Reverses: orig.EntryID, Reason: "keyed as 7.25 hours; the register shows 7.5", RateValidFrom: orig.RateValidFrom,
		HourlyRate: orig.HourlyRate, Amount: orig.Amount.Neg(), EvidenceRef: orig.EvidenceRef, Approver: orig.Approver,
		RecordedBy: "fo@newport.example"})
	files, _ := build(t, p)
	f := openBook(t, files[NameXLSX].Data)
	rows, err := f.GetRows(sheetTime)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rows, func(r []string) bool { return len(r) > 0 && r[0] == "999001" })
	if i < 0 {
		t.Fatal("the workbook has no row for the reversal")
	}
	if len(rows[i]) != 16 || rows[i][6] != orig.Activity || rows[i][13] != fmt.Sprint(orig.EntryID) || rows[i][14] != "keyed as 7.25 hours; the register shows 7.5" || rows[i][15] != "fo@newport.example" {
		t.Errorf("the workbook's reversal row: %q", rows[i])
	}
	text := strings.Join(strings.Fields(pdfText(t, files[NamePDF].Data)), " ")
	for _, want := range []string{"Reversals of officer time: 1 line,", "999001 " + fmt.Sprint(orig.EntryID), "the register shows 7.5"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF lacks %q", want)
		}
	}
}

// TestWordBreaksShowAsLineBreaks: the vertical tab and form feed of Word's line and page breaks,
// which text pasted into a spreadsheet keeps and records accept, show in the workbook as line
// breaks, not as U+FFFD.
func TestWordBreaksShowAsLineBreaks(t *testing.T) {
	t.Parallel()
	p := testPack(t, 10)
	p.Transactions[0].Description = "Lab facilitation\vcohort Alpha\fday 1"
	files, _ := build(t, p)
	f := openBook(t, files[NameXLSX].Data)
	rows, err := f.GetRows(sheetCash)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		for _, c := range r {
			found = found || c == "Lab facilitation\ncohort Alpha\nday 1"
			if strings.ContainsRune(c, '\uFFFD') {
				t.Errorf("a cell shows U+FFFD: %q", c)
			}
		}
	}
	if !found {
		t.Error("the description with Word's breaks is not in the transaction list with line breaks")
	}
}
