package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
)

// Ledger rule ids, for the invariants that domain.md leaves to the architecture:
//
//	L1  an entry has two or more postings, none zero, summing to zero
//	L2  amounts are pence: at most two decimal places (R9.1)
//	L3  postings name accounts of the operation's chart
//	L4  an idempotency key names one request: a replay returns the original entry
//	L5  an entry's effective date falls in a period of the operation and one is open to book it
//	L6  an entry is reversed at most once, and a reversal is not itself reversed
//	L7  the chain, the balances and the trial balance recompute from the rows (ledger verify)
//	F1  locked periods and append-only rows (domain.md §6)

// Posting is one line of an entry: an account and a signed amount (debit > 0, credit < 0).
type Posting struct {
	Account string
	Amount  decimal.Decimal
}

// EntryInput is what a caller asks the ledger to post.
type EntryInput struct {
	EffectiveDate  time.Time // the work or defrayal date; decides the booking period (domain.md §6)
	Description    string
	Source         string // what produced it: "time_entry", "expenditure", "claim", "setup" …
	Reference      string // the source's own id (time entry id, invoice …)
	Reverses       int64  // the entry this one reverses, 0 if none
	IdempotencyKey string // optional; a replay of the same request returns the original entry
	RecordedBy     string // the user (email) or "system"
	Postings       []Posting
}

// Entry is a posted entry.
type Entry struct {
	ID             int64
	EffectiveDate  time.Time
	Period         string // booking period
	Description    string
	Source         string
	Reference      string
	Reverses       int64
	IdempotencyKey string
	RecordedAt     time.Time
	RecordedBy     string
	Postings       []Posting
	Replayed       bool // true when an idempotent replay returned an entry posted earlier
}

// maxPostings bounds one entry; the schema's line is a smallint.
const maxPostings = 1000

// validate checks an input against L1–L3 and the field rules, and resolves its accounts. It
// runs for every entry a batch or an import posts, before any of them is written, so it works in
// pence (int64) and holds the chart's lock once.
func (l *Ledger) validate(in *EntryInput) (accounts []int64, amounts []string, err error) {
	switch {
	case in.EffectiveDate.IsZero():
		return nil, nil, apperr.New(apperr.Invalid, "L5", "the entry has no effective date")
	case in.Description == "":
		return nil, nil, apperr.New(apperr.Invalid, apperr.RuleFormat, "the entry has no description")
	case !isSource(in.Source):
		return nil, nil, apperr.New(apperr.Invalid, apperr.RuleFormat, "the entry's source %q is not a lower-case word", in.Source)
	case in.RecordedBy == "":
		return nil, nil, apperr.New(apperr.Invalid, apperr.RuleFormat, "the entry does not say who recorded it")
	case len(in.Postings) < 2:
		return nil, nil, apperr.New(apperr.Invalid, "L1", "an entry needs at least two postings, this one has %d", len(in.Postings))
	case len(in.Postings) > maxPostings:
		return nil, nil, apperr.New(apperr.Invalid, "L1", "an entry may have at most %d postings", maxPostings)
	case !db.Storable(in.Description) || !db.Storable(in.Reference) || !db.Storable(in.RecordedBy) || !db.Storable(in.IdempotencyKey):
		return nil, nil, apperr.New(apperr.Invalid, apperr.RuleFormat, "the entry's text is not valid UTF-8 or holds a NUL character")
	}
	in.EffectiveDate = dateOnly(in.EffectiveDate)
	// The sum is kept in two parts, whole millions of pounds and the rest, so that 1,000
	// postings of the largest amount cannot overflow it.
	var sumHigh, sumLow int64
	accounts = make([]int64, len(in.Postings))
	amounts = make([]string, len(in.Postings))
	l.mu.RLock()
	defer l.mu.RUnlock()
	for i, p := range in.Postings {
		if p.Amount.IsZero() {
			return nil, nil, apperr.New(apperr.Invalid, "L1", "posting %d to %s is zero", i+1, p.Account)
		}
		v, err := postingPence(i, p.Amount)
		if err != nil {
			return nil, nil, err
		}
		a, ok := l.byCode[p.Account]
		if !ok {
			return nil, nil, noAccount(p.Account)
		}
		accounts[i], amounts[i] = a.ID, formatPence(v)
		sumHigh, sumLow = sumHigh+v/1e8, sumLow+v%1e8
	}
	if sumHigh += sumLow / 1e8; sumHigh != 0 || sumLow%1e8 != 0 {
		sum := decimal.Zero
		for _, p := range in.Postings {
			sum = sum.Add(p.Amount)
		}
		return nil, nil, apperr.New(apperr.Invalid, "L1", "the postings sum to %s, not zero", sum.StringFixed(2))
	}
	return accounts, amounts, nil
}

// postingPence gives posting i's amount in pence, or the L2 error of an amount that is not
// pence or more than the ledger holds.
func postingPence(i int, a decimal.Decimal) (int64, error) {
	if v, ok := pennies(a); ok {
		return v, nil
	}
	if !a.Equal(a.Truncate(2)) {
		return 0, apperr.New(apperr.Invalid, "L2", "posting %d amount %s has more than two decimal places", i+1, a)
	}
	if a.Abs().GreaterThan(maxAmount) {
		return 0, apperr.New(apperr.Invalid, "L2", "posting %d amount %s is more than the ledger holds (%s)", i+1, a, maxAmount.StringFixed(2))
	}
	return a.Shift(2).IntPart(), nil // pence, written with more digits than pennies reads
}

// pennies gives a in pence when it is at most maxPence and its coefficient fits an int64 with
// an exponent pennies can scale without overflow: every amount anyone writes. ok is false for
// the rest, which postingPence judges with decimal arithmetic.
func pennies(a decimal.Decimal) (v int64, ok bool) {
	exp := a.Exponent()
	if exp < -18 || exp > 16 || a.NumDigits() > 18 {
		return 0, false
	}
	v = a.CoefficientInt64()
	for ; exp < -2; exp++ {
		if v%10 != 0 {
			return 0, false
		}
		v /= 10
	}
	for ; exp > -2; exp-- {
		if v > maxPence || v < -maxPence {
			return 0, false
		}
		v *= 10
	}
	return v, v <= maxPence && v >= -maxPence
}

// maxPence is maxAmount in pence.
const maxPence = 9_999_999_999_999_999

// isSource reports whether s is a lower-case word: a letter, then letters and underscores (the
// schema's entry_source_ck).
func isSource(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || i > 0 && c == '_') {
			return false
		}
	}
	return s != ""
}

// maxAmount is the largest amount a posting holds: numeric(16, 2).
var maxAmount = decimal.RequireFromString("99999999999999.99")

// fingerprint identifies a request for idempotency: everything the caller asked for, not who
// or when. A replay with the same key and fingerprint is the same request.
func fingerprint(in *EntryInput, amounts []string) []byte {
	h := sha256.New()
	w := digestWriter{h: h, buf: make([]byte, 0, 64)}
	var date [len(time.DateOnly)]byte
	w.str(string(in.EffectiveDate.AppendFormat(date[:0], time.DateOnly)))
	w.str(in.Description)
	w.str(in.Source)
	w.str(in.Reference)
	w.int(in.Reverses)
	for i, p := range in.Postings {
		w.str(p.Account)
		w.str(amounts[i])
	}
	return h.Sum(nil)
}

func dateOnly(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// tokenSQL gives the transaction its ledger token, which queues the schema's commit-time check
// of everything the transaction writes to the ledger (migrations/0001_ledger.sql, "How writes
// are checked"). A transaction that holds its token already keeps it: the schema skips the
// second row (0009). An entry or posting written without the token is refused at the end of
// its statement (ledger_token_held, 0014; the token's row cannot be changed, 0015), and one
// naming another transaction as it is written (entry_token_ck and posting_token_ck, 0016).
const tokenSQL = `INSERT INTO ledger_txn (txid) VALUES (pg_current_xact_id())`

// postOneSQL posts one entry in one statement: it picks the booking period (the period of the
// effective date if open, else the earliest open period after it), inserts the entry unless its
// idempotency key exists and inserts the postings (the commit-time check queues the transaction
// for sealing, which moves the balances). It locks no shared row, so concurrent writers queue on
// one another only for the same idempotency key (or a reversal of the same entry). The schema
// checks the whole at commit.
const postOneSQL = `
WITH bp AS (
    SELECT p.code FROM period p
     WHERE p.operation_id = $1 AND p.ends_on >= $2 AND p.locked_at IS NULL
       AND $2 >= (SELECT min(starts_on) FROM period WHERE operation_id = $1)
     ORDER BY p.seq LIMIT 1
), e AS (
    INSERT INTO entry (operation_id, id, effective_date, period, description, source, reference,
                       reverses, idempotency_key, fingerprint, recorded_at, recorded_by)
    SELECT $1, nextval('entry_id_seq'), $2, bp.code, $3, $4, $5, nullif($6::bigint, 0), nullif($7, ''),
           CASE WHEN $7 = '' THEN NULL ELSE $8::bytea END, $9, $10
      FROM bp
    ON CONFLICT (operation_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, period
), p AS (
    INSERT INTO posting (operation_id, entry_id, line, account_id, amount)
    SELECT $1, e.id, u.line, u.account_id, u.amount
      FROM e, unnest($11::bigint[], $12::numeric[]) WITH ORDINALITY AS u(account_id, amount, line)
)
SELECT id, period FROM e`

// Post posts one entry through q: a pool (the entry is committed on its own, or with others
// posted at the same moment) or the caller's transaction (it commits or rolls back with the
// caller's other work). With an idempotency key,
// a replay of the same request returns the entry posted first (Replayed set) and a different
// request with the same key is a conflict (L4).
//
// Through the ledger's own pool, entries posted at the same moment share a transaction (see
// committer): each call still returns once its entry is committed, with its own outcome.
func (l *Ledger) Post(ctx context.Context, q db.Querier, in EntryInput) (Entry, error) {
	r, err := l.newRequest(in)
	if err != nil {
		return Entry{}, err
	}
	if p, ok := q.(*pgxpool.Pool); ok && p == l.pool {
		return l.group.post(ctx, l, r)
	}
	return l.postAlone(ctx, q, r)
}

// request is one entry on its way to the database, and what became of it.
type request struct {
	in       EntryInput
	accounts []int64
	amounts  []string
	fp       []byte
	out      Entry // the entry as posted; ID and Period come from the database
	inserted bool  // the statement inserted it: the entry is new

	// Through the committer: what Post returns, once done is closed.
	result   Entry
	failure  error
	answered bool
	done     chan struct{}
}

// answer gives a request posted through the committer its outcome, and wakes its caller.
func (r *request) answer(e Entry, err error) {
	r.result, r.failure, r.answered = e, err, true
	if r.done != nil {
		close(r.done)
	}
}

// newRequest validates an input and prepares what the statements need.
func (l *Ledger) newRequest(in EntryInput) (*request, error) {
	accounts, amounts, err := l.validate(&in)
	if err != nil {
		return nil, err
	}
	r := &request{in: in, accounts: accounts, amounts: amounts}
	if in.IdempotencyKey != "" {
		r.fp = fingerprint(&in, amounts)
	}
	r.out = Entry{
		EffectiveDate: in.EffectiveDate, Description: in.Description, Source: in.Source, Reference: in.Reference,
		Reverses: in.Reverses, IdempotencyKey: in.IdempotencyKey, RecordedAt: l.now().UTC().Truncate(time.Microsecond),
		RecordedBy: in.RecordedBy, Postings: in.Postings,
	}
	return r, nil
}

// postAlone posts r through q in one round trip: in its own transaction when q is a pool (a
// batch runs its statements in one implicit transaction), else in the caller's.
func (l *Ledger) postAlone(ctx context.Context, q db.Querier, r *request) (Entry, error) {
	in := &r.in
	r.inserted = false
	b := &pgx.Batch{}
	b.Queue(tokenSQL)
	b.Queue(postOneSQL, l.op, in.EffectiveDate, in.Description, in.Source, in.Reference, in.Reverses,
		in.IdempotencyKey, r.fp, r.out.RecordedAt, in.RecordedBy, r.accounts, r.amounts).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&r.out.ID, &r.out.Period)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // a replay, a conflict or no period: finish explains it
		}
		r.inserted = err == nil
		return err
	})
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return Entry{}, db.Translate("ledger.Post", err)
	}
	return l.finish(ctx, q, r)
}

// finish gives the outcome of r once its statement has run and its transaction committed (or,
// in a caller's transaction, succeeded).
func (l *Ledger) finish(ctx context.Context, q db.Querier, r *request) (Entry, error) {
	if r.inserted {
		return r.out, nil
	}
	// No row: either the key exists (a replay or a conflict), or no period can take the entry.
	if key := r.in.IdempotencyKey; key != "" {
		prior, priorFP, err := l.entryByKey(ctx, q, key)
		if err == nil {
			if string(priorFP) != string(r.fp) {
				return Entry{}, apperr.New(apperr.Conflict, "L4",
					"idempotency key %q was used for a different entry (%d)", key, prior.ID)
			}
			prior.Replayed = true
			return prior, nil
		}
		if apperr.CodeOf(err) != apperr.NotFound {
			return Entry{}, err
		}
	}
	return Entry{}, l.noPeriodError(r.in.EffectiveDate)
}

// noPeriodError explains why no booking period could take an entry dated d.
func (l *Ledger) noPeriodError(d time.Time) error {
	if d.Before(l.firstDay) {
		return apperr.New(apperr.Invalid, "L5", "%s is before the operation's first period", d.Format(time.DateOnly))
	}
	return apperr.New(apperr.Locked, "F1", "every period from %s on is locked: nothing can be booked", d.Format(time.DateOnly))
}

// entryByKey returns the entry with an idempotency key and its request fingerprint.
func (l *Ledger) entryByKey(ctx context.Context, q db.Querier, key string) (Entry, []byte, error) {
	var id int64
	var fp []byte
	err := q.QueryRow(ctx, `SELECT id, fingerprint FROM entry WHERE operation_id = $1 AND idempotency_key = $2`,
		l.op, key).Scan(&id, &fp)
	if err != nil {
		return Entry{}, nil, db.Translate("ledger.entryByKey", err)
	}
	e, err := l.entry(ctx, q, id)
	return e, fp, err
}

// Reverse posts the reversal of entry id: the same postings with their signs turned, with the
// original's effective date, so it lands in the original's period if that is still open and is
// a late item in the earliest open period otherwise (domain.md §6). An entry is reversed once.
func (l *Ledger) Reverse(ctx context.Context, q db.Querier, id int64, reason, by, key string) (Entry, error) {
	if reason == "" {
		return Entry{}, apperr.New(apperr.Invalid, "L6", "a reversal needs a reason")
	}
	orig, err := l.entry(ctx, q, id)
	if err != nil {
		return Entry{}, err
	}
	if orig.Reverses != 0 {
		return Entry{}, apperr.New(apperr.Invalid, "L6", "entry %d is itself a reversal and cannot be reversed", id)
	}
	in := EntryInput{
		EffectiveDate: orig.EffectiveDate, Source: orig.Source, Reference: orig.Reference, Reverses: id,
		Description: fmt.Sprintf("Reversal of entry %d: %s", id, reason), RecordedBy: by, IdempotencyKey: key,
	}
	for _, p := range orig.Postings {
		in.Postings = append(in.Postings, Posting{Account: p.Account, Amount: p.Amount.Neg()})
	}
	return l.Post(ctx, q, in)
}
