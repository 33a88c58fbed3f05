package claims_test

import (
	"testing"
	"time"

	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/programme"
)

// FuzzParseSchedule: INFUSE_CLAIM_SCHEDULE never panics the parser, is refused as invalid, and
// an accepted schedule's next run never lies in the past.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0 6 1 1,4,7,10 *", "@every 5s", "@daily", "* * * * *", "60 25 32 13 8", "@every -1s",
		"*/0 * * * *", "0 6 30 2 *", "@every 1ns", "", "\x00", "0 6 1 JAN-DEC/3 MON-FRI"} {
		f.Add(s)
	}
	t0 := time.Date(2021, 7, 15, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := claims.ParseSchedule(spec)
		if err != nil {
			if apperr.CodeOf(err) != apperr.Invalid {
				t.Fatalf("%q refused with code %q", spec, apperr.CodeOf(err))
			}
			return
		}
		if next := s.Next(t0); !next.IsZero() && !next.After(t0) {
			t.Fatalf("%q: next run %v is not after %v", spec, next, t0)
		}
	})
}

// FuzzPeriodByCode: a claim period code from a URL or a flag never panics the lookup, and a
// found period has exactly the code asked for.
func FuzzPeriodByCode(f *testing.F) {
	for _, s := range []string{"2021Q3", "2021Q0", "2021Q5", "2021q3", "../2021Q3", "2021Q3\x00", "9999999999Q1", "", "Q", "2021-Q3"} {
		f.Add(s)
	}
	prog := programme.Default()
	f.Fuzz(func(t *testing.T, code string) {
		p, err := claims.PeriodByCode(prog, code)
		if err != nil {
			if c := apperr.CodeOf(err); c != apperr.NotFound && c != apperr.Invalid {
				t.Fatalf("%q refused with code %q", code, c)
			}
			return
		}
		if p.Code != code {
			t.Fatalf("%q found period %q", code, p.Code)
		}
	})
}
