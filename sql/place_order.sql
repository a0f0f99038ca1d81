-- place_order: validation (each failure has its SQLSTATE and creates
-- nothing) and idempotency on external_ref.
\set VERBOSITY default
\set SHOW_CONTEXT never
\i test/fixtures/base.sql

CREATE TEMP VIEW counts AS
SELECT (SELECT count(*) FROM order_mgmt.orders) AS orders,
       (SELECT count(*) FROM order_mgmt.order_lines) AS lines,
       (SELECT count(*) FROM order_mgmt.events) AS events;

SELECT order_mgmt.place_order(
    customer_id => 'C-CREDIT',
    lines => '[{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1, "unit_price": 20}]',
    ship_to => '{"name": "Acme", "line1": "Str. 1", "city": "Berlin", "postal_code": "10115", "country": "de"}',
    channel => 'edi', external_ref => 'PO-1', requested_delivery => '2030-01-10') AS o1 \gset
SELECT customer_id, channel, status, payment_status, return_status, currency, total,
       ship_to_country, ship_to_postal, requested_delivery, allow_backorder
  FROM order_mgmt.orders WHERE order_id = :o1;
SELECT line_no, sku, qty, unit_price, qty_reserved FROM order_mgmt.order_lines
 WHERE order_id = :o1 ORDER BY line_no;
SELECT event_type, to_status, payload FROM order_mgmt.events WHERE order_id = :o1;
SELECT * FROM counts;

-- the same external_ref with the same content returns the same order
SELECT order_mgmt.place_order(
    customer_id => 'C-CREDIT',
    lines => '[{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1, "unit_price": 20}]',
    ship_to => '{"name": "Acme", "line1": "Str. 1", "city": "Berlin", "postal_code": "10115", "country": "de"}',
    channel => 'edi', external_ref => 'PO-1', requested_delivery => '2030-01-10') = :o1 AS same_order;
-- with other content it fails with OM005
SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 3}]',
    '{"country": "DE"}', external_ref => 'PO-1');
SELECT * FROM counts;

-- each bad input fails with its SQLSTATE and creates nothing
SELECT pg_temp.err($$SELECT order_mgmt.place_order('NOBODY', '[{"sku": "A-1", "qty": 1}]', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order(NULL, '[{"sku": "A-1", "qty": 1}]', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "ZZZ", "qty": 1}]', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 0}]', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": -2}]', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1.5}]', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": "2"}]', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1e9}]', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[]', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '{"sku": "A-1"}', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', NULL, '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "NOPRICE", "qty": 1}]', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1, "unit_price": -1}]', '{"country": "DE"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1}]', '{"country": "DE"}', channel => 'fax')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1}]', '{"country": "DE"}', channel => NULL)$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1}]', '{"country": "Germany"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1}]', '{"city": "Berlin"}')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1}]', '["DE"]')$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1}]', '{"country": "DE"}', allow_backorder => NULL)$$);
SELECT pg_temp.err($$SELECT order_mgmt.place_order('C-CREDIT', (SELECT jsonb_agg(jsonb_build_object('sku', 'A-1', 'qty', 1)) FROM generate_series(1, 1001)), '{"country": "DE"}')$$);
SELECT * FROM counts;

-- unit_price falls back to the list price; a line may repeat a sku
SELECT order_mgmt.place_order('C-PREPAID', '[{"sku": "A-1", "qty": 1}, {"sku": "A-1", "qty": 4}]',
                              '{"country": "FR", "postal_code": "75001"}', channel => 'phone') AS o2 \gset
SELECT total, currency, channel FROM order_mgmt.orders WHERE order_id = :o2;
SELECT line_no, sku, qty, unit_price FROM order_mgmt.order_lines WHERE order_id = :o2 ORDER BY line_no;

-- only order_mgmt_operator (and the owner) may call the API
CREATE ROLE om_nobody;
CREATE ROLE om_op IN ROLE order_mgmt_operator;
SET ROLE om_nobody;
SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1}]', '{"country": "DE"}');
SET ROLE om_op;
SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1}]', '{"country": "DE"}') > 0 AS placed;
SELECT order_mgmt.emit_event(1, 'order', 1, 'order.fake');
RESET ROLE;
DROP ROLE om_nobody;
DROP ROLE om_op;
