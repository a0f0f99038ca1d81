/* order_mgmt 0.9.0 -> 0.10.0
 * - normalize_lines probes products by key for each line: as a join, the
 *   planner (which guesses 100 JSON elements) hashed the whole catalog for
 *   every order while the catalog was small (issue 9, bench/RESULTS.md);
 * - event_facts, an aggregate in C (src/bi.c): order_facts reads the event
 *   log with it in one pass instead of FILTER aggregates, status_class and
 *   LIKE per event and a count(DISTINCT) that sorted every order's steps;
 *   its partial states combine, so the view aggregates in parallel
 *   (issue 13). */

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

CREATE OR REPLACE VIEW @extschema@.order_facts AS
SELECT o.order_id,
       o.customer_id,
       o.channel,
       o.status,
       k.status_class,
       z.warehouse_id,
       z.tz,
       o.placed_at,
       (o.placed_at AT TIME ZONE z.tz)::date AS placed_day,
       ev.confirmed_at,
       o.promised_ship_latest,
       o.promised_delivery_earliest,
       o.promised_delivery_latest,
       coalesce(sh.shipments, 0) AS shipments,
       sh.first_dispatch_at,
       sh.first_delivery_at,
       sh.last_delivery_at,
       coalesce(sh.failed_shipments, 0) AS failed_shipments,
       coalesce(ta.failed_attempts, 0) AS failed_attempts,
       ev.completed_at,
       l.qty_ordered,
       l.qty_cancelled,
       l.qty_due,
       l.qty_delivered,
       m.on_time,
       m.in_full,
       m.on_time AND m.in_full AS otif,
       CASE WHEN k.status_class <> 'cancelled' AND l.qty_due > 0
                 AND l.qty_delivered >= l.qty_due
            THEN round(extract(epoch FROM sh.last_delivery_at - o.placed_at) / 3600, 2)
       END AS cycle_time_hours,
       coalesce(h.holds, 0) AS holds,
       h.hold_hours,
       h.credit_hold_hours,
       h.payment_hold_hours,
       h.stock_hold_hours,
       h.address_hold_hours,
       h.fraud_hold_hours,
       h.manual_hold_hours,
       coalesce(ev.events, 0) AS events,
       coalesce(ev.manual_events, 0) AS manual_events,
       coalesce(ev.events - ev.manual_events, 0) AS automated_events,
       coalesce(ev.manual_events, 0) = 0 AS touchless,
       coalesce(ev.rework_steps, 0) AS rework_steps,
       coalesce(ev.rework_steps, 0) > 0 AS rework,
       coalesce(l.qty_returned, 0) AS returned_qty,
       o.return_status,
       coalesce(p.refunded_amount, 0) AS refunded_amount,
       coalesce(p.return_refunded_amount, 0) AS return_refunded_amount
  FROM @extschema@.orders o
  -- (order_zones' rule on the same line totals)
  LEFT JOIN @extschema@.order_line_totals l ON l.order_id = o.order_id
  LEFT JOIN @extschema@.warehouses w
         ON w.warehouse_id = coalesce(o.warehouse_id, l.lines_warehouse_id)
 CROSS JOIN LATERAL (SELECT w.warehouse_id, coalesce(w.tz, 'UTC') AS tz) z
 CROSS JOIN LATERAL (SELECT @extschema@.status_class('order', o.status) AS status_class) k
  -- the log: confirmation (first entering the open class), completion
  -- (the completed class), manual events, rework (an order, shipment or
  -- return entering a status again along an edge: moves into or out of a
  -- held status are waiting, not rework), in one pass (event_facts)
  LEFT JOIN (SELECT y.order_id, (y.f).events, (y.f).manual_events, (y.f).confirmed_at,
                    (y.f).completed_at, (y.f).rework_steps
               FROM (SELECT e.order_id,
                            @extschema@.event_facts(e.entity, e.entity_id, e.from_status,
                                e.to_status, e.occurred_at, e.automated, e.actor,
                                (SELECT c.system_actors FROM @extschema@.bi_config c)) AS f
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
         ON p.order_id = o.order_id
  -- a promised day ends at the local midnight after it
 CROSS JOIN LATERAL (SELECT ((o.promised_delivery_latest + 1)::timestamp AT TIME ZONE z.tz)
                            AS deadline) d
  -- delivery KPIs: measured for orders with a promise that are not
  -- cancelled, null while undecided (promise not passed, not delivered)
 CROSS JOIN LATERAL (
       SELECT CASE WHEN k.status_class = 'cancelled' OR d.deadline IS NULL THEN NULL
                   WHEN sh.first_delivery_at < d.deadline THEN true
                   WHEN sh.first_delivery_at >= d.deadline OR now() >= d.deadline THEN false
              END AS on_time,
              CASE WHEN k.status_class = 'cancelled' OR d.deadline IS NULL THEN NULL
                   WHEN l.qty_delivered >= l.qty_due AND sh.last_delivery_at < d.deadline THEN true
                   WHEN now() >= d.deadline THEN false
              END AS in_full) m;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.status_class(text, text), @extschema@.current_actor()
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.event_facts(text, bigint, text, text, timestamptz, boolean, text, text[])
TO order_mgmt_reader, order_mgmt_operator;
