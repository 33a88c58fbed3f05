package match_test

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/match"
)

func TestParseMoney(t *testing.T) {
	t.Parallel()
	ok := map[string]string{
		"18250.00": "18250.00", "18250": "18250.00", "0.5": "0.50", "-1200.50": "-1200.50", " 12.3 ": "12.30",
		"0001.10": "1.10", "9999999999.99": "9999999999.99",
	}
	for in, want := range ok {
		got, err := match.ParseMoney(in)
		if err != nil || got.StringFixed(2) != want {
			t.Errorf("ParseMoney(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                         "empty",
		"1.234":                    "decimal places",
		"1,250.00":                 "comma",
		"1250,00":                  "comma",
		"£1250.00":                 "currency",
		"1250.00 GBP":              "currency",
		"$5":                       "currency",
		"NaN":                      "not a number",
		"-Inf":                     "not a number",
		"Infinity":                 "not a number",
		"1e5":                      "exponent",
		"1.5E+3":                   "exponent",
		"12345678901":              "too large",
		strings.Repeat("9", 10000): "too long",
		"1.":                       "plain decimal",
		".5":                       "plain decimal",
		"--5":                      "plain decimal",
		"+5":                       "plain decimal",
		"1 000":                    "plain decimal",
		"0x10":                     "plain decimal",
		"١٢":                       "plain decimal", // Arabic-Indic digits
	}
	for in, frag := range bad {
		_, err := match.ParseMoney(in)
		if err == nil || apperr.RuleOf(err) != "R9.1" || !strings.Contains(apperr.As(err).Message, frag) {
			t.Errorf("ParseMoney(%.30q) = %v; want an R9.1 error mentioning %q", in, err, frag)
		}
	}
}

func TestParseHoursAndFTE(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"7.5": "7.5", "7.25": "7.25", "12": "12", "0.01": "0.01"} {
		if got, err := match.ParseHours(in); err != nil || !got.Equal(dec(want)) {
			t.Errorf("ParseHours(%q) = %s, %v", in, got, err)
		}
	}
	for _, in := range []string{"0", "-1", "7.255", "100", "1e1", "7,5", "", "NaN"} {
		if _, err := match.ParseHours(in); apperr.RuleOf(err) != "V3" {
			t.Errorf("ParseHours(%q) = %v; want a V3 error", in, err)
		}
	}
	for in, want := range map[string]string{"0.8": "0.8", "1": "1", "0.74": "0.74", "0.0001": "0.0001", "1.0000": "1",
		"1.00000": "1", "0.800000": "0.8"} { // trailing zeros, as HR systems export an FTE, change nothing
		if got, err := match.ParseFTE(in); err != nil || !got.Equal(dec(want)) {
			t.Errorf("ParseFTE(%q) = %s, %v", in, got, err)
		}
	}
	for _, in := range []string{"0", "1.01", "2", "-0.5", "0.12345", "0.810811", "0.123450", "80%", ""} {
		if _, err := match.ParseFTE(in); apperr.RuleOf(err) != "R5.1" {
			t.Errorf("ParseFTE(%q) = %v; want an R5.1 error", in, err)
		}
	}
	if _, err := match.ParseFTE("0.123450"); err == nil || !strings.Contains(err.Error(), "has 6 decimal places") {
		t.Errorf("ParseFTE(0.123450): %v; want its 6 places counted as written", err)
	}
}

// fuzzParser checks a parser on any input: it never panics, and what it accepts is a plain
// decimal with at most places decimal places that prints back as it parsed.
func fuzzParser(f *testing.F, parse func(string) (decimal.Decimal, error), places int32) {
	for _, s := range []string{"0", "7.25", "-12.50", "1,000", "£5", "1e9", "NaN", "", " 3 ", "0.0001", "99.99", strings.Repeat("1", 10000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parse(s)
		if err != nil {
			if apperr.As(err) == nil || apperr.CodeOf(err) != apperr.Invalid {
				t.Fatalf("%q: error %v is not an invalid apperr", s, err)
			}
			return
		}
		if !d.Equal(d.Truncate(places)) {
			t.Fatalf("%q parsed to %s, more than %d places", s, d, places)
		}
		again, err := parse(d.String())
		if err != nil || !again.Equal(d) {
			t.Fatalf("%q parsed to %s, which parses back to %s, %v", s, d, again, err)
		}
	})
}

func FuzzParseMoney(f *testing.F) { fuzzParser(f, match.ParseMoney, 2) }
func FuzzParseHours(f *testing.F) { fuzzParser(f, match.ParseHours, 2) }
func FuzzParseFTE(f *testing.F)   { fuzzParser(f, match.ParseFTE, 4) }
