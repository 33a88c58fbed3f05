package programme

import (
	"time"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// DateLayout is the one textual form of a date in files, CSV and the API (interfaces.md).
const DateLayout = "2006-01-02"

// Date returns the calendar date y-m-d as a time.Time at midnight UTC, the project's one
// representation of a date. Out-of-range values are normalised as time.Date does, so Date(2021,
// 2, 30) is 2021-03-02; use ParseDate for text that must be an exact date.
func Date(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// DateIn returns the calendar date of the instant t as seen in loc, at midnight UTC. It is how
// an instant (a recorded-at timestamp, "now") becomes a date: "today" for V2 is the date in the
// programme's time zone, not in UTC, or a time entry recorded at 00:30 BST would be dated the
// day before.
func DateIn(t time.Time, loc *time.Location) time.Time {
	return dateOf(t.In(loc))
}

// dateOf returns the calendar date of t in t's own location. Callers may hand us a time that
// is not midnight UTC; only its calendar date counts, so every comparison goes through this.
func dateOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return Date(y, m, d)
}

// isDate reports whether t already is a date in the project's sense: midnight UTC.
func isDate(t time.Time) bool {
	return t.Equal(dateOf(t))
}

// ParseDate parses a strict YYYY-MM-DD date: exactly ten characters, four-digit year from 0001,
// two-digit month and day, and a day that exists in that month, so 2021-02-30 is rejected rather
// than rolled over into March as time.Date would. The result is midnight UTC.
func ParseDate(s string) (time.Time, error) {
	// We parse by hand rather than with time.Parse so that the rules are exactly the ones
	// written above, with no sign, space or single-digit leniency to reason about.
	if len(s) != len(DateLayout) || s[4] != '-' || s[7] != '-' {
		return time.Time{}, badDate(s)
	}
	y, okY := digits(s[0:4])
	m, okM := digits(s[5:7])
	d, okD := digits(s[8:10])
	if !okY || !okM || !okD || y < 1 || m < 1 || m > 12 || d < 1 || d > daysIn(y, time.Month(m)) {
		return time.Time{}, badDate(s)
	}
	return Date(y, time.Month(m), d), nil
}

// digits converts an all-ASCII-digit string to its value.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn returns the number of days in month m of year y; day 0 of the next month is the last
// day of this one.
func daysIn(y int, m time.Month) int {
	return Date(y, m+1, 0).Day()
}

// badDate is the error for text that is not a date. The text is shortened so that a mistaken
// paste of a whole file does not become the message.
func badDate(s string) error {
	return apperr.New(apperr.Invalid, apperr.RuleFormat, "%q is not a date in the form YYYY-MM-DD", short(s))
}
