package auth_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var cheap = auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := auth.HashPassword("a long enough password", auth.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q", h)
	}
	if ok, err := auth.VerifyPassword(h, "a long enough password"); !ok || err != nil {
		t.Errorf("right password: %v %v", ok, err)
	}
	if ok, _ := auth.VerifyPassword(h, "a long enough passworD"); ok {
		t.Error("wrong password verified")
	}
	h2, _ := auth.HashPassword("a long enough password", auth.DefaultParams)
	if h2 == h {
		t.Error("same salt twice")
	}
	for _, pw := range []string{"short", strings.Repeat("x", 257), "bad\xffutf8 password", strings.Repeat(" ", 12), "  a b  c     "} {
		if apperr.RuleOf(auth.CheckPassword(pw)) != auth.RulePassword {
			t.Errorf("password %q accepted", pw)
		}
	}
}

type fixture struct {
	svc  *auth.Service
	pool *pgxpool.Pool
	now  *time.Time
	user access.User
}

func setup(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.New(t)
	prog := programme.Default()
	if _, err := ledger.Setup(ctx, pool, prog); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2022, 3, 1, 9, 0, 0, 0, time.UTC)
	svc, err := auth.New(pool, auth.Config{OperationID: prog.OperationID, Params: cheap, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	u, err := access.AddUser(ctx, pool, prog.OperationID, access.System,
		access.User{Email: "pm@x.example", Name: "P M", Role: access.ProgrammeManager}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetPassword(ctx, access.System, u.Email, "the right password"); err != nil {
		t.Fatal(err)
	}
	return fixture{svc: svc, pool: pool, now: &now, user: u}
}

// addAdmin adds an administrator, admin@x.example.
func (f fixture) addAdmin(t *testing.T) access.User {
	t.Helper()
	admin, err := access.AddUser(context.Background(), f.pool, f.svc.OperationID(), access.System,
		access.User{Email: "admin@x.example", Name: "A D", Role: access.Admin}, nil, *f.now)
	if err != nil {
		t.Fatal(err)
	}
	return admin
}

func TestSessions(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	s, err := f.svc.SignIn(ctx, "PM@x.example ", "the right password", "127.0.0.1", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.ID) != 43 || s.CSRFToken() == "" || s.CSRFToken() == s.ID {
		t.Errorf("session %q csrf %q", s.ID, s.CSRFToken())
	}
	got, err := f.svc.SessionByID(ctx, s.ID)
	if err != nil || got.User.Email != "pm@x.example" {
		t.Fatalf("lookup: %v %+v", err, got)
	}
	// Idle for longer than the idle timeout: over.
	*f.now = f.now.Add(3 * time.Hour)
	if _, err := f.svc.SessionByID(ctx, s.ID); apperr.RuleOf(err) != auth.RuleSession {
		t.Errorf("idle session: %v", err)
	}
	// Rotation: a new sign-in revokes the session presented with it.
	s1, _ := f.svc.SignIn(ctx, "pm@x.example", "the right password", "127.0.0.1", "")
	s2, _ := f.svc.SignIn(ctx, "pm@x.example", "the right password", "127.0.0.1", s1.ID)
	if _, err := f.svc.SessionByID(ctx, s1.ID); err == nil {
		t.Error("old session alive after sign-in")
	}
	if err := f.svc.SignOut(ctx, s2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SessionByID(ctx, s2.ID); err == nil {
		t.Error("session alive after sign-out")
	}
	// A new password ends every session.
	s3, _ := f.svc.SignIn(ctx, "pm@x.example", "the right password", "127.0.0.1", "")
	if err := f.svc.SetPassword(ctx, access.System, "pm@x.example", "another good password"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SessionByID(ctx, s3.ID); err == nil {
		t.Error("session alive after a password change")
	}
}

func TestThrottleAndNoEnumeration(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	_, unknown := f.svc.SignIn(ctx, "nobody@x.example", "whatever password", "10.0.0.1", "")
	_, wrong := f.svc.SignIn(ctx, "pm@x.example", "whatever password", "10.0.0.1", "")
	if unknown.Error() != wrong.Error() || apperr.CodeOf(wrong) != apperr.Unauthenticated {
		t.Errorf("unknown %v, wrong %v", unknown, wrong)
	}
	for i := 0; i < 4; i++ {
		_, _ = f.svc.SignIn(ctx, "pm@x.example", "whatever password", "10.0.0.2", "")
	}
	if _, err := f.svc.SignIn(ctx, "pm@x.example", "the right password", "10.0.0.3", ""); apperr.RuleOf(err) != auth.RuleThrottle {
		t.Errorf("after 5 failures: %v", err)
	}
	*f.now = f.now.Add(16 * time.Minute)
	if _, err := f.svc.SignIn(ctx, "pm@x.example", "the right password", "10.0.0.3", ""); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestTokensAndAudit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	if _, _, err := f.svc.CreateToken(ctx, f.user, f.user.Email, "x"); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("a programme manager created a token: %v", err)
	}
	secret, tok, err := f.svc.CreateToken(ctx, access.System, f.user.Email, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	if u, id, err := f.svc.TokenUser(ctx, secret); err != nil || u.Email != f.user.Email || id != tok.ID {
		t.Fatalf("token user: %v %d %v", u, id, err)
	}
	ts, _ := f.svc.Tokens(ctx)
	if len(ts) != 1 || ts[0].LastUsedAt == nil || ts[0].Name != "nightly" {
		t.Errorf("tokens %+v", ts)
	}
	if err := f.svc.RevokeToken(ctx, access.System, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.TokenUser(ctx, secret); err == nil {
		t.Error("revoked token accepted")
	}
	if err := f.svc.Record(ctx, auth.Event{Actor: "pm@x.example", ActorRole: "programme_manager", Action: "claims.submit",
		Target: "2021Q1", RequestID: "r1", Client: "127.0.0.1"}, nil); err != nil {
		t.Fatal(err)
	}
	auditor := access.User{Email: "a@x.example", Role: access.Auditor}
	evs, err := f.svc.Events(ctx, auditor, auth.AuditFilter{Action: "claims."})
	if err != nil || len(evs) != 1 || evs[0].Outcome != auth.OutcomeOK {
		t.Fatalf("events %v %+v", err, evs)
	}
	if _, err := f.svc.Events(ctx, access.User{Email: "f@x.example", Role: access.FinanceOfficer, Authority: "GB-NWP"}, auth.AuditFilter{}); err == nil {
		t.Error("a finance officer read the whole audit log")
	}
}

// TestTokensActForTheirCreator: a token acts as its user, so an admin creates tokens only for
// their own account (AU5); minting one for a programme manager would let the admin act on
// claims as that manager. The operator at the console (System) still creates them for anyone.
func TestTokensActForTheirCreator(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	admin := f.addAdmin(t)
	if _, _, err := f.svc.CreateToken(ctx, admin, f.user.Email, "act as the manager"); apperr.CodeOf(err) != apperr.Forbidden ||
		apperr.RuleOf(err) != auth.RuleOwnToken {
		t.Errorf("an admin created a token for a programme manager: %v", err)
	}
	if _, _, err := f.svc.CreateToken(ctx, admin, "nobody@x.example", "x"); apperr.RuleOf(err) != auth.RuleOwnToken {
		t.Errorf("an admin created a token for an unknown email: %v", err)
	}
	secret, tok, err := f.svc.CreateToken(ctx, admin, " Admin@X.example ", "user provisioning")
	if err != nil {
		t.Fatalf("an admin's token for their own account: %v", err)
	}
	if u, id, err := f.svc.TokenUser(ctx, secret); err != nil || u.Email != admin.Email || u.Role != access.Admin || id != tok.ID {
		t.Errorf("own token acts as %v (token %d), %v", u, id, err)
	}
	if _, tok, err := f.svc.CreateToken(ctx, access.System, f.user.Email, "nightly"); err != nil || tok.User != f.user.Email {
		t.Errorf("the operator's token for a programme manager: %+v %v", tok, err)
	}
	// A token an admin made for a programme manager before AU5 no longer acts.
	var before string
	if err := f.pool.QueryRow(ctx, `WITH u AS (SELECT id FROM app_user WHERE email = $1)
		INSERT INTO api_token (operation_id, user_id, name, hash, created_at, created_by)
		SELECT $2, u.id, 'made before AU5', sha256('infuse_t_before'::bytea), now(), $3 FROM u RETURNING name`,
		f.user.Email, f.svc.OperationID(), admin.Email).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.TokenUser(ctx, "infuse_t_before"); apperr.CodeOf(err) != apperr.Unauthenticated || apperr.RuleOf(err) != auth.RuleOwnToken {
		t.Errorf("a token an admin made for a programme manager acts: %v", err)
	}
	ts, _ := f.svc.Tokens(ctx)
	if len(ts) != 3 {
		t.Errorf("tokens %+v", ts)
	}
}

// TestAccountEvents: an admin reads the audit log's sign-ins and changes to users and tokens,
// never the rest of it, which carries claim figures; the whole log is verify_ledger's.
func TestAccountEvents(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	for _, a := range []string{"signin", "signout", "users.add", "users.password", "tokens.create", "tokens.revoke",
		"claims.submit", "import.time", "ledger.verify", "signing", "usersx"} {
		if err := f.svc.Record(ctx, auth.Event{Actor: "x@x.example", Action: a, Target: "t", Detail: map[string]any{"esf_due": "1.00"}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	admin := access.User{Email: "admin@x.example", Role: access.Admin}
	evs, err := f.svc.AccountEvents(ctx, admin, auth.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Action)
	}
	if strings.Join(got, " ") != "tokens.revoke tokens.create users.password users.add signout signin" {
		t.Errorf("account events %v", got)
	}
	if evs, err := f.svc.AccountEvents(ctx, admin, auth.AuditFilter{Action: "tokens."}); err != nil || len(evs) != 2 {
		t.Errorf("account events of tokens: %d %v", len(evs), err)
	}
	if evs, err := f.svc.AccountEvents(ctx, admin, auth.AuditFilter{Action: "claims."}); err != nil || len(evs) != 0 {
		t.Errorf("account events of claims: %d %v", len(evs), err)
	}
	if _, err := f.svc.Events(ctx, admin, auth.AuditFilter{}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("an admin read the whole audit log: %v", err)
	}
	if _, err := f.svc.AccountEvents(ctx, f.user, auth.AuditFilter{}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("a programme manager read the account events: %v", err)
	}
}

// A burst of sign-ins sent at once is throttled as the same attempts sent one after another: each
// counts the failures of those before it, on one account from many clients and from one client
// on many accounts.
func TestThrottleHoldsForABurst(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	burst := func(n int, email, client func(i int) string) (tried int) {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = f.svc.SignIn(ctx, email(i), "whatever password", client(i), "") })
		}
		wg.Wait()
		for _, err := range errs {
			switch apperr.RuleOf(err) {
			case auth.RuleSignIn:
				tried++
			case auth.RuleThrottle:
			default:
				t.Errorf("sign-in in a burst: %v", err)
			}
		}
		return tried
	}
	if tried := burst(12, func(int) string { return "pm@x.example" }, func(i int) string { return fmt.Sprintf("10.0.1.%d", i) }); tried != 5 {
		t.Errorf("%d of a burst of 12 wrong passwords for one account were tried; want 5, the limit", tried)
	}
	if tried := burst(60, func(i int) string { return fmt.Sprintf("u%d@x.example", i) }, func(int) string { return "10.0.2.1" }); tried != 50 {
		t.Errorf("%d of a burst of 60 sign-ins from one client were tried; want 50, the limit", tried)
	}
	// The account's right password, once the window has passed, signs in and clears its failures.
	*f.now = f.now.Add(16 * time.Minute)
	if _, err := f.svc.SignIn(ctx, "pm@x.example", "the right password", "10.0.3.1", ""); err != nil {
		t.Fatalf("right password after the window: %v", err)
	}
	var ok int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM signin_attempt WHERE client = '10.0.3.1' AND ok`).Scan(&ok); err != nil || ok != 1 {
		t.Errorf("the successful attempt is recorded ok %d times (%v); want once", ok, err)
	}
}

// A sign-in with an email longer than any user's is refused as a wrong one, and what it records
// is cut to the longest an email can be, at a character.
func TestSignInWithAnOverlongEmail(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	long := "p@x.example" + strings.Repeat("ŵ", 100_000) // 11 bytes, then two a character: 320 falls inside one
	if _, err := f.svc.SignIn(ctx, long, "the right password", "10.0.0.9", ""); apperr.RuleOf(err) != auth.RuleSignIn {
		t.Fatalf("sign-in with a long email: %v", err)
	}
	var stored string
	if err := f.pool.QueryRow(ctx, `SELECT email FROM signin_attempt WHERE client = '10.0.0.9'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != access.SignInEmail(long) || len(stored) > access.MaxEmail || !utf8.ValidString(stored) {
		t.Errorf("recorded email of %d bytes, valid UTF-8 %v", len(stored), utf8.ValidString(stored))
	}
}

// TestDisablingAUser: a disabled user (a leaver) is signed out everywhere at once, their tokens
// stop, and they cannot sign in (AU6, told only to whoever knows the password) or be given a
// token; enabling them lets them sign in anew, but revoked tokens stay revoked. Nobody disables
// their own account, and only those who manage users disable anyone.
func TestDisablingAUser(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	admin := f.addAdmin(t)
	sess, err := f.svc.SignIn(ctx, f.user.Email, "the right password", "192.0.2.1", "")
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := f.svc.CreateToken(ctx, access.System, f.user.Email, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.TokenUser(ctx, secret); err != nil { // cached now
		t.Fatal(err)
	}

	if _, err := f.svc.SetDisabled(ctx, f.user, admin.Email, true); apperr.RuleOf(err) != access.RuleRole {
		t.Errorf("a programme manager disabled an admin: %v", err)
	}
	if _, err := f.svc.SetDisabled(ctx, admin, admin.Email, true); apperr.RuleOf(err) != auth.RuleDisabled {
		t.Errorf("an admin disabled their own account: %v", err)
	}
	if _, err := f.svc.SetDisabled(ctx, admin, "nobody@x.example", true); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("disabling an unknown user: %v", err)
	}
	u, err := f.svc.SetDisabled(ctx, admin, f.user.Email, true)
	if err != nil || !u.Disabled() || !u.DisabledAt.Equal(*f.now) || u.DisabledBy != admin.Email {
		t.Fatalf("disabled: %+v, %v", u, err)
	}
	*f.now = f.now.Add(time.Hour)
	if again, err := f.svc.SetDisabled(ctx, admin, f.user.Email, true); err != nil || !again.DisabledAt.Equal(*u.DisabledAt) {
		t.Errorf("disabling again moved the date: %+v, %v", again, err)
	}

	if _, err := f.svc.SessionByID(ctx, sess.ID); apperr.RuleOf(err) != auth.RuleSession {
		t.Errorf("the disabled user's session still works: %v", err)
	}
	if _, _, err := f.svc.TokenUser(ctx, secret); apperr.RuleOf(err) != auth.RuleSession {
		t.Errorf("the disabled user's token still works: %v", err)
	}
	if _, err := f.svc.SignIn(ctx, f.user.Email, "the right password", "192.0.2.1", ""); apperr.RuleOf(err) != auth.RuleDisabled ||
		!strings.Contains(apperr.Public(err), "disabled on 2022-03-01 by admin@x.example") {
		t.Errorf("a disabled user with the right password: %v", err)
	}
	if _, err := f.svc.SignIn(ctx, f.user.Email, "a wrong password", "192.0.2.1", ""); apperr.RuleOf(err) != auth.RuleSignIn {
		t.Errorf("a disabled user with a wrong password must get the one answer of AU1: %v", err)
	}
	if _, _, err := f.svc.CreateToken(ctx, access.System, f.user.Email, "another"); apperr.RuleOf(err) != auth.RuleDisabled {
		t.Errorf("a token for a disabled user: %v", err)
	}
	users, err := access.Users(ctx, f.pool, f.svc.OperationID())
	if err != nil || len(users) != 2 || !users[1].Disabled() || users[0].Disabled() {
		t.Errorf("users listed %+v, %v", users, err)
	}

	if u, err := f.svc.SetDisabled(ctx, admin, f.user.Email, false); err != nil || u.Disabled() || u.DisabledBy != "" {
		t.Fatalf("enabled: %+v, %v", u, err)
	}
	if _, err := f.svc.SignIn(ctx, f.user.Email, "the right password", "192.0.2.1", ""); err != nil {
		t.Errorf("an enabled user cannot sign in: %v", err)
	}
	if _, _, err := f.svc.TokenUser(ctx, secret); err == nil {
		t.Error("enabling a user brought back a token revoked when they were disabled")
	}
}

// TestDisablingRacesNothingPastIt: what is made for a user while they are being disabled is
// made under a lock of their row, so a token whose user was disabled after it was checked is
// refused, not left live to come back on enabling; and an administrator disabled meanwhile
// cannot go on to disable another (two disabling each other would leave none).
func TestDisablingRacesNothingPastIt(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	admin := f.addAdmin(t)
	// A second service on the same database whose clock, once armed, disables the manager
	// through the first: CreateToken reads its clock after checking the user, before writing.
	var armed atomic.Bool
	racing, err := auth.New(f.pool, auth.Config{OperationID: f.svc.OperationID(), Params: cheap, Now: func() time.Time {
		if armed.CompareAndSwap(true, false) {
			if _, err := f.svc.SetDisabled(ctx, admin, f.user.Email, true); err != nil {
				t.Error(err)
			}
		}
		return *f.now
	}})
	if err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	if _, _, err := racing.CreateToken(ctx, access.System, f.user.Email, "made while disabled"); apperr.RuleOf(err) != auth.RuleDisabled {
		t.Errorf("a token made while its user was disabled: %v", err)
	}
	if _, err := f.svc.SetDisabled(ctx, admin, f.user.Email, false); err != nil {
		t.Fatal(err)
	}
	if ts, err := f.svc.Tokens(ctx); err != nil || len(ts) != 0 {
		t.Errorf("tokens after enabling: %+v, %v", ts, err)
	}

	other, err := access.AddUser(ctx, f.pool, f.svc.OperationID(), access.System,
		access.User{Email: "admin2@x.example", Name: "A T", Role: access.Admin}, nil, *f.now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetDisabled(ctx, other, admin.Email, true); err != nil {
		t.Fatal(err)
	}
	// admin still holds the user it was loaded as (enabled): the step reads it afresh.
	if _, err := f.svc.SetDisabled(ctx, admin, other.Email, true); apperr.RuleOf(err) != auth.RuleDisabled {
		t.Errorf("a disabled administrator disabled another: %v", err)
	}
	users, _ := access.Users(ctx, f.pool, f.svc.OperationID())
	for _, u := range users {
		if u.Email == other.Email && u.Disabled() {
			t.Errorf("%s was disabled by a disabled administrator", u.Email)
		}
	}
}
