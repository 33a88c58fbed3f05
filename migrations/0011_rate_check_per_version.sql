-- V6 / R5.3 (0002, time_entry_rate_check): the statement's new rows are checked once per
-- officer and rate version they name rather than once per row. An import of a million rows names
-- a few thousand versions; the row-by-row lookup cost it more than two seconds.
CREATE OR REPLACE FUNCTION time_entry_rate_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.id, n.officer_id, n.rate_valid_from INTO bad
      FROM (SELECT operation_id, officer_id, rate_valid_from, min(id) AS id FROM new_rows GROUP BY 1, 2, 3) n
     WHERE NOT EXISTS (SELECT 1 FROM rate_version v WHERE v.operation_id = n.operation_id
                          AND v.officer_id = n.officer_id AND v.valid_from = n.rate_valid_from)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'time entry % refused: officer % has no rate version from %', bad.id, bad.officer_id, bad.rate_valid_from
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'time_entry_rate_fk';
    END IF;
    RETURN NULL;
END $$;
