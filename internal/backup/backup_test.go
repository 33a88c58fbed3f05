package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/backup"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func openLedger(t *testing.T, url string) (*pgxpool.Pool, *ledger.Ledger) {
	t.Helper()
	pool, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	l, err := ledger.Setup(context.Background(), pool, programme.Default())
	if err != nil {
		t.Fatal(err)
	}
	return pool, l
}

func post(t *testing.T, pool *pgxpool.Pool, l *ledger.Ledger, n int, amount string) {
	t.Helper()
	for i := range n {
		a := decimal.RequireFromString(amount)
		_, err := l.Post(context.Background(), pool, ledger.EntryInput{
			EffectiveDate: time.Date(2021, time.Month(1+i%12), 10, 0, 0, 0, 0, time.UTC),
			Description:   fmt.Sprintf("entry %d", i), Source: "test", RecordedBy: "tester",
			Postings: []ledger.Posting{{Account: ledger.InKind("GB-TOF"), Amount: a}, {Account: ledger.Match("GB-TOF"), Amount: a.Neg()}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func trialBalance(t *testing.T, pool *pgxpool.Pool, l *ledger.Ledger) string {
	t.Helper()
	tb, err := l.TrialBalance(context.Background(), pool, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, b := range tb {
		fmt.Fprintf(&buf, "%s=%s\n", b.Code, b.Balance.StringFixed(2))
	}
	return buf.String()
}

// TestRoundTrip backs a ledger up, restores it over another, and expects the same books and a
// chain that verifies.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcURL, dstURL := dbtest.URL(t), dbtest.URL(t)
	src, srcLedger := openLedger(t, srcURL)
	post(t, src, srcLedger, 40, "123.45")
	if _, err := srcLedger.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	post(t, src, srcLedger, 3, "1.01") // some entries still waiting to be sealed
	old, oldLedger := openLedger(t, dstURL)
	post(t, old, oldLedger, 5, "999.99") // different books, to be replaced
	old.Close()

	file := filepath.Join(t.TempDir(), "infuse.backup")
	if err := backup.Dump(ctx, srcURL, file); err != nil {
		t.Fatal(err)
	}
	if err := backup.Restore(ctx, dstURL, file); err != nil {
		t.Fatal(err)
	}
	// Restore replaced every table: a new pool, as a restarted service would have.
	dst, err := db.Open(ctx, dstURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dst.Close)
	restored, err := ledger.Open(ctx, dst, "infuse")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := trialBalance(t, dst, restored), trialBalance(t, src, srcLedger); got != want {
		t.Fatalf("restored trial balance differs:\n%s\nwant:\n%s", got, want)
	}
	if _, err := restored.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := restored.Verify(ctx)
	if err != nil || !rep.OK() || rep.Entries != 11+43 {
		t.Fatalf("restored ledger does not verify: %+v, %v", rep, err)
	}
	// The restored ledger takes new entries, and its write checks are on again.
	post(t, dst, restored, 1, "2.00")
	if _, err := dst.Exec(ctx, `UPDATE posting SET amount = 1 WHERE entry_id = (SELECT min(entry_id) FROM posting)`); err == nil {
		t.Fatal("append-only trigger is off after restore")
	}
}

// TestRestoreRefusesAndKeeps: a file that is not a backup is refused and the database kept.
func TestRestoreRefusesAndKeeps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	pool, l := openLedger(t, url)
	post(t, pool, l, 2, "10.00")
	before := trialBalance(t, pool, l)
	bad := filepath.Join(t.TempDir(), "not-a-backup")
	if err := os.WriteFile(bad, []byte("PGDMP but not really"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := backup.Restore(ctx, url, bad); err == nil {
		t.Fatal("restore of a bad file succeeded")
	}
	if after := trialBalance(t, pool, l); after != before {
		t.Fatalf("a refused restore changed the books:\n%s\nwas:\n%s", after, before)
	}
	if err := backup.Dump(ctx, url, filepath.Join(t.TempDir(), "no-such-dir", "x")); err == nil {
		t.Fatal("a backup into a missing directory succeeded")
	}
}
