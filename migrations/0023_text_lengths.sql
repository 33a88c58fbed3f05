-- M1 and A2 in the schema too (package match and access.User.Validate check them first, naming
-- the field): the text of an officer, a time entry or an expenditure line holds at most 1,000
-- characters, as a CSV field does, and a user's email at most 320 bytes (RFC 5321). NOT VALID:
-- a line recorded through the API before the limit is not judged again, but any new one is.
ALTER TABLE officer
    ADD CONSTRAINT officer_text_length_ck
        CHECK (char_length(payroll_ref) <= 1000 AND char_length(name) <= 1000) NOT VALID;
ALTER TABLE time_entry
    ADD CONSTRAINT time_entry_text_length_ck
        CHECK (char_length(evidence_ref) <= 1000 AND char_length(approved_by) <= 1000) NOT VALID;
ALTER TABLE expenditure
    ADD CONSTRAINT expenditure_text_length_ck
        CHECK (char_length(payee) <= 1000 AND char_length(description) <= 1000
               AND char_length(evidence_ref) <= 1000 AND char_length(invoice_ref) <= 1000) NOT VALID;
ALTER TABLE app_user
    ADD CONSTRAINT app_user_email_length_ck CHECK (octet_length(email) <= 320) NOT VALID;
