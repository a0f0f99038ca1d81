-- bench/placement.sh's client-side baseline ("bare SQL"): the 15 writes of one
-- place + confirm into plain tables, sent one statement at a time.
\set c random(1, 10000)
\set s1 random(1, 1000)
\set s2 random(1, 1000)
BEGIN;
INSERT INTO bare_orders (customer_id, channel, status, payment_status, currency, total, ship_to, ship_to_country, allow_backorder)
VALUES ('C' || :c, 'web', 'placed', 'unpaid', 'EUR', 3, '{"country": "DE", "postal_code": "10115"}', 'DE', false) RETURNING order_id AS id \gset
INSERT INTO bare_lines (order_id, line_no, sku, qty, unit_price) VALUES (:id, 1, 'S' || :s1, 1, 1), (:id, 2, 'S' || :s2, 2, 1);
INSERT INTO bare_events (order_id, entity, entity_id, event_type, to_status, actor) VALUES (:id, 'order', :id, 'order.placed', 'placed', current_user);
INSERT INTO bare_events (order_id, entity, entity_id, event_type, actor, payload) VALUES (:id, 'order', :id, 'order.credit_checked', current_user, '{"passed": true}');
UPDATE bare_stock SET reserved = reserved + 1 WHERE warehouse_id = 'W' AND sku = 'S' || :s1;
INSERT INTO bare_movements (warehouse_id, sku, kind, reserved_delta, order_id, line_no, actor) VALUES ('W', 'S' || :s1, 'reserve', 1, :id, 1, current_user);
UPDATE bare_lines SET qty_reserved = 1, warehouse_id = 'W' WHERE order_id = :id AND line_no = 1;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, actor) VALUES (:id, 'line', 1, 'line.reserved', current_user);
UPDATE bare_stock SET reserved = reserved + 2 WHERE warehouse_id = 'W' AND sku = 'S' || :s2;
INSERT INTO bare_movements (warehouse_id, sku, kind, reserved_delta, order_id, line_no, actor) VALUES ('W', 'S' || :s2, 'reserve', 2, :id, 2, current_user);
UPDATE bare_lines SET qty_reserved = 2, warehouse_id = 'W' WHERE order_id = :id AND line_no = 2;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, actor) VALUES (:id, 'line', 2, 'line.reserved', current_user);
UPDATE bare_orders SET status = 'confirmed' WHERE order_id = :id;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'order', :id, 'order.confirmed', 'placed', 'confirmed', current_user);
COMMIT;
