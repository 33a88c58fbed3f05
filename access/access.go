// Package access knows who may do what: the users of an operation (email, name, role and, for a
// finance officer, the authority they work for), stored in the database, and Can, the one place
// where an authorisation decision is made. Every other package asks Can; none decides for
// itself.
//
// Rule ids carried by its errors:
//
//	A1  a role may do only the actions the role matrix (below) gives it
//	A2  a user has a valid email, a name, a known role, and an authority exactly when a finance officer
//	V8  a finance officer acts only for officers and lines of their own authority (domain.md §4)
//
// The role matrix (architecture.md, "Roles"; domain.md §7 for the claim lifecycle):
//
//	action               finance_officer  programme_manager  auditor  admin  system
//	record_time          own authority    yes                -        -      yes
//	import_officers      own authority    yes                -        -      yes
//	import_time          own authority    yes                -        -      yes
//	record_expenditure   -                yes                -        -      yes
//	import_expenditure   -                yes                -        -      yes
//	correct              own authority    yes                -        -      yes
//	compile_claim        -                yes                -        -      yes
//	review_claim         yes              yes                -        -      -
//	submit_claim         -                yes                -        -      -
//	record_decision      -                yes                -        -      -
//	record_payment       -                yes                -        -      -
//	read_records         own authority    yes                yes      -      yes
//	read_claims          yes              yes                yes      -      yes
//	download_pack        -                yes                yes      -      yes
//	verify_ledger        -                yes                yes      -      yes
//	read_account_audit   -                -                  -        yes    yes
//	manage_users         -                -                  -        yes    yes
//
// A claim pack lists every authority's officers with their employment costs and hours, so only
// the roles that see every authority's figures download it; a finance officer reads a claim's
// figures and its drill-down, where officer time is their own authority's only.
//
// verify_ledger opens the ledger's entries and the whole audit log, which carry claim figures,
// so an admin ("users, tokens, programme settings; not claims") does not have it. An admin reads
// read_account_audit instead: the audit log's sign-ins, sign-outs and changes to users and
// tokens only, which is what administering them needs.
//
// "system" is not a role a user can hold: it is the service acting on its own (the claim
// scheduler) and the operator at the server's command line when no --as is given (whoever runs
// infuse there holds the database anyway, so it is no security boundary). It never reviews,
// submits or records WEFO's decisions, which need a named person.
package access

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
)

// Rule ids of this package (see the package comment).
const (
	RuleRole = "A1"
	RuleUser = "A2"
	RuleV8   = "V8"
	// RuleDisabled is package auth's AU6 (a disabled user neither signs in nor acts), which Can
	// also keeps: a disabled user loaded by any path may do nothing.
	RuleDisabled = "AU6"
)

// Role is what a user is allowed to do, by the matrix.
type Role string

// The roles of architecture.md, and System for the service itself.
const (
	FinanceOfficer   Role = "finance_officer"
	ProgrammeManager Role = "programme_manager"
	Auditor          Role = "auditor"
	Admin            Role = "admin"
	SystemRole       Role = "system"
)

// Roles returns every role a user may hold, in the matrix's order.
func Roles() []Role { return []Role{FinanceOfficer, ProgrammeManager, Auditor, Admin} }

// Action is something a user asks to do.
type Action string

// The actions of the matrix.
const (
	RecordTime        Action = "record_time"
	ImportOfficers    Action = "import_officers"
	ImportTime        Action = "import_time"
	RecordExpenditure Action = "record_expenditure"
	ImportExpenditure Action = "import_expenditure"
	Correct           Action = "correct"
	CompileClaim      Action = "compile_claim"
	ReviewClaim       Action = "review_claim"
	SubmitClaim       Action = "submit_claim"
	RecordDecision    Action = "record_decision"
	RecordPayment     Action = "record_payment"
	ReadRecords       Action = "read_records" // officers, rate versions and time entries of an authority
	ReadClaims        Action = "read_claims"
	DownloadPack      Action = "download_pack"
	VerifyLedger      Action = "verify_ledger"
	ReadAccountAudit  Action = "read_account_audit" // the audit log's sign-ins and changes to users and tokens
	ManageUsers       Action = "manage_users"
)

// Actions returns every action, in the matrix's order.
func Actions() []Action {
	return []Action{RecordTime, ImportOfficers, ImportTime, RecordExpenditure, ImportExpenditure, Correct,
		CompileClaim, ReviewClaim, SubmitClaim, RecordDecision, RecordPayment, ReadRecords, ReadClaims, DownloadPack,
		VerifyLedger, ReadAccountAudit, ManageUsers}
}

// grant is one cell of the matrix.
type grant int

const (
	no  grant = iota
	yes       // for any authority
	own       // only for the user's own authority (V8)
)

// matrix is the role matrix of the package comment. A missing cell is no.
var matrix = map[Role]map[Action]grant{
	FinanceOfficer: {
		RecordTime: own, ImportOfficers: own, ImportTime: own, Correct: own,
		ReviewClaim: yes, ReadRecords: own, ReadClaims: yes,
	},
	ProgrammeManager: {
		RecordTime: yes, ImportOfficers: yes, ImportTime: yes, RecordExpenditure: yes, ImportExpenditure: yes,
		Correct: yes, CompileClaim: yes, ReviewClaim: yes, SubmitClaim: yes, RecordDecision: yes,
		RecordPayment: yes, ReadRecords: yes, ReadClaims: yes, DownloadPack: yes, VerifyLedger: yes,
	},
	Auditor: {ReadRecords: yes, ReadClaims: yes, DownloadPack: yes, VerifyLedger: yes},
	Admin:   {ReadAccountAudit: yes, ManageUsers: yes},
	SystemRole: {
		RecordTime: yes, ImportOfficers: yes, ImportTime: yes, RecordExpenditure: yes, ImportExpenditure: yes,
		Correct: yes, CompileClaim: yes, ReadRecords: yes, ReadClaims: yes, DownloadPack: yes, VerifyLedger: yes,
		ReadAccountAudit: yes, ManageUsers: yes,
	},
}

// User is a person who signs in (or is named with --as), or System.
type User struct {
	ID        int64
	Email     string
	Name      string
	Role      Role
	Authority string // the finance officer's authority; "" for the other roles
	CreatedAt time.Time
	CreatedBy string
	// DisabledAt, when set, is when the user was disabled (by DisabledBy): they can no longer
	// sign in or act, and their sessions and tokens ended then.
	DisabledAt *time.Time
	DisabledBy string
}

// Disabled reports whether the user is disabled.
func (u User) Disabled() bool { return u.DisabledAt != nil }

// ErrDisabled is the refusal of anything the disabled user u would do (AU6): when and by whom
// they were disabled, if u says.
func ErrDisabled(u User) error {
	if u.DisabledAt == nil {
		return apperr.New(apperr.Forbidden, RuleDisabled, "the account %s has been disabled: ask an administrator to enable it", u.Email)
	}
	return apperr.New(apperr.Forbidden, RuleDisabled, "the account %s was disabled on %s by %s: ask an administrator to enable it",
		u.Email, u.DisabledAt.Format("2006-01-02"), u.DisabledBy)
}

// System is the service acting on its own, and the command-line operator without --as.
var System = User{Email: "system", Name: "system", Role: SystemRole}

// Can decides whether u may do a, for authority (an ISO code such as GB-NWP; "" when the action
// concerns no particular authority, which checks the role alone). It returns nil or a forbidden
// error naming the rule: A1 when the role may not do the action at all, V8 when a finance
// officer acts for another authority; AU6 for a disabled user, whatever the action.
func Can(u User, a Action, authority string) error {
	if u.Disabled() {
		return ErrDisabled(u)
	}
	g := matrix[u.Role][a]
	if u.Email == "" {
		g = no
	}
	switch g {
	case yes:
		return nil
	case own:
		if authority == "" || authority == u.Authority {
			return nil
		}
		return apperr.New(apperr.Forbidden, RuleV8,
			"%s is a finance officer of %s and may act only for %s, not for %s", who(u), u.Authority, u.Authority, authority)
	}
	return apperr.New(apperr.Forbidden, RuleRole, "%s (%s) may not %s", who(u), roleText(u.Role), actionText(a))
}

func who(u User) string {
	if u.Email == "" {
		return "an unnamed user"
	}
	return u.Email
}

// roleText names a role in messages, as words a catalogue translates.
func roleText(r Role) apperr.Phrase {
	switch r {
	case FinanceOfficer:
		return "finance officer"
	case ProgrammeManager:
		return "programme manager"
	case Auditor:
		return "auditor"
	case Admin:
		return "admin"
	case SystemRole:
		return "system"
	case "":
		return "no role"
	}
	return apperr.Phrase(strings.ReplaceAll(string(r), "_", " "))
}

// actionText names an action in messages, as words a catalogue translates.
func actionText(a Action) apperr.Phrase {
	switch a {
	case RecordTime:
		return "record officer time"
	case ImportOfficers:
		return "import officers"
	case ImportTime:
		return "import officer time"
	case RecordExpenditure:
		return "record expenditure"
	case ImportExpenditure:
		return "import expenditure"
	case Correct:
		return "correct recorded lines"
	case CompileClaim:
		return "compile claims"
	case ReviewClaim:
		return "review claims"
	case SubmitClaim:
		return "submit claims"
	case RecordDecision:
		return "record WEFO's decision on a claim"
	case RecordPayment:
		return "record the payment of a claim"
	case ReadRecords:
		return "read officers and their time"
	case ReadClaims:
		return "read claims"
	case DownloadPack:
		return "download claim packs"
	case VerifyLedger:
		return "verify the ledger"
	case ReadAccountAudit:
		return "read the audit log of sign-ins, users and tokens"
	case ManageUsers:
		return "manage users"
	}
	return apperr.Phrase(a)
}

var (
	emailPattern     = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)
	authorityPattern = regexp.MustCompile(`^GB-[A-Z]{3}$`)
)

// NormalizeEmail returns the form an email is stored and compared in: trimmed, lower case.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// MaxEmail is the longest email address a user may have, in bytes (RFC 5321: a local part of 64
// and a domain of 255).
const MaxEmail = 320

// SignInEmail is what a sign-in looks up and records of the email typed at it: normalised, and
// cut to MaxEmail bytes at a character. No user's is longer, and a sign-in must not store
// whatever a stranger sends.
func SignInEmail(s string) string { return db.Clip(NormalizeEmail(s), MaxEmail) }

func init() {
	for _, c := range []string{"app_user_email_ck", "app_user_email_length_ck", "app_user_name_ck", "app_user_no_controls_ck", "app_user_role_ck", "app_user_authority_ck",
		"app_user_authority_format_ck"} {
		db.RegisterConstraint(c, db.Constraint{Code: apperr.Invalid, Rule: RuleUser,
			Message: "a user needs a valid email, a name, a role, and an authority exactly when a finance officer"})
	}
	db.RegisterConstraint("app_user_email_uq", db.Constraint{Code: apperr.Conflict, Rule: RuleUser,
		Message: "a user with this email exists already"})
	db.RegisterConstraint("app_user_disabled_ck", db.Constraint{Code: apperr.Invalid, Rule: RuleUser,
		Message: "a disabled user records both when and by whom"})
}

// Validate checks a user before it is stored (A2). known reports whether an authority code is
// one of the operation's; nil accepts any well-formed code.
func (u *User) Validate(known func(string) bool) error {
	u.Email = NormalizeEmail(u.Email)
	u.Name = strings.TrimSpace(u.Name)
	u.Authority = strings.TrimSpace(u.Authority)
	switch {
	case len(u.Email) > MaxEmail:
		return apperr.New(apperr.Invalid, RuleUser, "an email address may be at most %d bytes long", MaxEmail).On("email")
	case !emailPattern.MatchString(u.Email):
		return apperr.New(apperr.Invalid, RuleUser, "%q is not an email address", u.Email).On("email")
	case strings.IndexFunc(u.Email, unicode.IsControl) >= 0:
		return apperr.New(apperr.Invalid, RuleUser, "an email address holds no control characters").On("email")
	case u.Name == "":
		return apperr.New(apperr.Invalid, RuleUser, "user %s needs a name", u.Email).On("name")
	case strings.IndexFunc(u.Name, unicode.IsControl) >= 0:
		// A name is shown in lists on terminals too, where control characters would act.
		return apperr.New(apperr.Invalid, RuleUser, "a user's name holds no control characters (such as a line break or an escape)").On("name")
	case matrix[u.Role] == nil || u.Role == SystemRole:
		return apperr.New(apperr.Invalid, RuleUser, "role %q is not one of finance_officer, programme_manager, auditor, admin", u.Role).On("role")
	case u.Role == FinanceOfficer && u.Authority == "":
		return apperr.New(apperr.Invalid, RuleUser, "a finance officer needs an authority").On("authority")
	case u.Role != FinanceOfficer && u.Authority != "":
		return apperr.New(apperr.Invalid, RuleUser, "only a finance officer has an authority; the role %s acts for every authority", roleText(u.Role)).On("authority")
	case u.Authority != "" && (!authorityPattern.MatchString(u.Authority) || (known != nil && !known(u.Authority))):
		return apperr.New(apperr.Invalid, RuleUser, "%q is not an authority of the operation", u.Authority).On("authority")
	}
	return nil
}

// AddUser stores a new user of the operation, created by `by` (who must be allowed to
// manage_users) at `now`. known checks authority codes (nil: any well-formed code).
func AddUser(ctx context.Context, q db.Querier, operationID string, by User, u User, known func(string) bool, now time.Time) (User, error) {
	if err := Can(by, ManageUsers, ""); err != nil {
		return User{}, err
	}
	if err := u.Validate(known); err != nil {
		return User{}, err
	}
	u.CreatedAt = now.UTC().Truncate(time.Microsecond)
	u.CreatedBy = by.Email
	err := q.QueryRow(ctx, `INSERT INTO app_user (operation_id, email, name, role, authority, created_at, created_by)
		VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7) RETURNING id`,
		operationID, u.Email, u.Name, string(u.Role), u.Authority, u.CreatedAt, u.CreatedBy).Scan(&u.ID)
	if err != nil {
		return User{}, db.Translate("access.AddUser", err)
	}
	return u, nil
}

// UserColumns are the columns ScanUser reads, of app_user aliased u.
const UserColumns = `u.id, u.email, u.name, u.role, coalesce(u.authority, ''), u.created_at, u.created_by, u.disabled_at, coalesce(u.disabled_by, '')`

// ScanUser scans UserColumns, and then extra, from row.
func ScanUser(row pgx.Row, extra ...any) (User, error) {
	var u User
	var role string
	err := row.Scan(append([]any{&u.ID, &u.Email, &u.Name, &role, &u.Authority, &u.CreatedAt, &u.CreatedBy, &u.DisabledAt, &u.DisabledBy}, extra...)...)
	u.Role = Role(role)
	return u, err
}

// UserByEmail returns the user with email; an unknown email is not found (M2).
func UserByEmail(ctx context.Context, q db.Querier, operationID, email string) (User, error) {
	u, err := ScanUser(q.QueryRow(ctx, `SELECT `+UserColumns+` FROM app_user u WHERE u.operation_id = $1 AND u.email = $2`,
		operationID, NormalizeEmail(email)))
	if err == pgx.ErrNoRows {
		return User{}, apperr.New(apperr.NotFound, apperr.RuleRef, "there is no user %q", email)
	}
	if err != nil {
		return User{}, db.Translate("access.UserByEmail", err)
	}
	return u, nil
}

// Users returns the operation's users in email order.
func Users(ctx context.Context, q db.Querier, operationID string) ([]User, error) {
	rows, err := q.Query(ctx, `SELECT `+UserColumns+` FROM app_user u WHERE u.operation_id = $1 ORDER BY u.email`, operationID)
	if err != nil {
		return nil, db.Translate("access.Users", err)
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return ScanUser(r) })
	return us, db.Translate("access.Users", err)
}

// String names the user for messages and the audit trail.
func (u User) String() string {
	if u.Authority != "" {
		return fmt.Sprintf("%s (%s, %s)", u.Email, u.Role, u.Authority)
	}
	return fmt.Sprintf("%s (%s)", u.Email, u.Role)
}
