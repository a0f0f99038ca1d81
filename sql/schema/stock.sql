-- Stock: every change of stock with its movement (src/stock.c: no stock row
-- is locked across calls; the lock order is written at the top of that
-- file), reservation of order lines, receipts, adjustments, and the queue
-- of demand waiting for stock.

-- Record one change of (warehouse, sku) with its movement; OM014 when it
-- would take more than is available.  The one home of every stock change.
CREATE FUNCTION @extschema@.stock_move(
    p_warehouse text, p_sku text, p_kind text, p_on_hand int, p_reserved int,
    p_order bigint, p_line int, p_reason text)
RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'stock_move';

-- Reserve as much of p_reserved as is available; returns what was reserved.
CREATE FUNCTION @extschema@.stock_reserve(
    p_warehouse text, p_sku text, p_kind text, p_on_hand int, p_reserved int,
    p_order bigint, p_line int, p_reason text)
RETURNS int
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'stock_reserve';

-- What a reservation by this transaction could take now (on hand, not
-- reserved, not being reserved by a transaction in progress).
CREATE FUNCTION @extschema@.stock_available(warehouse_id text, sku text)
RETURNS int
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'stock_available';

-- At commit: apply the transaction's pending changes to stock_levels.
CREATE FUNCTION @extschema@.stock_apply() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'stock_apply';

CREATE CONSTRAINT TRIGGER order_mgmt_stock_apply
    AFTER INSERT ON @extschema@.stock_pending DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION @extschema@.stock_apply();

-- Stock as this transaction sees it: committed plus its own pending changes.
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

-- OM004 unless the warehouse and the sku exist.
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

-- The warehouse with the most stock available for a sku (C; ties: the
-- lowest warehouse_id), null when no warehouse has had it.
CREATE FUNCTION @extschema@.stock_best_warehouse(sku text)
RETURNS text
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'stock_best_warehouse';

/*
 * Reserve what each open line of a locked order still needs (its waiting
 * units included), from one warehouse per line (never split).  What cannot
 * be reserved waits in qty_backordered, in the queue by placed_at.
 * Returns the lines that wait without a backorder allowed:
 * [{line_no, sku, warehouse_id, short}].
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

-- Release every reservation of a locked order's lines; returns the
-- (warehouse_id, sku) pairs freed, for serve_freed.
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

-- Let the waiting demand take stock freed in (warehouse, sku) pairs.  On a
-- Citus worker (a trigger) nothing: the release is an effect the
-- coordinator applies, and it serves the demand then (apply_effects).
CREATE FUNCTION @extschema@.serve_freed(p_pairs text[])
RETURNS int
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_total int := 0;
BEGIN
    IF cardinality(p_pairs) = 0 OR @extschema@.on_citus_worker() THEN
        RETURN 0;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_pairs, 1), 0) / 2 LOOP
        v_total := v_total + @extschema@.serve_waiting_demand(p_pairs[2 * i - 1], p_pairs[2 * i]);
    END LOOP;
    RETURN v_total;
END;
$$;

/*
 * Give one waiting line what is available of (warehouse, sku), if its
 * order can be locked at once (SKIP LOCKED: we may hold other orders, and
 * waiting for this one could close a cycle).  A stock-held order whose
 * lines have all been filled has its stock holds released and, when no
 * hold is left, goes back where it was held from and is confirmed again.
 * Returns the units given.
 */
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
    v_now  timestamptz;
BEGIN
    SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = p_order FOR UPDATE SKIP LOCKED;
    IF NOT FOUND
       OR @extschema@.status_class('order', o.status) IN ('completed', 'cancelled') THEN
        RETURN 0;
    END IF;
    PERFORM @extschema@.citus_arm(p_order);     -- nothing on a single node
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
    v_now := clock_timestamp();     -- (Citus takes no volatile call in an UPDATE)
    UPDATE @extschema@.orders x SET updated_at = v_now WHERE x.order_id = p_order;
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

/*
 * Serve the demand waiting for (warehouse, sku), oldest order first
 * (placed_at, order_id, line_no), while stock is available: strict FIFO,
 * a line is filled in part when stock is short, and an order on a stock
 * hold is confirmed once every line is filled.  Lines with no warehouse
 * yet wait for any warehouse.  An order that is locked by another
 * transaction, or (REPEATABLE READ) changed after this snapshot, is left
 * for the next stock event; the commit-time pass of stock_apply is the
 * last look.  Returns the units given.
 */
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
    PERFORM @extschema@.require_stock_key(receive_stock.warehouse_id, receive_stock.sku);
    PERFORM @extschema@.stock_move(receive_stock.warehouse_id, receive_stock.sku, 'receipt',
                                   receive_stock.qty, 0, NULL, NULL, receive_stock.reason);
    RETURN @extschema@.serve_waiting_demand(receive_stock.warehouse_id, receive_stock.sku);
END;
$$;

CREATE FUNCTION @extschema@.adjust_stock(warehouse_id text, sku text, delta int, reason text)
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
