package web

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/csv"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
	"github.com/ccr-infuse/infuse/reports"
)

// uiRoutes are the pages. Every action is a plain form post (POST-redirect-GET on success), so
// the UI works without JavaScript.
func (s *Server) uiRoutes() []route {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	return []route{
		{method: "GET", pattern: "/static/", public: true, handler: func(w http.ResponseWriter, r *http.Request) error {
			if strings.HasSuffix(r.URL.Path, "/") { // a directory: its files are the pages' to name
				return noPage(r.URL.Path)
			}
			w.Header().Set("Cache-Control", "public, max-age=3600")
			files.ServeHTTP(w, r)
			return nil
		}},
		{method: "GET", pattern: "/lang/{lang}", public: true, ui: true, handler: s.uiLang},
		{method: "GET", pattern: "/signin", public: true, ui: true, handler: s.uiSignInForm},
		{method: "POST", pattern: "/signin", public: true, ui: true, handler: s.uiSignIn},
		{method: "POST", pattern: "/signout", ui: true, handler: s.uiSignOut},

		{method: "GET", pattern: "/{$}", ui: true, handler: s.uiDashboard},
		{method: "GET", pattern: "/officers", action: access.ReadRecords, ui: true, handler: s.uiOfficers},
		{method: "POST", pattern: "/officers", action: access.ImportOfficers, ui: true, handler: s.uiRecordOfficer},
		{method: "POST", pattern: "/officers/import", action: access.ImportOfficers, ui: true, upload: true, handler: s.uiImport("officers")},
		{method: "GET", pattern: "/time", action: access.ReadRecords, ui: true, handler: s.uiTime},
		{method: "POST", pattern: "/time", action: access.RecordTime, ui: true, handler: s.uiRecordTime},
		{method: "POST", pattern: "/time/import", action: access.ImportTime, ui: true, upload: true, handler: s.uiImport("time")},
		{method: "POST", pattern: "/corrections", action: access.Correct, ui: true, handler: s.uiCorrect},
		{method: "GET", pattern: "/expenditure", action: access.ReadClaims, ui: true, handler: s.uiExpenditure},
		{method: "POST", pattern: "/expenditure", action: access.RecordExpenditure, ui: true, handler: s.uiRecordExpenditure},
		{method: "POST", pattern: "/expenditure/import", action: access.ImportExpenditure, ui: true, upload: true, handler: s.uiImport("expenditure")},

		{method: "GET", pattern: "/claims", action: access.ReadClaims, ui: true, handler: s.uiClaims},
		{method: "GET", pattern: "/claims/{period}", action: access.ReadClaims, ui: true, handler: s.uiClaim},
		{method: "POST", pattern: "/claims/{period}/compile", action: access.CompileClaim, ui: true, handler: s.uiClaimStep("compile")},
		{method: "POST", pattern: "/claims/{period}/review", action: access.ReviewClaim, ui: true, handler: s.uiClaimStep("review")},
		{method: "POST", pattern: "/claims/{period}/submit", action: access.SubmitClaim, ui: true, handler: s.uiClaimStep("submit")},
		{method: "POST", pattern: "/claims/{period}/decision", action: access.RecordDecision, ui: true, handler: s.uiClaimStep("decide")},
		{method: "POST", pattern: "/claims/{period}/payment", action: access.RecordPayment, ui: true, handler: s.uiClaimStep("pay")},
		{method: "GET", pattern: "/claims/{period}/lines", action: access.ReadClaims, ui: true, handler: s.uiLines},
		{method: "GET", pattern: "/ledger/entries/{id}", action: access.VerifyLedger, ui: true, handler: s.uiEntry},
		{method: "GET", pattern: "/ledger", action: access.VerifyLedger, ui: true, handler: s.uiLedger},
		{method: "POST", pattern: "/ledger/verify", action: access.VerifyLedger, ui: true, handler: s.uiVerify},
		{method: "GET", pattern: "/audit", action: access.VerifyLedger, ui: true, handler: s.uiAudit},

		{method: "GET", pattern: "/admin/users", action: access.ManageUsers, ui: true, handler: s.uiUsers},
		{method: "POST", pattern: "/admin/users", action: access.ManageUsers, ui: true, handler: s.uiAddUser},
		{method: "POST", pattern: "/admin/users/password", action: access.ManageUsers, ui: true, handler: s.uiSetPassword},
		{method: "POST", pattern: "/admin/users/disable", action: access.ManageUsers, ui: true, handler: s.uiSetDisabled(true)},
		{method: "POST", pattern: "/admin/users/enable", action: access.ManageUsers, ui: true, handler: s.uiSetDisabled(false)},
		{method: "GET", pattern: "/admin/tokens", action: access.ManageUsers, ui: true, handler: s.uiTokens},
		{method: "POST", pattern: "/admin/tokens", action: access.ManageUsers, ui: true, handler: s.uiCreateToken},
		{method: "POST", pattern: "/admin/tokens/{id}/revoke", action: access.ManageUsers, ui: true, handler: s.uiRevokeToken},
		{method: "GET", pattern: "/admin/audit", action: access.ReadAccountAudit, ui: true, handler: s.uiAccountAudit},
	}
}

// localPath returns next if it is a path on this site, else "/" (no open redirect).
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

func redirect(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func (s *Server) uiLang(w http.ResponseWriter, r *http.Request) error {
	lang := r.PathValue("lang")
	if lang != "en" && lang != "cy" {
		return apperr.New(apperr.NotFound, apperr.RuleRef, "there is no language %q", lang)
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true,
		Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
	return redirect(w, r, localPath(r.URL.Query().Get("next")))
}

// ---- sign-in ----

type signInPage struct {
	Pre, Next string
	Fields    []field
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request, status int, email string, problems []problem) error {
	pre := ""
	if c, err := r.Cookie(preCookie); err == nil && len(c.Value) == 43 {
		pre = c.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		pre = base64.RawURLEncoding.EncodeToString(b)
		s.setCookie(w, r, preCookie, pre, 3600)
	}
	p := s.newPage(r, "signin.title", nil)
	errText := ""
	if len(problems) > 0 {
		errText = problems[0].Message
	}
	p.Problems = problems
	p.Data = signInPage{Pre: pre, Next: localPath(r.FormValue("next")), Fields: []field{
		{ID: "email", Name: "email", Label: p.T("signin.email"), Type: "email", Value: email, Autocomplete: "username", Required: true, Error: errText},
		{ID: "password", Name: "password", Label: p.T("signin.password"), Type: "password", Autocomplete: "current-password", Required: true},
	}}
	return s.render(w, status, "signin", p)
}

func (s *Server) uiSignInForm(w http.ResponseWriter, r *http.Request) error {
	if stateOf(r).user != nil {
		return redirect(w, r, localPath(r.URL.Query().Get("next")))
	}
	return s.signInPage(w, r, http.StatusOK, "", nil)
}

func (s *Server) uiSignIn(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	// Login CSRF: the form's value must match the cookie set with the form (double submit).
	c, err := r.Cookie(preCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.FormValue("_pre"))) != 1 {
		return apperr.New(apperr.Forbidden, RuleCSRF, "the sign-in form has expired: reload the page and try again")
	}
	email := strings.TrimSpace(r.FormValue("email"))
	previous := ""
	if c, err := r.Cookie(sessionCookie); err == nil {
		previous = c.Value
	}
	sess, err := s.cfg.Auth.SignIn(r.Context(), email, r.FormValue("password"), stateOf(r).client, previous)
	st := stateOf(r)
	who := access.SignInEmail(email)
	ev := auth.Event{Actor: who, Action: "signin", Target: who, RequestID: st.id, Client: st.client}
	if err == nil {
		ev.ActorRole = string(sess.User.Role)
	}
	if xerr := s.cfg.Auth.Record(r.Context(), ev, err); xerr != nil {
		s.log.Error("audit log write failed", "request_id", st.id, "err", xerr)
	}
	if err != nil {
		code, disabled := apperr.CodeOf(err), apperr.RuleOf(err) == auth.RuleDisabled
		if code != apperr.Unauthenticated && code != apperr.Locked && !disabled {
			return err
		}
		_, _, _, status := classify(err)
		msgs := s.pages.catalogs[st.lang]
		msg := msgs["signin.failed"]
		switch {
		case code == apperr.Locked:
			msg = msgs["signin.throttled"]
		case disabled:
			msg = msgs["signin.disabled"]
		}
		return s.signInPage(w, r, status, email, []problem{{Field: "email", Message: msg}})
	}
	s.setCookie(w, r, sessionCookie, sess.ID, int(sess.ExpiresAt.Sub(sess.CreatedAt).Seconds()))
	s.clearCookie(w, r, preCookie)
	return redirect(w, r, localPath(r.FormValue("next")))
}

func (s *Server) uiSignOut(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	var err error
	if st.session != nil {
		err = s.cfg.Auth.SignOut(r.Context(), st.session.ID)
	}
	s.audit(r, "signout", user(r).Email, nil, err)
	if err != nil {
		return err
	}
	s.clearCookie(w, r, sessionCookie)
	return redirect(w, r, "/signin")
}

// ---- dashboard ----

type matchBar struct {
	Code              string
	Delivered, Target decimal.Decimal
	Width             int
	Percent           string
	Y                 int
}

type timelineItem struct {
	Period   string
	Status   string
	Compiled bool
}

type dashboard struct {
	Award, ESFClaimed decimal.Decimal
	ESFWidth          int
	ESFPercent        string
	Match             []matchBar
	MatchDelivered    decimal.Decimal // the match table's totals
	MatchTarget       decimal.Decimal
	MatchHeight       int
	Timeline          []timelineItem
}

func percent(part, whole decimal.Decimal) (decimal.Decimal, string) {
	if !whole.IsPositive() {
		return decimal.Zero, "0"
	}
	pc := part.Mul(decimal.NewFromInt(100)).Div(whole)
	return pc, pc.StringFixed(1)
}

func barWidth(pc decimal.Decimal, full int) int {
	w := pc.Mul(decimal.NewFromInt(int64(full))).Div(decimal.NewFromInt(100)).IntPart()
	if w < 0 {
		return 0
	}
	if w > int64(full) {
		return full
	}
	return int(w)
}

func (s *Server) uiDashboard(w http.ResponseWriter, r *http.Request) error {
	p := s.newPage(r, "dash.title", nil)
	prog := s.cfg.Programme
	d := dashboard{Award: prog.Award}
	canClaims := authorize(r, access.ReadClaims, "") == nil
	if canClaims {
		cs, err := s.cfg.Claims.Claims(r.Context())
		if err != nil {
			return err
		}
		byPeriod := map[string]*claims.Claim{}
		for _, c := range cs {
			byPeriod[c.Period.Code] = c
			if c.Status.Frozen() {
				d.ESFClaimed = c.Figures.ESFDue.Cumulative
			}
		}
		pc, text := percent(d.ESFClaimed, d.Award)
		d.ESFWidth, d.ESFPercent = barWidth(pc, 600), text
		today := s.cfg.Claims.Today()
		for _, per := range claims.Periods(prog) {
			it := timelineItem{Period: per.Code, Status: "open"}
			if c, ok := byPeriod[per.Code]; ok {
				it.Status, it.Compiled = string(c.Status), true
			} else if per.Ended(today) {
				it.Status = "due"
			}
			d.Timeline = append(d.Timeline, it)
		}
		for i, a := range prog.Authorities {
			bal, err := s.cfg.Ledger.Balance(r.Context(), ledger.Match(a.Code))
			if err != nil {
				return err
			}
			delivered := bal.Neg() // income is a credit
			pc, text := percent(delivered, a.MatchTarget)
			d.Match = append(d.Match, matchBar{Code: a.Code, Delivered: delivered, Target: a.MatchTarget, Width: barWidth(pc, 420),
				Percent: text, Y: i * 30})
			d.MatchDelivered, d.MatchTarget = d.MatchDelivered.Add(delivered), d.MatchTarget.Add(a.MatchTarget)
		}
		d.MatchHeight = len(d.Match)*30 + 4
		p.Data = &d
	}
	return s.render(w, http.StatusOK, "dashboard", p)
}

// ---- forms ----

// form collects a form's fields and problems.
type form struct {
	p        *page
	prefix   string
	values   url.Values
	errs     map[string]string
	problems []problem
}

func (s *Server) newForm(p *page, prefix string, values url.Values) *form {
	if values == nil {
		values = url.Values{}
	}
	return &form{p: p, prefix: prefix, values: values, errs: map[string]string{}}
}

func (f *form) id(name string) string { return f.prefix + "-" + strings.ReplaceAll(name, "_", "-") }

// fail records a problem with field name ("" for the whole form).
func (f *form) fail(name, msg string) {
	if name != "" {
		if _, dup := f.errs[name]; dup {
			return
		}
		f.errs[name] = msg
		f.problems = append(f.problems, problem{Field: f.id(name), Message: msg})
		return
	}
	f.problems = append(f.problems, problem{Message: msg})
}

// failErr records err against the field it concerns: fields maps a message's English format,
// else its rule id, to a field ("" for the form as a whole).
func (f *form) failErr(err error, fields map[string]string) {
	if rows := f.p.rowErrors(err); len(rows) > 0 {
		for _, row := range rows {
			name, ok := fields[row.key]
			if !ok {
				name = fields[row.Rule]
			}
			f.fail(name, row.Rule+": "+row.Message)
		}
		return
	}
	name := apperr.FieldOf(err)
	if name == "" {
		name = fields[apperr.RuleOf(err)]
	}
	f.fail(name, f.p.Public(err))
}

func (f *form) field(name, labelKey, typ string, required bool) field {
	fl := field{ID: f.id(name), Name: name, Label: f.p.T(labelKey), Type: typ, Value: f.values.Get(name), Error: f.errs[name], Required: required}
	if h, ok := f.p.msgs[labelKey+".hint"]; ok {
		fl.Hint = h
	}
	return fl
}

func (f *form) choice(name, labelKey string, required bool, opts []option) field {
	fl := f.field(name, labelKey, "", required)
	cur := f.values.Get(name)
	out := make([]option, len(opts))
	for i, o := range opts {
		o.Selected = o.Value == cur
		out[i] = o
	}
	fl.Options = out
	return fl
}

// authorityOptions lists the authorities the user may act for under action.
func (s *Server) authorityOptions(p *page, u access.User, a access.Action) []option {
	var out []option
	for _, au := range s.cfg.Programme.Authorities {
		if access.Can(u, a, au.Code) == nil {
			out = append(out, option{Value: au.Code, Label: p.AuthName(au.Code) + " (" + au.Code + ")"})
		}
	}
	return out
}

// rendered re-renders a page whose form failed: 422, or the status the error means.
func (s *Server) failedStatus(err error) int {
	_, _, _, status := classify(err)
	if status == 0 || status >= 500 {
		return http.StatusUnprocessableEntity
	}
	return status
}

// userFacing reports whether err is one a person fixes in the form (not internal, not a
// refusal the error page explains better).
func userFacing(err error) bool {
	switch apperr.CodeOf(err) {
	case apperr.Invalid, apperr.Conflict, apperr.NotFound, apperr.Locked:
		return true
	}
	return false
}

// ---- officers ----

type officersPage struct {
	Result   *importResult
	Officers []match.Officer
	List     *listView
	Fields   []field
	CanWrite bool
}

var officerFieldOfRule = map[string]string{"V8": "authority", "M2": "authority", "M3": "name", "R5.1": "annual_cost",
	"R5.3": "valid_from", "R9.1": "annual_cost", "M1": "", "V1": "valid_from",
	"the date the rate version is valid from is missing": "valid_from", "valid_from %s is not a date in the form YYYY-MM-DD": "valid_from",
	"the authority is missing": "authority", "the payroll reference is missing": "payroll_ref", "the officer's name is missing": "name"}

func (s *Server) officersPage(w http.ResponseWriter, r *http.Request, status int, add *form, result func(*page) *importResult) error {
	if err := authorize(r, access.ReadRecords, ""); err != nil {
		return err
	}
	p := s.newPage(r, "off.title", nil)
	u := user(r)
	lf, err := listFilter(r.URL.Query())
	if err != nil {
		return err
	}
	list, err := s.cfg.Match.Officers(r.Context(), u, lf)
	if err != nil {
		return err
	}
	if add == nil {
		add = s.newForm(p, "off", nil)
	}
	add.p = p
	data := &officersPage{Officers: list.Items, CanWrite: authorize(r, access.ImportOfficers, "") == nil}
	if result != nil {
		data.Result = result(p)
	}
	filter := s.newForm(p, "filter", r.URL.Query())
	data.List = newListView(p, "/officers", lf, list.Next, []field{
		filter.choice("authority", "common.authority", false, s.readableAuthorities(p, r)),
		filter.field("payroll_ref", "off.ref", "text", false)})
	data.Fields = []field{
		add.choice("authority", "common.authority", true, s.authorityOptions(p, u, access.ImportOfficers)),
		add.field("payroll_ref", "off.ref", "text", true), add.field("name", "off.name", "text", true),
		add.field("valid_from", "off.validfrom", "date", true), add.field("annual_cost", "off.cost", "text", true),
		add.field("fte", "off.fte", "text", true),
	}
	data.Fields[4].Inputmode, data.Fields[5].Inputmode = "decimal", "decimal"
	p.Problems = add.problems
	p.Data = data
	return s.render(w, status, "officers", p)
}

func (s *Server) uiOfficers(w http.ResponseWriter, r *http.Request) error {
	return s.officersPage(w, r, http.StatusOK, nil, nil)
}

func (s *Server) uiRecordOfficer(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	p := s.newPage(r, "off.title", nil)
	f := s.newForm(p, "off", r.PostForm)
	in := officerInputJSON{Authority: r.PostForm.Get("authority"), PayrollRef: r.PostForm.Get("payroll_ref"), Name: r.PostForm.Get("name"),
		ValidFrom: r.PostForm.Get("valid_from"), AnnualCost: text(r.PostForm.Get("annual_cost")), FTE: text(r.PostForm.Get("fte"))}
	if _, err := parseDate("valid_from", in.ValidFrom); err != nil {
		f.fail("valid_from", p.T("form.date"))
	}
	if _, err := match.ParseMoney(string(in.AnnualCost)); err != nil {
		f.fail("annual_cost", p.Public(err))
	}
	if _, err := match.ParseFTE(string(in.FTE)); err != nil {
		f.fail("fte", p.Public(err))
	}
	if len(f.problems) > 0 {
		return s.officersPage(w, r, http.StatusUnprocessableEntity, f, nil)
	}
	o, err := s.recordOfficer(r, in)
	if err != nil {
		if !userFacing(err) {
			return err
		}
		f.failErr(err, officerFieldOfRule)
		return s.officersPage(w, r, s.failedStatus(err), f, nil)
	}
	return redirect(w, r, "/officers?done=officer&authority="+url.QueryEscape(o.Authority)+"&payroll_ref="+url.QueryEscape(o.PayrollRef))
}

// ---- imports ----

// importRow is one row of an uploaded file, with the problems found in it.
type importRow struct {
	Row    int
	Cells  []string
	Errors []RowError
}

// importResult shows what an upload did: a summary, and when rows were rejected each row of
// the file beside its problems.
type importResult struct {
	Title, Summary, Caption, RowLabel, ProblemLabel string
	Header                                          []string
	Rows                                            []importRow
}

// maxRowsShown bounds the rows a failed import shows in full; beyond it only rejected rows.
const maxRowsShown = 200

func (s *Server) importResultOf(p *page, data []byte, res importJSON, err error) *importResult {
	out := &importResult{RowLabel: p.T("import.row"), ProblemLabel: p.T("import.problem"), Caption: p.T("import.rows")}
	if err == nil {
		out.Title = p.T("import.done")
		out.Summary = strings.NewReplacer("{rows}", strconv.FormatInt(res.Rows, 10), "{written}", strconv.FormatInt(res.Written, 10),
			"{replayed}", strconv.FormatInt(res.Replayed-res.Withdrawn-res.Repeated, 10)).Replace(p.T("import.summary"))
		if res.Repeated > 0 {
			out.Summary += " " + strings.ReplaceAll(p.T("import.repeated"), "{repeated}", strconv.FormatInt(res.Repeated, 10))
		}
		if res.Withdrawn > 0 {
			out.Summary += " " + strings.ReplaceAll(p.T("import.withdrawn"), "{withdrawn}", strconv.FormatInt(res.Withdrawn, 10))
		}
		if res.Closure > 0 {
			out.Summary += " " + strings.ReplaceAll(p.T("import.closure"), "{closure}", strconv.FormatInt(res.Closure, 10))
		}
		return out
	}
	out.Title = p.T("import.failed")
	out.Summary = p.Public(err)
	rowErrs := p.rowErrors(err)
	byRow := map[int][]RowError{}
	for _, e := range rowErrs {
		byRow[e.Row] = append(byRow[e.Row], e)
	}
	rd := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	rd.FieldsPerRecord, rd.LazyQuotes = -1, true
	recs, _ := rd.ReadAll()
	shown := map[int]bool{}
	for i, rec := range recs {
		row := i + 1
		if i == 0 {
			out.Header = rec
			continue
		}
		if len(recs) > maxRowsShown && byRow[row] == nil {
			continue
		}
		out.Rows = append(out.Rows, importRow{Row: row, Cells: rec, Errors: byRow[row]})
		shown[row] = true
	}
	// Problems with rows the parser did not give back (the header, a malformed file).
	var rest []int
	for row := range byRow {
		if !shown[row] {
			rest = append(rest, row)
		}
	}
	sort.Ints(rest)
	for _, row := range rest {
		out.Rows = append(out.Rows, importRow{Row: row, Errors: byRow[row]})
	}
	sort.SliceStable(out.Rows, func(i, j int) bool { return out.Rows[i].Row < out.Rows[j].Row })
	for i := range out.Rows {
		for len(out.Rows[i].Cells) < len(out.Header) {
			out.Rows[i].Cells = append(out.Rows[i].Cells, "")
		}
	}
	return out
}

func (s *Server) uiImport(kind string) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		res, data, err := s.runImport(r, kind)
		if err != nil && !userFacing(err) {
			return err
		}
		status := http.StatusOK
		if err != nil {
			status = s.failedStatus(err)
		}
		switch kind {
		case "officers":
			return s.officersPage(w, r, status, nil, func(p *page) *importResult { return s.importResultOf(p, data, res, err) })
		case "time":
			return s.timePage(w, r, status, nil, nil, func(p *page) *importResult { return s.importResultOf(p, data, res, err) })
		default:
			return s.expenditurePage(w, r, status, nil, nil, func(p *page) *importResult { return s.importResultOf(p, data, res, err) })
		}
	}
}

// ---- time ----

type timePage struct {
	Result           *importResult
	Recorded         *match.TimeEntry
	RecordedLate     string // lateNote of the recorded entry
	Entries          []timeRow
	List             *listView
	CanRecord        bool
	Fields           []field
	Correctable      bool
	CorrectionFields []field
}

// timeRow is a listed time entry, and whether the user may reverse it.
type timeRow struct {
	match.TimeEntry
	CanReverse bool
}

var timeFieldOfRule = map[string]string{"V1": "work_date", "V2": "work_date", "V3": "hours", "V4": "hours", "V5": "activity",
	"V6": "work_date", "V7": "approved_by", "V8": "authority", "M2": "payroll_ref", "R9.1": "hours", "M1": "", "R9.3a": "hours",
	"the work date is missing": "work_date", "work_date %s is not a date in the form YYYY-MM-DD": "work_date",
	"the authority is missing": "authority", "the payroll reference is missing": "payroll_ref", "activity %s is not one of %s": "activity",
	"the evidence reference (the signed timesheet or register) is missing": "evidence_ref",
	"the approver (the line manager who signed the timesheet) is missing":  "approved_by"}

func activityOptions(p *page) []option {
	out := make([]option, len(match.Activities))
	for i, a := range match.Activities {
		out[i] = option{Value: a, Label: p.T("activity." + a)}
	}
	return out
}

// correctionForm returns the correction form of a page: the line named by the query's
// correct (a list's reverse link) when cf is nil.
func (s *Server) correctionForm(p *page, r *http.Request, cf *form, kind string) *form {
	if cf != nil {
		cf.p = p
		return cf
	}
	vals := url.Values{}
	if id := r.URL.Query().Get("correct"); id != "" && r.Method == http.MethodGet {
		vals.Set("line_id", id)
		vals.Set("kind", kind)
	}
	return s.newForm(p, "corr", vals)
}

func (s *Server) timePage(w http.ResponseWriter, r *http.Request, status int, f, cf *form, result func(*page) *importResult) error {
	if err := authorize(r, access.ReadRecords, ""); err != nil {
		return err
	}
	p := s.newPage(r, "time.title", nil)
	u := user(r)
	lf, err := listFilter(r.URL.Query())
	if err != nil {
		return err
	}
	list, err := s.cfg.Match.TimeEntries(r.Context(), u, lf)
	if err != nil {
		return err
	}
	if f == nil {
		f = s.newForm(p, "time", nil)
	}
	f.p = p
	cf = s.correctionForm(p, r, cf, "time_entry")
	data := &timePage{CanRecord: authorize(r, access.RecordTime, "") == nil, Correctable: authorize(r, access.Correct, "") == nil}
	for _, e := range list.Items {
		data.Entries = append(data.Entries, timeRow{TimeEntry: e, CanReverse: e.ReversedBy == 0 && authorize(r, access.Correct, e.Authority) == nil})
	}
	filter := s.newForm(p, "filter", r.URL.Query())
	data.List = newListView(p, "/time", lf, list.Next, []field{
		filter.choice("authority", "common.authority", false, s.readableAuthorities(p, r)),
		filter.field("payroll_ref", "off.ref", "text", false),
		filter.choice("period", "entry.period", false, s.periodOptions(p)),
		filter.choice("status", "list.status", false, statusOptions(p))})
	if result != nil {
		data.Result = result(p)
	}
	if id, err := strconv.ParseInt(r.URL.Query().Get("entry"), 10, 64); err == nil && r.Method == http.MethodGet {
		if e, err := s.cfg.Match.TimeEntry(r.Context(), id); err == nil && authorize(r, access.ReadRecords, e.Authority) == nil {
			data.Recorded = &e
			data.RecordedLate = s.lateNote(p, e.WorkDate, e.Period)
		}
	}
	data.Fields = []field{
		f.choice("authority", "common.authority", true, s.authorityOptions(p, u, access.RecordTime)),
		f.field("payroll_ref", "off.ref", "text", true), f.field("work_date", "time.date", "date", true),
		f.field("hours", "time.hours", "text", true), f.choice("activity", "time.activity", true, activityOptions(p)),
		f.field("evidence_ref", "common.evidence", "text", true), f.field("approved_by", "time.approver", "text", true),
	}
	data.Fields[3].Inputmode = "decimal"
	kinds := []option{{Value: "time_entry", Label: p.T("corr.kind.time")}}
	if authorize(r, access.RecordExpenditure, "") == nil {
		kinds = append(kinds, option{Value: "expenditure", Label: p.T("corr.kind.expenditure")})
	}
	data.CorrectionFields = []field{cf.choice("kind", "corr.kind", true, kinds), cf.field("line_id", "corr.id", "text", true),
		cf.field("reason", "corr.reason", "text", true)}
	data.CorrectionFields[1].Inputmode = "numeric"
	p.Problems = append(f.problems, cf.problems...)
	p.Data = data
	return s.render(w, status, "time", p)
}

func (s *Server) uiTime(w http.ResponseWriter, r *http.Request) error {
	return s.timePage(w, r, http.StatusOK, nil, nil, nil)
}

func (s *Server) uiRecordTime(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	p := s.newPage(r, "time.title", nil)
	f := s.newForm(p, "time", r.PostForm)
	in := timeInputJSON{Authority: r.PostForm.Get("authority"), PayrollRef: r.PostForm.Get("payroll_ref"),
		WorkDate: r.PostForm.Get("work_date"), Hours: text(r.PostForm.Get("hours")), Activity: r.PostForm.Get("activity"),
		EvidenceRef: r.PostForm.Get("evidence_ref"), ApprovedBy: r.PostForm.Get("approved_by")}
	if _, err := parseDate("work_date", in.WorkDate); err != nil {
		f.fail("work_date", p.T("form.date"))
	}
	if _, err := match.ParseHours(string(in.Hours)); err != nil {
		f.fail("hours", p.Public(err))
	}
	if len(f.problems) > 0 {
		return s.timePage(w, r, http.StatusUnprocessableEntity, f, nil, nil)
	}
	e, err := s.recordTime(r, in)
	if err != nil {
		if !userFacing(err) {
			return err
		}
		f.failErr(err, timeFieldOfRule)
		return s.timePage(w, r, s.failedStatus(err), f, nil, nil)
	}
	return redirect(w, r, "/time?done=time&entry="+strconv.FormatInt(e.ID, 10))
}

func (s *Server) uiCorrect(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	// The page the line is listed on, which shows the form again if the correction fails.
	path, again := "/time", func(status int, cf *form) error { return s.timePage(w, r, status, nil, cf, nil) }
	switch r.PostForm.Get("kind") {
	case "time_entry", "":
	case "expenditure":
		path, again = "/expenditure", func(status int, cf *form) error { return s.expenditurePage(w, r, status, nil, cf, nil) }
	default:
		return apperr.New(apperr.Invalid, match.RuleFormat, "a correction reverses a time entry or an expenditure line, not %q", r.PostForm.Get("kind")).On("kind")
	}
	p := s.newPage(r, "time.title", nil)
	cf := s.newForm(p, "corr", r.PostForm)
	id, err := strconv.ParseInt(strings.TrimSpace(r.PostForm.Get("line_id")), 10, 64)
	if err != nil || id <= 0 {
		cf.fail("line_id", p.T("corr.id.bad"))
		return again(http.StatusUnprocessableEntity, cf)
	}
	in := correctionInputJSON{Reason: r.PostForm.Get("reason")}
	if path == "/expenditure" {
		in.ExpenditureID = id
	} else {
		in.TimeEntryID = id
	}
	// A reversal cannot be undone, and line numbers are easily taken from the wrong column: the
	// person first sees the line they named, and the period its reversal is booked into. Only a
	// confirmation of that same period reverses it; if the period has changed since (a claim
	// submitted meanwhile locked the line's), the confirmation is shown again, saying so.
	c, err := s.correctionPreview(r, p, in, path)
	if err == nil && (!confirmed(r) || r.PostForm.Get("booked_into") != c.BookedInto) {
		c.Changed = confirmed(r)
		p.Title = p.T("corr.confirm.title")
		p.Data = c
		status := http.StatusOK
		if c.Changed {
			status = http.StatusConflict
		}
		return s.render(w, status, "correct_confirm", p)
	}
	if err == nil {
		_, err = s.correct(r, in)
	}
	if err != nil {
		// V8 refuses a finance officer a line that is not their authority's, there or not:
		// a mistyped number, shown beside the field like any other.
		if !userFacing(err) && apperr.RuleOf(err) != match.RuleV8 {
			return err
		}
		cf.failErr(err, map[string]string{"M2": "line_id", "M6": "line_id", "V8": "line_id", "": "line_id"})
		return again(s.failedStatus(err), cf)
	}
	return redirect(w, r, path+"?done=correction")
}

// correctionConfirm is the page that shows the line a correction would reverse, before it does.
type correctionConfirm struct {
	Kind, Reason, Back string
	ID                 int64
	Rows               [][2]string // the line, label and value
	Period, BookedInto string      // the line's period, and the period its reversal is booked into
	Changed            bool        // the period to book into changed after the person saw it
}

// correctionPreview is what the confirmation of the correction in shows: the line, as the person
// may read it, and the period its reversal would be booked into (the line's own if still open,
// else the earliest open one, whose claim it reduces: L5). Package match makes the reversal's own
// checks first, so the page refuses what the correction would refuse, in the same words.
func (s *Server) correctionPreview(r *http.Request, p *page, in correctionInputJSON, back string) (*correctionConfirm, error) {
	ctx, u := r.Context(), user(r)
	c := &correctionConfirm{Reason: strings.TrimSpace(in.Reason), Back: back}
	var err error
	if in.TimeEntryID != 0 {
		if c.BookedInto, err = s.cfg.Match.PreviewReverseTime(ctx, u, in.TimeEntryID, in.Reason); err != nil {
			return nil, err
		}
		e, err := s.cfg.Match.ReadTimeEntry(ctx, u, in.TimeEntryID)
		if err != nil {
			return nil, err
		}
		c.Kind, c.ID, c.Period = "time_entry", e.ID, e.Period
		c.Rows = [][2]string{{p.T("corr.kind.time"), strconv.FormatInt(e.ID, 10)},
			{p.T("off.name"), e.OfficerName + " (" + e.PayrollRef + ")"}, {p.T("common.authority"), p.AuthName(e.Authority)},
			{p.T("time.date"), p.Date(e.WorkDate)}, {p.T("time.hours"), e.Hours.StringFixed(2)},
			{p.T("time.activity"), p.T("activity." + e.Activity)}, {p.T("corr.confirm.amount"), p.Money(e.Amount)},
			{p.T("common.evidence"), e.EvidenceRef}}
		return c, nil
	}
	if c.BookedInto, err = s.cfg.Match.PreviewReverseExpenditure(ctx, u, in.ExpenditureID, in.Reason); err != nil {
		return nil, err
	}
	e, err := s.cfg.Match.Expenditure(ctx, in.ExpenditureID)
	if err != nil {
		return nil, err
	}
	c.Kind, c.ID, c.Period = "expenditure", e.ID, e.Period
	c.Rows = [][2]string{{p.T("corr.kind.expenditure"), strconv.FormatInt(e.ID, 10)},
		{p.T("exp.heading"), p.T("heading." + e.Heading)}, {p.T("exp.defrayed"), p.Date(e.DefrayedOn)},
		{p.T("exp.payee"), e.Payee}, {p.T("exp.description"), e.Description}, {p.T("corr.confirm.amount"), p.Money(e.Amount)},
		{p.T("common.evidence"), e.EvidenceRef}}
	return c, nil
}

// ---- expenditure ----

type expenditurePage struct {
	Result           *importResult
	Recorded         *match.Expenditure
	RecordedLate     string // lateNote of the recorded line
	Lines            []expenditureRow
	List             *listView
	CanRecord        bool
	Fields           []field
	CorrectionFields []field
}

// lateNote tells, in p's language, where a line dated d and booked in period is claimed when its
// own period is locked (a late item, domain.md §6), or that no claim covers it; "" when it is
// booked in its own period.
func (s *Server) lateNote(p *page, d time.Time, booked string) string {
	own := s.relatesTo(d, booked)
	switch {
	case own == "":
		return ""
	case booked == ledger.ClosurePeriod:
		return strings.NewReplacer("{own}", own).Replace(p.T("late.closure"))
	default:
		return strings.NewReplacer("{own}", own, "{booked}", booked).Replace(p.T("late.claimed"))
	}
}

// expenditureRow is a listed expenditure line, and whether the user may reverse it.
type expenditureRow struct {
	match.Expenditure
	CanReverse bool
}

var expenditureFieldOfRule = map[string]string{"V1": "defrayed_on", "V2": "defrayed_on", "V7": "evidence_ref", "R6.4": "heading",
	"M2": "heading", "M4": "invoice_ref", "M5": "description", "R9.1": "amount", "M1": "",
	"the defrayal date is missing": "defrayed_on", "defrayed_on %s is not a date in the form YYYY-MM-DD": "defrayed_on",
	"the heading is missing": "heading", "the payee is missing": "payee", "the description is missing": "description"}

// cashHeadings are the headings that take expenditure lines, first is an option before them.
func (s *Server) cashHeadings(p *page, first ...option) []option {
	out := first
	for _, h := range s.cfg.Programme.Headings {
		if h.Kind == programme.KindCash && s.cfg.Programme.AcceptsLines(h.Code) {
			out = append(out, option{Value: h.Code, Label: p.T("heading." + h.Code)})
		}
	}
	return out
}

func (s *Server) expenditurePage(w http.ResponseWriter, r *http.Request, status int, f, cf *form, result func(*page) *importResult) error {
	if err := authorize(r, access.ReadClaims, ""); err != nil {
		return err
	}
	p := s.newPage(r, "exp.title", nil)
	lf, err := listFilter(r.URL.Query())
	if err != nil {
		return err
	}
	list, err := s.cfg.Match.ExpenditureLines(r.Context(), user(r), lf)
	if err != nil {
		return err
	}
	if f == nil {
		f = s.newForm(p, "exp", nil)
	}
	f.p = p
	cf = s.correctionForm(p, r, cf, "expenditure")
	// Reversing an expenditure line is recording expenditure (the handler asks the same).
	canRecord := authorize(r, access.RecordExpenditure, "") == nil
	data := &expenditurePage{CanRecord: canRecord}
	if id, err := strconv.ParseInt(r.URL.Query().Get("line"), 10, 64); err == nil && r.Method == http.MethodGet {
		if e, err := s.cfg.Match.Expenditure(r.Context(), id); err == nil {
			data.Recorded, data.RecordedLate = &e, s.lateNote(p, e.DefrayedOn, e.Period)
		}
	}
	for _, e := range list.Items {
		data.Lines = append(data.Lines, expenditureRow{Expenditure: e, CanReverse: canRecord && e.ReversedBy == 0})
	}
	filter := s.newForm(p, "filter", r.URL.Query())
	data.List = newListView(p, "/expenditure", lf, list.Next, []field{
		filter.choice("heading", "exp.heading", false, s.cashHeadings(p, allOption(p))),
		filter.choice("period", "entry.period", false, s.periodOptions(p)),
		filter.choice("status", "list.status", false, statusOptions(p))})
	if result != nil {
		data.Result = result(p)
	}
	data.Fields = []field{
		f.choice("heading", "exp.heading", true, s.cashHeadings(p)), f.field("defrayed_on", "exp.defrayed", "date", true),
		f.field("payee", "exp.payee", "text", true), f.field("description", "exp.description", "text", true),
		f.field("amount", "common.amount", "text", true), f.field("evidence_ref", "common.evidence", "text", true),
		f.field("invoice_ref", "exp.invoice", "text", false),
	}
	data.Fields[4].Inputmode = "decimal"
	data.CorrectionFields = []field{cf.field("line_id", "corr.id", "text", true), cf.field("reason", "corr.reason", "text", true)}
	data.CorrectionFields[0].Inputmode = "numeric"
	p.Problems = append(f.problems, cf.problems...)
	p.Data = data
	return s.render(w, status, "expenditure", p)
}

func (s *Server) uiExpenditure(w http.ResponseWriter, r *http.Request) error {
	return s.expenditurePage(w, r, http.StatusOK, nil, nil, nil)
}

func (s *Server) uiRecordExpenditure(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	p := s.newPage(r, "exp.title", nil)
	f := s.newForm(p, "exp", r.PostForm)
	in := expenditureInputJSON{Heading: r.PostForm.Get("heading"), DefrayedOn: r.PostForm.Get("defrayed_on"), Payee: r.PostForm.Get("payee"),
		Description: r.PostForm.Get("description"), Amount: text(r.PostForm.Get("amount")), EvidenceRef: r.PostForm.Get("evidence_ref"),
		InvoiceRef: r.PostForm.Get("invoice_ref")}
	if _, err := parseDate("defrayed_on", in.DefrayedOn); err != nil {
		f.fail("defrayed_on", p.T("form.date"))
	}
	if _, err := match.ParseMoney(string(in.Amount)); err != nil {
		f.fail("amount", p.Public(err))
	}
	if len(f.problems) > 0 {
		return s.expenditurePage(w, r, http.StatusUnprocessableEntity, f, nil, nil)
	}
	e, err := s.recordExpenditure(r, in)
	if err != nil {
		if !userFacing(err) {
			return err
		}
		f.failErr(err, expenditureFieldOfRule)
		return s.expenditurePage(w, r, s.failedStatus(err), f, nil, nil)
	}
	return redirect(w, r, "/expenditure?done=expenditure&line="+strconv.FormatInt(e.ID, 10))
}

// ---- claims ----

type claimRow struct {
	Period     string
	Number     int
	Status     string
	Compiled   bool
	CanCompile bool
	Stale      bool // a draft or reviewed claim the ledger has moved on from (CL4)
	Total, ESF decimal.Decimal
}

func (s *Server) uiClaims(w http.ResponseWriter, r *http.Request) error {
	if err := authorize(r, access.ReadClaims, ""); err != nil {
		return err
	}
	cs, err := s.cfg.Claims.Claims(r.Context())
	if err != nil {
		return err
	}
	byPeriod := map[string]*claims.Claim{}
	for _, c := range cs {
		byPeriod[c.Period.Code] = c
	}
	today := s.cfg.Claims.Today()
	var rows []claimRow
	for _, per := range claims.Periods(s.cfg.Programme) {
		row := claimRow{Period: per.Code, Number: per.Number(), Status: "open"}
		if c, ok := byPeriod[per.Code]; ok {
			row.Status, row.Compiled, row.Total, row.ESF = string(c.Status), true, c.Figures.TotalEligible.Period, c.Figures.ESFDue.Period
			row.CanCompile = !c.Status.Frozen()
			if row.Stale, err = s.cfg.Claims.Stale(r.Context(), c); err != nil {
				return err
			}
		} else if per.Ended(today) {
			row.Status, row.CanCompile = "due", true
		}
		rows = append(rows, row)
	}
	p := s.newPage(r, "claims.title", map[string]any{"Rows": rows})
	return s.render(w, http.StatusOK, "claims", p)
}

type claimPage struct {
	Claim                           *claims.Claim
	Files                           []reports.File
	CanDownload                     bool // the pack section is shown only to those who may download it
	Events                          []claims.Event
	Actions                         bool
	CanReview, CanSubmit, CanDecide bool
	CanPay                          bool
	DecisionFields, PaymentFields   []field
	// Stale: the ledger has moved since the draft was compiled (CL4), so it is offered for
	// compiling again (CanCompile) rather than for review, submission or download.
	Stale, CanCompile bool
	// ReviewedByMe: the claim is reviewed by the programme manager reading it, who may not
	// submit it (R3.13); the page says another must.
	ReviewedByMe bool
	// MatchTotal adds up the match table's money columns, as the pack's does.
	MatchTotal claims.AuthorityMatch
	// ApprovedGap is WEFO's approved ESF less the ESF claimed, PaidGap the amount received less
	// the ESF approved; nil when they agree (or nothing is recorded yet).
	ApprovedGap, PaidGap *decimal.Decimal
}

func (s *Server) claimPage(w http.ResponseWriter, r *http.Request, status int, df, pf *form) error {
	if err := authorize(r, access.ReadClaims, ""); err != nil {
		return err
	}
	period := r.PathValue("period")
	c, err := s.cfg.Claims.Claim(r.Context(), period)
	if err != nil {
		return err
	}
	p := s.newPage(r, "claim.title", nil)
	p.Title += " " + period
	data := &claimPage{Claim: c, CanDownload: authorize(r, access.DownloadPack, "") == nil}
	gap := func(got, want decimal.Decimal) *decimal.Decimal {
		if d := got.Sub(want); !d.IsZero() {
			return &d
		}
		return nil
	}
	if c.Decision != nil {
		data.ApprovedGap = gap(c.Decision.Approved, c.Figures.ESFDue.Period)
		if c.Payment != nil {
			data.PaidGap = gap(c.Payment.Amount, c.Decision.Approved)
		}
	}
	for _, m := range c.Figures.Match {
		t := &data.MatchTotal
		t.Period, t.Cumulative = t.Period.Add(m.Period), t.Cumulative.Add(m.Cumulative)
		t.Target, t.ProRata = t.Target.Add(m.Target), t.ProRata.Add(m.ProRata)
	}
	if data.CanDownload {
		// The stored pack is handed out only while the claim is not stale, which it checks.
		files, _, err := s.cfg.Claims.StoredPackOf(r.Context(), c)
		switch {
		case apperr.RuleOf(err) == claims.RuleStale:
			data.Stale = true
		case err != nil && apperr.CodeOf(err) != apperr.NotFound:
			return err
		}
		data.Files = files
	} else if data.Stale, err = s.cfg.Claims.Stale(r.Context(), c); err != nil {
		return err
	}
	if data.Events, err = s.cfg.Claims.Events(r.Context(), period); err != nil {
		return err
	}
	me := user(r).Email
	data.CanCompile = data.Stale && authorize(r, access.CompileClaim, "") == nil
	data.CanReview = !data.Stale && (c.Status == claims.Draft || c.Status == claims.Reviewed) && authorize(r, access.ReviewClaim, "") == nil && c.ReviewedBy == ""
	data.CanSubmit = !data.Stale && c.Status == claims.Reviewed && authorize(r, access.SubmitClaim, "") == nil && c.ReviewedBy != me
	data.ReviewedByMe = !data.Stale && c.Status == claims.Reviewed && authorize(r, access.SubmitClaim, "") == nil && c.ReviewedBy == me
	data.CanDecide = c.Status == claims.Submitted && authorize(r, access.RecordDecision, "") == nil
	data.CanPay = c.Status == claims.Approved && authorize(r, access.RecordPayment, "") == nil
	data.Actions = data.CanReview || data.CanSubmit || data.ReviewedByMe || data.CanDecide || data.CanPay // compiling is offered in the notice
	if df == nil {
		df = s.newForm(p, "dec", nil)
	}
	if pf == nil {
		pf = s.newForm(p, "pay", nil)
	}
	df.p, pf.p = p, p
	headings := []option{{Value: "", Label: p.T("claim.decision.heading.default")}}
	for _, h := range s.cfg.Programme.Headings {
		if h.Kind == programme.KindCash {
			headings = append(headings, option{Value: h.Code, Label: p.T("heading." + h.Code)})
		}
	}
	data.DecisionFields = []field{df.field("decided_on", "claim.decision.date", "date", true), df.field("approved", "claim.decision.approved", "text", true),
		df.field("disallowed", "claim.decision.disallowed", "text", false), df.field("reason", "claim.decision.reason", "text", false),
		df.choice("heading", "claim.decision.heading", false, headings)}
	data.PaymentFields = []field{pf.field("paid_on", "claim.payment.date", "date", true), pf.field("amount", "common.amount", "text", true)}
	p.Problems = append(df.problems, pf.problems...)
	p.Data = data
	return s.render(w, status, "claim", p)
}

func (s *Server) uiClaim(w http.ResponseWriter, r *http.Request) error {
	return s.claimPage(w, r, http.StatusOK, nil, nil)
}

func (s *Server) uiClaimStep(step string) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		period := r.PathValue("period")
		in := stepInput{
			dec: decisionInputJSON{DecidedOn: r.PostForm.Get("decided_on"), Approved: text(r.PostForm.Get("approved")),
				Disallowed: text(r.PostForm.Get("disallowed")), Reason: r.PostForm.Get("reason"), Heading: r.PostForm.Get("heading")},
			pay: paymentInputJSON{PaidOn: r.PostForm.Get("paid_on"), Amount: text(r.PostForm.Get("amount"))},
			rev: reviewInputJSON{CompiledAt: r.PostForm.Get("figures_of")}, // the compilation shown
		}
		if step == "submit" && !confirmed(r) {
			// Submission locks the period for ever: the person ticks that they mean it.
			p := s.newPage(r, "claim.title", nil)
			df := s.newForm(p, "dec", nil)
			df.fail("", p.T("claim.submit.unconfirmed"))
			return s.claimPage(w, r, http.StatusUnprocessableEntity, df, s.newForm(p, "pay", nil))
		}
		if step == "review" && in.rev.CompiledAt == "" {
			// The page always says which figures it showed; a review must cover figures read.
			return apperr.New(apperr.Conflict, claims.RuleStale, "the review does not say which figures of the claim for %s were read; open the claim and review it there", period)
		}
		// A date the form was given is checked here, so that the person reads the form's words
		// ("Enter a date as …"), not the API's field name.
		if (step == "decide" && !isDate(in.dec.DecidedOn)) || (step == "pay" && !isDate(in.pay.PaidOn)) {
			p := s.newPage(r, "claim.title", nil)
			df, pf := s.newForm(p, "dec", nil), s.newForm(p, "pay", nil)
			if step == "decide" {
				df = s.newForm(p, "dec", r.PostForm)
				df.fail("decided_on", p.T("form.date"))
			} else {
				pf = s.newForm(p, "pay", r.PostForm)
				pf.fail("paid_on", p.T("form.date"))
			}
			return s.claimPage(w, r, http.StatusUnprocessableEntity, df, pf)
		}
		_, err := s.claimStep(r, step, period, &in)
		if err != nil {
			if !userFacing(err) {
				return err
			}
			p := s.newPage(r, "claim.title", nil)
			df, pf := s.newForm(p, "dec", nil), s.newForm(p, "pay", nil)
			switch step {
			case "decide":
				df = s.newForm(p, "dec", r.PostForm)
				df.failErr(err, map[string]string{"M1": "decided_on", "R9.1": "approved", "CL6": "approved"})
			case "pay":
				pf = s.newForm(p, "pay", r.PostForm)
				pf.failErr(err, map[string]string{"M1": "paid_on", "R9.1": "amount", "CL6": "amount"})
			default:
				df.fail("", p.Public(err))
			}
			if step == "compile" {
				return err
			}
			return s.claimPage(w, r, s.failedStatus(err), df, pf)
		}
		return redirect(w, r, "/claims/"+url.PathEscape(period)+"?done="+step)
	}
}

func (s *Server) uiLines(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	l, err := s.claimLines(r, r.PathValue("period"), q.Get("heading"), q.Get("authority"), lateOnly(q))
	if err != nil {
		return err
	}
	p := s.newPage(r, "lines.title", l)
	return s.render(w, http.StatusOK, "lines", p)
}

func (s *Server) uiEntry(w http.ResponseWriter, r *http.Request) error {
	if err := authorize(r, access.VerifyLedger, ""); err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	e, err := s.cfg.Ledger.Entry(r.Context(), id)
	if err != nil {
		return err
	}
	p := s.newPage(r, "entry.title", e)
	return s.render(w, http.StatusOK, "entry", p)
}

type ledgerPage struct {
	Report   *verificationJSON
	Problems []ledger.Problem // the report's problems, to render in the page's language
	Head     string
}

// verificationJSON doubles as the ledger page's report.
func (v *verificationJSON) OKText() bool { return v.OK }

// uiLedger offers the verification: a form that posts to /ledger/verify.
func (s *Server) uiLedger(w http.ResponseWriter, r *http.Request) error {
	if err := authorize(r, access.VerifyLedger, ""); err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "ledger", s.newPage(r, "ledger.title", &ledgerPage{}))
}

// uiVerify runs the verification and shows its report on the answer (the report is not
// stored, so there is nothing to redirect to).
func (s *Server) uiVerify(w http.ResponseWriter, r *http.Request) error {
	v, problems, err := s.verify(r)
	if err != nil {
		return err
	}
	data := &ledgerPage{Report: &v, Problems: problems, Head: strconv.FormatInt(v.HeadSeq, 10) + " " + v.HeadLink}
	return s.render(w, http.StatusOK, "ledger", s.newPage(r, "ledger.title", data))
}

func (s *Server) uiAudit(w http.ResponseWriter, r *http.Request) error {
	return s.auditPage(w, r, access.VerifyLedger, s.cfg.Auth.Events, "audit.title", "audit.help")
}

// uiAccountAudit is an admin's audit page: sign-ins and changes to users and tokens only.
func (s *Server) uiAccountAudit(w http.ResponseWriter, r *http.Request) error {
	return s.auditPage(w, r, access.ReadAccountAudit, s.cfg.Auth.AccountEvents, "audit.accounts.title", "audit.accounts.help")
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, a access.Action, read auditLog, titleKey, helpKey string) error {
	if err := authorize(r, a, ""); err != nil {
		return err
	}
	evs, err := s.auditEvents(r, read)
	if err != nil {
		return err
	}
	p := s.newPage(r, titleKey, nil)
	q := r.URL.Query()
	f := s.newForm(p, "audit", q)
	data := map[string]any{"Events": evs, "Fields": []field{f.field("actor", "audit.who", "text", false),
		f.choice("action", "audit.what", false, auditActionOptions(p, a == access.ReadAccountAudit))},
		"Path": r.URL.Path, "Help": p.T(helpKey)}
	if len(evs) == 100 {
		// The next page keeps the filters.
		older := url.Values{"before": {strconv.FormatInt(evs[len(evs)-1].ID, 10)}}
		for _, k := range []string{"actor", "action", "target"} {
			if v := q.Get(k); v != "" {
				older.Set(k, v)
			}
		}
		data["Older"] = r.URL.Path + "?" + older.Encode()
	}
	p.Data = data
	return s.render(w, http.StatusOK, "audit", p)
}

// auditGroups are the families of actions the audit log's filter offers whole (a prefix ending
// in ".", as the filter takes it).
var auditGroups = []string{"claims.", "import.", "users.", "tokens."}

// auditActionOptions are the choices of the audit log's action filter: every action the
// catalogue names, and each family of them whole; only sign-ins and account changes for an
// admin's account log.
func auditActionOptions(p *page, accountsOnly bool) []option {
	account := auth.AccountAction
	opts := []option{{Value: "", Label: p.T("audit.action.all")}}
	for _, g := range auditGroups {
		if !accountsOnly || account(g) {
			opts = append(opts, option{Value: g, Label: p.T("audit.group." + strings.TrimSuffix(g, "."))})
		}
	}
	var codes []string
	for k := range p.msgs {
		if code, ok := strings.CutPrefix(k, "audit.action."); ok && code != "all" && (!accountsOnly || account(code)) {
			codes = append(codes, code)
		}
	}
	sort.Strings(codes)
	for _, c := range codes {
		opts = append(opts, option{Value: c, Label: p.ActionName(c)})
	}
	return opts
}

// ---- admin ----

func roleOptions(p *page) []option {
	var out []option
	for _, r := range access.Roles() {
		out = append(out, option{Value: string(r), Label: p.T("role." + string(r))})
	}
	return out
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, status int, f, pf *form) error {
	if err := authorize(r, access.ManageUsers, ""); err != nil {
		return err
	}
	us, err := access.Users(r.Context(), s.cfg.Pool, s.op())
	if err != nil {
		return err
	}
	p := s.newPage(r, "users.title", nil)
	if f == nil {
		f = s.newForm(p, "user", nil)
	}
	if pf == nil {
		pf = s.newForm(p, "pw", nil)
	}
	f.p, pf.p = p, p
	auths := []option{{Value: "", Label: p.T("users.authority.none")}}
	for _, a := range s.cfg.Programme.Authorities {
		auths = append(auths, option{Value: a.Code, Label: p.AuthName(a.Code) + " (" + a.Code + ")"})
	}
	email := f.field("email", "users.email", "email", true)
	email.Autocomplete = "off"
	pwEmail := pf.field("email", "users.email", "email", true)
	pwEmail.Autocomplete = "off"
	pw := pf.field("password", "users.newpassword", "password", true)
	pw.Autocomplete = "new-password"
	p.Data = map[string]any{"Users": us,
		"Fields": []field{email, f.field("name", "users.name", "text", true), f.choice("role", "users.role", true, roleOptions(p)),
			f.choice("authority", "common.authority", false, auths)},
		"PasswordFields": []field{pwEmail, pw}}
	p.Problems = append(f.problems, pf.problems...)
	return s.render(w, status, "users", p)
}

func (s *Server) uiUsers(w http.ResponseWriter, r *http.Request) error {
	return s.usersPage(w, r, http.StatusOK, nil, nil)
}

func (s *Server) uiAddUser(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	_, err := s.addUser(r, userJSON{Email: r.PostForm.Get("email"), Name: r.PostForm.Get("name"), Role: r.PostForm.Get("role"),
		Authority: r.PostForm.Get("authority")})
	if err != nil {
		if !userFacing(err) {
			return err
		}
		p := s.newPage(r, "users.title", nil)
		f := s.newForm(p, "user", r.PostForm)
		f.failErr(err, map[string]string{"A2": "email"})
		return s.usersPage(w, r, s.failedStatus(err), f, nil)
	}
	return redirect(w, r, "/admin/users?done=user")
}

func (s *Server) uiSetPassword(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	if err := s.setPassword(r, r.PostForm.Get("email"), r.PostForm.Get("password")); err != nil {
		if !userFacing(err) {
			return err
		}
		p := s.newPage(r, "users.title", nil)
		vals := url.Values{"email": {r.PostForm.Get("email")}}
		pf := s.newForm(p, "pw", vals)
		pf.failErr(err, map[string]string{auth.RulePassword: "password", apperr.RuleRef: "email"})
		status := s.failedStatus(err)
		if apperr.RuleOf(err) == apperr.RuleRef { // an unknown email: a mistake in the form
			status = http.StatusUnprocessableEntity
		}
		return s.usersPage(w, r, status, nil, pf)
	}
	return redirect(w, r, "/admin/users?done=password")
}

// confirmPage asks, before a step that cannot be taken back from the page where its button is,
// whether the person means it: it shows what the step acts on (rows of label and value) and
// what follows, and posts the same form again with confirm=1.
type confirmPage struct {
	Rows        [][2]string
	Consequence string
	Action      string
	Hidden      [][2]string
	Submit      string
	Back        string
}

// confirmed reports whether a posted form carries its confirmation.
func confirmed(r *http.Request) bool { return r.PostForm.Get("confirm") == "1" }

// uiSetDisabled disables (disable true) or enables the user the form names, from a button of
// the users page. Disabling ends the user's sessions and revokes their tokens, so it is first
// confirmed on a page naming the user.
func (s *Server) uiSetDisabled(disable bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		if disable && !confirmed(r) {
			u, err := s.cfg.Auth.UserToDisable(r.Context(), user(r), r.PostForm.Get("email"))
			if err != nil {
				return err
			}
			p := s.newPage(r, "users.disable.confirm.title", nil)
			role := p.T("role." + string(u.Role))
			if u.Authority != "" {
				role += ", " + p.AuthName(u.Authority)
			}
			p.Data = confirmPage{
				Rows:        [][2]string{{p.T("users.name"), u.Name}, {p.T("users.email"), u.Email}, {p.T("users.role"), role}},
				Consequence: p.T("users.disable.confirm.lead"), Action: "/admin/users/disable",
				Hidden: [][2]string{{"email", u.Email}}, Submit: p.T("users.disable.confirm.submit"), Back: "/admin/users",
			}
			return s.render(w, http.StatusOK, "confirm", p)
		}
		if _, err := s.setDisabled(r, r.PostForm.Get("email"), disable); err != nil {
			return err
		}
		if disable {
			return redirect(w, r, "/admin/users?done=disabled")
		}
		return redirect(w, r, "/admin/users?done=enabled")
	}
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, status int, f *form, secret string) error {
	if err := authorize(r, access.ManageUsers, ""); err != nil {
		return err
	}
	ts, err := s.cfg.Auth.Tokens(r.Context())
	if err != nil {
		return err
	}
	p := s.newPage(r, "tokens.title", nil)
	if f == nil {
		f = s.newForm(p, "token", nil)
	}
	f.p = p
	p.Data = map[string]any{"Tokens": ts, "Secret": secret, "Fields": []field{f.field("name", "tokens.name", "text", false)}}
	p.Problems = f.problems
	return s.render(w, status, "tokens", p)
}

func (s *Server) uiTokens(w http.ResponseWriter, r *http.Request) error {
	return s.tokensPage(w, r, http.StatusOK, nil, "")
}

func (s *Server) uiCreateToken(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	// The form names no user: the token acts as the person creating it. A posted email that is
	// not theirs is refused (AU5), as through the API.
	secret, _, err := s.createToken(r, r.PostForm.Get("email"), r.PostForm.Get("name"))
	if err != nil {
		if !userFacing(err) {
			return err
		}
		p := s.newPage(r, "tokens.title", nil)
		f := s.newForm(p, "token", r.PostForm)
		f.failErr(err, map[string]string{"": "name"})
		return s.tokensPage(w, r, s.failedStatus(err), f, "")
	}
	// The secret is shown on this answer only (no redirect: it must not land in a URL).
	return s.tokensPage(w, r, http.StatusCreated, nil, secret)
}

// uiRevokeToken revokes a token from a button of the tokens page, once confirmed on a page
// naming it: whatever uses the token stops working at once.
func (s *Server) uiRevokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	if !confirmed(r) {
		if err := authorize(r, access.ManageUsers, ""); err != nil {
			return err
		}
		ts, err := s.cfg.Auth.Tokens(r.Context())
		if err != nil {
			return err
		}
		id := r.PathValue("id")
		i := slices.IndexFunc(ts, func(t auth.Token) bool { return strconv.FormatInt(t.ID, 10) == id && t.RevokedAt == nil })
		if i < 0 {
			return apperr.New(apperr.NotFound, apperr.RuleRef, "there is no token %q that is not revoked", id)
		}
		t := ts[i]
		p := s.newPage(r, "tokens.revoke.confirm.title", nil)
		lastUsed := p.T("tokens.never")
		if t.LastUsedAt != nil {
			lastUsed = p.DateTime(*t.LastUsedAt)
		}
		p.Data = confirmPage{
			Rows: [][2]string{{p.T("tokens.name"), t.Name}, {p.T("tokens.user"), t.User}, {p.T("tokens.created"), p.DateTime(t.CreatedAt) + " (" + t.CreatedBy + ")"},
				{p.T("tokens.lastused"), lastUsed}},
			Consequence: p.T("tokens.revoke.confirm.lead"), Action: "/admin/tokens/" + id + "/revoke",
			Submit: p.T("tokens.revoke.confirm.submit"), Back: "/admin/tokens",
		}
		return s.render(w, http.StatusOK, "confirm", p)
	}
	if err := s.revokeToken(r, r.PathValue("id")); err != nil {
		return err
	}
	return redirect(w, r, "/admin/tokens?done=revoked")
}

// isDate reports whether a form's date reads as one (YYYY-MM-DD).
func isDate(s string) bool {
	_, err := parseDate("", s)
	return err == nil
}

// lateOnly reports whether a lines query asks for late items only (late=1, true, on …; not 0 or false).
func lateOnly(q url.Values) bool {
	switch q.Get("late") {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}
