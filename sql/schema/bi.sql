-- BI and process mining (issue 13, schema 0.8.0): the event log with XES
-- names, one row of facts per order, daily KPIs, process variants and the
-- directly-follows graph, the open orders at risk, stock available to
-- promise; a Graphviz process map and an IEEE XES export.  Every
-- definition (denominators, time zone, exclusions, thresholds) is written
-- out in docs/bi.md.
--
-- Everything here reads tables and views of earlier phases (orders, lines,
-- shipments, tracking_events, holds, payments, returns, events, stock,
-- order_overview), so it works whatever path wrote them.  Status meanings
-- come from status classes (status_class), never names, except where a
-- figure is defined by a seed status and docs/bi.md says so.  The views
-- are read with the view owner's rights; the functions they call are
-- SECURITY INVOKER and read views only, so order_mgmt_reader needs SELECT
-- on the views and EXECUTE on these functions (and on status_class and
-- estimate_order_window, which it has), nothing that reads the tables as
-- their owner.

------------------------------------------------------------------------
-- Settings.  At most one row; no row (the default) or a null column means
-- the documented default of bi_config.  Dumped with the user's data.
------------------------------------------------------------------------
CREATE TABLE @extschema@.bi_settings (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- an order waiting in a pending, held or open status longer than this
    -- is "stuck" (open_order_risk)
    stuck_after   interval CHECK (stuck_after > interval '0'),
    -- LIKE patterns of actors that are systems, not people: their events
    -- are never manual, even when not marked automated
    system_actors text[] CHECK (array_position(system_actors, NULL) IS NULL),
    -- the most events one export_xes document may hold; the document is
    -- built in memory (about 430 bytes an event) and a value must stay
    -- below 1 GB, so 1,000,000 is also the ceiling
    xes_max_events int CHECK (xes_max_events BETWEEN 1 AND 1000000)
);

-- The settings in force: the one home of the defaults.
CREATE VIEW @extschema@.bi_config AS
SELECT coalesce(s.stuck_after, interval '48 hours') AS stuck_after,
       coalesce(s.system_actors, '{}'::text[]) AS system_actors,
       coalesce(s.xes_max_events, 1000000) AS xes_max_events
  FROM (SELECT) AS one
  LEFT JOIN @extschema@.bi_settings s ON true;

-- Is an event manual: not marked automated, and by an actor that is not a
-- system (bi_settings.system_actors).  The one home of that rule (inlined).
CREATE FUNCTION @extschema@.is_manual_event(automated boolean, actor text, system_actors text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT NOT automated AND NOT (actor LIKE ANY (system_actors))
$$;

-- What order_facts reads from an order's events, in one pass (src/bi.c;
-- the definitions are in docs/bi.md, "order_facts").  Its result does not
-- depend on the order of the events, so it also aggregates in parallel.
CREATE TYPE @extschema@.event_facts AS (
    events        bigint,
    manual_events bigint,
    confirmed_at  timestamptz,
    completed_at  timestamptz,
    rework_steps  bigint
);

CREATE FUNCTION @extschema@.event_facts_step(internal, entity text, entity_id bigint,
                                             from_status text, to_status text,
                                             occurred_at timestamptz, automated boolean,
                                             actor text, system_actors text[])
RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'event_facts_step';
CREATE FUNCTION @extschema@.event_facts_combine(internal, internal) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'event_facts_combine';
CREATE FUNCTION @extschema@.event_facts_serialize(internal) RETURNS bytea
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'event_facts_serialize';
CREATE FUNCTION @extschema@.event_facts_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'event_facts_deserialize';
CREATE FUNCTION @extschema@.event_facts_final(internal) RETURNS @extschema@.event_facts
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'event_facts_final';

CREATE AGGREGATE @extschema@.event_facts(entity text, entity_id bigint, from_status text,
                                         to_status text, occurred_at timestamptz,
                                         automated boolean, actor text, system_actors text[]) (
    SFUNC = @extschema@.event_facts_step,
    STYPE = internal,
    FINALFUNC = @extschema@.event_facts_final,
    COMBINEFUNC = @extschema@.event_facts_combine,
    SERIALFUNC = @extschema@.event_facts_serialize,
    DESERIALFUNC = @extschema@.event_facts_deserialize,
    PARALLEL = SAFE
);

-- The events of one order in the order they happened: (order_id,
-- occurred_at, seq).  Covers the columns the per-order views read, so they
-- read the log in case order from the index alone (index-only scan; the
-- log is append-only, so vacuum keeps its pages all-visible).
CREATE INDEX events_case_idx ON @extschema@.events (order_id, occurred_at, seq)
    INCLUDE (entity, entity_id, event_type, from_status, to_status, automated, actor);

------------------------------------------------------------------------
-- order_zones: the warehouse whose time zone an order's dates and KPIs are
-- counted in: the order's warehouse_id, else the lowest warehouse_id of its
-- lines still to be delivered, else of all its lines (set by their
-- reservation), else none (UTC).  open_order_risk reads the same rule from
-- the lines still to be delivered (order_lines_open_idx).
------------------------------------------------------------------------
-- The quantities of each order's lines, and the warehouse of its zone rule.
CREATE VIEW @extschema@.order_line_totals AS
SELECT x.order_id,
       coalesce(min(x.warehouse_id) FILTER (WHERE x.qty_delivered + x.qty_cancelled < x.qty),
                min(x.warehouse_id)) AS lines_warehouse_id,
       sum(x.qty)::int AS qty_ordered,
       sum(x.qty_cancelled)::int AS qty_cancelled,
       sum(x.qty - x.qty_cancelled)::int AS qty_due,
       sum(x.qty_delivered)::int AS qty_delivered,
       sum(x.qty_returned)::int AS qty_returned
  FROM @extschema@.order_lines x
 GROUP BY x.order_id;

CREATE VIEW @extschema@.order_zones AS
SELECT o.order_id, w.warehouse_id, coalesce(w.tz, 'UTC') AS tz
  FROM @extschema@.orders o
  LEFT JOIN @extschema@.order_line_totals l ON l.order_id = o.order_id
  LEFT JOIN @extschema@.warehouses w
         ON w.warehouse_id = coalesce(o.warehouse_id, l.lines_warehouse_id);

-- The lines still to be delivered (of orders not finished): open_order_risk
-- finds the open orders and their quantities here.  Small: a few lines per
-- thousand in a long history.
CREATE INDEX order_lines_open_idx ON @extschema@.order_lines (order_id)
    INCLUDE (warehouse_id, qty, qty_cancelled, qty_shipped, qty_delivered, qty_backordered)
    WHERE qty_delivered + qty_cancelled < qty;
-- (0.11.0) How many lines are still to be delivered.  For a comparison of
-- two columns the planner guesses a third of the table: it costed
-- open_order_risk like a scan of the whole history and JIT-compiled it
-- (0.8 s of 0.9 s at 1,000,000 orders with the server's default settings).
-- It reads these statistics for the same test spelled "(...) IS TRUE",
-- which open_order_risk adds to the index's predicate.
CREATE STATISTICS @extschema@.order_lines_open_stat
    ON ((qty_delivered + qty_cancelled < qty)) FROM @extschema@.order_lines;

------------------------------------------------------------------------
-- event_log: one row per event, with the XES standard names (case_id =
-- concept:name of the trace, activity = concept:name of the event, ts =
-- time:timestamp, resource = org:resource, lifecycle = lifecycle:transition)
-- and the order's attributes.  Canonical order: case_id, ts, seq.
------------------------------------------------------------------------
CREATE VIEW @extschema@.event_log AS
SELECT e.order_id AS case_id,
       e.event_type AS activity,
       e.occurred_at AS ts,
       e.actor AS resource,
       'complete'::text AS lifecycle,
       e.seq,
       e.event_id,
       e.entity,
       e.entity_id,
       e.from_status,
       e.to_status,
       e.automated,
       @extschema@.is_manual_event(e.automated, e.actor, c.system_actors) AS manual,
       e.db_role,
       e.reason,
       o.channel,
       o.customer_id,
       z.warehouse_id,
       o.placed_at AS case_placed_at
  FROM @extschema@.events e
  JOIN @extschema@.orders o ON o.order_id = e.order_id
  JOIN @extschema@.order_zones z ON z.order_id = e.order_id
 CROSS JOIN @extschema@.bi_config c;

------------------------------------------------------------------------
-- order_facts: one row per order.  Its dates count in its zone (the rule
-- of order_zones), promised dates are local dates there, so a promised day
-- ends at the local midnight after it (deadline).  Cancelled orders have
-- null delivery KPIs.  Undecided KPIs (promise not passed yet, nothing
-- delivered) are null.  Deliveries are the shipments' delivered_at (the
-- carrier's time of the delivering checkpoint); returned units are the
-- accepted units of inspected returns (order_lines.qty_returned, what
-- return_status is derived from).
------------------------------------------------------------------------
CREATE VIEW @extschema@.order_facts AS
SELECT f.order_id,
       f.customer_id,
       f.channel,
       f.status,
       f.status_class,
       f.warehouse_id,
       f.tz,
       f.placed_at,
       (f.placed_at AT TIME ZONE f.tz)::date AS placed_day,
       f.confirmed_at,
       f.promised_ship_latest,
       f.promised_delivery_earliest,
       f.promised_delivery_latest,
       coalesce(f.shipments, 0) AS shipments,
       f.first_dispatch_at,
       f.first_delivery_at,
       f.last_delivery_at,
       coalesce(f.failed_shipments, 0) AS failed_shipments,
       coalesce(f.failed_attempts, 0) AS failed_attempts,
       f.completed_at,
       f.qty_ordered,
       f.qty_cancelled,
       f.qty_due,
       f.qty_delivered,
       f.on_time,
       f.in_full,
       f.on_time AND f.in_full AS otif,
       CASE WHEN f.status_class <> 'cancelled' AND f.qty_due > 0
                 AND f.qty_delivered >= f.qty_due
            THEN round(extract(epoch FROM f.last_delivery_at - f.placed_at) / 3600, 2)
       END AS cycle_time_hours,
       coalesce(f.holds, 0) AS holds,
       f.hold_hours,
       f.credit_hold_hours,
       f.payment_hold_hours,
       f.stock_hold_hours,
       f.address_hold_hours,
       f.fraud_hold_hours,
       f.manual_hold_hours,
       coalesce(f.events, 0) AS events,
       coalesce(f.manual_events, 0) AS manual_events,
       coalesce(f.events - f.manual_events, 0) AS automated_events,
       coalesce(f.manual_events, 0) = 0 AS touchless,
       coalesce(f.rework_steps, 0) AS rework_steps,
       coalesce(f.rework_steps, 0) > 0 AS rework,
       coalesce(f.qty_returned, 0) AS returned_qty,
       f.return_status,
       coalesce(f.refunded_amount, 0) AS refunded_amount,
       coalesce(f.return_refunded_amount, 0) AS return_refunded_amount
  -- delivery KPIs: measured for orders with a promise that are not
  -- cancelled, null while undecided (promise not passed, not delivered).
  -- (Computed a level up, not in a LATERAL (SELECT ...) without FROM:
  -- Citus pushes down no such subquery that calls now() or status_class.)
  FROM (SELECT y.*,
               CASE WHEN y.status_class = 'cancelled' OR y.deadline IS NULL THEN NULL
                    WHEN y.first_delivery_at < y.deadline THEN true
                    WHEN y.first_delivery_at >= y.deadline OR now() >= y.deadline THEN false
               END AS on_time,
               CASE WHEN y.status_class = 'cancelled' OR y.deadline IS NULL THEN NULL
                    WHEN y.qty_delivered >= y.qty_due AND y.last_delivery_at < y.deadline THEN true
                    WHEN now() >= y.deadline THEN false
               END AS in_full
          FROM (SELECT o.order_id, o.customer_id, o.channel, o.status, o.status_class,
                       z.warehouse_id, z.tz, o.placed_at, o.promised_ship_latest,
                       o.promised_delivery_earliest, o.promised_delivery_latest, d.deadline,
                       o.return_status,
                       l.qty_ordered, l.qty_cancelled, l.qty_due, l.qty_delivered, l.qty_returned,
                       ev.events, ev.manual_events, ev.confirmed_at, ev.completed_at, ev.rework_steps,
                       sh.shipments, sh.failed_shipments, sh.first_dispatch_at,
                       sh.first_delivery_at, sh.last_delivery_at,
                       ta.failed_attempts,
                       h.holds, h.hold_hours, h.credit_hold_hours, h.payment_hold_hours,
                       h.stock_hold_hours, h.address_hold_hours, h.fraud_hold_hours,
                       h.manual_hold_hours,
                       p.refunded_amount, p.return_refunded_amount
                  FROM (SELECT x.*, @extschema@.status_class('order', x.status) AS status_class
                          FROM @extschema@.orders x) o
                  -- (order_zones' rule on the same line totals)
                  LEFT JOIN @extschema@.order_line_totals l ON l.order_id = o.order_id
                  LEFT JOIN @extschema@.warehouses w
                         ON w.warehouse_id = coalesce(o.warehouse_id, l.lines_warehouse_id)
                 CROSS JOIN LATERAL (SELECT w.warehouse_id, coalesce(w.tz, 'UTC') AS tz) z
                  -- a promised day ends at the local midnight after it
                 CROSS JOIN LATERAL (SELECT ((o.promised_delivery_latest + 1)::timestamp AT TIME ZONE z.tz)
                                            AS deadline) d
                  -- the log: confirmation (first entering the open class), completion
                  -- (the completed class), manual events, rework (an order, shipment or
                  -- return entering a status again along an edge: moves into or out of a
                  -- held status are waiting, not rework), in one pass (event_facts,
                  -- grouped by order_id, so Citus runs it on the shards)
                  LEFT JOIN (SELECT y.order_id, (y.f).events, (y.f).manual_events,
                                    (y.f).confirmed_at, (y.f).completed_at, (y.f).rework_steps
                               FROM (SELECT e.order_id,
                                            @extschema@.event_facts(e.entity, e.entity_id,
                                                e.from_status, e.to_status, e.occurred_at,
                                                e.automated, e.actor,
                                                (SELECT c.system_actors FROM @extschema@.bi_config c))
                                                AS f
                                       FROM @extschema@.events e
                                      GROUP BY e.order_id) y) ev
                         ON ev.order_id = o.order_id
                  -- shipments: not cancelled, failed (lost, returned to sender)
                  LEFT JOIN (SELECT s.order_id,
                                    count(*) FILTER (WHERE s.class <> 'cancelled') AS shipments,
                                    count(*) FILTER (WHERE s.class = 'failed') AS failed_shipments,
                                    min(s.dispatched_at) AS first_dispatch_at,
                                    min(s.delivered_at) AS first_delivery_at,
                                    max(s.delivered_at) AS last_delivery_at
                               FROM (SELECT x.order_id, x.dispatched_at, x.delivered_at,
                                            @extschema@.status_class('shipment', x.status) AS class
                                       FROM @extschema@.shipments x) s
                              GROUP BY s.order_id) sh
                         ON sh.order_id = o.order_id
                  -- missed deliveries: carrier checkpoints of the seed status failed_attempt
                  LEFT JOIN (SELECT t.order_id, count(*) AS failed_attempts
                               FROM @extschema@.tracking_events t
                              WHERE t.code = 'failed_attempt'
                              GROUP BY t.order_id) ta
                         ON ta.order_id = o.order_id
                  LEFT JOIN (SELECT x.order_id,
                                    count(*) AS holds,
                                    round(sum(x.hours), 2) AS hold_hours,
                                    round(sum(x.hours) FILTER (WHERE x.kind = 'credit'), 2) AS credit_hold_hours,
                                    round(sum(x.hours) FILTER (WHERE x.kind = 'payment'), 2) AS payment_hold_hours,
                                    round(sum(x.hours) FILTER (WHERE x.kind = 'stock'), 2) AS stock_hold_hours,
                                    round(sum(x.hours) FILTER (WHERE x.kind = 'address'), 2) AS address_hold_hours,
                                    round(sum(x.hours) FILTER (WHERE x.kind = 'fraud'), 2) AS fraud_hold_hours,
                                    round(sum(x.hours) FILTER (WHERE x.kind = 'manual'), 2) AS manual_hold_hours
                               FROM (SELECT y.order_id, y.kind,
                                            extract(epoch FROM coalesce(y.released_at, now()) - y.placed_at)
                                            / 3600 AS hours
                                       FROM @extschema@.order_holds y) x
                              GROUP BY x.order_id) h
                         ON h.order_id = o.order_id
                  -- succeeded refunds, and those linked to a return (refund_return, refund_payment's return_id)
                  LEFT JOIN (SELECT y.order_id, sum(y.amount) AS refunded_amount,
                                    coalesce(sum(y.amount) FILTER (WHERE y.return_id IS NOT NULL), 0)
                                        AS return_refunded_amount
                               FROM @extschema@.payments y
                              WHERE y.kind = 'refund' AND y.status = 'succeeded'
                              GROUP BY y.order_id) p
                         ON p.order_id = o.order_id) y) f;

------------------------------------------------------------------------
-- kpi_daily: KPIs by day of placement (local day in the order's time
-- zone) and channel.  Rows with channel 'all' sum every channel; rows with
-- day null sum every day.  Rates are fractions (0.5 = 50 %), null when
-- their denominator is empty; each denominator is in docs/bi.md.
------------------------------------------------------------------------
CREATE VIEW @extschema@.kpi_daily AS
-- (the facts as a materialized CTE: on Citus the per-order rows are
-- computed on the shards and the grouping sets and percentiles across
-- orders on the coordinator: Citus runs no GROUPING SETS over a
-- distributed table)
WITH facts AS MATERIALIZED (
    SELECT x.placed_day, x.channel, x.events, x.status_class, x.first_delivery_at,
           x.on_time, x.in_full, x.otif, x.cycle_time_hours, x.touchless,
           x.credit_hold_hours, x.rework, x.returned_qty
      FROM @extschema@.order_facts x)
SELECT f.placed_day AS day,
       CASE WHEN grouping(f.channel) = 1 THEN 'all' ELSE f.channel END AS channel,
       count(*) AS orders,
       sum(f.events) AS events,
       count(*) FILTER (WHERE f.status_class = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE f.first_delivery_at IS NOT NULL
                          AND f.status_class <> 'cancelled') AS delivered,
       count(f.on_time) AS measured,
       round(avg(f.on_time::int), 4) AS otd_rate,
       round(avg(f.in_full::int), 4) AS in_full_rate,
       round(avg(f.otif::int), 4) AS otif_rate,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY f.cycle_time_hours)::numeric, 2)
           AS cycle_time_p50_hours,
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY f.cycle_time_hours)::numeric, 2)
           AS cycle_time_p90_hours,
       round(avg(f.touchless::int), 4) AS touchless_rate,
       round(avg((f.credit_hold_hours IS NOT NULL)::int), 4) AS credit_hold_rate,
       round(avg(f.credit_hold_hours), 2) AS credit_hold_mean_hours,
       round(avg(f.rework::int), 4) AS rework_rate,
       round(avg((f.returned_qty > 0)::int)
                 FILTER (WHERE f.first_delivery_at IS NOT NULL
                           AND f.status_class <> 'cancelled'), 4) AS return_rate
  FROM facts f
 GROUP BY GROUPING SETS ((f.placed_day, f.channel), (f.placed_day), (f.channel), ());

------------------------------------------------------------------------
-- process_steps: the events that make up the process of an order,
-- numbered in case order, with the step before.  Left out: line events,
-- which repeat per order line, and shipment events that move no status
-- (shipment.checkpoint: the carrier's scan as received; the moves it
-- causes are steps of their own, and a scan that arrives late moves
-- nothing), which would split variants by the number of lines and scans.
-- Variants, the directly-follows graph and the process map are built
-- from it.
------------------------------------------------------------------------
-- (0.13.0) Is an event of the log a process step: the one home of
-- process_steps' filter, which process_variants and process_traces also
-- read the log with.
CREATE FUNCTION @extschema@.is_process_step(entity text, to_status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT entity <> 'line' AND NOT (entity = 'shipment' AND to_status IS NULL)
$$;

CREATE VIEW @extschema@.process_steps AS
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

-- (0.13.0) The directly-follows graph's histogram in two aggregates (C,
-- src/process_dfg.c): case_trace puts one case's steps in process_steps'
-- order (occurred_at, then seq) into a trace, read by the case's key;
-- dfg_bins sums the traces of all cases into one row per (activity, next
-- activity, bin) with its count and seconds, the bins below.  No window
-- over the log, and no grouping of every step.
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

-- Each case's trace (case_trace), for process_dfg: the steps of an order
-- that exists, read by its key (grouped by it: Citus runs it on the
-- order's shard).  A trace is bytes only dfg_bins reads.
CREATE VIEW @extschema@.process_traces AS
SELECT o.order_id AS case_id, o.placed_at AS case_placed_at, t.trace
  FROM @extschema@.orders o
 CROSS JOIN LATERAL (SELECT @extschema@.case_trace(e.event_type, e.occurred_at, e.seq) AS trace
                       FROM @extschema@.events e
                      WHERE e.order_id = o.order_id
                        AND @extschema@.is_process_step(e.entity, e.to_status)
                      GROUP BY e.order_id) t;

-- The directly-follows graph of the cases placed in [since, until) (null:
-- unbounded): one row per pair of activities that follow each other in a
-- case, with how often and how long between them; activity null = the case
-- starts with next_activity, next_activity null = the case ends with
-- activity.  Every occurrence of an activity has one incoming and one
-- outgoing edge, so the ends are the occurrences minus the outgoing pairs.
-- p90_hours comes from a histogram of 1 % wide logarithmic bins (dfg_bins,
-- above): within 0.5 % of the exact 90th percentile (exact would sort
-- every step).  The view is the one home of these rules; process_dfg(since,
-- until) runs the same query on the cases placed in the period.
-- (On Citus each case's trace is made on its shard, dfg_bins sums them on
-- the coordinator, bins being a materialized CTE.)
CREATE VIEW @extschema@.process_dfg AS
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

-- (PL/pgSQL, not SQL: Citus plans no SQL function with parameters that
-- reads a distributed table, and an inlined one would read the
-- coordinator's empty shells.  The query of the process_dfg view, on the
-- steps of the period: keep the two the same.)
CREATE FUNCTION @extschema@.process_dfg(since timestamptz DEFAULT NULL,
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

-- (0.13.0) The path of one case: its number of steps, an order-sensitive
-- 64-bit key of its sequence of activities and its throughput time in
-- hours, from its steps in any order (src/case_path.c puts them in
-- process_steps' order, occurred_at then seq).  No window over the log:
-- process_variants reads each case's steps by its key (Citus on the
-- order's shard); the states also combine (parallel aggregation).
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

-- Variants: the distinct sequences of process steps, with the cases that
-- follow each, their share of all cases and their throughput time (first
-- to last step).  Cases are grouped by their number of steps and an
-- order-sensitive 64-bit key (case_path), so they group by hashing, not by
-- comparing long texts; the sequence is spelled out once per variant, from
-- its first case.  The cases are those of process_steps: the steps of
-- orders that exist (case_path reads the log with process_steps' filter).
CREATE VIEW @extschema@.process_variants AS
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

------------------------------------------------------------------------
-- open_order_risk: orders of the pending, held, open and shipping classes
-- that are late by their current estimate, past a promised date, blocked
-- (an open hold, a backorder, waiting in a pending, held or open status
-- longer than bi_config.stuck_after) or have a parcel that will not
-- arrive.  One row per order with every reason that applies, most urgent
-- first.  Open orders are found through their lines still to be delivered
-- (order_lines_open_idx), so the view costs in proportion to the open
-- orders, not to the history: per open order its row, its shipments (read
-- once: the window and the failed parcels), its lines only while its own
-- estimate counts, its last status move only when not shipped yet.  The
-- current estimate is the one order_overview shows the customer, by the
-- same rules (own_estimate_due, shipment_window_counts,
-- current_window_bound).
------------------------------------------------------------------------
CREATE VIEW @extschema@.open_order_risk AS
SELECT x.order_id, x.customer_id, x.channel, x.status, x.status_class, x.warehouse_id,
       x.placed_at, x.promised_ship_latest, x.promised_delivery_latest,
       x.estimated_delivery_latest,
       x.promised_delivery_latest - x.today AS days_left,
       x.estimated_delivery_latest - x.promised_delivery_latest AS days_late,
       x.in_status_since,
       round(extract(epoch FROM now() - x.in_status_since) / 3600, 1) AS hours_in_status,
       x.open_holds,
       x.failed_shipment_ids,
       x.qty_backordered,
       array_to_string(x.reasons, ', ') AS reason,
       x.reasons
  FROM (SELECT y.*,
               array_remove(ARRAY[
                   CASE WHEN y.promised_delivery_latest < y.today AND y.qty_undelivered > 0
                        THEN 'delivery overdue' END,
                   CASE WHEN y.promised_ship_latest < y.today AND y.qty_unshipped > 0
                        THEN 'ship date passed' END,
                   y.failed_note,
                   CASE WHEN y.estimated_delivery_latest > y.promised_delivery_latest
                        THEN 'late estimate' END,
                   CASE WHEN y.promised_delivery_latest IS NOT NULL AND y.estimate_note IS NOT NULL
                        THEN 'no estimate: ' || y.estimate_note END,
                   CASE WHEN y.open_holds IS NOT NULL
                        THEN 'on hold: ' || array_to_string(y.open_holds, ', ') END,
                   CASE WHEN y.qty_backordered > 0 THEN 'backorder' END,
                   CASE WHEN y.status_class IN ('pending', 'held', 'open')
                             AND now() - y.in_status_since > y.stuck_after
                        THEN 'stuck in ' || y.status END], NULL) AS reasons
          FROM (SELECT o.order_id, o.customer_id, o.channel, o.status, o.class AS status_class,
                       w.warehouse_id, o.placed_at, o.promised_ship_latest,
                       o.promised_delivery_latest, c.stuck_after,
                       (now() AT TIME ZONE coalesce(w.tz, 'UTC'))::date AS today,
                       @extschema@.current_window_bound(s.estimated_latest, e.delivery_latest,
                                                        e.known) AS estimated_delivery_latest,
                       e.note AS estimate_note,
                       l.qty_unshipped, l.qty_undelivered, l.qty_backordered,
                       hl.open_holds, s.failed_shipment_ids,
                       -- the failed parcels' statuses (rare: read only then)
                       CASE WHEN s.failed_shipment_ids IS NOT NULL THEN
                           (SELECT string_agg(format('shipment %s %s', x.shipment_id, x.status),
                                              ', ' ORDER BY x.shipment_id)
                              FROM @extschema@.shipments x
                             WHERE x.order_id = o.order_id
                               AND x.shipment_id = ANY (s.failed_shipment_ids)
                             GROUP BY x.order_id) END AS failed_note,
                       -- waiting since: the latest order status event (not shipped yet)
                       CASE WHEN o.class <> 'shipping' THEN
                           coalesce((SELECT max(x.occurred_at) FROM @extschema@.events x
                                      WHERE x.order_id = o.order_id AND x.entity = 'order'
                                        AND x.to_status IS NOT NULL
                                      GROUP BY x.order_id), o.placed_at) END AS in_status_since
                  -- an order is open while it has units to deliver
                  FROM (SELECT x.order_id, min(x.warehouse_id) AS warehouse_id,
                               sum(x.qty - x.qty_cancelled - x.qty_shipped)::int AS qty_unshipped,
                               sum(x.qty - x.qty_cancelled - x.qty_delivered)::int AS qty_undelivered,
                               sum(x.qty_backordered)::int AS qty_backordered
                          FROM @extschema@.order_lines x
                         WHERE x.qty_delivered + x.qty_cancelled < x.qty
                           -- (the same test, estimated from order_lines_open_stat)
                           AND (x.qty_delivered + x.qty_cancelled < x.qty) IS TRUE
                         GROUP BY x.order_id) l
                  -- open holds of the open orders, joined on the open lines so
                  -- that each is read once
                  LEFT JOIN (SELECT x.order_id, array_agg(DISTINCT x.kind ORDER BY x.kind) AS open_holds
                               FROM @extschema@.order_holds x WHERE x.released_at IS NULL
                              GROUP BY x.order_id) hl ON hl.order_id = l.order_id
                 -- (grouped by its key: look each order up by its key, not
                 -- hash the whole history, and Citus pushes down a grouped
                 -- lateral subquery on order_id, not one with OFFSET)
                 CROSS JOIN LATERAL (SELECT ROW(z.*)::@extschema@.orders AS orow, z.*,
                                            @extschema@.status_class('order', z.status) AS class
                                       FROM @extschema@.orders z
                                      WHERE z.order_id = l.order_id
                                      GROUP BY z.order_id) o
                 CROSS JOIN @extschema@.bi_config c
                  LEFT JOIN @extschema@.warehouses w
                    ON w.warehouse_id = coalesce(o.warehouse_id, l.warehouse_id)
                  -- the shipments' part of the current window, and the parcels
                  -- that will not arrive (class failed: lost, returned to sender)
                  LEFT JOIN LATERAL (
                       SELECT max(x.estimated_delivery_latest)
                                  FILTER (WHERE @extschema@.shipment_window_counts(x.status))
                                  AS estimated_latest,
                              array_agg(x.shipment_id ORDER BY x.shipment_id)
                                  FILTER (WHERE @extschema@.status_class('shipment', x.status) = 'failed')
                                  AS failed_shipment_ids,
                              CASE WHEN bool_or(@extschema@.status_class('shipment', x.status)
                                                = 'preparing') THEN
                                   (SELECT sum(a.qty) FROM @extschema@.allocated_units a
                                     WHERE a.order_id = x.order_id GROUP BY a.order_id) END
                                  AS qty_allocated
                         FROM @extschema@.shipments x
                        WHERE x.order_id = o.order_id
                        GROUP BY x.order_id) s ON true
                  -- the order's own estimate, when it counts
                  LEFT JOIN LATERAL (
                       SELECT (z.w).delivery_latest, (z.w).known, (z.w).note
                         FROM (SELECT @extschema@.estimate_order_window(o.orow,
                                          array_agg(ROW(x.*)::@extschema@.order_lines
                                                    ORDER BY x.line_no)) AS w
                                 FROM @extschema@.order_lines x
                                WHERE x.order_id = o.order_id
                                  AND @extschema@.own_estimate_due(o.status, l.qty_unshipped,
                                                                   s.qty_allocated)
                                GROUP BY x.order_id) z) e ON true
                 WHERE @extschema@.order_in_flight(o.status)) y) x
 WHERE cardinality(x.reasons) > 0;

------------------------------------------------------------------------
-- inventory_availability: per warehouse and sku, stock on hand, reserved,
-- available to promise (on hand - reserved) and the demand waiting for it
-- (qty_backordered of lines of orders that are not closed).  Waiting
-- lines with no warehouse yet appear with warehouse_id null.
------------------------------------------------------------------------
CREATE VIEW @extschema@.inventory_availability AS
SELECT coalesce(s.warehouse_id, b.warehouse_id) AS warehouse_id,
       coalesce(s.sku, b.sku) AS sku,
       coalesce(s.on_hand, 0) AS on_hand,
       coalesce(s.reserved, 0) AS reserved,
       coalesce(s.on_hand - s.reserved, 0) AS available_to_promise,
       coalesce(b.backordered, 0) AS backordered,
       coalesce(b.waiting_lines, 0) AS waiting_lines,
       coalesce(s.on_hand - s.reserved, 0) - coalesce(b.backordered, 0) AS net_available
  FROM @extschema@.stock s
  FULL JOIN (SELECT l.warehouse_id, l.sku, sum(l.qty_backordered)::int AS backordered,
                    count(*) AS waiting_lines
               FROM @extschema@.order_lines l
               JOIN @extschema@.orders o ON o.order_id = l.order_id
              WHERE l.qty_backordered > 0
                AND @extschema@.status_class('order', o.status) NOT IN ('completed', 'cancelled')
              GROUP BY l.warehouse_id, l.sku) b
    ON b.warehouse_id = s.warehouse_id AND b.sku = s.sku;

------------------------------------------------------------------------
-- process_map_dot: the directly-follows graph of the cases placed in
-- [since, until) as a Graphviz digraph: one box per activity with its
-- count, edges labelled with frequency and mean time, pen width growing
-- with frequency (1 to 8 points).
------------------------------------------------------------------------
CREATE FUNCTION @extschema@.process_map_dot(since timestamptz DEFAULT NULL,
                                            until timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE
AS $$
    WITH dfg AS (
        SELECT d.activity, d.next_activity, d.frequency, d.mean_hours
          FROM @extschema@.process_dfg(process_map_dot.since, process_map_dot.until) d),
    nodes AS (
        SELECT d.next_activity AS activity, sum(d.frequency) AS frequency,
               'n' || row_number() OVER (ORDER BY d.next_activity) AS id
          FROM dfg d WHERE d.next_activity IS NOT NULL GROUP BY d.next_activity),
    edges AS (
        SELECT coalesce(a.id, 'start') AS src, coalesce(b.id, 'end') AS dst, d.frequency,
               d.mean_hours, max(d.frequency) OVER () AS top
          FROM dfg d
          LEFT JOIN nodes a ON a.activity = d.activity
          LEFT JOIN nodes b ON b.activity = d.next_activity)
    SELECT concat_ws(E'\n',
        'digraph process {',
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, labelloc=t, label="order_mgmt process map: '
            || (SELECT coalesce(sum(e.frequency), 0) FROM edges e WHERE e.src = 'start')
            || ' cases"];',
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", color="#4a6fa5", fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9, color="#4a6fa5"];',
        '  start [shape=circle, label="", width=0.3, style=filled, fillcolor="#2e7d32"];',
        '  end [shape=doublecircle, label="", width=0.25, style=filled, fillcolor="#c62828"];',
        (SELECT string_agg(format('  %s [label="%s\n%s"];', n.id,
                                  replace(replace(n.activity, '\', '\\'), '"', '\"'),
                                  n.frequency),
                           E'\n' ORDER BY n.id)
           FROM nodes n),
        (SELECT string_agg(format('  %s -> %s [label="%s%s", penwidth=%s];', e.src, e.dst,
                                  e.frequency,
                                  CASE WHEN e.mean_hours IS NULL THEN ''
                                       WHEN e.mean_hours < 1 THEN '\n' || round(e.mean_hours * 60) || ' min'
                                       WHEN e.mean_hours < 48 THEN '\n' || round(e.mean_hours, 1) || ' h'
                                       ELSE '\n' || round(e.mean_hours / 24, 1) || ' d' END,
                                  round(1 + 7 * e.frequency::numeric / e.top, 1)),
                           E'\n' ORDER BY e.src, e.dst)
           FROM edges e),
        '}')
$$;

------------------------------------------------------------------------
-- export_xes: the event log of the cases placed in [since, until) as an
-- IEEE 1849-2016 XES document: one trace per order (attributes channel,
-- customer, warehouse), one event per event row in case order.  At most
-- bi_config.xes_max_events events per document (1,000,000 by default and
-- at most; about 430 bytes each, built in memory, and a value must stay
-- below 1 GB), else 54000 before any document is built: export longer
-- periods in parts.
------------------------------------------------------------------------
CREATE FUNCTION @extschema@.export_xes(since timestamptz DEFAULT NULL,
                                       until timestamptz DEFAULT NULL)
RETURNS xml
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_events bigint;
    v_max    int := (SELECT c.xes_max_events FROM @extschema@.bi_config c);
    v_doc    xml;
BEGIN
    SELECT count(*) INTO v_events FROM @extschema@.event_log e
     WHERE (since IS NULL OR e.case_placed_at >= since)
       AND (until IS NULL OR e.case_placed_at < until);
    IF v_events > v_max THEN
        RAISE EXCEPTION 'the period holds too many events for one XES document'
            USING ERRCODE = '54000',
                  DETAIL = format('%s events; one document holds at most %s (bi_config.xes_max_events).',
                                  v_events, v_max),
                  HINT = 'Export the period in parts (since, until).';
    END IF;
    -- Each trace is built as xml (escaping by xmlelement) and the document
    -- joins them as text: xmlagg would copy the growing document at every
    -- trace (quadratic).  The whole is parsed back to xml once.
    WITH traces AS (
        SELECT e.case_id,
               xmlelement(name trace,
                   xmlelement(name string, xmlattributes('concept:name' AS key,
                                                         e.case_id::text AS value)),
                   xmlelement(name string, xmlattributes('channel' AS key, e.channel AS value)),
                   xmlelement(name string, xmlattributes('customer' AS key,
                                                         e.customer_id AS value)),
                   CASE WHEN e.warehouse_id IS NOT NULL THEN
                       xmlelement(name string, xmlattributes('warehouse' AS key,
                                                             e.warehouse_id AS value)) END,
                   xmlagg(xmlelement(name event,
                       xmlelement(name string, xmlattributes('concept:name' AS key,
                                                             e.activity AS value)),
                       xmlelement(name date, xmlattributes('time:timestamp' AS key,
                           to_char(e.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                               AS value)),
                       xmlelement(name string, xmlattributes('org:resource' AS key,
                                                             e.resource AS value)),
                       xmlelement(name string, xmlattributes('lifecycle:transition' AS key,
                                                             e.lifecycle AS value)),
                       xmlelement(name int, xmlattributes('seq' AS key, e.seq AS value)),
                       xmlelement(name boolean, xmlattributes('automated' AS key,
                                                              e.automated AS value)))
                       ORDER BY e.ts, e.seq))::text AS trace
          FROM @extschema@.event_log e
         WHERE (since IS NULL OR e.case_placed_at >= since)
           AND (until IS NULL OR e.case_placed_at < until)
         GROUP BY e.case_id, e.channel, e.customer_id, e.warehouse_id),
    head AS (
        SELECT xmlelement(name log,
                   xmlattributes('1849-2016' AS "xes.version", '' AS "xes.features",
                                 'http://www.xes-standard.org/' AS xmlns),
                   xmlelement(name extension, xmlattributes('Concept' AS name, 'concept' AS prefix,
                              'http://www.xes-standard.org/concept.xesext' AS uri)),
                   xmlelement(name extension, xmlattributes('Time' AS name, 'time' AS prefix,
                              'http://www.xes-standard.org/time.xesext' AS uri)),
                   xmlelement(name extension, xmlattributes('Organizational' AS name, 'org' AS prefix,
                              'http://www.xes-standard.org/org.xesext' AS uri)),
                   xmlelement(name extension, xmlattributes('Lifecycle' AS name, 'lifecycle' AS prefix,
                              'http://www.xes-standard.org/lifecycle.xesext' AS uri)),
                   xmlelement(name global, xmlattributes('trace' AS scope),
                       xmlelement(name string, xmlattributes('concept:name' AS key, '' AS value))),
                   xmlelement(name global, xmlattributes('event' AS scope),
                       xmlelement(name string, xmlattributes('concept:name' AS key, '' AS value)),
                       xmlelement(name date, xmlattributes('time:timestamp' AS key,
                                                           '1970-01-01T00:00:00.000Z' AS value))),
                   xmlelement(name classifier, xmlattributes('Activity' AS name,
                                                             'concept:name' AS keys)),
                   xmlelement(name string, xmlattributes('concept:name' AS key,
                                                         'order_mgmt event log' AS value)),
                   -- the traces go where this marker is
                   xmlcomment('traces'))::text AS doc)
    SELECT replace(h.doc, '<!--traces-->',
                   coalesce((SELECT string_agg(t.trace, '' ORDER BY t.case_id) FROM traces t), ''))::xml
      FROM head h
      INTO v_doc;
    RETURN v_doc;
END;
$$;
