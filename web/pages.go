package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/gbp"
	"github.com/ccr-infuse/infuse/match"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

//go:embed locales/*.json
var localeFS embed.FS

// languages are the UI's languages (Welsh Language Standards: Welsh no less favourably).
var languages = []string{"en", "cy"}

// pages holds one parsed template set per page and the message catalogues.
type pages struct {
	tmpl     map[string]*template.Template
	catalogs map[string]map[string]string
}

// partials are templates every page can use.
var partials = []string{"templates/layout.html", "templates/upload.html", "templates/list.html"}

func loadPages() (*pages, error) {
	p := &pages{tmpl: map[string]*template.Template{}, catalogs: map[string]map[string]string{}}
	for _, lang := range languages {
		b, err := localeFS.ReadFile("locales/" + lang + ".json")
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("locales/%s.json: %w", lang, err)
		}
		p.catalogs[lang] = m
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{"uploadData": uploadData, "correctionData": correctionData}
	for _, name := range names {
		isPartial := false
		for _, pt := range partials {
			isPartial = isPartial || pt == name
		}
		if isPartial {
			continue
		}
		t, err := template.New("").Funcs(funcs).ParseFS(templateFS, append(append([]string{}, partials...), name)...)
		if err != nil {
			return nil, err
		}
		p.tmpl[strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")] = t
	}
	return p, nil
}

// pageKey is the form of a page's catalogue key, a dotted name such as off.title. Every other
// key is a message's: the English format it is made from (apperr), which the code holds, so
// only the other languages' catalogues list it.
var pageKey = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)+$`)

// isMessageKey reports whether a catalogue key is a message's rather than a page's.
func isMessageKey(k string) bool { return !pageKey.MatchString(k) }

// langOf returns the language a request is served in: the cookie the switch set, else the
// browser's first preference among ours, else English.
func langOf(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && (c.Value == "en" || c.Value == "cy") {
		return c.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		if strings.HasPrefix(tag, "cy") {
			return "cy"
		}
		if strings.HasPrefix(tag, "en") {
			return "en"
		}
	}
	return "en"
}

// navItem is one link of the main navigation.
type navItem struct {
	Key, Href string
	Current   bool
}

// problem is one entry of a form's error summary, linked to its field.
type problem struct {
	Field   string // the id of the field, "" for a problem with the whole form
	Message string
}

// page is what every template gets.
type page struct {
	Lang, Other string
	Title       string
	User        *access.User
	CSRF        string
	Path        string // the current path and query, for the language switch
	Nav         []navItem
	Flash       string
	Problems    []problem
	RequestID   string
	Data        any

	srv  *Server
	msgs map[string]string
}

// T returns the message with key in the page's language (the key itself if it is missing, which
// the catalogue test forbids).
func (p *page) T(key string) string {
	if m, ok := p.msgs[key]; ok {
		return m
	}
	return key
}

// catalogue looks a message key up in the page's language: an apperr.Catalogue. English pages
// find no message keys (the code holds the English) and show each message as made.
func (p *page) catalogue(key string) (string, bool) {
	m, ok := p.msgs[key]
	return m, ok
}

// Msg renders a message made elsewhere (a claim finding) in the page's language.
func (p *page) Msg(t apperr.Text) string { return apperr.Format(p.catalogue, t.Key, t.Args, t.Message) }

// Public returns what a person may be shown of err (apperr.Public), in the page's language.
func (p *page) Public(err error) string { return apperr.PublicIn(err, p.catalogue) }

// rowErrors returns the rejected rows err carries (an import's), in the page's language.
func (p *page) rowErrors(err error) []RowError {
	ie := match.AsImportError(err)
	if ie == nil {
		return nil
	}
	out := make([]RowError, len(ie.Rows))
	for i, r := range ie.Rows {
		out[i] = RowError{Row: int(r.Row), Rule: r.Rule, Message: apperr.Format(p.catalogue, r.Key, r.Args, r.Message), key: r.Key}
	}
	return out
}

// AuthName returns an authority's name in the page's language.
func (p *page) AuthName(code string) string {
	if p.srv.cfg.Programme != nil {
		if a, ok := p.srv.cfg.Programme.Authority(code); ok {
			if p.Lang == "cy" && a.NameCY != "" {
				return a.NameCY
			}
			return a.NameEN
		}
	}
	return code
}

// Money formats an amount in pounds with thousands separators: £1,234.50 (−£5.00 for credits).
func (p *page) Money(d decimal.Decimal) string {
	if d.IsNegative() {
		return "−" + gbp.Pounds(d.Neg())
	}
	return gbp.Pounds(d)
}

// AccountName is a ledger account in the page's language: the chart's well-known accounts by
// name, a heading's expenditure account by its heading, an authority's accounts with its name;
// the code itself when none of these.
func (p *page) AccountName(code string) string {
	kind, rest, _ := strings.Cut(code, ":")
	switch kind {
	case "exp":
		return p.T("heading." + rest)
	case "inkind", "match":
		return p.T("account."+kind) + ", " + p.AuthName(rest)
	case "alloc":
		if a, ok := strings.CutPrefix(rest, "match:"); ok {
			return p.T("account.alloc.match") + ", " + p.AuthName(a)
		}
	}
	if s, ok := p.catalogue("account." + strings.ReplaceAll(code, ":", ".")); ok {
		return s
	}
	return code
}

// ActionName is an audited action in the page's language ("claims.submit": Claim submitted),
// or its code when the catalogue has no name for it. The code is what the filter takes.
func (p *page) ActionName(code string) string {
	if s, ok := p.catalogue("audit.action." + code); ok {
		return s
	}
	return code
}

// Variance formats a signed percentage to two places: +12.50%, −21.53% (the minus sign, as
// Money writes it), 0.00%.
func (p *page) Variance(d decimal.Decimal) string {
	s := d.Abs().StringFixed(2) + "%"
	switch d.Sign() {
	case 1:
		return "+" + s
	case -1:
		return "−" + s
	}
	return s
}

// BeyondC6 reports whether an authority's match is beyond ±15% of its pro-rata target, which
// the claim's finding C6 warns of: as the claim computed it, or for a claim compiled before it
// kept that, by its variance to two places.
func (p *page) BeyondC6(m claims.AuthorityMatch) bool {
	return m.Beyond || m.VariancePct.Abs().GreaterThan(decimal.NewFromInt(15))
}

// Date formats a calendar date as ISO 8601, which reads the same in both languages.
func (p *page) Date(t time.Time) string { return t.Format("2006-01-02") }

// DateTime formats an instant in the programme's zone.
func (p *page) DateTime(t any) string {
	var tt time.Time
	switch v := t.(type) {
	case time.Time:
		tt = v
	case *time.Time:
		if v == nil {
			return ""
		}
		tt = *v
	}
	loc := time.UTC
	if p.srv.cfg.Programme != nil {
		if l, err := p.srv.cfg.Programme.Location(); err == nil {
			loc = l
		}
	}
	// The zone is named (GMT or BST): packs and manifests give UTC, and an hour's difference
	// unexplained would read as a discrepancy.
	return tt.In(loc).Format("2006-01-02 15:04 MST")
}

// Can reports whether the signed-in user may do action (any authority), to decide which
// forms a page offers. The handler behind each form asks access.Can again.
func (p *page) Can(action string) bool {
	return p.User != nil && access.Can(*p.User, access.Action(action), "") == nil
}

// navigation returns the links u's role can use, in a fixed order.
func navigation(u *access.User, current string) []navItem {
	if u == nil {
		return nil
	}
	can := func(a access.Action) bool { return access.Can(*u, a, "") == nil }
	items := []navItem{{Key: "nav.dashboard", Href: "/"}}
	if can(access.ReadRecords) {
		items = append(items, navItem{Key: "nav.officers", Href: "/officers"}, navItem{Key: "nav.time", Href: "/time"})
	}
	if can(access.ReadClaims) {
		items = append(items, navItem{Key: "nav.expenditure", Href: "/expenditure"})
	}
	if can(access.ReadClaims) {
		items = append(items, navItem{Key: "nav.claims", Href: "/claims"})
	}
	if can(access.VerifyLedger) {
		items = append(items, navItem{Key: "nav.ledger", Href: "/ledger"}, navItem{Key: "nav.audit", Href: "/audit"})
	}
	if can(access.ManageUsers) {
		items = append(items, navItem{Key: "nav.users", Href: "/admin/users"}, navItem{Key: "nav.tokens", Href: "/admin/tokens"})
	}
	if can(access.ReadAccountAudit) {
		items = append(items, navItem{Key: "nav.accountaudit", Href: "/admin/audit"})
	}
	for i := range items {
		h := items[i].Href
		items[i].Current = current == h || (h != "/" && strings.HasPrefix(current, h+"/"))
	}
	return items
}

// newPage returns the page frame of r with title key titleKey.
func (s *Server) newPage(r *http.Request, titleKey string, data any) *page {
	st := stateOf(r)
	lang := st.lang
	other := "cy"
	if lang == "cy" {
		other = "en"
	}
	// The language switch comes back to this page; a page answering a form (a POST) cannot
	// be asked for again, so it goes to the dashboard.
	back := "/"
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		back = r.URL.RequestURI()
	}
	p := &page{Lang: lang, Other: other, User: st.user, CSRF: csrf(r), Path: back,
		Nav: navigation(st.user, r.URL.Path), RequestID: st.id, Data: data, srv: s, msgs: s.pages.catalogs[lang]}
	p.Title = p.T(titleKey)
	if f := r.URL.Query().Get("done"); f != "" {
		if m, ok := p.msgs["done."+f]; ok {
			p.Flash = m
		}
	}
	return p
}

// render writes page name with status.
func (s *Server) render(w http.ResponseWriter, status int, name string, p *page) error {
	t, ok := s.pages.tmpl[name]
	if !ok {
		return apperr.Wrap("web.render", fmt.Errorf("no template %q", name))
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return apperr.Wrap("web.render", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
	return nil
}

// errorPage is the data of the error page.
type errorPage struct {
	Status  int
	Code    string
	Rule    string
	Message string
	Rows    []RowError
}

// renderPage renders the error page of err (from the error renderer), in the page's language. A
// failure to render falls back to plain text.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, err error) {
	code, rule, _, _ := classify(err)
	p := s.newPage(r, "error.title."+string(code), nil)
	if p.Title == "error.title."+string(code) {
		p.Title = p.T("error.title")
	}
	data := &errorPage{Status: status, Code: string(code), Rule: rule, Message: p.Public(sized(err)), Rows: p.rowErrors(err)}
	p.Data = data
	if err := s.render(w, status, name, p); err != nil {
		s.log.Error("rendering the error page failed", "request_id", stateOf(r).id, "err", err)
		http.Error(w, data.Message, status)
	}
}

// field is a form field for the "field" template.
type field struct {
	ID, Name, Label, Hint, Error, Type, Value, Autocomplete, Inputmode string
	Required                                                           bool
	Options                                                            []option
}

// option is one choice of a select field.
type option struct {
	Value, Label string
	Selected     bool
}

// Describedby returns the ids that describe the field: its hint and its error.
func (f field) Describedby() string {
	var ids []string
	if f.Hint != "" {
		ids = append(ids, f.ID+"-hint")
	}
	if f.Error != "" {
		ids = append(ids, f.ID+"-error")
	}
	return strings.Join(ids, " ")
}

// uploadForm is the data of the "upload" template.
type uploadForm struct {
	Action, Kind, CSRF, Label, Hint, Submit string
}

// correctionForm is the data of the "correction" template: the form that reverses a line
// (kind fixed when not "", else chosen among the fields).
type correctionForm struct {
	Title, Help, Submit, CSRF, Kind string
	Fields                          []field
}

func correctionData(p *page, fields []field, kind string) correctionForm {
	return correctionForm{Title: p.T("corr.title"), Help: p.T("corr.help"), Submit: p.T("corr.submit"), CSRF: p.CSRF, Kind: kind,
		Fields: fields}
}

func uploadData(p *page, action, kind string) uploadForm {
	return uploadForm{Action: action, Kind: kind, CSRF: p.CSRF, Label: p.T("upload." + kind + ".label"),
		Hint: p.T("upload." + kind + ".hint"), Submit: p.T("upload.submit")}
}
