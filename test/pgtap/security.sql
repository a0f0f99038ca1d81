-- Least privilege, role by role (issue 14): a role with no grant sees
-- nothing; order_mgmt_reader reads the views and nothing else (of the event
-- stream: the lag, never an event; of the BI views, every one, and only
-- the functions they call); order_mgmt_operator calls the API
-- (also fetch and ack) and cannot write a table, edit the graph, disable a
-- trigger, drop a consumer or purge events; every SECURITY DEFINER function pins
-- search_path, and functions or operators a caller puts first on its
-- search_path are never called by the API.
BEGIN;
SELECT plan(38);

CREATE ROLE sec_nobody NOLOGIN;
CREATE ROLE sec_reader NOLOGIN IN ROLE order_mgmt_reader;
CREATE ROLE sec_op NOLOGIN IN ROLE order_mgmt_operator;
INSERT INTO order_mgmt.customers (customer_id, name, payment_terms, credit_limit)
    VALUES ('SEC', 's', 'credit', 1000);
INSERT INTO order_mgmt.products (sku, name, list_price) VALUES ('SEC-A', 'a', 2);
INSERT INTO order_mgmt.warehouses (warehouse_id, name) VALUES ('SEC-W', 'w');
SELECT order_mgmt.receive_stock('SEC-W', 'SEC-A', 10) AS _ \gset
SELECT order_mgmt.place_order('SEC', '[{"sku": "SEC-A", "qty": 1}]', '{"country": "DE"}') AS o \gset
-- apply the stock now, so that later commit-time applications find (and
-- compare against) an existing stock row
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;

-- a role with no grant
SET ROLE sec_nobody;
SELECT throws_ok('SELECT count(*) FROM order_mgmt.orders', '42501', NULL, 'nobody: no table');
SELECT throws_ok('SELECT count(*) FROM order_mgmt.orders_at_risk', '42501', NULL, 'nobody: no view');
SELECT throws_ok($$SELECT order_mgmt.place_order('SEC', '[]', '{}')$$, '42501', NULL, 'nobody: no API');
RESET ROLE;

-- the reader
SET ROLE sec_reader;
SELECT lives_ok('SELECT count(*) FROM order_mgmt.orders_at_risk', 'reader: reads the at-risk view');
SELECT throws_ok('SELECT count(*) FROM order_mgmt.orders', '42501', NULL, 'reader: no table');
SELECT throws_ok('SELECT count(*) FROM order_mgmt.events', '42501', NULL, 'reader: not the event log');
SELECT throws_ok(format('SELECT * FROM order_mgmt.estimate_order_delivery(%s)', :o), '42501', NULL,
                 'reader: no function that reads one order as the owner');
SELECT throws_ok(format('SELECT order_mgmt.confirm_order(%s)', :o), '42501', NULL, 'reader: no API');
SELECT lives_ok('SELECT count(*) FROM order_mgmt.consumer_lag', 'reader: reads the lag of the consumers');
SELECT throws_ok($$SELECT * FROM order_mgmt.fetch_events('sec-reader')$$, '42501', NULL,
                 'reader: cannot fetch events');
SELECT throws_ok('SELECT count(*) FROM order_mgmt.consumers', '42501', NULL, 'reader: not the cursors');
SELECT lives_ok($$SELECT (SELECT count(*) FROM order_mgmt.event_log) + (SELECT count(*) FROM order_mgmt.order_facts)
                       + (SELECT count(*) FROM order_mgmt.kpi_daily) + (SELECT count(*) FROM order_mgmt.process_steps)
                       + (SELECT count(*) FROM order_mgmt.process_variants) + (SELECT count(*) FROM order_mgmt.process_dfg)
                       + (SELECT count(*) FROM order_mgmt.process_traces)
                       + (SELECT count(*) FROM order_mgmt.open_order_risk)
                       + (SELECT count(*) FROM order_mgmt.inventory_availability)
                       + (SELECT count(*) FROM order_mgmt.order_zones) + (SELECT count(*) FROM order_mgmt.bi_config),
                       length(order_mgmt.process_map_dot()), order_mgmt.export_xes()$$,
                'reader: reads every BI view, draws the process map and exports XES');
SELECT throws_ok($$INSERT INTO order_mgmt.bi_settings (stuck_after) VALUES ('1 hour')$$, '42501', NULL,
                 'reader: cannot change the BI settings');
RESET ROLE;
-- exactly the functions the views call (and the BI functions), nothing that
-- writes or reads the tables as their owner (consumer_backlog, which
-- consumer_lag calls, reads the log as its owner but returns the counts and
-- times the view shows, no event)
SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'order_mgmt'::regnamespace
         AND has_function_privilege('order_mgmt_reader', p.oid, 'EXECUTE')$$,
    ARRAY['order_mgmt.status_class(text,text)', 'order_mgmt.current_actor()',
          'order_mgmt.status_in_class(text,text,text[])',
          'order_mgmt.class_entered(text,text,text,text[])',
          'order_mgmt.estimate_order_window(order_mgmt.orders,order_mgmt.order_lines[])',
          'order_mgmt.is_manual_event(boolean,text,text[])',
          'order_mgmt.order_in_flight(text)', 'order_mgmt.shipment_window_counts(text)',
          'order_mgmt.own_estimate_due(text,bigint,bigint)',
          'order_mgmt.current_window_bound(date,date,boolean)',
          'order_mgmt.event_facts(text,bigint,text,text,timestamp with time zone,boolean,text,text[])',
          'order_mgmt.is_process_step(text,text)',
          'order_mgmt.case_path(text,timestamp with time zone,bigint)',
          'order_mgmt.case_trace(text,timestamp with time zone,bigint)',
          'order_mgmt.dfg_bins(bytea)',
          'order_mgmt.process_dfg(timestamp with time zone,timestamp with time zone)',
          'order_mgmt.process_map_dot(timestamp with time zone,timestamp with time zone)',
          'order_mgmt.export_xes(timestamp with time zone,timestamp with time zone)',
          'order_mgmt.consumer_backlog(text)'],
    'reader: may run exactly the functions the views call and the BI functions');

-- the operator
SET ROLE sec_op;
SELECT lives_ok(format('SELECT order_mgmt.confirm_order(%s)', :o), 'operator: calls the API');
SELECT throws_ok(format('UPDATE order_mgmt.orders SET total = 0 WHERE order_id = %s', :o), '42501', NULL,
                 'operator: cannot update orders');
SELECT throws_ok(format('DELETE FROM order_mgmt.order_lines WHERE order_id = %s', :o), '42501', NULL,
                 'operator: cannot delete lines');
SELECT throws_ok($$INSERT INTO order_mgmt.payments (order_id, kind, amount, psp_reference, actor)
                   VALUES (1, 'capture', 1, 'x', 'me')$$, '42501', NULL, 'operator: cannot insert payments');
SELECT throws_ok($$UPDATE order_mgmt.stock_levels SET on_hand = 0$$, '42501', NULL,
                 'operator: cannot write stock');
SELECT throws_ok($$INSERT INTO order_mgmt.transitions (entity, from_status, to_status, activity)
                   VALUES ('order', 'placed', 'delivered', 'teleported')$$, '42501', NULL,
                 'operator: cannot edit the graph');
SELECT throws_ok($$UPDATE order_mgmt.statuses SET class = 'open'$$, '42501', NULL,
                 'operator: cannot change what a status means');
SELECT throws_ok('ALTER TABLE order_mgmt.orders DISABLE TRIGGER order_mgmt_lifecycle', '42501', NULL,
                 'operator: cannot disable a trigger');
SELECT throws_ok('SELECT order_mgmt.emit_event(1, $$order$$, 1, $$order.forged$$)', '42501', NULL,
                 'operator: cannot forge events');
SELECT throws_ok('SELECT order_mgmt.credit_add($$SEC$$, -1000)', '42501', NULL,
                 'operator: cannot call internal helpers');
SELECT throws_ok('SELECT order_mgmt.note_order_locked(1)', '42501', NULL,
                 'operator: cannot declare an order locked without locking it (0.12.0)');
SELECT lives_ok($$SELECT count(*) FROM order_mgmt.fetch_events('sec-op')$$, 'operator: fetches events');
SELECT throws_ok($$SELECT order_mgmt.purge_events('0')$$, '42501', NULL, 'operator: cannot purge events');
SELECT throws_ok($$SELECT order_mgmt.drop_consumer('sec-op')$$, '42501', NULL,
                 'operator: cannot drop a consumer');
SELECT throws_ok('DELETE FROM order_mgmt.events', '42501', NULL, 'operator: cannot delete events');
SELECT throws_ok($$UPDATE order_mgmt.consumers SET acked_seq = 0$$, '42501', NULL,
                 'operator: cannot move a cursor by hand');
SELECT throws_ok('SELECT order_mgmt.delivery_horizon()', '42501', NULL,
                 'operator: cannot call the stream''s internal helpers');
SELECT throws_ok($$UPDATE order_mgmt.bi_settings SET stuck_after = '1 hour'$$, '42501', NULL,
                 'operator: cannot change the BI settings');
RESET ROLE;

-- SECURITY DEFINER functions pin search_path
SELECT is((SELECT count(*) FROM pg_proc p
            WHERE p.pronamespace = 'order_mgmt'::regnamespace AND p.prosecdef
              AND NOT coalesce(p.proconfig @> '{"search_path=pg_catalog, pg_temp"}', false)),
          0::bigint, 'every SECURITY DEFINER function has SET search_path = pg_catalog, pg_temp');

-- a hostile schema first on the caller's search_path is never used
CREATE SCHEMA sec_evil;
GRANT USAGE ON SCHEMA sec_evil TO PUBLIC;
CREATE TABLE sec_evil.calls (what text);
GRANT INSERT ON sec_evil.calls TO PUBLIC;
CREATE FUNCTION sec_evil.note(what text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO sec_evil.calls VALUES (what) $$;
CREATE FUNCTION sec_evil.length(t text) RETURNS int LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sec_evil.note('length'); RETURN 0; END $$;
CREATE FUNCTION sec_evil.upper(t text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sec_evil.note('upper'); RETURN t; END $$;
CREATE FUNCTION sec_evil.now() RETURNS timestamptz LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sec_evil.note('now'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION sec_evil.md5(t text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sec_evil.note('md5'); RETURN 'x'; END $$;
CREATE FUNCTION sec_evil.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sec_evil.note('='); RETURN pg_catalog.texteq(a, b); END $$;
CREATE OPERATOR sec_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = sec_evil.texteq);
CREATE FUNCTION sec_evil.int4gt(a int, b int) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sec_evil.note('>'); RETURN pg_catalog.int4gt(a, b); END $$;
CREATE OPERATOR sec_evil.> (LEFTARG = int, RIGHTARG = int, FUNCTION = sec_evil.int4gt);
-- what purge_events' DELETE compares (the cut-off and the slowest cursor)
CREATE FUNCTION sec_evil.timestamptz_lt(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sec_evil.note('<'); RETURN pg_catalog.timestamptz_lt(a, b); END $$;
CREATE OPERATOR sec_evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz,
                            FUNCTION = sec_evil.timestamptz_lt);
CREATE FUNCTION sec_evil.xid8le(a xid8, b xid8) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sec_evil.note('<='); RETURN pg_catalog.xid8le(a, b); END $$;
CREATE OPERATOR sec_evil.<= (LEFTARG = xid8, RIGHTARG = xid8, FUNCTION = sec_evil.xid8le);
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA sec_evil TO PUBLIC;
-- (plain statements: pgTAP's own functions do not pin search_path)
SET ROLE sec_op;
SET search_path = sec_evil, pg_catalog, public;
SELECT order_mgmt.confirm_order(order_mgmt.place_order('SEC', '[{"sku": "SEC-A", "qty": 2}]',
       '{"country": "DE"}', external_ref => 'SEC-1')) AS confirmed \gset
SELECT order_mgmt.receive_stock('SEC-W', 'SEC-A', 5, 'hostile path') AS _ \gset
SELECT order_mgmt.cancel_order(:o, 'hostile path') AS _ \gset
SELECT order_mgmt.set_status('order', order_id, 'processing') AS _
  FROM order_mgmt.orders WHERE external_ref OPERATOR(pg_catalog.=) 'SEC-1' \gset
SELECT count(*) AS _ FROM order_mgmt.fetch_events('sec-op') \gset
-- run the commit-time stock application (and its last look at waiting
-- demand) now, still under the hostile path
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
RESET ROLE;
-- purge_events (the owner's) runs its DELETE from C: also under that path,
-- with an old event to compare and a cursor that keeps it
INSERT INTO order_mgmt.events (order_id, entity, entity_id, event_type, actor, occurred_at)
    VALUES (:o, 'order', :o, 'order.note_added', 'sec', '2000-01-01');
SELECT order_mgmt.purge_events('1 day') AS purged \gset
RESET search_path;
SELECT is(:'confirmed'::text, 'confirmed', 'place and confirm worked under a hostile search_path');
SELECT is((SELECT string_agg(status, ',' ORDER BY order_id) FROM order_mgmt.orders WHERE customer_id = 'SEC'),
          'cancelled,processing', 'cancel_order and set_status did their work under it');
SELECT is((SELECT on_hand || '/' || reserved FROM order_mgmt.stock WHERE sku = 'SEC-A'), '15/2',
          'receive_stock and the releases did theirs');
SELECT is(:'purged'::bigint, 0::bigint, 'purge_events kept the event the consumer has not read');
SELECT is((SELECT string_agg(DISTINCT what, ',') FROM sec_evil.calls), NULL,
          'no function or operator of the hostile schema was called');

SELECT * FROM finish();
ROLLBACK;
