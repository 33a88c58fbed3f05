package ledger_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/ledger"
)

// transferRow is a row of PostTransfers' source table.
type transferRow struct {
	ref                   int64
	date, desc, reference string
	key                   *string
	debit, credit, amount string
}

// postTransfers loads rows into a source table and posts them in one transaction, returning
// each row's entry id by ref.
func postTransfers(t *testing.T, l *ledger.Ledger, rows []transferRow) (map[int64]int64, error) {
	t.Helper()
	ctx := context.Background()
	ids := map[int64]int64{}
	err := db.WithTx(ctx, l.Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE src (ref bigint, effective_date date, description text, source text,
			reference text, idempotency_key text, recorded_by text, debit_account text, credit_account text, amount numeric) ON COMMIT DROP`); err != nil {
			return err
		}
		for _, r := range rows {
			if _, err := tx.Exec(ctx, `INSERT INTO src VALUES ($1, $2, $3, 'test', $4, $5, 'tester', $6, $7, $8)`,
				r.ref, date(r.date), r.desc, r.reference, r.key, r.debit, r.credit, r.amount); err != nil {
				return err
			}
		}
		n, err := l.PostTransfers(ctx, tx, "src", "dst")
		if err != nil {
			return err
		}
		if n != int64(len(rows)) {
			t.Errorf("PostTransfers posted %d entries, want %d", n, len(rows))
		}
		got, err := tx.Query(ctx, `SELECT ref, entry_id FROM dst`)
		if err != nil {
			return err
		}
		var ref, id int64
		_, err = pgx.ForEachRow(got, []any{&ref, &id}, func() error { ids[ref] = id; return nil })
		return err
	})
	return ids, err
}

func TestPostTransfers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, l := setup(t)
	key := func(s string) *string { return &s }
	// Fields whose lengths take one byte (up to 127) and two (from 128) of the fingerprint's
	// uvarint, empty, and not ASCII.
	long := strings.Repeat("Llanfair ", 20) + "— café"
	rows := []transferRow{
		{1, "2021-02-01", "Officer time: GB-NWP NWP-1, 2021-02-01, lab, 7.25 h", "41", key("t:1"), ledger.InKind("GB-NWP"), ledger.Match("GB-NWP"), "151.37"},
		{2, "2021-05-03", long, "", key("t:2"), ledger.HeadingAccount("delivery"), ledger.Cash, "-20.00"},
		{3, "2022-12-31", "no key", "x", nil, ledger.InKind("GB-CRF"), ledger.Match("GB-CRF"), "0.01"},
		{4, "2021-03-31", strings.Repeat("a", 127), "127", key("t:4"), ledger.Cash, ledger.ESFIncome, "10"},
		{5, "2021-03-31", strings.Repeat("a", 128), "128", key("t:5"), ledger.Cash, ledger.ESFIncome, "10.5"},
		{6, "2021-04-01", "Amser swyddog: Gŵyl Dewi, £5", "ŵ", key("t:6"), ledger.Cash, ledger.ESFIncome, "0.10"},
		{7, "2021-04-02", "an empty key is no key", "7", key(""), ledger.Cash, ledger.ESFIncome, "1"},
	}
	ids, err := postTransfers(t, l, rows)
	if err != nil {
		t.Fatal(err)
	}
	// Each entry is the one Post would have made: posting the same request again with the same
	// key is a replay of it, which holds only if the fingerprints computed in SQL and in Go agree.
	for _, r := range rows {
		if r.key == nil || *r.key == "" {
			continue
		}
		a := d(r.amount)
		e, err := l.Post(ctx, pool, ledger.EntryInput{
			EffectiveDate: date(r.date), Description: r.desc, Source: "test", Reference: r.reference, RecordedBy: "someone else",
			IdempotencyKey: *r.key, Postings: []ledger.Posting{{Account: r.debit, Amount: a}, {Account: r.credit, Amount: a.Neg()}},
		})
		if err != nil || !e.Replayed || e.ID != ids[r.ref] {
			t.Fatalf("row %d posted again: %+v, %v; want a replay of entry %d", r.ref, e, err, ids[r.ref])
		}
	}
	e, err := l.Entry(ctx, ids[2])
	if err != nil || e.Period != "2021Q2" || len(e.Postings) != 2 || e.Postings[0].Amount.String() != "-20" || e.Postings[1].Account != ledger.Cash {
		t.Fatalf("entry of row 2: %+v, %v", e, err)
	}
	if b, _ := l.Balance(ctx, ledger.InKind("GB-NWP")); b.String() != "151.37" {
		t.Fatalf("in-kind balance %s", b)
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v, %v", rep, err)
	}

	if e, err := l.Entry(ctx, ids[7]); err != nil || e.IdempotencyKey != "" {
		t.Fatalf("entry of row 7: %+v, %v", e, err)
	}

	// Refused, and nothing written, not even the good row beside: a key the ledger holds (a
	// conflict), and a row that breaks a rule (the caller's bug: an internal error that names
	// the rule for the log).
	good := transferRow{8, "2021-02-01", "good", "8", key("t:8"), ledger.InKind("GB-CRF"), ledger.Match("GB-CRF"), "5.00"}
	for _, tc := range []struct {
		name   string
		row    transferRow
		code   apperr.Code
		rule   string
		logged string // what the log reads of an internal error
	}{
		{"KeyUsedBefore", transferRow{9, "2021-02-01", "again", "1", key("t:1"), ledger.Cash, ledger.ESFIncome, "1.00"}, apperr.Conflict, "L4", ""},
		{"UnknownAccount", transferRow{9, "2021-02-01", "d", "1", nil, "nope", ledger.Cash, "1.00"}, apperr.Internal, "", "the entry for row 9 of src is refused: L3: there is no account nope"},
		{"ThreeDecimals", transferRow{9, "2021-02-01", "d", "1", nil, ledger.Cash, ledger.ESFIncome, "1.005"}, apperr.Internal, "", "refused: L2: amount 1.005"},
		{"ZeroAmount", transferRow{9, "2021-02-01", "d", "1", nil, ledger.Cash, ledger.ESFIncome, "0"}, apperr.Internal, "", "refused: L1"},
		{"BeforeTheFirstPeriod", transferRow{9, "2020-12-31", "d", "1", nil, ledger.Cash, ledger.ESFIncome, "1.00"}, apperr.Internal, "", "refused: L5"},
		{"NoDescription", transferRow{9, "2021-02-01", "", "1", nil, ledger.Cash, ledger.ESFIncome, "1.00"}, apperr.Internal, "", "refused: the entry has no description"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := l.Balance(ctx, ledger.InKind("GB-CRF"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = postTransfers(t, l, []transferRow{good, tc.row})
			if e := apperr.As(err); e == nil || e.Code != tc.code || e.Rule != tc.rule || !strings.Contains(fmt.Sprint(e.Err), tc.logged) {
				t.Fatalf("got %v (%v), want %s %s naming %q", err, e.Err, tc.code, tc.rule, tc.logged)
			}
			if after, err := l.Balance(ctx, ledger.InKind("GB-CRF")); err != nil || !after.Equal(before) {
				t.Fatalf("the good row's account moved from %s to %s (%v)", before, after, err)
			}
		})
	}

	// A line dated in a locked period is a late item of the earliest open period after it.
	if err := db.WithTx(ctx, pool, func(tx pgx.Tx) error { return l.LockPeriod(ctx, tx, "2021Q1", "pm@example.org") }); err != nil {
		t.Fatal(err)
	}
	late, err := postTransfers(t, l, []transferRow{{10, "2021-03-31", "late", "10", nil, ledger.Cash, ledger.ESFIncome, "2.00"}})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := l.Entry(ctx, late[10]); err != nil || e.Period != "2021Q2" {
		t.Fatalf("late entry: %+v, %v", e, err)
	}
}
