-- The order workflow end to end, as applications drive it: placement with
-- credit, payment and stock checks, a backorder, the delivery promise,
-- preparation and dispatch, tracking, a return; then the event log, the
-- current estimates and KPIs.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
\o /dev/null

\echo '== master data: customers, products, calendars, a warehouse, carrier services'
INSERT INTO order_mgmt.customers (customer_id, name, payment_terms, credit_limit, currency) VALUES
    ('ACME', 'Acme GmbH', 'credit', 5000, 'EUR'),
    ('BOLT', 'Bolt KG', 'credit', 100, 'EUR'),
    ('JANE', 'Jane Doe', 'prepaid', 0, 'EUR');
INSERT INTO order_mgmt.products (sku, name, list_price, weight_g) VALUES
    ('WIDGET', 'Widget', 9.90, 120), ('GADGET', 'Gadget', 24.50, 480);
INSERT INTO order_mgmt.calendars (calendar_id, name, tz, workdays) VALUES
    ('DE-WORK', 'German working days', 'Europe/Berlin', '{1,2,3,4,5}'),
    ('DE-SAT', 'German days with Saturday delivery', 'Europe/Berlin', '{1,2,3,4,5,6}');
INSERT INTO order_mgmt.calendar_exceptions (calendar_id, day, is_working, name)
SELECT c, d::date, false, n
  FROM (VALUES ('DE-WORK'), ('DE-SAT')) cal(c),
       (VALUES ('2026-12-24', 'Heiligabend'), ('2026-12-25', 'Weihnachten'),
               ('2026-12-26', 'Zweiter Weihnachtstag'), ('2027-01-01', 'Neujahr')) h(d, n);
INSERT INTO order_mgmt.warehouses (warehouse_id, name, tz, cutoff_local, calendar_id, zone) VALUES
    ('BER', 'Berlin DC', 'Europe/Berlin', '14:00', 'DE-WORK', 'DE');
INSERT INTO order_mgmt.services (service_id, carrier, handling_min, handling_max, transit_min,
                                 transit_max, transit_calendar_id, delivery_calendar_id, cost) VALUES
    ('STD', 'DHL', 0, 1, 1, 3, 'DE-WORK', 'DE-WORK', 4.90),
    ('EXP', 'UPS', 0, 0, 1, 1, 'DE-SAT', 'DE-SAT', 11.50);
INSERT INTO order_mgmt.zone_rules (country, postal_prefix, zone) VALUES ('DE', '', 'DE'), ('FR', '', 'FR');
INSERT INTO order_mgmt.lanes (service_id, origin_zone, dest_zone, transit_min, transit_max, cost) VALUES
    ('STD', 'DE', 'FR', 2, 4, 8.90), ('EXP', 'DE', 'FR', 1, 2, 19.00);
SET order_mgmt.actor = 'wms';
SELECT order_mgmt.receive_stock('BER', 'WIDGET', 100, 'initial count');
SELECT order_mgmt.receive_stock('BER', 'GADGET', 3, 'initial count');

\echo '== placement: EDI, web and phone orders; credit check, payment, stock'
SET order_mgmt.actor = 'edi-gateway';
SELECT order_mgmt.place_order('ACME', '[{"sku": "WIDGET", "qty": 10}, {"sku": "GADGET", "qty": 2}]',
       '{"name": "Acme GmbH", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}',
       channel => 'edi', external_ref => 'ACME-PO-4711') AS acme \gset
\o
SELECT order_mgmt.place_order('ACME', '[{"sku": "WIDGET", "qty": 10}, {"sku": "GADGET", "qty": 2}]',
       '{"name": "Acme GmbH", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}',
       channel => 'edi', external_ref => 'ACME-PO-4711') = :acme AS "EDI retry returns the same order";
\o /dev/null
SET order_mgmt.actor = 'webshop';
SELECT order_mgmt.place_order('JANE', '[{"sku": "GADGET", "qty": 3}]',
       '{"name": "Jane Doe", "line1": "Rue 5", "city": "Paris", "postal_code": "75001", "country": "FR"}',
       allow_backorder => true) AS jane \gset
SET order_mgmt.actor = 'phone:maria';
SELECT order_mgmt.place_order('BOLT', '[{"sku": "WIDGET", "qty": 20}]',
       '{"name": "Bolt KG", "line1": "Ring 2", "city": "Hamburg", "postal_code": "20095", "country": "DE"}',
       channel => 'phone') AS bolt \gset
SET order_mgmt.actor = 'order-desk';
SELECT order_mgmt.confirm_order(:acme);   -- credit ok, stock reserved, promise stored
SELECT order_mgmt.confirm_order(:bolt);   -- over the credit limit: credit hold
SELECT order_mgmt.confirm_order(:jane);   -- prepaid: waits for the payment
SET order_mgmt.actor = 'psp';
SELECT order_mgmt.authorize_payment(:jane, 73.50, 'PSP-AUTH-1');   -- confirms it; one gadget short: backordered
\o
SELECT order_id AS "order", customer_id, channel, status, payment_status, total,
       promised_delivery_earliest AS "promised from", promised_delivery_latest AS "promised by"
  FROM order_mgmt.orders ORDER BY 1;
SELECT order_id AS "order", kind, reason, placed_by FROM order_mgmt.order_holds ORDER BY hold_id;
\o /dev/null

\echo '== the credit hold is released by a person; stock arrives and fills the backorder'
SET order_mgmt.actor = 'credit-control:tom';
SELECT order_mgmt.release_hold(:bolt, (SELECT hold_id FROM order_mgmt.order_holds WHERE order_id = :bolt));
SELECT order_mgmt.confirm_order(:bolt);
SET order_mgmt.actor = 'wms';
SELECT order_mgmt.receive_stock('BER', 'GADGET', 10, 'purchase order 991');
\o
SELECT order_id AS "order", line_no, sku, qty, qty_reserved, qty_backordered FROM order_mgmt.order_lines ORDER BY 1, 2;
\echo '== promises (stored at confirmation; for the backorder, when the stock arrived) and estimates now'
SELECT order_id AS "order", status, promised_delivery_earliest AS "promised from",
       promised_delivery_latest AS "promised by" FROM order_mgmt.orders ORDER BY 1;
SELECT o.order_id AS "order", e.ship_earliest, e.ship_latest, e.delivery_earliest, e.delivery_latest,
       e.service_id, e.known
  FROM order_mgmt.orders o, order_mgmt.estimate_order_delivery(o.order_id) e ORDER BY 1;
\o /dev/null

\echo '== preparation and dispatch: pick, pack, choose the carrier service, label, ship, track'
SET order_mgmt.automated = on;
SELECT order_mgmt.set_status('order', :acme, 'processing');
INSERT INTO order_mgmt.shipments (order_id, warehouse_id) VALUES (:acme, 'BER') RETURNING shipment_id AS ship \gset
SELECT order_mgmt.set_status('shipment', :ship, 'picking');
UPDATE order_mgmt.shipments SET status = 'packed', weight_g = 2200, length_mm = 400, width_mm = 300,
       height_mm = 200 WHERE shipment_id = :ship;
\o
SELECT order_mgmt.choose_service(:ship, 'cheapest') AS "cheapest service meeting the promise";
\o /dev/null
UPDATE order_mgmt.shipments SET status = 'labelled', carrier = 'DHL',
       service_id = order_mgmt.choose_service(:ship, 'cheapest'), tracking_number = 'JD0001'
 WHERE shipment_id = :ship;
UPDATE order_mgmt.shipments SET status = 'dispatched', dispatched_at = now() WHERE shipment_id = :ship;
-- what dispatch does to stock (dispatch_shipment is a later issue): the reserved units leave
SELECT order_mgmt.stock_move(l.warehouse_id, l.sku, 'ship', -l.qty_reserved, -l.qty_reserved,
                             l.order_id, l.line_no, 'shipment ' || :ship)
  FROM order_mgmt.order_lines l WHERE l.order_id = :acme;
UPDATE order_mgmt.order_lines SET qty_shipped = qty_reserved, qty_reserved = 0 WHERE order_id = :acme;
SELECT order_mgmt.set_status('order', :acme, 'shipped');
SET order_mgmt.actor = 'carrier:DHL';
SELECT order_mgmt.set_status('shipment', :ship, 'in_transit');
SELECT order_mgmt.set_status('shipment', :ship, 'out_for_delivery');
SELECT order_mgmt.set_status('shipment', :ship, 'delivered');
UPDATE order_mgmt.shipments SET delivered_at = now() WHERE shipment_id = :ship;
UPDATE order_mgmt.order_lines SET qty_delivered = qty_shipped WHERE order_id = :acme;
SELECT order_mgmt.set_status('order', :acme, 'delivered');
RESET order_mgmt.automated;

\echo '== the rules hold for every client: illegal moves are refused'
\o
\set ON_ERROR_STOP 0
UPDATE order_mgmt.orders SET status = 'completed' WHERE order_id = :jane;
SELECT order_mgmt.cancel_order(:acme, 'customer changed their mind');
\set ON_ERROR_STOP 1
\o /dev/null

\echo '== post-sales: a return'
SET order_mgmt.actor = 'service-desk';
INSERT INTO order_mgmt.returns (order_id, reason) VALUES (:acme, 'two widgets damaged') RETURNING return_id AS ret \gset
SELECT order_mgmt.set_status('return', :ret, 'approved');
SELECT order_mgmt.set_status('return', :ret, 'received');

\o
\echo '== the event log (what process-mining and BI tools read)'
SELECT seq, order_id AS "order", event_type, from_status AS "from", to_status AS "to",
       actor, automated AS auto, reason
  FROM order_mgmt.events ORDER BY seq;

\echo '== KPIs (the BI views; definitions in docs/bi.md)'
\o /dev/null
-- which actors are systems: their steps do not make an order "touched"
INSERT INTO order_mgmt.bi_settings (system_actors)
VALUES ('{wms,edi-gateway,webshop,psp,carrier:%}');
\o
SELECT order_id AS "order", channel, status, on_time, in_full, cycle_time_hours AS "cycle h",
       credit_hold_hours AS "credit hold h", manual_events AS manual, touchless, rework,
       returned_qty AS returned
  FROM order_mgmt.order_facts ORDER BY 1;
SELECT channel, orders, measured, otd_rate, in_full_rate, otif_rate, touchless_rate,
       credit_hold_rate, return_rate
  FROM order_mgmt.kpi_daily WHERE day IS NULL ORDER BY channel = 'all', channel;
SELECT cases, share, variant FROM order_mgmt.process_variants ORDER BY variant_rank;
\echo '== orders whose current estimate misses the promise: none ...'
SELECT order_id, status, days_left, reason FROM order_mgmt.open_order_risk;
\echo '== ... until the warehouse announces three days of stocktaking'
\o /dev/null
INSERT INTO order_mgmt.calendar_exceptions (calendar_id, day, is_working, name)
SELECT 'DE-WORK', d::date, false, 'stocktaking'
  FROM generate_series(current_date + 1, current_date + 3, interval '1 day') d;
\o
SELECT order_id, status, days_left, days_late, reason FROM order_mgmt.open_order_risk;
