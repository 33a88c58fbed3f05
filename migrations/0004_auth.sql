-- Who you are (package auth): users' passwords, sign-in attempts (for throttling), server-side
-- sessions, bearer tokens for scripts, and the append-only audit log that auditors read.
--
-- Users themselves (email, name, role, authority) are package access's table app_user
-- (0002_match.sql); the password lives beside it in a table of its own, so that listing users
-- never reads a hash and access's table stays access's.
--
-- Secrets are never stored: a session id and a token are 256-bit random values of which only
-- the SHA-256 is kept (they have full entropy, so a fast hash suffices); a password is kept as
-- an argon2id hash in the PHC string format, which carries its own parameters and salt.
--
-- Every table carries operation_id and leads its keys with it, as the ledger's do.

CREATE TABLE user_password (
    operation_id code NOT NULL,
    user_id      bigint NOT NULL,
    hash         text NOT NULL CONSTRAINT user_password_hash_ck CHECK (hash LIKE '$argon2id$%'),
    set_at       timestamptz NOT NULL,
    set_by       text NOT NULL,
    PRIMARY KEY (operation_id, user_id),
    CONSTRAINT user_password_user_fk FOREIGN KEY (operation_id, user_id) REFERENCES app_user (operation_id, id)
);

-- Every sign-in attempt, kept for throttling (per account and per client address, so that it
-- holds across instances of the service) and as evidence. email is what was typed (normalised),
-- whether or not such a user exists.
CREATE TABLE signin_attempt (
    operation_id code NOT NULL REFERENCES operation (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    at           timestamptz NOT NULL,
    email        text NOT NULL,
    client       text NOT NULL,
    ok           boolean NOT NULL,
    PRIMARY KEY (operation_id, id)
);
CREATE INDEX signin_attempt_email_ix ON signin_attempt (operation_id, email, at);
CREATE INDEX signin_attempt_client_ix ON signin_attempt (operation_id, client, at);

-- A signed-in person's session. id_hash is the SHA-256 of the cookie's 256-bit session id.
CREATE TABLE web_session (
    operation_id code NOT NULL,
    id_hash      bytea NOT NULL CONSTRAINT web_session_id_hash_ck CHECK (length(id_hash) = 32),
    user_id      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    client       text NOT NULL,
    PRIMARY KEY (operation_id, id_hash),
    CONSTRAINT web_session_user_fk FOREIGN KEY (operation_id, user_id) REFERENCES app_user (operation_id, id),
    CONSTRAINT web_session_expiry_ck CHECK (expires_at > created_at)
);
CREATE INDEX web_session_user_ix ON web_session (operation_id, user_id) WHERE revoked_at IS NULL;

-- A bearer token for scripts. hash is the SHA-256 of the token; the token itself is shown once.
CREATE TABLE api_token (
    operation_id code NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    user_id      bigint NOT NULL,
    name         text NOT NULL CONSTRAINT api_token_name_ck CHECK (btrim(name) <> '' AND length(name) <= 200),
    hash         bytea NOT NULL CONSTRAINT api_token_hash_ck CHECK (length(hash) = 32),
    created_at   timestamptz NOT NULL,
    created_by   text NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    revoked_by   text,
    PRIMARY KEY (operation_id, id),
    CONSTRAINT api_token_hash_uq UNIQUE (operation_id, hash),
    CONSTRAINT api_token_user_fk FOREIGN KEY (operation_id, user_id) REFERENCES app_user (operation_id, id),
    CONSTRAINT api_token_revoked_ck CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);

-- A token is revoked once and never un-revoked; its identity never changes; it is never deleted.
CREATE FUNCTION api_token_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.operation_id = OLD.operation_id AND NEW.id = OLD.id
       AND NEW.user_id = OLD.user_id AND NEW.name = OLD.name AND NEW.hash = OLD.hash
       AND NEW.created_at = OLD.created_at AND NEW.created_by = OLD.created_by
       AND (OLD.revoked_at IS NULL OR (NEW.revoked_at = OLD.revoked_at AND NEW.revoked_by = OLD.revoked_by)) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of api_token % refused: a token is only ever used or revoked', TG_OP, OLD.id
        USING ERRCODE = 'IL002';
END $$;
CREATE TRIGGER api_token_guard BEFORE UPDATE OR DELETE ON api_token
    FOR EACH ROW EXECUTE FUNCTION api_token_guard();

-- The audit log: who did what, when, on what, with what outcome. Append-only (F1's trigger).
CREATE TABLE audit_event (
    operation_id code NOT NULL REFERENCES operation (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,                 -- the user's email, or what was typed at sign-in
    actor_role   text NOT NULL,                 -- '' when nobody was signed in
    action       text NOT NULL CONSTRAINT audit_event_action_ck CHECK (action ~ '^[a-z_.]+$'),
    target       text NOT NULL,                 -- what it was done on: a period, an email, a file name
    outcome      text NOT NULL CONSTRAINT audit_event_outcome_ck CHECK (outcome IN ('ok', 'refused', 'failed')),
    detail       jsonb NOT NULL DEFAULT '{}',   -- the error code and rule when not ok, counts, digests
    request_id   text NOT NULL,
    client       text NOT NULL,
    PRIMARY KEY (operation_id, id)
);
CREATE INDEX audit_event_at_ix ON audit_event (operation_id, at DESC);

CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
