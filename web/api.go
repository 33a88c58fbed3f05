package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
	"github.com/ccr-infuse/infuse/reports"
)

// apiRoutes is the JSON API: everything the command line does, for scripts and the UI's
// progressive enhancement. Every route but the OpenAPI document's needs a signed-in caller.
func (s *Server) apiRoutes() []route {
	return []route{
		{method: "GET", pattern: "/api/openapi.json", handler: s.openAPI, public: true,
			doc: &opDoc{Tag: "meta", Summary: "This API's OpenAPI 3 document"}},
		{method: "GET", pattern: "/api/v1/me", handler: s.apiMe,
			doc: &opDoc{Tag: "people", Summary: "The signed-in user", Response: "User"}},

		{method: "GET", pattern: "/api/v1/officers", action: access.ReadRecords, handler: listAPI("officers", s.cfg.Match.Officers, officerOut),
			doc: &opDoc{Tag: "records", Summary: "The officers the caller may read, newest first, with their rate versions", Response: "OfficerList",
				Query: []string{"authority", "payroll_ref", "before", "limit"}}},
		{method: "GET", pattern: "/api/v1/officers/{authority}/{payroll_ref}", action: access.ReadRecords, handler: s.apiOfficer,
			doc: &opDoc{Tag: "records", Summary: "An officer and its rate versions", Response: "Officer"}},
		{method: "POST", pattern: "/api/v1/officers", action: access.ImportOfficers, handler: s.apiRecordOfficer,
			doc: &opDoc{Tag: "records", Summary: "Record an officer (if new) and a rate version (one officers.csv row)", Request: "OfficerInput", Response: "Officer", Created: true}},
		{method: "POST", pattern: "/api/v1/time-entries", action: access.RecordTime, handler: s.apiRecordTime,
			doc: &opDoc{Tag: "records", Summary: "Record one officer time entry (V1–V8)", Request: "TimeInput", Response: "TimeEntry", Created: true, Replay: true}},
		{method: "GET", pattern: "/api/v1/time-entries", action: access.ReadRecords, handler: listAPI("time_entries", s.cfg.Match.TimeEntries, s.timeOut),
			doc: &opDoc{Tag: "records", Summary: "The time entries the caller may read, newest first", Response: "TimeEntryList",
				Query: []string{"authority", "payroll_ref", "period", "status", "before", "limit"}}},
		{method: "GET", pattern: "/api/v1/time-entries/{id}", action: access.ReadRecords, handler: s.apiTimeEntry,
			doc: &opDoc{Tag: "records", Summary: "A time entry", Response: "TimeEntry"}},
		{method: "POST", pattern: "/api/v1/expenditure", action: access.RecordExpenditure, handler: s.apiRecordExpenditure,
			doc: &opDoc{Tag: "records", Summary: "Record one cash expenditure line", Request: "ExpenditureInput", Response: "Expenditure", Created: true, Replay: true}},
		{method: "GET", pattern: "/api/v1/expenditure", action: access.ReadClaims, handler: listAPI("expenditure", s.cfg.Match.ExpenditureLines, s.expenditureOut),
			doc: &opDoc{Tag: "records", Summary: "The expenditure lines and credit notes, newest first (the programme's cash: read with the claims)",
				Response: "ExpenditureList", Query: []string{"heading", "period", "status", "before", "limit"}}},
		{method: "GET", pattern: "/api/v1/expenditure/{id}", action: access.ReadClaims, handler: s.apiExpenditure,
			doc: &opDoc{Tag: "records", Summary: "An expenditure line", Response: "Expenditure"}},
		{method: "POST", pattern: "/api/v1/imports/{kind}", handler: s.apiImport, upload: true,
			doc: &opDoc{Tag: "records", Summary: "Import a CSV file (kind: officers, time or expenditure) as a multipart upload (field file); all or nothing", Upload: true, Response: "ImportResult"}},
		{method: "POST", pattern: "/api/v1/corrections", action: access.Correct, handler: s.apiCorrect,
			doc: &opDoc{Tag: "records", Summary: "Reverse a time entry or expenditure line, with a reason", Request: "CorrectionInput", Response: "Correction", Created: true}},

		{method: "GET", pattern: "/api/v1/claims", action: access.ReadClaims, handler: s.apiClaims,
			doc: &opDoc{Tag: "claims", Summary: "Every compiled claim (claim JSON of interfaces.md), in period order", Response: "ClaimList"}},
		{method: "GET", pattern: "/api/v1/claims/{period}", action: access.ReadClaims, handler: s.apiClaim,
			doc: &opDoc{Tag: "claims", Summary: "A claim's figures, exactly as interfaces.md promises", Response: "Claim"}},
		{method: "POST", pattern: "/api/v1/claims/{period}/compile", action: access.CompileClaim, handler: s.apiClaimStep("compile"),
			doc: &opDoc{Tag: "claims", Summary: "Compile (or recompile) the draft claim", Response: "Claim"}},
		{method: "POST", pattern: "/api/v1/claims/{period}/review", action: access.ReviewClaim, handler: s.apiClaimStep("review"),
			doc: &opDoc{Tag: "claims", Summary: "Four-eyes review of the draft claim (R3.13); with compiled_at, of the compilation the reviewer read (refused, CL4, if it has been recompiled since)", Request: "ReviewInput", RequestOptional: true, Response: "Claim"}},
		{method: "POST", pattern: "/api/v1/claims/{period}/submit", action: access.SubmitClaim, handler: s.apiClaimStep("submit"),
			doc: &opDoc{Tag: "claims", Summary: "Submit the reviewed claim to WEFO (locks the period for ever)", Response: "Claim"}},
		{method: "POST", pattern: "/api/v1/claims/{period}/decision", action: access.RecordDecision, handler: s.apiClaimStep("decide"),
			doc: &opDoc{Tag: "claims", Summary: "Record WEFO's decision on a submitted claim", Request: "DecisionInput", Response: "Claim"}},
		{method: "POST", pattern: "/api/v1/claims/{period}/payment", action: access.RecordPayment, handler: s.apiClaimStep("pay"),
			doc: &opDoc{Tag: "claims", Summary: "Record WEFO's payment of an approved claim", Request: "PaymentInput", Response: "Claim"}},
		{method: "GET", pattern: "/api/v1/claims/{period}/events", action: access.ReadClaims, handler: s.apiClaimEvents,
			doc: &opDoc{Tag: "claims", Summary: "A claim's history: every state change with who and when", Response: "EventList"}},
		{method: "GET", pattern: "/api/v1/claims/{period}/lines", action: access.ReadClaims, handler: s.apiClaimLines,
			doc: &opDoc{Tag: "claims", Summary: "Drill-down (R7.1): the lines booked in the claim's period with their ledger entries and evidence", Response: "Lines",
				Query: []string{"heading", "authority", "late"}}},
		{method: "GET", pattern: "/api/v1/claims/{period}/pack/{file}", action: access.DownloadPack, handler: s.apiPackFile,
			doc: &opDoc{Tag: "claims", Summary: "A stored pack file (claim.xlsx, claim.pdf or manifest.json): for a submitted claim, exactly what was submitted", Produces: []string{packTypes[reports.NameXLSX], packTypes[reports.NamePDF], packTypes[reports.NameManifest]}}},

		{method: "POST", pattern: "/api/v1/ledger/verify", action: access.VerifyLedger, handler: s.apiVerify,
			doc: &opDoc{Tag: "ledger", Summary: "Seal the entries waiting for the chain, then verify the chain, every balance and the invariants; the run is recorded in the audit log", Response: "Verification"}},
		{method: "GET", pattern: "/api/v1/ledger/entries/{id}", action: access.VerifyLedger, handler: s.apiEntry,
			doc: &opDoc{Tag: "ledger", Summary: "A ledger entry and its postings", Response: "Entry"}},
		{method: "GET", pattern: "/api/v1/audit", action: access.VerifyLedger, handler: s.apiAudit,
			doc: &opDoc{Tag: "ledger", Summary: "The audit log, newest first (query: actor, action, target, before, limit)", Response: "AuditList"}},
		{method: "GET", pattern: "/api/v1/audit/accounts", action: access.ReadAccountAudit, handler: s.apiAccountAudit,
			doc: &opDoc{Tag: "people", Summary: "The audit log's sign-ins, sign-outs and changes to users and tokens, newest first (query: actor, action, target, before, limit)", Response: "AuditList"}},

		{method: "GET", pattern: "/api/v1/users", action: access.ManageUsers, handler: s.apiUsers,
			doc: &opDoc{Tag: "people", Summary: "Every user", Response: "UserList"}},
		{method: "POST", pattern: "/api/v1/users", action: access.ManageUsers, handler: s.apiAddUser,
			doc: &opDoc{Tag: "people", Summary: "Add a user", Request: "UserInput", Response: "User", Created: true}},
		{method: "PUT", pattern: "/api/v1/users/{email}/password", action: access.ManageUsers, handler: s.apiSetPassword,
			doc: &opDoc{Tag: "people", Summary: "Set a user's password (ends their sessions)", Request: "PasswordInput", NoContent: true}},
		{method: "POST", pattern: "/api/v1/users/{email}/disable", action: access.ManageUsers, handler: s.apiSetDisabled(true),
			doc: &opDoc{Tag: "people", Summary: "Disable a user (a leaver): they can no longer sign in, and their sessions and tokens end (AU6)", Response: "User"}},
		{method: "POST", pattern: "/api/v1/users/{email}/enable", action: access.ManageUsers, handler: s.apiSetDisabled(false),
			doc: &opDoc{Tag: "people", Summary: "Enable a disabled user again (they sign in anew; revoked tokens stay revoked)", Response: "User"}},
		{method: "GET", pattern: "/api/v1/tokens", action: access.ManageUsers, handler: s.apiTokens,
			doc: &opDoc{Tag: "people", Summary: "Every bearer token (never its secret)", Response: "TokenList"}},
		{method: "POST", pattern: "/api/v1/tokens", action: access.ManageUsers, handler: s.apiCreateToken,
			doc: &opDoc{Tag: "people", Summary: "Create a bearer token acting as the caller (never as another user: AU5); its secret is in this answer only", Request: "TokenInput", Response: "NewToken", Created: true}},
		{method: "DELETE", pattern: "/api/v1/tokens/{id}", action: access.ManageUsers, handler: s.apiRevokeToken,
			doc: &opDoc{Tag: "people", Summary: "Revoke a bearer token", NoContent: true}},
	}
}

// text is a JSON value given as a string or a bare number, kept as its text so that money and
// hours never pass through a float.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*t = text(n.String())
	return nil
}

func parseDate(field, s string) (time.Time, error) {
	d, err := programme.ParseDate(strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, apperr.New(apperr.Invalid, match.RuleFormat, "%s %q is not a date (YYYY-MM-DD)", field, s).On(field)
	}
	return d, nil
}

func money(d decimal.Decimal) string { return d.StringFixed(2) }

func dateText(t time.Time) string { return t.Format("2006-01-02") }

// audit appends to the audit log what the caller did to target and how it ended. An action
// taken with a bearer token records the token's id in the detail (token_id), so that what a
// token did can be told from what its user did in a session. A failure to write the log is
// logged, not shown: the action itself has already happened or failed.
func (s *Server) audit(r *http.Request, action, target string, detail map[string]any, err error) {
	if s.cfg.Auth == nil {
		return
	}
	st := stateOf(r)
	e := auth.Event{Action: action, Target: target, Detail: detail, RequestID: st.id, Client: st.client}
	if st.user != nil {
		e.Actor, e.ActorRole = st.user.Email, string(st.user.Role)
	}
	if st.viaToken {
		if e.Detail == nil {
			e.Detail = map[string]any{}
		}
		e.Detail["token_id"] = st.tokenID
	}
	if xerr := s.cfg.Auth.Record(r.Context(), e, err); xerr != nil {
		s.log.Error("audit log write failed", "request_id", st.id, "action", action, "err", xerr)
	}
}

// ---- people ----

type userJSON struct {
	Email     string `json:"email"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	Authority string `json:"authority,omitempty"`
}

// userOutJSON is a user as the API gives one.
type userOutJSON struct {
	userJSON
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	DisabledBy string     `json:"disabled_by,omitempty"`
}

func userOut(u access.User) userOutJSON {
	return userOutJSON{userJSON: userJSON{Email: u.Email, Name: u.Name, Role: string(u.Role), Authority: u.Authority},
		DisabledAt: u.DisabledAt, DisabledBy: u.DisabledBy}
}

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, userOut(user(r)))
	return nil
}

func (s *Server) apiUsers(w http.ResponseWriter, r *http.Request) error {
	if err := authorize(r, access.ManageUsers, ""); err != nil {
		return err
	}
	us, err := access.Users(r.Context(), s.cfg.Pool, s.op())
	if err != nil {
		return err
	}
	out := make([]userOutJSON, len(us))
	for i, u := range us {
		out[i] = userOut(u)
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
	return nil
}

func (s *Server) op() string {
	if s.cfg.Programme != nil {
		return s.cfg.Programme.OperationID
	}
	return ""
}

func (s *Server) knownAuthority(code string) bool {
	_, ok := s.cfg.Programme.Authority(code)
	return ok
}

func (s *Server) addUser(r *http.Request, in userJSON) (access.User, error) {
	if err := authorize(r, access.ManageUsers, ""); err != nil {
		return access.User{}, err
	}
	u, err := access.AddUser(r.Context(), s.cfg.Pool, s.op(), user(r),
		access.User{Email: in.Email, Name: in.Name, Role: access.Role(in.Role), Authority: in.Authority}, s.knownAuthority, s.now())
	s.audit(r, "users.add", access.NormalizeEmail(in.Email), map[string]any{"role": in.Role, "authority": in.Authority}, err)
	return u, err
}

func (s *Server) apiAddUser(w http.ResponseWriter, r *http.Request) error {
	var in userJSON
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	u, err := s.addUser(r, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, userOut(u))
	return nil
}

func (s *Server) setPassword(r *http.Request, email, password string) error {
	if err := authorize(r, access.ManageUsers, ""); err != nil {
		return err
	}
	err := s.cfg.Auth.SetPassword(r.Context(), user(r), email, password)
	s.audit(r, "users.password", access.NormalizeEmail(email), nil, err)
	return err
}

func (s *Server) apiSetPassword(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.setPassword(r, r.PathValue("email"), in.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setDisabled disables the user with email (disable true) or enables them, as the caller.
func (s *Server) setDisabled(r *http.Request, email string, disable bool) (access.User, error) {
	if err := authorize(r, access.ManageUsers, ""); err != nil {
		return access.User{}, err
	}
	u, err := s.cfg.Auth.SetDisabled(r.Context(), user(r), email, disable)
	action := "users.enable"
	if disable {
		action = "users.disable"
	}
	s.audit(r, action, access.NormalizeEmail(email), nil, err)
	return u, err
}

func (s *Server) apiSetDisabled(disable bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		u, err := s.setDisabled(r, r.PathValue("email"), disable)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, userOut(u))
		return nil
	}
}

type tokenJSON struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	User       string     `json:"user"`
	Role       string     `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
	Secret     string     `json:"token,omitempty"`
}

func tokenOut(t auth.Token) tokenJSON {
	return tokenJSON{ID: t.ID, Name: t.Name, User: t.User, Role: string(t.Role), CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy,
		LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt, RevokedBy: t.RevokedBy}
}

func (s *Server) apiTokens(w http.ResponseWriter, r *http.Request) error {
	if err := authorize(r, access.ManageUsers, ""); err != nil {
		return err
	}
	ts, err := s.cfg.Auth.Tokens(r.Context())
	if err != nil {
		return err
	}
	out := make([]tokenJSON, len(ts))
	for i, t := range ts {
		out[i] = tokenOut(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

// createToken creates a token for the caller's own account (email, when given, must be the
// caller's: auth refuses a token for anyone else, AU5).
func (s *Server) createToken(r *http.Request, email, name string) (string, auth.Token, error) {
	if err := authorize(r, access.ManageUsers, ""); err != nil {
		return "", auth.Token{}, err
	}
	if strings.TrimSpace(email) == "" {
		email = user(r).Email
	}
	secret, t, err := s.cfg.Auth.CreateToken(r.Context(), user(r), email, name)
	s.audit(r, "tokens.create", access.NormalizeEmail(email), map[string]any{"name": name, "id": t.ID}, err)
	return secret, t, err
}

func (s *Server) apiCreateToken(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email string `json:"email"` // optional: the caller's own
		Name  string `json:"name"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	secret, t, err := s.createToken(r, in.Email, in.Name)
	if err != nil {
		return err
	}
	out := tokenOut(t)
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) revokeToken(r *http.Request, idText string) error {
	if err := authorize(r, access.ManageUsers, ""); err != nil {
		return err
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return apperr.New(apperr.NotFound, apperr.RuleRef, "there is no token %q", idText)
	}
	err = s.cfg.Auth.RevokeToken(r.Context(), user(r), id)
	s.audit(r, "tokens.revoke", idText, nil, err)
	return err
}

func (s *Server) apiRevokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.revokeToken(r, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- records (package match) ----

type versionJSON struct {
	ValidFrom  string `json:"valid_from"`
	AnnualCost string `json:"annual_cost"`
	FTE        string `json:"fte"`
	HourlyRate string `json:"hourly_rate"`
}

type officerJSON struct {
	ID         int64         `json:"id"`
	Authority  string        `json:"authority"`
	PayrollRef string        `json:"payroll_ref"`
	Name       string        `json:"name"`
	Versions   []versionJSON `json:"rate_versions"`
}

func officerOut(o match.Officer) officerJSON {
	out := officerJSON{ID: o.ID, Authority: o.Authority, PayrollRef: o.PayrollRef, Name: o.Name, Versions: []versionJSON{}}
	for _, v := range o.Versions {
		out.Versions = append(out.Versions, versionJSON{ValidFrom: dateText(v.ValidFrom), AnnualCost: money(v.AnnualCost),
			FTE: v.FTE.String(), HourlyRate: v.HourlyRate.StringFixed(4)})
	}
	return out
}

func (s *Server) apiOfficer(w http.ResponseWriter, r *http.Request) error {
	authority := r.PathValue("authority")
	if err := authorize(r, access.ReadRecords, authority); err != nil {
		return err
	}
	o, err := s.cfg.Match.Officer(r.Context(), authority, r.PathValue("payroll_ref"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, officerOut(o))
	return nil
}

type officerInputJSON struct {
	Authority  string `json:"authority"`
	PayrollRef string `json:"payroll_ref"`
	Name       string `json:"name"`
	ValidFrom  string `json:"valid_from"`
	AnnualCost text   `json:"annual_cost"`
	FTE        text   `json:"fte"`
}

func (in officerInputJSON) parse() (match.OfficerInput, error) {
	out := match.OfficerInput{Authority: strings.TrimSpace(in.Authority), PayrollRef: in.PayrollRef, Name: in.Name}
	var err error
	if out.ValidFrom, err = parseDate("valid_from", in.ValidFrom); err != nil {
		return out, err
	}
	if out.AnnualCost, err = match.ParseMoney(string(in.AnnualCost)); err != nil {
		return out, err
	}
	out.FTE, err = match.ParseFTE(string(in.FTE))
	return out, err
}

func (s *Server) recordOfficer(r *http.Request, in officerInputJSON) (match.Officer, error) {
	if err := authorize(r, access.ImportOfficers, strings.TrimSpace(in.Authority)); err != nil {
		s.audit(r, "officers.record", in.Authority+"/"+in.PayrollRef, nil, err)
		return match.Officer{}, err
	}
	mi, err := in.parse()
	if err != nil {
		return match.Officer{}, err
	}
	o, err := s.cfg.Match.RecordOfficer(r.Context(), user(r), mi)
	s.audit(r, "officers.record", mi.Authority+"/"+mi.PayrollRef, map[string]any{"valid_from": in.ValidFrom}, err)
	return o, err
}

func (s *Server) apiRecordOfficer(w http.ResponseWriter, r *http.Request) error {
	var in officerInputJSON
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	o, err := s.recordOfficer(r, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, officerOut(o))
	return nil
}

type timeInputJSON struct {
	Authority   string `json:"authority"`
	PayrollRef  string `json:"payroll_ref"`
	WorkDate    string `json:"work_date"`
	Hours       text   `json:"hours"`
	Activity    string `json:"activity"`
	EvidenceRef string `json:"evidence_ref"`
	ApprovedBy  string `json:"approved_by"`
}

func (in timeInputJSON) parse() (match.TimeInput, error) {
	out := match.TimeInput{Authority: strings.TrimSpace(in.Authority), PayrollRef: in.PayrollRef, Activity: in.Activity,
		EvidenceRef: in.EvidenceRef, ApprovedBy: in.ApprovedBy}
	var err error
	if out.WorkDate, err = parseDate("work_date", in.WorkDate); err != nil {
		return out, err
	}
	out.Hours, err = match.ParseHours(string(in.Hours))
	return out, err
}

type timeEntryJSON struct {
	ID            int64  `json:"id"`
	Authority     string `json:"authority"`
	PayrollRef    string `json:"payroll_ref"`
	OfficerName   string `json:"officer_name"`
	WorkDate      string `json:"work_date"`
	Hours         string `json:"hours"`
	Activity      string `json:"activity"`
	EvidenceRef   string `json:"evidence_ref"`
	ApprovedBy    string `json:"approved_by"`
	RateValidFrom string `json:"rate_valid_from"`
	Amount        string `json:"amount"`
	EntryID       int64  `json:"entry_id"`
	Period        string `json:"period"`
	RecordedAt    string `json:"recorded_at"`
	RecordedBy    string `json:"recorded_by"`
	ReversedBy    int64  `json:"reversed_by,omitempty"`
	Replayed      bool   `json:"replayed,omitempty"`
	RelatesTo     string `json:"relates_to,omitempty"` // for a late item, the earlier period its work date lies in
}

func (s *Server) timeOut(e match.TimeEntry) timeEntryJSON {
	return timeEntryJSON{ID: e.ID, Authority: e.Authority, PayrollRef: e.PayrollRef, OfficerName: e.OfficerName,
		WorkDate: dateText(e.WorkDate), Hours: e.Hours.StringFixed(2), Activity: e.Activity, EvidenceRef: e.EvidenceRef,
		ApprovedBy: e.ApprovedBy, RateValidFrom: dateText(e.RateValidFrom), Amount: money(e.Amount), EntryID: e.EntryID,
		Period: e.Period, RecordedAt: e.RecordedAt.UTC().Format(time.RFC3339), RecordedBy: e.RecordedBy,
		ReversedBy: e.ReversedBy, Replayed: e.Replayed, RelatesTo: s.relatesTo(e.WorkDate, e.Period)}
}

// relatesTo gives the claim period a line's date lies in when the line is booked in a later
// period, its own being locked (a late item, domain.md §6), and "" when it is booked in its own.
func (s *Server) relatesTo(d time.Time, booked string) string {
	if own, ok := s.cfg.Programme.PeriodOf(d); ok && own.Code != booked {
		return own.Code
	}
	return ""
}

func (s *Server) recordTime(r *http.Request, in timeInputJSON) (match.TimeEntry, error) {
	if err := authorize(r, access.RecordTime, strings.TrimSpace(in.Authority)); err != nil {
		return match.TimeEntry{}, err
	}
	ti, err := in.parse()
	if err != nil {
		return match.TimeEntry{}, err
	}
	return s.cfg.Match.RecordTime(r.Context(), user(r), ti)
}

func (s *Server) apiRecordTime(w http.ResponseWriter, r *http.Request) error {
	var in timeInputJSON
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	e, err := s.recordTime(r, in)
	if err != nil {
		return err
	}
	writeRecorded(w, e.Replayed, s.timeOut(e))
	return nil
}

// writeRecorded answers a recording: 201 for a new line, 200 for an idempotent replay (V5) that
// returned the line recorded before.
func writeRecorded(w http.ResponseWriter, replayed bool, v any) {
	status := http.StatusCreated
	if replayed {
		status = http.StatusOK
	}
	writeJSON(w, status, v)
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, apperr.New(apperr.NotFound, apperr.RuleRef, "there is no %s %q", name, r.PathValue(name))
	}
	return id, nil
}

func (s *Server) apiTimeEntry(w http.ResponseWriter, r *http.Request) error {
	if err := authorize(r, access.ReadRecords, ""); err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	e, err := s.cfg.Match.ReadTimeEntry(r.Context(), user(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.timeOut(e))
	return nil
}

type expenditureInputJSON struct {
	Heading     string `json:"heading"`
	DefrayedOn  string `json:"defrayed_on"`
	Payee       string `json:"payee"`
	Description string `json:"description"`
	Amount      text   `json:"amount"`
	EvidenceRef string `json:"evidence_ref"`
	InvoiceRef  string `json:"invoice_ref"`
}

type expenditureJSON struct {
	ID          int64  `json:"id"`
	Heading     string `json:"heading"`
	DefrayedOn  string `json:"defrayed_on"`
	Payee       string `json:"payee"`
	Description string `json:"description"`
	Amount      string `json:"amount"`
	EvidenceRef string `json:"evidence_ref"`
	InvoiceRef  string `json:"invoice_ref"`
	Credits     int64  `json:"credits,omitempty"`
	EntryID     int64  `json:"entry_id"`
	Period      string `json:"period"`
	RecordedAt  string `json:"recorded_at"`
	RecordedBy  string `json:"recorded_by"`
	ReversedBy  int64  `json:"reversed_by,omitempty"`
	Replayed    bool   `json:"replayed,omitempty"`
	RelatesTo   string `json:"relates_to,omitempty"` // for a late item, the earlier period its defrayal date lies in
}

func (s *Server) expenditureOut(e match.Expenditure) expenditureJSON {
	return expenditureJSON{ID: e.ID, Heading: e.Heading, DefrayedOn: dateText(e.DefrayedOn), Payee: e.Payee,
		Description: e.Description, Amount: money(e.Amount), EvidenceRef: e.EvidenceRef, InvoiceRef: e.InvoiceRef,
		Credits: e.Credits, EntryID: e.EntryID, Period: e.Period, RecordedAt: e.RecordedAt.UTC().Format(time.RFC3339),
		RecordedBy: e.RecordedBy, ReversedBy: e.ReversedBy, Replayed: e.Replayed, RelatesTo: s.relatesTo(e.DefrayedOn, e.Period)}
}

func (s *Server) recordExpenditure(r *http.Request, in expenditureInputJSON) (match.Expenditure, error) {
	if err := authorize(r, access.RecordExpenditure, ""); err != nil {
		return match.Expenditure{}, err
	}
	ei := match.ExpenditureInput{Heading: in.Heading, Payee: in.Payee, Description: in.Description,
		EvidenceRef: in.EvidenceRef, InvoiceRef: in.InvoiceRef}
	var err error
	if ei.DefrayedOn, err = parseDate("defrayed_on", in.DefrayedOn); err != nil {
		return match.Expenditure{}, err
	}
	if ei.Amount, err = match.ParseMoney(string(in.Amount)); err != nil {
		return match.Expenditure{}, err
	}
	return s.cfg.Match.RecordExpenditure(r.Context(), user(r), ei)
}

func (s *Server) apiRecordExpenditure(w http.ResponseWriter, r *http.Request) error {
	var in expenditureInputJSON
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	e, err := s.recordExpenditure(r, in)
	if err != nil {
		return err
	}
	writeRecorded(w, e.Replayed, s.expenditureOut(e))
	return nil
}

func (s *Server) apiExpenditure(w http.ResponseWriter, r *http.Request) error {
	// Expenditure lines are the lead beneficiary's transaction list, read with the claims they
	// feed (and shown in every claim's drill-down).
	if err := authorize(r, access.ReadClaims, ""); err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	e, err := s.cfg.Match.Expenditure(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.expenditureOut(e))
	return nil
}

// importKinds maps an import kind to its access action.
var importKinds = map[string]access.Action{
	"officers":    access.ImportOfficers,
	"time":        access.ImportTime,
	"expenditure": access.ImportExpenditure,
}

type importJSON struct {
	Kind      string `json:"kind"`
	File      string `json:"file"`
	Rows      int64  `json:"rows"`
	Written   int64  `json:"written"`
	Replayed  int64  `json:"replayed"`
	Withdrawn int64  `json:"withdrawn"`
	Repeated  int64  `json:"repeated,omitempty"`
	Closure   int64  `json:"closure,omitempty"`
	Officers  int64  `json:"officers,omitempty"`
	ImportID  int64  `json:"import_id,omitempty"`
}

// runImport reads the multipart upload of r (field "file") and imports it as kind. It returns
// the file's bytes too, so that a page can show each rejected row beside its error.
func (s *Server) runImport(r *http.Request, kind string) (importJSON, []byte, error) {
	act, ok := importKinds[kind]
	if !ok {
		return importJSON{}, nil, apperr.New(apperr.NotFound, apperr.RuleRef, "there is no import of %q: officers, time or expenditure", kind)
	}
	// The role must allow the import at all; the authorities of the rows are checked by match,
	// row by row, through access.Can (V8).
	if err := authorize(r, act, ""); err != nil {
		s.audit(r, "import."+kind, "", nil, err)
		return importJSON{}, nil, err
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return importJSON{}, nil, err
		}
		return importJSON{}, nil, apperr.New(apperr.Invalid, RuleBody, "choose a CSV file to upload: none came in the upload's field \"file\"").On("file")
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return importJSON{}, nil, err
	}
	name := db.Clip(hdr.Filename, match.MaxFileName) // the browser's label: recorded, never refused
	opts := match.ImportOptions{Name: name}
	var res match.ImportResult
	by := user(r)
	switch kind {
	case "officers":
		res, err = s.cfg.Match.ImportOfficers(r.Context(), by, bytes.NewReader(data), opts)
	case "time":
		res, err = s.cfg.Match.ImportTime(r.Context(), by, bytes.NewReader(data), opts)
	case "expenditure":
		res, err = s.cfg.Match.ImportExpenditure(r.Context(), by, bytes.NewReader(data), opts)
	}
	detail := map[string]any{"file": name, "rows": res.Rows, "written": res.Written, "replayed": res.Replayed, "withdrawn": res.Withdrawn,
		"repeated": res.Repeated, "closure": res.Closure}
	if ie := match.AsImportError(err); ie != nil {
		detail["rejected_rows"] = len(ie.BadRows())
	}
	s.audit(r, "import."+kind, name, detail, err)
	return importJSON{Kind: kind, File: name, Rows: res.Rows, Written: res.Written, Replayed: res.Replayed,
		Withdrawn: res.Withdrawn, Repeated: res.Repeated, Closure: res.Closure, Officers: res.Officers, ImportID: res.ImportID}, data, err
}

func (s *Server) apiImport(w http.ResponseWriter, r *http.Request) error {
	res, _, err := s.runImport(r, r.PathValue("kind"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

type correctionInputJSON struct {
	TimeEntryID   int64  `json:"time_entry_id,omitempty"`
	ExpenditureID int64  `json:"expenditure_id,omitempty"`
	Reason        string `json:"reason"`
}

type correctionJSON struct {
	ID            int64  `json:"id"`
	TimeEntryID   int64  `json:"time_entry_id,omitempty"`
	ExpenditureID int64  `json:"expenditure_id,omitempty"`
	Reason        string `json:"reason"`
	EntryID       int64  `json:"entry_id"`
	Period        string `json:"period"`
	RecordedAt    string `json:"recorded_at"`
	RecordedBy    string `json:"recorded_by"`
}

func (s *Server) correct(r *http.Request, in correctionInputJSON) (match.Correction, error) {
	var c match.Correction
	var err error
	target := ""
	switch {
	case (in.TimeEntryID == 0) == (in.ExpenditureID == 0):
		err = apperr.New(apperr.Invalid, match.RuleCorr, "name exactly one line to reverse: time_entry_id or expenditure_id")
	case in.TimeEntryID != 0:
		target = "time_entry/" + strconv.FormatInt(in.TimeEntryID, 10)
		// The authority of the entry decides (V8): match asks access.Can with it. The role must
		// allow corrections at all.
		if err = authorize(r, access.Correct, ""); err == nil {
			c, err = s.cfg.Match.ReverseTime(r.Context(), user(r), in.TimeEntryID, in.Reason)
		}
	default:
		target = "expenditure/" + strconv.FormatInt(in.ExpenditureID, 10)
		if err = authorize(r, access.RecordExpenditure, ""); err == nil {
			c, err = s.cfg.Match.ReverseExpenditure(r.Context(), user(r), in.ExpenditureID, in.Reason)
		}
	}
	s.audit(r, "corrections.record", target, map[string]any{"reason": in.Reason}, err)
	return c, err
}

func (s *Server) apiCorrect(w http.ResponseWriter, r *http.Request) error {
	var in correctionInputJSON
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	c, err := s.correct(r, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, correctionJSON{ID: c.ID, TimeEntryID: c.TimeEntryID, ExpenditureID: c.ExpenditureID,
		Reason: c.Reason, EntryID: c.EntryID, Period: c.Period, RecordedAt: c.RecordedAt.UTC().Format(time.RFC3339),
		RecordedBy: c.RecordedBy})
	return nil
}

// ---- claims ----

// actor is the signed-in user, who acts on a claim.
func actor(r *http.Request) access.User { return user(r) }

func (s *Server) apiClaims(w http.ResponseWriter, r *http.Request) error {
	if err := authorize(r, access.ReadClaims, ""); err != nil {
		return err
	}
	cs, err := s.cfg.Claims.Claims(r.Context())
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []*claims.Claim{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"claims": cs})
	return nil
}

func (s *Server) apiClaim(w http.ResponseWriter, r *http.Request) error {
	if err := authorize(r, access.ReadClaims, ""); err != nil {
		return err
	}
	b, err := s.cfg.Claims.ClaimJSON(r.Context(), r.PathValue("period"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
	_, _ = w.Write([]byte{'\n'})
	return nil
}

// claimActions maps a claim step to its access action.
var claimActions = map[string]access.Action{
	"compile": access.CompileClaim,
	"review":  access.ReviewClaim,
	"submit":  access.SubmitClaim,
	"decide":  access.RecordDecision,
	"pay":     access.RecordPayment,
}

type decisionInputJSON struct {
	DecidedOn  string `json:"decided_on"`
	Approved   text   `json:"approved"`
	Disallowed text   `json:"disallowed"`
	Reason     string `json:"reason"`
	Heading    string `json:"heading"`
}

// reviewInputJSON names the compilation the reviewer read (the claim's compiled_at): a review
// of a claim recompiled since is refused (CL4). Without it, the current compilation is reviewed.
type reviewInputJSON struct {
	CompiledAt string `json:"compiled_at"`
}

func (in reviewInputJSON) parse() (time.Time, error) {
	if strings.TrimSpace(in.CompiledAt) == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(in.CompiledAt))
	if err != nil {
		return time.Time{}, apperr.New(apperr.Invalid, match.RuleFormat, "compiled_at %q is not a time (RFC 3339, as the claim gives it)", in.CompiledAt)
	}
	return t, nil
}

// stepInput is what a lifecycle step may take from its request.
type stepInput struct {
	dec decisionInputJSON
	pay paymentInputJSON
	rev reviewInputJSON
}

type paymentInputJSON struct {
	PaidOn string `json:"paid_on"`
	Amount text   `json:"amount"`
}

func amount(field string, t text, zero bool) (decimal.Decimal, error) {
	if zero && strings.TrimSpace(string(t)) == "" {
		return decimal.Zero, nil
	}
	d, err := match.ParseMoney(string(t)) // as a CSV file's amounts are read (R9.1)
	if e := apperr.As(err); e != nil {
		return decimal.Zero, e.On(field)
	}
	return d, err
}

func (in decisionInputJSON) parse() (claims.Decision, error) {
	var d claims.Decision
	var err error
	if d.DecidedOn, err = parseDate("decided_on", in.DecidedOn); err != nil {
		return d, err
	}
	if d.Approved, err = amount("approved", in.Approved, false); err != nil {
		return d, err
	}
	if d.Disallowed, err = amount("disallowed", in.Disallowed, true); err != nil {
		return d, err
	}
	d.Reason, d.Heading = in.Reason, in.Heading
	return d, nil
}

func (in paymentInputJSON) parse() (claims.Payment, error) {
	var p claims.Payment
	var err error
	if p.PaidOn, err = parseDate("paid_on", in.PaidOn); err != nil {
		return p, err
	}
	p.Amount, err = amount("amount", in.Amount, false)
	return p, err
}

// claimStep runs one lifecycle step of the claim of period as the caller and audits it.
func (s *Server) claimStep(r *http.Request, step, period string, in *stepInput) (*claims.Claim, error) {
	var c *claims.Claim
	err := authorize(r, claimActions[step], "")
	if err == nil {
		ctx, by := r.Context(), actor(r)
		switch step {
		case "compile":
			c, err = s.cfg.Claims.CompileWithPack(ctx, period, by)
		case "review":
			var seen time.Time
			if seen, err = in.rev.parse(); err == nil {
				c, err = s.cfg.Claims.ReviewCompilation(ctx, period, seen, by)
			}
		case "submit":
			c, err = s.cfg.Claims.Submit(ctx, period, by)
		case "decide":
			var d claims.Decision
			if d, err = in.dec.parse(); err == nil {
				c, err = s.cfg.Claims.Decide(ctx, period, d, by)
			}
		case "pay":
			var p claims.Payment
			if p, err = in.pay.parse(); err == nil {
				c, err = s.cfg.Claims.Pay(ctx, period, p, by)
			}
		}
	}
	detail := map[string]any{}
	if c != nil {
		detail["status"] = string(c.Status)
		detail["esf_due"] = money(c.Figures.ESFDue.Period)
		switch {
		case step == "decide" && c.Decision != nil:
			detail["decided_on"], detail["approved"] = c.Decision.DecidedOn.Format(time.DateOnly), money(c.Decision.Approved)
			detail["disallowed"], detail["reason"] = money(c.Decision.Disallowed), c.Decision.Reason
		case step == "pay" && c.Payment != nil:
			detail["paid_on"], detail["amount"] = c.Payment.PaidOn.Format(time.DateOnly), money(c.Payment.Amount)
		}
	}
	s.audit(r, "claims."+step, period, detail, err)
	return c, err
}

func (s *Server) apiClaimStep(step string) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in stepInput
		var err error
		switch step {
		case "decide":
			err = decodeJSON(r, &in.dec)
		case "pay":
			err = decodeJSON(r, &in.pay)
		case "review":
			if r.ContentLength != 0 { // the body is optional
				err = decodeJSON(r, &in.rev)
			}
		}
		if err != nil {
			return err
		}
		c, err := s.claimStep(r, step, r.PathValue("period"), &in)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, c)
		return nil
	}
}

func (s *Server) apiClaimEvents(w http.ResponseWriter, r *http.Request) error {
	if err := authorize(r, access.ReadClaims, ""); err != nil {
		return err
	}
	period := r.PathValue("period")
	if _, err := s.cfg.Claims.Claim(r.Context(), period); err != nil {
		return err
	}
	evs, err := s.cfg.Claims.Events(r.Context(), period)
	if err != nil {
		return err
	}
	out := make([]eventJSON, len(evs))
	for i, e := range evs {
		out[i] = eventJSON{ID: e.ID, Period: e.Period, Event: e.Event, Actor: e.Actor, ActorRole: e.Role, At: e.At, Detail: e.Detail}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
	return nil
}

// lines is the drill-down of a claim: its period's lines, filtered.
type lines struct {
	Period    string                   `json:"period"`
	Heading   string                   `json:"heading,omitempty"`
	Authority string                   `json:"authority,omitempty"`
	Cash      []reports.CashLine       `json:"cash"`
	Time      []reports.TimeLine       `json:"time"`
	Late      bool                     `json:"late_only,omitempty"`
	Findings  []reports.Finding        `json:"-"`
	Match     []reports.AuthorityMatch `json:"-"`
	// OwnOnly is the authority whose officer time alone the reader may see (a finance
	// officer's, V8), when the lines asked for include others'; the page says so.
	OwnOnly string `json:"-"`
	// The totals of the lines listed, for the page's totals rows.
	CashTotal, TimeHours, TimeTotal decimal.Decimal `json:"-"`
}

// claimLines reads the lines of the claim of period through its pack (claims builds it from the
// ledger at the claim's position), keeping those of heading and authority ("" for all). A
// finance officer sees only their own authority's officer time (V8).
func (s *Server) claimLines(r *http.Request, period, heading, authority string, lateOnly bool) (*lines, error) {
	if err := authorize(r, access.ReadClaims, ""); err != nil {
		return nil, err
	}
	if _, ok := s.cfg.Programme.Heading(heading); heading != "" && !ok {
		codes := make([]string, len(s.cfg.Programme.Headings))
		for i, h := range s.cfg.Programme.Headings {
			codes[i] = h.Code
		}
		return nil, apperr.New(apperr.Invalid, match.RuleRef, "heading %s is not one of %s", strconv.Quote(heading), strings.Join(codes, ", "))
	}
	if authority != "" {
		if _, ok := s.cfg.Programme.Authority(authority); !ok {
			return nil, apperr.New(apperr.Invalid, match.RuleRef, "authority %s is not one of the operation's authorities", strconv.Quote(authority))
		}
		if err := authorize(r, access.ReadRecords, authority); err != nil {
			return nil, err
		}
	}
	p, err := s.cfg.Claims.Pack(r.Context(), period)
	if err != nil {
		return nil, err
	}
	out := &lines{Period: period, Heading: heading, Authority: authority, Late: lateOnly,
		Cash: []reports.CashLine{}, Time: []reports.TimeLine{}}
	if heading == "" || (heading != programme.HeadingOfficerTime && heading != programme.HeadingIndirect) {
		for _, l := range p.Transactions {
			if (heading == "" || l.Heading == heading) && (!lateOnly || l.EffectivePeriod != l.BookingPeriod) {
				out.Cash = append(out.Cash, l)
				out.CashTotal = out.CashTotal.Add(l.Amount)
			}
		}
	}
	if heading == "" || heading == programme.HeadingOfficerTime {
		for _, l := range p.OfficerTime {
			if authority != "" && l.Authority != authority {
				continue
			}
			if authorize(r, access.ReadRecords, l.Authority) != nil {
				out.OwnOnly = user(r).Authority
				continue
			}
			if lateOnly && !l.Late {
				continue
			}
			out.Time = append(out.Time, l)
			out.TimeHours, out.TimeTotal = out.TimeHours.Add(l.Hours), out.TimeTotal.Add(l.Amount)
		}
	}
	return out, nil
}

func (s *Server) apiClaimLines(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	l, err := s.claimLines(r, r.PathValue("period"), q.Get("heading"), q.Get("authority"), lateOnly(q))
	if err != nil {
		return err
	}
	out := linesJSON{Period: l.Period, Heading: l.Heading, Authority: l.Authority, Late: l.Late,
		Cash: make([]cashLineJSON, len(l.Cash)), Time: make([]timeLineJSON, len(l.Time))}
	for i, c := range l.Cash {
		out.Cash[i] = cashLineJSON{EntryID: c.EntryID, Heading: c.Heading, DefrayedOn: c.DefrayedOn.Format(time.DateOnly),
			Payee: c.Payee, Description: c.Description, Amount: money(c.Amount), EvidenceRef: c.EvidenceRef,
			InvoiceRef: c.InvoiceRef, BookingPeriod: c.BookingPeriod}
		if c.EffectivePeriod != c.BookingPeriod {
			out.Cash[i].Late, out.Cash[i].RelatesTo = true, c.EffectivePeriod
		}
	}
	for i, t := range l.Time {
		out.Time[i] = timeLineJSON{EntryID: t.EntryID, Authority: t.Authority, PayrollRef: t.PayrollRef, OfficerName: t.OfficerName,
			WorkDate: t.WorkDate.Format(time.DateOnly), Hours: t.Hours.StringFixed(2), Activity: t.Activity, Reverses: t.Reverses,
			Reason: t.Reason, RateValidFrom: t.RateValidFrom.Format(time.DateOnly), HourlyRate: t.HourlyRate, Amount: money(t.Amount),
			EvidenceRef: t.EvidenceRef, ApprovedBy: t.Approver, Late: t.Late, RelatesTo: t.RelatesTo}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// The claim's lines and history as the API gives them: snake_case keys, dates as YYYY-MM-DD,
// money and hours as strings with two decimals, as everywhere else in the API.
type linesJSON struct {
	Period    string         `json:"period"`
	Heading   string         `json:"heading,omitempty"`
	Authority string         `json:"authority,omitempty"`
	Late      bool           `json:"late_only,omitempty"`
	Cash      []cashLineJSON `json:"cash"`
	Time      []timeLineJSON `json:"time"`
}

type cashLineJSON struct {
	EntryID       int64  `json:"entry_id"`
	Heading       string `json:"heading"`
	DefrayedOn    string `json:"defrayed_on"`
	Payee         string `json:"payee"`
	Description   string `json:"description"`
	Amount        string `json:"amount"`
	EvidenceRef   string `json:"evidence_ref"`
	InvoiceRef    string `json:"invoice_ref"`
	BookingPeriod string `json:"booking_period"`
	Late          bool   `json:"late"`
	RelatesTo     string `json:"relates_to,omitempty"` // for a late item, the earlier period its defrayal date lies in
}

type timeLineJSON struct {
	EntryID       int64  `json:"entry_id"`
	Authority     string `json:"authority"`
	PayrollRef    string `json:"payroll_ref"`
	OfficerName   string `json:"officer_name"`
	WorkDate      string `json:"work_date"`
	Hours         string `json:"hours"`
	Activity      string `json:"activity"`
	Reverses      int64  `json:"reverses,omitempty"`
	Reason        string `json:"reason,omitempty"`
	RateValidFrom string `json:"rate_valid_from"`
	HourlyRate    string `json:"hourly_rate"`
	Amount        string `json:"amount"`
	EvidenceRef   string `json:"evidence_ref"`
	ApprovedBy    string `json:"approved_by"`
	Late          bool   `json:"late"`
	RelatesTo     string `json:"relates_to,omitempty"`
}

type eventJSON struct {
	ID        int64          `json:"id"`
	Period    string         `json:"period"`
	Event     string         `json:"event"`
	Actor     string         `json:"actor"`
	ActorRole string         `json:"actor_role"`
	At        time.Time      `json:"at"`
	Detail    map[string]any `json:"detail"`
}

// packTypes are the content types of the pack's files.
var packTypes = map[string]string{
	reports.NameXLSX:     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	reports.NamePDF:      "application/pdf",
	reports.NameManifest: "application/json",
}

// storedPack returns the files stored with the claim of period.
func (s *Server) storedPack(r *http.Request, period string) ([]reports.File, error) {
	if err := authorize(r, access.DownloadPack, ""); err != nil {
		return nil, err
	}
	files, _, err := s.cfg.Claims.StoredPack(r.Context(), period)
	return files, err
}

func (s *Server) apiPackFile(w http.ResponseWriter, r *http.Request) error {
	period, name := r.PathValue("period"), r.PathValue("file")
	ct, ok := packTypes[name]
	if !ok {
		return apperr.New(apperr.NotFound, apperr.RuleRef, "a pack has claim.xlsx, claim.pdf and manifest.json, not %q", name)
	}
	files, err := s.storedPack(r, period)
	if err != nil {
		return err
	}
	for _, f := range files {
		if f.Name == name {
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Content-Disposition", `attachment; filename="`+period+"-"+name+`"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(f.Data)))
			w.Header().Set("Digest", "sha-256="+f.SHA256)
			w.Header().Set("X-Content-SHA256", f.SHA256)
			_, _ = w.Write(f.Data)
			return nil
		}
	}
	return apperr.New(apperr.NotFound, apperr.RuleRef, "the pack of %s has no %s", period, name)
}

// ---- ledger ----

type verificationJSON struct {
	OK       bool     `json:"ok"`
	Entries  int64    `json:"entries"`
	Postings int64    `json:"postings"`
	Sealed   int64    `json:"sealed"`
	Waiting  int64    `json:"waiting"`
	HeadSeq  int64    `json:"head_seq"`
	HeadLink string   `json:"head_link"`
	Problems []string `json:"problems"`
	Seconds  float64  `json:"seconds"`
}

// verify seals the entries waiting for the chain, verifies the ledger and records the run in the
// audit log, as `infuse ledger verify` does. It changes things (the chain, the log) and reads the
// whole ledger, so it runs on POST only: never for a link followed, prefetched or crawled.
// It returns the report's problems too, for a page to render in its own language.
func (s *Server) verify(r *http.Request) (verificationJSON, []ledger.Problem, error) {
	if err := authorize(r, access.VerifyLedger, ""); err != nil {
		return verificationJSON{}, nil, err
	}
	if _, err := s.cfg.Ledger.Seal(r.Context()); err != nil {
		return verificationJSON{}, nil, err
	}
	rep, err := s.cfg.Ledger.Verify(r.Context())
	if err != nil {
		return verificationJSON{}, nil, err
	}
	out := verificationJSON{OK: rep.OK(), Entries: rep.Entries, Postings: rep.Postings, Sealed: rep.Sealed, Waiting: rep.Waiting,
		HeadSeq: rep.Head.Seq, HeadLink: hexString(rep.Head.Link), Problems: []string{}, Seconds: rep.Elapsed.Seconds()}
	for _, p := range rep.Problems {
		out.Problems = append(out.Problems, p.Kind+": "+p.Message)
	}
	s.audit(r, "ledger.verify", "", map[string]any{"ok": out.OK, "entries": out.Entries}, nil)
	return out, rep.Problems, nil
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func (s *Server) apiVerify(w http.ResponseWriter, r *http.Request) error {
	v, _, err := s.verify(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

type postingJSON struct {
	Account string `json:"account"`
	Amount  string `json:"amount"`
}

type entryJSON struct {
	ID            int64         `json:"id"`
	EffectiveDate string        `json:"effective_date"`
	Period        string        `json:"period"`
	Description   string        `json:"description"`
	Source        string        `json:"source"`
	Reference     string        `json:"reference"`
	Reverses      int64         `json:"reverses,omitempty"`
	RecordedAt    string        `json:"recorded_at"`
	RecordedBy    string        `json:"recorded_by"`
	Postings      []postingJSON `json:"postings"`
}

// entry returns ledger entry id for the drill-down. Entries span authorities, so reading one
// is the auditors' and programme managers' right (verify_ledger), not a finance officer's.
func (s *Server) entry(r *http.Request, idText string) (entryJSON, error) {
	if err := authorize(r, access.VerifyLedger, ""); err != nil {
		return entryJSON{}, err
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return entryJSON{}, apperr.New(apperr.NotFound, apperr.RuleRef, "there is no entry %q", idText)
	}
	e, err := s.cfg.Ledger.Entry(r.Context(), id)
	if err != nil {
		return entryJSON{}, err
	}
	out := entryJSON{ID: e.ID, EffectiveDate: dateText(e.EffectiveDate), Period: e.Period, Description: e.Description,
		Source: e.Source, Reference: e.Reference, Reverses: e.Reverses, RecordedAt: e.RecordedAt.UTC().Format(time.RFC3339),
		RecordedBy: e.RecordedBy}
	for _, p := range e.Postings {
		out.Postings = append(out.Postings, postingJSON{Account: p.Account, Amount: money(p.Amount)})
	}
	return out, nil
}

func (s *Server) apiEntry(w http.ResponseWriter, r *http.Request) error {
	e, err := s.entry(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

// auditLog reads the whole audit log (verify_ledger) or only its account events (an admin's
// read_account_audit).
type auditLog func(ctx context.Context, by access.User, f auth.AuditFilter) ([]auth.Event, error)

func (s *Server) auditEvents(r *http.Request, read auditLog) ([]auth.Event, error) {
	q := r.URL.Query()
	// Actors are recorded by their normalised email (or "system"), which the filter is too, so that
	// Rhian.Evans@Newport.example finds rhian.evans@newport.example.
	f := auth.AuditFilter{Actor: access.NormalizeEmail(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")), Target: q.Get("target")}
	if err := keysetPage(q, &f.Before, &f.Limit); err != nil {
		return nil, err
	}
	return read(r.Context(), user(r), f)
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) error {
	return s.writeAudit(w, r, access.VerifyLedger, s.cfg.Auth.Events)
}

func (s *Server) apiAccountAudit(w http.ResponseWriter, r *http.Request) error {
	return s.writeAudit(w, r, access.ReadAccountAudit, s.cfg.Auth.AccountEvents)
}

func (s *Server) writeAudit(w http.ResponseWriter, r *http.Request, a access.Action, read auditLog) error {
	if err := authorize(r, a, ""); err != nil {
		return err
	}
	evs, err := s.auditEvents(r, read)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []auth.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
	return nil
}
