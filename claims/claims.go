// Package claims compiles the quarterly ESF claims of an operation and carries them through
// their lifecycle (domain.md §6–7): the claim periods, the claim arithmetic (a pure function of
// plain values, compute.go) and the queries that feed it, the findings C1–C8, the lifecycle
// draft → reviewed → submitted → approved → paid with its postings and period locks, the
// claim pack value handed to package reports, and the cron scheduler that compiles the claim of
// every ended period.
//
// Rule ids used here beyond domain.md's (R…, C…, F1):
//
//	CL1  claims are submitted in period order
//	CL2  a claim is reviewed (four eyes, R3.13) before it is submitted
//	CL3  a submitted claim is frozen: it is never recompiled and its figures never change
//	CL4  a claim is submitted only as compiled: the ledger of its period has not moved since
//	CL5  a claim is submitted only once its period has ended
//	CL6  WEFO's decision and the payment are recorded once, in that order, with valid amounts
//	CL7  a claim with a blocking finding is not submitted (Submit names the finding's own rule)
package claims

import (
	"time"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/programme"
)

// Rule ids of the claim lifecycle (see the package comment).
const (
	RuleOrder    = "CL1"
	RuleReview   = "CL2"
	RuleFrozen   = "CL3"
	RuleStale    = "CL4"
	RuleEnded    = "CL5"
	RuleOutcome  = "CL6"
	RuleBlocked  = "CL7"
	RuleFourEyes = "R3.13"
)

// Status is where a claim is in its lifecycle (domain.md §7).
type Status string

// The claim statuses, in lifecycle order.
const (
	Draft     Status = "draft"
	Reviewed  Status = "reviewed"
	Submitted Status = "submitted"
	Approved  Status = "approved"
	Paid      Status = "paid"
)

// Frozen reports whether a claim in status s has been submitted: its figures never change.
func (s Status) Frozen() bool {
	return s == Submitted || s == Approved || s == Paid
}

// Period is a claim period: one of the programme's periods, numbered in order from 1 (the claim
// number), and whether its claim is the operation's final one.
type Period struct {
	programme.Period
	Final bool
}

// Number returns the claim number of the period.
func (p Period) Number() int { return p.Seq }

// Ended reports whether the period is over on the calendar date today.
func (p Period) Ended(today time.Time) bool {
	return today.After(p.End)
}

// Periods returns the claim periods of the programme in order: its calendar quarters (or months,
// by configuration) over the eligibility window. Every period has a claim, nil claims included
// (R3.4).
func Periods(p *programme.Programme) []Period {
	ps := p.Periods()
	out := make([]Period, len(ps))
	for i, per := range ps {
		out[i] = Period{Period: per, Final: i == len(ps)-1}
	}
	return out
}

// periodsTo returns the codes of the claim periods up to and including per: those a claim's
// cumulative figures read.
func periodsTo(p *programme.Programme, per Period) []string {
	var codes []string
	for _, q := range Periods(p)[:per.Seq] {
		codes = append(codes, q.Code)
	}
	return codes
}

// PeriodByCode returns the claim period with the given code.
func PeriodByCode(p *programme.Programme, code string) (Period, error) {
	for _, per := range Periods(p) {
		if per.Code == code {
			return per, nil
		}
	}
	return Period{}, apperr.New(apperr.NotFound, apperr.RuleRef, "%q is not a claim period of %s (periods look like %s)",
		code, p.OperationID, Periods(p)[0].Code)
}
