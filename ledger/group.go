package ledger

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ccr-infuse/infuse/internal/db"
)

// committer lets single entries posted through the ledger's pool at the same moment share one
// transaction: one round trip, one ledger token, one commit-time check and one flush of the
// write-ahead log for the lot, where each alone would pay all four. It is group commit, done in
// the ledger because each entry is a transaction of its own making.
//
// Each Post still returns only once its entry is committed, and with its own outcome:
//   - a replay or a conflict (L4), or an entry no period can take (L5, F1), inserts no row and
//     fails nothing else; finish explains it after the commit, as for an entry posted alone;
//   - if the database refuses the shared transaction (an entry reversed twice, say, or two
//     groups deadlocked over the same keys), nothing of it is kept, and each of its entries is
//     posted again alone, so that only the guilty one is refused.
//
// No entry waits for a timer: an entry that finds fewer than maxFlushers groups in flight
// starts one at once; the others wait for the next, which takes every entry queued by then.
type committer struct {
	mu       sync.Mutex
	queue    []*request
	flushing int
}

const (
	// maxFlushers is how many groups may be in flight at once: while one waits for its commit
	// to reach the disk, another can run its statements.
	maxFlushers = 2
	// maxGroup bounds the entries of one group, and so its transaction's size.
	maxGroup = 128
)

// post queues r and waits for its outcome. If ctx ends first, Post returns its error, and the
// entry may yet be committed (as when a connection drops at commit): a retry with the same
// idempotency key returns it.
func (c *committer) post(ctx context.Context, l *Ledger, r *request) (Entry, error) {
	r.done = make(chan struct{})
	c.mu.Lock()
	c.queue = append(c.queue, r)
	if c.flushing < maxFlushers {
		c.flushing++
		go c.flush(context.WithoutCancel(ctx), l)
	}
	c.mu.Unlock()
	select {
	case <-r.done:
		return r.result, r.failure
	case <-ctx.Done():
		return Entry{}, db.Translate("ledger.Post", ctx.Err())
	}
}

// flush writes groups from the queue until it is empty.
func (c *committer) flush(ctx context.Context, l *Ledger) {
	for {
		// Let the callers woken by the last group queue their next entries before taking the
		// next group: without it, groups alternated between one entry and all the rest.
		runtime.Gosched()
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.flushing--
			c.mu.Unlock()
			return
		}
		group := c.queue
		if len(group) > maxGroup {
			group, c.queue = group[:maxGroup:maxGroup], slices.Clone(group[maxGroup:])
		} else {
			c.queue = nil
		}
		c.mu.Unlock()
		l.postGroup(ctx, group)
		for _, r := range group {
			close(r.done)
		}
	}
}

// postGroup posts a group in one implicit transaction (one batch) and records each entry's
// outcome in its request.
func (l *Ledger) postGroup(ctx context.Context, group []*request) {
	if len(group) == 1 {
		r := group[0]
		r.result, r.failure = l.postAlone(ctx, l.pool, r)
		return
	}
	b := &pgx.Batch{}
	l.queuePost(b, group)
	err := l.pool.SendBatch(ctx, b).Close()
	var pg *pgconn.PgError
	for _, r := range group {
		switch {
		case err == nil:
			r.result, r.failure = l.finish(ctx, l.pool, r)
		case errors.As(err, &pg):
			// The database refused the transaction, so none of it was kept.
			r.result, r.failure = l.postAlone(ctx, l.pool, r)
		default:
			// The connection failed: whether the group committed is unknown, as it would be
			// for an entry alone. A retry with the same idempotency key finds out.
			r.failure = db.Translate("ledger.Post", err)
		}
	}
}
