package gbp_test

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/gbp"
)

func TestPounds(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"0": "£0.00", "5": "£5.00", "-5": "-£5.00", "999.99": "£999.99", "1000": "£1,000.00",
		"-1234.5": "-£1,234.50", "16666.67": "£16,666.67", "2455227.33": "£2,455,227.33",
		"100000000": "£100,000,000.00", "-0.01": "-£0.01",
	} {
		if got := gbp.Pounds(decimal.RequireFromString(in)); got != want {
			t.Errorf("Pounds(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestGroup(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "", "1": "1", "123": "123", "1234": "1,234", "123456": "123,456", "1234567.891": "1,234,567.891",
	} {
		if got := gbp.Group(in); got != want {
			t.Errorf("Group(%q) = %q, want %q", in, got, want)
		}
	}
}
