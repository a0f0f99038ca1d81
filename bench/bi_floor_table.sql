-- bench/bi_floor.sh: what a table of open orders kept up to date by the
-- writers would give open_order_risk (a prototype in the scratch schema
-- bi_floor, not part of the extension).  bi_floor.inputs is
-- open_order_risk's part that does not depend on the clock: per open order
-- its row, its quantities, open holds, the shipments' window, failed
-- parcels and units being prepared, and since when it is in its status.
-- bi_floor.open_orders stores it; bi_floor.refresh(order_id) is what every
-- transaction that changes an order would have to run before it commits;
-- bi_floor.open_order_risk computes the estimate and the reasons from the
-- stored rows with the extension's own rules, as open_order_risk does.
DROP SCHEMA IF EXISTS bi_floor CASCADE;
CREATE SCHEMA bi_floor;

CREATE VIEW bi_floor.inputs AS
SELECT o.order_id, o.customer_id, o.channel, o.status,
       coalesce(o.warehouse_id, l.warehouse_id) AS warehouse_id, o.placed_at,
       o.promised_ship_latest, o.promised_delivery_latest,
       l.qty_unshipped, l.qty_undelivered, l.qty_backordered, hl.open_holds,
       s.estimated_latest, s.failed_shipment_ids, s.qty_allocated,
       coalesce((SELECT max(x.occurred_at) FROM order_mgmt.events x
                  WHERE x.order_id = o.order_id AND x.entity = 'order'
                    AND x.to_status IS NOT NULL), o.placed_at) AS in_status_since
  FROM (SELECT x.order_id, min(x.warehouse_id) AS warehouse_id,
               sum(x.qty - x.qty_cancelled - x.qty_shipped)::int AS qty_unshipped,
               sum(x.qty - x.qty_cancelled - x.qty_delivered)::int AS qty_undelivered,
               sum(x.qty_backordered)::int AS qty_backordered
          FROM order_mgmt.order_lines x
         WHERE x.qty_delivered + x.qty_cancelled < x.qty
         GROUP BY x.order_id) l
  LEFT JOIN (SELECT x.order_id, array_agg(DISTINCT x.kind ORDER BY x.kind) AS open_holds
               FROM order_mgmt.order_holds x WHERE x.released_at IS NULL
              GROUP BY x.order_id) hl ON hl.order_id = l.order_id
  JOIN order_mgmt.orders o ON o.order_id = l.order_id
  LEFT JOIN LATERAL (
       SELECT max(x.estimated_delivery_latest)
                  FILTER (WHERE order_mgmt.shipment_window_counts(x.status)) AS estimated_latest,
              array_agg(x.shipment_id ORDER BY x.shipment_id)
                  FILTER (WHERE order_mgmt.status_class('shipment', x.status) = 'failed')
                  AS failed_shipment_ids,
              CASE WHEN bool_or(order_mgmt.status_class('shipment', x.status) = 'preparing') THEN
                   (SELECT sum(a.qty) FROM order_mgmt.allocated_units a
                     WHERE a.order_id = x.order_id GROUP BY a.order_id) END AS qty_allocated
         FROM order_mgmt.shipments x
        WHERE x.order_id = o.order_id
        GROUP BY x.order_id) s ON true
 WHERE order_mgmt.order_in_flight(o.status);

CREATE TABLE bi_floor.open_orders AS SELECT * FROM bi_floor.inputs;
ALTER TABLE bi_floor.open_orders ADD PRIMARY KEY (order_id);
VACUUM ANALYZE bi_floor.open_orders;

CREATE FUNCTION bi_floor.refresh(p bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM bi_floor.open_orders WHERE order_id = p;
    INSERT INTO bi_floor.open_orders SELECT * FROM bi_floor.inputs WHERE order_id = p;
END;
$$;

CREATE VIEW bi_floor.open_order_risk AS
SELECT x.order_id, x.customer_id, x.channel, x.status, x.status_class, x.warehouse_id,
       x.placed_at, x.promised_ship_latest, x.promised_delivery_latest,
       x.estimated_delivery_latest,
       x.promised_delivery_latest - x.today AS days_left,
       x.estimated_delivery_latest - x.promised_delivery_latest AS days_late,
       x.in_status_since,
       round(extract(epoch FROM now() - x.in_status_since) / 3600, 1) AS hours_in_status,
       x.open_holds, x.failed_shipment_ids, x.qty_backordered,
       array_to_string(x.reasons, ', ') AS reason, x.reasons
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
          FROM (SELECT p.order_id, p.customer_id, p.channel, p.status,
                       order_mgmt.status_class('order', p.status) AS status_class,
                       p.warehouse_id, p.placed_at, p.promised_ship_latest,
                       p.promised_delivery_latest, c.stuck_after,
                       (now() AT TIME ZONE coalesce(w.tz, 'UTC'))::date AS today,
                       order_mgmt.current_window_bound(p.estimated_latest, e.delivery_latest, e.known)
                           AS estimated_delivery_latest,
                       e.note AS estimate_note,
                       p.qty_unshipped, p.qty_undelivered, p.qty_backordered, p.open_holds,
                       p.failed_shipment_ids,
                       CASE WHEN p.failed_shipment_ids IS NOT NULL THEN
                           (SELECT string_agg(format('shipment %s %s', x.shipment_id, x.status),
                                              ', ' ORDER BY x.shipment_id)
                              FROM order_mgmt.shipments x
                             WHERE x.order_id = p.order_id
                               AND x.shipment_id = ANY (p.failed_shipment_ids)) END AS failed_note,
                       CASE WHEN order_mgmt.status_class('order', p.status) <> 'shipping'
                            THEN p.in_status_since END AS in_status_since
                  FROM bi_floor.open_orders p
                 CROSS JOIN order_mgmt.bi_config c
                  LEFT JOIN order_mgmt.warehouses w ON w.warehouse_id = p.warehouse_id
                  LEFT JOIN LATERAL (
                       SELECT (z.w).delivery_latest, (z.w).known, (z.w).note
                         FROM (SELECT order_mgmt.estimate_order_window(
                                          (SELECT o FROM order_mgmt.orders o
                                            WHERE o.order_id = p.order_id),
                                          array_agg(ROW(x.*)::order_mgmt.order_lines
                                                    ORDER BY x.line_no)) AS w
                                 FROM order_mgmt.order_lines x
                                WHERE x.order_id = p.order_id
                                  AND order_mgmt.own_estimate_due(p.status, p.qty_unshipped,
                                                                  p.qty_allocated)
                                GROUP BY x.order_id) z) e ON true
                 WHERE order_mgmt.order_in_flight(p.status)) y) x
 WHERE cardinality(x.reasons) > 0;
