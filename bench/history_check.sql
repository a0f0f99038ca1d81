-- bench/history_check.sql: the invariants of a BI history, whatever wrote
-- it (bench/history_bulk.sql writes with triggers off, so this is what
-- proves it respected them).  One row per invariant: name | violations.
-- bench/history.sh fails unless every count is 0.
SET search_path = order_mgmt, pg_catalog;
WITH last_status AS (
    SELECT DISTINCT ON (e.order_id, e.entity, e.entity_id) e.order_id, e.entity, e.entity_id,
           e.to_status
      FROM events e
     WHERE e.entity IN ('order', 'shipment', 'return') AND e.to_status IS NOT NULL
     ORDER BY e.order_id, e.entity, e.entity_id, e.occurred_at DESC, e.seq DESC)
SELECT 'order status = its last status event' AS invariant, count(*) AS violations
  FROM orders o LEFT JOIN last_status l ON l.entity = 'order' AND l.entity_id = o.order_id
 WHERE l.to_status IS DISTINCT FROM o.status
UNION ALL
SELECT 'shipment status = its last status event (pending without one)', count(*)
  FROM shipments s LEFT JOIN last_status l ON l.entity = 'shipment' AND l.entity_id = s.shipment_id
 WHERE coalesce(l.to_status, 'pending') <> s.status
UNION ALL
SELECT 'return status = its last status event (requested without one)', count(*)
  FROM returns r LEFT JOIN last_status l ON l.entity = 'return' AND l.entity_id = r.return_id
 WHERE coalesce(l.to_status, 'requested') <> r.status
UNION ALL
SELECT 'every status event is an edge of the graph (or back from a hold)', count(*)
  FROM events e
 WHERE e.to_status IS NOT NULL AND e.from_status IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM transitions t WHERE t.entity = e.entity
                      AND t.from_status = e.from_status AND t.to_status = e.to_status)
   AND NOT (e.event_type = e.entity || '.hold_released'
            AND status_class(e.entity, e.from_status) = 'held')
UNION ALL
-- (the API stamps placed_at with the transaction's time, the event with the clock's)
SELECT 'every order starts with order.placed, not before placed_at', count(*)
  FROM orders o
  LEFT JOIN LATERAL (SELECT e.event_type, e.occurred_at FROM events e WHERE e.order_id = o.order_id
                      ORDER BY e.occurred_at, e.seq LIMIT 1) f ON true
 WHERE f.event_type IS DISTINCT FROM 'order.placed' OR f.occurred_at < o.placed_at
UNION ALL
SELECT 'no event in the future', count(*) FROM events WHERE occurred_at > now()
UNION ALL
SELECT 'held iff an open hold, held_from iff held', count(*)
  FROM orders o
 WHERE (status_class('order', o.status) = 'held')
       <> EXISTS (SELECT 1 FROM order_holds h WHERE h.order_id = o.order_id AND h.released_at IS NULL)
    OR (status_class('order', o.status) = 'held') <> (o.held_from IS NOT NULL)
UNION ALL
SELECT 'closed orders hold no stock', count(*)
  FROM order_lines l JOIN orders o USING (order_id)
 WHERE status_class('order', o.status) IN ('completed', 'cancelled')
   AND (l.qty_reserved > 0 OR l.qty_backordered > 0)
UNION ALL
SELECT 'cancelled orders have every unsent unit cancelled', count(*)
  FROM order_lines l JOIN orders o USING (order_id)
 WHERE status_class('order', o.status) = 'cancelled' AND l.qty_cancelled <> l.qty - l.qty_shipped
UNION ALL
SELECT 'qty_shipped / qty_delivered = units of dispatched / delivered shipments', count(*)
  FROM order_lines l
  LEFT JOIN (SELECT sl.order_id, sl.line_no,
                    sum(sl.qty) FILTER (WHERE s.dispatched_at IS NOT NULL) AS shipped,
                    sum(sl.qty) FILTER (WHERE s.delivered_at IS NOT NULL) AS delivered
               FROM shipment_lines sl JOIN shipments s USING (order_id, shipment_id)
              GROUP BY sl.order_id, sl.line_no) x USING (order_id, line_no)
 WHERE l.qty_shipped <> coalesce(x.shipped, 0) OR l.qty_delivered <> coalesce(x.delivered, 0)
UNION ALL
SELECT 'shipments that left are labelled (carrier, service, tracking, dimensions)', count(*)
  FROM shipments s
 WHERE s.dispatched_at IS NOT NULL
   AND (s.carrier IS NULL OR s.service_id IS NULL OR s.tracking_number IS NULL
        OR s.weight_g IS NULL OR s.length_mm IS NULL OR s.width_mm IS NULL OR s.height_mm IS NULL)
UNION ALL
SELECT 'returned units were delivered', count(*)
  FROM return_lines rl JOIN order_lines l USING (order_id, line_no) WHERE rl.qty > l.qty_delivered
UNION ALL
SELECT 'payments: captured <= authorized - voided, refunded <= captured', count(*)
  FROM (SELECT p.order_id,
               sum(p.amount) FILTER (WHERE p.kind = 'authorization') AS a,
               sum(p.amount) FILTER (WHERE p.kind = 'capture') AS c,
               sum(p.amount) FILTER (WHERE p.kind = 'refund') AS r,
               sum(p.amount) FILTER (WHERE p.kind = 'void') AS v
          FROM payments p WHERE p.status = 'succeeded' GROUP BY p.order_id) x
 WHERE coalesce(x.c, 0) > coalesce(x.a, 0) - coalesce(x.v, 0) OR coalesce(x.r, 0) > coalesce(x.c, 0)
UNION ALL
SELECT 'payment_status and exposure as derived from the ledger', count(*)
  FROM orders o, LATERAL payment_totals(o.order_id) t
 WHERE o.payment_status <> derive_payment_status(o.total, t.authorized, t.captured, t.refunded, t.voided)
    OR o.exposure <> order_exposure(o.total, o.credit_approved_at, o.status, t.captured)
UNION ALL
SELECT 'credit_accounts = the exposure of the customer''s orders', count(*)
  FROM (SELECT customer_id, sum(exposure) AS e FROM orders GROUP BY customer_id) x
  FULL JOIN credit_accounts c USING (customer_id)
 WHERE coalesce(x.e, 0) <> coalesce(c.exposure, 0)
UNION ALL
SELECT 'stock_levels = the sum of the ledger', count(*)
  FROM stock_levels s
  FULL JOIN (SELECT warehouse_id, sku, sum(on_hand_delta) AS h, sum(reserved_delta) AS r
               FROM inventory_movements GROUP BY warehouse_id, sku) m USING (warehouse_id, sku)
 WHERE coalesce(s.on_hand, 0) <> coalesce(m.h, 0) OR coalesce(s.reserved, 0) <> coalesce(m.r, 0)
UNION ALL
SELECT 'reserved stock = the reservations of the lines', count(*)
  FROM stock_levels s
  FULL JOIN (SELECT warehouse_id, sku, sum(qty_reserved) AS r FROM order_lines
              WHERE qty_reserved > 0 GROUP BY warehouse_id, sku) l USING (warehouse_id, sku)
 WHERE coalesce(s.reserved, 0) <> coalesce(l.r, 0)
UNION ALL
SELECT 'no demand waits while its stock is available', count(*)
  FROM order_lines l JOIN stock_levels s ON s.sku = l.sku
   AND (s.warehouse_id = l.warehouse_id OR l.warehouse_id IS NULL)
 WHERE l.qty_backordered > 0 AND s.on_hand > s.reserved
UNION ALL
SELECT 'foreign keys (rows written with triggers off)', (
    (SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = o.customer_id))
  + (SELECT count(*) FROM order_lines l WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = l.order_id))
  + (SELECT count(*) FROM order_lines l WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.sku = l.sku))
  + (SELECT count(*) FROM shipments s WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = s.order_id))
  + (SELECT count(*) FROM shipment_lines sl WHERE NOT EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = sl.order_id AND s.shipment_id = sl.shipment_id))
  + (SELECT count(*) FROM shipment_lines sl WHERE NOT EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = sl.order_id AND l.line_no = sl.line_no))
  + (SELECT count(*) FROM returns r WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = r.order_id))
  + (SELECT count(*) FROM return_lines rl WHERE NOT EXISTS (SELECT 1 FROM returns r WHERE r.order_id = rl.order_id AND r.return_id = rl.return_id))
  + (SELECT count(*) FROM payments p WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = p.order_id))
  + (SELECT count(*) FROM payments p WHERE p.return_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM returns r WHERE r.order_id = p.order_id AND r.return_id = p.return_id))
  + (SELECT count(*) FROM order_holds h WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = h.order_id))
  + (SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = e.order_id))
  + (SELECT count(*) FROM inventory_movements m WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.sku = m.sku)))
ORDER BY 1;
