-- The double-entry ledger: operations, booking periods, accounts, entries, postings, balances
-- and the tamper-evident chain. Every invariant the Go code keeps is kept here too, so that a
-- bug or a raw SQL session cannot corrupt the books (architecture.md, "Ledger invariants").
--
-- Custom SQLSTATEs raised by the triggers below (read by internal/db.Translate, never by text):
--   IL001  an entry whose postings are fewer than two or do not sum to zero   (rule L1)
--   IL002  UPDATE, DELETE or TRUNCATE of append-only ledger rows               (rule F1)
--   IL003  an entry booked into a locked or unknown period                    (rule F1)
--   IL004  postings added to an entry committed by another transaction, or
--          ledger rows written without the transaction's ledger token         (rule L1)
--   IL005  a period lock changed or undone                                     (rule F1)
--   IL006  a posting to an account outside the operation's chart               (rule L3)
--   IL007  a reversal of an entry that does not exist or is itself a reversal  (rule L6)
--
-- How writes are checked. Per-row triggers would cost more than the insert itself, and the
-- batch path posts tens of thousands of entries in one statement, so the checks are set-based
-- and run once per transaction, at commit:
--   1. A transaction that writes entries or postings first inserts its row in ledger_txn (the
--      ledger package does it in the same statement). That row queues one deferred check.
--   2. Every entry and posting carries txid, the id of the transaction that wrote it. A row
--      trigger, whose WHEN clause is evaluated without calling any function body, refuses a row
--      whose txid is not the current transaction's, or that was written before the
--      transaction's ledger_txn row.
--   3. At commit the check finds the transaction's rows by txid and refuses the whole
--      transaction if any posting joins an entry of another transaction, any entry has fewer
--      than two postings or does not sum to zero, any entry is booked into a locked or unknown
--      period, any posting names an account outside the operation's chart, or any reversal
--      names an entry that does not exist or is itself a reversal.
-- Locking a period takes a SHARE lock on entry (ledger.LockPeriod), so it waits for every
-- transaction writing entries, and every later writer's commit-time check sees the lock.
--
-- Every table carries operation_id and leads its keys with it, so that one database can hold
-- several ESF operations and a larger deployment can shard on it.

-- Codes and keys compare byte by byte (COLLATE "C"): they are identifiers, not prose, and a
-- locale-aware comparison would make every index on them several times slower.
CREATE DOMAIN code AS text COLLATE "C";

CREATE TABLE operation (
    id          code PRIMARY KEY CONSTRAINT operation_id_format CHECK (id ~ '^[a-z][a-z0-9_-]{1,31}$'),
    name        text NOT NULL,
    definition  jsonb NOT NULL,
    fingerprint text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE period (
    operation_id code NOT NULL REFERENCES operation (id),
    code         code NOT NULL,
    seq          integer NOT NULL,
    starts_on    date NOT NULL,
    ends_on      date NOT NULL,
    claimable    boolean NOT NULL,
    locked_at    timestamptz,
    locked_by    text,
    PRIMARY KEY (operation_id, code),
    CONSTRAINT period_seq_uq UNIQUE (operation_id, seq),
    CONSTRAINT period_dates_ck CHECK (starts_on <= ends_on),
    CONSTRAINT period_lock_ck CHECK ((locked_at IS NULL) = (locked_by IS NULL))
);

CREATE TABLE account (
    operation_id code NOT NULL REFERENCES operation (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    code         code NOT NULL,
    name         text NOT NULL,
    kind         text NOT NULL CONSTRAINT account_kind_ck
                     CHECK (kind IN ('asset', 'liability', 'income', 'expense', 'memo')),
    heading      text,
    authority    text,
    PRIMARY KEY (operation_id, id),
    CONSTRAINT account_code_uq UNIQUE (operation_id, code),
    CONSTRAINT account_id_uq UNIQUE (id)
);

CREATE SEQUENCE entry_id_seq AS bigint;

CREATE TABLE entry (
    operation_id    code NOT NULL,
    id              bigint NOT NULL,
    effective_date  date NOT NULL,
    period          code NOT NULL,
    description     text NOT NULL CONSTRAINT entry_description_ck CHECK (description <> ''),
    source          code NOT NULL CONSTRAINT entry_source_ck CHECK (source ~ '^[a-z][a-z_]*$'),
    reference       text NOT NULL,
    reverses        bigint,
    idempotency_key code,
    fingerprint     bytea,
    recorded_at     timestamptz NOT NULL,
    recorded_by     text NOT NULL CONSTRAINT entry_recorded_by_ck CHECK (recorded_by <> ''),
    txid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (operation_id, id),
    CONSTRAINT entry_fingerprint_ck CHECK ((idempotency_key IS NULL) = (fingerprint IS NULL)),
    CONSTRAINT entry_not_self_reversing_ck CHECK (reverses IS NULL OR reverses <> id)
);
-- Only primary keys lead with operation_id. A second index that did would let the planner, while
-- a table is young and its statistics say it is tiny, look an entry up by operation alone and
-- filter on id, a plan that stays cached and grows slower with every entry.
CREATE UNIQUE INDEX entry_idempotency_uq ON entry (idempotency_key, operation_id) WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX entry_reverses_uq ON entry (reverses, operation_id) WHERE reverses IS NOT NULL;
CREATE INDEX entry_period_ix ON entry (period, operation_id);
CREATE INDEX entry_txid_ix ON entry (txid);

CREATE TABLE posting (
    operation_id code NOT NULL,
    entry_id     bigint NOT NULL,
    line         smallint NOT NULL CONSTRAINT posting_line_ck CHECK (line > 0),
    account_id   bigint NOT NULL,
    amount       numeric(16, 2) NOT NULL CONSTRAINT posting_amount_nonzero_ck CHECK (amount <> 0),
    txid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (operation_id, entry_id, line)
);
CREATE INDEX posting_txid_ix ON posting (txid);

-- One row per transaction that writes to the ledger, deleted by its own commit-time check; see
-- "How writes are checked" above.
CREATE TABLE ledger_txn (
    txid xid8 PRIMARY KEY
);

-- balance holds, per account and booking period, the sum of the postings of the sealed entries.
-- The sealer moves it in the transaction that seals the entries, so writers never queue on a
-- shared row; balance_live adds the postings still waiting in seal_queue, so readers see every
-- committed entry. ledger verify recomputes both from the postings.
CREATE TABLE balance (
    operation_id code NOT NULL,
    account_id   bigint NOT NULL,
    period       code NOT NULL,
    amount       numeric(16, 2) NOT NULL,
    postings     bigint NOT NULL,
    PRIMARY KEY (operation_id, account_id, period),
    CONSTRAINT balance_account_fk FOREIGN KEY (operation_id, account_id) REFERENCES account (operation_id, id),
    CONSTRAINT balance_period_fk FOREIGN KEY (operation_id, period) REFERENCES period (operation_id, code)
);

-- The chain: entries are sealed asynchronously, in batches, in the order the sealer takes them
-- from seal_queue. link(n) = SHA-256(link(n-1) || digest(entry)), link(0) = 32 zero bytes.
CREATE TABLE seal_queue (
    operation_id code NOT NULL,
    entry_id     bigint NOT NULL,
    PRIMARY KEY (operation_id, entry_id)
);

CREATE TABLE seal (
    operation_id code NOT NULL,
    seq          bigint NOT NULL CONSTRAINT seal_seq_ck CHECK (seq > 0),
    entry_id     bigint NOT NULL,
    digest       bytea NOT NULL CONSTRAINT seal_digest_ck CHECK (length(digest) = 32),
    link         bytea NOT NULL CONSTRAINT seal_link_ck CHECK (length(link) = 32),
    sealed_at    timestamptz NOT NULL,
    PRIMARY KEY (operation_id, seq),
    CONSTRAINT seal_entry_uq UNIQUE (entry_id, operation_id),
    CONSTRAINT seal_entry_fk FOREIGN KEY (operation_id, entry_id) REFERENCES entry (operation_id, id)
);

-- Every account's balance per booking period, sealed or not. The waiting postings are reached
-- from seal_queue (a second's worth of entries) through the primary keys, never by scanning the
-- postings for an account.
CREATE VIEW balance_live AS
SELECT operation_id, account_id, period, sum(amount) AS amount, sum(postings) AS postings
  FROM (SELECT operation_id, account_id, period, amount, postings FROM balance
        UNION ALL
        SELECT q.operation_id, p.account_id, e.period, p.amount, 1
          FROM seal_queue q
         CROSS JOIN LATERAL (SELECT period FROM entry
                              WHERE operation_id = q.operation_id AND id = q.entry_id OFFSET 0) e
         CROSS JOIN LATERAL (SELECT account_id, amount FROM posting
                              WHERE operation_id = q.operation_id AND entry_id = q.entry_id OFFSET 0) p) x
 GROUP BY operation_id, account_id, period;

CREATE TABLE chain_head (
    operation_id code PRIMARY KEY REFERENCES operation (id),
    seq          bigint NOT NULL,
    link         bytea NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- L2 / F1: entries, postings and seals are append-only.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of % refused: the ledger is append-only; post a reversal or adjustment instead',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'IL002';
END $$;

CREATE TRIGGER entry_append_only BEFORE UPDATE OR DELETE ON entry
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER entry_no_truncate BEFORE TRUNCATE ON entry
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER posting_append_only BEFORE UPDATE OR DELETE ON posting
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER posting_no_truncate BEFORE TRUNCATE ON posting
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER seal_append_only BEFORE UPDATE OR DELETE ON seal
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER seal_no_truncate BEFORE TRUNCATE ON seal
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- F1: a period, once locked, stays locked; its identity and dates never change; it is never deleted.
CREATE FUNCTION period_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'period % cannot be deleted', OLD.code USING ERRCODE = 'IL005';
    END IF;
    IF NEW.operation_id <> OLD.operation_id OR NEW.code <> OLD.code OR NEW.seq <> OLD.seq
       OR NEW.starts_on <> OLD.starts_on OR NEW.ends_on <> OLD.ends_on OR NEW.claimable <> OLD.claimable THEN
        RAISE EXCEPTION 'period % cannot be redefined', OLD.code USING ERRCODE = 'IL005';
    END IF;
    IF OLD.locked_at IS NOT NULL AND (NEW.locked_at IS DISTINCT FROM OLD.locked_at
                                      OR NEW.locked_by IS DISTINCT FROM OLD.locked_by) THEN
        RAISE EXCEPTION 'period % is locked for ever', OLD.code USING ERRCODE = 'IL005';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER period_guard BEFORE UPDATE OR DELETE ON period
    FOR EACH ROW EXECUTE FUNCTION period_guard();
CREATE TRIGGER period_no_truncate BEFORE TRUNCATE ON period
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- Step 1 of "How writes are checked": the ledger_txn row remembers, in a transaction-local
-- setting, that this transaction holds its token.
CREATE FUNCTION ledger_txn_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.txid <> pg_current_xact_id() THEN
        RAISE EXCEPTION 'a ledger token names transaction %, not this one', NEW.txid USING ERRCODE = 'IL004';
    END IF;
    PERFORM set_config('infuse.ledger_txn', NEW.txid::text, true);
    RETURN NEW;
END $$;

CREATE TRIGGER ledger_txn_token BEFORE INSERT ON ledger_txn
    FOR EACH ROW EXECUTE FUNCTION ledger_txn_token();

-- Step 2: refuse rows of another transaction, or written without this transaction's token.
CREATE FUNCTION ledger_row_refused() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% row refused: ledger rows are written by the ledger package, with the transaction''s token (txid %)',
        TG_TABLE_NAME, NEW.txid USING ERRCODE = 'IL004';
END $$;

CREATE TRIGGER entry_token_guard BEFORE INSERT ON entry FOR EACH ROW
    WHEN (NEW.txid IS DISTINCT FROM pg_current_xact_id()
          OR current_setting('infuse.ledger_txn', true) IS DISTINCT FROM NEW.txid::text)
    EXECUTE FUNCTION ledger_row_refused();
CREATE TRIGGER posting_token_guard BEFORE INSERT ON posting FOR EACH ROW
    WHEN (NEW.txid IS DISTINCT FROM pg_current_xact_id()
          OR current_setting('infuse.ledger_txn', true) IS DISTINCT FROM NEW.txid::text)
    EXECUTE FUNCTION ledger_row_refused();

-- Step 3, at commit: every rule about the transaction's entries and postings, in one query.
-- The query comes in two shapes, which find the same problems. Each has its plan pinned by the
-- function's settings, because a plan chosen from statistics made while the tables were young (or
-- never analysed) can scan them whole and make every commit slower as the ledger grows:
--   ledger_check_few   reaches the transaction's rows through the txid indexes with nested loops:
--                      right for the one entry of most transactions;
--   ledger_check_many  hashes the transaction's rows: right for a batch of thousands, which the
--                      ledger package announces with the transaction-local setting
--                      infuse.ledger_bulk = 'on'. The setting chooses only the plan, never whether
--                      the check runs.
CREATE FUNCTION ledger_check_few(t xid8) RETURNS TABLE (problem_state text, problem_entry bigint, problem_message text) LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_bitmapscan = off
AS $$
BEGIN
    RETURN QUERY SELECT * FROM (
        SELECT 'IL004'::text, p.entry_id, format('postings refused: entry %s was committed earlier and cannot gain postings', p.entry_id)
          FROM posting p LEFT JOIN entry e ON e.operation_id = p.operation_id AND e.id = p.entry_id
         WHERE p.txid = t AND (e.id IS NULL OR e.txid <> t)
        UNION ALL
        SELECT 'IL001', e.id, format('entry %s refused: %s postings summing to %s (an entry needs two or more postings summing to zero)',
               e.id, coalesce(x.n, 0), coalesce(x.s, 0))
          FROM entry e LEFT JOIN LATERAL (
                 SELECT count(*) AS n, sum(p.amount) AS s FROM posting p
                  WHERE p.operation_id = e.operation_id AND p.entry_id = e.id) x ON true
         WHERE e.txid = t AND (coalesce(x.n, 0) < 2 OR x.s <> 0)
        UNION ALL
        SELECT 'IL003', e.id, format('entry %s refused: period %s is locked or not a period of operation %s', e.id, e.period, e.operation_id)
          FROM entry e LEFT JOIN period p ON p.operation_id = e.operation_id AND p.code = e.period
         WHERE e.txid = t AND (p.code IS NULL OR p.locked_at IS NOT NULL)
        UNION ALL
        SELECT 'IL006', p.entry_id, format('entry %s refused: line %s names account %s, which is not in the chart of operation %s',
               p.entry_id, p.line, p.account_id, p.operation_id)
          FROM posting p LEFT JOIN account a ON a.operation_id = p.operation_id AND a.id = p.account_id
         WHERE p.txid = t AND a.id IS NULL
        UNION ALL
        SELECT 'IL007', e.id, format('entry %s refused: it reverses entry %s, which does not exist or is itself a reversal', e.id, e.reverses)
          FROM (SELECT operation_id, id, reverses FROM entry WHERE txid = t OFFSET 0) e
          LEFT JOIN entry r ON r.operation_id = e.operation_id AND r.id = e.reverses
         WHERE e.reverses IS NOT NULL AND (r.id IS NULL OR r.reverses IS NOT NULL)
    ) problems LIMIT 1;
END $$;

CREATE FUNCTION ledger_check_many(t xid8) RETURNS TABLE (problem_state text, problem_entry bigint, problem_message text) LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_nestloop = off SET enable_mergejoin = off
AS $$
BEGIN
    RETURN QUERY SELECT * FROM (
        SELECT 'IL004'::text, p.entry_id, format('postings refused: entry %s was committed earlier and cannot gain postings', p.entry_id)
          FROM posting p
         WHERE p.txid = t AND NOT EXISTS (SELECT 1 FROM entry e
                                           WHERE e.txid = t AND e.operation_id = p.operation_id AND e.id = p.entry_id)
        UNION ALL
        SELECT 'IL001', e.id, format('entry %s refused: %s postings summing to %s (an entry needs two or more postings summing to zero)',
               e.id, coalesce(x.n, 0), coalesce(x.s, 0))
          FROM entry e LEFT JOIN (
                 SELECT p.operation_id, p.entry_id, count(*) AS n, sum(p.amount) AS s
                   FROM posting p WHERE p.txid = t GROUP BY p.operation_id, p.entry_id) x
            ON x.operation_id = e.operation_id AND x.entry_id = e.id
         WHERE e.txid = t AND (coalesce(x.n, 0) < 2 OR x.s <> 0)
        UNION ALL
        SELECT 'IL003', e.id, format('entry %s refused: period %s is locked or not a period of operation %s', e.id, e.period, e.operation_id)
          FROM entry e LEFT JOIN period p ON p.operation_id = e.operation_id AND p.code = e.period
         WHERE e.txid = t AND (p.code IS NULL OR p.locked_at IS NOT NULL)
        UNION ALL
        SELECT 'IL006', p.entry_id, format('entry %s refused: line %s names account %s, which is not in the chart of operation %s',
               p.entry_id, p.line, p.account_id, p.operation_id)
          FROM posting p LEFT JOIN account a ON a.operation_id = p.operation_id AND a.id = p.account_id
         WHERE p.txid = t AND a.id IS NULL
        UNION ALL
        -- Reversals are few: each is looked up by key (OFFSET 0 keeps the lookup a subplan, not
        -- a hash of the whole entry table).
        SELECT 'IL007', e.id, format('entry %s refused: it reverses entry %s, which does not exist or is itself a reversal', e.id, e.reverses)
          FROM entry e
         WHERE e.txid = t AND e.reverses IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM entry r WHERE r.operation_id = e.operation_id AND r.id = e.reverses
                                                   AND r.reverses IS NULL OFFSET 0)
    ) problems LIMIT 1;
END $$;

CREATE FUNCTION ledger_txn_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    IF current_setting('infuse.ledger_bulk', true) = 'on' THEN
        SELECT * INTO bad FROM ledger_check_many(NEW.txid);
    ELSE
        SELECT * INTO bad FROM ledger_check_few(NEW.txid);
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION '%', bad.problem_message USING ERRCODE = bad.problem_state, DETAIL = bad.problem_entry::text;
    END IF;
    -- The token has done its work; it never outlives its transaction.
    DELETE FROM ledger_txn WHERE txid = NEW.txid;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledger_txn_check AFTER INSERT ON ledger_txn
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_txn_check();

-- balance rows are never deleted.
CREATE TRIGGER balance_no_delete BEFORE DELETE ON balance
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER balance_no_truncate BEFORE TRUNCATE ON balance
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
