package demo_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/internal/demo"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
	"github.com/ccr-infuse/infuse/reports"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// services sets up the InFuSe ledger on a fresh database, with the match and auth services the
// demo loads through; match's clock stands after the programme's end.
func services(t *testing.T) (*pgxpool.Pool, *programme.Programme, *ledger.Ledger, *match.Service, *auth.Service) {
	t.Helper()
	pool := dbtest.New(t)
	p := programme.Default()
	l, err := ledger.Setup(context.Background(), pool, p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := match.New(l, p, match.WithClock(func() time.Time { return time.Date(2024, 2, 1, 9, 0, 0, 0, time.UTC) }))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(pool, auth.Config{OperationID: p.OperationID})
	if err != nil {
		t.Fatal(err)
	}
	return pool, p, l, m, a
}

func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, p, l, m, a := services(t)
	if state, err := demo.Inspect(ctx, m, a); err != nil || state != demo.StateEmpty {
		t.Fatalf("Inspect before = %v, %v", state, err)
	}
	var periods []string
	start := time.Now()
	sum, err := demo.Run(ctx, demo.Config{Match: m, Seed: 1, Journal: a, AfterPeriod: func(_ context.Context, per programme.Period, people demo.People) error {
		periods = append(periods, per.Code)
		if people.Manager.Email == "" || len(people.FinanceOfficers) != 10 || people.Reviewer.Email == people.Manager.Email {
			t.Errorf("people %+v", people)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("demo in %v: %+v", time.Since(start), sum)
	if len(periods) != 12 || periods[0] != "2021Q1" || periods[11] != "2023Q4" {
		t.Fatalf("hook saw %v", periods)
	}
	if sum.Officers < 110 || sum.Officers > 130 || sum.Users < 13 || sum.RateVersions < 2*sum.Officers {
		t.Fatalf("summary %+v", sum)
	}
	// In proportion to the real budget: £2m of match and £3.6m of cash (indirect at 15% of staff on top).
	between := func(what string, v decimal.Decimal, lo, hi float64) {
		if f := v.InexactFloat64(); f < lo || f > hi {
			t.Errorf("%s = %s, want between %.0f and %.0f", what, v.StringFixed(2), lo, hi)
		}
	}
	between("match", sum.Match, 1_800_000, 2_100_000)
	between("cash lines", sum.Cash, 3_200_000, 3_550_000)
	// Loaded once: a finished demo is told from a part-loaded one, and not loaded again.
	if state, err := demo.Inspect(ctx, m, a); err != nil || state != demo.StateLoaded {
		t.Fatalf("Inspect after = %v, %v", state, err)
	}
	if _, err := demo.Run(ctx, demo.Config{Match: m, Seed: 1, Journal: a}); apperr.CodeOf(err) != apperr.Conflict ||
		apperr.RuleOf(err) != demo.RuleDemo || !strings.Contains(apperr.Public(err), "loaded already") {
		t.Fatalf("a second load: %v, want a D1 conflict", err)
	}
	// R4.7 by construction, and every line's ledger entry is its own.
	var bad int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM time_entry t LEFT JOIN entry e ON e.operation_id = t.operation_id AND e.id = t.entry_id
		WHERE e.id IS NULL OR e.source <> 'time_entry' OR e.reference <> t.id::text OR e.period <> t.period OR e.effective_date <> t.work_date`).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("%d time entries without their ledger entry, %v", bad, err)
	}
	var in, mt decimal.Decimal
	for _, a := range p.Authorities {
		i, _ := l.Balance(ctx, ledger.InKind(a.Code))
		x, _ := l.Balance(ctx, ledger.Match(a.Code))
		in, mt = in.Add(i), mt.Add(x)
	}
	if !in.Equal(sum.Match) || !in.Neg().Equal(mt) {
		t.Fatalf("in-kind %s, match %s, lines %s", in, mt, sum.Match)
	}
	// A credit note and a correction are part of the story.
	var credits, corrections int
	pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM expenditure WHERE amount < 0), (SELECT count(*) FROM correction)`).Scan(&credits, &corrections)
	if credits != 1 || corrections != 1 {
		t.Fatalf("%d credit notes, %d corrections", credits, corrections)
	}
}

// TestRunRefusesData: the demo, whose users share a published password, is not loaded among
// users (or officers, lines or entries) of a real operation, and writes nothing there.
func TestRunRefusesData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, p, _, m, a := services(t)
	if _, err := access.AddUser(ctx, pool, p.OperationID, access.System, access.User{Email: "admin@monmouthshire.gov.uk", Name: "Admin",
		Role: access.Admin}, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if state, err := demo.Inspect(ctx, m, a); err != nil || state != demo.StateData {
		t.Fatalf("Inspect = %v, %v; want data", state, err)
	}
	_, err := demo.Run(ctx, demo.Config{Match: m, Seed: 1, Journal: a, Afresh: "use another database"})
	if apperr.CodeOf(err) != apperr.Conflict || apperr.RuleOf(err) != demo.RuleDemo || !strings.Contains(apperr.Public(err), "use another database") {
		t.Fatalf("load over data: %v, want a D1 conflict saying what to do", err)
	}
	var users, events int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM app_user), (SELECT count(*) FROM audit_event)`).Scan(&users, &events); err != nil {
		t.Fatal(err)
	}
	if users != 1 || events != 0 {
		t.Fatalf("a refused load wrote: %d users, %d audit events", users, events)
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	t.Parallel()
	p := programme.Default()
	a, b, c := demo.PlanDigest(p, 7), demo.PlanDigest(p, 7), demo.PlanDigest(p, 8)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different data")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same data")
	}
}

// TestClaimsStepNamesTheGenerator: the packs the demo stores name the generator it is given
// (the binary's version), as the packs the service and the commands render do, so that the same
// draft has the same hashes from the web and from `infuse claims pack`.
func TestClaimsStepNamesTheGenerator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	p := programme.Default()
	l, err := ledger.Setup(ctx, pool, p)
	if err != nil {
		t.Fatal(err)
	}
	step, err := demo.ClaimsStep(l, p, "infuse 9.9", nil)
	if err != nil {
		t.Fatal(err)
	}
	per := p.Periods()[8] // the first the demo leaves as a draft, with its pack stored
	if err := step(ctx, per, demo.People{}); err != nil {
		t.Fatal(err)
	}
	svc, err := claims.New(l, p)
	if err != nil {
		t.Fatal(err)
	}
	files, _, err := svc.StoredPack(ctx, per.Code)
	if err != nil {
		t.Fatal(err)
	}
	var m reports.Manifest
	for _, f := range files {
		if f.Name == reports.NameManifest {
			if err := json.Unmarshal(f.Data, &m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if m.GeneratorVersion != "infuse 9.9" {
		t.Fatalf("the stored pack names %q as its generator, want the one given", m.GeneratorVersion)
	}
}
