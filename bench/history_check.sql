-- bench/history_check.sql: the invariants of a BI history, whatever wrote
-- it (bench/history_bulk.sql writes with triggers off, so this is what
-- proves it respected them; for the orders of bench/history_api.sql it
-- proves the generator drove the API to rows of the same shape).  One row
-- per invariant: name | violations.  bench/history.sh fails unless every
-- count is 0.  Schema 0.8.0: fulfilment (shipments, their lines, tracking
-- events, the order's status rolled up from them), post-sales (returns,
-- inspections, restock, refunds, return_status, completion).
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
-- the roll-up rule of src/fulfilment.c (lines_status), over the lines not
-- cancelled: an order of the shipping or delivered class has the status
-- its lines imply, a completed one had every unit delivered, an open one
-- (confirmed, processing) has shipped nothing
SELECT 'order status follows its lines (partially_shipped, shipped, delivered)', count(*)
  FROM (SELECT o.order_id, status_class('order', o.status) AS class, o.status,
               CASE WHEN sum(l.qty_shipped) = 0 THEN NULL
                    WHEN sum(l.qty_shipped) < sum(l.qty - l.qty_cancelled) THEN 'partially_shipped'
                    WHEN sum(l.qty_delivered) < sum(l.qty_shipped) THEN 'shipped'
                    ELSE 'delivered' END AS implied
          FROM orders o JOIN order_lines l USING (order_id) GROUP BY o.order_id) x
 WHERE (x.class IN ('shipping', 'delivered') AND x.implied IS DISTINCT FROM x.status)
    OR (x.class = 'completed' AND x.implied IS DISTINCT FROM 'delivered')
    OR (x.class = 'open' AND x.implied IS NOT NULL)
UNION ALL
SELECT 'shipment lines: units reserved in the shipment''s warehouse, never more than due', count(*)
  FROM (SELECT sl.order_id, sl.line_no, l.qty - l.qty_cancelled AS due,
               bool_and(l.warehouse_id = s.warehouse_id) AS same_wh,
               sum(sl.qty) FILTER (WHERE status_class('shipment', s.status) <> 'cancelled') AS units
          FROM shipment_lines sl JOIN shipments s USING (order_id, shipment_id)
          JOIN order_lines l USING (order_id, line_no)
         GROUP BY sl.order_id, sl.line_no, l.qty, l.qty_cancelled) x
 WHERE NOT x.same_wh OR x.units > x.due
UNION ALL
SELECT 'shipments: dispatched_at iff left, delivered_at iff delivered, made by a release', count(*)
  FROM shipments s
 WHERE (s.dispatched_at IS NOT NULL)
       <> (status_class('shipment', s.status) IN ('in_transit', 'delivered', 'failed'))
    OR (s.delivered_at IS NOT NULL) <> (status_class('shipment', s.status) = 'delivered')
    OR s.delivered_at < s.dispatched_at OR s.dispatched_at < s.created_at
    OR NOT EXISTS (SELECT 1 FROM shipment_lines sl
                    WHERE sl.order_id = s.order_id AND sl.shipment_id = s.shipment_id)
    OR NOT EXISTS (SELECT 1 FROM events e WHERE e.order_id = s.order_id AND e.entity = 'shipment'
                      AND e.entity_id = s.shipment_id AND e.event_type = 'shipment.created')
UNION ALL
SELECT 'each checkpoint is one shipment.checkpoint event, after the dispatch', count(*)
  FROM tracking_events t
  JOIN shipments s USING (order_id, shipment_id)
  FULL JOIN (SELECT e.order_id, (e.payload->>'tracking_event_id')::bigint AS tracking_event_id,
                    count(*) AS n
               FROM events e WHERE e.event_type = 'shipment.checkpoint'
              GROUP BY 1, 2) e USING (order_id, tracking_event_id)
 WHERE e.n IS DISTINCT FROM 1 OR t.tracking_event_id IS NULL OR t.occurred_at < s.dispatched_at
UNION ALL
-- record_tracking_event: the status follows the checkpoint that supersedes
-- the others (here: the latest), delivered_at is the carrier's time
SELECT 'a shipment in transit follows its latest checkpoint', count(*)
  FROM shipments s
  LEFT JOIN tracking_events c ON c.order_id = s.order_id AND c.tracking_event_id = s.last_checkpoint_id
  LEFT JOIN LATERAL (SELECT t.tracking_event_id FROM tracking_events t
                      WHERE t.order_id = s.order_id AND t.shipment_id = s.shipment_id
                      ORDER BY t.occurred_at DESC, t.carrier_event_id COLLATE "C" DESC LIMIT 1) l ON true
 WHERE s.last_checkpoint_id IS DISTINCT FROM l.tracking_event_id
    OR (c.tracking_event_id IS NOT NULL AND (c.shipment_id <> s.shipment_id OR c.code <> s.status))
    OR (c.tracking_event_id IS NULL AND status_class('shipment', s.status) IN ('delivered', 'failed'))
    OR (s.status = 'delivered' AND s.delivered_at IS DISTINCT FROM c.occurred_at)
UNION ALL
SELECT 'returns stamped by their steps (received, inspected, resolved)', count(*)
  FROM returns r
 WHERE (r.received_at IS NOT NULL) <> (r.status IN ('received', 'inspected', 'completed'))
    OR (r.inspected_at IS NOT NULL) <> (r.status IN ('inspected', 'completed'))
    OR (r.resolved_at IS NOT NULL) <> (r.status = 'completed')
    OR EXISTS (SELECT 1 FROM return_lines rl WHERE rl.order_id = r.order_id AND rl.return_id = r.return_id
                  AND rl.qty_received <> CASE WHEN r.received_at IS NULL THEN 0 ELSE rl.qty END)
    OR NOT EXISTS (SELECT 1 FROM events e WHERE e.order_id = r.order_id AND e.entity = 'return'
                      AND e.entity_id = r.return_id AND e.event_type = 'return.requested')
UNION ALL
-- (the API stamps created_at with the transaction's time, delivered_at
-- with the carrier's: a return asked in the delivering transaction is
-- older than the delivery; 'returned units were delivered' checks units)
SELECT 'returns requested within the return window', count(*)
  FROM returns r
 WHERE r.created_at > (SELECT max(s.delivered_at) FROM shipments s WHERE s.order_id = r.order_id)
                      + make_interval(days => current_setting('order_mgmt.return_window_days')::int)
    OR NOT EXISTS (SELECT 1 FROM shipments s
                    WHERE s.order_id = r.order_id AND status_class('shipment', s.status) = 'delivered')
UNION ALL
SELECT 'inspections account for every received unit, once inspected', count(*)
  FROM return_lines rl JOIN returns r USING (order_id, return_id)
  LEFT JOIN (SELECT order_id, return_id, line_no, sum(qty) AS qty,
                    count(*) FILTER (WHERE disposition_problem(condition, disposition) IS NOT NULL) AS bad
               FROM return_inspections GROUP BY 1, 2, 3) i USING (order_id, return_id, line_no)
 WHERE coalesce(i.qty, 0) <> CASE WHEN r.inspected_at IS NULL THEN 0 ELSE rl.qty_received END
    OR i.bad > 0
UNION ALL
SELECT 'qty_returned = the accepted (not missing) inspected units', count(*)
  FROM order_lines l
  LEFT JOIN (SELECT order_id, line_no, sum(qty) AS qty FROM return_inspections
              WHERE condition <> 'missing' GROUP BY 1, 2) i USING (order_id, line_no)
 WHERE l.qty_returned <> coalesce(i.qty, 0)
UNION ALL
-- inspect_return: one ledger row per (line, disposition) inspected; only
-- restock changes stock, by the units restocked
SELECT 'each disposition is a ledger row, only restock adds stock', count(*)
  FROM (SELECT order_id, line_no, disposition AS kind, count(*) AS n, sum(qty) AS qty
          FROM return_inspections WHERE disposition IS NOT NULL GROUP BY 1, 2, 3) i
  FULL JOIN (SELECT order_id, line_no, kind, count(*) AS n, sum(on_hand_delta) AS qty,
                    sum(reserved_delta) AS r
               FROM inventory_movements
              WHERE kind IN ('restock', 'scrap', 'repair', 'return_to_vendor') GROUP BY 1, 2, 3) m
       USING (order_id, line_no, kind)
 WHERE i.n IS DISTINCT FROM m.n OR m.r <> 0
    OR m.qty <> CASE WHEN kind = 'restock' THEN i.qty ELSE 0 END
UNION ALL
SELECT 'return_status as derived (return_status_of)', count(*)
  FROM orders o
 WHERE CASE WHEN o.return_status = 'none'
                 AND NOT EXISTS (SELECT 1 FROM returns r WHERE r.order_id = o.order_id)
            THEN EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.order_id AND l.qty_returned > 0)
            ELSE o.return_status <> return_status_of(o.order_id) END
UNION ALL
-- refund_return (no amount): the accepted units at their price; a
-- completed return was refunded or exchanged
SELECT 'completed returns refunded the accepted units, or exchanged', count(*)
  FROM returns r
  LEFT JOIN (SELECT order_id, return_id, sum(amount) AS amount FROM payments
              WHERE kind = 'refund' AND status = 'succeeded' AND return_id IS NOT NULL
              GROUP BY 1, 2) p USING (order_id, return_id)
  LEFT JOIN LATERAL (SELECT sum(a.qty * a.unit_price) AS value
                       FROM accepted_units(r.order_id, r.return_id) a) v ON r.inspected_at IS NOT NULL
 WHERE (r.status = 'completed' AND r.resolution = 'refund' AND p.amount IS DISTINCT FROM v.value)
    OR (r.status = 'completed' AND r.resolution = 'exchange' AND r.exchange_order_id IS NULL)
    OR (r.status <> 'completed' AND p.amount IS NOT NULL)
UNION ALL
SELECT 'completed orders: no open return, completed after their last delivery', count(*)
  FROM orders o
 WHERE status_class('order', o.status) = 'completed'
   AND (has_open_return(o.order_id)
        OR (SELECT max(e.occurred_at) FILTER (WHERE e.event_type = 'order.completed')
                   < max(s.delivered_at)
              FROM events e, shipments s
             WHERE e.order_id = o.order_id AND e.entity = 'order' AND s.order_id = o.order_id))
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
  + (SELECT count(*) FROM tracking_events t WHERE NOT EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = t.order_id AND s.shipment_id = t.shipment_id))
  + (SELECT count(*) FROM return_inspections i WHERE NOT EXISTS (SELECT 1 FROM return_lines rl WHERE rl.order_id = i.order_id AND rl.return_id = i.return_id AND rl.line_no = i.line_no))
  + (SELECT count(*) FROM returns r WHERE r.exchange_order_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = r.exchange_order_id))
  + (SELECT count(*) FROM inventory_movements m WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.sku = m.sku)))
ORDER BY 1;
