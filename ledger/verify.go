package ledger

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// Problem kinds found by Verify.
const (
	ProblemDigest   = "digest"   // an entry or its postings differ from what was sealed
	ProblemChain    = "chain"    // a seal's link does not follow from the one before it
	ProblemEntry    = "entry"    // an entry breaks L1 (fewer than two postings, or not summing to zero)
	ProblemBalance  = "balance"  // a stored balance differs from the sum of its postings
	ProblemTrial    = "trial"    // the trial balance is not zero
	ProblemUnsealed = "unsealed" // an entry is neither sealed nor waiting to be
	ProblemQueued   = "queued"   // a sealed entry waits to be sealed again: balance_live counts it twice
)

// Problem is one break that Verify found.
type Problem struct {
	Kind    string
	EntryID int64 // 0 when the problem is not about one entry
	Seq     int64 // chain position, 0 when not sealed or not about one seal
	Line    int   // posting line, 0 when not about one posting
	Message string

	key  string // the English format of Message, and its arguments (Text)
	args []any
}

// problem makes a Problem whose message is format with args.
func problem(kind string, entry, seq int64, line int, format string, args ...any) Problem {
	return Problem{Kind: kind, EntryID: entry, Seq: seq, Line: line, Message: fmt.Sprintf(format, args...), key: format, args: args}
}

// Text returns the problem's message as an apperr.Text, for a page to render in its language.
func (p Problem) Text() apperr.Text { return apperr.Text{Key: p.key, Args: p.args, Message: p.Message} }

// Report is what Verify found.
type Report struct {
	Entries  int64
	Postings int64
	Sealed   int64
	Waiting  int64 // entries queued for sealing (not an error)
	Head     Position
	Problems []Problem // the first maxProblems, first break first
	Elapsed  time.Duration
}

// OK reports whether the ledger verified clean.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// maxProblems bounds what a report lists; the first break is what matters.
const maxProblems = 100

type balanceKey struct {
	account int64
	period  string
}

// Verify recomputes the ledger from its rows: every entry's digest against its seal, every
// chain link, every entry's balance (L1), every stored balance against the postings of the sealed
// entries, and the trial balance. It reads only, from one snapshot on three connections: the
// entries, their postings and the chain are streamed at the same time.
func (l *Ledger) Verify(ctx context.Context) (*Report, error) {
	start := time.Now()
	rep, err := l.verify(ctx)
	if err != nil {
		return nil, apperr.Wrap("ledger.Verify", err)
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

func (l *Ledger) verify(ctx context.Context) (*Report, error) {
	txs, release, err := l.snapshot(ctx, 3)
	if err != nil {
		return nil, err
	}
	defer release()
	rep := &Report{}
	stored, err := l.storedBalances(ctx, txs[0])
	if err != nil {
		return nil, err
	}

	var entryProblems, chainProblems []Problem
	sums := map[balanceKey]*balanceMove{}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		entryProblems, err = l.verifyEntries(gctx, txs[0], txs[1], rep, sums)
		return err
	})
	g.Go(func() (err error) {
		chainProblems, err = l.verifyChain(gctx, txs[2], rep)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	all := append(append(entryProblems, chainProblems...), l.verifyBalances(stored, sums)...)
	sort.SliceStable(all, func(i, j int) bool {
		a, b := problemOrder(all[i]), problemOrder(all[j])
		return slices.Compare(a[:], b[:]) < 0
	})
	if len(all) > maxProblems {
		all = all[:maxProblems]
	}
	rep.Problems = all
	return rep, nil
}

// snapshot opens n read-only transactions on n connections that all see the same snapshot.
func (l *Ledger) snapshot(ctx context.Context, n int) ([]pgx.Tx, func(), error) {
	var conns []*pgxpool.Conn
	var txs []pgx.Tx
	release := func() {
		for _, tx := range txs {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
		for _, c := range conns {
			c.Release()
		}
	}
	var snap string
	for i := range n {
		c, err := l.pool.Acquire(ctx)
		if err != nil {
			release()
			return nil, nil, err
		}
		conns = append(conns, c)
		tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			release()
			return nil, nil, err
		}
		txs = append(txs, tx)
		if i == 0 {
			err = tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snap)
		} else {
			_, err = tx.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+snap+`'`)
		}
		if err != nil {
			release()
			return nil, nil, err
		}
	}
	return txs, release, nil
}

type storedBalance struct {
	pence    int64
	postings int64
	text     string
}

func (l *Ledger) storedBalances(ctx context.Context, tx pgx.Tx) (map[balanceKey]storedBalance, error) {
	rows, err := tx.Query(ctx, `SELECT account_id, period, amount::text, postings FROM balance WHERE operation_id = $1`, l.op)
	if err != nil {
		return nil, err
	}
	out := map[balanceKey]storedBalance{}
	var k balanceKey
	var b storedBalance
	_, err = pgx.ForEachRow(rows, []any{&k.account, &k.period, &b.text, &b.postings}, func() error {
		var err error
		b.pence, err = parsePence(b.text)
		out[k] = b
		return err
	})
	return out, err
}

// problemOrder puts the earliest break first: by chain position, then entry, then the rest.
func problemOrder(p Problem) [3]int64 {
	switch {
	case p.Seq > 0:
		return [3]int64{0, p.Seq, p.EntryID}
	case p.EntryID > 0:
		return [3]int64{1, p.EntryID, int64(p.Line)}
	default:
		return [3]int64{2, 0, 0}
	}
}

// verifyEntries streams entries (with their seals) and postings, both in entry order, on two
// connections of one snapshot, and merges them.
func (l *Ledger) verifyEntries(ctx context.Context, etx, ptx pgx.Tx, rep *Report, sums balanceMoves) ([]Problem, error) {
	// The queue is a second's worth of transactions: each entry's place in it comes with the
	// entry. An entry waits when its transaction is queued and not sealed as far as the entry.
	erows, err := etx.Query(ctx, `SELECT `+canonEntryColumns+`, coalesce(s.seq, 0), s.digest, q.sealed_to IS NOT NULL AND e.id > q.sealed_to
		FROM entry e LEFT JOIN seal s ON s.entry_id = e.id AND s.operation_id = e.operation_id
		LEFT JOIN seal_queue q ON q.operation_id = e.operation_id AND q.txid = e.txid
		WHERE e.operation_id = $1 ORDER BY e.id`, l.op)
	if err != nil {
		return nil, err
	}
	defer erows.Close()
	prows, err := ptx.Query(ctx, `SELECT entry_id, line, account_id, amount::text FROM posting
		WHERE operation_id = $1 ORDER BY entry_id, line`, l.op)
	if err != nil {
		return nil, err
	}
	defer prows.Close()

	var problems []Problem
	add := func(p Problem) {
		if len(problems) < maxProblems {
			problems = append(problems, p)
		}
	}
	d := newDigester(l.op)
	var e canonEntry
	var seq int64
	var stored []byte
	var waiting bool
	var ps []canonPosting
	var next canonPosting
	haveNext := false
	advance := func() error {
		haveNext = false
		if prows.Next() {
			if err := prows.Scan(&next.entryID, &next.line, &next.accountID, &next.amount); err != nil {
				return err
			}
			haveNext = true
			rep.Postings++
		}
		return prows.Err()
	}
	if err := advance(); err != nil {
		return nil, err
	}
	for erows.Next() {
		if err := scanCanonEntry(erows, &e, &seq, &stored, &waiting); err != nil {
			return nil, err
		}
		rep.Entries++
		for haveNext && next.entryID < e.id {
			add(problem(ProblemEntry, next.entryID, 0, int(next.line), "posting %d.%d belongs to no entry", next.entryID, next.line))
			if err := advance(); err != nil {
				return nil, err
			}
		}
		ps = ps[:0]
		var sum int64
		for haveNext && next.entryID == e.id {
			ps = append(ps, next)
			pence, err := parsePence(next.amount)
			if err != nil {
				return nil, err
			}
			sum += pence
			if seq > 0 { // the stored balances hold the sealed entries
				if err := sums.add(next, e.period); err != nil {
					return nil, err
				}
			}
			if err := advance(); err != nil {
				return nil, err
			}
		}
		if len(ps) < 2 || sum != 0 {
			add(problem(ProblemEntry, e.id, seq, 0, "entry %d has %d postings summing to %s", e.id, len(ps), formatPence(sum)))
		}
		switch {
		case seq > 0:
			dg := d.digest(&e, ps)
			if !bytes.Equal(dg[:], stored) {
				add(problem(ProblemDigest, e.id, seq, 0,
					"entry %d (chain position %d) or one of its postings was altered after sealing: now %s", e.id, seq, describePostings(ps)))
			}
			if waiting {
				add(problem(ProblemQueued, e.id, seq, 0,
					"entry %d (chain position %d) is sealed and waits in the sealing queue again: live balances count it twice until the sealer drops it", e.id, seq))
			}
		case !waiting:
			add(problem(ProblemUnsealed, e.id, 0, 0, "entry %d is neither sealed nor waiting to be sealed", e.id))
		default:
			rep.Waiting++
		}
	}
	if err := erows.Err(); err != nil {
		return nil, err
	}
	for haveNext {
		add(problem(ProblemEntry, next.entryID, 0, int(next.line), "posting %d.%d belongs to no entry", next.entryID, next.line))
		if err := advance(); err != nil {
			return nil, err
		}
	}
	return problems, nil
}

func describePostings(ps []canonPosting) apperr.Texts {
	parts := make(apperr.Texts, len(ps))
	for i, p := range ps {
		t := apperr.Text{Key: "line %d account %d amount %s", Args: []any{p.line, p.accountID, p.amount}}
		t.Message = fmt.Sprintf(t.Key, t.Args...)
		parts[i] = t
	}
	return parts
}

// verifyChain walks the seals in chain order and recomputes every link.
func (l *Ledger) verifyChain(ctx context.Context, tx pgx.Tx, rep *Report) ([]Problem, error) {
	var problems []Problem
	var headSeq int64
	var headLink []byte
	if err := tx.QueryRow(ctx, `SELECT seq, link FROM chain_head WHERE operation_id = $1`, l.op).
		Scan(&headSeq, &headLink); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT seq, entry_id, digest, link FROM seal
		WHERE operation_id = $1 AND seq <= $2 ORDER BY seq`, l.op, headSeq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	prev := make([]byte, 32)
	var want, seq, entryID int64
	var digest, link []byte
	var dg [32]byte
	for rows.Next() {
		if err := rows.Scan(&seq, &entryID, &digest, &link); err != nil {
			return nil, err
		}
		want++
		rep.Sealed++
		if seq != want {
			problems = append(problems, problem(ProblemChain, 0, want, 0, "chain position %d is missing", want))
			return problems, nil
		}
		copy(dg[:], digest)
		lk := chainLink(prev, dg)
		if !bytes.Equal(lk[:], link) {
			problems = append(problems, problem(ProblemChain, entryID, seq, 0,
				"chain broken at position %d (entry %d): the seal's link does not follow from the one before", seq, entryID))
			return problems, nil
		}
		prev = link
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if want != headSeq || !bytes.Equal(prev, headLink) {
		problems = append(problems, problem(ProblemChain, 0, headSeq, 0, "the chain head (position %d, %s) does not match the seals (position %d)",
			headSeq, hex.EncodeToString(headLink), want))
	}
	rep.Head = Position{Seq: want, LastEntryID: entryID, Link: prev}
	return problems, nil
}

// verifyBalances compares the stored balances with the sealed entries' postings and checks the
// trial balance.
func (l *Ledger) verifyBalances(stored map[balanceKey]storedBalance, sums balanceMoves) []Problem {
	var problems []Problem
	var trial, total int64
	for k, b := range stored {
		total += b.pence
		var want balanceMove
		if m := sums[k]; m != nil {
			want = *m
		}
		if b.pence != want.pence || b.postings != want.postings {
			problems = append(problems, problem(ProblemBalance, 0, 0, 0,
				"balance of %s in %s is %s over %d postings; its sealed postings sum to %s over %d",
				l.accountName(k.account), k.period, b.text, b.postings, formatPence(want.pence), want.postings))
		}
	}
	for k, m := range sums {
		trial += m.pence
		if _, ok := stored[k]; !ok {
			problems = append(problems, problem(ProblemBalance, 0, 0, 0,
				"%s has sealed postings in %s summing to %s but no stored balance", l.accountName(k.account), k.period, formatPence(m.pence)))
		}
	}
	if trial != 0 || total != 0 {
		problems = append(problems, problem(ProblemTrial, 0, 0, 0,
			"the trial balance is not zero: sealed postings sum to %s, stored balances to %s", formatPence(trial), formatPence(total)))
	}
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Message < problems[j].Message })
	return problems
}

func (l *Ledger) accountName(id int64) string {
	if a, ok := l.AccountByID(id); ok {
		return a.Code
	}
	return fmt.Sprintf("account %d", id)
}

// parsePence reads PostgreSQL's text of a numeric(16,2) ("-123.40") as pence.
func parsePence(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 2 {
		return 0, fmt.Errorf("ledger: amount %q is not in pence", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, err
	}
	v := w*100 + f
	if neg {
		v = -v
	}
	return v, nil
}

// formatPence writes v pence as PostgreSQL writes a numeric(16,2), and decimal's StringFixed(2).
func formatPence(v int64) string {
	var b [24]byte
	out := b[:0]
	u := uint64(v)
	if v < 0 {
		out, u = append(out, '-'), -u
	}
	out = strconv.AppendUint(out, u/100, 10)
	return string(append(out, '.', byte('0'+u%100/10), byte('0'+u%10)))
}
