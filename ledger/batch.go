package ledger

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
)

// PostBatch posts many entries in the caller's transaction, set-based: one batch of queries for
// the periods, the entry ids and (for a small batch) the idempotency keys already used, then the
// entries and their postings written by one INSERT of arrays for a few entries, by COPY for many.
// The schema checks the whole batch at commit, set-based, and queues it for sealing (which moves
// the balances) in one row. It is all or nothing with the caller's transaction.
//
// A batch with keys is written inside a savepoint. A large one is written without looking its
// keys up first: new keys are the rule, and entry_idempotency_uq checks each key as it is
// written anyway. A small one looks them up first, but another transaction may write one of them
// before this one does (the same request sent twice at once). Either way, if
// entry_idempotency_uq refuses the write, the savepoint is rolled back and the batch written
// again with the keys looked up: a key used since for the same request is then a replay.
//
// The result has one Entry per input, in order; inputs whose idempotency key was used before
// for the same request (or repeat a key earlier in the batch) come back Replayed.
func (l *Ledger) PostBatch(ctx context.Context, tx pgx.Tx, ins []EntryInput) ([]Entry, error) {
	if len(ins) == 0 {
		return nil, nil
	}
	bp := batchPlan{ins: ins, accounts: make([][]int64, len(ins)), fps: make([][]byte, len(ins))}
	var keys []string
	for i := range ins {
		if ins[i].IdempotencyKey != "" {
			keys = append(keys, ins[i].IdempotencyKey)
		}
	}
	lookFirst := len(keys) > 0 && len(ins) < bulkThreshold
	// A large batch is validated while its first round trip is out: each takes tens of
	// milliseconds, one in this process and one in the server. The round trip takes the
	// transaction's token and ids whether or not the batch proves valid; the commit-time check
	// of a transaction that then writes nothing finds nothing, and ids may go unused. A small
	// batch is validated first, so that an invalid one costs the database nothing.
	validated := func() error { return nil }
	if len(ins) >= bulkThreshold {
		done := make(chan error, 1)
		go func() { done <- l.validateBatch(&bp) }()
		validated = func() error { return <-done }
	} else if err := l.validateBatch(&bp); err != nil {
		return nil, err
	}

	// One round trip: the transaction's ledger token, its settings, the keys used before (for a
	// small batch), the periods and the new entries' ids.
	prior := map[string]priorKey{}
	b := &pgx.Batch{}
	b.Queue(tokenSQL)
	if len(ins) >= bulkThreshold {
		// Tells the commit-time check to hash this transaction's rows rather than look each up.
		b.Queue(`SELECT set_config('infuse.ledger_bulk', 'on', true)`)
	}
	if lookFirst {
		queuePriorKeys(b, l.op, keys, prior)
	}
	b.Queue(periodsSQL, l.op).Query(func(rows pgx.Rows) (err error) {
		bp.periods, err = collectPeriods(rows)
		return err
	})
	// Ids for every input: those of replays are left unused, as a rolled-back transaction leaves
	// its own.
	b.Queue(`SELECT nextval('entry_id_seq') FROM generate_series(1, $1)`, len(ins)).Query(func(rows pgx.Rows) (err error) {
		bp.ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	// A failed round trip comes first: it may have ended the caller's transaction, which the
	// caller must learn even when the batch was invalid too.
	sent := tx.SendBatch(ctx, b).Close()
	invalid := validated()
	if sent != nil {
		return nil, db.Translate("ledger.PostBatch", sent)
	}
	if invalid != nil {
		return nil, invalid
	}
	bp.at = l.now().UTC().Truncate(time.Microsecond)

	if len(keys) > 0 {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return nil, db.Translate("ledger.PostBatch", err)
		}
		out, err := l.writeBatch(ctx, sp, &bp, prior)
		if err == nil {
			if err := sp.Commit(ctx); err != nil {
				return nil, db.Translate("ledger.PostBatch", err)
			}
			return out, nil
		}
		if pg := (*pgconn.PgError)(nil); !errors.As(err, &pg) || pg.ConstraintName != "entry_idempotency_uq" {
			return nil, db.Translate("ledger.PostBatch", err)
		}
		// A key was used before, or since the keys were looked up: look them up, and write the
		// batch again.
		if err := sp.Rollback(ctx); err != nil {
			return nil, db.Translate("ledger.PostBatch", err)
		}
		b := &pgx.Batch{}
		queuePriorKeys(b, l.op, keys, prior)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, db.Translate("ledger.PostBatch", err)
		}
	}
	out, err := l.writeBatch(ctx, tx, &bp, prior)
	if err != nil {
		return nil, db.Translate("ledger.PostBatch", err)
	}
	return out, nil
}

// validateBatch validates bp's inputs, resolving their accounts and computing their request
// fingerprints, and returns the error of the first invalid one. A large batch is validated by
// as many goroutines as there are processors, each taking a contiguous share: only the
// server's side of PostBatch's first round trip runs alongside.
func (l *Ledger) validateBatch(bp *batchPlan) error {
	validate := func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			in := &bp.ins[i]
			accounts, amounts, err := l.validate(in)
			if err != nil {
				return batchItemError(i, err)
			}
			bp.accounts[i] = accounts
			if in.IdempotencyKey != "" {
				bp.fps[i] = fingerprint(in, amounts)
			}
		}
		return nil
	}
	n := len(bp.ins)
	workers := min(runtime.GOMAXPROCS(0), 1+n/validateShare)
	if workers == 1 {
		return validate(0, n)
	}
	errs := make([]error, workers)
	share := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { errs[w] = validate(w*share, min(n, (w+1)*share)) })
	}
	wg.Wait()
	for _, err := range errs { // the shares are in order: the first error is the first input's
		if err != nil {
			return err
		}
	}
	return nil
}

// validateShare is the least number of inputs worth a goroutine of their own in validateBatch.
const validateShare = 4096

// batchPlan is a validated batch: its inputs, their accounts and request fingerprints, the
// periods, the ids reserved for it and the time it is recorded at.
type batchPlan struct {
	ins      []EntryInput
	accounts [][]int64
	fps      [][]byte
	periods  []PeriodState
	ids      []int64
	at       time.Time
}

// writeBatch writes the entries of bp that are new, given the keys used before (prior): a key of
// prior is a replay of the entry that holds it, or a conflict (L4), and a key repeated within the
// batch a replay of its first use, or a conflict. Errors of the write are returned untranslated.
func (l *Ledger) writeBatch(ctx context.Context, tx pgx.Tx, bp *batchPlan, prior map[string]priorKey) ([]Entry, error) {
	ins := bp.ins
	out := make([]Entry, len(ins))
	skip := make([]bool, len(ins))
	seen := map[string]int{}
	for i := range ins {
		k := ins[i].IdempotencyKey
		if k == "" {
			continue
		}
		if p, ok := prior[k]; ok {
			if string(p.fp) != string(bp.fps[i]) {
				return nil, batchItemError(i, apperr.New(apperr.Conflict, "L4",
					"idempotency key %q was used for a different entry (%d)", k, p.id))
			}
			out[i] = Entry{ID: p.id, Period: p.period, Replayed: true}
			skip[i] = true
			continue
		}
		if j, ok := seen[k]; ok {
			if string(bp.fps[j]) != string(bp.fps[i]) {
				return nil, batchItemError(i, apperr.New(apperr.Conflict, "L4",
					"idempotency key %q is used by entry %d of the batch for a different entry", k, j+1))
			}
			skip[i] = true
			out[i].Replayed = true
			out[i].ID = -1 - int64(j) // resolved below, once entry j has its id
			continue
		}
		seen[k] = i
	}

	written := make([]int, 0, len(ins)) // the inputs written, in order
	for i := range ins {
		if skip[i] {
			continue
		}
		in := &ins[i]
		period, ok := BookingPeriod(bp.periods, in.EffectiveDate)
		if !ok {
			return nil, batchItemError(i, l.noPeriodError(in.EffectiveDate))
		}
		out[i] = Entry{
			ID: bp.ids[len(written)], EffectiveDate: in.EffectiveDate, Period: period, Description: in.Description, Source: in.Source,
			Reference: in.Reference, Reverses: in.Reverses, IdempotencyKey: in.IdempotencyKey, RecordedAt: bp.at,
			RecordedBy: in.RecordedBy, Postings: in.Postings,
		}
		written = append(written, i)
	}
	for i := range out {
		if out[i].ID < 0 {
			first := out[-1-out[i].ID]
			out[i].ID, out[i].Period = first.ID, first.Period
		}
	}
	if len(written) < copyThreshold {
		var c batchColumns
		for _, i := range written {
			c.add(&out[i], bp.fps[i], bp.accounts[i])
		}
		_, err := tx.Exec(ctx, insertFewSQL, l.op, bp.at, c.id, c.date, c.period, c.description, c.source, c.reference,
			c.reverses, c.key, c.fp, c.by, c.pEntry, c.pLine, c.pAccount, c.pAmount)
		return out, err
	}
	return out, l.copyMany(ctx, tx, bp, out, written)
}

// copyThreshold is the batch size from which COPY writes a batch: below it, one INSERT of arrays
// (insertFewSQL) costs less than COPY's three statements, each a round trip and a start-up.
const copyThreshold = 64

// insertFewSQL writes a small batch's entries and postings in one statement.
const insertFewSQL = `
WITH e AS (
    INSERT INTO entry (operation_id, id, effective_date, period, description, source, reference,
                       reverses, idempotency_key, fingerprint, recorded_at, recorded_by)
    SELECT $1, u.id, u.d, u.period, u.description, u.source, u.reference, u.reverses, u.key, u.fp, $2, u.by
      FROM unnest($3::bigint[], $4::date[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[],
                  $11::bytea[], $12::text[]) AS u(id, d, period, description, source, reference, reverses, key, fp, by)
)
INSERT INTO posting (operation_id, entry_id, line, account_id, amount)
SELECT $1, u.entry_id, u.line, u.account_id, u.amount
  FROM unnest($13::bigint[], $14::smallint[], $15::bigint[], $16::numeric[]) AS u(entry_id, line, account_id, amount)`

// batchColumns are a batch's new entries and postings, column by column.
type batchColumns struct {
	id                                         []int64
	date                                       []time.Time
	period, description, source, reference, by []string
	reverses                                   []*int64
	key                                        []*string
	fp                                         [][]byte
	pEntry, pAccount                           []int64
	pLine                                      []int16
	pAmount                                    []pgtype.Numeric
}

func (c *batchColumns) add(e *Entry, fp []byte, accounts []int64) {
	c.id, c.date, c.period = append(c.id, e.ID), append(c.date, e.EffectiveDate), append(c.period, e.Period)
	c.description, c.source, c.reference = append(c.description, e.Description), append(c.source, e.Source), append(c.reference, e.Reference)
	c.by, c.fp = append(c.by, e.RecordedBy), append(c.fp, fp)
	rev, key := e.nullables()
	c.reverses, c.key = append(c.reverses, rev), append(c.key, key)
	for j, p := range e.Postings {
		c.pEntry, c.pLine = append(c.pEntry, e.ID), append(c.pLine, int16(j+1))
		c.pAccount, c.pAmount = append(c.pAccount, accounts[j]), append(c.pAmount, pence(p.Amount))
	}
}

// nullables gives e's entry id reversed and its idempotency key as the database holds them:
// NULL (nil) for none.
func (e *Entry) nullables() (reverses *int64, key *string) {
	if e.Reverses != 0 {
		reverses = &e.Reverses
	}
	if e.IdempotencyKey != "" {
		key = &e.IdempotencyKey
	}
	return reverses, key
}

// copyMany writes a large batch with COPY: the entries out[i] for i in written and their
// postings. pgx encodes rows on a goroutine of its own while the server writes the
// rows already sent, so each row is built as it is asked for, not beforehand: building the rows
// of 50,000 entries first took 75-110 ms of the batch's 1.5 s, with the server idle.
func (l *Ledger) copyMany(ctx context.Context, tx pgx.Tx, bp *batchPlan, out []Entry, written []int) error {
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"entry"}, []string{"operation_id", "id", "effective_date", "period",
		"description", "source", "reference", "reverses", "idempotency_key", "fingerprint", "recorded_at", "recorded_by"},
		rowsOf(written, func(i int) []any {
			e := &out[i]
			rev, key := e.nullables()
			return []any{l.op, e.ID, e.EffectiveDate, e.Period, e.Description, e.Source, e.Reference, rev, key, bp.fps[i], bp.at, e.RecordedBy}
		})); err != nil {
		return err
	}
	n, line := 0, 0 // the next posting is line line+1 of the entry out[written[n]]
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"posting"}, []string{"operation_id", "entry_id", "line", "account_id", "amount"},
		pgx.CopyFromFunc(func() ([]any, error) {
			for n < len(written) && line == len(out[written[n]].Postings) {
				n, line = n+1, 0
			}
			if n == len(written) {
				return nil, nil
			}
			i := written[n]
			line++
			return []any{l.op, out[i].ID, int16(line), bp.accounts[i][line-1], pence(out[i].Postings[line-1].Amount)}, nil
		}))
	return err
}

// rowsOf is a COPY source of one row, row(i), for each i of written in turn.
func rowsOf(written []int, row func(i int) []any) pgx.CopyFromSource {
	n := 0
	return pgx.CopyFromFunc(func() ([]any, error) {
		if n == len(written) {
			return nil, nil
		}
		n++
		return row(written[n-1]), nil
	})
}

// bulkThreshold is the batch size from which the commit-time check hashes the transaction's rows,
// and from which PostBatch writes a batch before looking up its keys.
const bulkThreshold = 1000

// queuePriorKeys queues the lookup of the keys used before, into prior.
func queuePriorKeys(b *pgx.Batch, op string, keys []string, prior map[string]priorKey) {
	b.Queue(priorKeysSQL, op, keys).Query(func(rows pgx.Rows) error {
		var key string
		var p priorKey
		_, err := pgx.ForEachRow(rows, []any{&key, &p.id, &p.period, &p.fp}, func() error {
			prior[key] = p
			return nil
		})
		return err
	})
}

type priorKey struct {
	id     int64
	period string
	fp     []byte
}

// priorKeysSQL finds the entries that used idempotency keys ($2) already, one lookup of
// entry_idempotency_uq a key. The operation is tested outside the lookup (OFFSET 0 keeps it
// there): inside, the planner could take "operation_id = $1" to the primary key and, with the
// statistics of a young table, read every entry of the operation for each key.
const priorKeysSQL = `SELECT e.idempotency_key, e.id, e.period, e.fingerprint
	FROM unnest($2::text[]) k(key)
	CROSS JOIN LATERAL (SELECT operation_id, idempotency_key, id, period, fingerprint FROM entry
	                     WHERE idempotency_key = k.key OFFSET 0) e
	WHERE e.operation_id = $1`

// pence gives COPY an amount (validated to two decimal places) in pgx's own numeric type, which
// it encodes directly; a string or decimal.Decimal would go through a slower, failing first try.
func pence(d decimal.Decimal) pgtype.Numeric {
	return pgtype.Numeric{Int: d.Shift(2).BigInt(), Exp: -2, Valid: true}
}

func batchItemError(i int, err error) error {
	e := apperr.As(err)
	if e == nil {
		return err
	}
	c := *e
	c.Message = fmt.Sprintf("entry %d of the batch: %s", i+1, e.Message)
	return &c
}
