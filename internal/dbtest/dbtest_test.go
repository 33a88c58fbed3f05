package dbtest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/dbtest"
	"github.com/ccr-infuse/infuse/internal/migrate"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestNew/EachTestHasItsOwnDatabase: two tests running at once each create a table, wait for the
// other to have done so too, and must not see it.
func TestNew(t *testing.T) {
	var (
		created sync.WaitGroup
		mu      sync.Mutex
		dbs     = map[string]bool{}
	)
	names := []string{"alpha", "beta"}
	created.Add(len(names))
	t.Run("EachTestHasItsOwnDatabase", func(t *testing.T) {
		for i, name := range names {
			other := names[1-i]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				pool := dbtest.New(t)
				if _, err := pool.Exec(ctx, "CREATE TABLE "+name+" (id int); INSERT INTO "+name+" VALUES (1)"); err != nil {
					t.Fatal(err)
				}
				var db string
				if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				dbs[db] = true
				mu.Unlock()

				created.Done()
				waitOrFail(t, &created)

				var visible bool
				if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", other).Scan(&visible); err != nil {
					t.Fatal(err)
				}
				if visible {
					t.Errorf("database %s sees table %s created by the other test", db, other)
				}
			})
		}
	})
	if len(dbs) != len(names) {
		t.Errorf("tests got databases %v, want %d distinct", dbs, len(names))
	}

	t.Run("IsMigrated", func(t *testing.T) {
		t.Parallel()
		all, err := migrate.All()
		if err != nil {
			t.Fatal(err)
		}
		pending, err := migrate.Pending(t.Context(), dbtest.New(t))
		if err != nil {
			t.Fatal(err)
		}
		if pending != 0 || len(all) == 0 {
			t.Fatalf("%d of %d migrations pending", pending, len(all))
		}
	})

	t.Run("DecodesNumericAsDecimal", func(t *testing.T) {
		t.Parallel()
		var v any
		if err := dbtest.New(t).QueryRow(t.Context(), "SELECT 12.34::numeric").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if d, ok := v.(decimal.Decimal); !ok || !d.Equal(decimal.RequireFromString("12.34")) {
			t.Fatalf("numeric scanned into any as %T %v, want decimal.Decimal 12.34", v, v)
		}
	})

	t.Run("ConfigHook", func(t *testing.T) {
		t.Parallel()
		pool := dbtest.NewWithConfig(t, func(c *pgxpool.Config) { c.MaxConns = 2 })
		if got := pool.Config().MaxConns; got != 2 {
			t.Fatalf("MaxConns = %d, want 2", got)
		}
	})
}

// TestURL: the database behind URL is fresh and is dropped even with a connection left open.
func TestURL(t *testing.T) {
	t.Parallel()
	var url string
	t.Run("Use", func(t *testing.T) {
		url = dbtest.URL(t)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(t.Context(), "CREATE TABLE scratch (id int)"); err != nil {
			t.Fatal(err)
		}
		// conn stays open: the cleanup's DROP DATABASE … WITH (FORCE) must end it.
	})
	conn, err := pgx.Connect(t.Context(), url)
	if err == nil {
		conn.Close(context.Background())
		t.Fatal("the database behind URL still exists after its test finished")
	}
}

func TestServer(t *testing.T) {
	t.Parallel()
	conn, err := pgx.Connect(t.Context(), dbtest.Server(t)("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname LIKE 'infuse_template_%'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no template database")
	}
}

func waitOrFail(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the other subtest never got this far: run with -parallel 2 or more")
	}
}
