-- Step 2 of "How writes are checked" (0001) as CHECK constraints instead of row triggers. The
-- rule is the same: an entry or posting is refused unless it carries the current transaction's
-- id and the transaction took its ledger token first. What changes is its price:
--   - a row trigger, even one whose WHEN clause never calls its function, costs the executor a
--     trigger call per row, about a tenth of what writing the row and its index entries costs;
--   - a table with a BEFORE INSERT row trigger is written by COPY one row at a time, where
--     without one COPY writes rows to the table in batches.
-- A CHECK constraint is evaluated per row too, but as a plain expression.
--
-- The constraints are NOT VALID, which is what they mean: they hold for the row being written,
-- never for rows already there, whose transaction has ended. It is also what keeps a backup
-- restorable: pg_dump creates a NOT VALID constraint after loading the rows, as it creates
-- triggers, so restoring the ledger's rows does not trip over them.
--
-- A refusal is now SQLSTATE 23514 (check_violation) naming entry_token_ck or posting_token_ck,
-- where the trigger raised IL004; internal/db reads both as rule L1.
DROP TRIGGER entry_token_guard ON entry;
DROP TRIGGER posting_token_guard ON posting;
DROP FUNCTION ledger_row_refused();

-- The setting holds the transaction's id from its token until its commit-time check has run;
-- unset (NULL) or cleared (''), no row matches it.
ALTER TABLE entry ADD CONSTRAINT entry_token_ck
    CHECK (txid = pg_current_xact_id() AND coalesce(current_setting('infuse.ledger_txn', true), '') = txid::text) NOT VALID;
ALTER TABLE posting ADD CONSTRAINT posting_token_ck
    CHECK (txid = pg_current_xact_id() AND coalesce(current_setting('infuse.ledger_txn', true), '') = txid::text) NOT VALID;
