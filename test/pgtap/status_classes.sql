-- Status classes as data (issue 8): a status added to the graph with its
-- class is treated by its class everywhere, without any code change.
BEGIN;
SELECT plan(21);
SET LOCAL search_path = order_mgmt, public;

INSERT INTO customers (customer_id, name, payment_terms, credit_limit) VALUES
    ('SC', 'Classy Ltd', 'credit', 100);
INSERT INTO products (sku, name, list_price) VALUES ('SC-A', 'a', 10);
INSERT INTO warehouses (warehouse_id, name) VALUES ('SC-W', 'w');
SELECT receive_stock('SC-W', 'SC-A', 100) AS _ \gset

-- a shipped-like status between processing and shipped, and a second held status
INSERT INTO statuses (entity, status, class) VALUES
    ('order', 'packed_for_pickup', 'shipping'), ('order', 'on_review', 'held');
INSERT INTO transitions (entity, from_status, to_status, activity) VALUES
    ('order', 'processing', 'packed_for_pickup', 'packed_for_pickup'),
    ('order', 'packed_for_pickup', 'shipped', 'shipped'),
    ('order', 'confirmed', 'on_review', 'sent_to_review');

SELECT place_order('SC', '[{"sku": "SC-A", "qty": 6}]', '{"country": "DE"}') AS a \gset
SELECT is(confirm_order(:a), 'confirmed', 'order A (60.00) is confirmed');
SELECT set_status('order', :a, 'processing');
-- (0.5.0) a shipping-class status needs lines that have shipped something
-- (OM030); one unit leaves by hand here, as a dispatch would record it
UPDATE order_lines SET qty_reserved = 5, qty_shipped = 1 WHERE order_id = :a;
SELECT set_status('order', :a, 'packed_for_pickup');
SELECT is(status_class('order', 'packed_for_pickup'), 'shipping', 'the new status has its class');

-- cancellation, holds and line changes treat it as goods that have left
SELECT throws_ok(format('SELECT order_mgmt.cancel_order(%s, %L)', :a, 'too late?'), 'OM006', NULL,
                 'cancel_order refuses it with OM006, as for shipped');
SELECT throws_ok(format('SELECT order_mgmt.hold_order(%s, %L, %L)', :a, 'manual', 'stop it'), 'OM006',
                 NULL, 'hold_order refuses it with OM006');
SELECT throws_ok(format('SELECT order_mgmt.cancel_line(%s, 1, 1)', :a), 'OM006', NULL,
                 'cancel_line refuses it with OM006');

-- exposure counts it: A (60) + B (50) exceeds the limit of 100
SELECT is((SELECT exposure FROM credit_accounts WHERE customer_id = 'SC'), 60.00,
          'its total counts in the credit exposure');
SELECT place_order('SC', '[{"sku": "SC-A", "qty": 5}]', '{"country": "DE"}') AS b \gset
SELECT is(confirm_order(:b), 'on_hold', 'order B (50.00) goes on a credit hold');
SELECT is((SELECT kind FROM order_holds WHERE order_id = :b), 'credit', 'because of A''s exposure');

-- views: orders_at_risk lists pending, open and held orders only
UPDATE orders SET promised_delivery_latest = '2000-01-01' WHERE order_id IN (:a, :b);
SELECT is((SELECT array_agg(order_id ORDER BY order_id) FROM orders_at_risk), ARRAY[:b]::bigint[],
          'orders_at_risk leaves out the shipping-class order');

-- a second held status works like on_hold
SELECT place_order('SC', '[{"sku": "SC-A", "qty": 1}]', '{"country": "DE"}') AS c \gset
SELECT release_hold(:b, (SELECT hold_id FROM order_holds WHERE order_id = :b)) AS _ \gset
SELECT cancel_order(:b, 'not needed');
SELECT is(confirm_order(:c), 'confirmed', 'order C is confirmed');
SELECT set_status('order', :c, 'on_review', 'fraud team');
SELECT is((SELECT held_from FROM orders WHERE order_id = :c), 'confirmed',
          'entering the new held status remembers where from');
SELECT is((SELECT count(*) FROM order_holds WHERE order_id = :c AND released_at IS NULL), 1::bigint,
          'and opens a hold row');
SELECT throws_ok(format('SELECT order_mgmt.confirm_order(%s)', :c), 'OM010', NULL,
                 'a held-class order cannot be confirmed');
SELECT set_status('order', :c, 'confirmed', 'cleared');
SELECT is((SELECT status || '/' || (held_from IS NULL) FROM orders WHERE order_id = :c),
          'confirmed/true', 'it may go back to where it was held from');

-- the maintained exposure equals the exposure recomputed from scratch
SELECT is((SELECT exposure FROM credit_accounts WHERE customer_id = 'SC'),
          (SELECT sum(order_exposure(o.total, o.credit_approved_at, o.status,
                                     (SELECT coalesce(sum(amount), 0) FROM payments p
                                       WHERE p.order_id = o.order_id AND p.kind = 'capture'
                                         AND p.status = 'succeeded')))
             FROM orders o WHERE o.customer_id = 'SC'),
          'credit_accounts equals the sum recomputed from the orders');
SELECT is((SELECT exposure FROM credit_accounts WHERE customer_id = 'SC'), 70.00,
          'A (60) and C (10) count; the cancelled B does not');

-- the trigger conditions on status moves (0.11.0): one call each instead
-- of the status_class expressions they replaced, with the same answers
SELECT is(ARRAY[status_in_class('order', 'on_review', '{held}'),
                status_in_class('order', 'confirmed', '{held,cancelled}'),
                status_in_class('order', 'no_such_status', '{held}'),
                status_in_class('order', 'cancelled', '{NULL,cancelled}')],
          ARRAY[true, false, false, true], 'status_in_class: the class of a status, from the graph');
SELECT is(status_in_class('order', NULL, '{held}'), NULL, 'status_in_class is strict');
SELECT is(ARRAY[class_entered('shipment', 'labelled', 'dispatched', '{in_transit,delivered,failed}'),
                class_entered('shipment', 'dispatched', 'delayed', '{in_transit,delivered,failed}'),
                class_entered('shipment', 'picking', 'packed', '{in_transit,delivered,failed}'),
                class_entered('shipment', 'no_such_status', 'lost', '{in_transit,delivered,failed}'),
                class_entered('shipment', 'in_transit', 'delivered', '{}')],
          ARRAY[true, false, false, true, false],
          'class_entered: a move into one of the classes from another class');
SELECT is((SELECT count(*) FROM statuses a JOIN statuses b USING (entity)
            WHERE entity = 'shipment'
              AND class_entered('shipment', a.status, b.status, '{in_transit,delivered,failed}')
                  IS DISTINCT FROM
                  (status_class('shipment', a.status) IS DISTINCT FROM status_class('shipment', b.status)
                   AND status_class('shipment', b.status) IN ('in_transit', 'delivered', 'failed'))),
          0::bigint, 'the shipment triggers'' condition answers as before for every pair of statuses');
SELECT is((SELECT count(*) FROM statuses a JOIN statuses b USING (entity)
            WHERE entity = 'order'
              AND ((status_in_class('order', a.status, '{held}')
                    OR status_in_class('order', b.status, '{held}'))
                   IS DISTINCT FROM
                   (status_class('order', a.status) = 'held' OR status_class('order', b.status) = 'held')
                   OR status_in_class('order', b.status, '{completed,cancelled}')
                      IS DISTINCT FROM (status_class('order', b.status) IN ('completed', 'cancelled')))),
          0::bigint, 'so do the order triggers'' conditions (holds, closing), with the added statuses');

SELECT * FROM finish();
ROLLBACK;
