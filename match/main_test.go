package match_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// now is the fixtures' clock: 10:30 on 15 July 2022, so 2022-07-16 is in the future (V2).
var now = time.Date(2022, 7, 15, 10, 30, 0, 0, time.UTC)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func date(s string) time.Time {
	d, err := programme.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// fixture is a fresh database with the InFuSe ledger, a match service and some users.
type fixture struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	l     *ledger.Ledger
	s     *match.Service
	p     *programme.Programme
	pm    access.User // programme manager, Siân Morgan
	foNWP access.User // finance officer of Newport, Rhian Evans
	foCRF access.User // finance officer of Cardiff
	audit access.User
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.New(t)
	p := programme.Default()
	clock := func() time.Time { return now }
	l, err := ledger.Setup(ctx, pool, p, ledger.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	s, err := match.New(l, p, match.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ctx: ctx, pool: pool, l: l, s: s, p: p}
	add := func(email, name string, role access.Role, auth string) access.User {
		u, err := access.AddUser(ctx, pool, p.OperationID, access.System, access.User{Email: email, Name: name, Role: role, Authority: auth}, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	f.pm = add("sian.morgan@monmouthshire.gov.uk", "Siân Morgan", access.ProgrammeManager, "")
	f.foNWP = add("rhian.evans@newport.gov.uk", "Rhian Evans", access.FinanceOfficer, "GB-NWP")
	f.foCRF = add("dai.jones@cardiff.gov.uk", "Dai Jones", access.FinanceOfficer, "GB-CRF")
	f.audit = add("auditor@wefo.gov.wales", "Wyn Auditor", access.Auditor, "")
	return f
}

// officers imports an officers.csv body (header added) as the programme manager.
func (f *fixture) officers(t testing.TB, rows ...string) {
	t.Helper()
	body := "authority,payroll_ref,name,valid_from,annual_cost,fte\n" + strings.Join(rows, "\n") + "\n"
	res, err := f.s.ImportOfficers(f.ctx, f.pm, strings.NewReader(body), match.ImportOptions{Name: "officers.csv"})
	if err != nil {
		t.Fatalf("import officers: %v\n%v", err, match.AsImportError(err))
	}
	t.Logf("officers: %+v", res)
}

const timeHeader = "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\n"

func (f *fixture) importTime(by access.User, rows ...string) (match.ImportResult, error) {
	body := timeHeader + strings.Join(rows, "\n") + "\n"
	return f.s.ImportTime(f.ctx, by, strings.NewReader(body), match.ImportOptions{Name: "time.csv"})
}

func (f *fixture) balance(t testing.TB, account string) decimal.Decimal {
	t.Helper()
	b, err := f.l.Balance(f.ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(f.ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantRule(t testing.TB, err error, code apperr.Code, rule string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s %s, got success", code, rule)
	}
	if apperr.CodeOf(err) != code || apperr.RuleOf(err) != rule {
		t.Fatalf("want %s %s, got %s %q: %v", code, rule, apperr.CodeOf(err), apperr.RuleOf(err), err)
	}
}

func rowsOf(err error) string {
	ie := match.AsImportError(err)
	if ie == nil {
		return fmt.Sprintf("not an import error: %v", err)
	}
	return ie.Error()
}

func TestImportSmoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.officers(t, "GB-NWP,NWP-004417,Rhian Evans,2021-04-01,44750.00,0.8", "GB-NWP,NWP-004417,Rhian Evans,2022-04-01,46000.00,0.8")
	res, err := f.importTime(f.pm, "GB-NWP,NWP-004417,2021-05-04,7.25,lab,TS-1,Gareth Morgan", "GB-NWP,NWP-004417,2022-05-04,7.25,lab,TS-2,Gareth Morgan")
	if err != nil {
		t.Fatalf("%v\n%s", err, rowsOf(err))
	}
	t.Logf("%+v", res)
	t.Log(f.balance(t, ledger.InKind("GB-NWP")), f.balance(t, ledger.Match("GB-NWP")))
	res, err = f.importTime(f.pm, "GB-NWP,NWP-004417,2021-05-04,7.25,lab,TS-1,Gareth Morgan", "GB-NWP,NWP-004417,2022-05-04,7.25,lab,TS-2,Gareth Morgan")
	t.Logf("%+v %v", res, err)
}
