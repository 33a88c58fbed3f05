// Package programme holds the definition of an ESF operation — for InFuSe the award, the match,
// the intervention rate, the ten authorities, the cost headings, the eligibility window, the
// claim periods and the flat-rate option — with an embedded default that an admin can replace
// with a JSON file. It is pure configuration: it never touches the database, and every figure
// other packages need from domain.md §1–3 is read from a *Programme rather than hard-coded.
package programme

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// RuleDefinition is the rule id carried by every error about an invalid programme definition.
const RuleDefinition = "P1"

// Area is an ESF programme area. West Wales and the Valleys (WWV) and East Wales (EW) are
// separate ESF programmes that may carry different intervention rates (domain §1).
type Area struct {
	Code string `json:"code"`
	Name string `json:"name"`
	Rate Rate   `json:"rate"`
}

// Authority is a partner local authority that provides match funding.
type Authority struct {
	Code        string          `json:"code"` // ISO 3166-2:GB code, the stable id (GB-MON)
	NameEN      string          `json:"name_en"`
	NameCY      string          `json:"name_cy"`
	Area        string          `json:"area"`         // code of its ESF programme area
	MatchTarget decimal.Decimal `json:"match_target"` // in-kind match it is to provide
}

// HeadingKind says how amounts arise under a cost heading (domain §2).
type HeadingKind string

// The heading kinds of domain §2.
const (
	KindCash   HeadingKind = "cash"   // expenditure lines
	KindFlat   HeadingKind = "flat"   // computed per claim period, never entered
	KindInKind HeadingKind = "inkind" // officer time entries
)

// The cost heading codes of domain §2. A programme has exactly these five.
const (
	HeadingStaff       = "staff"
	HeadingIndirect    = "indirect"
	HeadingDelivery    = "delivery"
	HeadingOther       = "other"
	HeadingOfficerTime = "officer_time"
)

// requiredHeadings lists the headings of domain §2 with their kinds, in the table's order.
var requiredHeadings = []struct {
	code string
	kind HeadingKind
}{
	{HeadingStaff, KindCash},
	{HeadingIndirect, KindFlat},
	{HeadingDelivery, KindCash},
	{HeadingOther, KindCash},
	{HeadingOfficerTime, KindInKind},
}

// Heading is a cost heading of the claim.
type Heading struct {
	Code string      `json:"code"`
	Name string      `json:"name"`
	Kind HeadingKind `json:"kind"`
}

// Frequency is how often a claim is due.
type Frequency string

// The claim frequencies: calendar quarters by default, calendar months by configuration.
const (
	Quarterly Frequency = "quarterly"
	Monthly   Frequency = "monthly"
)

// Programme is the definition of one ESF operation. Load and Default return a validated
// Programme; a Programme built or changed in code should be checked with Validate before use.
// Dates are midnight UTC.
type Programme struct {
	OperationID    string // stable id of the operation, carried by every table ("infuse")
	Name, NameCY   string
	Lead           string // code of the lead beneficiary, one of Authorities (GB-MON)
	Award          decimal.Decimal
	MatchTotal     decimal.Decimal
	Rate           Rate // programme intervention rate (9/14)
	Areas          []Area
	Authorities    []Authority
	Headings       []Heading
	WindowStart    time.Time // first eligible date
	WindowEnd      time.Time // last eligible date, inclusive
	Frequency      Frequency
	FlatRate       FlatRate
	HoursBasis     int             // annual hours of a full-time post (CPR Art 68a(2)), 1720
	DailyMaxHours  decimal.Decimal // V3 daily maximum per officer, 12
	Timezone       string          // IANA zone that decides "today" (V2), Europe/London
	RetentionUntil *time.Time      // records kept at least until this date, once WEFO notifies it
}

// Clone returns a deep copy of p, so that a caller may change it without affecting anyone
// holding the original (Default hands out clones for this reason).
func (p *Programme) Clone() *Programme {
	c := *p
	c.Areas = append([]Area(nil), p.Areas...)
	c.Authorities = append([]Authority(nil), p.Authorities...)
	c.Headings = append([]Heading(nil), p.Headings...)
	if p.RetentionUntil != nil {
		r := *p.RetentionUntil
		c.RetentionUntil = &r
	}
	return &c
}

// TotalEligible returns the total eligible cost of the operation: award plus match.
func (p *Programme) TotalEligible() decimal.Decimal {
	return p.Award.Add(p.MatchTotal)
}

// Authority returns the authority with the given code.
func (p *Programme) Authority(code string) (Authority, bool) {
	for _, a := range p.Authorities {
		if a.Code == code {
			return a, true
		}
	}
	return Authority{}, false
}

// Area returns the ESF programme area with the given code.
func (p *Programme) Area(code string) (Area, bool) {
	for _, a := range p.Areas {
		if a.Code == code {
			return a, true
		}
	}
	return Area{}, false
}

// AreaRate returns the intervention rate of the area of the authority with the given code. For
// an unknown authority it returns the zero Rate, which is not Valid and must not be used for
// arithmetic; callers check the authority with Authority first.
func (p *Programme) AreaRate(authorityCode string) Rate {
	a, ok := p.Authority(authorityCode)
	if !ok {
		return Rate{}
	}
	area, ok := p.Area(a.Area)
	if !ok {
		return Rate{}
	}
	return area.Rate
}

// Heading returns the cost heading with the given code.
func (p *Programme) Heading(code string) (Heading, bool) {
	for _, h := range p.Headings {
		if h.Code == code {
			return h, true
		}
	}
	return Heading{}, false
}

// AcceptsLines reports whether lines (expenditure lines or, for officer_time, time entries) may
// be recorded under the heading. R6.4: a heading covered by a flat rate never accepts real-cost
// lines, since its amount is computed from staff costs and claiming real costs too would claim
// them twice. So "indirect" never does, and under the 40% option (FlatOther), which covers all
// costs other than direct staff, only staff and officer_time do. An unknown heading accepts
// nothing.
func (p *Programme) AcceptsLines(heading string) bool {
	h, ok := p.Heading(heading)
	if !ok || h.Kind == KindFlat {
		return false
	}
	if p.FlatRate.Kind == FlatOther {
		return h.Code == HeadingStaff || h.Code == HeadingOfficerTime
	}
	return true
}

// InWindow reports whether the calendar date of d (read in d's own location) lies inside the
// eligibility window, both ends inclusive (V1).
func (p *Programme) InWindow(d time.Time) bool {
	d = dateOf(d)
	return !d.Before(dateOf(p.WindowStart)) && !d.After(dateOf(p.WindowEnd))
}

// Location returns the programme's time zone, for turning instants into dates with DateIn. It
// needs the IANA time zone database at run time: the binary should import time/tzdata so that
// it does not depend on the host having one.
func (p *Programme) Location() (*time.Location, error) {
	if p.Timezone == "" || p.Timezone == "Local" {
		// time.LoadLocation would give UTC or the host's zone, so the programme's "today" would
		// depend on where it runs.
		return nil, apperr.New(apperr.Invalid, RuleDefinition,
			"timezone: must be an IANA time zone name such as Europe/London, got %q", p.Timezone)
	}
	loc, err := time.LoadLocation(p.Timezone)
	if err != nil {
		return nil, &apperr.Error{
			Code:    apperr.Invalid,
			Rule:    RuleDefinition,
			Message: fmt.Sprintf("timezone: unknown time zone %q", p.Timezone),
			Op:      "programme.Location",
			Err:     err,
		}
	}
	return loc, nil
}
