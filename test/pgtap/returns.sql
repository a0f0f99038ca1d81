-- Post-sales (issue 11): a full return to refund, a partial return, a
-- damaged unit that is not restocked, missing units, an exchange that waits
-- for stock, restocked units that confirm a waiting order, return_status
-- step by step, the events of every step, completion.
BEGIN;
SELECT plan(57);
SET LOCAL search_path = order_mgmt, public;
\ir ../fixtures/returns_fixture.sql
INSERT INTO customers (customer_id, name, payment_terms, credit_limit) VALUES
    ('F-P', 'Prepaid Jane', 'prepaid', 0);
SELECT receive_stock('F-BER', 'F-A', 10) AS _, receive_stock('F-FRA', 'F-B', 5) AS _ \gset
SET order_mgmt.actor = 'agent:lena';

------------------------------------------------------------------------
-- 1. A full return, refunded: 2 x F-A (10.00) + 1 x F-B (5.00), prepaid
------------------------------------------------------------------------
SELECT place_order('F-P', '[{"sku": "F-A", "qty": 2}, {"sku": "F-B", "qty": 1}]',
                   '{"country": "DE", "postal_code": "10115"}') AS o1 \gset
SELECT authorize_payment(:o1, 25, 'R-AUTH-1') AS _, capture_payment(:o1, 25, 'R-CAP-1') AS _ \gset
SELECT confirm_order(:o1) AS _, pg_temp.deliver(:o1, now() - interval '2 days') AS _ \gset
SELECT is((SELECT status || '/' || payment_status || '/' || return_status FROM orders WHERE order_id = :o1),
          'delivered/paid/none', 'the order is delivered and paid, nothing returned');
SELECT is(return_deadline(:o1), (SELECT max(delivered_at) FROM shipments WHERE order_id = :o1) + interval '30 days',
          'the return window: 30 days after the last delivery');

SELECT max(seq) AS seq0 FROM events \gset
SELECT request_return(:o1, '[{"line_no": 1, "qty": 2}, {"line_no": 2, "qty": 1}]', 'does not fit') AS r1 \gset
SELECT is((SELECT status || '/' || resolution FROM returns WHERE return_id = :r1), 'requested/refund',
          'request_return: a requested return, resolution refund by default');
SELECT is((SELECT array_agg(array[line_no, qty, qty_received] ORDER BY line_no) FROM return_lines WHERE return_id = :r1),
          '{{1,2,0},{2,1,0}}', 'with its lines');
SELECT is((SELECT return_status FROM orders WHERE order_id = :o1), 'requested', 'return_status: requested');
SELECT approve_return(:r1) AS _, receive_return(:r1) AS _ \gset
SELECT is((SELECT array_agg(qty_received ORDER BY line_no) FROM return_lines WHERE return_id = :r1), '{2,1}',
          'receive_return receives every approved unit');
SELECT inspect_return(:r1, '[{"line_no": 1, "qty": 2, "condition": "resellable", "disposition": "restock"},
                             {"line_no": 2, "qty": 1, "condition": "resellable", "disposition": "restock"}]') AS _ \gset
SELECT is((SELECT on_hand FROM stock WHERE sku = 'F-A'), 10, 'restocked: F-A back on hand (10)');
SELECT is((SELECT on_hand FROM stock WHERE sku = 'F-B'), 5, 'restocked: F-B back on hand (5)');
SELECT is((SELECT array_agg(qty_returned ORDER BY line_no) FROM order_lines WHERE order_id = :o1), '{2,1}',
          'the lines count the returned units');
SELECT is((SELECT return_status FROM orders WHERE order_id = :o1), 'returned', 'return_status: returned');
SELECT ok(pg_temp.ledger_ok(), 'the ledger sums to stock (restock movements)');
SELECT refund_return(:r1) AS p1 \gset
SELECT is((SELECT amount || '/' || kind || '/' || return_id || '/' || psp_reference FROM payments WHERE payment_id = :p1),
          '25.00/refund/' || :r1 || '/order_mgmt:return:' || :r1,
          'refund_return refunds the accepted units (25.00), linked to the return');
SELECT is((SELECT payment_status FROM orders WHERE order_id = :o1), 'refunded', 'payment_status: refunded');
SELECT is((SELECT status || '/' || (resolved_at IS NOT NULL) FROM returns WHERE return_id = :r1), 'completed/true',
          'the refund completes the return');
SELECT is(refund_return(:r1), :p1::bigint, 'refund_return again: the same payment');
SELECT is((SELECT count(*) FROM payments WHERE order_id = :o1 AND kind = 'refund'), 1::bigint, 'and no second refund');
SELECT is((SELECT array_agg(event_type || ':' || coalesce(to_status, '') || ':' || actor ORDER BY seq)
             FROM events WHERE order_id = :o1 AND seq > :seq0),
          '{return.requested:requested:agent:lena,return.approved:approved:agent:lena,return.received:received:agent:lena,return.inspected:inspected:agent:lena,payment.refunded::agent:lena,return.completed:completed:agent:lena}',
          'one event per step, each with the actor');
SELECT is((SELECT array_agg(reason ORDER BY seq) FROM events WHERE order_id = :o1 AND seq > :seq0 AND entity = 'return'),
          '{"does not fit",approved,"3 unit(s) received","line 1: 2 resellable -> restock; line 2: 1 resellable -> restock","refunded 25.00"}',
          'and a reason');

------------------------------------------------------------------------
-- 2. A partial return with a damaged and a missing unit
------------------------------------------------------------------------
SELECT place_order('F-P', '[{"sku": "F-A", "qty": 4}]', '{"country": "DE", "postal_code": "10115"}') AS o2 \gset
SELECT authorize_payment(:o2, 40, 'R-AUTH-2') AS _, capture_payment(:o2, 40, 'R-CAP-2') AS _ \gset
SELECT confirm_order(:o2) AS _, pg_temp.deliver(:o2) AS _ \gset
SELECT on_hand AS fa0 FROM stock WHERE sku = 'F-A' \gset
SELECT request_return(:o2, '[{"line_no": 1, "qty": 3}]', 'two broken, one fine', 'refund') AS r2 \gset
SELECT approve_return(:r2) AS _, receive_return(:r2) AS _ \gset
SELECT inspect_return(:r2, '[{"line_no": 1, "qty": 1, "condition": "resellable", "disposition": "restock"},
                             {"line_no": 1, "qty": 1, "condition": "damaged", "disposition": "scrap"},
                             {"line_no": 1, "qty": 1, "condition": "missing"}]') AS _ \gset
SELECT is((SELECT on_hand FROM stock WHERE sku = 'F-A'), :fa0 + 1, 'only the resellable unit is back on hand');
SELECT is((SELECT array_agg(kind || ':' || on_hand_delta ORDER BY movement_id) FROM inventory_movements
            WHERE order_id = :o2 AND kind IN ('restock', 'scrap')), '{restock:1,scrap:0}',
          'the damaged unit: a scrap ledger row without stock');
SELECT is((SELECT array_agg(condition || ':' || coalesce(disposition, '-') || ':' || qty ORDER BY condition)
             FROM return_inspections WHERE return_id = :r2),
          '{damaged:scrap:1,missing:-:1,resellable:restock:1}', 'the inspection, split by condition');
SELECT is((SELECT coalesce(condition, 'mixed') FROM return_lines WHERE return_id = :r2), 'mixed',
          'the return line has no single condition');
SELECT is((SELECT qty_returned FROM order_lines WHERE order_id = :o2), 2,
          'returned: the resellable and the damaged unit, not the missing one');
SELECT is((SELECT return_status FROM orders WHERE order_id = :o2), 'partially_returned',
          'return_status: partially_returned');
SELECT refund_return(:r2) AS p2 \gset
SELECT is((SELECT amount FROM payments WHERE payment_id = :p2), 20.00::numeric(14,2),
          'the refund pays the accepted units (2 x 10.00), not the missing one');
SELECT is((SELECT payment_status FROM orders WHERE order_id = :o2), 'partially_refunded',
          'payment_status: partially_refunded');
SELECT request_return(:o2, '[{"line_no": 1, "qty": 2}]', 'the missing one turned up, and the last one') AS r2b \gset
SELECT is((SELECT qty FROM return_lines WHERE return_id = :r2b), 2,
          'the missing unit and the unreturned one can be asked back');
SELECT reject_return(:r2b, 'outside our policy') AS _ \gset
SELECT is((SELECT status FROM returns WHERE return_id = :r2b), 'rejected', 'reject_return');
SELECT is((SELECT reason FROM events WHERE entity = 'return' AND entity_id = :r2b AND to_status = 'rejected'),
          'outside our policy', 'the rejection''s reason is on its event');
SELECT is((SELECT return_status FROM orders WHERE order_id = :o2), 'partially_returned',
          'a rejected return changes nothing returned');

------------------------------------------------------------------------
-- 3. Return_status: requested, then none again when the return is rejected
------------------------------------------------------------------------
SELECT pg_temp.delivered('[{"sku": "F-A", "qty": 1}]') AS o3 \gset
SELECT request_return(:o3, '[{"line_no": 1, "qty": 1}]', 'changed my mind') AS r3 \gset
SELECT is((SELECT return_status FROM orders WHERE order_id = :o3), 'requested', 'requested while open');
SELECT set_status('return', :r3, 'cancelled', 'customer withdrew') AS _ \gset
SELECT is((SELECT return_status FROM orders WHERE order_id = :o3), 'none',
          'a return cancelled by set_status: none again, whatever the path');
SELECT throws_ok(format($$SELECT set_status('return', %s, 'received')$$, request_return(:o3, '[{"line_no": 1, "qty": 1}]', 'again')),
                 'OM001', NULL, 'set_status cannot skip approval');
SELECT approve_return(r.return_id) AS _ FROM returns r WHERE r.order_id = :o3 AND status = 'requested' \gset
SELECT throws_ok(format($$SELECT set_status('return', %s, 'received')$$,
                        (SELECT return_id FROM returns WHERE order_id = :o3 AND status = 'approved')),
                 'OM002', NULL, 'set_status cannot receive a return: only receive_return gives received_at');

------------------------------------------------------------------------
-- 4. An exchange that meets a stock shortage
------------------------------------------------------------------------
SELECT pg_temp.delivered('[{"sku": "F-B", "qty": 2}]') AS o4 \gset
SELECT request_return(:o4, '[{"line_no": 1, "qty": 2}]', 'wrong colour', 'exchange') AS r4 \gset
SELECT approve_return(:r4) AS _, receive_return(:r4) AS _ \gset
SELECT inspect_return(:r4, '[{"line_no": 1, "qty": 2, "condition": "defective", "disposition": "return_to_vendor"}]') AS _ \gset
SELECT adjust_stock('F-FRA', 'F-B', -(SELECT on_hand FROM stock WHERE warehouse_id = 'F-FRA' AND sku = 'F-B'),
                    'stock count: none left') AS _ \gset
SELECT exchange_return(:r4) AS x4 \gset
SELECT is((SELECT o.customer_id || '/' || o.total || '/' || r.order_id || '/' || r.return_id
             FROM orders o JOIN returns r ON r.exchange_order_id = o.order_id WHERE o.order_id = :x4),
          'F-C/0.00/' || :o4 || '/' || :r4, 'the replacement: same customer, no charge, linked from the return');
SELECT is((SELECT array_agg(sku || ':' || qty || ':' || unit_price) FROM order_lines WHERE order_id = :x4),
          '{F-B:2:0.00}', 'the same items');
SELECT is((SELECT status FROM orders WHERE order_id = :x4), 'on_hold', 'no stock: the replacement waits on a hold');
SELECT is((SELECT kind FROM order_holds WHERE order_id = :x4 AND released_at IS NULL), 'stock', 'a stock hold');
SELECT is((SELECT status || '/' || resolution FROM returns WHERE return_id = :r4), 'completed/exchange',
          'the exchange completes the return');
SELECT is(exchange_return(:r4), :x4::bigint, 'exchange_return again: the same replacement');
SELECT is((SELECT array_agg(kind || ':' || on_hand_delta) FROM inventory_movements
            WHERE order_id = :o4 AND kind = 'return_to_vendor'), '{return_to_vendor:0}',
          'defective units to the vendor: a ledger row without stock');
SELECT receive_stock('F-FRA', 'F-B', 3) AS _ \gset
SELECT is((SELECT status FROM orders WHERE order_id = :x4), 'confirmed', 'stock arrives: the replacement is confirmed');
SELECT ok((SELECT promised_delivery_latest IS NOT NULL FROM orders WHERE order_id = :x4), 'with a promise');

------------------------------------------------------------------------
-- 5. Restocked units confirm an order waiting for stock
------------------------------------------------------------------------
SELECT adjust_stock('F-BER', 'F-A', -(SELECT on_hand - reserved FROM stock WHERE warehouse_id = 'F-BER' AND sku = 'F-A'),
                    'stock count') AS _ \gset
SELECT pg_temp.delivered('[{"sku": "F-B", "qty": 1}]') AS _ \gset
SELECT place_order('F-C', '[{"sku": "F-A", "qty": 1}]', '{"country": "DE", "postal_code": "10115"}') AS w5 \gset
SELECT is(confirm_order(:w5), 'on_hold', 'an order waits for F-A on a stock hold');
SELECT request_return(:o2, '[{"line_no": 1, "qty": 1}]', 'the last one') AS r5 \gset
SELECT approve_return(:r5) AS _, receive_return(:r5) AS _ \gset
SELECT inspect_return(:r5, '[{"line_no": 1, "qty": 1, "condition": "resellable", "disposition": "restock"}]') AS _ \gset
SELECT is((SELECT status FROM orders WHERE order_id = :w5), 'confirmed', 'the restocked unit confirms the waiting order');
SELECT is((SELECT qty_reserved FROM order_lines WHERE order_id = :w5), 1, 'it holds the restocked unit');
SELECT ok(pg_temp.ledger_ok() AND pg_temp.reservations_ok(), 'the ledger sums to stock; reservations match the lines');
SELECT is((SELECT qty_returned || '/' || return_status FROM order_lines JOIN orders USING (order_id) WHERE order_id = :o2),
          '3/partially_returned', 'order 2: 3 of 4 units back (one went missing): still partially_returned');

------------------------------------------------------------------------
-- 6. Completion
------------------------------------------------------------------------
SELECT receive_stock('F-FRA', 'F-B', 4) AS _ \gset
SELECT pg_temp.delivered('[{"sku": "F-B", "qty": 1}]', now() - interval '40 days') AS due \gset
SELECT pg_temp.delivered('[{"sku": "F-B", "qty": 1}]', now() - interval '10 days') AS not_due \gset
SELECT pg_temp.delivered('[{"sku": "F-B", "qty": 1}]', now() - interval '10 days') AS due_open \gset
SELECT pg_temp.delivered('[{"sku": "F-B", "qty": 1}]', now() - interval '1 day') AS manual \gset
SELECT request_return(:due_open, '[{"line_no": 1, "qty": 1}]', 'late but in time') AS r6 \gset
SELECT set_config('order_mgmt.automated', 'off', true) AS _ \gset
-- as of 35 days from now, the one delivered 10 days ago with an open return is due too
SELECT count(*)::int AS due_n FROM orders o
 WHERE status_class('order', o.status) = 'delivered'
   AND return_deadline(o.order_id) < now() + interval '25 days' AND NOT has_open_return(o.order_id) \gset
SELECT is(complete_due_orders(now() + interval '25 days'), :due_n,
          'complete_due_orders completes as many orders as are due (' || :due_n || ')');
SELECT is((SELECT array_agg(order_id::text || ':' || status ORDER BY order_id) FROM orders
            WHERE order_id IN (:due, :not_due, :due_open, :manual)),
          ARRAY[:due || ':completed', :not_due || ':completed', :due_open || ':delivered', :manual || ':delivered'],
          'those due are completed; never one with an open return; not one still in its window');
SELECT is((SELECT automated::text || ':' || reason FROM events WHERE order_id = :due AND to_status = 'completed'),
          'true:return window ended ' || return_deadline(:due)::text, 'automated, with the reason');
SELECT is(complete_due_orders(now() + interval '25 days'), 0, 'run again: nothing more is due');
SELECT complete_order(:manual) AS _ \gset
SELECT is((SELECT status FROM orders WHERE order_id = :manual), 'completed', 'complete_order closes a delivered order');
SELECT is((SELECT automated FROM events WHERE order_id = :manual AND to_status = 'completed'), false,
          'by hand: not automated');
SELECT throws_ok(format('SELECT complete_order(%s)', :due_open), 'OM010', NULL,
                 'complete_order refuses an order with an open return');
SELECT reject_return(:r6, 'no') AS _ \gset
SELECT is(complete_due_orders(now() + interval '25 days'), 1, 'once the return is closed, it is completed');
SELECT throws_ok(format($$SELECT request_return(%s, '[{"line_no": 1, "qty": 1}]', 'x')$$, :manual), 'OM010', NULL,
                 'a completed order takes no return');

SELECT * FROM finish();
ROLLBACK;
