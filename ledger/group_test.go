package ledger

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
		wantOneTransaction(t, pool, rs[0], rs[3])
	})
	t.Run("NoPeriodFailsOnlyItsEntry", func(t *testing.T) {
		early := groupInput(1, "5.00", "")
		early.EffectiveDate = time.Date(2020, 12, 31, 0, 0, 0, 0, time.UTC)
		rs := postAsGroup(t, l, groupInput(5, "5.00", ""), early, groupInput(5, "6.00", ""))
		wantGroupRule(t, rs[1], apperr.Invalid, "L5")
		wantOneTransaction(t, pool, rs[0], rs[2])
	})
	t.Run("ARefusedGroupIsPostedEntryByEntry", func(t *testing.T) {
		orig := postAsGroup(t, l, groupInput(6, "40.00", ""))[0]
		if orig.failure != nil {
			t.Fatal(orig.failure)
		}
		rev := func(of int64, reason string) EntryInput {
			in := groupInput(6, "-40.00", "")
			in.Reverses, in.Description = of, reason
			return in
		}
		// Two reversals of one entry break entry_reverses_uq as the statement runs: the
		// database refuses the group's transaction, and each entry is posted again alone.
		rs := postAsGroup(t, l, groupInput(7, "1.00", ""), rev(orig.result.ID, "first"), rev(orig.result.ID, "second"),
			groupInput(8, "2.00", ""))
		wantPosted(t, rs[0], rs[1], rs[3])
		wantGroupRule(t, rs[2], apperr.Conflict, "L6")

		// A reversal of a reversal is refused only by the commit-time check (IL007), after the
		// statement has returned the group's rows.
		rs = postAsGroup(t, l, groupInput(9, "3.00", ""), rev(rs[1].result.ID, "of a reversal"), groupInput(10, "4.00", ""))
		wantPosted(t, rs[0], rs[2])
		wantGroupRule(t, rs[1], apperr.Invalid, "L6")

		var reversals int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM entry WHERE reverses IS NOT NULL`).Scan(&reversals); err != nil || reversals != 1 {
			t.Fatalf("%d reversals in the ledger (%v); want the first only", reversals, err)
		}
	})
	t.Run("PlanSettingOfTheCallersTransactionKept", func(t *testing.T) {
		var mode string
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
				return err
			}
			if _, err := l.Post(ctx, tx, groupInput(11, "1.00", "")); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&mode)
		})
		if err != nil || mode != "force_custom_plan" {
			t.Fatalf("plan_cache_mode after Post in the caller's transaction: %q, %v; want force_custom_plan", mode, err)
		}
	})
}

func wantPosted(t *testing.T, rs ...*request) {
	t.Helper()
	for _, r := range rs {
		if r.failure != nil || r.result.ID == 0 || r.result.Replayed {
			t.Fatalf("entry %q: %+v, %v; want it posted", r.in.Description, r.result, r.failure)
		}
	}
}

// wantOneTransaction checks that the entries of rs were committed by one transaction.
func wantOneTransaction(t *testing.T, pool *pgxpool.Pool, rs ...*request) {
	t.Helper()
	wantPosted(t, rs...)
	ids := make([]int64, len(rs))
	for i, r := range rs {
		ids[i] = r.result.ID
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(DISTINCT txid) FROM entry WHERE id = ANY($1)`, ids).
		Scan(&n); err != nil || n != 1 {
		t.Fatalf("the entries were committed by %d transactions (%v); want 1", n, err)
	}
}

// TestCommitterQueue: a caller that gives up while its entry is queued takes it out, and a queue
// longer than a group is posted in several.
func TestCommitterQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := groupLedger(t)
	c := &l.group
	hold := func() { // once Setup's flushers are gone, no flusher starts while held
		for {
			c.mu.Lock()
			idle := c.flushing == 0
			if idle {
				c.flushing = maxFlushers
			}
			c.mu.Unlock()
			if idle {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	release := func() {
		c.mu.Lock()
		c.flushing = 0
		c.mu.Unlock()
	}

	t.Run("GivingUpWhileQueued", func(t *testing.T) {
		hold()
		defer release()
		r, err := l.newRequest(groupInput(12, "9.99", "given-up"))
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		out := make(chan error, 1)
		go func() {
			_, err := c.post(cctx, l, r)
			out <- err
		}()
		for queued, waited := 0, 0; queued == 0; waited++ {
			if waited == 10_000 {
				t.Fatal("the entry never reached the queue")
			}
			time.Sleep(time.Millisecond)
			c.mu.Lock()
			queued = len(c.queue)
			c.mu.Unlock()
		}
		cancel()
		if err := <-out; err == nil {
			t.Fatal("Post returned no error after its context ended")
		}
		c.mu.Lock()
		left := len(c.queue)
		c.mu.Unlock()
		var posted int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM entry WHERE idempotency_key = 'given-up'`).Scan(&posted); err != nil ||
			left != 0 || posted != 0 {
			t.Fatalf("after giving up: %d queued, %d posted (%v); want neither", left, posted, err)
		}
	})
	t.Run("SecondGroupWaitsForEnoughEntries", func(t *testing.T) {
		hold()
		defer release()
		c.mu.Lock()
		c.flushing = 1 // as if a group were in flight
		c.mu.Unlock()
		queued := func() (n, flushing int) {
			c.mu.Lock()
			defer c.mu.Unlock()
			return len(c.queue), c.flushing
		}
		rs := make([]*request, secondGroupMin)
		for i := range rs {
			r, err := l.newRequest(groupInput(1+i, "0.25", ""))
			if err != nil {
				t.Fatal(err)
			}
			rs[i] = r
			go c.post(ctx, l, r)
			if i == len(rs)-1 {
				break
			}
			for waited := 0; ; waited++ {
				if n, flushing := queued(); n == i+1 {
					if flushing != 1 {
						t.Fatalf("%d entries waiting started a group beside the one in flight", n)
					}
					break
				}
				if waited == 10_000 {
					t.Fatalf("entry %d never reached the queue", i+1)
				}
				time.Sleep(time.Millisecond)
			}
		}
		waitAnswered(t, rs...)
		wantOneTransaction(t, pool, rs...)
		waitFlushers(t, c, 1) // the second flusher leaves once the queue is empty
	})
	t.Run("ShortQueueLeftToTheOtherFlusher", func(t *testing.T) {
		hold()
		defer release()
		rs := queueRequests(t, l, secondGroupMin-1)
		c.mu.Lock()
		c.flushing = 2 // this flusher, and another with a group in flight
		c.mu.Unlock()
		go c.flush(l)
		waitFlushers(t, c, 1)
		c.mu.Lock()
		left := len(c.queue)
		c.mu.Unlock()
		if left != len(rs) {
			t.Fatalf("%d entries left queued; want all %d, too few for a second group", left, len(rs))
		}
		go c.flush(l) // the other flusher, done with its group, takes them
		waitAnswered(t, rs...)
		wantOneTransaction(t, pool, rs...)
		waitFlushers(t, c, 0)
	})
	t.Run("EntriesDoNotWaitForOnePostedAlone", func(t *testing.T) {
		hold()
		defer release()
		c.mu.Lock()
		c.flushing, c.alone = 1, 1 // as if a flusher were posting an entry alone, waiting for a lock
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.alone = 0
			c.mu.Unlock()
		}()
		r, err := l.newRequest(groupInput(3, "0.75", ""))
		if err != nil {
			t.Fatal(err)
		}
		out := make(chan error, 1)
		go func() {
			_, err := c.post(ctx, l, r)
			out <- err
		}()
		select {
		case <-out:
		case <-time.After(10 * time.Second):
			t.Fatal("the entry was not posted beside the one posted alone")
		}
		wantPosted(t, r)
		waitFlushers(t, c, 1) // the flusher that posted it leaves; the one "alone" stays
	})
	t.Run("LongQueueInSeveralGroups", func(t *testing.T) {
		hold()
		rs := queueRequests(t, l, maxGroup+3)
		c.mu.Lock()
		c.flushing = 1
		c.mu.Unlock()
		go c.flush(l)
		waitAnswered(t, rs...)
		wantPosted(t, rs...)
		ids := make([]int64, len(rs))
		for i, r := range rs {
			ids[i] = r.result.ID
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(DISTINCT txid) FROM entry WHERE id = ANY($1)`, ids).Scan(&n); err != nil || n != 2 {
			t.Fatalf("%d entries committed by %d transactions (%v); want 2", len(rs), n, err)
		}
		waitFlushers(t, c, 0)
	})
}

// queueRequests puts n new requests in the committer's queue, as post would, without starting
// a flusher.
func queueRequests(t *testing.T, l *Ledger, n int) []*request {
	t.Helper()
	rs := make([]*request, n)
	for i := range rs {
		r, err := l.newRequest(groupInput(1+i%28, "0.50", ""))
		if err != nil {
			t.Fatal(err)
		}
		r.done = make(chan struct{})
		rs[i] = r
	}
	l.group.mu.Lock()
	l.group.queue = append(l.group.queue, rs...)
	l.group.mu.Unlock()
	return rs
}

// waitAnswered waits for each request's outcome, for 10 s at most.
func waitAnswered(t *testing.T, rs ...*request) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for i, r := range rs {
		select {
		case <-r.done:
		case <-timeout:
			t.Fatalf("request %d of %d not answered after 10 s", i+1, len(rs))
		}
	}
}

// waitFlushers waits until the committer has n flushers, for 10 s at most: callers are answered
// before their flusher looks for more work.
func waitFlushers(t *testing.T, c *committer, n int) {
	t.Helper()
	for waited := 0; ; waited++ {
		c.mu.Lock()
		flushing := c.flushing
		c.mu.Unlock()
		if flushing == n {
			return
		}
		if waited == 10_000 {
			t.Fatalf("%d flushers after 10 s; want %d", flushing, n)
		}
		time.Sleep(time.Millisecond)
	}
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
	for i, id := range ids {
		var day time.Time
		if err := pool.QueryRow(ctx, `SELECT effective_date FROM entry WHERE id = $1`, id).Scan(&day); err != nil || day.Day() != 1+i {
			t.Fatalf("caller %d got entry %d, dated %s (%v); want its own, dated May %d", i, id, day, err, 1+i)
		}
	}
}
