package web

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's chromium through chromedp: what a person does, in a real
// browser, with axe-core checking every page for accessibility (WCAG 2.2 AA rules). In CI
// (CI=true) a missing chromium or axe-core fails the test; elsewhere it skips with a message.
// Screenshots of the main pages in both languages go to INFUSE_SHOTS (default
// infuse-shots in the temporary directory), outside the repository, to be looked at.

// browserDeps returns chromium's path and axe-core's source, or stops the test.
func browserDeps(t *testing.T) (string, string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		missing("chromium is not installed (apt-get install -y chromium): browser tests not run")
	}
	axe, err := os.ReadFile(filepath.Join("e2e", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		missing("axe-core is not installed (cd web/e2e && npm ci): browser tests not run: %v", err)
	}
	return bin, string(axe)
}

type runtimeEvaluateParams = runtime.EvaluateParams

type browserRun struct {
	t     *testing.T
	ctx   context.Context
	base  string
	axe   string
	shots string
	pages int
}

func newBrowser(t *testing.T, base, bin, axe string) *browserRun {
	t.Helper()
	// Not t.TempDir: the testing package fails a test whose temporary directory it cannot
	// remove, and chromium may still be writing its profile as the test ends.
	profile, err := os.MkdirTemp("", "infuse-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelT()
		cancelC()
		cancelA()
		// Chromium's helpers may still be writing the profile for a moment after the browser
		// is told to stop: remove it with a few tries rather than fail the test on it.
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	shots := os.Getenv("INFUSE_SHOTS")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "infuse-shots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browserRun{t: t, ctx: ctx, base: base, axe: axe, shots: shots}
	b.run(chromedp.ActionFunc(func(ctx context.Context) error { return cdppage.SetBypassCSP(true).Do(ctx) }))
	return b
}

func (b *browserRun) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// open loads path and checks it with axe.
func (b *browserRun) open(path string) {
	b.t.Helper()
	b.run(chromedp.Navigate(b.base+path), chromedp.WaitReady("body"))
	b.checkA11y(path)
}

type axeResult struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// checkA11y runs axe-core on the current page: no serious or critical violation of the WCAG
// 2.0–2.2 A and AA rules.
func (b *browserRun) checkA11y(what string) {
	b.t.Helper()
	b.pages++
	var raw string
	script := b.axe + `;
		(async () => {
			const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}});
			return JSON.stringify(r.violations);
		})()`
	b.run(chromedp.Evaluate(script, &raw, func(p *runtimeEvaluateParams) *runtimeEvaluateParams { return p.WithAwaitPromise(true) }))
	var vs []axeResult
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		b.t.Fatalf("axe on %s: %v", what, err)
	}
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			var where []string
			for _, n := range v.Nodes {
				where = append(where, n.HTML)
			}
			b.t.Errorf("axe %s on %s: %s (%s): %s", v.Impact, what, v.ID, v.Help, strings.Join(where, " | "))
		}
	}
}

// shot saves a full-page screenshot as name.png.
func (b *browserRun) shot(name string) {
	b.t.Helper()
	var png []byte
	b.run(chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browserRun) text(sel string) string {
	b.t.Helper()
	var s string
	b.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

func (b *browserRun) signIn(user string) {
	b.t.Helper()
	b.open("/signin")
	b.run(chromedp.SendKeys("#email", testUsers[user].Email, chromedp.ByQuery),
		chromedp.SendKeys("#password", testPassword, chromedp.ByQuery),
		chromedp.Click(`button[type=submit].button`, chromedp.ByQuery), chromedp.WaitVisible(`nav.site-nav`, chromedp.ByQuery))
}

func (b *browserRun) signOut() {
	b.t.Helper()
	b.run(chromedp.Click(`form[action="/signout"] button`, chromedp.ByQuery), chromedp.WaitVisible(`#email`, chromedp.ByQuery))
}

func TestBrowser(t *testing.T) {
	bin, axe := browserDeps(t)
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-004417", "Rhian Evans")
	e.seedOfficer("GB-CRF", "CRF-1", "Dafydd Jones")
	if res := e.do("POST", "/api/v1/time-entries", "pm", timeEntry("GB-CRF", "CRF-1", "2021-03-02")); res.status != 201 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	if res := e.do("POST", "/api/v1/expenditure", "pm", map[string]any{"heading": "delivery", "defrayed_on": "2021-03-01", "payee": "Nesta",
		"description": "Lab facilitation, cohort Alpha", "amount": "18250.00", "evidence_ref": "INV-88213", "invoice_ref": "88213"}); res.status != 201 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	b := newBrowser(t, e.ts.URL, bin, axe)

	t.Run("FinanceOfficerRecordsTimeAndSeesTheBadRow", func(t *testing.T) {
		b.t = t
		b.signIn("fo")
		b.shot("en-dashboard-fo")
		b.open("/time")
		b.run(chromedp.SetValue("#time-authority", "GB-NWP", chromedp.ByQuery),
			chromedp.SendKeys("#time-payroll-ref", "NWP-004417", chromedp.ByQuery),
			chromedp.SetValue("#time-work-date", "2021-05-04", chromedp.ByQuery),
			chromedp.SendKeys("#time-hours", "7.25", chromedp.ByQuery),
			chromedp.SetValue("#time-activity", "lab", chromedp.ByQuery),
			chromedp.SendKeys("#time-evidence-ref", "TS-2021-05-NWP-0117", chromedp.ByQuery),
			chromedp.SendKeys("#time-approved-by", "Gareth Morgan", chromedp.ByQuery),
			chromedp.Click(`form[action="/time"] button[type=submit]`, chromedp.ByQuery),
			chromedp.WaitVisible(`.notice`, chromedp.ByQuery))
		b.checkA11y("/time after recording")
		if got := b.text("main"); !strings.Contains(got, "Time recorded") || !strings.Contains(got, "Rhian Evans") {
			t.Errorf("after recording: %s", got)
		}
		b.shot("en-time-recorded")
		csv := "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n" +
			"GB-NWP,NWP-004417,2021-05-05,7.5,lab,TS-1,Gareth Morgan\n" +
			"GB-NWP,NWP-004417,2021-05-06,7.5,juggling,TS-2,Gareth Morgan\n" +
			"GB-NWP,NWP-004417,2021-05-07,3,coaching,TS-3,Gareth Morgan\n"
		file := filepath.Join(t.TempDir(), "time.csv")
		if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
			t.Fatal(err)
		}
		b.run(chromedp.SetUploadFiles(`#file-time`, []string{file}, chromedp.ByQuery),
			chromedp.Click(`form[action="/time/import"] button[type=submit]`, chromedp.ByQuery),
			chromedp.WaitVisible(`#row-3`, chromedp.ByQuery))
		b.checkA11y("/time/import with a bad row")
		row := b.text("#row-3")
		if !strings.Contains(row, "juggling") || !strings.Contains(row, "M2") {
			t.Errorf("row 3 and its error: %q", row)
		}
		var bad int
		b.run(chromedp.Evaluate(`document.querySelectorAll('tr.row-error').length`, &bad))
		if bad != 1 {
			t.Errorf("%d rows marked bad, want 1", bad)
		}
		b.shot("en-time-import-error")
		// The lists: Newport's officer sees Newport's officers and time, never Cardiff's.
		for _, p := range []string{"/officers", "/time?status=live", "/expenditure"} {
			b.open(p)
			if got := b.text("main"); strings.Contains(got, "Dafydd Jones") || strings.Contains(got, "CRF-1") {
				t.Errorf("%s shows Cardiff's records to Newport's finance officer", p)
			}
		}
		b.shot("en-expenditure-fo")
		b.signOut()
	})

	t.Run("ProgrammeManagerSubmitsAndDownloadsThePack", func(t *testing.T) {
		b.t = t
		for _, s := range []struct{ path, user string }{{"/api/v1/claims/2021Q1/compile", "pm"}, {"/api/v1/claims/2021Q1/review", "pm2"}} {
			if res := e.do("POST", s.path, s.user, nil); res.status != 200 {
				t.Fatalf("%s: %d %s", s.path, res.status, res.body)
			}
		}
		b.signIn("pm")
		b.shot("en-dashboard")
		b.open("/claims")
		b.shot("en-claims")
		b.open("/claims/2021Q1")
		b.shot("en-claim-reviewed")
		b.run(chromedp.Click(`#submit-confirm`, chromedp.ByQuery),
			chromedp.Click(`form[action="/claims/2021Q1/submit"] button`, chromedp.ByQuery), chromedp.WaitVisible(`.notice`, chromedp.ByQuery))
		b.checkA11y("/claims/2021Q1 submitted")
		if got := b.text("h1"); !strings.Contains(got, "submitted") {
			t.Errorf("claim heading after submission: %q", got)
		}
		b.shot("en-claim-submitted")
		var got struct {
			Status int    `json:"status"`
			Start  string `json:"start"`
			Type   string `json:"type"`
		}
		var raw string
		b.run(chromedp.Evaluate(`(async () => {
			const a = document.querySelector('a[href$="/pack/claim.pdf"]');
			const r = await fetch(a.href);
			const t = await r.text();
			return JSON.stringify({status: r.status, start: t.slice(0, 5), type: r.headers.get('content-type')});
		})()`, &raw, func(p *runtimeEvaluateParams) *runtimeEvaluateParams { return p.WithAwaitPromise(true) }))
		_ = json.Unmarshal([]byte(raw), &got)
		if got.Status != 200 || got.Start != "%PDF-" || got.Type != "application/pdf" {
			t.Errorf("pack download: %+v", got)
		}
		b.open("/claims/2021Q1/lines?heading=officer_time")
		b.shot("en-claim-lines")
		b.open("/expenditure")
		b.shot("en-expenditure")
		// Reverse a time entry from the list: the link fills the correction form, and the line
		// is shown for confirmation before it is reversed.
		b.open("/time")
		b.run(chromedp.Click(`a[href^="/time?correct="]`, chromedp.ByQuery), chromedp.WaitVisible(`#corr-reason`, chromedp.ByQuery),
			chromedp.SendKeys("#corr-reason", "recorded against the wrong officer", chromedp.ByQuery),
			chromedp.Click(`form[action="/corrections"] button[type=submit]`, chromedp.ByQuery),
			chromedp.WaitReady(`input[name="confirm"]`, chromedp.ByQuery))
		if got := b.text("main dl"); !strings.Contains(got, "recorded against the wrong officer") {
			t.Errorf("the confirmation does not show the line and reason: %q", got)
		}
		b.checkA11y("the confirmation of a reversal")
		b.shot("en-correction-confirm")
		b.run(chromedp.Click(`form[action="/corrections"] button[type=submit]`, chromedp.ByQuery),
			chromedp.WaitVisible(`#corr-reason`, chromedp.ByQuery), chromedp.WaitVisible(`.notice`, chromedp.ByQuery))
		b.checkA11y("/time after a reversal")
		b.open("/time?status=reversed")
		if got := b.text("main table tbody"); !strings.Contains(got, "Reversed") {
			t.Errorf("reversed entries: %q", got)
		}
		b.shot("en-time-reversed")
		b.open("/officers?authority=GB-NWP&payroll_ref=NWP-004417")
		b.shot("en-officers")
		b.signOut()
	})

	t.Run("AuditorCanChangeNothing", func(t *testing.T) {
		b.t = t
		b.signIn("auditor")
		pages := []string{"/", "/claims", "/claims/2021Q1", "/claims/2021Q1/lines", "/ledger", "/audit", "/officers", "/time",
			"/expenditure"}
		var entry string
		for _, p := range pages {
			b.open(p)
			var forms []string
			b.run(chromedp.Evaluate(`Array.from(document.querySelectorAll('form')).filter(f => f.method.toLowerCase() === 'post' && !['/signout', '/ledger/verify'].includes(f.getAttribute('action'))).map(f => f.getAttribute('action'))`, &forms))
			if len(forms) > 0 {
				t.Errorf("%s offers the auditor forms that change things: %v", p, forms)
			}
			if p == "/claims/2021Q1/lines" {
				b.run(chromedp.AttributeValue(`a[href^="/ledger/entries/"]`, "href", &entry, nil, chromedp.ByQuery))
			}
		}
		// The verification is a form with a button: it works without JavaScript.
		b.open("/ledger")
		b.run(chromedp.Click(`form[action="/ledger/verify"] button`, chromedp.ByQuery), chromedp.WaitVisible(`.notice`, chromedp.ByQuery))
		b.checkA11y("/ledger/verify")
		if got := b.text(".notice"); !strings.Contains(got, "The ledger verifies") {
			t.Errorf("verification: %q", got)
		}
		b.shot("en-ledger-verified")
		b.open(entry)
		b.shot("en-ledger-entry")
		b.open("/audit")
		b.shot("en-audit")
		// Unsafe requests from the auditor's own session are refused, token or not.
		var statuses []int
		b.run(chromedp.Evaluate(`(async () => {
			const token = document.querySelector('input[name=_csrf]').value;
			const out = [];
			for (const [path, body] of [['/time', 'authority=GB-NWP'], ['/claims/2021Q2/compile', ''], ['/admin/tokens', 'email=x@y.z']]) {
				const r = await fetch(path, {method: 'POST', body: body + '&_csrf=' + token, headers: {'Content-Type': 'application/x-www-form-urlencoded'}, redirect: 'manual'});
				out.push(r.status);
			}
			const r = await fetch('/api/v1/claims/2021Q2/compile', {method: 'POST', headers: {'X-CSRF-Token': token}});
			out.push(r.status);
			return out;
		})()`, &statuses, func(p *runtimeEvaluateParams) *runtimeEvaluateParams { return p.WithAwaitPromise(true) }))
		for i, s := range statuses {
			if s != 403 {
				t.Errorf("auditor's unsafe request %d: status %d", i, s)
			}
		}
		b.signOut()
	})

	t.Run("SwitchToWelsh", func(t *testing.T) {
		b.t = t
		b.open("/signin")
		b.run(chromedp.Click(`a.lang`, chromedp.ByQuery), chromedp.WaitVisible(`html[lang=cy]`, chromedp.ByQuery))
		b.checkA11y("/signin in Welsh")
		if h := b.text("h1"); h != "Mewngofnodi" {
			t.Errorf("Welsh sign-in heading %q", h)
		}
		b.shot("cy-signin")
		b.signIn("pm")
		if got := b.text("nav.site-nav"); !strings.Contains(got, "Hawliadau") || !strings.Contains(got, "Gwariant") {
			t.Errorf("Welsh navigation %q", got)
		}
		for _, p := range []struct{ path, name string }{{"/", "cy-dashboard"}, {"/claims", "cy-claims"}, {"/claims/2021Q1", "cy-claim"},
			{"/time", "cy-time"}, {"/expenditure", "cy-expenditure"}, {"/officers?authority=GB-NWP&payroll_ref=NWP-004417", "cy-officers"},
			{"/audit", "cy-audit"}} {
			b.open(p.path)
			var lang string
			b.run(chromedp.AttributeValue("html", "lang", &lang, nil, chromedp.ByQuery))
			if lang != "cy" {
				t.Errorf("%s lang=%q", p.path, lang)
			}
			b.shot(p.name)
		}
		b.signOut()
		b.signIn("admin")
		b.open("/admin/users")
		b.shot("cy-users")
		b.open("/admin/tokens")
		b.shot("cy-tokens")
		b.run(chromedp.Click(`a.lang`, chromedp.ByQuery), chromedp.WaitVisible(`html[lang=en]`, chromedp.ByQuery))
		b.shot("en-tokens")
		b.open("/admin/users")
		b.shot("en-users")
		// Disabling a user asks first, naming them; Cancel leaves them as they were.
		b.run(chromedp.Click(`form[action="/admin/users/disable"] button`, chromedp.ByQuery),
			chromedp.WaitReady(`input[name="confirm"]`, chromedp.ByQuery))
		if got := b.text("main dl"); !strings.Contains(got, "@") {
			t.Errorf("the confirmation of disabling does not name the user: %q", got)
		}
		b.checkA11y("the confirmation of disabling a user")
		b.shot("en-users-disable-confirm")
		b.run(chromedp.Click(`main a.button.secondary`, chromedp.ByQuery), chromedp.WaitVisible(`form[action="/admin/users/disable"]`, chromedp.ByQuery))
		b.signOut()
		b.open("/signin")
		b.shot("en-signin")
	})
	t.Logf("axe checked %d pages; screenshots in %s", b.pages, b.shots)
}
