-- Recording the match (package match) and the people who record it (package access): users,
-- officers and their effective-dated rate versions, officer time entries, cash expenditure
-- lines, corrections (reversals) and the imports that brought lines in.
--
-- Every table carries operation_id and leads its keys with it, as the ledger's do. Every rule
-- that a row can be checked against on its own is a named constraint here too, so that a bug in
-- Go or a raw SQL session cannot record what the rules forbid; match registers how each reads
-- to a person (db.RegisterConstraint). Rules that need the programme definition (the window,
-- the daily maximum, the annual cap) are checked by match before it writes.
--
-- Recorded lines are append-only, like the ledger (F1): UPDATE, DELETE and TRUNCATE are refused
-- with the ledger's SQLSTATE IL002, with one exception — the column reversed_by of a time entry
-- or expenditure line may be set once, from NULL, when a correction reverses the line. That
-- keeps "the live entry" a fact the database can index (V5: one live entry per officer, date
-- and activity) while every recorded fact stays as it was written.
--
-- entry_id (the ledger entry a line or correction posted) and import_id carry no foreign key,
-- for the reason the ledger's own tables carry none: a per-row referential check costs more
-- than the insert of a million-row import, and with the ledger's statistics still catching up
-- the planner picks a scan for it. The line and its entry are written in one transaction by
-- match; claims' C8 finds entries without a line, and match's tests check the pairing.

CREATE TABLE app_user (
    operation_id code NOT NULL REFERENCES operation (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    email        text NOT NULL CONSTRAINT app_user_email_ck
                     CHECK (email = lower(email) AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    name         text NOT NULL CONSTRAINT app_user_name_ck CHECK (btrim(name) <> ''),
    role         text NOT NULL CONSTRAINT app_user_role_ck
                     CHECK (role IN ('finance_officer', 'programme_manager', 'auditor', 'admin')),
    authority    code CONSTRAINT app_user_authority_format_ck CHECK (authority ~ '^GB-[A-Z]{3}$'),
    created_at   timestamptz NOT NULL,
    created_by   text NOT NULL,
    PRIMARY KEY (operation_id, id),
    CONSTRAINT app_user_email_uq UNIQUE (operation_id, email),
    -- a finance officer works for one authority (V8); the other roles span them all
    CONSTRAINT app_user_authority_ck CHECK ((role = 'finance_officer') = (authority IS NOT NULL))
);

-- An import of a CSV file that wrote something (a re-import that changes nothing leaves no row).
CREATE TABLE import_run (
    operation_id code NOT NULL REFERENCES operation (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    kind         text NOT NULL CONSTRAINT import_run_kind_ck CHECK (kind IN ('officers', 'time', 'expenditure')),
    file_name    text NOT NULL,
    file_sha256  bytea NOT NULL CONSTRAINT import_run_sha_ck CHECK (length(file_sha256) = 32),
    rows_read    bigint NOT NULL,
    rows_written bigint NOT NULL,
    recorded_at  timestamptz NOT NULL,
    recorded_by  text NOT NULL,
    PRIMARY KEY (operation_id, id)
);

CREATE TABLE officer (
    operation_id code NOT NULL REFERENCES operation (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    authority    code NOT NULL CONSTRAINT officer_authority_ck CHECK (authority ~ '^GB-[A-Z]{3}$'),
    payroll_ref  code NOT NULL CONSTRAINT officer_payroll_ref_ck CHECK (btrim(payroll_ref) <> ''),
    name         text NOT NULL CONSTRAINT officer_name_ck CHECK (btrim(name) <> ''),
    recorded_at  timestamptz NOT NULL,
    recorded_by  text NOT NULL,
    PRIMARY KEY (operation_id, id),
    -- domain §4: a payroll reference is unique within its authority
    CONSTRAINT officer_payroll_uq UNIQUE (operation_id, authority, payroll_ref)
);

-- R5.3: an officer's cost basis, effective from valid_from until the next version.
CREATE TABLE rate_version (
    operation_id code NOT NULL,
    officer_id   bigint NOT NULL,
    valid_from   date NOT NULL,
    annual_cost  numeric(12, 2) NOT NULL CONSTRAINT rate_version_annual_cost_ck CHECK (annual_cost > 0),
    fte          numeric(5, 4) NOT NULL CONSTRAINT rate_version_fte_ck CHECK (fte > 0 AND fte <= 1),
    import_id    bigint,
    recorded_at  timestamptz NOT NULL,
    recorded_by  text NOT NULL,
    PRIMARY KEY (operation_id, officer_id, valid_from),
    CONSTRAINT rate_version_officer_fk FOREIGN KEY (operation_id, officer_id) REFERENCES officer (operation_id, id),
    CONSTRAINT rate_version_import_fk FOREIGN KEY (operation_id, import_id) REFERENCES import_run (operation_id, id)
);

CREATE SEQUENCE time_entry_id_seq AS bigint;

-- An officer's time on one date and activity, priced (R9.3a) by the rate version in force on
-- the work date (rate_valid_from), posted as ledger entry entry_id booked in period.
CREATE TABLE time_entry (
    operation_id    code NOT NULL,
    id              bigint NOT NULL DEFAULT nextval('time_entry_id_seq'),
    officer_id      bigint NOT NULL,
    work_date       date NOT NULL,
    activity        code NOT NULL CONSTRAINT time_entry_activity_ck
                        CHECK (activity IN ('lab', 'experiment', 'coaching', 'steering', 'other')),
    -- the n-th recording of the officer, date and activity (n reversals before it); the ledger's
    -- unique idempotency key (TimeKey) names it, so no second index here keeps it unique
    generation      integer NOT NULL CONSTRAINT time_entry_generation_ck CHECK (generation >= 0),
    hours           numeric(4, 2) NOT NULL CONSTRAINT time_entry_hours_ck CHECK (hours > 0 AND hours <= 24),
    evidence_ref    text NOT NULL CONSTRAINT time_entry_evidence_ck CHECK (btrim(evidence_ref) <> ''),
    approved_by     text NOT NULL CONSTRAINT time_entry_approver_ck CHECK (btrim(approved_by) <> ''),
    rate_valid_from date NOT NULL,
    amount          numeric(12, 2) NOT NULL CONSTRAINT time_entry_amount_ck CHECK (amount > 0),
    entry_id        bigint NOT NULL,
    period          code NOT NULL, -- the booking period of entry_id, kept here to find a period's lines fast
    import_id       bigint,
    recorded_at     timestamptz NOT NULL,
    recorded_by     text NOT NULL,
    reversed_by     bigint,        -- the correction that reversed this entry; set once
    PRIMARY KEY (operation_id, id),
    CONSTRAINT time_entry_rate_in_force_ck CHECK (rate_valid_from <= work_date)
);
-- V5: one live (unreversed) entry per officer, date and activity.
CREATE UNIQUE INDEX time_entry_live_uq ON time_entry (operation_id, officer_id, work_date, activity)
    WHERE reversed_by IS NULL;
CREATE INDEX time_entry_period_ix ON time_entry (operation_id, period);

-- V6 / R5.3: a time entry is priced by a rate version of its officer. Checked once per statement
-- against the statement's new rows (a per-row foreign key doubled the cost of a large import);
-- versions are append-only, so a check at insert is enough.
CREATE FUNCTION time_entry_rate_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.id, n.officer_id, n.rate_valid_from INTO bad FROM new_rows n
     WHERE NOT EXISTS (SELECT 1 FROM rate_version v WHERE v.operation_id = n.operation_id
                          AND v.officer_id = n.officer_id AND v.valid_from = n.rate_valid_from)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'time entry % refused: officer % has no rate version from %', bad.id, bad.officer_id, bad.rate_valid_from
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'time_entry_rate_fk';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER time_entry_rate_check AFTER INSERT ON time_entry
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION time_entry_rate_check();

CREATE SEQUENCE expenditure_id_seq AS bigint;

-- A cash expenditure line of the lead beneficiary's transaction list (domain §5). A credit note
-- has a negative amount and names the line it credits (credits).
CREATE TABLE expenditure (
    operation_id code NOT NULL,
    id           bigint NOT NULL DEFAULT nextval('expenditure_id_seq'),
    heading      code NOT NULL CONSTRAINT expenditure_heading_ck CHECK (heading IN ('staff', 'delivery', 'other')),
    defrayed_on  date NOT NULL,
    payee        text NOT NULL CONSTRAINT expenditure_payee_ck CHECK (btrim(payee) <> ''),
    description  text NOT NULL CONSTRAINT expenditure_description_ck CHECK (btrim(description) <> ''),
    amount       numeric(14, 2) NOT NULL CONSTRAINT expenditure_amount_ck CHECK (amount <> 0),
    evidence_ref text NOT NULL CONSTRAINT expenditure_evidence_ck CHECK (btrim(evidence_ref) <> ''),
    invoice_ref  text NOT NULL DEFAULT '',
    credits      bigint,
    generation   integer NOT NULL CONSTRAINT expenditure_generation_ck CHECK (generation >= 0),
    entry_id     bigint NOT NULL,
    period       code NOT NULL,
    import_id    bigint,
    recorded_at  timestamptz NOT NULL,
    recorded_by  text NOT NULL,
    reversed_by  bigint,
    PRIMARY KEY (operation_id, id),
    CONSTRAINT expenditure_credit_note_ck CHECK ((amount < 0) = (credits IS NOT NULL)),
    CONSTRAINT expenditure_credits_fk FOREIGN KEY (operation_id, credits) REFERENCES expenditure (operation_id, id),
    CONSTRAINT expenditure_import_fk FOREIGN KEY (operation_id, import_id) REFERENCES import_run (operation_id, id),
    CONSTRAINT expenditure_generation_uq UNIQUE (operation_id, heading, evidence_ref, description, generation)
);
-- M5: one live line per heading, evidence reference and description.
CREATE UNIQUE INDEX expenditure_live_uq ON expenditure (operation_id, heading, evidence_ref, description)
    WHERE reversed_by IS NULL;
CREATE INDEX expenditure_period_ix ON expenditure (operation_id, period);
CREATE INDEX expenditure_invoice_ix ON expenditure (operation_id, invoice_ref) WHERE invoice_ref <> '';

-- A correction: the reversal (entry_id, booked in period) of one time entry or expenditure line.
CREATE TABLE correction (
    operation_id   code NOT NULL,
    id             bigint GENERATED ALWAYS AS IDENTITY,
    time_entry_id  bigint,
    expenditure_id bigint,
    reason         text NOT NULL CONSTRAINT correction_reason_ck CHECK (btrim(reason) <> ''),
    entry_id       bigint NOT NULL,
    period         code NOT NULL,
    recorded_at    timestamptz NOT NULL,
    recorded_by    text NOT NULL,
    PRIMARY KEY (operation_id, id),
    CONSTRAINT correction_target_ck CHECK ((time_entry_id IS NULL) <> (expenditure_id IS NULL)),
    CONSTRAINT correction_time_entry_fk FOREIGN KEY (operation_id, time_entry_id) REFERENCES time_entry (operation_id, id),
    CONSTRAINT correction_expenditure_fk FOREIGN KEY (operation_id, expenditure_id) REFERENCES expenditure (operation_id, id),
    CONSTRAINT correction_time_entry_uq UNIQUE (operation_id, time_entry_id),
    CONSTRAINT correction_expenditure_uq UNIQUE (operation_id, expenditure_id),
    CONSTRAINT correction_entry_uq UNIQUE (operation_id, entry_id),
    -- targets of the lines' reversed_by foreign keys below: a line can only point at its own correction
    CONSTRAINT correction_time_target_uq UNIQUE (operation_id, id, time_entry_id),
    CONSTRAINT correction_expenditure_target_uq UNIQUE (operation_id, id, expenditure_id)
);
CREATE INDEX correction_period_ix ON correction (operation_id, period);

ALTER TABLE time_entry ADD CONSTRAINT time_entry_reversed_by_fk FOREIGN KEY (operation_id, reversed_by, id)
    REFERENCES correction (operation_id, id, time_entry_id);
ALTER TABLE expenditure ADD CONSTRAINT expenditure_reversed_by_fk FOREIGN KEY (operation_id, reversed_by, id)
    REFERENCES correction (operation_id, id, expenditure_id);

-- F1 for recorded lines: append-only, except that reversed_by may be set once.
CREATE FUNCTION match_line_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.reversed_by IS NULL AND NEW.reversed_by IS NOT NULL
       AND (to_jsonb(NEW) - 'reversed_by') = (to_jsonb(OLD) - 'reversed_by') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of % refused: recorded lines are append-only; reverse the line and record it again',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'IL002';
END $$;

CREATE TRIGGER time_entry_guard BEFORE UPDATE OR DELETE ON time_entry
    FOR EACH ROW EXECUTE FUNCTION match_line_guard();
CREATE TRIGGER time_entry_no_truncate BEFORE TRUNCATE ON time_entry
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER expenditure_guard BEFORE UPDATE OR DELETE ON expenditure
    FOR EACH ROW EXECUTE FUNCTION match_line_guard();
CREATE TRIGGER expenditure_no_truncate BEFORE TRUNCATE ON expenditure
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- Rate versions, corrections and imports are append-only outright (R5.3: a version never
-- changes; a different cost basis is a new version).
CREATE TRIGGER rate_version_append_only BEFORE UPDATE OR DELETE ON rate_version
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER rate_version_no_truncate BEFORE TRUNCATE ON rate_version
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER correction_append_only BEFORE UPDATE OR DELETE ON correction
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER correction_no_truncate BEFORE TRUNCATE ON correction
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER import_run_append_only BEFORE UPDATE OR DELETE ON import_run
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER import_run_no_truncate BEFORE TRUNCATE ON import_run
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- An officer is never deleted and keeps its identity (authority, payroll reference); only the
-- name may be corrected.
CREATE FUNCTION officer_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.operation_id = OLD.operation_id AND NEW.id = OLD.id
       AND NEW.authority = OLD.authority AND NEW.payroll_ref = OLD.payroll_ref THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of officer % refused: an officer keeps its authority and payroll reference and is never deleted',
        TG_OP, OLD.id USING ERRCODE = 'IL002';
END $$;

CREATE TRIGGER officer_guard BEFORE UPDATE OR DELETE ON officer
    FOR EACH ROW EXECUTE FUNCTION officer_guard();
CREATE TRIGGER officer_no_truncate BEFORE TRUNCATE ON officer
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
