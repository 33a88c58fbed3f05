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

// PostBatch posts many entries in the caller's transaction, set-based: one query for the
// idempotency keys already used, one for the periods, one for the entry ids, one COPY each for
// the entries and their postings, and one insert that queues them for sealing (which moves the
// balances). The schema checks the whole batch at commit, set-based. It is all or nothing with
// the caller's transaction.
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

	out := make([]Entry, len(ins))
	skip := make([]bool, len(ins))
	if len(keys) > 0 {
		prior, err := l.priorKeys(ctx, tx, keys)
		if err != nil {
			return nil, err
		}
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

	periods, err := l.Periods(ctx, tx)
	if err != nil {
		return nil, err
	}
	n := 0
	for i := range ins {
		if !skip[i] {
			n++
		}
	}
	ids, err := l.nextIDs(ctx, tx, n)
	if err != nil {
		return nil, err
	}
	at := l.now().UTC().Truncate(time.Microsecond)
	entryRows := make([][]any, 0, n)
	var postingRows [][]any
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
		entryRows = append(entryRows, []any{l.op, id, in.EffectiveDate, period, in.Description, in.Source, in.Reference,
			nullInt(in.Reverses), nullString(in.IdempotencyKey), fps[i], at, in.RecordedBy})
		for j, p := range in.Postings {
			postingRows = append(postingRows, []any{l.op, id, int16(j + 1), accounts[i][j], pence(p.Amount)})
		}
	}
	for i := range out {
		if out[i].ID < 0 {
			first := out[-1-out[i].ID]
			out[i].ID, out[i].Period = first.ID, first.Period
		}
	}
	if _, err := tx.Exec(ctx, tokenSQL); err != nil {
		return nil, db.Translate("ledger.PostBatch", err)
	}
	if len(entryRows) >= bulkThreshold {
		// Tells the commit-time check to hash this transaction's rows rather than look each up.
		if _, err := tx.Exec(ctx, `SELECT set_config('infuse.ledger_bulk', 'on', true)`); err != nil {
			return nil, db.Translate("ledger.PostBatch", err)
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"entry"}, []string{"operation_id", "id", "effective_date", "period",
		"description", "source", "reference", "reverses", "idempotency_key", "fingerprint", "recorded_at", "recorded_by"},
		pgx.CopyFromRows(entryRows)); err != nil {
		return nil, db.Translate("ledger.PostBatch", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"posting"}, []string{"operation_id", "entry_id", "line", "account_id", "amount"},
		pgx.CopyFromRows(postingRows)); err != nil {
		return nil, db.Translate("ledger.PostBatch", err)
	}
	queue := make([][]any, len(entryRows))
	for i, r := range entryRows {
		queue[i] = []any{l.op, r[1]}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"seal_queue"}, []string{"operation_id", "entry_id"}, pgx.CopyFromRows(queue)); err != nil {
		return nil, db.Translate("ledger.PostBatch", err)
	}
	return out, nil
}

// bulkThreshold is the batch size from which the commit-time check hashes the transaction's rows.
const bulkThreshold = 1000

type priorKey struct {
	id     int64
	period string
	fp     []byte
}

func (l *Ledger) priorKeys(ctx context.Context, q db.Querier, keys []string) (map[string]priorKey, error) {
	rows, err := q.Query(ctx, `SELECT idempotency_key, id, period, fingerprint FROM entry
		WHERE operation_id = $1 AND idempotency_key = ANY($2)`, l.op, keys)
	if err != nil {
		return nil, db.Translate("ledger.PostBatch", err)
	}
	out := map[string]priorKey{}
	var key string
	var p priorKey
	_, err = pgx.ForEachRow(rows, []any{&key, &p.id, &p.period, &p.fp}, func() error {
		out[key] = p
		return nil
	})
	return out, db.Translate("ledger.PostBatch", err)
}

// nextIDs draws n entry ids from the entry sequence in one round trip.
func (l *Ledger) nextIDs(ctx context.Context, q db.Querier, n int) ([]int64, error) {
	rows, err := q.Query(ctx, `SELECT nextval('entry_id_seq') FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, db.Translate("ledger.nextIDs", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, db.Translate("ledger.nextIDs", err)
}

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

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
