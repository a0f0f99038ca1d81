-- Stock: every change of a stock row with its movement, reservation of
-- order lines, receipts, adjustments and backorder allocation.

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
    -- '' when a placeholder was set before the library was loaded (not a boolean)
    PERFORM set_config('order_mgmt.automated', coalesce(nullif(v_saved, ''), 'off'), true);
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
