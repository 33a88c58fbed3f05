package claims

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/robfig/cron/v3"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/programme"
)

// The claim scheduler (architecture.md, "Claims and the scheduler"): a stoppable service that
// wraps robfig/cron. Each run compiles, and stores the pack of, the draft claim of every claim
// period that has ended and has none, so that the first run after downtime catches up every
// quarter it missed. A PostgreSQL advisory lock, held on a dedicated connection for the run,
// keeps two instances of the service from running the job at once; a panicking job is
// recovered and recorded; every run is recorded in scheduler_run, logged and counted.

// JobCompileDrafts names the scheduler's one job in its run records.
const JobCompileDrafts = "compile_drafts"

// Run outcomes, as recorded.
const (
	OutcomeRunning  = "running"
	OutcomeOK       = "ok"
	OutcomeFailed   = "failed"
	OutcomePanicked = "panicked"
	OutcomeSkipped  = "skipped" // another instance held the lock
	// OutcomeInterrupted marks a run that the service's stop cut short, or whose process died
	// before it finished (the next run to take the job's lock records that one so).
	OutcomeInterrupted = "interrupted"
)

// DefaultSchedule returns the default schedule of the claim scheduler for a claim frequency:
// 06:00 on the first day of each quarter (or month), in the scheduler's time zone.
func DefaultSchedule(f programme.Frequency) string {
	if f == programme.Monthly {
		return "0 6 1 * *"
	}
	return "0 6 1 1,4,7,10 *"
}

// parser reads the five-field cron specs of INFUSE_CLAIM_SCHEDULE, and descriptors (@daily,
// @every 1h).
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule checks a cron spec and returns its schedule.
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, apperr.New(apperr.Invalid, apperr.RuleConfig, "the claim schedule %q is not a cron schedule (minute hour day-of-month month day-of-week): %v", spec, err)
	}
	return s, nil
}

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// Schedule is a cron spec read in Location (INFUSE_CLAIM_SCHEDULE); empty means
	// DefaultSchedule of the programme's frequency.
	Schedule string
	// Location is the zone the schedule is read in; nil means Europe/London.
	Location *time.Location
	// Timeout bounds one run; zero means 30 minutes.
	Timeout time.Duration
	// Instance names this process in the run records; empty means host:pid.
	Instance string
	Logger   *slog.Logger
}

// Metrics counts the scheduler's runs, for /metrics. Read the fields with Load; they only grow,
// except Running.
type Metrics struct {
	RunsStarted     atomic.Int64 // runs begun, skipped ones included
	RunsSucceeded   atomic.Int64
	RunsFailed      atomic.Int64 // a compilation or the run's bookkeeping failed
	RunsPanicked    atomic.Int64
	RunsSkipped     atomic.Int64 // another instance held the lock
	RunsInterrupted atomic.Int64 // the service stopped during the run
	ClaimsCompiled  atomic.Int64
	Running         atomic.Int64 // runs in progress in this process (0 or 1)
	LastRunUnix     atomic.Int64 // when the last run finished, Unix seconds
	LastSuccessUnix atomic.Int64 // when the last successful run finished, Unix seconds
}

// Run is the record of one scheduler run.
type Run struct {
	ID       int64
	Job      string
	Instance string
	Started  time.Time
	Finished time.Time
	Outcome  string
	Compiled []string // the periods whose drafts the run compiled
	Err      error

	failedCompiles int // compiles that failed for a reason of their own, not the stop
}

// Scheduler runs the claim job on its schedule. Start it once; Stop waits for a run in
// progress.
type Scheduler struct {
	svc      *Service
	pool     *pgxpool.Pool
	spec     string
	loc      *time.Location
	timeout  time.Duration
	instance string
	log      *slog.Logger
	metrics  *Metrics
	lockKey  int64
	// compile compiles the draft of one period and stores its pack; tests replace it.
	compile func(ctx context.Context, period string) error
	// retryWaits are the pauses before compiling a period again after a passing conflict
	// (entries arriving faster than they are sealed, or between the compile and the pack): the
	// run is the quarter's one scheduled chance, and such a conflict should not cost the draft.
	retryWaits []time.Duration

	running sync.Mutex // one run at a time in this process

	mu     sync.Mutex
	cron   *cron.Cron
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewScheduler returns the scheduler of svc's claims.
func NewScheduler(svc *Service, cfg SchedulerConfig) (*Scheduler, error) {
	s := &Scheduler{svc: svc, pool: svc.pool, spec: cfg.Schedule, loc: cfg.Location, timeout: cfg.Timeout,
		instance: cfg.Instance, log: cfg.Logger, metrics: &Metrics{},
		retryWaits: []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute}}
	if s.spec == "" {
		s.spec = DefaultSchedule(svc.prog.Frequency)
	}
	if _, err := ParseSchedule(s.spec); err != nil {
		return nil, err
	}
	if s.loc == nil {
		loc, err := time.LoadLocation("Europe/London")
		if err != nil {
			return nil, apperr.Wrap("claims.NewScheduler", err)
		}
		s.loc = loc
	}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Minute
	}
	if s.instance == "" {
		host, _ := os.Hostname()
		s.instance = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("job", JobCompileDrafts)
	h := fnv.New64a()
	h.Write([]byte("infuse-claim-scheduler\x00" + svc.prog.OperationID))
	s.lockKey = int64(h.Sum64())
	s.compile = func(ctx context.Context, period string) error {
		_, err := svc.CompileWithPack(ctx, period, System)
		return err
	}
	return s, nil
}

// Metrics returns the scheduler's counters.
func (s *Scheduler) Metrics() *Metrics { return s.metrics }

// Schedule returns the cron spec the scheduler runs on.
func (s *Scheduler) Schedule() string { return s.spec }

// Start runs the job at once, to catch up on what was missed while the service was down, and
// then on the schedule, until Stop or ctx ends. Starting a started scheduler does nothing.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.cron = cron.New(cron.WithLocation(s.loc), cron.WithParser(parser), cron.WithLogger(cronLogger{s.log}))
	// The spec was checked by NewScheduler, so AddFunc cannot fail.
	_, _ = s.cron.AddFunc(s.spec, func() { s.RunOnce(ctx) })
	s.cron.Start()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.RunOnce(ctx)
	}()
	s.log.Info("claim scheduler started", "schedule", s.spec, "location", s.loc.String(), "instance", s.instance)
}

// Stop ends the service: no run starts after it, a run in progress is cancelled, and Stop
// returns once it has finished.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	cancel, c := s.cancel, s.cron
	s.cancel, s.cron = nil, nil
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-c.Stop().Done()
	s.wg.Wait()
	s.log.Info("claim scheduler stopped")
}

// RunOnce runs the job now, unless a run is in progress in this process or another instance
// holds the job's lock (the run is then recorded as skipped), and returns its record.
func (s *Scheduler) RunOnce(ctx context.Context) Run {
	run := Run{Job: JobCompileDrafts, Instance: s.instance, Started: s.svc.stamp(), Outcome: OutcomeRunning}
	s.metrics.RunsStarted.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if !s.running.TryLock() {
		// The schedule fired during the catch-up run (or a long run): this process is on it.
		run.Outcome = OutcomeSkipped
		if err := s.begin(ctx, &run); err != nil {
			run.Outcome, run.Err = OutcomeFailed, err
		}
		s.finish(ctx, &run)
		return run
	}
	defer s.running.Unlock()
	s.metrics.Running.Add(1)
	defer s.metrics.Running.Add(-1)

	if err := s.begin(ctx, &run); err != nil {
		run.Outcome, run.Err = OutcomeFailed, err
		s.finish(ctx, &run)
		return run
	}
	s.lockedRun(ctx, &run)
	s.finish(ctx, &run)
	return run
}

// lockedRun takes the job's advisory lock on a dedicated connection and runs the job under it.
func (s *Scheduler) lockedRun(ctx context.Context, run *Run) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		run.Outcome, run.Err = OutcomeFailed, err
		return
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, s.lockKey).Scan(&got); err != nil {
		conn.Release()
		run.Outcome, run.Err = OutcomeFailed, err
		return
	}
	if !got {
		conn.Release()
		run.Outcome = OutcomeSkipped
		return
	}
	// Holding the lock, no other run of the job is alive: any still marked running died with
	// its process.
	if _, err := conn.Exec(ctx, `UPDATE scheduler_run SET outcome = $4, finished_at = $5,
			error = $6
		WHERE operation_id = $1 AND job = $2 AND outcome = 'running' AND id <> $3`,
		s.svc.prog.OperationID, run.Job, run.ID, OutcomeInterrupted, s.svc.stamp(), errStopped.Error()); err != nil {
		s.log.Warn("claim scheduler could not mark interrupted runs", "err", err)
	}
	defer func() {
		// A session lock outlives a failed unlock; closing the connection ends the session and
		// so releases it.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, s.lockKey); err != nil {
			_ = conn.Conn().Close(uctx)
		}
		conn.Release()
	}()
	s.job(ctx, run)
}

// job compiles the draft of every ended period without a claim, recovering a panic.
func (s *Scheduler) job(ctx context.Context, run *Run) {
	defer func() {
		if r := recover(); r != nil {
			run.Outcome = OutcomePanicked
			run.Err = fmt.Errorf("panic: %v", r)
			s.log.Error("claim scheduler job panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	periods, err := s.svc.EndedWithoutClaim(ctx)
	if err != nil {
		run.Outcome, run.Err = OutcomeFailed, err
		return
	}
	var errs []error
	stopped := false
	for _, p := range periods {
		if stopped = stopping(ctx); stopped {
			break
		}
		if err := s.compileRetrying(ctx, p.Code); err != nil {
			if stopped = stopping(ctx); stopped {
				break // the compile was cut short, not refused: the next run compiles it
			}
			errs = append(errs, fmt.Errorf("%s: %w", p.Code, err))
			s.log.Error("claim scheduler could not compile a claim", "period", p.Code, "err", err)
			continue
		}
		run.Compiled = append(run.Compiled, p.Code)
		s.metrics.ClaimsCompiled.Add(1)
		s.log.Info("claim scheduler compiled a draft", "period", p.Code)
	}
	run.failedCompiles = len(errs)
	if stopped {
		errs = append(errs, errStopped)
	}
	run.Outcome, run.Err = OutcomeOK, errors.Join(errs...)
	if run.Err != nil {
		run.Outcome = OutcomeFailed
	}
}

// compileRetrying compiles period, again after each of retryWaits while it meets a passing
// conflict.
func (s *Scheduler) compileRetrying(ctx context.Context, period string) error {
	for attempt := 0; ; attempt++ {
		err := s.compile(ctx, period)
		if err == nil || !passing(err) || attempt == len(s.retryWaits) {
			return err
		}
		wait := s.retryWaits[attempt]
		s.log.Warn("claim scheduler will compile a claim again", "period", period, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// passing reports whether err is a conflict that a compile a little later does not meet.
func passing(err error) bool {
	return apperr.CodeOf(err) == apperr.Conflict && (errors.Is(err, errSealRace) || apperr.RuleOf(err) == RuleStale)
}

// errStopped is the error of a run that the service's stop cut short.
var errStopped = errors.New("the service stopped before the run finished")

// stopping reports whether ctx was cancelled, as Stop (or the service's end) cancels a run; a
// run that outlives its timeout has failed rather than been stopped.
func stopping(ctx context.Context) bool { return errors.Is(ctx.Err(), context.Canceled) }

// begin records the start of a run.
func (s *Scheduler) begin(ctx context.Context, run *Run) error {
	return s.pool.QueryRow(ctx, `INSERT INTO scheduler_run (operation_id, job, instance, started_at, outcome)
		VALUES ($1, $2, $3, $4, 'running') RETURNING id`,
		s.svc.prog.OperationID, run.Job, run.Instance, run.Started).Scan(&run.ID)
}

// finish records the end of a run in the database, the log and the metrics. A run that failed
// because the service stopped (while it compiled, or before it could start) was interrupted,
// unless a compile had failed already for a reason of its own.
func (s *Scheduler) finish(ctx context.Context, run *Run) {
	if run.Outcome == OutcomeFailed && run.failedCompiles == 0 && stopping(ctx) {
		run.Outcome, run.Err = OutcomeInterrupted, errStopped
	}
	run.Finished = s.svc.stamp()
	if run.ID != 0 {
		msg := ""
		if run.Err != nil {
			msg = run.Err.Error()
		}
		compiled := run.Compiled
		if compiled == nil {
			compiled = []string{}
		}
		// The run's own context may have timed out; its record must still be written.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := s.pool.Exec(wctx, `UPDATE scheduler_run SET finished_at = $3, outcome = $4, claims_compiled = $5,
				periods = $6, error = nullif($7, '') WHERE operation_id = $1 AND id = $2`,
			s.svc.prog.OperationID, run.ID, run.Finished, run.Outcome, len(run.Compiled), compiled, msg); err != nil {
			s.log.Error("claim scheduler could not record its run", "run", run.ID, "err", err)
		}
	}
	now := time.Now().Unix()
	s.metrics.LastRunUnix.Store(now)
	switch run.Outcome {
	case OutcomeOK:
		s.metrics.RunsSucceeded.Add(1)
		s.metrics.LastSuccessUnix.Store(now)
	case OutcomeSkipped:
		s.metrics.RunsSkipped.Add(1)
	case OutcomePanicked:
		s.metrics.RunsPanicked.Add(1)
	case OutcomeInterrupted:
		s.metrics.RunsInterrupted.Add(1)
	default:
		s.metrics.RunsFailed.Add(1)
	}
	attrs := []any{"run", run.ID, "outcome", run.Outcome, "claims_compiled", len(run.Compiled),
		"periods", run.Compiled, "duration", run.Finished.Sub(run.Started), "instance", run.Instance}
	if run.Outcome == OutcomeInterrupted {
		s.log.Warn("claim scheduler run stopped with the service; the next run compiles what it left", append(attrs, "err", run.Err)...)
		return
	}
	if run.Err != nil {
		s.log.Error("claim scheduler run failed", append(attrs, "err", run.Err)...)
		return
	}
	s.log.Info("claim scheduler run finished", attrs...)
}

// Runs returns the scheduler's most recent run records, newest first.
func (s *Service) Runs(ctx context.Context, limit int) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, job, instance, started_at, coalesce(finished_at, started_at), outcome,
			periods, coalesce(error, '') FROM scheduler_run WHERE operation_id = $1 ORDER BY id DESC LIMIT $2`,
		s.prog.OperationID, limit)
	if err != nil {
		return nil, db.Translate("claims.Runs", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var msg string
		if err := rows.Scan(&r.ID, &r.Job, &r.Instance, &r.Started, &r.Finished, &r.Outcome, &r.Compiled, &msg); err != nil {
			return nil, db.Translate("claims.Runs", err)
		}
		if msg != "" {
			r.Err = errors.New(msg)
		}
		out = append(out, r)
	}
	return out, db.Translate("claims.Runs", rows.Err())
}

// cronLogger sends robfig/cron's messages to slog.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
