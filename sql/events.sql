-- The event log: append-only, emit_event validation, event columns.
\set VERBOSITY default
\set SHOW_CONTEXT never
\i test/fixtures/base.sql

SELECT order_mgmt.place_order('C-CREDIT', '[{"sku": "A-1", "qty": 1}]', '{"country": "DE"}') AS o1 \gset
SELECT order_mgmt.emit_event(:o1, 'order', :o1, 'order.note_added', reason => 'called customer',
                             payload => '{"note": "prefers mornings"}') > 0 AS emitted;
SELECT event_type, from_status, to_status, reason, payload, actor, automated,
       event_id IS NOT NULL AS has_id,
       occurred_at <= clock_timestamp() AS in_past
  FROM order_mgmt.events WHERE order_id = :o1 ORDER BY seq;

-- events of one transaction share its tx; seq grows; event_id is unique
BEGIN;
SELECT order_mgmt.emit_event(:o1, 'order', :o1, 'order.note_added') AS seq_a \gset
SELECT order_mgmt.emit_event(:o1, 'order', :o1, 'order.note_added') AS seq_b \gset
SELECT count(DISTINCT tx) AS txs, bool_and(tx = pg_current_xact_id()) AS this_tx,
       :seq_b > :seq_a AS seq_grows
  FROM order_mgmt.events WHERE seq IN (:seq_a, :seq_b);
COMMIT;
SELECT count(*) = count(DISTINCT event_id) AS unique_ids,
       bool_and(seq > 0) AS positive_seq FROM order_mgmt.events;

-- append-only: UPDATE, DELETE and TRUNCATE fail with OM003
UPDATE order_mgmt.events SET reason = 'rewritten';
DELETE FROM order_mgmt.events;
TRUNCATE order_mgmt.events;
SELECT count(*) AS events, count(*) FILTER (WHERE reason = 'rewritten') AS rewritten
  FROM order_mgmt.events;

-- emit_event checks its arguments
SELECT order_mgmt.emit_event(NULL, 'order', 1, 'order.x');
SELECT order_mgmt.emit_event(:o1, 'order', :o1, NULL);
SELECT order_mgmt.emit_event(:o1, 'order', :o1, 'NotDotted');
SELECT order_mgmt.emit_event(:o1, 'order', :o1, 'order.' || repeat('x', 80));
SELECT order_mgmt.emit_event(:o1, 'order', :o1, 'order.x', repeat('s', 64));
SELECT order_mgmt.emit_event(:o1, 'order', :o1, 'order.x; DROP TABLE');

-- notify_mode accepts commit, relay (when preloaded: see test/pgtap/stream.sql) and off only
SET order_mgmt.notify_mode = 'sometimes';
SET order_mgmt.notify_mode = 'off';
SHOW order_mgmt.notify_mode;
RESET order_mgmt.notify_mode;
SHOW order_mgmt.notify_mode;
SET order_mgmt.no_such_setting = 1;
