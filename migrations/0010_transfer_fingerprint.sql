-- The request fingerprint of a two-posting entry, for ledger.PostTransfers, which posts a
-- batch without the rows leaving the database. It is the fingerprint ledger.Post computes in Go
-- (ledger/post.go, fingerprint): SHA-256 over the date, description, source, reference, the
-- reverses varint (0) and each posting's account code and amount, every text preceded by its
-- length in bytes as a uvarint. So a later Post of the same request with the same key is a
-- replay, as it would be had the entry been posted by Post.
--
-- Both SQL functions are single expressions, STABLE like convert_to and to_char in them and
-- not STRICT, so that the planner inlines them into the query that posts the batch: a call of
-- an SQL function that is not inlined costs more than the rest of the row's work together.

-- Go hashes the UTF-8 bytes of each text; so does convert_to, and octet_length counts them only
-- in a UTF-8 database.
DO $$
BEGIN
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'the database encoding is %, not UTF8: ledger fingerprints would not match', current_setting('server_encoding');
    END IF;
END $$;

-- ledger_uvarint is Go's binary.AppendUvarint of n (n ≥ 0), for the lengths of 128 bytes on.
CREATE FUNCTION ledger_uvarint(n bigint) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    out bytea := '\x'::bytea;
BEGIN
    WHILE n >= 128 LOOP
        out := out || set_byte('\x00'::bytea, 0, ((n & 127) | 128)::int);
        n := n >> 7;
    END LOOP;
    RETURN out || set_byte('\x00'::bytea, 0, n::int);
END $$;

-- ledger_fp_text is one field: its length in bytes as a uvarint, then its UTF-8 bytes.
CREATE FUNCTION ledger_fp_text(s text) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN octet_length(s) < 128 THEN set_byte('\x00'::bytea, 0, octet_length(s))
                ELSE ledger_uvarint(octet_length(s)) END || convert_to(s, 'UTF8')
$$;

CREATE FUNCTION ledger_transfer_fingerprint(effective_date date, description text, source text, reference text,
                                            debit_account text, credit_account text, amount numeric)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(ledger_fp_text(to_char(effective_date, 'YYYY-MM-DD')) || ledger_fp_text(description)
                  || ledger_fp_text(source) || ledger_fp_text(reference) || '\x00'::bytea
                  || ledger_fp_text(debit_account) || ledger_fp_text(amount::text)
                  || ledger_fp_text(credit_account) || ledger_fp_text((-amount)::text))
$$;
