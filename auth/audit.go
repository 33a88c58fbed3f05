package auth

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
)

// Audit outcomes.
const (
	OutcomeOK      = "ok"
	OutcomeRefused = "refused" // the caller was not allowed, or not signed in
	OutcomeFailed  = "failed"  // allowed, but the action failed (a rule, a conflict, an error)
)

// Event is one entry of the audit log: who did what, when, on what, with what outcome.
type Event struct {
	ID        int64          `json:"id"`
	At        time.Time      `json:"at"`
	Actor     string         `json:"actor"`
	ActorRole string         `json:"actor_role"`
	Action    string         `json:"action"` // signin, signout, import.time, claims.submit, …
	Target    string         `json:"target"`
	Outcome   string         `json:"outcome"`
	Detail    map[string]any `json:"detail"`
	RequestID string         `json:"request_id"`
	Client    string         `json:"client"`
}

// OutcomeOf returns the audit outcome of an action that ended with err.
func OutcomeOf(err error) string {
	switch apperr.CodeOf(err) {
	case "":
		return OutcomeOK
	case apperr.Forbidden, apperr.Unauthenticated:
		return OutcomeRefused
	}
	return OutcomeFailed
}

// Record appends e to the audit log, stamped now when e.At is zero. A non-ok outcome's detail
// gets the error's code and rule (never internal detail).
func (s *Service) Record(ctx context.Context, e Event, err error) error {
	if e.At.IsZero() {
		e.At = s.stamp()
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeOf(err)
	}
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	if err != nil {
		e.Detail["code"] = string(apperr.CodeOf(err))
		if r := apperr.RuleOf(err); r != "" {
			e.Detail["rule"] = r
		}
		e.Detail["message"] = apperr.Public(err)
	}
	_, xerr := s.pool.Exec(context.WithoutCancel(ctx), `INSERT INTO audit_event
		(operation_id, at, actor, actor_role, action, target, outcome, detail, request_id, client)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		s.op, e.At, e.Actor, e.ActorRole, e.Action, e.Target, e.Outcome, e.Detail, e.RequestID, e.Client)
	return db.Translate("auth.Record", xerr)
}

// AuditFilter narrows the audit log. Zero fields match everything.
type AuditFilter struct {
	Actor  string
	Action string // an exact action, or a prefix ending in "." (claims.)
	Target string
	Before int64 // only events with a smaller id (paging backwards)
	Limit  int   // default 100, at most 1000
}

// Events returns the audit log, newest first, as by. Reading it is part of checking the books:
// access's verify_ledger right (auditors and programme managers; not finance officers, since
// the log spans every authority, nor admins, since it carries claim figures).
func (s *Service) Events(ctx context.Context, by access.User, f AuditFilter) ([]Event, error) {
	if err := access.Can(by, access.VerifyLedger, ""); err != nil {
		return nil, err
	}
	return s.events(ctx, f, false)
}

// AccountAction reports whether an audited action is an account event (AccountEvents): a
// sign-in or sign-out, or a change to users or tokens. The query of AccountEvents says the same.
func AccountAction(action string) bool {
	return action == "signin" || action == "signout" || strings.HasPrefix(action, "users.") || strings.HasPrefix(action, "tokens.")
}

// AccountEvents returns the account events of the audit log, newest first, as by (who must be
// allowed to read_account_audit: admins). Account events are sign-ins and sign-outs (signin,
// signout) and changes to users and tokens (users.…, tokens.…): what administering them needs,
// and nothing about officers, lines or claims. f narrows them further.
func (s *Service) AccountEvents(ctx context.Context, by access.User, f AuditFilter) ([]Event, error) {
	if err := access.Can(by, access.ReadAccountAudit, ""); err != nil {
		return nil, err
	}
	return s.events(ctx, f, true)
}

// events reads the audit log through f, only account events when accounts.
func (s *Service) events(ctx context.Context, f AuditFilter, accounts bool) ([]Event, error) {
	switch {
	case f.Limit < 0 || f.Limit > 1000:
		return nil, apperr.New(apperr.Invalid, apperr.RuleFormat, "limit %d is not a page size from 1 to %d", f.Limit, 1000)
	case f.Before < 0:
		return nil, apperr.New(apperr.Invalid, apperr.RuleFormat, "before %d is not an event id", f.Before)
	case f.Limit == 0:
		f.Limit = 100
	}
	actionPrefix := ""
	action := f.Action
	if len(action) > 0 && action[len(action)-1] == '.' {
		actionPrefix, action = action, ""
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor, actor_role, action, target, outcome, detail, request_id, client
		FROM audit_event WHERE operation_id = $1
		AND ($2 = '' OR actor = $2) AND ($3 = '' OR action = $3) AND ($4 = '' OR starts_with(action, $4))
		AND ($5 = '' OR target = $5) AND ($6 = 0 OR id < $6)
		AND (NOT $8 OR action IN ('signin', 'signout') OR starts_with(action, 'users.') OR starts_with(action, 'tokens.'))
		ORDER BY id DESC LIMIT $7`, s.op, f.Actor, action, actionPrefix, f.Target, f.Before, f.Limit, accounts)
	if err != nil {
		return nil, db.Translate("auth.Events", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.ActorRole, &e.Action, &e.Target, &e.Outcome, &e.Detail, &e.RequestID, &e.Client)
		return e, err
	})
	return out, db.Translate("auth.Events", err)
}
