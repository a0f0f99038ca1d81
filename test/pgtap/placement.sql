-- Placement rules (issue 3): confirmation, credit, payments, stock, holds,
-- cancellation, backorders; every rejection leaves everything unchanged.
BEGIN;
SELECT plan(99);
SET LOCAL search_path = order_mgmt, public;

INSERT INTO customers (customer_id, name, payment_terms, credit_limit) VALUES
    ('T-CREDIT', 'Credit Ltd', 'credit', 60), ('T-PRE', 'Prepaid Ltd', 'prepaid', 0);
INSERT INTO products (sku, name, list_price) VALUES ('T-A', 'a', 10), ('T-B', 'b', 5);
INSERT INTO warehouses (warehouse_id, name) VALUES ('T-W1', 'one'), ('T-W2', 'two');

-- everything a rejected call could have touched
CREATE FUNCTION pg_temp.digest() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(x, ';' ORDER BY x) FROM (SELECT concat_ws(',', warehouse_id, sku, on_hand, reserved) AS x FROM order_mgmt.stock) t),
        (SELECT string_agg(x, ';' ORDER BY x) FROM (SELECT concat_ws(',', order_id, status, held_from, payment_status, total) AS x FROM order_mgmt.orders) t),
        (SELECT string_agg(x, ';' ORDER BY x) FROM (SELECT concat_ws(',', order_id, line_no, warehouse_id, qty_reserved, qty_backordered, qty_cancelled) AS x FROM order_mgmt.order_lines) t),
        (SELECT string_agg(x, ';' ORDER BY x) FROM (SELECT concat_ws(',', hold_id, released_at) AS x FROM order_mgmt.order_holds) t),
        (SELECT count(*) FROM order_mgmt.payments),
        (SELECT count(*) FROM order_mgmt.inventory_movements),
        (SELECT count(*) FROM order_mgmt.events)))
$$;
CREATE FUNCTION pg_temp.ledger_ok() RETURNS boolean LANGUAGE sql AS $$
    SELECT bool_and(s.on_hand = coalesce(m.oh, 0) AND s.reserved = coalesce(m.r, 0))
      FROM order_mgmt.stock s
      LEFT JOIN (SELECT warehouse_id, sku, sum(on_hand_delta) oh, sum(reserved_delta) r
                   FROM order_mgmt.inventory_movements GROUP BY 1, 2) m USING (warehouse_id, sku)
$$;
CREATE FUNCTION pg_temp.ord(customer text, lines text, backorder boolean DEFAULT false)
RETURNS bigint LANGUAGE sql AS $$
    SELECT order_mgmt.place_order(customer, lines::jsonb, '{"country": "DE"}'::jsonb,
                                  allow_backorder => backorder)
$$;

-- stock -------------------------------------------------------------------
SELECT is(receive_stock('T-W1', 'T-A', 5, 'first delivery'), 0, 'receive_stock creates the row');
SELECT is((SELECT on_hand FROM stock WHERE warehouse_id = 'T-W1' AND sku = 'T-A'), 5, 'on_hand after receipt');
SELECT is(adjust_stock('T-W1', 'T-A', -1, 'broken'), 4, 'adjust_stock returns the new on_hand');
SELECT is((SELECT reason FROM inventory_movements ORDER BY movement_id DESC LIMIT 1), 'broken', 'the reason is in the ledger');
SELECT receive_stock('T-W1', 'T-A', 1) AS _ \gset
SELECT receive_stock('T-W2', 'T-A', 2) AS _ \gset
SELECT receive_stock('T-W1', 'T-B', 10) AS _ \gset

CREATE TEMP TABLE d AS SELECT pg_temp.digest() AS v;
SELECT throws_ok($$SELECT order_mgmt.receive_stock('T-W1', 'T-A', 0)$$, '22023', NULL, 'receive_stock: qty 0 is 22023');
SELECT throws_ok($$SELECT order_mgmt.receive_stock('T-W1', 'T-A', NULL)$$, '22004', NULL, 'receive_stock: null qty is 22004');
SELECT throws_ok($$SELECT order_mgmt.receive_stock('NOPE', 'T-A', 1)$$, 'OM004', NULL, 'receive_stock: unknown warehouse is OM004');
SELECT throws_ok($$SELECT order_mgmt.receive_stock('T-W1', 'NOPE', 1)$$, 'OM004', NULL, 'receive_stock: unknown sku is OM004');
SELECT throws_ok($$SELECT order_mgmt.adjust_stock('T-W1', 'T-A', -6, 'gone')$$, 'OM014', NULL, 'adjust_stock below zero is OM014');
SELECT throws_ok($$SELECT order_mgmt.adjust_stock('T-W1', 'T-A', -1, NULL)$$, '22004', NULL, 'adjust_stock needs a reason');
SELECT throws_ok($$SELECT order_mgmt.adjust_stock('T-W1', 'T-A', 0, 'x')$$, '22023', NULL, 'adjust_stock: delta 0 is 22023');
-- (stock_levels holds the committed rows of the view stock)
SELECT throws_ok($$INSERT INTO order_mgmt.stock_levels (warehouse_id, sku, on_hand, reserved) VALUES ('T-W2', 'T-B', 1, 2)$$, '23514', NULL, 'reserved <= on_hand is a constraint');
SELECT throws_ok($$INSERT INTO order_mgmt.stock_levels (warehouse_id, sku, on_hand, reserved) VALUES ('T-W2', 'T-B', -1, 0)$$, '23514', NULL, 'on_hand >= 0 is a constraint');
SELECT is(pg_temp.digest(), (SELECT v FROM d), 'rejected stock calls changed nothing');

-- confirmation: credit customer, reservation across warehouses --------------
SELECT pg_temp.ord('T-CREDIT', '[{"sku": "T-A", "qty": 3}, {"sku": "T-B", "qty": 2}]') AS o1 \gset
SELECT is(confirm_order(:o1), 'confirmed', 'a credit order within the limit is confirmed');
SELECT is((SELECT array_agg(qty_reserved ORDER BY line_no) FROM order_lines WHERE order_id = :o1), '{3,2}', 'every line is reserved');
SELECT is((SELECT array_agg(warehouse_id ORDER BY line_no) FROM order_lines WHERE order_id = :o1), '{T-W1,T-W1}', 'the warehouse with the most available stock serves the line');
SELECT is((SELECT reserved FROM stock WHERE warehouse_id = 'T-W1' AND sku = 'T-A'), 3, 'stock.reserved follows');
SELECT ok(EXISTS (SELECT 1 FROM events WHERE order_id = :o1 AND event_type = 'order.credit_checked'
                   AND (payload->>'passed')::boolean), 'the credit decision is an event');
SELECT is((SELECT count(*)::int FROM events WHERE order_id = :o1 AND event_type = 'line.reserved'), 2, 'each reservation is an event');
SELECT throws_ok(format('SELECT order_mgmt.confirm_order(%s)', :o1), 'OM010', NULL, 'confirming twice is OM010');
SELECT throws_ok('SELECT order_mgmt.confirm_order(-1)', 'OM004', NULL, 'unknown order is OM004');
SELECT throws_ok('SELECT order_mgmt.confirm_order(NULL)', '22004', NULL, 'null order is 22004');

-- credit hold: exposure 40 + 25 > 60
SELECT pg_temp.ord('T-CREDIT', '[{"sku": "T-B", "qty": 5}]') AS o2 \gset
SELECT is(confirm_order(:o2), 'on_hold', 'over the credit limit: on_hold');
SELECT is((SELECT kind FROM order_holds WHERE order_id = :o2 AND released_at IS NULL), 'credit', 'a credit hold is open');
SELECT is((SELECT held_from FROM orders WHERE order_id = :o2), 'placed', 'held from placed');
SELECT is((SELECT qty_reserved FROM order_lines WHERE order_id = :o2), 5, 'stock is still reserved while held');
SELECT (SELECT hold_id FROM order_holds WHERE order_id = :o2) AS h2 \gset

-- second hold, released in any order: the order stays held until the last
SELECT hold_order(:o2, 'fraud', 'address mismatch') AS h3 \gset
SELECT is((SELECT count(*)::int FROM order_holds WHERE order_id = :o2 AND released_at IS NULL), 2, 'two holds at once');
SELECT is(release_hold(:o2, :h2, 'credit manager approved'), 'on_hold', 'releasing one of two holds keeps on_hold');
SELECT throws_ok(format('SELECT order_mgmt.release_hold(%s, %s)', :o2, :h2), 'OM011', NULL, 'releasing twice is OM011');
SELECT throws_ok(format('SELECT order_mgmt.release_hold(%s, -5)', :o2), 'OM004', NULL, 'unknown hold is OM004');
SELECT throws_ok(format('SELECT order_mgmt.hold_order(%s, ''bogus'', ''x'')', :o2), '22023', NULL, 'unknown hold kind is 22023');
SELECT is(release_hold(:o2, :h3, 'verified'), 'placed', 'the last release returns to held_from');
SELECT is((SELECT released_by FROM order_holds WHERE order_id = :o2 AND hold_id = :h3), current_user::text, 'who released is recorded');
SELECT is(confirm_order(:o2), 'confirmed', 'a released credit hold is an approval: confirm passes');

-- manual hold on a confirmed order comes back to confirmed
SELECT hold_order(:o1, 'manual', 'customer call') AS h4 \gset
SELECT is((SELECT status FROM orders WHERE order_id = :o1), 'on_hold', 'hold_order puts a confirmed order on hold');
SELECT is(release_hold(:o1, :h4), 'confirmed', 'and release brings it back');
SELECT set_status('order', :o1, 'on_hold', 'phone check') AS _ \gset
SELECT is((SELECT array[kind, reason] FROM order_holds WHERE order_id = :o1 AND released_at IS NULL), '{manual,phone check}', 'set_status to on_hold opens a manual hold with the reason');
SELECT is(release_hold(:o1, (SELECT hold_id FROM order_holds WHERE order_id = :o1 AND released_at IS NULL)), 'confirmed', 'which is released like any other');
SELECT ok(EXISTS (SELECT 1 FROM events WHERE order_id = :o1 AND event_type = 'order.held' AND reason = 'phone check'), 'the move is the event, with the reason');
SELECT hold_order(:o1, 'fraud', 'odd address') AS _ \gset
SELECT set_status('order', :o1, 'confirmed', 'supervisor override') AS _ \gset
SELECT is((SELECT count(*)::int FROM order_holds WHERE order_id = :o1 AND released_at IS NULL), 0, 'leaving on_hold by set_status closes the open holds');
SELECT is((SELECT release_reason FROM order_holds WHERE order_id = :o1 AND kind = 'fraud'), 'supervisor override', 'with the reason of the move');

-- stock hold and backorder --------------------------------------------------
-- T-A: W1 6 on hand, 3 reserved; W2 2
SELECT pg_temp.ord('T-PRE', '[{"sku": "T-A", "qty": 4}]') AS o3 \gset
SELECT is(confirm_order(:o3), 'on_hold', 'a line that cannot be served puts the order on hold');
SELECT is((SELECT kind FROM order_holds WHERE order_id = :o3), 'stock', 'a stock hold');
SELECT is((SELECT qty_reserved FROM order_lines WHERE order_id = :o3), 2, 'what is available stays reserved');
SELECT pg_temp.ord('T-PRE', '[{"sku": "T-A", "qty": 3}]', true) AS o4 \gset
SELECT is(confirm_order(:o4), 'awaiting_payment', 'backorder allowed: no stock hold (prepaid, no authorization yet)');
SELECT is((SELECT array[qty_reserved, qty_backordered] FROM order_lines WHERE order_id = :o4), '{2,1}', 'the rest is backordered');
SELECT ok(EXISTS (SELECT 1 FROM events WHERE order_id = :o4 AND event_type = 'line.backordered'), 'line.backordered event');
SELECT is(authorize_payment(:o4, 30, 'T-AUTH-4') > 0, true, 'authorize');
SELECT is((SELECT status FROM orders WHERE order_id = :o4), 'confirmed', 'a covering authorization confirms the order');
SELECT ok((SELECT automated FROM events WHERE order_id = :o4 AND event_type = 'order.confirmed'), 'automated confirmation is marked automated');
SELECT is(receive_stock('T-W2', 'T-A', 5, 'po 7'), 1, 'receive_stock allocates the backorder');
SELECT is((SELECT array[qty_reserved, qty_backordered] FROM order_lines WHERE order_id = :o4), '{3,0}', 'the backorder is reserved');
SELECT ok((SELECT automated FROM events WHERE order_id = :o4 AND event_type = 'line.backorder_allocated'), 'allocation is an automated event');

-- payments ----------------------------------------------------------------
SELECT is(authorize_payment(:o4, 30, 'T-AUTH-4'), (SELECT payment_id FROM payments WHERE psp_reference = 'T-AUTH-4'), 'a repeated psp_reference returns the same payment');
SELECT is((SELECT count(*)::int FROM payments WHERE order_id = :o4), 1, 'and adds nothing');
SELECT is((SELECT payment_status FROM orders WHERE order_id = :o4), 'authorized', 'payment_status authorized');
SELECT capture_payment(:o4, 20, 'T-CAP-4') AS _ \gset
SELECT is((SELECT payment_status FROM orders WHERE order_id = :o4), 'partially_captured', 'partially_captured');
TRUNCATE d; INSERT INTO d SELECT pg_temp.digest();
SELECT throws_ok(format('SELECT order_mgmt.capture_payment(%s, 10.01, ''T-CAP-X'')', :o4), 'OM015', NULL, 'capturing more than authorized is OM015');
SELECT throws_ok(format('SELECT order_mgmt.refund_payment(%s, 20.01, ''T-REF-X'')', :o4), 'OM015', NULL, 'refunding more than captured is OM015');
SELECT throws_ok(format('SELECT order_mgmt.capture_payment(%s, 5, ''T-AUTH-4'')', :o4), 'OM005', NULL, 'a psp_reference reused with other content is OM005');
SELECT throws_ok(format('SELECT order_mgmt.capture_payment(%s, -5, ''T-NEG'')', :o4), '22023', NULL, 'a negative amount is 22023');
SELECT throws_ok(format('SELECT order_mgmt.capture_payment(%s, 1.001, ''T-FRAC'')', :o4), '22023', NULL, 'sub-cent amount is 22023');
SELECT throws_ok(format('SELECT order_mgmt.capture_payment(%s, 1, NULL)', :o4), '22004', NULL, 'null psp_reference is 22004');
UPDATE orders SET payment_status = 'paid' WHERE order_id = :o4;
SELECT is((SELECT payment_status FROM orders WHERE order_id = :o4), 'partially_captured', 'writing payment_status is overridden by the ledger');
SELECT is(pg_temp.digest(), (SELECT v FROM d), 'rejected payment calls changed nothing');
SELECT void_payment(:o4, NULL, 'T-VOID-4') AS _ \gset
SELECT is((SELECT amount FROM payments WHERE psp_reference = 'T-VOID-4'), 10.00::numeric, 'void without amount voids the uncaptured rest');
SELECT refund_payment(:o4, 20, 'T-REF-4') AS _ \gset
SELECT is((SELECT payment_status FROM orders WHERE order_id = :o4), 'refunded', 'refunded');

-- cancellation ------------------------------------------------------------
SELECT cancel_line(:o1, 1, 1, 'one less') AS _ \gset
SELECT is((SELECT array[qty_reserved, qty_cancelled] FROM order_lines WHERE order_id = :o1 AND line_no = 1), '{2,1}', 'cancel_line releases a reserved unit');
SELECT is((SELECT total FROM orders WHERE order_id = :o1), 30.00::numeric, 'and lowers the total');
TRUNCATE d; INSERT INTO d SELECT pg_temp.digest();
SELECT throws_ok(format('SELECT order_mgmt.cancel_line(%s, 1, 3)', :o1), 'OM016', NULL, 'cancelling more than is open is OM016');
SELECT throws_ok(format('SELECT order_mgmt.cancel_line(%s, 9, 1)', :o1), 'OM004', NULL, 'unknown line is OM004');
SELECT throws_ok(format('SELECT order_mgmt.cancel_order(%s, NULL)', :o1), '22004', NULL, 'a cancellation needs a reason');
UPDATE order_lines SET qty_shipped = 1, qty_reserved = 4 WHERE order_id = :o2;
SELECT throws_ok(format('SELECT order_mgmt.cancel_order(%s, ''too late'')', :o2), 'OM006', NULL, 'shipped goods: OM006');
UPDATE order_lines SET qty_shipped = 0, qty_reserved = 5 WHERE order_id = :o2;
SELECT is(pg_temp.digest(), (SELECT v FROM d), 'rejected cancellations changed nothing');
SELECT cancel_order(:o3, 'out of stock, customer gave up') AS _ \gset
SELECT is((SELECT array[qty_reserved, qty_cancelled] FROM order_lines WHERE order_id = :o3), '{0,4}', 'cancel_order releases every reservation');
SELECT is((SELECT count(*)::int FROM order_holds WHERE order_id = :o3 AND released_at IS NULL), 0, 'and closes the holds');
SELECT is((SELECT reason FROM events WHERE order_id = :o3 AND event_type = 'order.cancelled'), 'out of stock, customer gave up', 'the reason is on the event');
SELECT ok(pg_temp.ledger_ok(), 'the ledger sums to the stock rows');
SELECT is((SELECT sum(reserved)::int FROM stock WHERE sku = 'T-A'),
          (SELECT sum(qty_reserved)::int FROM order_lines WHERE sku = 'T-A'), 'stock.reserved equals the reserved line quantities');

-- more rules --------------------------------------------------------------
SELECT throws_ok(format('SELECT order_mgmt.hold_order(%s, ''manual'', ''late'')', :o3), 'OM010', NULL, 'a cancelled order cannot be held');
SELECT throws_ok(format('SELECT order_mgmt.authorize_payment(%s, 1, ''T-LATE'')', :o3), 'OM010', NULL, 'no authorization on a cancelled order');
SELECT throws_ok(format('SELECT order_mgmt.cancel_order(%s, ''again'')', :o3), 'OM010', NULL, 'cancelling twice is OM010');
SELECT pg_temp.ord('T-PRE', '[{"sku": "T-B", "qty": 2}]') AS o5 \gset
SELECT throws_ok(format('SELECT order_mgmt.void_payment(%s, NULL, ''T-VOID-5'')', :o5), 'OM015', NULL, 'nothing to void is OM015');
SELECT authorize_payment(:o5, 10, 'T-AUTH-5') AS _ \gset
SELECT is((SELECT status FROM orders WHERE order_id = :o5), 'placed', 'an authorization before confirmation does not confirm');
SELECT is(confirm_order(:o5), 'confirmed', 'a prepaid order covered by its authorization is confirmed');
SELECT void_payment(:o5, 4, 'T-VOID-5a') AS _ \gset
SELECT throws_ok(format('SELECT order_mgmt.capture_payment(%s, 6.01, ''T-CAP-5'')', :o5), 'OM015', NULL, 'a void lowers what can be captured');
SELECT void_payment(:o5, NULL, 'T-VOID-5b') AS _ \gset
SELECT is((SELECT payment_status FROM orders WHERE order_id = :o5), 'voided', 'voided when the whole authorization is voided');
-- cancel_line takes backordered units first
SELECT pg_temp.ord('T-CREDIT', '[{"sku": "T-A", "qty": 9}]', true) AS o6 \gset
SELECT confirm_order(:o6) AS _ \gset
SELECT is((SELECT array[qty_reserved, qty_backordered] FROM order_lines WHERE order_id = :o6), '{4,5}', 'partly backordered');
SELECT cancel_line(:o6, 1, 6, 'smaller order') AS _ \gset
SELECT is((SELECT array[qty_reserved, qty_backordered, qty_cancelled] FROM order_lines WHERE order_id = :o6), '{3,0,6}', 'cancel_line takes backorders first, then reserved units');
SELECT is((SELECT count(*)::int FROM events WHERE order_id = :o6 AND event_type = 'line.cancelled' AND reason = 'smaller order'), 1, 'line.cancelled with its reason');
SELECT cancel_line(:o6, 1, 3) AS _ \gset
SELECT is((SELECT status FROM orders WHERE order_id = :o6), 'cancelled', 'cancelling every unit cancels the order');
SELECT ok(pg_temp.ledger_ok(), 'the ledger still sums to the stock rows');

-- privileges --------------------------------------------------------------
CREATE ROLE t_op NOLOGIN IN ROLE order_mgmt_operator;
CREATE ROLE t_nobody NOLOGIN;
SET LOCAL ROLE t_op;
SET LOCAL order_mgmt.actor = 'alice';
SELECT is(order_mgmt.hold_order(:o1, 'manual', 'operator hold') > 0, true, 'an operator may call the API');
SELECT throws_ok(format('UPDATE order_mgmt.orders SET payment_status = ''paid'' WHERE order_id = %s', :o1), '42501', NULL, 'an operator cannot write orders directly');
SELECT throws_ok($$UPDATE order_mgmt.stock_levels SET on_hand = on_hand + 1$$, '42501', NULL, 'nor stock');
SELECT throws_ok($$SELECT order_mgmt.stock_move('T-W1', 'T-A', 'receipt', 1, 0, NULL, NULL, NULL)$$, '42501', NULL, 'nor call internal helpers');
RESET ROLE;
SET LOCAL ROLE t_nobody;
SELECT throws_ok(format('SELECT order_mgmt.confirm_order(%s)', :o1), '42501', NULL, 'PUBLIC cannot call the API');
RESET ROLE;
SELECT is((SELECT placed_by FROM order_holds WHERE order_id = :o1 AND reason = 'operator hold'), 'alice', 'placed_by is the actor (order_mgmt.actor)');

SELECT * FROM finish();
ROLLBACK;
