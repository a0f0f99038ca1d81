/* order_mgmt 0.10.0 -> 0.11.0: open_order_risk and order_overview (issue 13),
 * cheaper trigger conditions on status moves (SPEC section 10)
 * - open_order_risk read each open order about nine times (the order, then
 *   through order_overview the order again, its shipments twice, the units
 *   in shipments being prepared, its lines); it now reads its row, its
 *   shipments once (window, failed parcels), the units in shipments being
 *   prepared only when there is such a shipment, its lines only while its
 *   own estimate counts: 1.5x faster at 1,000,000 orders (bench/RESULTS.md);
 * - the statistics object order_lines_open_stat: the planner took a third
 *   of all lines for open (a comparison of two columns), costed
 *   open_order_risk like a scan of the whole history and JIT-compiled it
 *   (0.8 s at 1,000,000 orders with the server's default jit settings);
 *   the view adds the same test spelled "(...) IS TRUE", which the planner
 *   estimates from these statistics (no index changes: Citus propagates no
 *   index DDL from an extension script);
 * - the rules of the current window have one home each, functions both
 *   views call (inlined): order_in_flight, shipment_window_counts,
 *   own_estimate_due, current_window_bound;
 * - order_overview: the same rows, read the same way (one pass over the
 *   shipments), and a new last column failed_shipment_ids;
 * - the WHEN conditions of order_mgmt_hold_sync, order_mgmt_closed,
 *   order_mgmt_shipment_dates and order_mgmt_shipment_moved call one C
 *   function each (status_in_class, class_entered): PostgreSQL 15 plans a
 *   trigger's WHEN expression again for every statement, and the three
 *   status_class calls with IN lists cost a status update 15-20 %. */

\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit

-- How many lines are still to deliver (bi.sql).  Not on a table Citus
-- distributed already: Citus 13 refuses statistics on expressions of a
-- distributed table (a fresh install has them, made before distribute()).
DO $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL
       OR NOT @extschema@.citus_table('order_lines') THEN
        CREATE STATISTICS @extschema@.order_lines_open_stat
            ON ((qty_delivered + qty_cancelled < qty)) FROM @extschema@.order_lines;
        -- (a sample: about 0.2 s at 1,600,000 lines; else the statistics
        -- wait for autovacuum's next analyze of the table)
        ANALYZE @extschema@.order_lines;
    END IF;
END;
$$;

-- The trigger conditions on status moves: one C call each instead of
-- three status_class calls with IN lists, which PostgreSQL planned again
-- for every statement (15-20 % of a shipment status update).  Not on
-- tables Citus distributed already: Citus propagates no trigger DDL from
-- an extension script; the old conditions there test the same.
CREATE FUNCTION @extschema@.status_in_class(entity text, status text, classes text[])
RETURNS boolean
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'status_in_class';

CREATE FUNCTION @extschema@.class_entered(entity text, old_status text, new_status text,
                                          classes text[])
RETURNS boolean
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'class_entered';

DO $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL
       OR NOT @extschema@.citus_table('orders') THEN
        DROP TRIGGER order_mgmt_hold_sync ON @extschema@.orders;
        DROP TRIGGER order_mgmt_closed ON @extschema@.orders;
        DROP TRIGGER order_mgmt_shipment_dates ON @extschema@.shipments;
        DROP TRIGGER order_mgmt_shipment_moved ON @extschema@.shipments;
CREATE TRIGGER order_mgmt_hold_sync
    BEFORE UPDATE OF status ON @extschema@.orders
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND (@extschema@.status_in_class('order', OLD.status, '{held}')
               OR @extschema@.status_in_class('order', NEW.status, '{held}')))
    EXECUTE FUNCTION @extschema@.orders_hold_sync();

CREATE TRIGGER order_mgmt_closed
    AFTER UPDATE OF status ON @extschema@.orders
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND @extschema@.status_in_class('order', NEW.status, '{completed,cancelled}'))
    EXECUTE FUNCTION @extschema@.orders_closed();

CREATE TRIGGER order_mgmt_shipment_dates
    BEFORE UPDATE OF status ON @extschema@.shipments
    FOR EACH ROW
    WHEN (@extschema@.class_entered('shipment', OLD.status, NEW.status,
                                    '{in_transit,delivered,failed}'))
    EXECUTE FUNCTION @extschema@.shipments_dates();

CREATE TRIGGER order_mgmt_shipment_moved
    AFTER UPDATE OF status ON @extschema@.shipments
    FOR EACH ROW
    WHEN (@extschema@.class_entered('shipment', OLD.status, NEW.status,
                                    '{in_transit,delivered,failed}'))
    EXECUTE FUNCTION @extschema@.shipments_moved();

    END IF;
END;
$$;

CREATE FUNCTION @extschema@.order_in_flight(status text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT @extschema@.status_class('order', status) IN ('pending', 'held', 'open', 'shipping')
$$;

CREATE FUNCTION @extschema@.shipment_window_counts(status text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT @extschema@.status_class('shipment', status) <> 'cancelled'
$$;

CREATE FUNCTION @extschema@.own_estimate_due(status text, qty_unshipped bigint,
                                             qty_allocated bigint)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT @extschema@.order_in_flight(status) AND qty_unshipped > coalesce(qty_allocated, 0)
$$;

CREATE FUNCTION @extschema@.current_window_bound(shipments_bound date, own_bound date,
                                                 own_known boolean)
RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN NOT coalesce(own_known, true) THEN NULL
                ELSE greatest(shipments_bound, own_bound) END
$$;

CREATE OR REPLACE VIEW @extschema@.order_overview AS
SELECT o.order_id, o.external_ref, o.customer_id, o.channel, o.status, o.payment_status,
       o.return_status, o.placed_at,
       o.promised_delivery_earliest, o.promised_delivery_latest,
       @extschema@.current_window_bound(s.estimated_earliest, e.delivery_earliest, e.known)
           AS current_delivery_earliest,
       @extschema@.current_window_bound(s.estimated_latest, e.delivery_latest, e.known)
           AS current_delivery_latest,
       e.note AS current_window_note,
       s.delivered_at,
       coalesce(s.shipments, '[]'::jsonb) AS shipments,
       s.failed_shipment_ids
  FROM @extschema@.orders o
  LEFT JOIN LATERAL (
        SELECT max(x.estimated_delivery_earliest)
                   FILTER (WHERE @extschema@.shipment_window_counts(x.status)) AS estimated_earliest,
               max(x.estimated_delivery_latest)
                   FILTER (WHERE @extschema@.shipment_window_counts(x.status)) AS estimated_latest,
               max(x.delivered_at) AS delivered_at,
               array_agg(x.shipment_id ORDER BY x.shipment_id)
                   FILTER (WHERE @extschema@.status_class('shipment', x.status) = 'failed')
                   AS failed_shipment_ids,
               CASE WHEN bool_or(@extschema@.status_class('shipment', x.status) = 'preparing') THEN
                    (SELECT sum(a.qty) FROM @extschema@.allocated_units a
                      WHERE a.order_id = x.order_id GROUP BY a.order_id) END AS qty_allocated,
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
         WHERE x.order_id = o.order_id
         GROUP BY x.order_id) s ON true
  -- (no function as a table in a subquery: Citus)
  LEFT JOIN LATERAL (
        SELECT (z.w).delivery_earliest, (z.w).delivery_latest, (z.w).known, (z.w).note
          FROM (SELECT @extschema@.estimate_order_window(ROW(o.*)::@extschema@.orders,
                           array_agg(ROW(l.*)::@extschema@.order_lines ORDER BY l.line_no)) AS w
                  FROM @extschema@.order_lines l
                 WHERE l.order_id = o.order_id AND @extschema@.order_in_flight(o.status)
                 GROUP BY l.order_id
                HAVING @extschema@.own_estimate_due(o.status,
                           sum(l.qty - l.qty_cancelled - l.qty_shipped), s.qty_allocated)) z) e
         ON true;

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


REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.status_class(text, text), @extschema@.current_actor()
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.status_in_class(text, text, text[]),
                          @extschema@.class_entered(text, text, text, text[])
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.order_in_flight(text),
    @extschema@.shipment_window_counts(text),
    @extschema@.own_estimate_due(text, bigint, bigint),
    @extschema@.current_window_bound(date, date, boolean)
    TO order_mgmt_reader, order_mgmt_operator;
