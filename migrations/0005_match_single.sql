-- The single-entry path of match (match/single.go): a recording reads, under its officer's lock,
-- every time entry of the officer in the work date's calendar year, reversed ones included (the
-- next generation of the officer, date and activity; the live hours on the day, V3, and in the
-- year, V4). time_entry_live_uq holds the live entries only, so without this index those reads
-- scanned the table. Keyed by the officer and date, and carrying the columns the reads need, it
-- answers them from the index alone once the rows are all-visible.
CREATE INDEX time_entry_officer_day_ix ON time_entry (operation_id, officer_id, work_date, activity)
    INCLUDE (generation, hours, reversed_by);
