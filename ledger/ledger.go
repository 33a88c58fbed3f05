// Package ledger is the double-entry book of an ESF operation: its chart of accounts, entries
// and postings, balances per account and booking period, booking periods and their locks,
// idempotent posting, reversals, and the tamper-evident SHA-256 chain with its verifier.
//
// It knows nothing of officers or claims: callers say which accounts move and by how much.
// Amounts are debits when positive and credits when negative; an entry's postings sum to zero.
// Every invariant kept here is kept by the database schema too (migrations/0001_ledger.sql).
package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/programme"
)

// Account kinds.
const (
	Asset     = "asset"
	Liability = "liability"
	Income    = "income"
	Expense   = "expense"
	Memo      = "memo" // allocation accounts: what was granted or pledged, not money that moved
)

// Well-known account codes. Per-authority accounts are made with InKind and Match.
const (
	Cash          = "cash"           // the lead beneficiary's bank
	ESFReceivable = "esf_receivable" // ESF claimed, not yet paid
	ESFIncome     = "esf_income"     // ESF grant income
	Ineligible    = "ineligible"     // costs WEFO disallowed, borne by the lead beneficiary
	AllocESF      = "alloc:esf"      // the ESF award (memo)
	AllocBudget   = "alloc:budget"   // the other side of every allocation (memo)
)

// HeadingAccount returns the expenditure account of a cash or flat-rate heading.
func HeadingAccount(heading string) string { return "exp:" + heading }

// InKind returns the in-kind expenditure account (heading officer_time) of an authority.
func InKind(authority string) string { return "inkind:" + authority }

// Match returns the in-kind match income account of an authority.
func Match(authority string) string { return "match:" + authority }

// AllocMatch returns the memo account that holds an authority's match target.
func AllocMatch(authority string) string { return "alloc:match:" + authority }

// Account is one account of the chart.
type Account struct {
	ID        int64
	Code      string
	Name      string
	Kind      string
	Heading   string // cost heading for expenditure accounts, "" otherwise
	Authority string // ISO code for per-authority accounts, "" otherwise
}

// Chart returns the accounts an operation needs, derived from its programme definition.
func Chart(p *programme.Programme) []Account {
	accts := []Account{
		{Code: Cash, Name: "Bank (lead beneficiary)", Kind: Asset},
		{Code: ESFReceivable, Name: "ESF grant receivable from WEFO", Kind: Asset},
		{Code: ESFIncome, Name: "ESF grant income", Kind: Income},
		{Code: Ineligible, Name: "Ineligible expenditure (disallowed)", Kind: Expense},
		{Code: AllocESF, Name: "ESF award allocated", Kind: Memo},
		{Code: AllocBudget, Name: "Programme budget (allocations)", Kind: Memo},
	}
	for _, h := range p.Headings {
		if h.Kind == programme.HeadingKind("inkind") {
			continue
		}
		accts = append(accts, Account{Code: HeadingAccount(h.Code), Name: h.Name, Kind: Expense, Heading: h.Code})
	}
	for _, a := range p.Authorities {
		accts = append(accts,
			Account{Code: InKind(a.Code), Name: "In-kind officer time, " + a.NameEN, Kind: Expense, Heading: "officer_time", Authority: a.Code},
			Account{Code: Match(a.Code), Name: "In-kind match income, " + a.NameEN, Kind: Income, Authority: a.Code},
			Account{Code: AllocMatch(a.Code), Name: "Match target, " + a.NameEN, Kind: Memo, Authority: a.Code},
		)
	}
	return accts
}

// ClosurePeriod is the booking period after the eligibility window: payments and corrections
// that arrive once every claim period is locked are booked there. It is never claimed.
const ClosurePeriod = "closure"

// farFuture ends the closure period.
var farFuture = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Ledger is the book of one operation.
type Ledger struct {
	pool *pgxpool.Pool
	op   string
	now  func() time.Time
	log  *slog.Logger

	group committer // single entries posted through pool

	mu       sync.RWMutex
	byCode   map[string]Account
	byID     map[int64]Account
	firstDay time.Time
}

// Option configures a Ledger.
type Option func(*Ledger)

// WithClock sets the clock that stamps entries (tests use a fixed one).
func WithClock(now func() time.Time) Option { return func(l *Ledger) { l.now = now } }

// WithLogger sets the logger of the ledger's start-up work (catchUp's progress); the default is
// slog.Default().
func WithLogger(log *slog.Logger) Option { return func(l *Ledger) { l.log = log } }

// Setup creates the operation, its periods, its chart of accounts and the allocation entries
// (the ESF award and each authority's match target), so that allocated against delivered is a
// ledger balance. It is idempotent: running it on a set-up operation changes nothing, and it
// refuses a definition that differs from the one the operation was set up with. Like Open, it
// first makes sure the cluster's transaction ids are past every one the ledger's rows carry
// (catchUp): they are not after a restore into a younger cluster.
func Setup(ctx context.Context, pool *pgxpool.Pool, p *programme.Programme, opts ...Option) (*Ledger, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	def, err := json.Marshal(p)
	if err != nil {
		return nil, apperr.Wrap("ledger.Setup", err)
	}
	l := newLedger(pool, p.OperationID, opts)
	if err := catchUp(ctx, pool, l.log); err != nil {
		return nil, err
	}
	now := l.now().UTC().Truncate(time.Microsecond)
	err = db.WithTx(ctx, pool, func(tx pgx.Tx) error {
		var fp string
		err := tx.QueryRow(ctx, `SELECT fingerprint FROM operation WHERE id = $1 FOR UPDATE`, p.OperationID).Scan(&fp)
		switch {
		case err == nil:
			if fp != p.Fingerprint() {
				return apperr.New(apperr.Conflict, "P1",
					"operation %s was set up with a different programme definition; it cannot be replaced once the ledger holds entries", p.OperationID)
			}
			return nil
		case err != pgx.ErrNoRows:
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO operation (id, name, definition, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5)`,
			p.OperationID, p.Name, def, p.Fingerprint(), now); err != nil {
			return err
		}
		periods := p.Periods()
		last := periods[len(periods)-1]
		rows := make([][]any, 0, len(periods)+1)
		for _, per := range periods {
			rows = append(rows, []any{p.OperationID, per.Code, per.Seq, per.Start, per.End, true})
		}
		rows = append(rows, []any{p.OperationID, ClosurePeriod, last.Seq + 1, last.End.AddDate(0, 0, 1), farFuture, false})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"period"},
			[]string{"operation_id", "code", "seq", "starts_on", "ends_on", "claimable"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		for _, a := range Chart(p) {
			if _, err := tx.Exec(ctx, `INSERT INTO account (operation_id, code, name, kind, heading, authority)
				VALUES ($1, $2, $3, $4, nullif($5, ''), nullif($6, ''))`,
				p.OperationID, a.Code, a.Name, a.Kind, a.Heading, a.Authority); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO chain_head (operation_id, seq, link, updated_at) VALUES ($1, 0, $2, $3)`,
			p.OperationID, make([]byte, 32), now)
		return err
	})
	if err != nil {
		return nil, db.Translate("ledger.Setup", err)
	}
	if err := l.load(ctx); err != nil {
		return nil, err
	}
	for _, in := range allocationEntries(p) {
		if _, err := l.Post(ctx, pool, in); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// allocationEntries are the entries that record what the operation was granted and pledged.
func allocationEntries(p *programme.Programme) []EntryInput {
	ins := []EntryInput{{
		EffectiveDate: p.WindowStart, Source: "setup", Reference: p.OperationID,
		Description: "ESF award allocated by WEFO", RecordedBy: "system", IdempotencyKey: "setup:esf_award",
		Postings: []Posting{{Account: AllocESF, Amount: p.Award}, {Account: AllocBudget, Amount: p.Award.Neg()}},
	}}
	for _, a := range p.Authorities {
		if a.MatchTarget.IsZero() {
			continue
		}
		ins = append(ins, EntryInput{
			EffectiveDate: p.WindowStart, Source: "setup", Reference: a.Code,
			Description: "Match target pledged by " + a.NameEN, RecordedBy: "system", IdempotencyKey: "setup:match:" + a.Code,
			Postings: []Posting{{Account: AllocMatch(a.Code), Amount: a.MatchTarget}, {Account: AllocBudget, Amount: a.MatchTarget.Neg()}},
		})
	}
	return ins
}

// Open returns the ledger of an operation that has been set up, once the cluster's transaction
// ids are past every one the ledger's rows carry (catchUp).
func Open(ctx context.Context, pool *pgxpool.Pool, operationID string, opts ...Option) (*Ledger, error) {
	l := newLedger(pool, operationID, opts)
	if err := catchUp(ctx, pool, l.log); err != nil {
		return nil, err
	}
	if err := l.load(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

func newLedger(pool *pgxpool.Pool, op string, opts []Option) *Ledger {
	l := &Ledger{pool: pool, op: op, now: time.Now, log: slog.Default()}
	for _, o := range opts {
		o(l)
	}
	return l
}

// load reads the chart of accounts into memory; it never changes after setup.
func (l *Ledger) load(ctx context.Context) error {
	rows, err := l.pool.Query(ctx, `SELECT id, code, name, kind, coalesce(heading, ''), coalesce(authority, '')
		FROM account WHERE operation_id = $1 ORDER BY id`, l.op)
	if err != nil {
		return db.Translate("ledger.load", err)
	}
	accts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Account, error) {
		var a Account
		err := r.Scan(&a.ID, &a.Code, &a.Name, &a.Kind, &a.Heading, &a.Authority)
		return a, err
	})
	if err != nil {
		return db.Translate("ledger.load", err)
	}
	if len(accts) == 0 {
		return apperr.New(apperr.NotFound, apperr.RuleConfig, "operation %s has not been set up (run infuse migrate)", l.op)
	}
	var first time.Time
	if err := l.pool.QueryRow(ctx, `SELECT min(starts_on) FROM period WHERE operation_id = $1`, l.op).Scan(&first); err != nil {
		return db.Translate("ledger.load", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byCode = make(map[string]Account, len(accts))
	l.byID = make(map[int64]Account, len(accts))
	for _, a := range accts {
		l.byCode[a.Code] = a
		l.byID[a.ID] = a
	}
	l.firstDay = first
	return nil
}

// OperationID returns the operation this ledger keeps.
func (l *Ledger) OperationID() string { return l.op }

// Pool returns the connection pool the ledger uses.
func (l *Ledger) Pool() *pgxpool.Pool { return l.pool }

// Now returns the ledger clock's current time.
func (l *Ledger) Now() time.Time { return l.now() }

// Account returns the account with code.
func (l *Ledger) Account(code string) (Account, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	a, ok := l.byCode[code]
	if !ok {
		return Account{}, noAccount(code)
	}
	return a, nil
}

func noAccount(code string) error {
	return apperr.New(apperr.Invalid, "L3", "there is no account %q in the chart", code)
}

// AccountByID returns the account with id.
func (l *Ledger) AccountByID(id int64) (Account, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	a, ok := l.byID[id]
	return a, ok
}

// Accounts returns the chart in id order.
func (l *Ledger) Accounts() []Account {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]Account, 0, len(l.byID))
	for _, a := range l.byID {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (l *Ledger) String() string { return fmt.Sprintf("ledger(%s)", l.op) }
