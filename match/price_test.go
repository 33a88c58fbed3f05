package match_test

import (
	"testing"

	"github.com/ccr-infuse/infuse/match"
)

// Hand-worked figures (R5.1, R9.3a). The rate is AGEC ÷ (1720 × FTE), kept exact; the amount
// is hours × AGEC ÷ (1720 × FTE) rounded half up once, never through the 4-decimal rate.
func TestHourlyRate(t *testing.T) {
	t.Parallel()
	cases := []struct{ agec, fte, want string }{
		{"38456.78", "0.74", "30.2143"}, // 38456.78 / 1272.8 = 30.21431489…
		{"44750.00", "0.8", "32.5218"},  // 44750 / 1376 = 32.52180232…
		{"17217.20", "1", "10.0100"},    // exactly 10.01
		{"8608.60", "0.5", "10.0100"},   // part-time, same rate
		{"41280.00", "1", "24.0000"},
		{"30000.21", "0.74", "23.5702"}, // 30000.21 / 1272.8 = 23.57024984…
	}
	for _, c := range cases {
		got := match.RoundRat(match.HourlyRate(dec(c.agec), dec(c.fte), 1720), 4)
		if got.StringFixed(4) != c.want {
			t.Errorf("HourlyRate(%s, %s) = %s, want %s", c.agec, c.fte, got.StringFixed(4), c.want)
		}
	}
}

func TestPrice(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name             string
		hours, agec, fte string
		want             string
	}{
		{"FTE0.74_7.5h", "7.5", "38456.78", "0.74", "226.61"},    // 226.6073617…
		{"FTE0.74_7.25h", "7.25", "38456.78", "0.74", "219.05"},  // 219.0537829…
		{"FTE0.74_3.25h", "3.25", "38456.78", "0.74", "98.20"},   // 98.1965234…
		{"FTE0.74_12h", "12", "38456.78", "0.74", "362.57"},      // 362.5717787…
		{"HalfPennyRoundsUp", "0.5", "17217.20", "1", "5.01"},    // exactly 5.005
		{"HalfPennyPartTime", "1.5", "8608.60", "0.5", "15.02"},  // exactly 15.015
		{"BelowHalfRoundsDown", "0.25", "17217.20", "1", "2.50"}, // exactly 2.5025
		// Pricing through the 4-decimal rate would give 288.73 (12.25 × 23.5702 = 288.73495).
		{"ExactNotVia4dpRate", "12.25", "30000.21", "0.74", "288.74"}, // 288.7355220…
		// … and 176.78 here (7.5 × 23.5713 = 176.78475), where the exact 176.7850997… rounds up.
		{"ExactNotVia4dpRate2", "7.5", "30001.61", "0.74", "176.79"},
		{"NewportExample", "7.25", "44750.00", "0.8", "235.78"}, // 235.7830668…
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := match.Price(dec(c.hours), dec(c.agec), dec(c.fte), 1720)
			if got.StringFixed(2) != c.want {
				t.Fatalf("Price(%s h, %s, %s) = %s, want %s", c.hours, c.agec, c.fte, got.StringFixed(2), c.want)
			}
		})
	}
}

func TestRoundRatNegative(t *testing.T) {
	t.Parallel()
	r := match.HourlyRate(dec("-17217.20"), dec("1"), 1720) // −10.01
	r.Mul(r, dec("0.5").Rat())                              // −5.005
	if got := match.RoundRat(r, 2).StringFixed(2); got != "-5.01" {
		t.Fatalf("RoundRat(-5.005) = %s, want -5.01 (half away from zero)", got)
	}
}
