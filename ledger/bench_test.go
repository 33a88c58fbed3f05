package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

// The ledger's speed targets (issue: foundation). Run with `make bench`, which gives these
// benchmarks a durable cluster (fsync on, on disk). Each benchmark does a fixed amount of work
// once (-benchtime=1x) and reports its rates as metrics.

const benchClients = 10

func benchLedger(b *testing.B, conns int32) (*pgxpool.Pool, *ledger.Ledger) {
	b.Helper()
	pool := dbtest.NewWithConfig(b, func(c *pgxpool.Config) { c.MaxConns = conns })
	l, err := ledger.Setup(context.Background(), pool, programme.Default())
	if err != nil {
		b.Fatal(err)
	}
	return pool, l
}

// runClients runs work for n operations spread over benchClients goroutines and returns the
// operations per second.
func runClients(b *testing.B, n int, work func(client, i int, rng *rand.Rand) error) float64 {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchClients)
	start := time.Now()
	for c := range benchClients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for {
				i := int(next.Add(1))
				if i > n {
					return
				}
				if err := work(c, i, rng); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(n) / elapsed.Seconds()
}

// rawTransferSchema is the minimal transfer the ledger is compared with: two balance rows locked
// in order and updated, an entry and two postings inserted; no checks, no chain, no idempotency.
const rawTransferSchema = `
CREATE TABLE raw_balance (id bigint PRIMARY KEY, amount numeric(16,2) NOT NULL);
CREATE TABLE raw_entry (id bigserial PRIMARY KEY, description text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE raw_posting (entry_id bigint NOT NULL, line smallint NOT NULL, account_id bigint NOT NULL,
	amount numeric(16,2) NOT NULL, PRIMARY KEY (entry_id, line));
INSERT INTO raw_balance SELECT g, 0 FROM generate_series(1, 64) g;`

func rawTransfer(ctx context.Context, pool *pgxpool.Pool, from, to int64, amount decimal.Decimal) error {
	lo, hi := min(from, to), max(from, to)
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT id FROM raw_balance WHERE id IN ($1, $2) ORDER BY id FOR UPDATE`, lo, hi)
		b.Queue(`UPDATE raw_balance SET amount = amount + $2 WHERE id = $1`, to, amount)
		b.Queue(`UPDATE raw_balance SET amount = amount - $2 WHERE id = $1`, from, amount)
		b.Queue(`WITH e AS (INSERT INTO raw_entry (description, created_at) VALUES ('transfer', now()) RETURNING id)
			INSERT INTO raw_posting SELECT e.id, 1, $1::bigint, $3::numeric FROM e UNION ALL SELECT e.id, 2, $2::bigint, -$3::numeric FROM e`, to, from, amount)
		return tx.SendBatch(ctx, b).Close()
	})
}

// bareEntrySQL is the least a ledger entry can cost: an entry row and two posting rows inserted
// by one statement, in one round trip, with their primary keys and nothing else (no balance,
// no check, no key, no chain). The benchmarks measure it as this machine's floor.
const bareEntrySQL = `WITH e AS (INSERT INTO raw_entry (description, created_at) VALUES ('transfer', now()) RETURNING id)
	INSERT INTO raw_posting SELECT e.id, 1, $1::bigint, $3::numeric FROM e UNION ALL SELECT e.id, 2, $2::bigint, -$3::numeric FROM e`

// BenchmarkPostSingle: single entries (two postings, an idempotency key) from 10 concurrent
// clients, side by side with the raw transfer run the same way. Targets: ≥ 5,000 entries/s and a
// ratio to the raw transfer of ≥ 0.7. The bare entry (bareEntrySQL) is run the same way too, as
// the ceiling this machine puts on any ledger entry.
func BenchmarkPostSingle(b *testing.B) {
	ctx := context.Background()
	pool, l := benchLedger(b, benchClients)
	if _, err := pool.Exec(ctx, rawTransferSchema); err != nil {
		b.Fatal(err)
	}
	accts := l.Accounts()
	const n = 30000
	amount := func(rng *rand.Rand) decimal.Decimal { return decimal.New(1+rng.Int64N(100_000), -2) }
	b.ResetTimer()
	var raw, posted, bare float64
	for round := range 2 { // alternate, so that none gets the quieter machine
		bare += runClients(b, n, func(_, _ int, rng *rand.Rand) error {
			from := 1 + rng.Int64N(int64(len(accts)))
			_, err := pool.Exec(ctx, bareEntrySQL, from, 1+from%int64(len(accts)), amount(rng))
			return err
		}) / 2
		raw += runClients(b, n, func(_, _ int, rng *rand.Rand) error {
			from := 1 + rng.Int64N(int64(len(accts)))
			to := 1 + rng.Int64N(int64(len(accts)))
			for to == from {
				to = 1 + rng.Int64N(int64(len(accts)))
			}
			return rawTransfer(ctx, pool, from, to, amount(rng))
		}) / 2
		posted += runClients(b, n, func(c, i int, rng *rand.Rand) error {
			from, to := accts[rng.IntN(len(accts))].Code, accts[rng.IntN(len(accts))].Code
			for to == from {
				to = accts[rng.IntN(len(accts))].Code
			}
			a := amount(rng)
			_, err := l.Post(ctx, pool, ledger.EntryInput{
				EffectiveDate: time.Date(2022, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC),
				Description:   "bench transfer", Source: "bench", RecordedBy: "bench",
				IdempotencyKey: fmt.Sprintf("bench-%d-%d", round, i),
				Postings:       []ledger.Posting{{Account: to, Amount: a}, {Account: from, Amount: a.Neg()}},
			})
			return err
		}) / 2
	}
	b.StopTimer()
	b.ReportMetric(posted, "entries/s")
	b.ReportMetric(raw, "raw_transfers/s")
	b.ReportMetric(posted/raw, "ratio")
	b.ReportMetric(bare, "bare_entries/s")
	b.Logf("single entries: %.0f entries/s (target ≥ 5000), raw transfer %.0f/s, ratio %.2f (target ≥ 0.7); bare entry, this machine's ceiling: %.0f/s",
		posted, raw, posted/raw, bare)
}

// batchInputs makes n time-entry-shaped entries spread over the ten authorities and 2021–2023.
func batchInputs(n, offset int) []ledger.EntryInput {
	auths := programme.Default().Authorities
	ins := make([]ledger.EntryInput, n)
	for i := range ins {
		k := offset + i
		a := auths[k%len(auths)].Code
		amt := decimal.New(int64(1000+k%50000), -2)
		ins[i] = ledger.EntryInput{
			EffectiveDate: time.Date(2021+k%3, time.Month(1+k%12), 1+k%28, 0, 0, 0, 0, time.UTC),
			Description:   "officer time", Source: "time_entry", Reference: fmt.Sprint(k), RecordedBy: "bench",
			IdempotencyKey: fmt.Sprintf("time-%d", k),
			Postings:       []ledger.Posting{{Account: ledger.InKind(a), Amount: amt}, {Account: ledger.Match(a), Amount: amt.Neg()}},
		}
	}
	return ins
}

func postBatches(b *testing.B, pool *pgxpool.Pool, l *ledger.Ledger, total, size int) time.Duration {
	b.Helper()
	ctx := context.Background()
	var spent time.Duration
	for off := 0; off < total; off += size {
		ins := batchInputs(size, off)
		start := time.Now()
		if err := db.WithTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := l.PostBatch(ctx, tx, ins)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		spent += time.Since(start)
	}
	return spent
}

// BenchmarkPostBatch: the set-based path the imports use. Target: ≥ 50,000 entries/s.
func BenchmarkPostBatch(b *testing.B) {
	pool, l := benchLedger(b, 4)
	const total, size = 200_000, 50_000
	load := loadAverage()
	b.ResetTimer()
	spent := postBatches(b, pool, l, total, size)
	b.StopTimer()
	rate := float64(total) / spent.Seconds()
	b.ReportMetric(rate, "entries/s")
	b.Logf("batch posting: %.0f entries/s in batches of %d (target ≥ 50000); load average at its start %s", rate, size, load)
}

// loadAverage is the machine's 1-minute load average, for a rate measured over a few seconds:
// other work on the two cores shows in it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

// BenchmarkVerify1M: ledger verify of 1,000,000 entries. Target: ≤ 10 s.
func BenchmarkVerify1M(b *testing.B) {
	ctx := context.Background()
	pool, l := benchLedger(b, 4)
	const total = 1_000_000
	postBatches(b, pool, l, total, 50_000)
	sealStart := time.Now()
	if _, err := l.Seal(ctx); err != nil {
		b.Fatal(err)
	}
	sealed := time.Since(sealStart)
	b.ResetTimer()
	rep, err := l.Verify(ctx)
	b.StopTimer()
	if err != nil || !rep.OK() || rep.Entries < total {
		b.Fatalf("verify: %+v, %v", rep, err)
	}
	b.ReportMetric(rep.Elapsed.Seconds(), "verify_s")
	b.ReportMetric(float64(total)/sealed.Seconds(), "sealed_entries/s")
	b.Logf("verify of %d entries: %.2fs (target ≤ 10s); sealing them took %.1fs", rep.Entries, rep.Elapsed.Seconds(), sealed.Seconds())
}
