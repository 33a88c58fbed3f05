-- The token constraints keep only what a row alone can show: that it carries the id of the
-- transaction writing it (so the commit-time check finds it). Whether that transaction holds
-- its ledger token is now asked once per statement, of the token's row itself
-- (ledger_token_held, 0014; the row cannot be changed, 0015), which the setting the constraints
-- also compared could only claim. Comparing the setting cost every row a call and a conversion
-- to text: measured with COPY of 200,000 entries and their 400,000 postings, about 8% of the
-- time.
--
-- A row written without the token is now refused at the end of its statement (IL004, rule L1)
-- rather than as it is written (23514); a row naming another transaction still breaks
-- entry_token_ck or posting_token_ck. The constraints stay NOT VALID, for the reason 0013 gives.
ALTER TABLE entry DROP CONSTRAINT entry_token_ck;
ALTER TABLE entry ADD CONSTRAINT entry_token_ck CHECK (txid = pg_current_xact_id()) NOT VALID;
ALTER TABLE posting DROP CONSTRAINT posting_token_ck;
ALTER TABLE posting ADD CONSTRAINT posting_token_ck CHECK (txid = pg_current_xact_id()) NOT VALID;
