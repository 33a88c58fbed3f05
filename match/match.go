// Package match records the match and the cash spent: officers and their effective-dated rate
// versions, officer time entries priced by R5.1/R9.3a, cash expenditure lines and credit notes,
// and corrections (reversals). It validates every line against domain.md V1–V8 and R6.4, posts
// each line as one balanced ledger entry in the same transaction as its row, imports the CSV
// files of interfaces.md set-based, and offers the claims package the lines booked in a period.
//
// An officer (RecordOfficer) is a one-row import, staged, checked by the same SQL and written
// the same way as a file of a million rows. A single time entry or expenditure line (RecordTime,
// RecordExpenditure), the hot paths of the API, take a short path of their own (single.go): the
// import's row checks in Go, a few indexed reads under the import's lock, the import's pricing
// and ledger entry; TestSinglePathMatchesImport and TestSingleExpenditureMatchesImport hold each
// pair of paths to the same outcome, code and rule id.
//
// Rule ids. Besides domain.md's (V1–V8, R5.1, R5.2 as V4, R5.3, R6.4, R9.1) and access's (A1,
// V8), errors carry these, for what domain.md leaves to the implementation:
//
//	M1  a file or field is malformed: header, columns, field count, UTF-8, a missing value, a date
//	M2  a value names nothing known: an authority, an officer, an activity, a heading
//	M3  an officer's identity disagrees: a name that differs from the one recorded or in the file
//	M4  a credit note names the invoice it credits (invoice_ref) and corrects one line of it (domain.md §5):
//	    the first live line of its heading and invoice with enough left, and no more than that line has
//	    left; a line its credit notes credit is not reversed while they stand
//	M5  an expenditure line is identified by heading, evidence reference and description: re-sending
//	    the same line is a no-op, a different line with the same identity is a conflict (as V5 for time)
//	M6  a correction reverses a live line once, with a reason
//
// V7's "the approver is not the recorder" compares the approver's name with the recording
// user's name and email, ignoring case, surrounding space and repeated inner spaces: a line
// manager who signs a timesheet may not also be the person who keys it in.
package match

import (
	"time"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/group"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

// Rule ids (see the package comment).
const (
	RuleV1     = "V1"
	RuleV2     = "V2"
	RuleV3     = "V3"
	RuleV4     = "V4"
	RuleV5     = "V5"
	RuleV6     = "V6"
	RuleV7     = "V7"
	RuleV8     = "V8"
	RuleR51    = "R5.1"
	RuleR53    = "R5.3"
	RuleR93a   = "R9.3a"
	RuleR64    = "R6.4"
	RuleMoney  = "R9.1"
	RuleFormat = apperr.RuleFormat
	RuleRef    = apperr.RuleRef
	RuleName   = "M3"
	RuleCredit = "M4"
	RuleLine   = "M5"
	RuleCorr   = "M6"
)

// Activities are the kinds of officer time (domain.md §4).
var Activities = []string{"lab", "experiment", "coaching", "steering", "other"}

// Service records the match of one operation.
type Service struct {
	l    *ledger.Ledger
	p    *programme.Programme
	loc  *time.Location
	now  func() time.Time
	cash []string // headings that take expenditure lines (R6.4)

	times           *group.Grouper[timeReq, TimeEntry] // single time entries, recorded in groups (single.go)
	laneLockTimeout string                             // how long the lane waits for an officer's lock (single.go)
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock that decides "today" (V2) and stamps recorded_at.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns the Service recording into l under programme p (the definition l was set up with).
func New(l *ledger.Ledger, p *programme.Programme, opts ...Option) (*Service, error) {
	loc, err := p.Location()
	if err != nil {
		return nil, err
	}
	s := &Service{l: l, p: p, loc: loc, now: time.Now, laneLockTimeout: laneLockTimeout}
	s.times = group.New(s.recordTimeGroup)
	for _, o := range opts {
		o(s)
	}
	for _, h := range p.Headings {
		if h.Kind == programme.KindCash && p.AcceptsLines(h.Code) {
			s.cash = append(s.cash, h.Code)
		}
	}
	return s, nil
}

// Programme returns the programme the service records under.
func (s *Service) Programme() *programme.Programme { return s.p }

// Ledger returns the ledger the service posts to.
func (s *Service) Ledger() *ledger.Ledger { return s.l }

// today is the date in the programme's time zone (V2).
func (s *Service) today() time.Time { return programme.DateIn(s.now(), s.loc) }

// stamp is the recorded_at of a transaction: one now per transaction.
func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func invalid(rule, format string, args ...any) *apperr.Error {
	return apperr.New(apperr.Invalid, rule, format, args...)
}

func init() {
	reg := func(code apperr.Code, rule, msg string, names ...string) {
		for _, n := range names {
			db.RegisterConstraint(n, db.Constraint{Code: code, Rule: rule, Message: msg})
		}
	}
	reg(apperr.Invalid, RuleR51, "a rate version needs an annual cost above zero and an FTE above 0 and at most 1",
		"rate_version_annual_cost_ck", "rate_version_fte_ck")
	reg(apperr.Conflict, RuleR53, "this officer already has a rate version from that date; a version never changes",
		"rate_version_pkey")
	reg(apperr.Invalid, RuleV6, "the rate version pricing a time entry must be in force on its work date",
		"time_entry_rate_fk", "time_entry_rate_in_force_ck")
	reg(apperr.Invalid, RuleV3, "hours must be more than 0 and within the daily maximum", "time_entry_hours_ck")
	reg(apperr.Invalid, RuleFormat, "a text field holds at most 1,000 characters",
		"officer_text_length_ck", "time_entry_text_length_ck", "expenditure_text_length_ck")
	reg(apperr.Invalid, RuleV7, "a line needs an evidence reference, and a time entry an approver",
		"time_entry_evidence_ck", "time_entry_approver_ck", "expenditure_evidence_ck")
	reg(apperr.Conflict, RuleV5, "the officer already has a live entry for this date and activity",
		"time_entry_live_uq")
	reg(apperr.Invalid, RuleRef, "the activity is not one of lab, experiment, coaching, steering, other", "time_entry_activity_ck")
	reg(apperr.Invalid, RuleR64, "expenditure lines are recorded under staff, delivery or other only", "expenditure_heading_ck")
	reg(apperr.Invalid, RuleCredit, "a negative line is a credit note and must name the line it credits", "expenditure_credit_note_ck",
		"expenditure_credits_fk")
	reg(apperr.Conflict, RuleLine, "a live line with this heading, evidence reference and description exists already",
		"expenditure_live_uq", "expenditure_generation_uq")
	reg(apperr.Invalid, RuleFormat, "an expenditure line needs a payee, a description and a non-zero amount",
		"expenditure_payee_ck", "expenditure_description_ck", "expenditure_amount_ck")
	reg(apperr.Conflict, RuleCorr, "this line has been reversed already",
		"correction_time_entry_uq", "correction_expenditure_uq")
	reg(apperr.Invalid, RuleCorr, "a correction needs a reason", "correction_reason_ck")
	reg(apperr.Conflict, RuleName, "an officer with this payroll reference exists already in the authority", "officer_payroll_uq")
	reg(apperr.Invalid, RuleFormat, "an officer needs an authority code, a payroll reference and a name",
		"officer_authority_ck", "officer_payroll_ref_ck", "officer_name_ck")
}
