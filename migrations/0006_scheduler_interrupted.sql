-- A run whose process died (kill -9, power loss) is marked 'interrupted' by the next run that
-- takes the job's lock, so that no run stays 'running' for ever.
ALTER TABLE scheduler_run DROP CONSTRAINT scheduler_run_outcome_ck;
ALTER TABLE scheduler_run ADD CONSTRAINT scheduler_run_outcome_ck
    CHECK (outcome IN ('running', 'ok', 'failed', 'panicked', 'skipped', 'interrupted'));
