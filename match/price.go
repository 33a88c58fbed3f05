package match

import (
	"math/big"

	"github.com/shopspring/decimal"
)

// HourlyRate returns an officer's hourly rate by R5.1, exactly: AGEC ÷ (basis × FTE), where
// basis is the programme's annual hours of a full-time post (1720). Show it with RoundRat(r, 4).
func HourlyRate(annualCost, fte decimal.Decimal, basis int) *big.Rat {
	den := fte.Rat()
	den.Mul(den, big.NewRat(int64(basis), 1))
	return new(big.Rat).Quo(annualCost.Rat(), den)
}

// Price returns the amount of an officer-time line by R9.3a: hours × AGEC ÷ (basis × FTE),
// computed exactly and rounded half up to the penny once, for the line. It never goes through
// the 4-decimal rate, which would drift by up to hours × £0.00005.
func Price(hours, annualCost, fte decimal.Decimal, basis int) decimal.Decimal {
	r := HourlyRate(annualCost, fte, basis)
	r.Mul(r, hours.Rat())
	return RoundRat(r, 2)
}

// RoundRat rounds r half away from zero (half up, for the positive amounts of R9.3a) to places
// decimal places.
func RoundRat(r *big.Rat, places int32) decimal.Decimal {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil)
	num := new(big.Int).Mul(r.Num(), scale)
	num.Abs(num)
	den := r.Denom()
	// round(n/d) = floor((2n + d) / 2d) for n ≥ 0.
	num.Lsh(num, 1).Add(num, den)
	q := new(big.Int).Quo(num, new(big.Int).Lsh(den, 1))
	if r.Sign() < 0 {
		q.Neg(q)
	}
	return decimal.NewFromBigInt(q, -places)
}

// priceSQL is R9.3a in SQL, for the set-based import: the same exact arithmetic as Price, in
// integer pence, so that no division is ever rounded before the one rounding to the penny.
// With h = hours×100, a = AGEC×100, f = FTE×10000 (all integers) and B the hours basis,
// pence = h·a·100 ÷ (B·f), and half-up rounding is floor((2·h·a·100 + B·f) ÷ (2·B·f)). div()
// on numeric is PostgreSQL's exact truncating integer division. $basis is the query's parameter
// placeholder for B; TestPriceSQLMatchesGo checks the two agree.
func priceSQL(hours, cost, fte, basis string) string {
	h := "(" + hours + " * 100)"
	a := "(" + cost + " * 100)"
	f := "(" + fte + " * 10000)"
	b := "(" + basis + "::numeric)"
	return "(div(2 * " + h + " * " + a + " * 100 + " + b + " * " + f + ", 2 * " + b + " * " + f + ") / 100)::numeric(12, 2)"
}
