package programme

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/shopspring/decimal"
)

var (
	// operationID is short and URL- and SQL-safe because it is carried by every table and
	// may become a shard key (architecture.md, Scale).
	operationID = regexp.MustCompile(`^[a-z][a-z0-9_-]{1,31}$`)
	// authorityCode is an ISO 3166-2:GB subdivision code, the authorities' stable id (domain §1).
	authorityCode = regexp.MustCompile(`^GB-[A-Z]{3}$`)
)

// Validate checks the whole definition against rule P1 and returns every problem found, joined
// with errors.Join, or nil. Each problem is an apperr.Invalid error with rule P1 whose message
// starts with the JSON path of the field ("authorities[3].code: …"), so that an admin can fix a
// file in one pass rather than one error at a time.
func (p *Programme) Validate() error {
	var v problems

	if !operationID.MatchString(p.OperationID) {
		v.add("operation_id", "must be 2 to 32 characters of a-z, 0-9, _ or -, starting with a letter, got %q", short(p.OperationID))
	}
	v.required("name", p.Name)
	v.required("name_cy", p.NameCY)

	v.money("award", p.Award, true)
	v.money("match_total", p.MatchTotal, true)
	v.rate("rate", p.Rate)

	areas := map[string]bool{}
	if len(p.Areas) == 0 {
		v.add("areas", "at least one ESF programme area is required")
	}
	for i, a := range p.Areas {
		f := fmt.Sprintf("areas[%d]", i)
		switch {
		case a.Code == "":
			v.add(f+".code", "required")
		case areas[a.Code]:
			v.add(f+".code", "%q appears more than once", a.Code)
		}
		areas[a.Code] = true
		v.required(f+".name", a.Name)
		v.rate(f+".rate", a.Rate)
		// The claim applies one rate to the whole of the eligible expenditure (domain §7): the
		// lead's cash costs are not split between areas, so an area's own rate cannot be applied.
		// Areas keep their rates, so that a programme with different ones is refused rather
		// than claimed at the wrong one.
		if a.Rate.Valid() && p.Rate.Valid() && a.Rate.Num*p.Rate.Den != p.Rate.Num*a.Rate.Den {
			v.add(f+".rate", "%s differs from the programme's rate %s: claims are computed at one rate for every area, so each area's rate must equal it", a.Rate, p.Rate)
		}
	}

	codes := map[string]bool{}
	targets := decimal.Zero
	if len(p.Authorities) == 0 {
		v.add("authorities", "at least one authority is required")
	}
	for i, a := range p.Authorities {
		f := fmt.Sprintf("authorities[%d]", i)
		switch {
		case !authorityCode.MatchString(a.Code):
			v.add(f+".code", "must be an ISO 3166-2:GB code such as GB-MON, got %q", short(a.Code))
		case codes[a.Code]:
			v.add(f+".code", "%q appears more than once", a.Code)
		}
		codes[a.Code] = true
		v.required(f+".name_en", a.NameEN)
		v.required(f+".name_cy", a.NameCY)
		if !areas[a.Area] || a.Area == "" {
			v.add(f+".area", "%q is not one of the areas", short(a.Area))
		}
		v.money(f+".match_target", a.MatchTarget, false)
		targets = targets.Add(a.MatchTarget)
	}
	// The match is the sum of what the authorities provide; a definition whose targets do not
	// add up to it would make the match-by-authority report (C6) disagree with the claim.
	if len(p.Authorities) > 0 && !targets.Equal(p.MatchTotal) {
		v.add("match_total", "is %s but the authorities' match targets add up to %s",
			formatMoney(p.MatchTotal), formatMoney(targets))
	}
	if !codes[p.Lead] || p.Lead == "" {
		v.add("lead", "%q is not one of the authorities", short(p.Lead))
	}

	v.date("window_start", p.WindowStart)
	v.date("window_end", p.WindowEnd)
	if p.WindowEnd.Before(p.WindowStart) {
		v.add("window_end", "%s is before window_start %s",
			p.WindowEnd.Format(DateLayout), p.WindowStart.Format(DateLayout))
	}
	if p.RetentionUntil != nil {
		v.date("retention_until", *p.RetentionUntil)
		// Records must outlive the operation (domain §9), so a retention date inside the
		// window is a typing mistake.
		if p.RetentionUntil.Before(p.WindowEnd) {
			v.add("retention_until", "%s is before window_end %s",
				p.RetentionUntil.Format(DateLayout), p.WindowEnd.Format(DateLayout))
		}
	}
	if p.Frequency.months() == 0 {
		v.add("frequency", "must be %q or %q, got %q", Quarterly, Monthly, short(string(p.Frequency)))
	}

	v.flatRate(p.FlatRate)
	v.headings(p.Headings)

	if p.HoursBasis <= 0 {
		v.add("hours_basis", "must be positive, got %d", p.HoursBasis)
	}
	switch dm := p.DailyMaxHours; {
	case dm.Sign() <= 0 || dm.GreaterThan(decimal.NewFromInt(24)):
		v.add("daily_max_hours", "must be above 0 and at most 24, got %s", formatDecimal(dm))
	case !dm.Equal(dm.Truncate(2)):
		// Hours carry at most 2 decimal places (domain §3), so a finer limit could never bind.
		v.add("daily_max_hours", "must have at most 2 decimal places, got %s", formatDecimal(dm))
	}
	if _, err := p.Location(); err != nil {
		v = append(v, err)
	}

	return errors.Join(v...)
}

// problems collects the P1 errors of one validation.
type problems []error

func (v *problems) add(field, format string, args ...any) {
	*v = append(*v, invalid(field, format, args...))
}

func (v *problems) required(field, s string) {
	if s == "" {
		v.add(field, "required")
	}
}

// money checks an amount: positive (or, when positive is false, at least zero) and with at most
// 2 decimal places, which R9.1 requires to be rejected rather than rounded.
func (v *problems) money(field string, d decimal.Decimal, positive bool) {
	switch {
	case positive && d.Sign() <= 0:
		v.add(field, "must be positive, got %s", formatMoney(d))
	case d.Sign() < 0:
		v.add(field, "must not be negative, got %s", formatMoney(d))
	}
	if !d.Equal(d.Truncate(2)) {
		v.add(field, "must have at most 2 decimal places (R9.1), got %s", formatDecimal(d))
	}
}

// rate checks an intervention rate: 0 < num/den ≤ 1 with a positive denominator.
func (v *problems) rate(field string, r Rate) {
	switch {
	case r.Den <= 0:
		v.add(field+".den", "must be positive, got %d", r.Den)
	case !r.Valid():
		v.add(field, "must be above 0 and at most 1, got %s", r)
	}
}

// date checks that a date is set and is midnight UTC, the project's form of a date; a time in
// another zone or with a clock time would put period boundaries in the wrong place.
func (v *problems) date(field string, t time.Time) {
	switch {
	case t.IsZero():
		v.add(field, "required")
	case !isDate(t):
		v.add(field, "must be a date at midnight UTC, got %s", t.Format(time.RFC3339))
	}
}

func (v *problems) flatRate(f FlatRate) {
	switch f.Kind {
	case FlatNone:
		if !f.Percent.IsZero() {
			v.add("flat_rate.percent", "must be 0 when flat_rate.kind is %q, got %s", FlatNone, formatDecimal(f.Percent))
		}
		return
	case FlatIndirect, FlatOther:
	default:
		v.add("flat_rate.kind", "must be %q, %q or %q, got %q", FlatNone, FlatIndirect, FlatOther, short(string(f.Kind)))
	}
	if f.Percent.Sign() < 0 || f.Percent.GreaterThan(decimal.NewFromInt(100)) {
		v.add("flat_rate.percent", "must be from 0 to 100, got %s", formatDecimal(f.Percent))
	}
}

// headings checks that the headings are exactly the five of domain §2 with their kinds: the
// claim, the ledger accounts and R6.4 are written against those codes.
func (v *problems) headings(hs []Heading) {
	want := map[string]HeadingKind{}
	for _, r := range requiredHeadings {
		want[r.code] = r.kind
	}
	seen := map[string]bool{}
	for i, h := range hs {
		f := fmt.Sprintf("headings[%d]", i)
		kind, known := want[h.Code]
		switch {
		case !known:
			v.add(f+".code", "%q is not a heading; the headings are staff, indirect, delivery, other and officer_time", short(h.Code))
		case seen[h.Code]:
			v.add(f+".code", "%q appears more than once", h.Code)
		case h.Kind != kind:
			v.add(f+".kind", "heading %q must be of kind %q, got %q", h.Code, kind, short(string(h.Kind)))
		}
		seen[h.Code] = true
		v.required(f+".name", h.Name)
	}
	for _, r := range requiredHeadings {
		if !seen[r.code] {
			v.add("headings", "heading %q is missing", r.code)
		}
	}
}
