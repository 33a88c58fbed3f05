package programme

import (
	"fmt"
	"math/big"

	"github.com/shopspring/decimal"
)

// Rate is an exact rational rate such as the intervention rate 9/14. Domain §1 requires the
// rate to be stored as numerator and denominator, never as a float or a rounded percentage,
// because 9/14 = 64.2857…% has no finite decimal form and any rounding would drift the ESF due.
type Rate struct {
	Num int64 `json:"num"`
	Den int64 `json:"den"`
}

// Valid reports whether r is usable as an intervention rate: a positive denominator and
// 0 < Num/Den ≤ 1. The zero Rate is not valid.
func (r Rate) Valid() bool {
	return r.Den > 0 && r.Num > 0 && r.Num <= r.Den
}

// Rat returns r as a new big.Rat. It panics if Den is zero, as big.NewRat does; Validate
// guarantees a positive denominator for every rate of a loaded programme.
func (r Rate) Rat() *big.Rat {
	return big.NewRat(r.Num, r.Den)
}

// Exact returns amount × r exactly, with no rounding, for workings that show the residual
// between the exact share and the floored one (R9.3c).
func (r Rate) Exact(amount decimal.Decimal) *big.Rat {
	x := amount.Rat()
	return x.Mul(x, r.Rat())
}

// FloorPenny returns floor(amount × r) to the penny, computed exactly (R9.3c). The floor is
// toward minus infinity, not toward zero: for a negative cumulative total (possible after a
// disallowance) the ESF due must never be overstated, and because R9.3c works cumulatively
// the floor applied to the cumulative total is what keeps rounding from drifting.
func (r Rate) FloorPenny(amount decimal.Decimal) decimal.Decimal {
	pence := r.Exact(amount)
	pence.Mul(pence, big.NewRat(100, 1))
	// big.Rat keeps its denominator positive, and Int.Div is Euclidean division, which for a
	// positive divisor is exactly floor division (Int.Quo would truncate toward zero).
	q := new(big.Int).Div(pence.Num(), pence.Denom())
	return decimal.NewFromBigInt(q, -2)
}

// String returns r as "num/den", for example "9/14".
func (r Rate) String() string {
	return fmt.Sprintf("%d/%d", r.Num, r.Den)
}

// FlatRateKind is the simplified-cost option the programme uses.
type FlatRateKind string

// The flat-rate options of domain §1.
const (
	// FlatNone claims no flat-rate amount.
	FlatNone FlatRateKind = "none"
	// FlatIndirect claims indirect costs at a percentage (15%) of direct staff costs,
	// CPR Art 68(1)(b), under heading "indirect".
	FlatIndirect FlatRateKind = "indirect"
	// FlatOther claims all costs other than direct staff costs at a percentage (40%) of direct
	// staff costs, ESF Reg Art 14(2); only staff and officer_time then accept lines (R6.4).
	FlatOther FlatRateKind = "other"
)

// FlatRate is the programme's flat-rate option and its percentage of direct staff costs.
// Whichever option applies, the flat amount of a period is the indirect(p) line of the claim
// (domain §7).
type FlatRate struct {
	Kind    FlatRateKind    `json:"kind"`
	Percent decimal.Decimal `json:"percent"`
}

// Amount returns the flat-rate amount on the given direct staff costs: Percent % of staff,
// truncated toward zero to the penny (R9.3b). Truncation toward zero (not floor) means a negative
// staff figure after a credit note gives a flat-rate credit no larger than the exact one. It is
// zero for FlatNone and for a kind Validate would reject.
func (f FlatRate) Amount(staff decimal.Decimal) decimal.Decimal {
	if f.Kind != FlatIndirect && f.Kind != FlatOther {
		return decimal.Zero
	}
	// Mul and Shift are exact in decimal, so the only rounding is the one truncation R9.3b asks
	// for; Div would round to DivisionPrecision first.
	return staff.Mul(f.Percent).Shift(-2).Truncate(2)
}
