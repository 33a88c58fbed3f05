package web

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/reliability"
	"github.com/ccr-infuse/infuse/match"
)

// The hostile-input tests send what a careless or malicious client might through the three
// ways in — the JSON API, CSV uploads and the UI's forms — and hold the service to two
// promises for each: a clear refusal (the error code and the rule it broke, never internal
// detail), and nothing written. Text that is legitimately accepted, however it looks (a
// spreadsheet formula, a script tag), is stored exactly as sent and shown inert.

// hostileTables are the tables whose row counts must not move when an input is refused.
var hostileTables = []string{"entry", "posting", "seal_queue", "officer", "rate_version", "time_entry", "expenditure",
	"correction", "import_run", "claim"}

func (e *testEnv) rowCounts() map[string]int64 {
	e.t.Helper()
	out := map[string]int64{}
	for _, tb := range hostileTables {
		var n int64
		if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+tb).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		out[tb] = n
	}
	return out
}

// internalText is what must never reach a person: driver, SQL, Go runtime and file detail.
var internalText = regexp.MustCompile(`(?i)SQLSTATE|pgx|pgconn|postgres|goroutine|panic|runtime error|\.go:\d+|decimal\.`)

// hostileNumbers are numeric fields that must be refused as numbers.
var hostileNumbers = []struct{ name, text string }{
	{"10000 digits", "1" + strings.Repeat("0", 10000)},
	{"10000 fraction digits", "1." + strings.Repeat("1", 10000)},
	{"NaN", "NaN"},
	{"Inf", "Inf"},
	{"+Inf", "+Inf"},
	{"-Infinity", "-Infinity"},
	{"exponent", "1e3"},
	{"hex", "0x10"},
	{"thousands separator", "1,000.00"},
	{"currency symbol", "£7.00"},
	{"word", "seven"},
	{"empty", ""},
	{"fullwidth digits", "７.２５"},
	{"invalid UTF-8", "7\xff"},
	{"NUL", "7\x00"},
}

// hostile is one refused request and what it must be refused with.
type hostile struct {
	name   string
	status int
	code   apperr.Code
	rule   string
	send   func() response
}

func TestHostileInputIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")

	timeWith := func(field string, v any) map[string]any {
		m := timeEntry("GB-NWP", "NWP-1", "2021-05-04")
		m[field] = v
		return m
	}
	expWith := func(field string, v any) map[string]any {
		m := map[string]any{"heading": "delivery", "defrayed_on": "2021-06-30", "payee": "Nesta",
			"description": "Lab facilitation", "amount": "100.00", "evidence_ref": "INV-1", "invoice_ref": "1"}
		m[field] = v
		return m
	}
	api := func(path string, body any) func() response {
		return func() response { return e.do("POST", path, "pm", body) }
	}
	raw := func(path, ct string, body []byte) func() response {
		return func() response {
			req, _ := http.NewRequest("POST", e.ts.URL+path, bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Authorization", "Bearer "+e.tokens["pm"])
			return e.send(http.DefaultClient, req)
		}
	}
	upload := func(kind, name, csv string) func() response {
		return func() response { return e.upload("/api/v1/imports/"+kind, "pm", name, csv) }
	}
	const timeHeader = "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n"
	timeRow := func(field, v string) string {
		row := map[string]string{"authority": "GB-NWP", "payroll_ref": "NWP-1", "work_date": "2021-05-04", "hours": "7.25",
			"activity": "lab", "evidence_ref": "TS-1", "approved_by": "Gareth Morgan"}
		row[field] = v
		var b strings.Builder
		for i, c := range strings.Split(strings.TrimSpace(timeHeader), ",") {
			if i > 0 {
				b.WriteByte(',')
			}
			x := row[c]
			if strings.ContainsAny(x, ",\"\n\r") {
				x = `"` + strings.ReplaceAll(x, `"`, `""`) + `"`
			}
			b.WriteString(x)
		}
		return timeHeader + b.String() + "\n"
	}

	var cases []hostile
	add := func(name string, status int, code apperr.Code, rule string, send func() response) {
		cases = append(cases, hostile{name: name, status: status, code: code, rule: rule, send: send})
	}
	for _, n := range hostileNumbers {
		hoursRule, amountRule := match.RuleV3, match.RuleMoney
		if strings.ContainsRune(n.text, 0) {
			hoursRule, amountRule = match.RuleFormat, match.RuleFormat // no JSON string may hold a NUL
		}
		add("api time hours "+n.name, 422, apperr.Invalid, hoursRule, api("/api/v1/time-entries", timeWith("hours", n.text)))
		add("api expenditure amount "+n.name, 422, apperr.Invalid, amountRule, api("/api/v1/expenditure", expWith("amount", n.text)))
		// The CSV reader refuses what is not a field before any number is read: over-long
		// fields and invalid UTF-8 are M1 there.
		csvRule := match.RuleV3
		if len(n.text) > 1000 || !utf8.ValidString(n.text) {
			csvRule = match.RuleFormat
		}
		if strings.ContainsRune(n.text, 0) {
			continue // below, with the other NUL cases
		}
		add("csv time hours "+n.name, 422, apperr.Invalid, csvRule, upload("time", "time.csv", timeRow("hours", n.text)))
	}
	for _, h := range []string{"0", "0.00", "-7.25", "-0.01", "24.01", "7.255"} {
		add("api time hours "+h, 422, apperr.Invalid, match.RuleV3, api("/api/v1/time-entries", timeWith("hours", h)))
		add("csv time hours "+h, 422, apperr.Invalid, match.RuleV3, upload("time", "time.csv", timeRow("hours", h)))
	}
	for _, d := range []string{"2021-02-30", "2021-13-01", "2021-00-10", "21-05-04", "2021/05/04", "04/05/2021", "2021-05-04T00:00:00Z", "0000-00-00", "9999999-01-01"} {
		add("api time date "+d, 422, apperr.Invalid, match.RuleFormat, api("/api/v1/time-entries", timeWith("work_date", d)))
		add("api expenditure date "+d, 422, apperr.Invalid, match.RuleFormat, api("/api/v1/expenditure", expWith("defrayed_on", d)))
		add("csv time date "+d, 422, apperr.Invalid, match.RuleFormat, upload("time", "time.csv", timeRow("work_date", d)))
	}
	// Wrong JSON types and shapes.
	for _, v := range []any{true, []any{"7"}, map[string]any{"h": 7}} {
		add(fmt.Sprintf("api time hours of type %T", v), 422, apperr.Invalid, RuleBody, api("/api/v1/time-entries", timeWith("hours", v)))
	}
	add("api time work_date a number", 422, apperr.Invalid, RuleBody, api("/api/v1/time-entries", timeWith("work_date", 20210504)))
	add("api time unknown field", 422, apperr.Invalid, RuleBody, api("/api/v1/time-entries", timeWith("rate", "999")))
	add("api time not an object", 422, apperr.Invalid, RuleBody, api("/api/v1/time-entries", `["x"]`))
	add("api time two objects", 422, apperr.Invalid, RuleBody, api("/api/v1/time-entries", `{} {}`))
	add("api time truncated JSON", 422, apperr.Invalid, RuleBody, api("/api/v1/time-entries", `{"hours":`))
	add("api time as a form", 422, apperr.Invalid, RuleBody, raw("/api/v1/time-entries", "application/x-www-form-urlencoded", []byte("hours=7")))
	add("api time invalid UTF-8 in JSON", 422, apperr.Invalid, RuleBody,
		raw("/api/v1/time-entries", "application/json", []byte(`{"authority":"GB-NWP","payroll_ref":"NWP-1","work_date":"2021-05-04","hours":"7.25","activity":"lab","evidence_ref":"TS-`+"\xff\xfe"+`","approved_by":"Gareth Morgan"}`)))
	add("api time 10000-digit JSON number", 422, apperr.Invalid, match.RuleV3,
		raw("/api/v1/time-entries", "application/json", []byte(`{"authority":"GB-NWP","payroll_ref":"NWP-1","work_date":"2021-05-04","hours":1`+strings.Repeat("0", 10000)+`,"activity":"lab","evidence_ref":"TS-1","approved_by":"Gareth Morgan"}`)))
	add("api time activity script", 422, apperr.Invalid, match.RuleRef, api("/api/v1/time-entries", timeWith("activity", "<script>alert(1)</script>")))
	add("api expenditure heading formula", 422, apperr.Invalid, match.RuleRef, api("/api/v1/expenditure", expWith("heading", "=cmd|' /C calc'!A0")))
	// Very long fields: a 1 MB field makes a body past the 1 MiB limit.
	mb := strings.Repeat("x", 1<<20)
	add("api time 1 MB evidence_ref", 413, apperr.Invalid, RuleSize, api("/api/v1/time-entries", timeWith("evidence_ref", mb)))
	add("api expenditure 1 MB description", 413, apperr.Invalid, RuleSize, api("/api/v1/expenditure", expWith("description", mb)))
	add("csv time 1 MB evidence_ref", 422, apperr.Invalid, match.RuleFormat, upload("time", "time.csv", timeRow("evidence_ref", mb)))
	// Fields past the CSV's 1,000 characters but within the body limit: refused as in a file,
	// whether or not an index would take them (one past ~2,700 bytes made PostgreSQL fail).
	long := strings.Repeat("x", 3000)
	add("api time long evidence_ref", 422, apperr.Invalid, match.RuleFormat, api("/api/v1/time-entries", timeWith("evidence_ref", long)))
	add("api expenditure long invoice_ref", 422, apperr.Invalid, match.RuleFormat, api("/api/v1/expenditure", expWith("invoice_ref", long)))
	add("api expenditure long description", 422, apperr.Invalid, match.RuleFormat, api("/api/v1/expenditure", expWith("description", long)))
	add("api officer long payroll_ref", 422, apperr.Invalid, match.RuleFormat, api("/api/v1/officers",
		map[string]any{"authority": "GB-NWP", "payroll_ref": long, "name": "Rhian Evans", "valid_from": "2021-04-01", "annual_cost": "30000.00", "fte": "1"}))
	add("api user long email", 422, apperr.Invalid, access.RuleUser, func() response {
		return e.do("POST", "/api/v1/users", "admin", map[string]any{"email": long + "@x.example", "name": "Long", "role": "auditor"})
	})
	// CSV encodings and shapes.
	add("csv invalid UTF-8", 422, apperr.Invalid, match.RuleFormat, upload("time", "time.csv", timeRow("approved_by", "Si\xf4n Morgan")))
	add("csv mixed Latin-1 and UTF-8", 422, apperr.Invalid, match.RuleFormat, upload("time", "time.csv", timeRow("approved_by", "Siân \xe9vans")))
	add("csv UTF-16", 422, apperr.Invalid, match.RuleFormat, upload("time", "time.csv", "\xff\xfe"+utf16le(timeRow("hours", "7.25"))))
	add("csv NUL in a field", 422, apperr.Invalid, match.RuleFormat, upload("time", "time.csv", timeRow("evidence_ref", "TS\x001")))
	add("csv NUL in hours", 422, apperr.Invalid, match.RuleFormat, upload("time", "time.csv", timeRow("hours", "7\x00")))
	add("api NUL in evidence_ref", 422, apperr.Invalid, match.RuleFormat, api("/api/v1/time-entries", timeWith("evidence_ref", "TS\x001")))
	add("api NUL in payee", 422, apperr.Invalid, match.RuleFormat, api("/api/v1/expenditure", expWith("payee", "Nes\x00ta")))
	add("csv unknown column", 422, apperr.Invalid, match.RuleFormat, upload("time", "time.csv", "rate,"+timeRow("hours", "7.25")))
	add("csv not CSV", 422, apperr.Invalid, match.RuleFormat, upload("time", "time.csv", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))
	add("csv upload past the size limit", 413, apperr.Invalid, RuleSize,
		upload("time", "time.csv", timeHeader+strings.Repeat(strings.SplitN(timeRow("hours", "7.25"), "\n", 2)[1], DefaultMaxUpload/40)))
	add("csv upload without a file field", 422, apperr.Invalid, RuleBody, raw("/api/v1/imports/time", "multipart/form-data; boundary=x", []byte("--x--\r\n")))
	add("import out of the API", 404, apperr.NotFound, RulePath, upload("../../etc/passwd", "time.csv", timeRow("hours", "7.25")))
	add("import of an unknown kind", 404, apperr.NotFound, match.RuleRef, upload("payroll", "time.csv", timeRow("hours", "7.25")))
	// Path tricks in the file name of a refused file: refused for its content, name or not.
	for _, name := range []string{"../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/shadow", strings.Repeat("a", 5000) + ".csv"} {
		add(fmt.Sprintf("csv file name %q", name[:min(len(name), 20)]), 422, apperr.Invalid, match.RuleV3, upload("time", name, timeRow("hours", "NaN")))
	}
	// The audit log's page, as the lists' (GET: it writes nothing either).
	for _, q := range []string{"limit=abc", "limit=-5", "limit=5000", "before=99999999999999999999", "before=-1"} {
		add("audit "+q, 422, apperr.Invalid, match.RuleFormat, func() response { return e.do("GET", "/api/v1/audit?"+q, "pm", nil) })
	}
	// A file name that is not UTF-8 is recorded as near as can be, and never refused for.
	add("csv file name not UTF-8", 422, apperr.Invalid, match.RuleV3, upload("time", "t\xff.csv", timeRow("hours", "NaN")))
	// A NUL in the part's file name makes the multipart header unreadable: no file arrives.
	add("csv file name with NUL", 422, apperr.Invalid, RuleBody, upload("time", "a\x00b.csv", timeRow("hours", "7.25")))

	before := e.rowCounts()
	for _, c := range cases {
		res := c.send()
		if res.status != c.status {
			t.Errorf("%s: status %d, want %d\n%.300s", c.name, res.status, c.status, res.body)
			continue
		}
		b := res.errorBody(t)
		if b.Code != c.code || b.Rule != c.rule {
			t.Errorf("%s: code %q rule %q, want %q %q (%.200s)", c.name, b.Code, b.Rule, c.code, c.rule, b.Message)
		}
		if b.RequestID == "" || b.Message == "" || b.Message == "internal error" {
			t.Errorf("%s: no clear message or request id: %+v", c.name, b)
		}
		if internalText.Match(res.body) {
			t.Errorf("%s: internal detail in the response: %.300s", c.name, res.body)
		}
		for _, r := range b.Errors {
			if r.Rule != c.rule && c.rule != RuleSize {
				t.Errorf("%s: row %d has rule %q, want %q", c.name, r.Row, r.Rule, c.rule)
			}
		}
	}
	after := e.rowCounts()
	written := rowsWritten(before, after)
	if written != 0 {
		t.Errorf("refused input wrote rows: before %v, after %v", before, after)
	}
	reliability.Record(t, "hostile_api_csv", "every hostile API and CSV input refused with its code and rule, no row written",
		map[string]any{"inputs": len(cases), "rows_written": written, "tables_checked": len(hostileTables)})
}

func TestHostileFormPostsAreRefusedAndWriteNothing(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	b := e.signIn("pm")

	timeForm := func(field, v string) url.Values {
		f := url.Values{"authority": {"GB-NWP"}, "payroll_ref": {"NWP-1"}, "work_date": {"2021-05-04"}, "hours": {"7.25"},
			"activity": {"lab"}, "evidence_ref": {"TS-1"}, "approved_by": {"Gareth Morgan"}}
		f.Set(field, v)
		return f
	}
	expForm := func(field, v string) url.Values {
		f := url.Values{"heading": {"delivery"}, "defrayed_on": {"2021-06-30"}, "payee": {"Nesta"}, "description": {"Lab"},
			"amount": {"100.00"}, "evidence_ref": {"INV-1"}, "invoice_ref": {"1"}}
		f.Set(field, v)
		return f
	}
	type formCase struct {
		name   string
		path   string
		form   url.Values
		status int
	}
	var cases []formCase
	for _, n := range hostileNumbers {
		cases = append(cases, formCase{"time hours " + n.name, "/time", timeForm("hours", n.text), 422},
			formCase{"expenditure amount " + n.name, "/expenditure", expForm("amount", n.text), 422})
	}
	for _, h := range []string{"0", "-7.25", "24.01"} {
		cases = append(cases, formCase{"time hours " + h, "/time", timeForm("hours", h), 422})
	}
	for _, d := range []string{"2021-02-30", "2021-13-01", "21-05-04"} {
		cases = append(cases, formCase{"time date " + d, "/time", timeForm("work_date", d), 422},
			formCase{"expenditure date " + d, "/expenditure", expForm("defrayed_on", d), 422})
	}
	cases = append(cases,
		formCase{"time activity script", "/time", timeForm("activity", "<script>alert(1)</script>"), 422},
		formCase{"expenditure heading formula", "/expenditure", expForm("heading", "=cmd|' /C calc'!A0"), 422},
		formCase{"time 1 MB evidence_ref", "/time", timeForm("evidence_ref", strings.Repeat("x", 1<<20)), 413},
		formCase{"officer fte NaN", "/officers", url.Values{"authority": {"GB-NWP"}, "payroll_ref": {"NWP-2"}, "name": {"X"},
			"valid_from": {"2021-01-01"}, "annual_cost": {"44750.00"}, "fte": {"NaN"}}, 422},
		formCase{"officer annual_cost 10000 digits", "/officers", url.Values{"authority": {"GB-NWP"}, "payroll_ref": {"NWP-2"}, "name": {"X"},
			"valid_from": {"2021-01-01"}, "annual_cost": {strings.Repeat("9", 10000)}, "fte": {"1"}}, 422},
		formCase{"officer valid_from 2021-02-30", "/officers", url.Values{"authority": {"GB-NWP"}, "payroll_ref": {"NWP-2"}, "name": {"X"},
			"valid_from": {"2021-02-30"}, "annual_cost": {"44750.00"}, "fte": {"1"}}, 422},
	)

	before := e.rowCounts()
	for _, c := range cases {
		res := b.post(c.path, c.form)
		if res.status != c.status {
			t.Errorf("%s: status %d, want %d\n%.300s", c.name, res.status, c.status, res.body)
		}
		if internalText.Match(res.body) {
			t.Errorf("%s: internal detail in the page: %s", c.name, internalText.Find(res.body))
		}
		if bytes.Contains(res.body, []byte("<script>alert(1)")) {
			t.Errorf("%s: the page echoes a live script tag", c.name)
		}
	}
	// A form without its CSRF token is refused too, whatever it holds.
	if res := b.postForm("/time", timeForm("hours", "7.25")); res.status != 403 {
		t.Errorf("form without CSRF token: status %d, want 403", res.status)
	}
	after := e.rowCounts()
	written := rowsWritten(before, after)
	if written != 0 {
		t.Errorf("refused form posts wrote rows: before %v, after %v", before, after)
	}
	reliability.Record(t, "hostile_forms", "every hostile UI form post refused, no live script echoed, no row written",
		map[string]any{"inputs": len(cases) + 1, "rows_written": written})
}

// The formula and script texts a person may legitimately type into a free-text field.
var injections = []string{"=cmd|' /C calc'!A0", "+SUM(1)", "@x", "-2+3", "<script>alert(1)</script>", `"><img src=x onerror=alert(1)>`}

func TestInjectionTextIsStoredIntactAndShownInert(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	for i, s := range injections {
		res := e.do("POST", "/api/v1/expenditure", "pm", map[string]any{"heading": "delivery", "defrayed_on": "2021-06-30",
			"payee": s, "description": s, "amount": "100.00", "evidence_ref": s, "invoice_ref": fmt.Sprint(i + 1)})
		if res.status != 201 {
			t.Fatalf("%q: status %d %s", s, res.status, res.body)
		}
		var out expenditureJSON
		res.json(t, &out)
		got := e.do("GET", fmt.Sprintf("/api/v1/expenditure/%d", out.ID), "pm", nil)
		var back expenditureJSON
		got.json(t, &back)
		if back.Payee != s || back.Description != s || back.EvidenceRef != s {
			t.Errorf("%q stored as %q / %q / %q", s, back.Payee, back.Description, back.EvidenceRef)
		}
		tr := timeEntry("GB-NWP", "NWP-1", fmt.Sprintf("2021-05-%02d", i+3))
		tr["evidence_ref"], tr["approved_by"] = s, s
		if res := e.do("POST", "/api/v1/time-entries", "pm", tr); res.status != 201 {
			t.Fatalf("time %q: status %d %s", s, res.status, res.body)
		}
	}
	// A CSV import keeps the text exactly too.
	csv := "heading,defrayed_on,payee,description,amount,evidence_ref,invoice_ref\n"
	for i, s := range injections {
		csv += fmt.Sprintf("other,2021-06-29,%s,%s,1.00,%s,C%d\n", csvQuote(s), csvQuote(s), csvQuote(s), i)
	}
	if res := e.upload("/api/v1/imports/expenditure", "pm", "exp.csv", csv); res.status != 200 {
		t.Fatalf("import: %d %s", res.status, res.body)
	}
	var stored int
	if err := e.pool.QueryRow(context.Background(),
		"SELECT count(*) FROM expenditure WHERE payee = ANY($1) AND description = payee AND evidence_ref = payee",
		injections).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 2*len(injections) {
		t.Errorf("%d expenditure lines hold the text intact, want %d", stored, 2*len(injections))
	}

	// Every page that shows the text escapes it.
	b := e.signIn("pm")
	e.do("POST", "/api/v1/claims/2021Q2/compile", "pm", nil)
	pages := []string{"/expenditure", "/time", "/claims/2021Q2/lines", "/audit"}
	for _, p := range pages {
		res := b.get(p)
		if res.status != 200 {
			t.Errorf("%s: status %d", p, res.status)
			continue
		}
		body := string(res.body)
		for _, s := range injections {
			if strings.ContainsAny(s, "<>\"") && strings.Contains(body, s) {
				t.Errorf("%s shows %q unescaped", p, s)
			}
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s holds a live injected tag", p)
		}
	}
	if res := b.get("/claims/2021Q2/lines"); !strings.Contains(string(res.body), html.EscapeString(injections[4])) {
		t.Errorf("the claim's lines do not show the escaped script text")
	}
	// The claim pack's workbook keeps the text as text: never a formula cell.
	res := e.do("GET", "/api/v1/claims/2021Q2/pack/claim.xlsx", "pm", nil)
	if res.status != 200 {
		t.Fatalf("pack: %d %.200s", res.status, res.body)
	}
	zr, err := zip.NewReader(bytes.NewReader(res.body), int64(len(res.body)))
	if err != nil {
		t.Fatal(err)
	}
	var cells strings.Builder
	formulas := regexp.MustCompile(`<f>[^<]*</f>`)
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "xl/worksheets/") && f.Name != "xl/sharedStrings.xml" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		for _, fm := range formulas.FindAll(b, -1) {
			if bytes.Contains(fm, []byte("cmd")) || bytes.Contains(fm, []byte("SUM(1)")) || bytes.Contains(fm, []byte("-2+3")) {
				t.Errorf("%s holds an injected formula: %s", f.Name, fm)
			}
		}
		cells.Write(b)
	}
	for _, s := range injections {
		var esc bytes.Buffer
		_ = xml.EscapeText(&esc, []byte(s))
		if !strings.Contains(cells.String(), esc.String()) && !strings.Contains(cells.String(), html.EscapeString(s)) {
			t.Errorf("the workbook does not hold %q as text", s)
		}
	}
	reliability.Record(t, "injection_inert", "formula and script text accepted through API and CSV is stored byte for byte, escaped on every page and kept as text (never a formula) in the pack workbook",
		map[string]any{"texts": len(injections), "lines_stored": stored, "pages_checked": len(pages)})
}

// rowsWritten is how many rows the counts differ by, table by table (a row added and one
// removed are two).
func rowsWritten(before, after map[string]int64) int64 {
	var n int64
	for tb := range before {
		d := after[tb] - before[tb]
		n += max(d, -d)
	}
	for tb, v := range after {
		if _, ok := before[tb]; !ok {
			n += v
		}
	}
	return n
}

func csvQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func utf16le(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteByte(byte(r))
		b.WriteByte(byte(r >> 8))
	}
	return b.String()
}
