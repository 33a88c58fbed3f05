-- A user's email and name hold no control characters (A2): they are shown in lists on
-- terminals too (infuse users list), where an escape sequence or a line break would act, or
-- forge a row. Users stored before are cleaned first, each control character becoming a space
-- (a name) or "?" (an email, which nobody could type anyway), so that the constraint holds for
-- every row: one added NOT VALID would still refuse any later change of such a row, disabling
-- the user included.
UPDATE app_user SET name = regexp_replace(name, '[[:cntrl:]]', ' ', 'g') WHERE name ~ '[[:cntrl:]]';
UPDATE app_user SET email = regexp_replace(email, '[[:cntrl:]]', '?', 'g') WHERE email ~ '[[:cntrl:]]';
ALTER TABLE app_user
    ADD CONSTRAINT app_user_no_controls_ck CHECK (email !~ '[[:cntrl:]]' AND name !~ '[[:cntrl:]]');
