-- A user can be disabled (a leaver, a lost laptop) and enabled again: disabled_at and
-- disabled_by say since when and by whom. A disabled user cannot sign in, and their sessions and
-- tokens end when they are disabled (auth.SetDisabled; sessions and tokens of a disabled user are
-- refused besides). The row stays: the user's name is in entries, claims and the audit log.
ALTER TABLE app_user
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN disabled_by text,
    ADD CONSTRAINT app_user_disabled_ck CHECK ((disabled_at IS NULL) = (disabled_by IS NULL));
