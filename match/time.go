package match

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"golang.org/x/text/unicode/norm"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

// TimeInput is an officer time entry as a person or a file gives it (interfaces.md time.csv).
type TimeInput struct {
	Authority   string          // ISO code of the officer's authority
	PayrollRef  string          // the officer's payroll reference in that authority
	WorkDate    time.Time       // a date (midnight UTC)
	Hours       decimal.Decimal // decimal hours, at most 2 places
	Activity    string          // lab, experiment, coaching, steering or other
	EvidenceRef string          // the signed timesheet or register
	ApprovedBy  string          // the line manager who signed it
}

// TimeEntry is a recorded officer time entry.
type TimeEntry struct {
	ID            int64
	OfficerID     int64
	Authority     string
	PayrollRef    string
	OfficerName   string
	WorkDate      time.Time
	Hours         decimal.Decimal
	Activity      string
	EvidenceRef   string
	ApprovedBy    string
	RateValidFrom time.Time       // the rate version that priced it (R5.3)
	AnnualCost    decimal.Decimal // that version's AGEC
	FTE           decimal.Decimal // and FTE
	Amount        decimal.Decimal // R9.3a
	Generation    int             // 0 for the first recording of its officer, date and activity; n after n reversals
	EntryID       int64           // the ledger entry
	Period        string          // its booking period
	RecordedAt    time.Time
	RecordedBy    string
	ReversedBy    int64 // the correction that reversed it, 0 while live
	Replayed      bool  // true when RecordTime found this identical entry recorded already (V5)
}

// ImportTime imports a time.csv file (interfaces.md) as by: all or nothing, every bad row
// reported (an error wrapping *ImportError), rows already recorded skipped.
func (s *Service) ImportTime(ctx context.Context, by access.User, r io.Reader, opts ImportOptions) (ImportResult, error) {
	return s.importFile(ctx, by, r, opts, &timeImport{base{s: s, by: by, progress: opts.Progress}})
}

// RecordTime records one time entry as by, checked by the same rules as an import, and posts its
// ledger entry (R4.7) in the same transaction. Re-sending an entry identical to the live one
// returns it with Replayed set (V5); a different entry for the same officer, date and activity
// is a conflict (V5) until the live one is reversed. It takes the single-entry path (single.go):
// the import's row checks in Go, then a few indexed reads under the officer's lock.
func (s *Service) RecordTime(ctx context.Context, by access.User, in TimeInput) (TimeEntry, error) {
	return s.recordTimeOne(ctx, by, trimTime(in))
}

// trimTime trims every text field, as the CSV reader trims every field of a file: an entry sent
// with "TS-1 " and the same entry in a file are then one entry, a replay of each other (V5).
func trimTime(in TimeInput) TimeInput {
	in.Authority, in.PayrollRef, in.Activity = strings.TrimSpace(in.Authority), strings.TrimSpace(in.PayrollRef), strings.TrimSpace(in.Activity)
	in.EvidenceRef, in.ApprovedBy = strings.TrimSpace(in.EvidenceRef), strings.TrimSpace(in.ApprovedBy)
	return in
}

type timeImport struct{ base }

func (t *timeImport) spec() fileSpec        { return timeSpec }
func (t *timeImport) action() access.Action { return access.ImportTime }

func (t *timeImport) stageDDL() string {
	return `row_no bigint NOT NULL, authority text COLLATE "C", payroll_ref text COLLATE "C", work_date date,
		hours_c integer, activity text COLLATE "C", evidence_ref text, approved_by text, self_appr text`
}

func (t *timeImport) stageColumns() []string {
	return []string{"row_no", "authority", "payroll_ref", "work_date", "hours_c", "activity", "evidence_ref", "approved_by", "self_appr", "rules", "msgs"}
}

// parse reads a record's fields (or takes its TimeInput) and checks every rule that needs the
// row alone: the formats (M1, R9.1/V3), the authority and activity (M2), V1, V2, V3 per entry
// and V7. V7's approver who is the recorder is only staged (self_appr): it concerns a row that
// would be written, not a replay of a recorded entry, which the SQL checks tell apart.
func (t *timeImport) parse(r *record) []any {
	in, _ := r.typed.(TimeInput)
	dateOK, hoursOK := true, true
	if r.typed == nil {
		in = TimeInput{Authority: r.get("authority"), PayrollRef: r.get("payroll_ref"), Activity: r.get("activity"),
			EvidenceRef: r.get("evidence_ref"), ApprovedBy: r.get("approved_by")}
		var err error
		if in.WorkDate, err = programme.ParseDate(r.get("work_date")); err != nil {
			r.fail(RuleFormat, "work_date %s is not a date in the form YYYY-MM-DD", quote(r.get("work_date")))
			dateOK = false
		}
		if in.Hours, err = ParseHours(r.get("hours")); err != nil {
			r.failWith(err)
			hoursOK = false
		}
	} else if in.WorkDate.IsZero() {
		r.fail(RuleFormat, "the work date is missing")
		dateOK = false
	}
	t.s.checkTime(r, in, dateOK, hoursOK)
	vals := []any{in.Authority, in.PayrollRef, nil, nil, in.Activity, in.EvidenceRef, in.ApprovedBy, nil}
	if self := selfApproved(in, t.by); self != "" {
		vals[7] = self
	}
	if dateOK {
		vals[2] = in.WorkDate
	}
	if hoursOK {
		// Staged in hundredths of an hour: an integer is far cheaper to COPY than a numeric.
		vals[3] = int32(in.Hours.Shift(2).IntPart())
	}
	return vals
}

func (s *Service) checkTime(r *record, in TimeInput, dateOK, hoursOK bool) {
	if in.Authority == "" {
		r.fail(RuleFormat, "the authority is missing")
	} else if _, ok := s.p.Authority(in.Authority); !ok {
		r.fail(RuleRef, "authority %s is not one of the operation's authorities", quote(in.Authority))
	}
	if in.PayrollRef == "" {
		r.fail(RuleFormat, "the payroll reference is missing")
	}
	if dateOK {
		s.checkDate(r, apperr.Phrase("work date"), in.WorkDate)
	}
	if hoursOK {
		switch {
		case !in.Hours.IsPositive():
			r.fail(RuleV3, "hours %s must be more than 0", in.Hours)
		case in.Hours.GreaterThan(s.p.DailyMaxHours):
			r.fail(RuleV3, "%s hours is more than the daily maximum of %s for one officer", in.Hours, s.p.DailyMaxHours)
		case !in.Hours.Equal(in.Hours.Truncate(2)):
			r.fail(RuleV3, "hours %s has more than 2 decimal places", in.Hours)
		}
	}
	checkText(r, map[string]string{"authority": in.Authority, "payroll_ref": in.PayrollRef, "activity": in.Activity,
		"evidence_ref": in.EvidenceRef, "approved_by": in.ApprovedBy})
	if !slices.Contains(Activities, in.Activity) {
		r.fail(RuleRef, "activity %s is not one of %s", quote(in.Activity), strings.Join(Activities, ", "))
	}
	if strings.TrimSpace(in.EvidenceRef) == "" {
		r.fail(RuleV7, "the evidence reference (the signed timesheet or register) is missing")
	}
	if normName(in.ApprovedBy) == "" {
		r.fail(RuleV7, "the approver (the line manager who signed the timesheet) is missing")
	}
}

// selfApproved returns the approver of in, quoted for V7's message, when it names by, and ""
// otherwise.
func selfApproved(in TimeInput, by access.User) string {
	if ap := normName(in.ApprovedBy); ap != "" && (ap == normName(by.Name) || ap == normName(by.Email)) {
		return quote(in.ApprovedBy)
	}
	return ""
}

// checkDate applies V1 and V2 to a work or defrayal date.
func (s *Service) checkDate(r *record, what apperr.Phrase, d time.Time) {
	if !s.p.InWindow(d) {
		r.fail(RuleV1, "%s %s is outside the eligibility window %s to %s", what, d.Format(programme.DateLayout),
			s.p.WindowStart.Format(programme.DateLayout), s.p.WindowEnd.Format(programme.DateLayout))
	}
	if today := s.today(); d.After(today) {
		r.fail(RuleV2, "%s %s is in the future (today is %s)", what, d.Format(programme.DateLayout), today.Format(programme.DateLayout))
	}
}

// normName is the form names are compared in for V7 (and, in SQL, for M3): case, spacing and
// Unicode's composed or decomposed forms aside, so that a name exported as a + ◌̂ is the same as
// one typed with â. Both sides of a comparison are normalised, so names recorded before read the
// same. Keys and references are compared as given: normalising only the input would part it from
// what is stored.
func normName(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(norm.NFC.String(s))), " ")
}

// check runs the rules that need other rows or what is recorded.
func (t *timeImport) check(ctx context.Context, tx pgx.Tx) error {
	op := t.s.p.OperationID
	refused, reasons, err := authorityRefusals(ctx, tx, t.by, t.do(t))
	if err != nil {
		return err
	}
	// Serialise per officer: two recordings for the same officer must not together break V3 or
	// V4, so the officers of the file are locked, in id order, before anything is read.
	rows, err := tx.Query(ctx, `SELECT o.id FROM officer o
		 WHERE o.operation_id = $1 AND (o.authority, o.payroll_ref) IN (SELECT authority, payroll_ref FROM stage)
		 ORDER BY o.id FOR NO KEY UPDATE`, op)
	if err != nil {
		return db.Translate("match.time", err)
	}
	officers, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return db.Translate("match.time", err)
	}
	// V8 first, and alone: a row for an authority the user may not record for gets access.Can's
	// refusal and nothing else, whether or not the officer exists. Every other check below skips
	// these rows, since their messages would describe another authority's records (whether the
	// officer exists, its rate versions, its entries, their evidence and approvers).
	_, err = tx.Exec(ctx, `INSERT INTO t_err (row_no, rule, key, args)
		SELECT s.row_no, 'V8', x.key, string_to_array(x.args, E'\x1f')
		  FROM stage s JOIN unnest($1::text[], $2::text[], $3::text[]) AS x(authority, key, args) ON x.authority = s.authority
		 WHERE s.rules IS NULL`, refused, reasons.keys, reasons.args)
	if err != nil {
		return db.Translate("match.time", err)
	}
	if len(officers) == 0 {
		// No officer is known, so no row is a replay: the rows V8 left are M2, and V7 when their
		// approver is the recorder.
		_, err := tx.Exec(ctx, `INSERT INTO t_err (row_no, rule, key, args)
			SELECT row_no, 'M2', 'there is no officer %s in %s: import the officer first',
		       ARRAY[payroll_ref::text, authority::text]
			  FROM stage WHERE rules IS NULL AND NOT authority = ANY($1::text[])
			UNION ALL
			SELECT row_no, 'V7', 'the approver %s is the person recording the entry: someone else must approve it', ARRAY[self_appr]
			  FROM stage WHERE self_appr IS NOT NULL AND (rules IS NOT NULL OR NOT authority = ANY($1::text[]))`, refused)
		return db.Translate("match.time", err)
	}

	// Each row resolved: its officer, the rate version in force on its date (R5.3), and the
	// entries recorded for its officer, date and activity (the live one, and how many in all).
	_, err = tx.Exec(ctx, `CREATE TEMP TABLE t_rows ON COMMIT DROP AS
		WITH rv AS (
			SELECT officer_id, valid_from, lead(valid_from) OVER (PARTITION BY officer_id ORDER BY valid_from) AS valid_to,
			       annual_cost, fte
			  FROM rate_version WHERE operation_id = $1 AND officer_id = ANY($2)
		), ex AS (
			SELECT officer_id, work_date, activity, max(generation) + 1 AS next_gen,
			       max(id) FILTER (WHERE reversed_by IS NULL) AS live_id
			  FROM time_entry
			 WHERE operation_id = $1 AND officer_id = ANY($2)
			   AND work_date BETWEEN (SELECT min(work_date) FROM stage) AND (SELECT max(work_date) FROM stage)
			 GROUP BY 1, 2, 3
		), rx AS (
			SELECT DISTINCT officer_id, work_date, activity, hours, evidence_ref, approved_by
			  FROM time_entry
			 WHERE operation_id = $1 AND officer_id = ANY($2) AND reversed_by IS NOT NULL
			   AND work_date BETWEEN (SELECT min(work_date) FROM stage) AND (SELECT max(work_date) FROM stage)
		), r AS (
			SELECT s.row_no, s.authority, s.payroll_ref, s.work_date, (s.hours_c / 100.0)::numeric(4, 2) AS hours, s.activity,
			       s.evidence_ref, s.approved_by, s.self_appr, s.rules IS NOT NULL AS bad
			  FROM stage s
		)
		SELECT r.*, o.id AS officer_id, rv.valid_from, rv.annual_cost, rv.fte,
		       f.first_valid_from, coalesce(ex.next_gen, 0) AS generation, ex.live_id,
		       ex.live_id IS NOT NULL AND (lv.hours, lv.evidence_ref, lv.approved_by) IS NOT DISTINCT FROM (r.hours, r.evidence_ref, r.approved_by) AS replay,
		       rx.officer_id IS NOT NULL AS withdrawn
		  FROM r
		  LEFT JOIN officer o ON o.operation_id = $1 AND o.authority = r.authority AND o.payroll_ref = r.payroll_ref
		  LEFT JOIN (SELECT officer_id, min(valid_from) AS first_valid_from FROM rv GROUP BY 1) f ON f.officer_id = o.id
		  LEFT JOIN rv ON rv.officer_id = o.id AND r.work_date >= rv.valid_from AND (rv.valid_to IS NULL OR r.work_date < rv.valid_to)
		  LEFT JOIN ex ON ex.officer_id = o.id AND ex.work_date = r.work_date AND ex.activity = r.activity
		  LEFT JOIN time_entry lv ON lv.operation_id = $1 AND lv.id = ex.live_id
		  LEFT JOIN rx ON rx.officer_id = o.id AND rx.work_date = r.work_date AND rx.activity = r.activity AND rx.hours = r.hours
		        AND rx.evidence_ref = r.evidence_ref AND rx.approved_by = r.approved_by`, op, officers)
	if err != nil {
		return db.Translate("match.time", err)
	}
	if err := analyzeIfLarge(ctx, tx, "t_rows"); err != nil {
		return err
	}

	// Row by row, for the rows V8 left: unknown officers (M2), no rate version (V6), a different
	// entry where one is live (V5), unless the row is identical to a reversed one (withdrawn,
	// skipped), and an approver who is the recorder (V7) on a row that is neither a replay nor
	// withdrawn. A row with problems of its own is told V7 whatever it matches.
	_, err = tx.Exec(ctx, `INSERT INTO t_err (row_no, rule, key, args)
		SELECT row_no, 'M2', 'there is no officer %s in %s: import the officer first',
		       ARRAY[payroll_ref::text, authority::text]
		  FROM t_rows WHERE NOT bad AND NOT authority = ANY($2::text[]) AND officer_id IS NULL
		UNION ALL
		SELECT row_no, 'V6',
		       CASE WHEN first_valid_from IS NULL THEN 'officer %s of %s has no rate version: import one (officers.csv) first'
		            ELSE 'no rate version of officer %s of %s covers %s: the first is valid from %s' END,
		       CASE WHEN first_valid_from IS NULL THEN ARRAY[payroll_ref::text, authority::text]
		            ELSE ARRAY[payroll_ref::text, authority::text, work_date::text, first_valid_from::text] END
		  FROM t_rows WHERE NOT bad AND NOT authority = ANY($2::text[]) AND officer_id IS NOT NULL AND valid_from IS NULL
		UNION ALL
		SELECT r.row_no, 'V5', 'officer %s of %s already has %s hours of %s on %s (time entry %s, evidence %s, approved by %s); reverse that entry before recording a different one',
		       ARRAY[r.payroll_ref::text, r.authority::text, t.hours::text, t.activity::text, t.work_date::text, t.id::text, t.evidence_ref::text, t.approved_by::text]
		  FROM t_rows r JOIN time_entry t ON t.operation_id = $1 AND t.id = r.live_id
		 WHERE NOT r.bad AND NOT r.authority = ANY($2::text[]) AND NOT r.replay AND NOT r.withdrawn
		UNION ALL
		SELECT row_no, 'V7', 'the approver %s is the person recording the entry: someone else must approve it', ARRAY[self_appr]
		  FROM t_rows
		 WHERE self_appr IS NOT NULL AND (bad OR NOT authority = ANY($2::text[]) AND NOT replay AND NOT withdrawn)`,
		op, refused)
	if err != nil {
		return db.Translate("match.time", err)
	}

	if err := t.countWithdrawn(ctx, tx, `NOT bad AND NOT replay AND NOT authority = ANY($1::text[])`, refused); err != nil {
		return err
	}

	// Rows that may be new: resolved, not refused, approved by someone else, nothing live, not
	// withdrawn. Within the file, the first row of an officer, date and activity counts; a later
	// identical row is a replay, a different one a conflict (V5).
	candidate := func(a string) string {
		return a + `.bad IS FALSE AND ` + a + `.officer_id IS NOT NULL AND ` + a + `.valid_from IS NOT NULL AND ` + a +
			`.live_id IS NULL AND NOT ` + a + `.withdrawn AND ` + a + `.self_appr IS NULL AND NOT ` + a + `.authority = ANY($1::text[])`
	}
	_, err = tx.Exec(ctx, `CREATE TEMP TABLE t_dup ON COMMIT DROP AS
		WITH d AS (
			SELECT officer_id, work_date, activity, min(row_no) AS first_row
			  FROM t_rows c WHERE `+candidate("c")+`
			 GROUP BY 1, 2, 3 HAVING count(*) > 1
		)
		SELECT r.row_no, r.payroll_ref, r.authority, r.work_date, r.activity, d.first_row,
		       (r.hours, r.evidence_ref, r.approved_by) IS NOT DISTINCT FROM (f.hours, f.evidence_ref, f.approved_by) AS same
		  FROM d JOIN t_rows r USING (officer_id, work_date, activity)
		  JOIN t_rows f ON f.row_no = d.first_row
		 WHERE r.row_no <> d.first_row AND `+candidate("r"), refused)
	if err != nil {
		return db.Translate("match.time", err)
	}
	if err := t.countRepeated(ctx, tx, `SELECT count(*) FROM t_dup WHERE same`); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO t_err (row_no, rule, key, args)
		SELECT row_no, 'V5', 'officer %s of %s has %s on %s in row %s already, with different hours, evidence or approver',
		       ARRAY[payroll_ref::text, authority::text, activity::text, work_date::text, first_row::text]
		  FROM t_dup WHERE NOT same`)
	if err != nil {
		return db.Translate("match.time", err)
	}

	// The new entries, priced by R9.3a with the version in force: each distinct (hours, rate
	// version) once, since a file holds few of them however many rows it has.
	_, err = tx.Exec(ctx, `CREATE TEMP TABLE t_price ON COMMIT DROP AS
		SELECT hours, annual_cost, fte, `+priceSQL("hours", "annual_cost", "fte", "$2")+` AS amount
		  FROM (SELECT DISTINCT c.hours, c.annual_cost, c.fte FROM t_rows c WHERE `+candidate("c")+`) x`,
		refused, t.s.p.HoursBasis)
	if err != nil {
		return db.Translate("match.time", err)
	}
	// Their ids follow officer, date and activity, the order of time_entry_live_uq, whatever the
	// file's order; the ledger entries and the rows are then written in that order, so each
	// index is filled page by page rather than at random.
	_, err = tx.Exec(ctx, `CREATE TEMP TABLE t_new ON COMMIT DROP AS
		SELECT nextval('time_entry_id_seq') AS id, r.row_no, r.officer_id, r.authority, r.payroll_ref, r.work_date,
		       extract(year FROM r.work_date)::int AS yr, r.hours, r.activity, r.evidence_ref, r.approved_by,
		       r.valid_from, r.generation, p.amount
		  FROM t_rows r JOIN t_price p ON p.hours = r.hours AND p.annual_cost = r.annual_cost AND p.fte = r.fte
		 WHERE `+candidate("r")+`
		   AND NOT EXISTS (SELECT 1 FROM t_dup d WHERE d.row_no = r.row_no)
		 ORDER BY r.officer_id, r.work_date, r.activity`, refused)
	if err != nil {
		return db.Translate("match.time", err)
	}
	// A line that prices to nothing cannot be posted (L1: no posting is zero): its row's problem.
	_, err = tx.Exec(ctx, `INSERT INTO t_err (row_no, rule, key, args)
		SELECT row_no, 'R9.3a', 'officer %s of %s: %s hours come to 0.00 at the rate version valid from %s; check its annual cost',
		       ARRAY[payroll_ref::text, authority::text, to_char(hours, 'FM990.00'), valid_from::text]
		  FROM t_new WHERE amount = 0`)
	if err != nil {
		return db.Translate("match.time", err)
	}
	var n int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM t_new`).Scan(&n); err != nil {
		return db.Translate("match.time", err)
	}
	if n == 0 {
		return nil
	}

	// V3, the officer's total on a day, and V4 (R5.2), the officer's total in a calendar year
	// against the hours basis × the highest FTE of the versions in force during the year, each
	// counting the live entries recorded and the file's new ones. V4 names the rows from the one
	// that crosses the cap on, in date order.
	_, err = tx.Exec(ctx, `INSERT INTO t_err (row_no, rule, key, args)
		WITH keys AS (SELECT DISTINCT officer_id, yr FROM t_new),
		rv AS (
			SELECT officer_id, valid_from, lead(valid_from) OVER (PARTITION BY officer_id ORDER BY valid_from) AS valid_to, fte
			  FROM rate_version WHERE operation_id = $1 AND officer_id IN (SELECT officer_id FROM keys)
		), cap AS (
			SELECT k.officer_id, k.yr, max(rv.fte) AS fte
			  FROM keys k JOIN rv ON rv.officer_id = k.officer_id AND rv.valid_from <= make_date(k.yr, 12, 31)
			                     AND (rv.valid_to IS NULL OR rv.valid_to > make_date(k.yr, 1, 1))
			 GROUP BY 1, 2
		), ey AS (
			SELECT t.officer_id, extract(year FROM t.work_date)::int AS yr, sum(t.hours) AS h
			  FROM time_entry t JOIN keys k ON k.officer_id = t.officer_id
			       AND t.work_date BETWEEN make_date(k.yr, 1, 1) AND make_date(k.yr, 12, 31)
			 WHERE t.operation_id = $1 AND t.reversed_by IS NULL
			 GROUP BY 1, 2
		), ed AS (
			SELECT t.officer_id, t.work_date, sum(t.hours) AS h
			  FROM time_entry t JOIN (SELECT DISTINCT officer_id, work_date FROM t_new) d
			       ON d.officer_id = t.officer_id AND d.work_date = t.work_date
			 WHERE t.operation_id = $1 AND t.reversed_by IS NULL
			 GROUP BY 1, 2
		), w AS (
			SELECT n.row_no, n.officer_id, n.payroll_ref, n.authority, n.yr, n.work_date,
			       sum(n.hours) OVER (PARTITION BY n.officer_id, n.yr, n.work_date) AS day_new,
			       sum(n.hours) OVER (PARTITION BY n.officer_id, n.yr ORDER BY n.work_date, n.row_no) AS year_run
			  FROM t_new n
		)
		SELECT w.row_no, 'V3', 'officer %s of %s would have %s hours on %s (%s now, %s recorded already), more than the daily maximum of %s',
		       ARRAY[w.payroll_ref::text, w.authority::text, (coalesce(ed.h, 0) + w.day_new)::text, w.work_date::text, w.day_new::text, (coalesce(ed.h, 0))::text, ($2::numeric)::text]
		  FROM w LEFT JOIN ed ON ed.officer_id = w.officer_id AND ed.work_date = w.work_date
		 WHERE coalesce(ed.h, 0) + w.day_new > $2::numeric
		UNION ALL
		SELECT w.row_no, 'V4', 'officer %s of %s would reach %s hours in %s by %s (%s recorded already), more than the annual maximum of %s (%s hours × FTE %s, R5.2)',
		       ARRAY[w.payroll_ref::text, w.authority::text, (coalesce(ey.h, 0) + w.year_run)::text, w.yr::text, w.work_date::text, (coalesce(ey.h, 0))::text, (CASE WHEN $3::numeric * c.fte = round($3::numeric * c.fte, 2) THEN round($3::numeric * c.fte, 2)::text ELSE trim_scale($3::numeric * c.fte)::text END), ($3::int)::text, (trim_scale(c.fte))::text]
		  FROM w JOIN cap c ON c.officer_id = w.officer_id AND c.yr = w.yr
		  LEFT JOIN ey ON ey.officer_id = w.officer_id AND ey.yr = w.yr
		 WHERE coalesce(ey.h, 0) + w.year_run > $3::numeric * c.fte`,
		op, t.s.p.DailyMaxHours, t.s.p.HoursBasis)
	return db.Translate("match.time", err)
}

// write posts each new entry to the ledger (Dr in-kind, Cr match of the officer's authority,
// R4.7) and writes the time_entry rows with one INSERT … SELECT.
func (t *timeImport) write(ctx context.Context, tx pgx.Tx, importID func() (int64, error)) (written, replayed int64, err error) {
	staged, n, err := countNew(ctx, tx)
	if err != nil || n == 0 {
		return 0, staged, err
	}
	id, err := importID()
	if err != nil {
		return 0, 0, err
	}
	by := t.by.Email
	// The ledger entries, set-based and without the rows leaving the database: one transfer a
	// new line, worded and keyed as timeLedgerInput words and keys it (TestImportPostsAsRecordTime
	// holds the two together).
	_, err = tx.Exec(ctx, `CREATE TEMP TABLE t_ledger ON COMMIT DROP AS
		SELECT id AS ref, work_date AS effective_date,
		       'Officer time: ' || authority || ' ' || payroll_ref || ', ' || to_char(work_date, 'YYYY-MM-DD') || ', '
		           || activity || ', ' || trim_scale(hours) || ' h' AS description,
		       'time_entry' AS source, id::text AS reference,
		       'time:' || officer_id || ':' || to_char(work_date, 'YYYY-MM-DD') || ':' || activity || ':' || generation AS idempotency_key,
		       $1::text AS recorded_by, $2 || authority AS debit_account, $3 || authority AS credit_account, amount
		  FROM t_new`, by, ledger.InKind(""), ledger.Match(""))
	if err != nil {
		return 0, 0, db.Translate("match.time", err)
	}
	if t.progress != nil {
		t.progress(Progress{Phase: "posting", Total: n})
	}
	if _, err := t.s.l.PostTransfers(ctx, tx, "t_ledger", "t_posted"); err != nil {
		return 0, 0, err
	}
	if t.progress != nil {
		t.progress(Progress{Phase: "writing", Rows: n, Total: n})
	}
	_, err = tx.Exec(ctx, `INSERT INTO time_entry (operation_id, id, officer_id, work_date, activity, generation, hours,
			evidence_ref, approved_by, rate_valid_from, amount, entry_id, period, import_id, recorded_at, recorded_by)
		SELECT $1, n.id, n.officer_id, n.work_date, n.activity, n.generation, n.hours, n.evidence_ref, n.approved_by,
		       n.valid_from, n.amount, p.entry_id, p.period, nullif($2, 0), $3, $4
		  FROM t_new n JOIN t_posted p ON p.ref = n.id
		 ORDER BY n.id`, t.s.p.OperationID, id, t.s.stamp(), by)
	if err != nil {
		return 0, 0, db.Translate("match.time", err)
	}
	t.written = n
	return n, staged - n, nil
}

// timeLedgerInput is the ledger entry of a new time entry id (Dr in-kind, Cr match of the
// officer's authority, R4.7), the same for an import and a single recording. hoursC is the hours
// in hundredths, so the description reads the same however the hours were written.
func timeLedgerInput(by string, id, officer int64, auth, ref string, date time.Time, act string, gen int, hoursC int64, amount decimal.Decimal) ledger.EntryInput {
	return ledger.EntryInput{
		EffectiveDate: date, Source: "time_entry", Reference: strconv.FormatInt(id, 10), RecordedBy: by,
		Description: "Officer time: " + auth + " " + ref + ", " + date.Format(programme.DateLayout) + ", " + act + ", " +
			decimal.New(hoursC, -2).String() + " h",
		IdempotencyKey: TimeKey(officer, date, act, gen),
		Postings:       []ledger.Posting{{Account: ledger.InKind(auth), Amount: amount}, {Account: ledger.Match(auth), Amount: amount.Neg()}},
	}
}

// TimeKey is the ledger idempotency key of the generation-th recording of an officer's time on
// a date and activity (generation counts the earlier, reversed, recordings).
func TimeKey(officerID int64, date time.Time, activity string, generation int) string {
	return "time:" + strconv.FormatInt(officerID, 10) + ":" + date.Format(programme.DateLayout) + ":" + activity + ":" + strconv.Itoa(generation)
}

const timeEntryColumns = `t.id, t.officer_id, o.authority, o.payroll_ref, o.name, t.work_date, t.hours, t.activity,
	t.evidence_ref, t.approved_by, t.rate_valid_from, rv.annual_cost, rv.fte, t.amount, t.generation, t.entry_id, t.period,
	t.recorded_at, t.recorded_by, coalesce(t.reversed_by, 0)`

const timeEntryFrom = ` FROM time_entry t
	JOIN officer o ON o.operation_id = t.operation_id AND o.id = t.officer_id
	JOIN rate_version rv ON rv.operation_id = t.operation_id AND rv.officer_id = t.officer_id AND rv.valid_from = t.rate_valid_from`

func scanTimeEntry(r pgx.Row) (TimeEntry, error) {
	var e TimeEntry
	err := r.Scan(&e.ID, &e.OfficerID, &e.Authority, &e.PayrollRef, &e.OfficerName, &e.WorkDate, &e.Hours, &e.Activity,
		&e.EvidenceRef, &e.ApprovedBy, &e.RateValidFrom, &e.AnnualCost, &e.FTE, &e.Amount, &e.Generation, &e.EntryID, &e.Period,
		&e.RecordedAt, &e.RecordedBy, &e.ReversedBy)
	return e, err
}

// TimeEntry returns the time entry with id.
func (s *Service) TimeEntry(ctx context.Context, id int64) (TimeEntry, error) {
	e, err := scanTimeEntry(s.l.Pool().QueryRow(ctx, `SELECT `+timeEntryColumns+timeEntryFrom+`
		WHERE t.operation_id = $1 AND t.id = $2`, s.p.OperationID, id))
	if err == pgx.ErrNoRows {
		return TimeEntry{}, apperr.New(apperr.NotFound, RuleRef, "there is no time entry %d", id)
	}
	return e, db.Translate("match.TimeEntry", err)
}

// ReadTimeEntry returns time entry id as by may read it: one of an authority by may not read is
// not there for by (M2), so that the answer tells no one whether another authority's exists.
func (s *Service) ReadTimeEntry(ctx context.Context, by access.User, id int64) (TimeEntry, error) {
	if err := access.Can(by, access.ReadRecords, ""); err != nil {
		return TimeEntry{}, err
	}
	e, err := s.TimeEntry(ctx, id)
	if err == nil && access.Can(by, access.ReadRecords, e.Authority) != nil {
		return TimeEntry{}, apperr.New(apperr.NotFound, RuleRef, "there is no time entry %d", id)
	}
	return e, err
}

func (s *Service) liveTimeEntry(ctx context.Context, q db.Querier, in TimeInput) (TimeEntry, error) {
	e, err := scanTimeEntry(q.QueryRow(ctx, `SELECT `+timeEntryColumns+timeEntryFrom+`
		WHERE t.operation_id = $1 AND o.authority = $2 AND o.payroll_ref = $3 AND t.work_date = $4 AND t.activity = $5
		  AND t.reversed_by IS NULL`, s.p.OperationID, in.Authority, in.PayrollRef, in.WorkDate, in.Activity))
	if err == pgx.ErrNoRows {
		return TimeEntry{}, apperr.New(apperr.NotFound, RuleRef, "there is no live time entry for %s %s on %s, %s",
			in.Authority, in.PayrollRef, in.WorkDate.Format(programme.DateLayout), in.Activity)
	}
	return e, db.Translate("match.TimeEntry", err)
}

// postOne posts the ledger entry of one new line in tx. The line is new, so the ledger holding
// an entry under its key already means a concurrent recording got there first (L4).
func postOne(ctx context.Context, tx pgx.Tx, l *ledger.Ledger, in ledger.EntryInput) (ledger.Entry, error) {
	e, err := l.Post(ctx, tx, in)
	if err != nil {
		return ledger.Entry{}, err
	}
	if e.Replayed {
		return ledger.Entry{}, alreadyPosted(e)
	}
	return e, nil
}

// alreadyPosted is the error of a new line whose ledger entry exists already: a concurrent
// recording got there first (L4).
func alreadyPosted(e ledger.Entry) error {
	return apperr.New(apperr.Conflict, "L4", "the ledger already holds entry %d for this line; run it again", e.ID)
}
