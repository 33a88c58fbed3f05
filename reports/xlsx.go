package reports

import (
	"archive/zip"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/gbp"
	"github.com/ccr-infuse/infuse/programme"
)

// The workbook's sheets, in order.
const (
	sheetSummary  = "Summary"
	sheetHeadings = "Expenditure by heading"
	sheetCash     = "Transaction list"
	sheetTime     = "Officer time"
	sheetMatch    = "Match by authority"
	sheetStaff    = "Staff-cost workings"
	sheetFlat     = "Flat-rate workings"
	sheetHistory  = "Claim history"
	sheetFindings = "Findings"
	sheetTB       = "Trial balance"
	sheetManifest = "Manifest"
)

var sheetOrder = []string{sheetSummary, sheetHeadings, sheetCash, sheetTime, sheetMatch, sheetStaff,
	sheetFlat, sheetHistory, sheetFindings, sheetTB, sheetManifest}

// Number formats. Money is shown in pounds with negatives in red, as finance teams expect.
const (
	fmtMoney  = `"£"#,##0.00;[Red]-"£"#,##0.00`
	fmtRate4  = `"£"#,##0.0000`
	fmtMoney4 = `"£"#,##0.0000;[Red]-"£"#,##0.0000`
	fmtDec6   = `#,##0.000000;[Red]-#,##0.000000`
	fmtHours  = `#,##0.00;[Red]-#,##0.00`
	fmtPct    = `0.00%;[Red]-0.00%`
	fmtDate   = `yyyy-mm-dd`
	fmtStamp  = `yyyy-mm-dd hh:mm:ss`
	fmtInt    = `0`
	fmtCount  = `#,##0`
	fmtFTE    = `0.00##`
)

// Column widths are fitted to the longest text in a column, within these bounds.
const (
	minColWidth = 8
	maxColWidth = 60
)

// numPad widens number columns so that right-aligned figures do not run into the left-aligned
// text of the next column.
const numPad = 3

// maxCellChars is what an Excel cell holds.
const maxCellChars = 32767

// flatAmountRef is the cell of the Flat-rate workings sheet holding the claimed flat amount;
// the reconciliation on Expenditure by heading refers to it.
const flatAmountRef = "$B$8"

// WriteXLSX writes the claim workbook of p to w. Its Manifest sheet lists the PDF's SHA-256,
// so the PDF is rendered (to a hash) first; Build avoids doing that twice.
func WriteXLSX(w io.Writer, p *Pack) error {
	if err := p.Validate(); err != nil {
		return err
	}
	pdf, err := digestOf(NamePDF, func(w io.Writer) error { return writePDF(w, p) })
	if err != nil {
		return err
	}
	return writeXLSX(w, p, pdf)
}

// writeXLSX writes the workbook of a validated pack; pdf describes the pack's PDF.
func writeXLSX(w io.Writer, p *Pack, pdf ManifestFile) error {
	f := excelize.NewFile()
	defer func() { _ = f.Close() }() // removes the stream writers' temporary files
	b, err := newBook(f, p)
	if err != nil {
		return apperr.Wrap("reports.WriteXLSX", err)
	}
	steps := []func() error{
		b.summary, b.headings, b.transactions, b.officerTime, b.match, b.staff, b.flat, b.history, b.findings, b.trialBalance,
		func() error { return b.manifest(pdf) },
		b.props,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return apperr.Wrap("reports.WriteXLSX", err)
		}
	}
	buf, err := f.WriteToBuffer()
	if err != nil {
		return apperr.Wrap("reports.WriteXLSX", err)
	}
	if err := rezip(w, buf.Bytes()); err != nil {
		return apperr.Wrap("reports.WriteXLSX", err)
	}
	return nil
}

// rezip copies the zip archive data to w with its members in a fixed order and fixed
// timestamps. excelize writes streamed sheets in map order, which would make two renderings
// of the same pack differ; members are copied compressed, so this costs little.
func rezip(w io.Writer, data []byte) error {
	r, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	files := slices.Clone(r.File)
	rank := func(name string) int {
		switch name {
		case "[Content_Types].xml":
			return 0
		case "_rels/.rels":
			return 1
		}
		return 2
	}
	slices.SortFunc(files, func(a, b *zip.File) int {
		return cmp.Or(cmp.Compare(rank(a.Name), rank(b.Name)), strings.Compare(a.Name, b.Name))
	})
	zw := zip.NewWriter(w)
	for _, zf := range files {
		fh := zf.FileHeader
		fh.Modified = time.Time{}
		fh.ModifiedDate, fh.ModifiedTime = 0x21, 0 // 1980-01-01, the zip epoch
		fh.Extra = nil
		dst, err := zw.CreateRaw(&fh)
		if err != nil {
			return err
		}
		src, err := zf.OpenRaw()
		if err != nil {
			return err
		}
		if _, err := io.Copy(dst, src); err != nil {
			return err
		}
	}
	return zw.Close()
}

// styles are the workbook's cell styles.
type styles struct {
	title, header, label, labelTop, note, text, quoted, wrap, mono int
	money, moneyTotal, money4, rate4, dec6, hours, hoursTotal, pct int
	date, stamp, integer, count, countTotal, fte, totalLabel       int
	textRight, headerRight                                         int
}

// book renders one workbook.
type book struct {
	f  *excelize.File
	p  *Pack
	st styles
	// label is how the printed pages name the claim in their footers.
	label string
	// cashRows and timeRows are the last data rows of the two line sheets, for formulas that
	// refer to them from other sheets.
	cashRows, timeRows int
}

func newBook(f *excelize.File, p *Pack) (*book, error) {
	b := &book{f: f, p: p, label: fmt.Sprintf("%s ESF claim %d, %s", p.Operation.Name, p.ClaimNumber, p.Period.Code)}
	if err := f.SetSheetName("Sheet1", sheetOrder[0]); err != nil {
		return nil, err
	}
	for _, name := range sheetOrder[1:] {
		if _, err := f.NewSheet(name); err != nil {
			return nil, err
		}
	}
	f.SetActiveSheet(0)
	var err error
	b.st, err = newStyles(f)
	b.cashRows = len(p.Transactions) + 1
	b.timeRows = len(p.OfficerTime) + 1
	return b, err
}

func newStyles(f *excelize.File) (styles, error) {
	var st styles
	var errs []error
	mk := func(s *excelize.Style) int {
		id, err := f.NewStyle(s)
		errs = append(errs, err)
		return id
	}
	num := func(code string) *string { return &code }
	topBorder := []excelize.Border{{Type: "top", Color: "000000", Style: 1}}
	bold := &excelize.Font{Bold: true}
	top := &excelize.Alignment{Vertical: "top"}
	st.title = mk(&excelize.Style{Font: &excelize.Font{Bold: true, Size: 14}})
	st.header = mk(&excelize.Style{
		Font:      bold,
		Fill:      excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"D9E1F2"}},
		Border:    []excelize.Border{{Type: "bottom", Color: "000000", Style: 1}},
		Alignment: &excelize.Alignment{Vertical: "center", WrapText: true},
	})
	st.headerRight = mk(&excelize.Style{
		Font:      bold,
		Fill:      excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"D9E1F2"}},
		Border:    []excelize.Border{{Type: "bottom", Color: "000000", Style: 1}},
		Alignment: &excelize.Alignment{Vertical: "center", Horizontal: "right", WrapText: true},
	})
	st.label = mk(&excelize.Style{Font: bold})
	st.labelTop = mk(&excelize.Style{Font: bold, Alignment: top})
	st.note = mk(&excelize.Style{Font: &excelize.Font{Italic: true, Color: "595959"}})
	// Left-aligned cells are indented one step so that they do not run into a right-aligned
	// figure in the column before.
	left := &excelize.Alignment{Vertical: "top", Horizontal: "left", Indent: 1}
	st.text = mk(&excelize.Style{Alignment: left})
	// quoted is for text that begins with = + - or @: it is stored as a string, and the quote
	// prefix keeps it text when someone edits the cell in Excel (CSV/formula injection).
	// (Protection, the default anyway, only keeps it a style of its own: NewStyle reuses an
	// identical one, and the quote prefix must not reach the ordinary text style.)
	st.quoted = mk(&excelize.Style{Alignment: left, Protection: &excelize.Protection{Locked: true}})
	st.wrap = mk(&excelize.Style{Alignment: &excelize.Alignment{Vertical: "top", Horizontal: "left", Indent: 1, WrapText: true}})
	st.mono = mk(&excelize.Style{Font: &excelize.Font{Family: "Courier New"}})
	st.money = mk(&excelize.Style{CustomNumFmt: num(fmtMoney), Alignment: top})
	st.moneyTotal = mk(&excelize.Style{CustomNumFmt: num(fmtMoney), Font: bold, Border: topBorder})
	st.money4 = mk(&excelize.Style{CustomNumFmt: num(fmtMoney4), Alignment: top})
	st.rate4 = mk(&excelize.Style{CustomNumFmt: num(fmtRate4), Alignment: top})
	st.dec6 = mk(&excelize.Style{CustomNumFmt: num(fmtDec6), Alignment: top})
	st.hours = mk(&excelize.Style{CustomNumFmt: num(fmtHours), Alignment: top})
	st.hoursTotal = mk(&excelize.Style{CustomNumFmt: num(fmtHours), Font: bold, Border: topBorder})
	st.pct = mk(&excelize.Style{CustomNumFmt: num(fmtPct), Alignment: top})
	st.date = mk(&excelize.Style{CustomNumFmt: num(fmtDate), Alignment: left})
	st.stamp = mk(&excelize.Style{CustomNumFmt: num(fmtStamp), Alignment: &excelize.Alignment{Horizontal: "left"}})
	st.integer = mk(&excelize.Style{CustomNumFmt: num(fmtInt), Alignment: left})
	st.count = mk(&excelize.Style{CustomNumFmt: num(fmtCount), Alignment: top})
	st.countTotal = mk(&excelize.Style{CustomNumFmt: num(fmtCount), Font: bold, Border: topBorder})
	st.fte = mk(&excelize.Style{CustomNumFmt: num(fmtFTE), Alignment: top})
	st.totalLabel = mk(&excelize.Style{Font: bold, Border: topBorder})
	st.textRight = mk(&excelize.Style{Alignment: &excelize.Alignment{Vertical: "top", Horizontal: "right"}})
	for _, err := range errs {
		if err != nil {
			return st, err
		}
	}
	if f.Styles == nil || f.Styles.CellXfs == nil || st.quoted >= len(f.Styles.CellXfs.Xf) {
		return st, fmt.Errorf("excelize: style %d not found", st.quoted)
	}
	on := true
	f.Styles.CellXfs.Xf[st.quoted].QuotePrefix = &on
	return st, nil
}

// cell is a workbook cell and the width its content needs.
type cell struct {
	x     excelize.Cell
	width int  // characters; 0 when the cell does not decide its column's width
	wrap  bool // wraps within its column; the row is made tall enough
}

// isFormulaLike reports whether text would be read as a formula if typed into a cell.
func isFormulaLike(s string) bool {
	return s != "" && strings.ContainsRune("=+-@", rune(s[0]))
}

// text is a text cell. The value is always stored as a string, never as a formula.
func (b *book) text(s string) cell {
	style := b.st.text
	if isFormulaLike(s) {
		style = b.st.quoted
	}
	return cell{x: excelize.Cell{StyleID: style, Value: clip(s)}, width: utf8.RuneCountInString(s)}
}

func (b *book) styled(style int, s string) cell {
	if isFormulaLike(s) {
		style = b.st.quoted
	}
	return cell{x: excelize.Cell{StyleID: style, Value: clip(s)}, width: utf8.RuneCountInString(s)}
}

// wrapped is text that wraps within its column, which it does not widen.
func (b *book) wrapped(s string) cell {
	if isFormulaLike(s) {
		return b.wide(b.st.quoted, s)
	}
	return cell{x: excelize.Cell{StyleID: b.st.wrap, Value: clip(s)}, wrap: true}
}

// wide is text that may overflow into the empty cells beside it and so does not size its
// column.
func (b *book) wide(style int, s string) cell {
	c := b.styled(style, s)
	c.width = 0
	return c
}

func (b *book) money(d decimal.Decimal) cell {
	return cell{x: excelize.Cell{StyleID: b.st.money, Value: d.InexactFloat64()}, width: len(gbp.Pounds(d)) + numPad}
}

func (b *book) moneyStyle(style int, d decimal.Decimal) cell {
	c := b.money(d)
	c.x.StyleID = style
	return c
}

// sum is a formula cell with its cached value, so that a reader that does not recalculate
// (or a test) sees the figure. The cached value is what the formula evaluates to.
func (b *book) sum(style int, formula string, value decimal.Decimal) cell {
	return cell{x: excelize.Cell{StyleID: style, Formula: formula, Value: value.InexactFloat64()},
		width: len(gbp.Pounds(value)) + numPad}
}

func (b *book) hours(d decimal.Decimal) cell {
	return cell{x: excelize.Cell{StyleID: b.st.hours, Value: d.InexactFloat64()}, width: len(numberText(d, 2)) + numPad}
}

// percent is a percentage held as the fraction it is (15% as 0.15), so that a formula using
// the cell computes right, shown as a percentage to two places.
func (b *book) percent(pct decimal.Decimal) cell {
	return cell{x: excelize.Cell{StyleID: b.st.pct, Value: pct.Shift(-2).InexactFloat64()}, width: len(numberText(pct, 2)) + 1 + numPad}
}

func (b *book) num(style int, d decimal.Decimal, places int32) cell {
	return cell{x: excelize.Cell{StyleID: style, Value: d.InexactFloat64()}, width: len(numberText(d, places)) + numPad}
}

// str is a text cell for the line sheets, where widths are fitted separately; nil for empty
// text, so that the stream writes no cell.
func (b *book) str(s string) any {
	if s == "" {
		return nil
	}
	style := b.st.text
	if isFormulaLike(s) {
		style = b.st.quoted
	}
	return excelize.Cell{StyleID: style, Value: clip(s)}
}

// day is a date cell for the line sheets; nil for no date.
func (b *book) day(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return excelize.Cell{StyleID: b.st.date, Value: t.UTC()}
}

// decimalText is a cell for a number that claims computed as text (the 4-dp hourly rate, the
// 6-dp rounding workings): a number when it parses, else the text itself.
func (b *book) decimalText(style int, s string) cell {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return b.text(s)
	}
	return cell{x: excelize.Cell{StyleID: style, Value: v}, width: len(s) + numPad + 1}
}

func (b *book) date(t time.Time) cell {
	if t.IsZero() {
		return cell{}
	}
	return cell{x: excelize.Cell{StyleID: b.st.date, Value: t.UTC()}, width: 10}
}

func (b *book) integer(n int64) cell {
	return cell{x: excelize.Cell{StyleID: b.st.integer, Value: n}, width: len(strconv.FormatInt(n, 10))}
}

func (b *book) count(style int, n int64) cell {
	return cell{x: excelize.Cell{StyleID: style, Value: n}, width: len(intText(n)) + numPad}
}

// lineBreaks turns the vertical tab and form feed of Word's line and page breaks, which text
// pasted into a spreadsheet keeps and a workbook's XML cannot hold, into the line breaks they are.
var lineBreaks = strings.NewReplacer("\v", "\n", "\f", "\n")

// clip keeps text within what a cell holds, 32,767 UTF-16 code units, marking the cut; Word's
// breaks become line breaks (lineBreaks).
func clip(s string) string {
	if strings.ContainsAny(s, "\v\f") {
		s = lineBreaks.Replace(s)
	}
	if len(s) <= maxCellChars {
		return s // at most one code unit per byte
	}
	units := 0
	for i, r := range s {
		units += utf16.RuneLen(r)
		if units > maxCellChars-1 { // room for the ellipsis
			if utf16Len(s[i:])+units-utf16.RuneLen(r) <= maxCellChars {
				return s
			}
			return s[:i] + "…"
		}
	}
	return s
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// grid collects the rows of a small sheet so that its column widths can be fitted before the
// stream writer, which needs them first, writes any row.
type grid struct {
	rows    [][]cell
	heights map[int]float64
	merges  [][2]string
	widths  []int
}

// add appends a row and returns its 1-based row number.
func (g *grid) add(cells ...cell) int {
	g.rows = append(g.rows, cells)
	for i, c := range cells {
		for len(g.widths) <= i {
			g.widths = append(g.widths, 0)
		}
		g.widths[i] = max(g.widths[i], c.width)
	}
	return len(g.rows)
}

// blank appends an empty row.
func (g *grid) blank() int { return g.add() }

// next returns the number the next row will have.
func (g *grid) next() int { return len(g.rows) + 1 }

// maxRowHeight is the tallest row Excel allows, in points.
const maxRowHeight = 409

func (g *grid) height(row int, h float64) {
	if g.heights == nil {
		g.heights = map[int]float64{}
	}
	g.heights[row] = min(h, maxRowHeight)
}

// sheetSetup describes how a sheet is laid out.
type sheetSetup struct {
	name      string
	widths    []float64
	frozen    int    // header rows kept in view
	filter    string // autofilter range, "" for none
	landscape bool
}

// open prepares a sheet and returns its stream writer. The autofilter and page setup change
// the worksheet's properties, which the stream writer writes when it starts, so they go first.
func (b *book) open(s sheetSetup) (*excelize.StreamWriter, error) {
	f := b.f
	if s.filter != "" {
		if err := f.AutoFilter(s.name, s.filter, nil); err != nil {
			return nil, err
		}
	}
	orient := "portrait"
	if s.landscape {
		orient = "landscape"
	}
	one, zero, a4 := 1, 0, 9
	fit := true
	if err := f.SetSheetProps(s.name, &excelize.SheetPropsOptions{FitToPage: &fit}); err != nil {
		return nil, err
	}
	if err := f.SetPageLayout(s.name, &excelize.PageLayoutOptions{
		Size: &a4, Orientation: &orient, FitToWidth: &one, FitToHeight: &zero,
	}); err != nil {
		return nil, err
	}
	footer := "&L" + strings.ReplaceAll(b.label, "&", "&&") + "&RPage &P of &N"
	if err := f.SetHeaderFooter(s.name, &excelize.HeaderFooterOptions{OddFooter: footer}); err != nil {
		return nil, err
	}
	sw, err := f.NewStreamWriter(s.name)
	if err != nil {
		return nil, err
	}
	for i, w := range s.widths {
		if err := sw.SetColWidth(i+1, i+1, w); err != nil {
			return nil, err
		}
	}
	if s.frozen > 0 {
		first := "A" + strconv.Itoa(s.frozen+1)
		if err := sw.SetPanes(&excelize.Panes{
			Freeze: true, YSplit: s.frozen, TopLeftCell: first, ActivePane: "bottomLeft",
			Selection: []excelize.Selection{{SQRef: first, ActiveCell: first, Pane: "bottomLeft"}},
		}); err != nil {
			return nil, err
		}
		if err := f.SetDefinedName(&excelize.DefinedName{
			Name: "_xlnm.Print_Titles", Scope: s.name,
			RefersTo: fmt.Sprintf("'%s'!$1:$%d", s.name, s.frozen),
		}); err != nil {
			return nil, err
		}
	}
	return sw, nil
}

// fitWidths turns content lengths into column widths.
func fitWidths(chars []int, floor ...int) []float64 {
	out := make([]float64, len(chars))
	for i, c := range chars {
		w := c + 2
		if i < len(floor) {
			w = max(w, floor[i])
		}
		out[i] = float64(min(max(w, minColWidth), maxColWidth))
	}
	return out
}

// writeGrid streams a collected sheet.
func (b *book) writeGrid(s sheetSetup, g *grid, floor ...int) error {
	if s.widths == nil {
		s.widths = fitWidths(g.widths, floor...)
	}
	for i, r := range g.rows {
		for j, c := range r {
			if c.wrap && j < len(s.widths) {
				if text, ok := c.x.Value.(string); ok {
					g.height(i+1, max(g.heights[i+1], rowsHigh(text, s.widths[j])))
				}
			}
		}
	}
	sw, err := b.open(s)
	if err != nil {
		return err
	}
	for i, r := range g.rows {
		row := i + 1
		vals := make([]any, len(r))
		for j, c := range r {
			if c.x.Value == nil && c.x.Formula == "" && c.x.StyleID == 0 {
				continue
			}
			vals[j] = c.x
		}
		var opts []excelize.RowOpts
		if h, ok := g.heights[row]; ok {
			opts = append(opts, excelize.RowOpts{Height: h})
		}
		if err := sw.SetRow("A"+strconv.Itoa(row), vals, opts...); err != nil {
			return err
		}
	}
	for _, m := range g.merges {
		if err := sw.MergeCell(m[0], m[1]); err != nil {
			return err
		}
	}
	return sw.Flush()
}

// headerWidth is the width a column title needs in bold.
func headerWidth(t string) int { return utf8.RuneCountInString(t)*6/5 + 1 }

// header is a row of column titles. A title ending in ">" heads a column of figures and is
// right-aligned over them (the ">" is not shown).
func (b *book) header(titles ...string) []cell {
	out := make([]cell, len(titles))
	for i, t := range titles {
		style := b.st.header
		if r, ok := strings.CutSuffix(t, ">"); ok {
			t, style = r, b.st.headerRight
		}
		out[i] = cell{x: excelize.Cell{StyleID: style, Value: t}, width: headerWidth(t)}
	}
	return out
}

func (b *book) note(s string) cell { return b.wide(b.st.note, s) }

// rowsHigh estimates the height in points of a row holding text wrapped in a column of the
// given width (in characters), allowing for breaks at spaces.
func rowsHigh(s string, width float64) float64 {
	per := max(int(width*0.9)-1, 1)
	lines := 0
	for _, para := range strings.Split(s, "\n") {
		lines += max(1, (utf8.RuneCountInString(para)+per-1)/per)
	}
	return float64(lines) * 15
}

// summary writes the Summary sheet: the claim header, the figures for the period and
// cumulatively, the caps and rounding workings, and the declaration.
func (b *book) summary() error {
	p := b.p
	g := &grid{}
	g.add(b.wide(b.st.title, fmt.Sprintf("%s: ESF claim %d, %s", p.Operation.Name, p.ClaimNumber, p.Period.Code)))
	g.blank()
	kv := func(k string, v cell) { g.add(b.styled(b.st.label, k), v) }
	kv("Operation", b.wide(b.st.text, p.Operation.Name+" ("+p.Operation.ID+")"))
	kv("Operation (Welsh)", b.wide(b.st.text, p.Operation.NameCY))
	kv("Lead beneficiary", b.wide(b.st.text, authorityLabel(p.Operation.Lead)))
	kv("Claim number", b.integer(int64(p.ClaimNumber)))
	kv("Claim period", b.wide(b.st.text, p.Period.Code))
	kv("Period start", b.date(p.Period.Start))
	kv("Period end", b.date(p.Period.End))
	kv("Final claim", b.text(yesNo(p.Final)))
	kv("Status", b.text(p.Status))
	kv("Compiled at (UTC)", cell{x: excelize.Cell{StyleID: b.st.stamp, Value: p.CompiledAt.UTC()}, width: 19})
	kv("Compiled by", b.wide(b.st.text, p.CompiledBy))
	kv("Reviewed (R3.13)", b.wide(b.st.text, reviewText(p)))
	kv("Ledger entries sealed", b.integer(p.Position.EntriesSealed))
	kv("Last ledger entry", b.integer(p.Position.LastEntryID))
	kv("Chain link (SHA-256)", b.wide(b.st.mono, p.Position.ChainLink))
	kv("Late items booked in this period", b.integer(int64(p.LateItems)))
	kv("Generator", b.wide(b.st.text, p.generator()))
	g.blank()

	g.add(b.header("Figures", "This period>", "Cumulative>")...)
	first := g.next()
	for _, h := range p.Headings {
		g.add(b.wrapped(h.Name), b.money(h.Period), b.money(h.Cumulative))
	}
	last := g.next() - 1
	g.add(b.styled(b.st.totalLabel, "Total eligible expenditure"),
		b.sum(b.st.moneyTotal, fmt.Sprintf("SUM(B%d:B%d)", first, last), p.TotalEligible.Period),
		b.sum(b.st.moneyTotal, fmt.Sprintf("SUM(C%d:C%d)", first, last), p.TotalEligible.Cumulative))
	g.add(b.styled(b.st.label, "ESF due at "+p.rateText()),
		b.moneyStyle(b.st.moneyTotal, p.ESFDue.Period), b.moneyStyle(b.st.moneyTotal, p.ESFDue.Cumulative))
	g.add(b.text("ESF due of the claims before this one, cum_due(p−1)"), cell{}, b.money(p.PreviousDue))
	g.add(b.text("ESF due on this claim: cum_due(p) − cum_due(p−1), R9.3c (see "+sheetHistory+")"), cell{},
		b.sum(b.st.money, fmt.Sprintf("C%d-C%d", g.next()-2, g.next()-1), p.ESFDue.Period))
	g.blank()

	g.add(b.header("Award, rate and caps", "", "Cumulative>")...)
	g.add(b.text("ESF award"), cell{}, b.money(p.Award))
	g.add(b.text("Intervention rate"), cell{}, b.styled(b.st.textRight, p.rateText()))
	g.add(b.text(fmt.Sprintf("Exact ESF share: cumulative total × %s (6 dp)", p.rateText())), cell{},
		b.decimalText(b.st.dec6, p.Rounding.ExactShare))
	g.add(b.text("ESF share floored to the penny"), cell{}, b.decimalText(b.st.dec6, p.Rounding.FlooredShare))
	g.add(b.text("Rounding residual, not claimed (6 dp, R9.3c)"), cell{}, b.decimalText(b.st.dec6, p.Rounding.Residual))
	g.add(b.text("Award cap (C5)"), cell{}, b.money(p.AwardCap))
	g.add(b.text("Art 69 cap: cumulative cash and flat-rate costs (C4)"), cell{}, b.money(p.Art69Cap))
	g.add(b.text("Art 69 cap enforced on this claim"), cell{}, b.styled(b.st.textRight, yesNo(p.Art69Enforced)))
	g.add(b.styled(b.st.totalLabel, "Cumulative ESF due: least of floored share and the caps that apply"), b.styled(b.st.totalLabel, ""),
		b.moneyStyle(b.st.moneyTotal, p.ESFDue.Cumulative))
	g.blank()

	g.add(b.styled(b.st.label, "Declaration"))
	r := g.add(b.wide(b.st.wrap, p.Declaration))
	g.merges = append(g.merges, [2]string{fmt.Sprintf("A%d", r), fmt.Sprintf("C%d", r)})
	g.blank()
	kv("Signatory", b.wide(b.st.text, p.Signatory.Name))
	kv("Role", b.wide(b.st.text, p.Signatory.Role))
	kv("Signature", cell{})
	kv("Date", cell{})

	widths := fitWidths(g.widths, 30, 18, 18)
	g.height(r, rowsHigh(p.Declaration, widths[0]+widths[1]+widths[2]))
	return b.writeGrid(sheetSetup{name: sheetSummary, widths: widths, landscape: false}, g)
}

func authorityLabel(a Authority) string {
	s := strings.TrimSpace(a.Code + " " + a.NameEN)
	if a.NameCY != "" && a.NameCY != a.NameEN {
		s += " / " + a.NameCY
	}
	return s
}

// headings writes Expenditure by heading: each heading's claim figures against the lines the
// other sheets hold, with the difference (C3).
func (b *book) headings() error {
	p := b.p
	cashBy := map[string]decimal.Decimal{} // looked up by heading only, never iterated
	for i := range p.Transactions {
		l := &p.Transactions[i]
		cashBy[l.Heading] = cashBy[l.Heading].Add(l.Amount)
	}
	var timeTotal decimal.Decimal
	for i := range p.OfficerTime {
		timeTotal = timeTotal.Add(p.OfficerTime[i].Amount)
	}
	g := &grid{}
	g.add(b.header("Code", "Heading", "Kind", "This period>", "Cumulative>", "Lines in this period>", "Difference>")...)
	var linesSum, diffSum decimal.Decimal
	for _, h := range p.Headings {
		row := g.next()
		var lines cell
		var amount decimal.Decimal
		switch h.Kind {
		case programme.KindFlat:
			amount = p.FlatRate.Amount
			lines = b.sum(b.st.money, fmt.Sprintf("'%s'!%s", sheetFlat, flatAmountRef), amount)
		case programme.KindInKind:
			amount = timeTotal
			lines = b.sum(b.st.money, fmt.Sprintf("SUM('%s'!$J$2:$J$%d)", sheetTime, max(b.timeRows, 2)), amount)
		default:
			amount = cashBy[h.Code]
			lines = b.sum(b.st.money, fmt.Sprintf(`SUMIF('%s'!$B$2:$B$%d,"%s",'%s'!$F$2:$F$%d)`,
				sheetCash, max(b.cashRows, 2), h.Code, sheetCash, max(b.cashRows, 2)), amount)
		}
		diff := h.Period.Sub(amount)
		linesSum, diffSum = linesSum.Add(amount), diffSum.Add(diff)
		g.add(b.text(h.Code), b.wrapped(h.Name), b.text(string(h.Kind)), b.money(h.Period), b.money(h.Cumulative),
			lines, b.sum(b.st.money, fmt.Sprintf("D%d-F%d", row, row), diff))
	}
	last := g.next() - 1
	sumCol := func(col string, v decimal.Decimal) cell {
		return b.sum(b.st.moneyTotal, fmt.Sprintf("SUM(%s2:%s%d)", col, col, last), v)
	}
	g.add(b.styled(b.st.totalLabel, "Total"), b.styled(b.st.totalLabel, "Total eligible expenditure"), b.styled(b.st.totalLabel, ""),
		sumCol("D", p.TotalEligible.Period), sumCol("E", p.TotalEligible.Cumulative), sumCol("F", linesSum), sumCol("G", diffSum))
	g.blank()
	g.add(b.note("Lines in this period: cash headings from the Transaction list, officer time from the Officer time sheet, " +
		"the flat rate from the Flat-rate workings. A difference other than zero is finding C3."))
	return b.writeGrid(sheetSetup{name: sheetHeadings, frozen: 1, filter: fmt.Sprintf("A1:G%d", last), landscape: true}, g, 0, 50)
}

// transactions streams the Transaction list: every cash line booked in the period, then the total.
func (b *book) transactions() error {
	p := b.p
	lines := p.Transactions
	order := cashOrder(lines)
	titles := []string{"Ledger entry", "Heading", "Defrayed on", "Payee", "Description", "Amount>",
		"Evidence ref", "Invoice ref", "Booked in", "Relates to"}
	chars := make([]int, len(titles))
	for i, t := range titles {
		chars[i] = headerWidth(t)
	}
	var lo, hi, total decimal.Decimal
	for i := range lines {
		l := &lines[i]
		chars[0] = max(chars[0], len(strconv.FormatInt(l.EntryID, 10)))
		chars[1] = max(chars[1], utf8.RuneCountInString(l.Heading))
		chars[3] = max(chars[3], utf8.RuneCountInString(l.Payee))
		chars[4] = max(chars[4], utf8.RuneCountInString(l.Description))
		chars[6] = max(chars[6], utf8.RuneCountInString(l.EvidenceRef))
		chars[7] = max(chars[7], utf8.RuneCountInString(l.InvoiceRef))
		chars[8] = max(chars[8], len(l.BookingPeriod))
		chars[9] = max(chars[9], len(l.EffectivePeriod))
		lo, hi, total = decimal.Min(lo, l.Amount), decimal.Max(hi, l.Amount), total.Add(l.Amount)
	}
	chars[2] = max(chars[2], 10)
	chars[5] = max(chars[5], len(gbp.Pounds(lo)), len(gbp.Pounds(hi)), len(gbp.Pounds(total))) + numPad
	n := len(lines)
	sw, err := b.open(sheetSetup{name: sheetCash, widths: fitWidths(chars), frozen: 1,
		filter: fmt.Sprintf("A1:J%d", n+1), landscape: true})
	if err != nil {
		return err
	}
	if err := sw.SetRow("A1", cellValues(b.header(titles...))); err != nil {
		return err
	}
	row := make([]any, len(titles))
	for k, i := range order {
		l := &lines[i]
		row[0] = excelize.Cell{StyleID: b.st.integer, Value: l.EntryID}
		row[1] = b.str(l.Heading)
		row[2] = b.day(l.DefrayedOn)
		row[3] = b.str(l.Payee)
		row[4] = b.str(l.Description)
		row[5] = excelize.Cell{StyleID: b.st.money, Value: l.Amount.InexactFloat64()}
		row[6] = b.str(l.EvidenceRef)
		row[7] = b.str(l.InvoiceRef)
		row[8] = b.str(l.BookingPeriod)
		row[9] = b.str(l.EffectivePeriod)
		if err := sw.SetRow("A"+strconv.Itoa(k+2), row); err != nil {
			return err
		}
	}
	tr := strconv.Itoa(n + 3)
	totalCell := excelize.Cell{StyleID: b.st.moneyTotal, Value: total.InexactFloat64()}
	if n > 0 {
		totalCell.Formula = fmt.Sprintf("SUM(F2:F%d)", n+1)
	}
	label := fmt.Sprintf("Total of %s lines", intText(int64(n)))
	if err := sw.SetRow("A"+tr, []any{
		excelize.Cell{StyleID: b.st.totalLabel, Value: label}, nil, nil, nil, nil, totalCell,
	}); err != nil {
		return err
	}
	return sw.Flush()
}

// officerTime streams Officer time: every officer-time line booked in the period, then the totals.
func (b *book) officerTime() error {
	p := b.p
	lines := p.OfficerTime
	order := timeOrder(lines)
	titles := []string{"Ledger entry", "Authority", "Payroll ref", "Officer", "Work date", "Hours>", "Activity",
		"Rate valid from", "Hourly rate>", "Amount>", "Evidence ref", "Approver", "Late item: relates to", "Reverses entry>", "Reason for the reversal", "Recorded by"}
	chars := make([]int, len(titles))
	for i, t := range titles {
		chars[i] = headerWidth(t)
	}
	var lo, hi, total, hours decimal.Decimal
	for i := range lines {
		l := &lines[i]
		chars[0] = max(chars[0], len(strconv.FormatInt(l.EntryID, 10)))
		chars[1] = max(chars[1], utf8.RuneCountInString(l.Authority))
		chars[2] = max(chars[2], utf8.RuneCountInString(l.PayrollRef))
		chars[3] = max(chars[3], utf8.RuneCountInString(l.OfficerName))
		chars[6] = max(chars[6], utf8.RuneCountInString(l.Activity))
		chars[14] = max(chars[14], utf8.RuneCountInString(l.Reason))
		chars[15] = max(chars[15], utf8.RuneCountInString(l.RecordedBy))
		chars[8] = max(chars[8], len(l.HourlyRate)+3)
		chars[10] = max(chars[10], utf8.RuneCountInString(l.EvidenceRef))
		chars[11] = max(chars[11], utf8.RuneCountInString(l.Approver))
		lo, hi = decimal.Min(lo, l.Amount), decimal.Max(hi, l.Amount)
		total, hours = total.Add(l.Amount), hours.Add(l.Hours)
	}
	chars[4], chars[7] = max(chars[4], 10), max(chars[7], 10)
	chars[5] = max(chars[5], len(numberText(hours, 2))) + numPad
	chars[8] += numPad - 1
	chars[9] = max(chars[9], len(gbp.Pounds(lo)), len(gbp.Pounds(hi)), len(gbp.Pounds(total))) + numPad
	n := len(lines)
	sw, err := b.open(sheetSetup{name: sheetTime, widths: fitWidths(chars), frozen: 1,
		filter: fmt.Sprintf("A1:P%d", n+1), landscape: true})
	if err != nil {
		return err
	}
	if err := sw.SetRow("A1", cellValues(b.header(titles...))); err != nil {
		return err
	}
	row := make([]any, len(titles))
	for k, i := range order {
		l := &lines[i]
		row[0] = excelize.Cell{StyleID: b.st.integer, Value: l.EntryID}
		row[1] = b.str(l.Authority)
		row[2] = b.str(l.PayrollRef)
		row[3] = b.str(l.OfficerName)
		row[4] = b.day(l.WorkDate)
		row[5] = excelize.Cell{StyleID: b.st.hours, Value: l.Hours.InexactFloat64()}
		row[6] = b.str(l.Activity)
		row[7] = b.day(l.RateValidFrom)
		row[8] = b.decimalText(b.st.rate4, l.HourlyRate).x
		if !l.Rate.IsZero() {
			row[8] = excelize.Cell{StyleID: b.st.rate4, Value: l.Rate.InexactFloat64()}
		}
		row[9] = excelize.Cell{StyleID: b.st.money, Value: l.Amount.InexactFloat64()}
		row[10] = b.str(l.EvidenceRef)
		row[11] = b.str(l.Approver)
		row[12], row[13], row[14] = nil, nil, nil
		if l.RelatesTo != "" {
			row[12] = b.str(l.RelatesTo)
		}
		if l.Reverses != 0 {
			row[13] = excelize.Cell{StyleID: b.st.integer, Value: l.Reverses}
			row[14] = b.str(l.Reason)
		}
		row[15] = b.str(l.RecordedBy)
		if err := sw.SetRow("A"+strconv.Itoa(k+2), row); err != nil {
			return err
		}
	}
	hoursCell := excelize.Cell{StyleID: b.st.hoursTotal, Value: hours.InexactFloat64()}
	totalCell := excelize.Cell{StyleID: b.st.moneyTotal, Value: total.InexactFloat64()}
	if n > 0 {
		hoursCell.Formula = fmt.Sprintf("SUM(F2:F%d)", n+1)
		totalCell.Formula = fmt.Sprintf("SUM(J2:J%d)", n+1)
	}
	label := fmt.Sprintf("Total of %s lines", intText(int64(n)))
	if err := sw.SetRow("A"+strconv.Itoa(n+3), []any{
		excelize.Cell{StyleID: b.st.totalLabel, Value: label}, nil, nil, nil, nil, hoursCell,
		nil, nil, nil, totalCell,
	}); err != nil {
		return err
	}
	return sw.Flush()
}

func cellValues(cs []cell) []any {
	out := make([]any, len(cs))
	for i, c := range cs {
		out[i] = c.x
	}
	return out
}

// match writes Match by authority: each authority's match against its target (C6).
func (b *book) match() error {
	g := &grid{}
	g.add(b.header("Code", "Authority", "Awdurdod", "This period>", "Cumulative>", "Target>", "Pro-rata target>", "Variance %>")...)
	var per, cum, tgt, pro decimal.Decimal
	for _, m := range sortedMatch(b.p.Match) {
		per, cum, tgt, pro = per.Add(m.Period), cum.Add(m.Cumulative), tgt.Add(m.Target), pro.Add(m.ProRataTarget)
		g.add(b.text(m.Code), b.text(m.NameEN), b.text(m.NameCY), b.money(m.Period), b.money(m.Cumulative),
			b.money(m.Target), b.money(m.ProRataTarget), b.percent(m.VariancePct))
	}
	last := g.next() - 1
	sumCol := func(col string, v decimal.Decimal) cell {
		return b.sum(b.st.moneyTotal, fmt.Sprintf("SUM(%s2:%s%d)", col, col, last), v)
	}
	g.add(b.styled(b.st.totalLabel, "Total"), b.styled(b.st.totalLabel, ""), b.styled(b.st.totalLabel, ""),
		sumCol("D", per), sumCol("E", cum), sumCol("F", tgt), sumCol("G", pro))
	g.blank()
	g.add(b.note(proRataText(b.p) + " Variance = (cumulative − pro-rata target) ÷ pro-rata target. Beyond ±15% is a warning (C6)."))
	return b.writeGrid(sheetSetup{name: sheetMatch, frozen: 1, filter: fmt.Sprintf("A1:H%d", last), landscape: true}, g)
}

// staff writes the Staff-cost workings: every officer rate version that priced a line.
func (b *book) staff() error {
	g := &grid{}
	g.add(b.header("Authority", "Payroll ref", "Officer", "Valid from", "AGEC>", "FTE>", "Hours basis>", "Hourly rate>")...)
	rates := sortedRates(b.p.StaffCosts)
	for _, r := range rates {
		g.add(b.text(r.Authority), b.text(r.PayrollRef), b.text(r.Name), b.date(r.ValidFrom), b.money(r.AGEC),
			b.num(b.st.fte, r.FTE, 4), b.count(b.st.count, int64(r.HoursBasis)), b.decimalText(b.st.rate4, r.HourlyRate))
	}
	last := g.next() - 1
	g.blank()
	g.add(b.note("Hourly rate = AGEC ÷ (hours basis × FTE) (R5.1), exact in the arithmetic and shown to 4 decimal places; " +
		"AGEC is the annual gross employment cost (gross pay, employer NIC and pension)."))
	g.add(b.note("A line's amount = hours × the rate of the version in force on its work date, rounded half up to the penny per line (R9.3a, R5.3)."))
	return b.writeGrid(sheetSetup{name: sheetStaff, frozen: 1, filter: fmt.Sprintf("A1:H%d", max(last, 1)), landscape: true}, g)
}

// flat writes the Flat-rate workings (R9.3b). Values, not formulas: a spreadsheet's binary
// floating point could truncate an exact 1.05 to 1.04, the working must show the exact figure.
func (b *book) flat() error {
	fr := b.p.FlatRate
	g := &grid{}
	g.add(b.wide(b.st.title, "Flat-rate workings (R9.3b)"))
	g.blank()
	g.add(b.header("Working", "Amount>")...)
	g.add(b.text("Option"), b.wide(b.st.text, flatKindText(fr.Kind)))
	g.add(b.text("Rate, percent of direct staff costs"), b.percent(fr.Percent))
	g.add(b.text("Base: direct staff costs of the period"), b.money(fr.Base))
	g.add(b.text("Exact product: base × rate"), cell{x: excelize.Cell{StyleID: b.st.money4, Value: fr.Exact.InexactFloat64()},
		width: len(numberText(fr.Exact, 4)) + numPad + 1})
	if r := g.add(b.styled(b.st.totalLabel, "Flat-rate amount claimed, truncated to the penny"), b.moneyStyle(b.st.moneyTotal, fr.Amount)); r != 8 {
		// flatAmountRef names this cell from another sheet.
		return fmt.Errorf("reports: flat-rate amount on row %d, not 8", r)
	}
	g.blank()
	g.add(b.note("The amount is truncated (rounded down) to the penny, never rounded up, per claim period (R9.3b)."))
	return b.writeGrid(sheetSetup{name: sheetFlat}, g, 40, 18)
}

// history writes the Claim history: every claim up to this one with its period figures, the
// cumulative total and cum_due, and its ESF due as the difference of cum_due (R9.3c), then the
// reconciliation of the cumulative total to the ledger (C2): the expenditure the ledger holds
// plus the flat-rate costs, which are computed per claim and never booked.
func (b *book) history() error {
	p := b.p
	g := &grid{}
	g.add(b.header("Claim", "Period", "Cash costs>", "Flat rate>", "Officer time>", "Total eligible>",
		"Cumulative total>", "Cumulative ESF due>", "ESF due>")...)
	first := g.next()
	for _, h := range p.History {
		r := g.next()
		cum := b.sum(b.st.money, fmt.Sprintf("G%d+F%d", r-1, r), h.Cumulative)
		due := b.sum(b.st.money, fmt.Sprintf("H%d-H%d", r, r-1), h.Due)
		if r == first {
			cum = b.sum(b.st.money, fmt.Sprintf("F%d", r), h.Cumulative)
			due = b.sum(b.st.money, fmt.Sprintf("H%d", r), h.Due)
		}
		g.add(b.integer(int64(h.ClaimNumber)), b.text(h.Period), b.money(h.Cash), b.money(h.Indirect), b.money(h.InKind),
			b.sum(b.st.money, fmt.Sprintf("C%d+D%d+E%d", r, r, r), h.Total), cum, b.money(h.CumDue), due)
	}
	last := g.next() - 1
	if len(p.History) == 0 {
		g.add(b.wide(b.st.text, "The history was not kept for a claim compiled by an earlier version of the service."))
	}
	g.blank()
	g.add(b.note("ESF due on each claim = its cumulative ESF due less the claim before's (R9.3c). Cumulative ESF due = the least of the " +
		"cumulative total × " + p.rateText() + " floored to the penny, the award, and on the final claim the Art 69 cap. The figures are " +
		"the ledger's at this claim's position: a correction or disallowance shows in the period it is booked into."))
	g.blank()
	booked, flat := p.reconciliation()
	g.add(b.styled(b.st.label, "Reconciliation to the ledger (C2)"))
	r := g.add(b.wide(b.st.text, "Expenditure booked up to this period: the exp: and inkind: accounts of the "+sheetTB), cell{}, cell{}, cell{}, cell{}, cell{}, cell{}, cell{}, b.money(booked))
	if len(p.History) > 0 {
		g.add(b.wide(b.st.text, "Flat-rate costs of every claim, computed and never booked (R9.3b): the Flat rate column"), cell{}, cell{}, cell{}, cell{}, cell{}, cell{}, cell{},
			b.sum(b.st.money, fmt.Sprintf("SUM(D%d:D%d)", first, last), flat))
		g.add(b.styled(b.st.totalLabel, "Cumulative total eligible expenditure"), cell{}, cell{}, cell{}, cell{}, cell{}, cell{}, cell{},
			b.sum(b.st.moneyTotal, fmt.Sprintf("I%d+I%d", r, r+1), booked.Add(flat)))
	}
	return b.writeGrid(sheetSetup{name: sheetHistory, frozen: 1, landscape: true}, g, 6, 8)
}

func flatKindText(k programme.FlatRateKind) string {
	switch k {
	case programme.FlatIndirect:
		return "indirect: indirect costs on direct staff costs (CPR Art 68(1)(b))"
	case programme.FlatOther:
		return "other: all other costs on direct staff costs (ESF Reg Art 14(2))"
	case programme.FlatNone, "":
		return "none: no flat rate"
	}
	return string(k)
}

// entryList lists ledger entry ids for one cell, as many as fit.
func entryList(ids []int64, limit int) string {
	var sb strings.Builder
	for i, id := range ids {
		s := strconv.FormatInt(id, 10)
		more := fmt.Sprintf(" … and %d more", len(ids)-i)
		if sb.Len()+len(s)+2+len(more) > limit {
			sb.WriteString(more)
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(s)
	}
	return sb.String()
}

// findings writes the Findings sheet.
func (b *book) findings() error {
	g := &grid{}
	g.add(b.header("Check", "Severity", "Message", "Entries>", "Ledger entries involved")...)
	const msgWidth = 70
	fs := sortedFindings(b.p.Findings)
	for _, f := range fs {
		g.add(b.styled(b.st.labelTop, f.ID), b.text(f.Severity), b.wrapped(f.Message),
			b.count(b.st.count, int64(len(f.Entries))), b.wide(b.st.text, entryList(f.Entries, maxCellChars-100)))
	}
	if len(fs) == 0 {
		g.add(b.text("none"), cell{}, b.wide(b.st.text, "No findings."))
	}
	last := g.next() - 1
	g.blank()
	g.add(b.note("block: the claim cannot be submitted; warn: to be explained to WEFO; info: for the record."))
	g.blank()
	g.add(b.header("Check", "Result", "What it checks")...)
	for _, c := range checkResults(fs) {
		g.add(b.styled(b.st.labelTop, c[0]), b.text(c[2]), b.wrapped(c[1]))
	}
	widths := fitWidths(g.widths, 8, 10)
	widths[2], widths[4] = msgWidth, 40
	return b.writeGrid(sheetSetup{name: sheetFindings, widths: widths, frozen: 1, filter: fmt.Sprintf("A1:E%d", last), landscape: true}, g)
}

// trialBalance writes the trial balance of the entries booked in periods up to the claim's, at
// the claim's ledger position (C2).
func (b *book) trialBalance() error {
	g := &grid{}
	g.add(b.header("Account", "Name", "Kind", "Debit>", "Credit>", "Balance>")...)
	var dr, cr, bal decimal.Decimal
	for _, l := range sortedTrialBalance(b.p.TrialBalance) {
		var d, c cell
		if l.Balance.IsPositive() {
			d, dr = b.money(l.Balance), dr.Add(l.Balance)
		} else if l.Balance.IsNegative() {
			c, cr = b.money(l.Balance.Neg()), cr.Add(l.Balance.Neg())
		}
		bal = bal.Add(l.Balance)
		g.add(b.text(l.Code), b.text(l.Name), b.text(l.Kind), d, c, b.money(l.Balance))
	}
	last := g.next() - 1
	sumCol := func(col string, v decimal.Decimal) cell {
		return b.sum(b.st.moneyTotal, fmt.Sprintf("SUM(%s2:%s%d)", col, col, max(last, 2)), v)
	}
	g.add(b.styled(b.st.totalLabel, "Total"), b.styled(b.st.totalLabel, ""), b.styled(b.st.totalLabel, ""),
		sumCol("D", dr), sumCol("E", cr), sumCol("F", bal))
	g.blank()
	g.add(b.note(fmt.Sprintf("The entries booked in periods up to %s, at ledger position: %s entries sealed, last entry %d "+
		"(entries of later periods at that position are left out). Debits are positive, credits negative; "+
		"the balances sum to zero (C2).", b.p.Period.Code, intText(b.p.Position.EntriesSealed), b.p.Position.LastEntryID)))
	return b.writeGrid(sheetSetup{name: sheetTB, frozen: 1, filter: fmt.Sprintf("A1:F%d", max(last, 1))}, g)
}

// manifest writes the Manifest sheet: what manifest.json records, except the workbook's own
// hash, which a file cannot contain.
func (b *book) manifest(pdf ManifestFile) error {
	p := b.p
	g := &grid{}
	g.add(b.wide(b.st.title, "Manifest"))
	g.blank()
	kv := func(k string, v cell) { g.add(b.styled(b.st.label, k), v) }
	kv("Operation", b.wide(b.st.text, p.Operation.ID))
	kv("Claim period", b.wide(b.st.text, p.Period.Code))
	kv("Period start", b.date(p.Period.Start))
	kv("Period end", b.date(p.Period.End))
	kv("Claim number", b.integer(int64(p.ClaimNumber)))
	kv("Claim status", b.wide(b.st.text, p.Status))
	kv("Compiled at (UTC)", cell{x: excelize.Cell{StyleID: b.st.stamp, Value: p.CompiledAt.UTC()}, width: 19})
	kv("Ledger entries sealed", b.count(b.st.count, p.Position.EntriesSealed))
	kv("Last ledger entry", b.integer(p.Position.LastEntryID))
	kv("Chain link (SHA-256)", b.wide(b.st.mono, p.Position.ChainLink))
	kv("Generator version", b.wide(b.st.text, p.generator()))
	g.blank()
	g.add(b.header("File", "Bytes>", "SHA-256")...)
	g.add(b.text(NameXLSX), cell{}, b.wide(b.st.text, "this workbook: see manifest.json"))
	g.add(b.text(pdf.Name), b.count(b.st.count, pdf.Bytes), b.wide(b.st.mono, pdf.SHA256))
	g.blank()
	g.add(b.note("A file cannot contain its own hash, so this sheet lists every file of the pack except the workbook's own SHA-256; " +
		"manifest.json lists both files with their hashes."))
	return b.writeGrid(sheetSetup{name: sheetManifest}, g, 24, 14)
}

// props sets the document properties from the claim, never from the clock.
func (b *book) props() error {
	p := b.p
	at := p.CompiledAt.UTC().Format("2006-01-02T15:04:05Z")
	return b.f.SetDocProps(&excelize.DocProperties{
		Title:          fmt.Sprintf("ESF claim %d, %s", p.ClaimNumber, p.Period.Code),
		Subject:        p.Operation.Name,
		Creator:        p.generator(),
		LastModifiedBy: p.generator(),
		Identifier:     fmt.Sprintf("%s/%s/%d", p.Operation.ID, p.Period.Code, p.ClaimNumber),
		Description:    fmt.Sprintf("Claim pack compiled from ledger entry %d (%d entries sealed)", p.Position.LastEntryID, p.Position.EntriesSealed),
		Language:       "en-GB",
		Created:        at,
		Modified:       at,
	})
}
