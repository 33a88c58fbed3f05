-- The commit-time check now keeps the booking rule of domain.md §6 (L5), as the Go code and the
-- SQL writers do: an entry is booked into the period containing its effective date if that
-- period is open, otherwise into the earliest open period after it. Until now the database
-- refused an entry only in a locked or unknown period, so raw SQL could book an entry of 2023
-- into an open period of 2021. Such an entry is refused with IL009 (rule L5); one in a locked or
-- unknown period is still IL003 (rule F1).
--
-- ledger_booking gives each period the effective dates it takes: up to its last day, from the
-- day after the last day of the latest open period before it (or from the operation's first
-- day). A locked period takes none; the check refuses it as locked. Locks only close periods,
-- so a period chosen by a writer stays right for its dates until the period itself is locked.
CREATE VIEW ledger_booking AS
SELECT operation_id, code, locked_at, ends_on AS books_to,
       coalesce(max(ends_on) FILTER (WHERE locked_at IS NULL) OVER earlier + 1,
                min(starts_on) OVER (PARTITION BY operation_id)) AS books_from
  FROM period
WINDOW earlier AS (PARTITION BY operation_id ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING);

CREATE OR REPLACE FUNCTION ledger_problem(state text, entry_id bigint, operation_id text, period text, n bigint, s numeric,
                               bad_line smallint) RETURNS text LANGUAGE sql STABLE
AS $$
    SELECT CASE state
        WHEN 'IL004' THEN format('postings refused: entry %s was committed earlier and cannot gain postings', entry_id)
        WHEN 'IL001' THEN format('entry %s refused: %s postings summing to %s (an entry needs two or more postings summing to zero)',
                                 entry_id, coalesce(n, 0), coalesce(s, 0))
        WHEN 'IL003' THEN format('entry %s refused: period %s is locked or not a period of operation %s', entry_id, period, operation_id)
        WHEN 'IL009' THEN format('entry %s refused: period %s is not the booking period of its effective date (its own period if open, else the earliest open one after it)',
                                 entry_id, period)
        ELSE format('entry %s refused: line %s names account %s, which is not in the chart of operation %s',
                    entry_id, bad_line, (SELECT p.account_id FROM posting p WHERE p.operation_id = ledger_problem.operation_id
                                          AND p.entry_id = ledger_problem.entry_id AND p.line = bad_line), operation_id)
    END
$$;

CREATE OR REPLACE FUNCTION ledger_txn_check() RETURNS trigger LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_bitmapscan = off
AS $$
DECLARE
    bad record;
BEGIN
    IF current_setting('infuse.ledger_bulk', true) = 'on' THEN
        SELECT * INTO bad FROM ledger_check_many(NEW.txid);
    ELSE
        SELECT b.state AS problem_state, b.id AS problem_entry,
               coalesce(b.message, ledger_problem(b.state, b.id, b.operation_id, b.period, b.n, b.s, b.bad_line)) AS problem_message
          INTO bad FROM (
            SELECT 'IL004' AS state, p.entry_id AS id, p.operation_id, NULL AS period, NULL::bigint AS n, NULL::numeric AS s,
                   NULL::smallint AS bad_line, NULL AS message
              FROM posting p
             WHERE p.txid = NEW.txid
               AND NOT EXISTS (SELECT 1 FROM entry e WHERE e.operation_id = p.operation_id AND e.id = p.entry_id AND e.txid = NEW.txid)
            UNION ALL
            SELECT CASE WHEN coalesce(p.n, 0) < 2 OR p.s <> 0 THEN 'IL001'
                        WHEN pe.code IS NULL OR pe.locked_at IS NOT NULL THEN 'IL003'
                        WHEN e.effective_date NOT BETWEEN pe.books_from AND pe.books_to THEN 'IL009'
                        ELSE 'IL006' END,
                   e.id, e.operation_id, e.period, p.n, p.s, p.bad_line, NULL
              FROM entry e
              CROSS JOIN LATERAL (
                  SELECT count(*) AS n, sum(p.amount) AS s, min(p.line) FILTER (WHERE a.id IS NULL) AS bad_line
                    FROM posting p LEFT JOIN account a ON a.operation_id = p.operation_id AND a.id = p.account_id
                   WHERE p.operation_id = e.operation_id AND p.entry_id = e.id) p
              LEFT JOIN ledger_booking pe ON pe.operation_id = e.operation_id AND pe.code = e.period
             WHERE e.txid = NEW.txid
               AND (p.n < 2 OR p.s <> 0 OR p.s IS NULL OR pe.code IS NULL OR pe.locked_at IS NOT NULL
                    OR e.effective_date NOT BETWEEN pe.books_from AND pe.books_to OR p.bad_line IS NOT NULL)
            UNION ALL
            SELECT 'IL007', e.id, e.operation_id, e.period, NULL, NULL, NULL,
                   format('entry %s refused: it reverses entry %s, which does not exist or is itself a reversal', e.id, e.reverses)
              FROM (SELECT operation_id, id, period, reverses FROM entry WHERE txid = NEW.txid OFFSET 0) e
              LEFT JOIN entry r ON r.operation_id = e.operation_id AND r.id = e.reverses
             WHERE e.reverses IS NOT NULL AND (r.id IS NULL OR r.reverses IS NOT NULL)
            LIMIT 1
        ) b;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION '%', bad.problem_message USING ERRCODE = bad.problem_state, DETAIL = bad.problem_entry::text;
    END IF;
    -- The token has done its work; it never outlives its transaction. Nor does the setting
    -- that says it is held: should the check run before the commit (SET CONSTRAINTS …
    -- IMMEDIATE), later ledger writes must take a new token, and so queue a new check.
    DELETE FROM ledger_txn WHERE txid = NEW.txid;
    PERFORM set_config('infuse.ledger_txn', '', true);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ledger_check_many(t xid8) RETURNS TABLE (problem_state text, problem_entry bigint, problem_message text) LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_nestloop = off SET enable_mergejoin = off
    SET enable_hashjoin = on SET enable_hashagg = on SET enable_bitmapscan = on
AS $$
BEGIN
    RETURN QUERY
    WITH p AS (
        SELECT p.operation_id, p.entry_id, count(*) AS n, sum((p.amount * 100)::bigint) AS s,
               min(p.line) FILTER (WHERE a.id IS NULL) AS bad_line
          FROM posting p LEFT JOIN account a ON a.operation_id = p.operation_id AND a.id = p.account_id
         WHERE p.txid = t
         GROUP BY 1, 2
    ), e AS (
        SELECT e.operation_id, e.id, e.period, e.reverses,
               (pe.code IS NULL OR pe.locked_at IS NOT NULL) AS bad_period,
               e.effective_date NOT BETWEEN pe.books_from AND pe.books_to AS misbooked
          FROM entry e LEFT JOIN ledger_booking pe ON pe.operation_id = e.operation_id AND pe.code = e.period
         WHERE e.txid = t
    )
    SELECT b.state, b.entry_id, ledger_problem(b.state, b.entry_id, b.operation_id, b.period, b.n, (b.s::numeric / 100)::numeric(18, 2), b.bad_line)
      FROM (
        SELECT CASE WHEN e.id IS NULL THEN 'IL004'
                    WHEN coalesce(p.n, 0) < 2 OR p.s <> 0 THEN 'IL001'
                    WHEN e.bad_period THEN 'IL003'
                    WHEN e.misbooked THEN 'IL009'
                    ELSE 'IL006' END AS state,
               coalesce(e.id, p.entry_id) AS entry_id, coalesce(e.operation_id, p.operation_id) AS operation_id,
               e.period, p.n, p.s, p.bad_line
          FROM e FULL JOIN p ON p.operation_id = e.operation_id AND p.entry_id = e.id
         WHERE e.id IS NULL OR p.entry_id IS NULL OR p.n < 2 OR p.s <> 0 OR e.bad_period OR e.misbooked OR p.bad_line IS NOT NULL
         ORDER BY e.id IS NULL DESC
         LIMIT 1
    ) b
    UNION ALL
    -- Reversals are few: each is looked up by key (OFFSET 0 keeps the lookup a subplan, not a
    -- hash of the whole entry table).
    SELECT 'IL007', e.id, format('entry %s refused: it reverses entry %s, which does not exist or is itself a reversal', e.id, e.reverses)
      FROM entry e
     WHERE e.txid = t AND e.reverses IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM entry r WHERE r.operation_id = e.operation_id AND r.id = e.reverses
                                               AND r.reverses IS NULL OFFSET 0)
    LIMIT 1;
END $$;

-- As 0017: every function resolves names in the schema only.
SELECT pin_search_paths();
