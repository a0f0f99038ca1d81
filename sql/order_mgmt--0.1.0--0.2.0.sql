/* order_mgmt 0.1.0 -> 0.2.0: placement (credit, payments, stock reservation,
 * holds, cancellation, backorders) */

\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit

------------------------------------------------------------------------
-- Inventory.  stock is master data keyed by (warehouse_id, sku); every
-- change of on_hand or reserved is one inventory_movements row written in
-- the same statement (stock_move), so the ledger always sums to the stock
-- rows.  Movements are warehouse-scoped, not order-scoped: order_id and
-- line_no only say which order line a reserve/release was for.
------------------------------------------------------------------------
CREATE TABLE @extschema@.stock (
    warehouse_id text NOT NULL REFERENCES @extschema@.warehouses,
    sku          text NOT NULL REFERENCES @extschema@.products,
    on_hand      int NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved     int NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warehouse_id, sku),
    CONSTRAINT stock_reserved_le_on_hand CHECK (reserved <= on_hand)
);
CREATE INDEX stock_sku_idx ON @extschema@.stock (sku);

CREATE SEQUENCE @extschema@.inventory_movements_movement_id_seq;

CREATE TABLE @extschema@.inventory_movements (
    movement_id    bigint NOT NULL
                   DEFAULT nextval('@extschema@.inventory_movements_movement_id_seq'),
    warehouse_id   text NOT NULL,
    sku            text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('receipt', 'adjustment', 'reserve', 'release',
                                                 'ship', 'restock', 'scrap')),
    on_hand_delta  int NOT NULL DEFAULT 0,
    reserved_delta int NOT NULL DEFAULT 0,
    order_id       bigint,
    line_no        int,
    reason         text,
    actor          text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (movement_id),
    FOREIGN KEY (warehouse_id, sku) REFERENCES @extschema@.stock,
    CHECK (on_hand_delta <> 0 OR reserved_delta <> 0)
);
ALTER SEQUENCE @extschema@.inventory_movements_movement_id_seq
    OWNED BY @extschema@.inventory_movements.movement_id;
CREATE INDEX inventory_movements_stock_idx
    ON @extschema@.inventory_movements (warehouse_id, sku);
CREATE INDEX inventory_movements_order_idx
    ON @extschema@.inventory_movements (order_id) WHERE order_id IS NOT NULL;

------------------------------------------------------------------------
-- Holds: one row per hold; the order is on_hold iff an open hold exists.
------------------------------------------------------------------------
CREATE SEQUENCE @extschema@.order_holds_hold_id_seq;

CREATE TABLE @extschema@.order_holds (
    order_id       bigint NOT NULL REFERENCES @extschema@.orders ON DELETE CASCADE,
    hold_id        bigint NOT NULL DEFAULT nextval('@extschema@.order_holds_hold_id_seq'),
    kind           text NOT NULL
                   CHECK (kind IN ('credit', 'payment', 'stock', 'address', 'fraud', 'manual')),
    reason         text NOT NULL,
    placed_at      timestamptz NOT NULL DEFAULT now(),
    placed_by      text NOT NULL,
    released_at    timestamptz,
    released_by    text,
    release_reason text,
    PRIMARY KEY (order_id, hold_id),
    CHECK ((released_at IS NULL) = (released_by IS NULL))
);
ALTER SEQUENCE @extschema@.order_holds_hold_id_seq OWNED BY @extschema@.order_holds.hold_id;
CREATE INDEX order_holds_open_idx ON @extschema@.order_holds (order_id) WHERE released_at IS NULL;

------------------------------------------------------------------------
-- Payments ledger.  Rows are never updated; the order's payment_status is
-- derived from them (orders_payment_status trigger).
------------------------------------------------------------------------
CREATE SEQUENCE @extschema@.payments_payment_id_seq;

CREATE TABLE @extschema@.payments (
    order_id      bigint NOT NULL REFERENCES @extschema@.orders ON DELETE CASCADE,
    payment_id    bigint NOT NULL DEFAULT nextval('@extschema@.payments_payment_id_seq'),
    kind          text NOT NULL CHECK (kind IN ('authorization', 'capture', 'refund', 'void')),
    amount        numeric(14,2) NOT NULL CHECK (amount > 0),
    status        text NOT NULL DEFAULT 'succeeded' CHECK (status IN ('succeeded', 'failed')),
    psp_reference text NOT NULL CHECK (psp_reference <> ''),
    return_id     bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    PRIMARY KEY (order_id, payment_id),
    CONSTRAINT payments_psp_reference_key UNIQUE (psp_reference),
    FOREIGN KEY (order_id, return_id) REFERENCES @extschema@.returns,
    CHECK (return_id IS NULL OR kind = 'refund')
);
ALTER SEQUENCE @extschema@.payments_payment_id_seq OWNED BY @extschema@.payments.payment_id;

------------------------------------------------------------------------
-- Internal helpers (not granted to anyone).  They run only inside the
-- SECURITY DEFINER API functions, whose search_path (pg_catalog, pg_temp)
-- they inherit; they carry no SET clause of their own because a SET makes
-- every call save and restore the GUC state, which is measurable on the
-- placement hot path.  Every name in them is schema-qualified anyway.
------------------------------------------------------------------------

-- order_mgmt.actor when set, else the session user (as the event log does).
CREATE FUNCTION @extschema@.current_actor()
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN coalesce(nullif(current_setting('order_mgmt.actor', true), ''), session_user::text);
END;
$$;

-- Change one stock row and append its movement in one statement.  The row
-- must exist and be locked by the caller.  CHECKs reject a negative result.
CREATE FUNCTION @extschema@.stock_move(
    p_warehouse text, p_sku text, p_kind text, p_on_hand int, p_reserved int,
    p_order bigint, p_line int, p_reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    WITH u AS (
        UPDATE @extschema@.stock s
           SET on_hand = s.on_hand + p_on_hand, reserved = s.reserved + p_reserved,
               updated_at = now()
         WHERE s.warehouse_id = p_warehouse AND s.sku = p_sku
        RETURNING s.warehouse_id, s.sku)
    INSERT INTO @extschema@.inventory_movements
        (warehouse_id, sku, kind, on_hand_delta, reserved_delta, order_id, line_no, reason, actor)
    SELECT u.warehouse_id, u.sku, p_kind, p_on_hand, p_reserved, p_order, p_line, p_reason,
           @extschema@.current_actor()
      FROM u;
END;
$$;

-- Totals of the payments ledger of one order.  (Helpers are PL/pgSQL, not
-- SQL: a non-inlinable SQL function is planned again on every call.)
CREATE FUNCTION @extschema@.payment_totals(
    p_order bigint, OUT authorized numeric, OUT captured numeric, OUT refunded numeric,
    OUT voided numeric)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    SELECT coalesce(sum(p.amount) FILTER (WHERE p.kind = 'authorization'), 0),
           coalesce(sum(p.amount) FILTER (WHERE p.kind = 'capture'), 0),
           coalesce(sum(p.amount) FILTER (WHERE p.kind = 'refund'), 0),
           coalesce(sum(p.amount) FILTER (WHERE p.kind = 'void'), 0)
      INTO authorized, captured, refunded, voided
      FROM @extschema@.payments p
     WHERE p.order_id = p_order AND p.status = 'succeeded';
END;
$$;

-- payment_status from the ledger totals and the order total.
CREATE FUNCTION @extschema@.derive_payment_status(
    total numeric, authorized numeric, captured numeric, refunded numeric, voided numeric)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RETURN CASE
        WHEN refunded > 0 AND refunded >= captured THEN 'refunded'
        WHEN refunded > 0 THEN 'partially_refunded'
        WHEN captured > 0 AND captured >= total THEN 'paid'
        WHEN captured > 0 THEN 'partially_captured'
        WHEN authorized > 0 AND voided >= authorized THEN 'voided'
        WHEN authorized > 0 THEN 'authorized'
        ELSE 'unpaid'
    END;
END;
$$;

-- BEFORE INSERT OR UPDATE OF payment_status, total: clients cannot write
-- payment_status; whatever they set, it is recomputed from the ledger.
CREATE FUNCTION @extschema@.orders_payment_status()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.payment_status := 'unpaid';     -- no payment can exist yet
        RETURN NEW;
    END IF;
    t := @extschema@.payment_totals(NEW.order_id);
    NEW.payment_status := @extschema@.derive_payment_status(NEW.total, t.authorized, t.captured,
                                                            t.refunded, t.voided);
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_mgmt_payment_status
    BEFORE INSERT OR UPDATE OF payment_status, total ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.orders_payment_status();

-- AFTER each change of the payments ledger, by any path (the API, a
-- restore, the owner's hand): recompute the order's payment_status.
CREATE FUNCTION @extschema@.payments_changed()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE @extschema@.orders o SET payment_status = NULL WHERE o.order_id = OLD.order_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE @extschema@.orders o SET payment_status = NULL WHERE o.order_id = NEW.order_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER order_mgmt_payment_status
    AFTER INSERT OR UPDATE OR DELETE ON @extschema@.payments
    FOR EACH ROW EXECUTE FUNCTION @extschema@.payments_changed();

-- BEFORE UPDATE OF status, only when on_hold is entered or left: keeps
-- "the order is on_hold iff it has an open hold" whatever the path.  The
-- API (hold_order, confirm_order, release_hold) opens and closes the hold
-- rows itself; set_status or a direct UPDATE (as in 0.1.0) entering on_hold
-- opens a 'manual' hold, and leaving on_hold closes the open ones, with the
-- order_mgmt.reason of the move.  The status event written by the C trigger
-- (order.held, order.hold_released, order.cancelled) records the step, so
-- these implicit hold rows add no event of their own.
CREATE FUNCTION @extschema@.orders_hold_sync()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reason text := nullif(current_setting('order_mgmt.reason', true), '');
BEGIN
    IF NEW.status = 'on_hold' THEN
        IF NOT EXISTS (SELECT 1 FROM @extschema@.order_holds h
                        WHERE h.order_id = NEW.order_id AND h.released_at IS NULL) THEN
            INSERT INTO @extschema@.order_holds (order_id, kind, reason, placed_by)
            VALUES (NEW.order_id, 'manual', coalesce(v_reason, 'status set to on_hold'),
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
          AND (OLD.status = 'on_hold' OR NEW.status = 'on_hold'))
    EXECUTE FUNCTION @extschema@.orders_hold_sync();

-- Move an order to a status through the lifecycle trigger, with a reason.
CREATE FUNCTION @extschema@.move_order(p_order bigint, p_status text, p_reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_saved text := current_setting('order_mgmt.reason', true);
BEGIN
    PERFORM set_config('order_mgmt.reason', coalesce(p_reason, ''), true);
    UPDATE @extschema@.orders SET status = p_status WHERE order_id = p_order;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

-- Lock an order row and return it; OM004 when it does not exist.
CREATE FUNCTION @extschema@.lock_order(p_order bigint)
RETURNS @extschema@.orders
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    o @extschema@.orders;
BEGIN
    IF p_order IS NULL THEN
        RAISE EXCEPTION 'order_id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = p_order FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % does not exist', p_order USING ERRCODE = 'OM004';
    END IF;
    RETURN o;
END;
$$;

-- Open a hold row and put the order on_hold (if it is not already).
-- The order row must be locked by the caller.
CREATE FUNCTION @extschema@.add_hold(p_order bigint, p_kind text, p_reason text, p_payload jsonb)
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
    IF v_status <> 'on_hold' THEN
        PERFORM @extschema@.move_order(p_order, 'on_hold', p_kind || ' hold: ' || p_reason);
    END IF;
    RETURN v_hold;
END;
$$;

-- Available-to-promise of a locked stock row (0 when there is no row).
CREATE FUNCTION @extschema@.stock_atp(p_warehouse text, p_sku text)
RETURNS int
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN coalesce((SELECT s.on_hand - s.reserved FROM @extschema@.stock s
                      WHERE s.warehouse_id = p_warehouse AND s.sku = p_sku), 0);
END;
$$;

/*
 * Reserve what each open line still needs.  The warehouse of a line is, in
 * this order: the line's own warehouse_id (set by an earlier reservation),
 * the order's warehouse_id, else the warehouse with the most
 * available-to-promise for the sku (ties: lowest warehouse_id).  A line is
 * never split across warehouses.  Stock rows are locked first, all at once,
 * in (warehouse_id, sku) order.  Returns the lines that stay short (not
 * backordered): [{line_no, sku, warehouse_id, short}].
 */
CREATE FUNCTION @extschema@.reserve_lines(p_order bigint, p_allow_backorder boolean,
                                          p_warehouse text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    l       record;
    v_need  int;
    v_wh    text;
    v_atp   int;
    v_take  int;
    v_short jsonb := '[]';
    v_skus  text[];
BEGIN
    -- an array keeps the plan an index scan on stock_sku_idx
    v_skus := ARRAY(SELECT DISTINCT l2.sku FROM @extschema@.order_lines l2
                     WHERE l2.order_id = p_order);
    PERFORM 1 FROM @extschema@.stock s
     WHERE s.sku = ANY (v_skus)
       AND (p_warehouse IS NULL OR s.warehouse_id = p_warehouse)
     ORDER BY s.warehouse_id, s.sku
       FOR UPDATE OF s;

    FOR l IN SELECT * FROM @extschema@.order_lines x WHERE x.order_id = p_order
              ORDER BY x.line_no LOOP
        v_need := l.qty - l.qty_reserved - l.qty_backordered - l.qty_shipped - l.qty_cancelled;
        CONTINUE WHEN v_need <= 0;
        v_wh := coalesce(l.warehouse_id, p_warehouse);
        v_atp := 0;
        SELECT s.warehouse_id, s.on_hand - s.reserved INTO v_wh, v_atp
          FROM @extschema@.stock s
         WHERE s.sku = l.sku AND (v_wh IS NULL OR s.warehouse_id = v_wh)
         ORDER BY s.on_hand - s.reserved DESC, s.warehouse_id LIMIT 1
           FOR UPDATE OF s;     -- already ours, unless the row appeared since
        IF NOT FOUND THEN
            v_wh := coalesce(l.warehouse_id, p_warehouse);   -- no stock row (yet)
            v_atp := 0;
        END IF;
        v_take := least(v_need, greatest(v_atp, 0));
        IF v_take > 0 THEN
            PERFORM @extschema@.stock_move(v_wh, l.sku, 'reserve', 0, v_take, p_order, l.line_no,
                                           NULL);
            PERFORM @extschema@.emit_event(p_order, 'line', l.line_no, 'line.reserved', NULL, NULL,
                                           NULL, jsonb_build_object('sku', l.sku, 'warehouse_id', v_wh,
                                                                    'qty', v_take));
        END IF;
        v_need := v_need - v_take;
        IF v_need > 0 AND p_allow_backorder THEN
            PERFORM @extschema@.emit_event(p_order, 'line', l.line_no, 'line.backordered', NULL,
                                           NULL, NULL, jsonb_build_object('sku', l.sku,
                                                'warehouse_id', v_wh, 'qty', v_need));
        ELSIF v_need > 0 THEN
            v_short := v_short || jsonb_build_object('line_no', l.line_no, 'sku', l.sku,
                                                     'warehouse_id', v_wh, 'short', v_need);
        END IF;
        UPDATE @extschema@.order_lines x
           SET qty_reserved = x.qty_reserved + v_take,
               qty_backordered = x.qty_backordered
                                 + CASE WHEN p_allow_backorder THEN v_need ELSE 0 END,
               warehouse_id = v_wh
         WHERE x.order_id = p_order AND x.line_no = l.line_no;
    END LOOP;
    RETURN v_short;
END;
$$;

/*
 * The confirmation decision for a locked order in placed or
 * awaiting_payment.  Order of locks: order row, customer row (credit
 * customers only), stock rows.  Returns the new status.
 */
CREATE FUNCTION @extschema@.confirm_locked(o @extschema@.orders)
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
BEGIN
    SELECT * INTO c FROM @extschema@.customers x WHERE x.customer_id = o.customer_id;
    IF c.payment_terms = 'credit' THEN
        -- serialise the credit decisions of one customer
        SELECT * INTO c FROM @extschema@.customers x WHERE x.customer_id = o.customer_id
           FOR UPDATE;
        IF NOT EXISTS (SELECT 1 FROM @extschema@.order_holds h
                        WHERE h.order_id = o.order_id AND h.kind = 'credit'
                          AND h.released_at IS NOT NULL) THEN
            SELECT coalesce(sum(x.total - coalesce(t.net_captured, 0)), 0) INTO v_exposure
              FROM @extschema@.orders x
              LEFT JOIN LATERAL (
                  SELECT sum(CASE p.kind WHEN 'capture' THEN p.amount
                                         WHEN 'refund' THEN -p.amount ELSE 0 END) AS net_captured
                    FROM @extschema@.payments p
                   WHERE p.order_id = x.order_id AND p.status = 'succeeded') t ON true
             WHERE x.customer_id = o.customer_id AND x.order_id <> o.order_id
               AND (x.status IN ('confirmed', 'processing', 'partially_shipped', 'shipped',
                                 'delivered')
                    OR x.held_from IN ('confirmed', 'processing'))
               AND x.payment_status NOT IN ('paid', 'partially_refunded', 'refunded');
            v_credit_ok := v_exposure + o.total <= c.credit_limit;
            PERFORM @extschema@.emit_event(o.order_id, 'order', o.order_id, 'order.credit_checked',
                        NULL, NULL, NULL,
                        jsonb_build_object('exposure', v_exposure, 'total', o.total,
                                           'credit_limit', c.credit_limit, 'passed', v_credit_ok));
        END IF;
    ELSE
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
        RETURN 'on_hold';
    END IF;
    IF NOT v_paid_ok THEN
        IF o.status <> 'awaiting_payment' THEN
            PERFORM @extschema@.move_order(o.order_id, 'awaiting_payment',
                'authorizations do not cover the order total');
        END IF;
        RETURN 'awaiting_payment';
    END IF;
    PERFORM @extschema@.move_order(o.order_id, 'confirmed', NULL);
    RETURN 'confirmed';
END;
$$;

------------------------------------------------------------------------
-- API: confirmation, holds, cancellation
------------------------------------------------------------------------
CREATE FUNCTION @extschema@.confirm_order(order_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o @extschema@.orders;
BEGIN
    o := @extschema@.lock_order(confirm_order.order_id);
    IF o.status = 'on_hold' THEN
        RAISE EXCEPTION 'order % cannot be confirmed while on hold', o.order_id
            USING ERRCODE = 'OM010',
                  DETAIL = format('Order %s is on_hold (held from %s).', o.order_id, o.held_from),
                  HINT = 'Release its holds first (order_mgmt.release_hold).';
    END IF;
    IF o.status NOT IN ('placed', 'awaiting_payment') THEN
        RAISE EXCEPTION 'order % cannot be confirmed in status %', o.order_id, o.status
            USING ERRCODE = 'OM010',
                  DETAIL = format('Order %s is %s; only placed or awaiting_payment orders are confirmed.',
                                  o.order_id, o.status);
    END IF;
    RETURN @extschema@.confirm_locked(o);
END;
$$;

CREATE FUNCTION @extschema@.hold_order(order_id bigint, kind text, reason text)
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
    IF o.status NOT IN ('placed', 'awaiting_payment', 'confirmed', 'processing', 'on_hold') THEN
        RAISE EXCEPTION 'order % cannot be held in status %', o.order_id, o.status
            USING ERRCODE = 'OM010',
                  DETAIL = format('Order %s is %s; holds apply to placed, awaiting_payment, confirmed, processing or on_hold orders.',
                                  o.order_id, o.status);
    END IF;
    RETURN @extschema@.add_hold(o.order_id, kind, reason, NULL);
END;
$$;

CREATE FUNCTION @extschema@.release_hold(order_id bigint, hold_id bigint, reason text DEFAULT NULL)
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
    UPDATE @extschema@.order_holds x
       SET released_at = now(), released_by = @extschema@.current_actor(),
           release_reason = release_hold.reason
     WHERE x.order_id = o.order_id AND x.hold_id = h.hold_id;
    PERFORM @extschema@.emit_event(o.order_id, 'hold', h.hold_id, 'hold.released', NULL, NULL,
                                   release_hold.reason, jsonb_build_object('kind', h.kind));
    IF o.status = 'on_hold' AND NOT EXISTS (
            SELECT 1 FROM @extschema@.order_holds x
             WHERE x.order_id = o.order_id AND x.released_at IS NULL) THEN
        PERFORM @extschema@.move_order(o.order_id, o.held_from,
                                       coalesce(release_hold.reason, 'last hold released'));
        RETURN o.held_from;
    END IF;
    RETURN o.status;
END;
$$;

-- Release every reservation of an order's lines (order row locked).
CREATE FUNCTION @extschema@.release_reservations(p_order bigint, p_reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    l record;
BEGIN
    FOR l IN SELECT DISTINCT x.warehouse_id, x.sku FROM @extschema@.order_lines x
              WHERE x.order_id = p_order AND x.qty_reserved > 0
              ORDER BY x.warehouse_id, x.sku LOOP
        PERFORM 1 FROM @extschema@.stock s
         WHERE s.warehouse_id = l.warehouse_id AND s.sku = l.sku FOR UPDATE;
    END LOOP;
    FOR l IN SELECT * FROM @extschema@.order_lines x
              WHERE x.order_id = p_order AND x.qty_reserved > 0 ORDER BY x.line_no LOOP
        PERFORM @extschema@.stock_move(l.warehouse_id, l.sku, 'release', 0, -l.qty_reserved,
                                       p_order, l.line_no, p_reason);
    END LOOP;
END;
$$;

-- Refuse when anything of the order has left the building (OM006).
CREATE FUNCTION @extschema@.check_not_dispatched(p_order bigint)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM @extschema@.order_lines l
                WHERE l.order_id = p_order AND l.qty_shipped > 0)
       OR EXISTS (SELECT 1 FROM @extschema@.shipments s
                   WHERE s.order_id = p_order AND s.dispatched_at IS NOT NULL) THEN
        RAISE EXCEPTION 'order % cannot be cancelled: goods have been dispatched', p_order
            USING ERRCODE = 'OM006', HINT = 'Request a return instead.';
    END IF;
END;
$$;

/*
 * AFTER UPDATE OF status, when an order becomes cancelled by any path
 * (cancel_order, cancel_line, set_status, a direct UPDATE): release every
 * reservation in the same transaction, cancel what is left of each line and
 * close the open holds.  SECURITY DEFINER: it writes stock as the owner.
 */
CREATE FUNCTION @extschema@.orders_cancelled()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reason text := coalesce(nullif(current_setting('order_mgmt.reason', true), ''),
                              'order cancelled');
BEGIN
    PERFORM @extschema@.check_not_dispatched(NEW.order_id);
    PERFORM @extschema@.release_reservations(NEW.order_id, v_reason);
    UPDATE @extschema@.order_lines x
       SET qty_cancelled = x.qty - x.qty_shipped, qty_reserved = 0, qty_backordered = 0
     WHERE x.order_id = NEW.order_id
       AND (x.qty_reserved > 0 OR x.qty_backordered > 0 OR x.qty_cancelled < x.qty - x.qty_shipped);
    UPDATE @extschema@.order_holds x
       SET released_at = now(), released_by = @extschema@.current_actor(),
           release_reason = v_reason
     WHERE x.order_id = NEW.order_id AND x.released_at IS NULL;
    RETURN NULL;
END;
$$;

CREATE TRIGGER order_mgmt_cancelled
    AFTER UPDATE OF status ON @extschema@.orders
    FOR EACH ROW
    WHEN (NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled')
    EXECUTE FUNCTION @extschema@.orders_cancelled();

CREATE FUNCTION @extschema@.cancel_order(order_id bigint, reason text)
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
    IF o.status NOT IN ('placed', 'awaiting_payment', 'confirmed', 'processing', 'on_hold') THEN
        RAISE EXCEPTION 'order % cannot be cancelled in status %', o.order_id, o.status
            USING ERRCODE = CASE WHEN o.status IN ('partially_shipped', 'shipped', 'delivered',
                                                   'completed') THEN 'OM006' ELSE 'OM010' END,
                  DETAIL = format('Order %s is %s.', o.order_id, o.status);
    END IF;
    PERFORM @extschema@.check_not_dispatched(o.order_id);
    -- the order_mgmt_cancelled trigger releases reservations and holds
    PERFORM @extschema@.move_order(o.order_id, 'cancelled', reason);
END;
$$;

CREATE FUNCTION @extschema@.cancel_line(order_id bigint, line_no int, qty int,
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
    IF o.status NOT IN ('placed', 'awaiting_payment', 'confirmed', 'processing', 'on_hold') THEN
        RAISE EXCEPTION 'a line of order % cannot be cancelled in status %', o.order_id, o.status
            USING ERRCODE = CASE WHEN o.status IN ('partially_shipped', 'shipped', 'delivered',
                                                   'completed') THEN 'OM006' ELSE 'OM010' END,
                  DETAIL = format('Order %s is %s.', o.order_id, o.status);
    END IF;
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
    -- cancel backordered units first, then the unreserved shortfall, then reserved units
    v_left := qty;
    v_bo := least(v_left, l.qty_backordered);
    v_left := v_left - v_bo;
    v_short := least(v_left, l.qty - l.qty_reserved - l.qty_backordered - l.qty_shipped
                               - l.qty_cancelled);
    v_left := v_left - v_short;
    v_res := v_left;
    IF v_res > 0 THEN
        PERFORM 1 FROM @extschema@.stock s
         WHERE s.warehouse_id = l.warehouse_id AND s.sku = l.sku FOR UPDATE;
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
    IF NOT EXISTS (SELECT 1 FROM @extschema@.order_lines x
                    WHERE x.order_id = o.order_id AND x.qty_cancelled < x.qty) THEN
        PERFORM @extschema@.move_order(o.order_id, 'cancelled',
                                       coalesce(reason, 'every line cancelled'));
    END IF;
END;
$$;

------------------------------------------------------------------------
-- API: stock
------------------------------------------------------------------------

-- Validate (warehouse, sku), create the stock row if needed and lock it.
CREATE FUNCTION @extschema@.lock_stock(p_warehouse text, p_sku text)
RETURNS @extschema@.stock
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    s @extschema@.stock;
BEGIN
    IF p_warehouse IS NULL OR p_sku IS NULL THEN
        RAISE EXCEPTION 'warehouse_id and sku must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.warehouses w WHERE w.warehouse_id = p_warehouse) THEN
        RAISE EXCEPTION 'unknown warehouse "%"', p_warehouse USING ERRCODE = 'OM004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.products p WHERE p.sku = p_sku) THEN
        RAISE EXCEPTION 'unknown sku "%"', p_sku USING ERRCODE = 'OM004';
    END IF;
    INSERT INTO @extschema@.stock AS x (warehouse_id, sku) VALUES (p_warehouse, p_sku)
        ON CONFLICT ON CONSTRAINT stock_pkey DO NOTHING;
    SELECT * INTO s FROM @extschema@.stock x
     WHERE x.warehouse_id = p_warehouse AND x.sku = p_sku FOR UPDATE;
    RETURN s;
END;
$$;

/*
 * Allocate available stock of (warehouse, sku) to backordered lines, oldest
 * order first (placed_at, order_id, line_no).  Lines with no warehouse yet
 * are served by any warehouse.  The caller has locked the candidate order
 * rows, then the stock row (the lock order of confirm_order).  Returns the
 * number of units allocated.
 */
CREATE FUNCTION @extschema@.allocate_backorders(p_warehouse text, p_sku text)
RETURNS int
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    l       record;
    v_atp   int;
    v_take  int;
    v_total int := 0;
    v_saved text := current_setting('order_mgmt.automated', true);
BEGIN
    v_atp := @extschema@.stock_atp(p_warehouse, p_sku);
    IF v_atp <= 0 THEN
        RETURN 0;
    END IF;
    PERFORM set_config('order_mgmt.automated', 'on', true);
    -- Lines are only touched under their order's lock.  Orders locked up
    -- front are ours already; a backorder committed since then belongs to an
    -- order we may lock only without waiting (we hold the stock row, and
    -- waiting for an order here would invert the lock order): SKIP LOCKED
    -- leaves it for the next receipt.
    FOR l IN SELECT x.order_id, x.line_no, x.qty_backordered
               FROM @extschema@.order_lines x
               JOIN @extschema@.orders o ON o.order_id = x.order_id
              WHERE x.sku = p_sku AND x.qty_backordered > 0
                AND (x.warehouse_id = p_warehouse OR x.warehouse_id IS NULL)
                AND o.status NOT IN ('cancelled', 'rejected', 'completed')
              ORDER BY o.placed_at, o.order_id, x.line_no
                FOR UPDATE OF o SKIP LOCKED LOOP
        EXIT WHEN v_atp <= 0;
        v_take := least(v_atp, l.qty_backordered);
        -- re-checked on the row: the line may have changed since the loop's
        -- snapshot, before its order was locked
        UPDATE @extschema@.order_lines x
           SET qty_reserved = x.qty_reserved + v_take,
               qty_backordered = x.qty_backordered - v_take,
               warehouse_id = p_warehouse
         WHERE x.order_id = l.order_id AND x.line_no = l.line_no
           AND x.qty_backordered >= v_take;
        CONTINUE WHEN NOT FOUND;
        PERFORM @extschema@.stock_move(p_warehouse, p_sku, 'reserve', 0, v_take, l.order_id,
                                       l.line_no, 'backorder allocated');
        PERFORM @extschema@.emit_event(l.order_id, 'line', l.line_no, 'line.backorder_allocated',
                                       NULL, NULL, NULL,
                                       jsonb_build_object('sku', p_sku, 'warehouse_id', p_warehouse,
                                                          'qty', v_take,
                                                          'still_backordered', l.qty_backordered - v_take));
        v_atp := v_atp - v_take;
        v_total := v_total + v_take;
    END LOOP;
    PERFORM set_config('order_mgmt.automated', coalesce(v_saved, 'off'), true);
    RETURN v_total;
END;
$$;

CREATE FUNCTION @extschema@.receive_stock(warehouse_id text, sku text, qty int,
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
    -- backordered orders are locked before the stock row (as confirm_order does)
    PERFORM 1 FROM @extschema@.orders o
     WHERE o.order_id IN (SELECT x.order_id FROM @extschema@.order_lines x
                           WHERE x.sku = receive_stock.sku AND x.qty_backordered > 0
                             AND (x.warehouse_id = receive_stock.warehouse_id
                                  OR x.warehouse_id IS NULL))
     ORDER BY o.order_id FOR UPDATE;
    PERFORM @extschema@.lock_stock(receive_stock.warehouse_id, receive_stock.sku);
    PERFORM @extschema@.stock_move(receive_stock.warehouse_id, receive_stock.sku, 'receipt',
                                   receive_stock.qty, 0, NULL, NULL, receive_stock.reason);
    RETURN @extschema@.allocate_backorders(receive_stock.warehouse_id, receive_stock.sku);
END;
$$;

CREATE FUNCTION @extschema@.adjust_stock(warehouse_id text, sku text, delta int, reason text)
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s @extschema@.stock;
BEGIN
    IF delta IS NULL OR reason IS NULL THEN
        RAISE EXCEPTION 'delta and reason must not be null' USING ERRCODE = '22004';
    END IF;
    IF delta = 0 OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'an adjustment needs a non-zero delta and a reason' USING ERRCODE = '22023',
              DETAIL = format('Got delta %s, reason "%s".', delta, reason);
    END IF;
    s := @extschema@.lock_stock(adjust_stock.warehouse_id, adjust_stock.sku);
    IF s.on_hand + delta < s.reserved THEN
        RAISE EXCEPTION 'not enough unreserved stock of % in %', s.sku, s.warehouse_id
            USING ERRCODE = 'OM014',
                  DETAIL = format('on_hand %s, reserved %s, delta %s: on_hand would fall below the reserved quantity.',
                                  s.on_hand, s.reserved, delta),
                  HINT = 'Cancel or reallocate reservations first.';
    END IF;
    PERFORM @extschema@.stock_move(s.warehouse_id, s.sku, 'adjustment', delta, 0, NULL, NULL,
                                   reason);
    RETURN s.on_hand + delta;
END;
$$;

------------------------------------------------------------------------
-- API: payments.  Each call locks the order row, so the invariants
-- (captured <= authorized - voided, refunded <= captured) are checked
-- against a ledger no other session is changing.
------------------------------------------------------------------------
CREATE FUNCTION @extschema@.record_payment(
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
    v_saved text;
BEGIN
    IF p_psp IS NULL OR btrim(p_psp) = '' THEN
        RAISE EXCEPTION 'psp_reference must not be null or empty' USING ERRCODE = '22004';
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
       AND o.status IN ('cancelled', 'rejected') THEN
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
    -- (order_mgmt_payment_status on payments has recomputed payment_status)
    PERFORM @extschema@.emit_event(o.order_id, 'payment', v_id,
        'payment.' || CASE p_kind WHEN 'authorization' THEN 'authorized'
                                  WHEN 'capture' THEN 'captured'
                                  WHEN 'refund' THEN 'refunded' ELSE 'voided' END,
        NULL, NULL, NULL,
        jsonb_build_object('amount', v_amount, 'psp_reference', p_psp, 'return_id', p_return));

    -- an authorization that now covers an order awaiting payment confirms it
    IF p_kind = 'authorization' AND o.status = 'awaiting_payment' THEN
        v_saved := current_setting('order_mgmt.automated', true);
        PERFORM set_config('order_mgmt.automated', 'on', true);
        o := @extschema@.lock_order(o.order_id);
        PERFORM @extschema@.confirm_locked(o);
        PERFORM set_config('order_mgmt.automated', coalesce(v_saved, 'off'), true);
    END IF;
    RETURN v_id;
END;
$$;

CREATE FUNCTION @extschema@.authorize_payment(order_id bigint, amount numeric, psp_reference text)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.record_payment(order_id, 'authorization', amount, psp_reference, NULL)
$$;

CREATE FUNCTION @extschema@.capture_payment(order_id bigint, amount numeric, psp_reference text)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.record_payment(order_id, 'capture', amount, psp_reference, NULL)
$$;

CREATE FUNCTION @extschema@.refund_payment(order_id bigint, amount numeric, psp_reference text,
                                           return_id bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.record_payment(order_id, 'refund', amount, psp_reference, return_id)
$$;

-- amount NULL voids everything authorized and not yet captured.
CREATE FUNCTION @extschema@.void_payment(order_id bigint, amount numeric, psp_reference text)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.record_payment(order_id, 'void', amount, psp_reference, NULL)
$$;

------------------------------------------------------------------------
-- Orders put on hold under 0.1.0 get the hold row the invariant needs.
------------------------------------------------------------------------
INSERT INTO @extschema@.order_holds (order_id, kind, reason, placed_at, placed_by)
SELECT o.order_id, 'manual', 'on hold before order_mgmt 0.2.0', now(), 'order_mgmt 0.2.0 upgrade'
  FROM @extschema@.orders o
 WHERE o.status = 'on_hold';

------------------------------------------------------------------------
-- pg_dump support
------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('@extschema@.stock', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.inventory_movements', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.inventory_movements_movement_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.order_holds', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.order_holds_hold_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.payments', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.payments_payment_id_seq', '');

------------------------------------------------------------------------
-- Privileges: internal helpers to nobody, the API to operators
------------------------------------------------------------------------
REVOKE ALL ON FUNCTION
    @extschema@.current_actor(),
    @extschema@.stock_move(text, text, text, int, int, bigint, int, text),
    @extschema@.payment_totals(bigint),
    @extschema@.derive_payment_status(numeric, numeric, numeric, numeric, numeric),
    @extschema@.orders_payment_status(),
    @extschema@.payments_changed(),
    @extschema@.orders_hold_sync(),
    @extschema@.orders_cancelled(),
    @extschema@.move_order(bigint, text, text),
    @extschema@.lock_order(bigint),
    @extschema@.add_hold(bigint, text, text, jsonb),
    @extschema@.stock_atp(text, text),
    @extschema@.reserve_lines(bigint, boolean, text),
    @extschema@.confirm_locked(@extschema@.orders),
    @extschema@.release_reservations(bigint, text),
    @extschema@.check_not_dispatched(bigint),
    @extschema@.lock_stock(text, text),
    @extschema@.allocate_backorders(text, text),
    @extschema@.record_payment(bigint, text, numeric, text, bigint),
    @extschema@.confirm_order(bigint),
    @extschema@.hold_order(bigint, text, text),
    @extschema@.release_hold(bigint, bigint, text),
    @extschema@.cancel_order(bigint, text),
    @extschema@.cancel_line(bigint, int, int, text),
    @extschema@.receive_stock(text, text, int, text),
    @extschema@.adjust_stock(text, text, int, text),
    @extschema@.authorize_payment(bigint, numeric, text),
    @extschema@.capture_payment(bigint, numeric, text),
    @extschema@.refund_payment(bigint, numeric, text, bigint),
    @extschema@.void_payment(bigint, numeric, text)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    @extschema@.confirm_order(bigint),
    @extschema@.hold_order(bigint, text, text),
    @extschema@.release_hold(bigint, bigint, text),
    @extschema@.cancel_order(bigint, text),
    @extschema@.cancel_line(bigint, int, int, text),
    @extschema@.receive_stock(text, text, int, text),
    @extschema@.adjust_stock(text, text, int, text),
    @extschema@.authorize_payment(bigint, numeric, text),
    @extschema@.capture_payment(bigint, numeric, text),
    @extschema@.refund_payment(bigint, numeric, text, bigint),
    @extschema@.void_payment(bigint, numeric, text)
TO order_mgmt_operator;

GRANT SELECT ON @extschema@.stock, @extschema@.inventory_movements, @extschema@.order_holds,
                @extschema@.payments
    TO order_mgmt_operator;
