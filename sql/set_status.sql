-- set_status: the generic move, with reason, actor and automated flag.
\set VERBOSITY default
\set SHOW_CONTEXT never
\i test/fixtures/base.sql

SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1}]', '{"country": "DE"}') AS o1 \gset
INSERT INTO order_mgmt.shipments (order_id, warehouse_id) VALUES (:o1, 'BER')
    RETURNING shipment_id AS s1 \gset
INSERT INTO order_mgmt.returns (order_id) VALUES (:o1) RETURNING return_id AS r1 \gset

SELECT order_mgmt.set_status('order', :o1, 'confirmed', 'credit ok');
SET order_mgmt.actor = 'wms';
SET order_mgmt.automated = on;
SELECT order_mgmt.set_status('shipment', :s1, 'picking');
RESET order_mgmt.automated;
RESET order_mgmt.actor;
SELECT order_mgmt.set_status(entity => 'return', id => :r1, to_status => 'approved', reason => 'goodwill');

-- a reason given by GUC applies when the call gives none; the call's reason does not leak
SET order_mgmt.reason = 'batch 7';
SELECT order_mgmt.set_status('order', :o1, 'on_hold');
SELECT order_mgmt.set_status('order', :o1, 'confirmed', 'fraud check passed');
SHOW order_mgmt.reason;
RESET order_mgmt.reason;
UPDATE order_mgmt.orders SET status = 'processing' WHERE order_id = :o1;

SELECT event_type, from_status, to_status, actor, automated, reason
  FROM order_mgmt.events WHERE order_id = :o1 ORDER BY seq;

-- failures: unknown entity, unknown id, illegal move, NULLs; nothing changes
SELECT count(*) AS events_before FROM order_mgmt.events \gset
SELECT pg_temp.err('SELECT order_mgmt.set_status(''invoice'', ' || :o1 || ', ''paid'')');
SELECT pg_temp.err('SELECT order_mgmt.set_status(''order'', 999999, ''confirmed'')');
SELECT pg_temp.err('SELECT order_mgmt.set_status(''shipment'', 999999, ''picking'')');
SELECT pg_temp.err('SELECT order_mgmt.set_status(''order'', ' || :o1 || ', ''completed'')');
SELECT pg_temp.err('SELECT order_mgmt.set_status(''order'', ' || :o1 || ', NULL)');
SELECT pg_temp.err('SELECT order_mgmt.set_status(NULL, ' || :o1 || ', ''confirmed'')');
SELECT pg_temp.err('SELECT order_mgmt.set_status(''return'', ' || :r1 || ', ''completed'', ''skip it'')');
SELECT status FROM order_mgmt.orders WHERE order_id = :o1;
SELECT count(*) - :events_before AS new_events FROM order_mgmt.events;
