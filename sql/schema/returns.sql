-- Post-sales (0.6.0): returns from request to refund or exchange, and the
-- completion of orders.  A return moves requested -> approved -> received
-- -> inspected -> completed (or rejected / cancelled); every step locks the
-- order first (the lock order of src/stock.c), changes the return through
-- the lifecycle trigger (one event per step, with actor and reason) and
-- does all of its work or none.

-- The return window (order_mgmt.return_window_days, C: a superuser setting).
-- (The helpers that read orders are PL/pgSQL: Citus plans no SQL function
-- with parameters that reads a distributed table.)
CREATE FUNCTION @extschema@.return_window() RETURNS interval
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'return_window';

-- When an order's return window ends: its last delivery plus the window;
-- null while nothing is delivered.
CREATE FUNCTION @extschema@.return_deadline(p_order bigint)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (SELECT max(x.delivered_at) FROM @extschema@.shipments x
             WHERE x.order_id = p_order
               AND @extschema@.status_class('shipment', x.status) = 'delivered')
           + @extschema@.return_window();
END;
$$;

-- Does the order have a return in progress (class open)?
CREATE FUNCTION @extschema@.has_open_return(p_order bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM @extschema@.returns r
                    WHERE r.order_id = p_order
                      AND @extschema@.status_class('return', r.status) = 'open');
END;
$$;

-- The order's return_status, from its lines and returns: returned when
-- every delivered unit came back, partially_returned when some did,
-- requested while a return is open and none came back, else none.
CREATE FUNCTION @extschema@.return_status_of(p_order bigint)
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_returned bigint;
    v_delivered bigint;
BEGIN
    SELECT coalesce(sum(x.qty_returned), 0), coalesce(sum(x.qty_delivered), 0)
      INTO v_returned, v_delivered
      FROM @extschema@.order_lines x WHERE x.order_id = p_order;
    RETURN CASE WHEN v_returned > 0 AND v_returned >= v_delivered THEN 'returned'
                WHEN v_returned > 0 THEN 'partially_returned'
                WHEN @extschema@.has_open_return(p_order) THEN 'requested'
                ELSE 'none' END;
END;
$$;

-- BEFORE UPDATE OF return_status on orders: whatever is written, the
-- status is derived (a restore's INSERT keeps the dumped value).
CREATE FUNCTION @extschema@.orders_return_status()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.return_status := @extschema@.return_status_of(NEW.order_id);
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_mgmt_return_status BEFORE UPDATE OF return_status ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.orders_return_status();

-- Bring an order's return_status up to date (the value written does not
-- matter: order_mgmt_return_status derives it).
CREATE FUNCTION @extschema@.refresh_return_status(p_order bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_status text := @extschema@.return_status_of(p_order);
BEGIN
    UPDATE @extschema@.orders o SET return_status = 'none'
     WHERE o.order_id = p_order AND o.return_status <> v_status;
END;
$$;

-- AFTER a return changes status, or returned quantities change, by any
-- path: the order's return_status follows in the same transaction.  (An
-- INSERT is not a move: request_return refreshes, and a restore keeps the
-- dumped values whatever the order its tables load in.)
CREATE FUNCTION @extschema@.returns_changed()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.refresh_return_status(CASE TG_OP WHEN 'DELETE' THEN OLD.order_id
                                                         ELSE NEW.order_id END);
    RETURN NULL;
END;
$$;

CREATE TRIGGER order_mgmt_return_status AFTER DELETE OR UPDATE OF status ON @extschema@.returns
    FOR EACH ROW EXECUTE FUNCTION @extschema@.returns_changed();

CREATE TRIGGER order_mgmt_return_status AFTER UPDATE OF qty_returned ON @extschema@.order_lines
    FOR EACH ROW WHEN (NEW.qty_returned IS DISTINCT FROM OLD.qty_returned)
    EXECUTE FUNCTION @extschema@.returns_changed();

-- How many units of each line may still be asked back: delivered, minus
-- returned, minus asked for on returns not inspected yet.
CREATE FUNCTION @extschema@.returnable_units(p_order bigint)
RETURNS TABLE (line_no int, returnable int)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY
    SELECT l.line_no, l.qty_delivered - l.qty_returned
           - coalesce((SELECT sum(rl.qty) FROM @extschema@.return_lines rl
                         JOIN @extschema@.returns r USING (order_id, return_id)
                        WHERE rl.order_id = l.order_id AND rl.line_no = l.line_no
                          AND r.inspected_at IS NULL
                          AND @extschema@.status_class('return', r.status) = 'open'), 0)::int
      FROM @extschema@.order_lines l WHERE l.order_id = p_order;
END;
$$;

-- Units of each line of a return that were accepted (inspected and not
-- missing), with their sku and price: what a refund pays for and an
-- exchange replaces.
CREATE FUNCTION @extschema@.accepted_units(p_order bigint, p_return bigint)
RETURNS TABLE (line_no int, sku text, qty int, unit_price numeric)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY
    SELECT l.line_no, l.sku, sum(i.qty)::int, l.unit_price
      FROM @extschema@.return_inspections i
      JOIN @extschema@.order_lines l USING (order_id, line_no)
     WHERE i.order_id = p_order AND i.return_id = p_return AND i.condition <> 'missing'
     GROUP BY l.line_no, l.sku, l.unit_price
     ORDER BY l.line_no;
END;
$$;

/*
 * Validated return or inspection lines, one row per array element:
 * [{"line_no", "qty"}] or, with p_inspection, [{"line_no", "qty",
 * "condition", "disposition"}].  22023 for a malformed one.
 */
CREATE FUNCTION @extschema@.return_lines_of(lines jsonb, p_inspection boolean)
RETURNS TABLE (line_no int, qty int, condition text, disposition text)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    e record;
    v_problem text;
BEGIN
    IF lines IS NULL THEN
        RAISE EXCEPTION 'lines must not be null' USING ERRCODE = '22004';
    END IF;
    IF jsonb_typeof(lines) <> 'array' OR jsonb_array_length(lines) NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'lines must be a JSON array of 1 to 1000 lines' USING ERRCODE = '22023',
              DETAIL = format('Got %s.', left(lines::text, 200));
    END IF;
    FOR e IN SELECT x.n, x.v,
                    CASE WHEN jsonb_typeof(x.v) = 'object' AND jsonb_typeof(x.v->'line_no') = 'number'
                         THEN (x.v->>'line_no')::numeric END AS line_no,
                    CASE WHEN jsonb_typeof(x.v) = 'object' AND jsonb_typeof(x.v->'qty') = 'number'
                         THEN (x.v->>'qty')::numeric END AS qty
               FROM jsonb_array_elements(lines) WITH ORDINALITY x(v, n) ORDER BY x.n LOOP
        IF e.line_no IS NULL OR e.qty IS NULL OR e.line_no NOT BETWEEN 1 AND 1000
           OR e.qty NOT BETWEEN 1 AND 1000000 OR e.line_no % 1 <> 0 OR e.qty % 1 <> 0 THEN
            RAISE EXCEPTION 'return line % is malformed', e.n USING ERRCODE = '22023',
                  DETAIL = format('Each line needs a whole "line_no" and a whole "qty" from 1 to 1000000; got %s.',
                                  left(e.v::text, 200));
        END IF;
        line_no := e.line_no::int;
        qty := e.qty::int;
        condition := NULL;
        disposition := NULL;
        IF p_inspection THEN
            condition := e.v->>'condition';
            disposition := e.v->>'disposition';
            IF condition IS NULL OR condition NOT IN ('resellable', 'damaged', 'defective', 'missing')
               OR coalesce(disposition NOT IN ('restock', 'scrap', 'repair', 'return_to_vendor'), false) THEN
                RAISE EXCEPTION 'inspection line % is malformed', e.n USING ERRCODE = '22023',
                      DETAIL = format('condition is resellable, damaged, defective or missing; disposition restock, scrap, repair or return_to_vendor; got %s.',
                                      left(e.v::text, 200));
            END IF;
            v_problem := @extschema@.disposition_problem(condition, disposition);
            IF v_problem IS NOT NULL THEN
                RAISE EXCEPTION 'inspection line %: %', e.n, v_problem USING ERRCODE = '22023',
                      HINT = 'Only resellable units are restocked; missing units have no disposition.';
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- Lock the order of a return (OM004 when there is no such return) and
-- return the return as it is under that lock.
CREATE FUNCTION @extschema@.lock_return(p_return bigint)
RETURNS @extschema@.returns
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_order bigint;
    r @extschema@.returns;
BEGIN
    IF p_return IS NULL THEN
        RAISE EXCEPTION 'return_id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT x.order_id INTO v_order FROM @extschema@.returns x WHERE x.return_id = p_return;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'return % does not exist', p_return USING ERRCODE = 'OM004';
    END IF;
    PERFORM @extschema@.lock_order(v_order);
    SELECT * INTO r FROM @extschema@.returns x WHERE x.order_id = v_order AND x.return_id = p_return;
    RETURN r;
END;
$$;

-- OM010 unless the return is in the status a step starts from (its
-- status name: the steps of a return are the edges of the graph).
CREATE FUNCTION @extschema@.require_return_status(r @extschema@.returns, p_status text,
                                                  p_action text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF r.status IS DISTINCT FROM p_status THEN
        RAISE EXCEPTION 'return % cannot be %', r.return_id, p_action USING ERRCODE = 'OM010',
              DETAIL = format('Return %s is %s; this step needs %s.', r.return_id, r.status, p_status);
    END IF;
END;
$$;

-- Move a return to a status through the lifecycle trigger, with a reason,
-- setting the timestamp column the edge requires (if any).
CREATE FUNCTION @extschema@.move_return(r @extschema@.returns, p_status text, p_reason text,
                                        p_stamp text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_saved text := current_setting('order_mgmt.reason', true);
    v_now   timestamptz := now();       -- (Citus: no function call in a CASE of an UPDATE)
BEGIN
    PERFORM @extschema@.set_reason(p_reason);
    UPDATE @extschema@.returns x
       SET status = p_status,
           received_at = CASE WHEN p_stamp = 'received_at' THEN v_now ELSE x.received_at END,
           inspected_at = CASE WHEN p_stamp = 'inspected_at' THEN v_now ELSE x.inspected_at END,
           resolved_at = CASE WHEN p_stamp = 'resolved_at' THEN v_now ELSE x.resolved_at END
     WHERE x.order_id = r.order_id AND x.return_id = r.return_id;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

------------------------------------------------------------------------
-- The API
------------------------------------------------------------------------

/*
 * request_return(order_id, lines [{"line_no", "qty"}], reason, resolution
 * 'refund' | 'exchange') -> return_id.  Only delivered units that are not
 * returned or asked back on another open return (OM051), within the return
 * window after the order's last delivery (OM050).
 */
CREATE FUNCTION @extschema@.request_return(order_id bigint, lines jsonb, reason text,
                                           resolution text DEFAULT 'refund')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o          @extschema@.orders;
    v_deadline timestamptz;
    v_id       bigint;
    v_bad      record;
    v_lines    jsonb;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' OR resolution IS NULL THEN
        RAISE EXCEPTION 'a return needs a reason and a resolution' USING ERRCODE = '22004';
    END IF;
    IF resolution NOT IN ('refund', 'exchange') THEN
        RAISE EXCEPTION 'unknown resolution "%"', resolution USING ERRCODE = '22023',
              DETAIL = 'resolution is refund or exchange.';
    END IF;
    SELECT jsonb_agg(jsonb_build_object('line_no', x.line_no, 'qty', x.qty) ORDER BY x.line_no)
      INTO v_lines
      FROM (SELECT r.line_no, sum(r.qty)::int AS qty
              FROM @extschema@.return_lines_of(lines, false) r GROUP BY r.line_no) x;
    o := @extschema@.lock_order(request_return.order_id);
    v_deadline := @extschema@.return_deadline(o.order_id);
    IF v_deadline < now() THEN
        RAISE EXCEPTION 'the return window of order % has ended', o.order_id
            USING ERRCODE = 'OM050',
                  DETAIL = format('Order %s was last delivered %s; returns were accepted until %s (order_mgmt.return_window_days = %s).',
                                  o.order_id, v_deadline - @extschema@.return_window(), v_deadline,
                                  current_setting('order_mgmt.return_window_days'));
    END IF;
    IF @extschema@.status_class('order', o.status) NOT IN ('shipping', 'delivered')
       OR v_deadline IS NULL THEN
        RAISE EXCEPTION 'order % cannot be returned', o.order_id USING ERRCODE = 'OM010',
              DETAIL = format('Order %s is %s and %s.', o.order_id, o.status,
                              CASE WHEN v_deadline IS NULL THEN 'nothing of it was delivered'
                                   ELSE 'closed' END);
    END IF;
    SELECT x.line_no, x.qty, u.returnable INTO v_bad
      FROM jsonb_to_recordset(v_lines) x(line_no int, qty int)
      LEFT JOIN @extschema@.returnable_units(o.order_id) u USING (line_no)
     WHERE u.line_no IS NULL OR x.qty > u.returnable
     ORDER BY x.line_no LIMIT 1;
    IF FOUND AND v_bad.returnable IS NULL THEN
        RAISE EXCEPTION 'order % has no line %', o.order_id, v_bad.line_no USING ERRCODE = 'OM004';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'line % of order % has % unit(s) to return, not %', v_bad.line_no,
                        o.order_id, v_bad.returnable, v_bad.qty
            USING ERRCODE = 'OM051',
                  DETAIL = 'Units can be returned once they are delivered, and only once: returned units and units on open returns do not count.';
    END IF;
    INSERT INTO @extschema@.returns AS x (order_id, status, reason, resolution)
    VALUES (o.order_id, 'requested', request_return.reason, request_return.resolution)
    RETURNING x.return_id INTO v_id;
    INSERT INTO @extschema@.return_lines (order_id, return_id, line_no, qty)
    SELECT o.order_id, v_id, x.line_no, x.qty FROM jsonb_to_recordset(v_lines) x(line_no int, qty int);
    PERFORM @extschema@.refresh_return_status(o.order_id);
    PERFORM @extschema@.emit_event(o.order_id, 'return', v_id, 'return.requested', NULL,
        'requested', request_return.reason,
        jsonb_build_object('lines', v_lines, 'resolution', request_return.resolution));
    RETURN v_id;
END;
$$;

CREATE FUNCTION @extschema@.approve_return(return_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.returns := @extschema@.lock_return(approve_return.return_id);
BEGIN
    PERFORM @extschema@.require_return_status(r, 'requested', 'approved');
    PERFORM @extschema@.move_return(r, 'approved', @extschema@.step_reason('approved'));
END;
$$;

CREATE FUNCTION @extschema@.reject_return(return_id bigint, reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.returns;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a rejection needs a reason' USING ERRCODE = '22004';
    END IF;
    r := @extschema@.lock_return(reject_return.return_id);
    PERFORM @extschema@.require_return_status(r, 'requested', 'rejected');
    PERFORM @extschema@.move_return(r, 'rejected', reason);
END;
$$;

-- The parcel arrived: every approved unit is received (a unit that is not
-- in it is inspected as missing).
CREATE FUNCTION @extschema@.receive_return(return_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r     @extschema@.returns := @extschema@.lock_return(receive_return.return_id);
    v_qty bigint;
BEGIN
    PERFORM @extschema@.require_return_status(r, 'approved', 'received');
    UPDATE @extschema@.return_lines x SET qty_received = x.qty
     WHERE x.order_id = r.order_id AND x.return_id = r.return_id;
    -- (read first: on Citus a statement that reads a shard and calls a
    -- function runs on the worker, where the function may not query)
    SELECT sum(x.qty) INTO v_qty FROM @extschema@.return_lines x
     WHERE x.order_id = r.order_id AND x.return_id = r.return_id;
    PERFORM @extschema@.move_return(r, 'received',
        @extschema@.step_reason(format('%s unit(s) received', v_qty)), 'received_at');
END;
$$;

/*
 * inspect_return(return_id, lines [{"line_no", "qty", "condition",
 * "disposition"}]): accounts for every received unit (a line may be split
 * over several conditions).  Restocked units go back on hand (a restock
 * movement) and serve waiting demand like a receipt; scrap, repair and
 * return_to_vendor are ledger rows without stock; missing units are not
 * returned.  The accepted units (all but missing) count as returned.
 */
CREATE FUNCTION @extschema@.inspect_return(return_id bigint, lines jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r      @extschema@.returns;
    v_insp jsonb;       -- [{line_no, qty, condition, disposition}], one per kind of unit
    v_bad  record;
    i      record;
    v_restocked text[] := '{}';
BEGIN
    SELECT jsonb_agg(to_jsonb(x) ORDER BY x.line_no, x.condition, x.disposition) INTO v_insp
      FROM (SELECT y.line_no, sum(y.qty)::int AS qty, y.condition, y.disposition
              FROM @extschema@.return_lines_of(lines, true) y
             GROUP BY y.line_no, y.condition, y.disposition) x;
    r := @extschema@.lock_return(inspect_return.return_id);
    PERFORM @extschema@.require_return_status(r, 'received', 'inspected');
    SELECT coalesce(rl.line_no, x.line_no) AS line_no, rl.qty_received, x.qty INTO v_bad
      FROM (SELECT y.line_no, sum(y.qty)::int AS qty
              FROM jsonb_to_recordset(v_insp) y(line_no int, qty int) GROUP BY y.line_no) x
      FULL JOIN (SELECT z.line_no, z.qty_received FROM @extschema@.return_lines z
                  WHERE z.order_id = r.order_id AND z.return_id = r.return_id) rl USING (line_no)
     WHERE x.qty IS DISTINCT FROM rl.qty_received
     ORDER BY rl.qty_received IS NULL DESC, coalesce(x.qty > rl.qty_received, false) DESC, 1
     LIMIT 1;                                  -- unknown lines, then excess, first
    IF FOUND AND v_bad.qty_received IS NULL THEN
        RAISE EXCEPTION 'return % has no line %', r.return_id, v_bad.line_no USING ERRCODE = 'OM004';
    ELSIF FOUND AND v_bad.qty > v_bad.qty_received THEN
        RAISE EXCEPTION 'line % of return % has % unit(s) received, not %', v_bad.line_no,
                        r.return_id, v_bad.qty_received, v_bad.qty USING ERRCODE = 'OM051',
              DETAIL = 'Inspected units never exceed the received (approved) units.';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'line % of return % has % unit(s) received and % inspected',
                        v_bad.line_no, r.return_id, v_bad.qty_received, coalesce(v_bad.qty, 0)
            USING ERRCODE = '22023',
                  HINT = 'Account for every received unit; units not in the parcel are "missing".';
    END IF;
    -- (a return made by hand before 0.6.0 may name units never delivered)
    SELECT a.line_no, a.qty, l.qty_delivered - l.qty_returned AS open INTO v_bad
      FROM (SELECT x.line_no, sum(x.qty)::int AS qty
              FROM jsonb_to_recordset(v_insp) x(line_no int, qty int, condition text)
             WHERE x.condition <> 'missing' GROUP BY x.line_no) a
      JOIN @extschema@.order_lines l ON l.order_id = r.order_id AND l.line_no = a.line_no
     WHERE a.qty > l.qty_delivered - l.qty_returned
     ORDER BY a.line_no LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'line % of order % has % delivered unit(s) not returned yet, not %',
                        v_bad.line_no, r.order_id, v_bad.open, v_bad.qty USING ERRCODE = 'OM051',
              HINT = 'Inspect units that were never delivered as "missing".';
    END IF;

    INSERT INTO @extschema@.return_inspections
        (order_id, return_id, line_no, qty, condition, disposition, actor)
    SELECT r.order_id, r.return_id, x.line_no, x.qty, x.condition, x.disposition,
           @extschema@.current_actor()
      FROM jsonb_to_recordset(v_insp) x(line_no int, qty int, condition text, disposition text);
    -- the line's condition and disposition, when its units agree
    UPDATE @extschema@.return_lines rl
       SET condition = s.condition, disposition = s.disposition
      FROM (SELECT x.line_no,
                   CASE WHEN count(DISTINCT x.condition) = 1 THEN min(x.condition) END AS condition,
                   CASE WHEN count(DISTINCT coalesce(x.disposition, '')) = 1
                        THEN min(x.disposition) END AS disposition
              FROM jsonb_to_recordset(v_insp) x(line_no int, condition text, disposition text)
             GROUP BY x.line_no) s
     WHERE rl.order_id = r.order_id AND rl.return_id = r.return_id AND rl.line_no = s.line_no;
    UPDATE @extschema@.order_lines l SET qty_returned = l.qty_returned + a.qty
      FROM (SELECT x.line_no, sum(x.qty)::int AS qty
              FROM jsonb_to_recordset(v_insp) x(line_no int, qty int, condition text)
             WHERE x.condition <> 'missing' GROUP BY x.line_no) a
     WHERE l.order_id = r.order_id AND l.line_no = a.line_no;
    -- the ledger: where the accepted units went (the warehouse that shipped the line)
    FOR i IN SELECT x.line_no, x.qty, x.disposition, l.sku,
                    coalesce(l.warehouse_id, o.warehouse_id) AS warehouse_id
               FROM jsonb_to_recordset(v_insp) x(line_no int, qty int, disposition text)
               JOIN @extschema@.order_lines l ON l.order_id = r.order_id AND l.line_no = x.line_no
               JOIN @extschema@.orders o ON o.order_id = r.order_id
              WHERE x.disposition IS NOT NULL ORDER BY x.line_no, x.disposition LOOP
        PERFORM @extschema@.stock_move(i.warehouse_id, i.sku, i.disposition,
            CASE WHEN i.disposition = 'restock' THEN i.qty ELSE 0 END, 0, r.order_id, i.line_no,
            format('return %s: %s unit(s) %s', r.return_id, i.qty, i.disposition));
        IF i.disposition = 'restock' THEN
            v_restocked := v_restocked || ARRAY[i.warehouse_id, i.sku];
        END IF;
    END LOOP;
    PERFORM @extschema@.move_return(r, 'inspected', @extschema@.step_reason(
        (SELECT string_agg(format('line %s: %s %s%s', x.line_no, x.qty, x.condition,
                                  coalesce(' -> ' || x.disposition, '')), '; ')
           FROM jsonb_to_recordset(v_insp) x(line_no int, qty int, condition text, disposition text))),
        'inspected_at');
    -- restocked units serve waiting demand like any receipt
    PERFORM @extschema@.serve_freed(v_restocked);
END;
$$;

/*
 * refund_return(return_id, amount default null) -> payment_id: a refund
 * (payment ledger row linked to the return, psp_reference
 * "order_mgmt:return:<id>") of amount, or of the value of the accepted units
 * (unit price x qty, less refunds already linked to the return); never
 * above what the order has captured and not refunded (OM015, also when two
 * refunds race: record_payment holds the order lock).  Completes the
 * return.  Called again for a return it refunded: that refund's payment_id.
 */
CREATE FUNCTION @extschema@.refund_return(return_id bigint, amount numeric DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r        @extschema@.returns := @extschema@.lock_return(refund_return.return_id);
    v_amount numeric := refund_return.amount;
    v_id     bigint;
BEGIN
    IF r.resolved_at IS NOT NULL AND r.resolution = 'refund' THEN
        RETURN (SELECT max(p.payment_id) FROM @extschema@.payments p    -- a repeated call
                 WHERE p.order_id = r.order_id AND p.return_id = r.return_id AND p.kind = 'refund');
    END IF;
    PERFORM @extschema@.require_return_status(r, 'inspected', 'refunded');
    IF v_amount IS NULL THEN
        -- the accepted units, less what refund_payment already refunded for
        -- this return (two statements: on Citus a statement that reads a
        -- shard runs on the worker, where accepted_units may not query)
        v_amount := (SELECT coalesce(sum(a.qty * a.unit_price), 0)
                       FROM @extschema@.accepted_units(r.order_id, r.return_id) a);
        v_amount := v_amount - (SELECT coalesce(sum(p.amount), 0) FROM @extschema@.payments p
                                 WHERE p.order_id = r.order_id AND p.return_id = r.return_id
                                   AND p.kind = 'refund');
        IF v_amount <= 0 THEN
            RAISE EXCEPTION 'return % has nothing to refund', r.return_id USING ERRCODE = 'OM010',
                  DETAIL = 'No unit was accepted, the accepted units have no price, or they were refunded already.',
                  HINT = 'Pass an amount to refund something else.';
        END IF;
    END IF;
    v_id := @extschema@.record_payment(r.order_id, 'refund', v_amount,
                                       'order_mgmt:return:' || r.return_id, r.return_id);
    UPDATE @extschema@.returns x SET resolution = 'refund'
     WHERE x.order_id = r.order_id AND x.return_id = r.return_id;
    PERFORM @extschema@.move_return(r, 'completed',
        @extschema@.step_reason(format('refunded %s', v_amount)), 'resolved_at');
    RETURN v_id;
END;
$$;

/*
 * exchange_return(return_id) -> order_id: a replacement order for the
 * accepted units (same customer, skus and ship-to, unit price 0: no second
 * charge), linked from the return (exchange_order_id), placed and
 * confirmed through the normal rules (stock, holds, promise).  Completes
 * the return.  Called again: the same replacement order.
 */
CREATE FUNCTION @extschema@.exchange_return(return_id bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r       @extschema@.returns := @extschema@.lock_return(exchange_return.return_id);
    o       @extschema@.orders;
    v_lines jsonb;
    v_new   bigint;
BEGIN
    IF r.exchange_order_id IS NOT NULL THEN
        RETURN r.exchange_order_id;           -- a repeated call
    END IF;
    PERFORM @extschema@.require_return_status(r, 'inspected', 'exchanged');
    SELECT jsonb_agg(jsonb_build_object('sku', a.sku, 'qty', a.qty, 'unit_price', 0)
                     ORDER BY a.line_no)
      INTO v_lines FROM @extschema@.accepted_units(r.order_id, r.return_id) a;
    IF v_lines IS NULL THEN
        RAISE EXCEPTION 'return % has nothing to exchange', r.return_id USING ERRCODE = 'OM010',
              DETAIL = 'No unit was accepted.';
    END IF;
    SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = r.order_id;
    v_new := @extschema@.place_order(o.customer_id, v_lines, o.ship_to, o.channel, o.service_id);
    UPDATE @extschema@.returns x SET resolution = 'exchange', exchange_order_id = v_new
     WHERE x.order_id = r.order_id AND x.return_id = r.return_id;
    PERFORM @extschema@.confirm_order(v_new);
    PERFORM @extschema@.move_return(r, 'completed',
        @extschema@.step_reason(format('exchanged for order %s', v_new)), 'resolved_at');
    RETURN v_new;
END;
$$;

-- Complete one order (its lock held): delivered class, no open return.
CREATE FUNCTION @extschema@.complete_locked(o @extschema@.orders, p_reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF @extschema@.status_class('order', o.status) IS DISTINCT FROM 'delivered' THEN
        RAISE EXCEPTION 'order % cannot be completed', o.order_id USING ERRCODE = 'OM010',
              DETAIL = format('Order %s is %s; only a delivered order is completed.', o.order_id, o.status);
    END IF;
    IF @extschema@.has_open_return(o.order_id) THEN
        RAISE EXCEPTION 'order % cannot be completed', o.order_id USING ERRCODE = 'OM010',
              DETAIL = format('Order %s has a return in progress.', o.order_id),
              HINT = 'Finish or reject the return first.';
    END IF;
    PERFORM @extschema@.move_order(o.order_id, 'completed', p_reason);
END;
$$;

-- Close a delivered order now (it can no longer be returned).
CREATE FUNCTION @extschema@.complete_order(order_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.complete_locked(@extschema@.lock_order(complete_order.order_id),
                                        @extschema@.step_reason('completed'));
END;
$$;

/*
 * complete_due_orders(as_of default now()) -> count: completes every
 * delivered order whose return window ended before as_of and that has no
 * open return, as automation.  Orders another transaction holds are left
 * for the next run (SKIP LOCKED), so it never waits on the workflow.
 */
CREATE FUNCTION @extschema@.complete_due_orders(as_of timestamptz DEFAULT now())
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET order_mgmt.automated = on
AS $$
DECLARE
    v_id    bigint;
    o       @extschema@.orders;
    v_count int := 0;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be finite' USING ERRCODE = '22008';
    END IF;
    FOR v_id IN SELECT x.order_id FROM @extschema@.orders x
                 WHERE @extschema@.status_class('order', x.status) = 'delivered'
                 ORDER BY x.order_id LOOP
        SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = v_id FOR UPDATE SKIP LOCKED;
        PERFORM @extschema@.citus_arm(o.order_id);  -- nothing on a single node
        CONTINUE WHEN o.order_id IS NULL
                   OR @extschema@.status_class('order', o.status) IS DISTINCT FROM 'delivered'
                   OR @extschema@.return_deadline(o.order_id) >= as_of
                   OR @extschema@.has_open_return(o.order_id);
        PERFORM @extschema@.complete_locked(o, format('return window ended %s',
                                                      @extschema@.return_deadline(o.order_id)));
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END;
$$;
