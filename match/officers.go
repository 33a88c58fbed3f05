package match

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/programme"
)

// OfficerInput is one row of officers.csv: an officer and one of its rate versions (R5.3).
type OfficerInput struct {
	Authority  string
	PayrollRef string
	Name       string
	ValidFrom  time.Time       // first day the cost basis applies
	AnnualCost decimal.Decimal // AGEC: gross pay + employer NIC + employer pension
	FTE        decimal.Decimal // 0 < FTE ≤ 1
}

// Officer is a participating officer with its rate versions in date order.
type Officer struct {
	ID         int64
	Authority  string
	PayrollRef string
	Name       string
	Versions   []RateVersion
}

// RateVersion is an officer's cost basis from ValidFrom until the next version (R5.3).
type RateVersion struct {
	ValidFrom  time.Time
	AnnualCost decimal.Decimal
	FTE        decimal.Decimal
	HourlyRate decimal.Decimal // R5.1, shown to 4 decimal places; price lines with Price, never with this
}

// ImportOfficers imports an officers.csv file (interfaces.md) as by: the first row of an officer
// creates it, every row is a rate version. All or nothing; rows already recorded are skipped.
func (s *Service) ImportOfficers(ctx context.Context, by access.User, r io.Reader, opts ImportOptions) (ImportResult, error) {
	return s.importFile(ctx, by, r, opts, &officersImport{base: base{s: s, by: by, progress: opts.Progress}})
}

// RecordOfficer records an officer (if new) and a rate version, as by, by the same rules as an
// import. Recording an identical version again changes nothing.
func (s *Service) RecordOfficer(ctx context.Context, by access.User, in OfficerInput) (Officer, error) {
	in.Authority, in.PayrollRef, in.Name = strings.TrimSpace(in.Authority), strings.TrimSpace(in.PayrollRef), strings.TrimSpace(in.Name)
	if err := s.recordOne(ctx, by, in, &officersImport{base: base{s: s, by: by}}, access.ImportOfficers); err != nil {
		return Officer{}, err
	}
	return s.Officer(ctx, in.Authority, in.PayrollRef)
}

type officersImport struct {
	base
	officers int64
}

func (o *officersImport) spec() fileSpec        { return officersSpec }
func (o *officersImport) action() access.Action { return access.ImportOfficers }

func (o *officersImport) stageDDL() string {
	return `row_no bigint NOT NULL, authority text COLLATE "C", payroll_ref text COLLATE "C", name text, valid_from date,
		annual_cost numeric(12, 2), fte numeric(5, 4)`
}

func (o *officersImport) stageColumns() []string {
	return []string{"row_no", "authority", "payroll_ref", "name", "valid_from", "annual_cost", "fte", "rules", "msgs"}
}

func (o *officersImport) parse(r *record) []any {
	in, _ := r.typed.(OfficerInput)
	dateOK, costOK, fteOK := true, true, true
	if r.typed == nil {
		in = OfficerInput{Authority: r.get("authority"), PayrollRef: r.get("payroll_ref"), Name: r.get("name")}
		var err error
		if in.ValidFrom, err = programme.ParseDate(r.get("valid_from")); err != nil {
			r.fail(RuleFormat, "valid_from %s is not a date in the form YYYY-MM-DD", quote(r.get("valid_from")))
			dateOK = false
		}
		if in.AnnualCost, err = ParseMoney(r.get("annual_cost")); err != nil {
			r.fail(RuleMoney, "annual_cost: %s", apperr.TextOf(err))
			costOK = false
		}
		if in.FTE, err = ParseFTE(r.get("fte")); err != nil {
			r.fail(RuleR51, "fte: %s", apperr.TextOf(err))
			fteOK = false
		}
	} else if in.ValidFrom.IsZero() {
		r.fail(RuleFormat, "the date the rate version is valid from is missing")
		dateOK = false
	}
	s := o.s
	if in.Authority == "" {
		r.fail(RuleFormat, "the authority is missing")
	} else if _, ok := s.p.Authority(in.Authority); !ok {
		r.fail(RuleRef, "authority %s is not one of the operation's authorities", quote(in.Authority))
	}
	if in.PayrollRef == "" {
		r.fail(RuleFormat, "the payroll reference is missing")
	}
	if in.Name == "" {
		r.fail(RuleFormat, "the officer's name is missing")
	}
	checkText(r, map[string]string{"authority": in.Authority, "payroll_ref": in.PayrollRef, "name": in.Name})
	if costOK {
		switch {
		case !in.AnnualCost.IsPositive():
			r.fail(RuleR51, "annual_cost %s must be more than 0", in.AnnualCost.StringFixed(2))
		case !in.AnnualCost.Equal(in.AnnualCost.Truncate(2)) || in.AnnualCost.GreaterThanOrEqual(decimal.New(1, 10)):
			r.fail(RuleMoney, "annual_cost %s must be pounds and pence below 10,000,000,000", in.AnnualCost)
		}
	}
	if fteOK && (!in.FTE.IsPositive() || in.FTE.GreaterThan(decimal.NewFromInt(1)) || !in.FTE.Equal(in.FTE.Truncate(4))) {
		r.fail(RuleR51, "fte %s must be more than 0 and at most 1, with at most 4 decimal places", in.FTE)
	}
	vals := []any{in.Authority, in.PayrollRef, in.Name, nil, nil, nil}
	if dateOK {
		vals[3] = in.ValidFrom
	}
	if costOK {
		vals[4] = in.AnnualCost
	}
	if fteOK {
		vals[5] = in.FTE
	}
	return vals
}

func (o *officersImport) check(ctx context.Context, tx pgx.Tx) error {
	op := o.s.p.OperationID
	refused, reasons, err := authorityRefusals(ctx, tx, o.by, o.do(o))
	if err != nil {
		return err
	}
	// Versions are read by time recordings of the same officers: lock them as those do.
	if _, err := tx.Exec(ctx, `SELECT o.id FROM officer o
		 WHERE o.operation_id = $1 AND (o.authority, o.payroll_ref) IN (SELECT authority, payroll_ref FROM stage)
		 ORDER BY o.id FOR NO KEY UPDATE`, op); err != nil {
		return db.Translate("match.officers", err)
	}
	_, err = tx.Exec(ctx, `CREATE TEMP TABLE t_rows ON COMMIT DROP AS
		SELECT s.row_no, s.authority, s.payroll_ref, s.name, s.valid_from, s.annual_cost, s.fte,
		       o.id AS officer_id, o.name AS recorded_name, v.valid_from IS NOT NULL AS v_exists, v.annual_cost AS v_cost, v.fte AS v_fte,
		       first_value(s.row_no) OVER ow AS o_first, first_value(s.name) OVER ow AS o_first_name,
		       first_value(s.row_no) OVER vw AS v_first, first_value(s.annual_cost) OVER vw AS v_first_cost,
		       first_value(s.fte) OVER vw AS v_first_fte
		  FROM stage s
		  LEFT JOIN officer o ON o.operation_id = $1 AND o.authority = s.authority AND o.payroll_ref = s.payroll_ref
		  LEFT JOIN rate_version v ON v.operation_id = $1 AND v.officer_id = o.id AND v.valid_from = s.valid_from
		 WHERE s.rules IS NULL AND NOT s.authority = ANY($2)
		WINDOW ow AS (PARTITION BY s.authority, s.payroll_ref ORDER BY s.row_no),
		       vw AS (PARTITION BY s.authority, s.payroll_ref, s.valid_from ORDER BY s.row_no)`, op, refused)
	if err != nil {
		return db.Translate("match.officers", err)
	}
	const norm = `lower(regexp_replace(btrim(normalize(%s, NFC)), '\s+', ' ', 'g'))` // as normName
	_, err = tx.Exec(ctx, `INSERT INTO t_err (row_no, rule, key, args)
		SELECT s.row_no, 'V8', x.key, string_to_array(x.args, E'\x1f')
		  FROM stage s JOIN unnest($1::text[], $2::text[], $3::text[]) AS x(authority, key, args) ON x.authority = s.authority
		 WHERE s.rules IS NULL
		UNION ALL
		SELECT row_no, 'M3', 'officer %s of %s is recorded as %s, not %s',
		       ARRAY[payroll_ref::text, authority::text, recorded_name::text, name::text]
		  FROM t_rows WHERE officer_id IS NOT NULL AND `+sprintf(norm, "recorded_name")+` <> `+sprintf(norm, "name")+`
		UNION ALL
		SELECT row_no, 'M3', 'officer %s of %s is named %s in row %s, not %s',
		       ARRAY[payroll_ref::text, authority::text, o_first_name::text, o_first::text, name::text]
		  FROM t_rows WHERE officer_id IS NULL AND row_no <> o_first AND `+sprintf(norm, "o_first_name")+` <> `+sprintf(norm, "name")+`
		UNION ALL
		SELECT row_no, 'R5.3', 'officer %s of %s already has a rate version from %s (annual cost %s, FTE %s); a version never changes: add one with a later valid_from',
		       ARRAY[payroll_ref::text, authority::text, valid_from::text, v_cost::text, (trim_scale(v_fte))::text]
		  FROM t_rows WHERE v_exists AND (v_cost, v_fte) <> (annual_cost, fte)
		UNION ALL
		SELECT row_no, 'R5.3', 'row %s gives officer %s of %s a different rate version from %s',
		       ARRAY[v_first::text, payroll_ref::text, authority::text, valid_from::text]
		  FROM t_rows WHERE row_no <> v_first AND (v_first_cost, v_first_fte) <> (annual_cost, fte)`, refused, reasons.keys, reasons.args)
	if err != nil {
		return db.Translate("match.officers", err)
	}
	_, err = tx.Exec(ctx, `CREATE TEMP TABLE t_new ON COMMIT DROP AS
		SELECT row_no, authority, payroll_ref, valid_from, annual_cost, fte FROM t_rows WHERE NOT v_exists AND row_no = v_first`)
	return db.Translate("match.officers", err)
}

func (o *officersImport) write(ctx context.Context, tx pgx.Tx, importID func() (int64, error)) (written, replayed int64, err error) {
	staged, n, err := countNew(ctx, tx)
	if err != nil || n == 0 {
		return 0, staged, err
	}
	id, err := importID()
	if err != nil {
		return 0, 0, err
	}
	op, at, by := o.s.p.OperationID, o.s.stamp(), o.by.Email
	tag, err := tx.Exec(ctx, `INSERT INTO officer (operation_id, authority, payroll_ref, name, recorded_at, recorded_by)
		SELECT $1, authority, payroll_ref, btrim(name), $2, $3 FROM t_rows WHERE officer_id IS NULL AND row_no = o_first ORDER BY row_no`,
		op, at, by)
	if err != nil {
		return 0, 0, db.Translate("match.officers", err)
	}
	o.officers = tag.RowsAffected()
	_, err = tx.Exec(ctx, `INSERT INTO rate_version (operation_id, officer_id, valid_from, annual_cost, fte, import_id, recorded_at, recorded_by)
		SELECT $1, o.id, n.valid_from, n.annual_cost, n.fte, nullif($2, 0), $3, $4
		  FROM t_new n JOIN officer o ON o.operation_id = $1 AND o.authority = n.authority AND o.payroll_ref = n.payroll_ref
		 ORDER BY n.row_no`, op, id, at, by)
	if err != nil {
		return 0, 0, db.Translate("match.officers", err)
	}
	o.written = n
	return n, staged - n, nil
}

// Officer returns the officer with payroll reference ref in authority, with its rate versions.
func (s *Service) Officer(ctx context.Context, authority, ref string) (Officer, error) {
	return OfficerByRef(ctx, s.l.Pool(), s.p, authority, ref)
}

// OfficerByRef returns the officer with payroll reference ref in authority, with its rate
// versions, read through q.
func OfficerByRef(ctx context.Context, q db.Querier, p *programme.Programme, authority, ref string) (Officer, error) {
	var o Officer
	err := q.QueryRow(ctx, `SELECT id, authority, payroll_ref, name FROM officer
		WHERE operation_id = $1 AND authority = $2 AND payroll_ref = $3`, p.OperationID, authority, ref).
		Scan(&o.ID, &o.Authority, &o.PayrollRef, &o.Name)
	if err == pgx.ErrNoRows {
		return Officer{}, apperr.New(apperr.NotFound, RuleRef, "there is no officer %s in %s", ref, authority)
	}
	if err != nil {
		return Officer{}, db.Translate("match.Officer", err)
	}
	rows, err := q.Query(ctx, `SELECT valid_from, annual_cost, fte FROM rate_version
		WHERE operation_id = $1 AND officer_id = $2 ORDER BY valid_from`, p.OperationID, o.ID)
	if err != nil {
		return Officer{}, db.Translate("match.Officer", err)
	}
	o.Versions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RateVersion, error) {
		var v RateVersion
		err := r.Scan(&v.ValidFrom, &v.AnnualCost, &v.FTE)
		v.HourlyRate = RoundRat(HourlyRate(v.AnnualCost, v.FTE, p.HoursBasis), 4)
		return v, err
	})
	return o, db.Translate("match.Officer", err)
}

func sprintf(format, arg string) string { return strings.ReplaceAll(format, "%s", arg) }
