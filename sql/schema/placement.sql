-- Placement: place_order, confirmation (credit, payment, stock), holds and
-- cancellation.

-- Canonical, validated order lines: [{line_no, sku, qty, unit_price}].
CREATE FUNCTION @extschema@.normalize_lines(lines jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l     jsonb;
    n     int := 0;
    v_sku text;
    v_qty numeric;
    v_price numeric;
    out   jsonb := '[]';
BEGIN
    IF lines IS NULL OR jsonb_typeof(lines) <> 'array' OR jsonb_array_length(lines) = 0 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array'
            USING ERRCODE = '22023', DETAIL = format('Got %s.', coalesce(lines::text, 'NULL'));
    END IF;
    IF jsonb_array_length(lines) > 1000 THEN
        RAISE EXCEPTION 'too many order lines'
            USING ERRCODE = '22023', DETAIL = 'An order has at most 1000 lines.';
    END IF;
    FOR l IN SELECT value FROM jsonb_array_elements(lines) LOOP
        n := n + 1;
        IF jsonb_typeof(l) <> 'object' OR jsonb_typeof(l->'sku') IS DISTINCT FROM 'string'
           OR jsonb_typeof(l->'qty') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'order line % is malformed', n
                USING ERRCODE = '22023',
                      DETAIL = format('Each line needs a string "sku" and a numeric "qty"; got %s.', l);
        END IF;
        v_sku := l->>'sku';
        v_qty := (l->>'qty')::numeric;
        IF v_qty <= 0 OR v_qty <> trunc(v_qty) OR v_qty > 1000000 THEN
            RAISE EXCEPTION 'order line % has an invalid quantity', n
                USING ERRCODE = '22023',
                      DETAIL = format('qty must be a whole number between 1 and 1000000; got %s.', l->>'qty');
        END IF;
        SELECT coalesce((l->>'unit_price')::numeric, p.list_price) INTO v_price
          FROM @extschema@.products p WHERE p.sku = v_sku;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown sku "%"', v_sku
                USING ERRCODE = 'OM004', DETAIL = format('Order line %s names a product that does not exist.', n);
        END IF;
        IF v_price IS NULL OR v_price < 0 THEN
            RAISE EXCEPTION 'order line % has no valid unit price', n
                USING ERRCODE = '22023',
                      DETAIL = format('Product "%s" has no list price and the line gives none (or a negative one).', v_sku),
                      HINT = 'Pass "unit_price" in the line.';
        END IF;
        out := out || jsonb_build_object('line_no', n, 'sku', v_sku, 'qty', v_qty::int,
                                         'unit_price', v_price);
    END LOOP;
    RETURN out;
END;
$$;

CREATE FUNCTION @extschema@.place_order(
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
    SELECT * INTO v_cust FROM @extschema@.customers c WHERE c.customer_id = place_order.customer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown customer "%"', customer_id
            USING ERRCODE = 'OM004', HINT = 'Create the customer in order_mgmt.customers first.';
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
