package match

import (
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// Number formats (interfaces.md "CSV files"): money has at most 2 decimal places, hours at most
// 2, FTE at most 4; no thousands separators, currency symbols, exponents, NaN or infinities. A
// value with too many places is refused, never rounded (R9.1).

// numberSpec says what a plain decimal may look like.
type numberSpec struct {
	what      apperr.Phrase // "amount", "hours", "FTE": for messages
	maxInt    int           // most digits before the point (leading zeros aside)
	maxPlaces int           // most digits after it
	signed    bool          // a leading '-' is allowed
	padded    bool          // zeros past maxPlaces are allowed (they change nothing): 1.00000 is 1
}

var (
	moneySpec  = numberSpec{what: apperr.Phrase("amount"), maxInt: 10, maxPlaces: 2, signed: true}
	hoursSpec  = numberSpec{what: apperr.Phrase("hours"), maxInt: 2, maxPlaces: 2}
	fteSpec    = numberSpec{what: apperr.Phrase("FTE"), maxInt: 1, maxPlaces: 4, padded: true}
	maxNumText = 40 // longer text is refused before it is looked at digit by digit
)

// parseNumber parses s by spec. On failure it returns an invalid error under rule saying what
// is wrong, written for the person who typed the value.
func parseNumber(s string, spec numberSpec, rule string) (decimal.Decimal, error) {
	s = strings.TrimSpace(s)
	what := spec.what
	bad := func(format string, args ...any) (decimal.Decimal, error) {
		return decimal.Decimal{}, invalid(rule, format, append([]any{what, quote(s)}, args...)...)
	}
	switch {
	case s == "":
		return decimal.Decimal{}, invalid(rule, "%s is empty", what)
	case len(s) > maxNumText:
		return bad("%s %s is far too long to be a number")
	case strings.ContainsRune(s, ','):
		return bad("%s %s has a comma: write it without thousands separators, with a decimal point (1234.50)")
	case strings.ContainsAny(s, "£$€¥") || strings.Contains(strings.ToUpper(s), "GBP"):
		return bad("%s %s has a currency symbol: write the number alone (1234.50)")
	}
	lower := strings.ToLower(s)
	if strings.Contains(lower, "nan") || strings.Contains(lower, "inf") {
		return bad("%s %s is not a number")
	}
	body := s
	neg := false
	if body[0] == '-' {
		if !spec.signed {
			return bad("%s %s is negative")
		}
		neg = true
		body = body[1:]
	}
	intPart, frac, hasPoint := strings.Cut(body, ".")
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if c >= '0' && c <= '9' {
				continue
			}
			if c == 'e' || c == 'E' {
				return bad("%s %s is in exponent notation: write it in full (1234.50)")
			}
			return bad("%s %s is not a plain decimal number such as 1234.50")
		}
	}
	if intPart == "" || (hasPoint && frac == "") {
		return bad("%s %s is not a plain decimal number such as 1234.50")
	}
	places := len(frac)
	for spec.padded && len(frac) > spec.maxPlaces && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if len(frac) > spec.maxPlaces {
		return bad("%s %s has %d decimal places; at most %d are allowed (values are never rounded)", places, spec.maxPlaces)
	}
	if len(strings.TrimLeft(intPart, "0")) > spec.maxInt {
		return bad("%s %s is too large")
	}
	// At most maxInt + maxPlaces ≤ 12 significant digits: the mantissa fits an int64.
	var m int64
	for _, c := range intPart + frac {
		m = m*10 + int64(c-'0')
	}
	if neg {
		m = -m
	}
	return decimal.New(m, -int32(len(frac))), nil
}

// ParseMoney parses an amount of money: pounds and pence, at most 2 decimal places, optionally
// negative (R9.1). The error carries rule R9.1.
func ParseMoney(s string) (decimal.Decimal, error) { return parseNumber(s, moneySpec, RuleMoney) }

// ParseHours parses decimal hours: at most 2 decimal places, more than zero, below 100 (a later
// check applies the daily maximum, V3). The error carries rule V3.
func ParseHours(s string) (decimal.Decimal, error) {
	h, err := parseNumber(s, hoursSpec, RuleV3)
	if err == nil && !h.IsPositive() {
		return decimal.Decimal{}, invalid(RuleV3, "hours %s must be more than 0", h)
	}
	return h, err
}

// ParseFTE parses a contracted fraction: 0 < FTE ≤ 1, at most 4 decimal places besides trailing
// zeros (R5.1).
func ParseFTE(s string) (decimal.Decimal, error) {
	f, err := parseNumber(s, fteSpec, RuleR51)
	if err == nil && (!f.IsPositive() || f.GreaterThan(decimal.NewFromInt(1))) {
		return decimal.Decimal{}, invalid(RuleR51, "FTE %s must be more than 0 and at most 1", f)
	}
	return f, err
}

// quote shows a value in a message, shortened so a pasted file does not become the message.
func quote(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if utf8.RuneCountInString(s) > 24 {
		r := []rune(s)
		s = string(r[:20]) + "…"
	}
	return `"` + s + `"`
}
