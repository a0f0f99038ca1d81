-- Delivery promise engine (issue 4): fixture cases, zones, DST, Saturday
-- delivery, lanes, backorders, year end, properties, orders and shipments.
BEGIN;
SET LOCAL statement_timeout = '60s';
SELECT plan(71);
\ir ../fixtures/promise_fixture.sql

CREATE TEMP TABLE cases (label text, wh text, svc text, country text, postal text,
                         placed timestamptz, ready timestamptz, expect date[]) ON COMMIT DROP;
INSERT INTO cases VALUES
  -- the issue's fixture
  ('fixture 2025-09-09 08:00Z',        'BER','STD','DE','10115','2025-09-09 08:00Z',NULL,'{2025-09-09,2025-09-10,2025-09-10,2025-09-12}'),
  ('fixture 2025-09-09 12:30Z',        'BER','STD','DE','10115','2025-09-09 12:30Z',NULL,'{2025-09-10,2025-09-11,2025-09-11,2025-09-15}'),
  ('fixture cut-off 12:00:00Z inclusive','BER','STD','DE','10115','2025-09-09 12:00:00Z',NULL,'{2025-09-09,2025-09-10,2025-09-10,2025-09-12}'),
  ('one microsecond after the cut-off','BER','STD','DE','10115','2025-09-09 12:00:00.000001Z',NULL,'{2025-09-10,2025-09-11,2025-09-11,2025-09-15}'),
  ('fixture Saturday 2025-09-13',      'BER','STD','DE','10115','2025-09-13 10:00Z',NULL,'{2025-09-15,2025-09-16,2025-09-16,2025-09-18}'),
  ('fixture holiday next day',         'BER','STD','DE','10115','2025-10-02 13:00Z',NULL,'{2025-10-06,2025-10-07,2025-10-07,2025-10-09}'),
  -- year end: Christmas, weekend, New Year
  ('year end 12-24 after cut-off',     'BER','STD','DE','10115','2025-12-24 13:30Z',NULL,'{2025-12-29,2025-12-30,2025-12-30,2026-01-02}'),
  ('year end 12-31 before cut-off',    'BER','STD','DE','10115','2025-12-31 10:00Z',NULL,'{2025-12-31,2026-01-02,2026-01-02,2026-01-06}'),
  -- DST: the cut-off follows Berlin time, not a fixed offset
  ('CET Monday 13:30 local (before)',  'BER','STD','DE','10115','2025-10-27 12:30Z',NULL,'{2025-10-27,2025-10-28,2025-10-28,2025-10-30}'),
  ('CET Monday 14:30 local (after)',   'BER','STD','DE','10115','2025-10-27 13:30Z',NULL,'{2025-10-28,2025-10-29,2025-10-29,2025-10-31}'),
  ('CEST Friday 13:30 local (before)', 'BER','STD','DE','10115','2025-10-24 11:30Z',NULL,'{2025-10-24,2025-10-27,2025-10-27,2025-10-29}'),
  ('CEST Friday 14:30 local (after)',  'BER','STD','DE','10115','2025-10-24 12:30Z',NULL,'{2025-10-27,2025-10-28,2025-10-28,2025-10-30}'),
  ('CET Friday before spring DST',     'BER','STD','DE','10115','2026-03-27 12:30Z',NULL,'{2026-03-27,2026-03-30,2026-03-30,2026-04-01}'),
  ('CEST Monday after spring DST',     'BER','STD','DE','10115','2026-03-30 12:30Z',NULL,'{2026-03-31,2026-04-01,2026-04-01,2026-04-03}'),
  ('on the DST night itself (Sunday)', 'BER','STD','DE','10115','2026-03-29 01:30Z',NULL,'{2026-03-30,2026-03-31,2026-03-31,2026-04-02}'),
  -- other zones: the local date differs from the UTC date
  ('Los Angeles 17:30 PDT (after)',    'LAX','STD','US','90001','2025-09-10 00:30Z',NULL,'{2025-09-10,2025-09-11,2025-09-11,2025-09-15}'),
  ('Los Angeles 17:00 PDT (cut-off)',  'LAX','STD','US','90001','2025-09-10 00:00Z',NULL,'{2025-09-09,2025-09-10,2025-09-10,2025-09-12}'),
  ('Tokyo 12:00 JST (cut-off)',        'TYO','STD','JP',NULL,   '2025-09-09 03:00Z',NULL,'{2025-09-09,2025-09-10,2025-09-10,2025-09-12}'),
  ('Tokyo 12:30 JST (after)',          'TYO','STD','JP',NULL,   '2025-09-09 03:30Z',NULL,'{2025-09-10,2025-09-11,2025-09-11,2025-09-15}'),
  ('Tokyo Saturday 01:00 JST, UTC Friday','TYO','STD','JP',NULL,'2025-09-12 16:00Z',NULL,'{2025-09-15,2025-09-16,2025-09-16,2025-09-18}'),
  -- Saturday delivery service
  ('EXP Friday -> Saturday delivery',  'BER','EXP','DE','10115','2025-09-12 08:00Z',NULL,'{2025-09-12,2025-09-12,2025-09-13,2025-09-13}'),
  ('EXP ordered Saturday',             'BER','EXP','DE','10115','2025-09-13 08:00Z',NULL,'{2025-09-15,2025-09-15,2025-09-16,2025-09-16}'),
  ('EXP Christmas Eve -> 12-27 (Sat)', 'BER','EXP','DE','10115','2025-12-24 08:00Z',NULL,'{2025-12-24,2025-12-24,2025-12-27,2025-12-27}'),
  -- lanes and zone rules (longest prefix wins, postal normalized)
  ('lane DE->AT',                      'BER','STD','AT','1010', '2025-09-09 08:00Z',NULL,'{2025-09-09,2025-09-10,2025-09-11,2025-09-15}'),
  ('lane DE->AT-WEST (prefix 6)',      'BER','STD','AT','6020', '2025-09-09 08:00Z',NULL,'{2025-09-09,2025-09-10,2025-09-12,2025-09-16}'),
  ('lane DE->AT-VBG (prefix 69)',      'BER','STD','AT','6900', '2025-09-09 08:00Z',NULL,'{2025-09-09,2025-09-10,2025-09-12,2025-09-17}'),
  ('postal normalized: at / 69-00',    'BER','STD','at','69-00','2025-09-09 08:00Z',NULL,'{2025-09-09,2025-09-10,2025-09-12,2025-09-17}'),
  ('no postal code: country rule',     'BER','STD','AT',NULL,   '2025-09-09 08:00Z',NULL,'{2025-09-09,2025-09-10,2025-09-11,2025-09-15}'),
  ('no zone rule: service transit',    'BER','STD','FR','75001','2025-09-09 08:00Z',NULL,'{2025-09-09,2025-09-10,2025-09-10,2025-09-12}'),
  -- backorders start from ready_at (when later than placed_at)
  ('ready_at Monday 15:00 local',      'BER','STD','DE','10115','2025-09-09 08:00Z','2025-09-15 13:00Z','{2025-09-16,2025-09-17,2025-09-17,2025-09-19}'),
  ('ready_at before placed_at ignored','BER','STD','DE','10115','2025-09-09 08:00Z','2025-09-01 13:00Z','{2025-09-09,2025-09-10,2025-09-10,2025-09-12}');

SELECT is(ARRAY[e.ship_earliest, e.ship_latest, e.delivery_earliest, e.delivery_latest], c.expect, c.label)
  FROM cases c,
       LATERAL order_mgmt.estimate_delivery(c.wh, c.svc, c.country, c.postal, c.placed, c.ready) e
 ORDER BY c.placed, c.label;

-- calendars
SELECT is(order_mgmt.is_business_day('2025-10-03', 'DE-HANDLING'), false, 'holiday is not a business day');
SELECT is(order_mgmt.is_business_day('2025-10-04', 'DE-HANDLING'), false, 'Saturday is not a business day');
SELECT is(order_mgmt.is_business_day('2025-10-04', 'DE-SAT'), true, 'Saturday works in DE-SAT');
SELECT is(order_mgmt.add_business_days('2025-10-02', 1, 'DE-HANDLING'), '2025-10-06'::date, '+1 over a holiday and a weekend');
SELECT is(order_mgmt.add_business_days('2025-10-06', -1, 'DE-HANDLING'), '2025-10-02'::date, '-1 back over them');
SELECT is(order_mgmt.add_business_days('2026-01-02', -4, 'DE-HANDLING'), '2025-12-24'::date, '-4 over New Year, a weekend and Christmas');
SELECT is(order_mgmt.add_business_days('2025-10-04', 0, 'DE-HANDLING'), '2025-10-04'::date, '0 leaves the day as it is');
-- same-session cache invalidation: an extra working day, then a new holiday
INSERT INTO order_mgmt.calendar_exceptions VALUES ('DE-HANDLING', '2025-10-04', true, 'inventory Saturday');
SELECT is(order_mgmt.add_business_days('2025-10-02', 1, 'DE-HANDLING'), '2025-10-04'::date, 'extra working day seen at once');
INSERT INTO order_mgmt.calendar_exceptions VALUES ('DE-HANDLING', '2025-09-10', false, 'ad-hoc closure');
SELECT is((order_mgmt.estimate_delivery('BER','STD','DE','10115','2025-09-09 08:00Z')).ship_latest,
          '2025-09-11'::date, 'new holiday moves the estimate in the same transaction');
DELETE FROM order_mgmt.calendar_exceptions WHERE day IN ('2025-10-04', '2025-09-10');
SELECT is((order_mgmt.estimate_delivery('BER','STD','DE','10115','2025-09-09 08:00Z')).ship_latest,
          '2025-09-10'::date, 'deleting it restores the estimate');
UPDATE order_mgmt.warehouses SET cutoff_local = '09:00' WHERE warehouse_id = 'BER';
SELECT is((order_mgmt.estimate_delivery('BER','STD','DE','10115','2025-09-09 08:00Z')).ship_earliest,
          '2025-09-10'::date, 'a new cut-off is seen at once (10:00 local is now after it)');
UPDATE order_mgmt.warehouses SET cutoff_local = '14:00' WHERE warehouse_id = 'BER';

-- properties over many order times, all services and destinations
CREATE TEMP TABLE prop ON COMMIT DROP AS
SELECT t, s.svc, d.country, d.postal, e.*
  FROM generate_series('2025-09-01 00:00Z'::timestamptz, '2026-04-30 00:00Z', '97 minutes') t,
       (VALUES ('STD'), ('EXP')) s(svc),
       (VALUES ('DE', '10115'), ('AT', '6900'), ('FR', NULL)) d(country, postal),
       LATERAL order_mgmt.estimate_delivery('BER', s.svc, d.country, d.postal, t) e;
SELECT cmp_ok((SELECT count(*) FROM prop), '>', 20000::bigint, 'property sample is large');
SELECT is((SELECT count(*) FROM prop WHERE NOT (ship_earliest <= ship_latest
            AND delivery_earliest <= delivery_latest AND ship_latest <= delivery_latest
            AND ship_earliest <= delivery_earliest)), 0::bigint, 'earliest <= latest, ship <= delivery');
SELECT is((SELECT count(*) FROM prop p JOIN order_mgmt.services s ON s.service_id = p.svc
            WHERE NOT order_mgmt.is_business_day(p.delivery_earliest, s.delivery_calendar_id)
               OR NOT order_mgmt.is_business_day(p.delivery_latest, s.delivery_calendar_id)),
          0::bigint, 'never a non-delivery day');
SELECT is((SELECT count(*) FROM prop WHERE NOT order_mgmt.is_business_day(ship_earliest, 'DE-HANDLING')
            OR NOT order_mgmt.is_business_day(ship_latest, 'DE-HANDLING')), 0::bigint,
          'ships on handling days only');
SELECT is((SELECT count(*) FROM (
             SELECT ship_earliest, delivery_earliest, delivery_latest,
                    lag(ship_earliest) OVER w AS pse, lag(delivery_earliest) OVER w AS pde,
                    lag(delivery_latest) OVER w AS pdl
               FROM prop WINDOW w AS (PARTITION BY svc, country ORDER BY t)) x
            WHERE ship_earliest < pse OR delivery_earliest < pde OR delivery_latest < pdl),
          0::bigint, 'a later order time never gives an earlier date');
SELECT is((SELECT count(*) FROM prop WHERE ship_earliest::timestamp < (t AT TIME ZONE 'Europe/Berlin')::date),
          0::bigint, 'never ships before the local order date');
SET LOCAL TimeZone = 'America/Los_Angeles';
SELECT is((SELECT count(*) FROM prop p,
             LATERAL order_mgmt.estimate_delivery('BER', p.svc, p.country, p.postal, p.t) e
            WHERE (e.ship_earliest, e.ship_latest, e.delivery_earliest, e.delivery_latest)
                  IS DISTINCT FROM (p.ship_earliest, p.ship_latest, p.delivery_earliest, p.delivery_latest)),
          0::bigint, 'same results under TimeZone America/Los_Angeles');
SET LOCAL TimeZone = 'Asia/Tokyo';
SELECT is((SELECT count(*) FROM prop p,
             LATERAL order_mgmt.estimate_delivery('BER', p.svc, p.country, p.postal, p.t) e
            WHERE (e.ship_earliest, e.ship_latest, e.delivery_earliest, e.delivery_latest)
                  IS DISTINCT FROM (p.ship_earliest, p.ship_latest, p.delivery_earliest, p.delivery_latest)),
          0::bigint, 'same results under TimeZone Asia/Tokyo');
SET LOCAL TimeZone = 'UTC';
SELECT is((SELECT count(*) FROM prop p,
             LATERAL order_mgmt.estimate_delivery('BER', p.svc, p.country, p.postal, p.t) e
            WHERE (e.ship_earliest, e.ship_latest, e.delivery_earliest, e.delivery_latest)
                  IS DISTINCT FROM (p.ship_earliest, p.ship_latest, p.delivery_earliest, p.delivery_latest)),
          0::bigint, 'same results under TimeZone UTC');

-- orders: estimate, promise at confirmation, backorders, default service
INSERT INTO order_mgmt.customers (customer_id, name) VALUES ('C-PROMISE', 'Promise test');
INSERT INTO order_mgmt.products (sku, name, list_price) VALUES ('P-1', 'Widget', 10);
INSERT INTO order_mgmt.orders (order_id, customer_id, currency, ship_to, ship_to_country,
        ship_to_postal, warehouse_id, service_id, requested_delivery, placed_at) VALUES
    (990001, 'C-PROMISE', 'EUR', '{}', 'DE', '10115', 'BER', 'STD', NULL, '2025-09-09 08:00Z'),
    (990002, 'C-PROMISE', 'EUR', '{}', 'DE', '10115', 'BER', NULL, '2025-09-10', '2025-09-09 08:00Z'),
    (990003, 'C-PROMISE', 'EUR', '{}', 'DE', '10115', NULL, 'STD', NULL, '2025-09-09 08:00Z'),
    (990004, 'C-PROMISE', 'EUR', '{}', 'DE', '10115', 'BER', NULL, NULL, '2025-09-09 08:00Z');
INSERT INTO order_mgmt.order_lines (order_id, line_no, sku, qty, unit_price) VALUES
    (990001, 1, 'P-1', 2, 10), (990001, 2, 'P-1', 1, 10),
    (990002, 1, 'P-1', 1, 10), (990003, 1, 'P-1', 1, 10), (990004, 1, 'P-1', 1, 10);

SELECT is((SELECT ARRAY[ship_earliest, ship_latest, delivery_earliest, delivery_latest]::text || known || service_id
             FROM order_mgmt.estimate_order_delivery(990001)),
          '{2025-09-09,2025-09-10,2025-09-10,2025-09-12}trueSTD', 'order estimate');
UPDATE order_mgmt.orders SET status = 'confirmed' WHERE order_id IN (990001, 990002, 990003, 990004);
SELECT is((SELECT ARRAY[promised_ship_earliest, promised_ship_latest, promised_delivery_earliest,
                        promised_delivery_latest] FROM order_mgmt.orders WHERE order_id = 990001),
          '{2025-09-09,2025-09-10,2025-09-10,2025-09-12}'::date[], 'promise stored at confirmation');
SELECT is((SELECT promised_delivery_latest FROM order_mgmt.orders WHERE order_id = 990002),
          '2025-09-10'::date, 'no service: the cheapest that meets requested_delivery (EXP) is promised');
SELECT is((SELECT service_id FROM order_mgmt.estimate_order_delivery(990004)), 'STD',
          'no service, no request: the cheapest (STD)');
SELECT is((SELECT ARRAY[promised_ship_earliest, promised_delivery_latest] FROM order_mgmt.orders
            WHERE order_id = 990003), '{NULL,NULL}'::date[], 'no warehouse: no promise stored');
SELECT is((SELECT known::text || ': ' || note FROM order_mgmt.estimate_order_delivery(990003)),
          'false: line 1 has no warehouse (nor has the order)', 'no warehouse: marked unknown');
UPDATE order_mgmt.order_lines SET qty_backordered = 1 WHERE order_id = 990001 AND line_no = 2;
SELECT is((SELECT ARRAY[ship_earliest, delivery_latest]::text || known || ' ' || note
             FROM order_mgmt.estimate_order_delivery(990001)),
          '{NULL,NULL}false line 2 is backordered and has no ready date', 'backorder without ready date: unknown');
SELECT is((SELECT risk FROM order_mgmt.orders_at_risk WHERE order_id = 990001),
          'unknown: line 2 is backordered and has no ready date', 'unknown estimate is listed at risk');
UPDATE order_mgmt.order_lines SET ready_at = '2025-09-15 13:00Z' WHERE order_id = 990001 AND line_no = 2;
SELECT is((SELECT ARRAY[ship_earliest, ship_latest, delivery_earliest, delivery_latest]
             FROM order_mgmt.estimate_order_delivery(990001)),
          '{2025-09-16,2025-09-17,2025-09-17,2025-09-19}'::date[], 'the latest line, in full');
SELECT results_eq($$SELECT order_id, risk, days_late FROM order_mgmt.orders_at_risk
                     WHERE order_id BETWEEN 990001 AND 990004$$,
                  $$VALUES (990001::bigint, 'late'::text, 7)$$, 'orders_at_risk lists the late order');
UPDATE order_mgmt.order_lines SET qty_cancelled = 1, qty_backordered = 0
 WHERE order_id = 990001 AND line_no = 2;
SELECT is((SELECT delivery_latest FROM order_mgmt.estimate_order_delivery(990001)),
          '2025-09-12'::date, 'a cancelled line no longer counts');

-- an order whose lines ship from two warehouses: the latest line, in full
INSERT INTO order_mgmt.orders (order_id, customer_id, currency, ship_to, ship_to_country,
        ship_to_postal, service_id, placed_at, promised_ship_earliest, promised_ship_latest,
        promised_delivery_earliest, promised_delivery_latest) VALUES
    (990005, 'C-PROMISE', 'EUR', '{}', 'DE', '10115', 'STD', '2025-09-09 08:00Z', NULL, NULL, NULL, NULL),
    (990006, 'C-PROMISE', 'EUR', '{}', 'DE', '10115', 'STD', '2025-09-09 08:00Z',
     '2025-09-20', '2025-09-21', '2025-09-22', '2025-09-23');
INSERT INTO order_mgmt.order_lines (order_id, line_no, sku, qty, unit_price, warehouse_id) VALUES
    (990005, 1, 'P-1', 1, 10, 'BER'), (990005, 2, 'P-1', 1, 10, 'TYO'),
    (990006, 1, 'P-1', 1, 10, 'BER');
SELECT is((SELECT ARRAY[ship_earliest, ship_latest, delivery_earliest, delivery_latest]
             FROM order_mgmt.estimate_order_delivery(990005)),
          '{2025-09-10,2025-09-11,2025-09-11,2025-09-15}'::date[],
          'two warehouses: Tokyo (17:00 JST, after its cut-off) is the latest line');
UPDATE order_mgmt.orders SET status = 'confirmed' WHERE order_id IN (990005, 990006);
SELECT is((SELECT promised_delivery_latest FROM order_mgmt.orders WHERE order_id = 990005),
          '2025-09-15'::date, 'two warehouses: promise stored');
SELECT is((SELECT ARRAY[promised_ship_earliest, promised_delivery_latest] FROM order_mgmt.orders
            WHERE order_id = 990006), '{2025-09-20,2025-09-23}'::date[], 'a promise already set is kept');

-- shipments: promise copied, estimate from created_at; choose_service
INSERT INTO order_mgmt.shipments (order_id, shipment_id, warehouse_id, created_at)
VALUES (990001, 990101, 'BER', '2025-09-10 13:00Z');
SELECT is((SELECT ARRAY[promised_delivery_earliest, promised_delivery_latest,
                        estimated_delivery_earliest, estimated_delivery_latest]
             FROM order_mgmt.shipments WHERE shipment_id = 990101),
          '{2025-09-10,2025-09-12,2025-09-12,2025-09-16}'::date[], 'shipment promise and estimate (created 15:00 local, after the cut-off)');
SELECT is(order_mgmt.choose_service(990101, 'cheapest', '2025-09-09 08:00Z'), 'STD', 'cheapest meeting the promise');
SELECT is(order_mgmt.choose_service(990101, 'cheapest', '2025-09-10 13:00Z'), 'EXP', 'only EXP still meets it');
SELECT is(order_mgmt.choose_service(990101, 'fastest', '2025-09-09 08:00Z'), 'EXP', 'fastest');
SELECT throws_ok($$SELECT order_mgmt.choose_service(990101, 'cheapest', '2025-09-12 13:00Z')$$,
                 'OM021', NULL, 'no service can meet the promise: OM021');

-- one rule, two doors: the estimate from rows equals the estimate by id
SELECT is((SELECT count(*) FROM order_mgmt.orders o
            WHERE (SELECT w FROM order_mgmt.estimate_order_window(o,
                     ARRAY(SELECT l FROM order_mgmt.order_lines l
                            WHERE l.order_id = o.order_id ORDER BY l.line_no)) w)
                  IS DISTINCT FROM (SELECT d FROM order_mgmt.estimate_order_delivery(o.order_id) d)),
          0::bigint, 'estimate_order_window equals estimate_order_delivery for every order');

SELECT * FROM finish();
ROLLBACK;
