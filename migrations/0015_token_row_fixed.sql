-- A ledger token's row cannot be changed. ledger_token_held (0014) takes this transaction's
-- ledger_txn row as proof that its commit-time check is still to run, which holds only while
-- the row stays what was inserted: an UPDATE could move the row to another transaction's id,
-- let the check run (SET CONSTRAINTS … IMMEDIATE) and delete nothing, then move the row back,
-- now without a check queued, and the rows written after it would never be checked. No writer
-- updates a token, so any UPDATE is refused (IL004, rule L1).
CREATE FUNCTION ledger_txn_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a ledger token cannot be changed' USING ERRCODE = 'IL004';
END $$;

CREATE TRIGGER ledger_txn_fixed BEFORE UPDATE ON ledger_txn
    FOR EACH ROW EXECUTE FUNCTION ledger_txn_fixed();
