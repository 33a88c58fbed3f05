-- The double-entry ledger: operations, booking periods, accounts, entries, postings, balances
-- and the tamper-evident chain. Every invariant the Go code keeps is kept here too, so that a
-- bug or a raw SQL session cannot corrupt the books (architecture.md, "Ledger invariants").
--
-- Custom SQLSTATEs raised by the triggers below (read by internal/db.Translate, never by text):
--   IL001  an entry whose postings are fewer than two or do not sum to zero   (rule L1)
--   IL002  UPDATE, DELETE or TRUNCATE of append-only ledger rows               (rule F1)
--   IL003  an entry booked into a locked period                               (rule F1)
--   IL004  postings added to an entry committed by another transaction        (rule L1)
--   IL005  a period lock changed or undone                                     (rule F1)
--
-- Every table carries operation_id and leads its keys with it, so that one database can hold
-- several ESF operations and a larger deployment can shard on it.

CREATE TABLE operation (
    id          text PRIMARY KEY CONSTRAINT operation_id_format CHECK (id ~ '^[a-z][a-z0-9_-]{1,31}$'),
    name        text NOT NULL,
    definition  jsonb NOT NULL,
    fingerprint text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE period (
    operation_id text NOT NULL REFERENCES operation (id),
    code         text NOT NULL,
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
    operation_id text NOT NULL REFERENCES operation (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    code         text NOT NULL,
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
    operation_id    text NOT NULL,
    id              bigint NOT NULL,
    effective_date  date NOT NULL,
    period          text NOT NULL,
    description     text NOT NULL CONSTRAINT entry_description_ck CHECK (description <> ''),
    source          text NOT NULL CONSTRAINT entry_source_ck CHECK (source ~ '^[a-z][a-z_]*$'),
    reference       text NOT NULL,
    reverses        bigint,
    idempotency_key text,
    fingerprint     bytea,
    recorded_at     timestamptz NOT NULL,
    recorded_by     text NOT NULL CONSTRAINT entry_recorded_by_ck CHECK (recorded_by <> ''),
    PRIMARY KEY (operation_id, id),
    CONSTRAINT entry_period_fk FOREIGN KEY (operation_id, period) REFERENCES period (operation_id, code),
    CONSTRAINT entry_reverses_fk FOREIGN KEY (operation_id, reverses) REFERENCES entry (operation_id, id),
    CONSTRAINT entry_idempotency_uq UNIQUE (operation_id, idempotency_key),
    CONSTRAINT entry_reverses_uq UNIQUE (operation_id, reverses),
    CONSTRAINT entry_fingerprint_ck CHECK ((idempotency_key IS NULL) = (fingerprint IS NULL)),
    CONSTRAINT entry_not_self_reversing_ck CHECK (reverses IS NULL OR reverses <> id)
);
CREATE INDEX entry_period_ix ON entry (operation_id, period);

CREATE TABLE posting (
    operation_id text NOT NULL,
    entry_id     bigint NOT NULL,
    line         smallint NOT NULL CONSTRAINT posting_line_ck CHECK (line > 0),
    account_id   bigint NOT NULL,
    amount       numeric(16, 2) NOT NULL CONSTRAINT posting_amount_nonzero_ck CHECK (amount <> 0),
    PRIMARY KEY (operation_id, entry_id, line),
    CONSTRAINT posting_entry_fk FOREIGN KEY (operation_id, entry_id) REFERENCES entry (operation_id, id),
    CONSTRAINT posting_account_fk FOREIGN KEY (operation_id, account_id) REFERENCES account (operation_id, id)
);
CREATE INDEX posting_account_ix ON posting (operation_id, account_id, entry_id);

-- balance holds, per account and booking period, the sum of the postings. Only the trigger on
-- posting writes it, so it cannot drift from the postings; ledger verify recomputes it anyway.
CREATE TABLE balance (
    operation_id text NOT NULL,
    account_id   bigint NOT NULL,
    period       text NOT NULL,
    amount       numeric(16, 2) NOT NULL,
    postings     bigint NOT NULL,
    PRIMARY KEY (operation_id, account_id, period),
    CONSTRAINT balance_account_fk FOREIGN KEY (operation_id, account_id) REFERENCES account (operation_id, id),
    CONSTRAINT balance_period_fk FOREIGN KEY (operation_id, period) REFERENCES period (operation_id, code)
);

-- The chain: entries are sealed asynchronously, in batches, in the order the sealer takes them
-- from seal_queue. link(n) = SHA-256(link(n-1) || digest(entry)), link(0) = 32 zero bytes.
CREATE TABLE seal_queue (
    operation_id text NOT NULL,
    entry_id     bigint NOT NULL,
    PRIMARY KEY (operation_id, entry_id)
);

CREATE TABLE seal (
    operation_id text NOT NULL,
    seq          bigint NOT NULL CONSTRAINT seal_seq_ck CHECK (seq > 0),
    entry_id     bigint NOT NULL,
    digest       bytea NOT NULL CONSTRAINT seal_digest_ck CHECK (length(digest) = 32),
    link         bytea NOT NULL CONSTRAINT seal_link_ck CHECK (length(link) = 32),
    sealed_at    timestamptz NOT NULL,
    PRIMARY KEY (operation_id, seq),
    CONSTRAINT seal_entry_uq UNIQUE (operation_id, entry_id),
    CONSTRAINT seal_entry_fk FOREIGN KEY (operation_id, entry_id) REFERENCES entry (operation_id, id)
);

CREATE TABLE chain_head (
    operation_id text PRIMARY KEY REFERENCES operation (id),
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

-- F1: no entry may be booked into a locked period. The periods are share-locked so that a
-- concurrent submission (which locks the period with an UPDATE) waits for this transaction,
-- or this one sees the lock. Also queues the new entries for sealing (L5).
CREATE FUNCTION entry_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    PERFORM 1 FROM period p
     WHERE (p.operation_id, p.code) IN (SELECT DISTINCT operation_id, period FROM new_entries)
     ORDER BY p.operation_id, p.seq
       FOR SHARE;
    SELECT n.id, n.period INTO bad
      FROM new_entries n JOIN period p ON p.operation_id = n.operation_id AND p.code = n.period
     WHERE p.locked_at IS NOT NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'entry % refused: period % is locked', bad.id, bad.period
            USING ERRCODE = 'IL003', DETAIL = bad.period;
    END IF;
    INSERT INTO seal_queue (operation_id, entry_id) SELECT operation_id, id FROM new_entries;
    RETURN NULL;
END $$;

CREATE TRIGGER entry_after_insert AFTER INSERT ON entry
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION entry_after_insert();

-- L1, checked at commit: an entry has at least two postings and they sum to zero.
CREATE FUNCTION entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    s numeric;
BEGIN
    SELECT count(*), coalesce(sum(amount), 0) INTO n, s
      FROM posting WHERE operation_id = NEW.operation_id AND entry_id = NEW.id;
    IF n < 2 OR s <> 0 THEN
        RAISE EXCEPTION 'entry % refused: % postings summing to % (an entry needs two or more postings summing to zero)',
            NEW.id, n, s USING ERRCODE = 'IL001', DETAIL = NEW.id::text;
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER entry_balanced AFTER INSERT ON entry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION entry_balanced();

-- L1: postings join only an entry written by the same transaction (so a committed, checked
-- entry can never be unbalanced later); and the balances follow the postings.
CREATE FUNCTION posting_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    SELECT n.entry_id INTO bad
      FROM new_postings n JOIN entry e ON e.operation_id = n.operation_id AND e.id = n.entry_id
     WHERE e.xmin <> pg_current_xact_id()::xid
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'postings refused: entry % was committed earlier and cannot gain postings', bad
            USING ERRCODE = 'IL004', DETAIL = bad::text;
    END IF;
    INSERT INTO balance AS b (operation_id, account_id, period, amount, postings)
    SELECT n.operation_id, n.account_id, e.period, sum(n.amount), count(*)
      FROM new_postings n JOIN entry e ON e.operation_id = n.operation_id AND e.id = n.entry_id
     GROUP BY n.operation_id, n.account_id, e.period
     ORDER BY n.operation_id, n.account_id, e.period
    ON CONFLICT (operation_id, account_id, period)
    DO UPDATE SET amount = b.amount + excluded.amount, postings = b.postings + excluded.postings;
    RETURN NULL;
END $$;

CREATE TRIGGER posting_after_insert AFTER INSERT ON posting
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION posting_after_insert();

-- balance rows are written only by the trigger above; none is ever deleted.
CREATE TRIGGER balance_no_delete BEFORE DELETE ON balance
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER balance_no_truncate BEFORE TRUNCATE ON balance
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
