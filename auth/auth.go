// Package auth knows who is calling: passwords (argon2id), sign-in with throttling and without
// user enumeration, server-side sessions for people, bearer tokens for scripts, and the
// append-only audit log. What a caller may then do is package access's decision (access.Can);
// who the users are (email, name, role, authority) is access's table too.
//
// Rule ids carried by its errors:
//
//	AU1  sign-in needs a known email and its password (one answer for both failures)
//	AU2  a password has 12 to 256 characters
//	AU3  sign-in is refused for a while after repeated failures, per account and per client
//	AU4  a session or token must be current: not expired, idle too long or revoked
//	AU5  a token is created for the account of the person creating it; only the operator at the
//	     server's console (access.System: `infuse tokens create --email`) creates one for another
//	AU6  a disabled user cannot sign in or act; their sessions and tokens end when they are
//	     disabled, and nobody disables their own account
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
)

// Rule ids of this package (see the package comment).
const (
	RuleSignIn   = "AU1"
	RulePassword = "AU2"
	RuleThrottle = "AU3"
	RuleSession  = "AU4"
	RuleOwnToken = "AU5"
	RuleDisabled = access.RuleDisabled
)

func init() {
	db.RegisterConstraint("user_password_hash_ck", db.Constraint{Code: apperr.Invalid, Rule: RulePassword,
		Message: "a password must be stored as an argon2id hash"})
	db.RegisterConstraint("api_token_name_ck", db.Constraint{Code: apperr.Invalid, Rule: apperr.RuleFormat,
		Message: "a token needs a name of at most 200 characters"})
}

// Config configures a Service. Zero fields take the defaults named.
type Config struct {
	OperationID string
	Now         func() time.Time // default time.Now
	Logger      *slog.Logger
	Params      Params        // default DefaultParams
	SessionTTL  time.Duration // absolute lifetime of a session, default 12h
	IdleTimeout time.Duration // a session unused this long ends, default 2h
	// Throttling (AU3): more than MaxAccountFailures failed sign-ins for one email since its last
	// success, or more than MaxClientFailures from one client address, within FailureWindow,
	// refuse further attempts until the window has passed. Defaults 5, 50 and 15 minutes.
	MaxAccountFailures int
	MaxClientFailures  int
	FailureWindow      time.Duration
}

// Service signs people in and keeps sessions, tokens and the audit log of one operation.
type Service struct {
	pool  *pgxpool.Pool
	op    string
	cfg   Config
	dummy string // a hash verified for unknown users, so they cost what a wrong password costs

	// tokens caches recently checked tokens for tokenCacheTTL, so that a script's burst of
	// requests costs one lookup, not one per request. RevokeToken empties it, so revocation is
	// immediate on this instance and takes at most tokenCacheTTL on others.
	mu     sync.Mutex
	tokens map[string]cachedToken
}

// tokenCacheTTL bounds how long another instance may still accept a revoked token.
const tokenCacheTTL = 2 * time.Second

type cachedToken struct {
	user  access.User
	id    int64
	until time.Time
}

// New returns the auth service of cfg.OperationID on pool.
func New(pool *pgxpool.Pool, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Hour
	}
	if cfg.MaxAccountFailures <= 0 {
		cfg.MaxAccountFailures = 5
	}
	if cfg.MaxClientFailures <= 0 {
		cfg.MaxClientFailures = 50
	}
	if cfg.FailureWindow <= 0 {
		cfg.FailureWindow = 15 * time.Minute
	}
	dummy, err := HashPassword("not anyone's password, only spent time", cfg.Params)
	if err != nil {
		return nil, err
	}
	return &Service{pool: pool, op: cfg.OperationID, cfg: cfg, dummy: dummy, tokens: map[string]cachedToken{}}, nil
}

// OperationID returns the operation whose users the service signs in.
func (s *Service) OperationID() string { return s.op }

func (s *Service) stamp() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// newSecret returns 256 random bits, base64url-encoded, with prefix.
func newSecret(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", apperr.Wrap("auth.newSecret", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func digest(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// SetPassword sets the password of the user with email, as by (who must be allowed to
// manage_users, or be that user).
func (s *Service) SetPassword(ctx context.Context, by access.User, email, password string) error {
	u, err := access.UserByEmail(ctx, s.pool, s.op, email)
	if err != nil {
		return err
	}
	if by.Email != u.Email {
		if err := access.Can(by, access.ManageUsers, ""); err != nil {
			return err
		}
	}
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := HashPassword(password, s.cfg.Params)
	if err != nil {
		return err
	}
	// A new password ends the user's sessions everywhere, in the same transaction: never a new
	// password with the old sessions still signed in.
	at := s.stamp()
	return db.Translate("auth.SetPassword", db.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO user_password (operation_id, user_id, hash, set_at, set_by)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (operation_id, user_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at, set_by = excluded.set_by`,
			s.op, u.ID, hash, at, by.Email); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE web_session SET revoked_at = $3
			WHERE operation_id = $1 AND user_id = $2 AND revoked_at IS NULL`, s.op, u.ID, at)
		return err
	}))
}

// UserToDisable returns the user with email, whom by asks to disable, after the checks
// SetDisabled makes before its transaction: by may manage users, the user exists, and it is not
// by (AU6). A page shows the user for confirmation with it.
func (s *Service) UserToDisable(ctx context.Context, by access.User, email string) (access.User, error) {
	return s.target(ctx, by, email, true)
}

// target is the user with email whom by asks to disable (disable true) or enable.
func (s *Service) target(ctx context.Context, by access.User, email string, disable bool) (access.User, error) {
	if err := access.Can(by, access.ManageUsers, ""); err != nil {
		return access.User{}, err
	}
	u, err := access.UserByEmail(ctx, s.pool, s.op, email)
	if err != nil {
		return access.User{}, err
	}
	if disable && u.Email == by.Email {
		return access.User{}, apperr.New(apperr.Forbidden, RuleDisabled, "%s cannot disable their own account: another administrator must", by.Email)
	}
	return u, nil
}

// SetDisabled disables the user with email (disabled true) or enables them again, as by (who
// must be allowed to manage_users), and returns the user as they now are. Disabling ends the
// user's sessions and revokes their tokens in the same transaction: a leaver's open browser or
// script stops at once. Enabling brings neither back; the user signs in again, and makes new
// tokens. Disabling a disabled user, or enabling an enabled one, changes nothing. Nobody
// disables their own account: an administrator who did would lock themselves out (AU6).
func (s *Service) SetDisabled(ctx context.Context, by access.User, email string, disabled bool) (access.User, error) {
	u, err := s.target(ctx, by, email, disabled)
	if err != nil {
		return access.User{}, err
	}
	at := s.stamp()
	err = db.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		// The target's and the actor's rows are locked (in id order, as every such step takes
		// them), and the actor must still be enabled: two administrators disabling each other at
		// once would otherwise both succeed. Sessions and tokens are made under a share lock of
		// their user's row (SignIn, CreateToken), so none is made past this step unrevoked.
		rows, err := tx.Query(ctx, `SELECT id, disabled_at IS NOT NULL FROM app_user
			WHERE operation_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE`, s.op, []int64{u.ID, by.ID})
		if err != nil {
			return err
		}
		var id int64
		var off bool
		if _, err := pgx.ForEachRow(rows, []any{&id, &off}, func() error {
			if id == by.ID && off {
				return access.ErrDisabled(access.User{Email: by.Email})
			}
			return nil
		}); err != nil {
			return err
		}
		if !disabled {
			u, err = access.ScanUser(tx.QueryRow(ctx, `UPDATE app_user u SET disabled_at = NULL, disabled_by = NULL
				WHERE u.operation_id = $1 AND u.id = $2 RETURNING `+access.UserColumns, s.op, u.ID))
			return err
		}
		u, err = access.ScanUser(tx.QueryRow(ctx, `UPDATE app_user u SET disabled_at = coalesce(u.disabled_at, $3),
			disabled_by = coalesce(u.disabled_by, $4) WHERE u.operation_id = $1 AND u.id = $2 RETURNING `+access.UserColumns,
			s.op, u.ID, at, by.Email))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE web_session SET revoked_at = $3
			WHERE operation_id = $1 AND user_id = $2 AND revoked_at IS NULL`, s.op, u.ID, at); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE api_token SET revoked_at = $3, revoked_by = $4
			WHERE operation_id = $1 AND user_id = $2 AND revoked_at IS NULL`, s.op, u.ID, at, by.Email)
		return err
	})
	if err != nil {
		return access.User{}, db.Translate("auth.SetDisabled", err)
	}
	s.mu.Lock()
	clear(s.tokens)
	s.mu.Unlock()
	return u, nil
}

// Session is a signed-in person's session. ID is the secret of the cookie; it is known only
// when the session is created or looked up by it, and never stored.
type Session struct {
	ID        string
	User      access.User
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CSRFToken returns the session's synchronizer token for forms and unsafe requests: derived
// from the session's secret, so it needs no storage, cannot be computed without the (HttpOnly)
// cookie, and changes with every sign-in.
func (s Session) CSRFToken() string {
	h := sha256.Sum256([]byte("infuse-csrf\x00" + s.ID))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// errSignIn is the one answer to an unknown email and a wrong password (no enumeration).
func errSignIn() error {
	return apperr.New(apperr.Unauthenticated, RuleSignIn, "the email address or password is not right")
}

// SignIn checks email and password from client (the caller's address) and starts a session.
// Unknown users and wrong passwords get the same answer after the same work (an argon2id
// verification either way). Too many failures refuse the attempt (AU3) whatever the password.
// previous, the session id the caller presented (if any), is revoked: a sign-in always starts a
// fresh session (no session fixation).
func (s *Service) SignIn(ctx context.Context, email, password, client, previous string) (Session, error) {
	email = access.SignInEmail(email)
	var attempt int64
	var now time.Time
	var refusal error
	err := db.WithTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
		attempt, now, refusal, err = s.count(ctx, tx, email, client)
		return err
	})
	if err != nil {
		return Session{}, db.Translate("auth.SignIn", err)
	}
	if refusal != nil {
		return Session{}, refusal
	}

	// The password is checked with no connection held: it takes an argon2id verification.
	var hash *string
	u, err := access.ScanUser(s.pool.QueryRow(ctx, `SELECT `+access.UserColumns+`, p.hash FROM app_user u
		LEFT JOIN user_password p ON p.operation_id = u.operation_id AND p.user_id = u.id
		WHERE u.operation_id = $1 AND u.email = $2`, s.op, email), &hash)
	known := err == nil && hash != nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Session{}, db.Translate("auth.SignIn", err)
	}
	ok := false
	if known {
		ok, err = VerifyPassword(*hash, password)
		if err != nil {
			s.cfg.Logger.Error("stored password hash unreadable", "email", email, "err", err)
			ok = false
		}
	} else {
		_, _ = VerifyPassword(s.dummy, password) // spend the same time as for a known user
	}
	if !ok {
		return Session{}, errSignIn()
	}
	if u.Disabled() { // told only to whoever knows the password; the attempt stays a failure
		return Session{}, access.ErrDisabled(u)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE signin_attempt SET ok = true WHERE operation_id = $1 AND id = $2`, s.op, attempt); err != nil {
		return Session{}, db.Translate("auth.SignIn", err)
	}
	if previous != "" {
		if err := s.SignOut(ctx, previous); err != nil {
			return Session{}, err
		}
	}
	id, err := newSecret("")
	if err != nil {
		return Session{}, err
	}
	sess := Session{ID: id, User: u, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	// Only for a user still enabled, under a share lock of their row: a disable that commits
	// while the password was checked would otherwise miss this session (SetDisabled).
	tag, err := s.pool.Exec(ctx, `INSERT INTO web_session (operation_id, id_hash, user_id, created_at, last_seen_at, expires_at, client)
		SELECT u.operation_id, $2, u.id, $4, $4, $5, $6 FROM app_user u
		 WHERE u.operation_id = $1 AND u.id = $3 AND u.disabled_at IS NULL FOR SHARE OF u`, s.op, digest(id), u.ID, now, sess.ExpiresAt, client)
	if err != nil {
		return Session{}, db.Translate("auth.SignIn", err)
	}
	if tag.RowsAffected() == 0 {
		return Session{}, access.ErrDisabled(access.User{Email: u.Email})
	}
	return sess, nil
}

// count counts the recent failures of a sign-in's account and client, in tx, and records the
// attempt as failed (at now, its time) until its password proves right. It returns the attempt's
// id, or the refusal when there were too many failures (AU3).
//
// Attempts on one account, and from one client, are counted one at a time: counted apart, a
// burst of attempts sent at once would each find the failures before the burst, and all be
// tried. Each is recorded before the next is counted, so it counts as a failure until shown
// otherwise. The locks are taken account first, then client, in every attempt, so that two
// attempts never deadlock.
func (s *Service) count(ctx context.Context, tx pgx.Tx, email, client string) (attempt int64, now time.Time, refusal, err error) {
	for _, key := range []string{"account " + email, "client " + client} {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "signin "+s.op+" "+key); err != nil {
			return 0, now, nil, err
		}
	}
	now = s.stamp()
	since := now.Add(-s.cfg.FailureWindow)
	var accountFails, clientFails int
	err = tx.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM signin_attempt a WHERE a.operation_id = $1 AND a.email = $2 AND a.at > $3 AND NOT a.ok
			AND a.at > coalesce((SELECT max(b.at) FROM signin_attempt b
				WHERE b.operation_id = $1 AND b.email = $2 AND b.ok), '-infinity')),
		(SELECT count(*) FROM signin_attempt WHERE operation_id = $1 AND client = $4 AND at > $3 AND NOT ok)`,
		s.op, email, since, client).Scan(&accountFails, &clientFails)
	if err != nil {
		return 0, now, nil, err
	}
	if err := tx.QueryRow(ctx, `INSERT INTO signin_attempt (operation_id, at, email, client, ok) VALUES ($1, $2, $3, $4, false)
		RETURNING id`, s.op, now, email, client).Scan(&attempt); err != nil {
		return 0, now, nil, err
	}
	if accountFails >= s.cfg.MaxAccountFailures || clientFails >= s.cfg.MaxClientFailures {
		refusal = apperr.New(apperr.Locked, RuleThrottle, "too many failed sign-ins: try again in %d minutes", int(s.cfg.FailureWindow.Minutes()))
	}
	return attempt, now, refusal, nil
}

func errSession() error {
	return apperr.New(apperr.Unauthenticated, RuleSession, "your session has ended: sign in again")
}

// SessionByID returns the current session whose secret is id: not revoked, not past its
// expiry, not idle longer than the idle timeout. It records the use at most once a minute.
func (s *Service) SessionByID(ctx context.Context, id string) (Session, error) {
	if id == "" || len(id) > 64 {
		return Session{}, errSession()
	}
	now := s.stamp()
	var lastSeen time.Time
	sess := Session{ID: id}
	u, err := access.ScanUser(s.pool.QueryRow(ctx, `SELECT `+access.UserColumns+`, s.created_at, s.expires_at, s.last_seen_at
		FROM web_session s JOIN app_user u ON u.operation_id = s.operation_id AND u.id = s.user_id
		WHERE s.operation_id = $1 AND s.id_hash = $2 AND s.revoked_at IS NULL AND s.expires_at > $3 AND s.last_seen_at > $4
		  AND u.disabled_at IS NULL`,
		s.op, digest(id), now, now.Add(-s.cfg.IdleTimeout)), &sess.CreatedAt, &sess.ExpiresAt, &lastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, errSession()
	}
	if err != nil {
		return Session{}, db.Translate("auth.SessionByID", err)
	}
	sess.User = u
	if now.Sub(lastSeen) > time.Minute {
		if _, err := s.pool.Exec(ctx, `UPDATE web_session SET last_seen_at = $3 WHERE operation_id = $1 AND id_hash = $2`,
			s.op, digest(id), now); err != nil {
			return Session{}, db.Translate("auth.SessionByID", err)
		}
	}
	return sess, nil
}

// SignOut revokes the session whose secret is id. An unknown or ended session is no error.
func (s *Service) SignOut(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE web_session SET revoked_at = $3
		WHERE operation_id = $1 AND id_hash = $2 AND revoked_at IS NULL`, s.op, digest(id), s.stamp())
	return db.Translate("auth.SignOut", err)
}

// HasPassword reports whether the user with email can sign in with a password.
func (s *Service) HasPassword(ctx context.Context, email string) (bool, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM user_password p JOIN app_user u
		ON u.operation_id = p.operation_id AND u.id = p.user_id WHERE u.operation_id = $1 AND u.email = $2`,
		s.op, access.NormalizeEmail(email)).Scan(&n)
	return n > 0, db.Translate("auth.HasPassword", err)
}

// tokenPrefix marks the service's bearer tokens, so that secret scanners can find leaked ones.
const tokenPrefix = "infuse_"

// Token is a bearer token for scripts, as listed (its secret is never stored).
type Token struct {
	ID         int64
	Name       string
	User       string // the email of the user it acts as
	Role       access.Role
	CreatedAt  time.Time
	CreatedBy  string
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	RevokedBy  string
}

// CreateToken creates a token named name acting as the user with email, as by (who must be
// allowed to manage_users), and returns its secret, which is shown once and never again.
//
// A token acts with its user's role and is audited as that user, so a token for someone else
// would let its creator act as them: an admin as a programme manager on claims, around "admin:
// not claims" and the four-eyes rule. Only the operator at the server's console (access.System),
// who holds the database anyway, creates a token for another user; anyone else only for their
// own account (AU5).
func (s *Service) CreateToken(ctx context.Context, by access.User, email, name string) (string, Token, error) {
	if err := access.Can(by, access.ManageUsers, ""); err != nil {
		return "", Token{}, err
	}
	if by.Role != access.SystemRole && access.NormalizeEmail(email) != by.Email {
		return "", Token{}, apperr.New(apperr.Forbidden, RuleOwnToken,
			"%s may create tokens only for their own account, not for %s: a token acts as its user", by.Email, email)
	}
	u, err := access.UserByEmail(ctx, s.pool, s.op, email)
	if err != nil {
		return "", Token{}, err
	}
	if u.Disabled() {
		return "", Token{}, access.ErrDisabled(u)
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = "token for " + u.Email
	}
	secret, err := newSecret(tokenPrefix)
	if err != nil {
		return "", Token{}, err
	}
	t := Token{Name: name, User: u.Email, Role: u.Role, CreatedAt: s.stamp(), CreatedBy: by.Email}
	// Only for a user still enabled, under a share lock of their row, as SignIn makes sessions.
	err = s.pool.QueryRow(ctx, `INSERT INTO api_token (operation_id, user_id, name, hash, created_at, created_by)
		SELECT u.operation_id, u.id, $3, $4, $5, $6 FROM app_user u
		 WHERE u.operation_id = $1 AND u.id = $2 AND u.disabled_at IS NULL FOR SHARE OF u
		RETURNING id`, s.op, u.ID, name, digest(secret), t.CreatedAt, t.CreatedBy).Scan(&t.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", Token{}, access.ErrDisabled(access.User{Email: u.Email})
	}
	if err != nil {
		return "", Token{}, db.Translate("auth.CreateToken", err)
	}
	return secret, t, nil
}

// TokenUser returns the user a current (unrevoked) token acts as and the token's id (for the
// audit log, so that what a token did can be told from what its user did in a session), and
// records its use at most once a minute.
func (s *Service) TokenUser(ctx context.Context, secret string) (access.User, int64, error) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 128 {
		return access.User{}, 0, apperr.New(apperr.Unauthenticated, RuleSession, "the token is not valid")
	}
	key := string(digest(secret))
	s.mu.Lock()
	c, ok := s.tokens[key]
	s.mu.Unlock()
	if ok && time.Now().Before(c.until) {
		return c.user, c.id, nil
	}
	now := s.stamp()
	var id int64
	var lastUsed *time.Time
	var createdBy string
	u, err := access.ScanUser(s.pool.QueryRow(ctx, `SELECT `+access.UserColumns+`, t.id, t.last_used_at, t.created_by
		FROM api_token t JOIN app_user u ON u.operation_id = t.operation_id AND u.id = t.user_id
		WHERE t.operation_id = $1 AND t.hash = $2 AND t.revoked_at IS NULL AND u.disabled_at IS NULL`, s.op, digest(secret)), &id, &lastUsed, &createdBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return access.User{}, 0, apperr.New(apperr.Unauthenticated, RuleSession, "the token is not valid or has been revoked")
	}
	if err != nil {
		return access.User{}, 0, db.Translate("auth.TokenUser", err)
	}
	// A token one user made for another before AU5 (CreateToken) would still let its creator act
	// as its user: it no longer acts.
	if createdBy != u.Email && createdBy != access.System.Email {
		return access.User{}, 0, apperr.New(apperr.Unauthenticated, RuleOwnToken,
			"the token was created for %s by %s, and a token acts only for the user who created it: %s must create their own", u.Email, createdBy, u.Email)
	}
	if lastUsed == nil || now.Sub(*lastUsed) > time.Minute {
		if _, err := s.pool.Exec(ctx, `UPDATE api_token SET last_used_at = $3 WHERE operation_id = $1 AND id = $2`,
			s.op, id, now); err != nil {
			return access.User{}, 0, db.Translate("auth.TokenUser", err)
		}
	}
	s.mu.Lock()
	if len(s.tokens) > 10000 {
		clear(s.tokens)
	}
	s.tokens[key] = cachedToken{user: u, id: id, until: time.Now().Add(tokenCacheTTL)}
	s.mu.Unlock()
	return u, id, nil
}

// Tokens lists every token, newest first.
func (s *Service) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT t.id, t.name, u.email, u.role, t.created_at, t.created_by, t.last_used_at,
		t.revoked_at, coalesce(t.revoked_by, '')
		FROM api_token t JOIN app_user u ON u.operation_id = t.operation_id AND u.id = t.user_id
		WHERE t.operation_id = $1 ORDER BY t.id DESC`, s.op)
	if err != nil {
		return nil, db.Translate("auth.Tokens", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) {
		var t Token
		var role string
		err := r.Scan(&t.ID, &t.Name, &t.User, &role, &t.CreatedAt, &t.CreatedBy, &t.LastUsedAt, &t.RevokedAt, &t.RevokedBy)
		t.Role = access.Role(role)
		return t, err
	})
	return out, db.Translate("auth.Tokens", err)
}

// RevokeToken revokes token id, as by (who must be allowed to manage_users).
func (s *Service) RevokeToken(ctx context.Context, by access.User, id int64) error {
	if err := access.Can(by, access.ManageUsers, ""); err != nil {
		return err
	}
	s.mu.Lock()
	clear(s.tokens)
	s.mu.Unlock()
	tag, err := s.pool.Exec(ctx, `UPDATE api_token SET revoked_at = $3, revoked_by = $4
		WHERE operation_id = $1 AND id = $2 AND revoked_at IS NULL`, s.op, id, s.stamp(), by.Email)
	if err != nil {
		return db.Translate("auth.RevokeToken", err)
	}
	if tag.RowsAffected() == 0 {
		return apperr.New(apperr.NotFound, apperr.RuleRef, "there is no current token %d", id)
	}
	return nil
}

// DemoPassword is the password `infuse demo` gives its users, one per role, so that `make run`
// can print a sign-in for each. It is never used outside demo data: serve prints a demo sign-in
// only for users whose password it actually is.
const DemoPassword = "infuse-demo-password"

// PasswordIs reports whether password is the password of the user with email. It neither
// throttles nor records an attempt: it is for the operator's console (serve's demo sign-ins),
// never for a caller over the network.
func (s *Service) PasswordIs(ctx context.Context, email, password string) (bool, error) {
	var hash string
	err := s.pool.QueryRow(ctx, `SELECT p.hash FROM user_password p JOIN app_user u
		ON u.operation_id = p.operation_id AND u.id = p.user_id WHERE u.operation_id = $1 AND u.email = $2`,
		s.op, access.NormalizeEmail(email)).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, db.Translate("auth.PasswordIs", err)
	}
	return VerifyPassword(hash, password)
}
