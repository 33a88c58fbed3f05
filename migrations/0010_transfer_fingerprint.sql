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

-- Most fields are 1 to 127 bytes long, whose uvarint is one byte that is also a character of its
-- own in UTF-8: the fingerprint of such an entry is built as text and converted once, which is
-- several times cheaper than building it field by field as bytea.
CREATE FUNCTION ledger_transfer_fingerprint(effective_date date, description text, source text, reference text,
                                            debit_account text, credit_account text, amount numeric)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(CASE
        WHEN octet_length(description) BETWEEN 1 AND 127 AND octet_length(source) BETWEEN 1 AND 127
         AND octet_length(reference) BETWEEN 1 AND 127 AND octet_length(debit_account) BETWEEN 1 AND 127
         AND octet_length(credit_account) BETWEEN 1 AND 127 THEN
            convert_to(chr(10) || to_char(effective_date, 'YYYY-MM-DD') || chr(octet_length(description)) || description
                       || chr(octet_length(source)) || source || chr(octet_length(reference)) || reference, 'UTF8')
            || '\x00'::bytea
            || convert_to(chr(octet_length(debit_account)) || debit_account || chr(octet_length(amount::text)) || amount::text
                          || chr(octet_length(credit_account)) || credit_account
                          || chr(octet_length((-amount)::text)) || (-amount)::text, 'UTF8')
        ELSE
            ledger_fp_text(to_char(effective_date, 'YYYY-MM-DD')) || ledger_fp_text(description)
            || ledger_fp_text(source) || ledger_fp_text(reference) || '\x00'::bytea
            || ledger_fp_text(debit_account) || ledger_fp_text(amount::text)
            || ledger_fp_text(credit_account) || ledger_fp_text((-amount)::text)
        END)
$$;
