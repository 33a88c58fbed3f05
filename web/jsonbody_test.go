package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// TestDecodeJSONSaysWhatIsWrong: a body the API cannot read is refused (invalid, W3) with the
// service's own words for what is wrong: a field by its JSON name and the type it takes, an
// unknown field, a syntax error and where, an empty body. Nothing of encoding/json's messages
// reaches the caller: they name the service's Go types.
func TestDecodeJSONSaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"TypeOfAStringField", `{"authority": 5}`, []string{"field authority must be a string, not a number"}},
		{"TypeOfAnAmount", `{"hours": {"h": 7}}`, []string{"field hours must be a string or a number, not an object"}},
		{"TypeOfAnIDInCorrections", `{"time_entry_id": "12"}`, []string{"field time_entry_id must be a whole number, not a string"}},
		{"FractionOfAnID", `{"time_entry_id": 1.5}`, []string{"field time_entry_id must be a whole number, not a number with a fraction or out of range"}},
		{"NotAnObject", `[1, 2]`, []string{"the request body must be a JSON object, not an array"}},
		{"UnknownField", `{"authority": "GB-NWP", "nope": 1}`, []string{`unknown field "nope"`, "authority, payroll_ref, work_date"}},
		{"SyntaxError", `{"authority" "GB-NWP"}`, []string{"not valid JSON: syntax error at byte 14"}},
		{"Truncated", `{"authority": "GB-`, []string{"not valid JSON: it ends at byte 18"}},
		{"Empty", ``, []string{"the request body is empty"}},
		{"Blank", " \n ", []string{"the request body is empty"}},
		{"TwoValues", `{} {}`, []string{"more than one JSON value"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("POST", "/api/v1/time-entries", strings.NewReader(c.body))
			r.Header.Set("Content-Type", "application/json")
			var err error
			if strings.HasPrefix(c.name, "TypeOfAnID") || strings.HasPrefix(c.name, "FractionOfAnID") {
				var in correctionInputJSON
				err = decodeJSON(r, &in)
			} else {
				var in timeInputJSON
				err = decodeJSON(r, &in)
			}
			if apperr.CodeOf(err) != apperr.Invalid || apperr.RuleOf(err) != RuleBody {
				t.Fatalf("got %v, want invalid %s", err, RuleBody)
			}
			msg := apperr.Public(err)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			for _, leak := range []string{"json:", "Go ", "struct", "timeInputJSON", "correctionInputJSON", "int64", "json.Number", "web."} {
				if strings.Contains(msg, leak) {
					t.Errorf("message %q shows %q", msg, leak)
				}
			}
		})
	}
	// Keys match fields as encoding/json matches them, ignoring case: not unknown.
	r := httptest.NewRequest("POST", "/api/v1/time-entries", strings.NewReader(`{"Authority": "GB-NWP"}`))
	var in timeInputJSON
	if err := decodeJSON(r, &in); err != nil || in.Authority != "GB-NWP" {
		t.Errorf("a key in another case: %v %+v", err, in)
	}
}

// TestJSONErrorsThroughTheAPI: the API's error body carries the service's message, not
// encoding/json's (which named the Go struct field timeInputJSON.authority).
func TestJSONErrorsThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	res := e.do("POST", "/api/v1/time-entries", "pm", `{"authority": 5}`)
	body := res.errorBody(t)
	if res.status != http.StatusUnprocessableEntity || body.Rule != RuleBody ||
		body.Message != "W3: field authority must be a string, not a number" {
		t.Errorf("%d %+v", res.status, body)
	}
}
