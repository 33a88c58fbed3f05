package match_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/match"
)

// TestRowErrorsCarryTheirKeys checks that every problem of an import, whether the Go checks or
// the SQL checks found it, carries its message key and arguments, and that they make exactly
// the English message the command line prints: the pages translate the key, the CLI and API
// keep the message.
func TestRowErrorsCarryTheirKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.officers(t, "GB-NWP,NWP-1,Rhian Evans,2021-01-01,44750.00,0.8", "GB-CRF,CRF-1,Dafydd Jones,2021-01-01,41280.00,1")
	_, err := f.importTime(f.foNWP,
		"GB-NWP,NWP-1,2021-05-04,1,5,lab,TS-1,Gareth Morgan",      // an unquoted comma: a field too many (Go: M1)
		"GB-NWP,NWP-1,2021-05-05,7.5,juggling,TS-2,Gareth Morgan", // Go: M2 activity
		"GB-NWP,NWP-9,2021-05-06,7.5,lab,TS-3,Gareth Morgan",      // SQL: M2 no officer
		"GB-CRF,CRF-1,2021-05-06,7.5,lab,TS-4,Gareth Morgan",      // SQL: V8, access.Can's refusal
		"GB-NWP,NWP-1,2021-05-07,8,lab,TS-5,Gareth Morgan",
		"GB-NWP,NWP-1,2021-05-07,5,coaching,TS-6,Gareth Morgan", // SQL: V3 daily total
		"GB-NWP,NWP-1,2021-05-08,7.255,lab,TS-7,Gareth Morgan",  // Go: hours with 3 places (a parse error's key)
	)
	ie := match.AsImportError(err)
	if ie == nil {
		t.Fatalf("want row problems, got %v", err)
	}
	rules := map[string]bool{}
	for _, r := range ie.Rows {
		rules[r.Rule] = true
		if r.Key == "" {
			t.Errorf("row %d %s has no message key: %s", r.Row, r.Rule, r.Message)
			continue
		}
		if got := fmt.Sprintf(r.Key, r.Args...); got != r.Message {
			t.Errorf("row %d %s: key and arguments make %q, the message is %q", r.Row, r.Rule, got, r.Message)
		}
	}
	for _, rule := range []string{"M1", "M2", "V8", "V3"} {
		if !rules[rule] {
			t.Errorf("no %s problem among %v", rule, ie.Rows)
		}
	}
	// The import's own message, and a single recording's, are keyed too.
	e := apperr.As(err)
	if e == nil || e.Key == "" || fmt.Sprintf(e.Key, e.Args...) != e.Message || !strings.Contains(e.Message, "nothing in time.csv was recorded") {
		t.Errorf("import error %+v", e)
	}
	_, err = f.s.RecordOfficer(f.ctx, f.pm, match.OfficerInput{Authority: "GB-NWP", PayrollRef: "NWP-2", Name: "Gareth Morgan",
		ValidFrom: date("2021-01-01"), AnnualCost: dec("1000.00"), FTE: dec("1.5")})
	if e := apperr.As(err); e == nil || e.Key == "" || fmt.Sprintf(e.Key, e.Args...) != e.Message {
		t.Errorf("single recording's error %+v", e)
	}
}
