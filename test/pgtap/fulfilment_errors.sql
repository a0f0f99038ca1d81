-- Fulfilment (issue 10): every rejected call fails with its documented
-- SQLSTATE and changes nothing; a direct UPDATE cannot skip a step, dispatch
-- without carrier data, or give an order a shipping status its lines do not
-- have.
BEGIN;
SELECT plan(83);
SET LOCAL search_path = order_mgmt, public;
\ir ../fixtures/fulfilment_fixture.sql
SELECT receive_stock('F-BER', 'F-A', 10) AS _ \gset
INSERT INTO services (service_id, carrier, transit_min, transit_max, transit_calendar_id,
                      delivery_calendar_id, active)
    VALUES ('F-OLD', 'DHL', 1, 2, 'F-CAL', 'F-CAL', false);

-- the cast: a placed order, a confirmed order, and shipments at every step
SELECT pg_temp.ord('[{"sku": "F-A", "qty": 1}]') AS placed \gset
SELECT pg_temp.ord('[{"sku": "F-A", "qty": 1}]') AS confirmed \gset
SELECT confirm_order(:confirmed) AS _ \gset
SELECT pg_temp.ord('[{"sku": "F-A", "qty": 1}, {"sku": "F-A", "qty": 1}]') AS o \gset
SELECT confirm_order(:o) AS _, release_to_warehouse(:o) AS _ \gset
SELECT (pg_temp.shipments_of(:o))[1] AS pending \gset
SELECT pg_temp.shipment_at('picking') AS picking, pg_temp.shipment_at('packed') AS packed,
       pg_temp.shipment_at('labelled') AS labelled, pg_temp.shipment_at('dispatched') AS dispatched \gset
SELECT 'TRK-' || :dispatched AS trk \gset
SELECT record_tracking_event(:'trk', 'EV-1', 'in_transit', '2030-01-07 08:00+01', 'hub') AS _ \gset
CREATE TEMP TABLE d AS SELECT pg_temp.digest() AS v;

-- release_to_warehouse --------------------------------------------------
SELECT throws_ok('SELECT order_mgmt.release_to_warehouse(NULL)', '22004', NULL, 'release: null order is 22004');
SELECT throws_ok('SELECT order_mgmt.release_to_warehouse(-1)', 'OM004', NULL, 'release: unknown order is OM004');
SELECT throws_ok(format('SELECT order_mgmt.release_to_warehouse(%s)', :placed), 'OM010', NULL,
                 'release: an order not yet confirmed is OM010');
SELECT cancel_order(:placed, 'test') AS _ \gset
DELETE FROM d;
INSERT INTO d SELECT pg_temp.digest();
SELECT throws_ok(format('SELECT order_mgmt.release_to_warehouse(%s)', :placed), 'OM010', NULL,
                 'release: a cancelled order is OM010');
SELECT is(pg_temp.digest(), (SELECT v FROM d), 'rejected releases changed nothing');

-- start_picking -----------------------------------------------------------
SELECT throws_ok('SELECT order_mgmt.start_picking(NULL)', '22004', NULL, 'start_picking: null is 22004');
SELECT throws_ok('SELECT order_mgmt.start_picking(-1)', 'OM004', NULL, 'start_picking: unknown shipment is OM004');
SELECT throws_ok(format('SELECT order_mgmt.start_picking(%s)', :picking), 'OM010', NULL,
                 'start_picking twice is OM010');
SELECT throws_ok(format('SELECT order_mgmt.start_picking(%s)', :packed), 'OM001', NULL,
                 'start_picking of a packed shipment is OM001 (no edge back)');
SELECT throws_ok(format('SELECT order_mgmt.start_picking(%s)', :dispatched), 'OM010', NULL,
                 'start_picking of a dispatched shipment is OM010');
SELECT is(pg_temp.digest(), (SELECT v FROM d), 'rejected picks changed nothing');

-- pack_shipment -----------------------------------------------------------
SELECT throws_ok(format('SELECT order_mgmt.pack_shipment(%s, NULL, 1, 1, 1)', :picking), '22004', NULL,
                 'pack: missing weight is 22004');
SELECT throws_ok(format('SELECT order_mgmt.pack_shipment(%s, 1, 1, NULL, 1)', :picking), '22004', NULL,
                 'pack: missing width is 22004');
SELECT throws_ok(format('SELECT order_mgmt.pack_shipment(%s, 1, 1, 1, 1, NULL)', :picking), '22004', NULL,
                 'pack: null package_count is 22004');
SELECT throws_ok(format('SELECT order_mgmt.pack_shipment(%s, 0, 1, 1, 1)', :picking), '22023', NULL,
                 'pack: weight 0 is 22023');
SELECT throws_ok(format('SELECT order_mgmt.pack_shipment(%s, 1, -5, 1, 1)', :picking), '22023', NULL,
                 'pack: a negative length is 22023');
SELECT throws_ok(format('SELECT order_mgmt.pack_shipment(%s, 1, 1, 1, 1, 0)', :picking), '22023', NULL,
                 'pack: 0 packages is 22023');
SELECT throws_ok('SELECT order_mgmt.pack_shipment(-1, 1, 1, 1, 1)', 'OM004', NULL, 'pack: unknown shipment is OM004');
SELECT throws_ok(format('SELECT order_mgmt.pack_shipment(%s, 1, 1, 1, 1)', :pending), 'OM001', NULL,
                 'pack a shipment that was not picked: OM001');
SELECT throws_ok(format('SELECT order_mgmt.pack_shipment(%s, 1, 1, 1, 1)', :packed), 'OM010', NULL,
                 'pack twice: OM010');
SELECT is(pg_temp.digest(), (SELECT v FROM d), 'rejected packs changed nothing');

-- label_shipment ----------------------------------------------------------
SELECT throws_ok(format($$SELECT order_mgmt.label_shipment(%s, NULL, 'F-STD', 'X1')$$, :packed), '22004',
                 NULL, 'label: null carrier is 22004');
SELECT throws_ok(format($$SELECT order_mgmt.label_shipment(%s, 'DHL', NULL, 'X1')$$, :packed), '22004',
                 NULL, 'label: null service is 22004');
SELECT throws_ok(format($$SELECT order_mgmt.label_shipment(%s, 'DHL', 'F-STD', NULL)$$, :packed), '22004',
                 NULL, 'label: null tracking number is 22004');
SELECT throws_ok(format($$SELECT order_mgmt.label_shipment(%s, 'DHL', 'F-STD', '  ')$$, :packed), '22023',
                 NULL, 'label: a blank tracking number is 22023');
SELECT throws_ok(format($$SELECT order_mgmt.label_shipment(%s, 'DHL', 'F-STD', %L)$$, :packed, repeat('9', 101)),
                 '22023', NULL, 'label: a tracking number over 100 characters is 22023');
SELECT throws_ok(format($$SELECT order_mgmt.label_shipment(%s, 'DHL', 'NOPE', 'X1')$$, :packed), 'OM004',
                 NULL, 'label: unknown service is OM004');
SELECT throws_ok(format($$SELECT order_mgmt.label_shipment(%s, 'DHL', 'F-EXP', 'X1')$$, :packed), '22023',
                 NULL, 'label: a service of another carrier is 22023');
SELECT throws_ok(format($$SELECT order_mgmt.label_shipment(%s, 'DHL', 'F-OLD', 'X1')$$, :packed), '22023',
                 NULL, 'label: an inactive service is 22023');
SELECT throws_ok(format($$SELECT order_mgmt.label_shipment(%s, 'DHL', 'F-STD', %L)$$, :packed, :'trk'),
                 'OM005', NULL, 'label: a tracking number of another shipment is OM005');
SELECT throws_ok(format($$SELECT order_mgmt.label_shipment(%s, 'DHL', 'F-STD', 'X1')$$, :picking), 'OM001',
                 NULL, 'label a shipment that was not packed: OM001');
SELECT throws_ok(format($$SELECT order_mgmt.label_shipment(-1, 'DHL', 'F-STD', 'X1')$$), 'OM004',
                 NULL, 'label: unknown shipment is OM004');
SELECT is(pg_temp.digest(), (SELECT v FROM d), 'rejected labels changed nothing');

-- dispatch_shipment -------------------------------------------------------
SELECT throws_ok('SELECT order_mgmt.dispatch_shipment(NULL)', '22004', NULL, 'dispatch: null is 22004');
SELECT throws_ok('SELECT order_mgmt.dispatch_shipment(-1)', 'OM004', NULL, 'dispatch: unknown shipment is OM004');
SELECT throws_ok(format('SELECT order_mgmt.dispatch_shipment(%s)', :packed), 'OM001', NULL,
                 'dispatch an unlabelled shipment: OM001');
SELECT throws_ok(format('SELECT order_mgmt.dispatch_shipment(%s)', :dispatched), 'OM010', NULL,
                 'dispatch twice: OM010');
SELECT is(pg_temp.digest(), (SELECT v FROM d), 'rejected dispatches changed nothing');

-- cancel_shipment ---------------------------------------------------------
SELECT throws_ok(format('SELECT order_mgmt.cancel_shipment(%s, NULL)', :packed), '22004', NULL,
                 'cancel_shipment without a reason is 22004');
SELECT throws_ok(format($$SELECT order_mgmt.cancel_shipment(%s, ' ')$$, :packed), '22004', NULL,
                 'cancel_shipment with a blank reason is 22004');
SELECT throws_ok($$SELECT order_mgmt.cancel_shipment(-1, 'x')$$, 'OM004', NULL,
                 'cancel_shipment: unknown shipment is OM004');
SELECT throws_ok(format($$SELECT order_mgmt.cancel_shipment(%s, 'x')$$, :dispatched), 'OM006', NULL,
                 'cancel_shipment after dispatch is OM006');
SELECT is(pg_temp.digest(), (SELECT v FROM d), 'rejected cancellations changed nothing');

-- record_tracking_event ---------------------------------------------------
SELECT throws_ok($$SELECT order_mgmt.record_tracking_event(NULL, 'E', 'in_transit', now())$$, '22004', NULL,
                 'track: null tracking number is 22004');
SELECT throws_ok(format($$SELECT order_mgmt.record_tracking_event(%L, NULL, 'in_transit', now())$$, :'trk'),
                 '22004', NULL, 'track: null carrier_event_id is 22004');
SELECT throws_ok(format($$SELECT order_mgmt.record_tracking_event(%L, 'E', NULL, now())$$, :'trk'),
                 '22004', NULL, 'track: null code is 22004');
SELECT throws_ok(format($$SELECT order_mgmt.record_tracking_event(%L, 'E', 'in_transit', NULL)$$, :'trk'),
                 '22004', NULL, 'track: null occurred_at is 22004');
SELECT throws_ok(format($$SELECT order_mgmt.record_tracking_event(%L, '', 'in_transit', now())$$, :'trk'),
                 '22023', NULL, 'track: an empty carrier_event_id is 22023');
SELECT throws_ok(format($$SELECT order_mgmt.record_tracking_event(%L, 'E', 'in_transit', now(), %L)$$,
                        :'trk', repeat('x', 201)),
                 '22023', NULL, 'track: a location over 200 characters is 22023');
SELECT throws_ok(format($$SELECT order_mgmt.record_tracking_event(%L, 'E', 'in_transit', 'infinity')$$, :'trk'),
                 '22008', NULL, 'track: an infinite time is 22008');
SELECT throws_ok($$SELECT order_mgmt.record_tracking_event('NO-SUCH', 'E', 'in_transit', now())$$, 'OM004', NULL,
                 'track: an unknown tracking number is OM004');
SELECT throws_ok(format($$SELECT order_mgmt.record_tracking_event(%L, 'E', 'teleported', now())$$, :'trk'),
                 'OM031', NULL, 'track: an unknown code is OM031');
SELECT throws_ok(format($$SELECT order_mgmt.record_tracking_event(%L, 'E', 'dispatched', now())$$, :'trk'),
                 'OM031', NULL, 'track: dispatched is a warehouse step, not a checkpoint (OM031)');
SELECT throws_ok(format($$SELECT order_mgmt.record_tracking_event(%L, 'E', 'in_transit', now())$$,
                        'TRK-' || :labelled),
                 'OM010', NULL, 'track: a shipment not yet dispatched is OM010');
SELECT throws_ok(format($$SELECT order_mgmt.record_tracking_event(%L, 'EV-1', 'delivered', '2030-01-07 08:00+01', 'hub')$$,
                        :'trk'),
                 'OM005', NULL, 'track: a carrier_event_id repeated with another code is OM005');
SELECT throws_ok(format($$SELECT order_mgmt.record_tracking_event(%L, 'EV-1', 'in_transit', '2030-01-07 08:00+01', 'hub')$$,
                        'TRK-' || :labelled),
                 'OM010', NULL, 'track: a known carrier_event_id for a shipment not dispatched is still OM010');
SELECT is(record_tracking_event(:'trk', 'EV-1', 'in_transit', '2030-01-07 08:00+01', 'hub'), false,
          'track: a repeat returns false');
SELECT is(pg_temp.digest(), (SELECT v FROM d), 'rejected checkpoints and the repeat changed nothing');

-- direct UPDATEs cannot skip a step ---------------------------------------
SELECT throws_ok(format($$UPDATE order_mgmt.shipments SET status = 'packed', weight_g = 1, length_mm = 1,
                          width_mm = 1, height_mm = 1 WHERE shipment_id = %s$$, :pending),
                 'OM001', NULL, 'UPDATE pending -> packed (skips picking) is OM001');
SELECT throws_ok(format($$UPDATE order_mgmt.shipments SET status = 'dispatched' WHERE shipment_id = %s$$, :packed),
                 'OM001', NULL, 'UPDATE packed -> dispatched (skips labelling) is OM001');
SELECT throws_ok(format($$UPDATE order_mgmt.shipments SET status = 'delivered' WHERE shipment_id = %s$$, :dispatched),
                 'OM001', NULL, 'UPDATE dispatched -> delivered (skips transit) is OM001');
SELECT throws_ok(format($$UPDATE order_mgmt.shipments SET status = 'dispatched', tracking_number = NULL
                          WHERE shipment_id = %s$$, :labelled),
                 'OM002', NULL, 'UPDATE to dispatched without a tracking number is OM002');
SELECT throws_ok(format($$UPDATE order_mgmt.shipments SET status = 'dispatched', carrier = NULL
                          WHERE shipment_id = %s$$, :labelled),
                 'OM002', NULL, 'UPDATE to dispatched without a carrier is OM002');
SELECT throws_ok(format($$UPDATE order_mgmt.orders SET status = 'delivered' WHERE order_id = %s$$, :o),
                 'OM001', NULL, 'UPDATE processing -> delivered (skips shipped) is OM001');
SELECT throws_ok(format($$UPDATE order_mgmt.orders SET status = 'shipped' WHERE order_id = %s$$, :o),
                 'OM030', NULL, 'UPDATE to shipped with nothing shipped is OM030');
SELECT throws_ok(format($$SELECT order_mgmt.set_status('order', %s, 'partially_shipped')$$, :o),
                 'OM030', NULL, 'set_status to partially_shipped with nothing shipped is OM030');
SELECT (SELECT order_id FROM shipments WHERE shipment_id = :dispatched) AS od \gset
SELECT throws_ok(format($$UPDATE order_mgmt.orders SET status = 'delivered' WHERE order_id = %s$$, :od),
                 'OM030', NULL, 'UPDATE shipped -> delivered with nothing delivered is OM030');
SELECT is(pg_temp.digest(), (SELECT v FROM d), 'rejected UPDATEs changed nothing');

-- the order's shipping status always agrees with its lines ----------------
-- (one unit of two leaves; by hand, as an owner can write lines)
UPDATE order_lines SET qty_reserved = 0, qty_shipped = 1 WHERE order_id = :o AND line_no = 1;
SELECT throws_ok(format($$UPDATE order_mgmt.orders SET status = 'shipped' WHERE order_id = %s$$, :o),
                 'OM030', NULL, 'shipped with one of two units shipped is OM030');
SELECT lives_ok(format($$UPDATE order_mgmt.orders SET status = 'partially_shipped' WHERE order_id = %s$$, :o),
                'partially_shipped agrees with the lines');
UPDATE order_lines SET qty_reserved = 0, qty_shipped = 1 WHERE order_id = :o AND line_no = 2;
UPDATE shipments SET status = 'cancelled' WHERE order_id = :o;
SELECT lives_ok(format($$UPDATE order_mgmt.orders SET status = 'shipped' WHERE order_id = %s$$, :o),
                'shipped agrees once both units left');
INSERT INTO statuses (entity, status, class) VALUES ('order', 'handed_over', 'delivered');
INSERT INTO transitions (entity, from_status, to_status, activity)
    VALUES ('order', 'shipped', 'handed_over', 'handed_over');
SELECT throws_ok(format($$UPDATE order_mgmt.orders SET status = 'handed_over' WHERE order_id = %s$$, :o),
                 'OM030', NULL, 'a custom status of the delivered class needs delivered lines too');
UPDATE order_lines SET qty_delivered = 1 WHERE order_id = :o;
SELECT lives_ok(format($$UPDATE order_mgmt.orders SET status = 'handed_over' WHERE order_id = %s$$, :o),
                'and is accepted when the lines are delivered');

-- what the lines say is one rule (lines_status)
SELECT is(lines_status(:confirmed), NULL, 'lines_status: nothing shipped');
SELECT is(lines_status(:od), 'shipped', 'lines_status: all shipped');
SELECT is(lines_status(:o), 'delivered', 'lines_status: all delivered');
SELECT throws_ok('SELECT order_mgmt.lines_status(NULL)', '22004', NULL, 'lines_status(NULL) is 22004');

-- estimate_transit: unknown instead of a guess
SELECT is((SELECT known::text || ' ' || note FROM estimate_transit('NOPE', 'F-STD', 'DE', '10115', now())),
          'false warehouse "NOPE" does not exist', 'estimate_transit: unknown warehouse');
SELECT is((SELECT known::text || ' ' || note FROM estimate_transit('F-BER', 'NOPE', 'DE', '10115', now())),
          'false service "NOPE" does not exist', 'estimate_transit: unknown service');
SELECT throws_ok($$SELECT order_mgmt.estimate_transit('F-BER', 'F-STD', 'DEU', NULL, now())$$, '22023', NULL,
                 'estimate_transit: a bad country is 22023');
SELECT throws_ok($$SELECT order_mgmt.estimate_transit('F-BER', 'F-STD', 'DE', NULL, NULL)$$, '22004', NULL,
                 'estimate_transit: null restart_at is 22004');
SELECT throws_ok($$SELECT order_mgmt.estimate_transit('F-BER', 'F-STD', 'DE', NULL, 'infinity')$$, '22008', NULL,
                 'estimate_transit: infinity is 22008');
SELECT is((SELECT array[delivery_earliest, delivery_latest]
             FROM estimate_transit('F-BER', 'F-STD', 'DE', NULL, '2030-01-11 18:00+01')),
          '{2030-01-14,2030-01-16}', 'estimate_transit: Friday evening + 1..3 business days, no cut-off');

SELECT * FROM finish();
ROLLBACK;
