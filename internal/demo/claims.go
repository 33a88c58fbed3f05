package demo

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

// The claims step of the demo: what a user sees mid-programme. The claims of the first eight
// quarters (2021Q1–2022Q4) went through their whole lifecycle as they would have, each on its
// own dates: compiled twelve days after its quarter ended, reviewed by the programme's finance
// lead, submitted by the programme manager, decided by WEFO six weeks later and paid a fortnight
// after that — one of them with a small disallowance, which the next claim carries as a negative
// adjustment. The later quarters are drafts, compiled (with their packs) as the scheduler would.

// submittedQuarters is how many claims the demo carries through to payment.
const submittedQuarters = 8

// disallowedQuarter is the claim WEFO disallows a little of.
const disallowedQuarter = 6

// ClaimsStep returns the AfterPeriod hook that runs the demo's claims, on a claims service of
// l whose clock follows each claim's own dates (the ledger stamps entries with its own clock).
// version names the software in the packs it stores: the binary's, as every other path that
// renders packs names it, so that a pack is byte for byte the same whichever path rendered it.
func ClaimsStep(l *ledger.Ledger, p *programme.Programme, version string, log io.Writer) (func(context.Context, programme.Period, People) error, error) {
	loc, err := p.Location()
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var now time.Time
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	set := func(d time.Time, hour int) {
		mu.Lock()
		defer mu.Unlock()
		now = time.Date(d.Year(), d.Month(), d.Day(), hour, 30, 0, 0, loc)
	}
	svc, err := claims.New(l, p, claims.WithClock(clock), claims.WithVersion(version))
	if err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if log != nil {
			fmt.Fprintf(log, format+"\n", args...)
		}
	}
	var drafts []string
	return func(ctx context.Context, per programme.Period, people People) error {
		compiled := per.End.AddDate(0, 0, 12)
		if per.Seq > submittedQuarters {
			// A draft, and every draft before it again: late timesheets have reached them since.
			drafts = append(drafts, per.Code)
			set(compiled, 6)
			for _, code := range drafts {
				if _, err := svc.CompileWithPack(ctx, code, claims.System); err != nil {
					return err
				}
			}
			logf("demo: %s: claim compiled as a draft", per.Code)
			return nil
		}

		set(compiled, 9)
		c, err := svc.Compile(ctx, per.Code, people.Manager)
		if err != nil {
			return err
		}
		set(compiled.AddDate(0, 0, 3), 11)
		if _, err := svc.Review(ctx, per.Code, people.Reviewer); err != nil {
			return err
		}
		submitted := compiled.AddDate(0, 0, 5)
		set(submitted, 15)
		if c, err = svc.Submit(ctx, per.Code, people.Manager); err != nil {
			return err
		}
		decided := submitted.AddDate(0, 0, 42)
		set(decided, 10)
		d := claims.Decision{DecidedOn: decided, Approved: c.Figures.ESFDue.Period}
		if per.Seq == disallowedQuarter {
			d.Disallowed = decimal.RequireFromString("1180.00")
			d.Heading = programme.HeadingOther
			d.Reason = "hotel costs above the WEFO subsistence rate; recovered through the next claim"
		}
		if _, err := svc.Decide(ctx, per.Code, d, people.Manager); err != nil {
			return err
		}
		paid := decided.AddDate(0, 0, 14)
		set(paid, 10)
		if _, err := svc.Pay(ctx, per.Code, claims.Payment{PaidOn: paid, Amount: d.Approved}, people.Manager); err != nil {
			return err
		}
		logf("demo: %s: claim %d of £%s submitted %s, decided %s, paid %s", per.Code, per.Seq,
			c.Figures.ESFDue.Period.StringFixed(2), day(submitted), day(decided), day(paid))
		return nil
	}, nil
}
