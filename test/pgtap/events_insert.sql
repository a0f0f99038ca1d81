-- The event row is inserted directly (not through SPI): the table's
-- defaults, constraints and triggers still apply, a trigger on the log may
-- itself cause events (re-entry), and a changed table definition is picked
-- up in the same session.
BEGIN;
SELECT plan(7);
INSERT INTO order_mgmt.customers (customer_id, name) VALUES ('EV', 'Event tester');
INSERT INTO order_mgmt.products (sku, name, list_price) VALUES ('EV-1', 'Thing', 1);
SELECT order_mgmt.place_order('EV', '[{"sku": "EV-1", "qty": 1}]', '{"country": "DE"}') AS o \gset

-- a trigger on the log that moves the order when a note is added: re-entry
CREATE FUNCTION public.om_test_on_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_type = 'order.note_added' THEN
        UPDATE order_mgmt.orders SET status = 'confirmed' WHERE order_id = NEW.order_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER om_test_on_note AFTER INSERT ON order_mgmt.events
    FOR EACH ROW EXECUTE FUNCTION public.om_test_on_note();
SELECT order_mgmt.emit_event(:o, 'order', :o, 'order.note_added') AS note_seq \gset

SELECT results_eq(
    format($$SELECT event_type FROM order_mgmt.events WHERE order_id = %s ORDER BY seq$$, :o),
    ARRAY['order.placed', 'order.note_added', 'order.confirmed'],
    'a trigger on the log fired by one event may cause another');
SELECT is((SELECT seq FROM order_mgmt.events WHERE order_id = :o AND event_type = 'order.note_added'),
          :note_seq::bigint, 'emit_event returns the seq of its own row, not of the nested one');
SELECT is((SELECT count(DISTINCT event_id) FROM order_mgmt.events WHERE order_id = :o), 3::bigint,
          'every row has its own event_id');
SELECT is((SELECT status FROM order_mgmt.orders WHERE order_id = :o), 'confirmed',
          'the nested status change happened');
DROP TRIGGER om_test_on_note ON order_mgmt.events;

-- a new column with a default, in this session: the next event has it
ALTER TABLE order_mgmt.events ADD COLUMN om_test_source text DEFAULT 'from-default';
SELECT order_mgmt.emit_event(:o, 'order', :o, 'order.note_added') AS seq2 \gset
SELECT is((SELECT om_test_source FROM order_mgmt.events WHERE order_id = :o AND seq = :seq2),
          'from-default', 'a default added to the log applies to the next event');

-- the table's constraints apply
ALTER TABLE order_mgmt.events ADD CONSTRAINT om_test_no_notes CHECK (event_type <> 'order.note_added') NOT VALID;
SELECT throws_ok(format($$SELECT order_mgmt.emit_event(%s, 'order', %s, 'order.note_added')$$, :o, :o),
                 '23514', NULL, 'a CHECK constraint of the log is enforced');
SELECT lives_ok(format($$SELECT order_mgmt.emit_event(%s, 'order', %s, 'order.other_note')$$, :o, :o),
                'other events still pass');

SELECT * FROM finish();
ROLLBACK;
