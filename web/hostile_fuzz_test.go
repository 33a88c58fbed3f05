package web

import (
	"bytes"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/match"
)

// FuzzTimeEntryJSON feeds arbitrary bodies through the API's JSON reading and the time entry's
// field parsing (no database): never a panic, and every refusal is invalid with the rule of the
// body (W3), a date (M1) or the hours (V3) — never internal. Accepted bodies are valid UTF-8.
func FuzzTimeEntryJSON(f *testing.F) {
	for _, s := range []string{
		`{"authority":"GB-NWP","payroll_ref":"NWP-1","work_date":"2021-05-04","hours":"7.25","activity":"lab","evidence_ref":"TS-1","approved_by":"G"}`,
		`{"work_date":"2021-02-30","hours":7.25}`, `{"work_date":"2021-05-04","hours":1e400}`, `{"work_date":"2021-05-04","hours":"NaN"}`,
		`{"work_date":"2021-05-04","hours":-0}`, `{"hours":true}`, `[]`, `{} {}`, "{\"payroll_ref\":\"\xff\"}", `{"x":1}`, ``,
		`{"work_date":"2021-05-04","hours":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/api/v1/time-entries", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var in timeInputJSON
		err := decodeJSON(r, &in)
		if err == nil {
			if !utf8.Valid(body) {
				t.Fatalf("accepted a body that is not UTF-8: %q", body)
			}
			_, err = in.parse()
		}
		if err == nil {
			return
		}
		switch e := apperr.As(err); {
		case e == nil || e.Code != apperr.Invalid:
			t.Fatalf("refused with code %q: %v", apperr.CodeOf(err), err)
		case e.Rule != RuleBody && e.Rule != match.RuleFormat && e.Rule != match.RuleV3:
			t.Fatalf("refused with rule %q: %v", e.Rule, err)
		}
	})
}
