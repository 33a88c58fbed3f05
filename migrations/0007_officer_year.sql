-- Each officer's live (unreversed) hours in each calendar year, for V4: a recording checks the
-- annual maximum against one row instead of summing the year's entries. Triggers on time_entry
-- keep it, whatever the path that writes (an import, a single recording, a correction), and
-- every such path holds the officer's row lock, so two writers never move one row at once.
-- It is written only by those triggers.
CREATE TABLE officer_year (
    operation_id code NOT NULL,
    officer_id   bigint NOT NULL,
    year         integer NOT NULL,
    live_hours   numeric(10, 2) NOT NULL CONSTRAINT officer_year_hours_ck CHECK (live_hours >= 0),
    PRIMARY KEY (operation_id, officer_id, year),
    CONSTRAINT officer_year_officer_fk FOREIGN KEY (operation_id, officer_id) REFERENCES officer (operation_id, id)
);

INSERT INTO officer_year (operation_id, officer_id, year, live_hours)
SELECT operation_id, officer_id, extract(year FROM work_date)::integer, sum(hours)
  FROM time_entry WHERE reversed_by IS NULL
 GROUP BY 1, 2, 3;

CREATE FUNCTION officer_year_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO officer_year (operation_id, officer_id, year, live_hours)
    SELECT operation_id, officer_id, extract(year FROM work_date)::integer, sum(hours)
      FROM new_rows WHERE reversed_by IS NULL
     GROUP BY 1, 2, 3
    ON CONFLICT (operation_id, officer_id, year) DO UPDATE SET live_hours = officer_year.live_hours + EXCLUDED.live_hours;
    RETURN NULL;
END $$;

-- time_entry_guard lets an UPDATE do one thing only: reverse an entry (set reversed_by once).
CREATE FUNCTION officer_year_reverse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE officer_year y SET live_hours = y.live_hours - r.hours
      FROM (SELECT n.operation_id, n.officer_id, extract(year FROM n.work_date)::integer AS year, sum(n.hours) AS hours
              FROM new_rows n JOIN old_rows o ON o.operation_id = n.operation_id AND o.id = n.id
             WHERE o.reversed_by IS NULL AND n.reversed_by IS NOT NULL
             GROUP BY 1, 2, 3) r
     WHERE y.operation_id = r.operation_id AND y.officer_id = r.officer_id AND y.year = r.year;
    RETURN NULL;
END $$;

CREATE TRIGGER time_entry_year_insert AFTER INSERT ON time_entry
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION officer_year_insert();
CREATE TRIGGER time_entry_year_reverse AFTER UPDATE ON time_entry
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION officer_year_reverse();

CREATE FUNCTION officer_year_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of officer_year refused: it is kept by the triggers of time_entry', TG_OP USING ERRCODE = 'IL002';
END $$;

CREATE TRIGGER officer_year_guard BEFORE INSERT OR UPDATE OR DELETE ON officer_year
    FOR EACH ROW WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION officer_year_guard();
CREATE TRIGGER officer_year_no_truncate BEFORE TRUNCATE ON officer_year
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
