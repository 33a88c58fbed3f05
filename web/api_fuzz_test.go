package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// fuzzRoutes are the API's routes that read a JSON body, with who sends it.
var fuzzRoutes = []struct{ method, path, user string }{
	{"POST", "/api/v1/officers", "pm"},
	{"POST", "/api/v1/time-entries", "pm"},
	{"POST", "/api/v1/expenditure", "pm"},
	{"POST", "/api/v1/corrections", "pm"},
	{"POST", "/api/v1/claims/2021Q1/decision", "pm"},
	{"POST", "/api/v1/claims/2021Q1/payment", "pm"},
	{"POST", "/api/v1/users", "admin"},
	{"PUT", "/api/v1/users/fo@newport.example/password", "admin"},
	{"POST", "/api/v1/tokens", "admin"},
}

// fuzzWritten are the tables a refused request must leave alone (the audit log records
// refusals too, so it is not among them).
var fuzzWritten = append([]string{"app_user", "user_password", "api_token"}, hostileTables...)

// FuzzAPIBodies sends arbitrary bodies to every API route that reads JSON, through the real
// handler chain on a real database: the service never fails inside (no 5xx), every refusal is
// a JSON error with its code and no internal detail, and a refused request writes nothing.
func FuzzAPIBodies(f *testing.F) {
	e := newTestEnv(f)
	e.seedOfficer("GB-NWP", "NWP-1", "Rhian Evans")
	// A submitted claim, so that decisions and payments reach the claim's lifecycle.
	for _, step := range []struct{ name, user string }{{"compile", "pm"}, {"review", "pm2"}, {"submit", "pm"}} {
		if res := e.do("POST", "/api/v1/claims/2021Q1/"+step.name, step.user, nil); res.status >= 300 {
			f.Fatalf("claim %s: %d %s", step.name, res.status, res.body)
		}
	}
	seeds := [][]string{
		{`{"authority":"GB-NWP","payroll_ref":"NWP-2","name":"Dai Jones","valid_from":"2021-01-01","annual_cost":"39000.00","fte":"1"}`,
			`{"authority":"GB-NWP","payroll_ref":"NWP-2","name":"Dai Jones","valid_from":"2021-01-01","annual_cost":1e400,"fte":"NaN"}`},
		{`{"authority":"GB-NWP","payroll_ref":"NWP-1","work_date":"2021-05-04","hours":"7.25","activity":"lab","evidence_ref":"TS-1","approved_by":"G"}`,
			`{"authority":"GB-NWP","payroll_ref":"NWP-1","work_date":"2021-02-30","hours":"-0","activity":"lab","evidence_ref":"TS-2","approved_by":"G"}`},
		{`{"heading":"delivery","defrayed_on":"2021-06-30","payee":"Nesta","description":"Lab","amount":"100.00","evidence_ref":"INV-1","invoice_ref":"1"}`,
			`{"heading":"delivery","defrayed_on":"2021-06-30","payee":"Nes\u0000ta","description":"=1+1","amount":"Inf","evidence_ref":"INV-2"}`},
		{`{"time_entry_id":1,"reason":"wrong day"}`, `{"time_entry_id":-1,"expenditure_id":1,"reason":""}`},
		{`{"decided_on":"2021-09-01","approved":"10.00","disallowed":"0.00","reason":"r","heading":"delivery"}`, `{"approved":"1.001"}`},
		{`{"paid_on":"2021-09-30","amount":"10.00"}`, `{"paid_on":"2021-09-30","amount":"` + strings.Repeat("9", 10000) + `"}`},
		{`{"email":"new@infuse.example","name":"New","role":"auditor"}`, `{"email":"x","role":"finance_officer"}`},
		{`{"password":"a long enough password"}`, `{"password":""}`},
		{`{"email":"admin@infuse.example","name":"script"}`, `{"email":"nobody@example"}`},
	}
	for i, bodies := range seeds {
		for _, b := range append(bodies, ``, `[]`, `{} {}`, "{\"x\":\"\xff\"}", `{"reason":`) {
			f.Add(uint8(i), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		ctx := context.Background()
		counts := func() map[string]int64 {
			out := map[string]int64{}
			for _, table := range fuzzWritten {
				var n int64
				if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
					t.Fatal(err)
				}
				out[table] = n
			}
			return out
		}
		before := counts()
		req, err := http.NewRequest(r.method, e.ts.URL+r.path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.tokens[r.user])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 500:
			t.Fatalf("%s %s %q: status %d: %s", r.method, r.path, body, resp.StatusCode, answer)
		case resp.StatusCode < 400:
			return
		}
		var eb errorBody
		if err := json.Unmarshal(answer, &eb); err != nil || eb.Code == "" || eb.Code == "internal" || eb.Message == "" {
			t.Fatalf("%s %s %q: refused with %d and %s", r.method, r.path, body, resp.StatusCode, answer)
		}
		if internalText.MatchString(eb.Message) {
			t.Fatalf("%s %s %q: internal detail in %q", r.method, r.path, body, eb.Message)
		}
		for table, n := range counts() {
			if n != before[table] {
				t.Fatalf("%s %s %q: refused (%d %s %s) but %s went from %d to %d rows", r.method, r.path, body,
					resp.StatusCode, eb.Code, eb.Rule, table, before[table], n)
			}
		}
	})
}
