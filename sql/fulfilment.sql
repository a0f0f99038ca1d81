-- Fulfilment (0.5.0): one order from confirmation to delivery through the
-- API alone, as a warehouse system and a carrier drive it; what each step
-- writes; a few refusals.
\set VERBOSITY default
\set SHOW_CONTEXT never
\i test/fixtures/base.sql
INSERT INTO order_mgmt.calendars (calendar_id, tz) VALUES ('DE-WORK', 'Europe/Berlin');
UPDATE order_mgmt.warehouses SET calendar_id = 'DE-WORK', zone = 'DE' WHERE warehouse_id = 'BER';
INSERT INTO order_mgmt.services (service_id, carrier, handling_min, handling_max, transit_min,
                                 transit_max, transit_calendar_id, delivery_calendar_id, cost)
VALUES ('STD', 'DHL', 0, 1, 1, 3, 'DE-WORK', 'DE-WORK', 4.90),
       ('EXP', 'UPS', 0, 0, 1, 1, 'DE-WORK', 'DE-WORK', 11.50);
INSERT INTO order_mgmt.zone_rules (country, postal_prefix, zone) VALUES ('DE', '', 'DE');
SELECT order_mgmt.receive_stock('BER', 'A-1', 10), order_mgmt.receive_stock('BER', 'B-2', 5);

SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 3}, {"sku": "B-2", "qty": 1}]',
       '{"name": "Acme", "line1": "Str. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}',
       external_ref => 'FF-1') AS o \gset
SELECT order_mgmt.confirm_order(:o);
SELECT max(seq) AS seq0 FROM order_mgmt.events \gset

-- the warehouse
SET order_mgmt.actor = 'wms';
SELECT order_mgmt.release_to_warehouse(:o) AS shipments;
SELECT shipment_id AS s FROM order_mgmt.shipments WHERE order_id = :o \gset
SELECT order_mgmt.release_to_warehouse(:o) AS "shipments (again)";
SELECT line_no, qty FROM order_mgmt.shipment_lines WHERE shipment_id = :s ORDER BY line_no;
SELECT order_mgmt.start_picking(:s);
SELECT order_mgmt.pack_shipment(:s, weight_g => 2200, length_mm => 400, width_mm => 300, height_mm => 200);
SELECT order_mgmt.choose_service(:s, 'cheapest') AS cheapest, order_mgmt.choose_service(:s, 'fastest') AS fastest;
SELECT order_mgmt.label_shipment(:s, 'DHL', 'STD', 'JD014600003', 'zpl:label-1');
SELECT order_mgmt.dispatch_shipment(:s);
SELECT status, carrier, service_id, tracking_number, dispatched_at IS NOT NULL AS dispatched
  FROM order_mgmt.shipments WHERE shipment_id = :s;
SELECT kind, sku, on_hand_delta, reserved_delta, reason FROM order_mgmt.inventory_movements
 WHERE order_id = :o ORDER BY movement_id;
SELECT sku, on_hand, reserved FROM order_mgmt.stock ORDER BY sku;

-- the carrier (a later checkpoint first, then an older one, then a repeat)
SET order_mgmt.actor = 'carrier:DHL';
SELECT order_mgmt.record_tracking_event('JD014600003', 'DHL-0002', 'out_for_delivery',
                                        '2030-01-08 07:40+01', 'Berlin-Mitte') AS new;
SELECT order_mgmt.record_tracking_event('JD014600003', 'DHL-0001', 'in_transit',
                                        '2030-01-07 18:05+01', 'Leipzig hub') AS new;
SELECT order_mgmt.record_tracking_event('JD014600003', 'DHL-0001', 'in_transit',
                                        '2030-01-07 18:05+01', 'Leipzig hub') AS new;
SELECT status FROM order_mgmt.shipments WHERE shipment_id = :s;
SELECT order_mgmt.record_tracking_event('JD014600003', 'DHL-0003', 'delivered',
                                        '2030-01-08 11:02+01', 'front door') AS new;
RESET order_mgmt.actor;
SELECT code, occurred_at, location FROM order_mgmt.tracking_events WHERE shipment_id = :s ORDER BY occurred_at;
SELECT line_no, qty, qty_reserved, qty_shipped, qty_delivered FROM order_mgmt.order_lines
 WHERE order_id = :o ORDER BY line_no;

-- one event per step, with actor and reason; checkpoints are automated
SELECT event_type, from_status, to_status, actor, automated, reason
  FROM order_mgmt.events WHERE order_id = :o AND seq > :seq0 ORDER BY seq;

-- where is my order
SELECT status, current_delivery_earliest IS NOT NULL AS has_window, delivered_at,
       jsonb_pretty(shipments #- '{0,dispatched_at}' #- '{0,estimated_delivery_earliest}'
                              #- '{0,estimated_delivery_latest}' #- '{0,shipment_id}') AS shipments
  FROM order_mgmt.order_overview WHERE order_id = :o;

-- refusals (nothing changes)
SELECT count(*) AS events_before FROM order_mgmt.events \gset
SELECT pg_temp.err(format('SELECT order_mgmt.cancel_shipment(%s, %L)', :s, 'too late'));
SELECT pg_temp.err(format('SELECT order_mgmt.cancel_order(%s, %L)', :o, 'too late'));
SELECT pg_temp.err($$SELECT order_mgmt.record_tracking_event('NOPE', 'X', 'in_transit', now())$$);
SELECT pg_temp.err($$SELECT order_mgmt.record_tracking_event('JD014600003', 'X', 'beamed', now())$$);
SELECT pg_temp.err(format('UPDATE order_mgmt.shipments SET status = %L WHERE shipment_id = %s', 'in_transit', :s));
SELECT count(*) - :events_before AS new_events FROM order_mgmt.events;
