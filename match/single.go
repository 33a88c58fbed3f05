package match

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/group"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

// The single-entry path. An import stages its rows, checks them set-based and posts them in
// chunks: the right shape for a file, and a dozen statements and temporary tables for one line.
// RecordTime instead checks each entry by the same rules, in the same order and with the same
// rule ids and codes, in a short transaction that it shares with the recordings of other
// officers arriving at the same time (internal/group):
//
//  1. before it queues, the rules a row can be checked against on its own, by the import's own
//     parse (formats, M2 authority and activity, V1, V2, V3 per entry, V7);
//  2. in one round trip, the group's officers locked in id order (FOR NO KEY UPDATE, as an
//     import, a reversal and a new rate version lock them, so concurrent recordings cannot
//     together break V3 or V4). An officer another transaction holds (an import of its
//     authority's file, say) is skipped, not waited for: its recording is deferred, to wait for
//     the lock in a group of its own (internal/group's waiting lane), while the rest of the group,
//     and the groups after it, go on. Then, read after the lock, for each recording the rate version
//     in force (R5.3, V6), the live entry of the officer, date and activity (V5), the next
//     generation, the officer's live hours on the day (V3) and in the calendar year (V4), and the
//     highest FTE of the versions in force during the year (V4): index lookups of one officer's
//     rows;
//  3. each recording's problems sorted as an import reports them (rule, then message) and turned
//     into the error of a single recording by singleError, as a one-row import's are;
//  4. the lines priced in Go by Price (R9.3a, the function TestPriceSQLMatchesGo holds the
//     import's SQL to), posted in the transaction (ledger.Post for one, ledger.PostBatch for
//     more) and written with one INSERT.
//
// TestSinglePathMatchesImport feeds the same cases through both paths. RecordExpenditure takes
// the same shape of path, one line at a time (below).

// timeLockSQL locks the officers of a group ($2, $3: their authorities and payroll refs) in id
// order, first thing in its transaction, so that groups and imports never deadlock each other.
//
// Each lookup here and in timeReadSQL is a LATERAL subquery, by one officer's key (LIMIT 1, true
// of a unique key, keeps it one): the plan is then an index lookup a recording whatever the
// statistics say. Joined plainly, a plan cached while the tables were young (no statistics
// until the first ANALYZE) read every officer, or every officer's entries, of the operation.
const timeLockSQL = `
SELECT o.id FROM officer o
 WHERE o.operation_id = $1 AND o.id = ANY (ARRAY(
        SELECT x.id FROM unnest($2::text[], $3::text[]) r(authority, payroll_ref)
         CROSS JOIN LATERAL (SELECT id FROM officer
                              WHERE operation_id = $1 AND authority = r.authority AND payroll_ref = r.payroll_ref LIMIT 1) x))
 ORDER BY o.id FOR NO KEY UPDATE`

// timeReadSQL reads what the rules need of each recording of a group ($2…$5: authorities,
// payroll refs, work dates and activities), numbered from 1 in the order given: the officer's
// rate versions (a handful, in date order; versionsInForce picks from them), its live hours on
// the day (time_entry_live_uq) and in the calendar year (officer_year, 0007), the next
// generation of the date and activity (after the live entry's and the reversed ones',
// time_entry_reversed_ix), and the live entry of the date and activity. A recording whose officer does not exist has no row.
const timeReadSQL = `
SELECT r.i, o.id, o.name, rv.froms, rv.costs, rv.ftes,
       t.day_h, nullif(y.live_hours, 0), coalesce(greatest(t.gen, x.gen) + 1, 0),
       live.id, live.hours, live.evidence_ref, live.approved_by,
       nextval('time_entry_id_seq')
  FROM unnest($2::text[], $3::text[], $4::date[], $5::text[]) WITH ORDINALITY AS r(authority, payroll_ref, work_date, activity, i)
  CROSS JOIN LATERAL (
        SELECT o.id, o.name FROM officer o
         WHERE o.operation_id = $1 AND o.authority = r.authority AND o.payroll_ref = r.payroll_ref LIMIT 1) o
  LEFT JOIN LATERAL (
        SELECT array_agg(v.valid_from ORDER BY v.valid_from) AS froms, array_agg(v.annual_cost ORDER BY v.valid_from) AS costs,
               array_agg(v.fte ORDER BY v.valid_from) AS ftes
          FROM rate_version v
         WHERE v.operation_id = $1 AND v.officer_id = o.id) rv ON true
  LEFT JOIN LATERAL (
        SELECT sum(t.hours) AS day_h, max(t.generation) FILTER (WHERE t.activity = r.activity) AS gen
          FROM time_entry t
         WHERE t.operation_id = $1 AND t.officer_id = o.id AND t.work_date = r.work_date AND t.reversed_by IS NULL) t ON true
  LEFT JOIN LATERAL (
        SELECT max(x.generation) AS gen FROM time_entry x
         WHERE x.operation_id = $1 AND x.officer_id = o.id AND x.work_date = r.work_date AND x.activity = r.activity
           AND x.reversed_by IS NOT NULL) x ON true
  LEFT JOIN LATERAL (
        SELECT y.live_hours FROM officer_year y
         WHERE y.operation_id = $1 AND y.officer_id = o.id AND y.year = extract(year FROM r.work_date)::integer LIMIT 1) y ON true
  LEFT JOIN LATERAL (
        SELECT l.id, l.hours, l.evidence_ref, l.approved_by FROM time_entry l
         WHERE l.operation_id = $1 AND l.officer_id = o.id AND l.work_date = r.work_date AND l.activity = r.activity
           AND l.reversed_by IS NULL LIMIT 1) live ON true
 ORDER BY r.i`

// versionsInForce picks from an officer's rate versions (froms, costs and ftes in date order)
// what the rules need for a work date: the first version's date (V6's message), the version in
// force on the date (R5.3; none before the first) and the highest FTE of the versions in force
// at any time in the date's calendar year (V4; none when no version starts by its end).
func (st *timeState) versionsInForce(froms []time.Time, costs, ftes []decimal.Decimal, day time.Time) {
	if len(froms) == 0 {
		return
	}
	st.firstFrom = &froms[0]
	yearStart := time.Date(day.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	yearEnd := time.Date(day.Year(), 12, 31, 0, 0, 0, 0, time.UTC)
	for i, from := range froms {
		if !from.After(day) {
			st.validFrom, st.cost, st.fte = &froms[i], &costs[i], &ftes[i]
		}
		// In force during the year: starts by its end, and is not followed by another that
		// starts by its first day.
		inYear := !from.After(yearEnd) && (i+1 == len(froms) || froms[i+1].After(yearStart))
		if inYear && (st.capFTE == nil || ftes[i].GreaterThan(*st.capFTE)) {
			st.capFTE = &ftes[i]
		}
	}
}

// timeInsertSQL writes a group's new time entries, one array element each.
const timeInsertSQL = `
INSERT INTO time_entry (operation_id, id, officer_id, work_date, activity, generation, hours, evidence_ref, approved_by,
                        rate_valid_from, amount, entry_id, period, recorded_at, recorded_by)
SELECT $1, u.id, u.officer_id, u.work_date, u.activity, u.generation, u.hours, u.evidence_ref, u.approved_by,
       u.rate_valid_from, u.amount, u.entry_id, u.period, $2, u.recorded_by
  FROM unnest($3::bigint[], $4::bigint[], $5::date[], $6::text[], $7::int[], $8::numeric[], $9::text[], $10::text[],
              $11::date[], $12::numeric[], $13::bigint[], $14::text[], $15::text[])
       AS u(id, officer_id, work_date, activity, generation, hours, evidence_ref, approved_by,
            rate_valid_from, amount, entry_id, period, recorded_by)`

// timeState is what a recording reads under its officer's lock.
type timeState struct {
	officer                int64
	name                   string
	firstFrom, validFrom   *time.Time
	cost, fte, capFTE      *decimal.Decimal
	dayH, yearH            *decimal.Decimal // nil: no live hours
	nextGen                int
	liveID                 *int64
	liveHours              *decimal.Decimal
	liveEvidence, liveAppr *string
	newID                  int64
}

// timeReq is a recording that passed its own rules and waits for its group.
type timeReq struct {
	by      access.User
	in      TimeInput
	hoursC  int64         // the hours in hundredths
	self    string        // the approver, quoted, when it is the recorder (V7 unless the entry is a replay)
	refusal *apperr.Error // why access.Can refuses by the officer's authority (V8), reported with the other problems
}

type timeCall = group.Call[timeReq, TimeEntry]

// recordTimeOne records one (trimmed) time entry by the single-entry path.
func (s *Service) recordTimeOne(ctx context.Context, by access.User, in TimeInput) (TimeEntry, error) {
	if err := access.Can(by, access.RecordTime, ""); err != nil {
		return TimeEntry{}, err
	}
	// 1. The row's own rules, by the import's parse.
	imp := &timeImport{base{s: s, by: by, act: access.RecordTime}}
	rec := record{row: 1, typed: in}
	imp.parse(&rec)
	if len(rec.probs) > 0 {
		return TimeEntry{}, singleError(importFailed("", rec.probs))
	}
	req := timeReq{by: by, in: in, hoursC: in.Hours.Shift(2).IntPart(), self: selfApproved(in, by)}
	if err := access.Can(by, access.RecordTime, in.Authority); err != nil {
		req.refusal = apperr.As(err)
	}
	return s.times.Do(ctx, in.Authority+"\x00"+in.PayrollRef, req)
}

// recordTimeGroup records a group of recordings of different officers in one transaction,
// setting each one's outcome; it returns an error only when the transaction failed as a whole.
// It defers the recording of an officer another transaction holds locked: at once unless told to
// wait, else once it has waited laneLockTimeout for the lock (the lane's group of one).
func (s *Service) recordTimeGroup(ctx context.Context, group []*timeCall, wait bool) error {
	op := s.p.OperationID
	n := len(group)
	auths, refs, acts := make([]string, n), make([]string, n), make([]string, n)
	dates := make([]time.Time, n)
	for i, c := range group {
		auths[i], refs[i], dates[i], acts[i] = c.In.in.Authority, c.In.in.PayrollRef, c.In.in.WorkDate, c.In.in.Activity
	}
	var held []*timeCall // deferred, once the transaction (which may be tried again) has committed
	err := db.WithTx(ctx, s.l.Pool(), func(tx pgx.Tx) error {
		held = held[:0]
		// 2. The locks, then the reads, in one round trip: each statement of the batch takes its
		// snapshot when it starts, so the reads see every recording committed before the locks.
		states := make([]timeState, n)
		found := make([]bool, n)
		locked := make(map[int64]bool, n)
		lockSQL := timeLockSQL
		b := &pgx.Batch{}
		if wait {
			b.Queue(`SELECT set_config('lock_timeout', $1, true)`, s.laneLockTimeout)
		} else {
			lockSQL += " SKIP LOCKED"
		}
		b.Queue(lockSQL, op, auths, refs).Query(func(rows pgx.Rows) error {
			var id int64
			_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
				locked[id] = true
				return nil
			})
			return err
		})
		if wait { // the timeout is the officer's lock's alone: the writes wait as a group's do
			b.Queue(`SET LOCAL lock_timeout TO DEFAULT`)
		}
		b.Queue(timeReadSQL, op, auths, refs, dates, acts).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var i int
				var st timeState
				var froms []time.Time
				var costs, ftes []decimal.Decimal
				if err := rows.Scan(&i, &st.officer, &st.name, &froms, &costs, &ftes,
					&st.dayH, &st.yearH, &st.nextGen, &st.liveID, &st.liveHours, &st.liveEvidence, &st.liveAppr, &st.newID); err != nil {
					return err
				}
				st.versionsInForce(froms, costs, ftes, dates[i-1])
				states[i-1], found[i-1] = st, true
			}
			return rows.Err()
		})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			if pg := (*pgconn.PgError)(nil); wait && errors.As(err, &pg) && pg.Code == "55P03" {
				held = group // waited laneLockTimeout: nothing done, the transaction ends
				return errStillHeld
			}
			return db.Translate("match.time", err)
		}

		// 3. The rules that need what is recorded, reported as an import reports them.
		var ins []ledger.EntryInput
		var written []*timeCall
		at := s.stamp()
		for i, c := range group {
			in, st := c.In.in, states[i]
			hours := decimal.New(c.In.hoursC, -2)
			c.Out, c.Err = TimeEntry{}, nil
			if c.In.refusal == nil && found[i] && !locked[st.officer] {
				held = append(held, c) // another transaction holds the officer (a V8 refusal needs no lock)
				continue
			}
			if probs := s.checkRecorded(in, hours, st, found[i], c.In.refusal, c.In.self); len(probs) > 0 {
				c.Err = singleError(importFailed("", probs))
				continue
			}
			if st.liveID != nil {
				// V5: the identical entry is live already; nothing is written.
				e, err := s.liveTimeEntry(ctx, tx, in)
				if err != nil {
					return err
				}
				e.Replayed = true
				c.Out = e
				continue
			}
			// 4. Priced; posted and written below, together.
			amount := Price(hours, *st.cost, *st.fte, s.p.HoursBasis)
			ins = append(ins, timeLedgerInput(c.In.by.Email, st.newID, st.officer, in.Authority, in.PayrollRef,
				in.WorkDate, in.Activity, st.nextGen, c.In.hoursC, amount))
			c.Out = TimeEntry{ID: st.newID, OfficerID: st.officer, Authority: in.Authority, PayrollRef: in.PayrollRef,
				OfficerName: st.name, WorkDate: in.WorkDate, Hours: hours, Activity: in.Activity, EvidenceRef: in.EvidenceRef,
				ApprovedBy: in.ApprovedBy, RateValidFrom: *st.validFrom, AnnualCost: *st.cost, FTE: *st.fte, Amount: amount,
				Generation: st.nextGen, RecordedAt: at, RecordedBy: c.In.by.Email}
			written = append(written, c)
		}
		if len(written) == 0 {
			return nil
		}
		entries, err := s.postLines(ctx, tx, ins)
		if err != nil {
			return err
		}
		cols := newTimeColumns(len(written))
		for k, c := range written {
			c.Out.EntryID, c.Out.Period = entries[k].ID, entries[k].Period
			cols.add(c.Out)
		}
		_, err = tx.Exec(ctx, timeInsertSQL, op, at, cols.id, cols.officer, cols.date, cols.activity, cols.generation,
			cols.hours, cols.evidence, cols.approver, cols.rateFrom, cols.amount, cols.entry, cols.period, cols.by)
		return db.Translate("match.time", err)
	})
	if errors.Is(err, errStillHeld) {
		err = nil
	}
	if err == nil {
		for _, c := range held {
			c.Out, c.Err = TimeEntry{}, nil
			c.Defer()
		}
	}
	return err
}

// laneLockTimeout is how long the lane's group of one waits for its officer's lock before it
// defers the recording again, so that the lane serves the other officers waiting in turn
// (Service.laneLockTimeout; tests shorten it).
const laneLockTimeout = "2s"

// errStillHeld ends the lane's transaction when its officer's lock did not come in time.
var errStillHeld = errors.New("match: the officer is still held by another transaction")

// postLines posts the ledger entries of new lines in tx: ledger.Post for one, PostBatch for more.
// The lines are new, so the ledger holding an entry under a line's key already means a
// concurrent recording got there first (L4).
func (s *Service) postLines(ctx context.Context, tx pgx.Tx, ins []ledger.EntryInput) ([]ledger.Entry, error) {
	if len(ins) == 1 {
		e, err := postOne(ctx, tx, s.l, ins[0])
		return []ledger.Entry{e}, err
	}
	out, err := s.l.PostBatch(ctx, tx, ins)
	if err != nil {
		return nil, err
	}
	for _, e := range out {
		if e.Replayed {
			return nil, alreadyPosted(e)
		}
	}
	return out, nil
}

// timeColumns are the columns of timeInsertSQL's arrays.
type timeColumns struct {
	id, officer, entry                   []int64
	date, rateFrom                       []time.Time
	activity, evidence, approver, period []string
	by                                   []string
	generation                           []int32
	hours, amount                        []decimal.Decimal
}

func newTimeColumns(n int) *timeColumns {
	return &timeColumns{
		id: make([]int64, 0, n), officer: make([]int64, 0, n), entry: make([]int64, 0, n),
		date: make([]time.Time, 0, n), rateFrom: make([]time.Time, 0, n),
		activity: make([]string, 0, n), evidence: make([]string, 0, n), approver: make([]string, 0, n),
		period: make([]string, 0, n), by: make([]string, 0, n), generation: make([]int32, 0, n),
		hours: make([]decimal.Decimal, 0, n), amount: make([]decimal.Decimal, 0, n),
	}
}

func (c *timeColumns) add(e TimeEntry) {
	c.id, c.officer, c.entry = append(c.id, e.ID), append(c.officer, e.OfficerID), append(c.entry, e.EntryID)
	c.date, c.rateFrom = append(c.date, e.WorkDate), append(c.rateFrom, e.RateValidFrom)
	c.activity, c.evidence, c.approver = append(c.activity, e.Activity), append(c.evidence, e.EvidenceRef), append(c.approver, e.ApprovedBy)
	c.period, c.by = append(c.period, e.Period), append(c.by, e.RecordedBy)
	c.generation = append(c.generation, int32(e.Generation))
	c.hours, c.amount = append(c.hours, e.Hours), append(c.amount, e.Amount)
}

// checkRecorded applies the rules that need what is recorded to one entry, as timeImport.check
// applies them to a file's rows: V8 (refusal, the reason access.Can gave) alone, then M2 (no
// such officer), V6, V5 and V7's approver who is the recorder (self, unless the entry is a
// replay); R9.3a (a line priced to nothing), V3's daily total and V4 only for an entry that
// would be written.
func (s *Service) checkRecorded(in TimeInput, hours decimal.Decimal, st timeState, found bool, refusal *apperr.Error, self string) []RowError {
	if refusal != nil {
		// Nothing else: the other rules' messages would describe another authority's records
		// (whether the officer exists, its rate versions, its live entry).
		return []RowError{{Row: 1, Rule: RuleV8, Message: refusal.Message, Key: refusal.Key, Args: refusal.Args}}
	}
	var probs []RowError
	fail := func(rule, format string, args ...any) {
		probs = append(probs, rowError(1, rule, format, args...))
	}
	day := in.WorkDate.Format(programme.DateLayout)
	if self != "" && (!found || st.liveID == nil || !st.liveHours.Equal(hours) || *st.liveEvidence != in.EvidenceRef || *st.liveAppr != in.ApprovedBy) {
		fail(RuleV7, "the approver %s is the person recording the entry: someone else must approve it", self)
	}
	if !found {
		fail(RuleRef, "there is no officer %s in %s: import the officer first", in.PayrollRef, in.Authority)
		slices.SortFunc(probs, byRuleThenMessage)
		return probs
	}
	if st.validFrom == nil {
		if st.firstFrom == nil {
			fail(RuleV6, "officer %s of %s has no rate version: import one (officers.csv) first", in.PayrollRef, in.Authority)
		} else {
			fail(RuleV6, "no rate version of officer %s of %s covers %s: the first is valid from %s", in.PayrollRef, in.Authority,
				day, st.firstFrom.Format(programme.DateLayout))
		}
	}
	if st.liveID != nil && (!st.liveHours.Equal(hours) || *st.liveEvidence != in.EvidenceRef || *st.liveAppr != in.ApprovedBy) {
		fail(RuleV5, "officer %s of %s already has %s hours of %s on %s (time entry %d, evidence %s, approved by %s); reverse that entry before recording a different one",
			in.PayrollRef, in.Authority, st.liveHours.StringFixed(2), in.Activity, day, *st.liveID, *st.liveEvidence, *st.liveAppr)
	}
	if len(probs) > 0 || st.liveID != nil {
		// The import orders a row's problems by rule, then message.
		slices.SortFunc(probs, byRuleThenMessage)
		return probs
	}
	recorded := func(h *decimal.Decimal) (decimal.Decimal, string) {
		if h == nil {
			return decimal.Zero, "0"
		}
		return *h, h.StringFixed(2)
	}
	// R9.3a, V3 and V4 concern a new line, as the import's checks of its new lines do.
	if Price(hours, *st.cost, *st.fte, s.p.HoursBasis).IsZero() {
		fail(RuleR93a, "officer %s of %s: %s hours come to 0.00 at the rate version valid from %s; check its annual cost",
			in.PayrollRef, in.Authority, hours.StringFixed(2), st.validFrom.Format(programme.DateLayout))
	}
	if dayH, text := recorded(st.dayH); dayH.Add(hours).GreaterThan(s.p.DailyMaxHours) {
		fail(RuleV3, "officer %s of %s would have %s hours on %s (%s now, %s recorded already), more than the daily maximum of %s",
			in.PayrollRef, in.Authority, dayH.Add(hours).StringFixed(2), day, hours.StringFixed(2), text, s.p.DailyMaxHours)
	}
	if st.capFTE != nil {
		basis := decimal.NewFromInt(int64(s.p.HoursBasis))
		if yearH, text := recorded(st.yearH); yearH.Add(hours).GreaterThan(basis.Mul(*st.capFTE)) {
			fail(RuleV4, "officer %s of %s would reach %s hours in %d by %s (%s recorded already), more than the annual maximum of %s (%d hours × FTE %s, R5.2)",
				in.PayrollRef, in.Authority, yearH.Add(hours).StringFixed(2), in.WorkDate.Year(), day, text,
				hoursCap(basis.Mul(*st.capFTE)), s.p.HoursBasis, st.capFTE.String())
		}
	}
	return probs
}

// hoursCap writes an annual maximum of hours (1720 × FTE) as V4's message shows it: to two
// places, or in full where it has more (1720 × 0.3333 = 573.276), so that a total just over it
// never reads as equal to it. The import's query writes it the same way.
func hoursCap(h decimal.Decimal) string {
	if h.Equal(h.Round(2)) {
		return h.StringFixed(2)
	}
	return h.String()
}

// byRuleThenMessage orders a row's problems as the import reports them.
func byRuleThenMessage(a, b RowError) int {
	return cmp.Or(cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Message, b.Message))
}

// The single-entry path of an expenditure line: the import's parse, then, under the lock every
// expenditure recording takes (expLockSQL), the live line of the same heading, evidence reference
// and description (M5), its next generation, and for a credit note ($7, its amount) the line it
// credits: the first live line of its heading and invoice with enough left to credit, and how
// many such lines there are and the most any has left, for M4's message (creditLinesSQL).
const expReadSQL = `
SELECT (SELECT max(g.generation) + 1 FROM expenditure g
         WHERE g.operation_id = $1 AND g.heading = $2 AND g.evidence_ref = $3 AND g.description = $4),
       live.id, live.defrayed_on, live.payee, live.amount, live.invoice_ref,
       c.credits, c.lines, c.most,
       nextval('expenditure_id_seq')
  FROM (SELECT) x
  LEFT JOIN expenditure live ON live.operation_id = $1 AND live.heading = $2 AND live.evidence_ref = $3
        AND live.description = $4 AND live.reversed_by IS NULL
  LEFT JOIN LATERAL (
        SELECT min(l.id) FILTER (WHERE l.left_ + $7 >= 0) AS credits, count(*) AS lines, max(l.left_) AS most
          FROM (` + creditLinesSQL + `
                   AND $6 AND c.heading = $2 AND c.invoice_ref = $5) l) c ON true`

// creditLinesSQL is the live lines ($1: the operation) that credit notes may credit, each with
// what it has left to credit (left_: its amount less its live credit notes), to be narrowed by
// heading and invoice (M4).
const creditLinesSQL = `
SELECT c.id, c.heading, c.invoice_ref,
       c.amount + coalesce((SELECT sum(d.amount) FROM expenditure d
                             WHERE d.operation_id = c.operation_id AND d.credits = c.id AND d.reversed_by IS NULL), 0) AS left_
  FROM expenditure c
 WHERE c.operation_id = $1 AND c.reversed_by IS NULL AND c.amount > 0 AND c.invoice_ref <> ''`

// recordExpenditureOne records one (trimmed) expenditure line by the single-entry path.
func (s *Service) recordExpenditureOne(ctx context.Context, by access.User, in ExpenditureInput) (Expenditure, error) {
	if err := access.Can(by, access.RecordExpenditure, ""); err != nil {
		return Expenditure{}, err
	}
	imp := &expImport{base{s: s, by: by, act: access.RecordExpenditure}}
	rec := record{row: 1, typed: in}
	imp.parse(&rec)
	if len(rec.probs) > 0 {
		return Expenditure{}, singleError(importFailed("", rec.probs))
	}
	op := s.p.OperationID
	credit := in.Amount.IsNegative()
	var out Expenditure
	err := db.WithTx(ctx, s.l.Pool(), func(tx pgx.Tx) error {
		var (
			nextGen            *int
			liveID, credits    *int64
			liveDate           *time.Time
			livePayee, liveInv *string
			liveAmount, most   *decimal.Decimal
			lines              int64
			newID              int64
		)
		b := &pgx.Batch{}
		b.Queue(expLockSQL, op)
		b.Queue(expReadSQL, op, in.Heading, in.EvidenceRef, in.Description, in.InvoiceRef, credit, in.Amount).QueryRow(func(r pgx.Row) error {
			return r.Scan(&nextGen, &liveID, &liveDate, &livePayee, &liveAmount, &liveInv, &credits, &lines, &most, &newID)
		})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return db.Translate("match.expenditure", err)
		}
		if liveID != nil {
			if !liveDate.Equal(in.DefrayedOn) || *livePayee != in.Payee || !liveAmount.Equal(in.Amount) || *liveInv != in.InvoiceRef {
				args := []any{strconv.FormatInt(*liveID, 10), in.Heading, in.EvidenceRef, in.Description, liveDate.Format(programme.DateLayout),
					*livePayee, liveAmount.StringFixed(2)}
				prob := rowError(1, RuleLine, "line %s (%s, evidence %s, %s) is recorded already with defrayal date %s, payee %s, amount %s and no invoice; reverse it before recording a different one", args...)
				if *liveInv != "" {
					prob = rowError(1, RuleLine, "line %s (%s, evidence %s, %s) is recorded already with defrayal date %s, payee %s, amount %s, invoice %s; reverse it before recording a different one", append(args, *liveInv)...)
				}
				return singleError(importFailed("", []RowError{prob}))
			}
			// M5: the identical line is live already; nothing is written.
			e, err := scanExpenditure(tx.QueryRow(ctx, `SELECT `+expColumns+` FROM expenditure WHERE operation_id = $1 AND id = $2`, op, *liveID))
			e.Replayed = true
			out = e
			return db.Translate("match.RecordExpenditure", err)
		}
		if credit && credits == nil {
			// M4: a credit note credits the first live line of its heading and invoice with
			// enough left to credit.
			if lines == 0 {
				return singleError(importFailed("", []RowError{rowError(1, RuleCredit, "credit note for invoice %s: no %s line with that invoice reference is recorded",
					in.InvoiceRef, in.Heading)}))
			}
			return singleError(importFailed("", []RowError{rowError(1, RuleCredit, "credit note for invoice %s credits %s, more than any %s line of that invoice has left to credit (at most %s)",
				in.InvoiceRef,
				in.Amount.Neg().StringFixed(2), in.Heading, most.StringFixed(2))}))
		}
		gen := 0
		if nextGen != nil {
			gen = *nextGen
		}
		at := s.stamp()
		e, err := postOne(ctx, tx, s.l, expLedgerInput(by.Email, newID, in.Heading, in.DefrayedOn, in.Payee, in.Description,
			in.Amount, in.EvidenceRef, gen))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO expenditure (operation_id, id, heading, defrayed_on, payee, description, amount,
				evidence_ref, invoice_ref, credits, generation, entry_id, period, recorded_at, recorded_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			op, newID, in.Heading, in.DefrayedOn, in.Payee, in.Description, in.Amount, in.EvidenceRef, in.InvoiceRef,
			credits, gen, e.ID, e.Period, at, by.Email)
		if err != nil {
			return db.Translate("match.expenditure", err)
		}
		out = Expenditure{ID: newID, Heading: in.Heading, DefrayedOn: in.DefrayedOn, Payee: in.Payee, Description: in.Description,
			Amount: in.Amount, EvidenceRef: in.EvidenceRef, InvoiceRef: in.InvoiceRef, Generation: gen, EntryID: e.ID,
			Period: e.Period, RecordedAt: at, RecordedBy: by.Email}
		if credits != nil {
			out.Credits = *credits
		}
		return nil
	})
	if err != nil {
		return Expenditure{}, err
	}
	return out, nil
}
