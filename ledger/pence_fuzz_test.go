package ledger

import (
	"math"
	"testing"
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
