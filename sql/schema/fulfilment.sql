-- Fulfilment (0.5.0): release to the warehouse, preparation (pick, pack,
-- label), dispatch, carrier tracking and delivery; the order's status that
-- follows its shipments; the customer-facing view order_overview.
-- docs/fulfilment.md explains the decisions.  Lock order as everywhere
-- (src/stock.c): the order row first (lock_order), stock never held.
--
-- Where each rule lives:
-- - which units are in a shipment being prepared: the view allocated_units;
-- - what a shipment step does to lines and stock, whatever the path (the
--   API, set_status, a direct UPDATE): the triggers order_mgmt_shipment_dates
--   and order_mgmt_shipment_moved below;
-- - which status an order's lines imply, and that an order's shipping or
--   delivered status agrees with them: src/fulfilment.c (the lifecycle
--   trigger calls the check on every move);
-- - the delivery window of a parcel in transit: estimate_transit (C,
--   src/promise.c, the promise engine's transit rules).

------------------------------------------------------------------------
-- Carrier checkpoints, keyed by order_id like every order-scoped table.
-- carrier_event_id is globally unique (SPEC.md section 2; on Citus it
-- needs a lookup table keyed by carrier_event_id, like tracking_number).
------------------------------------------------------------------------
CREATE SEQUENCE @extschema@.tracking_events_tracking_event_id_seq;

CREATE TABLE @extschema@.tracking_events (
    order_id          bigint NOT NULL,
    tracking_event_id bigint NOT NULL
                      DEFAULT nextval('@extschema@.tracking_events_tracking_event_id_seq'),
    shipment_id       bigint NOT NULL,
    carrier_event_id  text NOT NULL
                      CHECK (carrier_event_id <> '' AND length(carrier_event_id) <= 200),
    code              text NOT NULL,
    occurred_at       timestamptz NOT NULL,
    location          text CHECK (length(location) <= 200),
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    actor             text NOT NULL,
    PRIMARY KEY (order_id, tracking_event_id),
    CONSTRAINT tracking_events_carrier_event_id_key UNIQUE (carrier_event_id),
    FOREIGN KEY (order_id, shipment_id) REFERENCES @extschema@.shipments ON DELETE CASCADE
);
ALTER SEQUENCE @extschema@.tracking_events_tracking_event_id_seq
    OWNED BY @extschema@.tracking_events.tracking_event_id;
CREATE INDEX tracking_events_shipment_idx
    ON @extschema@.tracking_events (order_id, shipment_id);

------------------------------------------------------------------------
-- C entry points
------------------------------------------------------------------------
-- The status an order's lines imply (partially_shipped, shipped,
-- delivered), null when nothing has shipped (src/fulfilment.c).
CREATE FUNCTION @extschema@.lines_status(order_id bigint) RETURNS text
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lines_status';

-- The delivery window of a parcel whose transit (re)starts at restart_at
-- (dispatch, a delay, a failed attempt): the promise engine's transit and
-- delivery-day rules from that day; known = false and a note instead of a
-- guess (src/promise.c).
CREATE FUNCTION @extschema@.estimate_transit(
    warehouse_id text, service_id text, country text, postal_code text,
    restart_at timestamptz,
    OUT delivery_earliest date, OUT delivery_latest date, OUT known boolean, OUT note text)
RETURNS record
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'estimate_transit';

------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------
-- The reason of a step: order_mgmt.reason when set, else p_default.
CREATE FUNCTION @extschema@.step_reason(p_default text)
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN coalesce(nullif(current_setting('order_mgmt.reason', true), ''), p_default);
END;
$$;

-- Move a shipment to a status through the lifecycle trigger, with a reason.
CREATE FUNCTION @extschema@.move_shipment(p_order bigint, p_shipment bigint, p_status text,
                                          p_reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_saved text := current_setting('order_mgmt.reason', true);
BEGIN
    PERFORM @extschema@.set_reason(p_reason);
    UPDATE @extschema@.shipments x SET status = p_status
     WHERE x.order_id = p_order AND x.shipment_id = p_shipment;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

/*
 * Lock the order of a shipment (lock_order: the order row comes first in
 * the lock order), check the order's status class (require_class: OM010,
 * OM006 once goods have left; p_classes null: no check) and return the
 * shipment as it is now.  OM004 when the shipment does not exist.
 */
CREATE FUNCTION @extschema@.lock_shipment(p_shipment bigint, p_classes text[], p_action text)
RETURNS @extschema@.shipments
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_order bigint;
    sh      @extschema@.shipments;
BEGIN
    IF p_shipment IS NULL THEN
        RAISE EXCEPTION 'shipment_id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT x.order_id INTO v_order FROM @extschema@.shipments x WHERE x.shipment_id = p_shipment;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'shipment % does not exist', p_shipment USING ERRCODE = 'OM004';
    END IF;
    IF p_classes IS NULL THEN
        PERFORM @extschema@.lock_order(v_order);
    ELSE
        PERFORM @extschema@.require_class(@extschema@.lock_order(v_order), p_classes, p_action);
    END IF;
    SELECT * INTO sh FROM @extschema@.shipments x
     WHERE x.order_id = v_order AND x.shipment_id = p_shipment;
    RETURN sh;
END;
$$;

-- OM010 unless the shipment's status class is one of p_classes.
CREATE FUNCTION @extschema@.require_shipment_class(sh @extschema@.shipments, p_classes text[],
                                                   p_action text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_class text := @extschema@.status_class('shipment', sh.status);
BEGIN
    IF v_class = ANY (p_classes) THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'shipment % cannot be %', sh.shipment_id, p_action
        USING ERRCODE = 'OM010',
              DETAIL = format('Shipment %s is %s (class %s); this needs class %s.', sh.shipment_id,
                              sh.status, coalesce(v_class, 'none'),
                              array_to_string(p_classes, ' or '));
END;
$$;

/*
 * The start of a preparation step (pick, pack, label, dispatch): the order
 * locked and open or shipping (not held, not closed), the shipment being
 * prepared and not already in p_target.  The lifecycle trigger then
 * decides whether the move itself is an edge (OM001).
 */
CREATE FUNCTION @extschema@.begin_step(p_shipment bigint, p_target text, p_action text)
RETURNS @extschema@.shipments
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    sh @extschema@.shipments;
BEGIN
    sh := @extschema@.lock_shipment(p_shipment, '{open,shipping}', p_action);
    PERFORM @extschema@.require_shipment_class(sh, '{preparing}', p_action);
    IF sh.status = p_target THEN
        RAISE EXCEPTION 'shipment % is already %', sh.shipment_id, p_target
            USING ERRCODE = 'OM010';
    END IF;
    RETURN sh;
END;
$$;

/*
 * Units of each order line promised to shipments being prepared (status
 * class preparing).  The one home of that rule: release_to_warehouse ships
 * the rest of the reservation, cancel_line cannot take these units, and
 * order_overview counts what is in no shipment yet.  A cancelled shipment
 * promises nothing, so its units are the order's reservation again; a
 * dispatched one has turned them into qty_shipped.  (A view, so the
 * reader's order_overview can use it with the view owner's rights.)
 */
CREATE VIEW @extschema@.allocated_units AS
SELECT sl.order_id, sl.line_no, sum(sl.qty)::int AS qty
  FROM @extschema@.shipment_lines sl
  JOIN @extschema@.shipments s ON s.order_id = sl.order_id AND s.shipment_id = sl.shipment_id
 WHERE @extschema@.status_class('shipment', s.status) = 'preparing'
 GROUP BY sl.order_id, sl.line_no;

------------------------------------------------------------------------
-- The order follows its shipments
------------------------------------------------------------------------
/*
 * After a shipment step changed the lines of an order: move the order to
 * the status its lines imply (lines_status, C) along an edge of the graph,
 * as automation, and mark it changed (updated_at, as lock_order does, once
 * per transaction).  An order whose status has no edge to it (a custom
 * status of the same class, a closed order) stays where it is; the
 * lifecycle trigger refuses any move that disagrees with the lines.
 * Returns the order's status.
 */
CREATE FUNCTION @extschema@.rollup_order(p_order bigint, p_reason text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET order_mgmt.automated = on
AS $$
DECLARE
    v_status  text;
    v_implied text := @extschema@.lines_status(p_order);
    v_edge    boolean;
    v_saved   text;
    v_now     timestamptz := clock_timestamp();     -- (Citus takes no volatile call in an UPDATE)
BEGIN
    SELECT x.status, t.to_status IS NOT NULL INTO v_status, v_edge
      FROM @extschema@.orders x
      LEFT JOIN @extschema@.transitions t
             ON t.entity = 'order' AND t.from_status = x.status AND t.to_status = v_implied
     WHERE x.order_id = p_order;
    IF v_implied IS NULL OR v_implied = v_status OR NOT v_edge THEN
        IF NOT @extschema@.order_locked_here(p_order) THEN
            UPDATE @extschema@.orders x SET updated_at = v_now WHERE x.order_id = p_order;
            PERFORM @extschema@.note_order_locked(p_order);
        END IF;
        RETURN v_status;
    END IF;
    v_saved := current_setting('order_mgmt.reason', true);
    PERFORM @extschema@.set_reason(p_reason);
    UPDATE @extschema@.orders x SET status = v_implied, updated_at = v_now
     WHERE x.order_id = p_order;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
    RETURN v_implied;
END;
$$;

/*
 * BEFORE UPDATE OF status on shipments, when the status class changes to
 * one after preparation, by any path (the API, set_status, a direct
 * UPDATE).  Leaving preparation is the dispatch: dispatched_at (now unless
 * given) and the estimated delivery window counted from the dispatch
 * (estimate_transit, when it is known).  Entering the delivered class:
 * delivered_at (now unless given; record_tracking_event gives the
 * carrier's time).  Fires after order_mgmt_lifecycle (name order).
 */
CREATE FUNCTION @extschema@.shipments_dates()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e record;
BEGIN
    IF @extschema@.status_class('shipment', OLD.status) = 'preparing' THEN
        NEW.dispatched_at := coalesce(NEW.dispatched_at, now());
        IF NEW.service_id IS NOT NULL THEN
            SELECT t.* INTO e
              FROM @extschema@.orders o,
                   @extschema@.estimate_transit(NEW.warehouse_id, NEW.service_id, o.ship_to_country,
                                                o.ship_to_postal, NEW.dispatched_at) t
             WHERE o.order_id = NEW.order_id;
            IF e.known THEN
                NEW.estimated_delivery_earliest := e.delivery_earliest;
                NEW.estimated_delivery_latest := e.delivery_latest;
            END IF;
        END IF;
    END IF;
    IF @extschema@.status_class('shipment', NEW.status) = 'delivered' THEN
        NEW.delivered_at := coalesce(NEW.delivered_at, now());
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_mgmt_shipment_dates
    BEFORE UPDATE OF status ON @extschema@.shipments
    FOR EACH ROW
    WHEN (@extschema@.class_entered('shipment', OLD.status, NEW.status,
                                    '{in_transit,delivered,failed}'))
    EXECUTE FUNCTION @extschema@.shipments_dates();

/*
 * AFTER UPDATE OF status on shipments, the same moves as
 * order_mgmt_shipment_dates, by any path.  The order row is locked first
 * (rollup_order then marks it changed, as lock_order would).
 * Leaving preparation (the dispatch): only for an order that is open or
 * shipping (OM010 when held); each shipment line consumes its units'
 * reservation (a 'ship' movement: on_hand and reserved both drop), and
 * qty_reserved becomes qty_shipped.  Entering the delivered class: the
 * lines' qty_delivered.  Then the order rolls up (rollup_order).
 * SECURITY DEFINER: it writes stock and lines as the owner.
 */
CREATE FUNCTION @extschema@.shipments_moved()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o      @extschema@.orders;
    l      record;
    v_left boolean := @extschema@.status_class('shipment', OLD.status) = 'preparing';
    v_reason text := format('shipment %s %s', NEW.shipment_id, NEW.status);
BEGIN
    SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = NEW.order_id FOR UPDATE;
    IF v_left THEN
        PERFORM @extschema@.require_class(o, '{open,shipping}', 'shipped');
        FOR l IN SELECT sl.line_no, sl.qty, ol.sku, ol.warehouse_id, ol.qty_reserved
                   FROM @extschema@.shipment_lines sl
                   JOIN @extschema@.order_lines ol
                     ON ol.order_id = sl.order_id AND ol.line_no = sl.line_no
                  WHERE sl.order_id = NEW.order_id AND sl.shipment_id = NEW.shipment_id
                  ORDER BY sl.line_no LOOP
            IF l.qty > l.qty_reserved OR l.warehouse_id IS DISTINCT FROM NEW.warehouse_id THEN
                RAISE EXCEPTION 'shipment % cannot ship % unit(s) of line %', NEW.shipment_id, l.qty,
                                l.line_no
                    USING ERRCODE = 'OM032',
                          DETAIL = format('Line %s of order %s has %s unit(s) reserved in warehouse %s; the shipment leaves from %s.',
                                          l.line_no, NEW.order_id, l.qty_reserved,
                                          coalesce(l.warehouse_id, 'none'), NEW.warehouse_id),
                          HINT = 'Create shipments with order_mgmt.release_to_warehouse.';
            END IF;
            PERFORM @extschema@.stock_move(NEW.warehouse_id, l.sku, 'ship', -l.qty, -l.qty,
                                           NEW.order_id, l.line_no,
                                           'shipment ' || NEW.shipment_id);
        END LOOP;
        UPDATE @extschema@.order_lines ol
           SET qty_reserved = ol.qty_reserved - sl.qty, qty_shipped = ol.qty_shipped + sl.qty
          FROM @extschema@.shipment_lines sl
         WHERE sl.order_id = NEW.order_id AND sl.shipment_id = NEW.shipment_id
           AND ol.order_id = sl.order_id AND ol.line_no = sl.line_no;
    END IF;
    IF @extschema@.status_class('shipment', NEW.status) = 'delivered' THEN
        UPDATE @extschema@.order_lines ol
           SET qty_delivered = ol.qty_delivered + sl.qty
          FROM @extschema@.shipment_lines sl
         WHERE sl.order_id = NEW.order_id AND sl.shipment_id = NEW.shipment_id
           AND ol.order_id = sl.order_id AND ol.line_no = sl.line_no;
    END IF;
    PERFORM @extschema@.rollup_order(NEW.order_id, v_reason);
    RETURN NULL;
END;
$$;

CREATE TRIGGER order_mgmt_shipment_moved
    AFTER UPDATE OF status ON @extschema@.shipments
    FOR EACH ROW
    WHEN (@extschema@.class_entered('shipment', OLD.status, NEW.status,
                                    '{in_transit,delivered,failed}'))
    EXECUTE FUNCTION @extschema@.shipments_moved();

------------------------------------------------------------------------
-- Processing and preparation (SPEC.md section 4)
------------------------------------------------------------------------
/*
 * Release a confirmed order to its warehouses: one shipment per warehouse
 * for the reserved units not yet in a shipment (allocated_units), with its
 * lines; the order moves to processing.  May be called again (also once
 * the order is partially shipped): units reserved since (a backorder
 * filled by a receipt) get shipments of their own; with nothing new it
 * creates nothing and returns 0.  Returns the number of shipments created.
 */
CREATE FUNCTION @extschema@.release_to_warehouse(order_id bigint)
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o    @extschema@.orders;
    w    record;
    v_id bigint;
    v_n  int := 0;
BEGIN
    o := @extschema@.lock_order(release_to_warehouse.order_id);
    PERFORM @extschema@.require_class(o, '{open,shipping}', 'released to the warehouse');
    IF @extschema@.status_class('order', o.status) = 'open' AND o.status <> 'processing' THEN
        PERFORM @extschema@.move_order(o.order_id, 'processing',
                                       @extschema@.step_reason('released to the warehouse'));
    END IF;
    FOR w IN SELECT l.warehouse_id,
                    array_agg(l.line_no ORDER BY l.line_no) AS line_nos,
                    array_agg(l.qty_reserved - coalesce(a.qty, 0) ORDER BY l.line_no) AS qtys
               FROM @extschema@.order_lines l
               LEFT JOIN @extschema@.allocated_units a
                      ON a.order_id = l.order_id AND a.line_no = l.line_no
              WHERE l.order_id = o.order_id AND l.qty_reserved > coalesce(a.qty, 0)
              GROUP BY l.warehouse_id
              ORDER BY l.warehouse_id COLLATE "C" LOOP
        INSERT INTO @extschema@.shipments AS s (order_id, warehouse_id)
        VALUES (o.order_id, w.warehouse_id)
        RETURNING s.shipment_id INTO v_id;
        INSERT INTO @extschema@.shipment_lines (order_id, shipment_id, line_no, qty)
        SELECT o.order_id, v_id, x.line_no, x.qty FROM unnest(w.line_nos, w.qtys) x(line_no, qty);
        PERFORM @extschema@.emit_event(o.order_id, 'shipment', v_id, 'shipment.created', NULL,
            'pending', @extschema@.step_reason('released to the warehouse'),
            jsonb_build_object('warehouse_id', w.warehouse_id, 'line_nos', to_jsonb(w.line_nos),
                               'qtys', to_jsonb(w.qtys)));
        v_n := v_n + 1;
    END LOOP;
    RETURN v_n;
END;
$$;

CREATE FUNCTION @extschema@.start_picking(shipment_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sh    @extschema@.shipments := @extschema@.begin_step(start_picking.shipment_id, 'picking', 'picked');
    v_qty bigint;
BEGIN
    -- (read first: on Citus a statement that reads a shard and calls a
    -- function runs on the worker, where the function may not query)
    SELECT sum(l.qty) INTO v_qty FROM @extschema@.shipment_lines l
     WHERE l.order_id = sh.order_id AND l.shipment_id = sh.shipment_id;
    PERFORM @extschema@.move_shipment(sh.order_id, sh.shipment_id, 'picking',
        @extschema@.step_reason(format('%s unit(s) to pick in %s', v_qty, sh.warehouse_id)));
END;
$$;

CREATE FUNCTION @extschema@.pack_shipment(shipment_id bigint, weight_g int, length_mm int,
                                          width_mm int, height_mm int, package_count int DEFAULT 1)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sh      @extschema@.shipments;
    v_saved text := current_setting('order_mgmt.reason', true);
BEGIN
    IF weight_g IS NULL OR length_mm IS NULL OR width_mm IS NULL OR height_mm IS NULL
       OR package_count IS NULL THEN
        RAISE EXCEPTION 'weight_g, length_mm, width_mm, height_mm and package_count must not be null'
            USING ERRCODE = '22004';
    END IF;
    IF weight_g <= 0 OR length_mm <= 0 OR width_mm <= 0 OR height_mm <= 0 OR package_count <= 0 THEN
        RAISE EXCEPTION 'weight, dimensions and package count must be positive'
            USING ERRCODE = '22023',
                  DETAIL = format('Got weight_g %s, length_mm %s, width_mm %s, height_mm %s, package_count %s.',
                                  weight_g, length_mm, width_mm, height_mm, package_count);
    END IF;
    sh := @extschema@.begin_step(pack_shipment.shipment_id, 'packed', 'packed');
    PERFORM @extschema@.set_reason(@extschema@.step_reason(
        format('%s package(s), %s g, %sx%sx%s mm', package_count, weight_g, length_mm, width_mm,
               height_mm)));
    UPDATE @extschema@.shipments x
       SET status = 'packed', weight_g = pack_shipment.weight_g, length_mm = pack_shipment.length_mm,
           width_mm = pack_shipment.width_mm, height_mm = pack_shipment.height_mm,
           package_count = pack_shipment.package_count
     WHERE x.order_id = sh.order_id AND x.shipment_id = sh.shipment_id;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

/*
 * Label a packed shipment: the carrier, its service (choose_service picks
 * one), the tracking number (unique: record_tracking_event finds the
 * shipment by it; OM005 when another shipment has it, 23505 when two
 * sessions take the same number at the same moment) and the label.
 */
CREATE FUNCTION @extschema@.label_shipment(shipment_id bigint, carrier text, service_id text,
                                           tracking_number text, label_ref text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sh      @extschema@.shipments;
    s       @extschema@.services;
    v_other bigint;
    v_saved text := current_setting('order_mgmt.reason', true);
BEGIN
    IF carrier IS NULL OR service_id IS NULL OR tracking_number IS NULL THEN
        RAISE EXCEPTION 'carrier, service_id and tracking_number must not be null'
            USING ERRCODE = '22004';
    END IF;
    IF btrim(carrier) = '' OR length(carrier) > 64 OR btrim(tracking_number) = ''
       OR length(tracking_number) > 100 OR length(label_ref) > 2000 THEN
        RAISE EXCEPTION 'invalid carrier, tracking number or label reference'
            USING ERRCODE = '22023',
                  DETAIL = 'carrier has 1 to 64 characters, tracking_number 1 to 100, label_ref at most 2000.';
    END IF;
    SELECT * INTO s FROM @extschema@.services x WHERE x.service_id = label_shipment.service_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'service "%" does not exist', service_id
            USING ERRCODE = 'OM004', HINT = 'order_mgmt.choose_service proposes one.';
    END IF;
    IF s.carrier <> carrier OR NOT s.active THEN
        RAISE EXCEPTION 'service "%" cannot be used by carrier "%"', service_id, carrier
            USING ERRCODE = '22023',
                  DETAIL = format('Service %s is run by %s and is %s.', s.service_id, s.carrier,
                                  CASE WHEN s.active THEN 'active' ELSE 'not active' END);
    END IF;
    sh := @extschema@.begin_step(label_shipment.shipment_id, 'labelled', 'labelled');
    -- on Citus the number's claim decides (shipments is distributed by order)
    IF @extschema@.citus_active() THEN
        v_other := nullif((@extschema@.claim_key('tracking_number', tracking_number, sh.order_id,
                                                 sh.shipment_id, NULL)).entity_id, sh.shipment_id);
    ELSE
        SELECT x.shipment_id INTO v_other FROM @extschema@.shipments x
         WHERE x.tracking_number = label_shipment.tracking_number;
    END IF;
    IF v_other IS NOT NULL THEN
        RAISE EXCEPTION 'tracking number "%" is already used by shipment %', tracking_number, v_other
            USING ERRCODE = 'OM005', HINT = 'Each shipment needs its own tracking number.';
    END IF;
    PERFORM @extschema@.set_reason(@extschema@.step_reason(
        format('%s %s %s', carrier, service_id, tracking_number)));
    UPDATE @extschema@.shipments x
       SET status = 'labelled', carrier = label_shipment.carrier,
           service_id = label_shipment.service_id,
           tracking_number = label_shipment.tracking_number, label_ref = label_shipment.label_ref
     WHERE x.order_id = sh.order_id AND x.shipment_id = sh.shipment_id;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

-- Hand a labelled shipment to its carrier; order_mgmt_shipment_moved
-- consumes the reservations, sets qty_shipped and rolls the order up.
CREATE FUNCTION @extschema@.dispatch_shipment(shipment_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sh @extschema@.shipments := @extschema@.begin_step(dispatch_shipment.shipment_id, 'dispatched',
                                                       'dispatched');
BEGIN
    PERFORM @extschema@.move_shipment(sh.order_id, sh.shipment_id, 'dispatched',
        @extschema@.step_reason(format('handed to %s, tracking number %s', sh.carrier,
                                       sh.tracking_number)));
END;
$$;

/*
 * Cancel a shipment before it is dispatched.  Its units stay reserved for
 * the order (they are no longer promised to a shipment, allocated_units):
 * release_to_warehouse puts them in a new shipment, cancel_line or
 * cancel_order gives them back to stock.  OM006 once dispatched.
 */
CREATE FUNCTION @extschema@.cancel_shipment(shipment_id bigint, reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sh      @extschema@.shipments;
    v_class text;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a cancellation needs a reason' USING ERRCODE = '22004';
    END IF;
    -- the shipment's own status decides (a cancelled order's shipments
    -- are cancelled already, a delivered order's have left)
    sh := @extschema@.lock_shipment(cancel_shipment.shipment_id, NULL, 'changed');
    v_class := @extschema@.status_class('shipment', sh.status);
    IF v_class IN ('in_transit', 'delivered', 'failed') THEN
        RAISE EXCEPTION 'shipment % cannot be cancelled', sh.shipment_id
            USING ERRCODE = 'OM006',
                  DETAIL = format('Shipment %s is %s: it left warehouse %s at %s.', sh.shipment_id,
                                  sh.status, sh.warehouse_id, sh.dispatched_at),
                  HINT = 'A dispatched shipment ends delivered, returned_to_sender or lost.';
    END IF;
    PERFORM @extschema@.require_shipment_class(sh, '{preparing}', 'cancelled');
    PERFORM @extschema@.move_shipment(sh.order_id, sh.shipment_id, 'cancelled', reason);
END;
$$;

------------------------------------------------------------------------
-- Dispatch tracking (SPEC.md section 4)
------------------------------------------------------------------------
/*
 * The checkpoint codes: the statuses a shipment in transit can move to (an
 * edge from a status of class in_transit).  For the seed graph these are
 * SPEC.md section 4's codes; a status added to the graph after dispatch is
 * a code too.
 */
CREATE FUNCTION @extschema@.is_checkpoint_code(p_code text)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM @extschema@.transitions t
                    WHERE t.entity = 'shipment' AND t.to_status = p_code
                      AND @extschema@.status_class('shipment', t.from_status) = 'in_transit');
END;
$$;

/*
 * Does checkpoint c take the place of e as the one its shipment's status
 * follows?  The rule that makes arrival order irrelevant: the later
 * occurred_at wins (equal: the greater carrier_event_id, byte order); a
 * checkpoint of a final class (delivered, failed) wins over any other, and
 * of two final ones the earlier wins (a final status is never left).
 */
CREATE FUNCTION @extschema@.checkpoint_supersedes(c @extschema@.tracking_events,
                                                  e @extschema@.tracking_events)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    c_final boolean := @extschema@.status_class('shipment', c.code) IN ('delivered', 'failed');
    c_later boolean;
BEGIN
    IF e.tracking_event_id IS NULL THEN
        RETURN true;
    END IF;
    c_later := c.occurred_at > e.occurred_at
               OR (c.occurred_at = e.occurred_at
                   AND c.carrier_event_id COLLATE "C" > e.carrier_event_id COLLATE "C");
    IF @extschema@.status_class('shipment', e.code) IN ('delivered', 'failed') THEN
        RETURN c_final AND NOT c_later;
    END IF;
    RETURN c_final OR c_later;
END;
$$;

/*
 * The statuses a shipment passes from p_from to p_to along the graph (p_to
 * last): '{}' when they are equal, NULL when p_to cannot be reached.
 * Carriers skip scans (a parcel is often delivered without an
 * out_for_delivery scan); the steps between are inferred.  Shortest path,
 * ties by the names of its statuses; at most 6 steps.
 */
CREATE FUNCTION @extschema@.shipment_path(p_from text, p_to text)
RETURNS text[]
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_path text[];
BEGIN
    IF p_from = p_to THEN
        RETURN '{}';
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.transitions t
                WHERE t.entity = 'shipment' AND t.from_status = p_from AND t.to_status = p_to) THEN
        RETURN ARRAY[p_to];
    END IF;
    WITH RECURSIVE walk(status, path) AS (
        SELECT t.to_status, ARRAY[t.to_status]
          FROM @extschema@.transitions t
         WHERE t.entity = 'shipment' AND t.from_status = p_from
        UNION ALL
        SELECT t.to_status, w.path || t.to_status
          FROM walk w
          JOIN @extschema@.transitions t ON t.entity = 'shipment' AND t.from_status = w.status
         WHERE w.status <> p_to AND cardinality(w.path) < 6
           AND t.to_status <> p_from AND t.to_status <> ALL (w.path))
    SELECT w.path INTO v_path FROM walk w WHERE w.status = p_to
     ORDER BY cardinality(w.path), array_to_string(w.path, ',') COLLATE "C"
     LIMIT 1;
    RETURN v_path;
END;
$$;

/*
 * A carrier checkpoint (an automated step).  Stores it once per
 * carrier_event_id (a repeat with the same content returns false and
 * changes nothing; other content is OM005) and writes the event
 * shipment.checkpoint.  The shipment's status follows the checkpoint that
 * supersedes all others (checkpoint_supersedes), along the graph
 * (shipment_path, inferred steps included); an older one is stored and
 * never moves it backwards, nor does anything move a shipment in a final
 * status.  delivered sets delivered_at to the carrier's time (the
 * shipment trigger sets qty_delivered and rolls the order up).  delayed
 * and failed_attempt restart the estimated window from the latest of them
 * (estimate_transit), whatever the order of arrival.
 */
CREATE FUNCTION @extschema@.record_tracking_event(
    tracking_number text, carrier_event_id text, code text, occurred_at timestamptz,
    location text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET order_mgmt.automated = on
AS $$
DECLARE
    v_order  bigint;
    sh       @extschema@.shipments;
    c        @extschema@.tracking_events;
    e        @extschema@.tracking_events;
    v_path   text[];
    v_step   text;
    v_final  boolean;
    v_window record;
    v_saved  text := current_setting('order_mgmt.reason', true);
    v_reason text;
    v_id     bigint;
    k        @extschema@.business_keys;
BEGIN
    IF tracking_number IS NULL OR carrier_event_id IS NULL OR code IS NULL
       OR occurred_at IS NULL THEN
        RAISE EXCEPTION 'tracking_number, carrier_event_id, code and occurred_at must not be null'
            USING ERRCODE = '22004';
    END IF;
    IF btrim(carrier_event_id) = '' OR length(carrier_event_id) > 200
       OR length(location) > 200 THEN
        RAISE EXCEPTION 'invalid carrier_event_id or location'
            USING ERRCODE = '22023',
                  DETAIL = 'carrier_event_id has 1 to 200 characters, location at most 200.';
    END IF;
    IF NOT isfinite(occurred_at) THEN
        RAISE EXCEPTION 'occurred_at must be a finite time' USING ERRCODE = '22008';
    END IF;
    IF NOT @extschema@.is_checkpoint_code(code) THEN
        RAISE EXCEPTION 'unknown checkpoint code "%"', code
            USING ERRCODE = 'OM031',
                  DETAIL = 'Codes are in_transit, out_for_delivery, delayed, failed_attempt, delivered, returned_to_sender and lost.';
    END IF;
    IF @extschema@.citus_active() THEN
        SELECT b.order_id INTO v_order FROM @extschema@.business_keys b
         WHERE b.key = record_tracking_event.tracking_number AND b.kind = 'tracking_number';
    ELSE
        SELECT x.order_id INTO v_order FROM @extschema@.shipments x
         WHERE x.tracking_number = record_tracking_event.tracking_number;
    END IF;
    IF v_order IS NULL THEN
        RAISE EXCEPTION 'no shipment has tracking number "%"', tracking_number
            USING ERRCODE = 'OM004', HINT = 'label_shipment records the tracking number.';
    END IF;
    PERFORM @extschema@.lock_order(v_order);
    SELECT * INTO sh FROM @extschema@.shipments x
     WHERE x.order_id = v_order AND x.tracking_number = record_tracking_event.tracking_number;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no shipment has tracking number "%"', tracking_number
            USING ERRCODE = 'OM004';
    END IF;
    IF @extschema@.status_class('shipment', sh.status) IN ('preparing', 'cancelled') THEN
        RAISE EXCEPTION 'shipment % has not been dispatched', sh.shipment_id
            USING ERRCODE = 'OM010',
                  DETAIL = format('Shipment %s (tracking number %s) is %s.', sh.shipment_id,
                                  tracking_number, sh.status),
                  HINT = 'Checkpoints follow order_mgmt.dispatch_shipment.';
    END IF;

    -- once per carrier_event_id: a concurrent twin waits for the first here
    -- (on Citus at the id's claim, on a single node at its UNIQUE)
    v_id := nextval('@extschema@.tracking_events_tracking_event_id_seq');
    IF @extschema@.citus_active() THEN
        k := @extschema@.claim_key('carrier_event_id', carrier_event_id, sh.order_id, v_id, NULL);
    END IF;
    IF k.key IS NULL OR k.entity_id = v_id THEN
        INSERT INTO @extschema@.tracking_events AS t
            (order_id, tracking_event_id, shipment_id, carrier_event_id, code, occurred_at,
             location, actor)
        VALUES (sh.order_id, v_id, sh.shipment_id, record_tracking_event.carrier_event_id,
                record_tracking_event.code, record_tracking_event.occurred_at,
                record_tracking_event.location, @extschema@.current_actor())
        ON CONFLICT DO NOTHING
        RETURNING * INTO c;
    END IF;
    IF c.tracking_event_id IS NULL THEN
        IF k.key IS NOT NULL THEN
            SELECT * INTO c FROM @extschema@.tracking_events t
             WHERE t.order_id = k.order_id AND t.tracking_event_id = k.entity_id;
        ELSE
            SELECT * INTO c FROM @extschema@.tracking_events t
             WHERE t.carrier_event_id = record_tracking_event.carrier_event_id;
        END IF;
        IF c.order_id = sh.order_id AND c.shipment_id = sh.shipment_id
           AND c.code = record_tracking_event.code
           AND c.occurred_at = record_tracking_event.occurred_at
           AND c.location IS NOT DISTINCT FROM record_tracking_event.location THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION 'carrier_event_id "%" is already used with other content', carrier_event_id
            USING ERRCODE = 'OM005',
                  DETAIL = format('Stored: shipment %s, %s at %s, location %s.', c.shipment_id,
                                  c.code, c.occurred_at, coalesce(c.location, 'none'));
    END IF;

    SELECT * INTO e FROM @extschema@.tracking_events t
     WHERE t.order_id = sh.order_id AND t.tracking_event_id = sh.last_checkpoint_id;
    IF @extschema@.checkpoint_supersedes(c, e) THEN
        v_path := @extschema@.shipment_path(sh.status, code);
    END IF;
    v_reason := @extschema@.step_reason(format('carrier checkpoint %s at %s%s', code, occurred_at,
                                               coalesce(' (' || location || ')', '')));
    PERFORM @extschema@.emit_event(sh.order_id, 'shipment', sh.shipment_id, 'shipment.checkpoint',
        NULL, NULL, v_reason,
        jsonb_build_object('tracking_event_id', c.tracking_event_id,
                           'carrier_event_id', carrier_event_id, 'code', code,
                           'occurred_at', occurred_at, 'location', location,
                           'applied', v_path IS NOT NULL));

    IF v_path IS NOT NULL THEN
        -- the steps on the way (inferred), then the checkpoint's own status
        -- with the checkpoint and, for a delivery, the carrier's time
        v_final := @extschema@.status_class('shipment', code) = 'delivered';
        FOREACH v_step IN ARRAY v_path[1:cardinality(v_path) - 1] LOOP
            PERFORM @extschema@.move_shipment(sh.order_id, sh.shipment_id, v_step,
                format('inferred from carrier checkpoint %s (%s)', carrier_event_id, code));
        END LOOP;
        PERFORM @extschema@.set_reason(v_reason);
        UPDATE @extschema@.shipments x
           SET status = code, last_checkpoint_id = c.tracking_event_id,
               delivered_at = CASE WHEN v_final THEN record_tracking_event.occurred_at
                                   ELSE x.delivered_at END
         WHERE x.order_id = sh.order_id AND x.shipment_id = sh.shipment_id;
        PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
    END IF;

    -- a delay or failed attempt restarts the window, from the latest of them
    IF code IN ('delayed', 'failed_attempt') AND sh.service_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.tracking_events t
                        WHERE t.order_id = sh.order_id AND t.shipment_id = sh.shipment_id
                          AND t.code IN ('delayed', 'failed_attempt')
                          AND (t.occurred_at > c.occurred_at
                               OR (t.occurred_at = c.occurred_at
                                   AND t.carrier_event_id COLLATE "C" > c.carrier_event_id COLLATE "C"))) THEN
        SELECT w.* INTO v_window
          FROM @extschema@.orders o,
               @extschema@.estimate_transit(sh.warehouse_id, sh.service_id, o.ship_to_country,
                                            o.ship_to_postal, c.occurred_at) w
         WHERE o.order_id = sh.order_id;
        IF v_window.known THEN
            UPDATE @extschema@.shipments x
               SET estimated_delivery_earliest = v_window.delivery_earliest,
                   estimated_delivery_latest = v_window.delivery_latest
             WHERE x.order_id = sh.order_id AND x.shipment_id = sh.shipment_id;
        END IF;
    END IF;
    RETURN true;
END;
$$;

------------------------------------------------------------------------
-- Where is my order: one row per order, for service agents and customer
-- pages (order_overview), with the current delivery window, which
-- open_order_risk also compares with the promise.  The window's rules, each
-- in one function that both views call (SQL expressions, inlined):
-- - shipment_window_counts: the windows of the shipments that are not
--   cancelled count;
-- - own_estimate_due: the order's own estimate (estimate_order_window, C)
--   counts while the order is in flight (order_in_flight) and has units
--   neither shipped nor in a shipment being prepared (allocated_units);
-- - current_window_bound: a bound of the window is the later of the two,
--   null (unknown; current_window_note says why) when the own estimate
--   counts and is unknown.
------------------------------------------------------------------------
-- Is an order of a class still on its way to the customer.
CREATE FUNCTION @extschema@.order_in_flight(status text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT @extschema@.status_class('order', status) IN ('pending', 'held', 'open', 'shipping')
$$;

-- Does a shipment's window count towards its order's current window.
CREATE FUNCTION @extschema@.shipment_window_counts(status text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT @extschema@.status_class('shipment', status) <> 'cancelled'
$$;

-- Does the order's own estimate count: in flight, with units neither
-- shipped (qty_unshipped: ordered - cancelled - shipped) nor in a shipment
-- being prepared (qty_allocated, null for none).
CREATE FUNCTION @extschema@.own_estimate_due(status text, qty_unshipped bigint,
                                             qty_allocated bigint)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT @extschema@.order_in_flight(status) AND qty_unshipped > coalesce(qty_allocated, 0)
$$;

-- A bound of the current window from the shipments' bound and the order's
-- own estimate (own_known null: the own estimate does not count).
CREATE FUNCTION @extschema@.current_window_bound(shipments_bound date, own_bound date,
                                                 own_known boolean)
RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN NOT coalesce(own_known, true) THEN NULL
                ELSE greatest(shipments_bound, own_bound) END
$$;

-- shipments: one JSON object per shipment, with its latest checkpoint (the
-- one its status follows).  failed_shipment_ids: the parcels that will not
-- arrive (class failed).  Each order's rows are read by its key, in
-- subqueries grouped by order_id (Citus pushes them down); the units in
-- shipments being prepared only when there is such a shipment, the lines
-- only for an order in flight.
CREATE VIEW @extschema@.order_overview AS
SELECT o.order_id, o.external_ref, o.customer_id, o.channel, o.status, o.payment_status,
       o.return_status, o.placed_at,
       o.promised_delivery_earliest, o.promised_delivery_latest,
       @extschema@.current_window_bound(s.estimated_earliest, e.delivery_earliest, e.known)
           AS current_delivery_earliest,
       @extschema@.current_window_bound(s.estimated_latest, e.delivery_latest, e.known)
           AS current_delivery_latest,
       e.note AS current_window_note,
       s.delivered_at,
       coalesce(s.shipments, '[]'::jsonb) AS shipments,
       s.failed_shipment_ids
  FROM @extschema@.orders o
  LEFT JOIN LATERAL (
        SELECT max(x.estimated_delivery_earliest)
                   FILTER (WHERE @extschema@.shipment_window_counts(x.status)) AS estimated_earliest,
               max(x.estimated_delivery_latest)
                   FILTER (WHERE @extschema@.shipment_window_counts(x.status)) AS estimated_latest,
               max(x.delivered_at) AS delivered_at,
               array_agg(x.shipment_id ORDER BY x.shipment_id)
                   FILTER (WHERE @extschema@.status_class('shipment', x.status) = 'failed')
                   AS failed_shipment_ids,
               CASE WHEN bool_or(@extschema@.status_class('shipment', x.status) = 'preparing') THEN
                    (SELECT sum(a.qty) FROM @extschema@.allocated_units a
                      WHERE a.order_id = x.order_id GROUP BY a.order_id) END AS qty_allocated,
               jsonb_agg(jsonb_build_object(
                   'shipment_id', x.shipment_id, 'warehouse_id', x.warehouse_id,
                   'status', x.status, 'carrier', x.carrier, 'service_id', x.service_id,
                   'tracking_number', x.tracking_number,
                   'estimated_delivery_earliest', x.estimated_delivery_earliest,
                   'estimated_delivery_latest', x.estimated_delivery_latest,
                   'dispatched_at', x.dispatched_at, 'delivered_at', x.delivered_at,
                   'latest_checkpoint', CASE WHEN t.tracking_event_id IS NOT NULL THEN
                       jsonb_build_object('code', t.code, 'occurred_at', t.occurred_at,
                                          'location', t.location) END)
                   ORDER BY x.shipment_id) AS shipments
          FROM @extschema@.shipments x
          LEFT JOIN @extschema@.tracking_events t
                 ON t.order_id = x.order_id AND t.tracking_event_id = x.last_checkpoint_id
         WHERE x.order_id = o.order_id
         GROUP BY x.order_id) s ON true
  -- (no function as a table in a subquery: Citus)
  LEFT JOIN LATERAL (
        SELECT (z.w).delivery_earliest, (z.w).delivery_latest, (z.w).known, (z.w).note
          FROM (SELECT @extschema@.estimate_order_window(ROW(o.*)::@extschema@.orders,
                           array_agg(ROW(l.*)::@extschema@.order_lines ORDER BY l.line_no)) AS w
                  FROM @extschema@.order_lines l
                 WHERE l.order_id = o.order_id AND @extschema@.order_in_flight(o.status)
                 GROUP BY l.order_id
                HAVING @extschema@.own_estimate_due(o.status,
                           sum(l.qty - l.qty_cancelled - l.qty_shipped), s.qty_allocated)) z) e
         ON true;
