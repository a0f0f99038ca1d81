-- BI views (issue 13) on the fixture of test/fixtures/bi_fixture.sql: every
-- figure below is worked out by hand from the fixture's timestamps (its
-- comments give the arithmetic).  Times are UTC; Berlin is UTC+2 until
-- 2025-10-26 01:00 UTC, UTC+1 after.
BEGIN;
SELECT plan(92);
\ir ../fixtures/bi_fixture.sql
SET LOCAL search_path = order_mgmt, public;
-- (compiling these wide expressions takes longer than running them on a
-- fixture: docs/bi.md, Performance)
SET LOCAL jit = off;
CREATE FUNCTION pg_temp.fact(o bigint) RETURNS order_mgmt.order_facts LANGUAGE sql AS $$
    SELECT * FROM order_mgmt.order_facts WHERE order_id = o
$$;

------------------------------------------------------------------------
-- order_facts, order by order
------------------------------------------------------------------------
-- 9001 partial shipment: first delivery 10-22 10:00, promised day ends 10-23 22:00
SELECT is((pg_temp.fact(9001)).on_time, true, '9001: the first delivery arrived by the promised day');
SELECT is((pg_temp.fact(9001)).in_full, false,
          '9001: not in full: the second shipment arrived 10-24, after the promised day');
SELECT is((pg_temp.fact(9001)).otif, false, '9001: not OTIF');
SELECT is((pg_temp.fact(9001)).cycle_time_hours, 98.00,
          '9001: cycle time 10-20 07:00 -> 10-24 09:00 = 98 h');
SELECT is((pg_temp.fact(9001)).shipments, 2::bigint, '9001: two shipments, one per warehouse');
SELECT is((pg_temp.fact(9001)).touchless, true,
          '9001: touchless: only system actors (webshop, wms, carrier:%) and automated steps');
SELECT is((pg_temp.fact(9001)).tz, 'Europe/Berlin',
          '9001: no order warehouse: the lowest warehouse of its lines (Berlin before Leipzig)');

-- 9002 the 26-hour credit hold
SELECT is((pg_temp.fact(9002)).credit_hold_hours, 26.00,
          '9002: credit hold 10-20 10:00:06 -> 10-21 12:00:06 = 26 h');
SELECT is((pg_temp.fact(9002)).confirmed_at, '2025-10-21 12:05+00'::timestamptz,
          '9002: confirmed when it first entered the open class, after the hold');
SELECT is(ARRAY[(pg_temp.fact(9002)).manual_events, (pg_temp.fact(9002)).automated_events],
          ARRAY[8, 13]::bigint[], '9002: 8 manual events (phone agent, credit control), 13 others');
SELECT is((pg_temp.fact(9002)).touchless, false, '9002: not touchless');
SELECT is((pg_temp.fact(9002)).rework_steps, 0::bigint,
          '9002: back to placed after the hold is waiting, not rework');
SELECT is(ARRAY[(pg_temp.fact(9002)).on_time, (pg_temp.fact(9002)).in_full,
                (pg_temp.fact(9002)).otif], ARRAY[true, true, true],
          '9002: delivered 10-23 14:00 for 10-24: on time, in full');
SELECT is((pg_temp.fact(9002)).cycle_time_hours, 76.00, '9002: cycle 10-20 10:00 -> 10-23 14:00 = 76 h');

-- 9003 the re-pack
SELECT is((pg_temp.fact(9003)).rework_steps, 2::bigint,
          '9003: the shipment enters picking and packed a second time (the site''s re-pack edge): 2 rework steps');
SELECT is((pg_temp.fact(9003)).rework, true, '9003: rework');
SELECT is((pg_temp.fact(9003)).cycle_time_hours, 27.00, '9003: cycle 10-20 08:00 -> 10-21 11:00 = 27 h');

-- 9004 late across the end of summer time
SELECT is(('2025-10-27 23:30+00'::timestamptz AT TIME ZONE 'UTC')::date, '2025-10-27'::date,
          '9004: (the fixture) by its UTC date the delivery is on the promised day');
SELECT is(ARRAY[(pg_temp.fact(9004)).on_time, (pg_temp.fact(9004)).in_full,
                (pg_temp.fact(9004)).otif], ARRAY[false, false, false],
          '9004: delivered 10-28 00:30 Berlin time (CET) for 10-27: late, not in full');
SELECT is((pg_temp.fact(9004)).cycle_time_hours, 87.50,
          '9004: cycle 10-24 10:00 CEST -> 10-28 00:30 CET = 87.5 h (the Sunday had 25 hours)');

-- 9005 cancelled
SELECT is(ARRAY[(pg_temp.fact(9005)).on_time, (pg_temp.fact(9005)).in_full,
                (pg_temp.fact(9005)).otif],
          ARRAY[NULL, NULL, NULL]::boolean[], '9005: cancelled: out of the delivery KPIs');
SELECT is((pg_temp.fact(9005)).cycle_time_hours, NULL, '9005: no cycle time');
SELECT is((pg_temp.fact(9005)).tz, 'UTC', '9005: no warehouse: counted in UTC');

-- 9006 the return, shipped from New York
SELECT is((pg_temp.fact(9006)).tz, 'America/New_York', '9006: the order''s warehouse sets the zone');
SELECT is((pg_temp.fact(9006)).placed_day, '2025-10-20'::date,
          '9006: placed 10-21 03:00 UTC = 10-20 23:00 in New York');
SELECT is(ARRAY[(pg_temp.fact(9006)).returned_qty::numeric, (pg_temp.fact(9006)).refunded_amount,
                (pg_temp.fact(9006)).return_refunded_amount],
          ARRAY[1, 10.00, 10.00]::numeric[],
          '9006: one unit accepted back (qty_returned), 10.00 refunded, all of it for the return');
SELECT is((pg_temp.fact(9006)).return_status, 'partially_returned', '9006: the derived return_status');
SELECT is((pg_temp.fact(9006)).completed_at, '2025-11-22 02:00+00'::timestamptz,
          '9006: completed when it entered the completed class');
SELECT is(ARRAY[(pg_temp.fact(9006)).manual_events::int, (pg_temp.fact(9006)).touchless::int],
          ARRAY[1, 0],
          '9006: the approval by the service desk is its one manual event (the completion by the scheduler is automated)');

-- 9013 the failed attempt and the lost parcel
SELECT is(ARRAY[(pg_temp.fact(9013)).failed_attempts, (pg_temp.fact(9013)).failed_shipments,
                (pg_temp.fact(9013)).rework_steps],
          ARRAY[1, 1, 1]::bigint[],
          '9013: one failed_attempt checkpoint, one shipment of class failed, in_transit entered twice');
SELECT is((pg_temp.fact(9013)).shipments, 1::bigint, '9013: a lost shipment still counts as a shipment');

-- every order's figures at once, and the same whatever the session's zone
CREATE TEMP TABLE expected_facts AS
SELECT * FROM (VALUES
    (9001::bigint, 'Europe/Berlin', '2025-10-20'::date, 5, 5, true, false, false, 98.00, 0::bigint, 30::bigint, 0::bigint, 0::bigint, 0, 0::numeric),
    (9002, 'Europe/Berlin', '2025-10-20', 2, 2, true, true, true, 76.00, 1, 21, 8, 0, 0, 0),
    (9003, 'Europe/Berlin', '2025-10-20', 3, 3, true, true, true, 27.00, 0, 19, 0, 2, 0, 0),
    (9004, 'Europe/Berlin', '2025-10-24', 1, 1, false, false, false, 87.50, 0, 20, 0, 0, 0, 0),
    (9005, 'UTC', '2025-10-24', 0, 0, NULL, NULL, NULL, NULL, 0, 2, 1, 0, 0, 0),
    (9006, 'America/New_York', '2025-10-20', 2, 2, true, true, true, 36.00, 0, 26, 1, 0, 1, 10.00)
) x(order_id, tz, placed_day, qty_due, qty_delivered, on_time, in_full, otif, cycle_time_hours,
    holds, events, manual_events, rework_steps, returned_qty, refunded_amount);
CREATE FUNCTION pg_temp.facts_of_2025() RETURNS SETOF record LANGUAGE sql AS $$
    SELECT order_id, tz, placed_day, qty_due, qty_delivered, on_time, in_full, otif,
           cycle_time_hours, holds, events, manual_events, rework_steps, returned_qty,
           refunded_amount
      FROM order_mgmt.order_facts WHERE order_id BETWEEN 9001 AND 9006 ORDER BY order_id
$$;
SELECT results_eq(
    $$SELECT * FROM pg_temp.facts_of_2025() AS f(a bigint, b text, c date, d int, e int, f boolean,
        g boolean, h boolean, i numeric, j bigint, k bigint, l bigint, m bigint, n int, o numeric)$$,
    $$SELECT * FROM expected_facts ORDER BY order_id$$,
    'order_facts of the six closed orders, worked out by hand');
SET LOCAL TimeZone = 'Pacific/Kiritimati';
SELECT results_eq(
    $$SELECT * FROM pg_temp.facts_of_2025() AS f(a bigint, b text, c date, d int, e int, f boolean,
        g boolean, h boolean, i numeric, j bigint, k bigint, l bigint, m bigint, n int, o numeric)$$,
    $$SELECT * FROM expected_facts ORDER BY order_id$$,
    'the same in a session at UTC+14');
RESET TimeZone;

------------------------------------------------------------------------
-- kpi_daily
------------------------------------------------------------------------
-- 10-20: 9001, 9002, 9003, 9006.  Measured 4; on time 4; in full 3 (not
-- 9001); cycles 27, 36, 76, 98: p50 (36 + 76) / 2 = 56, p90 76 + 0.7 x 22
-- = 91.4; touchless 9001, 9003; credit hold 9002 (26 h); rework 9003;
-- returned 9006 of 4 delivered.
-- 10-20 web: 9001, 9006: in full 1 of 2; cycles 36, 98: p50 67, p90 36 +
-- 0.9 x 62 = 91.8; touchless 9001; returned 9006.
-- 10-24: 9004 (late) and 9005 (cancelled): measured 1, on time 0.
SELECT results_eq(
    $$SELECT day, channel, orders, cancelled, delivered, measured, otd_rate, in_full_rate,
             otif_rate, cycle_time_p50_hours, cycle_time_p90_hours, touchless_rate,
             credit_hold_rate, credit_hold_mean_hours, rework_rate, return_rate
        FROM order_mgmt.kpi_daily
       WHERE day IN ('2025-10-20', '2025-10-24') AND channel IN ('all', 'web')
       ORDER BY day, channel$$,
    $$VALUES ('2025-10-20'::date, 'all'::text, 4::bigint, 0::bigint, 4::bigint, 4::bigint,
              1.0000, 0.7500, 0.7500, 56.00, 91.40, 0.5000, 0.2500, 26.00, 0.2500, 0.2500),
             ('2025-10-20', 'web', 2, 0, 2, 2, 1.0000, 0.5000, 0.5000, 67.00, 91.80, 0.5000,
              0.0000, NULL, 0.0000, 0.5000),
             ('2025-10-24', 'all', 2, 1, 1, 1, 0.0000, 0.0000, 0.0000, 87.50, 87.50, 0.5000,
              0.0000, NULL, 0.0000, 0.0000),
             ('2025-10-24', 'web', 1, 0, 1, 1, 0.0000, 0.0000, 0.0000, 87.50, 87.50, 1.0000,
              0.0000, NULL, 0.0000, 0.0000)$$,
    'kpi_daily: 2025-10-20 and 2025-10-24, all channels and web');
SELECT is((SELECT orders FROM kpi_daily WHERE day = '2025-10-24' AND channel = 'marketplace'),
          1::bigint, 'the cancelled marketplace order counts as placed');
SELECT is((SELECT sum(orders)::bigint FROM kpi_daily WHERE day IS NOT NULL AND channel = 'all'),
          (SELECT orders FROM kpi_daily WHERE day IS NULL AND channel = 'all'),
          'the day rows add up to the total row');

------------------------------------------------------------------------
-- Variants and the directly-follows graph
------------------------------------------------------------------------
SELECT results_eq(
    $$SELECT variant_rank, variant, cases, share, mean_throughput_hours, p90_throughput_hours
        FROM order_mgmt.process_variants WHERE variant_rank <= 2 ORDER BY 1$$,
    $$VALUES (1::bigint, 'order.placed > order.credit_checked > order.confirmed'::text, 3::bigint,
              0.2308, 0.02, 0.02),
             (2, 'order.placed > order.credit_checked > order.confirmed > order.released > shipment.created > shipment.picking_started > shipment.packed > shipment.labelled > shipment.dispatched > order.shipped > shipment.in_transit',
              2, 0.1538, 8.00, 8.00)$$,
    'process_variants: 9007, 9009, 9010 (1 minute each) and 9011, 9012 (8 hours each), of 13 cases');
SELECT is((SELECT variant FROM process_variants WHERE example_case_id = 9003),
          'order.placed > order.credit_checked > order.confirmed > order.released > shipment.created > shipment.picking_started > shipment.packed > shipment.repack_started > shipment.packed > shipment.labelled > shipment.dispatched > order.shipped > shipment.in_transit > shipment.out_for_delivery > shipment.delivered > order.delivered',
          'the re-pack variant: line events and carrier checkpoints left out, the inferred out_for_delivery in');
SELECT is((SELECT sum(cases) FROM process_variants), 13::numeric, 'every case has one variant');
SELECT is((SELECT ARRAY[count(*), max(step)] FROM process_steps WHERE case_id = 9001),
          ARRAY[24, 24]::bigint[],
          '9001: 24 steps (30 events, less 2 line events and 4 checkpoints), numbered 1 to 24');

CREATE TEMP TABLE oct AS SELECT * FROM process_dfg('2025-10-01', '2025-11-01');
SELECT results_eq(
    $$SELECT activity, next_activity, frequency, mean_hours FROM oct
       WHERE (activity, next_activity) IS NOT DISTINCT FROM (NULL, 'order.placed')
          OR (activity, next_activity) IS NOT DISTINCT FROM ('order.delivered', NULL)
          OR (activity, next_activity) IS NOT DISTINCT FROM ('order.completed', NULL)
          OR (activity, next_activity) IN (('shipment.dispatched', 'order.shipped'),
                                          ('shipment.dispatched', 'order.partially_shipped'),
                                          ('shipment.packed', 'shipment.repack_started'),
                                          ('hold.placed', 'order.held'),
                                          ('payment.refunded', 'return.completed'))
       ORDER BY 1 NULLS FIRST, 2$$,
    $$VALUES (NULL, 'order.placed', 6::bigint, NULL::numeric),
             ('hold.placed', 'order.held', 1, 0.00),
             ('order.completed', NULL, 1, NULL),
             ('order.delivered', NULL, 4, NULL),
             ('payment.refunded', 'return.completed', 1, 0.00),
             ('shipment.dispatched', 'order.partially_shipped', 1, 0.00),
             ('shipment.dispatched', 'order.shipped', 5, 0.00),
             ('shipment.packed', 'shipment.repack_started', 1, 0.25)$$,
    'process_dfg of October 2025: starts, ends and pairs counted by hand');
-- shipment.created -> shipment.picking_started: 20 h (9001: its second shipment
-- created at 10-20 12:00, the first picked at 10-21 08:00), 18 h (9002), 1 h
-- (9003, 9004, 9006): mean 41 / 5 = 8.2 h; the 90th percentile (nearest rank:
-- the 5th of 5) is 20 h, reported from its 1 % bin within 0.5 %
SELECT is((SELECT mean_hours FROM oct
            WHERE activity = 'shipment.created' AND next_activity = 'shipment.picking_started'),
          8.20, 'mean time from a shipment''s creation to picking');
SELECT ok((SELECT p90_hours BETWEEN 19.90 AND 20.10 FROM oct
            WHERE activity = 'shipment.created' AND next_activity = 'shipment.picking_started'),
          'p90 time from creation to picking: 20 h within 0.5 %');
SELECT is((SELECT sum(frequency) FROM oct WHERE next_activity IS NOT NULL), 100::numeric,
          'one incoming edge per step: 118 events less 6 line events and 12 checkpoints');
SELECT is((SELECT count(*) FROM process_dfg('2030-01-01', '2030-02-01')), 0::bigint,
          'an empty period has an empty graph');

SELECT matches(process_map_dot('2025-10-01', '2025-11-01'),
               '^digraph process \{.*label="order_mgmt process map: 6 cases".*\}$',
               'process_map_dot: a digraph of the 6 cases of October 2025');
SELECT matches(process_map_dot('2025-10-01', '2025-11-01'),
               'n[0-9]+ \[label="shipment\.repack_started\\n1"\]',
               'each activity is a node labelled with its count');
SELECT matches(process_map_dot('2025-10-01', '2025-11-01'),
               'start -> n[0-9]+ \[label="6", penwidth=8\.0\]',
               'the heaviest edges (6 starts; picking to packed...) are drawn 8 points wide');
SELECT matches(process_map_dot('2030-01-01', '2030-02-01'), 'map: 0 cases',
               'an empty period is still a graph');

------------------------------------------------------------------------
-- export_xes
------------------------------------------------------------------------
CREATE TEMP TABLE xes AS SELECT export_xes('2025-10-01', '2025-11-01') AS doc;
CREATE FUNCTION pg_temp.xcount(path text) RETURNS int LANGUAGE sql AS $$
    SELECT (xpath('count(' || path || ')', doc, ARRAY[ARRAY['x', 'http://www.xes-standard.org/']]))[1]::text::int
      FROM xes
$$;
SELECT is(pg_temp.xcount('/x:log/x:trace'), 6, 'export_xes: 6 traces, one per order of October 2025');
SELECT is(pg_temp.xcount('/x:log/x:trace/x:event'), 118,
          'export_xes: 118 events, line events and checkpoints included');
SELECT is(pg_temp.xcount('/x:log/x:trace[x:string[@key="concept:name" and @value="9004"]]/x:event'),
          20, 'export_xes: trace 9004 has its 20 events');
SELECT is((SELECT (xpath('/x:log/x:trace[x:string[@value="9004"]]/x:event[1]/x:date/@value', doc,
                         ARRAY[ARRAY['x', 'http://www.xes-standard.org/']]))[1]::text FROM xes),
          '2025-10-24T08:00:00.000000Z', 'timestamps are UTC xs:dateTime values');
SELECT is(pg_temp.xcount('/x:log/x:extension'), 4, 'the concept, time, org and lifecycle extensions');
SELECT is((xpath('count(/x:log/x:trace)', export_xes('2030-01-01', '2030-02-01'),
                 ARRAY[ARRAY['x', 'http://www.xes-standard.org/']]))[1]::text, '0',
          'an empty period gives a log without traces');

-- the size limit: October 2025 holds 118 events; a limit below refuses the
-- export (54000) before building anything, and changes nothing
UPDATE bi_settings SET xes_max_events = 118;
SELECT is(pg_temp.xcount('/x:log/x:trace/x:event'),
          (xpath('count(/x:log/x:trace/x:event)', export_xes('2025-10-01', '2025-11-01'),
                 ARRAY[ARRAY['x', 'http://www.xes-standard.org/']]))[1]::text::int,
          'export_xes at its limit (xes_max_events = the 118 events of the period)');
UPDATE bi_settings SET xes_max_events = 117;
CREATE TEMP TABLE digest_before AS
    SELECT (SELECT count(*) FROM events) AS events, (SELECT md5(string_agg(b::text, ',')) FROM bi_settings b) AS settings;
SELECT throws_ok($$SELECT order_mgmt.export_xes('2025-10-01', '2025-11-01')$$, '54000',
                 'the period holds too many events for one XES document',
                 'one event over xes_max_events: 54000');
SELECT is((SELECT ARRAY[(SELECT count(*) FROM events)::text, (SELECT md5(string_agg(b::text, ',')) FROM bi_settings b)]),
          (SELECT ARRAY[events::text, settings] FROM digest_before), 'and nothing changed');
SELECT lives_ok($$SELECT order_mgmt.export_xes('2025-10-20', '2025-10-21')$$,
                'a shorter period under the limit exports');
SELECT throws_ok($$UPDATE order_mgmt.bi_settings SET xes_max_events = 1000001$$, '23514', NULL,
                 'the limit is at most 1,000,000 events (a document stays below 1 GB)');
UPDATE bi_settings SET xes_max_events = NULL;
SELECT is((SELECT xes_max_events FROM bi_config), 1000000, 'no limit set: 1,000,000');

------------------------------------------------------------------------
-- open_order_risk (today = T in Berlin)
------------------------------------------------------------------------
-- 9007 estimate T-10 + 2 = T-8 for T-9: late by 1, 9 days past, in
--      confirmed for 10 days;  9008 credit hold for ~3 days (> 48 h);
-- 9009 no estimate while 3 units wait; 9010 fine (not listed);
-- 9011 carrier's T+3 for T+1; 9012 promised T-1, not delivered;
-- 9013 lost (its carrier's window T+1 is within the promise T+2).
SELECT results_eq(
    $$SELECT order_id, reason, days_left, days_late FROM order_mgmt.open_order_risk ORDER BY 1$$,
    $$VALUES (9007::bigint, 'delivery overdue, ship date passed, late estimate, stuck in confirmed', -9, 1),
             (9008, 'on hold: credit, stuck in on_hold', NULL, NULL),
             (9009, 'no estimate: line 1 is backordered and has no ready date, backorder', 5, NULL),
             (9011, 'late estimate', 1, 2),
             (9012, 'delivery overdue', -1, 0),
             (9013, 'shipment 9109 lost', 2, -1)$$,
    'open_order_risk: the six open orders at risk, with every reason, none closed');
SELECT is((SELECT failed_shipment_ids FROM open_order_risk WHERE order_id = 9013), '{9109}'::bigint[],
          '9013: the lost shipment');
SELECT is((SELECT string_agg(order_id::text || ':' || coalesce(failed_shipment_ids::text, '-'),
                            ' ' ORDER BY order_id)
             FROM order_overview WHERE order_id IN (9001, 9013)),
          '9001:- 9013:{9109}',
          'order_overview: the parcels that will not arrive (9013 lost 9109; none for 9001)');
SELECT results_eq(
    $$SELECT r.order_id, r.estimated_delivery_latest FROM order_mgmt.open_order_risk r
       WHERE r.estimated_delivery_latest IS NOT NULL ORDER BY 1$$,
    $$SELECT v.order_id, v.current_delivery_latest FROM order_mgmt.order_overview v
       WHERE v.order_id IN (SELECT order_id FROM order_mgmt.open_order_risk)
         AND v.current_delivery_latest IS NOT NULL ORDER BY 1$$,
    'the estimate is the current window the customer sees in order_overview');
SELECT is((SELECT qty_backordered FROM open_order_risk WHERE order_id = 9009), 3, '9009: 3 units backordered');
SELECT is((SELECT hours_in_status >= 48 FROM open_order_risk WHERE order_id = 9008), true,
          '9008: held since its order.held event');
SELECT results_eq($$SELECT order_id FROM order_mgmt.orders_at_risk ORDER BY 1$$,
                  $$VALUES (9007::bigint), (9009)$$, 'orders_at_risk still works');
-- the settings: a longer threshold un-sticks the held order; no system actors
UPDATE bi_settings SET stuck_after = '100 hours', system_actors = '{}';
SELECT is((SELECT reason FROM open_order_risk WHERE order_id = 9008), 'on hold: credit',
          'with stuck_after = 100 hours the 3-day hold is not stuck');
SELECT is((SELECT reason FROM open_order_risk WHERE order_id = 9007),
          'delivery overdue, ship date passed, late estimate, stuck in confirmed',
          'the 10-day wait still is');
SELECT is((pg_temp.fact(9001)).manual_events, 16::bigint,
          'without system actors, every step of 9001 not marked automated is manual (30 - 14)');
DELETE FROM bi_settings;
SELECT is((SELECT stuck_after FROM bi_config), '48 hours'::interval, 'no settings row: the defaults');
SELECT throws_ok($$INSERT INTO order_mgmt.bi_settings (singleton) VALUES (false)$$, '23514', NULL,
                 'bi_settings holds one row at most');
SELECT throws_ok($$INSERT INTO order_mgmt.bi_settings (stuck_after) VALUES ('-1 hour')$$, '23514',
                 NULL, 'a threshold must be positive');

------------------------------------------------------------------------
-- inventory_availability
------------------------------------------------------------------------
SELECT results_eq(
    $$SELECT warehouse_id, sku, on_hand, reserved, available_to_promise, backordered,
             waiting_lines, net_available
        FROM order_mgmt.inventory_availability WHERE sku LIKE 'BI-%' ORDER BY 1, 2$$,
    $$VALUES ('BI-BER'::text, 'BI-A'::text, 50, 3, 47, 0, 0::bigint, 47),
             ('BI-BER', 'BI-B', 2, 2, 0, 3, 1, -3),
             ('BI-NYC', 'BI-A', 7, 0, 7, 0, 0, 7)$$,
    'inventory_availability: ATP = on hand - reserved; 3 units of B wait at Berlin');

------------------------------------------------------------------------
-- Parallel workers start with cold caches, and no snapshot may be taken
-- during a parallel query: every view (status_class, estimate_order_window
-- through order_overview) must answer in a parallel plan what it answers
-- in a serial one.  Parallel plans are made cheap, so the scans and the
-- functions of their filters and projections run in workers, and the
-- leader leaves them all to the workers (else it may read the fixture's
-- few pages before a worker starts); index scans are off, so every table
-- is read by a parallel scan whatever the statistics say.
------------------------------------------------------------------------
-- A view's rows as one digest: one query per view, planned on its own by
-- EXECUTE (in a join of the views the planner keeps each serial).
CREATE FUNCTION pg_temp.digest(v text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d text;
BEGIN
    EXECUTE format('SELECT md5(string_agg(t::text, '','' ORDER BY t::text)) FROM order_mgmt.%I t', v)
       INTO d;
    RETURN d;
END;
$$;
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RETURN plan;
END;
$$;
CREATE TEMP TABLE serial_digests AS
SELECT v, pg_temp.digest(v) AS digest
  FROM unnest('{event_log,order_zones,order_facts,kpi_daily,process_steps,process_variants,process_dfg,open_order_risk,inventory_availability}'::text[]) v;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL min_parallel_index_scan_size = 0;
SET LOCAL parallel_leader_participation = off;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_indexonlyscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT is(ARRAY(SELECT v FROM serial_digests
                 WHERE pg_temp.plan_of(format('SELECT * FROM order_mgmt.%I', v)) !~ 'Gather'),
          '{}'::text[], 'every view has parts of its plan in parallel workers');
SELECT is(pg_temp.digest(v), digest, v || ': the same rows from a parallel worker')
  FROM serial_digests ORDER BY v;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET min_parallel_index_scan_size;
RESET parallel_leader_participation;
RESET enable_indexscan;
RESET enable_indexonlyscan;
RESET enable_bitmapscan;

------------------------------------------------------------------------
-- How many lines are open, as the planner sees it: 3,000 delivered lines
-- and 30 open ones more.  For the comparison of two columns alone it
-- guesses a third; open_order_risk adds the same test spelled IS TRUE,
-- estimated from order_lines_open_stat (a third of the open lines: it errs
-- on the small side).  Without the statistics object it guesses a ninth of
-- all lines, nine times the open ones.
------------------------------------------------------------------------
INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price, qty_shipped, qty_delivered)
SELECT 9001, 100 + i, 'BI-A', 1, 1, 1, 1 FROM generate_series(1, 3000) i;
INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price)
SELECT 9007, 100 + i, 'BI-A', 1, 1 FROM generate_series(1, 30) i;
ANALYZE order_lines;
CREATE FUNCTION pg_temp.open_lines_estimate() RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    p jsonb;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT * FROM order_mgmt.open_order_risk' INTO p;
    RETURN jsonb_path_query_first(p,
        'strict $.**?(@."Relation Name" == "order_lines" && @."Index Name" == "order_lines_open_idx")."Plan Rows"');
END;
$$;
SELECT cmp_ok(pg_temp.open_lines_estimate(), '<=',
              (SELECT count(*)::numeric FROM order_lines WHERE qty_delivered + qty_cancelled < qty),
              'open_order_risk: the planner does not take more lines for open than there are');
SELECT cmp_ok(pg_temp.open_lines_estimate() * 10, '>=',
              (SELECT count(*)::numeric FROM order_lines WHERE qty_delivered + qty_cancelled < qty),
              '... nor fewer than a tenth of them');
DROP STATISTICS order_lines_open_stat;
ANALYZE order_lines;
SELECT cmp_ok(pg_temp.open_lines_estimate(), '>',
              5 * (SELECT count(*)::numeric FROM order_lines WHERE qty_delivered + qty_cancelled < qty),
              'without order_lines_open_stat it takes more than five times as many');

------------------------------------------------------------------------
-- Readers (what they may read and run: test/pgtap/security.sql)
------------------------------------------------------------------------
SET LOCAL ROLE order_mgmt_reader;
SELECT is((SELECT count(*) FROM order_mgmt.order_facts WHERE order_id BETWEEN 9001 AND 9013),
          13::bigint, 'a reader reads order_facts');
SELECT is((SELECT count(*) FROM order_mgmt.open_order_risk), 6::bigint,
          'and open_order_risk, with the estimates of order_overview');
SELECT is(length(order_mgmt.process_map_dot()) > 0 AND order_mgmt.export_xes() IS NOT NULL, true,
          'and runs the process map and the XES export');
SELECT throws_ok($$UPDATE order_mgmt.bi_settings SET stuck_after = '1 hour'$$, '42501', NULL,
                 'but cannot change the settings');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
