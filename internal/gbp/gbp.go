// Package gbp writes amounts of money for people: pounds with thousands separators and pence,
// as the claim pack, its findings and the pages show them. Files and the API keep the canonical
// form (decimal.StringFixed(2), no separators); this is only for reading.
package gbp

import (
	"strings"

	"github.com/shopspring/decimal"
)

// Pounds formats an amount as £1,234.56, or -£1,234.56 when negative. The minus is the ASCII
// hyphen-minus, which every font of the packs can draw.
func Pounds(d decimal.Decimal) string {
	s := Group(d.Abs().StringFixed(2))
	if d.IsNegative() {
		return "-£" + s
	}
	return "£" + s
}

// Group puts commas into the integer part of an unsigned decimal string: 1234567.5 is
// 1,234,567.5.
func Group(s string) string {
	intPart, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i:]
	}
	if len(intPart) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(intPart) % 3
	if lead > 0 {
		b.WriteString(intPart[:lead])
	}
	for i := lead; i < len(intPart); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(intPart[i : i+3])
	}
	b.WriteString(frac)
	return b.String()
}
