-- bench/history_api.sql: orders driven through the real API of schema
-- 0.8.0, one transaction per order (bench/history.sh runs bench_bi.api_run
-- in several clients): placement, confirmation, credit and fraud holds,
-- payments, cancellations, receipts; release_to_warehouse, start_picking,
-- pack_shipment, label_shipment, dispatch_shipment; carrier checkpoints
-- (record_tracking_event), which deliver; request_return, approve_return,
-- receive_return, inspect_return, refund_return; complete_order.  No row is
-- written by hand: every status follows from the API (the order's shipping
-- statuses roll up from its shipments).  The scenario draws are those of
-- bench/history_bulk.sql, which writes the same shapes set-based.
--
-- Orders split as the API splits them: placement reserves a line in
-- another warehouse (release_to_warehouse makes one shipment per
-- warehouse), or a backordered line (a scarce sku) arrives after the other
-- lines have left and the next release ships it on its own.  The bulk
-- draws both.  (The generator of schema 0.4.0 also split an order inside
-- one warehouse by hand, a shape the API never makes.)
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

-- Release an order (release_to_warehouse) and take every new shipment
-- through preparation and dispatch, as the warehouse does: pick, pack (a
-- re-pack when p_repack: the parcel is opened and picked again), label,
-- hand to the carrier.  Returns the shipments dispatched.
CREATE FUNCTION bench_bi.api_ship(o bigint, p_repack boolean) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    v_sid   bigint;
    v_ships bigint[] := '{}';
BEGIN
    PERFORM bench_bi.act('wms', false);
    PERFORM order_mgmt.release_to_warehouse(o);
    FOR v_sid IN SELECT s.shipment_id FROM order_mgmt.shipments s
                  WHERE s.order_id = o AND s.status = 'pending' ORDER BY s.shipment_id LOOP
        PERFORM order_mgmt.start_picking(v_sid);
        PERFORM order_mgmt.pack_shipment(v_sid, 1200, 300, 200, 100);
        IF p_repack AND cardinality(v_ships) = 0 THEN
            PERFORM set_config('order_mgmt.reason', 'parcel damaged, re-pack', true);
            PERFORM order_mgmt.start_picking(v_sid);
            PERFORM set_config('order_mgmt.reason', '', true);
            PERFORM order_mgmt.pack_shipment(v_sid, 1200, 300, 200, 100);
        END IF;
        PERFORM order_mgmt.label_shipment(v_sid, 'DHL', 'STD', 'AT' || v_sid, 'L' || v_sid);
        PERFORM order_mgmt.dispatch_shipment(v_sid);
        v_ships := v_ships || v_sid;
    END LOOP;
    RETURN v_ships;
END;
$$;

-- The carrier's checkpoints of a dispatched shipment, up to its delivery
-- (record_tracking_event moves the shipment, the order rolls up); a delay
-- first when p_delay.
CREATE FUNCTION bench_bi.api_carry(p_sid bigint, p_delay boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_tn   text := (SELECT s.tracking_number FROM order_mgmt.shipments s WHERE s.shipment_id = p_sid);
    v_code text;
    k      int := 0;
BEGIN
    PERFORM bench_bi.act('carrier:DHL', true);
    FOREACH v_code IN ARRAY CASE WHEN p_delay
                                 THEN '{in_transit,delayed,in_transit,out_for_delivery,delivered}'::text[]
                                 ELSE '{in_transit,out_for_delivery,delivered}'::text[] END LOOP
        k := k + 1;
        PERFORM order_mgmt.record_tracking_event(v_tn, v_tn || '-' || k, v_code, clock_timestamp(),
                                                 CASE v_code WHEN 'delivered' THEN 'front door'
                                                             ELSE 'DHL hub' END);
    END LOOP;
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
        IF v_cancel THEN                                    -- the same actors as below
            PERFORM bench_bi.act(CASE WHEN bench_bi.u(i, 72) < 0.5 THEN v_placer
                                      ELSE 'service-desk:' || (1 + floor(bench_bi.u(i, 73) * 8)) END, false);
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
    IF (SELECT x.status FROM order_mgmt.orders x WHERE x.order_id = o) <> 'confirmed' THEN
        RETURN;                                             -- still held: stays open
    END IF;
    -- what is reserved leaves now (nothing when the only line is backordered)
    IF EXISTS (SELECT 1 FROM order_mgmt.order_lines x WHERE x.order_id = o AND x.qty_reserved > 0) THEN
        v_ships := bench_bi.api_ship(o, v_repack);
    END IF;
    -- a backorder: the purchase arrives (receive_stock serves the queue,
    -- oldest first), and the next release ships it on its own
    PERFORM bench_bi.act('wms', false);
    FOR k IN 1 .. 5 LOOP
        SELECT x.sku, coalesce(x.warehouse_id, 'BER') AS wh, x.qty_backordered INTO l
          FROM order_mgmt.order_lines x WHERE x.order_id = o AND x.qty_backordered > 0 LIMIT 1;
        EXIT WHEN NOT FOUND;
        PERFORM order_mgmt.receive_stock(l.wh, l.sku, l.qty_backordered, 'purchase order');
    END LOOP;
    IF EXISTS (SELECT 1 FROM order_mgmt.order_lines x
                 LEFT JOIN order_mgmt.allocated_units a USING (order_id, line_no)
                WHERE x.order_id = o AND x.qty_reserved > coalesce(a.qty, 0)) THEN
        v_ships := v_ships || bench_bi.api_ship(o, v_repack AND cardinality(v_ships) = 0);
    END IF;
    IF cardinality(v_ships) > 0 AND NOT v_credit THEN      -- prepaid: captured once goods left
        PERFORM bench_bi.act('psp', true);
        PERFORM order_mgmt.capture_payment(o, v_total, 'A-CAP-' || i);
    END IF;
    FOR k IN 1 .. cardinality(v_ships) LOOP
        PERFORM bench_bi.api_carry(v_ships[k], v_delay AND k = cardinality(v_ships));
    END LOOP;
    IF (SELECT x.status FROM order_mgmt.orders x WHERE x.order_id = o) <> 'delivered' THEN
        RETURN;                                             -- still waiting for stock: stays open
    END IF;
    IF v_credit THEN                                        -- the invoice is paid
        PERFORM bench_bi.act('erp', true);
        PERFORM order_mgmt.authorize_payment(o, v_total, 'A-INV-' || i);
        PERFORM order_mgmt.capture_payment(o, v_total, 'A-PAY-' || i);
    END IF;

    IF v_return THEN                                        -- one unit of line 1 comes back
        PERFORM bench_bi.act(v_placer, false);
        v_rid := order_mgmt.request_return(o, '[{"line_no": 1, "qty": 1}]', 'does not fit', 'refund');
        PERFORM bench_bi.act('service-desk:' || (1 + floor(bench_bi.u(i, 74) * 8)), false);
        PERFORM order_mgmt.approve_return(v_rid);
        PERFORM bench_bi.act('wms', false);
        PERFORM order_mgmt.receive_return(v_rid);
        PERFORM order_mgmt.inspect_return(v_rid, CASE WHEN bench_bi.u(i, 75) < 0.7
            THEN '[{"line_no": 1, "qty": 1, "condition": "resellable", "disposition": "restock"}]'
            ELSE '[{"line_no": 1, "qty": 1, "condition": "damaged", "disposition": "scrap"}]' END::jsonb);
        PERFORM bench_bi.act('psp', true);
        PERFORM order_mgmt.refund_return(v_rid);
    END IF;
    -- the return window: closed at once here (the bulk closes it 30 days
    -- after delivery, as complete_due_orders would)
    PERFORM bench_bi.act('scheduler', true);
    PERFORM set_config('order_mgmt.reason', 'return window closed', true);
    PERFORM order_mgmt.complete_order(o);
    PERFORM set_config('order_mgmt.reason', '', true);
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
