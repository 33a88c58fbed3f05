package programme

import (
	"fmt"
	"time"
)

// Period is one claim period. Code is "2021Q1" for a calendar quarter or "2021-01" for a
// calendar month; Seq numbers the periods of the window from 1; End is inclusive.
type Period struct {
	Code       string
	Seq        int
	Start, End time.Time
}

// Contains reports whether the calendar date of d lies in the period, both ends inclusive.
func (p Period) Contains(d time.Time) bool {
	d = dateOf(d)
	return !d.Before(p.Start) && !d.After(p.End)
}

// Periods returns the claim periods of the eligibility window in order: the calendar quarters
// or months that overlap it. The first and last are cut to the window, so that every date of
// every period is eligible (V1) and the periods cover the window exactly; for InFuSe the window
// is whole quarters and nothing is cut. It returns nil for a window that ends before it starts
// or an unknown frequency, which Validate reports.
func (p *Programme) Periods() []Period {
	months := p.Frequency.months()
	start, end := dateOf(p.WindowStart), dateOf(p.WindowEnd)
	if months == 0 || end.Before(start) {
		return nil
	}
	// Align to the first day of the calendar quarter or month containing the window start;
	// month arithmetic on day 1 never overflows into the following month.
	first := Date(start.Year(), start.Month()-(start.Month()-1)%time.Month(months), 1)
	var out []Period
	for s := first; !s.After(end); s = s.AddDate(0, months, 0) {
		e := s.AddDate(0, months, -1)
		per := Period{Code: p.Frequency.code(s), Seq: len(out) + 1, Start: s, End: e}
		if per.Start.Before(start) {
			per.Start = start
		}
		if per.End.After(end) {
			per.End = end
		}
		out = append(out, per)
	}
	return out
}

// PeriodOf returns the claim period containing the calendar date of d, and false when d is
// outside the eligibility window.
func (p *Programme) PeriodOf(d time.Time) (Period, bool) {
	if !p.InWindow(d) {
		return Period{}, false
	}
	for _, per := range p.Periods() {
		if per.Contains(d) {
			return per, true
		}
	}
	return Period{}, false
}

// PeriodByCode returns the claim period with the given code ("2021Q3", or "2021-07" when
// monthly).
func (p *Programme) PeriodByCode(code string) (Period, bool) {
	for _, per := range p.Periods() {
		if per.Code == code {
			return per, true
		}
	}
	return Period{}, false
}

// months returns the length of a period in months, or 0 for an unknown frequency.
func (f Frequency) months() int {
	switch f {
	case Quarterly:
		return 3
	case Monthly:
		return 1
	}
	return 0
}

// code returns the code of the period that starts on the first day s of a quarter or month.
func (f Frequency) code(s time.Time) string {
	if f == Quarterly {
		return fmt.Sprintf("%04dQ%d", s.Year(), (int(s.Month())-1)/3+1)
	}
	return fmt.Sprintf("%04d-%02d", s.Year(), int(s.Month()))
}
