package db_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"unicode/utf8"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// A value too long for its index is the user's mistake (M1), even though PostgreSQL names the
// index as the constraint: a registered constraint of that name must not be read as violated.
func TestTranslateATextTooLongForItsIndex(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA t; CREATE TABLE t.long_text (v text);
		CREATE UNIQUE INDEX entry_idempotency_uq ON t.long_text (v)`); err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 4000) // hex of random bytes: 8,000 characters that do not compress
	_, _ = rand.Read(random)
	_, err := pool.Exec(ctx, `INSERT INTO t.long_text VALUES ($1)`, hex.EncodeToString(random))
	if err == nil {
		t.Fatal("an 8,000-character value was indexed")
	}
	got := apperr.As(db.Translate("test", err))
	if got == nil || got.Code != apperr.Invalid || got.Rule != apperr.RuleFormat {
		t.Errorf("translated to %+v; want invalid, %s", got, apperr.RuleFormat)
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"time.csv", 255, "time.csv"},
		{"t\xff.csv", 255, "t\uFFFD.csv"},
		{"a\x00b", 255, "ab"},
		{"abcdefgh", 5, "abcde"},
		{"abcŵŵ", 6, "abcŵ"}, // 7 bytes: the cut at 6 falls inside the second ŵ
	} {
		if got := db.Clip(c.in, c.max); got != c.want || !utf8.ValidString(got) {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
