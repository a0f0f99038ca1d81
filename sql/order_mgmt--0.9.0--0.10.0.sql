/* order_mgmt 0.9.0 -> 0.10.0
 * - normalize_lines probes products by key for each line: as a join, the
 *   planner (which guesses 100 JSON elements) hashed the whole catalog for
 *   every order while the catalog was small (issue 9, bench/RESULTS.md);
 * - event_facts, an aggregate in C (src/bi.c): order_facts reads the event
 *   log with it in one pass instead of FILTER aggregates, status_class and
 *   LIKE per event and a count(DISTINCT) that sorted every order's steps;
 *   its partial states combine, so the view aggregates in parallel
 *   (issue 13);
 * - the BI views on Citus (issue 15, the BI part).
 * Citus 13.0.5 planned none of order_facts, kpi_daily, process_variants,
 * process_dfg through the coordinator, and process_map_dot() returned an
 * empty map there.  Same columns, same meaning, same single-node results:
 * - order_facts: the order's status class is a column of a subquery on
 *   orders (the events' classes are event_facts' business), and the
 *   delivery KPIs are computed a level up, instead of
 *   LATERAL (SELECT ...) without FROM calling status_class or now(),
 *   which Citus does not push down;
 * - kpi_daily: GROUPING SETS and percentiles over a MATERIALIZED CTE of
 *   the facts (Citus runs no GROUPING SETS over a distributed table: the
 *   facts are computed on the shards, the totals on the coordinator);
 * - process_dfg(since, until): PL/pgSQL (Citus plans no SQL function with
 *   parameters that reads a distributed table, and one inlined read the
 *   coordinator's empty shells: process_map_dot() answered an empty map);
 *   the process_dfg view holds the same query without the period (it
 *   called the function: its plan stays visible, parallel on one node),
 *   the histogram bins a MATERIALIZED CTE in both;
 * - process_variants: cases, variants and their spelled-out sequences as
 *   MATERIALIZED CTEs, the lateral read of a variant's first case grouped
 *   by that case;
 * - order_overview: the order's estimate from its lines aggregated in a
 *   lateral subquery grouped by order_id (the same gate: open classes, units
 *   neither shipped nor in a shipment being prepared), no longer a function
 *   as a table in a subquery with OFFSET 0 (Citus: "only immutable
 *   functions can be used as a table expressions in a multi-shard query");
 * - open_order_risk: each open order looked up by a lateral subquery
 *   grouped by its key, not with OFFSET 0, its status class a column of
 *   that subquery, the failed parcels and the last status move grouped by
 *   order_id (Citus pushes down no correlated OFFSET, no aggregate without
 *   GROUP BY in such a lateral subquery). */

\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit

CREATE OR REPLACE FUNCTION @extschema@.normalize_lines(lines jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l     record;
    v_qty numeric;
    v_price numeric;
    out   jsonb[] := '{}';
BEGIN
    IF lines IS NULL OR jsonb_typeof(lines) <> 'array' OR jsonb_array_length(lines) = 0 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array'
            USING ERRCODE = '22023', DETAIL = format('Got %s.', coalesce(lines::text, 'NULL'));
    END IF;
    IF jsonb_array_length(lines) > 1000 THEN
        RAISE EXCEPTION 'too many order lines'
            USING ERRCODE = '22023', DETAIL = 'An order has at most 1000 lines.';
    END IF;
    -- one key probe of products per line: as a plain join the planner,
    -- which guesses 100 elements, hashes the whole catalog for each order
    -- while it is small (LIMIT keeps the subquery from being flattened)
    FOR l IN SELECT e.n, e.value AS v, p.sku IS NOT NULL AS known, p.list_price
               FROM jsonb_array_elements(lines) WITH ORDINALITY e(value, n)
               LEFT JOIN LATERAL (SELECT x.sku, x.list_price FROM @extschema@.products x
                                   WHERE x.sku = e.value->>'sku' LIMIT 1) p ON true
              ORDER BY e.n LOOP
        IF jsonb_typeof(l.v) <> 'object' OR jsonb_typeof(l.v->'sku') IS DISTINCT FROM 'string'
           OR jsonb_typeof(l.v->'qty') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'order line % is malformed', l.n
                USING ERRCODE = '22023',
                      DETAIL = format('Each line needs a string "sku" and a numeric "qty"; got %s.', l.v);
        END IF;
        v_qty := (l.v->>'qty')::numeric;
        IF v_qty <= 0 OR v_qty <> trunc(v_qty) OR v_qty > 1000000 THEN
            RAISE EXCEPTION 'order line % has an invalid quantity', l.n
                USING ERRCODE = '22023',
                      DETAIL = format('qty must be a whole number between 1 and 1000000; got %s.', l.v->>'qty');
        END IF;
        IF NOT l.known THEN
            RAISE EXCEPTION 'sku "%" does not exist', l.v->>'sku'
                USING ERRCODE = 'OM004', DETAIL = format('Order line %s names a product that does not exist.', l.n);
        END IF;
        v_price := coalesce((l.v->>'unit_price')::numeric, l.list_price);
        IF v_price IS NULL OR v_price = 'NaN' OR v_price < 0 OR v_price >= 1e12
           OR v_price <> round(v_price, 2) THEN
            RAISE EXCEPTION 'order line % has no valid unit price', l.n
                USING ERRCODE = '22023',
                      DETAIL = format('A unit price is a number from 0 to 10^12 with at most two decimals; product "%s" has list price %s and the line gives %s.',
                                      l.v->>'sku', coalesce(l.list_price::text, 'none'),
                                      coalesce(l.v->>'unit_price', 'none')),
                      HINT = 'Pass "unit_price" in the line.';
        END IF;
        out := out || jsonb_build_object('line_no', l.n, 'sku', l.v->>'sku', 'qty', v_qty::int,
                                         'unit_price', v_price);
    END LOOP;
    RETURN to_jsonb(out);
END;
$$;


-- order_facts reads the log with one aggregate (src/bi.c), which also
-- aggregates in parallel (issue 13)
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


-- the BI views (both changes), in dependency order
CREATE OR REPLACE VIEW @extschema@.order_facts AS
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

CREATE OR REPLACE VIEW @extschema@.kpi_daily AS
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

CREATE OR REPLACE VIEW @extschema@.process_dfg AS
WITH bins AS MATERIALIZED (
    SELECT s.prev_activity AS activity, s.activity AS next_activity,
           floor(ln(1 + date_part('epoch', s.since_prev)) / ln(1.01)) AS bin,
           count(*) AS n, sum(date_part('epoch', s.since_prev)) AS secs
      FROM @extschema@.process_steps s
     GROUP BY 1, 2, 3),
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
        SELECT s.prev_activity AS activity, s.activity AS next_activity,
               floor(ln(1 + date_part('epoch', s.since_prev)) / ln(1.01)) AS bin,
               count(*) AS n, sum(date_part('epoch', s.since_prev)) AS secs
          FROM @extschema@.process_steps s
         WHERE (process_dfg.since IS NULL OR s.case_placed_at >= process_dfg.since)
           AND (process_dfg.until IS NULL OR s.case_placed_at < process_dfg.until)
         GROUP BY 1, 2, 3),
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

CREATE OR REPLACE VIEW @extschema@.process_variants AS
-- (cases and variants as materialized CTEs: on Citus the steps of each
-- case are read on the shards, the variants are grouped and ranked on the
-- coordinator, and the sequence of each variant's first case is read from
-- its shard, grouped by that case)
WITH cases AS MATERIALIZED (
    SELECT s.case_id, count(*) AS steps,
           bit_xor(hashtextextended(s.activity, s.step)) AS variant_key,
           date_part('epoch', max(s.ts) - min(s.ts)) / 3600 AS hours
      FROM @extschema@.process_steps s
     GROUP BY s.case_id),
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

CREATE OR REPLACE VIEW @extschema@.order_overview AS
SELECT o.order_id, o.external_ref, o.customer_id, o.channel, o.status, o.payment_status,
       o.return_status, o.placed_at,
       o.promised_delivery_earliest, o.promised_delivery_latest,
       CASE WHEN NOT coalesce(e.known, true) THEN NULL
            ELSE greatest(s.estimated_earliest, e.delivery_earliest) END AS current_delivery_earliest,
       CASE WHEN NOT coalesce(e.known, true) THEN NULL
            ELSE greatest(s.estimated_latest, e.delivery_latest) END AS current_delivery_latest,
       e.note AS current_window_note,
       s.delivered_at,
       coalesce(s.shipments, '[]'::jsonb) AS shipments
  FROM @extschema@.orders o
  LEFT JOIN LATERAL (
        SELECT max(x.estimated_delivery_earliest)
                   FILTER (WHERE @extschema@.status_class('shipment', x.status) <> 'cancelled')
                   AS estimated_earliest,
               max(x.estimated_delivery_latest)
                   FILTER (WHERE @extschema@.status_class('shipment', x.status) <> 'cancelled')
                   AS estimated_latest,
               max(x.delivered_at) AS delivered_at,
               jsonb_agg(jsonb_build_object(
                   'shipment_id', x.shipment_id, 'warehouse_id', x.warehouse_id,
                   'status', x.status, 'carrier', x.carrier, 'service_id', x.service_id,
                   'tracking_number', x.tracking_number,
                   'estimated_delivery_earliest', x.estimated_delivery_earliest,
                   'estimated_delivery_latest', x.estimated_delivery_latest,
                   'dispatched_at', x.dispatched_at, 'delivered_at', x.delivered_at,
                   'latest_checkpoint', CASE WHEN t.tracking_event_id IS NOT NULL THEN
                       jsonb_build_object('code', t.code, 'occurred_at', t.occurred_at,
                                          'location', t.location) END)
                   ORDER BY x.shipment_id) AS shipments
          FROM @extschema@.shipments x
          LEFT JOIN @extschema@.tracking_events t
                 ON t.order_id = x.order_id AND t.tracking_event_id = x.last_checkpoint_id
         WHERE x.order_id = o.order_id) s ON true
  -- the order's estimate, only for an order of an open class whose units
  -- are not all shipped or in a shipment being prepared (the conditions on
  -- o alone gate the reads, the order lines grouped by order_id and no
  -- function as a table in a subquery: Citus pushes this down)
  LEFT JOIN LATERAL (
        SELECT sum(a.qty) AS qty FROM @extschema@.allocated_units a
         WHERE a.order_id = o.order_id
           AND @extschema@.status_class('order', o.status) IN ('pending', 'held', 'open', 'shipping')) a
         ON true
  LEFT JOIN LATERAL (
        SELECT (z.w).delivery_earliest, (z.w).delivery_latest, (z.w).known, (z.w).note
          FROM (SELECT @extschema@.estimate_order_window(ROW(o.*)::@extschema@.orders,
                           array_agg(ROW(l.*)::@extschema@.order_lines ORDER BY l.line_no)) AS w
                  FROM @extschema@.order_lines l
                 WHERE l.order_id = o.order_id
                   AND @extschema@.status_class('order', o.status) IN ('pending', 'held', 'open', 'shipping')
                 GROUP BY l.order_id
                HAVING sum(l.qty - l.qty_cancelled - l.qty_shipped) > coalesce(a.qty, 0)) z) e ON true;

CREATE OR REPLACE VIEW @extschema@.open_order_risk AS
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
                       v.current_delivery_latest AS estimated_delivery_latest,
                       v.current_window_note AS estimate_note,
                       l.qty_unshipped, l.qty_undelivered, l.qty_backordered,
                       hl.open_holds, f.failed_shipment_ids, f.failed_note,
                       -- waiting since: the latest order status event (not shipped yet)
                       CASE WHEN o.class <> 'shipping' THEN coalesce(st.moved_at, o.placed_at) END
                           AS in_status_since
                  -- an order is open while it has units to deliver
                  FROM (SELECT x.order_id, min(x.warehouse_id) AS warehouse_id,
                               sum(x.qty - x.qty_cancelled - x.qty_shipped)::int AS qty_unshipped,
                               sum(x.qty - x.qty_cancelled - x.qty_delivered)::int AS qty_undelivered,
                               sum(x.qty_backordered)::int AS qty_backordered
                          FROM @extschema@.order_lines x
                         WHERE x.qty_delivered + x.qty_cancelled < x.qty
                         GROUP BY x.order_id) l
                  -- open holds of the open orders, joined on the open lines so
                  -- that each is read once
                  LEFT JOIN (SELECT x.order_id, array_agg(DISTINCT x.kind ORDER BY x.kind) AS open_holds
                               FROM @extschema@.order_holds x WHERE x.released_at IS NULL
                              GROUP BY x.order_id) hl ON hl.order_id = l.order_id
                 -- (grouped by its key: look each order up by its key, the planner
                 -- cannot tell how few orders are open, and Citus pushes down a
                 -- grouped lateral subquery on order_id, not one with OFFSET)
                 CROSS JOIN LATERAL (SELECT z.*, @extschema@.status_class('order', z.status) AS class
                                       FROM @extschema@.orders z
                                      WHERE z.order_id = l.order_id
                                      GROUP BY z.order_id) o
                 CROSS JOIN @extschema@.bi_config c
                  LEFT JOIN @extschema@.warehouses w
                    ON w.warehouse_id = coalesce(o.warehouse_id, l.warehouse_id)
                  -- the current estimate, as the customer sees it
                  LEFT JOIN LATERAL (
                       SELECT y.current_delivery_latest, y.current_window_note
                         FROM @extschema@.order_overview y
                        WHERE y.order_id = o.order_id) v ON true
                  -- parcels that will not arrive (class failed: lost, returned to sender)
                  LEFT JOIN LATERAL (
                       SELECT array_agg(x.shipment_id ORDER BY x.shipment_id) AS failed_shipment_ids,
                              string_agg(format('shipment %s %s', x.shipment_id, x.status), ', '
                                         ORDER BY x.shipment_id) AS failed_note
                         FROM @extschema@.shipments x
                        WHERE x.order_id = o.order_id
                          AND @extschema@.status_class('shipment', x.status) = 'failed'
                        GROUP BY x.order_id) f ON true
                  -- the latest order status event (read only for orders not shipped yet)
                  LEFT JOIN LATERAL (
                       SELECT max(x.occurred_at) AS moved_at
                         FROM @extschema@.events x
                        WHERE o.class <> 'shipping' AND x.order_id = o.order_id
                          AND x.entity = 'order' AND x.to_status IS NOT NULL
                        GROUP BY x.order_id) st ON true
                 WHERE o.class IN ('pending', 'held', 'open', 'shipping')) y) x
 WHERE cardinality(x.reasons) > 0;


REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.status_class(text, text), @extschema@.current_actor()
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.event_facts(text, bigint, text, text, timestamptz, boolean, text, text[])
TO order_mgmt_reader, order_mgmt_operator;
