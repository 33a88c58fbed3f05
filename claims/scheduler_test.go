package claims

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

func TestSchedule(t *testing.T) {
	t.Parallel()
	if got := DefaultSchedule(programme.Quarterly); got != "0 6 1 1,4,7,10 *" {
		t.Fatalf("default schedule %q", got)
	}
	s, err := ParseSchedule(DefaultSchedule(programme.Quarterly))
	if err != nil {
		t.Fatal(err)
	}
	london, _ := time.LoadLocation("Europe/London")
	cases := []struct{ after, want string }{
		{"2021-03-15T12:00:00Z", "2021-04-01T05:00:00Z"}, // 06:00 BST
		{"2021-04-01T05:00:00Z", "2021-07-01T05:00:00Z"},
		{"2021-11-20T00:00:00Z", "2022-01-01T06:00:00Z"}, // 06:00 GMT
	}
	for _, c := range cases {
		after, _ := time.Parse(time.RFC3339, c.after)
		if got := s.Next(after.In(london)).UTC().Format(time.RFC3339); got != c.want {
			t.Errorf("next after %s = %s, want %s", c.after, got, c.want)
		}
	}
	if _, err := ParseSchedule("at six"); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("bad schedule: %v", err)
	}
}

func newScheduler(t *testing.T, f *fixture, instance string) *Scheduler {
	t.Helper()
	s, err := NewScheduler(f.svc, SchedulerConfig{Schedule: "@every 1h", Instance: instance, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.retryWaits = []time.Duration{time.Millisecond, time.Millisecond}
	return s
}

// replaceFirst makes s's first n compiles call instead, the later ones the real compile, and
// returns the count of compiles.
func replaceFirst(s *Scheduler, n int64, instead func(period string) error) *atomic.Int64 {
	real := s.compile
	var calls atomic.Int64
	s.compile = func(ctx context.Context, period string) error {
		if calls.Add(1) <= n {
			return instead(period)
		}
		return real(ctx, period)
	}
	return &calls
}

func claimPeriods(t *testing.T, f *fixture) []string {
	t.Helper()
	cs, err := f.svc.Claims(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.Period.Code)
	}
	return out
}

func TestSchedulerCatchesUpMissedQuarters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-07-02")
	f.spend("delivery", "2021-02-01", "1000.00")
	f.compile("2021Q1") // compiled before the service went down; 2021Q2 was missed
	f.clock.Set(at("2021-10-03"))

	s := newScheduler(t, f, "a")
	s.Start(context.Background())
	s.Start(context.Background()) // a second Start does nothing
	deadline := time.Now().Add(30 * time.Second)
	for s.Metrics().LastRunUnix.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.Stop()
	s.Stop()

	if got := claimPeriods(t, f); !slices.Equal(got, []string{"2021Q1", "2021Q2", "2021Q3"}) {
		t.Fatalf("claims %v after the catch-up run", got)
	}
	evs, _ := f.svc.Events(f.ctx, "2021Q1")
	if len(evs) != 1 {
		t.Errorf("2021Q1 was recompiled: %+v", evs)
	}
	for _, p := range []string{"2021Q2", "2021Q3"} {
		files, status, err := f.svc.StoredPack(f.ctx, p)
		if err != nil || len(files) != 3 || status != Draft {
			t.Errorf("%s pack: %d files, %s, %v", p, len(files), status, err)
		}
	}
	runs, err := f.svc.Runs(f.ctx, 10)
	if err != nil || len(runs) != 1 || runs[0].Outcome != OutcomeOK || !slices.Equal(runs[0].Compiled, []string{"2021Q2", "2021Q3"}) ||
		runs[0].Instance != "a" {
		t.Fatalf("runs %+v, %v", runs, err)
	}
	m := s.Metrics()
	if m.RunsStarted.Load() != 1 || m.RunsSucceeded.Load() != 1 || m.ClaimsCompiled.Load() != 2 || m.Running.Load() != 0 {
		t.Errorf("metrics started %d ok %d compiled %d", m.RunsStarted.Load(), m.RunsSucceeded.Load(), m.ClaimsCompiled.Load())
	}

	// A quarter later the run compiles the quarter just ended, and only it.
	f.clock.Set(at("2022-01-01"))
	if r := s.RunOnce(f.ctx); r.Outcome != OutcomeOK || !slices.Equal(r.Compiled, []string{"2021Q4"}) {
		t.Fatalf("run %+v", r)
	}
	if r := s.RunOnce(f.ctx); r.Outcome != OutcomeOK || len(r.Compiled) != 0 {
		t.Fatalf("idle run %+v", r)
	}
}

func TestSchedulerInstancesNeverRunTogether(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2022-01-05") // 2021Q1–Q4 have ended
	// A second instance of the service: its own pool, ledger and service on the same database.
	pool2, err := pgxpool.NewWithConfig(f.ctx, f.pool.Config().Copy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool2.Close)
	l2, err := ledger.Open(f.ctx, pool2, f.prog.OperationID, ledger.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	g := &fixture{t: t, ctx: f.ctx, pool: pool2, prog: f.prog, l: l2, clock: f.clock}
	if g.svc, err = New(l2, f.prog, WithClock(f.clock.Now)); err != nil {
		t.Fatal(err)
	}

	var inFlight, maxInFlight atomic.Int64
	var mu sync.Mutex
	compiled := map[string]int{}
	hook := func(s *Scheduler) {
		real := s.compile
		s.compile = func(ctx context.Context, period string) error {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				m := maxInFlight.Load()
				if n <= m || maxInFlight.CompareAndSwap(m, n) {
					break
				}
			}
			mu.Lock()
			compiled[period]++
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			return real(ctx, period)
		}
	}
	a, b := newScheduler(t, f, "a"), newScheduler(t, g, "b")
	hook(a)
	hook(b)

	var wg sync.WaitGroup
	outcomes := make(chan string, 6)
	for i := 0; i < 3; i++ {
		for _, s := range []*Scheduler{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outcomes <- s.RunOnce(f.ctx).Outcome
			}()
		}
	}
	wg.Wait()
	close(outcomes)
	var skipped int
	for o := range outcomes {
		switch o {
		case OutcomeSkipped:
			skipped++
		case OutcomeOK:
		default:
			t.Errorf("outcome %s", o)
		}
	}
	if maxInFlight.Load() != 1 {
		t.Errorf("%d compilations ran at once", maxInFlight.Load())
	}
	for _, p := range []string{"2021Q1", "2021Q2", "2021Q3", "2021Q4"} {
		if compiled[p] != 1 {
			t.Errorf("%s compiled %d times", p, compiled[p])
		}
	}
	if skipped == 0 {
		t.Errorf("no run was skipped")
	}
	runs, err := f.svc.Runs(f.ctx, 10)
	if err != nil || len(runs) != 6 {
		t.Fatalf("%d runs recorded, %v", len(runs), err)
	}
}

func TestSchedulerSurvivesAPanic(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-04-02")
	s := newScheduler(t, f, "a")
	replaceFirst(s, 1, func(string) error { panic("boom") })
	r := s.RunOnce(f.ctx)
	if r.Outcome != OutcomePanicked || r.Err == nil {
		t.Fatalf("run %+v", r)
	}
	runs, err := f.svc.Runs(f.ctx, 1)
	if err != nil || runs[0].Outcome != OutcomePanicked || runs[0].Err == nil || runs[0].Err.Error() != "panic: boom" {
		t.Fatalf("recorded %+v, %v", runs, err)
	}
	if s.Metrics().RunsPanicked.Load() != 1 {
		t.Errorf("panics counted %d", s.Metrics().RunsPanicked.Load())
	}
	// The lock was released: another instance runs, and the job works again.
	other := newScheduler(t, f, "b")
	if r := other.RunOnce(f.ctx); r.Outcome != OutcomeOK || !slices.Equal(r.Compiled, []string{"2021Q1"}) {
		t.Fatalf("run after the panic %+v", r)
	}
}

func TestSchedulerFailuresAreRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-07-02")
	s := newScheduler(t, f, "a")
	real := s.compile
	s.compile = func(ctx context.Context, period string) error {
		if period == "2021Q1" {
			return apperr.New(apperr.Conflict, "", "try again")
		}
		return real(ctx, period)
	}
	r := s.RunOnce(f.ctx)
	if r.Outcome != OutcomeFailed || !slices.Equal(r.Compiled, []string{"2021Q2"}) {
		t.Fatalf("run %+v", r)
	}
	if s.Metrics().RunsFailed.Load() != 1 {
		t.Errorf("failures counted %d", s.Metrics().RunsFailed.Load())
	}
}

// TestSchedulerRetriesAPassingConflict: a compile that meets a passing conflict (the ledger
// moved between the compile and the pack) is tried again, so the run still compiles the draft;
// any other conflict is not, and fails the run at once.
func TestSchedulerRetriesAPassingConflict(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-04-02")
	s := newScheduler(t, f, "a")
	calls := replaceFirst(s, 2, func(period string) error {
		return apperr.New(apperr.Conflict, RuleStale, "the ledger of %s has changed since the claim was compiled", period)
	})
	if r := s.RunOnce(f.ctx); r.Outcome != OutcomeOK || !slices.Equal(r.Compiled, []string{"2021Q1"}) || calls.Load() != 3 {
		t.Fatalf("run %+v after %d compiles", r, calls.Load())
	}

	f = newFixture(t, "2021-04-02")
	s = newScheduler(t, f, "a")
	calls = replaceFirst(s, 10, func(string) error { return apperr.New(apperr.Conflict, "", "a lasting conflict") })
	if r := s.RunOnce(f.ctx); r.Outcome != OutcomeFailed || calls.Load() != 1 {
		t.Fatalf("run %+v after %d compiles", r, calls.Load())
	}
}

// TestSchedulerStopInterruptsARun: a run that the service's stop cuts short is recorded and
// counted as interrupted, logged as a warning rather than an error, and the next run compiles
// what it left.
func TestSchedulerStopInterruptsARun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "2021-07-02")
	var logged bytes.Buffer
	s, err := NewScheduler(f.svc, SchedulerConfig{Schedule: "@every 1h", Instance: "a", Timeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(f.ctx)
	s.compile = func(ctx context.Context, period string) error {
		stop() // the service stops while the first period compiles
		<-ctx.Done()
		return apperr.Wrap("claims.Compile", ctx.Err())
	}
	r := s.RunOnce(ctx)
	if r.Outcome != OutcomeInterrupted || len(r.Compiled) != 0 || !errors.Is(r.Err, errStopped) {
		t.Fatalf("run %+v", r)
	}
	m := s.Metrics()
	if m.RunsInterrupted.Load() != 1 || m.RunsFailed.Load() != 0 {
		t.Errorf("interrupted %d, failed %d", m.RunsInterrupted.Load(), m.RunsFailed.Load())
	}
	if strings.Contains(logged.String(), "level=ERROR") || !strings.Contains(logged.String(), "level=WARN") {
		t.Errorf("log:\n%s", logged.String())
	}
	runs, err := f.svc.Runs(f.ctx, 1)
	if err != nil || runs[0].Outcome != OutcomeInterrupted || runs[0].Err == nil || runs[0].Err.Error() != errStopped.Error() {
		t.Fatalf("recorded %+v, %v", runs, err)
	}
	// A stop before the run could start interrupts it too.
	if r := s.RunOnce(ctx); r.Outcome != OutcomeInterrupted || m.RunsFailed.Load() != 0 {
		t.Fatalf("run after the stop %+v, failed %d", r, m.RunsFailed.Load())
	}
	if r := newScheduler(t, f, "b").RunOnce(f.ctx); r.Outcome != OutcomeOK || !slices.Equal(r.Compiled, []string{"2021Q1", "2021Q2"}) {
		t.Fatalf("next run %+v", r)
	}
}
