-- The event stream (issue 12): consumers, fetch_events, ack_events,
-- register/drop, purge_events, consumer_lag, notify_mode = relay without
-- preloading; every failure with its SQLSTATE and "nothing changed".
--
-- Runs without a wrapping transaction, in its own database: events are only
-- handed out once their transaction has ended, so each statement must commit.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS om_tap_stream;
CREATE DATABASE om_tap_stream;
\c om_tap_stream
SET client_min_messages = warning;
CREATE EXTENSION pgtap;
CREATE EXTENSION order_mgmt;
DROP ROLE IF EXISTS st_op;
CREATE ROLE st_op NOLOGIN IN ROLE order_mgmt_operator;
SET search_path = order_mgmt, public;

SELECT plan(90);

INSERT INTO customers (customer_id, name) VALUES ('ST', 'Stream');
INSERT INTO orders (customer_id, currency, ship_to, ship_to_country)
SELECT 'ST', 'EUR', '{}', 'DE' FROM generate_series(1, 3);
SELECT min(order_id) AS o FROM orders \gset
-- 10 events in 10 transactions, then one transaction with 3 events
DO $$
BEGIN
    FOR i IN 1..10 LOOP
        PERFORM order_mgmt.emit_event(o, 'order', o, 'order.note_added')
           FROM (SELECT min(order_id) AS o FROM order_mgmt.orders) x;
        COMMIT;
    END LOOP;
END;
$$;
SELECT count(emit_event(:o, 'order', :o, 'order.note_added')) AS _ FROM generate_series(1, 3) \gset

-- everything a rejected call could change
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(concat_ws(',', consumer, acked_tx, acked_seq, acked_at), ';' ORDER BY consumer)
           FROM order_mgmt.consumers),
        (SELECT string_agg(seq::text, ',' ORDER BY seq) FROM order_mgmt.events)))
$$;
-- (tx, seq) of the n-th event in delivery order, as text 'tx,seq'
CREATE FUNCTION pg_temp.pos(n int) RETURNS text LANGUAGE sql AS $$
    SELECT tx || ',' || seq FROM order_mgmt.events ORDER BY tx, seq OFFSET n - 1 LIMIT 1
$$;
CREATE FUNCTION pg_temp.cursor(c text) RETURNS text LANGUAGE sql AS $$
    SELECT acked_tx || ',' || acked_seq FROM order_mgmt.consumers WHERE consumer = c
$$;
CREATE FUNCTION pg_temp.ack_nth(c text, n int) RETURNS boolean LANGUAGE sql AS $$
    SELECT order_mgmt.ack_events(c, tx, seq) FROM order_mgmt.events ORDER BY tx, seq OFFSET n - 1 LIMIT 1
$$;

------------------------------------------------------------------------
-- fetch_events and registration
------------------------------------------------------------------------
SELECT is((SELECT count(*) FROM consumers), 0::bigint, 'no consumer to begin with');
SELECT results_eq($$SELECT seq FROM fetch_events('st_a', 5)$$,
                  $$SELECT seq FROM events ORDER BY tx, seq LIMIT 5$$,
                  'an unknown consumer starts from the oldest event, oldest first (tx, seq), max_rows of them');
SELECT is(pg_temp.cursor('st_a'), '0,0', 'the first fetch registered it at (0, 0)');
SELECT is((SELECT acked_at FROM consumers WHERE consumer = 'st_a'), NULL, '... with no acknowledgement yet');
SELECT results_eq($$SELECT seq FROM fetch_events('st_a', 5)$$,
                  $$SELECT seq FROM events ORDER BY tx, seq LIMIT 5$$,
                  'fetching again returns the same events: fetching does not move the cursor');
SELECT is((SELECT count(*) FROM fetch_events('st_a')), 13::bigint, 'without max_rows: everything up to 100');
SELECT count(emit_event(:o, 'order', :o, 'order.note_added')) AS _ FROM generate_series(1, 100) \gset
SELECT is((SELECT count(*) FROM fetch_events('st_a')), 100::bigint, 'max_rows defaults to 100');
SELECT is((SELECT count(*) FROM fetch_events('st_a', 10000)), 113::bigint, 'max_rows 10000 is allowed');
SELECT is((SELECT array_agg(DISTINCT event_type) FROM fetch_events('st_a', 1)), '{order.note_added}',
          'rows are order_mgmt.events rows');

------------------------------------------------------------------------
-- ack_events
------------------------------------------------------------------------
SELECT is(pg_temp.ack_nth('st_a', 3), true, 'acknowledging the third event moves the cursor');
SELECT is(pg_temp.cursor('st_a'), pg_temp.pos(3), '... to its (tx, seq)');
SELECT isnt((SELECT acked_at FROM consumers WHERE consumer = 'st_a'), NULL, '... and records when');
SELECT results_eq($$SELECT seq FROM fetch_events('st_a', 2)$$,
                  $$SELECT seq FROM events ORDER BY tx, seq OFFSET 3 LIMIT 2$$,
                  'the next fetch starts after the acknowledged event');
SELECT pg_temp.state() AS before \gset
SELECT is(pg_temp.ack_nth('st_a', 3), false, 'the same acknowledgement again: false');
SELECT is(pg_temp.ack_nth('st_a', 1), false, 'an older position: false');
SELECT is(pg_temp.state(), :'before', '... and the cursor stays where it was (acks never move back)');
SELECT is(pg_temp.ack_nth('st_a', 12), true, 'the last event of a transaction with three events');
SELECT results_eq($$SELECT seq FROM fetch_events('st_a', 1)$$,
                  $$SELECT seq FROM events ORDER BY tx, seq OFFSET 12 LIMIT 1$$,
                  '... leaves its third event to fetch');

-- failures: SQLSTATE and nothing changed
SELECT pg_temp.state() AS before \gset
SELECT throws_ok($$SELECT ack_events('st_a', '4000000000', 1)$$, 'OM040',
                 NULL, 'acknowledging a position where there is no event: OM040');
SELECT throws_ok($$SELECT ack_events('st_a', tx, seq + 1000000) FROM events ORDER BY tx DESC, seq DESC LIMIT 1$$,
                 'OM040', NULL, '... also a seq that does not exist in an existing transaction');
SELECT throws_ok(format($$WITH e AS (SELECT emit_event(%s, 'order', %s, 'order.note_added') AS seq)
                          SELECT ack_events('st_a', pg_current_xact_id(), e.seq) FROM e$$, :o, :o),
                 'OM040', NULL, 'an event of a transaction that has not ended cannot be acknowledged: OM040');
SELECT throws_ok($$SELECT ack_events('st_nobody', tx, seq) FROM events LIMIT 1$$, 'OM004',
                 'unknown consumer "st_nobody"', 'acknowledging for an unknown consumer: OM004');
SELECT throws_ok($$SELECT ack_events(NULL, '1', 1)$$, '22004', NULL, 'ack_events: null consumer');
SELECT throws_ok($$SELECT ack_events('st_a', NULL, 1)$$, '22004', NULL, 'ack_events: null tx');
SELECT throws_ok($$SELECT ack_events('st_a', '1', NULL)$$, '22004', NULL, 'ack_events: null seq');
SELECT throws_ok($$SELECT ack_events('', '1', 1)$$, '22023', NULL, 'ack_events: empty consumer name');
SELECT is(pg_temp.state(), :'before', 'no failed acknowledgement changed anything (nor registered st_nobody)');

SELECT pg_temp.state() AS before \gset
SELECT throws_ok($$SELECT * FROM fetch_events(NULL)$$, '22004', NULL, 'fetch_events: null consumer');
SELECT throws_ok($$SELECT * FROM fetch_events('st_x', NULL)$$, '22004', NULL, 'fetch_events: null max_rows');
SELECT throws_ok($$SELECT * FROM fetch_events('st_x', 0)$$, '22023', NULL, 'fetch_events: max_rows 0');
SELECT throws_ok($$SELECT * FROM fetch_events('st_x', -1)$$, '22023', NULL, 'fetch_events: max_rows -1');
SELECT throws_ok($$SELECT * FROM fetch_events('st_x', 10001)$$, '22023', NULL, 'fetch_events: max_rows 10001');
SELECT throws_ok($$SELECT * FROM fetch_events('')$$, '22023', NULL, 'fetch_events: empty consumer name');
SELECT throws_ok(format($$SELECT * FROM fetch_events(%L)$$, repeat('x', 64)), '22023', NULL,
                 'fetch_events: a consumer name of 64 characters');
SELECT is(pg_temp.state(), :'before', 'no failed fetch registered a consumer');
SELECT throws_ok($$SELECT register_consumer(NULL)$$, '22004', NULL, 'register_consumer: null consumer');
SELECT throws_ok($$SELECT register_consumer('st_x', NULL)$$, '22004', NULL, 'register_consumer: null from_now');
SELECT throws_ok($$INSERT INTO order_mgmt.consumers (consumer) VALUES ('')$$, '22023', NULL,
                 'the table refuses an invalid name too (one rule)');
SELECT is(pg_temp.state(), :'before', 'nothing was registered');

------------------------------------------------------------------------
-- register_consumer, drop_consumer
------------------------------------------------------------------------
SELECT is(register_consumer(repeat('y', 63)), true, 'a name of 63 characters is fine');
SELECT is(register_consumer(repeat('y', 63)), false, 'registering it again: false');
SELECT lives_ok(format($$SELECT drop_consumer(%L)$$, repeat('y', 63)), 'drop_consumer removes it');
SELECT is((SELECT count(*) FROM consumers WHERE consumer = repeat('y', 63)), 0::bigint, '... it is gone');
SELECT is(register_consumer('st_b', true), true, 'register from_now');
SELECT is(pg_temp.cursor('st_b'), (SELECT tx || ',' || seq FROM events ORDER BY tx DESC, seq DESC LIMIT 1),
          '... starts after the last event');
SELECT is((SELECT count(*) FROM fetch_events('st_b')), 0::bigint, '... so it fetches nothing yet');
SELECT emit_event(:o, 'order', :o, 'order.note_added') AS new_seq \gset
SELECT results_eq($$SELECT seq FROM fetch_events('st_b')$$, ARRAY[:new_seq::bigint], '... then only the new event');
SELECT pg_temp.state() AS before \gset
SELECT throws_ok($$SELECT drop_consumer('st_nobody')$$, 'OM004', 'unknown consumer "st_nobody"',
                 'drop_consumer: unknown consumer: OM004');
SELECT throws_ok($$SELECT drop_consumer(NULL)$$, '22004', NULL, 'drop_consumer: null');
SELECT is(pg_temp.state(), :'before', 'nothing changed');

------------------------------------------------------------------------
-- consumer_lag
------------------------------------------------------------------------
SELECT is((SELECT events_behind FROM consumer_lag WHERE consumer = 'st_a'),
          (SELECT count(*) FROM events WHERE (tx, seq) > (SELECT acked_tx, acked_seq FROM consumers WHERE consumer = 'st_a')),
          'consumer_lag: events behind the cursor');
SELECT is((SELECT oldest_unacked_at FROM consumer_lag WHERE consumer = 'st_a'),
          (SELECT min(occurred_at) FROM events WHERE (tx, seq) > (SELECT acked_tx, acked_seq FROM consumers WHERE consumer = 'st_a')),
          'consumer_lag: when the oldest unacknowledged event happened');
SELECT ok((SELECT oldest_unacked_age > '0' FROM consumer_lag WHERE consumer = 'st_a'), '... and its age');
SELECT ok(pg_temp.ack_nth('st_b', (SELECT count(*)::int FROM events)), 'st_b acknowledges everything');
SELECT is((SELECT row(events_behind, oldest_unacked_at, oldest_unacked_age)::text FROM consumer_lag WHERE consumer = 'st_b'),
          '(0,,)', 'a consumer that is up to date: 0 behind, no age');

------------------------------------------------------------------------
-- purge_events and the append-only rule
------------------------------------------------------------------------
-- st_a has acknowledged 12 events, st_b all of them
SELECT count(*) AS total FROM events \gset
SELECT is(purge_events('1 hour'), 0::bigint, 'events younger than older_than stay');
SELECT is(purge_events('0'), 12::bigint, 'purge_events(0) deletes what every consumer acknowledged (12)');
SELECT results_eq($$SELECT seq FROM events ORDER BY tx, seq$$,
                  $$SELECT seq FROM fetch_events('st_a', 10000)$$,
                  '... and keeps exactly what the slowest consumer has not');
SELECT is((SELECT count(*) FROM events), :total - 12::bigint, '... nothing else');
-- old events that nobody acknowledged yet
INSERT INTO events (order_id, entity, entity_id, event_type, actor, occurred_at)
SELECT :o, 'order', :o, 'order.imported', 'tester', now() - interval '3 days' FROM generate_series(1, 5);
SELECT is(purge_events('1 day'), 0::bigint, 'old but unacknowledged events are never deleted');
SELECT ok(pg_temp.ack_nth('st_a', (SELECT count(*)::int FROM events)), 'st_a catches up');
SELECT is(purge_events('1 day'), 0::bigint, '... st_b has not acknowledged the old events yet: still nothing');
SELECT ok(pg_temp.ack_nth('st_b', (SELECT count(*)::int FROM events)), 'st_b catches up');
SELECT is(purge_events('1 day'), 5::bigint, 'now the 5 old events go, the recent ones stay');
SELECT is((SELECT count(*) FROM events WHERE event_type = 'order.imported'), 0::bigint, '... the old ones are gone');
SELECT ok(register_consumer('st_c'), 'a new consumer starts at (0, 0)');
SELECT pg_temp.state() AS before \gset
SELECT is(purge_events('0'), 0::bigint, '... and holds everything back');
SELECT is(pg_temp.state(), :'before', 'nothing deleted');

-- the append-only rule for everybody else, superuser included
SELECT throws_ok($$DELETE FROM order_mgmt.events WHERE seq = (SELECT min(seq) FROM order_mgmt.events)$$,
                 'OM003', NULL, 'a direct DELETE of an acknowledged event still fails with OM003');
SELECT throws_ok($$UPDATE order_mgmt.events SET reason = 'x'$$, 'OM003', NULL, 'UPDATE: OM003');
SELECT throws_ok($$TRUNCATE order_mgmt.events$$, 'OM003', NULL, 'TRUNCATE: OM003');
-- a trigger that deletes more during a purge only gets the rows the purge may delete
SELECT lives_ok($$SELECT drop_consumer('st_c')$$, 'st_c is dropped');
SELECT emit_event(:o, 'order', :o, 'order.note_added') AS unacked \gset
CREATE FUNCTION public.st_greedy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 THEN
        DELETE FROM order_mgmt.events WHERE seq <> OLD.seq;
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER st_greedy BEFORE DELETE ON events FOR EACH ROW EXECUTE FUNCTION public.st_greedy();
SELECT pg_temp.state() AS before \gset
SELECT throws_ok($$SELECT order_mgmt.purge_events('0')$$, 'OM003', NULL,
                 'a DELETE inside a purge cannot take an unacknowledged event');
SELECT is(pg_temp.state(), :'before', '... the whole purge is undone');
DROP TRIGGER st_greedy ON events;
DROP FUNCTION public.st_greedy();
SELECT throws_ok($$SELECT purge_events(NULL)$$, '22004', NULL, 'purge_events: null');
SELECT throws_ok($$SELECT purge_events('-1 second')$$, '22023', NULL, 'purge_events: negative age');
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ;
SELECT throws_ok($$SELECT order_mgmt.purge_events('0')$$, '25000', NULL,
                 'purge_events refuses REPEATABLE READ (it could miss a new consumer)');
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED;
SELECT is(pg_temp.state(), :'before', 'nothing changed');
SELECT lives_ok($$SELECT drop_consumer('st_a')$$, 'drop st_a');
SELECT lives_ok($$SELECT drop_consumer('st_b')$$, 'drop st_b');
SELECT is(purge_events('0'), (SELECT count(*) FROM events), 'without consumers every event older than the cut-off goes');
SELECT is((SELECT count(*) FROM events), 0::bigint, '... the log is empty');
SELECT emit_event(:o, 'order', :o, 'order.note_added') AS after_purge \gset
SELECT results_eq($$SELECT seq FROM fetch_events('st_d')$$, ARRAY[:after_purge::bigint],
                  'a consumer registered after a purge starts from the oldest retained event');

------------------------------------------------------------------------
-- the operator consumes (what each role may not do: security.sql)
------------------------------------------------------------------------
SET ROLE st_op;
SELECT is((SELECT count(*) FROM order_mgmt.fetch_events('st_op')), 1::bigint, 'an operator fetches');
SELECT is((SELECT order_mgmt.ack_events('st_op', tx, seq) FROM order_mgmt.fetch_events('st_op')), true,
          'an operator acknowledges');
SELECT lives_ok($$SELECT * FROM order_mgmt.consumer_lag$$, 'an operator reads consumer_lag');
RESET ROLE;

------------------------------------------------------------------------
-- notify_mode = relay needs the preloaded library (this cluster has none)
------------------------------------------------------------------------
SELECT throws_ok($$SET order_mgmt.notify_mode = relay$$, '55000',
                 'order_mgmt.notify_mode "relay" needs order_mgmt in shared_preload_libraries',
                 'relay mode is refused without shared_preload_libraries');
SELECT is(current_setting('order_mgmt.notify_mode'), 'commit', '... and the mode is unchanged');
SELECT throws_ok($$ALTER ROLE st_op SET order_mgmt.notify_mode = relay$$, '55000', NULL,
                 '... also as a role setting');
SELECT is((SELECT count(*) FROM pg_db_role_setting WHERE setrole = 'st_op'::regrole), 0::bigint,
          '... nothing stored');

SELECT * FROM finish();
\c postgres
SET client_min_messages = warning;
DROP DATABASE om_tap_stream;
DROP ROLE st_op;
