package web

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
	ierr "github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/dbtest"
)

// publicRoutes are the routes an anonymous caller may use: sign-in (with its assets and the
// language switch), health, and the API's OpenAPI document.
var publicRoutes = map[string]bool{
	"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /static/": true,
	"GET /lang/{lang}": true, "GET /signin": true, "POST /signin": true, "GET /api/openapi.json": true,
}

// concrete fills a route pattern with values that name existing things where that matters.
func concrete(pattern string) string {
	if strings.HasSuffix(pattern, "/disable") || strings.HasSuffix(pattern, "/enable") {
		// Disabling a test user would end the sessions and tokens the other routes are tried
		// with: these are tried on nobody's account (404 for those allowed).
		pattern = strings.Replace(pattern, "{email}", "nobody@nowhere.example", 1)
	}
	return strings.NewReplacer("{authority}", "GB-NWP", "{payroll_ref}", "NWP-1", "{id}", "999999", "{period}", "2021Q1",
		"{file}", "claim.pdf", "{kind}", "time", "{email}", testUsers["fo"].Email, "{lang}", "cy", "{$}", "").Replace(pattern)
}

func TestEveryRouteButSignInAndHealthRefusesAnonymous(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	nc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, rt := range e.srv.routes {
		key := rt.method + " " + rt.pattern
		if rt.public != publicRoutes[key] {
			t.Errorf("%s: public %v, want %v", key, rt.public, publicRoutes[key])
		}
		if rt.public {
			continue
		}
		req, _ := http.NewRequest(rt.method, e.ts.URL+concrete(rt.pattern), strings.NewReader("{}"))
		res := e.send(nc, req)
		switch {
		case strings.HasPrefix(rt.pattern, "/api/"):
			if res.status != 401 || res.errorBody(t).Code != "unauthenticated" {
				t.Errorf("anonymous %s: %d %s", key, res.status, res.body)
			}
		case rt.method == "GET":
			if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/signin") {
				t.Errorf("anonymous %s: %d to %q", key, res.status, res.header.Get("Location"))
			}
		default:
			if res.status != http.StatusSeeOther && res.status != 401 {
				t.Errorf("anonymous %s: %d", key, res.status)
			}
		}
	}
}

// TestRoleMatrixThroughHTTP walks every role against every route (so every action of the
// matrix): a route refuses exactly the roles access.Can refuses its action, through the API
// with bearer tokens and through the pages with cookie sessions.
func TestRoleMatrixThroughHTTP(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	roles := []string{"fo", "pm", "auditor", "admin"}
	browsers := map[string]*browser{}
	for _, r := range roles {
		browsers[r] = e.signIn(r)
	}
	covered := map[access.Action]bool{}
	for _, rt := range e.srv.routes {
		if rt.public {
			continue
		}
		key := rt.method + " " + rt.pattern
		if key == "POST /signout" {
			continue
		}
		act := rt.action
		if rt.pattern == "/api/v1/imports/{kind}" {
			act = access.ImportTime
		}
		covered[act] = true
		for _, role := range roles {
			u := e.user(role)
			allowed := act == "" || access.Can(u, act, "") == nil
			var res response
			if strings.HasPrefix(rt.pattern, "/api/") {
				res = e.do(rt.method, concrete(rt.pattern), role, nil)
			} else {
				b := browsers[role]
				if rt.method == "GET" {
					res = b.get(concrete(rt.pattern))
				} else {
					res = b.post(concrete(rt.pattern), nil)
				}
			}
			refused := res.status == http.StatusForbidden
			if refused != !allowed {
				t.Errorf("%s as %s: status %d, allowed by the matrix: %v\n%s", key, role, res.status, allowed, firstLine(res.body))
			}
			if unsafe(rt.method) && role == "auditor" && !refused && !auditorMayPost[key] {
				t.Errorf("auditor was not refused %s: %d", key, res.status)
			}
		}
	}
	for _, a := range access.Actions() {
		if !covered[a] {
			t.Errorf("no route exercises action %s", a)
		}
	}
}

// auditorMayPost are the unsafe routes an auditor uses: running a verification changes nothing
// in the books (it seals what waits and records that it ran), but it is no link to follow.
var auditorMayPost = map[string]bool{"POST /api/v1/ledger/verify": true, "POST /ledger/verify": true}

func firstLine(b []byte) string {
	s := string(b)
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

func TestFinanceOfficerSeesOnlyOwnAuthority(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	e.seedOfficer("GB-CRF", "CRF-1", "Dafydd Jones")
	res := e.do("POST", "/api/v1/time-entries", "pm", timeEntry("GB-CRF", "CRF-1", "2021-02-01"))
	if res.status != 201 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	var crfEntry timeEntryJSON
	res.json(t, &crfEntry)

	for _, c := range []struct {
		name   string
		res    response
		status int
	}{
		{"read own officer", e.do("GET", "/api/v1/officers/GB-NWP/NWP-1", "fo", nil), 200},
		{"read other officer", e.do("GET", "/api/v1/officers/GB-CRF/CRF-1", "fo", nil), 403},
		{"write own time", e.do("POST", "/api/v1/time-entries", "fo", timeEntry("GB-NWP", "NWP-1", "2021-02-01")), 201},
		{"write other time", e.do("POST", "/api/v1/time-entries", "fo", timeEntry("GB-CRF", "CRF-1", "2021-02-02")), 403},
		{"write other officer", e.do("POST", "/api/v1/officers", "fo", map[string]any{"authority": "GB-CRF", "payroll_ref": "CRF-9",
			"name": "X", "valid_from": "2021-01-01", "annual_cost": "1000.00", "fte": "1"}), 403},
		{"correct other time", e.do("POST", "/api/v1/corrections", "fo", map[string]any{"time_entry_id": crfEntry.ID, "reason": "x"}), 403},
		{"other lines", e.do("GET", "/api/v1/claims/2021Q1/lines?authority=GB-CRF", "fo", nil), 403},
	} {
		if c.res.status != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, c.res.status, c.status, firstLine(c.res.body))
		}
		if c.status == 403 && c.res.errorBody(t).Rule != access.RuleV8 {
			t.Errorf("%s: rule %q, want V8", c.name, c.res.errorBody(t).Rule)
		}
	}
	// Another authority's time entry is not there for a finance officer (M2): the answer does not
	// tell whether it exists, or whose it is.
	other, missing := e.do("GET", "/api/v1/time-entries/"+itoa(crfEntry.ID), "fo", nil), e.do("GET", "/api/v1/time-entries/999999", "fo", nil)
	if o, m := other.errorBody(t).Message, missing.errorBody(t).Message; other.status != 404 || missing.status != 404 ||
		strings.Replace(o, itoa(crfEntry.ID), "N", 1) != strings.Replace(m, "999999", "N", 1) || strings.Contains(o, "GB-CRF") {
		t.Errorf("another authority's entry: %d %q; a missing one: %d %q", other.status, o, missing.status, m)
	}
	csv := "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\nGB-CRF,CRF-1,2021-02-03,7,lab,TS-1,Gareth Morgan\n"
	res = e.upload("/api/v1/imports/time", "fo", "time.csv", csv)
	if res.status < 400 || !strings.Contains(string(res.body), "V8") {
		t.Errorf("import for another authority: %d %s", res.status, res.body)
	}
	// The officer page offers only the officer's own authority.
	page := string(e.signIn("fo").get("/officers").body)
	if strings.Contains(page, `value="GB-CRF"`) || !strings.Contains(page, `value="GB-NWP"`) {
		t.Error("the officers page offers other authorities to a finance officer")
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	b := e.signIn("fo")
	v := url.Values{"authority": {"GB-NWP"}, "payroll_ref": {"NWP-1"}, "work_date": {"2021-02-01"}, "hours": {"7"},
		"activity": {"lab"}, "evidence_ref": {"TS-1"}, "approved_by": {"Gareth Morgan"}}
	// The wrong token differs from the real one in its first character, whatever that is.
	wrong := "x" + b.csrf[1:]
	if b.csrf[0] == 'x' {
		wrong = "y" + b.csrf[1:]
	}
	for name, token := range map[string]string{"none": "", "wrong": wrong} {
		vv := url.Values{}
		for k, x := range v {
			vv[k] = x
		}
		if token != "" {
			vv.Set("_csrf", token)
		}
		if res := b.postForm("/time", vv); res.status != 403 || !strings.Contains(string(res.body), RuleCSRF) {
			t.Errorf("%s token: %d", name, res.status)
		}
	}
	// The session's own API calls need the header too; bearer tokens do not.
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/claims/2021Q1/review", nil)
	if res := e.send(b.c, req); res.status != 403 || res.errorBody(t).Rule != RuleCSRF {
		t.Errorf("session API call without token: %d %s", res.status, res.body)
	}
	if res := b.post("/time", v); res.status != http.StatusSeeOther {
		t.Errorf("with token: %d %s", res.status, res.body)
	}
	if res := e.do("POST", "/api/v1/time-entries", "fo", timeEntry("GB-NWP", "NWP-1", "2021-02-05")); res.status != 201 {
		t.Errorf("bearer: %d %s", res.status, res.body)
	}
	// Sign-in needs the form's own value (login CSRF).
	if res := b.postForm("/signin", url.Values{"email": {testUsers["fo"].Email}, "password": {testPassword}}); res.status != 403 {
		t.Errorf("sign-in without _pre: %d", res.status)
	}
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	fail := func(email string) response {
		jarless := &browser{e: e, c: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		form := jarless.get("/signin")
		pre := preInput.FindSubmatch(form.body)[1]
		req, _ := http.NewRequest("POST", e.ts.URL+"/signin", strings.NewReader(url.Values{"_pre": {string(pre)}, "email": {email}, "password": {"wrong password!"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range (&http.Response{Header: form.header}).Cookies() {
			req.AddCookie(c)
		}
		return e.send(jarless.c, req)
	}
	unknown, wrong := fail("nobody@nowhere.example"), fail(testUsers["pm"].Email)
	strip := func(r response) string {
		s := string(r.body)
		s = preInput.ReplaceAllString(s, "")
		s = strings.ReplaceAll(s, "nobody@nowhere.example", "EMAIL")
		return strings.ReplaceAll(s, testUsers["pm"].Email, "EMAIL")
	}
	if unknown.status != 401 || wrong.status != 401 || strip(unknown) != strip(wrong) {
		t.Errorf("unknown user and wrong password answer differently: %d %d", unknown.status, wrong.status)
	}
	// Throttling: after 5 failures the account refuses even the right password, for a while.
	for i := 0; i < 4; i++ {
		fail(testUsers["pm"].Email)
	}
	if res := fail(testUsers["pm"].Email); res.status != http.StatusTooManyRequests {
		t.Errorf("6th attempt: %d", res.status)
	}
	if _, err := e.auth.SignIn(t.Context(), testUsers["pm"].Email, testPassword, "10.9.9.9", ""); ruleOf(err) != auth.RuleThrottle {
		t.Errorf("right password while throttled: %v", err)
	}
	// A good sign-in sets a secure-by-default session cookie and rotates it each time.
	b := e.signIn("auditor")
	u, _ := url.Parse(e.ts.URL)
	first := b.c.Jar.Cookies(u)[0].Value
	res := b.get("/signin") // already signed in: sent on
	if res.status != http.StatusSeeOther {
		t.Errorf("signed-in GET /signin: %d", res.status)
	}
	b2 := e.signIn("auditor")
	if b2.c.Jar.Cookies(u)[0].Value == first {
		t.Error("session id not rotated")
	}
	// Sign-out revokes the session on the server.
	if res := b.post("/signout", nil); res.status != http.StatusSeeOther {
		t.Fatalf("signout: %d", res.status)
	}
	if _, err := e.auth.SessionByID(t.Context(), first); err == nil {
		t.Error("session alive after sign-out")
	}
	// The audit log has the sign-ins, the failures included.
	var audit struct{ Events []auth.Event }
	e.do("GET", "/api/v1/audit?action=signin", "auditor", nil).json(t, &audit)
	var refused int
	for _, ev := range audit.Events {
		if ev.Outcome == auth.OutcomeRefused {
			refused++
		}
	}
	if refused < 6 {
		t.Errorf("audit has %d refused sign-ins", refused)
	}
}

// TestClientAddress reads X-Forwarded-For only from a trusted proxy, and then only as far as
// the hops that trusted proxies wrote.
func TestClientAddress(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
	for _, c := range []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string
	}{
		{"no proxy configured", "10.1.1.1:4000", []string{"198.51.100.7"}, nil, "10.1.1.1"},
		{"not from a proxy", "198.51.100.9:4000", []string{"198.51.100.7"}, proxies, "198.51.100.9"},
		{"one proxy", "10.1.1.1:4000", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"a forged hop to the left", "10.1.1.1:4000", []string{"203.0.113.5, 198.51.100.7"}, proxies, "198.51.100.7"},
		{"two proxies", "10.1.1.1:4000", []string{"203.0.113.5, 198.51.100.7, 192.0.2.1"}, proxies, "198.51.100.7"},
		{"headers joined", "10.1.1.1:4000", []string{"203.0.113.5", "198.51.100.7,10.2.2.2"}, proxies, "198.51.100.7"},
		{"no header", "10.1.1.1:4000", nil, proxies, "10.1.1.1"},
		{"garbage where a proxy wrote", "10.1.1.1:4000", []string{"198.51.100.7, unknown"}, proxies, "10.1.1.1"},
		{"only proxies", "10.1.1.1:4000", []string{"10.3.3.3"}, proxies, "10.3.3.3"},
		{"IPv4 in IPv6", "[::ffff:10.1.1.1]:4000", []string{"::ffff:198.51.100.7"}, proxies, "198.51.100.7"},
		{"IPv6 caller", "10.1.1.1:4000", []string{"2001:db8::7"}, proxies, "2001:db8::7"},
		{"hops with ports", "10.1.1.1:4000", []string{"203.0.113.5:1, 198.51.100.7:5678, 10.2.2.2:443"}, proxies, "198.51.100.7"},
		{"IPv6 hop with a port", "10.1.1.1:4000", []string{"[2001:db8::7]:5678"}, proxies, "2001:db8::7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &Server{cfg: Config{TrustedProxies: c.trusted}}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientAddr(r); got != c.want {
				t.Errorf("client %q, want %q", got, c.want)
			}
		})
	}
}

// TestThrottleBehindAProxy: behind a trusted proxy, failures from one caller throttle that
// caller (AU3), not every user the proxy serves, and the audit log names each caller.
func TestThrottleBehindAProxy(t *testing.T) {
	t.Parallel()
	e := newTestEnvWith(t, dbtest.New(t), func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	signIn := func(email, password, xff string) int {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		get, _ := http.NewRequest("GET", e.ts.URL+"/signin", nil)
		get.Header.Set("X-Forwarded-For", xff)
		form := e.send(c, get)
		post, _ := http.NewRequest("POST", e.ts.URL+"/signin", strings.NewReader(url.Values{
			"_pre": {string(preInput.FindSubmatch(form.body)[1])}, "email": {email}, "password": {password}}.Encode()))
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		post.Header.Set("X-Forwarded-For", xff)
		return e.send(c, post).status
	}
	// The attacker forges a different first hop each time; the proxy appends what it saw.
	for i := range 50 {
		if st := signIn(fmt.Sprintf("nobody%d@nowhere.example", i), "wrong password!", fmt.Sprintf("203.0.113.%d, 198.51.100.7", i)); st != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, st)
		}
	}
	if st := signIn("nobody@nowhere.example", "wrong password!", "198.51.100.7"); st != http.StatusTooManyRequests {
		t.Errorf("the 51st failure from one caller: %d, want 429", st)
	}
	if st := signIn(testUsers["pm"].Email, testPassword, "198.51.100.8"); st != http.StatusSeeOther {
		t.Errorf("another caller behind the same proxy: %d, want 303", st)
	}
	var audit struct{ Events []auth.Event }
	e.do("GET", "/api/v1/audit?action=signin", "auditor", nil).json(t, &audit)
	clients := map[string]int{}
	for _, ev := range audit.Events {
		clients[ev.Client]++
	}
	if clients["198.51.100.7"] != 51 || clients["198.51.100.8"] != 1 || len(clients) != 2 {
		t.Errorf("sign-ins by client in the audit log: %v", clients)
	}
}

func ruleOf(err error) string { return ierr.RuleOf(err) }

// TestHostileTextIsStoredIntactAndRenderedInert puts SQL metacharacters and script tags in
// every text field the service stores, reads them back unchanged, and finds them escaped in
// every page and JSON answer that shows them.
func TestHostileTextIsStoredIntactAndRenderedInert(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	evil := func(tag string) string {
		return tag + `'); DROP TABLE officer; -- " <script>alert('` + tag + `')</script> & <img src=x onerror=alert(1)>`
	}
	res := e.do("POST", "/api/v1/officers", "pm", map[string]any{"authority": "GB-NWP", "payroll_ref": "NWP-" + evil("ref"),
		"name": evil("name"), "valid_from": "2021-01-01", "annual_cost": "44750.00", "fte": "0.8"})
	if res.status != 201 {
		t.Fatalf("officer: %d %s", res.status, res.body)
	}
	var o officerJSON
	res.json(t, &o)
	if o.Name != evil("name") || o.PayrollRef != "NWP-"+evil("ref") {
		t.Errorf("officer stored as %q %q", o.Name, o.PayrollRef)
	}
	te := timeEntry("GB-NWP", "NWP-"+evil("ref"), "2021-02-01")
	te["evidence_ref"], te["approved_by"] = evil("evidence"), evil("approver")
	res = e.do("POST", "/api/v1/time-entries", "fo", te)
	if res.status != 201 {
		t.Fatalf("time: %d %s", res.status, res.body)
	}
	var tj timeEntryJSON
	res.json(t, &tj)
	if tj.EvidenceRef != evil("evidence") || tj.ApprovedBy != evil("approver") || tj.OfficerName != evil("name") {
		t.Errorf("time entry stored as %+v", tj)
	}
	res = e.do("POST", "/api/v1/expenditure", "pm", map[string]any{"heading": "other", "defrayed_on": "2021-03-01", "payee": evil("payee"),
		"description": evil("description"), "amount": "12.50", "evidence_ref": evil("inv"), "invoice_ref": evil("invoice")})
	if res.status != 201 {
		t.Fatalf("expenditure: %d %s", res.status, res.body)
	}
	var ej expenditureJSON
	res.json(t, &ej)
	if ej.Payee != evil("payee") || ej.Description != evil("description") || ej.EvidenceRef != evil("inv") || ej.InvoiceRef != evil("invoice") {
		t.Errorf("expenditure stored as %+v", ej)
	}
	if res := e.do("POST", "/api/v1/users", "admin", map[string]any{"email": "evil@x.example", "name": evil("username"), "role": "auditor"}); res.status != 201 {
		t.Fatalf("user: %d %s", res.status, res.body)
	}
	if res := e.do("POST", "/api/v1/tokens", "admin", map[string]any{"name": evil("token")}); res.status != 201 {
		t.Fatalf("token: %d %s", res.status, res.body)
	}
	if res := e.do("POST", "/api/v1/corrections", "pm", map[string]any{"time_entry_id": tj.ID, "reason": evil("reason")}); res.status != 201 {
		t.Fatalf("correction: %d %s", res.status, res.body)
	}
	if res := e.do("POST", "/api/v1/claims/2021Q1/compile", "pm", nil); res.status != 200 {
		t.Fatalf("compile: %d %s", res.status, res.body)
	}
	// JSON answers escape markup.
	for _, p := range []struct{ path, user string }{{"/api/v1/officers/GB-NWP/" + url.PathEscape("NWP-"+evil("ref")), "pm"},
		{"/api/v1/time-entries/" + itoa(tj.ID), "pm"}, {"/api/v1/users", "admin"}, {"/api/v1/tokens", "admin"},
		{"/api/v1/audit", "auditor"}, {"/api/v1/claims/2021Q1/lines", "auditor"}} {
		res := e.do("GET", p.path, p.user, nil)
		if res.status != 200 {
			t.Errorf("%s: %d %s", p.path, res.status, res.body)
		}
		if strings.Contains(string(res.body), "<script") || strings.Contains(string(res.body), "<img") {
			t.Errorf("%s has raw markup", p.path)
		}
	}
	// Pages escape it.
	pm, admin := e.signIn("pm"), e.signIn("admin")
	for _, p := range []struct {
		b          *browser
		path, want string
	}{
		{pm, "/officers?authority=GB-NWP&payroll_ref=" + url.QueryEscape("NWP-"+evil("ref")), "name"},
		{pm, "/claims/2021Q1/lines", "payee"}, {pm, "/claims/2021Q1/lines", "evidence"}, {pm, "/claims/2021Q1/lines", "approver"},
		{pm, "/claims/2021Q1/lines", "description"}, {pm, "/audit", "reason"},
		{admin, "/admin/users", "username"}, {admin, "/admin/tokens", "token"},
	} {
		res := p.b.get(p.path)
		body := string(res.body)
		if res.status != 200 {
			t.Errorf("%s: %d", p.path, res.status)
			continue
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s renders markup from stored text", p.path)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(&#39;"+p.want+"&#39;)&lt;/script&gt;") {
			t.Errorf("%s does not show the %s text escaped", p.path, p.want)
		}
	}
}

// TestFinanceOfficerCannotDownloadPacks: a claim pack lists every authority's officers with
// their costs and hours, so a finance officer, who sees only their own authority's figures, may
// neither download one nor be offered a link to one; the roles that see every authority may.
func TestFinanceOfficerCannotDownloadPacks(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	e.seedOfficer("GB-CRF", "CRF-1", "Dafydd Jones")
	for _, te := range []map[string]any{timeEntry("GB-NWP", "NWP-1", "2021-02-01"), timeEntry("GB-CRF", "CRF-1", "2021-02-01")} {
		if res := e.do("POST", "/api/v1/time-entries", "pm", te); res.status != 201 {
			t.Fatalf("time: %d %s", res.status, res.body)
		}
	}
	if res := e.do("POST", "/api/v1/claims/2021Q1/compile", "pm", nil); res.status != 200 {
		t.Fatalf("compile: %d %s", res.status, res.body)
	}
	for _, f := range []string{"claim.xlsx", "claim.pdf", "manifest.json"} {
		path := "/api/v1/claims/2021Q1/pack/" + f
		if res := e.do("GET", path, "fo", nil); res.status != 403 {
			t.Errorf("finance officer GET %s: %d (%d bytes of %s)", path, res.status, len(res.body), res.header.Get("Content-Type"))
		} else if rule := res.errorBody(t).Rule; rule != access.RuleRole {
			t.Errorf("finance officer GET %s: rule %q, want A1", path, rule)
		}
		for _, who := range []string{"pm", "auditor"} {
			if res := e.do("GET", path, who, nil); res.status != 200 {
				t.Errorf("%s GET %s: %d %s", who, path, res.status, firstLine(res.body))
			}
		}
	}
	fo := e.signIn("fo")
	if res := fo.get("/api/v1/claims/2021Q1/pack/claim.xlsx"); res.status != 403 {
		t.Errorf("finance officer's session GET claim.xlsx: %d", res.status)
	}
	res := fo.get("/claims/2021Q1")
	if res.status != 200 {
		t.Fatalf("claim page: %d %s", res.status, firstLine(res.body))
	}
	if page := string(res.body); strings.Contains(page, "/pack/") || strings.Contains(page, "claim.xlsx") {
		t.Errorf("the claim page offers a finance officer the pack:\n%s", page)
	}
	if page := string(e.signIn("auditor").get("/claims/2021Q1").body); !strings.Contains(page, "/api/v1/claims/2021Q1/pack/claim.xlsx") {
		t.Error("the claim page offers the auditor no pack")
	}
	// Nor does any page link a finance officer to what would refuse them: another authority's
	// officer time, or a ledger entry (verify_ledger).
	if page := string(res.body); strings.Contains(page, "authority=GB-CRF") || !strings.Contains(page, "authority=GB-NWP") {
		t.Errorf("the claim page's officer-time links for a finance officer of GB-NWP:\n%s", page)
	}
	lines := fo.get("/claims/2021Q1/lines?heading=officer_time&authority=GB-NWP")
	if page := string(lines.body); lines.status != 200 || strings.Contains(page, "/ledger/entries/") || !strings.Contains(page, "Rhian Evans") {
		t.Errorf("officer-time lines for a finance officer: %d\n%s", lines.status, page)
	}
	if page := string(e.signIn("auditor").get("/claims/2021Q1/lines?heading=officer_time").body); !strings.Contains(page, "/ledger/entries/") ||
		strings.Contains(page, "only those you may read") {
		t.Error("the lines page links the auditor to no ledger entry, or tells them it is filtered")
	}
	// All lines, for a finance officer, are their authority's, and the page says so.
	if page := string(fo.get("/claims/2021Q1/lines").body); !strings.Contains(page, "only those you may read, as a finance officer") ||
		!strings.Contains(page, "Shown: Newport.") {
		t.Errorf("a finance officer is not told the lines are filtered:\n%s", page)
	}
}

// TestTokensActOnlyForTheirCreator: through the API and the pages a token is created for the
// caller's own account only (AU5): an admin who could mint a token for a programme manager
// could act on claims as that manager, audited as them. Admins still list and revoke anyone's
// tokens. What a token does is audited with its id.
func TestTokensActOnlyForTheirCreator(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	count := func() int {
		ts, err := e.auth.Tokens(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}
	before := count()
	for _, email := range []string{testUsers["pm"].Email, "nobody@x.example"} {
		res := e.do("POST", "/api/v1/tokens", "admin", map[string]any{"email": email, "name": "act as someone else"})
		if res.status != 403 || res.errorBody(t).Rule != auth.RuleOwnToken {
			t.Errorf("admin's token for %s: %d %s", email, res.status, res.body)
		}
	}
	if n := count(); n != before {
		t.Fatalf("%d tokens created for other users", n-before)
	}
	var tok struct {
		ID          int64
		User, Token string
	}
	for _, body := range []map[string]any{{"name": "provisioning"}, {"email": testUsers["admin"].Email, "name": "provisioning 2"}} {
		res := e.do("POST", "/api/v1/tokens", "admin", body)
		if res.status != 201 {
			t.Fatalf("admin's own token %v: %d %s", body, res.status, res.body)
		}
		res.json(t, &tok)
		if tok.User != testUsers["admin"].Email || !strings.HasPrefix(tok.Token, "infuse_") {
			t.Errorf("admin's own token: %+v", tok)
		}
	}
	// The admin's token acts as the admin: it may not touch claims.
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/claims/2021Q1/compile", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	if res := e.send(http.DefaultClient, req); res.status != 403 {
		t.Errorf("admin's token compiled a claim: %d", res.status)
	}

	// The page's form names nobody; a posted email of someone else is refused.
	admin := e.signIn("admin")
	page := admin.get("/admin/tokens")
	if strings.Contains(string(page.body), `name="email"`) || !strings.Contains(string(page.body), testUsers["admin"].Email) {
		t.Errorf("the token form:\n%s", page.body)
	}
	if res := admin.post("/admin/tokens", url.Values{"email": {testUsers["pm"].Email}, "name": {"x"}}); res.status != 403 ||
		!strings.Contains(string(res.body), auth.RuleOwnToken) {
		t.Errorf("token form for the programme manager: %d", res.status)
	}
	if res := admin.post("/admin/tokens", url.Values{"name": {"from the page"}}); res.status != http.StatusCreated {
		t.Errorf("own token from the page: %d", res.status)
	}

	// Every token is listed, and the admin revokes the programme manager's.
	var list struct {
		Tokens []struct {
			ID         int64
			Name, User string
		}
	}
	e.do("GET", "/api/v1/tokens", "admin", nil).json(t, &list)
	var pmToken int64
	for _, x := range list.Tokens {
		if x.User == testUsers["pm"].Email {
			pmToken = x.ID
		}
	}
	if len(list.Tokens) != before+3 || pmToken == 0 {
		t.Fatalf("token list %+v", list.Tokens)
	}

	// The programme manager's token is audited with its id; a session's actions without one.
	if res := e.do("POST", "/api/v1/claims/2021Q1/compile", "pm", nil); res.status != 200 {
		t.Fatalf("compile with the token: %d %s", res.status, res.body)
	}
	pm := e.signIn("pm")
	if res := pm.post("/claims/2021Q1/compile", nil); res.status != http.StatusSeeOther {
		t.Fatalf("compile in a session: %d %s", res.status, res.body)
	}
	var audit struct{ Events []auth.Event }
	e.do("GET", "/api/v1/audit?action=claims.compile", "auditor", nil).json(t, &audit)
	if len(audit.Events) != 2 {
		t.Fatalf("audit %+v", audit.Events)
	}
	session, token := audit.Events[0], audit.Events[1]
	if id, ok := token.Detail["token_id"].(float64); !ok || int64(id) != pmToken || token.Actor != testUsers["pm"].Email {
		t.Errorf("the token's compile is audited as %+v, want token_id %d", token, pmToken)
	}
	if _, ok := session.Detail["token_id"]; ok || session.Actor != testUsers["pm"].Email {
		t.Errorf("the session's compile is audited as %+v", session)
	}

	if res := e.do("DELETE", "/api/v1/tokens/"+itoa(pmToken), "admin", nil); res.status != http.StatusNoContent {
		t.Errorf("revoke the programme manager's token: %d %s", res.status, res.body)
	}
	if res := e.do("GET", "/api/v1/me", "pm", nil); res.status != 401 {
		t.Errorf("revoked token: %d", res.status)
	}

	// From the tokens page, revoking asks first, naming the token; a revoked token is not
	// offered again.
	var auditorToken int64
	for _, x := range list.Tokens {
		if x.User == testUsers["auditor"].Email {
			auditorToken = x.ID
		}
	}
	path := "/admin/tokens/" + itoa(auditorToken) + "/revoke"
	if res := admin.post(path, nil); res.status != http.StatusOK || !strings.Contains(string(res.body), "Revoke this token?") ||
		!strings.Contains(string(res.body), "<dd>"+testUsers["auditor"].Email+"</dd>") {
		t.Fatalf("revoke's confirmation: %d\n%s", res.status, res.body)
	}
	if res := e.do("GET", "/api/v1/me", "auditor", nil); res.status != 200 {
		t.Fatalf("the token was revoked before the step was confirmed: %d", res.status)
	}
	if res := admin.post(path, url.Values{"confirm": {"1"}}); res.status != http.StatusSeeOther {
		t.Fatalf("revoke from the page: %d %s", res.status, res.body)
	}
	if res := e.do("GET", "/api/v1/me", "auditor", nil); res.status != 401 {
		t.Errorf("the token revoked from the page: %d", res.status)
	}
	if res := admin.post("/admin/tokens/"+itoa(pmToken)+"/revoke", nil); res.status != http.StatusNotFound {
		t.Errorf("confirming the revocation of a revoked token: %d", res.status)
	}
}

// TestAdminSeesNoClaimFigures: an admin administers users and tokens, not claims, so the ledger's
// entries, its verification and the whole audit log (which carry claim figures) are refused; the
// admin's audit view holds sign-ins and changes to users and tokens only.
func TestAdminSeesNoClaimFigures(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	res := e.do("POST", "/api/v1/time-entries", "pm", timeEntry("GB-NWP", "NWP-1", "2021-02-01"))
	if res.status != 201 {
		t.Fatalf("time: %d %s", res.status, res.body)
	}
	var te timeEntryJSON
	res.json(t, &te)
	if res := e.do("POST", "/api/v1/claims/2021Q1/compile", "pm", nil); res.status != 200 {
		t.Fatalf("compile: %d %s", res.status, res.body)
	}
	if res := e.do("POST", "/api/v1/users", "admin", map[string]any{"email": "new@x.example", "name": "New", "role": "auditor"}); res.status != 201 {
		t.Fatalf("user: %d %s", res.status, res.body)
	}
	entry := "/ledger/entries/" + itoa(te.EntryID)
	for _, p := range []string{"/api/v1" + entry, "/api/v1/audit", "/api/v1/audit?action=claims."} {
		if res := e.do("GET", p, "admin", nil); res.status != 403 || res.errorBody(t).Rule != access.RuleRole {
			t.Errorf("admin GET %s: %d %s", p, res.status, firstLine(res.body))
		}
		if res := e.do("GET", p, "auditor", nil); res.status != 200 {
			t.Errorf("auditor GET %s: %d %s", p, res.status, firstLine(res.body))
		}
	}
	admin := e.signIn("admin")
	for _, p := range []string{entry, "/audit", "/ledger"} {
		if res := admin.get(p); res.status != 403 {
			t.Errorf("admin's page %s: %d", p, res.status)
		}
	}
	page := string(admin.get("/admin/users").body)
	if strings.Contains(page, `href="/ledger"`) || strings.Contains(page, `href="/audit"`) || !strings.Contains(page, `href="/admin/audit"`) {
		t.Errorf("admin's navigation:\n%s", page)
	}

	var audit struct{ Events []auth.Event }
	res = e.do("GET", "/api/v1/audit/accounts", "admin", nil)
	if res.status != 200 {
		t.Fatalf("account audit: %d %s", res.status, res.body)
	}
	res.json(t, &audit)
	actions := map[string]bool{}
	for _, ev := range audit.Events {
		actions[ev.Action] = true
		if ev.Action != "signin" && ev.Action != "signout" && !strings.HasPrefix(ev.Action, "users.") && !strings.HasPrefix(ev.Action, "tokens.") {
			t.Errorf("the admin's audit view shows %s", ev.Action)
		}
	}
	if !actions["signin"] || !actions["users.add"] {
		t.Errorf("the admin's audit view lacks sign-ins or user changes: %v", actions)
	}
	e.do("GET", "/api/v1/audit/accounts?action=claims.", "admin", nil).json(t, &audit)
	if len(audit.Events) != 0 {
		t.Errorf("the admin's audit view filtered by claims.: %+v", audit.Events)
	}
	page = string(admin.get("/admin/audit").body)
	if !strings.Contains(page, "users.add") || strings.Contains(page, "claims.compile") || strings.Contains(page, "esf_due") {
		t.Errorf("the admin's audit page:\n%s", page)
	}
	for _, who := range []string{"pm", "auditor", "fo"} {
		if res := e.do("GET", "/api/v1/audit/accounts", who, nil); res.status != 403 {
			t.Errorf("%s GET /api/v1/audit/accounts: %d", who, res.status)
		}
	}
}

// TestDisablingALeaver: an admin disables a user from the users page; the user's open session
// and token stop at once, sign-in tells them (AU6) rather than taking their password as wrong,
// and the audit log records who did it. Enabling them through the API lets them sign in again.
func TestDisablingALeaver(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	fo, admin := e.signIn("fo"), e.signIn("admin")
	foEmail, adminEmail := testUsers["fo"].Email, testUsers["admin"].Email

	page := string(admin.get("/admin/users").body)
	for email, want := range map[string]bool{foEmail: true, adminEmail: false} {
		button := `action="/admin/users/disable" class="inline"><input type="hidden" name="_csrf" value="` + admin.csrf +
			`"><input type="hidden" name="email" value="` + email + `">`
		if got := strings.Contains(page, button); got != want {
			t.Errorf("a disable button for %s: %v, want %v", email, got, want)
		}
	}
	// The button asks first, naming the user; nothing is disabled until that is confirmed.
	res := admin.post("/admin/users/disable", url.Values{"email": {foEmail}})
	if body := string(res.body); res.status != http.StatusOK || !strings.Contains(body, "Disable this user?") ||
		!strings.Contains(body, "<dd>"+testUsers["fo"].Name+"</dd>") || !strings.Contains(body, `<input type="hidden" name="confirm" value="1">`) {
		t.Fatalf("disable's confirmation: %d\n%s", res.status, body)
	}
	if res := fo.get("/"); res.status != http.StatusOK {
		t.Fatalf("the user was disabled before the step was confirmed: %d", res.status)
	}
	res = admin.post("/admin/users/disable", url.Values{"email": {foEmail}, "confirm": {"1"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/admin/users?done=disabled" {
		t.Fatalf("disable: %d %s", res.status, res.header.Get("Location"))
	}
	page = string(admin.get("/admin/users?done=disabled").body)
	if !strings.Contains(page, "User disabled: their sessions and tokens have ended.") ||
		!strings.Contains(page, `action="/admin/users/enable"`) || !strings.Contains(page, "disabled ") {
		t.Errorf("the users page after disabling:\n%s", page)
	}

	if res := fo.get("/"); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/signin") {
		t.Errorf("the leaver's session: %d %s", res.status, res.header.Get("Location"))
	}
	if res := e.do("GET", "/api/v1/me", "fo", nil); res.status != http.StatusUnauthorized {
		t.Errorf("the leaver's token: %d", res.status)
	}
	signIn := func(password string) response {
		jar, _ := cookiejar.New(nil)
		b := &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		form := b.get("/signin")
		return b.postForm("/signin", url.Values{"_pre": {string(preInput.FindSubmatch(form.body)[1])}, "email": {foEmail}, "password": {password}})
	}
	if res := signIn(testPassword); res.status != http.StatusForbidden || !strings.Contains(string(res.body), "This account has been disabled.") {
		t.Errorf("the leaver signing in: %d\n%s", res.status, res.body)
	}
	if res := signIn("not the password"); res.status != http.StatusUnauthorized || strings.Contains(string(res.body), "disabled") {
		t.Errorf("a wrong password for a disabled account must say no more than for any other: %d", res.status)
	}
	if res := e.do("POST", "/api/v1/users/"+adminEmail+"/disable", "admin", nil); res.status != http.StatusForbidden || res.errorBody(t).Rule != "AU6" {
		t.Errorf("an admin disabling their own account: %d %s", res.status, res.body)
	}
	// The page refuses it before asking for a confirmation, as the step would.
	if res := admin.post("/admin/users/disable", url.Values{"email": {adminEmail}}); res.status != http.StatusForbidden ||
		strings.Contains(string(res.body), "Disable this user?") {
		t.Errorf("the confirmation of an admin disabling their own account: %d", res.status)
	}

	var u struct {
		Email      string     `json:"email"`
		DisabledAt *time.Time `json:"disabled_at"`
	}
	if res := e.do("POST", "/api/v1/users/"+foEmail+"/enable", "admin", nil); res.status != http.StatusOK {
		t.Fatalf("enable: %d %s", res.status, res.body)
	} else if res.json(t, &u); u.Email != foEmail || u.DisabledAt != nil {
		t.Errorf("enabled user %+v", u)
	}
	if res := signIn(testPassword); res.status != http.StatusSeeOther {
		t.Errorf("the enabled user signing in: %d", res.status)
	}

	var audit struct{ Events []auth.Event }
	e.do("GET", "/api/v1/audit/accounts?target="+url.QueryEscape(foEmail), "admin", nil).json(t, &audit)
	var actions []string
	for _, ev := range audit.Events {
		if ev.Action != "signin" {
			actions = append(actions, ev.Action+" by "+ev.Actor+": "+ev.Outcome)
		}
	}
	if want := []string{"users.enable by " + adminEmail + ": ok", "users.disable by " + adminEmail + ": ok"}; !slices.Equal(actions, want) {
		t.Errorf("audit of the leaver's account: %q, want %q", actions, want)
	}
}
