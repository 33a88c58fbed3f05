-- The sealing queue holds transactions, not entries. Every ledger writer inserted one seal_queue
-- row for each entry it wrote, beside the entry: a tenth of the time of a batch of 50,000
-- entries, and a third insert in each group of single entries. Now the commit-time check queues
-- the transaction itself, once, with what it checked: the writers no longer touch the queue, and
-- no entry can be committed without being queued, whoever wrote it.
--
-- A queued transaction's entries are found through entry_txid_ix, which now orders them by
-- operation and id too, so that the sealer takes them in id order and resumes where it left
-- off (sealed_to: every entry of the transaction with an id up to it is sealed). A transaction
-- of a million entries is sealed in many runs, each reading only the entries it seals.
DROP INDEX entry_txid_ix;
CREATE INDEX entry_txid_ix ON entry (txid, operation_id, id);

ALTER TABLE seal_queue RENAME TO seal_queue_by_entry;
ALTER INDEX seal_queue_pkey RENAME TO seal_queue_by_entry_pkey;

CREATE TABLE seal_queue (
    operation_id code NOT NULL,
    txid         xid8 NOT NULL,
    sealed_to    bigint NOT NULL DEFAULT 0 CONSTRAINT seal_queue_sealed_to_ck CHECK (sealed_to >= 0),
    PRIMARY KEY (operation_id, txid)
);

-- The entries waiting until now become their transactions. The old sealer took the queue in id
-- order, so a transaction's entries still queued follow those it sealed: its sealing resumes
-- after the last entry before its first one queued.
INSERT INTO seal_queue (operation_id, txid, sealed_to)
SELECT e.operation_id, e.txid, min(e.id) - 1
  FROM seal_queue_by_entry q JOIN entry e ON e.operation_id = q.operation_id AND e.id = q.entry_id
 GROUP BY e.operation_id, e.txid;

-- The entries waiting to be sealed: those of each queued transaction after its position.
CREATE VIEW seal_waiting AS
SELECT q.operation_id, q.txid, e.id AS entry_id, e.period
  FROM seal_queue q
 CROSS JOIN LATERAL (SELECT id, period FROM entry
                      WHERE txid = q.txid AND operation_id = q.operation_id AND id > q.sealed_to OFFSET 0) e;

-- A transaction queues only itself, with none of its entries sealed; its position moves on only
-- past entries that are sealed; and it leaves the queue only once none waits. So an entry is
-- never queued to be sealed twice, nor passed over (ledger verify names an entry that is
-- neither sealed nor waiting). Only the commit-time check inserts rows (holding the token, 0017)
-- and only the sealer changes or deletes them.
CREATE FUNCTION seal_queue_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND (NEW.txid <> pg_current_xact_id() OR NEW.sealed_to <> 0) THEN
        RAISE EXCEPTION 'a transaction queues only its own entries for sealing, none of them sealed' USING ERRCODE = 'IL002';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.operation_id <> OLD.operation_id OR NEW.txid <> OLD.txid OR NEW.sealed_to < OLD.sealed_to
        OR EXISTS (SELECT 1 FROM entry e WHERE e.txid = OLD.txid AND e.operation_id = OLD.operation_id
                                           AND e.id > OLD.sealed_to AND e.id <= NEW.sealed_to
                                           AND NOT EXISTS (SELECT 1 FROM seal s WHERE s.entry_id = e.id AND s.operation_id = e.operation_id))) THEN
        RAISE EXCEPTION 'a queued transaction''s position moves on only past entries sealed' USING ERRCODE = 'IL002';
    END IF;
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM seal_waiting w WHERE w.operation_id = OLD.operation_id AND w.txid = OLD.txid) THEN
        RAISE EXCEPTION 'a transaction leaves the sealing queue only once its entries are sealed' USING ERRCODE = 'IL002';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER seal_queue_guard BEFORE INSERT OR UPDATE OR DELETE ON seal_queue
    FOR EACH ROW EXECUTE FUNCTION seal_queue_guard();
CREATE TRIGGER seal_queue_no_truncate BEFORE TRUNCATE ON seal_queue
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER seal_queue_token_held AFTER INSERT ON seal_queue
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_token_held();

-- Balances as before: the sealed ones plus the postings of the entries still waiting, reached
-- from the queue (a second's worth of transactions) through the indexes.
CREATE OR REPLACE VIEW balance_live AS
SELECT operation_id, account_id, period, sum(amount) AS amount, sum(postings) AS postings
  FROM (SELECT operation_id, account_id, period, amount, postings FROM balance
        UNION ALL
        SELECT w.operation_id, p.account_id, w.period, p.amount, 1
          FROM seal_waiting w
         CROSS JOIN LATERAL (SELECT account_id, amount FROM posting
                              WHERE operation_id = w.operation_id AND entry_id = w.entry_id OFFSET 0) p) x
 GROUP BY operation_id, account_id, period;

DROP TABLE seal_queue_by_entry;

-- The commit-time check of 0018, which now queues the transaction for sealing once its rows
-- pass. Queued by the check itself, every check queues what it checked, however its constraint
-- was set (SET CONSTRAINTS … IMMEDIATE names it, or ALL).
CREATE OR REPLACE FUNCTION ledger_txn_check() RETURNS trigger LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_bitmapscan = off
AS $$
DECLARE
    bad record;
BEGIN
    IF current_setting('infuse.ledger_bulk', true) = 'on' THEN
        SELECT * INTO bad FROM ledger_check_many(NEW.txid);
    ELSE
        SELECT b.state AS problem_state, b.id AS problem_entry,
               coalesce(b.message, ledger_problem(b.state, b.id, b.operation_id, b.period, b.n, b.s, b.bad_line)) AS problem_message
          INTO bad FROM (
            SELECT 'IL004' AS state, p.entry_id AS id, p.operation_id, NULL AS period, NULL::bigint AS n, NULL::numeric AS s,
                   NULL::smallint AS bad_line, NULL AS message
              FROM posting p
             WHERE p.txid = NEW.txid
               AND NOT EXISTS (SELECT 1 FROM entry e WHERE e.operation_id = p.operation_id AND e.id = p.entry_id AND e.txid = NEW.txid)
            UNION ALL
            SELECT CASE WHEN coalesce(p.n, 0) < 2 OR p.s <> 0 THEN 'IL001'
                        WHEN pe.code IS NULL OR pe.locked_at IS NOT NULL THEN 'IL003'
                        WHEN e.effective_date NOT BETWEEN pe.books_from AND pe.books_to THEN 'IL009'
                        ELSE 'IL006' END,
                   e.id, e.operation_id, e.period, p.n, p.s, p.bad_line, NULL
              FROM entry e
              CROSS JOIN LATERAL (
                  SELECT count(*) AS n, sum(p.amount) AS s, min(p.line) FILTER (WHERE a.id IS NULL) AS bad_line
                    FROM posting p LEFT JOIN account a ON a.operation_id = p.operation_id AND a.id = p.account_id
                   WHERE p.operation_id = e.operation_id AND p.entry_id = e.id) p
              LEFT JOIN ledger_booking pe ON pe.operation_id = e.operation_id AND pe.code = e.period
             WHERE e.txid = NEW.txid
               AND (p.n < 2 OR p.s <> 0 OR p.s IS NULL OR pe.code IS NULL OR pe.locked_at IS NOT NULL
                    OR e.effective_date NOT BETWEEN pe.books_from AND pe.books_to OR p.bad_line IS NOT NULL)
            UNION ALL
            SELECT 'IL007', e.id, e.operation_id, e.period, NULL, NULL, NULL,
                   format('entry %s refused: it reverses entry %s, which does not exist or is itself a reversal', e.id, e.reverses)
              FROM (SELECT operation_id, id, period, reverses FROM entry WHERE txid = NEW.txid OFFSET 0) e
              LEFT JOIN entry r ON r.operation_id = e.operation_id AND r.id = e.reverses
             WHERE e.reverses IS NOT NULL AND (r.id IS NULL OR r.reverses IS NOT NULL)
            LIMIT 1
        ) b;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION '%', bad.problem_message USING ERRCODE = bad.problem_state, DETAIL = bad.problem_entry::text;
    END IF;
    -- What passed is queued for sealing, while the token is still held (seal_queue_token_held):
    -- one row for each operation whose entries the transaction wrote, found by skipping along
    -- entry_txid_ix (in practice it writes one operation's). A transaction checked early (SET
    -- CONSTRAINTS … IMMEDIATE) and again for later writes is queued once.
    WITH RECURSIVE ops AS (
        (SELECT operation_id FROM entry WHERE txid = NEW.txid ORDER BY operation_id LIMIT 1)
        UNION ALL
        SELECT (SELECT e.operation_id FROM entry e WHERE e.txid = NEW.txid AND e.operation_id > ops.operation_id
                 ORDER BY e.operation_id LIMIT 1)
          FROM ops WHERE ops.operation_id IS NOT NULL
    )
    INSERT INTO seal_queue (operation_id, txid)
    SELECT operation_id, NEW.txid FROM ops WHERE operation_id IS NOT NULL
    ON CONFLICT DO NOTHING;
    -- The token has done its work; it never outlives its transaction. Nor does the setting
    -- that says it is held: should the check run before the commit (SET CONSTRAINTS …
    -- IMMEDIATE), later ledger writes must take a new token, and so queue a new check.
    DELETE FROM ledger_txn WHERE txid = NEW.txid;
    PERFORM set_config('infuse.ledger_txn', '', true);
    RETURN NULL;
END $$;

SELECT pin_search_paths();
