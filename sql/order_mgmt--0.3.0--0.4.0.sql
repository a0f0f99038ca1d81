/* order_mgmt 0.3.0 -> 0.4.0: the rules engine (issues 7, 8, 9).
 * - status classes as data (statuses), read by every check; caches that
 *   answer as the committed tables do, in any isolation level; ids of any
 *   length; zone names from PostgreSQL's zone database only;
 * - events.db_role; no reservation left on an order in a final status;
 * - stock without locks held across calls (stock_levels, stock_pending, the
 *   view stock); credit exposure kept per customer (credit_accounts); the
 *   queue of waiting demand served whenever stock becomes available. */

\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit

------------------------------------------------------------------------
-- C entry points the new definitions use
------------------------------------------------------------------------
CREATE FUNCTION @extschema@.invalidate_cache() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'invalidate_cache';

CREATE FUNCTION @extschema@.status_class(entity text, status text) RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'status_class';

CREATE FUNCTION @extschema@.stock_reserve(
    p_warehouse text, p_sku text, p_kind text, p_on_hand int, p_reserved int,
    p_order bigint, p_line int, p_reason text)
RETURNS int
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'stock_reserve';

CREATE FUNCTION @extschema@.stock_available(warehouse_id text, sku text)
RETURNS int
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'stock_available';

CREATE FUNCTION @extschema@.stock_apply() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'stock_apply';

CREATE FUNCTION @extschema@.credit_exposure(customer_id text) RETURNS numeric
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'credit_exposure';

CREATE FUNCTION @extschema@.credit_add(customer_id text, delta numeric) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'credit_add';

CREATE OR REPLACE FUNCTION @extschema@.current_actor() RETURNS text
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'current_actor';

CREATE OR REPLACE FUNCTION @extschema@.check_not_dispatched(p_order bigint) RETURNS void
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'check_not_dispatched';

CREATE OR REPLACE FUNCTION @extschema@.stock_move(
    p_warehouse text, p_sku text, p_kind text, p_on_hand int, p_reserved int,
    p_order bigint, p_line int, p_reason text)
RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'stock_move';


------------------------------------------------------------------------
-- Status classes as data
------------------------------------------------------------------------
CREATE TABLE @extschema@.statuses (
    entity  text NOT NULL CHECK (entity IN ('order', 'shipment', 'return')),
    status  text NOT NULL CHECK (status <> '' AND length(status) < 64),
    class   text NOT NULL,
    is_seed boolean NOT NULL DEFAULT false,
    PRIMARY KEY (entity, status),
    CONSTRAINT statuses_class_check CHECK (
        entity = 'order' AND class IN ('pending', 'held', 'open', 'shipping', 'delivered',
                                       'completed', 'cancelled')
        OR entity = 'shipment' AND class IN ('preparing', 'in_transit', 'delivered', 'failed',
                                             'cancelled')
        OR entity = 'return' AND class IN ('open', 'completed', 'cancelled'))
);
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

-- Statuses of edges added by users get a neutral class; review them
-- (SELECT * FROM order_mgmt.statuses WHERE NOT is_seed).
INSERT INTO @extschema@.statuses (entity, status, class)
SELECT DISTINCT t.entity, s.status,
       CASE t.entity WHEN 'order' THEN 'open' WHEN 'shipment' THEN 'preparing' ELSE 'open' END
  FROM @extschema@.transitions t,
       LATERAL (VALUES (t.from_status), (t.to_status)) s(status)
 WHERE NOT EXISTS (SELECT 1 FROM @extschema@.statuses x
                    WHERE x.entity = t.entity AND x.status = s.status);
ALTER TABLE @extschema@.transitions
    ADD CONSTRAINT transitions_from_status_fkey FOREIGN KEY (entity, from_status)
        REFERENCES @extschema@.statuses,
    ADD CONSTRAINT transitions_to_status_fkey FOREIGN KEY (entity, to_status)
        REFERENCES @extschema@.statuses;

-- held_from follows the held class (lifecycle trigger), not one status name
ALTER TABLE @extschema@.orders DROP CONSTRAINT orders_check;

------------------------------------------------------------------------
-- Zone names: only names of PostgreSQL's zone database that are not fixed
-- offsets (valid_time_zone is stricter now); existing rows are checked
-- again, and the update fails on a POSIX zone such as 'UTC+3'.
------------------------------------------------------------------------
ALTER TABLE @extschema@.warehouses DROP CONSTRAINT warehouses_tz_valid,
    ADD CONSTRAINT warehouses_tz_valid CHECK (@extschema@.valid_time_zone(tz));
ALTER TABLE @extschema@.calendars DROP CONSTRAINT calendars_tz_check,
    ADD CONSTRAINT calendars_tz_check CHECK (@extschema@.valid_time_zone(tz));

------------------------------------------------------------------------
-- New columns
------------------------------------------------------------------------
ALTER TABLE @extschema@.orders
    ADD COLUMN credit_approved_at timestamptz,
    ADD COLUMN exposure numeric(14,2) NOT NULL DEFAULT 0,
    ADD COLUMN updated_at timestamptz;
ALTER TABLE @extschema@.events ADD COLUMN db_role text;
CREATE INDEX order_lines_waiting_idx ON @extschema@.order_lines (sku) WHERE qty_backordered > 0;

------------------------------------------------------------------------
-- Stock: the committed rows become stock_levels, changes are pending
-- until commit, stock is a view
------------------------------------------------------------------------
ALTER TABLE @extschema@.inventory_movements
    DROP CONSTRAINT inventory_movements_warehouse_id_sku_fkey,
    ADD CONSTRAINT inventory_movements_warehouse_id_fkey FOREIGN KEY (warehouse_id)
        REFERENCES @extschema@.warehouses,
    ADD CONSTRAINT inventory_movements_sku_fkey FOREIGN KEY (sku) REFERENCES @extschema@.products;
ALTER TABLE @extschema@.stock RENAME TO stock_levels;
ALTER TABLE @extschema@.stock_levels RENAME CONSTRAINT stock_pkey TO stock_levels_pkey;
ALTER TABLE @extschema@.stock_levels
    RENAME CONSTRAINT stock_warehouse_id_fkey TO stock_levels_warehouse_id_fkey;
ALTER TABLE @extschema@.stock_levels RENAME CONSTRAINT stock_sku_fkey TO stock_levels_sku_fkey;
ALTER TABLE @extschema@.stock_levels
    RENAME CONSTRAINT stock_on_hand_check TO stock_levels_on_hand_check;
ALTER TABLE @extschema@.stock_levels
    RENAME CONSTRAINT stock_reserved_check TO stock_levels_reserved_check;
ALTER TABLE @extschema@.stock_levels
    RENAME CONSTRAINT stock_reserved_le_on_hand TO stock_levels_reserved_le_on_hand;
ALTER INDEX @extschema@.stock_sku_idx RENAME TO stock_levels_sku_idx;

-- Rows live only inside the transaction that writes them (see stock.c).
CREATE TABLE @extschema@.stock_pending (
    warehouse_id   text NOT NULL,
    sku            text NOT NULL,
    on_hand_delta  int NOT NULL,
    reserved_delta int NOT NULL
);
CREATE INDEX stock_pending_stock_idx ON @extschema@.stock_pending (warehouse_id, sku);
CREATE CONSTRAINT TRIGGER order_mgmt_stock_apply
    AFTER INSERT ON @extschema@.stock_pending DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION @extschema@.stock_apply();

CREATE VIEW @extschema@.stock AS
SELECT warehouse_id, sku,
       coalesce(l.on_hand, 0) + coalesce(p.on_hand, 0) AS on_hand,
       coalesce(l.reserved, 0) + coalesce(p.reserved, 0) AS reserved,
       coalesce(l.updated_at, p.updated_at) AS updated_at
  FROM @extschema@.stock_levels l
  FULL JOIN (SELECT x.warehouse_id, x.sku, sum(x.on_hand_delta)::int AS on_hand,
                    sum(x.reserved_delta)::int AS reserved, now() AS updated_at
               FROM @extschema@.stock_pending x GROUP BY x.warehouse_id, x.sku) p
       USING (warehouse_id, sku);


------------------------------------------------------------------------
-- Credit exposure per customer
------------------------------------------------------------------------
CREATE TABLE @extschema@.credit_accounts (
    customer_id text PRIMARY KEY REFERENCES @extschema@.customers,
    exposure    numeric(14,2) NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

------------------------------------------------------------------------
-- Triggers: one cache invalidation function; lifecycle checks only status
-- updates; classes in trigger conditions; money (payment_status and
-- exposure) in one trigger; a closed order releases its stock
------------------------------------------------------------------------
DROP TRIGGER order_mgmt_transitions_changed ON @extschema@.transitions;
CREATE TRIGGER order_mgmt_transitions_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.transitions
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();

CREATE TRIGGER order_mgmt_statuses_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.statuses
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();

DROP TRIGGER order_mgmt_reference_changed ON @extschema@.calendars;
DROP TRIGGER order_mgmt_reference_changed ON @extschema@.calendar_exceptions;
DROP TRIGGER order_mgmt_reference_changed ON @extschema@.warehouses;
DROP TRIGGER order_mgmt_reference_changed ON @extschema@.services;
DROP TRIGGER order_mgmt_reference_changed ON @extschema@.lanes;
DROP TRIGGER order_mgmt_reference_changed ON @extschema@.zone_rules;
CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.calendars
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();
CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.calendar_exceptions
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();
CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.warehouses
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();
CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.services
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();
CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.lanes
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();
CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.zone_rules
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();

DROP FUNCTION @extschema@.transitions_changed(), @extschema@.reference_data_changed();

DROP TRIGGER order_mgmt_lifecycle ON @extschema@.orders;
DROP TRIGGER order_mgmt_lifecycle ON @extschema@.shipments;
DROP TRIGGER order_mgmt_lifecycle ON @extschema@.returns;
CREATE TRIGGER order_mgmt_lifecycle BEFORE UPDATE OF status, held_from ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.lifecycle_trigger('order', 'order_id');
CREATE TRIGGER order_mgmt_lifecycle BEFORE UPDATE OF status ON @extschema@.shipments
    FOR EACH ROW EXECUTE FUNCTION @extschema@.lifecycle_trigger('shipment', 'shipment_id');
CREATE TRIGGER order_mgmt_lifecycle BEFORE UPDATE OF status ON @extschema@.returns
    FOR EACH ROW EXECUTE FUNCTION @extschema@.lifecycle_trigger('return', 'return_id');


DROP TRIGGER order_mgmt_payment_status ON @extschema@.orders;
DROP FUNCTION @extschema@.orders_payment_status();
CREATE FUNCTION @extschema@.order_exposure(p_total numeric, p_approved timestamptz,
                                           p_status text, p_captured numeric)
RETURNS numeric
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN p_approved IS NULL
                  OR @extschema@.status_class('order', p_status) = 'cancelled' THEN 0
                ELSE greatest(p_total - p_captured, 0) END
$$;

CREATE FUNCTION @extschema@.orders_money()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.payment_status := 'unpaid';
        NEW.exposure := @extschema@.order_exposure(NEW.total, NEW.credit_approved_at, NEW.status, 0);
        IF NEW.exposure <> 0 THEN
            PERFORM @extschema@.credit_add(NEW.customer_id, NEW.exposure);
        END IF;
        RETURN NEW;
    END IF;
    -- a status move that neither enters nor leaves the cancelled class changes nothing here
    IF NEW.payment_status IS NOT DISTINCT FROM OLD.payment_status AND NEW.total = OLD.total
       AND NEW.credit_approved_at IS NOT DISTINCT FROM OLD.credit_approved_at
       AND NEW.exposure = OLD.exposure AND NEW.customer_id = OLD.customer_id
       AND (@extschema@.status_class('order', OLD.status) = 'cancelled')
           = (@extschema@.status_class('order', NEW.status) = 'cancelled') THEN
        RETURN NEW;
    END IF;
    t := @extschema@.payment_totals(NEW.order_id);
    NEW.payment_status := @extschema@.derive_payment_status(NEW.total, t.authorized, t.captured,
                                                            t.refunded, t.voided);
    NEW.exposure := @extschema@.order_exposure(NEW.total, NEW.credit_approved_at, NEW.status,
                                               t.captured);
    IF NEW.customer_id <> OLD.customer_id THEN
        PERFORM @extschema@.credit_add(OLD.customer_id, -OLD.exposure);
        PERFORM @extschema@.credit_add(NEW.customer_id, NEW.exposure);
    ELSIF NEW.exposure <> OLD.exposure THEN
        PERFORM @extschema@.credit_add(NEW.customer_id, NEW.exposure - OLD.exposure);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_mgmt_money
    BEFORE INSERT OR UPDATE OF payment_status, total, status, credit_approved_at, exposure,
                               customer_id ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.orders_money();


DROP TRIGGER order_mgmt_hold_sync ON @extschema@.orders;
CREATE OR REPLACE FUNCTION @extschema@.orders_hold_sync()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reason text := nullif(current_setting('order_mgmt.reason', true), '');
BEGIN
    IF @extschema@.status_class('order', NEW.status) = 'held' THEN
        IF NOT EXISTS (SELECT 1 FROM @extschema@.order_holds h
                        WHERE h.order_id = NEW.order_id AND h.released_at IS NULL) THEN
            INSERT INTO @extschema@.order_holds (order_id, kind, reason, placed_by)
            VALUES (NEW.order_id, 'manual', coalesce(v_reason, 'status set to ' || NEW.status),
                    @extschema@.current_actor());
        END IF;
    ELSE
        UPDATE @extschema@.order_holds h
           SET released_at = now(), released_by = @extschema@.current_actor(),
               release_reason = coalesce(v_reason, 'status set to ' || NEW.status)
         WHERE h.order_id = NEW.order_id AND h.released_at IS NULL;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_mgmt_hold_sync
    BEFORE UPDATE OF status ON @extschema@.orders
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND (@extschema@.status_class('order', OLD.status) = 'held'
               OR @extschema@.status_class('order', NEW.status) = 'held'))
    EXECUTE FUNCTION @extschema@.orders_hold_sync();


DROP TRIGGER order_mgmt_cancelled ON @extschema@.orders;
DROP FUNCTION @extschema@.orders_cancelled();
DROP FUNCTION @extschema@.release_reservations(bigint, text);
DROP FUNCTION @extschema@.allocate_backorders(text, text), @extschema@.lock_stock(text, text),
              @extschema@.stock_atp(text, text);

------------------------------------------------------------------------
-- Functions: new and changed definitions
------------------------------------------------------------------------
CREATE FUNCTION @extschema@.require_stock_key(p_warehouse text, p_sku text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF p_warehouse IS NULL OR p_sku IS NULL THEN
        RAISE EXCEPTION 'warehouse_id and sku must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.warehouses w WHERE w.warehouse_id = p_warehouse) THEN
        RAISE EXCEPTION 'warehouse "%" does not exist', p_warehouse USING ERRCODE = 'OM004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.products p WHERE p.sku = p_sku) THEN
        RAISE EXCEPTION 'sku "%" does not exist', p_sku USING ERRCODE = 'OM004';
    END IF;
END;
$$;

CREATE FUNCTION @extschema@.stock_best_warehouse(sku text)
RETURNS text
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'stock_best_warehouse';

CREATE OR REPLACE FUNCTION @extschema@.reserve_lines(p_order bigint, p_allow_backorder boolean,
                                          p_warehouse text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    l       record;
    v_need  int;
    v_wh    text;
    v_take  int;
    v_short jsonb := '[]';
    v_lines int[] := '{}';
    v_takes int[] := '{}';
    v_waits int[] := '{}';
    v_whs   text[] := '{}';
BEGIN
    FOR l IN SELECT * FROM @extschema@.order_lines x WHERE x.order_id = p_order
              ORDER BY x.line_no LOOP
        v_need := l.qty - l.qty_reserved - l.qty_shipped - l.qty_cancelled;
        CONTINUE WHEN v_need <= 0;
        -- a line is reserved from one warehouse: its own (an earlier
        -- reservation), the order's, else the one with the most available
        v_wh := coalesce(l.warehouse_id, p_warehouse, @extschema@.stock_best_warehouse(l.sku));
        v_take := 0;
        IF v_wh IS NOT NULL THEN
            v_take := @extschema@.stock_reserve(v_wh, l.sku, 'reserve', 0, v_need, p_order,
                                                l.line_no, NULL);
        END IF;
        IF v_take > 0 THEN
            PERFORM @extschema@.emit_event(p_order, 'line', l.line_no, 'line.reserved', NULL, NULL,
                                           NULL, jsonb_build_object('sku', l.sku, 'warehouse_id', v_wh,
                                                                    'qty', v_take));
        END IF;
        v_need := v_need - v_take;
        IF v_need > l.qty_backordered AND p_allow_backorder THEN
            PERFORM @extschema@.emit_event(p_order, 'line', l.line_no, 'line.backordered', NULL,
                                           NULL, NULL, jsonb_build_object('sku', l.sku,
                                                'warehouse_id', v_wh, 'qty', v_need));
        ELSIF v_need > 0 AND NOT p_allow_backorder THEN
            v_short := v_short || jsonb_build_object('line_no', l.line_no, 'sku', l.sku,
                                                     'warehouse_id', v_wh, 'short', v_need);
        END IF;
        IF v_take > 0 OR v_need <> l.qty_backordered OR v_wh IS DISTINCT FROM l.warehouse_id THEN
            v_lines := v_lines || l.line_no;
            v_takes := v_takes || v_take;
            v_waits := v_waits || v_need;
            v_whs := v_whs || v_wh;
        END IF;
    END LOOP;
    -- one UPDATE for all lines (each statement on order_lines pays for its CHECKs)
    UPDATE @extschema@.order_lines x
       SET qty_reserved = x.qty_reserved + u.take, qty_backordered = u.wait, warehouse_id = u.wh
      FROM unnest(v_lines, v_takes, v_waits, v_whs) u(line_no, take, wait, wh)
     WHERE x.order_id = p_order AND x.line_no = u.line_no;
    RETURN v_short;
END;
$$;

CREATE FUNCTION @extschema@.release_reservations(p_order bigint, p_reason text)
RETURNS text[]
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    l       record;
    v_freed text[] := '{}';
BEGIN
    FOR l IN SELECT * FROM @extschema@.order_lines x
              WHERE x.order_id = p_order AND x.qty_reserved > 0 ORDER BY x.line_no LOOP
        PERFORM @extschema@.stock_move(l.warehouse_id, l.sku, 'release', 0, -l.qty_reserved,
                                       p_order, l.line_no, p_reason);
        v_freed := v_freed || ARRAY[l.warehouse_id, l.sku];
    END LOOP;
    RETURN v_freed;
END;
$$;

CREATE FUNCTION @extschema@.serve_freed(p_pairs text[])
RETURNS int
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_total int := 0;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_pairs, 1), 0) / 2 LOOP
        v_total := v_total + @extschema@.serve_waiting_demand(p_pairs[2 * i - 1], p_pairs[2 * i]);
    END LOOP;
    RETURN v_total;
END;
$$;

CREATE FUNCTION @extschema@.serve_line(p_order bigint, p_line int, p_warehouse text,
                                       p_sku text)
RETURNS int
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    o      @extschema@.orders;
    l      @extschema@.order_lines;
    v_take int;
    h      record;
BEGIN
    SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = p_order FOR UPDATE SKIP LOCKED;
    IF NOT FOUND
       OR @extschema@.status_class('order', o.status) IN ('completed', 'cancelled') THEN
        RETURN 0;
    END IF;
    SELECT * INTO l FROM @extschema@.order_lines x
     WHERE x.order_id = p_order AND x.line_no = p_line;
    IF l.qty_backordered <= 0 OR l.warehouse_id <> p_warehouse OR l.sku <> p_sku THEN
        RETURN 0;
    END IF;
    v_take := @extschema@.stock_reserve(p_warehouse, p_sku, 'reserve', 0, l.qty_backordered,
                                        p_order, p_line, 'backorder allocated');
    IF v_take = 0 THEN
        RETURN 0;
    END IF;
    UPDATE @extschema@.order_lines x
       SET qty_reserved = x.qty_reserved + v_take, qty_backordered = x.qty_backordered - v_take,
           warehouse_id = p_warehouse
     WHERE x.order_id = p_order AND x.line_no = p_line;
    UPDATE @extschema@.orders x SET updated_at = clock_timestamp() WHERE x.order_id = p_order;
    PERFORM @extschema@.emit_event(p_order, 'line', p_line, 'line.backorder_allocated', NULL, NULL,
                                   NULL, jsonb_build_object('sku', p_sku, 'warehouse_id', p_warehouse,
                                                            'qty', v_take, 'still_backordered',
                                                            l.qty_backordered - v_take));
    IF @extschema@.status_class('order', o.status) = 'held'
       AND NOT EXISTS (SELECT 1 FROM @extschema@.order_lines x
                        WHERE x.order_id = p_order AND x.qty_backordered > 0) THEN
        FOR h IN SELECT * FROM @extschema@.order_holds x
                  WHERE x.order_id = p_order AND x.released_at IS NULL AND x.kind = 'stock' LOOP
            PERFORM @extschema@.close_hold(p_order, h.hold_id, h.kind, 'stock arrived');
        END LOOP;
        PERFORM @extschema@.after_hold_released(p_order, 'stock arrived');
    END IF;
    RETURN v_take;
END;
$$;

CREATE FUNCTION @extschema@.serve_waiting_demand(p_warehouse text, p_sku text)
RETURNS int
LANGUAGE plpgsql VOLATILE
SET order_mgmt.automated = on
AS $$
DECLARE
    l       record;
    v_avail int := @extschema@.stock_available(p_warehouse, p_sku);
    v_take  int;
    v_total int := 0;
BEGIN
    IF v_avail <= 0 THEN
        RETURN 0;
    END IF;
    FOR l IN SELECT x.order_id, x.line_no
               FROM @extschema@.order_lines x
               JOIN @extschema@.orders o ON o.order_id = x.order_id
              WHERE x.sku = p_sku AND x.qty_backordered > 0
                AND (x.warehouse_id = p_warehouse OR x.warehouse_id IS NULL)
              ORDER BY o.placed_at, o.order_id, x.line_no LOOP
        EXIT WHEN v_avail <= 0;
        BEGIN
            v_take := @extschema@.serve_line(l.order_id, l.line_no, p_warehouse, p_sku);
        EXCEPTION WHEN serialization_failure THEN
            v_take := 0;
        END;
        v_total := v_total + v_take;
        v_avail := v_avail - v_take;
    END LOOP;
    RETURN v_total;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.receive_stock(warehouse_id text, sku text, qty int,
                                          reason text DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF qty IS NULL THEN
        RAISE EXCEPTION 'qty must not be null' USING ERRCODE = '22004';
    END IF;
    IF qty <= 0 THEN
        RAISE EXCEPTION 'qty must be positive' USING ERRCODE = '22023',
              DETAIL = format('Got %s.', qty), HINT = 'Use adjust_stock to remove units.';
    END IF;
    PERFORM @extschema@.require_stock_key(receive_stock.warehouse_id, receive_stock.sku);
    PERFORM @extschema@.stock_move(receive_stock.warehouse_id, receive_stock.sku, 'receipt',
                                   receive_stock.qty, 0, NULL, NULL, receive_stock.reason);
    RETURN @extschema@.serve_waiting_demand(receive_stock.warehouse_id, receive_stock.sku);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.adjust_stock(warehouse_id text, sku text, delta int, reason text)
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF delta IS NULL OR reason IS NULL THEN
        RAISE EXCEPTION 'delta and reason must not be null' USING ERRCODE = '22004';
    END IF;
    IF delta = 0 OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'an adjustment needs a non-zero delta and a reason' USING ERRCODE = '22023',
              DETAIL = format('Got delta %s, reason "%s".', delta, reason);
    END IF;
    PERFORM @extschema@.require_stock_key(adjust_stock.warehouse_id, adjust_stock.sku);
    PERFORM @extschema@.stock_move(adjust_stock.warehouse_id, adjust_stock.sku, 'adjustment',
                                   adjust_stock.delta, 0, NULL, NULL, adjust_stock.reason);
    IF delta > 0 THEN
        PERFORM @extschema@.serve_waiting_demand(adjust_stock.warehouse_id, adjust_stock.sku);
    END IF;
    RETURN (SELECT s.on_hand FROM @extschema@.stock s
             WHERE s.warehouse_id = adjust_stock.warehouse_id AND s.sku = adjust_stock.sku);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.record_payment(
    p_order bigint, p_kind text, p_amount numeric, p_psp text, p_return bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    o       @extschema@.orders;
    p       @extschema@.payments;
    t       record;
    v_id    bigint;
    v_amount numeric := p_amount;
    v_limit numeric;
BEGIN
    IF p_psp IS NULL OR btrim(p_psp) = '' THEN
        RAISE EXCEPTION 'psp_reference must not be null or empty' USING ERRCODE = '22004';
    END IF;
    IF length(p_psp) > 200 THEN
        RAISE EXCEPTION 'psp_reference is too long' USING ERRCODE = '22001',
              DETAIL = format('It has %s characters; at most 200 are allowed.', length(p_psp));
    END IF;
    IF v_amount IS NULL AND p_kind <> 'void' THEN
        RAISE EXCEPTION 'amount must not be null' USING ERRCODE = '22004';
    END IF;
    IF v_amount IS NOT NULL AND (v_amount <= 0 OR v_amount <> round(v_amount, 2)
                                 OR v_amount >= 1e12) THEN
        RAISE EXCEPTION 'invalid payment amount %', v_amount USING ERRCODE = '22023',
              DETAIL = 'An amount is positive, below 10^12, with at most two decimals.';
    END IF;
    o := @extschema@.lock_order(p_order);

    -- a repeated psp_reference is the same payment, not a second one
    SELECT * INTO p FROM @extschema@.payments x WHERE x.psp_reference = p_psp;
    IF FOUND THEN
        IF p.order_id <> o.order_id OR p.kind <> p_kind
           OR (v_amount IS NOT NULL AND p.amount <> v_amount)
           OR p.return_id IS DISTINCT FROM p_return THEN
            RAISE EXCEPTION 'psp_reference "%" is already used by another payment', p_psp
                USING ERRCODE = 'OM005',
                      DETAIL = format('Payment %s: %s of %s on order %s.', p.payment_id, p.kind,
                                      p.amount, p.order_id);
        END IF;
        RETURN p.payment_id;
    END IF;

    IF p_kind IN ('authorization', 'capture')
       AND @extschema@.status_class('order', o.status) = 'cancelled' THEN
        RAISE EXCEPTION 'order % is %', o.order_id, o.status USING ERRCODE = 'OM010',
              DETAIL = format('No %s is taken on a %s order.', p_kind, o.status);
    END IF;
    t := @extschema@.payment_totals(o.order_id);
    v_limit := CASE p_kind
        WHEN 'capture' THEN t.authorized - t.voided - t.captured
        WHEN 'void' THEN t.authorized - t.voided - t.captured
        WHEN 'refund' THEN t.captured - t.refunded
    END;
    IF p_kind = 'void' THEN
        v_amount := coalesce(v_amount, v_limit);
    END IF;
    IF v_limit IS NOT NULL AND v_amount > v_limit THEN
        RAISE EXCEPTION '% of % exceeds what order % allows', p_kind, coalesce(v_amount, 0),
                        o.order_id
            USING ERRCODE = 'OM015',
                  DETAIL = format('Order %s: authorized %s, captured %s, refunded %s, voided %s; at most %s can be %s.',
                                  o.order_id, t.authorized, t.captured, t.refunded, t.voided,
                                  v_limit, CASE p_kind WHEN 'capture' THEN 'captured'
                                                       WHEN 'void' THEN 'voided'
                                                       ELSE 'refunded' END);
    END IF;
    IF v_amount <= 0 THEN
        RAISE EXCEPTION 'nothing to void on order %', o.order_id USING ERRCODE = 'OM015',
              DETAIL = format('Order %s has no open authorization.', o.order_id);
    END IF;

    INSERT INTO @extschema@.payments AS x
        (order_id, kind, amount, psp_reference, return_id, actor)
    VALUES (o.order_id, p_kind, v_amount, p_psp, p_return, @extschema@.current_actor())
    ON CONFLICT ON CONSTRAINT payments_psp_reference_key DO NOTHING
    RETURNING x.payment_id INTO v_id;
    IF v_id IS NULL THEN
        -- the same reference was committed meanwhile for another order
        RAISE EXCEPTION 'psp_reference "%" is already used by another payment', p_psp
            USING ERRCODE = 'OM005';
    END IF;
    -- (order_mgmt_payment_status on payments has recomputed payment_status and exposure)
    PERFORM @extschema@.emit_event(o.order_id, 'payment', v_id,
        'payment.' || CASE p_kind WHEN 'authorization' THEN 'authorized'
                                  WHEN 'capture' THEN 'captured'
                                  WHEN 'refund' THEN 'refunded' ELSE 'voided' END,
        NULL, NULL, NULL,
        jsonb_build_object('amount', v_amount, 'psp_reference', p_psp, 'return_id', p_return));

    -- an authorization that now covers an order awaiting payment confirms it
    IF p_kind = 'authorization' AND o.status = 'awaiting_payment' THEN
        PERFORM @extschema@.confirm_automated(o.order_id);
    END IF;
    RETURN v_id;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.normalize_lines(lines jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l     record;
    v_qty numeric;
    v_price numeric;
    out   jsonb[] := '{}';
BEGIN
    IF lines IS NULL OR jsonb_typeof(lines) <> 'array' OR jsonb_array_length(lines) = 0 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array'
            USING ERRCODE = '22023', DETAIL = format('Got %s.', coalesce(lines::text, 'NULL'));
    END IF;
    IF jsonb_array_length(lines) > 1000 THEN
        RAISE EXCEPTION 'too many order lines'
            USING ERRCODE = '22023', DETAIL = 'An order has at most 1000 lines.';
    END IF;
    FOR l IN SELECT e.n, e.value AS v, p.sku IS NOT NULL AS known, p.list_price
               FROM jsonb_array_elements(lines) WITH ORDINALITY e(value, n)
               LEFT JOIN @extschema@.products p ON p.sku = e.value->>'sku'
              ORDER BY e.n LOOP
        IF jsonb_typeof(l.v) <> 'object' OR jsonb_typeof(l.v->'sku') IS DISTINCT FROM 'string'
           OR jsonb_typeof(l.v->'qty') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'order line % is malformed', l.n
                USING ERRCODE = '22023',
                      DETAIL = format('Each line needs a string "sku" and a numeric "qty"; got %s.', l.v);
        END IF;
        v_qty := (l.v->>'qty')::numeric;
        IF v_qty <= 0 OR v_qty <> trunc(v_qty) OR v_qty > 1000000 THEN
            RAISE EXCEPTION 'order line % has an invalid quantity', l.n
                USING ERRCODE = '22023',
                      DETAIL = format('qty must be a whole number between 1 and 1000000; got %s.', l.v->>'qty');
        END IF;
        IF NOT l.known THEN
            RAISE EXCEPTION 'sku "%" does not exist', l.v->>'sku'
                USING ERRCODE = 'OM004', DETAIL = format('Order line %s names a product that does not exist.', l.n);
        END IF;
        v_price := coalesce((l.v->>'unit_price')::numeric, l.list_price);
        IF v_price IS NULL OR v_price = 'NaN' OR v_price < 0 OR v_price >= 1e12
           OR v_price <> round(v_price, 2) THEN
            RAISE EXCEPTION 'order line % has no valid unit price', l.n
                USING ERRCODE = '22023',
                      DETAIL = format('A unit price is a number from 0 to 10^12 with at most two decimals; product "%s" has list price %s and the line gives %s.',
                                      l.v->>'sku', coalesce(l.list_price::text, 'none'),
                                      coalesce(l.v->>'unit_price', 'none')),
                      HINT = 'Pass "unit_price" in the line.';
        END IF;
        out := out || jsonb_build_object('line_no', l.n, 'sku', l.v->>'sku', 'qty', v_qty::int,
                                         'unit_price', v_price);
    END LOOP;
    RETURN to_jsonb(out);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.place_order(
    customer_id text,
    lines jsonb,
    ship_to jsonb,
    channel text DEFAULT 'web',
    service_id text DEFAULT NULL,
    external_ref text DEFAULT NULL,
    requested_delivery date DEFAULT NULL,
    allow_backorder boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cust   @extschema@.customers%ROWTYPE;
    v_lines  jsonb;
    v_hash   text;
    v_id     bigint;
    v_old    text;
    v_country text := upper(ship_to->>'country');
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be null' USING ERRCODE = '22004';
    END IF;
    IF channel IS NULL OR channel NOT IN ('web', 'phone', 'in_person', 'edi', 'marketplace') THEN
        RAISE EXCEPTION 'invalid channel "%"', channel
            USING ERRCODE = '22023',
                  DETAIL = 'channel must be one of web, phone, in_person, edi, marketplace.';
    END IF;
    IF ship_to IS NULL OR jsonb_typeof(ship_to) <> 'object' THEN
        RAISE EXCEPTION 'ship_to must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF v_country IS NULL OR v_country !~ '^[A-Z]{2}$' THEN
        RAISE EXCEPTION 'ship_to.country must be an ISO 3166 alpha-2 code'
            USING ERRCODE = '22023', DETAIL = format('Got %s.', coalesce(ship_to->>'country', 'nothing'));
    END IF;
    IF coalesce(allow_backorder, false) IS DISTINCT FROM allow_backorder THEN
        RAISE EXCEPTION 'allow_backorder must not be null' USING ERRCODE = '22004';
    END IF;
    IF length(external_ref) > 200 THEN
        RAISE EXCEPTION 'external_ref is too long' USING ERRCODE = '22001',
              DETAIL = format('It has %s characters; at most 200 are allowed.', length(external_ref));
    END IF;
    SELECT * INTO v_cust FROM @extschema@.customers c WHERE c.customer_id = place_order.customer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer "%" does not exist', customer_id
            USING ERRCODE = 'OM004', HINT = 'Create the customer in order_mgmt.customers first.';
    END IF;
    IF service_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.services s WHERE s.service_id = place_order.service_id) THEN
        RAISE EXCEPTION 'service "%" does not exist', service_id
            USING ERRCODE = 'OM004', HINT = 'Services are the rows of order_mgmt.services.';
    END IF;
    v_lines := @extschema@.normalize_lines(lines);
    v_hash := md5(jsonb_build_array(customer_id, v_lines, ship_to, channel, service_id,
                                    requested_delivery, allow_backorder)::text);

    -- ON CONFLICT makes a concurrent twin wait for the first and then see it.
    INSERT INTO @extschema@.orders AS o
        (external_ref, customer_id, channel, currency, total, ship_to, ship_to_country,
         ship_to_postal, service_id, requested_delivery, allow_backorder, request_hash)
    SELECT place_order.external_ref, v_cust.customer_id, place_order.channel, v_cust.currency,
           (SELECT sum((x->>'qty')::int * (x->>'unit_price')::numeric)
              FROM jsonb_array_elements(v_lines) x),
           place_order.ship_to, v_country, place_order.ship_to->>'postal_code',
           place_order.service_id, place_order.requested_delivery, place_order.allow_backorder,
           v_hash
    ON CONFLICT ON CONSTRAINT orders_external_ref_key DO NOTHING
    RETURNING o.order_id INTO v_id;

    IF v_id IS NULL THEN
        SELECT o.order_id, o.request_hash INTO v_id, v_old
          FROM @extschema@.orders o WHERE o.external_ref = place_order.external_ref;
        IF v_old IS DISTINCT FROM v_hash THEN
            RAISE EXCEPTION 'external_ref "%" is already used by order % with other content',
                            external_ref, v_id
                USING ERRCODE = 'OM005',
                      HINT = 'Use a new external_ref for a new order.';
        END IF;
        RETURN v_id;
    END IF;

    INSERT INTO @extschema@.order_lines (order_id, line_no, sku, qty, unit_price)
    SELECT v_id, (x->>'line_no')::int, x->>'sku', (x->>'qty')::int, (x->>'unit_price')::numeric
      FROM jsonb_array_elements(v_lines) x;

    PERFORM @extschema@.emit_event(v_id, 'order', v_id, 'order.placed', NULL, 'placed', NULL,
                                   jsonb_build_object('channel', channel, 'external_ref', external_ref));
    RETURN v_id;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.lock_order(p_order bigint)
RETURNS @extschema@.orders
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    o @extschema@.orders;
BEGIN
    IF p_order IS NULL THEN
        RAISE EXCEPTION 'order_id must not be null' USING ERRCODE = '22004';
    END IF;
    UPDATE @extschema@.orders x SET updated_at = clock_timestamp() WHERE x.order_id = p_order
    RETURNING * INTO o;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % does not exist', p_order USING ERRCODE = 'OM004';
    END IF;
    RETURN o;
END;
$$;

CREATE FUNCTION @extschema@.require_class(o @extschema@.orders, p_classes text[], p_action text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_class text := @extschema@.status_class('order', o.status);
BEGIN
    IF v_class = ANY (p_classes) THEN
        RETURN;
    END IF;
    IF v_class IN ('shipping', 'delivered') THEN
        RAISE EXCEPTION 'order % cannot be %', o.order_id, p_action USING ERRCODE = 'OM006',
              DETAIL = format('Order %s is %s: goods have left the warehouse.', o.order_id, o.status),
              HINT = 'Request a return instead.';
    END IF;
    IF v_class = 'held' THEN
        RAISE EXCEPTION 'order % cannot be %', o.order_id, p_action USING ERRCODE = 'OM010',
              DETAIL = format('Order %s is on hold (held from %s).', o.order_id, o.held_from),
              HINT = 'Release its holds first (order_mgmt.release_hold).';
    END IF;
    RAISE EXCEPTION 'order % cannot be %', o.order_id, p_action
        USING ERRCODE = 'OM010',
              DETAIL = format('Order %s is %s (class %s); this needs class %s.', o.order_id,
                              o.status, coalesce(v_class, 'none'), array_to_string(p_classes, ' or '));
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.add_hold(p_order bigint, p_kind text, p_reason text, p_payload jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_hold bigint;
    v_status text;
BEGIN
    INSERT INTO @extschema@.order_holds AS h (order_id, kind, reason, placed_by)
    VALUES (p_order, p_kind, p_reason, @extschema@.current_actor())
    RETURNING h.hold_id INTO v_hold;
    PERFORM @extschema@.emit_event(p_order, 'hold', v_hold, 'hold.placed', NULL, NULL, p_reason,
                                   jsonb_build_object('kind', p_kind) || coalesce(p_payload, '{}'));
    SELECT o.status INTO v_status FROM @extschema@.orders o WHERE o.order_id = p_order;
    IF @extschema@.status_class('order', v_status) IS DISTINCT FROM 'held' THEN
        PERFORM @extschema@.move_order(p_order, 'on_hold', p_kind || ' hold: ' || p_reason);
    END IF;
    RETURN v_hold;
END;
$$;

CREATE FUNCTION @extschema@.close_hold(p_order bigint, p_hold bigint, p_kind text, p_reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    UPDATE @extschema@.order_holds x
       SET released_at = now(), released_by = @extschema@.current_actor(), release_reason = p_reason
     WHERE x.order_id = p_order AND x.hold_id = p_hold;
    PERFORM @extschema@.emit_event(p_order, 'hold', p_hold, 'hold.released', NULL, NULL, p_reason,
                                   jsonb_build_object('kind', p_kind));
    IF p_kind = 'credit' THEN
        UPDATE @extschema@.orders x SET credit_approved_at = now()
         WHERE x.order_id = p_order AND x.credit_approved_at IS NULL;
    END IF;
END;
$$;

CREATE FUNCTION @extschema@.after_hold_released(p_order bigint, p_reason text)
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    o @extschema@.orders;
BEGIN
    SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = p_order;
    IF @extschema@.status_class('order', o.status) IS DISTINCT FROM 'held'
       OR EXISTS (SELECT 1 FROM @extschema@.order_holds x
                   WHERE x.order_id = p_order AND x.released_at IS NULL) THEN
        RETURN o.status;
    END IF;
    PERFORM @extschema@.move_order(p_order, o.held_from, coalesce(p_reason, 'last hold released'));
    -- an order that was held before its confirmation is confirmed again
    -- when the hold was a stock hold that the stock itself released
    IF p_reason = 'stock arrived'
       AND @extschema@.status_class('order', o.held_from) = 'pending' THEN
        SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = p_order;
        RETURN @extschema@.confirm_locked(o);
    END IF;
    RETURN o.held_from;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.confirm_locked(o @extschema@.orders)
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    c          @extschema@.customers;
    v_exposure numeric;
    v_covered  numeric;
    v_credit_ok boolean := true;
    v_paid_ok  boolean := true;
    v_short    jsonb;
    v_pt       record;
    v_approve  boolean := false;
    v_saved    text;
BEGIN
    SELECT * INTO c FROM @extschema@.customers x WHERE x.customer_id = o.customer_id;
    IF c.payment_terms = 'credit' AND o.credit_approved_at IS NULL THEN
        v_exposure := @extschema@.credit_exposure(c.customer_id);
        v_credit_ok := v_exposure + o.total <= c.credit_limit;
        PERFORM @extschema@.emit_event(o.order_id, 'order', o.order_id, 'order.credit_checked',
                    NULL, NULL, NULL,
                    jsonb_build_object('exposure', v_exposure, 'total', o.total,
                                       'credit_limit', c.credit_limit, 'passed', v_credit_ok));
        v_approve := v_credit_ok;   -- recorded with the status move below
    ELSIF c.payment_terms <> 'credit' THEN
        v_pt := @extschema@.payment_totals(o.order_id);
        v_covered := v_pt.authorized - v_pt.voided - v_pt.refunded;
        v_paid_ok := v_covered >= o.total;
        PERFORM @extschema@.emit_event(o.order_id, 'order', o.order_id, 'order.payment_checked',
                    NULL, NULL, NULL,
                    jsonb_build_object('authorized', v_covered, 'total', o.total,
                                       'passed', v_paid_ok));
    END IF;

    v_short := @extschema@.reserve_lines(o.order_id, o.allow_backorder, o.warehouse_id);

    IF NOT v_credit_ok THEN
        PERFORM @extschema@.add_hold(o.order_id, 'credit',
            format('open exposure %s plus order total %s exceeds the credit limit %s of customer %s',
                   v_exposure, o.total, c.credit_limit, c.customer_id), NULL);
    END IF;
    IF jsonb_array_length(v_short) > 0 THEN
        PERFORM @extschema@.add_hold(o.order_id, 'stock',
            format('%s line(s) cannot be reserved in full', jsonb_array_length(v_short)),
            jsonb_build_object('lines', v_short));
    END IF;
    IF NOT v_credit_ok OR jsonb_array_length(v_short) > 0 THEN
        IF v_approve THEN
            UPDATE @extschema@.orders x SET credit_approved_at = now() WHERE x.order_id = o.order_id;
        END IF;
        RETURN 'on_hold';
    END IF;
    IF NOT v_paid_ok THEN
        IF o.status <> 'awaiting_payment' THEN
            PERFORM @extschema@.move_order(o.order_id, 'awaiting_payment',
                'authorizations do not cover the order total');
        END IF;
        RETURN 'awaiting_payment';
    END IF;
    -- the approval and the status in one UPDATE (each statement on orders pays for its CHECKs)
    v_saved := current_setting('order_mgmt.reason', true);
    PERFORM set_config('order_mgmt.reason', '', true);
    UPDATE @extschema@.orders x
       SET status = 'confirmed',
           credit_approved_at = CASE WHEN v_approve THEN now() ELSE x.credit_approved_at END
     WHERE x.order_id = o.order_id;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
    RETURN 'confirmed';
END;
$$;

CREATE FUNCTION @extschema@.confirm_automated(p_order bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET order_mgmt.automated = on
AS $$
BEGIN
    RETURN @extschema@.confirm_locked(@extschema@.lock_order(p_order));
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.confirm_order(order_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o @extschema@.orders;
BEGIN
    o := @extschema@.lock_order(confirm_order.order_id);
    PERFORM @extschema@.require_class(o, '{pending}', 'confirmed');
    RETURN @extschema@.confirm_locked(o);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.hold_order(order_id bigint, kind text, reason text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o @extschema@.orders;
BEGIN
    IF kind IS NULL OR reason IS NULL THEN
        RAISE EXCEPTION 'kind and reason must not be null' USING ERRCODE = '22004';
    END IF;
    IF kind NOT IN ('credit', 'payment', 'stock', 'address', 'fraud', 'manual') THEN
        RAISE EXCEPTION 'invalid hold kind "%"', kind
            USING ERRCODE = '22023',
                  DETAIL = 'kind must be one of credit, payment, stock, address, fraud, manual.';
    END IF;
    IF btrim(reason) = '' THEN
        RAISE EXCEPTION 'reason must not be empty' USING ERRCODE = '22023';
    END IF;
    o := @extschema@.lock_order(hold_order.order_id);
    PERFORM @extschema@.require_class(o, '{pending,open,held}', 'held');
    RETURN @extschema@.add_hold(o.order_id, kind, reason, NULL);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.release_hold(order_id bigint, hold_id bigint, reason text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o      @extschema@.orders;
    h      @extschema@.order_holds;
BEGIN
    IF hold_id IS NULL THEN
        RAISE EXCEPTION 'hold_id must not be null' USING ERRCODE = '22004';
    END IF;
    o := @extschema@.lock_order(release_hold.order_id);
    SELECT * INTO h FROM @extschema@.order_holds x
     WHERE x.order_id = o.order_id AND x.hold_id = release_hold.hold_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hold % of order % does not exist', release_hold.hold_id, o.order_id
            USING ERRCODE = 'OM004';
    END IF;
    IF h.released_at IS NOT NULL THEN
        RAISE EXCEPTION 'hold % of order % is already released', h.hold_id, o.order_id
            USING ERRCODE = 'OM011',
                  DETAIL = format('The %s hold was released by %s.', h.kind, h.released_by);
    END IF;
    PERFORM @extschema@.close_hold(o.order_id, h.hold_id, h.kind, release_hold.reason);
    RETURN @extschema@.after_hold_released(o.order_id, release_hold.reason);
END;
$$;

CREATE FUNCTION @extschema@.orders_closed()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reason text := coalesce(nullif(current_setting('order_mgmt.reason', true), ''),
                              'order ' || NEW.status);
    v_cancel boolean := @extschema@.status_class('order', NEW.status) = 'cancelled';
    v_freed  text[];
BEGIN
    v_freed := @extschema@.release_reservations(NEW.order_id, v_reason);
    UPDATE @extschema@.order_lines x
       SET qty_cancelled = CASE WHEN v_cancel THEN x.qty - x.qty_shipped ELSE x.qty_cancelled END,
           qty_reserved = 0, qty_backordered = 0
     WHERE x.order_id = NEW.order_id
       AND (x.qty_reserved > 0 OR x.qty_backordered > 0
            OR (v_cancel AND x.qty_cancelled < x.qty - x.qty_shipped));
    UPDATE @extschema@.order_holds x
       SET released_at = now(), released_by = @extschema@.current_actor(),
           release_reason = v_reason
     WHERE x.order_id = NEW.order_id AND x.released_at IS NULL;
    PERFORM @extschema@.serve_freed(v_freed);
    RETURN NULL;
END;
$$;

CREATE TRIGGER order_mgmt_closed
    AFTER UPDATE OF status ON @extschema@.orders
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND @extschema@.status_class('order', NEW.status) IN ('completed', 'cancelled'))
    EXECUTE FUNCTION @extschema@.orders_closed();

CREATE OR REPLACE FUNCTION @extschema@.cancel_order(order_id bigint, reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o @extschema@.orders;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a cancellation needs a reason' USING ERRCODE = '22004';
    END IF;
    o := @extschema@.lock_order(cancel_order.order_id);
    PERFORM @extschema@.require_class(o, '{pending,open,held}', 'cancelled');
    -- the lifecycle trigger refuses it once goods have left (OM006), and
    -- order_mgmt_closed releases reservations and holds
    PERFORM @extschema@.move_order(o.order_id, 'cancelled', reason);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.cancel_line(order_id bigint, line_no int, qty int,
                                        reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o       @extschema@.orders;
    l       @extschema@.order_lines;
    v_open  int;
    v_left  int;
    v_bo    int;
    v_short int;
    v_res   int;
BEGIN
    IF line_no IS NULL OR qty IS NULL THEN
        RAISE EXCEPTION 'line_no and qty must not be null' USING ERRCODE = '22004';
    END IF;
    IF qty <= 0 THEN
        RAISE EXCEPTION 'qty must be positive' USING ERRCODE = '22023',
              DETAIL = format('Got %s.', qty);
    END IF;
    o := @extschema@.lock_order(cancel_line.order_id);
    PERFORM @extschema@.require_class(o, '{pending,open,held}', 'changed');
    SELECT * INTO l FROM @extschema@.order_lines x
     WHERE x.order_id = o.order_id AND x.line_no = cancel_line.line_no;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'line % of order % does not exist', cancel_line.line_no, o.order_id
            USING ERRCODE = 'OM004';
    END IF;
    PERFORM @extschema@.check_not_dispatched(o.order_id);
    v_open := l.qty - l.qty_shipped - l.qty_cancelled;
    IF qty > v_open THEN
        RAISE EXCEPTION 'cannot cancel % of line % of order %', qty, l.line_no, o.order_id
            USING ERRCODE = 'OM016',
                  DETAIL = format('Only %s unit(s) of the line are open (qty %s, shipped %s, cancelled %s).',
                                  v_open, l.qty, l.qty_shipped, l.qty_cancelled);
    END IF;
    -- cancel waiting units first, then units never allocated, then reserved units
    v_left := qty;
    v_bo := least(v_left, l.qty_backordered);
    v_left := v_left - v_bo;
    v_short := least(v_left, l.qty - l.qty_reserved - l.qty_backordered - l.qty_shipped
                               - l.qty_cancelled);
    v_left := v_left - v_short;
    v_res := v_left;
    IF v_res > 0 THEN
        PERFORM @extschema@.stock_move(l.warehouse_id, l.sku, 'release', 0, -v_res, o.order_id,
                                       l.line_no, reason);
    END IF;
    UPDATE @extschema@.order_lines x
       SET qty_cancelled = x.qty_cancelled + cancel_line.qty,
           qty_backordered = x.qty_backordered - v_bo,
           qty_reserved = x.qty_reserved - v_res
     WHERE x.order_id = o.order_id AND x.line_no = l.line_no;
    UPDATE @extschema@.orders x SET total = greatest(x.total - cancel_line.qty * l.unit_price, 0)
     WHERE x.order_id = o.order_id;
    PERFORM @extschema@.emit_event(o.order_id, 'line', l.line_no, 'line.cancelled', NULL, NULL,
                                   reason, jsonb_build_object('qty', qty, 'released', v_res,
                                                              'backorder_cancelled', v_bo));
    IF v_res > 0 THEN
        PERFORM @extschema@.serve_waiting_demand(l.warehouse_id, l.sku);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.order_lines x
                    WHERE x.order_id = o.order_id AND x.qty_cancelled < x.qty) THEN
        PERFORM @extschema@.move_order(o.order_id, 'cancelled',
                                       coalesce(reason, 'every line cancelled'));
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.shipment_promise_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'shipment_promise_trigger';

CREATE OR REPLACE FUNCTION @extschema@.choose_service(
    shipment_id bigint, strategy text DEFAULT 'cheapest', as_of timestamptz DEFAULT NULL)
RETURNS text
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'choose_service';

CREATE OR REPLACE FUNCTION @extschema@.late_promise_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE @extschema@.orders o
       SET promised_ship_earliest = e.ship_earliest, promised_ship_latest = e.ship_latest,
           promised_delivery_earliest = e.delivery_earliest,
           promised_delivery_latest = e.delivery_latest
      FROM @extschema@.estimate_order_delivery(NEW.order_id) e
     WHERE o.order_id = NEW.order_id AND e.known
       AND @extschema@.status_class('order', o.status) = 'open'
       AND o.promised_delivery_latest IS NULL;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.line_ready_trigger() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.ready_at := now();      -- the stock is here, whatever date was expected
    RETURN NEW;
END;
$$;

-- the backorder triggers fire only when a waiting line is served
DROP TRIGGER order_mgmt_line_ready ON @extschema@.order_lines;
DROP TRIGGER order_mgmt_late_promise ON @extschema@.order_lines;
CREATE TRIGGER order_mgmt_line_ready BEFORE UPDATE OF qty_backordered ON @extschema@.order_lines
    FOR EACH ROW
    WHEN (NEW.qty_backordered < OLD.qty_backordered AND NEW.qty_reserved > OLD.qty_reserved)
    EXECUTE FUNCTION @extschema@.line_ready_trigger();

CREATE TRIGGER order_mgmt_late_promise AFTER UPDATE OF qty_backordered, ready_at
    ON @extschema@.order_lines
    FOR EACH ROW
    WHEN ((NEW.qty_backordered < OLD.qty_backordered OR NEW.ready_at IS DISTINCT FROM OLD.ready_at)
          AND (NEW.qty_backordered = 0 OR NEW.ready_at IS NOT NULL))
    EXECUTE FUNCTION @extschema@.late_promise_trigger();

CREATE FUNCTION @extschema@.at_risk_orders(
    OUT order_id bigint, OUT status text, OUT promised_delivery_latest date,
    OUT estimated_delivery_latest date, OUT days_late int, OUT risk text)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT o.order_id, o.status, o.promised_delivery_latest,
       e.delivery_latest AS estimated_delivery_latest,
       e.delivery_latest - o.promised_delivery_latest AS days_late,
       CASE WHEN NOT e.known THEN 'unknown: ' || e.note
            ELSE 'late' END AS risk
  FROM @extschema@.orders o
 CROSS JOIN LATERAL @extschema@.estimate_order_delivery(o.order_id) e
 WHERE @extschema@.status_class('order', o.status) IN ('pending', 'open', 'held')
   AND o.promised_delivery_latest IS NOT NULL
   AND (NOT e.known OR e.delivery_latest > o.promised_delivery_latest)
$$;

CREATE OR REPLACE VIEW @extschema@.orders_at_risk AS
SELECT order_id, status, promised_delivery_latest, estimated_delivery_latest, days_late, risk
  FROM @extschema@.at_risk_orders();


------------------------------------------------------------------------
-- Data
------------------------------------------------------------------------
-- Orders on a stock hold wait in the queue like backorders: their
-- unreserved units are qty_backordered.
UPDATE @extschema@.order_lines l
   SET qty_backordered = l.qty - l.qty_reserved - l.qty_shipped - l.qty_cancelled
  FROM @extschema@.orders o
 WHERE o.order_id = l.order_id AND o.status = 'on_hold'
   AND l.qty - l.qty_reserved - l.qty_shipped - l.qty_cancelled > l.qty_backordered
   AND EXISTS (SELECT 1 FROM @extschema@.order_holds h
                WHERE h.order_id = o.order_id AND h.kind = 'stock' AND h.released_at IS NULL);

-- Credit approvals of credit customers' orders: a passed credit check, a
-- released credit hold, or a status that 0.3.0 counted as exposure.  The
-- trigger order_mgmt_money computes each order's exposure and adds it to
-- credit_accounts.
UPDATE @extschema@.orders o
   SET credit_approved_at = coalesce(
           (SELECT min(e.occurred_at) FROM @extschema@.events e
             WHERE e.order_id = o.order_id AND e.event_type = 'order.credit_checked'
               AND (e.payload->>'passed')::boolean),
           (SELECT min(h.released_at) FROM @extschema@.order_holds h
             WHERE h.order_id = o.order_id AND h.kind = 'credit' AND h.released_at IS NOT NULL),
           o.placed_at)
  FROM @extschema@.customers c
 WHERE c.customer_id = o.customer_id AND c.payment_terms = 'credit'
   AND (EXISTS (SELECT 1 FROM @extschema@.events e
                 WHERE e.order_id = o.order_id AND e.event_type = 'order.credit_checked'
                   AND (e.payload->>'passed')::boolean)
        OR EXISTS (SELECT 1 FROM @extschema@.order_holds h
                    WHERE h.order_id = o.order_id AND h.kind = 'credit'
                      AND h.released_at IS NOT NULL)
        OR o.status IN ('confirmed', 'processing', 'partially_shipped', 'shipped', 'delivered',
                        'completed')
        OR o.held_from IN ('confirmed', 'processing'));

------------------------------------------------------------------------
-- pg_dump support and privileges
------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('@extschema@.statuses', 'WHERE NOT is_seed');

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.status_class(text, text), @extschema@.current_actor()
    TO PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.estimate_order_delivery(bigint) FROM order_mgmt_reader;
GRANT EXECUTE ON FUNCTION @extschema@.at_risk_orders() TO order_mgmt_reader, order_mgmt_operator;
GRANT SELECT ON @extschema@.statuses, @extschema@.stock_pending, @extschema@.stock,
                @extschema@.credit_accounts
    TO order_mgmt_operator;
