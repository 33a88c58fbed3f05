package claims

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

// The compilation's speed target (issue 4): compiling one quarter of a ledger that holds
// 1,000,000 officer-time entries takes at most 2 s, and doubling the history does not double it,
// because the cost follows the claim period's lines: the cumulative figures come from the
// per-period balance rows. Run with `make bench`, which gives the benchmarks a durable cluster
// (fsync on, on disk); on a cluster with fsync off the benchmark refuses to run.
//
// The ledger is built with ledger.PostBatch directly, time-entry-shaped (Dr in-kind, Cr match,
// with idempotency keys), with the time_entry rows package match would write beside them, then
// sealed, vacuumed and analysed as autovacuum would leave it. The measured quarter, 2023Q4 (the
// final claim, whose cumulative figures span all twelve periods), holds 1/12 of the first
// million entries; the second million goes into the other quarters, so the history doubles while
// the quarter's lines stay the same.

const (
	benchOfficers = 1000
	benchBatch    = 25000
	benchQuarter  = "2023Q4"
)

var benchActivities = []string{"lab", "experiment", "coaching", "steering", "other"}

// benchLoader builds the big ledger.
type benchLoader struct {
	b        *testing.B
	ctx      context.Context
	f        *fixture
	officers []int64 // officer ids per authority slot
	next     map[string]int
	tracer   *slowQueries
}

// slowQueries logs, while on, every query slower than 25 ms, to show where a compile spends.
type slowQueries struct{ on atomic.Bool }

type queryStart struct{}

type startedQuery struct {
	at  time.Time
	sql string
}

func (q *slowQueries) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, queryStart{}, startedQuery{time.Now(), data.SQL})
}

func (q *slowQueries) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	s, _ := ctx.Value(queryStart{}).(startedQuery)
	if d := time.Since(s.at); q.on.Load() && d > 25*time.Millisecond {
		sql := strings.Join(strings.Fields(s.sql), " ")
		if len(sql) > 160 {
			sql = sql[:160] + "…"
		}
		fmt.Fprintf(os.Stderr, "bench: slow query %v: %s\n", d, sql)
	}
}

func BenchmarkCompileQuarter(b *testing.B) {
	tracer := &slowQueries{}
	f := newFixtureWith(b, "2024-01-05", func(c *pgxpool.Config) { c.ConnConfig.Tracer = tracer })
	f.svc.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ld0 := tracer
	ctx := f.ctx
	var fsync string
	if err := f.pool.QueryRow(ctx, `SHOW fsync`).Scan(&fsync); err != nil {
		b.Fatal(err)
	}
	if fsync != "on" {
		b.Skip("the claims benchmark needs a durable cluster (fsync on): run it with make bench (INFUSE_BENCH_DURABLE=1)")
	}
	ld := &benchLoader{b: b, ctx: ctx, f: f, next: map[string]int{}, tracer: ld0}
	ld.officersUp()
	periods := Periods(f.prog)

	// The first million: an even spread over the twelve quarters.
	per := 1_000_000 / len(periods)
	for i, p := range periods {
		n := per
		if i == len(periods)-1 {
			n = 1_000_000 - per*(len(periods)-1)
		}
		ld.load(p, n)
	}
	quarterLines := ld.next[benchQuarter]
	ld.settle()
	firstCold, first := ld.measure("1M")

	// The second million: the other quarters only.
	others := periods[:len(periods)-1]
	per = 1_000_000 / len(others)
	for i, p := range others {
		n := per
		if i == len(others)-1 {
			n = 1_000_000 - per*(len(others)-1)
		}
		ld.load(p, n)
	}
	if ld.next[benchQuarter] != quarterLines {
		b.Fatal("the measured quarter changed")
	}
	ld.settle()
	secondCold, second := ld.measure("2M")

	b.ReportMetric(firstCold.Seconds(), "s/first-compile@1M")
	b.ReportMetric(secondCold.Seconds(), "s/first-compile@2M")
	b.ReportMetric(first.Seconds(), "s/compile@1M")
	b.ReportMetric(second.Seconds(), "s/compile@2M")
	b.ReportMetric(second.Seconds()/first.Seconds(), "ratio2M/1M")
	b.ReportMetric(float64(quarterLines), "quarter-lines")
	b.Logf("compile %s: %v with 1,000,000 time entries, %v with 2,000,000 (%d lines in the quarter)",
		benchQuarter, first, second, quarterLines)
	if firstCold > 2*time.Second {
		b.Errorf("compiling %s with 1,000,000 entries took %v, over 2 s", benchQuarter, firstCold)
	}
	if second >= 2*first {
		b.Errorf("doubling the history doubled the compile time: %v → %v", first, second)
	}
}

// officersUp creates the officers the entries are spread over, each with one rate version.
func (ld *benchLoader) officersUp() {
	auths := ld.f.prog.Authorities
	err := db.WithTx(ld.ctx, ld.f.pool, func(tx pgx.Tx) error {
		for i := 0; i < benchOfficers; i++ {
			var id int64
			a := auths[i%len(auths)].Code
			if err := tx.QueryRow(ld.ctx, `INSERT INTO officer (operation_id, authority, payroll_ref, name, recorded_at, recorded_by)
				VALUES ('infuse', $1, $2, $3, now(), 'bench') RETURNING id`, a, fmt.Sprintf("B-%04d", i), fmt.Sprintf("Officer %d", i)).Scan(&id); err != nil {
				return err
			}
			if _, err := tx.Exec(ld.ctx, `INSERT INTO rate_version (operation_id, officer_id, valid_from, annual_cost, fte, recorded_at, recorded_by)
				VALUES ('infuse', $1, '2021-01-01', 41280.00, 1, now(), 'bench')`, id); err != nil {
				return err
			}
			ld.officers = append(ld.officers, id)
		}
		return nil
	})
	if err != nil {
		ld.b.Fatal(err)
	}
}

// load posts n time entries into period p, in batches, with their time_entry rows.
func (ld *benchLoader) load(p Period, n int) {
	auths := ld.f.prog.Authorities
	days := int(p.End.Sub(p.Start).Hours()/24) + 1
	start := time.Now()
	for done := 0; done < n; done += benchBatch {
		m := min(benchBatch, n-done)
		ins := make([]ledger.EntryInput, m)
		type line struct {
			officer  int64
			date     time.Time
			activity string
			amount   decimal.Decimal
		}
		lines := make([]line, m)
		for i := range ins {
			k := ld.next[p.Code] // the k-th entry of the period: officer k mod 1000, a slot per 1000
			ld.next[p.Code]++
			o := k % benchOfficers
			slot := k / benchOfficers
			date := p.Start.AddDate(0, 0, slot%days)
			act := benchActivities[(slot/days)%len(benchActivities)]
			amount := decimal.New(int64(18000+(k*37)%9000), -2) // £180.00–£269.99: 7.5 h at about £24/h
			auth := auths[o%len(auths)].Code
			lines[i] = line{ld.officers[o], date, act, amount}
			ins[i] = ledger.EntryInput{
				EffectiveDate: date, Source: "time_entry", Reference: fmt.Sprintf("%s-%d", p.Code, k),
				Description: "Officer time, " + act, RecordedBy: "bench",
				IdempotencyKey: fmt.Sprintf("time:%d:%s:%s:0", ld.officers[o], date.Format(programme.DateLayout), act),
				Postings:       []ledger.Posting{{Account: ledger.InKind(auth), Amount: amount}, {Account: ledger.Match(auth), Amount: amount.Neg()}},
			}
		}
		err := db.WithTx(ld.ctx, ld.f.pool, func(tx pgx.Tx) error {
			out, err := ld.f.l.PostBatch(ld.ctx, tx, ins)
			if err != nil {
				return err
			}
			rows := make([][]any, m)
			for i, e := range out {
				l := lines[i]
				rows[i] = []any{"infuse", l.officer, l.date, l.activity, 0, "7.50", fmt.Sprintf("TS-%d", e.ID), "Line Manager",
					programme.Date(2021, 1, 1), l.amount, e.ID, e.Period, ld.f.clock.Now(), "bench"}
			}
			_, err = tx.CopyFrom(ld.ctx, pgx.Identifier{"time_entry"}, []string{"operation_id", "officer_id", "work_date", "activity",
				"generation", "hours", "evidence_ref", "approved_by", "rate_valid_from", "amount", "entry_id", "period",
				"recorded_at", "recorded_by"}, pgx.CopyFromRows(rows))
			return err
		})
		if err != nil {
			ld.b.Fatalf("load %s: %v", p.Code, err)
		}
	}
	ld.b.Logf("loaded %d entries into %s in %v", n, p.Code, time.Since(start))
}

// settle seals the ledger and leaves the tables vacuumed and analysed, as autovacuum would.
func (ld *benchLoader) settle() {
	start := time.Now()
	n, err := ld.f.l.Seal(ld.ctx)
	if err != nil {
		ld.b.Fatal(err)
	}
	for _, t := range []string{"entry", "posting", "balance", "seal", "time_entry", "period", "account"} {
		if _, err := ld.f.pool.Exec(ld.ctx, "VACUUM ANALYZE "+t); err != nil {
			ld.b.Fatal(err)
		}
	}
	ld.b.Logf("sealed %d entries and vacuumed in %v", n, time.Since(start))
}

// measure compiles the quarter three times and returns the first time and the best.
func (ld *benchLoader) measure(label string) (first, best time.Duration) {
	ld.tracer.on.Store(true)
	defer ld.tracer.on.Store(false)
	for i := 0; i < 3; i++ {
		start := time.Now()
		c, err := ld.f.svc.Compile(ld.ctx, benchQuarter, System)
		d := time.Since(start)
		if err != nil {
			ld.b.Fatal(err)
		}
		if i == 0 {
			first = d
			ld.b.Logf("%s: first compile %v, ESF due %s, %d findings, %d blocking", label, d,
				c.Figures.ESFDue.Period.StringFixed(2), len(c.Figures.Findings), len(c.Figures.Blocking()))
			for _, x := range c.Figures.Blocking() {
				ld.b.Logf("  %s %s", x.ID, x.Message)
			}
		}
		if best == 0 || d < best {
			best = d
		}
	}
	return first, best
}
