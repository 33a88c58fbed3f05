package claims

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// clock is a clock a test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// at is noon in London on the given date.
func at(date string) time.Time {
	d := day(date)
	loc, _ := time.LoadLocation("Europe/London")
	return time.Date(d.Year(), d.Month(), d.Day(), 12, 0, 0, 0, loc)
}

func day(s string) time.Time {
	d, err := programme.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// People of the tests.
var (
	pmAlice   = access.User{Email: "alice@monmouthshire.gov.uk", Role: access.ProgrammeManager}
	pmBryn    = access.User{Email: "bryn@monmouthshire.gov.uk", Name: "Bryn Jones", Role: access.ProgrammeManager}
	foCerys   = access.User{Email: "cerys@newport.gov.uk", Role: access.FinanceOfficer, Authority: "GB-NWP"}
	auditDewi = access.User{Email: "dewi@audit.wales", Role: access.Auditor}
	adminEira = access.User{Email: "eira@monmouthshire.gov.uk", Role: access.Admin}
)

// fixture is a fresh database with the InFuSe ledger and a claims service on a test clock.
type fixture struct {
	t     testing.TB
	ctx   context.Context
	pool  *pgxpool.Pool
	prog  *programme.Programme
	l     *ledger.Ledger
	svc   *Service
	clock *clock
	n     atomic.Int64
}

func newFixture(t testing.TB, now string) *fixture {
	t.Helper()
	return newFixtureWith(t, now, nil)
}

// newFixtureWith is newFixture with a hook on the pool's configuration.
func newFixtureWith(t testing.TB, now string, configure func(*pgxpool.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), pool: dbtest.NewWithConfig(t, configure), prog: programme.Default(), clock: newClock(at(now))}
	var err error
	f.l, err = ledger.Setup(f.ctx, f.pool, f.prog, ledger.WithClock(f.clock.Now))
	if err != nil {
		t.Fatalf("ledger setup: %v", err)
	}
	f.svc, err = New(f.l, f.prog, WithClock(f.clock.Now), WithVersion("infuse test"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// spend records a cash expenditure line as package match would: the ledger entry (Dr the
// heading, Cr cash) and its row in the transaction list. It returns the entry id.
func (f *fixture) spend(heading, date, amount string) int64 {
	f.t.Helper()
	n := f.n.Add(1)
	a := decimal.RequireFromString(amount)
	e, err := f.l.Post(f.ctx, f.pool, ledger.EntryInput{
		EffectiveDate: day(date), Description: "test spend " + heading, Source: "expenditure",
		Reference: fmt.Sprint(n), RecordedBy: "test",
		Postings: []ledger.Posting{{Account: ledger.HeadingAccount(heading), Amount: a}, {Account: ledger.Cash, Amount: a.Neg()}},
	})
	if err != nil {
		f.t.Fatalf("spend: %v", err)
	}
	var credits any
	if a.IsNegative() {
		// A credit note names a line it credits: the first line, whatever it is, will do here.
		var id int64
		if err := f.pool.QueryRow(f.ctx, `SELECT min(id) FROM expenditure WHERE operation_id = 'infuse'`).Scan(&id); err != nil {
			f.t.Fatalf("credit note: %v", err)
		}
		credits = id
	}
	if _, err := f.pool.Exec(f.ctx, `INSERT INTO expenditure (operation_id, heading, defrayed_on, payee, description, amount,
			evidence_ref, invoice_ref, credits, generation, entry_id, period, recorded_at, recorded_by)
		VALUES ('infuse', $1, $2, 'Test payee', $3, $4, $5, '', $6, 0, $7, $8, now(), 'test')`,
		heading, day(date), fmt.Sprintf("line %d", n), a, fmt.Sprintf("EV-%d", n), credits, e.ID, e.Period); err != nil {
		f.t.Fatalf("spend line: %v", err)
	}
	return e.ID
}

// work records an officer-time line of the authority as package match would: the ledger entry
// (Dr in-kind, Cr match, R4.7) and its time entry, for a new officer each time.
func (f *fixture) work(authority, date, amount string) int64 {
	f.t.Helper()
	n := f.n.Add(1)
	a := decimal.RequireFromString(amount)
	e, err := f.l.Post(f.ctx, f.pool, ledger.EntryInput{
		EffectiveDate: day(date), Description: "test officer time", Source: "time_entry",
		Reference: fmt.Sprint(n), RecordedBy: "test",
		Postings: []ledger.Posting{{Account: ledger.InKind(authority), Amount: a}, {Account: ledger.Match(authority), Amount: a.Neg()}},
	})
	if err != nil {
		f.t.Fatalf("work: %v", err)
	}
	var officer int64
	if err := f.pool.QueryRow(f.ctx, `INSERT INTO officer (operation_id, authority, payroll_ref, name, recorded_at, recorded_by)
		VALUES ('infuse', $1, $2, $3, now(), 'test') RETURNING id`, authority, fmt.Sprintf("P-%d", n), fmt.Sprintf("Officer %d", n)).Scan(&officer); err != nil {
		f.t.Fatalf("officer: %v", err)
	}
	if _, err := f.pool.Exec(f.ctx, `INSERT INTO rate_version (operation_id, officer_id, valid_from, annual_cost, fte, recorded_at, recorded_by)
		VALUES ('infuse', $1, '2021-01-01', 34400.00, 1, now(), 'test')`, officer); err != nil {
		f.t.Fatalf("rate version: %v", err)
	}
	if _, err := f.pool.Exec(f.ctx, `INSERT INTO time_entry (operation_id, officer_id, work_date, activity, generation, hours,
			evidence_ref, approved_by, rate_valid_from, amount, entry_id, period, recorded_at, recorded_by)
		VALUES ('infuse', $1, $2, 'lab', 0, 7.5, $3, 'Line Manager', '2021-01-01', $4, $5, $6, now(), 'test')`,
		officer, day(date), fmt.Sprintf("TS-%d", n), a, e.ID, e.Period); err != nil {
		f.t.Fatalf("time entry: %v", err)
	}
	return e.ID
}

// post posts a raw entry with no line behind it.
func (f *fixture) post(date, from, to, amount string) int64 {
	f.t.Helper()
	a := decimal.RequireFromString(amount)
	e, err := f.l.Post(f.ctx, f.pool, ledger.EntryInput{
		EffectiveDate: day(date), Description: "raw test entry", Source: "test", RecordedBy: "test",
		Postings: []ledger.Posting{{Account: to, Amount: a}, {Account: from, Amount: a.Neg()}},
	})
	if err != nil {
		f.t.Fatalf("post: %v", err)
	}
	return e.ID
}

func (f *fixture) compile(period string) *Claim {
	f.t.Helper()
	c, err := f.svc.Compile(f.ctx, period, pmAlice)
	if err != nil {
		f.t.Fatalf("compile %s: %v", period, err)
	}
	return c
}

// submit compiles, reviews (Alice) and submits (Bryn) the claim of period.
func (f *fixture) submit(period string) *Claim {
	f.t.Helper()
	f.compile(period)
	if _, err := f.svc.Review(f.ctx, period, pmAlice); err != nil {
		f.t.Fatalf("review %s: %v", period, err)
	}
	c, err := f.svc.Submit(f.ctx, period, pmBryn)
	if err != nil {
		f.t.Fatalf("submit %s: %v", period, err)
	}
	return c
}

func (f *fixture) balance(account string) decimal.Decimal {
	f.t.Helper()
	b, err := f.l.Balance(f.ctx, account)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func wantErr(t testing.TB, err error, code apperr.Code, rule string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s %s, got success", code, rule)
	}
	if apperr.CodeOf(err) != code || apperr.RuleOf(err) != rule {
		t.Fatalf("want %s %q, got %s %q: %v", code, rule, apperr.CodeOf(err), apperr.RuleOf(err), err)
	}
}
