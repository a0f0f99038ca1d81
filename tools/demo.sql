-- The order workflow end to end, as applications drive it: placement with
-- credit, payment and stock checks, a backorder, the delivery promise,
-- preparation and dispatch, tracking, a return exchanged (all through the API); then
-- the event log, where each order is, the current estimates and KPIs.
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

\echo '== preparation and dispatch: release, pick, pack, choose the carrier service, label, ship'
SET order_mgmt.actor = 'wms';
SELECT order_mgmt.release_to_warehouse(:acme);
SELECT shipment_id AS ship FROM order_mgmt.shipments WHERE order_id = :acme \gset
SELECT order_mgmt.start_picking(:ship);
SELECT order_mgmt.pack_shipment(:ship, weight_g => 2200, length_mm => 400, width_mm => 300, height_mm => 200);
\o
SELECT order_mgmt.choose_service(:ship, 'cheapest') AS "cheapest service meeting the promise";
\o /dev/null
SELECT order_mgmt.label_shipment(:ship, 'DHL', order_mgmt.choose_service(:ship, 'cheapest'), 'JD0001');
SELECT order_mgmt.dispatch_shipment(:ship);   -- the reserved units leave stock; the order is shipped
SELECT order_mgmt.release_to_warehouse(:jane);   -- Jane's backorder was filled: her parcel is being prepared

\echo '== tracking: carrier checkpoints (one arrives late and out of order, one twice)'
SET order_mgmt.actor = 'carrier:DHL';
SELECT now() + interval '3 hours' AS t1, now() + interval '20 hours' AS t2, now() + interval '23 hours' AS t3 \gset
SELECT order_mgmt.record_tracking_event('JD0001', 'DHL-77-2', 'out_for_delivery', :'t2', 'Berlin-Mitte');
SELECT order_mgmt.record_tracking_event('JD0001', 'DHL-77-1', 'in_transit', :'t1', 'Leipzig hub');
SELECT order_mgmt.record_tracking_event('JD0001', 'DHL-77-1', 'in_transit', :'t1', 'Leipzig hub');
\o
SELECT order_id AS "order", status FROM order_mgmt.orders WHERE order_id = :acme;
\o /dev/null
SELECT order_mgmt.record_tracking_event('JD0001', 'DHL-77-3', 'delivered', :'t3', 'front door');
\o
SELECT code, occurred_at, location FROM order_mgmt.tracking_events ORDER BY occurred_at;
SELECT sku, on_hand, reserved FROM order_mgmt.stock ORDER BY sku;
\o /dev/null

\echo '== the rules hold for every client: illegal moves are refused'
\o
\set ON_ERROR_STOP 0
UPDATE order_mgmt.orders SET status = 'completed' WHERE order_id = :jane;
SELECT order_mgmt.cancel_order(:acme, 'customer changed their mind');
\set ON_ERROR_STOP 1
\o /dev/null

\echo '== post-sales: two widgets arrived damaged; return, inspection, exchange'
SET order_mgmt.actor = 'service-desk';
SELECT order_mgmt.request_return(:acme, '[{"line_no": 1, "qty": 2}]', 'two widgets damaged',
                                 'exchange') AS ret \gset
SELECT order_mgmt.approve_return(:ret);
SET order_mgmt.actor = 'returns-desk';
SELECT order_mgmt.receive_return(:ret);
SELECT order_mgmt.inspect_return(:ret, '[{"line_no": 1, "qty": 1, "condition": "damaged", "disposition": "scrap"},
                                         {"line_no": 1, "qty": 1, "condition": "resellable", "disposition": "restock"}]');
-- the replacement is placed and confirmed through the normal rules, at no charge
SELECT order_mgmt.exchange_return(:ret) AS replacement \gset
\o
SELECT r.return_id AS "return", r.status, r.resolution, r.exchange_order_id AS "replacement",
       o.status AS "replacement status", o.total AS "charged", i.condition, i.disposition, i.qty
  FROM order_mgmt.returns r JOIN order_mgmt.orders o ON o.order_id = r.exchange_order_id
  JOIN order_mgmt.return_inspections i USING (return_id) ORDER BY i.condition;
SELECT order_id AS "order", status, return_status, order_mgmt.return_deadline(order_id) AS "returns until"
  FROM order_mgmt.orders WHERE order_id = :acme;
\o /dev/null

\o
\echo '== the event log (what process-mining and BI tools read)'
SELECT seq, order_id AS "order", event_type, from_status AS "from", to_status AS "to",
       actor, automated AS auto, reason
  FROM order_mgmt.events ORDER BY seq;

\echo '== where is my order (order_overview, readable by order_mgmt_reader)'
SELECT order_id AS "order", status, payment_status, promised_delivery_latest AS "promised by",
       current_delivery_latest AS "expected by",
       (SELECT string_agg(concat_ws(' ', x->>'status', x->>'carrier', x->>'tracking_number',
                                    x->'latest_checkpoint'->>'code'), '; ')
          FROM jsonb_array_elements(shipments) x) AS shipments
  FROM order_mgmt.order_overview ORDER BY 1;

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
