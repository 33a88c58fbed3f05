package match_test

import (
	"slices"
	"testing"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/match"
)

// listFixture records officers of two authorities, time entries in two periods (one reversed)
// and expenditure lines under two headings (one reversed).
func listFixture(t *testing.T) (*fixture, []int64, []int64) {
	t.Helper()
	f := newFixture(t)
	f.officers(t, "GB-NWP,NWP-1,Rhian Evans,2021-01-01,44750.00,0.8", "GB-NWP,NWP-1,Rhian Evans,2021-09-01,46000.00,1",
		"GB-NWP,NWP-2,Gareth Morgan,2021-01-01,38456.78,0.74", "GB-CRF,CRF-1,Dafydd Jones,2021-01-01,41280.00,1")
	var times []int64
	for _, in := range []match.TimeInput{
		entry("GB-NWP", "NWP-1", "2021-05-04", "7.25", "lab"), entry("GB-NWP", "NWP-1", "2021-05-05", "3", "coaching"),
		entry("GB-NWP", "NWP-2", "2021-08-02", "6", "lab"), entry("GB-CRF", "CRF-1", "2021-05-04", "7", "lab"),
		entry("GB-NWP", "NWP-1", "2021-08-03", "2.5", "steering"),
	} {
		e, err := f.s.RecordTime(f.ctx, f.pm, in)
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, e.ID)
	}
	if _, err := f.s.ReverseTime(f.ctx, f.pm, times[1], "wrong day"); err != nil {
		t.Fatal(err)
	}
	var exps []int64
	for _, in := range []match.ExpenditureInput{
		{Heading: "delivery", DefrayedOn: date("2021-05-10"), Payee: "Nesta", Description: "Lab facilitation", Amount: dec("18250.00"), EvidenceRef: "INV-1", InvoiceRef: "1"},
		{Heading: "other", DefrayedOn: date("2021-08-10"), Payee: "Venue Ltd", Description: "Room hire", Amount: dec("420.00"), EvidenceRef: "INV-2", InvoiceRef: "2"},
		{Heading: "delivery", DefrayedOn: date("2021-08-11"), Payee: "Nesta", Description: "Cohort Beta", Amount: dec("9000.00"), EvidenceRef: "INV-3", InvoiceRef: "3"},
	} {
		e, err := f.s.RecordExpenditure(f.ctx, f.pm, in)
		if err != nil {
			t.Fatal(err)
		}
		exps = append(exps, e.ID)
	}
	if _, err := f.s.ReverseExpenditure(f.ctx, f.pm, exps[0], "duplicate invoice"); err != nil {
		t.Fatal(err)
	}
	return f, times, exps
}

func ids[T any](items []T, id func(T) int64) []int64 {
	out := []int64{}
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

func timeIDs(p match.Page[match.TimeEntry]) []int64 {
	return ids(p.Items, func(e match.TimeEntry) int64 { return e.ID })
}

func TestLists(t *testing.T) {
	t.Parallel()
	f, times, exps := listFixture(t)
	admin := access.User{Email: "admin@infuse.example", Name: "Alys Admin", Role: access.Admin}
	officersErr := func(by access.User, lf match.ListFilter) error { _, err := f.s.Officers(f.ctx, by, lf); return err }
	timeErr := func(by access.User, lf match.ListFilter) error { _, err := f.s.TimeEntries(f.ctx, by, lf); return err }
	expErr := func(by access.User, lf match.ListFilter) error {
		_, err := f.s.ExpenditureLines(f.ctx, by, lf)
		return err
	}

	t.Run("OfficersOfOwnAuthorityWithVersions", func(t *testing.T) {
		p, err := f.s.Officers(f.ctx, f.foNWP, match.ListFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var refs []string
		for _, o := range p.Items {
			refs = append(refs, o.Authority+"/"+o.PayrollRef)
		}
		if !slices.Equal(refs, []string{"GB-NWP/NWP-2", "GB-NWP/NWP-1"}) || p.Next != 0 {
			t.Fatalf("officers %v next %d", refs, p.Next)
		}
		v := p.Items[1].Versions
		if len(v) != 2 || v[0].ValidFrom.After(v[1].ValidFrom) {
			t.Fatalf("versions %+v", v)
		}
		// R5.1: 44750 / (1720 × 0.8) = 32.5218…, shown to 4 decimals.
		if got := v[0].HourlyRate.StringFixed(4); got != "32.5218" {
			t.Errorf("hourly rate %s", got)
		}
		if _, err := f.s.Officers(f.ctx, f.foNWP, match.ListFilter{Authority: "GB-CRF"}); apperr.RuleOf(err) != access.RuleV8 {
			t.Errorf("another authority's officers: %v", err)
		}
		p, err = f.s.Officers(f.ctx, f.audit, match.ListFilter{PayrollRef: "CRF-1"})
		if err != nil || len(p.Items) != 1 || p.Items[0].Name != "Dafydd Jones" {
			t.Errorf("auditor by payroll ref: %+v %v", p, err)
		}
		wantRule(t, officersErr(admin, match.ListFilter{}), apperr.Forbidden, access.RuleRole)
		wantRule(t, officersErr(f.pm, match.ListFilter{Authority: "GB-XXX"}), apperr.Invalid, match.RuleRef)
		wantRule(t, officersErr(f.pm, match.ListFilter{Period: "2021Q2"}), apperr.Invalid, match.RuleFormat)
	})

	t.Run("TimeEntriesNewestFirstByPage", func(t *testing.T) {
		var got []int64
		next, pages := int64(0), 0
		for {
			p, err := f.s.TimeEntries(f.ctx, f.pm, match.ListFilter{Limit: 2, Before: next})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, timeIDs(p)...)
			pages++
			if next = p.Next; next == 0 {
				break
			}
		}
		want := slices.Clone(times)
		slices.Reverse(want)
		if !slices.Equal(got, want) || pages != 3 {
			t.Fatalf("paged ids %v in %d pages, want %v in 3", got, pages, want)
		}
	})

	t.Run("TimeEntriesFiltered", func(t *testing.T) {
		for _, c := range []struct {
			name string
			by   access.User
			f    match.ListFilter
			want []int64
		}{
			{"OwnAuthorityOnly", f.foNWP, match.ListFilter{}, []int64{times[4], times[2], times[1], times[0]}},
			{"OtherFinanceOfficer", f.foCRF, match.ListFilter{}, []int64{times[3]}},
			{"Period", f.pm, match.ListFilter{Period: "2021Q2"}, []int64{times[3], times[1], times[0]}},
			{"Live", f.foNWP, match.ListFilter{Status: match.Live}, []int64{times[4], times[2], times[0]}},
			{"Reversed", f.pm, match.ListFilter{Status: match.Reversed}, []int64{times[1]}},
			{"Officer", f.audit, match.ListFilter{Authority: "GB-NWP", PayrollRef: "NWP-1", Period: "2021Q3"}, []int64{times[4]}},
		} {
			p, err := f.s.TimeEntries(f.ctx, c.by, c.f)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := timeIDs(p); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
		p, _ := f.s.TimeEntries(f.ctx, f.pm, match.ListFilter{Status: match.Reversed})
		if p.Items[0].ReversedBy == 0 || p.Items[0].OfficerName != "Rhian Evans" {
			t.Errorf("reversed entry %+v", p.Items[0])
		}
		wantRule(t, timeErr(f.foNWP, match.ListFilter{Authority: "GB-CRF"}), apperr.Forbidden, access.RuleV8)
		wantRule(t, timeErr(f.pm, match.ListFilter{Limit: match.MaxPageSize + 1}), apperr.Invalid, match.RuleFormat)
		wantRule(t, timeErr(f.pm, match.ListFilter{Status: "gone"}), apperr.Invalid, match.RuleFormat)
		wantRule(t, timeErr(f.pm, match.ListFilter{Period: "2031Q1"}), apperr.Invalid, match.RuleRef)
		wantRule(t, timeErr(f.pm, match.ListFilter{Heading: "staff"}), apperr.Invalid, match.RuleFormat)
	})

	t.Run("ExpenditureIsReadWithClaims", func(t *testing.T) {
		expIDs := func(p match.Page[match.Expenditure]) []int64 {
			return ids(p.Items, func(e match.Expenditure) int64 { return e.ID })
		}
		p, err := f.s.ExpenditureLines(f.ctx, f.foNWP, match.ListFilter{})
		if err != nil || !slices.Equal(expIDs(p), []int64{exps[2], exps[1], exps[0]}) {
			t.Fatalf("finance officer reads the programme's cash: %v %v", expIDs(p), err)
		}
		p, _ = f.s.ExpenditureLines(f.ctx, f.audit, match.ListFilter{Heading: "delivery", Status: match.Live})
		if !slices.Equal(expIDs(p), []int64{exps[2]}) {
			t.Errorf("live delivery lines %v", expIDs(p))
		}
		p, _ = f.s.ExpenditureLines(f.ctx, f.pm, match.ListFilter{Period: "2021Q3", Limit: 1})
		if !slices.Equal(expIDs(p), []int64{exps[2]}) || p.Next != exps[2] {
			t.Errorf("first page of 2021Q3: %v next %d", expIDs(p), p.Next)
		}
		wantRule(t, expErr(admin, match.ListFilter{}), apperr.Forbidden, access.RuleRole)
		wantRule(t, expErr(f.pm, match.ListFilter{Authority: "GB-NWP"}), apperr.Invalid, match.RuleFormat)
		wantRule(t, expErr(f.pm, match.ListFilter{Heading: "officer_time"}), apperr.Invalid, match.RuleRef)
	})
}
