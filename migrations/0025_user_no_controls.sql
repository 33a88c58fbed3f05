-- A user's email and name hold no control characters (A2): they are shown in lists on
-- terminals too (infuse users list), where an escape sequence or a line break would act, or
-- forge a row. NOT VALID, as the text limits of 0023: users stored before are not judged again.
ALTER TABLE app_user
    ADD CONSTRAINT app_user_no_controls_ck CHECK (email !~ '[[:cntrl:]]' AND name !~ '[[:cntrl:]]') NOT VALID;
