-- Placement meets the promise: confirm_order stores the promise; an order
-- confirmed with a backordered line has none (its ready date is unknown)
-- until receive_stock allocates the backorder, which makes the line ready
-- at the arrival and gives the order its promise from there.
BEGIN;
SELECT plan(8);
\ir ../fixtures/promise_fixture.sql
INSERT INTO order_mgmt.customers (customer_id, name, payment_terms, credit_limit)
    VALUES ('PB', 'Promise buyer', 'credit', 100000);
INSERT INTO order_mgmt.products (sku, name, list_price) VALUES ('PB-1', 'Thing', 10);
UPDATE order_mgmt.warehouses SET zone = 'DE' WHERE warehouse_id = 'BER';
SELECT order_mgmt.receive_stock('BER', 'PB-1', 2);

SELECT order_mgmt.place_order('PB', '[{"sku": "PB-1", "qty": 2}]', '{"country": "DE", "postal_code": "10115"}',
                              service_id => 'STD') AS in_stock \gset
SELECT order_mgmt.place_order('PB', '[{"sku": "PB-1", "qty": 3}]', '{"country": "DE", "postal_code": "10115"}',
                              service_id => 'STD', allow_backorder => true) AS short \gset
-- placed ten days ago, so "from the arrival" and "from placement" differ
UPDATE order_mgmt.orders SET placed_at = now() - interval '10 days' WHERE order_id = :short;
SELECT is(order_mgmt.confirm_order(:in_stock), 'confirmed', 'an order in stock is confirmed');
SELECT results_eq(
    format($$SELECT promised_delivery_earliest, promised_delivery_latest FROM order_mgmt.orders
              WHERE order_id = %s$$, :in_stock),
    format($$SELECT delivery_earliest, delivery_latest FROM order_mgmt.estimate_order_delivery(%s)$$, :in_stock),
    'confirm_order stores the estimate as the promise');
SELECT is(order_mgmt.confirm_order(:short), 'confirmed', 'a short order that allows backorders is confirmed');
SELECT is((SELECT promised_delivery_latest FROM order_mgmt.orders WHERE order_id = :short), NULL,
          'no promise while a line is backordered without a ready date');
SELECT is((SELECT known FROM order_mgmt.estimate_order_delivery(:short)), false,
          'its estimate is marked unknown');

SELECT order_mgmt.receive_stock('BER', 'PB-1', 5);
SELECT ok((SELECT ready_at = now() AND qty_backordered = 0 FROM order_mgmt.order_lines
            WHERE order_id = :short), 'the allocated line is ready at the arrival');
SELECT results_eq(
    format($$SELECT promised_delivery_earliest, promised_delivery_latest FROM order_mgmt.orders
              WHERE order_id = %s AND promised_delivery_latest >= current_date$$, :short),
    format($$SELECT e.delivery_earliest, e.delivery_latest
               FROM order_mgmt.estimate_delivery('BER', 'STD', 'DE', '10115', now()) e$$),
    'the order gets its promise, counted from the arrival');
SELECT is((SELECT count(*) FROM order_mgmt.orders_at_risk WHERE order_id IN (:in_stock, :short)), 0::bigint,
          'neither order is at risk');

SELECT * FROM finish();
ROLLBACK;
