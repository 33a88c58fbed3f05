package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
)

// PostBatch posts many entries in the caller's transaction, set-based, in two round trips: one
// batch of queries for the idempotency keys already used, the periods and the entry ids, then the
// entries, their postings and the queue for sealing (which moves the balances) written by one
// INSERT of arrays for a few entries, by COPY for many. The schema checks the whole batch at
// commit, set-based. It is all or nothing with the caller's transaction.
//
// The result has one Entry per input, in order; inputs whose idempotency key was used before
// for the same request (or repeat a key earlier in the batch) come back Replayed.
func (l *Ledger) PostBatch(ctx context.Context, tx pgx.Tx, ins []EntryInput) ([]Entry, error) {
	if len(ins) == 0 {
		return nil, nil
	}
	accounts := make([][]int64, len(ins))
	amounts := make([][]string, len(ins))
	fps := make([][]byte, len(ins))
	var keys []string
	for i := range ins {
		var err error
		if accounts[i], amounts[i], err = l.validate(&ins[i]); err != nil {
			return nil, batchItemError(i, err)
		}
		if ins[i].IdempotencyKey != "" {
			fps[i] = fingerprint(&ins[i], amounts[i])
			keys = append(keys, ins[i].IdempotencyKey)
		}
	}

	// One round trip: the transaction's ledger token, its settings, the keys used before, the
	// periods and the new entries' ids.
	prior := map[string]priorKey{}
	var periods []PeriodState
	b := &pgx.Batch{}
	b.Queue(tokenSQL)
	if len(ins) >= bulkThreshold {
		// Tells the commit-time check to hash this transaction's rows rather than look each up.
		b.Queue(`SELECT set_config('infuse.ledger_bulk', 'on', true)`)
	}
	if len(keys) > 0 {
		b.Queue(priorKeysSQL, l.op, keys).Query(func(rows pgx.Rows) error {
			var key string
			var p priorKey
			_, err := pgx.ForEachRow(rows, []any{&key, &p.id, &p.period, &p.fp}, func() error {
				prior[key] = p
				return nil
			})
			return err
		})
	}
	b.Queue(periodsSQL, l.op).Query(func(rows pgx.Rows) (err error) {
		periods, err = collectPeriods(rows)
		return err
	})
	// Ids for every input: those of replays are left unused, as a rolled-back transaction leaves
	// its own.
	var ids []int64
	b.Queue(`SELECT nextval('entry_id_seq') FROM generate_series(1, $1)`, len(ins)).Query(func(rows pgx.Rows) (err error) {
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, db.Translate("ledger.PostBatch", err)
	}

	out := make([]Entry, len(ins))
	skip := make([]bool, len(ins))
	if len(keys) > 0 {
		seen := make(map[string]int, len(keys))
		for i := range ins {
			k := ins[i].IdempotencyKey
			if k == "" {
				continue
			}
			if p, ok := prior[k]; ok {
				if string(p.fp) != string(fps[i]) {
					return nil, batchItemError(i, apperr.New(apperr.Conflict, "L4",
						"idempotency key %q was used for a different entry (%d)", k, p.id))
				}
				out[i] = Entry{ID: p.id, Period: p.period, Replayed: true}
				skip[i] = true
				continue
			}
			if j, ok := seen[k]; ok {
				if string(fps[j]) != string(fps[i]) {
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
	}

	at := l.now().UTC().Truncate(time.Microsecond)
	var c batchColumns
	k := 0
	for i := range ins {
		if skip[i] {
			continue
		}
		in := &ins[i]
		period, ok := BookingPeriod(periods, in.EffectiveDate)
		if !ok {
			return nil, batchItemError(i, l.noPeriodError(in.EffectiveDate))
		}
		id := ids[k]
		k++
		out[i] = Entry{
			ID: id, EffectiveDate: in.EffectiveDate, Period: period, Description: in.Description, Source: in.Source,
			Reference: in.Reference, Reverses: in.Reverses, IdempotencyKey: in.IdempotencyKey, RecordedAt: at,
			RecordedBy: in.RecordedBy, Postings: in.Postings,
		}
		c.add(&out[i], fps[i], accounts[i])
	}
	for i := range out {
		if out[i].ID < 0 {
			first := out[-1-out[i].ID]
			out[i].ID, out[i].Period = first.ID, first.Period
		}
	}
	var err error
	if len(c.id) < copyThreshold {
		_, err = tx.Exec(ctx, insertFewSQL, l.op, at, c.id, c.date, c.period, c.description, c.source, c.reference,
			c.reverses, c.key, c.fp, c.by, c.pEntry, c.pLine, c.pAccount, c.pAmount)
	} else {
		err = l.copyMany(ctx, tx, at, &c)
	}
	if err != nil {
		return nil, db.Translate("ledger.PostBatch", err)
	}
	return out, nil
}

// copyThreshold is the batch size from which COPY writes a batch: below it, one INSERT of arrays
// (insertFewSQL) costs less than COPY's three statements, each a round trip and a start-up.
const copyThreshold = 64

// insertFewSQL writes a small batch's entries, postings and sealing queue in one statement.
const insertFewSQL = `
WITH e AS (
    INSERT INTO entry (operation_id, id, effective_date, period, description, source, reference,
                       reverses, idempotency_key, fingerprint, recorded_at, recorded_by)
    SELECT $1, u.id, u.d, u.period, u.description, u.source, u.reference, u.reverses, u.key, u.fp, $2, u.by
      FROM unnest($3::bigint[], $4::date[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[],
                  $11::bytea[], $12::text[]) AS u(id, d, period, description, source, reference, reverses, key, fp, by)
), p AS (
    INSERT INTO posting (operation_id, entry_id, line, account_id, amount)
    SELECT $1, u.entry_id, u.line, u.account_id, u.amount
      FROM unnest($13::bigint[], $14::smallint[], $15::bigint[], $16::numeric[]) AS u(entry_id, line, account_id, amount)
)
INSERT INTO seal_queue (operation_id, entry_id) SELECT $1, id FROM unnest($3::bigint[]) id`

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
	var rev *int64
	if e.Reverses != 0 {
		rev = &e.Reverses
	}
	var key *string
	if e.IdempotencyKey != "" {
		key = &e.IdempotencyKey
	}
	c.reverses, c.key = append(c.reverses, rev), append(c.key, key)
	for j, p := range e.Postings {
		c.pEntry, c.pLine = append(c.pEntry, e.ID), append(c.pLine, int16(j+1))
		c.pAccount, c.pAmount = append(c.pAccount, accounts[j]), append(c.pAmount, pence(p.Amount))
	}
}

// copyMany writes a large batch with COPY: its entries, their postings and the sealing queue.
func (l *Ledger) copyMany(ctx context.Context, tx pgx.Tx, at time.Time, c *batchColumns) error {
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"entry"}, []string{"operation_id", "id", "effective_date", "period",
		"description", "source", "reference", "reverses", "idempotency_key", "fingerprint", "recorded_at", "recorded_by"},
		pgx.CopyFromSlice(len(c.id), func(i int) ([]any, error) {
			return []any{l.op, c.id[i], c.date[i], c.period[i], c.description[i], c.source[i], c.reference[i],
				c.reverses[i], c.key[i], c.fp[i], at, c.by[i]}, nil
		})); err != nil {
		return err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"posting"}, []string{"operation_id", "entry_id", "line", "account_id", "amount"},
		pgx.CopyFromSlice(len(c.pEntry), func(i int) ([]any, error) {
			return []any{l.op, c.pEntry[i], c.pLine[i], c.pAccount[i], c.pAmount[i]}, nil
		})); err != nil {
		return err
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"seal_queue"}, []string{"operation_id", "entry_id"},
		pgx.CopyFromSlice(len(c.id), func(i int) ([]any, error) { return []any{l.op, c.id[i]}, nil }))
	return err
}

// bulkThreshold is the batch size from which the commit-time check hashes the transaction's rows.
const bulkThreshold = 1000

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
