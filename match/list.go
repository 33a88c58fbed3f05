package match

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
)

// Lists of what is recorded, for the people who keep and check the books: officers with their
// rate versions, time entries and expenditure lines, newest first, a page at a time. Pages are
// cut by keyset on the id (the primary key after operation_id), never by offset, so a page
// costs the same at the end of a 100,000-line list as at its start, and lines recorded while
// someone pages do not shift the pages they have not read yet.
//
// Who reads what is access.Can's: officers and time belong to an authority (read_records: a
// finance officer only their own, V8), expenditure lines are the programme's cash and are read
// with the claims they feed (read_claims).

// Page sizes of a list.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Status selects lines by whether a correction has reversed them.
type Status string

// The statuses a list can select; AnyStatus selects both.
const (
	AnyStatus Status = ""
	Live      Status = "live"
	Reversed  Status = "reversed"
)

// ListFilter selects and pages a list. The zero value selects the newest page of everything
// the caller may read. Not every list takes every filter: officers take Authority and
// PayrollRef; time entries those, Period and Status; expenditure lines Heading, Period and Status.
type ListFilter struct {
	Authority  string // an authority's ISO code; "" for every authority the caller may read
	PayrollRef string // one officer's payroll reference (with Authority, or across authorities)
	Heading    string // an expenditure heading: staff, delivery or other
	Period     string // booking period, such as 2021Q3
	Status     Status
	Before     int64 // only rows with a smaller id: the Next of the previous page (0 for the first page)
	Limit      int   // rows per page, 1 to MaxPageSize (0 for DefaultPageSize)
}

// Page is one page of a list, newest first. Next is the Before of the following page, 0 when
// this page is the last.
type Page[T any] struct {
	Items []T
	Next  int64
}

// where builds a query's conditions and arguments, operation_id first.
type where struct {
	conds []string
	args  []any
}

func newWhere(col, operationID string) *where {
	return &where{conds: []string{col + " = $1"}, args: []any{operationID}}
}

// add appends the condition cond, in which ? stands for the next argument.
func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)), 1))
}

func (w *where) sql() string { return " WHERE " + strings.Join(w.conds, " AND ") }

// page adds the keyset condition on idCol and returns the query's ORDER BY and LIMIT clause,
// which asks for one row more than the page to know whether another page follows.
func (w *where) page(idCol string, f ListFilter) string {
	if f.Before > 0 {
		w.add(idCol+" < ?", f.Before)
	}
	w.args = append(w.args, f.Limit+1)
	return " ORDER BY " + idCol + " DESC LIMIT $" + strconv.Itoa(len(w.args))
}

// cut trims rows read by a query built with page to the page, and finds the next page.
func cut[T any](rows []T, limit int, id func(T) int64) Page[T] {
	if rows == nil {
		rows = []T{}
	}
	if len(rows) <= limit {
		return Page[T]{Items: rows}
	}
	rows = rows[:limit]
	return Page[T]{Items: rows, Next: id(rows[limit-1])}
}

// checkPaging validates the parts of f that every list takes, and sets the default page size.
func (s *Service) checkPaging(f *ListFilter) error {
	switch {
	case f.Limit == 0:
		f.Limit = DefaultPageSize
	case f.Limit < 0 || f.Limit > MaxPageSize:
		return invalid(RuleFormat, "limit %d is not a page size from 1 to %d", f.Limit, MaxPageSize)
	}
	if f.Before < 0 {
		return invalid(RuleFormat, "before %d is not a line id", f.Before)
	}
	switch f.Status {
	case AnyStatus, Live, Reversed:
	default:
		return invalid(RuleFormat, "status %s is not live or reversed", quote(string(f.Status)))
	}
	if f.Period != "" {
		if _, ok := s.p.PeriodByCode(f.Period); !ok {
			return invalid(RuleRef, "period %s is not one of the programme's periods", quote(f.Period))
		}
	}
	return nil
}

// readable returns the authorities whose officers and time by may read: Authority alone (if by
// may read it: V8 otherwise), or every authority of the operation access allows.
func (s *Service) readable(by access.User, f ListFilter) ([]string, error) {
	if err := access.Can(by, access.ReadRecords, ""); err != nil {
		return nil, err
	}
	if f.Authority != "" {
		if _, ok := s.p.Authority(f.Authority); !ok {
			return nil, invalid(RuleRef, "authority %s is not one of the operation's authorities", quote(f.Authority))
		}
		if err := access.Can(by, access.ReadRecords, f.Authority); err != nil {
			return nil, err
		}
		return []string{f.Authority}, nil
	}
	var out []string
	for _, a := range s.p.Authorities {
		if access.Can(by, access.ReadRecords, a.Code) == nil {
			out = append(out, a.Code)
		}
	}
	return out, nil
}

// notFor refuses a filter a list does not take, rather than ignoring it.
func notFor(list apperr.Phrase, named map[string]string) error {
	for _, name := range []string{"authority", "payroll_ref", "heading", "period", "status"} {
		if named[name] != "" {
			return invalid(RuleFormat, "%s lists cannot be filtered by %s", list, name)
		}
	}
	return nil
}

// Officers returns a page of the officers by may read, newest first, each with its rate
// versions in date order (hourly rate to 4 decimal places, R5.1).
func (s *Service) Officers(ctx context.Context, by access.User, f ListFilter) (Page[Officer], error) {
	if err := s.checkPaging(&f); err != nil {
		return Page[Officer]{}, err
	}
	if err := notFor(apperr.Phrase("officer"), map[string]string{"heading": f.Heading, "period": f.Period, "status": string(f.Status)}); err != nil {
		return Page[Officer]{}, err
	}
	auths, err := s.readable(by, f)
	if err != nil {
		return Page[Officer]{}, err
	}
	w := newWhere("operation_id", s.p.OperationID)
	w.add("authority = ANY(?)", auths)
	if f.PayrollRef != "" {
		w.add("payroll_ref = ?", f.PayrollRef)
	}
	order := w.page("id", f)
	rows, err := s.l.Pool().Query(ctx, `SELECT id, authority, payroll_ref, name FROM officer`+w.sql()+order, w.args...)
	if err != nil {
		return Page[Officer]{}, db.Translate("match.Officers", err)
	}
	offs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Officer, error) {
		o := Officer{Versions: []RateVersion{}}
		return o, r.Scan(&o.ID, &o.Authority, &o.PayrollRef, &o.Name)
	})
	if err != nil {
		return Page[Officer]{}, db.Translate("match.Officers", err)
	}
	pg := cut(offs, f.Limit, func(o Officer) int64 { return o.ID })
	if len(pg.Items) == 0 {
		return pg, nil
	}
	ids := make([]int64, len(pg.Items))
	at := make(map[int64]int, len(pg.Items))
	for i, o := range pg.Items {
		ids[i], at[o.ID] = o.ID, i
	}
	rows, err = s.l.Pool().Query(ctx, `SELECT officer_id, valid_from, annual_cost, fte FROM rate_version
		WHERE operation_id = $1 AND officer_id = ANY($2) ORDER BY officer_id, valid_from`, s.p.OperationID, ids)
	if err != nil {
		return Page[Officer]{}, db.Translate("match.Officers", err)
	}
	var officer int64
	var v RateVersion
	_, err = pgx.ForEachRow(rows, []any{&officer, &v.ValidFrom, &v.AnnualCost, &v.FTE}, func() error {
		v.HourlyRate = RoundRat(HourlyRate(v.AnnualCost, v.FTE, s.p.HoursBasis), 4)
		o := &pg.Items[at[officer]]
		o.Versions = append(o.Versions, v)
		return nil
	})
	if err != nil {
		return Page[Officer]{}, db.Translate("match.Officers", err)
	}
	return pg, nil
}

// status adds the condition that selects lines of status st by their reversed_by column col.
func (w *where) status(col string, st Status) {
	switch st {
	case Live:
		w.conds = append(w.conds, col+" IS NULL")
	case Reversed:
		w.conds = append(w.conds, col+" IS NOT NULL")
	}
}

// TimeEntries returns a page of the time entries by may read, newest first.
func (s *Service) TimeEntries(ctx context.Context, by access.User, f ListFilter) (Page[TimeEntry], error) {
	if err := s.checkPaging(&f); err != nil {
		return Page[TimeEntry]{}, err
	}
	if err := notFor(apperr.Phrase("time entry"), map[string]string{"heading": f.Heading}); err != nil {
		return Page[TimeEntry]{}, err
	}
	auths, err := s.readable(by, f)
	if err != nil {
		return Page[TimeEntry]{}, err
	}
	w := newWhere("t.operation_id", s.p.OperationID)
	w.add("o.authority = ANY(?)", auths)
	if f.PayrollRef != "" {
		w.add("o.payroll_ref = ?", f.PayrollRef)
	}
	if f.Period != "" {
		w.add("t.period = ?", f.Period)
	}
	w.status("t.reversed_by", f.Status)
	order := w.page("t.id", f)
	rows, err := s.l.Pool().Query(ctx, `SELECT `+timeEntryColumns+timeEntryFrom+w.sql()+order, w.args...)
	if err != nil {
		return Page[TimeEntry]{}, db.Translate("match.TimeEntries", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TimeEntry, error) { return scanTimeEntry(r) })
	if err != nil {
		return Page[TimeEntry]{}, db.Translate("match.TimeEntries", err)
	}
	return cut(es, f.Limit, func(e TimeEntry) int64 { return e.ID }), nil
}

// ExpenditureLines returns a page of the expenditure lines (credit notes included), newest
// first. They are the programme's cash, of no one authority: whoever may read claims may read
// them.
func (s *Service) ExpenditureLines(ctx context.Context, by access.User, f ListFilter) (Page[Expenditure], error) {
	if err := access.Can(by, access.ReadClaims, ""); err != nil {
		return Page[Expenditure]{}, err
	}
	if err := s.checkPaging(&f); err != nil {
		return Page[Expenditure]{}, err
	}
	if err := notFor(apperr.Phrase("expenditure"), map[string]string{"authority": f.Authority, "payroll_ref": f.PayrollRef}); err != nil {
		return Page[Expenditure]{}, err
	}
	w := newWhere("operation_id", s.p.OperationID)
	if f.Heading != "" {
		if !slices.Contains(s.cash, f.Heading) {
			return Page[Expenditure]{}, invalid(RuleRef, "heading %s is not one of %s", quote(f.Heading), strings.Join(s.cash, ", "))
		}
		w.add("heading = ?", f.Heading)
	}
	if f.Period != "" {
		w.add("period = ?", f.Period)
	}
	w.status("reversed_by", f.Status)
	order := w.page("id", f)
	rows, err := s.l.Pool().Query(ctx, `SELECT `+expColumns+` FROM expenditure`+w.sql()+order, w.args...)
	if err != nil {
		return Page[Expenditure]{}, db.Translate("match.ExpenditureLines", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Expenditure, error) { return scanExpenditure(r) })
	if err != nil {
		return Page[Expenditure]{}, db.Translate("match.ExpenditureLines", err)
	}
	return cut(es, f.Limit, func(e Expenditure) int64 { return e.ID }), nil
}
