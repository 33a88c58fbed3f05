package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"html"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The messages people can see come from the packages below, in English, each with its key (the
// English format) and arguments. The pages show them in the person's language through the
// catalogue. These tests find every message key in the source, so that none can be added
// without its Welsh.

// messagePackages are the packages whose messages reach the pages.
var messagePackages = []string{"../access", "../auth", "../claims", "../internal/db", "../ledger", "../match", "."}

// messageCalls are the functions that make a message from a format, and the positions of the
// formats among their arguments: apperr's in every package, the others in their own.
var messageCalls = map[string][]int{
	"apperr.New":     {2},    // every application error
	"apperr.Phrase":  {0},    // words an argument of a message holds
	"match.invalid":  {1},    // an invalid error
	"match.fail":     {1},    // a problem with a row
	"match.rowError": {2},    // a problem with a row, by number
	"match.bad":      {0},    // a number that does not parse
	"match.reg":      {2},    // how a constraint's violation reads
	"claims.add":     {4},    // a claim finding
	"claims.counted": {1, 2}, // the formats for one and for many, of which a count picks one
	"ledger.problem": {4},    // what ledger verify found
}

// sqlFormat finds the formats of the problems match's SQL checks report (into t_err, as a key
// and its arguments): the quoted SQL strings with a verb in its queries.
var sqlFormat = regexp.MustCompile(`'((?:[^']|'')*%s(?:[^']|'')*)'`)

// messageKeys returns every message key of the source, with where it is.
func messageKeys(t *testing.T) map[string]string {
	t.Helper()
	keys := map[string]string{}
	fset := token.NewFileSet()
	var dynamic []string
	for _, dir := range messagePackages {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			add := func(lit *ast.BasicLit) {
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatalf("%s: %v", fset.Position(lit.Pos()), err)
				}
				if _, ok := keys[s]; !ok && isMessageKey(s) {
					keys[s] = fset.Position(lit.Pos()).String()
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					name := callName(n.Fun)
					ats, ok := messageCalls[name]
					if !strings.HasPrefix(name, "apperr.") {
						ats, ok = messageCalls[f.Name.Name+"."+name]
					}
					for _, at := range ats {
						if !ok || len(n.Args) <= at {
							break
						}
						if lit, ok := n.Args[at].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							add(lit)
						} else if c, ok := n.Args[at].(*ast.CallExpr); ok && callName(c.Fun) == "counted" {
							// The formats counted chooses from are its own arguments.
						} else if name != "apperr.Phrase" && !isParam(n.Args[at]) {
							// (A Phrase made from data, such as an unknown role, shows as it is.)
							dynamic = append(dynamic, fset.Position(n.Pos()).String())
						}
					}
				case *ast.FuncDecl:
					// A function that answers a Phrase: the words it returns.
					if n.Type.Results != nil && len(n.Type.Results.List) == 1 && callName(n.Type.Results.List[0].Type) == "apperr.Phrase" {
						ast.Inspect(n.Body, func(m ast.Node) bool {
							if r, ok := m.(*ast.ReturnStmt); ok && len(r.Results) == 1 {
								if lit, ok := r.Results[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
									add(lit)
								}
							}
							return true
						})
					}
				case *ast.KeyValueExpr:
					// Constraint and error literals: Message "…" (and Key "…" where the message
					// is not its own key).
					if id, ok := n.Key.(*ast.Ident); ok && (id.Name == "Message" || id.Name == "Key") {
						if lit, ok := n.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							add(lit)
						}
					}
				case *ast.BasicLit:
					if n.Kind == token.STRING && f.Name.Name == "match" && strings.HasPrefix(n.Value, "`") {
						s, _ := strconv.Unquote(n.Value)
						for _, m := range sqlFormat.FindAllStringSubmatch(s, -1) {
							keys[strings.ReplaceAll(m[1], "''", "'")] = fset.Position(n.Pos()).String()
						}
					}
				}
				return true
			})
		}
	}
	if len(dynamic) > 0 {
		t.Errorf("messages made from a format that is not a literal, which no catalogue can hold: %v", dynamic)
	}
	return keys
}

// callName is the name of a called function: pkg.Func, or the bare name of a function or method.
func callName(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok && x.Name == "apperr" {
			return "apperr." + f.Sel.Name
		}
		return f.Sel.Name
	}
	return ""
}

// isParam reports whether a format argument is a function's own format parameter, passed on
// (a wrapper such as match's invalid): its callers' literals are the keys.
func isParam(e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	return ok && (id.Name == "format" || id.Name == "msg")
}

// verbs returns the formatting verbs of a template, in argument order (explicit indexes such as
// %[2]s resolved), so that a translation can be checked to take the same arguments.
var verbRe = regexp.MustCompile(`%(?:\[(\d+)\])?[-+# 0]*\d*(?:\.\d+)?([a-zA-Z%])`)

func verbs(tmpl string) []string {
	var out []string
	next := 1
	byArg := map[int]string{}
	for _, m := range verbRe.FindAllStringSubmatch(tmpl, -1) {
		if m[2] == "%" {
			continue
		}
		arg := next
		if m[1] != "" {
			arg, _ = strconv.Atoi(m[1])
		}
		byArg[arg] = m[2]
		next = arg + 1
	}
	for i := 1; i <= len(byArg); i++ {
		out = append(out, byArg[i])
	}
	return out
}

// TestEveryMessageIsInWelsh checks that every message key of the source has a Welsh template
// taking the same arguments as the English, and that the catalogue holds no message the source
// no longer makes.
func TestEveryMessageIsInWelsh(t *testing.T) {
	t.Parallel()
	pg, err := loadPages()
	if err != nil {
		t.Fatal(err)
	}
	keys := messageKeys(t)
	if len(keys) < 100 {
		t.Fatalf("found only %d message keys: the scan has lost its way", len(keys))
	}
	cy := pg.catalogs["cy"]
	var missing []string
	for k, where := range keys {
		w, ok := cy[k]
		if !ok {
			missing = append(missing, where+": "+strconv.Quote(k))
			continue
		}
		if got, want := strings.Join(verbs(w), " "), strings.Join(verbs(k), " "); got != want {
			t.Errorf("%s: Welsh %q takes arguments %q, English %q takes %q", where, w, got, k, want)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("no Welsh for the message at %s", m)
	}
	for k := range cy {
		if isMessageKey(k) {
			if _, ok := keys[k]; !ok {
				t.Errorf("Welsh catalogue holds %q, which no code makes", k)
			}
		}
	}
}

// TestDomainMessagesInWelsh follows messages from match, access and the parsers to a person who
// chose Welsh: a file's row errors beside their rows, a form's error, a refusal. The API and
// English pages keep the English text.
func TestDomainMessagesInWelsh(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	csv := "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n" +
		"GB-NWP,NWP-1,2021-02-01,7.5,juggling,TS-1,Gareth Morgan\n" +
		"GB-NWP,NWP-9,2021-02-02,7.5,lab,TS-2,Gareth Morgan\n"
	fo := e.signIn("fo")
	fo.get("/lang/cy")
	page := html.UnescapeString(string(fo.upload("/time/import", "time.csv", csv).body))
	for _, want := range []string{
		`nid yw'r gweithgaredd "juggling" yn un o lab, experiment, coaching, steering, other`,
		"nid oes swyddog NWP-9 yn GB-NWP: mewnforiwch y swyddog yn gyntaf",
		"mae problemau mewn 2 rhes; ni chofnodwyd dim o time.csv",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("Welsh import page lacks %q", want)
		}
	}
	v := url.Values{"authority": {"GB-NWP"}, "payroll_ref": {"NWP-1"}, "work_date": {"2021-02-01"}, "hours": {"7,5"},
		"activity": {"lab"}, "evidence_ref": {"TS-1"}, "approved_by": {"Gareth Morgan"}}
	page = html.UnescapeString(string(fo.post("/time", v).body))
	if !strings.Contains(page, `mae coma yn oriau "7,5": ysgrifennwch y rhif heb wahanyddion miloedd`) {
		t.Errorf("Welsh form error not found:\n%s", page)
	}
	v.Set("hours", "7.5")
	v.Set("work_date", "2020-01-06") // before the window (V1): the field named in Welsh too
	page = html.UnescapeString(string(fo.post("/time", v).body))
	if !strings.Contains(page, "dyddiad gwaith 2020-01-06") {
		t.Errorf("Welsh V1 error does not name the work date in Welsh:\n%s", page)
	}
	v.Set("work_date", "2021-02-01")
	res := fo.get("/officers?authority=GB-CRF")
	if page := html.UnescapeString(string(res.body)); res.status != http.StatusForbidden ||
		!strings.Contains(page, "mae fo@newport.example yn swyddog cyllid yn GB-NWP a chaiff weithredu ar ran GB-NWP yn unig, nid ar ran GB-CRF") {
		t.Errorf("Welsh refusal: %d\n%s", res.status, page)
	}
	aud := e.signIn("auditor")
	aud.get("/lang/cy")
	res = aud.post("/time", v)
	if page := html.UnescapeString(string(res.body)); res.status != http.StatusForbidden ||
		!strings.Contains(page, "ni chaiff auditor@wefo.example (archwilydd) wneud hyn: cofnodi amser swyddogion") {
		t.Errorf("Welsh role refusal: %d\n%s", res.status, page)
	}

	// The API and the English pages say it in English, as before.
	body := e.upload("/api/v1/imports/time", "fo", "time.csv", csv).errorBody(t)
	if len(body.Errors) != 2 || body.Errors[0].Message != `activity "juggling" is not one of lab, experiment, coaching, steering, other` ||
		body.Message != "M2: 2 rows have problems; nothing in time.csv was recorded" {
		t.Errorf("API errors %+v", body)
	}
	fo.get("/lang/en")
	if page := html.UnescapeString(string(fo.upload("/time/import", "time.csv", csv).body)); !strings.Contains(page,
		"there is no officer NWP-9 in GB-NWP: import the officer first") {
		t.Error("English import page lacks the English row error")
	}
}

// TestClaimPageInWelsh: a claim's findings and history show in Welsh on a Welsh page, and in
// English, exactly as compiled, on an English one and through the API.
func TestClaimPageInWelsh(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	if res := e.do("POST", "/api/v1/time-entries", "pm", timeEntry("GB-NWP", "NWP-1", "2021-02-01")); res.status != http.StatusCreated {
		t.Fatalf("%d %s", res.status, res.body)
	}
	if res := e.do("POST", "/api/v1/claims/2021Q1/compile", "pm", nil); res.status != http.StatusOK {
		t.Fatalf("compile: %d %s", res.status, res.body)
	}
	pm := e.signIn("pm")
	pm.get("/lang/cy")
	page := html.UnescapeString(string(pm.get("/claims/2021Q1").body))
	for _, want := range []string{
		"arian cyfatebol GB-NWP hyd at 2021Q1 yw ", " yn brin o'i darged pro rata o ", // C6, for each authority
		"lluniwyd", "(rheolwr rhaglen)", // the history
	} {
		if !strings.Contains(page, want) {
			t.Errorf("Welsh claim page lacks %q", want)
		}
	}
	for _, unwanted := range []string{"short of its pro-rata target", "compiled", "programme_manager"} {
		if strings.Contains(page, unwanted) {
			t.Errorf("Welsh claim page shows English %q", unwanted)
		}
	}
	pm.get("/lang/en")
	page = html.UnescapeString(string(pm.get("/claims/2021Q1").body))
	if !strings.Contains(page, "match of GB-NWP to 2021Q1 is ") || !strings.Contains(page, "short of its pro-rata target") {
		t.Error("English claim page lacks the English finding")
	}
	if body := string(e.do("GET", "/api/v1/claims/2021Q1", "pm", nil).body); !strings.Contains(body, "short of its pro-rata target") {
		t.Errorf("the API's claim JSON lost the English finding: %s", body)
	}
}
