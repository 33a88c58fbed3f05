-- The claim certificate of a pack is signed with the submitter's name, not their email: the
-- name is kept with the claim as it was at submission, so that the pack of a frozen claim is
-- rebuilt with the same signature, byte for byte, whatever later happens to the user. It is
-- frozen with the rest of a submitted claim. Claims submitted before have none; their packs
-- keep the email they were signed with.
ALTER TABLE claim ADD COLUMN submitted_by_name text;

CREATE OR REPLACE FUNCTION claim_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
           OR NEW.submitted_by_name IS DISTINCT FROM OLD.submitted_by_name
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

SELECT pin_search_paths();
