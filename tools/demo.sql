-- The order workflow end to end, as an application would drive it.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;

\echo '== master data: customers, products, a warehouse'
INSERT INTO order_mgmt.customers (customer_id, name, payment_terms, credit_limit, currency) VALUES
    ('ACME', 'Acme GmbH', 'credit', 5000, 'EUR'),
    ('JANE', 'Jane Doe', 'prepaid', 0, 'EUR');
INSERT INTO order_mgmt.products (sku, name, list_price, weight_g) VALUES
    ('WIDGET', 'Widget', 9.90, 120), ('GADGET', 'Gadget', 24.50, 480);
INSERT INTO order_mgmt.warehouses (warehouse_id, name, tz, cutoff_local, zone) VALUES
    ('BER', 'Berlin DC', 'Europe/Berlin', '14:00', 'DE-EAST');

\o /dev/null
\echo '== placement: an EDI order from a credit customer and a web order'
SET order_mgmt.actor = 'edi-gateway';
SELECT order_mgmt.place_order('ACME', '[{"sku": "WIDGET", "qty": 10}, {"sku": "GADGET", "qty": 2}]',
       '{"name": "Acme GmbH", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}',
       channel => 'edi', external_ref => 'ACME-PO-4711') AS acme \gset
-- a retry of the same EDI message is the same order
\o
SELECT order_mgmt.place_order('ACME', '[{"sku": "WIDGET", "qty": 10}, {"sku": "GADGET", "qty": 2}]',
       '{"name": "Acme GmbH", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}',
       channel => 'edi', external_ref => 'ACME-PO-4711') = :acme AS "EDI retry returns the same order";
\o /dev/null
SET order_mgmt.actor = 'webshop';
SELECT order_mgmt.place_order('JANE', '[{"sku": "GADGET", "qty": 1}]',
       '{"name": "Jane Doe", "line1": "Rue 5", "city": "Paris", "postal_code": "75001", "country": "FR"}') AS jane \gset

\echo '== processing: confirm, a fraud hold and its release, release to the warehouse'
SET order_mgmt.actor = 'order-desk';
SELECT order_mgmt.set_status('order', :acme, 'confirmed', 'credit check passed');
SELECT order_mgmt.set_status('order', :jane, 'on_hold', 'address needs checking');
SELECT order_mgmt.set_status('order', :jane, 'placed', 'address confirmed by phone');
SELECT order_mgmt.set_status('order', :jane, 'confirmed', 'card authorised');
SELECT order_mgmt.set_status('order', :acme, 'processing');

\echo '== preparation and dispatch: pick, pack, label, ship, track'
SET order_mgmt.actor = 'wms';
SET order_mgmt.automated = on;
INSERT INTO order_mgmt.shipments (order_id, warehouse_id) VALUES (:acme, 'BER') RETURNING shipment_id AS ship \gset
SELECT order_mgmt.set_status('shipment', :ship, 'picking');
UPDATE order_mgmt.shipments SET status = 'packed', weight_g = 2200, length_mm = 400, width_mm = 300,
       height_mm = 200 WHERE shipment_id = :ship;
UPDATE order_mgmt.shipments SET status = 'labelled', carrier = 'DHL', service_id = 'STD',
       tracking_number = 'JD0001' WHERE shipment_id = :ship;
UPDATE order_mgmt.shipments SET status = 'dispatched', dispatched_at = now() WHERE shipment_id = :ship;
UPDATE order_mgmt.order_lines SET qty_shipped = qty WHERE order_id = :acme;
SELECT order_mgmt.set_status('order', :acme, 'shipped');
SET order_mgmt.actor = 'carrier:DHL';
SELECT order_mgmt.set_status('shipment', :ship, 'in_transit');
SELECT order_mgmt.set_status('shipment', :ship, 'out_for_delivery');
SELECT order_mgmt.set_status('shipment', :ship, 'delivered');
UPDATE order_mgmt.order_lines SET qty_delivered = qty_shipped WHERE order_id = :acme;
SELECT order_mgmt.set_status('order', :acme, 'delivered');
RESET order_mgmt.automated;

\echo '== the rules hold for every client: an illegal move is refused'
\set ON_ERROR_STOP 0
UPDATE order_mgmt.orders SET status = 'completed' WHERE order_id = :jane;
\set ON_ERROR_STOP 1

\echo '== post-sales: a return'
SET order_mgmt.actor = 'service-desk';
INSERT INTO order_mgmt.returns (order_id, reason) VALUES (:acme, 'two widgets damaged') RETURNING return_id AS ret \gset
SELECT order_mgmt.set_status('return', :ret, 'approved');
SELECT order_mgmt.set_status('return', :ret, 'received');

\o
\echo '== where the orders stand'
SELECT order_id AS "order", customer_id, channel, status, total, currency FROM order_mgmt.orders ORDER BY 1;
\echo '== the event log (what process-mining and BI tools read)'
SELECT seq, order_id AS "order", event_type, from_status AS "from", to_status AS "to",
       actor, automated AS auto, reason
  FROM order_mgmt.events ORDER BY seq;

\echo '== KPIs from the event log'
SELECT count(DISTINCT order_id) AS orders,
       count(*) AS events,
       round(100.0 * count(*) FILTER (WHERE automated) / count(*), 1) AS "automated events %",
       count(*) FILTER (WHERE event_type = 'order.held') AS holds,
       round(100.0 * count(DISTINCT order_id) FILTER (WHERE event_type = 'order.held')
             / count(DISTINCT order_id), 1) AS "orders held %"
  FROM order_mgmt.events;
SELECT o.order_id AS "order", o.channel, o.status,
       max(e.occurred_at) FILTER (WHERE e.event_type = 'order.delivered')
         - min(e.occurred_at) AS "placed to delivered"
  FROM order_mgmt.orders o JOIN order_mgmt.events e USING (order_id)
 GROUP BY o.order_id ORDER BY 1;
