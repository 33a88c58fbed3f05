package match

import (
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Number formats (interfaces.md "CSV files"): money has at most 2 decimal places, hours at most
// 2, FTE at most 4; no thousands separators, currency symbols, exponents, NaN or infinities. A
// value with too many places is refused, never rounded (R9.1).

// numberSpec says what a plain decimal may look like.
type numberSpec struct {
	what      string // "amount", "hours", "FTE": for messages
	maxInt    int    // most digits before the point (leading zeros aside)
	maxPlaces int    // most digits after it
	signed    bool   // a leading '-' is allowed
}

var (
	moneySpec  = numberSpec{what: "amount", maxInt: 10, maxPlaces: 2, signed: true}
	hoursSpec  = numberSpec{what: "hours", maxInt: 2, maxPlaces: 2}
	fteSpec    = numberSpec{what: "FTE", maxInt: 1, maxPlaces: 4}
	maxNumText = 40 // longer text is refused before it is looked at digit by digit
)

// parseNumber parses s by spec. On failure it returns a message saying what is wrong, written
// for the person who typed the value.
func parseNumber(s string, spec numberSpec) (decimal.Decimal, string) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return decimal.Decimal{}, spec.what + " is empty"
	case len(s) > maxNumText:
		return decimal.Decimal{}, spec.what + " " + quote(s) + " is far too long to be a number"
	case strings.ContainsRune(s, ','):
		return decimal.Decimal{}, spec.what + " " + quote(s) + " has a comma: write it without thousands separators, with a decimal point (1234.50)"
	case strings.ContainsAny(s, "£$€¥") || strings.Contains(strings.ToUpper(s), "GBP"):
		return decimal.Decimal{}, spec.what + " " + quote(s) + " has a currency symbol: write the number alone (1234.50)"
	}
	lower := strings.ToLower(s)
	if strings.Contains(lower, "nan") || strings.Contains(lower, "inf") {
		return decimal.Decimal{}, spec.what + " " + quote(s) + " is not a number"
	}
	body := s
	neg := false
	if body[0] == '-' {
		if !spec.signed {
			return decimal.Decimal{}, spec.what + " " + quote(s) + " is negative"
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
				return decimal.Decimal{}, spec.what + " " + quote(s) + " is in exponent notation: write it in full (1234.50)"
			}
			return decimal.Decimal{}, spec.what + " " + quote(s) + " is not a plain decimal number such as 1234.50"
		}
	}
	if intPart == "" || (hasPoint && frac == "") {
		return decimal.Decimal{}, spec.what + " " + quote(s) + " is not a plain decimal number such as 1234.50"
	}
	if len(frac) > spec.maxPlaces {
		return decimal.Decimal{}, spec.what + " " + quote(s) + " has " + itoa(len(frac)) + " decimal places; at most " +
			itoa(spec.maxPlaces) + " are allowed (values are never rounded)"
	}
	if len(strings.TrimLeft(intPart, "0")) > spec.maxInt {
		return decimal.Decimal{}, spec.what + " " + quote(s) + " is too large"
	}
	// At most maxInt + maxPlaces ≤ 12 significant digits: the mantissa fits an int64.
	var m int64
	for _, c := range intPart + frac {
		m = m*10 + int64(c-'0')
	}
	if neg {
		m = -m
	}
	return decimal.New(m, -int32(len(frac))), ""
}

// ParseMoney parses an amount of money: pounds and pence, at most 2 decimal places, optionally
// negative (R9.1). The error carries rule R9.1.
func ParseMoney(s string) (decimal.Decimal, error) { return parseWith(s, moneySpec, RuleMoney) }

// ParseHours parses decimal hours: at most 2 decimal places, more than zero, below 100 (a later
// check applies the daily maximum, V3). The error carries rule V3.
func ParseHours(s string) (decimal.Decimal, error) {
	h, err := parseWith(s, hoursSpec, RuleV3)
	if err == nil && !h.IsPositive() {
		return decimal.Decimal{}, invalid(RuleV3, "hours %s must be more than 0", h)
	}
	return h, err
}

// ParseFTE parses a contracted fraction: 0 < FTE ≤ 1, at most 4 decimal places (R5.1).
func ParseFTE(s string) (decimal.Decimal, error) {
	f, err := parseWith(s, fteSpec, RuleR51)
	if err == nil && (!f.IsPositive() || f.GreaterThan(decimal.NewFromInt(1))) {
		return decimal.Decimal{}, invalid(RuleR51, "FTE %s must be more than 0 and at most 1", f)
	}
	return f, err
}

func parseWith(s string, spec numberSpec, rule string) (decimal.Decimal, error) {
	d, msg := parseNumber(s, spec)
	if msg != "" {
		return decimal.Decimal{}, invalid(rule, "%s", msg)
	}
	return d, nil
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

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return decimal.NewFromInt(int64(n)).String()
}
