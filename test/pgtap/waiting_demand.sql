-- The queue of demand waiting for stock (issue 9): orders on a stock hold
-- and backordered lines wait in one queue by placed_at and are served,
-- oldest first, whenever stock becomes available (receipt, cancellation,
-- line cancellation, positive adjustment); a stock-held order whose lines
-- are all filled is confirmed again, automatically.  Bad input on the
-- placement API fails with its SQLSTATE and writes nothing.
BEGIN;
SELECT plan(25);
SET LOCAL search_path = order_mgmt, public;

INSERT INTO customers (customer_id, name, payment_terms, credit_limit) VALUES
    ('WD', 'Waiting Ltd', 'credit', 1000000), ('WD-P', 'Prepaid', 'prepaid', 0);
INSERT INTO products (sku, name, list_price) VALUES ('WD-A', 'a', 10), ('WD-B', 'b', 1);
INSERT INTO warehouses (warehouse_id, name) VALUES ('WD-W', 'w');
SELECT receive_stock('WD-W', 'WD-A', 1) AS _ \gset
CREATE FUNCTION pg_temp.confirmed() RETURNS bigint[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(order_id ORDER BY order_id), '{}') FROM order_mgmt.orders
     WHERE customer_id = 'WD' AND status = 'confirmed'
$$;

-- 100 orders of one unit; one unit in stock: one is confirmed, 99 wait
SELECT array_agg(order_mgmt.place_order('WD', '[{"sku": "WD-A", "qty": 1}]', '{"country": "DE"}')
                 ORDER BY g) AS ids
  FROM generate_series(1, 100) g \gset
SELECT count(*) FILTER (WHERE s = 'confirmed') AS confirmed FROM unnest(:'ids'::bigint[]) id,
       LATERAL order_mgmt.confirm_order(id) s \gset
SELECT is(:confirmed::int, 1, 'one unit: one order confirmed');
SELECT is((SELECT count(*) FROM orders o WHERE customer_id = 'WD' AND status = 'on_hold'
             AND EXISTS (SELECT 1 FROM order_holds h WHERE h.order_id = o.order_id
                          AND h.kind = 'stock' AND h.released_at IS NULL)), 99::bigint,
          '99 orders wait on a stock hold');
SELECT is((SELECT sum(qty_backordered) FROM order_lines l JOIN orders o USING (order_id)
            WHERE o.customer_id = 'WD'), 99::bigint, 'their units wait in the queue');

-- stock arrives in three lots: exactly as many orders as units are confirmed, oldest first
SELECT is(receive_stock('WD-W', 'WD-A', 10, 'lot 1'), 10, 'lot 1: 10 units allocated');
SELECT is(pg_temp.confirmed(), (:'ids'::bigint[])[1:11], 'the 11 oldest orders are confirmed');
SELECT is(receive_stock('WD-W', 'WD-A', 25, 'lot 2'), 25, 'lot 2: 25 units allocated');
SELECT is(pg_temp.confirmed(), (:'ids'::bigint[])[1:36], 'the 36 oldest orders are confirmed');
SELECT is(receive_stock('WD-W', 'WD-A', 4, 'lot 3'), 4, 'lot 3: 4 units allocated');
SELECT is(pg_temp.confirmed(), (:'ids'::bigint[])[1:40], 'the 40 oldest orders are confirmed');
SELECT is((SELECT count(*) FROM events e WHERE e.event_type = 'order.confirmed' AND e.automated
            AND e.order_id = ANY ((:'ids'::bigint[])[2:40])), 39::bigint,
          'their confirmations are automated events');
SELECT is((SELECT count(DISTINCT actor) FROM events e WHERE e.event_type = 'order.confirmed'
            AND e.order_id = ANY ((:'ids'::bigint[])[2:40])), 1::bigint,
          'with the actor who received the stock');

-- freed stock serves the queue in the same transaction
SELECT cancel_order((:'ids'::bigint[])[1], 'customer cancelled');
SELECT is(pg_temp.confirmed(), (:'ids'::bigint[])[2:41], 'cancelling a confirmed order confirms the next waiting one');
SELECT cancel_line((:'ids'::bigint[])[2], 1, 1, 'customer reduced');
SELECT is(pg_temp.confirmed(), (:'ids'::bigint[])[3:42], 'cancelling a reserved line does too');
SELECT adjust_stock('WD-W', 'WD-A', 2, 'found two') AS _ \gset
SELECT is(pg_temp.confirmed(), (:'ids'::bigint[])[3:44], 'a positive adjustment does too');
SELECT is((SELECT reserved = on_hand FROM stock WHERE sku = 'WD-A'), true,
          'every unit on hand is reserved while demand waits');

-- strict FIFO: a large old order takes what comes until it is filled
SELECT place_order('WD', '[{"sku": "WD-B", "qty": 5}]', '{"country": "DE"}') AS big \gset
SELECT place_order('WD', '[{"sku": "WD-B", "qty": 1}]', '{"country": "DE"}') AS small \gset
SELECT confirm_order(:big) AS _, confirm_order(:small) AS _ \gset
SELECT receive_stock('WD-W', 'WD-B', 3) AS _ \gset
SELECT is((SELECT qty_reserved || '/' || qty_backordered FROM order_lines WHERE order_id = :big), '3/2',
          'three units go to the older, larger order');
SELECT is((SELECT status FROM orders WHERE order_id = :small), 'on_hold', 'the younger order waits its turn');
SELECT receive_stock('WD-W', 'WD-B', 3) AS _ \gset
SELECT is((SELECT string_agg(status, ',' ORDER BY order_id) FROM orders WHERE order_id IN (:big, :small)),
          'confirmed,confirmed', 'then both are confirmed');

-- bad input writes nothing
CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws('/', (SELECT count(*) FROM order_mgmt.orders), (SELECT count(*) FROM order_mgmt.order_lines),
                     (SELECT count(*) FROM order_mgmt.payments), (SELECT count(*) FROM order_mgmt.events))
$$;
SELECT pg_temp.counts() AS before \gset
SELECT throws_ok($$SELECT order_mgmt.place_order('WD', '[{"sku": "WD-A", "qty": 1, "unit_price": "NaN"}]', '{"country": "DE"}')$$,
                 '22023', NULL, 'a NaN unit price is 22023');
SELECT throws_ok($$SELECT order_mgmt.place_order('WD', '[{"sku": "WD-A", "qty": 1000, "unit_price": 0.004}, {"sku": "WD-A", "qty": 1, "unit_price": 0.005}]', '{"country": "DE"}')$$,
                 '22023', NULL, 'a unit price with three decimals is 22023');
SELECT throws_ok($$SELECT order_mgmt.place_order('WD', '[{"sku": "WD-A", "qty": 1}]', '{"country": "DE"}', external_ref => repeat('r', 3000))$$,
                 '22001', NULL, 'an external_ref over 200 characters is 22001');
SELECT is(pg_temp.counts(), :'before', 'the refused placements wrote nothing');
SELECT place_order('WD-P', '[{"sku": "WD-A", "qty": 1}]', '{"country": "DE"}') AS pp \gset
SELECT pg_temp.counts() AS before \gset
SELECT throws_ok(format($$SELECT order_mgmt.authorize_payment(%s, 10, %L)$$, :pp, repeat('p', 3000)),
                 '22001', NULL, 'a psp_reference over 200 characters is 22001');
SELECT throws_ok(format($$SELECT order_mgmt.authorize_payment(%s, 'NaN', 'psp-nan')$$, :pp),
                 '22023', NULL, 'a NaN amount is 22023');
SELECT is(pg_temp.counts(), :'before', 'the refused payments wrote nothing');

SELECT * FROM finish();
ROLLBACK;
