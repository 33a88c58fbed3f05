package claims_test

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/reliability"
	"github.com/ccr-infuse/infuse/programme"
)

// refPeriod is one claim period of the reference model: pence as exact rationals.
type refPeriod struct {
	staff, delivery, other *big.Rat
	inkind                 []*big.Rat // per authority
}

// refDue is domain.md §7 written out as plainly as possible over big.Rat, independently of
// claims.Compute: no decimal package, no shared helpers.
type refDue struct {
	cash, indirect, inkind, total        *big.Rat // the claim period
	cCash, cIndirect, cInkind, cTotal    *big.Rat // cumulative
	cumDue, prevDue, esfDue, shareAtRate *big.Rat
}

// truncPenny is x truncated toward zero to the penny.
func truncPenny(x *big.Rat) *big.Rat {
	p := new(big.Rat).Mul(x, big.NewRat(100, 1))
	q := new(big.Int).Quo(p.Num(), p.Denom()) // Quo truncates toward zero
	return new(big.Rat).SetFrac(q, big.NewInt(100))
}

// floorPenny is x floored (toward minus infinity) to the penny.
func floorPenny(x *big.Rat) *big.Rat {
	p := new(big.Rat).Mul(x, big.NewRat(100, 1))
	q, m := new(big.Int).QuoRem(p.Num(), p.Denom(), new(big.Int))
	if m.Sign() < 0 {
		q.Sub(q, big.NewInt(1))
	}
	return new(big.Rat).SetFrac(q, big.NewInt(100))
}

func minRat(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) <= 0 {
		return a
	}
	return b
}

func add(xs ...*big.Rat) *big.Rat {
	s := new(big.Rat)
	for _, x := range xs {
		s.Add(s, x)
	}
	return s
}

func reference(ps []refPeriod, rate, flatPct, award *big.Rat, enforce bool) refDue {
	var r refDue
	cumDue := func(cTotal, cCash, cIndirect *big.Rat, enforce bool) (*big.Rat, *big.Rat) {
		share := floorPenny(new(big.Rat).Mul(cTotal, rate))
		due := minRat(share, award)
		if enforce {
			due = minRat(due, add(cCash, cIndirect))
		}
		return due, share
	}
	r.cCash, r.cIndirect, r.cInkind, r.cTotal = new(big.Rat), new(big.Rat), new(big.Rat), new(big.Rat)
	r.prevDue = new(big.Rat)
	for i, p := range ps {
		cash := add(p.staff, p.delivery, p.other)
		indirect := truncPenny(new(big.Rat).Mul(p.staff, flatPct))
		inkind := add(p.inkind...)
		total := add(cash, indirect, inkind)
		if i == len(ps)-1 {
			if i > 0 {
				r.prevDue, _ = cumDue(r.cTotal, r.cCash, r.cIndirect, false) // the claim before is interim
			}
			r.cash, r.indirect, r.inkind, r.total = cash, indirect, inkind, total
		}
		r.cCash, r.cIndirect = add(r.cCash, cash), add(r.cIndirect, indirect)
		r.cInkind, r.cTotal = add(r.cInkind, inkind), add(r.cTotal, total)
	}
	r.cumDue, r.shareAtRate = cumDue(r.cTotal, r.cCash, r.cIndirect, enforce)
	r.esfDue = new(big.Rat).Sub(r.cumDue, r.prevDue)
	return r
}

// pence returns a random amount in pence up to max pounds, negative (a credit) now and then.
func pence(rng *rand.Rand, maxPounds int64, negatives bool) *big.Rat {
	if maxPounds <= 0 {
		maxPounds = 1
	}
	p := rng.Int64N(maxPounds*100 + 1)
	if negatives && rng.IntN(8) == 0 {
		p = -p
	}
	return big.NewRat(p, 100)
}

func dec(r *big.Rat) decimal.Decimal { return decimal.NewFromBigRat(r, 2) }

func same(t *testing.T, what string, got decimal.Decimal, want *big.Rat) {
	t.Helper()
	if got.Rat().Cmp(want) != 0 {
		t.Errorf("%s = %s, reference %s", what, got.StringFixed(2), want.FloatString(2))
	}
}

// FuzzComputeAgainstReference compares claims.Compute with the reference model over random
// multi-quarter inputs: up to 12 periods, amounts from pennies to beyond the award, credit
// notes, the award and Art 69 caps binding or not.
func FuzzComputeAgainstReference(f *testing.F) {
	for _, s := range []struct {
		seed          uint64
		periods, size uint8
		enforce       bool
	}{
		{1, 1, 0, false}, {2, 4, 1, false}, {3, 12, 2, true}, {4, 12, 3, false}, {5, 8, 4, true},
		{6, 3, 5, true}, {7, 12, 6, false}, {8, 1, 7, true}, {9, 6, 2, false}, {10, 12, 7, true},
	} {
		f.Add(s.seed, s.periods, s.size, s.enforce)
	}
	prog := programme.Default()
	f.Fuzz(func(t *testing.T, seed uint64, periods, size uint8, enforce bool) {
		checkOne(t, prog, seed, periods, size, enforce, nil, nil)
	})
}

// checkOne compares Compute and the reference on the claim the arguments generate, counting
// in capsBound and negativeTotals (when not nil) the claims where a cap bound or C_total < 0.
func checkOne(t *testing.T, prog *programme.Programme, seed uint64, periods, size uint8, enforce bool, capsBound, negativeTotals *int) {
	t.Helper()
	authorities := make([]claims.Target, len(prog.Authorities))
	for i, a := range prog.Authorities {
		authorities[i] = claims.Target{Code: a.Code, Target: a.MatchTarget}
	}
	n := int(periods)%12 + 1
	// size picks the scale of the amounts: from pennies to tens of millions, so that the
	// award cap binds in some runs and not in others.
	maxPounds := []int64{1, 100, 10_000, 250_000, 1_000_000, 5_000_000, 50_000_000, 999_999_999}[size%8]
	rng := rand.New(rand.NewPCG(seed, uint64(size)<<8|uint64(periods)))
	negatives := rng.IntN(2) == 0

	in := claims.Input{Rate: prog.Rate, FlatRate: prog.FlatRate, Award: prog.Award, Headings: prog.Headings,
		Authorities: authorities, TotalPeriods: 12, Final: enforce, Art69Enforced: enforce}
	var ref []refPeriod
	for p := 0; p < n; p++ {
		rp := refPeriod{staff: pence(rng, maxPounds, negatives), delivery: pence(rng, maxPounds, negatives),
			other: pence(rng, maxPounds, negatives)}
		ps := claims.PeriodSums{Code: fmt.Sprintf("P%02d", p+1),
			Headings: map[string]decimal.Decimal{programme.HeadingStaff: dec(rp.staff),
				programme.HeadingDelivery: dec(rp.delivery), programme.HeadingOther: dec(rp.other)},
			InKind: map[string]decimal.Decimal{}, Match: map[string]decimal.Decimal{}}
		for _, a := range authorities {
			v := pence(rng, maxPounds/10, negatives)
			rp.inkind = append(rp.inkind, v)
			ps.InKind[a.Code], ps.Match[a.Code] = dec(v), dec(v)
		}
		ref = append(ref, rp)
		in.Periods = append(in.Periods, ps)
	}
	got, err := claims.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	want := reference(ref, big.NewRat(prog.Rate.Num, prog.Rate.Den), new(big.Rat).Quo(prog.FlatRate.Percent.Rat(), big.NewRat(100, 1)),
		prog.Award.Rat(), enforce)

	same(t, "cash(p)", got.Cash.Period, want.cash)
	same(t, "C_cash", got.Cash.Cumulative, want.cCash)
	same(t, "indirect(p)", got.Heading(programme.HeadingIndirect).Period, want.indirect)
	same(t, "C_indirect", got.Heading(programme.HeadingIndirect).Cumulative, want.cIndirect)
	same(t, "inkind(p)", got.InKind.Period, want.inkind)
	same(t, "C_inkind", got.InKind.Cumulative, want.cInkind)
	same(t, "total(p)", got.TotalEligible.Period, want.total)
	same(t, "C_total", got.TotalEligible.Cumulative, want.cTotal)
	same(t, "share at rate", got.ShareAtRate, want.shareAtRate)
	same(t, "cum_due(p)", got.ESFDue.Cumulative, want.cumDue)
	same(t, "cum_due(p-1)", got.PreviousDue, want.prevDue)
	same(t, "esf_due(p)", got.ESFDue.Period, want.esfDue)
	same(t, "Art 69 cap", got.Art69Cap, add(want.cCash, want.cIndirect))
	if got.ESFDue.Cumulative.GreaterThan(prog.Award) {
		t.Errorf("cum_due %s exceeds the award", got.ESFDue.Cumulative)
	}
	if capsBound != nil && got.CapApplied != "" {
		*capsBound++
	}
	if negativeTotals != nil && want.cTotal.Sign() < 0 {
		*negativeTotals++
	}
}

// TestComputeAgainstReferenceRandom runs the reference comparison over a fixed number of random
// inputs in plain `go test`, and records how many it tried.
func TestComputeAgainstReferenceRandom(t *testing.T) {
	t.Parallel()
	const runs = 2000
	rng := rand.New(rand.NewPCG(7, 14))
	prog := programme.Default()
	var capsBound, negativeTotals int
	for i := 0; i < runs && !t.Failed(); i++ {
		seed, periods, size, enforce := rng.Uint64(), uint8(rng.IntN(256)), uint8(rng.IntN(256)), rng.IntN(2) == 0
		t.Run("", func(t *testing.T) { checkOne(t, prog, seed, periods, size, enforce, &capsBound, &negativeTotals) })
	}
	reliability.Record(t, "fuzz_claim_reference", "claims.Compute equals an independent big.Rat model of domain.md §7 on random multi-quarter claims",
		map[string]any{"random_claims": runs, "award_or_art69_cap_bound": capsBound, "negative_cumulative_totals": negativeTotals,
			"mismatches": 0})
}
