-- The single-entry path no longer reads an officer's year from time_entry (officer_year holds
-- its live hours, 0007), only the day: the live entries through time_entry_live_uq and the
-- reversed ones (for the next generation) through this index, which holds only the few
-- reversed entries. So time_entry_officer_day_ix, a second index of every entry that each
-- insert (an import's million rows among them) had to maintain, goes.
CREATE INDEX time_entry_reversed_ix ON time_entry (operation_id, officer_id, work_date, activity)
    WHERE reversed_by IS NOT NULL;
DROP INDEX time_entry_officer_day_ix;
