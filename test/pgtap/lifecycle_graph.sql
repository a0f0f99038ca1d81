-- Every edge of the three lifecycle graphs, legal and illegal, through a
-- direct UPDATE: legal ones write exactly one event, illegal ones fail with
-- OM001 (OM002 where a requirement is missing) and change nothing.
BEGIN;
SELECT plan(12);

INSERT INTO order_mgmt.customers (customer_id, name) VALUES ('T-C', 'Tap');
INSERT INTO order_mgmt.warehouses (warehouse_id, name) VALUES ('T-W', 'Tap');
INSERT INTO order_mgmt.products (sku, name) VALUES ('T-P', 'Tap');

-- The seed graph is the one SPEC.md section 3 describes.
SELECT set_eq(
    $$SELECT entity, from_status, to_status FROM order_mgmt.transitions WHERE is_seed$$,
    $$VALUES
      ('order','placed','awaiting_payment'), ('order','placed','confirmed'), ('order','placed','on_hold'),
      ('order','placed','rejected'), ('order','placed','cancelled'),
      ('order','awaiting_payment','confirmed'), ('order','awaiting_payment','on_hold'),
      ('order','awaiting_payment','cancelled'),
      ('order','confirmed','processing'), ('order','confirmed','on_hold'), ('order','confirmed','cancelled'),
      ('order','processing','partially_shipped'), ('order','processing','shipped'),
      ('order','processing','on_hold'), ('order','processing','cancelled'),
      ('order','partially_shipped','shipped'), ('order','shipped','delivered'),
      ('order','delivered','completed'), ('order','on_hold','cancelled'),
      ('shipment','pending','picking'), ('shipment','picking','packed'), ('shipment','packed','labelled'),
      ('shipment','labelled','dispatched'), ('shipment','dispatched','in_transit'),
      ('shipment','in_transit','out_for_delivery'), ('shipment','out_for_delivery','delivered'),
      ('shipment','in_transit','delayed'), ('shipment','in_transit','failed_attempt'),
      ('shipment','out_for_delivery','delayed'), ('shipment','out_for_delivery','failed_attempt'),
      ('shipment','delayed','in_transit'), ('shipment','failed_attempt','in_transit'),
      ('shipment','in_transit','returned_to_sender'), ('shipment','out_for_delivery','returned_to_sender'),
      ('shipment','delayed','returned_to_sender'), ('shipment','failed_attempt','returned_to_sender'),
      ('shipment','in_transit','lost'), ('shipment','out_for_delivery','lost'),
      ('shipment','delayed','lost'), ('shipment','failed_attempt','lost'),
      ('shipment','pending','cancelled'), ('shipment','picking','cancelled'),
      ('shipment','packed','cancelled'), ('shipment','labelled','cancelled'),
      ('return','requested','approved'), ('return','requested','rejected'), ('return','requested','cancelled'),
      ('return','approved','received'), ('return','approved','cancelled'),
      ('return','received','inspected'), ('return','inspected','completed')$$,
    'the seed transitions are the graphs of the contract');

-- Try one move on a fresh row; returns 'ok' (with exactly one matching event
-- and the row moved) or the SQLSTATE, after checking the failure changed nothing.
CREATE FUNCTION pg_temp.try_move(p_entity text, p_from text, p_to text, p_complete bool)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_order bigint;
    v_id bigint;
    v_events bigint;
    v_now text;
    v_state text;
BEGIN
    INSERT INTO order_mgmt.orders (customer_id, currency, ship_to, ship_to_country, status, held_from)
    VALUES ('T-C', 'EUR', '{}', 'DE',
            CASE WHEN p_entity = 'order' THEN p_from ELSE 'processing' END,
            CASE WHEN p_entity = 'order' AND p_from = 'on_hold' THEN 'confirmed' END)
    RETURNING order_id INTO v_order;
    v_id := v_order;
    -- (0.5.0) an order entering a shipping or delivered status has lines
    -- that agree with it (the lifecycle trigger checks them, OM030)
    IF p_entity = 'order' THEN
        INSERT INTO order_mgmt.order_lines (order_id, line_no, sku, qty, unit_price, qty_shipped,
                                            qty_delivered)
        VALUES (v_order, 1, 'T-P', 2, 1,
                CASE p_to WHEN 'partially_shipped' THEN 1 WHEN 'shipped' THEN 2 WHEN 'delivered' THEN 2
                          WHEN 'completed' THEN 2 ELSE 0 END,
                CASE WHEN p_to IN ('delivered', 'completed') THEN 2 ELSE 0 END);
    END IF;
    IF p_entity = 'shipment' THEN
        INSERT INTO order_mgmt.shipments (order_id, warehouse_id, status, weight_g, length_mm, width_mm,
                                          height_mm, carrier, service_id, tracking_number)
        SELECT v_order, 'T-W', p_from, w, w, w, w, c, c, c || v_order
          FROM (SELECT CASE WHEN p_complete THEN 1 END AS w, CASE WHEN p_complete THEN 'X' END AS c) x
        RETURNING shipment_id INTO v_id;
    ELSIF p_entity = 'return' THEN
        -- (0.6.0) the edges into received, inspected and completed require
        -- the timestamps the post-sales API sets
        INSERT INTO order_mgmt.returns (order_id, status, received_at, inspected_at, resolved_at)
        SELECT v_order, p_from, t, t, t
          FROM (SELECT CASE WHEN p_complete THEN now() END AS t) x
        RETURNING return_id INTO v_id;
    END IF;
    SELECT count(*) INTO v_events FROM order_mgmt.events;
    BEGIN
        PERFORM order_mgmt.set_status(p_entity, v_id, p_to);
    EXCEPTION WHEN OTHERS THEN
        v_state := SQLSTATE;
    END;
    EXECUTE format('SELECT status FROM order_mgmt.%I WHERE %I = $1',
                   CASE p_entity WHEN 'order' THEN 'orders' WHEN 'shipment' THEN 'shipments' ELSE 'returns' END,
                   p_entity || '_id') INTO v_now USING v_id;
    IF v_state IS NOT NULL THEN
        IF v_now <> p_from OR (SELECT count(*) FROM order_mgmt.events) <> v_events THEN
            RETURN v_state || ' but something changed';
        END IF;
        RETURN v_state;
    END IF;
    IF v_now <> p_to OR (SELECT count(*) FROM order_mgmt.events
                          WHERE entity = p_entity AND entity_id = v_id AND from_status = p_from
                            AND to_status = p_to) <> 1
       OR (SELECT count(*) FROM order_mgmt.events) <> v_events + 1 THEN
        RETURN 'moved without exactly one event';
    END IF;
    RETURN 'ok';
END;
$$;

CREATE TEMP TABLE states(entity text, status text);
INSERT INTO states
SELECT DISTINCT entity, from_status FROM order_mgmt.transitions
UNION SELECT DISTINCT entity, to_status FROM order_mgmt.transitions;

CREATE TEMP TABLE legal AS
SELECT entity, from_status, to_status FROM order_mgmt.transitions
UNION ALL SELECT 'order', 'on_hold', 'confirmed';   -- back to held_from

SELECT is(count(*), 52::bigint, '52 legal moves: 51 edges and leaving a hold') FROM legal;
SELECT is(count(*), 256::bigint, '256 illegal pairs of statuses')
  FROM states a JOIN states b USING (entity)
 WHERE a.status <> b.status AND (entity, a.status, b.status) NOT IN (SELECT * FROM legal);

SELECT is(count(*), 0::bigint, 'every legal edge moves the row and writes exactly one event')
  FROM legal l, LATERAL pg_temp.try_move(l.entity, l.from_status, l.to_status, true) r
 WHERE r <> 'ok';

SELECT is(count(*), 0::bigint, 'every other pair of statuses fails with OM001 and changes nothing')
  FROM states a JOIN states b USING (entity),
       LATERAL pg_temp.try_move(entity, a.status, b.status, true) r
 WHERE a.status <> b.status
   AND (entity, a.status, b.status) NOT IN (SELECT * FROM legal)
   AND r <> 'OM001';

SELECT is(pg_temp.try_move('order', 'on_hold', 'processing', true), 'OM001',
          'a hold held from confirmed cannot be left for processing');
SELECT is(pg_temp.try_move('shipment', 'picking', 'packed', false), 'OM002',
          'packed without weight and dimensions fails with OM002');
SELECT is(pg_temp.try_move('shipment', 'packed', 'labelled', false), 'OM002',
          'labelled without carrier, service and tracking number fails with OM002');
SELECT is(pg_temp.try_move('return', 'approved', 'received', false) || pg_temp.try_move('return', 'received', 'inspected', false)
          || pg_temp.try_move('return', 'inspected', 'completed', false), 'OM002OM002OM002',
          'a return is received, inspected and completed only by the API, which sets their timestamps (OM002)');

SELECT set_eq($$SELECT status FROM states WHERE entity = 'order'
               EXCEPT SELECT from_status FROM order_mgmt.transitions WHERE entity = 'order'$$,
              ARRAY['completed', 'rejected', 'cancelled'],
              'order final states');
SELECT set_eq($$SELECT status FROM states WHERE entity = 'shipment'
               EXCEPT SELECT from_status FROM order_mgmt.transitions WHERE entity = 'shipment'$$,
              ARRAY['delivered', 'returned_to_sender', 'lost', 'cancelled'],
              'shipment final states');
SELECT set_eq($$SELECT status FROM states WHERE entity = 'return'
               EXCEPT SELECT from_status FROM order_mgmt.transitions WHERE entity = 'return'$$,
              ARRAY['rejected', 'cancelled', 'completed'],
              'return final states');

SELECT * FROM finish();
ROLLBACK;
