package match

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// Row numbers. Errors name rows as a spreadsheet shows them ("row N" of interfaces.md): N is the
// line of the file the row starts on, the header being row 1, and every line counts, empty ones
// included (encoding/csv skips them, but a spreadsheet shows each as a row). The one difference
// from a line number: a record whose quoted field spans several lines is one row, so the rows
// after it are numbered as the spreadsheet shows them, below their lines.

// RowError is one problem with one row of an imported file.
type RowError struct {
	Row     int64  // spreadsheet row: the header is 1, the first data row 2
	Rule    string // rule id
	Message string
	Key     string // the English format of Message, its key in a catalogue (apperr); "" when there is none
	Args    []any  // the arguments of Key
}

// rowError returns the problem of row under rule, its message made from format and args.
func rowError(row int64, rule, format string, args ...any) RowError {
	return RowError{Row: row, Rule: rule, Message: fmt.Sprintf(format, args...), Key: format, Args: args}
}

func (e RowError) String() string { return fmt.Sprintf("row %d: %s: %s", e.Row, e.Rule, e.Message) }

// ImportError lists every problem found in a file, in row order; nothing was written.
type ImportError struct {
	File string
	Rows []RowError
}

func (e *ImportError) Error() string {
	var b strings.Builder
	for i, r := range e.Rows {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(r.String())
	}
	return b.String()
}

// BadRows returns the distinct row numbers that have problems, in order.
func (e *ImportError) BadRows() []int64 {
	var out []int64
	for _, r := range e.Rows {
		if len(out) == 0 || out[len(out)-1] != r.Row {
			out = append(out, r.Row)
		}
	}
	return out
}

func sortRowErrors(rs []RowError) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Row < rs[j].Row })
}

// fileSpec names a file's columns.
type fileSpec struct {
	kind     string   // officers, time, expenditure
	required []string // in the order interfaces.md lists them
	optional []string
}

var (
	officersSpec = fileSpec{kind: "officers", required: []string{"authority", "payroll_ref", "name", "valid_from", "annual_cost", "fte"}}
	timeSpec     = fileSpec{kind: "time", required: []string{"authority", "payroll_ref", "work_date", "hours", "activity", "evidence_ref", "approved_by"}}
	expSpec      = fileSpec{kind: "expenditure", required: []string{"heading", "defrayed_on", "payee", "description", "amount", "evidence_ref"},
		optional: []string{"invoice_ref"}}
)

// maxField bounds one field, in characters: longer text is a mistake (a broken quote swallowing
// the file).
const maxField = 1000

// csvFile reads a CSV file a record at a time, by column name.
type csvFile struct {
	r     *csv.Reader
	index map[string]int // column → position in the record
	width int
	row   int64 // spreadsheet row of the record last read
	line  int   // the file's line on which the record last read ends
	n     int64 // data records read, blank ones aside
}

// advance moves row and line past the record just read: fields, or the parse error pe. The rows
// between the last record and this one are the empty lines the reader skipped.
func (f *csvFile) advance(fields []string, pe *csv.ParseError) {
	var start, end int
	if pe != nil {
		start, end = pe.StartLine, pe.Line
	} else {
		start, _ = f.r.FieldPos(0)
		last, _ := f.r.FieldPos(len(fields) - 1)
		// A quoted field may span lines: each of its line breaks reads as a "\n".
		end = last + strings.Count(fields[len(fields)-1], "\n")
	}
	f.row += int64(start - f.line)
	f.line = max(end, start)
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// openCSV reads the header of r. Header problems (row 1) come back as row errors: with them the
// rows cannot be read.
func openCSV(r io.Reader, spec fileSpec) (*csvFile, []RowError, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, bom) {
		br.Discard(3) //nolint:errcheck // peeked
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	f := &csvFile{r: cr}
	header, err := cr.Read()
	if err == io.EOF {
		return nil, []RowError{rowError(1, RuleFormat, "the file is empty: it needs a header row naming the columns %s", strings.Join(spec.required, ", "))}, nil
	}
	var pe *csv.ParseError
	if err != nil && !errors.As(err, &pe) {
		return nil, nil, err
	}
	f.advance(header, pe)
	row := f.row // 1, unless empty lines come before the header
	if pe != nil {
		return nil, []RowError{rowError(row, RuleFormat, "the header row is not valid CSV: %v", pe.Err)}, nil
	}
	known := map[string]bool{}
	for _, c := range spec.required {
		known[c] = true
	}
	for _, c := range spec.optional {
		known[c] = true
	}
	var probs []RowError
	f.index = map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		switch {
		case !utf8.ValidString(h):
			probs = append(probs, rowError(row, RuleFormat, "column %d's name is not UTF-8 text", i+1))
		case name == "":
			probs = append(probs, rowError(row, RuleFormat, "column %d has no name", i+1))
		case !known[name]:
			probs = append(probs, rowError(row, RuleFormat, "unknown column %s: a %s file has the columns %s",
				quote(h), spec.kind, strings.Join(append(append([]string{}, spec.required...), spec.optional...), ", ")))
		default:
			if _, dup := f.index[name]; dup {
				probs = append(probs, rowError(row, RuleFormat, "column %s appears twice", name))
			}
			f.index[name] = i
		}
	}
	for _, c := range spec.required {
		if _, ok := f.index[c]; !ok {
			probs = append(probs, rowError(row, RuleFormat, "column %s is missing", c))
		}
	}
	f.width = len(header)
	if len(probs) > 0 {
		return nil, probs, nil
	}
	return f, nil, nil
}

// record is one data row.
type record struct {
	row    int64
	fields []string // from a file
	typed  any      // or a value built in memory (TimeInput, ExpenditureInput, OfficerInput)
	f      *csvFile
	probs  []RowError
}

// get returns the named column's value, trimmed; "" for an optional column the file lacks.
func (r *record) get(col string) string {
	if r.f == nil {
		return ""
	}
	i, ok := r.f.index[col]
	if !ok || i >= len(r.fields) {
		return ""
	}
	return strings.TrimSpace(r.fields[i])
}

// ControlIn returns the first control character in s that a record refuses, and whether there
// is one: NUL, which text cannot hold; escape and the other C0 controls, which act on the
// terminal of whoever lists the record; DEL; and the C1 controls (U+0080–U+009F), which a file
// converted from Windows-1252 as if it were Latin-1 holds in place of ’, – or €. Tab, line feed,
// carriage return, and the vertical tab and form feed that Word's line and page breaks leave in
// text pasted into a spreadsheet cell, are text (the workbook shows the last two as line breaks).
func ControlIn(s string) (rune, bool) {
	for _, r := range s {
		switch {
		case r == '\t', r == '\n', r == '\r', r == '\v', r == '\f':
		case r < 0x20, r >= 0x7f && r <= 0x9f:
			return r, true
		}
	}
	return 0, false
}

// ControlProblem is the refusal (M1) of the field name holding control character c, as
// ControlIn finds it: for a C1 control, what most likely put it there.
func ControlProblem(name string, c rune) *apperr.Error {
	switch {
	case c == 0:
		return invalid(RuleFormat, "%s contains a NUL character, which text cannot hold", name)
	case c >= 0x80:
		return invalid(RuleFormat, "%s contains the control character U+%04X, which a file converted from Windows-1252 holds in place of a quote, dash or euro sign: save the file from Excel as CSV UTF-8", name, c)
	}
	return invalid(RuleFormat, "%s contains the control character U+%04X, which a record may not hold", name, c)
}

// fieldControlProblem is ControlProblem for the field numbered n of a CSV row.
func fieldControlProblem(n int, c rune) *apperr.Error {
	switch {
	case c == 0:
		return invalid(RuleFormat, "field %d contains a NUL character, which text cannot hold", n)
	case c >= 0x80:
		return invalid(RuleFormat, "field %d contains the control character U+%04X, which a file converted from Windows-1252 holds in place of a quote, dash or euro sign: save the file from Excel as CSV UTF-8", n, c)
	}
	return invalid(RuleFormat, "field %d contains the control character U+%04X, which a record may not hold", n, c)
}

// checkText refuses text fields holding a control character (M1: NUL, which PostgreSQL text
// cannot store, and the others, which a claim pack cannot show), or longer than maxField. A CSV
// field is caught as it is read; this catches the same in a line sent through the API or a form.
func checkText(r *record, fields map[string]string) {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := fields[name]
		c, control := ControlIn(v)
		switch {
		case control:
			r.failWith(ControlProblem(name, c))
		case len(v) > maxField && utf8.RuneCountInString(v) > maxField:
			r.fail(RuleFormat, "%s is longer than %d characters", name, maxField)
		}
	}
}

func (r *record) fail(rule, format string, args ...any) {
	r.probs = append(r.probs, rowError(r.row, rule, format, args...))
}

// failWith notes err (a field's parse error) as a problem of the row, under its own rule.
func (r *record) failWith(err error) {
	e := apperr.As(err)
	r.probs = append(r.probs, RowError{Row: r.row, Rule: e.Rule, Message: e.Message, Key: e.Key, Args: e.Args})
}

// next reads the next data row, skipping rows whose every field is empty (a spreadsheet's
// trailing blank rows). It returns io.EOF at the end. A row that is not valid CSV or has the
// wrong number of fields comes back with a problem and no fields to check.
func (f *csvFile) next(rec *record) error {
	for {
		fields, err := f.r.Read()
		if err == io.EOF {
			return io.EOF
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return err
		}
		f.advance(fields, pe)
		*rec = record{row: f.row, f: f}
		if pe != nil {
			f.n++
			rec.fail(RuleFormat, "not valid CSV: %v", pe.Err)
			return nil
		}
		blank := true
		for _, x := range fields {
			if strings.TrimSpace(x) != "" {
				blank = false
				break
			}
		}
		if blank { // numbered, but not a row read: the summary counts the rows that hold something
			continue
		}
		f.n++
		if len(fields) != f.width {
			rec.fail(RuleFormat, "has %d fields, the header names %d columns", len(fields), f.width)
			return nil
		}
		for i, x := range fields {
			if !utf8.ValidString(x) {
				rec.fail(RuleFormat, "field %d is not UTF-8 text (save the file as CSV UTF-8)", i+1)
				return nil
			}
			if c, control := ControlIn(x); control {
				rec.failWith(fieldControlProblem(i+1, c))
				return nil
			}
			if len(x) > maxField && utf8.RuneCountInString(x) > maxField {
				rec.fail(RuleFormat, "field %d is longer than %d characters", i+1, maxField)
				return nil
			}
		}
		rec.fields = fields
		return nil
	}
}

// rows returns the number of data rows read so far (records, not the empty lines between them).
func (f *csvFile) rows() int64 { return f.n }
