-- The lifecycle trigger: legal moves, illegal moves, holds, final states,
-- requirements, plain roles, and graph edits in a running session.
\set VERBOSITY default
\set SHOW_CONTEXT never
\i test/fixtures/base.sql

SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 2}]',
       '{"name": "Acme", "line1": "Str. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}',
       external_ref => 'LC-1') AS o1 \gset

-- happy path, order side
UPDATE order_mgmt.orders SET status = 'confirmed' WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'processing' WHERE order_id = :o1;
SELECT status, held_from FROM order_mgmt.orders WHERE order_id = :o1;

-- illegal moves fail with OM001 and change nothing (row and log)
SELECT count(*) AS events_before FROM order_mgmt.events \gset
UPDATE order_mgmt.orders SET status = 'delivered' WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'placed' WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'no_such_status' WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = NULL WHERE order_id = :o1;
SELECT pg_temp.err(format('UPDATE order_mgmt.orders SET status = %L WHERE order_id = %s',
                          'shipped_yesterday', :o1));
SELECT status FROM order_mgmt.orders WHERE order_id = :o1;
SELECT count(*) - :events_before AS new_events FROM order_mgmt.events;
SELECT pg_temp.err(format('UPDATE order_mgmt.orders SET status = %L WHERE order_id = %s',
                          'cancelled', :o1 + 1000));  -- no row: nothing to check, no error

-- an UPDATE that leaves the status alone is not an event
UPDATE order_mgmt.orders SET requested_delivery = '2030-01-01' WHERE order_id = :o1;
SELECT count(*) - :events_before AS new_events FROM order_mgmt.events;

-- holds: held_from is remembered, and leaving goes back there or to cancelled
UPDATE order_mgmt.orders SET status = 'on_hold' WHERE order_id = :o1;
SELECT status, held_from FROM order_mgmt.orders WHERE order_id = :o1;
UPDATE order_mgmt.orders SET held_from = 'placed' WHERE order_id = :o1;   -- clients cannot move it
SELECT status, held_from FROM order_mgmt.orders WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'confirmed' WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'shipped' WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'processing' WHERE order_id = :o1;
SELECT status, held_from FROM order_mgmt.orders WHERE order_id = :o1;

-- the order's events, in order
SELECT event_type, from_status, to_status, entity, entity_id = :o1 AS same_id, actor
  FROM order_mgmt.events WHERE order_id = :o1 ORDER BY seq;

-- shipments: packed needs weight and dimensions, labelled needs carrier data
INSERT INTO order_mgmt.shipments (order_id, warehouse_id) VALUES (:o1, 'BER')
    RETURNING shipment_id AS s1 \gset
UPDATE order_mgmt.shipments SET status = 'picking' WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'packed', weight_g = 300 WHERE shipment_id = :s1;
SELECT pg_temp.err(format('UPDATE order_mgmt.shipments SET status = %L WHERE shipment_id = %s',
                          'packed', :s1));
UPDATE order_mgmt.shipments SET status = 'packed', weight_g = 300, length_mm = 200,
       width_mm = 150, height_mm = 100 WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'labelled', carrier = 'DHL' WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'labelled', carrier = 'DHL', service_id = 'STD',
       tracking_number = 'TRK-1' WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'dispatched' WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'cancelled' WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'in_transit' WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'delayed' WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'delivered' WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'in_transit' WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'out_for_delivery' WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'delivered' WHERE shipment_id = :s1;
UPDATE order_mgmt.shipments SET status = 'lost' WHERE shipment_id = :s1;
SELECT event_type, from_status, to_status FROM order_mgmt.events
 WHERE entity = 'shipment' AND entity_id = :s1 ORDER BY seq;

-- an order with shipped goods cannot be cancelled (OM006)
UPDATE order_mgmt.order_lines SET qty_shipped = 1 WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'cancelled' WHERE order_id = :o1;
SELECT pg_temp.err(format('UPDATE order_mgmt.orders SET status = %L WHERE order_id = %s',
                          'cancelled', :o1));
UPDATE order_mgmt.orders SET status = 'partially_shipped' WHERE order_id = :o1;
-- (0.5.0) a shipping or delivered status must agree with the lines (OM030)
UPDATE order_mgmt.orders SET status = 'shipped' WHERE order_id = :o1;
UPDATE order_mgmt.order_lines SET qty_shipped = 2 WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'shipped' WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'delivered' WHERE order_id = :o1;
UPDATE order_mgmt.order_lines SET qty_delivered = 2 WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'delivered' WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'completed' WHERE order_id = :o1;
-- final states are final
UPDATE order_mgmt.orders SET status = 'cancelled' WHERE order_id = :o1;
UPDATE order_mgmt.orders SET status = 'on_hold' WHERE order_id = :o1;

-- returns
INSERT INTO order_mgmt.returns (order_id, reason) VALUES (:o1, 'too big')
    RETURNING return_id AS r1 \gset
UPDATE order_mgmt.returns SET status = 'received' WHERE return_id = :r1;
UPDATE order_mgmt.returns SET status = 'approved' WHERE return_id = :r1;
-- (0.6.0: these edges require what receive_return, inspect_return and
-- refund/exchange_return set; here they are set by hand)
UPDATE order_mgmt.returns SET status = 'received', received_at = now() WHERE return_id = :r1;
UPDATE order_mgmt.returns SET status = 'inspected', inspected_at = now() WHERE return_id = :r1;
UPDATE order_mgmt.returns SET status = 'completed', resolved_at = now() WHERE return_id = :r1;
UPDATE order_mgmt.returns SET status = 'requested' WHERE return_id = :r1;
SELECT event_type, from_status, to_status FROM order_mgmt.events
 WHERE entity = 'return' AND entity_id = :r1 ORDER BY seq;

-- a plain role with UPDATE on orders is held to the same rules, and its
-- events are written although it cannot write the event log itself
CREATE ROLE om_clerk;
GRANT USAGE ON SCHEMA order_mgmt TO om_clerk;
GRANT SELECT, UPDATE ON order_mgmt.orders TO om_clerk;
SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "B-2", "qty": 1}]',
       '{"country": "DE", "postal_code": "10115"}') AS o2 \gset
SET ROLE om_clerk;
SET order_mgmt.actor = 'clerk:anna';
UPDATE order_mgmt.orders SET status = 'shipped' WHERE order_id = :o2;
UPDATE order_mgmt.orders SET status = 'confirmed' WHERE order_id = :o2;
INSERT INTO order_mgmt.events (order_id, entity, entity_id, event_type, actor)
    VALUES (:o2, 'order', :o2, 'order.fake', 'me');
RESET order_mgmt.actor;
RESET ROLE;
SELECT event_type, actor FROM order_mgmt.events WHERE order_id = :o2 ORDER BY seq;

-- editing the graph takes effect at once in this session
SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1}]',
       '{"country": "DE"}') AS o3 \gset
UPDATE order_mgmt.orders SET status = 'processing' WHERE order_id = :o3;
INSERT INTO order_mgmt.transitions (entity, from_status, to_status, activity)
    VALUES ('order', 'placed', 'processing', 'fast_tracked');
UPDATE order_mgmt.orders SET status = 'processing' WHERE order_id = :o3;
DELETE FROM order_mgmt.transitions WHERE entity = 'order' AND from_status = 'processing'
   AND to_status = 'shipped';
UPDATE order_mgmt.orders SET status = 'shipped' WHERE order_id = :o3;
SELECT event_type FROM order_mgmt.events WHERE order_id = :o3 ORDER BY seq;
-- a rolled-back edit is forgotten again
BEGIN;
INSERT INTO order_mgmt.transitions (entity, from_status, to_status, activity)
    VALUES ('order', 'processing', 'completed', 'skipped');
ROLLBACK;
UPDATE order_mgmt.orders SET status = 'completed' WHERE order_id = :o3;
-- graph rows are validated
INSERT INTO order_mgmt.transitions (entity, from_status, to_status, activity)
    VALUES ('invoice', 'a', 'b', 'x');
INSERT INTO order_mgmt.transitions (entity, from_status, to_status, activity)
    VALUES ('order', 'placed', 'placed', 'x');
INSERT INTO order_mgmt.transitions (entity, from_status, to_status, activity)
    VALUES ('order', repeat('x', 64), 'placed', 'x');

DROP OWNED BY om_clerk;
DROP ROLE om_clerk;
