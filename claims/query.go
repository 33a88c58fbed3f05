package claims

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

// The queries that feed the claim computation. Everything is read in one REPEATABLE READ
// snapshot, and its cost follows the claim period's lines, not the ledger's history: the
// cumulative figures come from the per-period balance rows (a few dozen accounts per period),
// and only the checks of the period itself (late items, the line reconciliation) read its
// entries and lines, through their period indexes.

// snapshot is what one compilation read.
type snapshot struct {
	position ledger.Position
	periods  []PeriodSums // every claim period up to and including the claim's
	basis    []byte       // SHA-256 of the balance rows of every period up to the claim's (basisDigest)
	facts    LedgerFacts
	unsealed bool     // entries of these periods wait to be sealed: the position does not cover them
	tb       []TBLine // the trial balance through the claim period, in account order

	sealed             int           // entries the compilation sealed first
	sealTime, readTime time.Duration // how long sealing and reading (and computing) took
}

// accountRole says what an account means to a claim.
type accountRole struct {
	heading string // a cash heading's expenditure account
	inkind  string // an authority's in-kind expenditure account
	match   string // an authority's in-kind match income account
	flat    bool   // the flat-rate heading's account: never posted to (R6.4)
}

// roles maps the ledger's account ids to what they mean to a claim.
func (s *Service) roles() (map[int64]accountRole, map[string][]string, []int64) {
	out := map[int64]accountRole{}
	headingAccts := map[string][]string{}
	var lineAccounts []int64 // accounts a line of the transaction list or officer time moves
	for _, h := range s.prog.Headings {
		switch h.Kind {
		case programme.KindCash, programme.KindFlat:
			a, err := s.ledger.Account(ledger.HeadingAccount(h.Code))
			if err != nil {
				continue
			}
			if h.Kind == programme.KindCash {
				out[a.ID] = accountRole{heading: h.Code}
				headingAccts[h.Code] = []string{a.Code}
			} else {
				out[a.ID] = accountRole{flat: true}
			}
			lineAccounts = append(lineAccounts, a.ID)
		case programme.KindInKind:
			for _, au := range s.prog.Authorities {
				if a, err := s.ledger.Account(ledger.InKind(au.Code)); err == nil {
					out[a.ID] = accountRole{inkind: au.Code}
					headingAccts[h.Code] = append(headingAccts[h.Code], a.Code)
					lineAccounts = append(lineAccounts, a.ID)
				}
				if a, err := s.ledger.Account(ledger.Match(au.Code)); err == nil {
					out[a.ID] = accountRole{match: au.Code}
				}
			}
		}
	}
	return out, headingAccts, lineAccounts
}

// read reads what the claim of per needs, in tx (a REPEATABLE READ snapshot).
func (s *Service) read(ctx context.Context, tx pgx.Tx, per Period) (*snapshot, error) {
	op := s.prog.OperationID
	snap := &snapshot{}
	var err error
	if snap.position, err = s.ledger.Position(ctx, tx); err != nil {
		return nil, err
	}
	codes := periodsTo(s.prog, per)
	if snap.unsealed, err = s.unsealedIn(ctx, tx, codes); err != nil {
		return nil, err
	}

	// The per-period balances of every period up to the claim's: the period and cumulative
	// figures and the trial balance, without reading a single posting. Once the claim's periods
	// have no entry waiting for the sealer (checked above), the balance table holds all of them.
	// (The ledger's balance_live view would add the waiting postings, but its plan reads the
	// posting table, whose size is the whole history.)
	roles, headingAccts, lineAccounts := s.roles()
	byCode := map[string]*PeriodSums{}
	for _, c := range codes {
		snap.periods = append(snap.periods, PeriodSums{Code: c, Headings: map[string]decimal.Decimal{},
			InKind: map[string]decimal.Decimal{}, Match: map[string]decimal.Decimal{}})
	}
	for i := range snap.periods {
		byCode[snap.periods[i].Code] = &snap.periods[i]
	}
	rows, err := tx.Query(ctx, basisSQL, op, codes)
	if err != nil {
		return nil, err
	}
	var (
		code         string
		acct         int64
		amount       decimal.Decimal
		postings     int64
		linePostings int64 // postings on line accounts in the claim period
		basis        basisDigest
		tb           = map[int64]decimal.Decimal{}
	)
	_, err = pgx.ForEachRow(rows, []any{&code, &acct, &amount, &postings}, func() error {
		ps := byCode[code]
		if ps == nil {
			return fmt.Errorf("balance of account %d in %s, which is not a claim period up to %s", acct, code, per.Code)
		}
		tb[acct] = tb[acct].Add(amount)
		r := roles[acct]
		switch {
		case r.heading != "":
			ps.Headings[r.heading] = ps.Headings[r.heading].Add(amount)
		case r.inkind != "":
			ps.InKind[r.inkind] = ps.InKind[r.inkind].Add(amount)
		case r.match != "":
			ps.Match[r.match] = ps.Match[r.match].Sub(amount)
		}
		basis.add(code, acct, amount, postings)
		if code == per.Code && (r.heading != "" || r.inkind != "" || r.flat) {
			linePostings += postings
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	snap.basis = basis.sum()

	// The trial balance through the claim period: every account of the chart, in id order.
	snap.facts.TrialBalance = map[string]decimal.Decimal{}
	for _, a := range s.ledger.Accounts() {
		snap.facts.TrialBalance[a.Code] = tb[a.ID]
		snap.tb = append(snap.tb, TBLine{Code: a.Code, Balance: tb[a.ID]})
	}
	snap.facts.HeadingAccounts = headingAccts

	// C7: lines booked in the period whose effective date lies in an earlier period: officer
	// time, expenditure lines and their corrections. The claim's own entries (a WEFO payment
	// dated before the period it lands in, say) are not lines of the claim.
	// The period's entries with an earlier date are found first, in one pass over the period's
	// heap pages (they are few, most often none), and only then matched with the lines. Left to
	// itself, the planner looked each of the period's lines up in entry_pkey: 83,000 random
	// probes, 370 ms of a 2,000,000-entry ledger against 34 ms this way, and slower the longer
	// the history.
	rows, err = tx.Query(ctx, `WITH early AS MATERIALIZED (
		    SELECT id FROM entry WHERE operation_id = $1 AND period = $2 AND effective_date < $3)
		SELECT id FROM early
		 WHERE id IN (SELECT entry_id FROM time_entry WHERE operation_id = $1 AND period = $2
		              UNION ALL SELECT entry_id FROM expenditure WHERE operation_id = $1 AND period = $2
		              UNION ALL SELECT entry_id FROM correction WHERE operation_id = $1 AND period = $2)
		 ORDER BY id`, op, per.Code, per.Start)
	if err != nil {
		return nil, err
	}
	if snap.facts.Late, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return nil, err
	}
	snap.facts.LateCount = len(snap.facts.Late)

	// C1: only when some authority's in-kind expenditure and match income differ, find the
	// entries that make them differ.
	last := snap.periods[len(snap.periods)-1]
	for _, a := range s.prog.Authorities {
		if !last.InKind[a.Code].Equal(last.Match[a.Code]) {
			if snap.facts.InKindMismatch, err = s.inKindMismatch(ctx, tx, per.Code); err != nil {
				return nil, err
			}
			break
		}
	}

	if snap.facts.Lines, err = s.lineFacts(ctx, tx, per.Code, linePostings, lineAccounts); err != nil {
		return nil, err
	}
	return snap, nil
}

// inKindMismatch returns the entries booked in period whose in-kind expenditure and match income
// differ for some authority (C1).
func (s *Service) inKindMismatch(ctx context.Context, tx pgx.Tx, period string) ([]int64, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT x.entry_id FROM (
			SELECT po.entry_id, a.authority FROM entry e
			JOIN posting po ON po.operation_id = e.operation_id AND po.entry_id = e.id
			JOIN account a ON a.operation_id = po.operation_id AND a.id = po.account_id
			WHERE e.operation_id = $1 AND e.period = $2 AND a.authority IS NOT NULL
			  AND (a.code LIKE 'inkind:%' OR a.code LIKE 'match:%')
			GROUP BY po.entry_id, a.authority HAVING sum(po.amount) <> 0) x
		ORDER BY 1 LIMIT $3`, s.prog.OperationID, period, maxFindingEntries)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// lineFacts reconciles the period's lines (the match package's time entries, expenditure lines
// and corrections, and the claims' own disallowance adjustments) with the ledger, for C3 and C8.
// linePostings is the number of postings the period's balances count on the accounts lines move;
// each line moves exactly one, so when the numbers agree no entry lacks a line and the search
// for unlined entries is skipped.
func (s *Service) lineFacts(ctx context.Context, tx pgx.Tx, period string, linePostings int64, lineAccounts []int64) (*LineFacts, error) {
	op := s.prog.OperationID
	f := &LineFacts{Totals: map[string]decimal.Decimal{}}
	add := func(heading string, v decimal.Decimal) { f.Totals[heading] = f.Totals[heading].Add(v) }
	var lines int64

	// Officer time: one scan of the period's entries by their period index.
	var timeSum decimal.Decimal
	var timeCount int64
	err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0), count(*),
			coalesce(array_agg(entry_id ORDER BY entry_id) FILTER (WHERE btrim(evidence_ref) = ''), '{}'),
			coalesce(array_agg(entry_id ORDER BY entry_id) FILTER (WHERE btrim(approved_by) = ''), '{}')
		FROM time_entry WHERE operation_id = $1 AND period = $2`, op, period).
		Scan(&timeSum, &timeCount, &f.MissingEvidence, &f.MissingApprover)
	if err != nil {
		return nil, err
	}
	add(programme.HeadingOfficerTime, timeSum)
	lines += timeCount

	// Cash lines per heading.
	rows, err := tx.Query(ctx, `SELECT heading, sum(amount), count(*),
			coalesce(array_agg(entry_id ORDER BY entry_id) FILTER (WHERE btrim(evidence_ref) = ''), '{}')
		FROM expenditure WHERE operation_id = $1 AND period = $2 GROUP BY heading`, op, period)
	if err != nil {
		return nil, err
	}
	var heading string
	var sum decimal.Decimal
	var n int64
	var missing []int64
	if _, err = pgx.ForEachRow(rows, []any{&heading, &sum, &n, &missing}, func() error {
		add(heading, sum)
		lines += n
		f.MissingEvidence = append(f.MissingEvidence, missing...)
		return nil
	}); err != nil {
		return nil, err
	}

	// Corrections booked in the period reverse a line of this or an earlier period.
	rows, err = tx.Query(ctx, `SELECT coalesce(x.heading, $3), coalesce(t.amount, x.amount) FROM correction c
		LEFT JOIN time_entry t ON t.operation_id = c.operation_id AND t.id = c.time_entry_id
		LEFT JOIN expenditure x ON x.operation_id = c.operation_id AND x.id = c.expenditure_id
		WHERE c.operation_id = $1 AND c.period = $2`, op, period, programme.HeadingOfficerTime)
	if err != nil {
		return nil, err
	}
	if _, err = pgx.ForEachRow(rows, []any{&heading, &sum}, func() error {
		add(heading, sum.Neg())
		lines++
		return nil
	}); err != nil {
		return nil, err
	}

	// Disallowances booked in the period: the claims' own adjustments, one line each.
	rows, err = tx.Query(ctx, `SELECT c.disallowance_heading, c.disallowed_amount FROM claim c
		JOIN entry e ON e.operation_id = c.operation_id AND e.id = c.disallowance_entry_id
		WHERE c.operation_id = $1 AND e.period = $2`, op, period)
	if err != nil {
		return nil, err
	}
	if _, err = pgx.ForEachRow(rows, []any{&heading, &sum}, func() error {
		add(heading, sum.Neg())
		lines++
		return nil
	}); err != nil {
		return nil, err
	}

	if lines != linePostings {
		rows, err := tx.Query(ctx, `SELECT DISTINCT e.id FROM entry e
			JOIN posting po ON po.operation_id = e.operation_id AND po.entry_id = e.id
			WHERE e.operation_id = $1 AND e.period = $2 AND po.account_id = ANY($3)
			  AND NOT EXISTS (SELECT 1 FROM time_entry t WHERE t.operation_id = $1 AND t.period = $2 AND t.entry_id = e.id)
			  AND NOT EXISTS (SELECT 1 FROM expenditure x WHERE x.operation_id = $1 AND x.period = $2 AND x.entry_id = e.id)
			  AND NOT EXISTS (SELECT 1 FROM correction c WHERE c.operation_id = $1 AND c.period = $2 AND c.entry_id = e.id)
			  AND NOT EXISTS (SELECT 1 FROM claim c WHERE c.operation_id = $1 AND c.disallowance_entry_id = e.id)
			ORDER BY e.id LIMIT $4`, op, period, lineAccounts, maxFindingEntries)
		if err != nil {
			return nil, err
		}
		if f.Unlined, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// basisSQL reads the balances of the periods $2, in the order their digest (basisDigest) takes
// them.
const basisSQL = `SELECT period, account_id, amount, postings FROM balance
	WHERE operation_id = $1 AND period = ANY($2) ORDER BY period, account_id`

// basisDigest is the SHA-256 of the balances a claim was compiled from: those of every period up
// to the claim's, whose cumulative figures read them all. An earlier period stays open until its
// own claim is submitted, and what is booked into it meanwhile changes this claim's cumulative
// figures and ESF due as much as what is booked into the claim's own period (CL4).
type basisDigest struct{ b strings.Builder }

func (d *basisDigest) add(period string, account int64, amount decimal.Decimal, postings int64) {
	fmt.Fprintf(&d.b, "%s:%d:%s:%d;", period, account, amount.StringFixed(2), postings)
}

func (d *basisDigest) sum() []byte {
	sum := sha256.Sum256([]byte(d.b.String()))
	return sum[:]
}

// basisOf returns the basis digest of the claim of per as read through q now, the same digest
// read computes, for the checks at submission and when a draft's pack is built that the ledger
// has not moved (CL4). Entries of those periods still waiting for the sealer are not in the
// balances yet; they are new since the claim was compiled (which sealed them all), so they count
// as a move: the digest is then nil.
func (s *Service) basisOf(ctx context.Context, q db.Querier, per Period) ([]byte, error) {
	codes := periodsTo(s.prog, per)
	unsealed, err := s.unsealedIn(ctx, q, codes)
	if err != nil || unsealed {
		return nil, err
	}
	rows, err := q.Query(ctx, basisSQL, s.prog.OperationID, codes)
	if err != nil {
		return nil, err
	}
	var d basisDigest
	var code string
	var acct, postings int64
	var amount decimal.Decimal
	if _, err := pgx.ForEachRow(rows, []any{&code, &acct, &amount, &postings}, func() error {
		d.add(code, acct, amount, postings)
		return nil
	}); err != nil {
		return nil, err
	}
	return d.sum(), nil
}

// maxQueued bounds how many waiting entries unsealedIn looks at; more count as unsealed entries
// in any period (the compilation then seals and reads again).
const maxQueued = 10000

// unsealedIn reports whether an entry booked in one of periods waits for the sealer. It reads
// the entries of the transactions in the queue (a handful between sealer runs) that are not
// sealed yet, through the index of each transaction's entries, so that its cost follows the
// queue, never the ledger.
func (s *Service) unsealedIn(ctx context.Context, q db.Querier, periods []string) (bool, error) {
	var found bool
	err := q.QueryRow(ctx, `SELECT coalesce(bool_or(w.mine), false) OR count(*) > $3 FROM (
		SELECT period = ANY($2) AS mine FROM seal_waiting WHERE operation_id = $1 LIMIT $3 + 1) w`,
		s.prog.OperationID, periods, maxQueued).Scan(&found)
	return found, err
}
