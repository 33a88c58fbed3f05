package ledger

import (
	"math"
	"testing"

	"github.com/shopspring/decimal"
)

// FuzzPence: the verifier's reader of numeric(16,2) text round-trips every amount the ledger
// can hold, and never panics on any other text.
func FuzzPence(f *testing.F) {
	for _, v := range []int64{0, 1, -1, 99, -99, 100, -12340, 99999999999999, -99999999999999} {
		f.Add(v, formatPence(v))
	}
	f.Add(int64(0), "1.-5")
	f.Add(int64(0), "-")
	f.Add(int64(0), "99999999999999999999.00")
	f.Fuzz(func(t *testing.T, v int64, s string) {
		_, _ = parsePence(s)
		if v == math.MinInt64 {
			return
		}
		v %= 1e16 // numeric(16,2) holds at most 14 digits before the point
		got, err := parsePence(formatPence(v))
		if err != nil || got != v {
			t.Fatalf("parsePence(formatPence(%d)) = %d, %v", v, got, err)
		}
	})
}

// FuzzPostingPence: validation's pence arithmetic agrees with decimal arithmetic on every
// amount: the same pence, the same refusals, and the same text as decimal's StringFixed(2).
func FuzzPostingPence(f *testing.F) {
	for _, c := range []struct {
		coef int64
		exp  int32
	}{{1234, -2}, {-5, -2}, {5, -3}, {50, -3}, {1, 0}, {-12, 1}, {9999999999999999, -2}, {10000000000000000, -2},
		{99999999999999, 0}, {100000000000000, 0}, {math.MaxInt64, -19}, {math.MinInt64, -2}, {7, 14}, {1, 16}, {3, -30}} {
		f.Add(c.coef, c.exp)
	}
	f.Fuzz(func(t *testing.T, coef int64, exp int32) {
		exp %= 40
		a := decimal.New(coef, exp)
		var want int64
		wantOK := a.Equal(a.Truncate(2)) && !a.Abs().GreaterThan(maxAmount)
		if wantOK {
			want = a.Shift(2).IntPart()
		}
		got, err := postingPence(0, a)
		if (err == nil) != wantOK || got != want {
			t.Fatalf("postingPence(%s) = %d, %v; want %d, ok %v", a, got, err, want, wantOK)
		}
		if wantOK && formatPence(got) != a.StringFixed(2) {
			t.Fatalf("formatPence(%d) = %q; StringFixed(2) of %s is %q", got, formatPence(got), a, a.StringFixed(2))
		}
	})
}
