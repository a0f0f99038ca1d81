-- Placement: place_order, confirmation (credit, payment, stock), holds and
-- cancellation.  Every function locks in the order written at the top of
-- src/stock.c: orders, then the customer's credit lock, and never a stock
-- row across calls.  Checks of a status read its class (statuses).

-- Canonical, validated order lines: [{line_no, sku, qty, unit_price}].
-- (The JSON is the content hashed for external_ref idempotency: its form
-- must not change.)
CREATE FUNCTION @extschema@.normalize_lines(lines jsonb)
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
    -- one key probe of products per line: as a plain join the planner,
    -- which guesses 100 elements, hashes the whole catalog for each order
    -- while it is small (LIMIT keeps the subquery from being flattened)
    FOR l IN SELECT e.n, e.value AS v, p.sku IS NOT NULL AS known, p.list_price
               FROM jsonb_array_elements(lines) WITH ORDINALITY e(value, n)
               LEFT JOIN LATERAL (SELECT x.sku, x.list_price FROM @extschema@.products x
                                   WHERE x.sku = e.value->>'sku' LIMIT 1) p ON true
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
    v_new    bigint;    -- the id of a new order
    v_id     bigint;    -- the order an earlier call placed with this external_ref
    v_old    text;      -- its request hash
    k        @extschema@.business_keys;
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
    v_new := nextval('@extschema@.orders_order_id_seq');

    -- On Citus the key's claim (business_keys) decides; on a single node
    -- the UNIQUE of external_ref (ON CONFLICT below).  Either way a
    -- concurrent twin waits for the first and then sees it.
    IF external_ref IS NOT NULL AND @extschema@.citus_active() THEN
        k := @extschema@.claim_key('external_ref', external_ref, v_new, v_new, v_hash);
        v_id := NULLIF(k.order_id, v_new);
        v_old := k.content;
    END IF;
    IF v_id IS NULL THEN
        INSERT INTO @extschema@.orders AS o
            (order_id, external_ref, customer_id, channel, currency, total, ship_to,
             ship_to_country, ship_to_postal, service_id, requested_delivery, allow_backorder,
             request_hash)
        SELECT v_new, place_order.external_ref, v_cust.customer_id, place_order.channel,
               v_cust.currency,
               (SELECT sum((x->>'qty')::int * (x->>'unit_price')::numeric)
                  FROM jsonb_array_elements(v_lines) x),
               place_order.ship_to, v_country, place_order.ship_to->>'postal_code',
               place_order.service_id, place_order.requested_delivery, place_order.allow_backorder,
               v_hash
        ON CONFLICT DO NOTHING
        RETURNING o.order_id INTO v_id;
        IF v_id IS NULL THEN
            SELECT o.order_id, o.request_hash INTO v_id, v_old
              FROM @extschema@.orders o WHERE o.external_ref = place_order.external_ref;
        ELSE
            v_id := NULL;       -- placed now
        END IF;
    END IF;

    IF v_id IS NOT NULL THEN
        IF v_old IS DISTINCT FROM v_hash THEN
            RAISE EXCEPTION 'external_ref "%" is already used by order % with other content',
                            external_ref, v_id
                USING ERRCODE = 'OM005',
                      HINT = 'Use a new external_ref for a new order.';
        END IF;
        RETURN v_id;
    END IF;

    INSERT INTO @extschema@.order_lines (order_id, line_no, sku, qty, unit_price)
    SELECT v_new, (x->>'line_no')::int, x->>'sku', (x->>'qty')::int, (x->>'unit_price')::numeric
      FROM jsonb_array_elements(v_lines) x;

    PERFORM @extschema@.emit_event(v_new, 'order', v_new, 'order.placed', NULL, 'placed', NULL,
                                   jsonb_build_object('channel', channel, 'external_ref', external_ref));
    -- nobody else sees the new row before the commit: locked and marked
    PERFORM @extschema@.note_order_locked(v_new);
    RETURN v_new;
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
    PERFORM @extschema@.set_reason(p_reason);
    UPDATE @extschema@.orders SET status = p_status WHERE order_id = p_order;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

-- The order this transaction has locked and marked already (order_lock.c):
-- lock_order needs no second UPDATE of it.
CREATE FUNCTION @extschema@.order_locked_here(order_id bigint) RETURNS boolean
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'order_locked_here';
CREATE FUNCTION @extschema@.note_order_locked(order_id bigint) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'note_order_locked';

/*
 * Lock an order row for the calling API function and return it; OM004 when
 * it does not exist.  The lock is an UPDATE of updated_at: every change to
 * an order or its lines goes through here, so a REPEATABLE READ caller
 * whose snapshot predates it fails with 40001 instead of reading stale lines.
 * Lock and mark last to the end of the transaction: a later call on the
 * same order in the same transaction only reads it (order_lock.c).
 * On Citus (citus_arm) the order's stock and credit effects are applied
 * before the transaction commits.
 */
CREATE FUNCTION @extschema@.lock_order(p_order bigint)
RETURNS @extschema@.orders
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    o     @extschema@.orders;
    v_now timestamptz := clock_timestamp();     -- (Citus takes no volatile call in an UPDATE)
BEGIN
    IF p_order IS NULL THEN
        RAISE EXCEPTION 'order_id must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM @extschema@.citus_arm(p_order);     -- nothing on a single node
    IF @extschema@.order_locked_here(p_order) THEN
        SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = p_order;
    ELSE
        UPDATE @extschema@.orders x SET updated_at = v_now WHERE x.order_id = p_order
        RETURNING * INTO o;
        PERFORM @extschema@.note_order_locked(o.order_id);
    END IF;
    IF o.order_id IS NULL THEN
        RAISE EXCEPTION 'order % does not exist', p_order USING ERRCODE = 'OM004';
    END IF;
    RETURN o;
END;
$$;

-- OM010 (or OM006 for goods that have left) unless the order's status class
-- is one of p_classes; p_action says what was refused.
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

-- BEFORE UPDATE OF status, when a held status is entered or left: keeps
-- "the order is held iff it has an open hold" whatever the path.  The API
-- opens and closes the hold rows itself; set_status or a direct UPDATE
-- entering a held status opens a 'manual' hold, and leaving it closes the
-- open ones, with the order_mgmt.reason of the move.  The status event
-- (order.held, order.hold_released, order.cancelled) records the step.
CREATE FUNCTION @extschema@.orders_hold_sync()
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
          AND (@extschema@.status_in_class('order', OLD.status, '{held}')
               OR @extschema@.status_in_class('order', NEW.status, '{held}')))
    EXECUTE FUNCTION @extschema@.orders_hold_sync();

-- Open a hold row and put the order on_hold (if it is not held already).
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
    IF @extschema@.status_class('order', v_status) IS DISTINCT FROM 'held' THEN
        PERFORM @extschema@.move_order(p_order, 'on_hold', p_kind || ' hold: ' || p_reason);
    END IF;
    RETURN v_hold;
END;
$$;

-- Close one open hold of a locked order, with its event.  Releasing a
-- credit hold is a credit approval.
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

-- After a hold of a locked order was closed: when none is left, the order
-- goes back to the status it was held from; returns the status.
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

/*
 * The confirmation decision for a locked order of the pending class.
 * 1. Credit (payment_terms credit), unless already approved: takes the
 *    customer's credit lock; exposure (credit_accounts) + total must fit
 *    the credit limit.  Approval makes the order count in the exposure.
 * 2. Prepaid: succeeded authorizations - voids - refunds cover the total.
 * 3. Stock: reserve_lines.
 * Holds win over awaiting_payment, which wins over confirmed.
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
    v_approve  boolean := false;
    v_saved    text;
    v_now      timestamptz := now();    -- (Citus: no function call in a CASE of an UPDATE)
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
    PERFORM @extschema@.set_reason('');
    UPDATE @extschema@.orders x
       SET status = 'confirmed',
           credit_approved_at = CASE WHEN v_approve THEN v_now ELSE x.credit_approved_at END
     WHERE x.order_id = o.order_id;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
    RETURN 'confirmed';
END;
$$;

-- confirm_locked run by automation (an authorization that covers an order
-- awaiting payment): its events are marked automated.
CREATE FUNCTION @extschema@.confirm_automated(p_order bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET order_mgmt.automated = on
AS $$
BEGIN
    RETURN @extschema@.confirm_locked(@extschema@.lock_order(p_order));
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
    PERFORM @extschema@.require_class(o, '{pending}', 'confirmed');
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
    PERFORM @extschema@.require_class(o, '{pending,open,held}', 'held');
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
    PERFORM @extschema@.close_hold(o.order_id, h.hold_id, h.kind, release_hold.reason);
    RETURN @extschema@.after_hold_released(o.order_id, release_hold.reason);
END;
$$;

/*
 * AFTER UPDATE OF status, when an order enters a closed class (completed,
 * cancelled) by any path (cancel_order, cancel_line, set_status, a direct
 * UPDATE): an order in a final status holds no stock.  Releases every
 * reservation and backorder, cancels what is left of each line (cancelled
 * class), closes the open holds, and lets waiting demand take the freed
 * stock, in the same transaction.  SECURITY DEFINER: it writes stock as
 * the owner.  (Whether the order may be cancelled at all is the lifecycle
 * trigger's decision: an edge, and nothing dispatched.)
 */
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
    -- 0.5.0: shipments still being prepared are cancelled with the order
    -- (their units were reservations, released above); the lifecycle
    -- trigger writes their events with the order's reason
    UPDATE @extschema@.shipments x SET status = 'cancelled'
     WHERE x.order_id = NEW.order_id
       AND x.status = ANY (@extschema@.statuses_of_class('shipment', 'preparing'));
    PERFORM @extschema@.serve_freed(v_freed);
    RETURN NULL;
END;
$$;

CREATE TRIGGER order_mgmt_closed
    AFTER UPDATE OF status ON @extschema@.orders
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND @extschema@.status_in_class('order', NEW.status, '{completed,cancelled}'))
    EXECUTE FUNCTION @extschema@.orders_closed();

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
    PERFORM @extschema@.require_class(o, '{pending,open,held}', 'cancelled');
    -- the lifecycle trigger refuses it once goods have left (OM006), and
    -- order_mgmt_closed releases reservations and holds
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
    v_alloc int;
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
    -- 0.5.0: units in a shipment being prepared are not open to cancel
    v_alloc := coalesce((SELECT a.qty FROM @extschema@.allocated_units a
                          WHERE a.order_id = o.order_id AND a.line_no = l.line_no), 0);
    v_open := l.qty - l.qty_shipped - l.qty_cancelled - v_alloc;
    IF qty > v_open THEN
        RAISE EXCEPTION 'cannot cancel % of line % of order %', qty, l.line_no, o.order_id
            USING ERRCODE = 'OM016',
                  DETAIL = format('Only %s unit(s) of the line are open (qty %s, shipped %s, cancelled %s, in shipments being prepared %s).',
                                  v_open, l.qty, l.qty_shipped, l.qty_cancelled, v_alloc),
                  HINT = 'Units in a shipment being prepared are freed by cancelling the shipment (order_mgmt.cancel_shipment).';
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
