package group

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// held is a Grouper with a fake run that records each group's calls, holds the first group
// until release is closed (so that the calls after it queue up) and sets each call's outcome
// with each. It runs one worker at most, so that the queue's order is the only order.
type held struct {
	g        *Grouper[string, string]
	started  chan struct{} // receives when the first group runs
	release  chan struct{}
	mu       sync.Mutex
	recorded [][]string
	wg       sync.WaitGroup
}

func newHeld(each func(c *Call[string, string]) error) *held {
	h := &held{started: make(chan struct{}, 1), release: make(chan struct{})}
	h.g = New(func(ctx context.Context, group []*Call[string, string], _ bool) error {
		var names []string
		for _, c := range group {
			names = append(names, c.In)
		}
		h.mu.Lock()
		h.recorded = append(h.recorded, names)
		first := len(h.recorded) == 1
		h.mu.Unlock()
		if first {
			h.started <- struct{}{}
			<-h.release
		}
		for _, c := range group {
			if err := each(c); err != nil {
				return err
			}
		}
		return nil
	})
	h.g.workers = maxWorkers - 1
	return h
}

// do calls Do for in (of key) in a goroutine, then waits until the call runs (the first) or
// waits in the queue (the others), and hands its outcome to got.
func (h *held) do(t *testing.T, ctx context.Context, key, in string, got func(out string, err error)) {
	t.Helper()
	// Whether this is the first call is known before it starts: once it has started, its group
	// may have run (and been recorded) before this goroutine looks.
	h.mu.Lock()
	first := len(h.recorded) == 0
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		got(h.g.Do(ctx, key, in))
	}()
	if first {
		<-h.started
		return
	}
	for {
		h.g.mu.Lock()
		for _, c := range h.g.queue {
			if c.In == in {
				h.g.mu.Unlock()
				return
			}
		}
		h.g.mu.Unlock()
		runtime.Gosched()
	}
}

// finish releases the first group, waits for every call and returns the groups that ran.
func (h *held) finish() string {
	close(h.release)
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprint(h.recorded)
}

func done(c *Call[string, string]) error {
	c.Out = "done " + c.In
	return nil
}

// TestGrouperGroupsWaitingCallsByKey: calls that wait while a group runs are taken together,
// never two of one key in a group, the calls of one key run in arrival order, and the worker
// ends once the queue is empty.
func TestGrouperGroupsWaitingCallsByKey(t *testing.T) {
	h := newHeld(done)
	for _, in := range []string{"a0", "a1", "a2", "b1", "c1", "a3", "b2"} {
		h.do(t, context.Background(), in[:1], in, func(out string, err error) {
			if err != nil || out != "done "+in {
				t.Errorf("%s: %q, %v", in, out, err)
			}
		})
	}
	if got, want := h.finish(), "[[a0] [a1 b1 c1] [a2 b2] [a3]]"; got != want {
		t.Fatalf("groups %s, want %s", got, want)
	}
	for {
		h.g.mu.Lock()
		workers, queued := h.g.workers, len(h.g.queue)
		h.g.mu.Unlock()
		if queued != 0 {
			t.Fatalf("%d calls left in the queue", queued)
		}
		if workers == maxWorkers-1 {
			break
		}
		runtime.Gosched()
	}
}

// TestGrouperFailedGroupRecordsEachAlone: when a group's transaction fails as a whole, each of
// its calls is run again on its own, so that only the call that fails alone fails.
func TestGrouperFailedGroupRecordsEachAlone(t *testing.T) {
	h := newHeld(func(c *Call[string, string]) error {
		if c.In == "bad" {
			return errors.New("the transaction failed")
		}
		return done(c)
	})
	var mu sync.Mutex
	results := map[string]string{}
	for _, in := range []string{"first", "x", "bad", "y"} {
		h.do(t, context.Background(), in, in, func(out string, err error) {
			mu.Lock()
			results[in] = fmt.Sprintf("%q %v", out, err)
			mu.Unlock()
		})
	}
	if got, want := h.finish(), "[[first] [x bad y] [x] [bad] [y]]"; got != want {
		t.Fatalf("groups %s, want %s", got, want)
	}
	want := map[string]string{"first": `"done first" <nil>`, "x": `"done x" <nil>`, "y": `"done y" <nil>`,
		"bad": `"" the transaction failed`}
	if fmt.Sprint(results) != fmt.Sprint(want) {
		t.Fatalf("results %v, want %v", results, want)
	}
}

// TestGrouperCancelledWhileQueued: a caller whose context ends while its call waits gets the
// context's error and its call never runs.
func TestGrouperCancelledWhileQueued(t *testing.T) {
	h := newHeld(done)
	h.do(t, context.Background(), "a", "first", func(string, error) {})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	h.do(t, ctx, "b", "gone", func(_ string, err error) { errc <- err })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	if got := h.finish(); got != "[[first]]" {
		t.Fatalf("groups %s: the cancelled call ran", got)
	}
}

// TestGrouperDeferredCallWaitsInTheLane: a call whose key is held elsewhere, deferred by run,
// holds up neither the worker nor the other keys' calls; it is run again on its own, told to
// wait, and the later calls of its key run only after it, in their order.
func TestGrouperDeferredCallWaitsInTheLane(t *testing.T) {
	releaseA := make(chan struct{}) // the other transaction lets go of key a
	var mu sync.Mutex
	var runs []string // each run: its calls, and "wait" for the lane's
	g := New(func(ctx context.Context, group []*Call[string, string], wait bool) error {
		var names []string
		for _, c := range group {
			names = append(names, c.In)
		}
		run := fmt.Sprint(names)
		if wait {
			run += " wait"
		}
		mu.Lock()
		runs = append(runs, run)
		mu.Unlock()
		for _, c := range group {
			switch {
			case c.In == "a1" && !wait:
				c.Defer()
			case c.In == "a1":
				<-releaseA
				c.Out = "done a1"
			default:
				c.Out = "done " + c.In
			}
		}
		return nil
	})
	results := make(chan string, 3)
	call := func(key, in string) {
		out, err := g.Do(context.Background(), key, in)
		results <- fmt.Sprintf("%s: %s %v", in, out, err)
	}
	go call("a", "a1")
	waitFor := func(run string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
			mu.Lock()
			ran := slices.Contains(runs, run)
			mu.Unlock()
			if ran {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never ran: %v", run, runs)
			}
		}
	}
	waitFor("[a1] wait")
	go call("a", "a2")
	go call("b", "b1")
	if got := <-results; got != "b1: done b1 <nil>" { // while a1 waits for its key
		t.Fatalf("first outcome %q, want b1's", got)
	}
	mu.Lock()
	early := slices.Contains(runs, "[a2]")
	mu.Unlock()
	if early {
		t.Fatalf("a2 ran before a1 was done: %v", runs)
	}
	close(releaseA)
	got := []string{<-results, <-results}
	slices.Sort(got) // their order in the runs is checked below
	if want := []string{"a1: done a1 <nil>", "a2: done a2 <nil>"}; !slices.Equal(got, want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if i, j := slices.Index(runs, "[a1] wait"), slices.Index(runs, "[a2]"); j < i {
		t.Fatalf("runs %v: a2 ran before a1", runs)
	}
}

// laneTest is a Grouper whose run defers the calls named in held (their keys held elsewhere)
// and, in the lane, waits for each until its key is let go (release) or a moment has passed, and
// then defers it again, as a lock timeout would.
type laneTest struct {
	g       *Grouper[string, string]
	mu      sync.Mutex
	held    map[string]chan struct{} // a call's key held until its channel is closed
	waiting chan string              // a lane run that found its call's key held
}

func newLaneTest(held ...string) *laneTest {
	lt := &laneTest{held: map[string]chan struct{}{}, waiting: make(chan string, 100)}
	for _, in := range held {
		lt.held[in] = make(chan struct{})
	}
	lt.g = New(func(ctx context.Context, group []*Call[string, string], wait bool) error {
		for _, c := range group {
			lt.mu.Lock()
			release, isHeld := lt.held[c.In]
			lt.mu.Unlock()
			if isHeld {
				if !wait {
					c.Defer()
					continue
				}
				select {
				case <-release:
				case <-time.After(time.Millisecond):
					lt.waiting <- c.In
					c.Defer()
					continue
				}
			}
			c.Out = "done " + c.In
		}
		return nil
	})
	return lt
}

func (lt *laneTest) call(ctx context.Context, key, in string, results chan<- string) {
	out, err := lt.g.Do(ctx, key, in)
	results <- fmt.Sprintf("%s: %s %v", in, out, err)
}

// twoInTheLane calls a1 (key a) and then b1 (key b, with ctx), both held, and returns once b1
// has had a turn in the lane behind a1.
func (lt *laneTest) twoInTheLane(t *testing.T, ctx context.Context, results chan<- string) {
	t.Helper()
	go lt.call(context.Background(), "a", "a1", results)
	if got := <-lt.waiting; got != "a1" {
		t.Fatalf("first lane run: %s", got)
	}
	go lt.call(ctx, "b", "b1", results)
	for got := <-lt.waiting; got != "b1"; got = <-lt.waiting {
	}
}

// release lets the key of the held call in go.
func (lt *laneTest) release(in string) {
	lt.mu.Lock()
	close(lt.held[in])
	lt.mu.Unlock()
}

// TestGrouperLaneTakesTurns: a deferred call whose key stays held does not hold up another
// deferred call behind it in the lane.
func TestGrouperLaneTakesTurns(t *testing.T) {
	lt := newLaneTest("a1", "b1")
	results := make(chan string, 2)
	lt.twoInTheLane(t, context.Background(), results)
	lt.release("b1") // b1 is recorded on its next turn, a's key still held
	if got := <-results; got != "b1: done b1 <nil>" {
		t.Fatalf("first outcome %q, want b1's while a1 waits", got)
	}
	lt.release("a1")
	if got := <-results; got != "a1: done a1 <nil>" {
		t.Fatalf("outcome %q, want a1's", got)
	}
}

// TestGrouperGivingUpInTheLane: a caller whose context ends while its call waits in the lane
// gets the context's error, its call never runs, and the next call of its key is taken at once.
func TestGrouperGivingUpInTheLane(t *testing.T) {
	lt := newLaneTest("a1", "b1")
	results := make(chan string, 3)
	ctx, cancel := context.WithCancel(context.Background())
	lt.twoInTheLane(t, ctx, results)
	cancel()
	if got := <-results; got != "b1:  context canceled" {
		t.Fatalf("outcome %q, want b1 given up", got)
	}
	go lt.call(context.Background(), "b", "b2", results)
	if got := <-results; got != "b2: done b2 <nil>" {
		t.Fatalf("outcome %q, want b2 recorded while a1 waits", got)
	}
	lt.release("a1")
	if got := <-results; got != "a1: done a1 <nil>" {
		t.Fatalf("outcome %q, want a1's", got)
	}
}
