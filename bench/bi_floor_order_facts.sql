-- bench/bi_floor.sh: the least order_facts must read, with no rule applied:
-- each order's row and its zone's warehouse, one pass over its events
-- (event_facts: confirmation, completion, manual events, rework), its
-- lines' quantities (in full), its shipments' delivery times (on time),
-- its holds (hours held), its refunds and its missed deliveries, joined
-- by order.  Time zones, deadlines, classes and the KPIs themselves are
-- left out: whatever order_facts costs beyond this is their cost.
SELECT o.order_id, o.status, o.placed_at, o.promised_delivery_latest, w.tz, ev.f,
       l.qty_due, l.qty_delivered, sh.first_delivery_at, sh.last_delivery_at,
       h.holds, h.held, p.refunded, ta.failed_attempts
  FROM order_mgmt.orders o
  LEFT JOIN (SELECT e.order_id,
                    order_mgmt.event_facts(e.entity, e.entity_id, e.from_status, e.to_status,
                                           e.occurred_at, e.automated, e.actor, '{}'::text[]) AS f
               FROM order_mgmt.events e
              GROUP BY e.order_id) ev ON ev.order_id = o.order_id
  LEFT JOIN (SELECT x.order_id, sum(x.qty - x.qty_cancelled) AS qty_due,
                    sum(x.qty_delivered) AS qty_delivered, min(x.warehouse_id) AS warehouse_id
               FROM order_mgmt.order_lines x
              GROUP BY x.order_id) l ON l.order_id = o.order_id
  LEFT JOIN order_mgmt.warehouses w ON w.warehouse_id = coalesce(o.warehouse_id, l.warehouse_id)
  LEFT JOIN (SELECT x.order_id, min(x.delivered_at) AS first_delivery_at,
                    max(x.delivered_at) AS last_delivery_at
               FROM order_mgmt.shipments x
              GROUP BY x.order_id) sh ON sh.order_id = o.order_id
  LEFT JOIN (SELECT x.order_id, count(*) AS holds,
                    sum(coalesce(x.released_at, now()) - x.placed_at) AS held
               FROM order_mgmt.order_holds x
              GROUP BY x.order_id) h ON h.order_id = o.order_id
  LEFT JOIN (SELECT x.order_id, sum(x.amount) AS refunded
               FROM order_mgmt.payments x
              WHERE x.kind = 'refund' AND x.status = 'succeeded'
              GROUP BY x.order_id) p ON p.order_id = o.order_id
  LEFT JOIN (SELECT t.order_id, count(*) AS failed_attempts
               FROM order_mgmt.tracking_events t
              WHERE t.code = 'failed_attempt'
              GROUP BY t.order_id) ta ON ta.order_id = o.order_id
