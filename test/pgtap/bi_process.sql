-- The aggregates of the process views (0.13.0): case_path (src/case_path.c)
-- for process_variants, case_trace and dfg_bins (src/process_dfg.c) for
-- process_dfg.  For any steps, in any order, case_path groups cases
-- exactly as their sequences of activities in process_steps' order
-- (occurred_at, then seq) group them, counts their steps and measures
-- first to last step, serially and in parallel workers whose partial
-- states are combined; dfg_bins gives the bins 0.12.0's window
-- formulation gave; a bytea that is not a trace is an error.  And both
-- views answer what 0.12.0's formulations answered (kept below as the
-- reference) on the BI fixture.
BEGIN;
SELECT plan(25);
SET LOCAL search_path = order_mgmt, public;

-- steps of 500 cases (1 to 6 steps of 4 activities, from hashes of the
-- case and the step): times on a coarse grid, so that many steps of a case
-- share a time and seq decides, and seq otherwise unrelated to time;
-- stored in the order of a third hash
CREATE TABLE cp (order_id bigint, activity text, occurred_at timestamptz, seq bigint);
INSERT INTO cp
SELECT c, (ARRAY['a', 'b', 'c', 'd'])[1 + abs(hashint4(c * 31 + s)) % 4],
       '2026-03-01'::timestamptz + (abs(hashint4(c * 7 + s)) % 5) * interval '90 minutes',
       (abs(hashint4(c * 13 + s * 101)) % 100000)::bigint * 10 + s
  FROM generate_series(1, 500) c
 CROSS JOIN LATERAL generate_series(1, 1 + abs(hashint4(c)) % 6) s
 ORDER BY hashint4(c * 17 + s);
-- for the parallel plan: 400 cases of 40 steps, 20 sequences 20 times each
-- (the same activities at the same positions), times and seqs differing
CREATE TABLE cp_big (order_id bigint, activity text, occurred_at timestamptz, seq bigint);
INSERT INTO cp_big
SELECT c, (ARRAY['a', 'b', 'c', 'd'])[1 + abs(hashint4((c % 20) * 31 + s)) % 4],
       '2026-03-01'::timestamptz + c * interval '1 hour' + s * interval '1 minute',
       c * 1000 + s
  FROM generate_series(1, 400) c
 CROSS JOIN generate_series(1, 40) s
 ORDER BY hashint4(c * 17 + s);
ANALYZE cp_big;
ANALYZE cp;

-- each case's sequence spelled out in process_steps' order: the reference
CREATE FUNCTION pg_temp.reference() RETURNS TABLE (order_id bigint, sequence text, steps bigint,
                                                   hours double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT c.order_id, string_agg(c.activity, '>' ORDER BY c.occurred_at, c.seq), count(*),
           date_part('epoch', max(c.occurred_at) - min(c.occurred_at)) / 3600
      FROM cp c GROUP BY c.order_id
     UNION ALL
    SELECT -c.order_id, string_agg(c.activity, '>' ORDER BY c.occurred_at, c.seq), count(*),
           date_part('epoch', max(c.occurred_at) - min(c.occurred_at)) / 3600
      FROM cp_big c GROUP BY c.order_id
$$;
CREATE FUNCTION pg_temp.paths() RETURNS TABLE (order_id bigint, p case_path)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT c.order_id, case_path(c.activity, c.occurred_at, c.seq) FROM cp c GROUP BY c.order_id
     UNION ALL
    SELECT -c.order_id, case_path(c.activity, c.occurred_at, c.seq) FROM cp_big c GROUP BY c.order_id
$$;
CREATE FUNCTION pg_temp.big_paths() RETURNS TABLE (order_id bigint, p case_path)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT c.order_id, case_path(c.activity, c.occurred_at, c.seq) FROM cp_big c GROUP BY c.order_id
$$;
-- true when (steps, variant_key) groups the cases as their sequences do:
-- as many groups as sequences, and no group with two sequences
CREATE FUNCTION pg_temp.same_grouping() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT count(DISTINCT r.sequence) = count(DISTINCT ((x.p).steps, (x.p).variant_key))
           AND count(DISTINCT r.sequence)
               = count(DISTINCT (r.sequence, (x.p).steps, (x.p).variant_key))
      FROM pg_temp.paths() x JOIN pg_temp.reference() r USING (order_id)
$$;

SELECT ok((SELECT count(DISTINCT r.sequence) BETWEEN 50 AND 450
                  AND count(*) FILTER (WHERE r.sequence <> (SELECT string_agg(c.activity, '>' ORDER BY c.seq)
                                                              FROM cp c WHERE c.order_id = r.order_id)) > 50
             FROM pg_temp.reference() r WHERE r.order_id > 0)
          AND (SELECT count(DISTINCT r.sequence) = 20 FROM pg_temp.reference() r WHERE r.order_id < 0),
          'the steps repeat sequences, and time reorders many cases');
SELECT ok(pg_temp.same_grouping(), 'case_path groups the cases as their sequences do');
SELECT set_eq('SELECT x.order_id, (x.p).steps, round((x.p).hours::numeric, 6) FROM pg_temp.paths() x',
              'SELECT r.order_id, r.steps, round(r.hours::numeric, 6) FROM pg_temp.reference() r',
              'case_path: the steps and the hours from the first to the last step');
SELECT isnt((SELECT case_path(a, t, s) FROM (VALUES ('a', '2026-01-01'::timestamptz, 1::bigint),
                                                     ('b', '2026-01-01', 2)) v(a, t, s)),
            (SELECT case_path(a, t, s) FROM (VALUES ('b', '2026-01-01'::timestamptz, 1::bigint),
                                                     ('a', '2026-01-01', 2)) v(a, t, s)),
            'a > b and b > a are two variants (at the same time, seq orders them)');
SELECT is((SELECT case_path(a, t, s) FROM (VALUES ('b', '2026-01-01 10:00'::timestamptz, 1::bigint),
                                                   ('a', '2026-01-01 09:00', 2)) v(a, t, s)),
          (SELECT case_path(a, t, s) FROM (VALUES ('a', '2026-01-01 09:00'::timestamptz, 7::bigint),
                                                   ('b', '2026-01-01 10:00', 3)) v(a, t, s)),
          'the time orders steps before seq does');
SELECT is((SELECT case_path(a, t, s) FROM (VALUES (NULL, '2026-01-01'::timestamptz, 1::bigint),
                                                   ('a', NULL, 2), ('a', '2026-01-01', NULL)) v(a, t, s)),
          NULL, 'a row with a null is not a step; no step: null');
SELECT is((SELECT case_path(c.activity, c.occurred_at, c.seq) FROM cp c WHERE false), NULL,
          'no rows: null');

-- parallel: partial states built in workers, serialized, combined
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL parallel_leader_participation = off;
SET LOCAL enable_hashagg = off;
CREATE FUNCTION pg_temp.plan(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
    o text := '';
BEGIN
    FOR r IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
        o := o || r || E'\n';
    END LOOP;
    RETURN o;
END $$;
SELECT matches(pg_temp.plan('SELECT * FROM pg_temp.big_paths()'),
               'Finalize GroupAggregate.*Gather Merge.*Workers Launched: [1-9].*Partial GroupAggregate',
               'in parallel, workers aggregate partially and the leader combines');
SELECT ok(pg_temp.same_grouping(), 'case_path combined from parallel workers groups as the sequences do');
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
RESET enable_hashagg;

-- dfg_bins over the traces = 0.12.0's bins (window functions), on the
-- three sets of steps and on steps with gaps from microseconds to days
CREATE TABLE cp_gaps (order_id bigint, activity text, occurred_at timestamptz, seq bigint);
INSERT INTO cp_gaps
SELECT c, (ARRAY['a', 'b', 'c'])[1 + abs(hashint4(c * 5 + s)) % 3],
       '2026-03-01'::timestamptz
           + (abs(hashint8(c * 1000 + s)) % (5 * 86400 * 1000000::bigint)) * interval '1 microsecond',
       c * 100 + s
  FROM generate_series(1, 300) c
 CROSS JOIN LATERAL generate_series(1, 1 + abs(hashint4(c * 3)) % 8) s;
CREATE FUNCTION pg_temp.bins_0_12(tbl regclass) RETURNS TABLE (activity text, next_activity text,
    bin double precision, n bigint, secs numeric)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH s AS (SELECT lag(c.activity) OVER w AS prev, c.activity,
                          c.occurred_at - lag(c.occurred_at) OVER w AS since_prev
                     FROM %s c WINDOW w AS (PARTITION BY c.order_id ORDER BY c.occurred_at, c.seq))
        SELECT s.prev, s.activity, floor(ln(1 + date_part('epoch', s.since_prev)) / ln(1.01)),
               count(*), round(sum(date_part('epoch', s.since_prev))::numeric, 3)
          FROM s GROUP BY 1, 2, 3$q$, tbl);
END $$;
CREATE FUNCTION pg_temp.bins(tbl regclass) RETURNS TABLE (activity text, next_activity text,
    bin double precision, n bigint, secs numeric)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT b.activity, b.next_activity, b.bin, b.n, round(b.secs::numeric, 3)
          FROM unnest((SELECT dfg_bins(t.trace)
                         FROM (SELECT case_trace(c.activity, c.occurred_at, c.seq) AS trace
                                 FROM %s c GROUP BY c.order_id) t)) b$q$, tbl);
END $$;
SELECT ok((SELECT count(DISTINCT bin) > 100 FROM pg_temp.bins_0_12('cp_gaps')),
          'the gaps fall into more than 100 bins');
SELECT set_eq('SELECT * FROM pg_temp.bins(''cp'')', 'SELECT * FROM pg_temp.bins_0_12(''cp'')',
              'dfg_bins = 0.12.0''s bins: steps at equal times');
SELECT set_eq('SELECT * FROM pg_temp.bins(''cp_gaps'')', 'SELECT * FROM pg_temp.bins_0_12(''cp_gaps'')',
              'dfg_bins = 0.12.0''s bins: gaps from microseconds to days');
SELECT set_eq('SELECT * FROM pg_temp.bins(''cp_big'')', 'SELECT * FROM pg_temp.bins_0_12(''cp_big'')',
              'dfg_bins = 0.12.0''s bins: long cases');
SELECT throws_ok($$SELECT dfg_bins(t) FROM (VALUES ('\x00000001'::bytea)) v(t)$$, '08P01', NULL,
                 'dfg_bins: a trace cut short is an error');
SELECT throws_ok($$SELECT dfg_bins(t) FROM (VALUES ('\xffffffff'::bytea)) v(t)$$, '22P03',
                 'not a case trace: a negative number of steps', 'dfg_bins: a negative count is an error');
SELECT throws_ok($$SELECT dfg_bins(t) FROM (VALUES ('\x0000000100000000000000007fffffff'::bytea)) v(t)$$,
                 '22P03', 'not a case trace: a length runs past its end',
                 'dfg_bins: a length past the end is an error');
SELECT throws_ok($$SELECT dfg_bins(t) FROM (VALUES ((SELECT case_trace(a, ts, s) FROM (VALUES ('a', '2026-01-02'::timestamptz, 1::bigint)) x(a, ts, s))
                                                    || '\x00'::bytea)) v(t)$$,
                 '08P01', NULL, 'dfg_bins: a trace with bytes after its steps is an error');
SELECT throws_ok($$SELECT dfg_bins(t) FROM (VALUES ('\x00000002000000000000000a0000000161000000000000000500000001'::bytea
                                                    || '\x62'::bytea)) v(t)$$,
                 '22P03', 'not a case trace: its steps are out of order',
                 'dfg_bins: steps out of order are an error');
SELECT is((SELECT case_trace(a, ts, s) FROM (VALUES (NULL::text, NULL::timestamptz, NULL::bigint)) v(a, ts, s)),
          NULL, 'case_trace: no step, no trace');

-- process_variants on the BI fixture = 0.12.0's formulation
\ir ../fixtures/bi_fixture.sql
CREATE FUNCTION pg_temp.variants_0_12() RETURNS TABLE (variant text, steps bigint, cases bigint,
    share numeric, mean_throughput_hours numeric, p90_throughput_hours numeric)
LANGUAGE sql STABLE AS $$
    WITH cases AS (
        SELECT s.case_id, count(*) AS steps,
               string_agg(s.activity, ' > ' ORDER BY s.step) AS variant,
               date_part('epoch', max(s.ts) - min(s.ts)) / 3600 AS hours
          FROM order_mgmt.process_steps s GROUP BY s.case_id)
    SELECT c.variant, min(c.steps), count(*),
           round(count(*)::numeric / sum(count(*)) OVER (), 4),
           round(avg(c.hours)::numeric, 2),
           round((percentile_cont(0.9) WITHIN GROUP (ORDER BY c.hours))::numeric, 2)
      FROM cases c GROUP BY c.variant
$$;
SELECT ok((SELECT count(*) > 5 FROM pg_temp.variants_0_12()), 'the fixture has several variants');
SELECT set_eq('SELECT variant, steps, cases, share, mean_throughput_hours, p90_throughput_hours
                 FROM order_mgmt.process_variants',
              'SELECT * FROM pg_temp.variants_0_12()',
              'process_variants = 0.12.0''s formulation on the fixture');
CREATE FUNCTION pg_temp.dfg_0_12() RETURNS TABLE (activity text, next_activity text, frequency bigint,
                                                 mean_hours numeric, p90_hours numeric)
LANGUAGE sql STABLE AS $$
    WITH bins AS MATERIALIZED (
        SELECT s.prev_activity AS activity, s.activity AS next_activity,
               floor(ln(1 + date_part('epoch', s.since_prev)) / ln(1.01)) AS bin,
               count(*) AS n, sum(date_part('epoch', s.since_prev)) AS secs
          FROM order_mgmt.process_steps s
         GROUP BY 1, 2, 3),
    pairs AS (
        SELECT b.activity, b.next_activity, sum(b.n)::bigint AS frequency,
               round((sum(b.secs) / 3600 / sum(b.n))::numeric, 2) AS mean_hours,
               round(((exp((min(b.bin) FILTER (WHERE b.cum >= 0.9 * b.total) + 0.5) * ln(1.01)) - 1)
                      / 3600)::numeric, 2) AS p90_hours
          FROM (SELECT x.*, sum(x.n) OVER (PARTITION BY x.activity, x.next_activity ORDER BY x.bin)
                                AS cum,
                       sum(x.n) OVER (PARTITION BY x.activity, x.next_activity) AS total
                  FROM bins x) b
         GROUP BY b.activity, b.next_activity)
    SELECT p.activity, p.next_activity, p.frequency, p.mean_hours, p.p90_hours FROM pairs p
    UNION ALL
    SELECT i.activity, NULL, i.n - coalesce(o.n, 0), NULL, NULL
      FROM (SELECT p.next_activity AS activity, sum(p.frequency)::bigint AS n
              FROM pairs p GROUP BY 1) i
      LEFT JOIN (SELECT p.activity, sum(p.frequency)::bigint AS n
                   FROM pairs p WHERE p.activity IS NOT NULL GROUP BY 1) o USING (activity)
     WHERE i.n > coalesce(o.n, 0)
$$;
SELECT set_eq('SELECT * FROM order_mgmt.process_dfg', 'SELECT * FROM pg_temp.dfg_0_12()',
              'process_dfg = 0.12.0''s formulation on the fixture');
-- a case whose order is gone (events outlive a deleted order) is not a case,
-- as in process_steps
-- (a case that shares its variant with an earlier case, so that the
-- variant stays and only its count tells)
WITH v AS (SELECT p.case_id, string_agg(p.activity, ' > ' ORDER BY p.step) AS variant
             FROM order_mgmt.process_steps p GROUP BY p.case_id)
SELECT max(v.case_id) AS gone FROM v
 WHERE EXISTS (SELECT FROM v w WHERE w.variant = v.variant AND w.case_id < v.case_id)
   AND NOT EXISTS (SELECT FROM order_mgmt.shipments s WHERE s.order_id = v.case_id) \gset
DELETE FROM order_mgmt.orders WHERE order_id = :gone;
SELECT ok((SELECT count(*) > 0 FROM order_mgmt.events WHERE order_id = :gone)
          AND NOT EXISTS (SELECT FROM order_mgmt.orders WHERE order_id = :gone),
          'the events of a deleted order stay in the log');
SELECT set_eq('SELECT variant, steps, cases, share, mean_throughput_hours, p90_throughput_hours
                 FROM order_mgmt.process_variants',
              'SELECT * FROM pg_temp.variants_0_12()',
              'a deleted order''s events are left out of process_variants, as process_steps leaves them out');
SELECT set_eq('SELECT * FROM order_mgmt.process_dfg', 'SELECT * FROM pg_temp.dfg_0_12()',
              'and out of process_dfg');
SELECT * FROM finish();
ROLLBACK;
