-- bench/bi_floor.sh: the least open_order_risk must read through SPEC
-- section 2's tables and their indexes, with no rule applied: the open
-- orders (their lines still to be delivered, order_lines_open_idx), per
-- open order its row and its shipments (one lookup each by key), the open
-- holds, the last status move of an order not shipped yet, and the order's
-- own estimate (its lines and estimate_order_window) when no shipment
-- carries a window.  The reasons, the current window's rules, the failed
-- parcels and the units being prepared are left out.
SELECT l.order_id, l.qty_unshipped, o.status, o.promised_delivery_latest,
       s.estimated_latest, hl.open_holds,
       CASE WHEN o.class <> 'shipping' THEN
            (SELECT max(x.occurred_at) FROM order_mgmt.events x
              WHERE x.order_id = l.order_id AND x.entity = 'order'
                AND x.to_status IS NOT NULL) END AS in_status_since,
       CASE WHEN o.class <> 'shipping' AND l.qty_unshipped > 0 AND s.estimated_latest IS NULL THEN
            order_mgmt.estimate_order_window(o.orow,
                ARRAY(SELECT x FROM order_mgmt.order_lines x
                       WHERE x.order_id = l.order_id ORDER BY x.line_no)) END AS estimate
  FROM (SELECT x.order_id, sum(x.qty - x.qty_cancelled - x.qty_shipped) AS qty_unshipped
          FROM order_mgmt.order_lines x
         WHERE x.qty_delivered + x.qty_cancelled < x.qty
           AND (x.qty_delivered + x.qty_cancelled < x.qty) IS TRUE
         GROUP BY x.order_id) l
  LEFT JOIN (SELECT x.order_id, array_agg(x.kind) AS open_holds
               FROM order_mgmt.order_holds x
              WHERE x.released_at IS NULL
              GROUP BY x.order_id) hl ON hl.order_id = l.order_id
 CROSS JOIN LATERAL (SELECT z AS orow, z.status, z.promised_delivery_latest,
                            order_mgmt.status_class('order', z.status) AS class
                       FROM order_mgmt.orders z
                      WHERE z.order_id = l.order_id) o
  LEFT JOIN LATERAL (SELECT max(x.estimated_delivery_latest) AS estimated_latest
                       FROM order_mgmt.shipments x
                      WHERE x.order_id = l.order_id) s ON true
