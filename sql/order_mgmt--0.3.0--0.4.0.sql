/* order_mgmt 0.3.0 -> 0.4.0 */

\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit

-- allocate_backorders restored order_mgmt.automated to '' (an error: not a
-- boolean) when the session had set it before order_mgmt's library was
-- loaded, so receive_stock failed in such sessions (tools/crash-test.sh
-- found it; test/client/guc_placeholder.t).  Same function, one line fixed.
CREATE OR REPLACE FUNCTION @extschema@.allocate_backorders(p_warehouse text, p_sku text)
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
