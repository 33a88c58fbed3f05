-- Closes a way round the commit-time check ("How writes are checked", 0001). The token's
-- trigger records that the transaction holds its token in the setting infuse.ledger_txn, and
-- entry_token_ck and posting_token_ck (0013) read that setting. But anyone can set a setting:
-- a transaction that set infuse.ledger_txn itself, without inserting its ledger_txn row, could
-- write entries and postings that no check ever saw, an unbalanced entry included.
--
-- The rows' constraints still read the setting, which is what keeps them cheap; what is added
-- is one look, per statement rather than per row, for the row that queues the check. A
-- statement that writes entries or postings is refused unless this transaction's ledger_txn row
-- is there when it ends. The row is inserted with its check queued and only the check deletes
-- it (clearing the setting with it); 0015 stops the row being changed, which would part the two.
--
-- An AFTER … FOR EACH STATEMENT trigger costs one call per statement, whatever the number of
-- rows, and queues no event per row; COPY still writes rows in batches, which only BEFORE row
-- triggers prevent. It fires for a statement that writes no row too, so such a statement needs
-- the token as well (every ledger writer takes it first). The refusal is IL004, as the token's
-- other refusals were before 0013 (rule L1).
CREATE FUNCTION ledger_token_held() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ledger_txn WHERE txid = pg_current_xact_id()) THEN
        RAISE EXCEPTION '% rows refused: written without the transaction''s ledger token', TG_TABLE_NAME USING ERRCODE = 'IL004';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER entry_token_held AFTER INSERT ON entry
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_token_held();
CREATE TRIGGER posting_token_held AFTER INSERT ON posting
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_token_held();
