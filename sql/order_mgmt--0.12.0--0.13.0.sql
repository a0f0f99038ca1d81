/* order_mgmt 0.12.0 -> 0.13.0: the process views without a window over
 * the log (issue 13)
 * - process_variants and process_dfg numbered every step of the log with
 *   window functions over process_steps (one process, every step in case
 *   order): 4x and 6x a scan of the log at 1,000,000 orders.  Each case's
 *   steps are now read by its key and put in order by an aggregate in C:
 *   case_path (src/case_path.c) gives a case's number of steps, variant
 *   key and throughput time; case_trace and dfg_bins
 *   (src/process_dfg.c) give the directly-follows graph's histogram;
 * - is_process_step: process_steps' filter, now one function that the
 *   three views read the log with. */

\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit

CREATE FUNCTION @extschema@.is_process_step(entity text, to_status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT entity <> 'line' AND NOT (entity = 'shipment' AND to_status IS NULL)
$$;

CREATE OR REPLACE VIEW @extschema@.process_steps AS
SELECT e.order_id AS case_id,
       o.placed_at AS case_placed_at,
       row_number() OVER w AS step,
       e.event_type AS activity,
       e.occurred_at AS ts,
       e.seq,
       lag(e.event_type) OVER w AS prev_activity,
       e.occurred_at - lag(e.occurred_at) OVER w AS since_prev
  FROM @extschema@.events e
  JOIN @extschema@.orders o ON o.order_id = e.order_id
 WHERE @extschema@.is_process_step(e.entity, e.to_status)
WINDOW w AS (PARTITION BY e.order_id ORDER BY e.occurred_at, e.seq);

CREATE TYPE @extschema@.case_path AS (
    steps       bigint,
    variant_key bigint,
    hours       double precision
);

CREATE FUNCTION @extschema@.case_path_step(internal, activity text, occurred_at timestamptz,
                                           seq bigint)
RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'case_path_step';

CREATE FUNCTION @extschema@.case_path_combine(internal, internal) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'case_path_combine';

CREATE FUNCTION @extschema@.case_path_serialize(internal) RETURNS bytea
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'case_path_serialize';

CREATE FUNCTION @extschema@.case_path_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'case_path_deserialize';

CREATE FUNCTION @extschema@.case_path_final(internal) RETURNS @extschema@.case_path
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'case_path_final';

CREATE AGGREGATE @extschema@.case_path(activity text, occurred_at timestamptz, seq bigint) (
    SFUNC = @extschema@.case_path_step,
    STYPE = internal,
    FINALFUNC = @extschema@.case_path_final,
    COMBINEFUNC = @extschema@.case_path_combine,
    SERIALFUNC = @extschema@.case_path_serialize,
    DESERIALFUNC = @extschema@.case_path_deserialize,
    PARALLEL = SAFE
);

CREATE OR REPLACE VIEW @extschema@.process_variants AS
-- (cases and variants as materialized CTEs: on Citus the steps of each
-- case are read on the shards, the variants are grouped and ranked on the
-- coordinator, and the sequence of each variant's first case is read from
-- its shard, grouped by that case)
WITH cases AS MATERIALIZED (
    SELECT o.order_id AS case_id, (p.path).steps, (p.path).variant_key, (p.path).hours
      FROM @extschema@.orders o
     CROSS JOIN LATERAL (SELECT @extschema@.case_path(e.event_type, e.occurred_at, e.seq) AS path
                           FROM @extschema@.events e
                          WHERE e.order_id = o.order_id
                            AND @extschema@.is_process_step(e.entity, e.to_status)
                          GROUP BY e.order_id) p),
variants AS MATERIALIZED (
    SELECT c.steps, count(*) AS cases, avg(c.hours) AS mean_hours,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY c.hours) AS p90_hours,
           min(c.case_id) AS example_case_id
      FROM cases c
     GROUP BY c.variant_key, c.steps),
spelled AS MATERIALIZED (
    SELECT v.*, x.variant
      FROM variants v
     CROSS JOIN LATERAL (SELECT string_agg(p.activity, ' > ' ORDER BY p.step) AS variant
                           FROM @extschema@.process_steps p
                          WHERE p.case_id = v.example_case_id
                          GROUP BY p.case_id) x)
SELECT row_number() OVER (ORDER BY v.cases DESC, v.variant) AS variant_rank,
       v.variant,
       v.steps,
       v.cases,
       round(v.cases::numeric / sum(v.cases) OVER (), 4) AS share,
       round(v.mean_hours::numeric, 2) AS mean_throughput_hours,
       round(v.p90_hours::numeric, 2) AS p90_throughput_hours,
       v.example_case_id
  FROM spelled v;

CREATE TYPE @extschema@.dfg_bin AS (
    activity      text,
    next_activity text,
    bin           double precision,
    n             bigint,
    secs          double precision
);

CREATE FUNCTION @extschema@.case_trace_step(internal, activity text, occurred_at timestamptz,
                                            seq bigint)
RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'case_trace_step';

CREATE FUNCTION @extschema@.case_trace_combine(internal, internal) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'case_trace_combine';

CREATE FUNCTION @extschema@.case_trace_serialize(internal) RETURNS bytea
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'case_trace_serialize';

CREATE FUNCTION @extschema@.case_trace_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'case_trace_deserialize';

CREATE FUNCTION @extschema@.case_trace_final(internal) RETURNS bytea
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'case_trace_final';

CREATE AGGREGATE @extschema@.case_trace(activity text, occurred_at timestamptz, seq bigint) (
    SFUNC = @extschema@.case_trace_step,
    STYPE = internal,
    FINALFUNC = @extschema@.case_trace_final,
    COMBINEFUNC = @extschema@.case_trace_combine,
    SERIALFUNC = @extschema@.case_trace_serialize,
    DESERIALFUNC = @extschema@.case_trace_deserialize,
    PARALLEL = SAFE
);

CREATE FUNCTION @extschema@.dfg_bins_step(internal, trace bytea) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'dfg_bins_step';

CREATE FUNCTION @extschema@.dfg_bins_final(internal) RETURNS @extschema@.dfg_bin[]
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'dfg_bins_final';

CREATE AGGREGATE @extschema@.dfg_bins(trace bytea) (
    SFUNC = @extschema@.dfg_bins_step,
    STYPE = internal,
    FINALFUNC = @extschema@.dfg_bins_final,
    PARALLEL = SAFE
);

CREATE VIEW @extschema@.process_traces AS
SELECT o.order_id AS case_id, o.placed_at AS case_placed_at, t.trace
  FROM @extschema@.orders o
 CROSS JOIN LATERAL (SELECT @extschema@.case_trace(e.event_type, e.occurred_at, e.seq) AS trace
                       FROM @extschema@.events e
                      WHERE e.order_id = o.order_id
                        AND @extschema@.is_process_step(e.entity, e.to_status)
                      GROUP BY e.order_id) t;

CREATE OR REPLACE VIEW @extschema@.process_dfg AS
WITH bins AS MATERIALIZED (
    SELECT b.activity, b.next_activity, b.bin, b.n, b.secs
      FROM unnest((SELECT @extschema@.dfg_bins(t.trace)
                     FROM @extschema@.process_traces t)) b),
pairs AS (
    SELECT b.activity, b.next_activity, sum(b.n)::bigint AS frequency,
           round((sum(b.secs) / 3600 / sum(b.n))::numeric, 2) AS mean_hours,
           -- the first bin at or above 90 % of the pair, at its geometric middle
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
 WHERE i.n > coalesce(o.n, 0);

CREATE OR REPLACE FUNCTION @extschema@.process_dfg(since timestamptz DEFAULT NULL,
                                        until timestamptz DEFAULT NULL)
RETURNS TABLE (activity text, next_activity text, frequency bigint, mean_hours numeric,
               p90_hours numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN QUERY
    WITH bins AS MATERIALIZED (
        SELECT b.activity, b.next_activity, b.bin, b.n, b.secs
          FROM unnest((SELECT @extschema@.dfg_bins(t.trace)
                         FROM @extschema@.process_traces t
                        WHERE (process_dfg.since IS NULL OR t.case_placed_at >= process_dfg.since)
                          AND (process_dfg.until IS NULL OR t.case_placed_at < process_dfg.until)))
               b),
    pairs AS (
        SELECT b.activity, b.next_activity, sum(b.n)::bigint AS frequency,
               round((sum(b.secs) / 3600 / sum(b.n))::numeric, 2) AS mean_hours,
               -- the first bin at or above 90 % of the pair, at its geometric middle
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
     WHERE i.n > coalesce(o.n, 0);
END;
$$;


REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.status_class(text, text), @extschema@.current_actor()
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.status_in_class(text, text, text[]),
                          @extschema@.class_entered(text, text, text, text[])
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.is_process_step(text, text),
    @extschema@.case_path(text, timestamptz, bigint),
    @extschema@.case_trace(text, timestamptz, bigint),
    @extschema@.dfg_bins(bytea)
TO order_mgmt_reader, order_mgmt_operator;
-- (operator first: the ACL then reads as a fresh install's, where the
-- operator's SELECT on every table and view comes first)
GRANT SELECT ON @extschema@.process_traces TO order_mgmt_operator;
GRANT SELECT ON @extschema@.process_traces TO order_mgmt_reader;
