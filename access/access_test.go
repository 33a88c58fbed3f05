package access_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestCanMatrix checks every role against every action, for the user's own authority, another
// authority and no particular authority. The expectations are written out here, independently of
// the matrix in access.go: Y allowed for any authority, O only for the user's own, - never.
func TestCanMatrix(t *testing.T) {
	t.Parallel()
	//                                  FO   PM   AUD  ADM  SYS
	want := map[access.Action][5]string{
		access.RecordTime:        {"O", "Y", "-", "-", "Y"},
		access.ImportOfficers:    {"O", "Y", "-", "-", "Y"},
		access.ImportTime:        {"O", "Y", "-", "-", "Y"},
		access.RecordExpenditure: {"-", "Y", "-", "-", "Y"},
		access.ImportExpenditure: {"-", "Y", "-", "-", "Y"},
		access.Correct:           {"O", "Y", "-", "-", "Y"},
		access.CompileClaim:      {"-", "Y", "-", "-", "Y"},
		access.ReviewClaim:       {"Y", "Y", "-", "-", "-"},
		access.SubmitClaim:       {"-", "Y", "-", "-", "-"},
		access.RecordDecision:    {"-", "Y", "-", "-", "-"},
		access.RecordPayment:     {"-", "Y", "-", "-", "-"},
		access.ReadRecords:       {"O", "Y", "Y", "-", "Y"},
		access.ReadClaims:        {"Y", "Y", "Y", "-", "Y"},
		access.DownloadPack:      {"-", "Y", "Y", "-", "Y"},
		access.VerifyLedger:      {"-", "Y", "Y", "-", "Y"},
		access.ReadAccountAudit:  {"-", "-", "-", "Y", "Y"},
		access.ManageUsers:       {"-", "-", "-", "Y", "Y"},
	}
	if len(want) != len(access.Actions()) {
		t.Fatalf("the test covers %d actions, access has %d", len(want), len(access.Actions()))
	}
	users := []access.User{
		{Email: "fo@nwp.example", Role: access.FinanceOfficer, Authority: "GB-NWP"},
		{Email: "pm@mon.example", Role: access.ProgrammeManager},
		{Email: "aud@wefo.example", Role: access.Auditor},
		{Email: "admin@mon.example", Role: access.Admin},
		access.System,
	}
	for _, a := range access.Actions() {
		cells, ok := want[a]
		if !ok {
			t.Fatalf("action %s is not in the test's matrix", a)
		}
		for i, u := range users {
			for _, auth := range []string{"", "GB-NWP", "GB-CRF"} {
				err := access.Can(u, a, auth)
				allowed := cells[i] == "Y" || (cells[i] == "O" && auth != "GB-CRF")
				switch {
				case allowed && err != nil:
					t.Errorf("%s %s for %q: refused: %v", u.Role, a, auth, err)
				case !allowed && err == nil:
					t.Errorf("%s %s for %q: allowed, want refused", u.Role, a, auth)
				case !allowed:
					wantRule := access.RuleRole
					if cells[i] == "O" {
						wantRule = access.RuleV8
					}
					if apperr.CodeOf(err) != apperr.Forbidden || apperr.RuleOf(err) != wantRule {
						t.Errorf("%s %s for %q: got %s %s, want forbidden %s", u.Role, a, auth, apperr.CodeOf(err), apperr.RuleOf(err), wantRule)
					}
				}
			}
		}
	}
}

func TestCanRefusesUnknownRolesAndUnnamedUsers(t *testing.T) {
	t.Parallel()
	for _, u := range []access.User{
		{Email: "x@example.org", Role: "superuser"},
		{Email: "", Role: access.ProgrammeManager},
		{Email: "x@example.org"},
	} {
		for _, a := range access.Actions() {
			if err := access.Can(u, a, ""); apperr.RuleOf(err) != access.RuleRole {
				t.Errorf("%+v %s: got %v, want A1", u, a, err)
			}
		}
	}
}

// TestCanRefusesADisabledUser: whatever path loaded a disabled user, Can refuses every action
// (AU6), saying since when and by whom.
func TestCanRefusesADisabledUser(t *testing.T) {
	t.Parallel()
	at := time.Date(2023, 5, 2, 10, 0, 0, 0, time.UTC)
	u := access.User{Email: "pm@example.org", Role: access.ProgrammeManager, DisabledAt: &at, DisabledBy: "admin@example.org"}
	for _, a := range access.Actions() {
		err := access.Can(u, a, "")
		if apperr.RuleOf(err) != access.RuleDisabled || !strings.Contains(err.Error(), "disabled on 2023-05-02 by admin@example.org") {
			t.Errorf("%s: got %v, want AU6", a, err)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	known := func(a string) bool { return a == "GB-NWP" }
	cases := []struct {
		name string
		u    access.User
		ok   bool
	}{
		{"FinanceOfficer", access.User{Email: " Rhian@Newport.gov.uk ", Name: "Rhian Evans", Role: access.FinanceOfficer, Authority: "GB-NWP"}, true},
		{"ProgrammeManager", access.User{Email: "pm@mon.gov.uk", Name: "Siân", Role: access.ProgrammeManager}, true},
		{"BadEmail", access.User{Email: "not-an-email", Name: "X", Role: access.Auditor}, false},
		{"NoName", access.User{Email: "a@b.c", Role: access.Auditor}, false},
		{"UnknownRole", access.User{Email: "a@b.c", Name: "X", Role: "boss"}, false},
		{"SystemIsNotARole", access.User{Email: "a@b.c", Name: "X", Role: access.SystemRole}, false},
		{"FinanceOfficerWithoutAuthority", access.User{Email: "a@b.c", Name: "X", Role: access.FinanceOfficer}, false},
		{"ManagerWithAuthority", access.User{Email: "a@b.c", Name: "X", Role: access.ProgrammeManager, Authority: "GB-NWP"}, false},
		{"UnknownAuthority", access.User{Email: "a@b.c", Name: "X", Role: access.FinanceOfficer, Authority: "GB-XXX"}, false},
		{"EscapeInName", access.User{Email: "a@b.c", Name: "Evil\x1b[2JName", Role: access.Auditor}, false},
		{"LineBreakInName", access.User{Email: "a@b.c", Name: "Evil\nfake@row auditor", Role: access.Auditor}, false},
		{"EscapeInEmail", access.User{Email: "a\x1b[31m@b.c", Name: "X", Role: access.Auditor}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.u.Validate(known)
			if c.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, c.ok)
			}
			if err != nil && apperr.RuleOf(err) != access.RuleUser {
				t.Fatalf("rule %q, want A2", apperr.RuleOf(err))
			}
		})
	}
}

func TestUsersAreStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	p := programme.Default()
	if _, err := ledger.Setup(ctx, pool, p); err != nil {
		t.Fatal(err)
	}
	known := func(a string) bool { _, ok := p.Authority(a); return ok }
	now := time.Date(2022, 3, 1, 9, 0, 0, 0, time.UTC)
	u, err := access.AddUser(ctx, pool, p.OperationID, access.System,
		access.User{Email: "Rhian.Evans@newport.gov.uk", Name: "Rhian Evans", Role: access.FinanceOfficer, Authority: "GB-NWP"}, known, now)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || u.Email != "rhian.evans@newport.gov.uk" {
		t.Fatalf("stored %+v", u)
	}
	got, err := access.UserByEmail(ctx, pool, p.OperationID, "RHIAN.EVANS@newport.gov.uk")
	if err != nil || got.Authority != "GB-NWP" || got.Role != access.FinanceOfficer || !got.CreatedAt.Equal(now) || got.CreatedBy != "system" {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}

	_, err = access.AddUser(ctx, pool, p.OperationID, access.System, access.User{Email: "rhian.evans@newport.gov.uk", Name: "Other", Role: access.Auditor}, known, now)
	if apperr.CodeOf(err) != apperr.Conflict || apperr.RuleOf(err) != access.RuleUser {
		t.Fatalf("duplicate email: %v", err)
	}
	_, err = access.AddUser(ctx, pool, p.OperationID, got, access.User{Email: "x@y.z", Name: "X", Role: access.Auditor}, known, now)
	if apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a finance officer adding users: %v", err)
	}
	_, err = access.UserByEmail(ctx, pool, p.OperationID, "nobody@example.org")
	if apperr.CodeOf(err) != apperr.NotFound || apperr.RuleOf(err) != apperr.RuleRef {
		t.Fatalf("unknown user: %v", err)
	}
	// The schema refuses what Validate refuses, for a raw session.
	_, err = pool.Exec(ctx, `INSERT INTO app_user (operation_id, email, name, role, created_at, created_by)
		VALUES ('infuse', 'fo@x.org', 'FO', 'finance_officer', now(), 'test')`)
	if err == nil {
		t.Fatal("the schema accepted a finance officer without an authority")
	}
	_, err = pool.Exec(ctx, `INSERT INTO app_user (operation_id, email, name, role, created_at, created_by)
		VALUES ('infuse', $1, 'Long', 'auditor', now(), 'test')`, strings.Repeat("a", access.MaxEmail-len("@x.org")+1)+"@x.org")
	if err = db.Translate("test", err); apperr.CodeOf(err) != apperr.Invalid || apperr.RuleOf(err) != access.RuleUser {
		t.Fatalf("an email of %d bytes, by a raw session: %v", access.MaxEmail+1, err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO app_user (operation_id, email, name, role, created_at, created_by)
		VALUES ('infuse', 'esc@x.org', $1, 'auditor', now(), 'test')`, "Evil\x1b[2JName")
	if err = db.Translate("test", err); apperr.CodeOf(err) != apperr.Invalid || apperr.RuleOf(err) != access.RuleUser {
		t.Fatalf("a name with an escape, by a raw session: %v", err)
	}
	us, err := access.Users(ctx, pool, p.OperationID)
	if err != nil || len(us) != 1 {
		t.Fatalf("Users = %v, %v", us, err)
	}
}
