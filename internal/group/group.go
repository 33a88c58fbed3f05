// Package group records concurrent requests in groups that share one database transaction.
//
// A recording of one line on its own is a transaction of a dozen statements and a commit, and
// with fsync on a flush of the WAL: under load the fixed cost of the transaction, not the line,
// is what the database spends its time on. So the recordings that arrive together are recorded
// together: a worker takes the calls waiting, at most one of any key (an officer, say), and
// records them in one transaction, set-based. Each call must still get the outcome it would
// have had on its own: the run function checks each against what is committed (under the
// key's lock where its rules need one), a refused call writes nothing, and calls of one key are
// run one after another in arrival order. When the shared transaction fails as a whole (a
// deadlock with another writer, say), each of its calls is run again in a group of its own, so
// one call can never fail another.
//
// A call whose key another transaction holds (an import locking its officers, say) must not
// hold up the group, nor every call queued behind it: run may defer it (Call.Defer) instead of
// waiting for the key. A deferred call is run again in the waiting lane, a group of its own whose
// run waits a while for the key, while the worker goes on with the other keys; calls of a
// deferred key wait in the queue until it is done, so that they keep their order. A run in the
// lane that has waited its while defers the call again, and the lane takes the other deferred
// calls before it comes round again: one long-held key holds up only its own calls. A caller
// that gives up while its call waits in the lane takes it out, as from the queue.
//
// Workers are started when calls wait and end when none do: nothing runs while the service is
// idle, and an unloaded call is a group of one with no wait.
package group

import (
	"context"
	"sync"
)

// maxGroup bounds the calls of one transaction; maxWorkers the transactions at once. One worker
// lets the calls that arrive while its transaction runs gather into the next group; a second
// ran beside it with the few that had arrived, and the groups, and so the work done per call,
// went up and down. Measured by BenchmarkPostTimeEntries on a 2-core machine, durable, in
// alternating runs: 1 worker 2,300–3,200 requests/s with p99 32–45 ms; 2 workers 1,100–2,200/s
// with p99 100–170 ms; 3 or 4 workers no better than 2 (an earlier machine of the same size gave
// 2 workers p99 ~45 ms, and 4 workers p99 ~120 ms).
const (
	maxGroup   = 64
	maxWorkers = 1
)

// Call is one call waiting for, or in, a group. Run sets Out or Err.
type Call[In, Out any] struct {
	In  In
	Out Out
	Err error

	key      string
	queued   bool          // in the queue, not yet taken by a worker (guarded by Grouper.mu)
	inLane   bool          // deferred, waiting for the lane to take it (guarded by Grouper.mu)
	gaveUp   error         // the caller's context ended while the call ran (guarded by Grouper.mu)
	deferred bool          // handed back by run (Defer)
	done     chan struct{} // closed when Out and Err are final
}

// Defer hands the call back, with nothing of it done, when its key is held by another
// transaction: it is run again in the waiting lane.
func (c *Call[In, Out]) Defer() { c.deferred = true }

// Run records a group, setting each call's Out or Err, or deferring it (Call.Defer) when its key
// is held elsewhere: at once when wait is false, after waiting a while for it when wait is true
// (the lane's group of one). It returns an error only when the group's shared transaction
// failed as a whole; the calls it deferred are then run again like the others.
type Run[In, Out any] func(ctx context.Context, group []*Call[In, Out], wait bool) error

// Grouper queues calls and runs them in groups with run.
type Grouper[In, Out any] struct {
	run Run[In, Out]

	mu       sync.Mutex
	queue    []*Call[In, Out]
	workers  int
	deferred []*Call[In, Out] // waiting for the lane, in the order they were deferred
	held     map[string]bool  // the keys of deferred calls not yet done
	lane     bool             // the waiting lane's goroutine runs
}

// New returns a Grouper that runs groups with run.
func New[In, Out any](run Run[In, Out]) *Grouper[In, Out] {
	return &Grouper[In, Out]{run: run, held: map[string]bool{}}
}

// Do runs in in the next group that can take it and returns its outcome. No two calls of one
// key share a group. A caller whose ctx ends while
// its call still waits leaves the queue with nothing done; once a worker has taken the call, its
// outcome stands and Do waits for it.
func (g *Grouper[In, Out]) Do(ctx context.Context, key string, in In) (Out, error) {
	c := &Call[In, Out]{key: key, In: in, queued: true, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.workers < maxWorkers {
		g.workers++
		// The worker outlives this request: it records the group it takes even if this caller
		// goes away, keeping the request's values (request id) but not its cancellation.
		go g.work(context.WithoutCancel(ctx))
	}
	g.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		g.mu.Lock()
		switch {
		case c.queued:
			g.queue = deleteCall(g.queue, c)
		case c.inLane:
			g.deferred = deleteCall(g.deferred, c)
			g.releaseLocked(context.WithoutCancel(ctx), c.key)
		default: // running: its outcome stands, unless it is deferred again
			c.gaveUp = ctx.Err()
			g.mu.Unlock()
			<-c.done
			return c.Out, c.Err
		}
		g.mu.Unlock()
		var zero Out
		return zero, ctx.Err()
	}
	return c.Out, c.Err
}

// work records groups until the queue is empty.
func (g *Grouper[In, Out]) work(ctx context.Context) {
	for {
		g.mu.Lock()
		group := g.takeLocked()
		if len(group) == 0 {
			g.workers--
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.record(ctx, group, false)
		g.mu.Lock()
		for _, c := range group {
			if c.deferred {
				g.deferLocked(ctx, c)
			} else {
				close(c.done)
			}
		}
		g.mu.Unlock()
	}
}

// deferLocked puts c at the back of the lane, holding its key, and starts the lane if it is idle.
// A call whose caller has given up is ended instead, with nothing of it done.
func (g *Grouper[In, Out]) deferLocked(ctx context.Context, c *Call[In, Out]) {
	c.deferred = false
	if c.gaveUp != nil {
		var zero Out
		c.Out, c.Err = zero, c.gaveUp
		close(c.done)
		if g.held[c.key] {
			g.releaseLocked(ctx, c.key)
		}
		return
	}
	c.inLane = true
	g.deferred = append(g.deferred, c)
	g.held[c.key] = true
	if !g.lane {
		g.lane = true
		go g.waitLane(ctx)
	}
}

// releaseLocked lets the queued calls of key be taken again, starting a worker for them if none
// runs.
func (g *Grouper[In, Out]) releaseLocked(ctx context.Context, key string) {
	delete(g.held, key)
	if len(g.queue) > 0 && g.workers < maxWorkers {
		g.workers++
		go g.work(ctx)
	}
}

// waitLane runs the deferred calls one at a time, in turn, each in a group of its own that waits
// a while for its key, until none is left.
func (g *Grouper[In, Out]) waitLane(ctx context.Context) {
	for {
		g.mu.Lock()
		if len(g.deferred) == 0 {
			g.lane = false
			g.mu.Unlock()
			return
		}
		c := g.deferred[0]
		g.deferred = g.deferred[1:]
		c.inLane = false
		g.mu.Unlock()
		g.record(ctx, []*Call[In, Out]{c}, true)
		g.mu.Lock()
		if c.deferred { // its key is held still: the others waiting go first
			g.deferLocked(ctx, c)
		} else {
			close(c.done)
			g.releaseLocked(ctx, c.key)
		}
		g.mu.Unlock()
	}
}

// record runs a group; if its transaction fails as a whole, each call again in a group of one.
func (g *Grouper[In, Out]) record(ctx context.Context, group []*Call[In, Out], wait bool) {
	err := g.run(ctx, group, wait)
	if err == nil {
		return
	}
	if len(group) == 1 {
		group[0].Err, group[0].deferred = err, false
		return
	}
	for _, c := range group {
		var zero Out
		c.Out, c.Err, c.deferred = zero, nil, false
		g.record(ctx, []*Call[In, Out]{c}, wait)
	}
}

// takeLocked takes the next group off the queue: calls in arrival order, at most one of any key,
// none of a key deferred and not yet done, and maxGroup in all; the calls it skips keep their
// places.
func (g *Grouper[In, Out]) takeLocked() []*Call[In, Out] {
	var group []*Call[In, Out]
	keys := make(map[string]bool)
	rest := g.queue[:0]
	for _, c := range g.queue {
		if len(group) == maxGroup || keys[c.key] || g.held[c.key] {
			rest = append(rest, c)
			continue
		}
		keys[c.key] = true
		c.queued = false
		group = append(group, c)
	}
	clear(g.queue[len(rest):])
	g.queue = rest
	return group
}

func deleteCall[In, Out any](q []*Call[In, Out], c *Call[In, Out]) []*Call[In, Out] {
	for i, x := range q {
		if x == c {
			copy(q[i:], q[i+1:])
			q[len(q)-1] = nil
			return q[:len(q)-1]
		}
	}
	return q
}
