package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ccr-infuse/infuse/internal/db"
)

// The chain (L5 in architecture.md's list, "tamper evidence"): every entry is sealed once, in the
// order the sealer takes it from the transactions waiting in seal_queue, as
//
//	digest = SHA-256(canonical bytes of the entry and its postings)
//	link(n) = SHA-256(link(n-1) || digest),  link(0) = 32 zero bytes
//
// Sealing runs in batches, apart from posting, so that it never serialises writers; the same
// transaction moves the sealed entries' balances, so writers never queue on a balance row either.
// A changed entry or posting changes its digest; a changed digest or link breaks every later link.

// canonVersion starts every digest, so that a future encoding can be told apart.
const canonVersion = "infuse-entry-v1"

// digestWriter appends length-prefixed fields, so that no two field lists encode alike.
type digestWriter struct {
	h   hash.Hash
	buf []byte
}

func (w *digestWriter) str(s string) {
	w.buf = binary.AppendUvarint(w.buf[:0], uint64(len(s)))
	w.buf = append(w.buf, s...)
	w.h.Write(w.buf)
}

func (w *digestWriter) int(v int64) {
	w.buf = binary.AppendVarint(w.buf[:0], v)
	w.h.Write(w.buf)
}

// canonEntry is an entry as the chain sees it.
type canonEntry struct {
	id             int64
	effectiveDate  time.Time
	period         string
	description    string
	source         string
	reference      string
	reverses       int64
	idempotencyKey string
	recordedAt     time.Time
	recordedBy     string
}

// canonPosting is a posting as the chain sees it; amount is PostgreSQL's text of the numeric.
type canonPosting struct {
	entryID   int64
	line      int16
	accountID int64
	amount    string
}

// digester computes entry digests, reusing its buffers.
type digester struct {
	op string
	w  digestWriter
}

func newDigester(op string) *digester {
	return &digester{op: op, w: digestWriter{h: sha256.New(), buf: make([]byte, 0, 256)}}
}

func (d *digester) digest(e *canonEntry, ps []canonPosting) [32]byte {
	w := &d.w
	w.h.Reset()
	w.str(canonVersion)
	w.str(d.op)
	w.int(e.id)
	w.str(e.effectiveDate.Format(time.DateOnly))
	w.str(e.period)
	w.str(e.description)
	w.str(e.source)
	w.str(e.reference)
	w.int(e.reverses)
	w.str(e.idempotencyKey)
	w.int(e.recordedAt.UnixMicro())
	w.str(e.recordedBy)
	w.int(int64(len(ps)))
	for _, p := range ps {
		w.int(int64(p.line))
		w.int(p.accountID)
		w.str(p.amount)
	}
	var out [32]byte
	w.h.Sum(out[:0])
	return out
}

func chainLink(prev []byte, digest [32]byte) [32]byte {
	var buf [64]byte
	copy(buf[:32], prev)
	copy(buf[32:], digest[:])
	return sha256.Sum256(buf[:])
}

const canonEntryColumns = `e.id, e.effective_date, e.period, e.description, e.source, e.reference,
	coalesce(e.reverses, 0), coalesce(e.idempotency_key, ''), e.recorded_at, e.recorded_by`

func scanCanonEntry(r pgx.Rows, e *canonEntry, extra ...any) error {
	return r.Scan(append([]any{&e.id, &e.effectiveDate, &e.period, &e.description, &e.source, &e.reference,
		&e.reverses, &e.idempotencyKey, &e.recordedAt, &e.recordedBy}, extra...)...)
}

// Position is the point in the chain a ledger reader saw: the last sealed entry and its link.
type Position struct {
	Seq         int64  // entries sealed
	LastEntryID int64  // the entry sealed last (0 when none)
	Link        []byte // its chain link
}

// sealBatchSize bounds one sealing transaction.
const sealBatchSize = 20000

// Seal seals every entry waiting in the queue and returns how many it sealed.
func (l *Ledger) Seal(ctx context.Context) (int, error) {
	total := 0
	for {
		n, taken, err := l.sealBatch(ctx)
		total += n
		if err != nil || taken < sealBatchSize {
			return total, err
		}
	}
}

// sealBatch seals the next entries waiting, at most sealBatchSize, and returns how many it
// sealed and how many it took from the queue. It takes the queued transactions in order and
// each one's entries in id order, after the last it took (sealed_to), and records how far it
// got: a transaction with none left leaves the queue. An entry sealed already (only a queue
// position moved back with the schema's triggers off can offer one) is passed over, not sealed
// twice; ledger verify names it.
func (l *Ledger) sealBatch(ctx context.Context) (n, taken int, err error) {
	err = db.WithTx(ctx, l.pool, func(tx pgx.Tx) error {
		n, taken = 0, 0
		var seq int64
		var link []byte
		if err := tx.QueryRow(ctx, `SELECT seq, link FROM chain_head WHERE operation_id = $1 FOR UPDATE`, l.op).
			Scan(&seq, &link); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT q.txid::text, e.id,
			       EXISTS (SELECT 1 FROM seal s WHERE s.entry_id = e.id AND s.operation_id = q.operation_id)
			FROM seal_queue q
			CROSS JOIN LATERAL (SELECT id FROM entry e WHERE e.txid = q.txid AND e.operation_id = q.operation_id
			                       AND e.id > q.sealed_to ORDER BY e.id LIMIT $2) e
			WHERE q.operation_id = $1 ORDER BY q.txid, e.id LIMIT $2`, l.op, sealBatchSize)
		if err != nil {
			return err
		}
		// The entries to seal, and each transaction taken with the last of its entries taken
		// (rows come in transaction order, each transaction's entries in id order).
		var ids, lastOf []int64
		var txids []string
		var txid string
		var id int64
		var sealed bool
		if _, err := pgx.ForEachRow(rows, []any{&txid, &id, &sealed}, func() error {
			taken++
			if !sealed {
				ids = append(ids, id)
			}
			if k := len(txids) - 1; k >= 0 && txids[k] == txid {
				lastOf[k] = id
			} else {
				txids, lastOf = append(txids, txid), append(lastOf, id)
			}
			return nil
		}); err != nil || taken == 0 {
			return err
		}
		now := l.now().UTC().Truncate(time.Microsecond)
		if len(ids) > 0 {
			if seq, link, err = l.sealEntries(ctx, tx, ids, seq, link, now); err != nil {
				return err
			}
		}
		// How far each transaction is sealed; those with nothing left leave the queue.
		b := &pgx.Batch{}
		b.Queue(`UPDATE seal_queue q SET sealed_to = u.id FROM unnest($2::text[], $3::bigint[]) AS u(txid, id)
			WHERE q.operation_id = $1 AND q.txid = u.txid::xid8`, l.op, txids, lastOf)
		b.Queue(`DELETE FROM seal_queue q WHERE q.operation_id = $1 AND q.txid = ANY($2::text[]::xid8[])
			  AND NOT EXISTS (SELECT 1 FROM seal_waiting w WHERE w.operation_id = q.operation_id AND w.txid = q.txid)`, l.op, txids)
		if len(ids) > 0 {
			b.Queue(`UPDATE chain_head SET seq = $2, link = $3, updated_at = $4 WHERE operation_id = $1`,
				l.op, seq, link, now)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		n = len(ids)
		return nil
	})
	return n, taken, db.Translate("ledger.Seal", err)
}

// sealEntries seals the entries ids in id order after the chain's position (seq, link), at now,
// moves their balances, and returns the new position.
func (l *Ledger) sealEntries(ctx context.Context, tx pgx.Tx, ids []int64, seq int64, link []byte, now time.Time) (int64, []byte, error) {
	postings, err := l.canonPostings(ctx, tx, ids)
	if err != nil {
		return 0, nil, err
	}
	rows, err := tx.Query(ctx, `SELECT `+canonEntryColumns+` FROM entry e
		WHERE e.operation_id = $1 AND e.id = ANY($2) ORDER BY e.id`, l.op, ids)
	if err != nil {
		return 0, nil, err
	}
	d := newDigester(l.op)
	seals := make([][]any, 0, len(ids))
	moves := balanceMoves{}
	var e canonEntry
	pi := 0
	for rows.Next() {
		if err := scanCanonEntry(rows, &e); err != nil {
			return 0, nil, err
		}
		start := pi
		for pi < len(postings) && postings[pi].entryID == e.id {
			if err := moves.add(postings[pi], e.period); err != nil {
				return 0, nil, err
			}
			pi++
		}
		dg := d.digest(&e, postings[start:pi])
		lk := chainLink(link, dg)
		seq++
		link = lk[:]
		seals = append(seals, []any{l.op, seq, e.id, dg[:], lk[:], now})
	}
	if err := rows.Err(); err != nil {
		return 0, nil, err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"seal"}, []string{"operation_id", "seq", "entry_id", "digest", "link", "sealed_at"},
		pgx.CopyFromRows(seals)); err != nil {
		return 0, nil, err
	}
	return seq, link, l.moveBalances(ctx, tx, moves)
}

// balanceMove is the net movement of one account in one booking period, in pence.
type balanceMove struct {
	pence    int64
	postings int64
}

type balanceMoves map[balanceKey]*balanceMove

func (m balanceMoves) add(p canonPosting, period string) error {
	pence, err := parsePence(p.amount)
	if err != nil {
		return err
	}
	k := balanceKey{p.accountID, period}
	mv := m[k]
	if mv == nil {
		mv = &balanceMove{}
		m[k] = mv
	}
	mv.pence += pence
	mv.postings++
	return nil
}

// moveBalances adds sealed entries' movements to the balances, in account order.
func (l *Ledger) moveBalances(ctx context.Context, tx pgx.Tx, moves balanceMoves) error {
	keys := make([]balanceKey, 0, len(moves))
	for k := range moves {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].account != keys[j].account {
			return keys[i].account < keys[j].account
		}
		return keys[i].period < keys[j].period
	})
	accounts := make([]int64, len(keys))
	periods := make([]string, len(keys))
	amounts := make([]string, len(keys))
	counts := make([]int64, len(keys))
	for i, k := range keys {
		accounts[i], periods[i], amounts[i], counts[i] = k.account, k.period, formatPence(moves[k].pence), moves[k].postings
	}
	_, err := tx.Exec(ctx, `INSERT INTO balance AS b (operation_id, account_id, period, amount, postings)
		SELECT $1, u.account_id, u.period, u.amount, u.postings
		  FROM unnest($2::bigint[], $3::text[], $4::numeric[], $5::bigint[]) WITH ORDINALITY AS u(account_id, period, amount, postings, n)
		 ORDER BY u.n
		ON CONFLICT (operation_id, account_id, period)
		DO UPDATE SET amount = b.amount + excluded.amount, postings = b.postings + excluded.postings`,
		l.op, accounts, periods, amounts, counts)
	return err
}

func (l *Ledger) canonPostings(ctx context.Context, q db.Querier, ids []int64) ([]canonPosting, error) {
	rows, err := q.Query(ctx, `SELECT entry_id, line, account_id, amount::text FROM posting
		WHERE operation_id = $1 AND entry_id = ANY($2) ORDER BY entry_id, line`, l.op, ids)
	if err != nil {
		return nil, err
	}
	var out []canonPosting
	var p canonPosting
	_, err = pgx.ForEachRow(rows, []any{&p.entryID, &p.line, &p.accountID, &p.amount}, func() error {
		out = append(out, p)
		return nil
	})
	return out, err
}

// Position returns the chain head: how far the ledger is sealed. Seal first to cover every
// committed entry.
func (l *Ledger) Position(ctx context.Context, q db.Querier) (Position, error) {
	var p Position
	err := q.QueryRow(ctx, `SELECT h.seq, h.link, coalesce(s.entry_id, 0) FROM chain_head h
		LEFT JOIN seal s ON s.operation_id = h.operation_id AND s.seq = h.seq
		WHERE h.operation_id = $1`, l.op).Scan(&p.Seq, &p.Link, &p.LastEntryID)
	return p, db.Translate("ledger.Position", err)
}
