package reports

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/jung-kurt/gofpdf"
	"github.com/shopspring/decimal"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/sfnt"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/gbp"
	"github.com/ccr-infuse/infuse/programme"
)

// Page geometry, in millimetres on A4 portrait.
const (
	pageW     = 210.0
	pageH     = 297.0
	marginL   = 15.0
	marginR   = 15.0
	marginTop = 20.0
	marginBot = 20.0
	bodyW     = pageW - marginL - marginR
	font      = "go" // the Go fonts, embedded: they carry £ and the Welsh ŵ and ŷ
)

// Colours.
var (
	colInk    = [3]int{20, 20, 20}
	colMuted  = [3]int{100, 100, 100}
	colRule   = [3]int{180, 180, 180}
	colHead   = [3]int{217, 225, 242}
	colZebra  = [3]int{245, 247, 251}
	colBar    = [3]int{31, 78, 121}
	colTarget = [3]int{190, 198, 210}
	colTick   = [3]int{192, 0, 0}
	colBlock  = [3]int{192, 0, 0}
	colWarn   = [3]int{191, 120, 0}
)

// WritePDF writes the claim PDF of p to w: the claim certificate, summary tables, a chart of
// match delivered against target, the findings, the transaction list (every cash line), officer
// time per authority, the staff-cost workings (every rate version that priced a line) and the
// trial balance. Every officer-time line is in the workbook; the PDF totals them per officer.
func WritePDF(w io.Writer, p *Pack) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return writePDF(w, p)
}

// doc renders one PDF.
type doc struct {
	f *gofpdf.Fpdf
	p *Pack
}

func writePDF(w io.Writer, p *Pack) error {
	f := gofpdf.New("P", "mm", "A4", "")
	d := &doc{f: f, p: p}
	at := p.CompiledAt.UTC()
	f.SetCompression(true)
	f.SetCatalogSort(true) // objects in a fixed order: same pack, same bytes
	f.SetCreationDate(at)
	f.SetModificationDate(at)
	f.SetProducer(p.generator(), true)
	f.SetCreator(p.generator(), true)
	f.SetTitle(d.t(fmt.Sprintf("%s: ESF claim %d, %s", p.Operation.Name, p.ClaimNumber, p.Period.Code)), true)
	f.SetSubject(d.t("Claim pack for the European Social Fund"), true)
	f.SetAuthor(d.t(p.Operation.Lead.NameEN), true)
	f.AliasNbPages("") // "{nb}"; must precede the fonts, which reserve room for it
	// gofpdf writes checksums into the font bytes it is given while it subsets them, so each
	// document gets its own copy: the package-level TTF slices are shared by every pack being
	// written at the same time (scheduler, downloads, tests) and must never be written to.
	f.AddUTF8FontFromBytes(font, "", bytes.Clone(goregular.TTF))
	f.AddUTF8FontFromBytes(font, "B", bytes.Clone(gobold.TTF))
	f.SetMargins(marginL, marginTop, marginR)
	f.SetAutoPageBreak(true, marginBot)
	f.SetHeaderFunc(d.header)
	f.SetFooterFunc(d.footer)

	d.certificate()
	d.summary()
	d.chart()
	d.findings()
	d.transactions()
	d.officerTime()
	d.staffCosts()
	d.trialBalance()

	if err := f.Output(w); err != nil {
		return apperr.Wrap("reports.WritePDF", err)
	}
	return nil
}

// coverage is the set of runes both embedded fonts draw.
var coverage = sync.OnceValue(func() []uint64 {
	bits := make([]uint64, 0x10000/64)
	reg, err1 := sfnt.Parse(goregular.TTF)
	bold, err2 := sfnt.Parse(gobold.TTF)
	if err1 != nil || err2 != nil {
		return bits
	}
	var buf sfnt.Buffer
	for r := rune(0x20); r < 0x10000; r++ {
		a, _ := reg.GlyphIndex(&buf, r)
		b, _ := bold.GlyphIndex(&buf, r)
		if a != 0 && b != 0 {
			bits[r/64] |= 1 << (r % 64)
		}
	}
	return bits
})

// t makes text safe for the embedded fonts: a character they cannot draw becomes "?" rather
// than an invisible glyph (or, beyond the Basic Multilingual Plane, a failure in gofpdf), and
// control characters become spaces.
func (d *doc) t(s string) string {
	bits := coverage()
	ok := true
	for _, r := range s {
		if r >= 0x10000 || bits[r/64]&(1<<(r%64)) == 0 {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case unicode.IsControl(r) || unicode.IsSpace(r):
			return ' '
		case r >= 0x10000 || bits[r/64]&(1<<(r%64)) == 0:
			return '?'
		}
		return r
	}, s)
}

func (d *doc) color(c [3]int)                  { d.f.SetTextColor(c[0], c[1], c[2]) }
func (d *doc) fill(c [3]int)                   { d.f.SetFillColor(c[0], c[1], c[2]) }
func (d *doc) draw(c [3]int)                   { d.f.SetDrawColor(c[0], c[1], c[2]) }
func (d *doc) font(style string, size float64) { d.f.SetFont(font, style, size) }

// positionText describes the ledger position the pack was compiled from.
func (d *doc) positionText() string {
	pos := d.p.Position
	link := pos.ChainLink
	if len(link) > 16 {
		link = link[:16]
	}
	return fmt.Sprintf("Ledger position: %s entries sealed · last entry %d · chain %s · period %s",
		intText(pos.EntriesSealed), pos.LastEntryID, link, d.p.Period.Code)
}

func (d *doc) header() {
	if d.f.PageNo() == 1 {
		return
	}
	p := d.p
	d.font("", 7.5)
	d.color(colMuted)
	d.f.SetXY(marginL, 10)
	d.f.CellFormat(bodyW*0.7, 4, d.t(fmt.Sprintf("%s · ESF claim %d · %s", p.Operation.Name, p.ClaimNumber, p.Period.Code)), "", 0, "L", false, 0, "")
	d.f.CellFormat(bodyW*0.3, 4, d.t("Status: "+p.Status), "", 0, "R", false, 0, "")
	d.draw(colRule)
	d.f.Line(marginL, 15, pageW-marginR, 15)
	d.f.SetXY(marginL, marginTop)
	d.color(colInk)
}

func (d *doc) footer() {
	d.draw(colRule)
	d.f.Line(marginL, pageH-14, pageW-marginR, pageH-14)
	d.font("", 7)
	d.color(colMuted)
	d.f.SetXY(marginL, pageH-13)
	d.f.CellFormat(bodyW-28, 4, d.t(d.positionText()), "", 0, "L", false, 0, "")
	// Left-aligned in a fixed box: "{nb}" is replaced after layout, so right-aligning would
	// measure the placeholder, not the number.
	d.f.SetXY(pageW-marginR-24, pageH-13)
	d.f.CellFormat(24, 4, fmt.Sprintf("Page %d of {nb}", d.f.PageNo()), "", 0, "L", false, 0, "")
	d.color(colInk)
}

// section starts a titled section, on a new page when less than need millimetres remain.
func (d *doc) section(title string, need float64) {
	if d.f.PageNo() == 0 || d.f.GetY()+need > pageH-marginBot {
		d.f.AddPage()
	} else {
		d.f.Ln(4)
	}
	d.f.Bookmark(d.t(title), 0, -1)
	d.font("B", 13)
	d.color(colInk)
	d.f.CellFormat(bodyW, 8, d.t(title), "", 1, "L", false, 0, "")
	d.f.Ln(1)
}

func (d *doc) subhead(title string, need float64) {
	d.ensure(need)
	d.font("B", 10)
	d.f.CellFormat(bodyW, 6, d.t(title), "", 1, "L", false, 0, "")
}

// para writes wrapped text.
func (d *doc) para(style string, size float64, c [3]int, s string) {
	d.font(style, size)
	d.color(c)
	d.f.MultiCell(bodyW, size*0.45, d.t(s), "", "L", false)
	d.color(colInk)
}

// ensure starts a new page when less than h millimetres remain.
func (d *doc) ensure(h float64) {
	if d.f.GetY()+h > pageH-marginBot {
		d.f.AddPage()
	}
}

// maxCellLines bounds the lines of one table cell, so that a row fits on a page.
const maxCellLines = 40

// column of a table.
type column struct {
	title string
	w     float64
	align string // "L" or "R"
}

// trow is a table row.
type trow struct {
	cells []string
	bold  bool
	color [3]int // text colour of the first cell, zero for ink
}

// table draws rows under a header that repeats on every page the table spans. Text wider than
// its column wraps within the row.
func (d *doc) table(cols []column, rows []trow) {
	const size, lineH = 8.0, 4.0
	head := func() {
		d.font("B", size)
		d.fill(colHead)
		d.draw(colRule)
		d.color(colInk)
		h := 0.0
		for _, c := range cols {
			h = max(h, float64(len(d.wrap(c.title, c.w)))*lineH+2)
		}
		x, y := marginL, d.f.GetY()
		for _, c := range cols {
			d.f.Rect(x, y, c.w, h, "F")
			for i, line := range d.wrap(c.title, c.w) {
				d.f.SetXY(x, y+1+float64(i)*lineH)
				d.f.CellFormat(c.w, lineH, line, "", 0, c.align, false, 0, "")
			}
			x += c.w
		}
		d.f.Line(marginL, y+h, marginL+sumW(cols), y+h)
		d.f.SetXY(marginL, y+h)
	}
	d.ensure(20)
	head()
	for n, r := range rows {
		style := ""
		if r.bold {
			style = "B"
		}
		d.font(style, size)
		wrapped := make([][]string, len(cols))
		lines := 1
		for i, c := range cols {
			if i < len(r.cells) {
				wrapped[i] = d.wrap(r.cells[i], c.w)
				if len(wrapped[i]) > maxCellLines {
					// A row never outgrows a page; the workbook holds the full text.
					wrapped[i] = append(wrapped[i][:maxCellLines-1], "…")
				}
				lines = max(lines, len(wrapped[i]))
			}
		}
		h := float64(lines)*lineH + 1.5
		if d.f.GetY()+h > pageH-marginBot {
			d.f.AddPage()
			head()
			d.font(style, size)
		}
		x, y := marginL, d.f.GetY()
		if r.bold {
			d.draw(colInk)
			d.f.Line(marginL, y, marginL+sumW(cols), y)
		} else if n%2 == 1 {
			d.fill(colZebra)
			d.f.Rect(marginL, y, sumW(cols), h, "F")
		}
		for i, c := range cols {
			if i == 0 && r.color != ([3]int{}) {
				d.color(r.color)
			}
			for j, line := range wrapped[i] {
				d.f.SetXY(x, y+0.75+float64(j)*lineH)
				d.f.CellFormat(c.w, lineH, line, "", 0, c.align, false, 0, "")
			}
			d.color(colInk)
			x += c.w
		}
		d.f.SetXY(marginL, y+h)
	}
	d.draw(colRule)
	d.f.Line(marginL, d.f.GetY(), marginL+sumW(cols), d.f.GetY())
	d.f.Ln(2)
}

func sumW(cols []column) float64 {
	w := 0.0
	for _, c := range cols {
		w += c.w
	}
	return w
}

// wrap splits s into lines that fit a cell of width w in the current font, breaking at spaces
// and, for a word longer than a line, inside the word.
func (d *doc) wrap(s string, w float64) []string {
	s = d.t(s)
	avail := w - 2*1.0 // gofpdf's cell margin on both sides
	if d.f.GetStringWidth(s) <= avail {
		return []string{s}
	}
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			try := word
			if line != "" {
				try = line + " " + word
			}
			if d.f.GetStringWidth(try) <= avail {
				line = try
				continue
			}
			if line != "" {
				lines = append(lines, line)
			}
			pieces := d.breakWord(word, avail)
			lines = append(lines, pieces[:len(pieces)-1]...)
			line = pieces[len(pieces)-1]
		}
		lines = append(lines, line)
	}
	return lines
}

// breakWord splits word into pieces that fit avail, the last what is left, measuring each
// character once: a piece ends after the last separator that fits (- / _ . :), so that a
// reference such as TS-2021-05-NWP-0117 breaks between its parts, or else is as many characters
// as fit, and at least one. (Measuring ever shorter prefixes took time in the square of the
// word's length: a 1,000-character reference took half a second.)
func (d *doc) breakWord(word string, avail float64) []string {
	var pieces []string
	start, width := 0, 0.0
	sep, sepWidth := -1, 0.0 // the end of the piece's last separator, and the width up to it
	for i, r := range word {
		w := d.f.GetStringWidth(string(r))
		for i > start && width+w > avail { // twice at most: after a separator, then here
			cut := i
			if sep > start {
				cut, width = sep, width-sepWidth
			} else {
				width = 0
			}
			pieces = append(pieces, word[start:cut])
			start, sep = cut, -1
		}
		width += w
		if strings.ContainsRune("-/_.:", r) {
			sep, sepWidth = i+utf8.RuneLen(r), width
		}
	}
	return append(pieces, word[start:])
}

// byText is " by who", or nothing for nobody.
func byText(who string) string {
	if who == "" {
		return ""
	}
	return " by " + who
}

// reviewText says who made the claim's four-eyes review (R3.13), and when once it is recorded.
func reviewText(p *Pack) string {
	switch {
	case p.ReviewedBy == "":
		return "not yet"
	case p.ReviewedAt.IsZero():
		return p.ReviewedBy
	}
	return p.ReviewedBy + ", " + p.ReviewedAt.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// certificate is the first page: what is claimed, by whom, from which ledger position, and the
// declaration the signatory signs.
func (d *doc) certificate() {
	p, f := d.p, d.f
	f.AddPage()
	f.Bookmark("Claim certificate", 0, -1)
	d.font("B", 20)
	d.color(colInk)
	f.CellFormat(bodyW, 10, "Claim certificate", "", 1, "L", false, 0, "")
	d.font("", 11)
	d.color(colMuted)
	f.CellFormat(bodyW, 6, d.t(fmt.Sprintf("European Social Fund: claim %d for period %s", p.ClaimNumber, p.Period.Code)), "", 1, "L", false, 0, "")
	f.Ln(4)
	d.color(colInk)

	final := "Interim claim"
	if p.Final {
		final = "Final claim"
	}
	kv := [][2]string{
		{"Operation", p.Operation.Name + " (" + p.Operation.ID + ")"},
		{"Operation (Welsh)", p.Operation.NameCY},
		{"Lead beneficiary", authorityLabel(p.Operation.Lead)},
		{"Claim number", fmt.Sprintf("%d (%s)", p.ClaimNumber, strings.ToLower(final))},
		{"Claim period", fmt.Sprintf("%s: %s to %s", p.Period.Code, dateText(p.Period.Start), dateText(p.Period.End))},
		{"Status", p.Status},
		{"Compiled at", p.CompiledAt.UTC().Format("2006-01-02 15:04:05") + " UTC" + byText(p.CompiledBy)},
		{"Reviewed (R3.13)", reviewText(p)},
		{"Ledger position", fmt.Sprintf("%s entries sealed, last entry %d", intText(p.Position.EntriesSealed), p.Position.LastEntryID)},
		{"Chain link", p.Position.ChainLink},
	}
	d.keyValues(kv, 42)
	f.Ln(4)

	d.subhead("Figures claimed", 40)
	rows := []trow{
		{cells: []string{"Total eligible expenditure", gbp.Pounds(p.TotalEligible.Period), gbp.Pounds(p.TotalEligible.Cumulative)}},
	}
	for _, h := range p.Headings {
		if h.Kind == programme.KindInKind {
			rows = append(rows, trow{cells: []string{"  of which in-kind match (" + h.Name + ")", gbp.Pounds(h.Period), gbp.Pounds(h.Cumulative)}})
		}
	}
	rows = append(rows,
		trow{cells: []string{"ESF due at " + p.rateText(), gbp.Pounds(p.ESFDue.Period), gbp.Pounds(p.ESFDue.Cumulative)}, bold: true},
		trow{cells: []string{"ESF award", "", gbp.Pounds(p.Award)}},
		trow{cells: []string{"Art 69 cap: cash and flat-rate costs" + enforcedText(p.Art69Enforced), "", gbp.Pounds(p.Art69Cap)}},
	)
	d.table([]column{{"", 100, "L"}, {"This period", 40, "R"}, {"Cumulative", 40, "R"}}, rows)

	var block, warn, info int
	for _, fd := range p.Findings {
		switch fd.Severity {
		case SeverityBlock:
			block++
		case SeverityWarn:
			warn++
		default:
			info++
		}
	}
	d.para("", 9, colInk, fmt.Sprintf("Findings: %d blocking, %d warnings, %d for information (see Findings). Late items booked in this period: %d.",
		block, warn, info, p.LateItems))
	f.Ln(3)

	d.subhead("Declaration", 40)
	d.para("", 9, colInk, p.Declaration)
	f.Ln(4)

	d.subhead("Signed for the lead beneficiary", 46)
	y := f.GetY() + 1
	box := func(x, y, w, h float64, label, value string) {
		d.draw(colRule)
		f.Rect(x, y, w, h, "D")
		d.font("", 7)
		d.color(colMuted)
		f.SetXY(x+1, y+1)
		f.CellFormat(w-2, 4, d.t(label), "", 0, "L", false, 0, "")
		d.font("", 10)
		d.color(colInk)
		lines := d.wrap(value, w-2)
		for i, line := range lines {
			f.SetXY(x+1, y+h-1-float64(len(lines)-i)*5)
			f.CellFormat(w-2, 5, line, "", 0, "L", false, 0, "")
		}
	}
	box(marginL, y, bodyW/2, 14, "Name", p.Signatory.Name)
	box(marginL+bodyW/2, y, bodyW/2, 14, "Role", p.Signatory.Role)
	box(marginL, y+14, bodyW*2/3, 22, "Signature", "")
	box(marginL+bodyW*2/3, y+14, bodyW/3, 22, "Date", "")
	f.SetXY(marginL, y+40)
}

func enforcedText(enforced bool) string {
	if enforced {
		return " (enforced: final claim)"
	}
	return " (warning only on an interim claim)"
}

// keyValues draws label and value pairs, the value wrapping in the remaining width.
func (d *doc) keyValues(kv [][2]string, labelW float64) {
	f := d.f
	for _, pair := range kv {
		d.font("", 9.5)
		lines := d.wrap(pair[1], bodyW-labelW)
		d.ensure(float64(len(lines))*5 + 1)
		y := f.GetY()
		d.font("B", 9.5)
		f.SetXY(marginL, y)
		f.CellFormat(labelW, 5, d.t(pair[0]), "", 0, "L", false, 0, "")
		d.font("", 9.5)
		for i, line := range lines {
			f.SetXY(marginL+labelW, y+float64(i)*5)
			f.CellFormat(bodyW-labelW, 5, line, "", 0, "L", false, 0, "")
		}
		f.SetXY(marginL, y+float64(len(lines))*5+0.5)
	}
}

// summary draws the summary tables.
func (d *doc) summary() {
	p := d.p
	d.section("Summary", pageH) // the certificate stands on its own page
	d.subhead("Expenditure by heading", 30)
	rows := make([]trow, 0, len(p.Headings)+2)
	for _, h := range p.Headings {
		rows = append(rows, trow{cells: []string{h.Name, string(h.Kind), gbp.Pounds(h.Period), gbp.Pounds(h.Cumulative)}})
	}
	rows = append(rows,
		trow{cells: []string{"Total eligible expenditure", "", gbp.Pounds(p.TotalEligible.Period), gbp.Pounds(p.TotalEligible.Cumulative)}, bold: true},
		trow{cells: []string{"ESF due at " + p.rateText(), "", gbp.Pounds(p.ESFDue.Period), gbp.Pounds(p.ESFDue.Cumulative)}, bold: true},
	)
	d.table([]column{{"Heading", 88, "L"}, {"Kind", 20, "L"}, {"This period", 36, "R"}, {"Cumulative", 36, "R"}}, rows)

	d.subhead("Award, rate, caps and rounding (R9.3c)", 50)
	d.table([]column{{"Working", 130, "L"}, {"Cumulative", 50, "R"}}, []trow{
		{cells: []string{"ESF award", gbp.Pounds(p.Award)}},
		{cells: []string{"Intervention rate", p.rateText()}},
		{cells: []string{"Exact ESF share: cumulative total eligible × " + p.rateText() + " (6 dp)", p.Rounding.ExactShare}},
		{cells: []string{"ESF share floored to the penny", p.Rounding.FlooredShare}},
		{cells: []string{"Rounding residual, not claimed (6 dp)", p.Rounding.Residual}},
		{cells: []string{"Award cap (C5)", gbp.Pounds(p.AwardCap)}},
		{cells: []string{"Art 69 cap: cumulative cash and flat-rate costs (C4)" + enforcedText(p.Art69Enforced), gbp.Pounds(p.Art69Cap)}},
		{cells: []string{"Cumulative ESF due: the least of the floored share and the caps that apply", gbp.Pounds(p.ESFDue.Cumulative)}, bold: true},
		{cells: []string{"ESF due of the claims before this one, cum_due(p−1)", gbp.Pounds(p.PreviousDue)}},
		{cells: []string{"ESF due on this claim: cum_due(p) − cum_due(p−1)", gbp.Pounds(p.ESFDue.Period)}, bold: true},
		{cells: []string{"Late items booked in this period", intText(int64(p.LateItems))}},
	})

	fr := p.FlatRate
	d.subhead("Flat-rate workings (R9.3b)", 40)
	d.table([]column{{"Working", 130, "L"}, {"Amount", 50, "R"}}, []trow{
		{cells: []string{"Option", string(fr.Kind)}},
		{cells: []string{"Rate, percent of direct staff costs", numberText(fr.Percent, 2) + "%"}},
		{cells: []string{"Base: direct staff costs of the period", gbp.Pounds(fr.Base)}},
		{cells: []string{"Exact product: base × rate ÷ 100", "£" + numberText(fr.Exact, 4)}},
		{cells: []string{"Flat-rate amount claimed, truncated to the penny", gbp.Pounds(fr.Amount)}, bold: true},
	})

	d.history()

	d.subhead("Match by authority", 40)
	var rowsM []trow
	var per, cum, tgt, pro decimal.Decimal
	for _, m := range matchByName(p.Match) {
		per, cum, tgt, pro = per.Add(m.Period), cum.Add(m.Cumulative), tgt.Add(m.Target), pro.Add(m.ProRataTarget)
		r := trow{cells: []string{m.NameEN, m.NameCY, gbp.Pounds(m.Period), gbp.Pounds(m.Cumulative), gbp.Pounds(m.Target),
			gbp.Pounds(m.ProRataTarget), numberText(m.VariancePct, 2) + "%"}}
		if m.VariancePct.Abs().GreaterThan(decimal.NewFromInt(15)) {
			r.color = colWarn
		}
		rowsM = append(rowsM, r)
	}
	rowsM = append(rowsM, trow{cells: []string{"Total", "", gbp.Pounds(per), gbp.Pounds(cum), gbp.Pounds(tgt), gbp.Pounds(pro), ""}, bold: true})
	d.table([]column{{"Authority", 30, "L"}, {"Awdurdod", 30, "L"}, {"This period", 24, "R"}, {"Cumulative", 24, "R"},
		{"Target", 24, "R"}, {"Pro-rata target", 24, "R"}, {"Variance", 24, "R"}}, rowsM)
	d.para("", 7.5, colMuted, proRataText(p)+" Variance = (cumulative − pro-rata target) ÷ pro-rata target; beyond ±15% is a warning (C6).")
}

// history writes the claim history, each claim's ESF due the difference of cum_due (R9.3c), and
// the reconciliation of the cumulative total to the ledger (C2): the expenditure booked plus the
// flat rate, which is computed per claim and never booked. A claim compiled before the history
// was kept has none, and shows none.
func (d *doc) history() {
	p := d.p
	if len(p.History) == 0 {
		return
	}
	d.subhead("Claim history (R9.3c)", 40)
	rows := make([]trow, 0, len(p.History))
	for _, h := range p.History {
		rows = append(rows, trow{cells: []string{intText(int64(h.ClaimNumber)), h.Period, gbp.Pounds(h.Cash), gbp.Pounds(h.Indirect),
			gbp.Pounds(h.InKind), gbp.Pounds(h.Total), gbp.Pounds(h.Cumulative), gbp.Pounds(h.CumDue), gbp.Pounds(h.Due)}})
	}
	d.table([]column{{"Claim", 10, "R"}, {"Period", 16, "L"}, {"Cash costs", 22, "R"}, {"Flat rate", 20, "R"},
		{"Officer time", 22, "R"}, {"Total eligible", 22, "R"}, {"Cumulative total", 24, "R"}, {"Cumulative ESF due", 22, "R"},
		{"ESF due", 22, "R"}}, rows)
	d.para("", 7.5, colMuted, "ESF due on each claim = its cumulative ESF due less the claim before's. The figures are the ledger's at "+
		"this claim's position: a correction or disallowance shows in the period it is booked into.")
	booked, flat := p.reconciliation()
	d.subhead("Reconciliation to the ledger (C2)", 30)
	d.table([]column{{"Working", 130, "L"}, {"Cumulative", 50, "R"}}, []trow{
		{cells: []string{"Expenditure booked up to this period: the exp: and inkind: accounts of the trial balance", gbp.Pounds(booked)}},
		{cells: []string{"Flat-rate costs of every claim, computed and never booked (R9.3b)", gbp.Pounds(flat)}},
		{cells: []string{"Cumulative total eligible expenditure", gbp.Pounds(booked.Add(flat))}, bold: true},
	})
}

// niceCeil returns a round number at least v: 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// shortMoney labels a chart axis: £0, £50k, £1.5m.
func shortMoney(v float64) string {
	switch {
	case v >= 1e6:
		return "£" + strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v/1e6), "0"), ".") + "m"
	case v >= 1e3:
		return "£" + strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v/1e3), "0"), ".") + "k"
	}
	return fmt.Sprintf("£%.0f", v)
}

// chart draws match delivered against target per authority as horizontal bars: the cumulative
// match delivered, the whole target, and a tick at the target profiled to the period end.
func (d *doc) chart() {
	p, f := d.p, d.f
	ms := matchByName(p.Match)
	const labelW, valueW = 52.0, 24.0
	// Twelve millimetres an authority, less when there are too many for one page.
	rowH := min(12.0, (pageH-marginTop-marginBot-45)/float64(max(len(ms), 1)))
	barH := rowH / 3
	d.section("Match delivered against target", 40+float64(len(ms))*rowH)
	d.para("", 8.5, colMuted, fmt.Sprintf("In-kind match (officer time) delivered up to the end of %s, per authority, against its target.", p.Period.Code))
	f.Ln(2)

	top := f.GetY()
	x0 := marginL + labelW
	barW := bodyW - labelW - valueW
	hi := 0.0
	for _, m := range ms {
		hi = max(hi, m.Cumulative.InexactFloat64(), m.Target.InexactFloat64(), m.ProRataTarget.InexactFloat64())
	}
	scale := niceCeil(hi)
	xOf := func(v float64) float64 { return x0 + math.Max(0, v)/scale*barW }

	// Legend.
	d.font("", 7.5)
	lx := marginL
	legend := func(c [3]int, tick bool, label string) {
		if tick {
			d.draw(c)
			f.SetLineWidth(0.6)
			f.Line(lx+1.5, top, lx+1.5, top+3.5)
			f.SetLineWidth(0.2)
		} else {
			d.fill(c)
			f.Rect(lx, top+0.5, 3, 3, "F")
		}
		f.SetXY(lx+4, top)
		f.CellFormat(f.GetStringWidth(label)+2, 4, label, "", 0, "L", false, 0, "")
		lx += f.GetStringWidth(label) + 10
	}
	legend(colBar, false, "Delivered (cumulative)")
	legend(colTarget, false, "Target (whole operation)")
	legend(colTick, true, d.t("Pro-rata target to "+dateText(p.Period.End)))
	top += 8

	// Grid and axis labels.
	bottom := top + float64(len(ms))*rowH
	for i := 0; i <= 4; i++ {
		v := scale * float64(i) / 4
		x := xOf(v)
		d.draw(colRule)
		f.Line(x, top, x, bottom)
		d.color(colMuted)
		d.font("", 7)
		f.SetXY(x-10, bottom+0.5)
		f.CellFormat(20, 4, shortMoney(v), "", 0, "C", false, 0, "")
	}
	d.color(colInk)

	for i, m := range ms {
		y := top + float64(i)*rowH
		top1, top2 := y+rowH/8, y+rowH/8+barH*1.1 // delivered bar, target bar
		d.font("B", min(8, barH*2))
		f.SetXY(marginL, top1)
		f.CellFormat(labelW-2, barH, d.t(m.NameEN), "", 0, "L", false, 0, "")
		d.font("", min(7.5, barH*1.9))
		d.color(colMuted)
		f.SetXY(marginL, top2)
		f.CellFormat(labelW-2, barH, d.t(m.NameCY), "", 0, "L", false, 0, "")
		d.color(colInk)

		cum, tgt := m.Cumulative.InexactFloat64(), m.Target.InexactFloat64()
		d.fill(colBar)
		f.Rect(x0, top1, xOf(cum)-x0, barH, "F")
		d.fill(colTarget)
		f.Rect(x0, top2, xOf(tgt)-x0, barH, "F")
		tick := xOf(m.ProRataTarget.InexactFloat64())
		d.draw(colTick)
		f.SetLineWidth(0.6)
		f.Line(tick, top1-0.7, tick, top2+barH+0.7)
		f.SetLineWidth(0.2)

		d.font("", min(7, barH*1.8))
		f.SetXY(math.Max(xOf(cum), xOf(tgt))+1.5, top1)
		f.CellFormat(valueW, barH, gbp.Pounds(m.Cumulative), "", 0, "L", false, 0, "")
		d.color(colMuted)
		f.SetXY(math.Max(xOf(cum), xOf(tgt))+1.5, top2)
		f.CellFormat(valueW, barH, gbp.Pounds(m.Target), "", 0, "L", false, 0, "")
		d.color(colInk)
	}
	f.SetXY(marginL, bottom+7)
}

// findings lists the findings of the claim checks.
func (d *doc) findings() {
	fs := sortedFindings(d.p.Findings)
	d.section("Findings", 40)
	d.subhead("Checks made (domain §7)", 40)
	var checkRows []trow
	for _, c := range checkResults(fs) {
		r := trow{cells: c[:]}
		switch c[2] {
		case SeverityBlock:
			r.color = colBlock
		case SeverityWarn:
			r.color = colWarn
		}
		checkRows = append(checkRows, r)
	}
	d.table([]column{{"Check", 14, "L"}, {"What it checks", 136, "L"}, {"Result", 30, "L"}}, checkRows)
	if len(fs) == 0 {
		d.para("", 9, colInk, "No findings.")
		return
	}
	d.subhead("Findings raised", 30)
	rows := make([]trow, 0, len(fs))
	for _, fd := range fs {
		r := trow{cells: []string{fd.ID, fd.Severity, fd.Message, entrySummary(fd.Entries)}}
		switch fd.Severity {
		case SeverityBlock:
			r.color = colBlock
		case SeverityWarn:
			r.color = colWarn
		}
		rows = append(rows, r)
	}
	d.table([]column{{"Check", 14, "L"}, {"Severity", 18, "L"}, {"Message", 108, "L"}, {"Ledger entries", 40, "L"}}, rows)
	d.para("", 7.5, colMuted, "block: the claim cannot be submitted; warn: to be explained to WEFO; info: for the record. "+
		"The workbook's Findings sheet lists every ledger entry involved.")
}

// entrySummary names a finding's entries briefly: the count and the first few ids.
func entrySummary(ids []int64) string {
	if len(ids) == 0 {
		return ""
	}
	const show = 6
	parts := make([]string, 0, show)
	for _, id := range ids[:min(len(ids), show)] {
		parts = append(parts, fmt.Sprint(id))
	}
	s := strings.Join(parts, ", ")
	if len(ids) > show {
		s += fmt.Sprintf(" … (%s in all)", intText(int64(len(ids))))
	}
	return s
}

// transactions lists every cash expenditure line booked in the period, in transaction-list
// order, with the evidence an auditor samples, and their total (domain §8).
func (d *doc) transactions() {
	p := d.p
	lines := p.Transactions
	d.section("Transaction list", 60)
	var total decimal.Decimal
	late := 0
	for i := range lines {
		total = total.Add(lines[i].Amount)
		if lines[i].EffectivePeriod != lines[i].BookingPeriod {
			late++
		}
	}
	d.para("", 9, colInk, fmt.Sprintf("%s cash expenditure lines booked in %s, %s in all; %s of them defrayed in an earlier period "+
		"(late items, their entry in colour). Credit notes are negative.", intText(int64(len(lines))), p.Period.Code, gbp.Pounds(total), intText(int64(late))))
	d.f.Ln(2)
	if len(lines) == 0 {
		return
	}
	rows := make([]trow, 0, len(lines)+1)
	for _, i := range cashOrder(lines) {
		l := &lines[i]
		r := trow{cells: []string{fmt.Sprint(l.EntryID), dateText(l.DefrayedOn), l.Heading, l.Payee, l.Description,
			l.EvidenceRef, l.InvoiceRef, l.EffectivePeriod, gbp.Pounds(l.Amount)}}
		if l.EffectivePeriod != l.BookingPeriod {
			r.color = colWarn
		}
		rows = append(rows, r)
	}
	rows = append(rows, trow{cells: []string{"Total", "", "", "", linesText(len(lines)), "", "", "", gbp.Pounds(total)}, bold: true})
	d.table([]column{{"Entry", 12, "L"}, {"Defrayed on", 18, "L"}, {"Heading", 15, "L"}, {"Payee", 27, "L"},
		{"Description", 30, "L"}, {"Evidence ref", 24, "L"}, {"Invoice ref", 16, "L"}, {"Relates to", 14, "L"}, {"Amount", 24, "R"}}, rows)
}

// staffCosts shows the staff-cost workings: every officer rate version that priced a line of
// the period, with the hourly rate it gives (R5.1, R5.3).
func (d *doc) staffCosts() {
	rates := sortedRates(d.p.StaffCosts)
	d.section("Staff-cost workings", 60)
	d.para("", 9, colInk, fmt.Sprintf("%s officer rate versions price the officer time of %s. Hourly rate = AGEC ÷ (hours basis × FTE) (R5.1), "+
		"exact in the arithmetic and shown to 4 decimal places; AGEC is the annual gross employment cost (gross pay, employer NIC and pension). "+
		"A line's amount = hours × the rate of the version in force on its work date, rounded half up to the penny per line (R9.3a, R5.3).",
		intText(int64(len(rates))), d.p.Period.Code))
	d.f.Ln(2)
	if len(rates) == 0 {
		return
	}
	rows := make([]trow, 0, len(rates))
	for _, r := range rates {
		rows = append(rows, trow{cells: []string{r.Authority, r.PayrollRef, r.Name, dateText(r.ValidFrom), gbp.Pounds(r.AGEC),
			r.FTE.String(), intText(int64(r.HoursBasis)), "£" + r.HourlyRate}})
	}
	d.table([]column{{"Authority", 18, "L"}, {"Payroll ref", 26, "L"}, {"Officer", 44, "L"}, {"Valid from", 20, "L"},
		{"AGEC", 26, "R"}, {"FTE", 14, "R"}, {"Hours basis", 14, "R"}, {"Hourly rate", 18, "R"}}, rows)
}

// officerTime totals officer time per authority and officer. Every line is in the workbook.
func (d *doc) officerTime() {
	p := d.p
	order := timeOrder(p.OfficerTime)
	byAuth := timeByAuthority(p.OfficerTime, order)
	d.section("Officer time per authority", 60)
	var hours, amount decimal.Decimal
	for _, a := range byAuth {
		hours, amount = hours.Add(a.Hours), amount.Add(a.Amount)
	}
	d.para("", 9, colInk, fmt.Sprintf("%s officer-time lines booked in %s: %s hours, %s. This section totals them per authority and officer; "+
		"every line, with its evidence reference, approver, rate version and ledger entry, is on the workbook's Officer time sheet.",
		intText(int64(len(p.OfficerTime))), p.Period.Code, numberText(hours, 2), gbp.Pounds(amount)))
	d.f.Ln(2)
	if len(byAuth) == 0 {
		return
	}
	ms := sortedMatch(p.Match)
	name := func(code string) string {
		for _, m := range ms {
			if m.Code == code {
				return authorityLabel(m.Authority)
			}
		}
		return code
	}
	// The per-authority totals first, then each authority's officers.
	rows := make([]trow, 0, len(byAuth)+1)
	for _, a := range byAuth {
		rows = append(rows, trow{cells: []string{name(a.Code), intText(int64(a.Lines)), numberText(a.Hours, 2), gbp.Pounds(a.Amount)}})
	}
	rows = append(rows, trow{cells: []string{"Total", intText(int64(len(p.OfficerTime))), numberText(hours, 2), gbp.Pounds(amount)}, bold: true})
	d.table([]column{{"Authority", 100, "L"}, {"Lines", 20, "R"}, {"Hours", 26, "R"}, {"Amount", 34, "R"}}, rows)

	for _, a := range byAuth {
		d.subhead(fmt.Sprintf("%s: %s, %s hours, %s", name(a.Code), linesText(a.Lines), numberText(a.Hours, 2), gbp.Pounds(a.Amount)), 30)
		rows := make([]trow, 0, len(a.Officers)+1)
		for _, o := range a.Officers {
			rows = append(rows, trow{cells: []string{o.PayrollRef, o.Name, intText(int64(o.Lines)), numberText(o.Hours, 2), gbp.Pounds(o.Amount)}})
		}
		rows = append(rows, trow{cells: []string{"Total", "", intText(int64(a.Lines)), numberText(a.Hours, 2), gbp.Pounds(a.Amount)}, bold: true})
		d.table([]column{{"Payroll ref", 34, "L"}, {"Officer", 66, "L"}, {"Lines", 20, "R"}, {"Hours", 26, "R"}, {"Amount", 34, "R"}}, rows)
	}
	d.timeReversals(order)
	d.lateOfficerTime(order)
}

// linesText counts lines: "1 line", "1,234 lines".
func linesText(n int) string {
	if n == 1 {
		return "1 line"
	}
	return intText(int64(n)) + " lines"
}

// timeReversals lists the reversals of officer-time lines booked in the period: each reverses a
// line recorded earlier, with the reason its corrector gave (domain.md §6: corrections are new
// entries that reference what they correct).
func (d *doc) timeReversals(order []int32) {
	d.timeLines(order, "Reversals of officer time",
		"Each reverses the ledger entry of a line recorded earlier, with the reason given; a corrected line, if any, is recorded afresh.",
		[]column{{"Entry", 14, "L"}, {"Reverses", 16, "L"}, {"Officer", 38, "L"}, {"Work date", 20, "L"},
			{"Hours", 16, "R"}, {"Amount", 24, "R"}, {"Reason", 52, "L"}},
		func(l *TimeLine) (trow, bool) {
			return trow{cells: []string{fmt.Sprint(l.EntryID), fmt.Sprint(l.Reverses), l.OfficerName, dateText(l.WorkDate),
				numberText(l.Hours, 2), gbp.Pounds(l.Amount), l.Reason}}, l.Reverses != 0
		})
}

// lateOfficerTime lists the officer-time lines booked in the period whose work date lies in an
// earlier one, each with the period it relates to (domain.md §6, C7).
func (d *doc) lateOfficerTime(order []int32) {
	d.timeLines(order, "Late officer time",
		"Lines booked in this period whose work date lies in an earlier, locked period, shown with the period they relate to.",
		[]column{{"Entry", 14, "L"}, {"Authority", 18, "L"}, {"Officer", 50, "L"}, {"Work date", 20, "L"},
			{"Relates to", 18, "L"}, {"Hours", 20, "R"}, {"Amount", 40, "R"}},
		func(l *TimeLine) (trow, bool) {
			return trow{cells: []string{fmt.Sprint(l.EntryID), l.Authority, l.OfficerName, dateText(l.WorkDate),
				l.RelatesTo, numberText(l.Hours, 2), gbp.Pounds(l.Amount)}, color: colWarn}, l.RelatesTo != ""
		})
}

// timeLines prints, under title with their count and totals, the officer-time lines (in order)
// that row keeps, each as the row it makes; nothing when it keeps none.
func (d *doc) timeLines(order []int32, title, note string, cols []column, row func(*TimeLine) (trow, bool)) {
	var rows []trow
	var hours, amount decimal.Decimal
	for _, i := range order {
		l := &d.p.OfficerTime[i]
		if r, keep := row(l); keep {
			hours, amount = hours.Add(l.Hours), amount.Add(l.Amount)
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	d.subhead(fmt.Sprintf("%s: %s, %s hours, %s", title, linesText(len(rows)), numberText(hours, 2), gbp.Pounds(amount)), 30)
	d.para("", 8.5, colMuted, note)
	d.f.Ln(1)
	d.table(cols, rows)
}

// trialBalance prints the trial balance of the entries booked in periods up to the claim's, at
// the claim's ledger position (C2).
func (d *doc) trialBalance() {
	tb := sortedTrialBalance(d.p.TrialBalance)
	d.section("Ledger trial balance", 50)
	d.para("", 8.5, colMuted, fmt.Sprintf("The entries booked in periods up to %s (entries of later periods at this position are left out). ",
		d.p.Period.Code)+d.positionText()+". Debits are positive, credits negative; the balances sum to zero (C2).")
	d.f.Ln(1)
	rows := make([]trow, 0, len(tb)+1)
	var total decimal.Decimal
	for _, l := range tb {
		total = total.Add(l.Balance)
		rows = append(rows, trow{cells: []string{l.Code, l.Name, l.Kind, gbp.Pounds(l.Balance)}})
	}
	rows = append(rows, trow{cells: []string{"Total", "", "", gbp.Pounds(total)}, bold: true})
	d.table([]column{{"Account", 40, "L"}, {"Name", 86, "L"}, {"Kind", 20, "L"}, {"Balance", 34, "R"}}, rows)
}
