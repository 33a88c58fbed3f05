-- The sealing queue holds transactions, not entries. Every ledger writer inserted one seal_queue
-- row for each entry it wrote, beside the entry: a tenth of the time of a batch of 50,000
-- entries, and a third insert in each group of single entries. Now a trigger on the ledger token
-- queues the transaction itself, once, at commit with the check: the writers no longer touch the
-- queue, and no entry can be committed without being queued, whoever wrote it.
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

-- A transaction queues only itself, unsealed, and its position only moves on: an entry cannot be
-- queued to be sealed twice, nor a queued one passed over (ledger verify names an entry that is
-- neither sealed nor queued). Only the commit-time check inserts rows (holding the token, 0017)
-- and only the sealer changes or deletes them.
CREATE FUNCTION seal_queue_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND (NEW.txid <> pg_current_xact_id() OR NEW.sealed_to <> 0) THEN
        RAISE EXCEPTION 'a transaction queues only its own entries for sealing, none of them sealed' USING ERRCODE = 'IL002';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.operation_id <> OLD.operation_id OR NEW.txid <> OLD.txid OR NEW.sealed_to < OLD.sealed_to) THEN
        RAISE EXCEPTION 'the sealing queue only moves on: a queued transaction keeps its entries and its position' USING ERRCODE = 'IL002';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER seal_queue_guard BEFORE INSERT OR UPDATE ON seal_queue
    FOR EACH ROW EXECUTE FUNCTION seal_queue_guard();
CREATE TRIGGER seal_queue_token_held AFTER INSERT ON seal_queue
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_token_held();

-- Balances as before: the sealed ones plus the postings of the entries still waiting, reached
-- from the queue (a second's worth of transactions) through the indexes.
CREATE OR REPLACE VIEW balance_live AS
SELECT operation_id, account_id, period, sum(amount) AS amount, sum(postings) AS postings
  FROM (SELECT operation_id, account_id, period, amount, postings FROM balance
        UNION ALL
        SELECT q.operation_id, p.account_id, e.period, p.amount, 1
          FROM seal_queue q
         CROSS JOIN LATERAL (SELECT id, period FROM entry
                              WHERE txid = q.txid AND operation_id = q.operation_id AND id > q.sealed_to OFFSET 0) e
         CROSS JOIN LATERAL (SELECT account_id, amount FROM posting
                              WHERE operation_id = q.operation_id AND entry_id = e.id OFFSET 0) p) x
 GROUP BY operation_id, account_id, period;

DROP TABLE seal_queue_by_entry;

-- The transaction is queued by a second trigger on its token, deferred as the check is: when
-- both fire at commit, it fires first (triggers of one event fire in the order of their names),
-- while the token is still held (seal_queue_token_held), and the check that follows refuses the
-- whole if the rows do not pass. One row for each operation whose entries the transaction wrote,
-- found by skipping along entry_txid_ix (in practice it writes one operation's). A check run
-- early (SET CONSTRAINTS … IMMEDIATE), and again for writes after it, queues the transaction once.
CREATE FUNCTION ledger_txn_queue() RETURNS trigger LANGUAGE plpgsql
    SET enable_seqscan = off
AS $$
BEGIN
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
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledger_txn_awaits_seal AFTER INSERT ON ledger_txn
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_txn_queue();

SELECT pin_search_paths();
