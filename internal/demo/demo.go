// Package demo loads InFuSe with realistic demo data (`infuse demo`, and `make run` on first
// start): about 120 officers of the ten authorities in four six-month cohorts from May 2021, their
// rate versions with a pay award each April, their lab, experiment, coaching and steering time,
// the programme team's salaries, the delivery partners' quarterly invoices, other costs, some
// late timesheets, a credit note and a correction — in proportion to the real budget (£3.6m
// cash, £2m match). The same seed gives the same data.
//
// Everything goes in the way a finance team would put it in: users through access, and CSV files
// through match's imports, each authority's officers and time imported by its own finance
// officer, the expenditure by the programme manager. There is no back door.
//
// The demo loads only into a database that holds nothing but the operation's setup, and only
// once (rule D1): its users share a published password, so it must never land among real
// users, and a load stopped part way (Ctrl-C, a failure) leaves a database that is neither
// empty nor the demo. Run records in the audit log when it starts and when it has finished
// (demo.started, demo.loaded), so that Inspect can tell a finished demo from a part-loaded one.
//
// Run works through the claim periods in order. After each period's lines it calls
// Config.AfterPeriod, the hook where the claims step (compile, review, submit, decide, pay) goes;
// the period's late timesheets are imported after that hook, with the next period's, so that once
// claims lock their periods they arrive as late items.
package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
)

// Passwords sets a user's password (auth.Service does).
type Passwords interface {
	SetPassword(ctx context.Context, by access.User, email, password string) error
}

// People are the demo's users.
type People struct {
	Admin           access.User
	Manager         access.User            // programme manager of the lead beneficiary: compiles and submits claims
	Reviewer        access.User            // Monmouthshire's finance officer and programme finance lead: reviews claims
	Auditor         access.User            // WEFO's auditor
	FinanceOfficers map[string]access.User // by authority: import their officers and time
}

// RuleDemo is the rule a refused demo load names: the demo loads only into a database that
// holds no data, once, and a load that stopped part way is started afresh, not built on.
const RuleDemo = "D1"

// Journal is where the demo records that it started and finished loading, and reads that back:
// the audit log (auth.Service).
type Journal interface {
	Record(ctx context.Context, e auth.Event, err error) error
	Events(ctx context.Context, by access.User, f auth.AuditFilter) ([]auth.Event, error)
}

// The audit actions of a demo load.
const (
	actionStarted = "demo.started"
	actionLoaded  = "demo.loaded"
)

// State is what a database holds, as far as the demo is concerned.
type State string

// The states of a database.
const (
	StateEmpty   State = "empty"   // only the operation's setup: the demo may load
	StateLoaded  State = "loaded"  // a demo load finished
	StatePartial State = "partial" // a demo load started, wrote data and did not finish
	StateData    State = "data"    // data the demo did not load: users, officers, lines or entries
)

// Config says what to load and how.
type Config struct {
	Match *match.Service
	Seed  uint64
	// Journal records the start and the end of the load (required).
	Journal Journal
	// Afresh tells a person how to get an empty database, for the messages of refused loads
	// ("remove the data directory ./var"); empty: a generic phrase.
	Afresh string
	// Passwords, when set, gives every demo user Password, so that people can sign in.
	Passwords Passwords
	Password  string
	// Log, when set, receives a line per step.
	Log io.Writer
	// AfterPeriod, when set, runs once each claim period's lines are recorded, before its late
	// timesheets arrive: the claims step goes here.
	AfterPeriod func(ctx context.Context, period programme.Period, people People) error
}

// Summary counts what the demo recorded.
type Summary struct {
	Users, Officers, RateVersions, TimeEntries, ExpenditureLines int64
	Match, Cash                                                  decimal.Decimal // net in-kind match and cash expenditure
}

// Inspect reports what the database of m holds: nothing yet, a finished demo, part of a demo,
// or data of its own. Setting the operation up (periods, accounts, the award and the match
// pledges) is not data.
func Inspect(ctx context.Context, m *match.Service, j Journal) (State, error) {
	var held bool
	err := m.Ledger().Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM app_user WHERE operation_id = $1)
		OR EXISTS (SELECT 1 FROM officer WHERE operation_id = $1)
		OR EXISTS (SELECT 1 FROM expenditure WHERE operation_id = $1)
		OR EXISTS (SELECT 1 FROM entry WHERE operation_id = $1 AND source <> 'setup')`, m.Programme().OperationID).Scan(&held)
	if err != nil {
		return "", db.Translate("demo.Inspect", err)
	}
	events, err := j.Events(ctx, access.System, auth.AuditFilter{Action: "demo.", Limit: 1000})
	if err != nil {
		return "", err
	}
	started := false
	for _, e := range events {
		switch e.Action {
		case actionLoaded:
			return StateLoaded, nil
		case actionStarted:
			started = true
		}
	}
	switch {
	case started && held:
		return StatePartial, nil
	case held:
		return StateData, nil
	}
	return StateEmpty, nil // a load that stopped before writing anything left nothing to clear
}

// refusal is the error of a load into a database in state s.
func refusal(s State, afresh string) error {
	if afresh == "" {
		afresh = "start from a new, empty database"
	}
	switch s {
	case StateLoaded:
		return apperr.New(apperr.Conflict, RuleDemo, "the demo is loaded already; to load it again, %s", afresh)
	case StatePartial:
		return apperr.New(apperr.Conflict, RuleDemo,
			"an earlier demo load stopped part way and left part of the demo in the database: %s, then load the demo again", afresh)
	}
	return apperr.New(apperr.Conflict, RuleDemo,
		"the database holds data already (users, officers, expenditure or ledger entries): the demo loads only into an empty database; %s", afresh)
}

// Run loads the demo data into an empty database (Inspect), and refuses any other (D1) before
// writing anything.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	m, p := cfg.Match, cfg.Match.Programme()
	if cfg.Journal == nil {
		return Summary{}, apperr.Wrap("demo.Run", fmt.Errorf("no journal to record the load in"))
	}
	state, err := Inspect(ctx, m, cfg.Journal)
	if err != nil {
		return Summary{}, err
	}
	if state != StateEmpty {
		return Summary{}, refusal(state, cfg.Afresh)
	}
	event := func(action string, detail map[string]any) error {
		return cfg.Journal.Record(ctx, auth.Event{Actor: access.System.Email, ActorRole: string(access.SystemRole), Action: action,
			Target: "demo", Detail: detail, RequestID: "demo", Client: "console"}, nil)
	}
	if err := event(actionStarted, map[string]any{"seed": cfg.Seed}); err != nil {
		return Summary{}, err
	}
	pl := makePlan(p, cfg.Seed)
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", args...)
		}
	}
	people, err := addUsers(ctx, cfg, p)
	if err != nil {
		return Summary{}, err
	}
	logf("demo: users of the ten authorities, the programme team and WEFO's auditor")

	// Officers: each authority's finance officer imports its officers.csv.
	for _, a := range p.Authorities {
		var rows [][]string
		for _, o := range pl.officers {
			if o.authority != a.Code {
				continue
			}
			for _, v := range o.versions {
				rows = append(rows, []string{v.Authority, v.PayrollRef, v.Name, day(v.ValidFrom), v.AnnualCost.StringFixed(2), v.FTE.String()})
			}
		}
		body := csvFile([]string{"authority", "payroll_ref", "name", "valid_from", "annual_cost", "fte"}, rows)
		if _, err := m.ImportOfficers(ctx, people.FinanceOfficers[a.Code], body, match.ImportOptions{Name: "officers-" + a.Code + ".csv"}); err != nil {
			return Summary{}, fmt.Errorf("demo: officers of %s: %w", a.Code, withRows(err))
		}
	}
	logf("demo: %d officers with their rate versions", len(pl.officers))

	// Period by period: time (each authority's own file), then expenditure, then the hook.
	var late []timePlan
	for _, per := range p.Periods() {
		var due []timePlan
		due, late = append(late, inPeriod(pl.time, per, false)...), inPeriod(pl.time, per, true)
		byAuth := map[string][][]string{}
		for _, t := range due {
			in := t.in
			if c := pl.correction; c.wrong.Authority != "" && in.PayrollRef == c.right.PayrollRef && in.WorkDate.Equal(c.right.WorkDate) && in.Activity == c.right.Activity {
				in = pl.correction.wrong // keyed wrongly; corrected in the next period
			}
			byAuth[in.Authority] = append(byAuth[in.Authority], []string{in.Authority, in.PayrollRef, day(in.WorkDate),
				in.Hours.String(), in.Activity, in.EvidenceRef, in.ApprovedBy})
		}
		for _, a := range p.Authorities {
			if len(byAuth[a.Code]) == 0 {
				continue
			}
			body := csvFile([]string{"authority", "payroll_ref", "work_date", "hours", "activity", "evidence_ref", "approved_by"}, byAuth[a.Code])
			name := fmt.Sprintf("time-%s-%s.csv", per.Code, a.Code)
			if _, err := m.ImportTime(ctx, people.FinanceOfficers[a.Code], body, match.ImportOptions{Name: name}); err != nil {
				return Summary{}, fmt.Errorf("demo: %s: %w", name, withRows(err))
			}
		}
		if c := pl.correction; c.wrong.Authority != "" && per.Contains(c.right.WorkDate.AddDate(0, 3, 0)) {
			if err := correct(ctx, m, people, c); err != nil {
				return Summary{}, err
			}
			logf("demo: corrected a timesheet of %s keyed with the wrong hours", c.right.PayrollRef)
		}
		var rows [][]string
		for _, x := range pl.expenditure {
			if per.Contains(x.in.DefrayedOn) {
				in := x.in
				rows = append(rows, []string{in.Heading, day(in.DefrayedOn), in.Payee, in.Description, in.Amount.StringFixed(2), in.EvidenceRef, in.InvoiceRef})
			}
		}
		if len(rows) > 0 {
			body := csvFile([]string{"heading", "defrayed_on", "payee", "description", "amount", "evidence_ref", "invoice_ref"}, rows)
			name := fmt.Sprintf("expenditure-%s.csv", per.Code)
			if _, err := m.ImportExpenditure(ctx, people.Manager, body, match.ImportOptions{Name: name}); err != nil {
				return Summary{}, fmt.Errorf("demo: %s: %w", name, withRows(err))
			}
		}
		logf("demo: %s: %d time entries, %d expenditure lines", per.Code, len(due), len(rows))
		if cfg.AfterPeriod != nil {
			if err := cfg.AfterPeriod(ctx, per, people); err != nil {
				return Summary{}, fmt.Errorf("demo: after %s: %w", per.Code, err)
			}
		}
	}
	sum, err := summarise(ctx, m)
	if err != nil {
		return sum, err
	}
	if err := event(actionLoaded, map[string]any{"seed": cfg.Seed, "users": sum.Users, "officers": sum.Officers,
		"time_entries": sum.TimeEntries, "expenditure_lines": sum.ExpenditureLines}); err != nil {
		return sum, err
	}
	return sum, nil
}

// inPeriod returns the timesheets of per, the late ones or the others.
func inPeriod(ts []timePlan, per programme.Period, late bool) []timePlan {
	var out []timePlan
	for _, t := range ts {
		if t.late == late && per.Contains(t.in.WorkDate) {
			out = append(out, t)
		}
	}
	return out
}

// correct reverses the wrongly keyed timesheet and records the right one, as the authority's
// finance officer.
func correct(ctx context.Context, m *match.Service, people People, c correctionPlan) error {
	fo := people.FinanceOfficers[c.right.Authority]
	var id int64
	err := m.Ledger().Pool().QueryRow(ctx, `SELECT t.id FROM time_entry t JOIN officer o ON o.operation_id = t.operation_id AND o.id = t.officer_id
		WHERE t.operation_id = $1 AND o.authority = $2 AND o.payroll_ref = $3 AND t.work_date = $4 AND t.activity = $5 AND t.reversed_by IS NULL`,
		m.Programme().OperationID, c.wrong.Authority, c.wrong.PayrollRef, c.wrong.WorkDate, c.wrong.Activity).Scan(&id)
	if err != nil {
		return fmt.Errorf("demo: find the timesheet to correct: %w", db.Translate("demo.correct", err))
	}
	if _, err := m.ReverseTime(ctx, fo, id, c.reason); err != nil {
		return fmt.Errorf("demo: correction: %w", err)
	}
	if _, err := m.RecordTime(ctx, fo, c.right); err != nil {
		return fmt.Errorf("demo: correction: %w", err)
	}
	return nil
}

func addUsers(ctx context.Context, cfg Config, p *programme.Programme) (People, error) {
	m := cfg.Match
	pool, op := m.Ledger().Pool(), p.OperationID
	known := func(a string) bool { _, ok := p.Authority(a); return ok }
	add := func(name, domain string, role access.Role, auth string) (access.User, error) {
		email := strings.ToLower(strings.ReplaceAll(asciiName(name), " ", ".")) + "@" + domain
		u, err := access.UserByEmail(ctx, pool, op, email)
		if err != nil {
			u, err = access.AddUser(ctx, pool, op, access.System, access.User{Email: email, Name: name, Role: role, Authority: auth}, known, time.Now())
		}
		if err != nil {
			return u, fmt.Errorf("demo: user %s: %w", email, err)
		}
		if cfg.Passwords != nil && cfg.Password != "" {
			if err := cfg.Passwords.SetPassword(ctx, access.System, email, cfg.Password); err != nil {
				return u, fmt.Errorf("demo: password of %s: %w", email, err)
			}
		}
		return u, nil
	}
	var ps People
	var err error
	if ps.Manager, err = add(managerName, domains[p.Lead], access.ProgrammeManager, ""); err != nil {
		return ps, err
	}
	ps.FinanceOfficers = map[string]access.User{}
	codes := make([]string, 0, len(p.Authorities))
	for _, a := range p.Authorities {
		codes = append(codes, a.Code)
	}
	slices.Sort(codes)
	for _, c := range codes {
		if ps.FinanceOfficers[c], err = add(financeOfficers[c], domains[c], access.FinanceOfficer, c); err != nil {
			return ps, err
		}
	}
	ps.Reviewer = ps.FinanceOfficers[p.Lead]
	if ps.Auditor, err = add(auditorName, "gov.wales", access.Auditor, ""); err != nil {
		return ps, err
	}
	if ps.Admin, err = add(adminName, domains[p.Lead], access.Admin, ""); err != nil {
		return ps, err
	}
	return ps, nil
}

// asciiName drops the accents of a name for its email address (Siân → sian).
func asciiName(s string) string {
	return strings.NewReplacer("â", "a", "ê", "e", "î", "i", "ô", "o", "û", "u", "ŵ", "w", "ŷ", "y", "Â", "A").Replace(s)
}

func summarise(ctx context.Context, m *match.Service) (Summary, error) {
	var s Summary
	err := m.Ledger().Pool().QueryRow(ctx, `SELECT
			(SELECT count(*) FROM app_user WHERE operation_id = $1),
			(SELECT count(*) FROM officer WHERE operation_id = $1),
			(SELECT count(*) FROM rate_version WHERE operation_id = $1),
			(SELECT count(*) FROM time_entry WHERE operation_id = $1 AND reversed_by IS NULL),
			(SELECT count(*) FROM expenditure WHERE operation_id = $1 AND reversed_by IS NULL),
			(SELECT coalesce(sum(amount), 0) FROM time_entry WHERE operation_id = $1 AND reversed_by IS NULL),
			(SELECT coalesce(sum(amount), 0) FROM expenditure WHERE operation_id = $1 AND reversed_by IS NULL)`,
		m.Programme().OperationID).Scan(&s.Users, &s.Officers, &s.RateVersions, &s.TimeEntries, &s.ExpenditureLines, &s.Match, &s.Cash)
	return s, db.Translate("demo.summarise", err)
}

func day(t time.Time) string { return t.Format(programme.DateLayout) }

// csvFile writes a CSV file in memory, as a finance system would export it.
func csvFile(header []string, rows [][]string) io.Reader {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(header)  //nolint:errcheck // a bytes.Buffer does not fail
	w.WriteAll(rows) //nolint:errcheck
	return &b
}

// withRows adds an import's row problems to its error, so a broken demo says what broke.
func withRows(err error) error {
	if ie := match.AsImportError(err); ie != nil {
		rows := ie.Rows
		if len(rows) > 5 {
			rows = rows[:5]
		}
		var b strings.Builder
		for _, r := range rows {
			b.WriteString("\n  " + r.String())
		}
		return fmt.Errorf("%w%s", err, b.String())
	}
	return err
}
