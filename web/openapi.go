package web

import (
	"net/http"
	"regexp"
	"strings"
)

// opDoc documents one API route for the OpenAPI document. The document is built from the
// route lists themselves, so a route cannot be served undocumented; the test checks the
// document against the mux's registrations both ways.
type opDoc struct {
	Tag     string
	Summary string
	Request string // schema name of a JSON body
	// RequestOptional: the JSON body may be left out.
	RequestOptional bool
	Response        string   // schema name of the JSON answer
	Produces        []string // content types of a non-JSON answer
	Upload          bool     // a multipart upload with a file field
	Created         bool     // answers 201
	Replay          bool     // answers 200 with the record made before, for an identical request (idempotent replay, V5)
	NoContent       bool     // answers 204
	Query           []string // query parameters, described in queryParams
}

// queryParams describe the query parameters routes take.
var queryParams = map[string]map[string]any{
	"authority":   str("an authority's ISO code (GB-XXX); a finance officer may name only their own (V8)"),
	"payroll_ref": str("one officer's payroll reference"),
	"heading": {"type": "string", "enum": []string{"staff", "delivery", "other", "officer_time", "indirect"},
		"description": "a cost heading (lists of expenditure take staff, delivery or other)"},
	"late":   {"type": "string", "description": "1 (or true) for late items only"},
	"period": str("booking period, such as 2021Q3"),
	"status": {"type": "string", "enum": []string{"live", "reversed"}, "description": "lines not reversed, or reversed by a correction"},
	"before": {"type": "integer", "minimum": 1, "description": "the next_before of the previous page: rows with smaller ids"},
	"limit":  {"type": "integer", "minimum": 1, "maximum": 200, "default": 50, "description": "rows per page"},
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

func str(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }

// integer is the schema of an integer.
var integer = map[string]any{"type": "integer"}

func money2(desc string) map[string]any {
	return map[string]any{"type": "string", "pattern": `^-?\d+\.\d{2}$`, "description": desc}
}

func obj(required []string, props map[string]any) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func arrayOf(name string) map[string]any { return map[string]any{"type": "array", "items": ref(name)} }

// schemas are the document's named schemas.
func schemas() map[string]any {
	nextBefore := map[string]any{"type": "integer", "description": "the before of the next page; absent on the last page"}
	pair := obj([]string{"period", "cumulative"}, map[string]any{"period": money2("this period"), "cumulative": money2("up to and including this period")})
	return map[string]any{
		"Error": obj([]string{"code", "rule", "message", "request_id"}, map[string]any{
			"code":       map[string]any{"type": "string", "enum": []string{"invalid", "not_found", "conflict", "forbidden", "unauthenticated", "locked", "internal"}},
			"rule":       str("domain rule id (V4, F1, …), empty when none applies"),
			"message":    str("for people; never internal detail"),
			"request_id": str("quote it when reporting a problem"),
			"errors":     map[string]any{"type": "array", "items": ref("RowError")},
		}),
		"RowError": obj([]string{"row", "rule", "message"}, map[string]any{"row": map[string]any{"type": "integer", "description": "spreadsheet row: the header is row 1"},
			"rule": str("rule id"), "message": str("what is wrong")}),
		"Status": obj([]string{"status"}, map[string]any{"status": str("ok, ready, or why not")}),
		"User": obj([]string{"email", "name", "role"}, map[string]any{"email": str(""), "name": str(""),
			"role":        map[string]any{"type": "string", "enum": []string{"finance_officer", "programme_manager", "auditor", "admin"}},
			"authority":   str("a finance officer's authority (GB-XXX)"),
			"disabled_at": str("RFC 3339, when the user was disabled; absent while they are active (AU6)"),
			"disabled_by": str("who disabled the user; absent while they are active")}),
		"UserInput": obj([]string{"email", "name", "role"}, map[string]any{"email": str(""), "name": str(""),
			"role":      map[string]any{"type": "string", "enum": []string{"finance_officer", "programme_manager", "auditor", "admin"}},
			"authority": str("a finance officer's authority (GB-XXX)")}),
		"UserList":      obj([]string{"users"}, map[string]any{"users": arrayOf("User")}),
		"PasswordInput": obj([]string{"password"}, map[string]any{"password": map[string]any{"type": "string", "minLength": 12, "maxLength": 256}}),
		"TokenInput": obj(nil, map[string]any{"name": str("what the token is for"),
			"email": str("optional: the caller's own email. A token acts as the user who creates it; a token for another user is made by the operator on the server (infuse tokens create --email)")}),
		"Token": obj([]string{"id", "name", "user"}, map[string]any{"id": map[string]any{"type": "integer"}, "name": str(""), "user": str(""),
			"role": str(""), "created_at": str("RFC 3339"), "created_by": str(""), "last_used_at": str("RFC 3339 or null"),
			"revoked_at": str("RFC 3339 or null"), "revoked_by": str("")}),
		"NewToken":  map[string]any{"allOf": []any{ref("Token"), obj([]string{"token"}, map[string]any{"token": str("the secret: shown once, never again")})}},
		"TokenList": obj([]string{"tokens"}, map[string]any{"tokens": arrayOf("Token")}),
		"OfficerInput": obj([]string{"authority", "payroll_ref", "name", "valid_from", "annual_cost", "fte"}, map[string]any{
			"authority": str("GB-XXX"), "payroll_ref": str(""), "name": str(""), "valid_from": str("YYYY-MM-DD"),
			"annual_cost": money2("annual gross employment cost"), "fte": str("0 < fte ≤ 1")}),
		"Officer": obj([]string{"id", "authority", "payroll_ref", "name", "rate_versions"}, map[string]any{
			"id": map[string]any{"type": "integer"}, "authority": str(""), "payroll_ref": str(""), "name": str(""),
			"rate_versions": map[string]any{"type": "array", "items": obj(nil, map[string]any{"valid_from": str(""), "annual_cost": money2(""),
				"fte": str(""), "hourly_rate": str("R5.1, 4 decimal places")})}}),
		"TimeInput": obj([]string{"authority", "payroll_ref", "work_date", "hours", "activity", "evidence_ref", "approved_by"}, map[string]any{
			"authority": str(""), "payroll_ref": str(""), "work_date": str("YYYY-MM-DD"), "hours": str("decimal hours, at most 2 places"),
			"activity":     map[string]any{"type": "string", "enum": []string{"lab", "experiment", "coaching", "steering", "other"}},
			"evidence_ref": str(""), "approved_by": str("")}),
		"TimeEntry": obj([]string{"id", "amount", "entry_id", "period"}, map[string]any{"id": map[string]any{"type": "integer"},
			"authority": str(""), "payroll_ref": str(""), "officer_name": str(""), "work_date": str(""), "hours": str(""),
			"activity": str(""), "evidence_ref": str(""), "approved_by": str(""), "rate_valid_from": str(""), "amount": money2("R9.3a"),
			"entry_id": map[string]any{"type": "integer"}, "period": str("booking period"), "recorded_at": str(""), "recorded_by": str(""),
			"reversed_by": map[string]any{"type": "integer"}, "replayed": map[string]any{"type": "boolean"},
			"relates_to": str("for a late item (its own period locked), the earlier period its work date lies in")}),
		"ExpenditureInput": obj([]string{"heading", "defrayed_on", "payee", "description", "amount", "evidence_ref"}, map[string]any{
			"heading": map[string]any{"type": "string", "enum": []string{"staff", "delivery", "other"}}, "defrayed_on": str("YYYY-MM-DD"),
			"payee": str(""), "description": str(""), "amount": money2("negative for a credit note"), "evidence_ref": str(""),
			"invoice_ref": str("optional; a credit note names the invoice it credits")}),
		"Expenditure": obj([]string{"id", "amount", "entry_id", "period"}, map[string]any{"id": map[string]any{"type": "integer"},
			"heading": str(""), "defrayed_on": str(""), "payee": str(""), "description": str(""), "amount": money2(""),
			"evidence_ref": str(""), "invoice_ref": str(""), "credits": map[string]any{"type": "integer"},
			"entry_id": map[string]any{"type": "integer"}, "period": str("booking period"), "recorded_at": str(""), "recorded_by": str(""),
			"reversed_by": map[string]any{"type": "integer"}, "replayed": map[string]any{"type": "boolean"},
			"relates_to": str("for a late item (its own period locked), the earlier period its defrayal date lies in")}),
		"OfficerList":     obj([]string{"officers"}, map[string]any{"officers": arrayOf("Officer"), "next_before": nextBefore}),
		"TimeEntryList":   obj([]string{"time_entries"}, map[string]any{"time_entries": arrayOf("TimeEntry"), "next_before": nextBefore}),
		"ExpenditureList": obj([]string{"expenditure"}, map[string]any{"expenditure": arrayOf("Expenditure"), "next_before": nextBefore}),
		"ImportResult": obj([]string{"kind", "rows", "written", "replayed", "withdrawn"}, map[string]any{"kind": str(""), "file": str(""),
			"rows": map[string]any{"type": "integer"}, "written": map[string]any{"type": "integer"}, "replayed": map[string]any{"type": "integer", "description": "rows recorded before, not recorded again (withdrawn included)"},
			"withdrawn": map[string]any{"type": "integer", "description": "of replayed, rows identical to lines reversed since: not recorded again"},
			"repeated":  map[string]any{"type": "integer", "description": "of replayed, rows identical to an earlier row of the same file that is new: recorded once"},
			"closure":   map[string]any{"type": "integer", "description": "of written, lines booked in the closure period, which no claim covers: the final claim is submitted (tell the programme manager)"},
			"officers":  map[string]any{"type": "integer"}, "import_id": map[string]any{"type": "integer"}}),
		"CorrectionInput": obj([]string{"reason"}, map[string]any{"time_entry_id": map[string]any{"type": "integer"},
			"expenditure_id": map[string]any{"type": "integer"}, "reason": str("why the line is reversed")}),
		"Correction": obj([]string{"id", "entry_id", "period"}, map[string]any{"id": map[string]any{"type": "integer"},
			"time_entry_id": map[string]any{"type": "integer"}, "expenditure_id": map[string]any{"type": "integer"},
			"reason": str(""), "entry_id": map[string]any{"type": "integer"}, "period": str(""), "recorded_at": str(""), "recorded_by": str("")}),
		"Claim": obj([]string{"period", "claim_number", "status", "headings", "total_eligible", "esf_due", "match_by_authority", "late_items", "findings"},
			map[string]any{
				"period": str("2021Q3"), "claim_number": map[string]any{"type": "integer"},
				"status": map[string]any{"type": "string", "enum": []string{"draft", "reviewed", "submitted", "approved", "paid"}},
				"headings": obj([]string{"staff", "indirect", "delivery", "other", "officer_time"}, map[string]any{
					"staff": pair, "indirect": pair, "delivery": pair, "other": pair, "officer_time": pair}),
				"total_eligible": pair, "esf_due": pair,
				"match_by_authority": map[string]any{"type": "object", "description": "every authority, zeros included",
					"additionalProperties": obj([]string{"period", "cumulative", "target"}, map[string]any{"period": money2(""), "cumulative": money2(""), "target": money2("")})},
				"late_items": map[string]any{"type": "integer"},
				"findings": map[string]any{"type": "array", "items": obj([]string{"id", "severity", "message"}, map[string]any{
					"id": str("C1 … C8"), "severity": map[string]any{"type": "string", "enum": []string{"block", "warn", "info"}}, "message": str("")})},
			}),
		"ClaimList":     obj([]string{"claims"}, map[string]any{"claims": arrayOf("Claim")}),
		"DecisionInput": obj([]string{"decided_on", "approved"}, map[string]any{"decided_on": str("YYYY-MM-DD"), "approved": money2("ESF approved"), "disallowed": money2("eligible expenditure disallowed"), "reason": str("required when disallowed > 0"), "heading": str("heading of the disallowed expenditure")}),
		"ReviewInput":   obj(nil, map[string]any{"compiled_at": str("when the compilation the reviewer read was made: the time of the claim's last compiled event (GET /api/v1/claims/{period}/events), RFC 3339")}),
		"PaymentInput":  obj([]string{"paid_on", "amount"}, map[string]any{"paid_on": str("YYYY-MM-DD"), "amount": money2("")}),
		"EventList":     obj([]string{"events"}, map[string]any{"events": arrayOf("Event")}),
		"Event": obj([]string{"id", "period", "event", "actor", "actor_role", "at"}, map[string]any{"id": integer, "period": str(""),
			"event": str("compiled, reviewed, submitted, decided, paid, pack_stored"), "actor": str(""), "actor_role": str(""),
			"at": str("RFC 3339"), "detail": map[string]any{"type": "object"}}),
		"Lines": obj([]string{"period", "cash", "time"}, map[string]any{"period": str(""), "heading": str(""), "authority": str(""),
			"late_only": map[string]any{"type": "boolean"}, "cash": arrayOf("CashLine"), "time": arrayOf("TimeLine")}),
		"CashLine": obj([]string{"entry_id", "heading", "defrayed_on", "payee", "description", "amount", "evidence_ref", "invoice_ref", "booking_period", "late"}, map[string]any{
			"entry_id": integer, "heading": str(""), "defrayed_on": str("YYYY-MM-DD"), "payee": str(""), "description": str(""),
			"amount": money2("negative for a credit note"), "evidence_ref": str(""), "invoice_ref": str(""),
			"booking_period": str("the claim period it is booked in"), "relates_to": str("for a late item, the earlier period its defrayal date lies in"),
			"late": map[string]any{"type": "boolean", "description": "relates to an earlier period than it is booked in"}}),
		"TimeLine": obj([]string{"entry_id", "authority", "payroll_ref", "officer_name", "work_date", "hours", "activity", "rate_valid_from", "hourly_rate", "amount", "evidence_ref", "approved_by", "late"}, map[string]any{
			"entry_id": integer, "authority": str(""), "payroll_ref": str(""), "officer_name": str(""), "work_date": str("YYYY-MM-DD"),
			"hours": str("two decimals"), "activity": str("lab, experiment, coaching, steering or other"),
			"reverses": map[string]any{"type": "integer", "description": "for a reversal, the ledger entry it reverses"},
			"reason":   str("for a reversal, why"), "rate_valid_from": str("YYYY-MM-DD"), "hourly_rate": str("4 decimals (R5.1)"),
			"amount": money2("R9.3a"), "evidence_ref": str(""), "approved_by": str(""),
			"late": map[string]any{"type": "boolean"}, "relates_to": str("for a late item, the earlier period its work date lies in")}),
		"Verification": obj([]string{"ok"}, map[string]any{"ok": map[string]any{"type": "boolean"}, "entries": map[string]any{"type": "integer"},
			"postings": map[string]any{"type": "integer"}, "sealed": map[string]any{"type": "integer"}, "waiting": map[string]any{"type": "integer"},
			"head_seq": map[string]any{"type": "integer"}, "head_link": str("hex"), "problems": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			"seconds": map[string]any{"type": "number"}}),
		"Entry": obj([]string{"id", "postings"}, map[string]any{"id": map[string]any{"type": "integer"}, "effective_date": str(""), "period": str(""),
			"description": str(""), "source": str(""), "reference": str(""), "reverses": map[string]any{"type": "integer"}, "recorded_at": str(""),
			"recorded_by": str(""), "postings": map[string]any{"type": "array", "items": obj([]string{"account", "amount"}, map[string]any{"account": str(""), "amount": money2("debit > 0, credit < 0")})}}),
		"AuditList": obj([]string{"events"}, map[string]any{"events": map[string]any{"type": "array", "items": obj(nil, map[string]any{
			"id": map[string]any{"type": "integer"}, "at": str(""), "actor": str(""), "actor_role": str(""), "action": str(""), "target": str(""),
			"outcome": map[string]any{"type": "string", "enum": []string{"ok", "refused", "failed"}}, "detail": map[string]any{"type": "object"},
			"request_id": str(""), "client": str("")})}}),
	}
}

// openAPIDocument builds the OpenAPI 3 document of every documented route.
func (s *Server) openAPIDocument() map[string]any {
	paths := map[string]any{}
	errResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
	}
	for _, rt := range s.routes {
		if rt.doc == nil {
			continue
		}
		d := rt.doc
		op := map[string]any{"summary": d.Summary, "tags": []string{d.Tag},
			"operationId": strings.ToLower(rt.method) + strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_", ".", "_").Replace(rt.pattern)}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.pattern, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range d.Query {
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": queryParams[q]})
		}
		if params != nil {
			op["parameters"] = params
		}
		if d.Request != "" {
			op["requestBody"] = map[string]any{"required": !d.RequestOptional, "content": map[string]any{"application/json": map[string]any{"schema": ref(d.Request)}}}
		}
		if d.Upload {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"multipart/form-data": map[string]any{
				"schema": obj([]string{"file"}, map[string]any{"file": map[string]any{"type": "string", "format": "binary"}})}}}
		}
		var content map[string]any
		switch {
		case d.Response != "":
			content = map[string]any{"application/json": map[string]any{"schema": ref(d.Response)}}
		case len(d.Produces) > 0:
			content = map[string]any{}
			for _, ct := range d.Produces {
				content[ct] = map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}
			}
		}
		ok := map[string]any{"description": "OK"}
		code := "200"
		if d.Created {
			code, ok["description"] = "201", "Created"
		}
		if content != nil {
			ok["content"] = content
		}
		if d.NoContent {
			code, ok = "204", map[string]any{"description": "Done"}
		}
		responses := map[string]any{code: ok, "default": errResp("An error: code, rule, message and request id")}
		if d.Replay {
			responses["200"] = map[string]any{"description": "The same request was answered before (idempotent replay): " +
				"nothing new is recorded, and the answer is what was recorded then, with replayed true", "content": content}
		}
		if !rt.public {
			responses["401"] = errResp("Not signed in")
			responses["403"] = errResp("Not allowed (A1), or another authority's (V8), or no CSRF token (W1)")
		}
		op["responses"] = responses
		if !rt.public {
			op["security"] = []any{map[string]any{"bearer": []string{}}, map[string]any{"session": []string{}}}
		}
		item, _ := paths[rt.pattern].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.pattern] = item
		}
		item[strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "InFuSe grant ledger API", "version": "1",
			"description": "Officers, time, expenditure, imports, corrections, claims, packs and the ledger of the InFuSe ESF operation. " +
				"Money is a string with exactly 2 decimals. Scripts authenticate with a bearer token (infuse tokens create); a browser " +
				"session's unsafe requests carry its CSRF token in the X-CSRF-Token header."},
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas(),
			"securitySchemes": map[string]any{
				"bearer":  map[string]any{"type": "http", "scheme": "bearer"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie},
			},
		},
	}
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, s.openAPIDocument())
	return nil
}
