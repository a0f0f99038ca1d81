-- Fulfilment (issue 10): one order from confirmation to delivery through the
-- API alone; a split order (two warehouses, and a backorder filled later and
-- shipped in a second shipment); cancellation of a shipment and of an order
-- before dispatch (reservations back, the ledger intact); every path into
-- dispatch does the same work; where is my order.
BEGIN;
SELECT plan(93);
SET LOCAL search_path = order_mgmt, public;
\ir ../fixtures/fulfilment_fixture.sql
SELECT receive_stock('F-BER', 'F-A', 10) AS _, receive_stock('F-FRA', 'F-B', 2) AS _ \gset

------------------------------------------------------------------------
-- 1. One order, confirmation to delivery, through the API alone
------------------------------------------------------------------------
SELECT pg_temp.ord('[{"sku": "F-A", "qty": 2}]') AS o1 \gset
SELECT is(confirm_order(:o1), 'confirmed', 'the order is confirmed');
SELECT max(seq) AS seq0 FROM events \gset
SET order_mgmt.actor = 'wms:anna';
SELECT is(release_to_warehouse(:o1), 1, 'release_to_warehouse creates one shipment');
SELECT (pg_temp.shipments_of(:o1))[1] AS s1 \gset
SELECT is((SELECT status FROM orders WHERE order_id = :o1), 'processing', 'the order is processing');
SELECT is((SELECT array[warehouse_id, status] FROM shipments WHERE shipment_id = :s1),
          '{F-BER,pending}', 'the shipment leaves from the warehouse of the reservation');
SELECT is((SELECT array_agg(array[line_no, qty]) FROM shipment_lines WHERE shipment_id = :s1),
          '{{1,2}}', 'with the reserved units of the line');
SELECT ok((SELECT promised_delivery_latest = (SELECT promised_delivery_latest FROM orders WHERE order_id = :o1)
                  AND estimated_delivery_latest IS NOT NULL
             FROM shipments WHERE shipment_id = :s1),
          'the shipment has the order''s promise and an estimate');
SELECT is(release_to_warehouse(:o1), 0, 'a second release creates nothing (idempotent)');
SELECT is(cardinality(pg_temp.shipments_of(:o1)), 1, 'still one shipment');

SELECT start_picking(:s1) AS _ \gset
SELECT is((SELECT status FROM shipments WHERE shipment_id = :s1), 'picking', 'start_picking');
SELECT pack_shipment(:s1, 1200, 400, 300, 200, 2) AS _ \gset
SELECT is((SELECT array[weight_g, length_mm, width_mm, height_mm, package_count]
             FROM shipments WHERE shipment_id = :s1), '{1200,400,300,200,2}',
          'pack_shipment records weight, dimensions and packages');
SELECT is(choose_service(:s1, 'cheapest'), 'F-STD', 'choose_service proposes the cheapest service');
SELECT label_shipment(:s1, 'DHL', choose_service(:s1, 'cheapest'), 'TRK-1', 'label-0001') AS _ \gset
SELECT is((SELECT array[status, carrier, service_id, tracking_number, label_ref]
             FROM shipments WHERE shipment_id = :s1), '{labelled,DHL,F-STD,TRK-1,label-0001}',
          'label_shipment records carrier, service, tracking number and label');
SELECT is((SELECT on_hand || '/' || reserved FROM stock WHERE warehouse_id = 'F-BER' AND sku = 'F-A'),
          '10/2', 'before dispatch the units are reserved');
SELECT dispatch_shipment(:s1) AS _ \gset
SELECT ok((SELECT status = 'dispatched' AND dispatched_at IS NOT NULL FROM shipments WHERE shipment_id = :s1),
          'dispatch_shipment: dispatched, with dispatched_at');
SELECT is((SELECT on_hand || '/' || reserved FROM stock WHERE warehouse_id = 'F-BER' AND sku = 'F-A'),
          '8/0', 'dispatch consumes the reservation: on_hand and reserved both drop');
SELECT is((SELECT array_agg(array[kind, on_hand_delta::text, reserved_delta::text, line_no::text, reason])
             FROM inventory_movements WHERE order_id = :o1 AND kind = 'ship'),
          ARRAY[ARRAY['ship', '-2', '-2', '1', 'shipment ' || :s1]], 'one ship movement per line');
SELECT is((SELECT qty_reserved || '/' || qty_shipped FROM order_lines WHERE order_id = :o1), '0/2',
          'the line''s reserved units are now shipped');
SELECT is((SELECT status FROM orders WHERE order_id = :o1), 'shipped', 'the order rolls up to shipped');
SELECT is((SELECT array[estimated_delivery_earliest, estimated_delivery_latest] FROM shipments
            WHERE shipment_id = :s1),
          (SELECT array[e.delivery_earliest, e.delivery_latest] FROM shipments s, orders o,
                  estimate_transit(s.warehouse_id, s.service_id, o.ship_to_country, o.ship_to_postal,
                                   s.dispatched_at) e
            WHERE s.shipment_id = :s1 AND o.order_id = s.order_id),
          'the estimated window is counted from the dispatch');

SET order_mgmt.actor = 'carrier:DHL';
SELECT is(record_tracking_event('TRK-1', 'DHL-1-1', 'in_transit', '2030-01-07 08:00+01', 'Berlin hub'),
          true, 'checkpoint in_transit is recorded');
SELECT is((SELECT status FROM shipments WHERE shipment_id = :s1), 'in_transit', 'the shipment is in transit');
SELECT is(record_tracking_event('TRK-1', 'DHL-1-2', 'out_for_delivery', '2030-01-08 07:00+01'), true,
          'checkpoint out_for_delivery');
SELECT is(record_tracking_event('TRK-1', 'DHL-1-3', 'delivered', '2030-01-08 11:30+01', 'front door'),
          true, 'checkpoint delivered');
SELECT is((SELECT status || ' ' || delivered_at FROM shipments WHERE shipment_id = :s1),
          'delivered ' || '2030-01-08 11:30+01'::timestamptz, 'delivered_at is the carrier''s time');
SELECT is((SELECT qty_delivered FROM order_lines WHERE order_id = :o1), 2, 'the line is delivered');
SELECT is((SELECT status FROM orders WHERE order_id = :o1), 'delivered', 'the order rolls up to delivered');
SELECT is((SELECT count(*) FROM tracking_events WHERE shipment_id = :s1), 3::bigint,
          'three checkpoints stored');
RESET order_mgmt.actor;

-- every step is one event with actor and reason; checkpoints are automated
SELECT is((SELECT array_agg(event_type ORDER BY seq) FROM events WHERE order_id = :o1 AND seq > :seq0),
          '{order.released,shipment.created,shipment.picking_started,shipment.packed,shipment.labelled,shipment.dispatched,order.shipped,shipment.checkpoint,shipment.in_transit,shipment.checkpoint,shipment.out_for_delivery,shipment.checkpoint,shipment.delivered,order.delivered}',
          'the events of the lifecycle, one per step');
SELECT is((SELECT count(*) FROM events WHERE order_id = :o1 AND seq > :seq0 AND (reason IS NULL OR reason = '')),
          0::bigint, 'every step has a reason');
SELECT is((SELECT array_agg(DISTINCT actor || ':' || automated) FROM events
            WHERE order_id = :o1 AND seq > :seq0 AND event_type LIKE 'shipment.%'
              AND event_type NOT IN ('shipment.checkpoint', 'shipment.in_transit',
                                     'shipment.out_for_delivery', 'shipment.delivered')),
          '{wms:anna:false}', 'warehouse steps: the warehouse''s actor, not automated');
SELECT is((SELECT array_agg(DISTINCT actor || ':' || automated) FROM events
            WHERE order_id = :o1 AND seq > :seq0
              AND event_type IN ('shipment.checkpoint', 'shipment.in_transit',
                                 'shipment.out_for_delivery', 'shipment.delivered')),
          '{carrier:DHL:true}', 'carrier checkpoints: the carrier''s actor, automated');
SELECT is((SELECT array_agg(DISTINCT automated) FROM events
            WHERE order_id = :o1 AND seq > :seq0 AND event_type IN ('order.shipped', 'order.delivered')),
          '{t}', 'the order''s roll-up is automated');
SELECT is((SELECT reason FROM events WHERE order_id = :o1 AND event_type = 'shipment.labelled'),
          'DHL F-STD TRK-1', 'the label step''s reason names carrier, service and tracking number');
SELECT ok(pg_temp.ledger_ok() AND pg_temp.reservations_ok(), 'the ledger sums to stock; reservations match the lines');

-- where is my order
SELECT is((SELECT status || ' ' || (shipments->0->>'tracking_number') || ' '
                  || (shipments->0->'latest_checkpoint'->>'code') || ' '
                  || (shipments->0->'latest_checkpoint'->>'location')
             FROM order_overview WHERE order_id = :o1),
          'delivered TRK-1 delivered front door', 'order_overview: status, tracking number, latest checkpoint');
CREATE ROLE f_reader LOGIN IN ROLE order_mgmt_reader;
SET ROLE f_reader;
SELECT is((SELECT count(*) FROM order_mgmt.order_overview), (SELECT count(*) FROM order_mgmt.order_overview),
          'order_overview is readable by order_mgmt_reader');
SELECT throws_ok('SELECT count(*) FROM order_mgmt.shipments', '42501', NULL,
                 'the reader cannot read the tables themselves');
RESET ROLE;

------------------------------------------------------------------------
-- 2. A split order: two warehouses, and a backorder filled later
------------------------------------------------------------------------
SELECT pg_temp.ord('[{"sku": "F-A", "qty": 1}, {"sku": "F-B", "qty": 5}]', true) AS o2 \gset
SELECT is(confirm_order(:o2), 'confirmed', 'the split order is confirmed with a backorder');
SELECT is((SELECT array_agg(array[qty_reserved, qty_backordered] ORDER BY line_no) FROM order_lines
            WHERE order_id = :o2), '{{1,0},{2,3}}', 'line 2: 2 reserved in F-FRA, 3 backordered');
SELECT is(release_to_warehouse(:o2), 2, 'one shipment per warehouse');
SELECT is((SELECT array_agg(s.warehouse_id || ':' || l.line_no || 'x' || l.qty ORDER BY s.warehouse_id)
             FROM shipments s JOIN shipment_lines l USING (order_id, shipment_id) WHERE s.order_id = :o2),
          '{F-BER:1x1,F-FRA:2x2}', 'each with the lines reserved there');
SELECT (pg_temp.shipments_of(:o2))[1] AS s2a, (pg_temp.shipments_of(:o2))[2] AS s2b \gset
SELECT pg_temp.prepare(:s2a, 'TRK-2A') AS _ \gset
SELECT dispatch_shipment(:s2a) AS _ \gset
SELECT is((SELECT status FROM orders WHERE order_id = :o2), 'partially_shipped',
          'one shipment left: partially_shipped');
SELECT pg_temp.prepare(:s2b, 'TRK-2B') AS _ \gset
SELECT dispatch_shipment(:s2b) AS _ \gset
SELECT is((SELECT status FROM orders WHERE order_id = :o2), 'partially_shipped',
          'both left, the backorder has not: still partially_shipped');
SELECT is(release_to_warehouse(:o2), 0, 'nothing to release while the backorder waits');
SELECT is(receive_stock('F-FRA', 'F-B', 5, 'po 17'), 3, 'stock arrives: the backorder is filled');
SELECT is((SELECT array[qty_reserved, qty_backordered, qty_shipped] FROM order_lines
            WHERE order_id = :o2 AND line_no = 2), '{3,0,2}', 'line 2: 3 reserved, 2 shipped');
SELECT is(release_to_warehouse(:o2), 1, 'a second release ships the filled backorder');
SELECT is(release_to_warehouse(:o2), 0, 'and only once');
SELECT (pg_temp.shipments_of(:o2))[3] AS s2c \gset
SELECT is((SELECT array_agg(array[line_no, qty]) FROM shipment_lines WHERE shipment_id = :s2c),
          '{{2,3}}', 'the second shipment of line 2 has the 3 units');
SELECT pg_temp.prepare(:s2c, 'TRK-2C') AS _ \gset
SELECT dispatch_shipment(:s2c) AS _ \gset
SELECT is((SELECT status FROM orders WHERE order_id = :o2), 'shipped', 'every unit left: shipped');
SELECT record_tracking_event('TRK-2A', 'DHL-2A', 'delivered', '2030-01-08 10:00+01') AS _ \gset
SELECT record_tracking_event('TRK-2C', 'DHL-2C', 'delivered', '2030-01-09 10:00+01') AS _ \gset
SELECT is((SELECT status FROM orders WHERE order_id = :o2), 'shipped',
          'two of three shipments delivered: still shipped');
SELECT record_tracking_event('TRK-2B', 'DHL-2B', 'delivered', '2030-01-09 12:00+01') AS _ \gset
SELECT is((SELECT status FROM orders WHERE order_id = :o2), 'delivered', 'all delivered: delivered');
SELECT is((SELECT array_agg(array[qty, qty_shipped, qty_delivered] ORDER BY line_no) FROM order_lines
            WHERE order_id = :o2), '{{1,1,1},{5,5,5}}', 'every unit shipped and delivered once');
SELECT is((SELECT array_agg(event_type ORDER BY seq) FROM events
            WHERE order_id = :o2 AND entity = 'order' AND event_type NOT IN ('order.placed', 'order.credit_checked')),
          '{order.confirmed,order.released,order.partially_shipped,order.shipped,order.delivered}',
          'the order''s own steps');
SELECT ok(pg_temp.ledger_ok() AND pg_temp.reservations_ok(), 'ledger and reservations after the split order');
SELECT is((SELECT jsonb_array_length(shipments) FROM order_overview WHERE order_id = :o2), 3,
          'order_overview lists the three shipments');

------------------------------------------------------------------------
-- 3. Cancelling a shipment: its units go back to the order's reservation
------------------------------------------------------------------------
SELECT pg_temp.ord('[{"sku": "F-A", "qty": 3}]') AS o3 \gset
SELECT confirm_order(:o3) AS _, release_to_warehouse(:o3) AS _ \gset
SELECT (pg_temp.shipments_of(:o3))[1] AS s3a \gset
SELECT start_picking(:s3a) AS _ \gset
SELECT count(*) AS mv3 FROM inventory_movements \gset
SELECT pg_temp.digest() AS d3 \gset
SELECT throws_ok(format('SELECT order_mgmt.cancel_line(%s, 1, 1)', :o3), 'OM016', NULL,
                 'cancel_line cannot take units that are in a shipment being prepared');
SELECT is(pg_temp.digest(), :'d3', 'and changes nothing');
SELECT cancel_shipment(:s3a, 'box damaged while picking') AS _ \gset
SELECT is((SELECT status FROM shipments WHERE shipment_id = :s3a), 'cancelled', 'the shipment is cancelled');
SELECT is((SELECT reason FROM events WHERE entity = 'shipment' AND entity_id = :s3a
            ORDER BY seq DESC LIMIT 1), 'box damaged while picking', 'its event has the reason');
SELECT is((SELECT qty_reserved FROM order_lines WHERE order_id = :o3), 3,
          'its units are still reserved for the order');
SELECT is((SELECT count(*) FROM inventory_movements), :mv3::bigint, 'no stock moved');
SELECT is((SELECT count(*) FROM allocated_units WHERE order_id = :o3), 0::bigint,
          'no unit is promised to a shipment any more');
SELECT is(release_to_warehouse(:o3), 1, 'a new release puts them in a new shipment');
SELECT (pg_temp.shipments_of(:o3))[2] AS s3b \gset
SELECT is((SELECT sum(qty) FROM shipment_lines WHERE shipment_id = :s3b), 3::bigint, 'with all 3 units');
SELECT cancel_shipment(:s3b, 'customer wants fewer') AS _ \gset
SELECT cancel_line(:o3, 1, 1, 'customer wants fewer') AS _ \gset
SELECT is((SELECT qty_reserved || '/' || qty_cancelled FROM order_lines WHERE order_id = :o3), '2/1',
          'after the shipment is cancelled, cancel_line releases a unit');
SELECT is((SELECT kind || ' ' || reserved_delta FROM inventory_movements WHERE order_id = :o3
            ORDER BY movement_id DESC LIMIT 1), 'release -1', 'by a release movement');
SELECT is(release_to_warehouse(:o3), 1, 'and the rest ships');
SELECT ok(pg_temp.ledger_ok() AND pg_temp.reservations_ok(), 'ledger and reservations after shipment cancellations');

------------------------------------------------------------------------
-- 4. Cancelling an order before dispatch
------------------------------------------------------------------------
SELECT pg_temp.ord('[{"sku": "F-A", "qty": 2}]') AS o4 \gset
SELECT confirm_order(:o4) AS _, release_to_warehouse(:o4) AS _ \gset
SELECT (pg_temp.shipments_of(:o4))[1] AS s4 \gset
SELECT start_picking(:s4) AS _ \gset
SELECT pack_shipment(:s4, 300, 100, 100, 100) AS _ \gset
SELECT reserved AS res4 FROM stock WHERE warehouse_id = 'F-BER' AND sku = 'F-A' \gset
SELECT cancel_order(:o4, 'customer withdrew');
SELECT is((SELECT status FROM orders WHERE order_id = :o4), 'cancelled', 'the order is cancelled');
SELECT is((SELECT status FROM shipments WHERE shipment_id = :s4), 'cancelled', 'its packed shipment too');
SELECT is((SELECT reason FROM events WHERE entity = 'shipment' AND entity_id = :s4 ORDER BY seq DESC LIMIT 1),
          'customer withdrew', 'with the order''s reason');
SELECT is((SELECT qty_reserved || '/' || qty_cancelled FROM order_lines WHERE order_id = :o4), '0/2',
          'the line is cancelled and holds nothing');
SELECT is((SELECT reserved FROM stock WHERE warehouse_id = 'F-BER' AND sku = 'F-A'), :res4 - 2,
          'the stock is free again');
SELECT is((SELECT sum(reserved_delta) FROM inventory_movements WHERE order_id = :o4), 0::bigint,
          'reserve and release cancel out in the ledger');
SELECT ok(pg_temp.ledger_ok() AND pg_temp.reservations_ok(), 'ledger and reservations after the cancellation');

------------------------------------------------------------------------
-- 5. Once dispatched, neither the order nor the shipment can be cancelled
------------------------------------------------------------------------
SELECT pg_temp.ord('[{"sku": "F-A", "qty": 1}]') AS o5 \gset
SELECT confirm_order(:o5) AS _, release_to_warehouse(:o5) AS _ \gset
SELECT (pg_temp.shipments_of(:o5))[1] AS s5 \gset
SELECT pg_temp.prepare(:s5, 'TRK-5') AS _ \gset
SELECT dispatch_shipment(:s5) AS _ \gset
SELECT pg_temp.digest() AS d5 \gset
SELECT throws_ok(format('SELECT order_mgmt.cancel_order(%s, %L)', :o5, 'too late'), 'OM006', NULL,
                 'cancel_order after dispatch is OM006');
SELECT throws_ok(format('SELECT order_mgmt.cancel_shipment(%s, %L)', :s5, 'too late'), 'OM006', NULL,
                 'cancel_shipment after dispatch is OM006');
SELECT throws_ok(format('SELECT order_mgmt.dispatch_shipment(%s)', :s5), 'OM010', NULL,
                 'dispatching twice is OM010');
SELECT is(pg_temp.digest(), :'d5', 'nothing changed');

------------------------------------------------------------------------
-- 6. Every path into dispatch and delivery does the same work
------------------------------------------------------------------------
SELECT pg_temp.ord('[{"sku": "F-A", "qty": 2}]') AS o6 \gset
SELECT confirm_order(:o6) AS _, release_to_warehouse(:o6) AS _ \gset
SELECT (pg_temp.shipments_of(:o6))[1] AS s6 \gset
SELECT pg_temp.prepare(:s6, 'TRK-6') AS _ \gset
SELECT on_hand AS oh6 FROM stock WHERE warehouse_id = 'F-BER' AND sku = 'F-A' \gset
UPDATE shipments SET status = 'dispatched' WHERE shipment_id = :s6;
SELECT ok((SELECT dispatched_at IS NOT NULL FROM shipments WHERE shipment_id = :s6),
          'a direct UPDATE to dispatched sets dispatched_at');
SELECT is((SELECT on_hand FROM stock WHERE warehouse_id = 'F-BER' AND sku = 'F-A'), :oh6 - 2,
          'and consumes the reservation');
SELECT is((SELECT status FROM orders WHERE order_id = :o6), 'shipped', 'and rolls the order up');
SELECT set_status('shipment', :s6, 'in_transit') AS _ \gset
SELECT set_status('shipment', :s6, 'out_for_delivery') AS _ \gset
SELECT set_status('shipment', :s6, 'delivered', 'driver confirmed by phone') AS _ \gset
SELECT ok((SELECT delivered_at IS NOT NULL FROM shipments WHERE shipment_id = :s6),
          'set_status to delivered sets delivered_at');
SELECT is((SELECT qty_delivered FROM order_lines WHERE order_id = :o6), 2, 'and qty_delivered');
SELECT is((SELECT status FROM orders WHERE order_id = :o6), 'delivered', 'and rolls the order up');
SELECT is(set_status('order', :o6, 'completed')::text, '', 'a delivered order can be completed');
SELECT ok(pg_temp.ledger_ok() AND pg_temp.reservations_ok(), 'ledger and reservations at the end');

------------------------------------------------------------------------
-- 7. Holds stop the warehouse
------------------------------------------------------------------------
SELECT pg_temp.ord('[{"sku": "F-A", "qty": 1}]') AS o7 \gset
SELECT confirm_order(:o7) AS _, release_to_warehouse(:o7) AS _ \gset
SELECT (pg_temp.shipments_of(:o7))[1] AS s7 \gset
SELECT pg_temp.prepare(:s7, 'TRK-7') AS _ \gset
SELECT hold_order(:o7, 'fraud', 'card reported stolen') AS _ \gset
SELECT pg_temp.digest() AS d7 \gset
SELECT throws_ok(format('SELECT order_mgmt.dispatch_shipment(%s)', :s7), 'OM010', NULL,
                 'a held order''s shipment is not dispatched (OM010)');
SELECT throws_ok(format('UPDATE order_mgmt.shipments SET status = %L WHERE shipment_id = %s', 'dispatched', :s7),
                 'OM010', NULL, 'not even by a direct UPDATE');
SELECT throws_ok(format('SELECT order_mgmt.release_to_warehouse(%s)', :o7), 'OM010', NULL,
                 'nor released again');
SELECT is(pg_temp.digest(), :'d7', 'nothing changed');
SELECT release_hold(:o7, (SELECT hold_id FROM order_holds WHERE order_id = :o7)) AS _ \gset
SELECT dispatch_shipment(:s7) AS _ \gset
SELECT is((SELECT status FROM orders WHERE order_id = :o7), 'shipped', 'after the hold is released it ships');

SELECT * FROM finish();
ROLLBACK;
