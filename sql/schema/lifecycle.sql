-- Lifecycle graphs: the seed statuses with their classes and the seed
-- edges, the C lifecycle trigger, the cache invalidation of the graph, and
-- set_status.

-- What each status means.  The classes (tables.sql lists them per entity):
--   order:    pending (not yet confirmed), held, open (confirmed, not
--             shipped), shipping (goods have left), delivered, completed,
--             cancelled (also rejected);
--   shipment: preparing, in_transit, delivered, failed, cancelled;
--   return:   open, completed, cancelled.
INSERT INTO @extschema@.statuses (entity, status, class, is_seed)
SELECT e, s, c, true
FROM (VALUES
    ('order', 'placed', 'pending'), ('order', 'awaiting_payment', 'pending'),
    ('order', 'on_hold', 'held'), ('order', 'confirmed', 'open'),
    ('order', 'processing', 'open'), ('order', 'partially_shipped', 'shipping'),
    ('order', 'shipped', 'shipping'), ('order', 'delivered', 'delivered'),
    ('order', 'completed', 'completed'), ('order', 'rejected', 'cancelled'),
    ('order', 'cancelled', 'cancelled'),
    ('shipment', 'pending', 'preparing'), ('shipment', 'picking', 'preparing'),
    ('shipment', 'packed', 'preparing'), ('shipment', 'labelled', 'preparing'),
    ('shipment', 'dispatched', 'in_transit'), ('shipment', 'in_transit', 'in_transit'),
    ('shipment', 'out_for_delivery', 'in_transit'), ('shipment', 'delayed', 'in_transit'),
    ('shipment', 'failed_attempt', 'in_transit'), ('shipment', 'delivered', 'delivered'),
    ('shipment', 'returned_to_sender', 'failed'), ('shipment', 'lost', 'failed'),
    ('shipment', 'cancelled', 'cancelled'),
    ('return', 'requested', 'open'), ('return', 'approved', 'open'),
    ('return', 'received', 'open'), ('return', 'inspected', 'open'),
    ('return', 'completed', 'completed'), ('return', 'rejected', 'cancelled'),
    ('return', 'cancelled', 'cancelled')
) AS seed(e, s, c);

INSERT INTO @extschema@.transitions (entity, from_status, to_status, activity, requires, is_seed)
SELECT e, f, t, a, r::text[], true
FROM (VALUES
    ('order', 'placed',            'awaiting_payment',  'awaiting_payment',  '{}'),
    ('order', 'placed',            'confirmed',         'confirmed',         '{}'),
    ('order', 'placed',            'on_hold',           'held',              '{}'),
    ('order', 'placed',            'rejected',          'rejected',          '{}'),
    ('order', 'placed',            'cancelled',         'cancelled',         '{}'),
    ('order', 'awaiting_payment',  'confirmed',         'confirmed',         '{}'),
    ('order', 'awaiting_payment',  'on_hold',           'held',              '{}'),
    ('order', 'awaiting_payment',  'cancelled',         'cancelled',         '{}'),
    ('order', 'confirmed',         'processing',        'released',          '{}'),
    ('order', 'confirmed',         'on_hold',           'held',              '{}'),
    ('order', 'confirmed',         'cancelled',         'cancelled',         '{}'),
    ('order', 'processing',        'partially_shipped', 'partially_shipped', '{}'),
    ('order', 'processing',        'shipped',           'shipped',           '{}'),
    ('order', 'processing',        'on_hold',           'held',              '{}'),
    ('order', 'processing',        'cancelled',         'cancelled',         '{}'),
    ('order', 'partially_shipped', 'shipped',           'shipped',           '{}'),
    ('order', 'shipped',           'delivered',         'delivered',         '{}'),
    ('order', 'delivered',         'completed',         'completed',         '{}'),
    ('order', 'on_hold',           'cancelled',         'cancelled',         '{}'),
    ('shipment', 'pending',          'picking',            'picking_started',    '{}'),
    ('shipment', 'picking',          'packed',             'packed',
        '{weight_g,length_mm,width_mm,height_mm}'),
    ('shipment', 'packed',           'labelled',           'labelled',
        '{carrier,service_id,tracking_number}'),
    ('shipment', 'labelled',         'dispatched',         'dispatched',
        '{carrier,service_id,tracking_number}'),
    ('shipment', 'dispatched',       'in_transit',         'in_transit',         '{}'),
    ('shipment', 'in_transit',       'out_for_delivery',   'out_for_delivery',   '{}'),
    ('shipment', 'out_for_delivery', 'delivered',          'delivered',          '{}'),
    ('shipment', 'in_transit',       'delayed',            'delayed',            '{}'),
    ('shipment', 'in_transit',       'failed_attempt',     'failed_attempt',     '{}'),
    ('shipment', 'out_for_delivery', 'delayed',            'delayed',            '{}'),
    ('shipment', 'out_for_delivery', 'failed_attempt',     'failed_attempt',     '{}'),
    ('shipment', 'delayed',          'in_transit',         'in_transit',         '{}'),
    ('shipment', 'failed_attempt',   'in_transit',         'in_transit',         '{}'),
    ('shipment', 'in_transit',       'returned_to_sender', 'returned_to_sender', '{}'),
    ('shipment', 'out_for_delivery', 'returned_to_sender', 'returned_to_sender', '{}'),
    ('shipment', 'delayed',          'returned_to_sender', 'returned_to_sender', '{}'),
    ('shipment', 'failed_attempt',   'returned_to_sender', 'returned_to_sender', '{}'),
    ('shipment', 'in_transit',       'lost',               'lost',               '{}'),
    ('shipment', 'out_for_delivery', 'lost',               'lost',               '{}'),
    ('shipment', 'delayed',          'lost',               'lost',               '{}'),
    ('shipment', 'failed_attempt',   'lost',               'lost',               '{}'),
    ('shipment', 'pending',          'cancelled',          'cancelled',          '{}'),
    ('shipment', 'picking',          'cancelled',          'cancelled',          '{}'),
    ('shipment', 'packed',           'cancelled',          'cancelled',          '{}'),
    ('shipment', 'labelled',         'cancelled',          'cancelled',          '{}'),
    ('return', 'requested', 'approved',  'approved',  '{}'),
    ('return', 'requested', 'rejected',  'rejected',  '{}'),
    ('return', 'requested', 'cancelled', 'cancelled', '{}'),
    ('return', 'approved',  'received',  'received',  '{received_at}'),
    ('return', 'approved',  'cancelled', 'cancelled', '{}'),
    ('return', 'received',  'inspected', 'inspected', '{inspected_at}'),
    ('return', 'inspected', 'completed', 'completed', '{resolved_at}')
) AS seed(e, f, t, a, r);

CREATE FUNCTION @extschema@.lifecycle_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'lifecycle_trigger';

CREATE TRIGGER order_mgmt_lifecycle BEFORE UPDATE OF status, held_from ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.lifecycle_trigger('order', 'order_id');

CREATE TRIGGER order_mgmt_lifecycle BEFORE UPDATE OF status ON @extschema@.shipments
    FOR EACH ROW EXECUTE FUNCTION @extschema@.lifecycle_trigger('shipment', 'shipment_id');

CREATE TRIGGER order_mgmt_lifecycle BEFORE UPDATE OF status ON @extschema@.returns
    FOR EACH ROW EXECUTE FUNCTION @extschema@.lifecycle_trigger('return', 'return_id');

-- Statement triggers on the tables a per-backend cache is built from
-- (these two, and the reference data of the promise): a change reaches
-- every session's cache at its next lookup.
CREATE FUNCTION @extschema@.invalidate_cache() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'invalidate_cache';

CREATE TRIGGER order_mgmt_transitions_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.transitions
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();

CREATE TRIGGER order_mgmt_statuses_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.statuses
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();

-- statuses.class of a status (null when unknown), from the cache.
CREATE FUNCTION @extschema@.status_class(entity text, status text) RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'status_class';

-- Trigger conditions on a status move (src/lifecycle.c; the same tests as
-- status_class calls, at the cost of one call: PostgreSQL plans a
-- trigger's WHEN expression again for every statement).  Is the class of
-- status one of classes; does a move enter one of classes from another
-- class (or from a status without one).
CREATE FUNCTION @extschema@.status_in_class(entity text, status text, classes text[])
RETURNS boolean
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'status_in_class';
CREATE FUNCTION @extschema@.class_entered(entity text, old_status text, new_status text,
                                          classes text[])
RETURNS boolean
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'class_entered';

-- The statuses of a class (from the same cache), for UPDATEs that test a
-- column: Citus plans no UPDATE whose WHERE calls status_class on one.
CREATE FUNCTION @extschema@.statuses_of_class(entity text, class text) RETURNS text[]
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'statuses_of_class';

-- OM006 when goods of the order have left the building (the one home of
-- that rule; the lifecycle trigger calls it on entering a cancelled class).
CREATE FUNCTION @extschema@.check_not_dispatched(p_order bigint) RETURNS void
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'check_not_dispatched';

CREATE FUNCTION @extschema@.set_status(
    entity text, id bigint, to_status text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_saved text := current_setting('order_mgmt.reason', true);
    v_order bigint;
BEGIN
    IF entity IS NULL OR id IS NULL OR to_status IS NULL THEN
        RAISE EXCEPTION 'entity, id and to_status must not be null' USING ERRCODE = '22004';
    END IF;
    IF entity NOT IN ('order', 'shipment', 'return') THEN
        RAISE EXCEPTION 'unknown entity "%"', entity
            USING ERRCODE = '22023', DETAIL = 'entity must be order, shipment or return.';
    END IF;
    -- on Citus: the order of the row is armed (its stock and credit
    -- effects are applied at commit)
    IF @extschema@.citus_active() THEN
        IF entity = 'order' THEN
            SELECT x.order_id INTO v_order FROM @extschema@.orders x WHERE x.order_id = id;
        ELSIF entity = 'shipment' THEN
            SELECT x.order_id INTO v_order FROM @extschema@.shipments x WHERE x.shipment_id = id;
        ELSE
            SELECT x.order_id INTO v_order FROM @extschema@.returns x WHERE x.return_id = id;
        END IF;
        IF v_order IS NULL THEN
            RAISE EXCEPTION '% % does not exist', entity, id USING ERRCODE = 'OM004';
        END IF;
        PERFORM @extschema@.citus_arm(v_order);
    END IF;
    PERFORM @extschema@.set_reason(coalesce(reason, v_saved));
    CASE entity
    WHEN 'order' THEN
        UPDATE @extschema@.orders SET status = to_status WHERE order_id = id;
    WHEN 'shipment' THEN
        UPDATE @extschema@.shipments SET status = to_status WHERE shipment_id = id;
    ELSE
        UPDATE @extschema@.returns SET status = to_status WHERE return_id = id;
    END CASE;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% % does not exist', entity, id USING ERRCODE = 'OM004';
    END IF;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;
