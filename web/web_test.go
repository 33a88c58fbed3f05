package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if res := e.do("GET", p, "", nil); res.status != 200 {
			t.Errorf("%s: %d %s", p, res.status, res.body)
		}
	}
	e.do("GET", "/api/v1/claims", "pm", nil)
	res := e.do("GET", "/metrics", "", nil)
	for _, want := range []string{`infuse_http_requests_total{route="GET /api/v1/claims",method="GET",code="200"} 1`,
		`infuse_http_request_duration_seconds_bucket{route="GET /api/v1/claims",le="+Inf"} 1`,
		`infuse_claims_scheduler_runs_total{outcome="ok"} 0`, "infuse_db_pool_acquired_conns"} {
		if !strings.Contains(string(res.body), want) {
			t.Errorf("metrics lack %q:\n%s", want, res.body)
		}
	}
}

// The static files are served by name; their directory is not listed.
func TestStaticFilesAreNotListed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if res := e.do("GET", "/static/style.css", "", nil); res.status != 200 {
		t.Errorf("style.css: %d", res.status)
	}
	res := e.do("GET", "/static/", "", nil)
	if res.status != 404 || strings.Contains(string(res.body), `href="app.js"`) {
		t.Errorf("/static/: %d %.200s", res.status, res.body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	res := e.do("GET", "/signin", "", nil)
	h := res.header
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors 'none'", "script-src 'self'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
	if h.Get("X-Request-Id") == "" {
		t.Error("no request id")
	}
	if h.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain HTTP")
	}
	// No inline scripts or styles in any page: the CSP would block them.
	b := e.signIn("pm")
	for _, p := range []string{"/", "/claims", "/time", "/officers", "/expenditure", "/audit", "/ledger"} {
		body := string(b.get(p).body)
		if regexp.MustCompile(`<script>|<script [^>]*>[^<]+</script>| style="|<style`).MatchString(body) {
			t.Errorf("%s has inline script or style", p)
		}
	}
}

func TestSecureCookiesAndHSTSWhenTLS(t *testing.T) {
	t.Parallel()
	e := newTestEnvWith(t, dbtest.New(t), func(c *Config) { c.Secure = true })
	res := e.do("GET", "/signin", "", nil)
	if res.header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS with Secure")
	}
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s: Secure %v HttpOnly %v SameSite %v", c.Name, c.Secure, c.HttpOnly, c.SameSite)
		}
	}
}

func TestErrorBodies(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	res := e.do("GET", "/api/v1/claims/1999Q1", "pm", nil)
	if res.status != 404 {
		t.Fatalf("status %d", res.status)
	}
	var m map[string]any
	res.json(t, &m)
	for _, k := range []string{"code", "rule", "message", "request_id"} {
		if _, ok := m[k]; !ok {
			t.Errorf("error body lacks %q: %s", k, res.body)
		}
	}
	if m["request_id"] != res.header.Get("X-Request-Id") {
		t.Errorf("request id %v, header %q", m["request_id"], res.header.Get("X-Request-Id"))
	}
	// Bad JSON is invalid with the body rule; an oversized body is refused.
	if res := e.do("POST", "/api/v1/time-entries", "pm", `{"nope": 1}`); res.status != 422 || res.errorBody(t).Rule != RuleBody {
		t.Errorf("unknown field: %d %s", res.status, res.body)
	}
	big := `{"authority": "` + strings.Repeat("x", DefaultMaxBody) + `"}`
	if res := e.do("POST", "/api/v1/time-entries", "pm", big); res.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d %s", res.status, res.body)
	}
}

// TestOpenAPIDescribesEveryRoute checks the OpenAPI document against the mux both ways: every
// documented operation is served by a registered pattern with its method, and every
// registered API route is documented.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	res := e.do("GET", "/api/openapi.json", "auditor", nil)
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	// The document is public: anonymous callers read it, and it says so of itself.
	anon := e.do("GET", "/api/openapi.json", "", nil)
	if anon.status != 200 || !bytes.Equal(anon.body, res.body) {
		t.Fatalf("anonymous: %d %s", anon.status, firstLine(anon.body))
	}
	var self struct {
		Paths map[string]map[string]struct {
			Security  []any          `json:"security"`
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}
	res.json(t, &self)
	op, ok := self.Paths["/api/openapi.json"]["get"]
	if !ok || op.Security != nil || op.Responses["401"] != nil || op.Responses["403"] != nil || op.Responses["200"] == nil {
		t.Errorf("the document describes itself as %+v", op)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	res.json(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			// The mux must route this method and path to exactly this pattern.
			req, _ := http.NewRequest(strings.ToUpper(method), "http://x"+fillPattern(path), nil)
			if _, pattern := e.srv.mux.Handler(req); pattern != key {
				t.Errorf("documented %s is routed to %q", key, pattern)
			}
		}
	}
	for _, rt := range e.srv.routes {
		key := rt.method + " " + rt.pattern
		isAPI := strings.HasPrefix(rt.pattern, "/api/") || rt.pattern == "/healthz" || rt.pattern == "/readyz" || rt.pattern == "/metrics"
		if isAPI && !documented[key] {
			t.Errorf("route %s is not in the OpenAPI document", key)
		}
		if !isAPI && documented[key] {
			t.Errorf("page %s is documented as API", key)
		}
	}
}

// TestResponsesMatchTheDocument checks answers the API gives against the OpenAPI document: each
// status is documented for its operation (errors under default), with its content type. The
// answers are those a document is most easily wrong about: a recording's 201 and its
// idempotent replay's 200, and the pack's three file types.
func TestResponsesMatchTheDocument(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]any `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	e.do("GET", "/api/openapi.json", "", nil).json(t, &doc)
	check := func(method, path string, res response) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://x"+path, nil)
		_, pattern := e.srv.mux.Handler(req)
		docPath := strings.TrimPrefix(pattern, method+" ")
		op, ok := doc.Paths[docPath][strings.ToLower(method)]
		if !ok {
			t.Errorf("%s %s: no documented operation %q", method, path, pattern)
			return
		}
		code := strconv.Itoa(res.status)
		r, ok := op.Responses[code]
		if !ok && res.status >= 400 {
			r, ok = op.Responses["default"]
		}
		if !ok {
			t.Errorf("%s %s answered %d, which the document does not list", method, path, res.status)
			return
		}
		ct, _, _ := mime.ParseMediaType(res.header.Get("Content-Type"))
		if _, ok := r.Content[ct]; !ok && len(res.body) > 0 {
			t.Errorf("%s %s answered %d as %s; the document lists %v", method, path, res.status, ct, r.Content)
		}
	}
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	te := timeEntry("GB-NWP", "NWP-1", "2021-02-01")
	exp := map[string]any{"heading": "delivery", "defrayed_on": "2021-03-01", "payee": "Nesta", "description": "Lab facilitation",
		"amount": "18250.00", "evidence_ref": "INV-88213", "invoice_ref": "88213"}
	for _, c := range []struct {
		path string
		body map[string]any
	}{{"/api/v1/time-entries", te}, {"/api/v1/expenditure", exp}} {
		for i, want := range []int{http.StatusCreated, http.StatusOK} {
			res := e.do("POST", c.path, "pm", c.body)
			if res.status != want {
				t.Fatalf("POST %s (%d): %d %s", c.path, i, res.status, res.body)
			}
			check("POST", c.path, res)
		}
		bad := map[string]any{}
		for k, v := range c.body {
			bad[k] = v
		}
		bad["evidence_ref"] = ""
		check("POST", c.path, e.do("POST", c.path, "pm", bad))
	}
	if res := e.do("POST", "/api/v1/claims/2021Q1/compile", "pm", nil); res.status != 200 {
		t.Fatalf("compile: %d %s", res.status, res.body)
	}
	for _, f := range []string{"claim.xlsx", "claim.pdf", "manifest.json", "nothing.txt"} {
		path := "/api/v1/claims/2021Q1/pack/" + f
		check("GET", path, e.do("GET", path, "auditor", nil))
	}
	check("GET", "/metrics", e.do("GET", "/metrics", "", nil))
}

// fillPattern gives every wildcard of a pattern a value.
func fillPattern(p string) string {
	return strings.NewReplacer("{authority}", "GB-NWP", "{payroll_ref}", "NWP-1", "{id}", "1", "{period}", "2021Q1",
		"{file}", "claim.pdf", "{kind}", "time", "{email}", "a@b.example", "{lang}", "cy", "{$}", "").Replace(p)
}

func TestCatalogues(t *testing.T) {
	t.Parallel()
	pg, err := loadPages()
	if err != nil {
		t.Fatal(err)
	}
	en, cy := pg.catalogs["en"], pg.catalogs["cy"]
	for k, v := range en {
		if strings.TrimSpace(cy[k]) == "" {
			t.Errorf("Welsh lacks %q", k)
		}
		if strings.TrimSpace(v) == "" {
			t.Errorf("English %q is empty", k)
		}
	}
	for k := range cy {
		if _, ok := en[k]; !ok && !isMessageKey(k) {
			t.Errorf("English lacks %q", k)
		}
	}
	// Every static key a template asks for exists.
	keyRe := regexp.MustCompile(`\.T "([a-z0-9_.]+)"`)
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		b, _ := templateFS.ReadFile(n)
		for _, m := range keyRe.FindAllStringSubmatch(string(b), -1) {
			if _, ok := en[m[1]]; !ok {
				t.Errorf("%s uses missing key %q", n, m[1])
			}
		}
	}
	// The Welsh terms the service uses for its main nouns and verbs.
	for k, want := range map[string]string{"nav.signout": "Allgofnodi", "signin.title": "Mewngofnodi", "nav.claims": "Hawliadau",
		"nav.officers": "Swyddogion", "nav.time": "Amser", "nav.expenditure": "Gwariant"} {
		if cy[k] != want {
			t.Errorf("cy %s = %q, want %q", k, cy[k], want)
		}
	}
}

func TestWelshPages(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	b := e.signIn("fo")
	res := b.get("/lang/cy?next=/time")
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/time" {
		t.Fatalf("switch: %d %q", res.status, res.header.Get("Location"))
	}
	page := string(b.get("/time").body)
	for _, want := range []string{`<html lang="cy">`, "Allgofnodi", "Amser swyddogion", "Casnewydd", `lang="en"`} {
		if !strings.Contains(page, want) {
			t.Errorf("Welsh page lacks %q", want)
		}
	}
	// The switch on a page comes back to that page, its query included.
	page = string(b.get("/time?period=2021Q1").body)
	link := regexp.MustCompile(`<a class="lang" href="([^"]+)"`).FindStringSubmatch(page)
	if link == nil {
		t.Fatalf("no language switch on the page:\n%s", page)
	}
	if res := b.get(html.UnescapeString(link[1])); res.header.Get("Location") != "/time?period=2021Q1" {
		t.Errorf("the switch %q goes to %q; want /time?period=2021Q1", link[1], res.header.Get("Location"))
	}
	// No open redirect through the switch.
	if res := b.get("/lang/en?next=//evil.example/"); res.header.Get("Location") != "/" {
		t.Errorf("redirect to %q", res.header.Get("Location"))
	}
}

// TestClaimLifecycleThroughAPI records lines, compiles, reviews, submits, downloads the pack,
// records the decision and payment, and finds each step in the audit log.
func TestClaimLifecycleThroughAPI(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-004417", "Rhian Evans")
	e.recordTime("GB-NWP", "NWP-004417", "2021-02-03")
	exp := map[string]any{"heading": "delivery", "defrayed_on": "2021-03-01", "payee": "Nesta", "description": "Lab facilitation",
		"amount": "18250.00", "evidence_ref": "INV-88213", "invoice_ref": "88213"}
	if res := e.do("POST", "/api/v1/expenditure", "pm", exp); res.status != 201 {
		t.Fatalf("expenditure: %d %s", res.status, res.body)
	}
	e.claimSteps("2021Q1", "compile", "review", "submit")
	res := e.do("GET", "/api/v1/claims/2021Q1", "auditor", nil)
	if res.status != 200 {
		t.Fatalf("claim: %d %s", res.status, res.body)
	}
	// Exactly interfaces.md's keys, in its order.
	var top map[string]json.RawMessage
	res.json(t, &top)
	var keys []string
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "claim_number,esf_due,findings,headings,late_items,match_by_authority,period,status,total_eligible" {
		t.Errorf("claim keys %v", keys)
	}
	if !strings.HasPrefix(string(res.body), `{"period":"2021Q1","claim_number":1,"status":"submitted","headings":{"staff":`) {
		t.Errorf("claim JSON starts %s", res.body[:80])
	}
	var claim struct {
		Match map[string]struct{ Period, Cumulative, Target string } `json:"match_by_authority"`
		Total struct{ Period string }                                `json:"total_eligible"`
	}
	res.json(t, &claim)
	if len(claim.Match) != 10 || claim.Match["GB-NWP"].Period == "0.00" {
		t.Errorf("match %v", claim.Match)
	}
	// The pack downloads are the stored bytes.
	files, _, err := e.claims.StoredPack(t.Context(), "2021Q1")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		res := e.do("GET", "/api/v1/claims/2021Q1/pack/"+f.Name, "auditor", nil)
		sum := sha256.Sum256(res.body)
		if res.status != 200 || hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s: %d, sha %x want %s", f.Name, res.status, sum, f.SHA256)
		}
	}
	// Drill-down: the officer-time line with its entry and evidence.
	var l linesJSON
	e.do("GET", "/api/v1/claims/2021Q1/lines?heading=officer_time", "auditor", nil).json(t, &l)
	if len(l.Time) != 1 || l.Time[0].EvidenceRef != "TS-2021-02-03" || l.Time[0].EntryID == 0 || l.Time[0].WorkDate != "2021-02-03" ||
		l.Time[0].Hours != "7.25" || !strings.HasSuffix(l.Time[0].Amount, ".78") || l.Time[0].ApprovedBy != "Gareth Morgan" {
		t.Fatalf("lines %+v", l)
	}
	// The history as the rest of the API writes it: snake_case keys.
	if res := e.do("GET", "/api/v1/claims/2021Q1/events", "auditor", nil); !strings.Contains(string(res.body), `"actor_role": "programme_manager"`) {
		t.Errorf("events: %s", res.body)
	}
	if res := e.do("GET", "/api/v1/ledger/entries/"+itoa(l.Time[0].EntryID), "auditor", nil); res.status != 200 {
		t.Errorf("entry: %d %s", res.status, res.body)
	}
	// Through the page, a decision dated after today is shown beside its date, not its amount.
	pm := e.signIn("pm")
	shown := string(pm.post("/claims/2021Q1/decision", url.Values{"decided_on": {"2099-01-01"}, "approved": {"1.00"}}).body)
	if !strings.Contains(shown, `id="dec-approved-hint"`) || !strings.Contains(shown, "Do not take a disallowance off it") {
		t.Error("the decision form does not explain what 'ESF approved' is")
	}
	if !strings.Contains(shown, `id="dec-heading-hint"`) || !strings.Contains(shown, "reverse those time entries") {
		t.Error("the decision form does not say how officer time WEFO disallowed is taken off")
	}
	if !strings.Contains(shown, `id="dec-decided-on-error"`) || strings.Contains(shown, `id="dec-approved-error"`) {
		t.Errorf("the decision's date error is not beside its date:\n%s", shown)
	}
	// A missing or malformed date is told in the form's words, not the API's field name.
	for path, field := range map[string]string{"/claims/2021Q1/decision": "dec-decided-on", "/claims/2021Q1/payment": "pay-paid-on"} {
		res := pm.post(path, url.Values{"approved": {"1.00"}, "amount": {"1.00"}})
		page := string(res.body)
		if res.status != http.StatusUnprocessableEntity || !strings.Contains(page, `href="#`+field+`"`) ||
			!strings.Contains(page, "Enter a date as year-month-day") || strings.Contains(page, "_on &#34;") || strings.Contains(page, `_on "`) {
			t.Errorf("%s without a date: %d\n%s", path, res.status, page)
		}
	}
	res = e.do("POST", "/api/v1/claims/2021Q1/decision", "pm", map[string]any{"decided_on": "2021-07-15", "approved": claimESF(t, e), "disallowed": "0"})
	if res.status != 200 {
		t.Fatalf("decision: %d %s", res.status, res.body)
	}
	res = e.do("POST", "/api/v1/claims/2021Q1/payment", "pm", map[string]any{"paid_on": "2021-07-15", "amount": claimESF(t, e)})
	if res.status != 200 {
		t.Fatalf("payment: %d %s", res.status, res.body)
	}
	// The claim's page shows what WEFO decided and paid.
	shown = string(e.signIn("auditor").get("/claims/2021Q1").body)
	paid := (*page).Money(nil, decimal.RequireFromString(claimESF(t, e)))
	for _, want := range []string{"WEFO&#39;s decision", "2021-07-15", "WEFO&#39;s payment", "Amount received", paid} {
		if !strings.Contains(shown, want) {
			t.Errorf("the paid claim's page lacks %q", want)
		}
	}
	var audit struct {
		Events []struct {
			Action, Target, Outcome, Actor string
			Detail                         map[string]any
		}
	}
	e.do("GET", "/api/v1/audit?action=claims.", "auditor", nil).json(t, &audit)
	got := []string{}
	for _, ev := range audit.Events {
		got = append(got, ev.Action+":"+ev.Outcome)
		if ev.Action == "claims.decide" && ev.Outcome == "ok" && (ev.Detail["approved"] != claimESF(t, e) || ev.Detail["decided_on"] != "2021-07-15") {
			t.Errorf("the decision's audit detail %v lacks what was decided", ev.Detail)
		}
	}
	if strings.Join(got, " ") != "claims.pay:ok claims.decide:ok claims.decide:failed claims.submit:ok claims.review:ok claims.compile:ok" {
		t.Errorf("audit %v", got)
	}
	if res := e.do("POST", "/api/v1/ledger/verify", "auditor", nil); res.status != 200 || !strings.Contains(string(res.body), `"ok": true`) {
		t.Errorf("verify: %d %s", res.status, res.body)
	}
}

func claimESF(t *testing.T, e *testEnv) string {
	var c struct {
		ESF struct{ Period string } `json:"esf_due"`
	}
	e.do("GET", "/api/v1/claims/2021Q1", "pm", nil).json(t, &c)
	return c.ESF.Period
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestImportRowErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	csv := "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n" +
		"GB-NWP,NWP-1,2021-02-01,7.5,lab,TS-1,Gareth Morgan\n" +
		"GB-NWP,NWP-1,2021-02-02,13,lab,TS-2,Gareth Morgan\n"
	res := e.upload("/api/v1/imports/time", "fo", "time.csv", csv)
	if res.status != 422 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	body := res.errorBody(t)
	if len(body.Errors) == 0 || body.Errors[0].Row != 3 || body.Errors[0].Rule != "V3" {
		t.Fatalf("row errors %+v", body.Errors)
	}
	// Through the page, the error stands beside its row, and nothing was recorded.
	b := e.signIn("fo")
	page := string(b.upload("/time/import", "time.csv", csv).body)
	row := regexp.MustCompile(`(?s)<tr class="row-error" id="row-3">.*?</tr>`).FindString(page)
	if !strings.Contains(row, "2021-02-02") || !strings.Contains(row, "V3") {
		t.Errorf("row 3 with its error not found:\n%s", page)
	}
	if strings.Contains(regexp.MustCompile(`(?s)<tr>.*?2021-02-01.*?</tr>`).FindString(page), "V3") {
		t.Error("row 2 shows an error")
	}
	good := strings.Replace(csv, ",13,", ",6,", 1)
	// A file name that is not UTF-8 (as a browser may send it) is recorded as near as can be.
	res = e.upload("/api/v1/imports/time", "fo", "time\xff.csv", good)
	var ir importJSON
	res.json(t, &ir)
	if res.status != 200 || ir.Written != 2 || ir.File != "time\uFFFD.csv" {
		t.Fatalf("good file: %d %s", res.status, res.body)
	}
	var recorded, audited string
	if err := e.pool.QueryRow(context.Background(), `SELECT (SELECT file_name FROM import_run WHERE id = $1),
		(SELECT target FROM audit_event WHERE action = 'import.time' AND outcome = 'ok' AND (detail->>'written')::int = 2)`,
		ir.ImportID).Scan(&recorded, &audited); err != nil || recorded != ir.File || audited != ir.File {
		t.Errorf("file name recorded %q, audited %q (%v); want %q", recorded, audited, err, ir.File)
	}
	// The file again, after one of its lines was reversed: nothing is recorded, and the
	// reversed line is counted apart from the lines recorded already, as the command line does.
	list := e.timeList(t, "fo", "?authority=GB-NWP")
	if res := e.do("POST", "/api/v1/corrections", "fo", map[string]any{"time_entry_id": list.Entries[0].ID, "reason": "wrong day"}); res.status != 201 {
		t.Fatalf("correction: %d %s", res.status, res.body)
	}
	res = e.upload("/api/v1/imports/time", "fo", "time.csv", good)
	ir = importJSON{}
	res.json(t, &ir)
	if res.status != 200 || ir.Written != 0 || ir.Replayed != 2 || ir.Withdrawn != 1 {
		t.Fatalf("file again: %d %s", res.status, res.body)
	}
	page = string(b.upload("/time/import", "time.csv", good).body)
	if !strings.Contains(page, "2 rows read: 0 recorded, 1 already recorded. Rows matching lines reversed earlier, not recorded again: 1.") {
		t.Errorf("summary of the file again not found:\n%s", page)
	}
}

func TestUIFlows(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	fo := e.signIn("fo")
	v := url.Values{"authority": {"GB-NWP"}, "payroll_ref": {"NWP-1"}, "work_date": {"2021-02-01"}, "hours": {"7.5"},
		"activity": {"lab"}, "evidence_ref": {"TS-1"}, "approved_by": {"Gareth Morgan"}}
	res := fo.post("/time", v)
	if res.status != http.StatusSeeOther {
		t.Fatalf("record time: %d %s", res.status, res.body)
	}
	page := string(fo.get(res.header.Get("Location")).body)
	if !strings.Contains(page, "Rhian Evans") || !strings.Contains(page, "Time recorded") {
		t.Errorf("recorded page:\n%s", page)
	}
	// A form error is summarised and linked to its field.
	v.Set("hours", "13")
	v.Set("work_date", "2021-02-02")
	res = fo.post("/time", v)
	if res.status != 422 || !strings.Contains(string(res.body), `href="#time-hours"`) || !strings.Contains(string(res.body), `aria-invalid="true"`) {
		t.Errorf("V3 form error: %d\n%s", res.status, res.body)
	}
	// The programme manager compiles, a second manager reviews, the first submits.
	pm, pm2 := e.signIn("pm"), e.signIn("pm2")
	for _, step := range []struct {
		b    *browser
		path string
	}{{pm, "/claims/2021Q1/compile"}, {pm2, "/claims/2021Q1/review"}, {pm, "/claims/2021Q1/submit"}} {
		var form url.Values
		if strings.HasSuffix(step.path, "/review") { // the figures the reviewer read, as the page says
			m := regexp.MustCompile(`name="figures_of" value="([^"]+)"`).FindStringSubmatch(string(step.b.get("/claims/2021Q1").body))
			if m == nil {
				t.Fatal("no review form")
			}
			form = url.Values{"figures_of": {html.UnescapeString(m[1])}}
		}
		if strings.HasSuffix(step.path, "/submit") {
			// Unconfirmed, a submission is refused, and nothing is submitted.
			if res := step.b.post(step.path, nil); res.status != http.StatusUnprocessableEntity || !strings.Contains(string(res.body), "Tick the box to confirm the submission") {
				t.Fatalf("an unconfirmed submission: %d %s", res.status, res.body)
			}
			if page := string(pm.get("/claims/2021Q1").body); !strings.Contains(page, `name="confirm" value="1"`) {
				t.Fatal("the claim was submitted without its confirmation")
			}
			form = url.Values{"confirm": {"1"}}
		}
		if res := step.b.post(step.path, form); res.status != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", step.path, res.status, res.body)
		}
		if strings.HasSuffix(step.path, "/review") && !strings.Contains(string(pm2.get("/claims/2021Q1").body), "another programme manager must submit it (R3.13)") {
			t.Error("the reviewer is not told that another programme manager must submit")
		}
	}
	page = string(pm.get("/claims/2021Q1").body)
	// The match table shows each authority's pro-rata target and variance, as the pack does
	// (C6), and its totals: ten targets of £200,000, each profiled to 1/12 for the first claim.
	for _, want := range []string{"Pro-rata target", "£16,666.67", `<td class="num beyond">−100.00% <span class="tag">C6</span>`,
		`<th scope="row">All authorities</th>`, "£2,000,000.00", "£166,666.70"} {
		if !strings.Contains(page, want) {
			t.Errorf("claim page's match table lacks %q", want)
		}
	}
	for _, want := range []string{"claim.xlsx", "claim.pdf", "manifest.json", "submitted"} {
		if !strings.Contains(page, want) {
			t.Errorf("claim page lacks %q", want)
		}
	}
	if res := pm.get("/api/v1/claims/2021Q1/pack/claim.pdf"); res.status != 200 || !strings.HasPrefix(string(res.body), "%PDF") {
		t.Errorf("pdf: %d", res.status)
	}
	for _, p := range []string{"/", "/claims", "/claims/2021Q1/lines?heading=officer_time", "/audit", "/ledger", "/officers?authority=GB-NWP&payroll_ref=NWP-1"} {
		if res := pm.get(p); res.status != 200 {
			t.Errorf("%s: %d %s", p, res.status, res.body)
		}
	}
	if dash := string(pm.get("/").body); !strings.Contains(dash, `<th scope="row">All authorities</th>`) || !strings.Contains(dash, "£2,000,000.00") {
		t.Error("the dashboard's match table has no totals row")
	}
	if res := pm.post("/ledger/verify", nil); res.status != 200 || !strings.Contains(string(res.body), "The ledger verifies") {
		t.Errorf("verify: %d %s", res.status, res.body)
	}
	admin := e.signIn("admin")
	res = admin.post("/admin/tokens", url.Values{"name": {"user provisioning"}})
	if res.status != http.StatusCreated || !regexp.MustCompile(`value="infuse_[A-Za-z0-9_-]{43}"`).Match(res.body) {
		t.Errorf("token page: %d\n%s", res.status, res.body)
	}
	if res := admin.get("/admin/users"); res.status != 200 {
		t.Errorf("users: %d", res.status)
	}
	// Every action the flow audited is named in both languages on the audit log's page, with
	// its code, which the filter takes.
	events, err := e.auth.Events(context.Background(), e.user("auditor"), auth.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		for _, lang := range languages {
			if _, ok := e.srv.pages.catalogs[lang]["audit.action."+ev.Action]; !ok {
				t.Errorf("audited action %q has no name in %s", ev.Action, lang)
			}
		}
	}
	pm.get("/lang/cy")
	if page := string(pm.get("/audit").body); !strings.Contains(page, `Cyflwyno hawliad i WEFO<br><span class="code small">claims.submit</span>`) {
		t.Error("the Welsh audit log does not name the submission")
	}
}

// TestAbandonedRequestIsNotAnError: a request whose client went away while it waited is answered
// 499 and logged as abandoned, not as a failure with a request id to chase. Here the context ends
// before the request starts, so it is the first wait (the token's lookup) that sees it; a call
// waiting in the queue of single recordings returns the same context error.
func TestAbandonedRequestIsNotAnError(t *testing.T) {
	t.Parallel()
	var logged safeBuffer
	e := newTestEnvWith(t, dbtest.New(t), func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logged, nil)) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, "POST", "/api/v1/time-entries", strings.NewReader(
		`{"authority": "GB-NWP", "payroll_ref": "NWP-1", "work_date": "2021-05-04", "hours": "7", "activity": "lab", "evidence_ref": "TS-1", "approved_by": "Gareth Morgan"}`))
	req.Header.Set("Authorization", "Bearer "+e.tokens["pm"])
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != statusClientClosed {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if s := logged.String(); strings.Contains(s, "level=ERROR") || !strings.Contains(s, "request abandoned by its client") {
		t.Fatalf("log:\n%s", s)
	}
}

// safeBuffer is a bytes.Buffer that a server's goroutines may write while a test reads it.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestOversizedFormsAreRefusedAsTooLarge: a form over the size limit is refused as the API
// refuses a body over it, 413 (W2), whether or not its length is announced, and wherever the
// form is first read: for its CSRF token, by the sign-in form, or by the handler (the token in a
// header), url-encoded or a multipart upload.
func TestOversizedFormsAreRefusedAsTooLarge(t *testing.T) {
	t.Parallel()
	e := newTestEnvWith(t, dbtest.New(t), func(c *Config) { c.MaxBody, c.MaxUpload = 4<<10, 16<<10 })
	fo := e.signIn("fo")
	big := strings.Repeat("x", 64<<10)
	form := func(csrfField bool) string {
		v := url.Values{"authority": {"GB-NWP"}, "payroll_ref": {"NWP-1"}, "evidence_ref": {big}}
		if csrfField {
			v.Set("_csrf", fo.csrf)
		}
		return v.Encode()
	}
	multipartBody, multipartType := multipartFile(t, "time.csv", "authority,payroll_ref\n"+big+"\n", map[string]string{"_csrf": fo.csrf})
	for _, c := range []struct {
		name, path, contentType, body string
		header, chunked, anonymous    bool
	}{
		{"TokenInTheForm", "/time", "application/x-www-form-urlencoded", form(true), false, true, false},
		{"TokenInTheHeader", "/time", "application/x-www-form-urlencoded", form(false), true, true, false},
		{"LengthAnnounced", "/time", "application/x-www-form-urlencoded", form(true), false, false, false},
		{"OtherForms", "/corrections", "application/x-www-form-urlencoded", form(false), true, true, false},
		{"Upload", "/time/import", multipartType, multipartBody.String(), false, true, false},
		{"SignIn", "/signin", "application/x-www-form-urlencoded", url.Values{"email": {big}}.Encode(), false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(c.body)
			if c.chunked {
				body = io.MultiReader(body) // no length known: sent chunked
			}
			req, _ := http.NewRequest("POST", e.ts.URL+c.path, body)
			req.Header.Set("Content-Type", c.contentType)
			if c.header {
				req.Header.Set(csrfHeader, fo.csrf)
			}
			client := fo.c
			if c.anonymous {
				client = http.DefaultClient
			}
			res := e.send(client, req)
			if res.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(res.body), RuleSize) {
				t.Errorf("%d\n%s", res.status, firstLine(res.body))
			}
		})
	}
}

// TestWrongMethodAnswers405: a path that routes take with other methods answers 405 with Allow
// naming them, as a page or as JSON; a path no route takes answers 404.
func TestWrongMethodAnswers405(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, c := range []struct{ method, path, user, allow string }{
		{"DELETE", "/api/v1/claims", "pm", "GET, HEAD"},
		{"PUT", "/api/v1/time-entries", "pm", "GET, HEAD, POST"},
		{"GET", "/api/v1/tokens/1", "admin", "DELETE"},
		{"POST", "/api/v1/claims/2021Q1", "", "GET, HEAD"},
		{"DELETE", "/api/openapi.json", "", "GET, HEAD"},
	} {
		res := e.do(c.method, c.path, c.user, nil)
		if res.status != http.StatusMethodNotAllowed || res.header.Get("Allow") != c.allow || res.errorBody(t).Rule != RuleMethod {
			t.Errorf("%s %s: %d Allow %q %s", c.method, c.path, res.status, res.header.Get("Allow"), res.body)
		}
	}
	b := e.signIn("pm")
	res := b.get("/signout")
	if res.status != http.StatusMethodNotAllowed || res.header.Get("Allow") != "POST" || !strings.Contains(string(res.body), "<html") {
		t.Errorf("GET /signout: %d Allow %q", res.status, res.header.Get("Allow"))
	}
	if res := b.post("/claims", nil); res.status != http.StatusMethodNotAllowed || res.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /claims: %d Allow %q", res.status, res.header.Get("Allow"))
	}
	for _, c := range []struct{ method, path string }{{"GET", "/api/v1/nothing"}, {"POST", "/api/v1/nothing"}, {"GET", "/nothing"}} {
		if res := e.do(c.method, c.path, "pm", nil); res.status != http.StatusNotFound || res.header.Get("Allow") != "" {
			t.Errorf("%s %s: %d Allow %q", c.method, c.path, res.status, res.header.Get("Allow"))
		}
	}
}

// TestVerifyingTheLedgerIsAPost: a verification seals what waits for the chain and records
// that it ran, so a GET (a link followed, prefetched or crawled) runs none: the API's GET
// answers 405 and the page's query is ignored. Running one is a POST, with the CSRF token for a
// cookie session.
func TestVerifyingTheLedgerIsAPost(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	runs := func() int {
		var audit struct{ Events []auth.Event }
		e.do("GET", "/api/v1/audit?action=ledger.verify", "auditor", nil).json(t, &audit)
		return len(audit.Events)
	}
	res := e.do("GET", "/api/v1/ledger/verify", "auditor", nil)
	if res.status != http.StatusMethodNotAllowed || res.header.Get("Allow") != "POST" {
		t.Errorf("GET /api/v1/ledger/verify: %d Allow %q", res.status, res.header.Get("Allow"))
	}
	aud := e.signIn("auditor")
	for _, p := range []string{"/ledger?run=1", "/ledger"} {
		res := aud.get(p)
		if res.status != 200 || strings.Contains(string(res.body), "The ledger verifies") ||
			!strings.Contains(string(res.body), `<form method="post" action="/ledger/verify">`) {
			t.Errorf("GET %s: %d\n%s", p, res.status, res.body)
		}
	}
	if n := runs(); n != 0 {
		t.Fatalf("GETs ran %d verifications", n)
	}
	if res := aud.postForm("/ledger/verify", url.Values{}); res.status != 403 || !strings.Contains(string(res.body), RuleCSRF) {
		t.Errorf("POST /ledger/verify without the CSRF token: %d", res.status)
	}
	if res := aud.post("/ledger/verify", nil); res.status != 200 || !strings.Contains(string(res.body), "The ledger verifies") {
		t.Errorf("POST /ledger/verify: %d\n%s", res.status, res.body)
	}
	res = e.do("POST", "/api/v1/ledger/verify", "auditor", nil)
	var v verificationJSON
	res.json(t, &v)
	if res.status != 200 || !v.OK || v.Entries == 0 || v.Waiting != 0 {
		t.Errorf("POST /api/v1/ledger/verify: %d %s", res.status, res.body)
	}
	if n := runs(); n != 2 {
		t.Errorf("%d verifications recorded, want 2", n)
	}
	if res := e.do("POST", "/api/v1/ledger/verify", "fo", nil); res.status != 403 {
		t.Errorf("finance officer's verification: %d", res.status)
	}
}

// TestLedgerPageShowsABrokenLedger: the page names each problem verification finds, in the
// reader's language.
func TestLedgerPageShowsABrokenLedger(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	// An entry taken off the sealing queue unsealed (with the schema's triggers off, as a
	// superuser can) is neither sealed nor waiting.
	var id int64
	if err := pgx.BeginFunc(context.Background(), e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		return tx.QueryRow(context.Background(), `WITH q AS (DELETE FROM seal_queue RETURNING operation_id, txid, sealed_to)
			SELECT max(e.id) FROM q JOIN entry e ON e.operation_id = q.operation_id AND e.txid = q.txid AND e.id > q.sealed_to`).Scan(&id)
	}); err != nil || id == 0 {
		t.Fatalf("no entry waiting to be sealed (%v)", err)
	}
	aud := e.signIn("auditor")
	res := aud.post("/ledger/verify", nil)
	want := "not sealed: entry " + strconv.FormatInt(id, 10) + " is neither sealed nor waiting to be sealed"
	if res.status != 200 || !strings.Contains(string(res.body), want) {
		t.Fatalf("POST /ledger/verify: %d, want %q in\n%s", res.status, want, res.body)
	}
}

// TestReviewIsOfTheFiguresRead: the review form carries the compilation its reader saw; a
// review of a claim recompiled since is refused, in the UI and the API (CL4, R3.13).
func TestReviewIsOfTheFiguresRead(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	pm, pm2 := e.signIn("pm"), e.signIn("pm2")
	if res := pm.post("/claims/2021Q1/compile", nil); res.status != http.StatusSeeOther {
		t.Fatalf("compile: %d %s", res.status, res.body)
	}
	m := regexp.MustCompile(`name="figures_of" value="([^"]+)"`).FindStringSubmatch(string(pm2.get("/claims/2021Q1").body))
	if m == nil {
		t.Fatal("the review form does not say which compilation it reviews")
	}
	// The test's clock stands still, so the recompilation keeps the time: the reader of an
	// earlier one is one whose compilation time is earlier.
	at, err := time.Parse(time.RFC3339Nano, html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	read := at.Add(-time.Second).Format(time.RFC3339Nano)
	if res := pm2.post("/claims/2021Q1/review", url.Values{"figures_of": {read}}); res.status != http.StatusConflict ||
		!strings.Contains(string(res.body), "recompiled after the figures you read") {
		t.Fatalf("UI review of the compilation read before: %d\n%s", res.status, res.body)
	}
	if res := pm2.post("/claims/2021Q1/review", nil); res.status != http.StatusConflict || !strings.Contains(string(res.body), "does not say which figures") {
		t.Fatalf("UI review without the figures read: %d\n%s", res.status, res.body)
	}
	if res := e.do("POST", "/api/v1/claims/2021Q1/review", "pm2", map[string]string{"compiled_at": read}); res.status != http.StatusConflict {
		t.Fatalf("API review of the compilation read before: %d %s", res.status, res.body)
	}
	m = regexp.MustCompile(`name="figures_of" value="([^"]+)"`).FindStringSubmatch(string(pm2.get("/claims/2021Q1").body))
	if res := pm2.post("/claims/2021Q1/review", url.Values{"figures_of": {html.UnescapeString(m[1])}}); res.status != http.StatusSeeOther {
		t.Fatalf("UI review of the compilation read: %d\n%s", res.status, res.body)
	}
}

// TestStaleDraft: once the ledger moves past a draft's figures, its page says so and offers to
// compile it again, not to review it, and its stored pack is no longer handed out (CL4).
func TestStaleDraft(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	e.recordTime("GB-NWP", "NWP-1", "2021-02-01")
	e.claimSteps("2021Q1", "compile")
	e.recordTime("GB-NWP", "NWP-1", "2021-02-02")
	pm := e.signIn("pm")
	page := string(pm.get("/claims/2021Q1").body)
	if !strings.Contains(page, "The ledger has changed since these figures were compiled") ||
		!strings.Contains(page, `action="/claims/2021Q1/compile"`) || strings.Contains(page, `action="/claims/2021Q1/review"`) ||
		strings.Contains(page, "/claims/2021Q1/lines") {
		t.Errorf("the stale draft's page:\n%s", page)
	}
	stale := `<span class="tag stale">out of date: compile again</span>`
	if list := string(pm.get("/claims").body); strings.Count(list, stale) != 1 {
		t.Errorf("the claims list does not flag the stale draft once:\n%s", list)
	}
	if res := e.do("GET", "/api/v1/claims/2021Q1/pack/claim.pdf", "auditor", nil); res.status != http.StatusConflict || res.errorBody(t).Rule != "CL4" {
		t.Errorf("pack of the stale draft: %d %s", res.status, res.body)
	}
	if res := e.do("POST", "/api/v1/claims/2021Q1/review", "pm2", nil); res.status != http.StatusConflict || res.errorBody(t).Rule != "CL4" {
		t.Errorf("review of the stale draft: %d %s", res.status, res.body)
	}
	if res := pm.post("/claims/2021Q1/compile", nil); res.status != http.StatusSeeOther {
		t.Fatalf("compile from the page: %d %s", res.status, res.body)
	}
	page = string(pm.get("/claims/2021Q1").body)
	if strings.Contains(page, "The ledger has changed") || !strings.Contains(page, `action="/claims/2021Q1/review"`) {
		t.Errorf("the draft compiled again:\n%s", page)
	}
	if list := string(pm.get("/claims").body); strings.Contains(list, stale) {
		t.Error("the claims list flags the draft compiled again")
	}
}

// TestCorrectionFormKeepsInput: a correction refused (a line number that is not there, or not
// the finance officer's to read, M2, told alike; no reason, M6) shows the form again with what
// was typed and the message beside the field it is about.
func TestCorrectionFormKeepsInput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	e.recordTime("GB-NWP", "NWP-1", "2021-02-01")
	id := e.timeList(t, "fo", "").Entries[0].ID
	if res := e.signIn("pm").post("/corrections", url.Values{"kind": {"bogus"}, "line_id": {itoa(id)}, "reason": {"x"}}); res.status != http.StatusUnprocessableEntity ||
		e.timeList(t, "fo", "").Entries[0].ReversedBy != 0 {
		t.Errorf("a correction of an unknown kind: %d, and the time entry reversed: %v", res.status, e.timeList(t, "fo", "").Entries[0].ReversedBy != 0)
	}
	for _, c := range []struct {
		user, line, reason, field string
	}{
		{"fo", "99999999", "typo in the hours", "corr-line-id"},
		{"fo2", itoa(id), "an entry of another authority", "corr-line-id"},
		{"pm", "99999999", "typo in the hours", "corr-line-id"},
		{"fo", itoa(id), "", "corr-reason"},
	} {
		page := string(e.signIn(c.user).post("/corrections", url.Values{"kind": {"time_entry"}, "line_id": {c.line}, "reason": {c.reason}}).body)
		if !strings.Contains(page, `id="`+c.field+`-error"`) || !strings.Contains(page, `value="`+c.line+`"`) ||
			(c.reason != "" && !strings.Contains(page, `value="`+c.reason+`"`)) {
			t.Errorf("%s correcting %s with %q: no form with the error beside %s:\n%s", c.user, c.line, c.reason, c.field, page)
		}
		// The page answers a POST, which cannot be asked for again: its language switch goes to
		// the dashboard.
		if strings.Contains(page, "corrections\" lang=") || !strings.Contains(page, `<a class="lang" href="/lang/cy?next=%2f"`) {
			t.Errorf("the language switch of a page answering a POST:\n%s", page)
		}
	}
}

// TestAdminDashboard: an admin, who reads no claims, is offered their own pages on the dashboard.
func TestAdminDashboard(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	page := string(e.signIn("admin").get("/").body)
	_, main, _ := strings.Cut(page, "<main")
	for _, want := range []string{"What you can do here:", `href="/admin/users"`, `href="/admin/tokens"`, `href="/admin/audit"`} {
		if !strings.Contains(main, want) {
			t.Errorf("the admin's dashboard lacks %q:\n%s", want, main)
		}
	}
}

// TestSetPasswordOfUnknownUser: an administrator who mistypes the email gets the form back, the
// message (M2) beside the email field.
func TestSetPasswordOfUnknownUser(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	res := e.signIn("admin").post("/admin/users/password", url.Values{"email": {"nobody@x.gov.uk"}, "password": {"a long enough password"}})
	page := string(res.body)
	if res.status != http.StatusUnprocessableEntity || !strings.Contains(page, `id="pw-email-error"`) || !strings.Contains(page, "M2: there is no user") {
		t.Errorf("password of an unknown user: %d\n%s", res.status, page)
	}
}

// TestFormErrorsBesideTheirFields: a missing field's error stands beside that field, not beside
// another field of the same rule.
func TestFormErrorsBesideTheirFields(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	page := string(e.signIn("fo").post("/time", url.Values{"authority": {"GB-NWP"}, "payroll_ref": {""}, "work_date": {"2021-02-01"},
		"hours": {"3"}, "activity": {"lab"}, "evidence_ref": {""}, "approved_by": {"Gareth Morgan"}}).body)
	for _, id := range []string{"time-payroll-ref-error", "time-evidence-ref-error"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("no %s on the page:\n%s", id, page)
		}
	}
	if strings.Contains(page, `id="time-approved-by-error"`) {
		t.Errorf("an error beside the approver, who was given:\n%s", page)
	}
}

// TestLateItemsSayWhereTheyAreClaimed: a line whose own period is locked is booked in a later one
// (domain.md §6). The API names the period it relates to, and the page says which claim takes
// it, or that it fell into the closure period, which no claim covers.
func TestLateItemsSayWhereTheyAreClaimed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	ctx := context.Background()
	lock := func(periods ...programme.Period) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			for _, p := range periods {
				if err := e.ledger.LockPeriod(ctx, tx, p.Code, "test"); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	fo := e.signIn("fo")
	record := func(day, wantPeriod, wantRelatesTo, wantNote string) {
		t.Helper()
		res := e.do("POST", "/api/v1/time-entries", "fo", timeEntry("GB-NWP", "NWP-1", day))
		var got struct {
			ID        int64  `json:"id"`
			Period    string `json:"period"`
			RelatesTo string `json:"relates_to"`
		}
		res.json(t, &got)
		if res.status != http.StatusCreated || got.Period != wantPeriod || got.RelatesTo != wantRelatesTo {
			t.Fatalf("time of %s: %d, booked in %q relating to %q; want %s and %q\n%s", day, res.status, got.Period, got.RelatesTo,
				wantPeriod, wantRelatesTo, res.body)
		}
		page := fo.get("/time?done=time&entry=" + strconv.FormatInt(got.ID, 10))
		if body := string(page.body); page.status != 200 || strings.Contains(body, "Late item") != (wantNote != "") || !strings.Contains(body, wantNote) {
			t.Fatalf("page after recording time of %s: %d, want %q\n%s", day, page.status, wantNote, body)
		}
	}
	periods := e.prog.Periods()
	record("2021-02-01", "2021Q1", "", "")
	lock(periods[0])
	record("2021-02-02", "2021Q2", "2021Q1", "Late item: period 2021Q1 is locked, so it is claimed in 2021Q2.")
	res := e.do("POST", "/api/v1/expenditure", "pm", map[string]any{"heading": "delivery", "defrayed_on": "2021-03-01",
		"payee": "Nesta", "description": "Lab facilitation", "amount": "1200.00", "evidence_ref": "INV-1", "invoice_ref": "INV-1"})
	var line struct {
		ID        int64  `json:"id"`
		Period    string `json:"period"`
		RelatesTo string `json:"relates_to"`
	}
	res.json(t, &line)
	if res.status != http.StatusCreated || line.Period != "2021Q2" || line.RelatesTo != "2021Q1" {
		t.Fatalf("expenditure of 2021-03-01: %d, booked in %q relating to %q; want 2021Q2 and 2021Q1\n%s", res.status, line.Period, line.RelatesTo, res.body)
	}
	page := e.signIn("pm").get("/expenditure?done=expenditure&line=" + strconv.FormatInt(line.ID, 10))
	if want := "Late item: period 2021Q1 is locked, so it is claimed in 2021Q2."; page.status != 200 || !strings.Contains(string(page.body), want) {
		t.Fatalf("page after recording expenditure: %d, want %q\n%s", page.status, want, page.body)
	}
	lock(periods[1:]...)
	record("2021-07-01", ledger.ClosurePeriod, "2021Q3", "which no claim covers. Tell the programme manager.")

	// An import says how many of its lines fell into the closure period, on the API and the page.
	const header = "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n"
	imp := e.upload("/api/v1/imports/time", "fo", "late.csv", header+"GB-NWP,NWP-1,2021-07-02,2,lab,TS-L1,Gareth Morgan\n")
	var res2 struct {
		Written int64 `json:"written"`
		Closure int64 `json:"closure"`
	}
	imp.json(t, &res2)
	if imp.status != http.StatusOK || res2.Written != 1 || res2.Closure != 1 {
		t.Fatalf("import into the closure period: %d %s; want 1 written, 1 in closure", imp.status, imp.body)
	}
	page = fo.upload("/time/import", "late2.csv", header+"GB-NWP,NWP-1,2021-07-03,2,lab,TS-L2,Gareth Morgan\n")
	if want := "Lines booked in the closure period, which no claim covers because the final claim is submitted: 1."; page.status != 200 ||
		!strings.Contains(html.UnescapeString(string(page.body)), want) {
		t.Fatalf("import page: %d, want %q\n%s", page.status, want, page.body)
	}
}

// TestClaimPageShowsWhatWEFOTookOff: where WEFO approves less than was claimed, or pays less
// than it approved, the claim's page says by how much, beside the amount.
func TestClaimPageShowsWhatWEFOTookOff(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	e.recordTime("GB-NWP", "NWP-1", "2021-02-01")
	e.claimSteps("2021Q1", "compile", "review", "submit")
	claimed := decimal.RequireFromString(claimESF(t, e))
	approved, paid := claimed.Sub(decimal.NewFromInt(10)), claimed.Sub(decimal.NewFromInt(15))
	if res := e.do("POST", "/api/v1/claims/2021Q1/decision", "pm", map[string]any{"decided_on": "2021-07-15",
		"approved": approved.StringFixed(2), "disallowed": "0"}); res.status != 200 {
		t.Fatalf("decision: %d %s", res.status, res.body)
	}
	if res := e.do("POST", "/api/v1/claims/2021Q1/payment", "pm", map[string]any{"paid_on": "2021-07-15", "amount": paid.StringFixed(2)}); res.status != 200 {
		t.Fatalf("payment: %d %s", res.status, res.body)
	}
	shown := string(e.signIn("pm").get("/claims/2021Q1").body)
	money := func(d decimal.Decimal) string { return (*page).Money(nil, d) }
	for _, want := range []string{
		money(approved) + " (claimed " + money(claimed) + ": £10.00 less)",
		money(paid) + " (approved " + money(approved) + ": £5.00 less)",
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("the claim's page lacks %q", want)
		}
	}
}

// TestLedgerEntryPageNamesAccounts: a ledger entry's page names each account and the entry's
// source in the reader's language, with the account's code beside it; every account of the
// chart, and every source the service posts, has a name in both languages.
func TestLedgerEntryPageNamesAccounts(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	e.recordTime("GB-NWP", "NWP-1", "2021-02-01")
	id := e.timeList(t, "fo", "").Entries[0].EntryID
	auditor := e.signIn("auditor")
	shown := string(auditor.get("/ledger/entries/" + itoa(id)).body)
	for _, want := range []string{"In-kind officer time, Newport<br><span class=\"code small\">inkind:GB-NWP</span>",
		"In-kind match income, Newport", "<dd>Time entry <span class=\"code\">"} {
		if !strings.Contains(shown, want) {
			t.Errorf("the entry's page lacks %q", want)
		}
	}
	auditor.get("/lang/cy")
	if page := string(auditor.get("/ledger/entries/" + itoa(id)).body); !strings.Contains(page, "Amser swyddogion mewn nwyddau, Casnewydd") {
		t.Error("the Welsh entry page does not name the in-kind account in Welsh")
	}
	for _, lang := range languages {
		p := &page{Lang: lang, srv: e.srv, msgs: e.srv.pages.catalogs[lang]}
		for _, a := range ledger.Chart(e.prog) {
			if got := p.AccountName(a.Code); got == a.Code || strings.Contains(got, "account.") || strings.Contains(got, "heading.") {
				t.Errorf("account %s has no name in %s: %q", a.Code, lang, got)
			}
		}
		for _, src := range []string{"time_entry", "expenditure", "claim", "setup"} {
			if _, ok := p.msgs["source."+src]; !ok {
				t.Errorf("source %s has no name in %s", src, lang)
			}
		}
	}
}
