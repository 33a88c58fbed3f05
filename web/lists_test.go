package web

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
)

// listEnv records officers of Newport and Cardiff, time for both (three Newport entries in two
// periods, one Cardiff entry) and two expenditure lines. It returns the time entry ids in the
// order recorded.
func listEnv(t *testing.T) (*testEnv, []int64) {
	t.Helper()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	e.seedOfficer("GB-CRF", "CRF-1", "Dafydd Jones")
	var ids []int64
	for _, te := range []map[string]any{timeEntry("GB-NWP", "NWP-1", "2021-02-01"), timeEntry("GB-CRF", "CRF-1", "2021-02-01"),
		timeEntry("GB-NWP", "NWP-1", "2021-02-02"), timeEntry("GB-NWP", "NWP-1", "2021-04-06")} {
		res := e.do("POST", "/api/v1/time-entries", "pm", te)
		if res.status != http.StatusCreated {
			t.Fatalf("time: %d %s", res.status, res.body)
		}
		var out timeEntryJSON
		res.json(t, &out)
		ids = append(ids, out.ID)
	}
	for i, exp := range []map[string]any{
		{"heading": "delivery", "defrayed_on": "2021-03-01", "payee": "Nesta", "description": "Lab facilitation", "amount": "18250.00", "evidence_ref": "INV-1"},
		{"heading": "other", "defrayed_on": "2021-04-12", "payee": "Venue Ltd", "description": "Room hire", "amount": "420.00", "evidence_ref": "INV-2"},
	} {
		if res := e.do("POST", "/api/v1/expenditure", "pm", exp); res.status != http.StatusCreated {
			t.Fatalf("expenditure %d: %d %s", i, res.status, res.body)
		}
	}
	return e, ids
}

type timeList struct {
	Entries []timeEntryJSON `json:"time_entries"`
	Next    int64           `json:"next_before"`
}

func (e *testEnv) timeList(t *testing.T, user, query string) timeList {
	t.Helper()
	res := e.do("GET", "/api/v1/time-entries"+query, user, nil)
	if res.status != http.StatusOK {
		t.Fatalf("time-entries%s as %s: %d %s", query, user, res.status, res.body)
	}
	var l timeList
	res.json(t, &l)
	return l
}

func (l timeList) ids() []int64 {
	out := []int64{}
	for _, e := range l.Entries {
		out = append(out, e.ID)
	}
	return out
}

func TestListsThroughAPI(t *testing.T) {
	t.Parallel()
	e, ids := listEnv(t)

	// Each finance officer sees only their own authority's time and officers.
	if got := e.timeList(t, "fo", "").ids(); !slices.Equal(got, []int64{ids[3], ids[2], ids[0]}) {
		t.Errorf("Newport's finance officer lists %v", got)
	}
	if got := e.timeList(t, "fo2", "").ids(); !slices.Equal(got, []int64{ids[1]}) {
		t.Errorf("Cardiff's finance officer lists %v", got)
	}
	var officers struct {
		Officers []officerJSON `json:"officers"`
	}
	e.do("GET", "/api/v1/officers", "fo", nil).json(t, &officers)
	if len(officers.Officers) != 1 || officers.Officers[0].Authority != "GB-NWP" || officers.Officers[0].Versions[0].HourlyRate != "32.5218" {
		t.Errorf("officers %+v", officers)
	}
	for _, path := range []string{"/api/v1/time-entries?authority=GB-CRF", "/api/v1/officers?authority=GB-CRF"} {
		res := e.do("GET", path, "fo", nil)
		if res.status != http.StatusForbidden || res.errorBody(t).Rule != access.RuleV8 {
			t.Errorf("%s as Newport's finance officer: %d %s", path, res.status, res.body)
		}
	}

	// Keyset pages, newest first, cover every entry once.
	first := e.timeList(t, "pm", "?limit=3")
	if len(first.Entries) != 3 || first.Next != first.Entries[2].ID {
		t.Fatalf("first page %v next %d", first.ids(), first.Next)
	}
	second := e.timeList(t, "pm", "?limit=3&before="+itoa(first.Next))
	if got := append(first.ids(), second.ids()...); !slices.Equal(got, []int64{ids[3], ids[2], ids[1], ids[0]}) || second.Next != 0 {
		t.Errorf("pages %v, then next %d", got, second.Next)
	}

	// Filters.
	if res := e.do("POST", "/api/v1/corrections", "pm", map[string]any{"time_entry_id": ids[2], "reason": "wrong day"}); res.status != http.StatusCreated {
		t.Fatalf("correction: %d %s", res.status, res.body)
	}
	for _, c := range []struct {
		query string
		want  []int64
	}{
		{"?period=2021Q2", []int64{ids[3]}},
		{"?status=reversed", []int64{ids[2]}},
		{"?status=live&authority=GB-NWP", []int64{ids[3], ids[0]}},
		{"?payroll_ref=CRF-1", []int64{ids[1]}},
	} {
		if got := e.timeList(t, "auditor", c.query).ids(); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.query, got, c.want)
		}
	}

	// Expenditure is the programme's cash: read by whoever reads claims, not by the admin.
	var cash struct {
		Lines []expenditureJSON `json:"expenditure"`
	}
	e.do("GET", "/api/v1/expenditure?heading=other", "fo", nil).json(t, &cash)
	if len(cash.Lines) != 1 || cash.Lines[0].Payee != "Venue Ltd" {
		t.Errorf("expenditure %+v", cash)
	}
	if res := e.do("GET", "/api/v1/expenditure", "admin", nil); res.status != http.StatusForbidden || res.errorBody(t).Rule != access.RuleRole {
		t.Errorf("admin reads expenditure: %d %s", res.status, res.body)
	}

	// Bad filters are refused with the error body.
	for _, q := range []string{"?limit=many", "?limit=500", "?status=gone", "?period=1999Q1", "?heading=staff"} {
		res := e.do("GET", "/api/v1/time-entries"+q, "pm", nil)
		b := res.errorBody(t)
		if res.status != http.StatusUnprocessableEntity || b.Code != "invalid" || b.Rule == "" || b.Message == "" || b.RequestID == "" {
			t.Errorf("%s: %d %s", q, res.status, res.body)
		}
	}
}

var olderLink = regexp.MustCompile(`<a href="(/time\?[^"]*before=\d+[^"]*)" rel="next">`)

func TestListsOnPages(t *testing.T) {
	t.Parallel()
	e, ids := listEnv(t)

	// Newport's finance officer never sees Cardiff's officers or time.
	fo := e.signIn("fo")
	for _, path := range []string{"/time", "/officers"} {
		page := string(fo.get(path).body)
		if !strings.Contains(page, "Rhian Evans") || strings.Contains(page, "Dafydd Jones") || strings.Contains(page, "CRF-1") {
			t.Errorf("%s as Newport's finance officer shows another authority's rows, or not its own", path)
		}
		if !strings.Contains(page, `<form method="get" action="`+path+`" class="filters" role="search"`) || !strings.Contains(page, "<caption>") {
			t.Errorf("%s lacks its filter form or table caption", path)
		}
	}
	for _, path := range []string{"/time?authority=GB-CRF", "/officers?authority=GB-CRF"} {
		if res := fo.get(path); res.status != http.StatusForbidden {
			t.Errorf("%s as Newport's finance officer: %d", path, res.status)
		}
	}
	// The finance officer reverses their own entries from the list; expenditure they only read.
	if page := string(fo.get("/time").body); !strings.Contains(page, `href="/time?correct=`+itoa(ids[0])+`#corr-h"`) {
		t.Error("the finance officer's list offers no reverse link for their own entry")
	}
	if page := string(fo.get("/expenditure").body); !strings.Contains(page, "Venue Ltd") || strings.Contains(page, `method="post" action="/expenditure"`) {
		t.Error("the finance officer's expenditure page is not a read-only list")
	}

	// Pages follow the filters; the last page has no link onwards.
	pm := e.signIn("pm")
	page := string(pm.get("/time?authority=GB-NWP&limit=2").body)
	m := olderLink.FindStringSubmatch(page)
	if m == nil || !strings.Contains(m[1], "authority=GB-NWP") {
		t.Fatalf("no link to older entries keeping the filter:\n%s", page)
	}
	older := string(pm.get(strings.ReplaceAll(m[1], "&amp;", "&") + "&limit=2").body)
	if !strings.Contains(older, `<th scope="row">`+itoa(ids[0])+`</th>`) || olderLink.MatchString(older) {
		t.Errorf("second page does not end the list with entry %d", ids[0])
	}

	// A reverse link fills the correction form; the correction of an expenditure line returns to
	// its list, which shows it reversed.
	var nesta struct {
		Lines []expenditureJSON `json:"expenditure"`
	}
	e.do("GET", "/api/v1/expenditure?heading=delivery", "pm", nil).json(t, &nesta)
	id := itoa(nesta.Lines[0].ID)
	if form := string(pm.get("/expenditure").body); !strings.Contains(form, `href="/expenditure?correct=`+id+`#corr-h"`) {
		t.Fatalf("no reverse link for line %s:\n%s", id, form)
	}
	if form := string(pm.get("/expenditure?correct=" + id).body); !strings.Contains(form, `id="corr-line-id" name="line_id" type="text" value="`+id+`"`) {
		t.Fatalf("the reverse link does not fill the form:\n%s", form)
	}
	// The line is shown for confirmation first, with where its reversal is booked; nothing is
	// reversed until it is confirmed.
	res := pm.post("/corrections", url.Values{"kind": {"expenditure"}, "line_id": {id}, "reason": {"duplicate invoice"}})
	for _, want := range []string{"Reverse this line?", "Nesta", "duplicate invoice", `name="confirm" value="1"`, "booked into the line&#39;s own period"} {
		if res.status != http.StatusOK || !strings.Contains(string(res.body), want) {
			t.Fatalf("confirmation of the correction lacks %q: %d\n%s", want, res.status, res.body)
		}
	}
	if page := string(pm.get("/expenditure?status=reversed").body); strings.Contains(page, "Nesta") {
		t.Fatal("the line was reversed before the reversal was confirmed")
	}
	booked := regexp.MustCompile(`name="booked_into" value="([^"]+)"`).FindStringSubmatch(string(res.body))
	if booked == nil {
		t.Fatal("the confirmation does not carry the period it showed")
	}
	// A confirmation of another period than the one now to be booked into (a claim submitted
	// meanwhile) is shown again, saying so, and reverses nothing.
	res = pm.post("/corrections", url.Values{"kind": {"expenditure"}, "line_id": {id}, "reason": {"duplicate invoice"}, "confirm": {"1"}, "booked_into": {"2020Q1"}})
	if res.status != http.StatusConflict || !strings.Contains(string(res.body), "the period this reversal is booked into has changed") {
		t.Fatalf("a confirmation of another period: %d\n%s", res.status, res.body)
	}
	res = pm.post("/corrections", url.Values{"kind": {"expenditure"}, "line_id": {id}, "reason": {"duplicate invoice"}, "confirm": {"1"}, "booked_into": {booked[1]}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/expenditure?done=correction" {
		t.Fatalf("correction: %d %q %s", res.status, res.header.Get("Location"), res.body)
	}
	if page := string(pm.get("/expenditure?status=reversed").body); !strings.Contains(page, "Nesta") || strings.Contains(page, "Venue Ltd") {
		t.Error("the reversed filter does not show exactly the reversed line")
	}

	// The auditor reads every list and can change nothing from them.
	aud := e.signIn("auditor")
	for _, path := range []string{"/officers", "/time", "/expenditure"} {
		res := aud.get(path)
		body := string(res.body)
		if res.status != http.StatusOK || !strings.Contains(body, "<tbody>") {
			t.Errorf("auditor %s: %d", path, res.status)
		}
		if n := strings.Count(body, `method="post"`); n != 1 || strings.Contains(body, "?correct=") {
			t.Errorf("auditor %s offers changes: %d post forms", path, n)
		}
	}

	// In Welsh.
	pm.get("/lang/cy")
	page = string(pm.get("/time").body)
	for _, want := range []string{"Amser a gofnodwyd", "Gwrthdroi", "Cofnodion amser, y diweddaraf yn gyntaf", "Cyfredol"} {
		if !strings.Contains(page, want) {
			t.Errorf("Welsh time page lacks %q", want)
		}
	}
}

// TestFiltersRefuseUnstorableText: a filter holding a NUL character or bytes that are not UTF-8
// is refused as M1, on every list, page and API, never an internal error.
func TestFiltersRefuseUnstorableText(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	pm := e.signIn("pm")
	for _, path := range []string{"/time?payroll_ref=%00", "/officers?payroll_ref=%ff", "/audit?actor=%00", "/claims/2021Q1/lines?heading=%ff"} {
		if res := pm.get(path); res.status != http.StatusUnprocessableEntity || !strings.Contains(string(res.body), "M1") {
			t.Errorf("page %s: %d", path, res.status)
		}
	}
	for _, path := range []string{"/api/v1/time-entries?payroll_ref=%00", "/api/v1/audit?actor=%ff", "/api/v1/officers?x%00=1",
		"/api/v1/ledger/entries/1%00"} {
		if res := e.do("GET", path, "auditor", nil); res.status != http.StatusUnprocessableEntity || res.errorBody(t).Rule != "M1" {
			t.Errorf("API %s: %d %s", path, res.status, res.body)
		}
	}
}

// TestClaimLinesRefuseUnknownFilters: a claim's lines for a heading or an authority that does not
// exist are refused (M2), not shown as an empty list.
func TestClaimLinesRefuseUnknownFilters(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.claimSteps("2021Q1", "compile")
	for _, q := range []string{"heading=bogus", "authority=GB-ZZZ", "heading=officer_time&authority=GB-ZZZ"} {
		if res := e.do("GET", "/api/v1/claims/2021Q1/lines?"+q, "auditor", nil); res.status != http.StatusUnprocessableEntity || res.errorBody(t).Rule != "M2" {
			t.Errorf("%s: %d %s", q, res.status, res.body)
		}
	}
	for _, q := range []string{"heading=officer_time", "heading=indirect", "authority=GB-NWP"} {
		if res := e.do("GET", "/api/v1/claims/2021Q1/lines?"+q, "auditor", nil); res.status != http.StatusOK {
			t.Errorf("%s: %d %s", q, res.status, res.body)
		}
	}
}

// TestClaimLinesPage: late officer time shows the period it relates to, and a reversal its
// activity in words with the entry it reverses and why.
func TestClaimLinesPage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	e.recordTime("GB-NWP", "NWP-1", "2021-02-01")
	e.claimSteps("2021Q1", "compile", "review", "submit")
	e.recordTime("GB-NWP", "NWP-1", "2021-03-01")
	list := e.timeList(t, "fo", "?authority=GB-NWP")
	var first int64
	for _, l := range list.Entries {
		if l.WorkDate == "2021-02-01" {
			first = l.ID
		}
	}
	if res := e.do("POST", "/api/v1/corrections", "fo", map[string]any{"time_entry_id": first, "reason": "wrong day"}); res.status != 201 {
		t.Fatalf("correction: %d %s", res.status, res.body)
	}
	e.claimSteps("2021Q2", "compile")
	page := string(e.signIn("pm").get("/claims/2021Q2/lines?heading=officer_time").body)
	// The late line and the reversal of another of the same hours: the lines add up to nothing.
	for _, want := range []string{"late, relates to 2021Q1", "Lab (reversal of entry #", ": wrong day)",
		`<th scope="row" colspan="4">Total of the lines listed</th><td class="num">0.00</td><td colspan="2"></td><td class="num">£0.00</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the lines page lacks %q", want)
		}
	}
	if strings.Contains(page, "activity.") {
		t.Errorf("the lines page shows a message key:\n%s", page)
	}
}

// TestWritesRefuseUnstorableText: a form field or a JSON string holding a NUL character or bytes
// that are not UTF-8 is refused as M1 on every write, never an internal error, and nothing is
// written.
func TestWritesRefuseUnstorableText(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	fo, admin := e.signIn("fo"), e.signIn("admin")
	for _, c := range []struct {
		b    *browser
		path string
		form url.Values
	}{
		{fo, "/time", url.Values{"authority": {"GB-NWP"}, "payroll_ref": {"\xff"}, "work_date": {"2021-02-01"}, "hours": {"3"}, "activity": {"lab"}, "evidence_ref": {"E"}, "approved_by": {"X"}}},
		{fo, "/time", url.Values{"authority": {"GB-NWP"}, "payroll_ref": {"NWP-1"}, "work_date": {"2021-02-01"}, "hours": {"3"}, "activity": {"lab"}, "evidence_ref": {"E"}, "approved_by": {"a\x00b"}}},
		{admin, "/admin/users", url.Values{"email": {"\xffuat@example.org"}, "name": {"U"}, "role": {"auditor"}}},
		{admin, "/admin/tokens", url.Values{"name": {"a\x00b"}}},
	} {
		if res := c.b.post(c.path, c.form); res.status != http.StatusUnprocessableEntity || !strings.Contains(string(res.body), "M1") {
			t.Errorf("POST %s %v: %d", c.path, c.form, res.status)
		}
	}
	if res := e.do("POST", "/api/v1/users", "admin", `{"email":"n@x.org","name":"a\u0000b","role":"auditor"}`); res.status != http.StatusUnprocessableEntity || res.errorBody(t).Rule != "M1" {
		t.Errorf("API user with NUL: %d %s", res.status, res.body)
	}
	// A backslash escaped before "u0000" is no NUL.
	if res := e.do("POST", "/api/v1/users", "admin", `{"email":"n@x.org","name":"a\\u0000b","role":"auditor"}`); res.status != http.StatusCreated {
		t.Errorf("API user named with a backslash: %d %s", res.status, res.body)
	}
	users := string(admin.get("/admin/users").body)
	if strings.Contains(users, "uat@example.org") {
		t.Error("a user with an unstorable email was added")
	}
}

func TestLateOnly(t *testing.T) {
	for q, want := range map[string]bool{"": false, "late=0": false, "late=false": false, "late=1": true, "late=true": true, "late=on": true} {
		v, _ := url.ParseQuery(q)
		if got := lateOnly(v); got != want {
			t.Errorf("lateOnly(%q) = %v, want %v", q, got, want)
		}
	}
}

// TestAuditLogFilters: the audit log's action filter offers every action by name and each family
// whole, the actor filter finds an email however it is cased, and the link to older events keeps
// the filters.
func TestAuditLogFilters(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	ctx := context.Background()
	pmEmail := testUsers["pm"].Email
	for i := range 200 { // 150 compiles, 50 verifications
		action := "claims.compile"
		if i%4 == 0 {
			action = "ledger.verify"
		}
		if err := e.auth.Record(ctx, auth.Event{Actor: pmEmail, ActorRole: "programme_manager", Action: action, Target: "2021Q1"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	auditor := e.signIn("auditor")
	page := string(auditor.get("/audit?action=claims.&actor=" + url.QueryEscape(strings.ToUpper(pmEmail))).body)
	for _, want := range []string{`<option value="claims." selected>Claims: every step</option>`, `<option value="ledger.verify">Ledger verified</option>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the action filter lacks %q", want)
		}
	}
	if n := strings.Count(page, `<span class="code small">claims.compile</span>`); n != 100 || strings.Contains(page, `<span class="code small">ledger.verify</span>`) {
		t.Errorf("the filtered first page shows %d compiles, or other actions", n)
	}
	m := regexp.MustCompile(`<a href="(/audit\?[^"]+)">`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no link to older events:\n%s", page)
	}
	older := html.UnescapeString(m[1])
	if !strings.Contains(older, "action=claims.") || !strings.Contains(older, "actor=") || !strings.Contains(older, "before=") {
		t.Fatalf("the link to older events drops the filters: %s", older)
	}
	page = string(auditor.get(older).body)
	if n := strings.Count(page, `<span class="code small">claims.compile</span>`); n == 0 || strings.Contains(page, `<span class="code small">ledger.verify</span>`) {
		t.Errorf("older events: %d compiles, or other actions", n)
	}
	// An admin's account log offers only sign-ins and account changes.
	if page := string(e.signIn("admin").get("/admin/audit").body); strings.Contains(page, `value="claims.`) || !strings.Contains(page, `value="users.disable"`) {
		t.Error("the account log's action filter offers actions beyond accounts")
	}
}
