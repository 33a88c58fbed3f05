package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/backup"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/internal/reliability"
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

// postBatch posts n entries in one transaction, as an import does.
func postBatch(t *testing.T, pool *pgxpool.Pool, l *ledger.Ledger, n int) {
	t.Helper()
	ins := make([]ledger.EntryInput, n)
	for i := range ins {
		a := decimal.New(int64(1+i%99_999), -2)
		auth := programme.Default().Authorities[i%10].Code
		ins[i] = ledger.EntryInput{EffectiveDate: time.Date(2021+i%3, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC),
			Description: fmt.Sprintf("batch %d", i), Source: "test", RecordedBy: "tester",
			Postings: []ledger.Posting{{Account: ledger.InKind(auth), Amount: a}, {Account: ledger.Match(auth), Amount: a.Neg()}}}
	}
	if err := db.WithTx(context.Background(), pool, func(tx pgx.Tx) error {
		_, err := l.PostBatch(context.Background(), tx, ins)
		return err
	}); err != nil {
		t.Fatal(err)
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

// TestBackupRoundTrip backs a ledger up, restores it over another, and expects the same books
// and a chain that verifies.
func TestBackupRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcURL, dstURL := dbtest.URL(t), dbtest.URL(t)
	src, srcLedger := openLedger(t, srcURL)
	postBatch(t, src, srcLedger, 5000)
	post(t, src, srcLedger, 40, "123.45")
	if _, err := srcLedger.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	post(t, src, srcLedger, 3, "1.01") // some entries still waiting to be sealed
	old, oldLedger := openLedger(t, dstURL)
	post(t, old, oldLedger, 5, "999.99") // different books, to be replaced
	old.Close()
	srcRep, err := srcLedger.Verify(ctx)
	if err != nil || !srcRep.OK() {
		t.Fatalf("the source ledger does not verify: %+v, %v", srcRep, err)
	}

	file := filepath.Join(t.TempDir(), "infuse.backup")
	start := time.Now()
	if err := backup.Dump(ctx, srcURL, file, backup.DumpOptions{}); err != nil {
		t.Fatal(err)
	}
	dumped := time.Since(start)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := backup.Restore(ctx, dstURL, file); err != nil {
		t.Fatal(err)
	}
	restored := time.Since(start)
	// Restore replaced every table: a new pool, as a restarted service would have.
	dst, err := db.Open(ctx, dstURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dst.Close)
	l, err := ledger.Open(ctx, dst, "infuse")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := trialBalance(t, dst, l), trialBalance(t, src, srcLedger); got != want {
		t.Fatalf("restored trial balance differs:\n%s\nwant:\n%s", got, want)
	}
	if _, err := l.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK() || rep.Entries != srcRep.Entries || rep.Postings != srcRep.Postings {
		t.Fatalf("restored ledger: %+v, %v; the source had %d entries and %d postings", rep, err, srcRep.Entries, srcRep.Postings)
	}
	// The restored ledger takes new entries, and its write checks are on again.
	post(t, dst, l, 1, "2.00")
	if _, err := dst.Exec(ctx, `UPDATE posting SET amount = 1 WHERE entry_id = (SELECT min(entry_id) FROM posting)`); err == nil {
		t.Fatal("append-only trigger is off after restore")
	}
	_, err = dst.Exec(ctx, `INSERT INTO entry (operation_id, id, effective_date, period, description, source, reference, recorded_at, recorded_by)
		VALUES ('infuse', 999999, '2021-02-01', '2021Q1', 'raw', 'raw', '', now(), 'psql')`)
	if pg := (*pgconn.PgError)(nil); !errors.As(err, &pg) || pg.Code != "IL004" {
		t.Fatalf("a row without the ledger token after restore: %v; want entry_token_held to refuse it", err)
	}
	_, err = dst.Exec(ctx, `WITH t AS (INSERT INTO ledger_txn (txid) VALUES (pg_current_xact_id()))
		INSERT INTO entry (operation_id, id, effective_date, period, description, source, reference, recorded_at, recorded_by, txid)
		VALUES ('infuse', 999999, '2021-02-01', '2021Q1', 'raw', 'raw', '', now(), 'psql', '1')`)
	if pg := (*pgconn.PgError)(nil); !errors.As(err, &pg) || pg.ConstraintName != "entry_token_ck" {
		t.Fatalf("a row of another transaction after restore: %v; want entry_token_ck to refuse it", err)
	}
	reliability.Record(t, "backup_restore", "a ledger backed up with pg_dump and restored over another database in one transaction has the same trial balance, entries and postings, a chain that verifies, and its write checks on again",
		map[string]any{"entries": rep.Entries, "postings": rep.Postings, "entries_waiting_at_backup": srcRep.Waiting,
			"backup_bytes": fi.Size(), "backup_seconds": dumped.Round(time.Millisecond).Seconds(),
			"restore_seconds": restored.Round(time.Millisecond).Seconds(), "ledger_problems_after_restore": len(rep.Problems)})
}

// TestRestoreRefusesDamagedFilesAndKeeps: a backup cut short or damaged anywhere in its data, an
// empty file and a file that is not a backup are each refused as invalid before the database is
// touched, and the books stay as they were.
func TestRestoreRefusesDamagedFilesAndKeeps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	pool, l := openLedger(t, url)
	postBatch(t, pool, l, 2000)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.backup")
	if err := backup.Dump(ctx, url, good, backup.DumpOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := backup.Check(ctx, good); err != nil {
		t.Fatalf("a good backup does not check: %v", err)
	}
	whole, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	post(t, pool, l, 2, "10.00") // the books move on after the backup
	before := trialBalance(t, pool, l)
	bad := map[string][]byte{"empty": nil, "not a backup": []byte("PGDMP but not really")}
	// Cut at eighths of the file, near its end, and just before the SHA-256 line (which leaves
	// the archive pg_dump wrote, whole, without it).
	for _, n := range []int{len(whole) / 8, len(whole) / 4, len(whole) * 3 / 8, len(whole) * 99 / 100,
		bytes.LastIndex(whole, []byte("\ninfuse-backup sha256 ")), len(whole) - 1} {
		bad[fmt.Sprintf("cut at %d of %d bytes", n, len(whole))] = whole[:n]
	}
	// 64 bytes overwritten at every sixteenth of the file: in the table of contents, where the
	// schema's text lies and damage could restore silently, and in the data.
	for at := 1; at < 16; at++ {
		b := bytes.Clone(whole)
		i := len(b) * at / 16
		copy(b[i:], bytes.Repeat([]byte{0x5a}, 64))
		bad[fmt.Sprintf("64 bytes overwritten at %d", i)] = b
	}
	for name, body := range bad {
		file := filepath.Join(dir, "bad.backup")
		if err := os.WriteFile(file, body, 0o600); err != nil {
			t.Fatal(err)
		}
		err := backup.Restore(ctx, url, file)
		if apperr.CodeOf(err) != apperr.Invalid || apperr.RuleOf(err) != backup.RuleBackup ||
			!strings.Contains(apperr.Public(err), "truncated, damaged or not a backup") {
			t.Errorf("%s: restore gave %s %q, want invalid naming the damage", name, apperr.CodeOf(err), apperr.Public(err))
		}
		if after := trialBalance(t, pool, l); after != before {
			t.Fatalf("%s: a refused restore changed the books:\n%s\nwas:\n%s", name, after, before)
		}
	}
	if err := backup.Restore(ctx, url, filepath.Join(dir, "missing.backup")); apperr.CodeOf(err) != apperr.Invalid || apperr.RuleOf(err) != backup.RuleBackup {
		t.Errorf("restore of a missing file: %v", err)
	}
	if err := backup.Dump(ctx, url, filepath.Join(t.TempDir(), "no-such-dir", "x"), backup.DumpOptions{}); err == nil {
		t.Fatal("a backup into a missing directory succeeded")
	}
}

// TestOccupied names the tables that hold rows, and none of a new database's or of one holding
// only what migrate sets up.
func TestOccupied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	if got, err := backup.Occupied(ctx, url); err != nil || len(got) != 0 {
		t.Fatalf("a migrated, empty database: %v, %v", got, err)
	}
	pool, l := openLedger(t, url)
	// What `infuse migrate` sets up (the operation, periods, accounts, the award and match
	// pledges), sealed or not, is nothing a restore would lose.
	if got, err := backup.Occupied(ctx, url); err != nil || len(got) != 0 {
		t.Fatalf("a database set up by migrate: %v, %v", got, err)
	}
	if _, err := l.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := backup.Occupied(ctx, url); err != nil || len(got) != 0 {
		t.Fatalf("a database set up by migrate, sealed: %v, %v", got, err)
	}
	post(t, pool, l, 1, "1.00")
	got, err := backup.Occupied(ctx, url)
	if err != nil || !slices.Contains(got, "entry") || !slices.Contains(got, "operation") || slices.Contains(got, "schema_migration") {
		t.Fatalf("a database with a ledger: %v, %v", got, err)
	}
}

// TestRestoreRefusedWhileOthersConnected: a restore under a running service would leave it
// serving what it had cached over the restored books, so it is refused (B2) while another
// client is connected, leaving the books as they were, and goes ahead once it has gone.
func TestRestoreRefusedWhileOthersConnected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	pool, l := openLedger(t, url)
	post(t, pool, l, 3, "10.00")
	file := filepath.Join(t.TempDir(), "infuse.backup")
	if err := backup.Dump(ctx, url, file, backup.DumpOptions{}); err != nil {
		t.Fatal(err)
	}
	post(t, pool, l, 1, "5.00") // the books move on after the backup
	before := trialBalance(t, pool, l)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "infuse-serve"
	service, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	err = backup.Restore(ctx, url, file)
	if apperr.CodeOf(err) != apperr.Conflict || apperr.RuleOf(err) != backup.RuleAlone ||
		!strings.Contains(apperr.Public(err), "another connection to the database is open (infuse-serve): stop the service") {
		t.Fatalf("restore with the service connected: %v, want a B2 conflict telling to stop the service", err)
	}
	if err := service.Close(ctx); err != nil {
		t.Fatal(err)
	}
	pool, l = openLedger(t, url)
	if after := trialBalance(t, pool, l); after != before {
		t.Fatalf("a refused restore changed the books:\n%s\nwas:\n%s", after, before)
	}
	pool.Close()
	if err := backup.Restore(ctx, url, file); err != nil {
		t.Fatalf("restore once alone: %v", err)
	}
}

// TestDumpRefusesExistingFile: a backup never silently replaces a file (an older backup, say),
// nor writes over a directory; with Force it replaces a file whole.
func TestDumpRefusesExistingFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	pool, l := openLedger(t, url)
	post(t, pool, l, 2, "10.00")
	dir := t.TempDir()
	file := filepath.Join(dir, "infuse.backup")
	if err := os.WriteFile(file, []byte("last week's backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := backup.Dump(ctx, url, file, backup.DumpOptions{})
	if apperr.CodeOf(err) != apperr.Conflict || apperr.RuleOf(err) != backup.RuleFile || !strings.Contains(apperr.Public(err), "--force") {
		t.Fatalf("backup over a file: %v, want a B3 conflict naming --force", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "last week's backup" {
		t.Fatal("a refused backup changed the file")
	}
	err = backup.Dump(ctx, url, dir, backup.DumpOptions{Force: true})
	if apperr.CodeOf(err) != apperr.Invalid || apperr.RuleOf(err) != backup.RuleFile || !strings.Contains(apperr.Public(err), "is a directory") {
		t.Fatalf("backup over a directory: %v, want B3 invalid", err)
	}
	if err := backup.Dump(ctx, url, file, backup.DumpOptions{Force: true}); err != nil {
		t.Fatalf("backup with Force: %v", err)
	}
	if err := backup.Check(ctx, file); err != nil {
		t.Fatalf("the replaced file is not a whole backup: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want only the backup", len(entries))
	}
}

// TestDeadBackupsTempsAreCleared: a backup killed mid-write leaves its temporary file; the next
// backup to the same file removes it, and leaves alone a live backup's and other files.
func TestDeadBackupsTempsAreCleared(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dead := ".k.dump.2147483646.123.tmp"                        // no such process
	live := ".k.dump." + strconv.Itoa(os.Getpid()) + ".456.tmp" // this one runs
	other := ".k.dump.20240601.2147483646.1.tmp"                // a live backup to k.dump.20240601, whose name starts alike
	for _, n := range []string{dead, live, other, ".other.dump.2147483646.1.tmp", "k.dump.notes"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	backup.ClearDeadTemps(dir, "k.dump")
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{live, other, ".other.dump.2147483646.1.tmp", "k.dump.notes"}
	if slices.Sort(want); !slices.Equal(names, want) {
		t.Errorf("after clearing: %v, want %v", names, want)
	}
}
