package claims

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

func init() {
	db.RegisterConstraint("claim_frozen", db.Constraint{Code: apperr.Locked, Rule: RuleFrozen,
		Message: "the claim is submitted: its figures and pack never change"})
	db.RegisterConstraint("claim_order", db.Constraint{Code: apperr.Conflict, Rule: RuleOrder,
		Message: "claims are submitted in period order: the claim before this one is not submitted"})
	db.RegisterConstraint("claim_lifecycle", db.Constraint{Code: apperr.Conflict, Rule: RuleOutcome,
		Message: "the claim lifecycle does not allow this change"})
	db.RegisterConstraint("claim_event_append_only", db.Constraint{Code: apperr.Locked, Rule: RuleFrozen,
		Message: "the claim history is append-only"})
	db.RegisterConstraint("claim_four_eyes_ck", db.Constraint{Code: apperr.Forbidden, Rule: RuleFourEyes,
		Message: "the reviewer of a claim may not submit it"})
	db.RegisterConstraint("claim_blocked_ck", db.Constraint{Code: apperr.Invalid, Rule: RuleBlocked,
		Message: "a claim with blocking findings cannot be submitted"})
	db.RegisterConstraint("claim_approved_within_ck", db.Constraint{Code: apperr.Invalid, Rule: RuleOutcome,
		Message: "the ESF approved lies between zero and the ESF claimed"})
	db.RegisterConstraint("claim_disallowed_within_ck", db.Constraint{Code: apperr.Invalid, Rule: RuleOutcome,
		Message: "the expenditure disallowed is at most the eligible expenditure claimed"})
	db.RegisterConstraint("claim_paid_within_ck", db.Constraint{Code: apperr.Invalid, Rule: RuleOutcome,
		Message: "the amount paid is more than zero and at most the amount approved (zero only when nothing was approved)"})
}

// Service compiles an operation's claims and carries them through their lifecycle.
type Service struct {
	ledger *ledger.Ledger
	pool   *pgxpool.Pool
	prog   *programme.Programme
	loc    *time.Location
	now    func() time.Time
	log    *slog.Logger
	// version names the software in packs ("infuse 1.0.0").
	version string
	// signatory signs the claim certificate.
	signatory Signatory
	// progress is told what a long step is doing (WithProgress); nil for none.
	progress func(doing string)

	// docs keeps each period's claim JSON with the row version it was rendered from (ClaimJSON).
	docsMu sync.Mutex
	docs   map[string]claimDoc
}

// claimDoc is a rendered claim JSON and the version of the claim row it was rendered from.
type claimDoc struct {
	version string
	body    []byte
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock that stamps claims and events and decides which periods have ended.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLogger sets the logger.
func WithLogger(log *slog.Logger) Option { return func(s *Service) { s.log = log } }

// WithVersion names the software in the packs' manifests ("infuse 1.0.0").
func WithVersion(v string) Option { return func(s *Service) { s.version = v } }

// WithSignatory names who signs the claim certificate.
func WithSignatory(sig Signatory) Option { return func(s *Service) { s.signatory = sig } }

// WithProgress has the service say what a long step (compiling, rendering a pack) is doing,
// as it starts each part: for a person at a terminal.
func WithProgress(f func(doing string)) Option { return func(s *Service) { s.progress = f } }

// doing tells the progress callback, if any, what the service does next.
func (s *Service) doing(what string) {
	if s.progress != nil {
		s.progress(what)
	}
}

// New returns the claims service of the operation kept by l, defined by p.
func New(l *ledger.Ledger, p *programme.Programme, opts ...Option) (*Service, error) {
	if l.OperationID() != p.OperationID {
		return nil, apperr.New(apperr.Invalid, apperr.RuleConfig, "the ledger keeps operation %s, the programme defines %s", l.OperationID(), p.OperationID)
	}
	loc, err := p.Location()
	if err != nil {
		return nil, err
	}
	s := &Service{ledger: l, pool: l.Pool(), prog: p, loc: loc, now: time.Now, log: slog.New(slog.DiscardHandler),
		version: "infuse"}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Programme returns the programme definition the service compiles claims for.
func (s *Service) Programme() *programme.Programme { return s.prog }

// Ledger returns the ledger the service reads and posts to.
func (s *Service) Ledger() *ledger.Ledger { return s.ledger }

// Today returns the calendar date on the service's clock in the programme's time zone.
func (s *Service) Today() time.Time { return programme.DateIn(s.now(), s.loc) }

func (s *Service) today() time.Time { return s.Today() }

func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func (s *Service) period(code string) (Period, error) {
	return PeriodByCode(s.prog, code)
}

// Decision is WEFO's decision on a submitted claim.
type Decision struct {
	DecidedOn  time.Time       // the date of WEFO's decision letter
	Approved   decimal.Decimal // ESF WEFO approved for payment
	Disallowed decimal.Decimal // eligible expenditure WEFO disallowed, ≥ 0
	Reason     string          // why, required when Disallowed > 0
	// Heading is the cost heading the disallowed expenditure was claimed under (default other,
	// or staff where other accepts no lines); the disallowance is a negative adjustment to it.
	Heading string
	EntryID int64 // the adjustment entry, 0 when nothing was disallowed
	At      time.Time
	By      string
}

// Payment is WEFO's payment of a claim.
type Payment struct {
	PaidOn  time.Time
	Amount  decimal.Decimal
	EntryID int64 // Dr cash / Cr ESF receivable, 0 for a nil payment
	At      time.Time
	By      string
}

// Claim is a compiled claim and where it is in its lifecycle.
type Claim struct {
	Operation string
	Period    Period
	Status    Status
	Figures   Figures
	// Basis is the SHA-256 of the ledger balances the figures were read from, those of every
	// period up to the claim's; a claim whose ledger has moved since must be recompiled before
	// submission (CL4).
	Basis      []byte
	Position   ledger.Position // the ledger position the figures were read at
	CompiledAt time.Time
	CompiledBy string
	ReviewedAt *time.Time
	ReviewedBy string

	SubmittedAt       *time.Time
	SubmittedBy       string
	SubmittedByName   string // the submitter's name as it was then, which signs the pack ("" before 0020)
	ReceivableEntryID int64  // Dr ESF receivable / Cr ESF income, 0 for a nil ESF due

	Decision *Decision
	Payment  *Payment
}

// Number returns the claim number.
func (c *Claim) Number() int { return c.Period.Seq }

// Signer returns who signed the submitted claim's certificate: the submitter's name as it was
// then, or their email for a claim submitted before names were kept.
func (c *Claim) Signer() string {
	if c.SubmittedByName != "" {
		return c.SubmittedByName
	}
	return c.SubmittedBy
}

// signerOf is the name that signs a certificate submitted by u: their name, else their email.
func signerOf(u access.User) string {
	if strings.TrimSpace(u.Name) != "" {
		return strings.TrimSpace(u.Name)
	}
	return u.Email
}

const claimColumns = `period, status, figures, basis, position_seq, position_entry_id, position_link,
	compiled_at, compiled_by, reviewed_at, coalesce(reviewed_by, ''), submitted_at, coalesce(submitted_by, ''),
	coalesce(submitted_by_name, ''), coalesce(receivable_entry_id, 0),
	decided_at, decided_on, coalesce(decided_by, ''), approved_amount, disallowed_amount,
	coalesce(disallowance_reason, ''), coalesce(disallowance_heading, ''), coalesce(disallowance_entry_id, 0),
	paid_at, paid_on, coalesce(paid_by, ''), paid_amount, coalesce(payment_entry_id, 0)`

func (s *Service) scanClaim(row pgx.Row) (*Claim, error) {
	c := &Claim{Operation: s.prog.OperationID}
	var (
		period, status        string
		figures               []byte
		decidedAt, paidAt     *time.Time
		decidedOn, paidOn     *time.Time
		decidedBy, paidBy     string
		approved, disallowed  decimal.NullDecimal
		reason, heading       string
		disallowanceEntry     int64
		paidAmount            decimal.NullDecimal
		paymentEntry          int64
		positionSeq, posEntry int64
		positionLink          []byte
	)
	err := row.Scan(&period, &status, &figures, &c.Basis, &positionSeq, &posEntry, &positionLink,
		&c.CompiledAt, &c.CompiledBy, &c.ReviewedAt, &c.ReviewedBy, &c.SubmittedAt, &c.SubmittedBy,
		&c.SubmittedByName, &c.ReceivableEntryID,
		&decidedAt, &decidedOn, &decidedBy, &approved, &disallowed, &reason, &heading, &disallowanceEntry,
		&paidAt, &paidOn, &paidBy, &paidAmount, &paymentEntry)
	if err != nil {
		return nil, err
	}
	c.Status = Status(status)
	c.Position = ledger.Position{Seq: positionSeq, LastEntryID: posEntry, Link: positionLink}
	if c.Period, err = s.period(period); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(figures, &c.Figures); err != nil {
		return nil, apperr.Wrap("claims.scanClaim", err)
	}
	if decidedAt != nil {
		c.Decision = &Decision{DecidedOn: *decidedOn, Approved: approved.Decimal, Disallowed: disallowed.Decimal,
			Reason: reason, Heading: heading, EntryID: disallowanceEntry, At: *decidedAt, By: decidedBy}
	}
	if paidAt != nil {
		c.Payment = &Payment{PaidOn: *paidOn, Amount: paidAmount.Decimal, EntryID: paymentEntry, At: *paidAt, By: paidBy}
	}
	return c, nil
}

// Claim returns the claim of period.
func (s *Service) Claim(ctx context.Context, period string) (*Claim, error) {
	return s.claim(ctx, s.pool, period, false)
}

func (s *Service) claim(ctx context.Context, q db.Querier, period string, forUpdate bool) (*Claim, error) {
	if _, err := s.period(period); err != nil {
		return nil, err
	}
	sql := `SELECT ` + claimColumns + ` FROM claim WHERE operation_id = $1 AND period = $2`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	c, err := s.scanClaim(q.QueryRow(ctx, sql, s.prog.OperationID, period))
	if err == pgx.ErrNoRows {
		return nil, noClaim(period)
	}
	return c, db.Translate("claims.Claim", err)
}

// rowVersionSQL names a version of a claim's row: an UPDATE writes a new tuple, with a new
// transaction id (xmin) and place (ctid).
const rowVersionSQL = `xmin::text || ':' || ctid::text`

// ClaimJSON returns the claim JSON of interfaces.md for period, exactly as json.Marshal of Claim
// writes it. Reads of a claim far outnumber its changes, so the document is kept per period and
// served again while the claim's row is unchanged: each call reads the row's version, and only
// a new version is read whole, decoded and rendered again. The caller must not modify the bytes.
func (s *Service) ClaimJSON(ctx context.Context, period string) ([]byte, error) {
	if _, err := s.period(period); err != nil {
		return nil, err
	}
	var version string
	err := s.pool.QueryRow(ctx, `SELECT `+rowVersionSQL+` FROM claim WHERE operation_id = $1 AND period = $2`,
		s.prog.OperationID, period).Scan(&version)
	if err == pgx.ErrNoRows {
		return nil, noClaim(period)
	}
	if err != nil {
		return nil, db.Translate("claims.ClaimJSON", err)
	}
	s.docsMu.Lock()
	doc, ok := s.docs[period]
	s.docsMu.Unlock()
	if ok && doc.version == version {
		return doc.body, nil
	}
	// The claim and its version in one statement, so the document is stored under the version
	// it was rendered from even if the claim changed since the read above.
	c, err := s.scanClaim(versionedRow{s.pool.QueryRow(ctx, `SELECT `+rowVersionSQL+`, `+claimColumns+`
		FROM claim WHERE operation_id = $1 AND period = $2`, s.prog.OperationID, period), &doc.version})
	if err == pgx.ErrNoRows {
		return nil, noClaim(period)
	}
	if err != nil {
		return nil, db.Translate("claims.ClaimJSON", err)
	}
	if doc.body, err = json.Marshal(c); err != nil {
		return nil, apperr.Wrap("claims.ClaimJSON", err)
	}
	s.docsMu.Lock()
	if s.docs == nil {
		s.docs = make(map[string]claimDoc)
	}
	s.docs[period] = doc
	s.docsMu.Unlock()
	return doc.body, nil
}

// versionedRow scans a row version, then the columns its caller asks for.
type versionedRow struct {
	pgx.Row
	version *string
}

func (r versionedRow) Scan(dest ...any) error {
	return r.Row.Scan(append([]any{r.version}, dest...)...)
}

func noClaim(period string) error {
	return apperr.New(apperr.NotFound, apperr.RuleRef, "there is no claim for %s yet: compile it first", period)
}

// Claims returns every compiled claim in period order.
func (s *Service) Claims(ctx context.Context) ([]*Claim, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+claimColumns+` FROM claim WHERE operation_id = $1 ORDER BY claim_number`,
		s.prog.OperationID)
	if err != nil {
		return nil, db.Translate("claims.Claims", err)
	}
	defer rows.Close()
	var out []*Claim
	for rows.Next() {
		c, err := s.scanClaim(rows)
		if err != nil {
			return nil, db.Translate("claims.Claims", err)
		}
		out = append(out, c)
	}
	return out, db.Translate("claims.Claims", rows.Err())
}

// Event is one recorded state change of a claim.
type Event struct {
	ID     int64
	Period string
	Event  string // compiled, reviewed, submitted, decided, paid, pack_stored
	Actor  string
	Role   string
	At     time.Time
	Detail map[string]any
}

// Events returns the history of the claim of period, oldest first.
func (s *Service) Events(ctx context.Context, period string) ([]Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, period, event, actor, actor_role, at, detail FROM claim_event
		WHERE operation_id = $1 AND period = $2 ORDER BY id`, s.prog.OperationID, period)
	if err != nil {
		return nil, db.Translate("claims.Events", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		err := r.Scan(&e.ID, &e.Period, &e.Event, &e.Actor, &e.Role, &e.At, &e.Detail)
		return e, err
	})
	return out, db.Translate("claims.Events", err)
}

// event records a state change of the claim of period in tx.
func (s *Service) event(ctx context.Context, tx pgx.Tx, period, event string, by access.User, at time.Time, detail map[string]any) error {
	if detail == nil {
		detail = map[string]any{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO claim_event (operation_id, period, event, actor, actor_role, at, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.prog.OperationID, period, event, by.Email, string(by.Role), at, detail)
	return err
}

// lockKey is the advisory lock that serialises the writers of one claim.
func (s *Service) lockKey(period string) int64 {
	h := fnv.New64a()
	h.Write([]byte("infuse-claim\x00" + s.prog.OperationID + "\x00" + period))
	return int64(h.Sum64())
}
