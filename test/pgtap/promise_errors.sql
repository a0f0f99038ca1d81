-- Delivery promise engine (issue 4): every bad input is a documented error
-- with its SQLSTATE, never a hang or a crash.
BEGIN;
SET LOCAL statement_timeout = '30s';
SELECT plan(45);
\ir ../fixtures/promise_fixture.sql

-- unknown reference data: OM004
SELECT throws_ok($$SELECT order_mgmt.estimate_delivery('NOPE','STD','DE','10115',now())$$,
                 'OM004', 'warehouse "NOPE" does not exist', 'unknown warehouse');
SELECT throws_ok($$SELECT order_mgmt.estimate_delivery('BER','NOPE','DE','10115',now())$$,
                 'OM004', 'service "NOPE" does not exist', 'unknown service');
SELECT throws_ok($$SELECT order_mgmt.is_business_day('2025-09-09','NOPE')$$,
                 'OM004', 'calendar "NOPE" does not exist', 'unknown calendar (is_business_day)');
SELECT throws_ok($$SELECT order_mgmt.add_business_days('2025-09-09',1,'NOPE')$$,
                 'OM004', 'calendar "NOPE" does not exist', 'unknown calendar (add_business_days)');
SELECT throws_ok($$SELECT order_mgmt.is_business_day('2025-09-09', repeat('x', 500))$$,
                 'OM004', NULL, 'over-long calendar id is just unknown');
SELECT throws_ok($$SELECT order_mgmt.estimate_order_delivery(-1)$$,
                 'OM004', 'order -1 does not exist', 'unknown order');
SELECT throws_ok($$SELECT order_mgmt.choose_service(-1)$$,
                 'OM004', 'shipment -1 does not exist', 'unknown shipment');

-- NULL arguments: 22004
SELECT throws_ok($$SELECT order_mgmt.is_business_day(NULL,'DE-HANDLING')$$, '22004', NULL, 'null day');
SELECT throws_ok($$SELECT order_mgmt.is_business_day('2025-09-09',NULL)$$, '22004', NULL, 'null calendar');
SELECT throws_ok($$SELECT order_mgmt.add_business_days('2025-09-09',NULL,'DE-HANDLING')$$, '22004', NULL, 'null n');
SELECT throws_ok($$SELECT order_mgmt.estimate_delivery(NULL,'STD','DE','10115',now())$$, '22004', NULL, 'null warehouse');
SELECT throws_ok($$SELECT order_mgmt.estimate_delivery('BER',NULL,'DE','10115',now())$$, '22004', NULL, 'null service');
SELECT throws_ok($$SELECT order_mgmt.estimate_delivery('BER','STD',NULL,'10115',now())$$, '22004', NULL, 'null country');
SELECT throws_ok($$SELECT order_mgmt.estimate_delivery('BER','STD','DE','10115',NULL)$$, '22004', NULL, 'null placed_at');
SELECT lives_ok($$SELECT order_mgmt.estimate_delivery('BER','STD','DE',NULL,now(),NULL)$$, 'null postal_code and ready_at are allowed');
SELECT throws_ok($$SELECT order_mgmt.estimate_order_delivery(NULL)$$, '22004', NULL, 'null order_id');
SELECT throws_ok($$SELECT order_mgmt.choose_service(NULL)$$, '22004', NULL, 'null shipment_id');
SELECT throws_ok($$SELECT order_mgmt.estimate_order_window(jsonb_populate_record(NULL::order_mgmt.orders, '{"order_id": 1}'), '{}')$$,
                 '22004', 'o.ship_to_country must not be null', 'estimate_order_window: a row without the country an order has');
SELECT throws_ok($$SELECT order_mgmt.estimate_order_window(NULL, '{}')$$, '22004', NULL, 'estimate_order_window: null order row');
SELECT throws_ok($$SELECT order_mgmt.estimate_order_window(jsonb_populate_record(NULL::order_mgmt.orders, '{"order_id": 1}'), NULL)$$, '22004', NULL,
                 'estimate_order_window: null lines');
SELECT throws_ok($$SELECT order_mgmt.estimate_order_window(jsonb_populate_record(NULL::order_mgmt.orders,
                      '{"order_id": 1, "ship_to_country": "DE", "placed_at": "2026-01-01"}'),
                      ARRAY[NULL::order_mgmt.order_lines])$$,
                 '22004', 'lines must not contain nulls', 'estimate_order_window: a null line');
SELECT throws_ok($$SELECT order_mgmt.best_service('BER','DE','1',now(),NULL,NULL,NULL)$$, '22004', NULL, 'null strategy');

-- malformed input: 22023 / 22008
SELECT throws_ok($$SELECT order_mgmt.estimate_delivery('BER','STD','DEU','10115',now())$$,
                 '22023', 'country must be an ISO 3166 alpha-2 code', 'three-letter country');
SELECT throws_ok($$SELECT order_mgmt.add_business_days('2025-09-09',100000,'DE-HANDLING')$$,
                 '22023', NULL, 'n out of range');
SELECT throws_ok($$SELECT order_mgmt.is_business_day('infinity','DE-HANDLING')$$, '22008', NULL, 'infinite day');
SELECT throws_ok($$SELECT order_mgmt.estimate_delivery('BER','STD','DE','1','infinity')$$, '22008', NULL, 'infinite order time');
SELECT throws_ok($$SELECT order_mgmt.add_business_days('5874897-12-30',5,'DE-HANDLING')$$, '22008', NULL, 'past the last date');
SELECT throws_ok($$SELECT order_mgmt.best_service('BER','DE','1',now(),NULL,NULL,'slowest')$$,
                 '22023', 'unknown strategy "slowest"', 'unknown strategy (best_service)');
SELECT throws_ok($$SELECT order_mgmt.choose_service(1, 'slowest')$$,
                 '22023', 'unknown strategy "slowest"', 'unknown strategy (choose_service)');

-- zone names PostgreSQL does not know: rejected by CHECKs (23514)
SELECT is(order_mgmt.valid_time_zone('Europe/Berlin'), true, 'Europe/Berlin is a zone');
SELECT is(order_mgmt.valid_time_zone('Mars/Olympus_Mons'), false, 'Mars/Olympus_Mons is not');
SELECT is(order_mgmt.valid_time_zone(''), false, 'empty is not');
SELECT throws_ok($$INSERT INTO order_mgmt.warehouses (warehouse_id, name, tz, calendar_id)
                   VALUES ('MARS', 'Mars', 'Mars/Olympus_Mons', 'DE-HANDLING')$$,
                 '23514', NULL, 'warehouse with an unknown zone');
SELECT throws_ok($$UPDATE order_mgmt.calendars SET tz = 'Europe/Berln' WHERE calendar_id = 'DE-HANDLING'$$,
                 '23514', NULL, 'calendar with an unknown zone');
SELECT throws_ok($$INSERT INTO order_mgmt.calendars (calendar_id, workdays) VALUES ('BAD', '{0,8}')$$,
                 '23514', NULL, 'weekday out of 1..7');
SELECT throws_ok($$INSERT INTO order_mgmt.zone_rules VALUES ('DE', '10 1', 'X')$$,
                 '23514', NULL, 'postal prefix must be normalized');
SELECT throws_ok($$INSERT INTO order_mgmt.services (service_id, carrier, handling_min, handling_max,
                     transit_min, transit_max, transit_calendar_id, delivery_calendar_id)
                   VALUES ('BAD', 'X', 2, 1, 1, 2, 'DE-TRANSIT', 'DE-DELIVERY')$$,
                 '23514', NULL, 'handling_min > handling_max');
SELECT throws_ok($$INSERT INTO order_mgmt.services (service_id, carrier, transit_min, transit_max,
                     transit_calendar_id, delivery_calendar_id)
                   VALUES ('BAD', 'X', 1, 2, 'NOPE', 'DE-DELIVERY')$$,
                 '23503', NULL, 'service with an unknown calendar');

-- a calendar with no working day: OM020, not a loop
INSERT INTO order_mgmt.calendars (calendar_id, workdays) VALUES ('NEVER', '{}'), ('RARE', '{}');
INSERT INTO order_mgmt.calendar_exceptions VALUES ('RARE', '2025-09-10', true, 'the one day');
SELECT is(order_mgmt.is_business_day('2025-09-09', 'NEVER'), false, 'is_business_day on an empty calendar');
SELECT throws_ok($$SELECT order_mgmt.add_business_days('2025-09-09', 1, 'NEVER')$$,
                 'OM020', 'calendar "NEVER" has no working day', 'add_business_days on an empty calendar');
SELECT throws_ok($$SELECT order_mgmt.add_business_days('2025-09-09', 2, 'RARE')$$,
                 'OM020', 'calendar "RARE" has no working day within 3660 days of 2025-09-09',
                 'a second working day that never comes');
INSERT INTO order_mgmt.warehouses (warehouse_id, name, tz, calendar_id) VALUES
    ('CLOSED', 'Closed', 'Europe/Berlin', 'NEVER'), ('NOCAL', 'No calendar', 'Europe/Berlin', NULL);
SELECT throws_ok($$SELECT order_mgmt.estimate_delivery('CLOSED','STD','DE','10115','2025-09-09 08:00Z')$$,
                 'OM020', NULL, 'warehouse calendar with no working day');
UPDATE order_mgmt.services SET delivery_calendar_id = 'NEVER' WHERE service_id = 'EXP';
SELECT throws_ok($$SELECT order_mgmt.estimate_delivery('BER','EXP','DE','10115','2025-09-09 08:00Z')$$,
                 'OM020', NULL, 'delivery calendar with no working day');
SELECT throws_ok($$SELECT order_mgmt.estimate_delivery('NOCAL','STD','DE','10115','2025-09-09 08:00Z')$$,
                 'OM022', 'warehouse "NOCAL" has no handling calendar', 'warehouse without a calendar');
UPDATE order_mgmt.services SET delivery_calendar_id = 'DE-SAT' WHERE service_id = 'EXP';
SELECT lives_ok($$SELECT order_mgmt.estimate_delivery('BER','EXP','DE','10115','2025-09-09 08:00Z')$$,
                'fixed again after the update');

SELECT * FROM finish();
ROLLBACK;
