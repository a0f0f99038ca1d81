-- bench/history_api.sql: orders driven through the real API, one
-- transaction per order (bench/history.sh runs bench_bi.api_run in several
-- clients).  Placement, confirmation, credit and fraud holds, payments,
-- cancellations and receipts are the API of schema 0.4.0; the scenario
-- draws are those of bench/history_bulk.sql, so both write the same shapes.
--
-- TODO(issues 10, 11): release, pick, pack, label, dispatch, tracking,
-- delivery, returns and completion are the hand-written steps that
-- tools/demo.sql uses today (set_status, UPDATEs of shipments and lines,
-- stock_move 'ship').  Switch them to release_to_warehouse,
-- start_picking/pack_shipment/label_shipment/dispatch_shipment,
-- record_tracking_event, request_return/approve_return/receive_return/
-- inspect_return/refund_return and complete_order when those land, here
-- and in history_bulk.sql (same event shapes).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA bench_bi;

CREATE FUNCTION bench_bi.u(i bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT (hashint8(i * 64 + k)::bigint + 2147483648) / 4294967296.0
$$;

-- who acts next (order_mgmt.actor / order_mgmt.automated, transaction-local)
CREATE FUNCTION bench_bi.act(p_actor text, p_automated boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('order_mgmt.actor', p_actor, true);
    PERFORM set_config('order_mgmt.automated', CASE WHEN p_automated THEN 'on' ELSE 'off' END, true);
END;
$$;

CREATE FUNCTION bench_bi.api_order(i bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    u_ch     float8 := bench_bi.u(i, 2);
    v_channel text := CASE WHEN u_ch < 0.40 THEN 'web' WHEN u_ch < 0.60 THEN 'marketplace'
                           WHEN u_ch < 0.75 THEN 'edi' WHEN u_ch < 0.90 THEN 'phone'
                           ELSE 'in_person' END;
    v_credit  boolean := v_channel IN ('edi', 'phone', 'in_person');
    v_credit_hold boolean := v_credit AND bench_bi.u(i, 10) < 0.06;
    v_fraud   boolean := v_channel = 'web' AND bench_bi.u(i, 11) < 0.02;
    v_awaiting boolean := NOT v_credit AND bench_bi.u(i, 12) < 0.25;
    v_bo      boolean := bench_bi.u(i, 13) < 0.03;
    v_cancel  boolean := bench_bi.u(i, 14) < 0.04 AND NOT v_bo AND NOT v_credit_hold;
    v_n       int := CASE WHEN bench_bi.u(i, 4) < 0.55 THEN 1 WHEN bench_bi.u(i, 4) < 0.85 THEN 2 ELSE 3 END;
    v_split   boolean := v_n > 1 AND bench_bi.u(i, 15) < 0.20;
    v_repack  boolean := bench_bi.u(i, 16) < 0.02;
    v_delay   boolean := bench_bi.u(i, 17) < 0.05;
    v_return  boolean := NOT v_credit AND NOT v_bo AND bench_bi.u(i, 19) < 0.07;
    v_placer  text := CASE v_channel WHEN 'web' THEN 'webshop' WHEN 'marketplace' THEN 'marketplace-api'
                          WHEN 'edi' THEN 'edi-gateway'
                          WHEN 'phone' THEN 'phone:agent' || (1 + floor(bench_bi.u(i, 6) * 40))
                          ELSE 'store:clerk' || (1 + floor(bench_bi.u(i, 6) * 20)) END;
    -- credit holds: the 50 customers without credit
    v_customer text := CASE WHEN v_credit_hold THEN 'C' || lpad((1 + floor(bench_bi.u(i, 3) * 50))::int::text, 5, '0')
                            WHEN v_credit THEN 'C' || lpad((51 + floor(bench_bi.u(i, 3) * 1950))::int::text, 5, '0')
                            ELSE 'P' || lpad((1 + floor(bench_bi.u(i, 3) * 50000))::int::text, 5, '0') END;
    v_lines   jsonb;
    o         bigint;
    v_total   numeric;
    v_status  text;
    v_hold    bigint;
    v_sid     bigint;
    v_ships   bigint[] := '{}';
    v_rid     bigint;
    l         record;
    k         int;
BEGIN
    SELECT jsonb_agg(jsonb_build_object(
               'sku', CASE WHEN v_bo AND n = 1 THEN 'SCARCE-' || (1 + floor(bench_bi.u(i, 40) * 20))::int
                           ELSE 'SKU-' || lpad((1 + floor(bench_bi.u(i, 40 + n) * 500))::int::text, 3, '0') END,
               'qty', 1 + floor(bench_bi.u(i, 50 + n) * 4)::int) ORDER BY n)
      INTO v_lines FROM generate_series(1, v_n) n;

    -- placement and confirmation (the API)
    PERFORM bench_bi.act(v_placer, false);
    o := order_mgmt.place_order(v_customer, v_lines,
             '{"name": "Bench", "line1": "Str. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}',
             v_channel, 'STD', 'A-' || i, NULL, v_bo);
    SELECT x.total INTO v_total FROM order_mgmt.orders x WHERE x.order_id = o;
    IF NOT v_credit AND NOT v_awaiting THEN
        PERFORM bench_bi.act('psp', true);
        PERFORM order_mgmt.authorize_payment(o, v_total, 'A-AUTH-' || i);
        PERFORM bench_bi.act(v_placer, false);
        v_status := order_mgmt.confirm_order(o);
    ELSIF NOT v_credit THEN
        v_status := order_mgmt.confirm_order(o);           -- awaiting_payment
        IF v_cancel THEN
            PERFORM order_mgmt.cancel_order(o, 'customer request');
            RETURN;
        END IF;
        PERFORM bench_bi.act('psp', true);
        PERFORM order_mgmt.authorize_payment(o, v_total, 'A-AUTH-' || i);   -- confirms it
    ELSE
        v_status := order_mgmt.confirm_order(o);
        IF v_status = 'on_hold' THEN
            PERFORM bench_bi.act('credit-control:' || (1 + floor(bench_bi.u(i, 70) * 5)), false);
            FOR l IN SELECT h.hold_id FROM order_mgmt.order_holds h
                      WHERE h.order_id = o AND h.released_at IS NULL LOOP
                PERFORM order_mgmt.release_hold(o, l.hold_id, 'limit checked');
            END LOOP;
            v_status := order_mgmt.confirm_order(o);
        END IF;
    END IF;
    IF v_fraud THEN
        PERFORM bench_bi.act('fraud-team:' || (1 + floor(bench_bi.u(i, 71) * 3)), false);
        v_hold := order_mgmt.hold_order(o, 'fraud', 'card check');
        PERFORM order_mgmt.release_hold(o, v_hold, 'card ok');
    END IF;
    IF v_cancel THEN
        PERFORM bench_bi.act(CASE WHEN bench_bi.u(i, 72) < 0.5 THEN v_placer
                                  ELSE 'service-desk:' || (1 + floor(bench_bi.u(i, 73) * 8)) END, false);
        PERFORM order_mgmt.cancel_order(o, 'customer request');
        IF NOT v_credit THEN
            PERFORM bench_bi.act('psp', true);
            PERFORM order_mgmt.void_payment(o, NULL, 'A-VOID-' || i);
        END IF;
        RETURN;
    END IF;
    -- a backorder: the purchase arrives (receive_stock serves the queue, oldest first)
    PERFORM bench_bi.act('wms', false);
    FOR k IN 1 .. 5 LOOP
        SELECT x.sku, coalesce(x.warehouse_id, 'BER') AS wh, x.qty_backordered INTO l
          FROM order_mgmt.order_lines x WHERE x.order_id = o AND x.qty_backordered > 0 LIMIT 1;
        EXIT WHEN NOT FOUND;
        PERFORM order_mgmt.receive_stock(l.wh, l.sku, l.qty_backordered, 'purchase order');
    END LOOP;
    IF (SELECT x.status FROM order_mgmt.orders x WHERE x.order_id = o) <> 'confirmed'
       OR EXISTS (SELECT 1 FROM order_mgmt.order_lines x WHERE x.order_id = o AND x.qty_backordered > 0) THEN
        RETURN;                                             -- still waiting: stays open
    END IF;

    -- release and shipments (hand-written, as tools/demo.sql; see the TODO above):
    -- one shipment per warehouse, a split sends the last line on its own
    PERFORM order_mgmt.set_status('order', o, 'processing');
    FOR l IN SELECT x.warehouse_id, array_agg(x.line_no) AS lines
               FROM (SELECT y.*, CASE WHEN v_split AND y.line_no = v_n THEN 2 ELSE 1 END AS part
                       FROM order_mgmt.order_lines y WHERE y.order_id = o) x
              GROUP BY x.warehouse_id, x.part ORDER BY min(x.line_no) LOOP
        INSERT INTO order_mgmt.shipments (order_id, warehouse_id) VALUES (o, l.warehouse_id)
        RETURNING shipment_id INTO v_sid;
        INSERT INTO order_mgmt.shipment_lines (order_id, shipment_id, line_no, qty)
        SELECT o, v_sid, y.line_no, y.qty FROM order_mgmt.order_lines y
         WHERE y.order_id = o AND y.line_no = ANY (l.lines);
        v_ships := v_ships || v_sid;
    END LOOP;
    FOR k IN 1 .. cardinality(v_ships) LOOP
        v_sid := v_ships[k];
        PERFORM bench_bi.act('wms', false);
        PERFORM order_mgmt.set_status('shipment', v_sid, 'picking');
        UPDATE order_mgmt.shipments SET status = 'packed', weight_g = 1200, length_mm = 300,
               width_mm = 200, height_mm = 100 WHERE shipment_id = v_sid;
        IF v_repack AND k = 1 THEN
            PERFORM order_mgmt.set_status('shipment', v_sid, 'picking', 'parcel damaged, re-pack');
            PERFORM order_mgmt.set_status('shipment', v_sid, 'packed');
        END IF;
        UPDATE order_mgmt.shipments SET status = 'labelled', carrier = 'DHL', service_id = 'STD',
               tracking_number = 'AT' || v_sid WHERE shipment_id = v_sid;
        UPDATE order_mgmt.shipments SET status = 'dispatched', dispatched_at = clock_timestamp()
         WHERE shipment_id = v_sid;
        PERFORM order_mgmt.stock_move(y.warehouse_id, y.sku, 'ship', -sl.qty, -sl.qty, o, y.line_no,
                                      'shipment ' || v_sid)
           FROM order_mgmt.shipment_lines sl
           JOIN order_mgmt.order_lines y ON y.order_id = sl.order_id AND y.line_no = sl.line_no
          WHERE sl.order_id = o AND sl.shipment_id = v_sid;
        UPDATE order_mgmt.order_lines y
           SET qty_shipped = y.qty_shipped + sl.qty, qty_reserved = y.qty_reserved - sl.qty
          FROM order_mgmt.shipment_lines sl
         WHERE sl.order_id = o AND sl.shipment_id = v_sid AND y.order_id = o AND y.line_no = sl.line_no;
        PERFORM order_mgmt.set_status('order', o, CASE WHEN k < cardinality(v_ships)
                                                       THEN 'partially_shipped' ELSE 'shipped' END);
        IF k = 1 AND NOT v_credit THEN
            PERFORM bench_bi.act('psp', true);
            PERFORM order_mgmt.capture_payment(o, v_total, 'A-CAP-' || i);
        END IF;
    END LOOP;
    FOREACH v_sid IN ARRAY v_ships LOOP
        PERFORM bench_bi.act('carrier:DHL', true);
        PERFORM order_mgmt.set_status('shipment', v_sid, 'in_transit');
        IF v_delay THEN
            PERFORM order_mgmt.set_status('shipment', v_sid, 'delayed');
            PERFORM order_mgmt.set_status('shipment', v_sid, 'in_transit');
        END IF;
        PERFORM order_mgmt.set_status('shipment', v_sid, 'out_for_delivery');
        PERFORM order_mgmt.set_status('shipment', v_sid, 'delivered');
        UPDATE order_mgmt.shipments SET delivered_at = clock_timestamp() WHERE shipment_id = v_sid;
        UPDATE order_mgmt.order_lines y SET qty_delivered = y.qty_delivered + sl.qty
          FROM order_mgmt.shipment_lines sl
         WHERE sl.order_id = o AND sl.shipment_id = v_sid AND y.order_id = o AND y.line_no = sl.line_no;
    END LOOP;
    PERFORM order_mgmt.set_status('order', o, 'delivered');
    IF v_credit THEN                                        -- the invoice is paid
        PERFORM bench_bi.act('erp', true);
        PERFORM order_mgmt.authorize_payment(o, v_total, 'A-INV-' || i);
        PERFORM order_mgmt.capture_payment(o, v_total, 'A-PAY-' || i);
    END IF;

    IF v_return THEN                                        -- one unit of line 1 comes back
        INSERT INTO order_mgmt.returns (order_id, reason) VALUES (o, 'does not fit')
        RETURNING return_id INTO v_rid;
        INSERT INTO order_mgmt.return_lines (order_id, return_id, line_no, qty) VALUES (o, v_rid, 1, 1);
        PERFORM bench_bi.act('service-desk:' || (1 + floor(bench_bi.u(i, 74) * 8)), false);
        PERFORM order_mgmt.set_status('return', v_rid, 'approved');
        PERFORM bench_bi.act('wms', false);
        PERFORM order_mgmt.set_status('return', v_rid, 'received');
        UPDATE order_mgmt.order_lines SET qty_returned = 1 WHERE order_id = o AND line_no = 1;
        UPDATE order_mgmt.return_lines SET condition = 'resellable', disposition = 'restock'
         WHERE return_id = v_rid;
        PERFORM order_mgmt.set_status('return', v_rid, 'inspected');
        SELECT y.warehouse_id, y.sku, y.unit_price INTO l FROM order_mgmt.order_lines y
         WHERE y.order_id = o AND y.line_no = 1;
        PERFORM order_mgmt.stock_move(l.warehouse_id, l.sku, 'restock', 1, 0, o, 1, 'return ' || v_rid);
        PERFORM order_mgmt.serve_waiting_demand(l.warehouse_id, l.sku);
        PERFORM order_mgmt.set_status('return', v_rid, 'completed');
        PERFORM bench_bi.act('psp', true);
        PERFORM order_mgmt.refund_payment(o, l.unit_price, 'A-REF-' || i, v_rid);
    ELSE
        PERFORM bench_bi.act('scheduler', true);
        PERFORM order_mgmt.set_status('order', o, 'completed');
    END IF;
END;
$$;

-- Orders p_from .. p_to, one transaction each.
CREATE PROCEDURE bench_bi.api_run(p_from bigint, p_to bigint) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN p_from .. p_to LOOP
        PERFORM bench_bi.api_order(i);
        COMMIT;
    END LOOP;
END;
$$;
