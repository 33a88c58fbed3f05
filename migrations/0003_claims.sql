-- Claims: the quarterly ESF claims, their lifecycle events, the packs stored with them, and the
-- runs of the claim scheduler (domain.md §7, architecture.md "Claims and the scheduler").
--
-- A claim is compiled as a draft (recompiling replaces the draft and clears its review), reviewed
-- (four eyes), submitted (frozen, its period locked by the ledger), approved (WEFO's decision)
-- and paid. The schema keeps the rules the Go code keeps: a submitted claim's figures and pack
-- never change, the lifecycle only moves forward, claims are submitted in period order, the
-- submitter is not the reviewer, a claim with blocking findings is never submitted, and events
-- are append-only.
--
-- Custom SQLSTATEs raised by the triggers below carry a CONSTRAINT name, which
-- internal/db.Translate maps to an error code and rule through the names claims registers:
--   IC001  claim_frozen            a change to a submitted claim or its pack       (rule CL3)
--   IC002  claim_order             a claim submitted before the one before it      (rule CL1)
--   IC003  claim_lifecycle         a status change the lifecycle does not allow    (rule CL6)
--   IC004  claim_event_append_only UPDATE, DELETE or TRUNCATE of claim events      (rule CL3)

CREATE TABLE claim (
    operation_id          text NOT NULL,
    period                text NOT NULL,
    claim_number          integer NOT NULL CONSTRAINT claim_number_ck CHECK (claim_number > 0),
    status                text NOT NULL CONSTRAINT claim_status_ck
                              CHECK (status IN ('draft', 'reviewed', 'submitted', 'approved', 'paid')),
    -- The computed figures and findings (claims.Figures as JSON), and the headline amounts.
    figures               jsonb NOT NULL,
    total_eligible        numeric(16, 2) NOT NULL, -- cumulative total eligible cost C_total(p)
    esf_due               numeric(16, 2) NOT NULL, -- esf_due(p), negative after a disallowance
    cum_due               numeric(16, 2) NOT NULL, -- cum_due(p), R9.3c
    blocking              integer NOT NULL CONSTRAINT claim_blocking_ck CHECK (blocking >= 0),
    -- What the figures were read from: the SHA-256 of the period's balance rows, and the ledger
    -- position (chain head) of the snapshot.
    basis                 bytea NOT NULL CONSTRAINT claim_basis_ck CHECK (length(basis) = 32),
    position_seq          bigint NOT NULL,
    position_entry_id     bigint NOT NULL,
    position_link         bytea NOT NULL CONSTRAINT claim_position_link_ck CHECK (length(position_link) = 32),
    compiled_at           timestamptz NOT NULL,
    compiled_by           text NOT NULL CONSTRAINT claim_compiled_by_ck CHECK (compiled_by <> ''),
    reviewed_at           timestamptz,
    reviewed_by           text,
    submitted_at          timestamptz,
    submitted_by          text,
    receivable_entry_id   bigint, -- Dr ESF receivable / Cr ESF income; NULL for a nil ESF due
    decided_at            timestamptz,
    decided_on            date,
    decided_by            text,
    approved_amount       numeric(16, 2),
    disallowed_amount     numeric(16, 2),
    disallowance_reason   text,
    disallowance_heading  text,
    disallowance_entry_id bigint, -- the negative adjustment in the next open period
    paid_at               timestamptz,
    paid_on               date,
    paid_by               text,
    paid_amount           numeric(16, 2),
    payment_entry_id      bigint, -- Dr cash / Cr ESF receivable
    PRIMARY KEY (operation_id, period),
    CONSTRAINT claim_period_fk FOREIGN KEY (operation_id, period) REFERENCES period (operation_id, code),
    CONSTRAINT claim_number_uq UNIQUE (operation_id, claim_number),
    CONSTRAINT claim_receivable_entry_fk FOREIGN KEY (operation_id, receivable_entry_id) REFERENCES entry (operation_id, id),
    CONSTRAINT claim_disallowance_entry_fk FOREIGN KEY (operation_id, disallowance_entry_id) REFERENCES entry (operation_id, id),
    CONSTRAINT claim_payment_entry_fk FOREIGN KEY (operation_id, payment_entry_id) REFERENCES entry (operation_id, id),
    CONSTRAINT claim_review_ck CHECK ((reviewed_at IS NULL) = (reviewed_by IS NULL)),
    CONSTRAINT claim_reviewed_ck CHECK (status = 'draft' OR reviewed_at IS NOT NULL),
    CONSTRAINT claim_submitted_ck CHECK ((status IN ('submitted', 'approved', 'paid'))
                                         = (submitted_at IS NOT NULL AND submitted_by IS NOT NULL)),
    CONSTRAINT claim_four_eyes_ck CHECK (submitted_by IS NULL OR submitted_by <> reviewed_by),
    CONSTRAINT claim_blocked_ck CHECK (status NOT IN ('submitted', 'approved', 'paid') OR blocking = 0),
    CONSTRAINT claim_decided_ck CHECK ((status IN ('approved', 'paid'))
                                       = (decided_at IS NOT NULL AND decided_on IS NOT NULL AND decided_by IS NOT NULL
                                          AND approved_amount IS NOT NULL AND disallowed_amount IS NOT NULL)),
    CONSTRAINT claim_disallowed_ck CHECK (disallowed_amount IS NULL OR disallowed_amount >= 0),
    CONSTRAINT claim_disallowance_ck CHECK (coalesce(disallowed_amount, 0) = 0
                                            OR (coalesce(disallowance_reason, '') <> '' AND disallowance_heading IS NOT NULL)),
    CONSTRAINT claim_paid_ck CHECK ((status = 'paid')
                                    = (paid_at IS NOT NULL AND paid_on IS NOT NULL AND paid_by IS NOT NULL AND paid_amount IS NOT NULL))
);

-- The lifecycle's order, for the triggers.
CREATE FUNCTION claim_status_rank(s text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE s WHEN 'draft' THEN 1 WHEN 'reviewed' THEN 2 WHEN 'submitted' THEN 3
                  WHEN 'approved' THEN 4 WHEN 'paid' THEN 5 END
$$;

-- CL3: a submitted claim is frozen — its figures, what they were read from, its review and its
-- submission never change, and it is never deleted. Afterwards only WEFO's decision (once) and
-- the payment (once) are added. CL1: a claim is submitted only after the one before it.
CREATE FUNCTION claim_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'claim % cannot be deleted', OLD.period
            USING ERRCODE = 'IC001', CONSTRAINT = 'claim_frozen';
    END IF;
    IF NEW.operation_id <> OLD.operation_id OR NEW.period <> OLD.period OR NEW.claim_number <> OLD.claim_number THEN
        RAISE EXCEPTION 'claim % cannot be renumbered', OLD.period
            USING ERRCODE = 'IC003', CONSTRAINT = 'claim_lifecycle';
    END IF;
    IF claim_status_rank(OLD.status) >= 3 THEN
        IF NEW.figures IS DISTINCT FROM OLD.figures OR NEW.total_eligible IS DISTINCT FROM OLD.total_eligible
           OR NEW.esf_due IS DISTINCT FROM OLD.esf_due OR NEW.cum_due IS DISTINCT FROM OLD.cum_due
           OR NEW.blocking IS DISTINCT FROM OLD.blocking OR NEW.basis IS DISTINCT FROM OLD.basis
           OR NEW.position_seq IS DISTINCT FROM OLD.position_seq OR NEW.position_entry_id IS DISTINCT FROM OLD.position_entry_id
           OR NEW.position_link IS DISTINCT FROM OLD.position_link
           OR NEW.compiled_at IS DISTINCT FROM OLD.compiled_at OR NEW.compiled_by IS DISTINCT FROM OLD.compiled_by
           OR NEW.reviewed_at IS DISTINCT FROM OLD.reviewed_at OR NEW.reviewed_by IS DISTINCT FROM OLD.reviewed_by
           OR NEW.submitted_at IS DISTINCT FROM OLD.submitted_at OR NEW.submitted_by IS DISTINCT FROM OLD.submitted_by
           OR NEW.receivable_entry_id IS DISTINCT FROM OLD.receivable_entry_id THEN
            RAISE EXCEPTION 'claim % is submitted: its figures never change', OLD.period
                USING ERRCODE = 'IC001', CONSTRAINT = 'claim_frozen';
        END IF;
        IF claim_status_rank(NEW.status) < claim_status_rank(OLD.status) THEN
            RAISE EXCEPTION 'claim % cannot go back from % to %', OLD.period, OLD.status, NEW.status
                USING ERRCODE = 'IC001', CONSTRAINT = 'claim_frozen';
        END IF;
        IF OLD.decided_at IS NOT NULL AND (NEW.decided_at IS DISTINCT FROM OLD.decided_at
            OR NEW.decided_on IS DISTINCT FROM OLD.decided_on OR NEW.decided_by IS DISTINCT FROM OLD.decided_by
            OR NEW.approved_amount IS DISTINCT FROM OLD.approved_amount
            OR NEW.disallowed_amount IS DISTINCT FROM OLD.disallowed_amount
            OR NEW.disallowance_reason IS DISTINCT FROM OLD.disallowance_reason
            OR NEW.disallowance_heading IS DISTINCT FROM OLD.disallowance_heading
            OR NEW.disallowance_entry_id IS DISTINCT FROM OLD.disallowance_entry_id) THEN
            RAISE EXCEPTION 'WEFO''s decision on claim % is recorded already', OLD.period
                USING ERRCODE = 'IC001', CONSTRAINT = 'claim_frozen';
        END IF;
        IF OLD.paid_at IS NOT NULL AND (NEW.paid_at IS DISTINCT FROM OLD.paid_at
            OR NEW.paid_on IS DISTINCT FROM OLD.paid_on OR NEW.paid_by IS DISTINCT FROM OLD.paid_by
            OR NEW.paid_amount IS DISTINCT FROM OLD.paid_amount OR NEW.payment_entry_id IS DISTINCT FROM OLD.payment_entry_id) THEN
            RAISE EXCEPTION 'the payment of claim % is recorded already', OLD.period
                USING ERRCODE = 'IC001', CONSTRAINT = 'claim_frozen';
        END IF;
    ELSIF claim_status_rank(NEW.status) > 3 THEN
        RAISE EXCEPTION 'claim % is % and cannot become % before it is submitted', OLD.period, OLD.status, NEW.status
            USING ERRCODE = 'IC003', CONSTRAINT = 'claim_lifecycle';
    ELSIF NEW.status = 'submitted' THEN
        IF OLD.status <> 'reviewed' THEN
            RAISE EXCEPTION 'claim % is % and must be reviewed before it is submitted', OLD.period, OLD.status
                USING ERRCODE = 'IC003', CONSTRAINT = 'claim_lifecycle';
        END IF;
        PERFORM 1 FROM claim c
         WHERE c.operation_id = NEW.operation_id AND c.claim_number = NEW.claim_number - 1
           AND claim_status_rank(c.status) >= 3;
        IF NOT FOUND AND NEW.claim_number > 1 THEN
            RAISE EXCEPTION 'claim % cannot be submitted before claim %', NEW.claim_number, NEW.claim_number - 1
                USING ERRCODE = 'IC002', CONSTRAINT = 'claim_order';
        END IF;
    END IF;
    IF NEW.status = 'paid' AND OLD.status NOT IN ('approved', 'paid') THEN
        RAISE EXCEPTION 'claim % must be decided before it is paid', OLD.period
            USING ERRCODE = 'IC003', CONSTRAINT = 'claim_lifecycle';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER claim_guard BEFORE UPDATE OR DELETE ON claim
    FOR EACH ROW EXECUTE FUNCTION claim_guard();

-- A claim is never created submitted.
CREATE FUNCTION claim_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'draft' THEN
        RAISE EXCEPTION 'claim % must start as a draft', NEW.period
            USING ERRCODE = 'IC003', CONSTRAINT = 'claim_lifecycle';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER claim_insert_guard BEFORE INSERT ON claim
    FOR EACH ROW EXECUTE FUNCTION claim_insert_guard();

CREATE FUNCTION claims_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of % refused: claims and their history are kept', TG_TABLE_NAME
        USING ERRCODE = 'IC001', CONSTRAINT = 'claim_frozen';
END $$;

CREATE TRIGGER claim_no_truncate BEFORE TRUNCATE ON claim
    FOR EACH STATEMENT EXECUTE FUNCTION claims_no_truncate();

-- Every state change of a claim, with who and when: append-only.
CREATE TABLE claim_event (
    operation_id text NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    period       text NOT NULL,
    event        text NOT NULL CONSTRAINT claim_event_kind_ck
                     CHECK (event IN ('compiled', 'reviewed', 'submitted', 'decided', 'paid', 'pack_stored')),
    actor        text NOT NULL CONSTRAINT claim_event_actor_ck CHECK (actor <> ''),
    actor_role   text NOT NULL,
    at           timestamptz NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (operation_id, id),
    CONSTRAINT claim_event_claim_fk FOREIGN KEY (operation_id, period) REFERENCES claim (operation_id, period)
);
CREATE INDEX claim_event_period_ix ON claim_event (operation_id, period, id);

CREATE FUNCTION claim_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of claim events refused: the claim history is append-only', TG_OP
        USING ERRCODE = 'IC004', CONSTRAINT = 'claim_event_append_only';
END $$;

CREATE TRIGGER claim_event_append_only BEFORE UPDATE OR DELETE ON claim_event
    FOR EACH ROW EXECUTE FUNCTION claim_event_append_only();
CREATE TRIGGER claim_event_no_truncate BEFORE TRUNCATE ON claim_event
    FOR EACH STATEMENT EXECUTE FUNCTION claim_event_append_only();

-- The claim pack files (claim.xlsx, claim.pdf, manifest.json) as rendered for the claim. A
-- draft's pack is replaced when the draft is recompiled; the pack stored at submission is what
-- auditors download, byte for byte, for ever.
CREATE TABLE claim_pack (
    operation_id text NOT NULL,
    period       text NOT NULL,
    name         text NOT NULL CONSTRAINT claim_pack_name_ck CHECK (name ~ '^[a-z0-9_.-]+$'),
    position     smallint NOT NULL, -- order of the files in the pack
    claim_status text NOT NULL,     -- the claim status the pack was rendered for
    compiled_at  timestamptz NOT NULL, -- the compilation the pack renders
    data         bytea NOT NULL,
    sha256       bytea NOT NULL CONSTRAINT claim_pack_sha256_ck CHECK (length(sha256) = 32),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (operation_id, period, name),
    CONSTRAINT claim_pack_claim_fk FOREIGN KEY (operation_id, period) REFERENCES claim (operation_id, period),
    CONSTRAINT claim_pack_sha256_matches_ck CHECK (sha256 = sha256(data))
);

-- CL3: the pack of a submitted claim never changes. The claim row is share-locked so that a
-- submission in progress (which updates it) and a pack being replaced serialise.
CREATE FUNCTION claim_pack_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    st text;
    op text;
    per text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        op := NEW.operation_id; per := NEW.period;
    ELSE
        op := OLD.operation_id; per := OLD.period;
    END IF;
    SELECT status INTO st FROM claim WHERE operation_id = op AND period = per FOR SHARE;
    IF claim_status_rank(st) >= 3 THEN
        RAISE EXCEPTION 'the pack of claim % is the one submitted and never changes', per
            USING ERRCODE = 'IC001', CONSTRAINT = 'claim_frozen';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER claim_pack_guard BEFORE INSERT OR UPDATE OR DELETE ON claim_pack
    FOR EACH ROW EXECUTE FUNCTION claim_pack_guard();
CREATE TRIGGER claim_pack_no_truncate BEFORE TRUNCATE ON claim_pack
    FOR EACH STATEMENT EXECUTE FUNCTION claims_no_truncate();

-- Every run of the claim scheduler: when, on which instance, what it did and how it ended.
CREATE TABLE scheduler_run (
    operation_id    text NOT NULL,
    id              bigint GENERATED ALWAYS AS IDENTITY,
    job             text NOT NULL,
    instance        text NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    outcome         text NOT NULL CONSTRAINT scheduler_run_outcome_ck
                        CHECK (outcome IN ('running', 'ok', 'failed', 'panicked', 'skipped')),
    claims_compiled integer NOT NULL DEFAULT 0 CONSTRAINT scheduler_run_compiled_ck CHECK (claims_compiled >= 0),
    periods         text[] NOT NULL DEFAULT '{}',
    error           text,
    PRIMARY KEY (operation_id, id),
    CONSTRAINT scheduler_run_operation_fk FOREIGN KEY (operation_id) REFERENCES operation (id),
    CONSTRAINT scheduler_run_finished_ck CHECK ((outcome = 'running') = (finished_at IS NULL))
);
CREATE INDEX scheduler_run_started_ix ON scheduler_run (operation_id, started_at);
