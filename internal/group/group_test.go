package group

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// recorded is what a fake run saw: each group's calls, in order.
type recorded struct {
	mu     sync.Mutex
	groups [][]string
}

func (r *recorded) add(group []*Call[string, string]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, c := range group {
		names = append(names, c.In)
	}
	r.groups = append(r.groups, names)
}

// TestGrouperGroupsWaitingCallsByKey: calls that wait while a group runs are taken together,
// never two of one key in a group, and the calls of one key run in arrival order.
func TestGrouperGroupsWaitingCallsByKey(t *testing.T) {
	var rec recorded
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	g := New(func(ctx context.Context, group []*Call[string, string]) error {
		rec.add(group)
		if len(rec.groups) == 1 {
			started <- struct{}{}
			<-release // hold the first group so that the others queue behind it
		}
		for _, c := range group {
			c.Out = "done " + c.In
		}
		return nil
	})
	g.mu.Lock()
	g.workers = maxWorkers - 1 // one worker at most, so that the queue's order is the only order
	g.mu.Unlock()

	var wg sync.WaitGroup
	do := func(key, in string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := g.Do(context.Background(), key, in)
			if err != nil || out != "done "+in {
				t.Errorf("%s: %q, %v", in, out, err)
			}
		}()
	}
	do("a", "a0")
	<-started
	// Queue a1 a2 b1 c1 a3 b2 in this order while a0's group runs.
	for _, in := range []string{"a1", "a2", "b1", "c1", "a3", "b2"} {
		do(in[:1], in)
		waitQueued(t, g, in)
	}
	close(release)
	wg.Wait()

	want := [][]string{{"a0"}, {"a1", "b1", "c1"}, {"a2", "b2"}, {"a3"}}
	if fmt.Sprint(rec.groups) != fmt.Sprint(want) {
		t.Fatalf("groups %v, want %v", rec.groups, want)
	}
	for { // the worker ends once the queue is empty
		g.mu.Lock()
		workers, queued := g.workers, len(g.queue)
		g.mu.Unlock()
		if queued != 0 {
			t.Fatalf("%d calls left in the queue", queued)
		}
		if workers == maxWorkers-1 {
			break
		}
		runtime.Gosched()
	}
}

// waitQueued waits until the call with input in is in g's queue.
func waitQueued(t *testing.T, g *Grouper[string, string], in string) {
	t.Helper()
	for {
		g.mu.Lock()
		for _, c := range g.queue {
			if c.In == in {
				g.mu.Unlock()
				return
			}
		}
		g.mu.Unlock()
		runtime.Gosched()
	}
}

// TestGrouperFailedGroupRecordsEachAlone: when a group's transaction fails as a whole, each of
// its calls is run again on its own, so that only the call that fails alone fails.
func TestGrouperFailedGroupRecordsEachAlone(t *testing.T) {
	var rec recorded
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	g := New(func(ctx context.Context, group []*Call[string, string]) error {
		rec.add(group)
		if len(rec.groups) == 1 {
			started <- struct{}{}
			<-release
		}
		for _, c := range group {
			if c.In == "bad" {
				return errors.New("the transaction failed")
			}
			c.Out = "done " + c.In
		}
		return nil
	})
	g.workers = maxWorkers - 1
	type result struct{ out, err string }
	results := make(map[string]result)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, in := range []string{"first", "x", "bad", "y"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := g.Do(context.Background(), in, in)
			mu.Lock()
			results[in] = result{out, fmt.Sprint(err)}
			mu.Unlock()
		}()
		if i == 0 {
			<-started
		} else {
			waitQueued(t, g, in)
		}
	}
	close(release)
	wg.Wait()
	want := map[string]result{"first": {"done first", "<nil>"}, "x": {"done x", "<nil>"}, "y": {"done y", "<nil>"},
		"bad": {"", "the transaction failed"}}
	if fmt.Sprint(results) != fmt.Sprint(want) {
		t.Fatalf("results %v, want %v", results, want)
	}
	wantGroups := [][]string{{"first"}, {"x", "bad", "y"}, {"x"}, {"bad"}, {"y"}}
	if fmt.Sprint(rec.groups) != fmt.Sprint(wantGroups) {
		t.Fatalf("groups %v, want %v", rec.groups, wantGroups)
	}
}

// TestGrouperCancelledWhileQueued: a caller whose context ends while its call waits gets the
// context's error and its call never runs.
func TestGrouperCancelledWhileQueued(t *testing.T) {
	var rec recorded
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	g := New(func(ctx context.Context, group []*Call[string, string]) error {
		rec.add(group)
		if len(rec.groups) == 1 {
			started <- struct{}{}
			<-release
		}
		return nil
	})
	g.workers = maxWorkers - 1
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = g.Do(context.Background(), "a", "first") }()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := g.Do(ctx, "b", "gone"); errc <- err }()
	waitQueued(t, g, "gone")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	close(release)
	wg.Wait()
	if fmt.Sprint(rec.groups) != "[[first]]" {
		t.Fatalf("groups %v: the cancelled call ran", rec.groups)
	}
}
