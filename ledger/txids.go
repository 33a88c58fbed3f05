package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
)

// The commit-time check finds a transaction's rows by their txid, the id of the transaction that
// wrote them ("How writes are checked", migrations/0001). That holds while a database lives in
// one cluster, whose transaction ids only grow. A backup restored into another cluster (a new
// machine, a new data directory) brings rows whose txids the new cluster hands out again: a new
// transaction given the id of an old one would be checked with the old one's rows, and refused
// (an entry in a period locked long ago, say), or worse, checked with rows that are not its own.
//
// So before the ledger writes, the cluster's next transaction id must be above every txid the
// ledger holds. catchUp makes it so by spending transaction ids, each in a transaction that
// does nothing else; it finds the gap with two index lookups, and there is none unless the
// database was restored into a cluster younger than the one it was backed up from.

// catchUpChunk is how many transaction ids catchUp spends per statement (about seven seconds on
// the two-core dev VM), between reports of progress.
const catchUpChunk = 1_000_000

// catchUpMax is the largest gap catchUp spends its way across (about ten minutes). Past it
// (ids of a later epoch than the cluster's always are), moving the cluster's counter with
// pg_resetwal while it is stopped is the way, and catchUp refuses, saying so (RuleTxids).
const catchUpMax = 100_000_000

// RuleTxids is the rule a ledger names when its rows carry transaction ids too far ahead of its
// cluster's to spend its way past them, as after a restore into a much younger cluster.
const RuleTxids = "B4"

// txidGap returns how many transaction ids the cluster must hand out before its next one is
// above every txid of the ledger's rows (0 when it already is), and the highest such txid.
func txidGap(ctx context.Context, q db.Querier) (gap int64, highest string, err error) {
	var next, high int64
	err = q.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
		coalesce(greatest((SELECT max(txid) FROM entry), (SELECT max(txid) FROM posting))::text::bigint, 0)`).Scan(&next, &high)
	if err != nil || high < next {
		return 0, "", err
	}
	return high - next + 1, strconv.FormatInt(high, 10), nil
}

// catchUp spends transaction ids until the cluster's next one is above every txid the ledger
// holds (see above), logging its progress; it does nothing when there is no gap.
func catchUp(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	gap, _, err := txidGap(ctx, pool)
	if err != nil || gap == 0 {
		return db.Translate("ledger.catchUp", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return db.Translate("ledger.catchUp", err)
	}
	defer conn.Release()
	// Processes started together spend the gap once: the others wait, then find none.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, catchUpLock); err != nil {
		return db.Translate("ledger.catchUp", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, catchUpLock) //nolint:errcheck // released with the session anyway
	gap, highest, err := txidGap(ctx, conn)                                                   // on the locked connection: the pool may have no other
	if err != nil || gap == 0 {
		return db.Translate("ledger.catchUp", err)
	}
	if gap > catchUpMax {
		return apperr.New(apperr.Conflict, RuleTxids,
			"the ledger's rows carry transaction ids up to %s, %d ahead of this PostgreSQL cluster's: too many to spend. Stop the server and run pg_resetwal --epoch=%d on its data directory, then start it again",
			highest, gap, epochAbove(highest))
	}
	log.Warn("the ledger's rows carry transaction ids ahead of this PostgreSQL cluster's, as after a restore into another cluster: spending ids until new transactions are past them",
		"ids", gap, "highest", highest)
	// Each id is spent by a transaction of its own that commits at once; nothing it writes needs
	// to reach the disk before the next begins.
	if _, err := conn.Exec(ctx, `SET synchronous_commit = off`); err != nil {
		return db.Translate("ledger.catchUp", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET synchronous_commit`) //nolint:errcheck // the session ends with the pool
	for done := int64(0); done < gap; {
		n := min(gap-done, catchUpChunk)
		// Transaction control in a DO block needs the simple protocol, outside any transaction.
		sql := fmt.Sprintf(`DO $$ BEGIN FOR i IN 1..%d LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$`, n)
		if _, err := conn.Conn().PgConn().Exec(ctx, sql).ReadAll(); err != nil {
			return db.Translate("ledger.catchUp", err)
		}
		done += n
		log.Info("transaction ids spent", "done", done, "of", gap)
	}
	return nil
}

// catchUpLock is the advisory lock catchUp holds while it spends ids.
const catchUpLock int64 = 7_345_200_123

// epochAbove returns the transaction id epoch above that of the txid highest (decimal xid8).
func epochAbove(highest string) int64 {
	h, _ := strconv.ParseInt(highest, 10, 64)
	return h>>32 + 1
}
