package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var fixedNow = time.Date(2022, 7, 15, 10, 30, 0, 0, time.UTC)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// setup returns a pool on a fresh database and the InFuSe ledger set up in it.
func setup(t testing.TB) (*pgxpool.Pool, *ledger.Ledger) {
	t.Helper()
	pool := dbtest.New(t)
	l, err := ledger.Setup(context.Background(), pool, programme.Default(), ledger.WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	return pool, l
}

func transfer(effective, from, to, amount string) ledger.EntryInput {
	a := d(amount)
	return ledger.EntryInput{
		EffectiveDate: date(effective), Description: "test transfer", Source: "test", RecordedBy: "tester",
		Postings: []ledger.Posting{{Account: to, Amount: a}, {Account: from, Amount: a.Neg()}},
	}
}

func wantRule(t *testing.T, err error, code apperr.Code, rule string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s %s, got success", code, rule)
	}
	if apperr.CodeOf(err) != code || apperr.RuleOf(err) != rule {
		t.Fatalf("want %s %s, got %s %q: %v", code, rule, apperr.CodeOf(err), apperr.RuleOf(err), err)
	}
}

func TestSetup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)

	t.Run("AllocationsAreLedgerBalances", func(t *testing.T) {
		got, err := l.Balance(ctx, ledger.AllocESF)
		if err != nil || !got.Equal(d("3600000.00")) {
			t.Fatalf("ESF allocation = %s, %v; want 3600000.00", got, err)
		}
		got, err = l.Balance(ctx, ledger.AllocMatch("GB-NWP"))
		if err != nil || !got.Equal(d("200000.00")) {
			t.Fatalf("GB-NWP match target = %s, %v; want 200000.00", got, err)
		}
		got, err = l.Balance(ctx, ledger.AllocBudget)
		if err != nil || !got.Equal(d("-5600000.00")) {
			t.Fatalf("budget = %s, %v; want -5600000.00", got, err)
		}
	})
	t.Run("IsIdempotent", func(t *testing.T) {
		if _, err := ledger.Setup(ctx, pool, programme.Default()); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM entry`).Scan(&n); err != nil || n != 11 {
			t.Fatalf("entries after second setup = %d, %v; want 11", n, err)
		}
	})
	t.Run("RefusesAnotherDefinition", func(t *testing.T) {
		p := programme.Default().Clone()
		p.Name = "Something else"
		_, err := ledger.Setup(ctx, pool, p)
		wantRule(t, err, apperr.Conflict, "P1")
	})
	t.Run("ChartHasEveryAuthority", func(t *testing.T) {
		for _, a := range programme.Default().Authorities {
			for _, code := range []string{ledger.InKind(a.Code), ledger.Match(a.Code), ledger.AllocMatch(a.Code)} {
				if _, err := l.Account(code); err != nil {
					t.Errorf("account %s: %v", code, err)
				}
			}
		}
	})
}

func TestPost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)

	t.Run("BooksIntoThePeriodOfTheEffectiveDate", func(t *testing.T) {
		e, err := l.Post(ctx, pool, transfer("2021-05-04", ledger.Match("GB-NWP"), ledger.InKind("GB-NWP"), "123.45"))
		if err != nil {
			t.Fatal(err)
		}
		if e.Period != "2021Q2" || e.ID == 0 || e.Replayed {
			t.Fatalf("entry = %+v; want booked in 2021Q2", e)
		}
		got, _ := l.Entry(ctx, e.ID)
		if len(got.Postings) != 2 || !got.Postings[0].Amount.Equal(d("123.45")) || got.Postings[1].Account != ledger.Match("GB-NWP") {
			t.Fatalf("read back %+v", got)
		}
	})
	rejects := []struct {
		name string
		in   ledger.EntryInput
		code apperr.Code
		rule string
	}{
		{"OnePosting", ledger.EntryInput{EffectiveDate: date("2021-05-04"), Description: "x", Source: "test", RecordedBy: "t",
			Postings: []ledger.Posting{{Account: ledger.Cash, Amount: d("1")}}}, apperr.Invalid, "L1"},
		{"Unbalanced", ledger.EntryInput{EffectiveDate: date("2021-05-04"), Description: "x", Source: "test", RecordedBy: "t",
			Postings: []ledger.Posting{{Account: ledger.Cash, Amount: d("1")}, {Account: ledger.ESFIncome, Amount: d("-0.99")}}}, apperr.Invalid, "L1"},
		{"ZeroPosting", ledger.EntryInput{EffectiveDate: date("2021-05-04"), Description: "x", Source: "test", RecordedBy: "t",
			Postings: []ledger.Posting{{Account: ledger.Cash, Amount: d("0")}, {Account: ledger.ESFIncome, Amount: d("0")}}}, apperr.Invalid, "L1"},
		{"ThirdDecimal", transfer("2021-05-04", ledger.Cash, ledger.ESFIncome, "1.005"), apperr.Invalid, "L2"},
		{"UnknownAccount", transfer("2021-05-04", ledger.Cash, "no-such", "1.00"), apperr.Invalid, "L3"},
		// Values the schema cannot store: refused with a rule before they reach it, so that an
		// entry sharing a transaction with others does not fail them all.
		{"AmountBeyondTheColumn", transfer("2021-05-04", ledger.Cash, ledger.ESFIncome, "100000000000000.00"), apperr.Invalid, "L2"},
		{"NulInTheDescription", ledger.EntryInput{EffectiveDate: date("2021-05-04"), Description: "a\x00b", Source: "test", RecordedBy: "t",
			Postings: []ledger.Posting{{Account: ledger.Cash, Amount: d("1")}, {Account: ledger.ESFIncome, Amount: d("-1")}}}, apperr.Invalid, "M1"},
		{"InvalidUTF8InTheReference", ledger.EntryInput{EffectiveDate: date("2021-05-04"), Description: "x", Source: "test", Reference: "\xff", RecordedBy: "t",
			Postings: []ledger.Posting{{Account: ledger.Cash, Amount: d("1")}, {Account: ledger.ESFIncome, Amount: d("-1")}}}, apperr.Invalid, "M1"},
		{"BeforeTheFirstPeriod", transfer("2020-12-31", ledger.Cash, ledger.ESFIncome, "1.00"), apperr.Invalid, "L5"},
	}
	for _, tc := range rejects {
		t.Run("Rejects"+tc.name, func(t *testing.T) {
			_, err := l.Post(ctx, pool, tc.in)
			wantRule(t, err, tc.code, tc.rule)
		})
	}
	t.Run("AcceptsTwoDecimalsWrittenWithMore", func(t *testing.T) {
		if _, err := l.Post(ctx, pool, transfer("2021-05-04", ledger.Cash, ledger.ESFIncome, "1.500")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AfterTheWindowBooksIntoClosure", func(t *testing.T) {
		e, err := l.Post(ctx, pool, transfer("2024-03-01", ledger.ESFReceivable, ledger.Cash, "10.00"))
		if err != nil || e.Period != ledger.ClosurePeriod {
			t.Fatalf("entry %+v, %v; want booked in closure", e, err)
		}
	})
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)
	in := transfer("2021-06-01", ledger.Cash, ledger.HeadingAccount("delivery"), "18250.00")
	in.IdempotencyKey = "invoice-88213"

	first, err := l.Post(ctx, pool, in)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ReplayReturnsTheOriginal", func(t *testing.T) {
		again, err := l.Post(ctx, pool, in)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Replayed || again.ID != first.ID || again.Period != first.Period {
			t.Fatalf("replay = %+v; want entry %d replayed", again, first.ID)
		}
		bal, _ := l.Balance(ctx, ledger.HeadingAccount("delivery"))
		if !bal.Equal(d("18250.00")) {
			t.Fatalf("delivery balance %s after replay; want 18250.00 (posted once)", bal)
		}
	})
	t.Run("DifferentRequestSameKeyConflicts", func(t *testing.T) {
		other := in
		other.Postings = []ledger.Posting{{Account: ledger.HeadingAccount("delivery"), Amount: d("18250.01")}, {Account: ledger.Cash, Amount: d("-18250.01")}}
		_, err := l.Post(ctx, pool, other)
		wantRule(t, err, apperr.Conflict, "L4")
	})
	t.Run("BatchReplaysAndConflicts", func(t *testing.T) {
		out, err := postBatch(pool, l, []ledger.EntryInput{in, in})
		if err != nil || !out[0].Replayed || out[0].ID != first.ID || out[1].ID != first.ID {
			t.Fatalf("batch replay = %+v, %v", out, err)
		}
		other := in
		other.Description = "changed"
		_, err = postBatch(pool, l, []ledger.EntryInput{other})
		wantRule(t, err, apperr.Conflict, "L4")
	})
	t.Run("ConcurrentReplaysPostOnce", func(t *testing.T) {
		key := transfer("2021-06-02", ledger.Cash, ledger.HeadingAccount("other"), "7.00")
		key.IdempotencyKey = "concurrent"
		ids := make(chan int64, 8)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				e, err := l.Post(ctx, pool, key)
				if err != nil {
					t.Error(err)
				}
				ids <- e.ID
			})
		}
		wg.Wait()
		close(ids)
		var first int64
		for id := range ids {
			if first == 0 {
				first = id
			}
			if id != first {
				t.Fatalf("concurrent replays returned entries %d and %d", first, id)
			}
		}
	})
}

// rawToken and rawEntry write to the ledger with raw SQL, as a buggy program or a person at
// psql would.
const rawToken = `INSERT INTO ledger_txn (txid) VALUES (pg_current_xact_id())`

// forgeToken sets what the token's trigger sets, without taking the token.
const forgeToken = `SELECT set_config('infuse.ledger_txn', pg_current_xact_id()::text, true)`

const rawEntry = `INSERT INTO entry (operation_id, id, effective_date, period, description, source, reference, recorded_at, recorded_by)
	VALUES ('infuse', $1, '2021-02-01', $2, 'raw', 'raw', '', now(), 'psql')`

func TestDatabaseRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)
	cash, _ := l.Account(ledger.Cash)
	income, _ := l.Account(ledger.ESFIncome)
	posted, err := l.Post(ctx, pool, transfer("2021-02-01", ledger.ESFIncome, ledger.Cash, "50.00"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Seal(ctx); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		stmts []string
		args  [][]any
		state string
	}{
		{"UnbalancedEntry", []string{rawToken, rawEntry, rawPosting + `$1, 10), ('infuse', 900001, 2, $2, -9.99)`},
			[][]any{nil, {900001, "2021Q1"}, {cash.ID, income.ID}}, "IL001"},
		{"EntryWithOnePosting", []string{rawToken, rawEntry, `INSERT INTO posting (operation_id, entry_id, line, account_id, amount) VALUES ('infuse', 900002, 1, $1, 0.01)`},
			[][]any{nil, {900002, "2021Q1"}, {cash.ID}}, "IL001"},
		{"EntryWithNoPosting", []string{rawToken, rawEntry}, [][]any{nil, {900003, "2021Q1"}}, "IL001"},
		{"PostingToAnAccountOutsideTheChart", []string{rawToken, rawEntry, rawPosting + `$1, 10), ('infuse', 900001, 2, 999999, -10)`},
			[][]any{nil, {900001, "2021Q1"}, {cash.ID}}, "IL006"},
		{"EntryInAnUnknownPeriod", []string{rawToken, rawEntry, rawPosting + `$1, 10), ('infuse', 900001, 2, $2, -10)`},
			[][]any{nil, {900001, "1999Q9"}, {cash.ID, income.ID}}, "IL003"},
		// Dated 2021-02-01, while 2021Q1 is open: it books there, not into a later period (L5).
		{"EntryBookedIntoALaterPeriod", []string{rawToken, rawEntry, rawPosting + `$1, 10), ('infuse', 900001, 2, $2, -10)`},
			[][]any{nil, {900001, "2021Q2"}, {cash.ID, income.ID}}, "IL009"},
		// Rows without the token are refused at the end of their statement (ledger_token_held);
		// rows naming another transaction as they are written (entry_token_ck, posting_token_ck).
		{"EntryWithoutTheToken", []string{rawEntry}, [][]any{{900004, "2021Q1"}}, "IL004"},
		{"PostingWithoutTheToken", []string{rawPosting + `$1, 10), ('infuse', 900001, 2, $2, -10)`}, [][]any{{cash.ID, income.ID}}, "IL004"},
		{"RowOfAnotherTransaction", []string{rawToken, `INSERT INTO entry (operation_id, id, effective_date, period, description, source, reference, recorded_at, recorded_by, txid)
			VALUES ('infuse', 900005, '2021-02-01', '2021Q1', 'raw', 'raw', '', now(), 'psql', '1')`}, [][]any{nil, nil}, "23514 entry_token_ck"},
		// The setting that says the token is held can be set by anyone; without the token's
		// row no check is queued, so the rows are refused at the end of their statement.
		{"ForgedTokenSetting", []string{forgeToken, rawEntry, rawPosting + `$1, 10), ('infuse', 900001, 2, $2, -9.99)`},
			[][]any{nil, {900001, "2021Q1"}, {cash.ID, income.ID}}, "IL004"},
		{"ForgedTokenSettingThenToken", []string{forgeToken, rawToken, rawEntry}, [][]any{nil, nil, {900001, "2021Q1"}}, "IL004"},
		{"PostingsUnderAForgedTokenSetting", []string{forgeToken, rawPosting + `$1, 10), ('infuse', 900001, 2, $2, -9.99)`},
			[][]any{nil, {cash.ID, income.ID}}, "IL004"},
		// Moved away and back, a token would stay without the check it queued (0015).
		{"TokenMovedToAnotherTransaction", []string{rawToken, `UPDATE ledger_txn SET txid = '1' WHERE txid = pg_current_xact_id()`},
			[][]any{nil, nil}, "IL004"},
		{"PostingAddedToACommittedEntry", []string{rawToken, `INSERT INTO posting (operation_id, entry_id, line, account_id, amount) VALUES ('infuse', $1, 3, $2, 5), ('infuse', $1, 4, $3, -5)`},
			[][]any{nil, {posted.ID, cash.ID, income.ID}}, "IL004"},
		// Two problems: both plans report the posting added to another transaction's entry first.
		{"PostingAddedAndEntryUnbalanced", []string{rawToken, rawEntry, `INSERT INTO posting (operation_id, entry_id, line, account_id, amount) VALUES ('infuse', 900007, 1, $1, 0.01)`,
			`INSERT INTO posting (operation_id, entry_id, line, account_id, amount) VALUES ('infuse', $1, 3, $2, 5), ('infuse', $1, 4, $3, -5)`},
			[][]any{nil, {900007, "2021Q1"}, {cash.ID}, {posted.ID, cash.ID, income.ID}}, "IL004"},
		// A table of the session's own, found before the schema's, fooled the functions that
		// named tables without their schema (0017).
		{"TokenInATemporaryTable", []string{`CREATE TEMP TABLE ledger_txn (txid xid8) ON COMMIT DROP`, rawToken, rawEntry,
			rawPosting + `$1, 10), ('infuse', 900001, 2, $2, -9.99)`},
			[][]any{nil, nil, {900001, "2021Q1"}, {cash.ID, income.ID}}, "IL004"},
		{"PeriodInATemporaryTable", []string{rawToken, `CREATE TEMP TABLE period ON COMMIT DROP AS SELECT * FROM period`,
			`INSERT INTO period (operation_id, code, seq, starts_on, ends_on, claimable) VALUES ('infuse', '1999Q9', 99, '1999-07-01', '1999-09-30', true)`,
			rawEntry, rawPosting + `$1, 10), ('infuse', 900001, 2, $2, -10)`},
			[][]any{nil, nil, nil, {900001, "1999Q9"}, {cash.ID, income.ID}}, "IL003"},
		// A snapshot older than a period's lock would not see it at commit (0017).
		{"TokenInARepeatableReadTransaction", []string{`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`, rawToken},
			[][]any{nil, nil}, "IL008"},
		{"QueueRowWithoutTheToken", []string{`INSERT INTO seal_queue (operation_id, txid) VALUES ('infuse', pg_current_xact_id())`},
			[][]any{nil}, "IL004"},
		// Only the commit-time check queues a transaction, and only its own (0022).
		{"QueueRowOfAnotherTransaction", []string{rawToken, `INSERT INTO seal_queue (operation_id, txid) SELECT operation_id, txid FROM entry WHERE id = $1`},
			[][]any{nil, {posted.ID}}, "IL002"},
		{"UpdateOfAnAccount", []string{`UPDATE account SET code = code || '_x' WHERE id = $1`}, [][]any{{cash.ID}}, "IL002"},
		{"DeleteOfAnAccount", []string{`DELETE FROM account WHERE id = $1`}, [][]any{{cash.ID}}, "IL002"},
		{"UpdateOfAnEntry", []string{`UPDATE entry SET description = 'changed' WHERE id = $1`}, [][]any{{posted.ID}}, "IL002"},
		{"DeleteOfAnEntry", []string{`DELETE FROM entry WHERE id = $1`}, [][]any{{posted.ID}}, "IL002"},
		{"UpdateOfAPosting", []string{`UPDATE posting SET amount = amount * 2 WHERE entry_id = $1`}, [][]any{{posted.ID}}, "IL002"},
		{"DeleteOfAPosting", []string{`DELETE FROM posting WHERE entry_id = $1`}, [][]any{{posted.ID}}, "IL002"},
		{"TruncateOfPostings", []string{`TRUNCATE posting CASCADE`}, [][]any{nil}, "IL002"},
		{"DeleteOfABalance", []string{`DELETE FROM balance`}, [][]any{nil}, "IL002"},
	}
	// What the database says of a case, in both plans (the bulk plan sums in pence).
	says := map[string]string{"UnbalancedEntry": "entry 900001 refused: 2 postings summing to 0.01",
		"EntryWithoutTheToken": "entry rows refused", "PostingWithoutTheToken": "posting rows refused",
		"ForgedTokenSetting": "entry rows refused", "ForgedTokenSettingThenToken": "entry rows refused",
		"PostingsUnderAForgedTokenSetting": "posting rows refused", "TokenMovedToAnotherTransaction": "a ledger token cannot be changed",
		"PostingAddedToACommittedEntry": "postings refused: entry", "TokenInATemporaryTable": "entry rows refused",
		"PeriodInATemporaryTable": "entry 900001 refused: period 1999Q9", "EntryBookedIntoALaterPeriod": "entry 900001 refused: period 2021Q2 is not the booking period of its effective date", "QueueRowWithoutTheToken": "seal_queue rows refused",
		"QueueRowOfAnotherTransaction":      "a transaction queues only its own entries",
		"TokenInARepeatableReadTransaction": "ledger rows are written in READ COMMITTED transactions"}
	// Every case twice: the commit-time check has a plan for a few rows and one for a bulk
	// batch, and both must find every problem.
	for _, bulk := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/bulk=%v", tc.name, bulk), func(t *testing.T) {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					stmts, args := tc.stmts, tc.args
					if strings.HasPrefix(stmts[0], "SET TRANSACTION") { // before any other statement
						if _, err := tx.Exec(ctx, stmts[0]); err != nil {
							return err
						}
						stmts, args = stmts[1:], args[1:]
					}
					if bulk {
						if _, err := tx.Exec(ctx, `SELECT set_config('infuse.ledger_bulk', 'on', true)`); err != nil {
							return err
						}
					}
					for i, s := range stmts {
						if _, err := tx.Exec(ctx, s, args[i]...); err != nil {
							return err
						}
					}
					return nil
				})
				var pg *pgconn.PgError
				if !asPg(err, &pg) || strings.TrimSpace(pg.Code+" "+pg.ConstraintName) != tc.state {
					t.Fatalf("want SQLSTATE %s, got %v", tc.state, err)
				}
				if want := says[tc.name]; !strings.HasPrefix(pg.Message, want) {
					t.Errorf("the database says %q; want %q", pg.Message, want)
				}
			})
		}
	}
	t.Run("ErrorsTranslateToRules", func(t *testing.T) {
		_, err := pool.Exec(ctx, `DELETE FROM posting WHERE entry_id = $1`, posted.ID)
		wantRule(t, db.Translate("test", err), apperr.Locked, "F1")
		// A person reads the catalogue's message; the log keeps the database's own words.
		if text, ok := db.Refusal(db.Translate("test", err)); !ok || !strings.Contains(text, "IL002: DELETE of posting refused") {
			t.Errorf("refusal for the log: %q, %v", text, ok)
		}
		_, err = pool.Exec(ctx, rawEntry, 900008, "2021Q1")
		wantRule(t, db.Translate("test", err), apperr.Invalid, "L1")
		if text, ok := db.Refusal(db.Translate("test", err)); !ok || !strings.Contains(text, "IL004: entry rows refused") {
			t.Errorf("refusal for the log: %q, %v", text, ok)
		}
		_, err = pool.Exec(ctx, `WITH t AS (`+rawToken+`) INSERT INTO entry (operation_id, id, effective_date, period, description,
			source, reference, recorded_at, recorded_by, txid) VALUES ('infuse', 900009, '2021-02-01', '2021Q1', 'raw', 'raw', '', now(), 'psql', '1')`)
		wantRule(t, db.Translate("test", err), apperr.Invalid, "L1")
		if text, ok := db.Refusal(db.Translate("test", err)); !ok || !strings.Contains(text, `"entry_token_ck"`) {
			t.Errorf("refusal for the log: %q, %v", text, ok)
		}
		// Booked into a later period than its date's open one: the booking rule (L5).
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for _, s := range []struct {
				sql  string
				args []any
			}{{rawToken, nil}, {rawEntry, []any{900010, "2021Q2"}},
				{`INSERT INTO posting (operation_id, entry_id, line, account_id, amount) VALUES ('infuse', 900010, 1, $1, 1), ('infuse', 900010, 2, $2, -1)`, []any{cash.ID, income.ID}}} {
				if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
					return err
				}
			}
			return nil
		})
		wantRule(t, db.Translate("test", err), apperr.Invalid, "L5")
	})
	// A check run before the commit (SET CONSTRAINTS … IMMEDIATE) ends the token: the writes
	// after it take a new one and are checked again at commit.
	t.Run("WritesAfterAnEarlyCheck", func(t *testing.T) {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := l.Post(ctx, tx, transfer("2021-02-01", ledger.ESFIncome, ledger.Cash, "1.00")); err != nil {
				return err
			}
			for _, s := range []string{`SET CONSTRAINTS ALL IMMEDIATE`, `SET CONSTRAINTS ALL DEFERRED`, rawToken} {
				if _, err := tx.Exec(ctx, s); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, rawEntry, 900006, "2021Q1"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO posting (operation_id, entry_id, line, account_id, amount) VALUES ('infuse', 900006, 1, $1, 0.01)`, cash.ID)
			return err
		})
		var pg *pgconn.PgError
		if !asPg(err, &pg) || pg.Code != "IL001" {
			t.Fatalf("want SQLSTATE IL001, got %v", err)
		}
	})
}

const rawPosting = `INSERT INTO posting (operation_id, entry_id, line, account_id, amount) VALUES ('infuse', 900001, 1, `

func asPg(err error, pg **pgconn.PgError) bool {
	if err == nil {
		return false
	}
	e, ok := err.(*pgconn.PgError)
	if !ok {
		return false
	}
	*pg = e
	return true
}

// TestWritesUnderAnotherDefaultIsolation: a database whose default isolation is not READ
// COMMITTED (a choice some teams make) still takes ledger writes through the project's pools.
func TestWritesUnderAnotherDefaultIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	setupPool, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer setupPool.Close()
	if _, err := setupPool.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L',
		current_database(), 'repeatable read'); END $$`); err != nil {
		t.Fatal(err)
	}
	pool, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l, err := ledger.Setup(ctx, pool, programme.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Post(ctx, pool, transfer("2021-05-01", ledger.Cash, ledger.HeadingAccount("other"), "1.00")); err != nil {
		t.Fatalf("a post where the database's default is REPEATABLE READ: %v", err)
	}
	if err := db.WithTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := l.PostBatch(ctx, tx, []ledger.EntryInput{transfer("2021-05-02", ledger.Cash, ledger.HeadingAccount("other"), "2.00")})
		return err
	}); err != nil {
		t.Fatalf("a batch where the database's default is REPEATABLE READ: %v", err)
	}
}

// TestSchemaFunctionsPinTheirSearchPath: every function of the schema resolves names in the
// schema, never in a session's temporary tables, types or sequences (migrations/0017); a
// migration that replaces one must pin it again. The fingerprint functions of 0010, which read
// nothing of the schema, keep no settings, so that the planner can inline them into
// PostTransfers.
func TestSchemaFunctionsPinTheirSearchPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := setup(t)
	inlined := []string{"ledger_fp_text", "ledger_transfer_fingerprint", "ledger_uvarint"}
	var wrong []string
	rows, err := pool.Query(ctx, `SELECT p.proname::text, p.proconfig IS NOT NULL
		FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
		  AND p.prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('plpgsql', 'sql'))
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
		  AND CASE WHEN p.proname = ANY($1) THEN p.proconfig IS NOT NULL
		           ELSE NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=' || quote_ident(current_schema()) || ', pg_temp'] END
		ORDER BY 1`, inlined)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	var settings bool
	if _, err := pgx.ForEachRow(rows, []any{&name, &settings}, func() error {
		wrong = append(wrong, fmt.Sprintf("%s (has settings: %v)", name, settings))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(wrong) > 0 {
		t.Errorf("functions with settings that must be inlined, or without the search path that must have it: %v", wrong)
	}
}

func TestLockedPeriods(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)
	lock := func(code string) {
		t.Helper()
		if err := db.WithTx(ctx, pool, func(tx pgx.Tx) error { return l.LockPeriod(ctx, tx, code, "pm@example.org") }); err != nil {
			t.Fatal(err)
		}
	}
	orig, err := l.Post(ctx, pool, transfer("2021-02-10", ledger.Cash, ledger.HeadingAccount("other"), "40.00"))
	if err != nil {
		t.Fatal(err)
	}
	lock("2021Q1")

	t.Run("RawInsertIntoLockedPeriodIsRefused", func(t *testing.T) {
		cash, _ := l.Account(ledger.Cash)
		income, _ := l.Account(ledger.ESFIncome)
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for _, s := range []struct {
				sql  string
				args []any
			}{{rawToken, nil}, {rawEntry, []any{900001, "2021Q1"}}, {rawPosting + `$1, 10), ('infuse', 900001, 2, $2, -10)`, []any{cash.ID, income.ID}}} {
				if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
					return err
				}
			}
			return nil
		})
		var pg *pgconn.PgError
		if !asPg(err, &pg) || pg.Code != "IL003" {
			t.Fatalf("want IL003, got %v", err)
		}
	})
	// A writer whose snapshot predates a lock would not see it at commit: the ledger writes in
	// READ COMMITTED transactions only.
	t.Run("PostInARepeatableReadTransactionIsRefused", func(t *testing.T) {
		err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
			_, err := l.Post(ctx, tx, transfer("2021-05-01", ledger.Cash, ledger.HeadingAccount("other"), "1.00"))
			return err
		})
		wantRule(t, err, apperr.Invalid, "F1")
	})
	// A period locked by a plain UPDATE waits, as LockPeriod does, for the transactions writing
	// entries: one whose check has run must not commit into it after the lock.
	t.Run("RawLockWaitsForWriters", func(t *testing.T) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := l.Post(ctx, tx, transfer("2021-05-01", ledger.Cash, ledger.HeadingAccount("other"), "1.00")); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SET CONSTRAINTS ALL IMMEDIATE`); err != nil { // the check has run
			t.Fatal(err)
		}
		err = pgx.BeginFunc(ctx, pool, func(lk pgx.Tx) error {
			if _, err := lk.Exec(ctx, `SET LOCAL lock_timeout = '200ms'`); err != nil {
				return err
			}
			_, err := lk.Exec(ctx, `UPDATE period SET locked_at = now(), locked_by = 'psql' WHERE code = '2021Q2'`)
			return err
		})
		var pg *pgconn.PgError
		if !asPg(err, &pg) || pg.Code != "55P03" {
			t.Fatalf("raw lock beside a writer: want it to wait (55P03), got %v", err)
		}
	})
	// An entry in a locked period is refused as that (IL003, F1), in both plans, even when its
	// date would book it elsewhere too (IL009).
	t.Run("MisbookedIntoALockedPeriodIsRefusedAsLocked", func(t *testing.T) {
		cash, _ := l.Account(ledger.Cash)
		income, _ := l.Account(ledger.ESFIncome)
		for _, bulk := range []bool{false, true} {
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SELECT set_config('infuse.ledger_bulk', $1, true)`, map[bool]string{true: "on", false: "off"}[bulk]); err != nil {
					return err
				}
				for _, s := range []struct {
					sql  string
					args []any
				}{{rawToken, nil},
					{`INSERT INTO entry (operation_id, id, effective_date, period, description, source, reference, recorded_at, recorded_by)
						VALUES ('infuse', 900002, '2021-05-01', '2021Q1', 'raw', 'raw', '', now(), 'psql')`, nil},
					{`INSERT INTO posting (operation_id, entry_id, line, account_id, amount) VALUES ('infuse', 900002, 1, $1, 10), ('infuse', 900002, 2, $2, -10)`,
						[]any{cash.ID, income.ID}}} {
					if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
						return err
					}
				}
				return nil
			})
			var pg *pgconn.PgError
			if !asPg(err, &pg) || pg.Code != "IL003" {
				t.Fatalf("bulk=%v: want IL003, got %v", bulk, err)
			}
		}
	})
	t.Run("LateItemBooksIntoTheNextOpenPeriod", func(t *testing.T) {
		e, err := l.Post(ctx, pool, transfer("2021-03-31", ledger.Cash, ledger.HeadingAccount("other"), "12.00"))
		if err != nil || e.Period != "2021Q2" {
			t.Fatalf("late item %+v, %v; want booked in 2021Q2", e, err)
		}
	})
	t.Run("ReversalOfALockedEntryIsALateItem", func(t *testing.T) {
		r, err := l.Reverse(ctx, pool, orig.ID, "wrong payee", "fo@example.org", "")
		if err != nil || r.Period != "2021Q2" || r.Reverses != orig.ID || !r.EffectiveDate.Equal(orig.EffectiveDate) {
			t.Fatalf("reversal %+v, %v; want a late item in 2021Q2 reversing %d", r, err, orig.ID)
		}
		_, err = l.Reverse(ctx, pool, orig.ID, "again", "fo@example.org", "")
		wantRule(t, err, apperr.Conflict, "L6")
		_, err = l.Reverse(ctx, pool, r.ID, "undo", "fo@example.org", "")
		wantRule(t, err, apperr.Invalid, "L6")
	})
	t.Run("LockIsForEver", func(t *testing.T) {
		_, err := pool.Exec(ctx, `UPDATE period SET locked_at = NULL, locked_by = NULL WHERE code = '2021Q1'`)
		wantRule(t, db.Translate("test", err), apperr.Locked, "F1")
		err = db.WithTx(ctx, pool, func(tx pgx.Tx) error { return l.LockPeriod(ctx, tx, "2021Q1", "x") })
		wantRule(t, err, apperr.Locked, "F1")
	})
	t.Run("NothingOpenIsRefused", func(t *testing.T) {
		ps, _ := l.Periods(ctx, pool)
		for _, p := range ps {
			if !p.Locked() {
				lock(p.Code)
			}
		}
		_, err := l.Post(ctx, pool, transfer("2023-01-01", ledger.Cash, ledger.HeadingAccount("other"), "1.00"))
		wantRule(t, err, apperr.Locked, "F1")
	})
}

func TestBookingPeriod(t *testing.T) {
	t.Parallel()
	locked := time.Now()
	ps := []ledger.PeriodState{
		{Code: "A", Start: date("2021-01-01"), End: date("2021-03-31"), LockedAt: &locked},
		{Code: "B", Start: date("2021-04-01"), End: date("2021-06-30"), LockedAt: &locked},
		{Code: "C", Start: date("2021-07-01"), End: date("2021-09-30")},
		{Code: "D", Start: date("2021-10-01"), End: date("2021-12-31")},
	}
	cases := []struct {
		date, want string
		ok         bool
	}{
		{"2020-12-31", "", false},
		{"2021-01-01", "C", true},
		{"2021-06-30", "C", true},
		{"2021-07-01", "C", true},
		{"2021-09-30", "C", true},
		{"2021-10-01", "D", true},
		{"2022-01-01", "", false},
	}
	for _, tc := range cases {
		got, ok := ledger.BookingPeriod(ps, date(tc.date))
		if got != tc.want || ok != tc.ok {
			t.Errorf("BookingPeriod(%s) = %q, %v; want %q, %v", tc.date, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPostBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)
	var ins []ledger.EntryInput
	for i := range 1500 { // above the bulk threshold: the commit-time check hashes the rows
		in := transfer(fmt.Sprintf("2021-%02d-15", 1+i%12), ledger.Match("GB-CRF"), ledger.InKind("GB-CRF"), "10.01")
		in.IdempotencyKey = fmt.Sprintf("batch-%d", i)
		ins = append(ins, in)
	}
	out, err := postBatch(pool, l, ins)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Period != "2021Q1" || out[11].Period != "2021Q4" {
		t.Fatalf("periods %s, %s; want 2021Q1, 2021Q4", out[0].Period, out[11].Period)
	}
	bal, _ := l.Balance(ctx, ledger.InKind("GB-CRF"))
	if !bal.Equal(d("15015.00")) {
		t.Fatalf("in-kind balance %s; want 15015.00", bal)
	}
	t.Run("ConcurrentReplayOfASmallBatch", func(t *testing.T) {
		// Two callers send the same keyed request at once: the second's key lookup comes before
		// the first commits, and its write waits on the key's index entry. It is a replay of
		// what the first committed (L4), not a conflict.
		in := transfer("2021-05-05", ledger.Match("GB-RCT"), ledger.InKind("GB-RCT"), "4.40")
		in.IdempotencyKey = "concurrent-1"
		first, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer first.Rollback(ctx)
		posted, err := l.PostBatch(ctx, first, []ledger.EntryInput{in})
		if err != nil {
			t.Fatal(err)
		}
		second := make(chan []ledger.Entry, 1)
		failed := make(chan error, 1)
		go func() {
			out, err := postBatch(pool, l, []ledger.EntryInput{in})
			if err != nil {
				failed <- err
				return
			}
			second <- out
		}()
		// Let the second reach the key's index entry and wait there.
		dbtest.WaitFor(t, pool, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database())`)
		if err := first.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-failed:
			t.Fatalf("the second of two identical requests: %v; want a replay", err)
		case out := <-second:
			if !out[0].Replayed || out[0].ID != posted[0].ID {
				t.Fatalf("the second of two identical requests: %+v; want entry %d replayed", out[0], posted[0].ID)
			}
		}
	})
	t.Run("FewInOneStatement", func(t *testing.T) {
		// Below the COPY threshold: one INSERT of arrays writes every column as COPY would.
		plain := transfer("2021-04-02", ledger.Match("GB-MON"), ledger.InKind("GB-MON"), "3.10")
		plain.Description, plain.Source, plain.Reference = "plain", "adjustment", "ref-a"
		keyed := transfer("2021-09-30", ledger.Match("GB-NWP"), ledger.InKind("GB-NWP"), "7.25")
		keyed.IdempotencyKey, keyed.Reference = "few-1", "ref-b"
		rev := transfer(out[0].EffectiveDate.Format("2006-01-02"), ledger.InKind("GB-CRF"), ledger.Match("GB-CRF"), "10.01")
		rev.Reverses, rev.Description = out[0].ID, "reversal of the first"
		batch := []ledger.EntryInput{plain, keyed, rev, keyed, ins[3]}
		few, err := postBatch(pool, l, batch)
		if err != nil {
			t.Fatal(err)
		}
		if !few[3].Replayed || few[3].ID != few[1].ID || !few[4].Replayed || few[4].ID != out[3].ID {
			t.Fatalf("replays %+v %+v", few[3], few[4])
		}
		for i, in := range batch[:3] {
			wantStored(t, l, i, in, few[i])
		}
	})
	t.Run("AllOrNothing", func(t *testing.T) {
		bad := append([]ledger.EntryInput{transfer("2021-02-01", ledger.Cash, ledger.ESFIncome, "1.00")},
			transfer("2021-02-01", ledger.Cash, "nope", "1.00"))
		_, err := postBatch(pool, l, bad)
		wantRule(t, err, apperr.Invalid, "L3")
		after, _ := l.Balance(ctx, ledger.ESFIncome)
		if !after.IsZero() {
			t.Fatalf("a refused batch left %s behind", after)
		}
	})
	t.Run("FirstInvalidEntryNamed", func(t *testing.T) {
		// A batch this large is validated in shares, in parallel: the error is still the first
		// invalid entry's, whichever share finds one first.
		large := make([]ledger.EntryInput, 10_000)
		for i := range large {
			large[i] = transfer("2021-02-01", ledger.Cash, ledger.ESFIncome, "1.00")
		}
		// Every 100th entry after the first invalid one (4001) is invalid too. Validated in two or
		// three shares (three at most for 10,000 entries), the share holding 4001 reaches it 666
		// or more entries in, while a later share finds one within 100 entries of its start.
		large[4000].Postings[1].Amount = d("-0.99")
		for i := 4100; i < len(large); i += 100 {
			large[i] = transfer("2021-02-01", ledger.Cash, "nope", "1.00")
		}
		_, err := postBatch(pool, l, large)
		wantRule(t, err, apperr.Invalid, "L1")
		if e := apperr.As(err); e == nil || !strings.HasPrefix(e.Message, "entry 4001 of the batch:") {
			t.Fatalf("error %v; want entry 4001 named", err)
		}
	})
	t.Run("TransactionGoesOnAfterAnInvalidLargeBatch", func(t *testing.T) {
		// A large batch is validated while its first round trip takes the transaction's token:
		// a caller that goes on after the refusal still commits what it writes next.
		large := make([]ledger.EntryInput, 2000)
		for i := range large {
			large[i] = transfer("2021-03-01", ledger.Cash, ledger.ESFIncome, "1.00")
		}
		large[1999].Postings[0].Account = "nope"
		var out []ledger.Entry
		err := db.WithTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := l.PostBatch(ctx, tx, large)
			wantRule(t, err, apperr.Invalid, "L3")
			out, err = l.PostBatch(ctx, tx, []ledger.EntryInput{transfer("2021-03-02", ledger.Match("GB-VGL"), ledger.InKind("GB-VGL"), "2.00")})
			return err
		})
		if err != nil || len(out) != 1 {
			t.Fatalf("PostBatch after a refused one = %v, %v", out, err)
		}
		wantStored(t, l, 0, transfer("2021-03-02", ledger.Match("GB-VGL"), ledger.InKind("GB-VGL"), "2.00"), out[0])
	})
	t.Run("Verifies", func(t *testing.T) {
		if _, err := l.Seal(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK() || rep.Entries != 1516 || rep.Sealed != 1516 {
			t.Fatalf("verify = %+v, %v", rep, err)
		}
	})
	t.Run("ManyByCopy", func(t *testing.T) {
		// From the COPY threshold on, each row is built as COPY sends it: every column as posted,
		// entries of three postings, a reversal, a key repeated in the batch and a key used
		// before included. The skipped inputs are mid-batch, so that a row built from the wrong
		// input shows.
		var many []ledger.EntryInput
		for i := range ledger.CopyThreshold + 16 {
			in := transfer(fmt.Sprintf("2021-%02d-%02d", 1+i%12, 1+i%28), ledger.Match("GB-TOF"), ledger.InKind("GB-TOF"), fmt.Sprintf("%d.%02d", 1+i, i%100))
			in.Description, in.Reference, in.RecordedBy = fmt.Sprintf("copied %d", i), fmt.Sprintf("ref-%d", i), fmt.Sprintf("officer-%d", i%7)
			if i%2 == 0 {
				in.IdempotencyKey = fmt.Sprintf("copy-%d", i)
			}
			if i%3 == 0 {
				in.Postings[1].Amount = in.Postings[1].Amount.Add(d("0.50"))
				in.Postings = append(in.Postings, ledger.Posting{Account: ledger.Cash, Amount: d("-0.50")})
			}
			many = append(many, in)
		}
		many[5] = transfer(out[2].EffectiveDate.Format("2006-01-02"), ledger.InKind("GB-CRF"), ledger.Match("GB-CRF"), "10.01")
		many[5].Reverses, many[5].Description = out[2].ID, "reversal by COPY"
		many[20], many[30] = many[10], ins[4]
		got, err := postBatch(pool, l, many)
		if err != nil {
			t.Fatal(err)
		}
		if !got[20].Replayed || got[20].ID != got[10].ID || !got[30].Replayed || got[30].ID != out[4].ID {
			t.Fatalf("entries 21 and 31: %+v, %+v; want replays of entry %d and %d", got[20], got[30], got[10].ID, out[4].ID)
		}
		for i, in := range many {
			if i != 20 && i != 30 {
				wantStored(t, l, i, in, got[i])
			}
		}
		// The fingerprint was stored as Post computes it: the same request again is a replay.
		again, err := l.Post(ctx, pool, many[12])
		if err != nil || !again.Replayed || again.ID != got[12].ID {
			t.Fatalf("posting entry 13 again: %+v, %v; want a replay of %d", again, err, got[12].ID)
		}
	})
	t.Run("LargeWithKeysUsedBefore", func(t *testing.T) {
		// A large batch is written before its keys are looked up: one used before sends it back
		// to the lookup, and it is then a replay (same request) or a conflict (another).
		var large []ledger.EntryInput
		for i := range 1200 {
			in := transfer(fmt.Sprintf("2022-%02d-10", 1+i%12), ledger.Match("GB-BGE"), ledger.InKind("GB-BGE"), "2.00")
			in.IdempotencyKey = fmt.Sprintf("large-%d", i)
			large = append(large, in)
		}
		large[700] = ins[5]
		got, err := postBatch(pool, l, large)
		if err != nil {
			t.Fatal(err)
		}
		if !got[700].Replayed || got[700].ID != out[5].ID || got[699].Replayed || got[701].Replayed {
			t.Fatalf("entries 699-701: %+v %+v %+v", got[699], got[700], got[701])
		}
		if bal, _ := l.Balance(ctx, ledger.InKind("GB-BGE")); !bal.Equal(d("2398.00")) {
			t.Fatalf("GB-BGE in-kind %s; want 2,398.00 (1,199 new entries)", bal)
		}
		other := ins[6]
		other.Description = "not the entry first posted with this key"
		large[700] = other
		for i := range large {
			if i != 700 {
				large[i].IdempotencyKey += "-again"
			}
		}
		_, err = postBatch(pool, l, large)
		wantRule(t, err, apperr.Conflict, "L4")
		if bal, _ := l.Balance(ctx, ledger.InKind("GB-BGE")); !bal.Equal(d("2398.00")) {
			t.Fatalf("a refused batch moved GB-BGE in-kind to %s", bal)
		}
	})
}

// postBatch posts ins with PostBatch in a transaction of its own.
func postBatch(pool *pgxpool.Pool, l *ledger.Ledger, ins []ledger.EntryInput) (out []ledger.Entry, err error) {
	err = db.WithTx(context.Background(), pool, func(tx pgx.Tx) (err error) {
		out, err = l.PostBatch(context.Background(), tx, ins)
		return err
	})
	return out, err
}

// wantStored fails t unless the entry posted as in (entry i of its batch) is stored as posted.
func wantStored(t *testing.T, l *ledger.Ledger, i int, in ledger.EntryInput, posted ledger.Entry) {
	t.Helper()
	got, err := l.Entry(context.Background(), posted.ID)
	if err != nil {
		t.Fatal(err)
	}
	same := got.EffectiveDate.Equal(in.EffectiveDate) && got.Description == in.Description && got.Source == in.Source &&
		got.Reference == in.Reference && got.Reverses == in.Reverses && got.IdempotencyKey == in.IdempotencyKey &&
		got.RecordedBy == in.RecordedBy && got.Period == posted.Period && len(got.Postings) == len(in.Postings)
	for j := 0; same && j < len(in.Postings); j++ {
		same = got.Postings[j].Account == in.Postings[j].Account && got.Postings[j].Amount.Equal(in.Postings[j].Amount)
	}
	if !same {
		t.Errorf("entry %d stored as %+v, posted as %+v", i, got, in)
	}
}

func TestBalances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)
	for _, in := range []ledger.EntryInput{
		transfer("2021-02-01", ledger.Cash, ledger.HeadingAccount("staff"), "100.00"),
		transfer("2021-05-01", ledger.Cash, ledger.HeadingAccount("staff"), "200.00"),
		transfer("2021-08-01", ledger.Cash, ledger.HeadingAccount("staff"), "400.00"),
	} {
		if _, err := l.Post(ctx, pool, in); err != nil {
			t.Fatal(err)
		}
	}
	staff := ledger.HeadingAccount("staff")
	if b, _ := l.BalanceThroughPeriod(ctx, staff, "2021Q2"); !b.Equal(d("300")) {
		t.Errorf("through 2021Q2 = %s; want 300.00", b)
	}
	if b, _ := l.BalanceAt(ctx, staff, date("2021-05-01")); !b.Equal(d("300")) {
		t.Errorf("at 2021-05-01 = %s; want 300.00", b)
	}
	if b, _ := l.Balance(ctx, ledger.Cash); !b.Equal(d("-700")) {
		t.Errorf("cash = %s; want -700.00", b)
	}
	tb, err := l.TrialBalance(ctx, pool, "")
	if err != nil {
		t.Fatal(err)
	}
	sum := decimal.Zero
	for _, b := range tb {
		sum = sum.Add(b.Balance)
	}
	if !sum.IsZero() || len(tb) != len(l.Accounts()) {
		t.Fatalf("trial balance sums to %s over %d accounts", sum, len(tb))
	}
	pb, err := l.PeriodBalances(ctx, pool, "2021Q2")
	if err != nil || !pb[staff].Equal(d("200")) {
		t.Fatalf("2021Q2 movements %v, %v", pb, err)
	}
}

// TestConcurrentPosting is the no-lost-update test of architecture.md: 16 writers post 2,000
// random entries each over a few hot accounts and many cold ones; every balance must equal the
// sum of its postings and the trial balance must be zero.
func TestConcurrentPosting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)
	accts := l.Accounts()
	hot := []string{ledger.Cash, ledger.ESFIncome, ledger.InKind("GB-NWP")}
	const writers, each = 16, 2000
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			pick := func() string {
				if rng.IntN(3) == 0 {
					return hot[rng.IntN(len(hot))]
				}
				return accts[rng.IntN(len(accts))].Code
			}
			for i := range each {
				from, to := pick(), pick()
				for to == from {
					to = pick()
				}
				in := transfer(fmt.Sprintf("2022-%02d-%02d", 1+rng.IntN(12), 1+rng.IntN(28)), from, to,
					decimal.New(1+rng.Int64N(1_000_000), -2).String())
				if i%4 == 0 {
					in.IdempotencyKey = fmt.Sprintf("w%d-%d", w, i)
				}
				if _, err := l.Post(ctx, pool, in); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := l.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	var bad int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM balance b FULL JOIN (
		SELECT p.account_id, e.period, sum(p.amount) AS s
		  FROM posting p JOIN entry e ON e.id = p.entry_id GROUP BY 1, 2) x
		ON x.account_id = b.account_id AND x.period = b.period
		WHERE b.amount IS DISTINCT FROM x.s`).Scan(&bad)
	if err != nil || bad != 0 {
		t.Fatalf("%d balances differ from their postings (%v)", bad, err)
	}
	var entries int
	var trial decimal.Decimal
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM entry), (SELECT sum(amount) FROM balance)`).Scan(&entries, &trial); err != nil {
		t.Fatal(err)
	}
	if entries != writers*each+11 || !trial.IsZero() {
		t.Fatalf("%d entries, trial balance %s; want %d and zero", entries, trial, writers*each+11)
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// TestRestoredIntoAYoungerCluster: rows restored from a cluster older than the one they land in
// carry transaction ids the new cluster hands out again, and the commit-time check would take
// an old transaction's rows for a new one's. Opening the ledger first spends ids until new
// transactions are past every txid it holds; a gap too wide to spend is refused, naming the fix.
func TestRestoredIntoAYoungerCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)
	if err := db.WithTx(ctx, pool, func(tx pgx.Tx) error { return l.LockPeriod(ctx, tx, "2021Q1", "pm@example.org") }); err != nil {
		t.Fatal(err)
	}
	const ahead = 100_000
	restoredEntry(t, pool, l, 900001, ahead)
	if gap, _, err := ledger.TxidGap(ctx, pool); err != nil || gap < ahead/2 {
		t.Fatalf("gap %d, %v; want the restored txid ahead of the cluster", gap, err)
	}
	opened, err := ledger.Open(ctx, pool, "infuse")
	if err != nil {
		t.Fatal(err)
	}
	if gap, _, err := ledger.TxidGap(ctx, pool); err != nil || gap != 0 {
		t.Fatalf("gap %d, %v after opening the ledger; want 0", gap, err)
	}
	if _, err := opened.Post(ctx, pool, transfer("2021-05-01", ledger.Cash, ledger.HeadingAccount("other"), "1.00")); err != nil {
		t.Fatal(err)
	}
	if rep, err := opened.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	restoredEntry(t, pool, l, 900002, 1<<33) // of a later epoch
	_, err = ledger.Open(ctx, pool, "infuse")
	wantRule(t, err, apperr.Conflict, ledger.RuleTxids)
	if e := apperr.As(err); e == nil || !strings.Contains(e.Message, "pg_resetwal --epoch=3") {
		t.Fatalf("a gap too wide to spend: %v; want pg_resetwal --epoch=3 named", err)
	}
}

// TestCatchUpOnceWithOneConnectionEach: processes that open a restored ledger at once (serve
// and a command, say) spend the gap once between them, and a pool of one connection (an
// address with pool_max_conns=1) does not wait on itself.
func TestCatchUpOnceWithOneConnectionEach(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := dbtest.URL(t)
	open := func() *pgxpool.Pool {
		p, err := db.Open(ctx, url, func(c *pgxpool.Config) { c.MaxConns = 1 })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	pool := open()
	l, err := ledger.Setup(ctx, pool, programme.Default())
	if err != nil {
		t.Fatal(err)
	}
	const ahead = 300_000
	restoredEntry(t, pool, l, 900001, ahead)
	next := func() int64 {
		var n int64
		if err := pool.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := next()
	pools := []*pgxpool.Pool{open(), open(), open()}
	errs := make(chan error, len(pools))
	for _, p := range pools {
		go func() {
			_, err := ledger.Open(ctx, p, "infuse")
			errs <- err
		}()
	}
	for range pools {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Other tests spend ids meanwhile too, but nowhere near another gap's worth.
	if spent := next() - before; spent > ahead*3/2 {
		t.Fatalf("%d ids spent by three processes opening the ledger at once; want one gap of %d", spent, ahead)
	}
}

// restoredEntry writes what a restore brings: a balanced entry of 2021Q1 written, in the
// cluster it comes from, by a transaction whose id is ahead of this cluster's next by ahead. It
// is written as pg_restore writes rows, before the schema's triggers and token constraints exist.
func restoredEntry(t *testing.T, pool *pgxpool.Pool, l *ledger.Ledger, id int64, ahead int64) {
	t.Helper()
	cash, _ := l.Account(ledger.Cash)
	income, _ := l.Account(ledger.ESFIncome)
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		for _, s := range []string{
			`SET LOCAL session_replication_role = replica`,
			`ALTER TABLE entry DROP CONSTRAINT entry_token_ck`, `ALTER TABLE posting DROP CONSTRAINT posting_token_ck`,
			fmt.Sprintf(`CREATE TEMP TABLE restored ON COMMIT DROP AS SELECT (pg_snapshot_xmax(pg_current_snapshot())::text::bigint + %d)::text::xid8 AS txid`, ahead),
			fmt.Sprintf(`INSERT INTO entry (operation_id, id, effective_date, period, description, source, reference, recorded_at, recorded_by, txid)
				SELECT 'infuse', %d, '2021-02-01', '2021Q1', 'restored', 'raw', '', now(), 'psql', txid FROM restored`, id),
			fmt.Sprintf(`INSERT INTO posting (operation_id, entry_id, line, account_id, amount, txid)
				SELECT 'infuse', %[1]d, 1, %[2]d, 10, txid FROM restored UNION ALL SELECT 'infuse', %[1]d, 2, %[3]d, -10, txid FROM restored`,
				id, cash.ID, income.ID),
			`INSERT INTO seal_queue (operation_id, txid) SELECT 'infuse', txid FROM restored`,
			`ALTER TABLE entry ADD CONSTRAINT entry_token_ck CHECK (txid = pg_current_xact_id()) NOT VALID`,
			`ALTER TABLE posting ADD CONSTRAINT posting_token_ck CHECK (txid = pg_current_xact_id()) NOT VALID`,
		} {
			if _, err := tx.Exec(context.Background(), s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRawEntriesAreQueuedForSealing: the commit-time check queues the transaction that wrote
// entries, however the check is run, so even entries written by raw SQL (holding the token) are
// sealed, once (0022).
func TestRawEntriesAreQueuedForSealing(t *testing.T) {
	t.Parallel()
	for name, early := range map[string]string{"AtCommit": "", "CheckedEarly": `SET CONSTRAINTS ALL IMMEDIATE`,
		"CheckedEarlyByName": `SET CONSTRAINTS ledger_txn_check IMMEDIATE`} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool, l := setup(t)
			cash, _ := l.Account(ledger.Cash)
			income, _ := l.Account(ledger.ESFIncome)
			if _, err := l.Seal(ctx); err != nil { // the set-up's entries
				t.Fatal(err)
			}
			if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				for _, s := range []struct {
					sql  string
					args []any
				}{
					{rawToken, nil},
					{rawEntry, []any{900001, "2021Q1"}},
					{rawEntry, []any{900002, "2021Q1"}},
					{`INSERT INTO posting (operation_id, entry_id, line, account_id, amount) VALUES
						('infuse', 900001, 1, $1, 10), ('infuse', 900001, 2, $2, -10), ('infuse', 900002, 1, $1, 5), ('infuse', 900002, 2, $2, -5)`,
						[]any{cash.ID, income.ID}},
					{early, nil},
				} {
					if s.sql == "" {
						continue
					}
					if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
						return fmt.Errorf("%s: %w", s.sql, err)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			var queued int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM seal_queue`).Scan(&queued); err != nil || queued != 1 {
				t.Fatalf("%d transactions queued (%v); want the one that wrote the entries", queued, err)
			}
			if got, err := l.Balance(ctx, ledger.Cash); err != nil || !got.Equal(decimal.RequireFromString("15")) {
				t.Fatalf("live cash balance %s, %v; want 15.00 before sealing", got, err)
			}
			if n, err := l.Seal(ctx); err != nil || n != 2 {
				t.Fatalf("sealed %d, %v; want the two raw entries", n, err)
			}
			if rep, err := l.Verify(ctx); err != nil || !rep.OK() || rep.Waiting != 0 {
				t.Fatalf("verify after sealing: %+v, %v", rep, err)
			}
			if got, err := l.Balance(ctx, ledger.Cash); err != nil || !got.Equal(decimal.RequireFromString("15")) {
				t.Fatalf("cash balance %s, %v; want 15.00 after sealing", got, err)
			}
		})
	}
}

// TestSealingATransactionInRuns: a transaction of more entries than one sealing run takes is
// sealed in runs, each resuming after the last (sealed_to), and one transaction may write the
// ledgers of two operations, each sealed by its own ledger.
func TestSealingATransactionInRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)
	other := programme.Default()
	other.OperationID = "other"
	l2, err := ledger.Setup(ctx, pool, other, ledger.WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatal(err)
	}
	for _, lg := range []*ledger.Ledger{l, l2} { // the set-ups' entries
		if _, err := lg.Seal(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const n = ledger.SealBatchSize + 50
	ins := make([]ledger.EntryInput, n)
	for i := range ins {
		ins[i] = transfer("2021-05-01", ledger.Cash, ledger.HeadingAccount("delivery"), "1.00")
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := l.PostBatch(ctx, tx, ins); err != nil {
			return err
		}
		_, err := l2.Post(ctx, tx, transfer("2021-05-01", ledger.Cash, ledger.HeadingAccount("other"), "2.00"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var ops []string
	if err := pool.QueryRow(ctx, `SELECT array_agg(operation_id::text ORDER BY operation_id) FROM seal_queue
		HAVING count(DISTINCT txid) = 1`).Scan(&ops); err != nil || fmt.Sprint(ops) != "[infuse other]" {
		t.Fatalf("queued %v (%v); want the one transaction, once for each operation it wrote", ops, err)
	}
	for _, lg := range []*ledger.Ledger{l, l2} {
		if _, err := lg.Seal(ctx); err != nil {
			t.Fatal(err)
		}
		if rep, err := lg.Verify(ctx); err != nil || !rep.OK() || rep.Waiting != 0 {
			t.Fatalf("verify after sealing: %+v, %v", rep, err)
		}
	}
	if got, err := l.Balance(ctx, ledger.Cash); err != nil || !got.Equal(decimal.NewFromInt(-n)) {
		t.Fatalf("cash %s, %v; want -%d", got, err, n)
	}
	if got, err := l2.Balance(ctx, ledger.Cash); err != nil || !got.Equal(decimal.NewFromInt(-2)) {
		t.Fatalf("other operation's cash %s, %v; want -2", got, err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM seal_queue`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d transactions left in the queue (%v)", left, err)
	}
}

// TestSealingQueueOnlyMovesOn: a queued transaction's position never moves back, nor past an
// entry waiting, and its row stays while one waits (0022). Moved back with the schema's triggers
// off (as a superuser can), it offers a sealed entry again, which
// live balances would count twice: ledger verify names it, and the sealer passes over it rather
// than sealing it twice.
func TestSealingQueueOnlyMovesOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)
	e, err := l.Post(ctx, pool, transfer("2021-04-01", ledger.Cash, ledger.HeadingAccount("delivery"), "7.00"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	withTriggersOff := func(sql string, args ...any) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sql, args...)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	withTriggersOff(`INSERT INTO seal_queue (operation_id, txid, sealed_to) SELECT operation_id, txid, id FROM entry WHERE id = $1`, e.ID)
	const back = `UPDATE seal_queue q SET sealed_to = 0 FROM entry e WHERE e.id = $1 AND q.txid = e.txid`
	// A waiting entry, whose transaction's position may not move past it, nor its row go.
	w, err := l.Post(ctx, pool, transfer("2021-04-02", ledger.Cash, ledger.HeadingAccount("delivery"), "1.00"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		name, sql string
		args      []any
	}{
		{"MovedBack", back, []any{e.ID}},
		{"MovedPastAWaitingEntry", `UPDATE seal_queue q SET sealed_to = e.id FROM entry e WHERE e.id = $1 AND q.txid = e.txid`, []any{w.ID}},
		{"LeftWithAnEntryWaiting", `DELETE FROM seal_queue q USING entry e WHERE e.id = $1 AND q.txid = e.txid`, []any{w.ID}},
		{"Truncated", `TRUNCATE seal_queue`, nil},
	} {
		if _, err := pool.Exec(ctx, s.sql, s.args...); !asPg(err, new(*pgconn.PgError)) || err.(*pgconn.PgError).Code != "IL002" {
			t.Fatalf("%s: %v; want IL002", s.name, err)
		}
	}
	if n, err := l.Seal(ctx); err != nil || n != 1 {
		t.Fatalf("sealed %d, %v; want the waiting entry", n, err)
	}
	withTriggersOff(back, e.ID)
	rep, err := l.Verify(ctx)
	if err != nil || rep.OK() || len(rep.Problems) != 1 || rep.Problems[0].Kind != ledger.ProblemQueued || rep.Problems[0].EntryID != e.ID {
		t.Fatalf("verify of a sealed entry queued again: %+v, %v", rep, err)
	}
	if n, err := l.Seal(ctx); err != nil || n != 0 {
		t.Fatalf("seal sealed %d, %v; want 0 and the queue row dropped", n, err)
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() || rep.Waiting != 0 {
		t.Fatalf("verify after sealing: %+v, %v", rep, err)
	}
	if got, err := l.Balance(ctx, ledger.Cash); err != nil || !got.Equal(decimal.RequireFromString("-8.00")) {
		t.Fatalf("cash %s, %v; want -8.00", got, err)
	}
}

// TestVerifyFindsTampering alters rows behind the triggers' back, as a superuser could, and
// expects verify to name the entry that was altered.
func TestVerifyFindsTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)
	var target ledger.Entry
	for i := range 50 {
		e, err := l.Post(ctx, pool, transfer("2021-04-01", ledger.Cash, ledger.HeadingAccount("delivery"), fmt.Sprintf("%d.00", 100+i)))
		if err != nil {
			t.Fatal(err)
		}
		if i == 20 {
			target = e
		}
	}
	if _, err := l.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("clean ledger does not verify: %+v, %v", rep, err)
	}
	// behindTheTriggers alters ledger rows as a superuser can: with the triggers off, and the
	// token constraints (which hold for any row written, updated too) lifted for the moment.
	behindTheTriggers := func(sql string, args ...any) {
		t.Helper()
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, `SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
				       format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
				  FROM pg_constraint WHERE conname IN ('entry_token_ck', 'posting_token_ck')`)
			lifted, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Drop, Add string }])
			if err != nil || len(lifted) != 2 {
				return fmt.Errorf("token constraints: %v, %v", lifted, err)
			}
			exec := func(s string, args ...any) error {
				_, err := tx.Exec(ctx, s, args...)
				return err
			}
			if err := exec(`SET LOCAL session_replication_role = replica`); err != nil {
				return err
			}
			for _, c := range lifted {
				if err := exec(c.Drop); err != nil {
					return err
				}
			}
			if err := exec(sql, args...); err != nil {
				return err
			}
			for _, c := range lifted {
				if err := exec(c.Add); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("AlteredPosting", func(t *testing.T) {
		behindTheTriggers(`UPDATE posting SET amount = amount + 0.01 WHERE entry_id = $1 AND line = 1`, target.ID)
		rep, err := l.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() {
			t.Fatal("verify passed a ledger with an altered posting")
		}
		first := rep.Problems[0]
		if first.EntryID != target.ID || (first.Kind != ledger.ProblemDigest && first.Kind != ledger.ProblemEntry) {
			t.Fatalf("first break %+v; want entry %d named", first, target.ID)
		}
		kinds := map[string]bool{}
		for _, p := range rep.Problems {
			kinds[p.Kind] = true
		}
		if !kinds[ledger.ProblemDigest] || !kinds[ledger.ProblemBalance] || !kinds[ledger.ProblemEntry] {
			t.Fatalf("problems %+v; want digest, entry and balance breaks", rep.Problems)
		}
		// Each problem keeps its message's key and arguments, the postings' own too, so that a
		// page can show it in Welsh.
		cy := map[string]string{
			"entry %d (chain position %d) or one of its postings was altered after sealing: now %s": "newidiwyd cofnod %d (safle %d): %s",
			"line %d account %d amount %s": "llinell %d cyfrif %d swm %s",
		}
		for _, p := range rep.Problems {
			if p.Kind != ledger.ProblemDigest {
				continue
			}
			if !strings.Contains(p.Message, fmt.Sprintf("entry %d (chain position ", target.ID)) ||
				!strings.Contains(p.Message, "altered after sealing: now line 1 account ") {
				t.Errorf("digest problem reads %q", p.Message)
			}
			tx := p.Text()
			got := apperr.Format(func(k string) (string, bool) { v, ok := cy[k]; return v, ok }, tx.Key, tx.Args, tx.Message)
			if !strings.HasPrefix(got, fmt.Sprintf("newidiwyd cofnod %d (safle ", target.ID)) || !strings.Contains(got, "; llinell 2 cyfrif ") {
				t.Errorf("digest problem in Welsh reads %q", got)
			}
		}
	})
	t.Run("AlteredLink", func(t *testing.T) {
		behindTheTriggers(`UPDATE seal SET link = sha256(link) WHERE seq = 5`)
		rep, err := l.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range rep.Problems {
			if p.Kind == ledger.ProblemChain && p.Seq == 5 {
				found = true
			}
		}
		if !found {
			t.Fatalf("problems %+v; want a chain break at position 5", rep.Problems)
		}
	})
}
