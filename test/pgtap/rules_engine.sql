-- Defects of the rules engine found in schema 0.3.0 (issue 7), each repro
-- as a test: an empty status, notes cut inside a character, stock kept by
-- a hand-walked order, client-set actors (db_role), ids of 64 bytes and
-- more in every role the engine reads, POSIX zone strings.
BEGIN;
SELECT plan(50);
SET LOCAL search_path = order_mgmt, public;

INSERT INTO customers (customer_id, name, payment_terms, credit_limit) VALUES
    ('RE-C', 'Rules', 'credit', 100000);
INSERT INTO products (sku, name, list_price) VALUES ('RE-A', 'a', 10);
INSERT INTO warehouses (warehouse_id, name) VALUES ('RE-W', 'w');
SELECT receive_stock('RE-W', 'RE-A', 100) AS _ \gset
CREATE FUNCTION pg_temp.ord() RETURNS bigint LANGUAGE sql AS $$
    SELECT order_mgmt.place_order('RE-C', '[{"sku": "RE-A", "qty": 2}]', '{"country": "DE"}')
$$;
CREATE FUNCTION pg_temp.events_of(o bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM order_mgmt.events WHERE order_id = o
$$;

-- 1. An empty target status is no edge -----------------------------------
SELECT pg_temp.ord() AS o1 \gset
SELECT confirm_order(:o1) AS _ \gset
SELECT pg_temp.events_of(:o1) AS ev1 \gset
SELECT throws_ok(format($$SELECT order_mgmt.set_status('order', %s, '')$$, :o1), 'OM001', NULL,
                 'set_status to an empty status is OM001');
SELECT throws_ok(format($$UPDATE order_mgmt.orders SET status = '' WHERE order_id = %s$$, :o1),
                 'OM001', NULL, 'UPDATE to an empty status is OM001');
SELECT is((SELECT status FROM orders WHERE order_id = :o1), 'confirmed', 'the order is still confirmed');
SELECT is(pg_temp.events_of(:o1), :ev1::bigint, 'no event was written');
SELECT is((SELECT qty_reserved FROM order_lines WHERE order_id = :o1), 2, 'its reservation is kept');
SELECT hold_order(:o1, 'fraud', 'check the card') AS _ \gset
SELECT throws_ok(format($$SELECT order_mgmt.set_status('order', %s, '')$$, :o1), 'OM001', NULL,
                 'an empty status from on_hold is OM001');
SELECT is((SELECT count(*) FROM order_holds WHERE order_id = :o1 AND released_at IS NULL), 1::bigint,
          'the fraud hold stays open');
INSERT INTO shipments (order_id, warehouse_id) VALUES (:o1, 'RE-W') RETURNING shipment_id AS s1 \gset
INSERT INTO returns (order_id, reason) VALUES (:o1, 'test') RETURNING return_id AS r1 \gset
SELECT throws_ok(format($$SELECT order_mgmt.set_status('shipment', %s, '')$$, :s1), 'OM001', NULL,
                 'a shipment cannot get an empty status');
SELECT throws_ok(format($$SELECT order_mgmt.set_status('return', %s, '')$$, :r1), 'OM001', NULL,
                 'a return cannot get an empty status');
SELECT is((SELECT status FROM shipments WHERE shipment_id = :s1) || '/' ||
          (SELECT status FROM returns WHERE return_id = :r1), 'pending/requested',
          'shipment and return unchanged');

-- 3. Text is never cut inside a character; unknown services are refused --
SELECT throws_ok($$SELECT order_mgmt.place_order('RE-C', '[{"sku": "RE-A", "qty": 1}]',
                   '{"country": "DE"}', service_id => 'x' || repeat('é', 300))$$,
                 'OM004', NULL, 'place_order with an unknown service is OM004');
INSERT INTO warehouses (warehouse_id, name) VALUES (repeat('é', 63), 'long, no calendar');
SELECT pg_temp.ord() AS o3 \gset
UPDATE order_lines SET warehouse_id = repeat('é', 63) WHERE order_id = :o3;
SELECT is((SELECT note FROM estimate_order_delivery(:o3)),
          format('warehouse "%s" has no handling calendar', repeat('é', 63)),
          'a note of more than 255 bytes is whole (valid UTF-8)');
INSERT INTO calendars (calendar_id) VALUES ('RE-CAL');
UPDATE warehouses SET calendar_id = 'RE-CAL' WHERE warehouse_id = 'RE-W';
UPDATE order_lines SET warehouse_id = 'RE-W' WHERE order_id = :o3;
UPDATE orders SET service_id = 'x' || repeat('é', 300) WHERE order_id = :o3;
SELECT is((SELECT note FROM estimate_order_delivery(:o3)),
          format('service "%s" does not exist', 'x' || repeat('é', 300)),
          'an unknown service of 601 bytes is named whole');

-- 4. An order in a final status holds no stock, whatever the path ---------
SELECT pg_temp.ord() AS o4 \gset
SELECT confirm_order(:o4) AS _ \gset
-- (0.5.0) a hand walk can no longer ship what its lines have not shipped
-- (OM030), so it ends in the other final class: cancelled by hand
SELECT set_status('order', :o4, 'processing');
SELECT throws_ok(format($$SELECT order_mgmt.set_status('order', %s, 'shipped')$$, :o4), 'OM030',
                 NULL, 'a hand walk to shipped with nothing shipped is OM030');
SELECT set_status('order', :o4, 'cancelled');
SELECT is((SELECT qty_reserved FROM order_lines WHERE order_id = :o4), 0,
          'a hand-walked cancelled order keeps no reserved units');
SELECT is((SELECT sum(reserved_delta) FROM inventory_movements WHERE order_id = :o4), 0::bigint,
          'its reservation was released in the ledger');
SELECT is((SELECT kind FROM inventory_movements WHERE order_id = :o4 ORDER BY movement_id DESC LIMIT 1),
          'release', 'by a release movement');
SELECT is((SELECT reserved FROM stock WHERE warehouse_id = 'RE-W' AND sku = 'RE-A'),
          (SELECT sum(qty_reserved)::int FROM order_lines WHERE sku = 'RE-A'),
          'stock reserved equals what open lines hold');

-- 5. The claimed actor and the role that wrote the event -----------------
CREATE ROLE re_app LOGIN IN ROLE order_mgmt_operator;
SET SESSION AUTHORIZATION re_app;
SET order_mgmt.actor = 'credit-control:ceo';
SET order_mgmt.automated = on;
SELECT order_mgmt.hold_order(:o1, 'manual', 'claimed by the application') AS _ \gset
RESET order_mgmt.actor;
RESET order_mgmt.automated;
RESET SESSION AUTHORIZATION;
SELECT is((SELECT actor || ' ' || db_role || ' ' || automated FROM events
            WHERE order_id = :o1 AND event_type = 'hold.placed' ORDER BY seq DESC LIMIT 1),
          'credit-control:ceo re_app true',
          'actor and automated are the claims; db_role is the connected role');
SET order_mgmt.actor = 'someone else';
SET ROLE order_mgmt_operator;
SELECT order_mgmt.hold_order(:o1, 'manual', 'SET ROLE changes nothing') AS _ \gset
RESET ROLE;
RESET order_mgmt.actor;
SELECT is((SELECT db_role FROM events WHERE order_id = :o1 ORDER BY seq DESC LIMIT 1),
          session_user::text, 'SET ROLE does not change db_role');
SELECT throws_ok($$UPDATE order_mgmt.events SET db_role = 'forged'$$, 'OM003', NULL,
                 'db_role cannot be rewritten');

-- 7. Ids of 63, 64 and more bytes, in every role the engine reads ---------
-- One configuration, built with short ids and with long ids (k || a
-- letter); the estimates must agree.  The lane (transit 5-6) differs from
-- the service (2-3); two destination zones that share all but their last
-- character have lanes of their own (8-9 for the second).  The CHECKs
-- allow 63 characters: 63 bytes in ASCII, up to 252 bytes in UTF-8.
CREATE FUNCTION pg_temp.world(k text, country text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_mgmt.calendars (calendar_id, tz, workdays) VALUES
        (k || 'H', 'Europe/Berlin', '{1,2,3,4,5}'), (k || 'T', 'Europe/Berlin', '{1,2,3,4,5}'),
        (k || 'D', 'Europe/Berlin', '{1,2,3,4,5,6}'), (k || 'P', 'Europe/Berlin', '{2,4}');
    INSERT INTO order_mgmt.calendar_exceptions (calendar_id, day) VALUES
        (k || 'H', '2030-01-08'), (k || 'T', '2030-01-10'), (k || 'D', '2030-01-19');
    INSERT INTO order_mgmt.warehouses (warehouse_id, name, tz, cutoff_local, calendar_id, zone)
        VALUES (k || 'W', 'w', 'Europe/Berlin', '14:00', k || 'H', k || 'O');
    INSERT INTO order_mgmt.services (service_id, carrier, handling_min, handling_max, transit_min,
            transit_max, transit_calendar_id, delivery_calendar_id, pickup_calendar_id)
        VALUES (k || 'S', 'c', 0, 1, 2, 3, k || 'T', k || 'D', k || 'P');
    INSERT INTO order_mgmt.zone_rules (country, postal_prefix, zone) VALUES
        (country, '1', k || '1'), (country, '2', k || '2');
    INSERT INTO order_mgmt.lanes (service_id, origin_zone, dest_zone, transit_min, transit_max) VALUES
        (k || 'S', k || 'O', k || '1', 5, 6), (k || 'S', k || 'O', k || '2', 8, 9);
END;
$$;
CREATE FUNCTION pg_temp.est(k text, country text, postal text, t timestamptz) RETURNS text
LANGUAGE sql AS $$
    SELECT e::text FROM order_mgmt.estimate_delivery(k || 'W', k || 'S', country, postal, t) e
$$;
SELECT pg_temp.world('', 'AA');
SELECT pg_temp.world(repeat('x', 62), 'AB');          -- ids of 63 bytes
SELECT pg_temp.world(repeat('ü', 31) || 'u', 'AC');   -- 64 bytes (33 characters)
SELECT pg_temp.world(repeat('ü', 62), 'AD');          -- 63 characters, 125 bytes
SELECT is(octet_length(repeat('ü', 31) || 'uW'), 64, 'the second world has ids of 64 bytes');
SELECT ok(pg_temp.est('', 'AA', '10115', '2030-01-07 09:00+01') <>
          pg_temp.est('', 'AA', '20115', '2030-01-07 09:00+01'), 'the two lanes differ');
SELECT is(pg_temp.est(w.k, w.c, p.postal, t.t), pg_temp.est('', 'AA', p.postal, t.t),
          format('ids of %s bytes, postal %s, %s: the same estimate as short ids',
                 octet_length(w.k) + 1, p.postal, t.t))
  FROM (VALUES (repeat('x', 62), 'AB'), (repeat('ü', 31) || 'u', 'AC'), (repeat('ü', 62), 'AD'),
               ('', 'AA')) w(k, c),
       (VALUES ('10115'), ('20115')) p(postal),
       (VALUES ('2030-01-07 09:00+01'::timestamptz), ('2030-01-09 15:00+01')) t(t)
 WHERE w.k <> '';
UPDATE services SET active = (service_id = repeat('ü', 62) || 'S');
SELECT is(best_service(repeat('ü', 62) || 'W', 'AD', '10115', '2030-01-07 09:00+01', NULL, NULL),
          repeat('ü', 62) || 'S', 'best_service returns a long service id whole');
SELECT is(is_business_day('2030-01-08', repeat('ü', 62) || 'H'), false,
          'a long calendar id finds its own exceptions');
SELECT throws_ok(format($$SELECT order_mgmt.estimate_delivery(%L, %L, 'AD', '10115', now())$$,
                        repeat('ü', 61) || 'W', repeat('ü', 62) || 'S'),
                 'OM004', NULL, 'an id that is another id''s prefix does not find it (OM004)');

-- 8. Zone names: PostgreSQL's zone database, no fixed offsets -------------
SELECT throws_ok(format($$INSERT INTO order_mgmt.warehouses (warehouse_id, name, tz) VALUES ('RE-TZ', 'x', %L)$$, z),
                 '23514', NULL, format('a warehouse in zone %s is refused', z))
  FROM unnest(ARRAY['+03:00', 'UTC+3', 'UTC-05:00', '<+03>-3', 'EST5EDT,M3.2.0,M11.1.0',
                    'Etc/GMT+3', 'Mars/Olympus_Mons', '']) z;
SELECT lives_ok(format($$INSERT INTO order_mgmt.calendars (calendar_id, tz) VALUES (%L, %L)$$, 'RE-' || z, z),
                format('zone %s is accepted', z))
  FROM unnest(ARRAY['Europe/Berlin', 'America/Argentina/Buenos_Aires', 'UTC', 'europe/paris']) z;

SELECT * FROM finish();
ROLLBACK;
