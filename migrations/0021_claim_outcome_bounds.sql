-- CL6 in the schema too (claims.Decide and Pay check it first, with the figures in their
-- messages): the ESF approved lies between zero and the ESF claimed, on the claim's side of
-- zero; the expenditure disallowed is at most the eligible expenditure claimed up to the period
-- (total_eligible is cumulative); the amount paid lies between zero and the amount approved, and
-- is nil only when that is. NOT VALID: a claim decided before these rules is not judged again,
-- but any change to it is. That a decision or payment is not dated after today is Go's alone:
-- a CHECK cannot read the clock.
ALTER TABLE claim
    ADD CONSTRAINT claim_approved_within_ck
        CHECK (approved_amount IS NULL OR approved_amount BETWEEN least(0, esf_due) AND greatest(0, esf_due)) NOT VALID,
    ADD CONSTRAINT claim_disallowed_within_ck
        CHECK (disallowed_amount IS NULL OR disallowed_amount <= total_eligible) NOT VALID,
    ADD CONSTRAINT claim_paid_within_ck
        CHECK (paid_amount IS NULL OR (paid_amount BETWEEN least(0, approved_amount) AND greatest(0, approved_amount)
                                       AND (paid_amount = 0) = (approved_amount = 0))) NOT VALID;
