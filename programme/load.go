package programme

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // the default definition is embedded
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// defaultJSON is the InFuSe definition with the real figures of domain.md §1–2.
//
//go:embed infuse.json
var defaultJSON []byte

// defaultProgramme parses the embedded definition once. A broken embedded file is a programming
// error caught by TestDefault, so panicking here cannot reach a user.
var defaultProgramme = sync.OnceValue(func() *Programme {
	p, err := Load(bytes.NewReader(defaultJSON))
	if err != nil {
		panic("programme: embedded infuse.json is invalid: " + err.Error())
	}
	return p
})

// Default returns the embedded InFuSe definition. Each call returns a fresh copy, so a caller
// that changes it cannot change anyone else's.
func Default() *Programme {
	return defaultProgramme().Clone()
}

// DefaultJSON returns the embedded definition file, a starting point for an admin who wants to
// write their own.
func DefaultJSON() []byte {
	return bytes.Clone(defaultJSON)
}

// Load reads a programme definition in JSON from r, rejecting unknown fields and anything after
// the definition, and validates it. A definition with problems gives an error joining one
// apperr.Invalid error (rule P1) per problem, each message starting with the JSON path of the
// field concerned.
func Load(r io.Reader) (*Programme, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, apperr.Wrap("programme.Load", err)
	}
	p := new(Programme)
	if err := p.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// LoadFile is Load on the file at path; errors name the file.
func LoadFile(path string) (*Programme, error) {
	f, err := os.Open(path)
	if err != nil {
		// A path an admin mistyped is theirs to fix, not an internal error.
		reason := err
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			reason = pe.Err // "no such file or directory", without the path again
		}
		return nil, &apperr.Error{
			Code:    apperr.Invalid,
			Rule:    RuleDefinition,
			Message: fmt.Sprintf("cannot read programme file %q: %v", path, reason),
			Op:      "programme.LoadFile",
			Err:     err,
		}
	}
	defer f.Close()
	p, err := Load(f)
	if e := apperr.As(err); e != nil {
		// Whatever is wrong is wrong in this file: say which.
		c := *e
		c.Message = fmt.Sprintf("programme file %s: %s", path, e.Message)
		c.Key, c.Args = "", nil // the catalogue's message would drop the file's name
		return nil, &c
	}
	if err != nil {
		return nil, fmt.Errorf("programme file %s: %w", path, err)
	}
	return p, nil
}

// Fingerprint returns the hex SHA-256 of p's canonical JSON, recorded when a ledger is set up so
// that it is always known which definition the figures were computed under. The canonical form
// is MarshalJSON's: fields in a fixed order, money with exactly two decimals, other decimals
// without trailing zeros, dates as YYYY-MM-DD, so re-saving the same definition with different
// spacing or "15.0" for "15" gives the same fingerprint.
func (p *Programme) Fingerprint() string {
	b, err := p.MarshalJSON()
	if err != nil {
		// The file form holds only strings, numbers and slices of them; marshalling cannot fail.
		panic("programme: marshal for fingerprint: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// MarshalJSON encodes p in the definition-file format, in canonical form (see Fingerprint).
// It has a pointer receiver like the other methods, so marshal a *Programme, not a Programme.
func (p *Programme) MarshalJSON() ([]byte, error) {
	return json.Marshal(p.toFile())
}

// UnmarshalJSON decodes the definition-file format strictly: unknown fields, trailing data,
// money or dates that are not strings in the right form are errors (apperr.Invalid, rule P1).
// It does not Validate; Load does both.
func (p *Programme) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("", "unexpected data after the programme definition")
	}
	q, err := f.toProgramme()
	if err != nil {
		return err
	}
	*p = *q
	return nil
}

// file is the JSON form of a Programme. Money, percentages and dates are strings so that no
// JSON tool can turn them into floats on the way, and so that a bad value is reported with the
// name of its field.
type file struct {
	OperationID    string          `json:"operation_id"`
	Name           string          `json:"name"`
	NameCY         string          `json:"name_cy"`
	Lead           string          `json:"lead"`
	Award          string          `json:"award"`
	MatchTotal     string          `json:"match_total"`
	Rate           Rate            `json:"rate"`
	Areas          []Area          `json:"areas"`
	Authorities    []fileAuthority `json:"authorities"`
	Headings       []Heading       `json:"headings"`
	WindowStart    string          `json:"window_start"`
	WindowEnd      string          `json:"window_end"`
	Frequency      Frequency       `json:"frequency"`
	FlatRate       fileFlatRate    `json:"flat_rate"`
	HoursBasis     int             `json:"hours_basis"`
	DailyMaxHours  string          `json:"daily_max_hours"`
	Timezone       string          `json:"timezone"`
	RetentionUntil *string         `json:"retention_until,omitempty"`
}

type fileAuthority struct {
	Code        string `json:"code"`
	NameEN      string `json:"name_en"`
	NameCY      string `json:"name_cy"`
	Area        string `json:"area"`
	MatchTarget string `json:"match_target"`
}

type fileFlatRate struct {
	Kind    FlatRateKind `json:"kind"`
	Percent string       `json:"percent"`
}

// toFile converts p to its canonical file form.
func (p *Programme) toFile() file {
	f := file{
		OperationID:   p.OperationID,
		Name:          p.Name,
		NameCY:        p.NameCY,
		Lead:          p.Lead,
		Award:         formatMoney(p.Award),
		MatchTotal:    formatMoney(p.MatchTotal),
		Rate:          p.Rate,
		Areas:         p.Areas,
		Headings:      p.Headings,
		WindowStart:   p.WindowStart.Format(DateLayout),
		WindowEnd:     p.WindowEnd.Format(DateLayout),
		Frequency:     p.Frequency,
		FlatRate:      fileFlatRate{Kind: p.FlatRate.Kind, Percent: formatDecimal(p.FlatRate.Percent)},
		HoursBasis:    p.HoursBasis,
		DailyMaxHours: formatDecimal(p.DailyMaxHours),
		Timezone:      p.Timezone,
	}
	for _, a := range p.Authorities {
		f.Authorities = append(f.Authorities, fileAuthority{
			Code: a.Code, NameEN: a.NameEN, NameCY: a.NameCY, Area: a.Area,
			MatchTarget: formatMoney(a.MatchTarget),
		})
	}
	if p.RetentionUntil != nil {
		s := p.RetentionUntil.Format(DateLayout)
		f.RetentionUntil = &s
	}
	return f
}

// toProgramme parses the strings of the file form. It reports every value that does not parse;
// range checks are Validate's.
func (f *file) toProgramme() (*Programme, error) {
	var errs []error
	p := &Programme{
		OperationID:   f.OperationID,
		Name:          f.Name,
		NameCY:        f.NameCY,
		Lead:          f.Lead,
		Award:         parseDecimal(&errs, "award", f.Award),
		MatchTotal:    parseDecimal(&errs, "match_total", f.MatchTotal),
		Rate:          f.Rate,
		Areas:         f.Areas,
		Headings:      f.Headings,
		WindowStart:   parseDate(&errs, "window_start", f.WindowStart),
		WindowEnd:     parseDate(&errs, "window_end", f.WindowEnd),
		Frequency:     f.Frequency,
		FlatRate:      FlatRate{Kind: f.FlatRate.Kind, Percent: parseDecimal(&errs, "flat_rate.percent", f.FlatRate.Percent)},
		HoursBasis:    f.HoursBasis,
		DailyMaxHours: parseDecimal(&errs, "daily_max_hours", f.DailyMaxHours),
		Timezone:      f.Timezone,
	}
	for i, a := range f.Authorities {
		p.Authorities = append(p.Authorities, Authority{
			Code: a.Code, NameEN: a.NameEN, NameCY: a.NameCY, Area: a.Area,
			MatchTarget: parseDecimal(&errs, fmt.Sprintf("authorities[%d].match_target", i), a.MatchTarget),
		})
	}
	if f.RetentionUntil != nil {
		d := parseDate(&errs, "retention_until", *f.RetentionUntil)
		p.RetentionUntil = &d
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// decimalText is a plain decimal: optional minus, digits, optional fraction. No exponent, sign
// plus, spaces or thousands separators, as for money in CSV files (interfaces.md).
var decimalText = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

func parseDecimal(errs *[]error, field, s string) decimal.Decimal {
	if s == "" {
		*errs = append(*errs, invalid(field, "required"))
		return decimal.Zero
	}
	if !decimalText.MatchString(s) {
		*errs = append(*errs, invalid(field, "%q is not a decimal number such as 200000.00", short(s)))
		return decimal.Zero
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		*errs = append(*errs, invalid(field, "%q is not a decimal number such as 200000.00", short(s)))
		return decimal.Zero
	}
	return d
}

func parseDate(errs *[]error, field, s string) time.Time {
	if s == "" {
		*errs = append(*errs, invalid(field, "required"))
		return time.Time{}
	}
	d, err := ParseDate(s)
	if err != nil {
		*errs = append(*errs, invalid(field, "%q is not a date in the form YYYY-MM-DD", short(s)))
		return time.Time{}
	}
	return d
}

// formatMoney writes an amount with exactly two decimals, the canonical form of money (R9.1).
// An amount with more decimals, which Validate rejects, is written in full rather than rounded,
// so that it cannot fingerprint the same as the amount it would round to.
func formatMoney(d decimal.Decimal) string {
	if d.Equal(d.Truncate(2)) {
		return d.StringFixed(2)
	}
	return formatDecimal(d)
}

// formatDecimal writes d with no trailing zeros and no exponent. It does not use d.String,
// whose output depends on the decimal package's global settings.
func formatDecimal(d decimal.Decimal) string {
	places := int32(0)
	for !d.Equal(d.Truncate(places)) {
		places++
	}
	return d.StringFixed(places)
}

// decodeError turns an encoding/json error into a P1 error a person can act on. Other errors
// cannot occur: the input is already in memory.
func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return invalid("", "the programme definition is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "the programme definition is not valid JSON: it ends too soon")
	case errors.As(err, &syn):
		return invalid("", "the programme definition is not valid JSON at byte %d: %s",
			syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return invalid(field, "must be a JSON %s, got a JSON %s", jsonKind(typ.Type), typ.Value)
	default:
		// encoding/json reports unknown fields as a plain error ("json: unknown field \"x\"");
		// its text is the only description there is, so it is passed on, not inspected.
		return invalid("", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

// jsonKind names the JSON type a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Bool:
		return "boolean"
	}
	return t.String()
}

// invalid returns a P1 error whose message starts with the JSON path of the field, if any.
func invalid(field, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	return apperr.New(apperr.Invalid, RuleDefinition, "%s", msg)
}

// short cuts a value for quoting in a message, so that a mistaken paste of a whole file does
// not become the message.
func short(s string) string {
	const maxShown = 40
	if len(s) > maxShown {
		return s[:maxShown] + "…"
	}
	return s
}
