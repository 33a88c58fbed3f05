package match

import (
	"context"
	"sync"
)

// Recording in groups. A recording of one line on its own is a transaction of a dozen statements
// and a commit, and with fsync on a flush of the WAL: under load the fixed cost of the
// transaction, not the line, is what the database spends its time on. So the recordings that
// arrive together are recorded together: a worker takes the recordings waiting, at most one of
// any key (an officer), and records them in one transaction, with the reads, the postings and
// the inserts set-based. Each recording still gets the outcome it would have had on its own:
// the rules are checked per recording against what is committed under the key's lock, a
// refused recording writes nothing, and recordings of one key are recorded one after another
// in arrival order. When the shared transaction fails as a whole (a deadlock with another
// writer, say), each of its recordings is recorded again in a group of its own, so one
// recording can never fail another.
//
// Workers are started when recordings wait and end when none do: nothing runs while the service
// is idle, and an unloaded recording is a group of one with no wait.

// maxGroup bounds the recordings of one transaction; maxWorkers the transactions at once.
const (
	maxGroup   = 64
	maxWorkers = 4
)

// call is one recording waiting for, or in, a group.
type call[In, Out any] struct {
	key    string
	in     In
	out    Out
	err    error
	queued bool          // in the queue, not yet taken by a worker (guarded by grouper.mu)
	done   chan struct{} // closed when out and err are final
}

// grouper queues calls and runs them in groups with run, which sets each call's out or err and
// returns an error only when the group's shared transaction failed as a whole.
type grouper[In, Out any] struct {
	run func(ctx context.Context, group []*call[In, Out]) error

	mu      sync.Mutex
	queue   []*call[In, Out]
	workers int
}

// do records in (whose lock is key) in the next group that can take it and returns its outcome.
// A caller whose ctx ends while its call still waits leaves the queue with nothing recorded; once
// a worker has taken the call, its outcome stands and do waits for it.
func (g *grouper[In, Out]) do(ctx context.Context, key string, in In) (Out, error) {
	c := &call[In, Out]{key: key, in: in, queued: true, done: make(chan struct{})}
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
		if c.queued {
			g.queue = deleteCall(g.queue, c)
			g.mu.Unlock()
			var zero Out
			return zero, ctx.Err()
		}
		g.mu.Unlock()
		<-c.done
	}
	return c.out, c.err
}

// work records groups until the queue is empty.
func (g *grouper[In, Out]) work(ctx context.Context) {
	for {
		g.mu.Lock()
		group := g.takeLocked()
		if len(group) == 0 {
			g.workers--
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.record(ctx, group)
		for _, c := range group {
			close(c.done)
		}
	}
}

// record runs a group; if its transaction fails as a whole, each call again in a group of one.
func (g *grouper[In, Out]) record(ctx context.Context, group []*call[In, Out]) {
	err := g.run(ctx, group)
	if err == nil {
		return
	}
	if len(group) == 1 {
		group[0].err = err
		return
	}
	for _, c := range group {
		var zero Out
		c.out, c.err = zero, nil
		g.record(ctx, []*call[In, Out]{c})
	}
}

// takeLocked takes the next group off the queue: calls in arrival order, at most one of any key
// and maxGroup in all; the calls it skips keep their places.
func (g *grouper[In, Out]) takeLocked() []*call[In, Out] {
	var group []*call[In, Out]
	keys := make(map[string]bool)
	rest := g.queue[:0]
	for _, c := range g.queue {
		if len(group) == maxGroup || keys[c.key] {
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

func deleteCall[In, Out any](q []*call[In, Out], c *call[In, Out]) []*call[In, Out] {
	for i, x := range q {
		if x == c {
			copy(q[i:], q[i+1:])
			q[len(q)-1] = nil
			return q[:len(q)-1]
		}
	}
	return q
}
