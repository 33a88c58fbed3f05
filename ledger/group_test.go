package ledger

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/programme"
)

func groupLedger(t *testing.T) (*pgxpool.Pool, *Ledger) {
	t.Helper()
	pool := dbtest.New(t)
	l, err := Setup(context.Background(), pool, programme.Default())
	if err != nil {
		t.Fatal(err)
	}
	return pool, l
}

func groupInput(day int, amount, key string) EntryInput {
	a := decimal.RequireFromString(amount)
	return EntryInput{
		EffectiveDate: time.Date(2021, 5, day, 0, 0, 0, 0, time.UTC), Description: "grouped", Source: "test",
		RecordedBy: "tester", IdempotencyKey: key,
		Postings: []Posting{{Account: HeadingAccount("delivery"), Amount: a}, {Account: Cash, Amount: a.Neg()}},
	}
}

// postAsGroup posts ins as one group, as the committer would, and returns each outcome.
func postAsGroup(t *testing.T, l *Ledger, ins ...EntryInput) []*request {
	t.Helper()
	group := make([]*request, len(ins))
	for i, in := range ins {
		r, err := l.newRequest(in)
		if err != nil {
			t.Fatal(err)
		}
		group[i] = r
	}
	l.postGroup(context.Background(), group)
	return group
}

func wantGroupRule(t *testing.T, r *request, code apperr.Code, rule string) {
	t.Helper()
	if apperr.CodeOf(r.failure) != code || apperr.RuleOf(r.failure) != rule {
		t.Fatalf("want %s %s, got %+v, %v", code, rule, r.result, r.failure)
	}
}

// TestGroupOutcomes: the entries of one group each get their own outcome, as if posted alone.
func TestGroupOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := groupLedger(t)

	t.Run("KeysWithinTheGroup", func(t *testing.T) {
		changed := groupInput(3, "10.00", "k1")
		changed.Description = "changed"
		rs := postAsGroup(t, l, groupInput(3, "10.00", "k1"), groupInput(3, "10.00", "k1"), changed,
			groupInput(4, "11.00", ""))
		if rs[0].failure != nil || rs[0].result.Replayed || rs[0].result.Period != "2021Q2" {
			t.Fatalf("first use of a key: %+v, %v", rs[0].result, rs[0].failure)
		}
		if r := rs[1]; r.failure != nil || !r.result.Replayed || r.result.ID != rs[0].result.ID {
			t.Fatalf("its replay in the same group: %+v, %v; want entry %d replayed", r.result, r.failure, rs[0].result.ID)
		}
		wantGroupRule(t, rs[2], apperr.Conflict, "L4")
		if r := rs[3]; r.failure != nil || r.result.ID == 0 {
			t.Fatalf("entry without a key: %+v, %v", r.result, r.failure)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(DISTINCT txid) FROM entry WHERE id = ANY($1)`,
			[]int64{rs[0].result.ID, rs[3].result.ID}).Scan(&n); err != nil || n != 1 {
			t.Fatalf("the group's entries were committed by %d transactions (%v); want 1", n, err)
		}
	})
	t.Run("NoPeriodFailsOnlyItsEntry", func(t *testing.T) {
		early := groupInput(1, "5.00", "")
		early.EffectiveDate = time.Date(2020, 12, 31, 0, 0, 0, 0, time.UTC)
		rs := postAsGroup(t, l, groupInput(5, "5.00", ""), early)
		if rs[0].failure != nil {
			t.Fatal(rs[0].failure)
		}
		wantGroupRule(t, rs[1], apperr.Invalid, "L5")
	})
	t.Run("ARefusedGroupIsPostedEntryByEntry", func(t *testing.T) {
		orig := postAsGroup(t, l, groupInput(6, "40.00", ""))[0]
		if orig.failure != nil {
			t.Fatal(orig.failure)
		}
		rev := func(reason string) EntryInput {
			in := groupInput(6, "-40.00", "")
			in.Reverses, in.Description = orig.result.ID, reason
			return in
		}
		// Two reversals of one entry break entry_reverses_uq: the database refuses the group's
		// transaction, and each entry is posted again alone.
		rs := postAsGroup(t, l, groupInput(7, "1.00", ""), rev("first"), rev("second"), groupInput(8, "2.00", ""))
		for _, i := range []int{0, 1, 3} {
			if rs[i].failure != nil || rs[i].result.ID == 0 {
				t.Fatalf("entry %d of the group: %+v, %v", i+1, rs[i].result, rs[i].failure)
			}
		}
		wantGroupRule(t, rs[2], apperr.Conflict, "L6")
		bal, err := l.Balance(ctx, HeadingAccount("delivery"))
		if want := decimal.RequireFromString("29.00"); err != nil || !bal.Equal(want) {
			// 10 + 11 + 5 + 40 - 40 + 1 + 2
			t.Fatalf("delivery balance %s, %v; want %s", bal, err, want)
		}
	})
}

// TestConcurrentPostsShareTransactions: entries posted through the pool at the same moment are
// committed together, and each caller still gets its own entry.
func TestConcurrentPostsShareTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := groupLedger(t)
	const callers = 24
	ids := make([]int64, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			e, err := l.Post(ctx, pool, groupInput(1+i, "3.00", ""))
			if err != nil {
				t.Error(err)
			}
			ids[i] = e.ID
		})
	}
	close(start)
	wg.Wait()
	var entries, txns int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT id), count(DISTINCT txid) FROM entry WHERE id = ANY($1)`, ids).
		Scan(&entries, &txns); err != nil {
		t.Fatal(err)
	}
	if entries != callers || txns >= callers {
		t.Fatalf("%d callers got %d entries in %d transactions; want %d entries in fewer transactions", callers, entries, txns, callers)
	}
}
