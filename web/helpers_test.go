package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// testPassword is every test user's password.
const testPassword = "correct horse battery staple"

// cheapParams keep argon2id fast in tests; the stored hash carries them, so verification is real.
var cheapParams = auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// testUsers are the users every test server has, by a short name.
var testUsers = map[string]access.User{
	"fo":      {Email: "fo@newport.example", Name: "Ffion Officer", Role: access.FinanceOfficer, Authority: "GB-NWP"},
	"fo2":     {Email: "fo@cardiff.example", Name: "Carys Officer", Role: access.FinanceOfficer, Authority: "GB-CRF"},
	"pm":      {Email: "pm@infuse.example", Name: "Peredur Manager", Role: access.ProgrammeManager},
	"pm2":     {Email: "pm2@infuse.example", Name: "Megan Reviewer", Role: access.ProgrammeManager},
	"auditor": {Email: "auditor@wefo.example", Name: "Aled Auditor", Role: access.Auditor},
	"admin":   {Email: "admin@infuse.example", Name: "Alys Admin", Role: access.Admin},
}

// testToday is the service's clock in tests: 2021Q1 and Q2 have ended.
var testToday = time.Date(2021, 7, 15, 10, 0, 0, 0, time.UTC)

// testEnv is a server on a fresh database with the test users, their passwords and tokens.
type testEnv struct {
	t      testing.TB
	pool   *pgxpool.Pool
	prog   *programme.Programme
	ledger *ledger.Ledger
	claims *claims.Service
	match  *match.Service
	auth   *auth.Service
	srv    *Server
	ts     *httptest.Server
	tokens map[string]string // by user short name
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	return newTestEnvWith(t, dbtest.New(t), nil)
}

func newTestEnvWith(t testing.TB, pool *pgxpool.Pool, adjust func(*Config)) *testEnv {
	t.Helper()
	ctx := context.Background()
	clock := func() time.Time { return testToday }
	prog := programme.Default()
	l, err := ledger.Setup(ctx, pool, prog, ledger.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := claims.New(l, prog, claims.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := match.New(l, prog, match.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	as, err := auth.New(pool, auth.Config{OperationID: prog.OperationID, Now: clock, Params: cheapParams})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Pool: pool, Programme: prog, Ledger: l, Claims: cs, Match: ms, Auth: as, Scheduler: &claims.Metrics{}}
	if adjust != nil {
		adjust(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.now = clock
	e := &testEnv{t: t, pool: pool, prog: prog, ledger: l, claims: cs, match: ms, auth: as, srv: srv, tokens: map[string]string{}}
	for name, u := range testUsers {
		if _, err := access.AddUser(ctx, pool, prog.OperationID, access.System, u, nil, testToday); err != nil {
			t.Fatal(err)
		}
		if err := as.SetPassword(ctx, access.System, u.Email, testPassword); err != nil {
			t.Fatal(err)
		}
		secret, _, err := as.CreateToken(ctx, access.System, u.Email, "test "+name)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[name] = secret
	}
	e.ts = httptest.NewServer(srv)
	t.Cleanup(e.ts.Close)
	return e
}

// user returns a test user as stored.
func (e *testEnv) user(name string) access.User {
	e.t.Helper()
	u, err := access.UserByEmail(context.Background(), e.pool, e.prog.OperationID, testUsers[name].Email)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v\n%s", r.status, err, r.body)
	}
}

func (r response) errorBody(t testing.TB) errorBody {
	t.Helper()
	var b errorBody
	r.json(t, &b)
	return b
}

// do sends a request with the bearer token of user (none when user is "").
func (e *testEnv) do(method, path, user string, body any) response {
	e.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/json"
	default:
		j, _ := json.Marshal(b)
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+e.tokens[user])
	}
	return e.send(http.DefaultClient, req)
}

func (e *testEnv) send(c *http.Client, req *http.Request) response {
	e.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// upload posts a CSV file as a multipart upload with the bearer token of user.
func (e *testEnv) upload(path, user, name, csv string) response {
	e.t.Helper()
	body, ct := multipartFile(e.t, name, csv, nil)
	req, _ := http.NewRequest("POST", e.ts.URL+path, body)
	req.Header.Set("Content-Type", ct)
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+e.tokens[user])
	}
	return e.send(http.DefaultClient, req)
}

func multipartFile(t testing.TB, name, content string, fields map[string]string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write([]byte(content))
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// browser is a cookie session, as a person's browser holds one.
type browser struct {
	e    *testEnv
	c    *http.Client
	csrf string
}

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
var preInput = regexp.MustCompile(`name="_pre" value="([^"]+)"`)

// signIn signs user in through the sign-in form and returns the browser.
func (e *testEnv) signIn(user string) *browser {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	form := b.get("/signin")
	m := preInput.FindSubmatch(form.body)
	if m == nil {
		e.t.Fatalf("no _pre in the sign-in form:\n%s", form.body)
	}
	res := b.postForm("/signin", url.Values{"_pre": {string(m[1])}, "email": {testUsers[user].Email}, "password": {testPassword}})
	if res.status != http.StatusSeeOther {
		e.t.Fatalf("sign-in of %s: %d\n%s", user, res.status, res.body)
	}
	page := b.get("/")
	if mm := csrfInput.FindSubmatch(page.body); mm != nil {
		b.csrf = string(mm[1])
	} else {
		e.t.Fatalf("no CSRF token on the dashboard:\n%s", page.body)
	}
	return b
}

func (b *browser) get(path string) response {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.ts.URL+path, nil)
	return b.e.send(b.c, req)
}

func (b *browser) postForm(path string, v url.Values) response {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.ts.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.e.send(b.c, req)
}

// post posts a form with the session's CSRF token.
func (b *browser) post(path string, v url.Values) response {
	b.e.t.Helper()
	if v == nil {
		v = url.Values{}
	}
	v.Set("_csrf", b.csrf)
	return b.postForm(path, v)
}

func (b *browser) upload(path, name, csv string) response {
	b.e.t.Helper()
	body, ct := multipartFile(b.e.t, name, csv, map[string]string{"_csrf": b.csrf})
	req, _ := http.NewRequest("POST", b.e.ts.URL+path, body)
	req.Header.Set("Content-Type", ct)
	return b.e.send(b.c, req)
}

// seedOfficer records an officer of authority with one rate version, as the programme manager.
func (e *testEnv) seedOfficer(authority, ref, name string) {
	e.t.Helper()
	res := e.do("POST", "/api/v1/officers", "pm", map[string]any{"authority": authority, "payroll_ref": ref, "name": name,
		"valid_from": "2021-01-01", "annual_cost": "44750.00", "fte": "0.8"})
	if res.status != http.StatusCreated {
		e.t.Fatalf("seed officer: %d %s", res.status, res.body)
	}
}

// recordTime records a time entry of timeEntry's as the finance officer, through the API.
func (e *testEnv) recordTime(authority, ref, day string) {
	e.t.Helper()
	if res := e.do("POST", "/api/v1/time-entries", "fo", timeEntry(authority, ref, day)); res.status != http.StatusCreated {
		e.t.Fatalf("time of %s on %s: %d %s", ref, day, res.status, res.body)
	}
}

// claimSteps takes the claim of period through steps by the API: compile and submit by the
// programme manager "pm", review by "pm2" (four eyes).
func (e *testEnv) claimSteps(period string, steps ...string) {
	e.t.Helper()
	for _, step := range steps {
		user := "pm"
		if step == "review" {
			user = "pm2"
		}
		if res := e.do("POST", "/api/v1/claims/"+period+"/"+step, user, nil); res.status != http.StatusOK {
			e.t.Fatalf("%s %s: %d %s", step, period, res.status, res.body)
		}
	}
}

// timeEntry is a valid time entry for officer ref of authority on day.
func timeEntry(authority, ref, day string) map[string]any {
	return map[string]any{"authority": authority, "payroll_ref": ref, "work_date": day, "hours": "7.25", "activity": "lab",
		"evidence_ref": "TS-" + day, "approved_by": "Gareth Morgan"}
}
