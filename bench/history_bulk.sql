-- bench/history_bulk.sql: the bulk of a BI history, written set-based
-- (bench/history.sh runs it; psql variables n, days, first).  Orders
-- first .. first + n - 1 are placed evenly over the last :days days, each
-- with a scenario drawn from a hash of its id (deterministic): channel,
-- customer, lines, credit and fraud holds, payment before or after
-- confirmation, backorders, cancellations, split shipments, re-packs,
-- carrier delays and late deliveries, returns with refunds, completion.
-- Every step is the row changes and the events the API makes for it (the
-- same shapes as bench/history_api.sql, which drives the real API), with
-- the clock of the scenario; orders still in flight at now() stop there.
--
-- Triggers are off while writing (session_replication_role = replica, so
-- the rules, foreign keys and derived columns are not checked row by row);
-- every derived value (payment_status, exposure, credit_accounts,
-- stock_levels) is computed set-based here, and bench/history_check.sql
-- proves every invariant afterwards.  Run as a superuser on a database
-- made by bench/history.sh (master data from history_setup.sql).  One
-- transaction: now() is the one instant the histories are cut at.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
BEGIN;
SET search_path = order_mgmt, pg_catalog;
SET work_mem = '512MB';
SET maintenance_work_mem = '1GB';

-- a uniform draw in [0, 1) for (order, k): deterministic, no state
CREATE FUNCTION pg_temp.u(i bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT (hashint8(i * 64 + k)::bigint + 2147483648) / 4294967296.0
$$;
CREATE FUNCTION pg_temp.h(x float8) RETURNS interval LANGUAGE sql IMMUTABLE AS $$
    SELECT make_interval(secs => x * 3600)
$$;

\echo '-- orders and their scenario'
CREATE TEMP TABLE g AS
WITH base AS (
    SELECT i AS order_id,
           now() - make_interval(days => :days)
               + make_interval(secs => (i - :first + pg_temp.u(i, 1)) * 86400.0 * :days / :n)
               AS t0,
           pg_temp.u(i, 2) AS r_channel, pg_temp.u(i, 3) AS r_cust, pg_temp.u(i, 4) AS r_lines,
           pg_temp.u(i, 5) AS r_wh
      FROM generate_series(:first::bigint, :first::bigint + :n - 1) i),
b2 AS (
    SELECT b.*,
           CASE WHEN r_channel < 0.40 THEN 'web' WHEN r_channel < 0.60 THEN 'marketplace'
                WHEN r_channel < 0.75 THEN 'edi' WHEN r_channel < 0.90 THEN 'phone'
                ELSE 'in_person' END AS channel,
           CASE WHEN r_wh < 0.5 THEN 'BER' WHEN r_wh < 0.8 THEN 'LEJ' ELSE 'NYC' END AS wh,
           CASE WHEN r_lines < 0.55 THEN 1 WHEN r_lines < 0.85 THEN 2 ELSE 3 END AS n_lines
      FROM base b)
SELECT b.order_id, b.t0, b.channel, b.wh, b.n_lines,
       b.channel IN ('edi', 'phone', 'in_person') AS credit,
       CASE WHEN b.channel IN ('edi', 'phone', 'in_person')
            THEN 'C' || lpad((1 + floor(b.r_cust * 2000))::int::text, 5, '0')
            ELSE 'P' || lpad((1 + floor(b.r_cust * 50000))::int::text, 5, '0') END AS customer_id,
       CASE b.channel WHEN 'web' THEN 'webshop' WHEN 'marketplace' THEN 'marketplace-api'
                      WHEN 'edi' THEN 'edi-gateway'
                      WHEN 'phone' THEN 'phone:agent' || (1 + floor(pg_temp.u(b.order_id, 6) * 40))
                      ELSE 'store:clerk' || (1 + floor(pg_temp.u(b.order_id, 6) * 20)) END AS placer,
       -- scenario switches
       b.channel IN ('edi', 'phone', 'in_person') AND pg_temp.u(b.order_id, 10) < 0.06 AS credit_hold,
       b.channel = 'web' AND pg_temp.u(b.order_id, 11) < 0.02 AS fraud_hold,
       b.channel IN ('web', 'marketplace') AND pg_temp.u(b.order_id, 12) < 0.25 AS awaiting,
       pg_temp.u(b.order_id, 13) < 0.03 AS backorder,
       pg_temp.u(b.order_id, 14) < 0.04 AS cancel,
       b.n_lines > 1 AND pg_temp.u(b.order_id, 15) < 0.20 AS split,
       pg_temp.u(b.order_id, 16) < 0.02 AS repack,
       pg_temp.u(b.order_id, 17) < 0.05 AS delay,
       pg_temp.u(b.order_id, 18) < 0.07 AS slow_carrier,
       pg_temp.u(b.order_id, 19) < 0.07 AS ret,
       -- durations (hours)
       1 + pg_temp.u(b.order_id, 20) * 71 AS credit_hold_h,
       2 + pg_temp.u(b.order_id, 21) * 22 AS fraud_hold_h,
       0.1 + pg_temp.u(b.order_id, 22) * 12 AS pay_delay_h,
       24 + pg_temp.u(b.order_id, 23) * 96 AS backorder_h,
       0.5 + pg_temp.u(b.order_id, 24) * 20 AS cancel_h,
       1 + pg_temp.u(b.order_id, 25) * 18 AS release_h,
       0.5 + pg_temp.u(b.order_id, 26) * 6 AS pick_h,
       20 + pg_temp.u(b.order_id, 27) * 40 AS transit_h,
       48 + pg_temp.u(b.order_id, 28) * 72 AS slow_h,
       24 + pg_temp.u(b.order_id, 29) * 24 AS second_h,
       48 + pg_temp.u(b.order_id, 30) * 400 AS return_h
  FROM b2 b;
ALTER TABLE g ADD PRIMARY KEY (order_id);

\echo '-- lines'
CREATE TEMP TABLE gl AS
SELECT g.order_id, l.line_no,
       CASE WHEN g.backorder AND l.line_no = 1
            THEN 'SCARCE-' || (1 + floor(pg_temp.u(g.order_id, 40) * 20))::int
            ELSE 'SKU-' || lpad((1 + floor(pg_temp.u(g.order_id, 40 + l.line_no) * 500))::int::text, 3, '0')
       END AS sku,
       (1 + floor(pg_temp.u(g.order_id, 50 + l.line_no) * 4))::int AS qty,
       CASE WHEN g.backorder AND l.line_no = 1 THEN true ELSE false END AS bo,
       -- a split sends the last line in a second shipment; a backorder
       -- line travels on its own when the order has other lines
       CASE WHEN g.split AND l.line_no = g.n_lines THEN 2
            WHEN g.backorder AND NOT g.split AND g.n_lines > 1 AND l.line_no = 1 THEN 2
            ELSE 1 END AS ship_no
  FROM g, generate_series(1, g.n_lines) l(line_no);
ALTER TABLE gl ADD COLUMN unit_price numeric(14,2);
UPDATE gl SET unit_price = p.list_price FROM products p WHERE p.sku = gl.sku;
ALTER TABLE gl ADD PRIMARY KEY (order_id, line_no);

\echo '-- the clock of each order'
CREATE TEMP TABLE t AS
WITH a AS (
    SELECT g.*, x.n_ship, x.total, x.bo_qty, x.units,
           -- first confirmation attempt (lines reserved)
           g.t0 + CASE WHEN g.credit THEN interval '5 s'
                       WHEN g.awaiting THEN interval '1 s'
                ELSE interval '21 s' END AS t_res
      FROM g
      JOIN (SELECT order_id, max(ship_no) AS n_ship, sum(qty * unit_price) AS total,
                   sum(qty) FILTER (WHERE bo) AS bo_qty, sum(qty) AS units
              FROM gl GROUP BY order_id) x USING (order_id)),
b AS (
    SELECT a.*,
           CASE WHEN NOT a.credit AND NOT a.awaiting THEN a.t0 + interval '20 s'
                WHEN NOT a.credit THEN a.t0 + pg_temp.h(a.pay_delay_h) END AS t_auth,
           CASE WHEN a.credit_hold THEN a.t0 + interval '6 s' END AS t_ch,
           CASE WHEN a.credit_hold THEN a.t0 + interval '6 s' + pg_temp.h(a.credit_hold_h) END AS t_chr
      FROM a),
c AS (
    SELECT b.*,
           CASE WHEN b.credit_hold THEN b.t_chr + interval '2 min'
                WHEN b.credit THEN b.t0 + interval '5 s'
                WHEN b.awaiting THEN b.t_auth + interval '1 s'
                ELSE b.t_res END AS t_conf
      FROM b),
d AS (
    SELECT c.*,
           CASE WHEN c.fraud_hold AND NOT c.cancel THEN c.t_conf + interval '5 min' END AS t_fh,
           CASE WHEN c.fraud_hold AND NOT c.cancel
                THEN c.t_conf + interval '5 min' + pg_temp.h(c.fraud_hold_h) END AS t_fhr,
           CASE WHEN c.backorder THEN c.t_conf + pg_temp.h(c.backorder_h) END AS t_alloc,
           -- a cancellation comes before the release: while awaiting
           -- payment (prepaid) or once confirmed; never with a hold
           CASE WHEN c.cancel AND NOT c.credit_hold AND NOT c.backorder
                THEN CASE WHEN c.awaiting THEN c.t0 + pg_temp.h(least(c.cancel_h, c.pay_delay_h) * 0.9)
                          ELSE c.t_conf + pg_temp.h(c.cancel_h) END END AS t_cancel
      FROM c),
e AS (
    SELECT d.*,
           CASE WHEN d.t_cancel IS NULL
                THEN greatest(d.t_conf, d.t_fhr, d.t_alloc) + pg_temp.h(d.release_h) END AS t_rel
      FROM d)
SELECT e.*, e.t_cancel IS NOT NULL AS cancelled,
       -- the confirmation of a prepaid order awaiting payment never
       -- happens when it is cancelled first
       CASE WHEN e.t_cancel IS NOT NULL AND e.awaiting THEN NULL ELSE e.t_conf END AS t_confirmed
  FROM e;
ALTER TABLE t ADD PRIMARY KEY (order_id);

-- shipments: one or two per released order; the second of a split leaves
-- a day or two later (the backorder line leaves when it arrives)
CREATE TEMP TABLE ts AS
WITH s AS (
    SELECT t.order_id, k AS ship_no, t.order_id * 2 - 2 + k AS shipment_id, t.wh,
           t.t_rel + CASE WHEN k = 2 AND t.split THEN pg_temp.h(t.second_h) ELSE interval '0' END
               + pg_temp.h(t.pick_h * (0.5 + pg_temp.u(t.order_id, 60 + k))) AS t_pick,
           (t.repack AND k = 1) AS repack,
           (t.delay AND k = t.n_ship) AS delay,
           t.transit_h + CASE WHEN t.slow_carrier THEN t.slow_h ELSE 0 END
               + 6 * pg_temp.u(t.order_id, 62 + k) AS transit_h
      FROM t, generate_series(1, t.n_ship) k
     WHERE t.t_rel IS NOT NULL)
SELECT s.*,
       s.t_pick + interval '25 min' AS t_pack,
       s.t_pick + interval '40 min' AS t_repick,
       s.t_pick + interval '55 min' AS t_repack,
       s.t_pick + CASE WHEN s.repack THEN interval '65 min' ELSE interval '35 min' END AS t_label,
       s.t_pick + interval '2 hours' AS t_disp,
       s.t_pick + interval '5 hours' AS t_transit,
       CASE WHEN s.delay THEN s.t_pick + interval '29 hours' END AS t_delayed,
       CASE WHEN s.delay THEN s.t_pick + interval '53 hours' END AS t_retransit,
       s.t_pick + interval '2 hours' + pg_temp.h(s.transit_h)
           + CASE WHEN s.delay THEN interval '48 hours' ELSE interval '0' END AS t_ofd,
       s.t_pick + interval '2 hours' + pg_temp.h(s.transit_h + 3)
           + CASE WHEN s.delay THEN interval '48 hours' ELSE interval '0' END AS t_del
  FROM s;
ALTER TABLE ts ADD PRIMARY KEY (order_id, ship_no);

-- order milestones that depend on shipments; completion 30 days after the
-- last delivery (no return); a return opened some days after delivery
CREATE TEMP TABLE tm AS
SELECT t.order_id,
       min(s.t_disp) AS t_disp_first, max(s.t_disp) AS t_disp_last,
       max(s.t_del) AS t_del_last
  FROM t JOIN ts s USING (order_id) GROUP BY t.order_id;
ALTER TABLE tm ADD PRIMARY KEY (order_id);
CREATE TEMP TABLE o AS
SELECT t.*, tm.t_disp_first, tm.t_disp_last, tm.t_del_last,
       CASE WHEN NOT (t.ret AND NOT t.credit AND NOT t.backorder)
            THEN tm.t_del_last + interval '30 days' END AS t_complete,
       -- returns of prepaid (consumer) orders; backordered lines are not returned
       CASE WHEN t.ret AND NOT t.credit AND NOT t.backorder
            THEN tm.t_del_last + pg_temp.h(t.return_h) END AS t_ret,
       CASE WHEN t.credit THEN tm.t_del_last + interval '20 days' END AS t_invoice_paid
  FROM t LEFT JOIN tm USING (order_id);
ALTER TABLE o ADD PRIMARY KEY (order_id);
DROP TABLE tm;

\echo '-- candidate events (the whole scenario; only what happened by now is kept)'
-- k orders the events of one step that share a timestamp, as the API writes them
CREATE TEMP TABLE ev (order_id bigint, k int, entity text, entity_id bigint, event_type text,
                      from_status text, to_status text, occurred_at timestamptz, actor text,
                      automated boolean, reason text, payload jsonb);
-- placement and confirmation
INSERT INTO ev
SELECT o.order_id, 0, 'order', o.order_id, 'order.placed', NULL, 'placed', o.t0, o.placer, false,
       NULL, jsonb_build_object('channel', o.channel)
  FROM o
UNION ALL   -- prepaid, paid before confirmation: the authorization, then confirm_order
SELECT o.order_id, 1, 'payment', o.order_id * 4, 'payment.authorized', NULL, NULL, o.t_auth, 'psp', true,
       NULL, jsonb_build_object('amount', o.total)
  FROM o WHERE NOT o.credit AND NOT (o.cancelled AND o.awaiting)
UNION ALL
SELECT o.order_id, 2, 'order', o.order_id,
       CASE WHEN o.credit THEN 'order.credit_checked' ELSE 'order.payment_checked' END, NULL, NULL,
       o.t_res, o.placer, false, NULL,
       CASE WHEN o.credit THEN jsonb_build_object('passed', NOT o.credit_hold)
            ELSE jsonb_build_object('passed', NOT o.awaiting) END
  FROM o
UNION ALL   -- reservations at the first confirmation attempt
SELECT o.order_id, 3, 'line', l.line_no, CASE WHEN l.bo THEN 'line.backordered' ELSE 'line.reserved' END,
       NULL, NULL, o.t_res, o.placer, false, NULL,
       jsonb_build_object('sku', l.sku, 'warehouse_id', o.wh, 'qty', l.qty)
  FROM o JOIN gl l USING (order_id)
UNION ALL
SELECT o.order_id, 4, 'order', o.order_id, 'order.awaiting_payment', 'placed', 'awaiting_payment',
       o.t_res, o.placer, false, 'authorizations do not cover the order total', NULL
  FROM o WHERE o.awaiting
UNION ALL   -- the authorization that confirms an order awaiting payment (automated)
SELECT o.order_id, 5, 'order', o.order_id, 'order.payment_checked', NULL, NULL, o.t_confirmed, 'psp',
       true, NULL, jsonb_build_object('passed', true)
  FROM o WHERE o.awaiting AND o.t_confirmed IS NOT NULL
UNION ALL   -- credit hold: placed by the confirmation, released by credit control
SELECT o.order_id, 5, 'hold', o.order_id * 2, 'hold.placed', NULL, NULL, o.t_ch, o.placer, false,
       'over the credit limit', jsonb_build_object('kind', 'credit')
  FROM o WHERE o.credit_hold
UNION ALL
SELECT o.order_id, 6, 'order', o.order_id, 'order.held', 'placed', 'on_hold', o.t_ch, o.placer, false,
       'credit hold: over the credit limit', NULL
  FROM o WHERE o.credit_hold
UNION ALL
SELECT o.order_id, 7, 'hold', o.order_id * 2, 'hold.released', NULL, NULL, o.t_chr,
       'credit-control:' || (1 + floor(pg_temp.u(o.order_id, 70) * 5)), false, 'limit checked',
       jsonb_build_object('kind', 'credit')
  FROM o WHERE o.credit_hold
UNION ALL
SELECT o.order_id, 8, 'order', o.order_id, 'order.hold_released', 'on_hold', 'placed', o.t_chr,
       'credit-control:' || (1 + floor(pg_temp.u(o.order_id, 70) * 5)), false, 'limit checked', NULL
  FROM o WHERE o.credit_hold
UNION ALL
SELECT o.order_id, 9, 'order', o.order_id, 'order.confirmed',
       CASE WHEN o.awaiting THEN 'awaiting_payment' ELSE 'placed' END, 'confirmed', o.t_confirmed,
       CASE WHEN o.credit_hold THEN 'credit-control:' || (1 + floor(pg_temp.u(o.order_id, 70) * 5))
            WHEN o.awaiting THEN 'psp' ELSE o.placer END,
       o.awaiting, NULL, NULL
  FROM o WHERE o.t_confirmed IS NOT NULL
UNION ALL   -- fraud review of a web order
SELECT o.order_id, 10, 'hold', o.order_id * 2 + 1, 'hold.placed', NULL, NULL, o.t_fh,
       'fraud-team:' || (1 + floor(pg_temp.u(o.order_id, 71) * 3)), false, 'card check',
       jsonb_build_object('kind', 'fraud')
  FROM o WHERE o.t_fh IS NOT NULL
UNION ALL
SELECT o.order_id, 11, 'order', o.order_id, 'order.held', 'confirmed', 'on_hold', o.t_fh,
       'fraud-team:' || (1 + floor(pg_temp.u(o.order_id, 71) * 3)), false, 'fraud hold: card check', NULL
  FROM o WHERE o.t_fh IS NOT NULL
UNION ALL
SELECT o.order_id, 12, 'hold', o.order_id * 2 + 1, 'hold.released', NULL, NULL, o.t_fhr,
       'fraud-team:' || (1 + floor(pg_temp.u(o.order_id, 71) * 3)), false, 'card ok',
       jsonb_build_object('kind', 'fraud')
  FROM o WHERE o.t_fh IS NOT NULL
UNION ALL
SELECT o.order_id, 13, 'order', o.order_id, 'order.hold_released', 'on_hold', 'confirmed', o.t_fhr,
       'fraud-team:' || (1 + floor(pg_temp.u(o.order_id, 71) * 3)), false, 'card ok', NULL
  FROM o WHERE o.t_fh IS NOT NULL
UNION ALL   -- stock arrives for the backorder (receive_stock by the WMS, automated)
SELECT o.order_id, 14, 'line', 1, 'line.backorder_allocated', NULL, NULL, o.t_alloc, 'wms', true,
       'backorder allocated', jsonb_build_object('qty', o.bo_qty, 'still_backordered', 0)
  FROM o WHERE o.t_alloc IS NOT NULL
UNION ALL
SELECT o.order_id, 15, 'order', o.order_id, 'order.cancelled',
       CASE WHEN o.awaiting THEN 'awaiting_payment' ELSE 'confirmed' END, 'cancelled', o.t_cancel,
       CASE WHEN pg_temp.u(o.order_id, 72) < 0.5 THEN o.placer
            ELSE 'service-desk:' || (1 + floor(pg_temp.u(o.order_id, 73) * 8)) END,
       false, 'customer request', NULL
  FROM o WHERE o.cancelled
UNION ALL   -- an authorization of a cancelled order is voided
SELECT o.order_id, 16, 'payment', o.order_id * 4 + 3, 'payment.voided', NULL, NULL,
       o.t_cancel + interval '1 min', 'psp', true, NULL, jsonb_build_object('amount', o.total)
  FROM o WHERE o.cancelled AND NOT o.credit AND NOT o.awaiting
UNION ALL
SELECT o.order_id, 17, 'order', o.order_id, 'order.released', 'confirmed', 'processing', o.t_rel,
       'wms', false, NULL, NULL
  FROM o WHERE o.t_rel IS NOT NULL;

-- shipments (the hand-written steps of tools/demo.sql; see history_api.sql)
INSERT INTO ev
SELECT s.order_id, 20 + x.k, 'shipment', s.shipment_id, 'shipment.' || x.activity, x.f, x.t2, x.at,
       x.actor, x.auto, NULL, NULL
  FROM ts s
 CROSS JOIN LATERAL (VALUES
       (0, 'picking_started', 'pending', 'picking', s.t_pick, 'wms', false),
       (1, 'packed', 'picking', 'packed', s.t_pack, 'wms', false),
       (2, CASE WHEN s.repack THEN 'repack_started' END, 'packed', 'picking', s.t_repick, 'wms', false),
       (3, CASE WHEN s.repack THEN 'packed' END, 'picking', 'packed', s.t_repack, 'wms', false),
       (4, 'labelled', 'packed', 'labelled', s.t_label, 'wms', false),
       (5, 'dispatched', 'labelled', 'dispatched', s.t_disp, 'wms', false),
       (7, 'in_transit', 'dispatched', 'in_transit', s.t_transit, 'carrier:DHL', true),
       (8, CASE WHEN s.delay THEN 'delayed' END, 'in_transit', 'delayed', s.t_delayed, 'carrier:DHL', true),
       (9, CASE WHEN s.delay THEN 'in_transit' END, 'delayed', 'in_transit', s.t_retransit, 'carrier:DHL', true),
       (10, 'out_for_delivery', 'in_transit', 'out_for_delivery', s.t_ofd, 'carrier:DHL', true),
       (11, 'delivered', 'out_for_delivery', 'delivered', s.t_del, 'carrier:DHL', true))
       AS x(k, activity, f, t2, at, actor, auto)
 WHERE x.activity IS NOT NULL;
INSERT INTO ev
SELECT o.order_id, 26, 'order', o.order_id,
       CASE WHEN o.n_ship = 2 THEN 'order.partially_shipped' ELSE 'order.shipped' END, 'processing',
       CASE WHEN o.n_ship = 2 THEN 'partially_shipped' ELSE 'shipped' END, o.t_disp_first, 'wms', false,
       NULL::text, NULL::jsonb
  FROM o WHERE o.t_disp_first IS NOT NULL
UNION ALL
SELECT o.order_id, 27, 'order', o.order_id, 'order.shipped', 'partially_shipped', 'shipped',
       o.t_disp_last, 'wms', false, NULL, NULL
  FROM o WHERE o.n_ship = 2 AND o.t_disp_last IS NOT NULL
UNION ALL   -- prepaid orders are captured when the first parcel leaves
SELECT o.order_id, 28, 'payment', o.order_id * 4 + 1, 'payment.captured', NULL, NULL, o.t_disp_first,
       'psp', true, NULL, jsonb_build_object('amount', o.total)
  FROM o WHERE NOT o.credit AND o.t_disp_first IS NOT NULL
UNION ALL   -- credit customers pay the invoice (authorized and captured at once)
SELECT o.order_id, 39, 'payment', o.order_id * 4, 'payment.authorized', NULL, NULL,
       o.t_invoice_paid, 'erp', true, NULL, jsonb_build_object('amount', o.total)
  FROM o WHERE o.credit AND o.t_invoice_paid IS NOT NULL
UNION ALL
SELECT o.order_id, 40, 'payment', o.order_id * 4 + 1, 'payment.captured', NULL, NULL,
       o.t_invoice_paid, 'erp', true, NULL, jsonb_build_object('amount', o.total)
  FROM o WHERE o.credit AND o.t_invoice_paid IS NOT NULL
UNION ALL
SELECT o.order_id, 35, 'order', o.order_id, 'order.delivered', 'shipped', 'delivered', o.t_del_last,
       'carrier:DHL', true, NULL, NULL
  FROM o WHERE o.t_del_last IS NOT NULL
UNION ALL
SELECT o.order_id, 41, 'order', o.order_id, 'order.completed', 'delivered', 'completed',
       o.t_complete, 'scheduler', true, 'return window closed', NULL
  FROM o WHERE o.t_complete IS NOT NULL
UNION ALL   -- a return: opened by the customer (no event before the returns API),
            -- approved by the service desk, received, inspected, refunded
SELECT o.order_id, 42 + x.k, x.ent, CASE WHEN x.ent = 'return' THEN o.order_id ELSE o.order_id * 4 + 2 END,
       x.typ, x.f, x.t2, o.t_ret + x.after, x.actor, x.auto, NULL,
       CASE WHEN x.ent = 'payment' THEN jsonb_build_object('return_id', o.order_id) END
  FROM o CROSS JOIN LATERAL (VALUES
       (0, 'return', 'return.approved', 'requested', 'approved', interval '1 day',
        'service-desk:' || (1 + floor(pg_temp.u(o.order_id, 74) * 8)), false),
       (1, 'return', 'return.received', 'approved', 'received', interval '5 days', 'wms', false),
       (2, 'return', 'return.inspected', 'received', 'inspected', interval '6 days', 'wms', false),
       (3, 'return', 'return.completed', 'inspected', 'completed', interval '6 days 1 hour', 'wms', false),
       (4, 'payment', 'payment.refunded', NULL, NULL, interval '6 days 2 hours', 'psp', true))
       AS x(k, ent, typ, f, t2, after, actor, auto)
 WHERE o.t_ret IS NOT NULL;

\echo '-- the event log: what happened by now, in the order it happened'
SET session_replication_role = replica;
INSERT INTO events (order_id, entity, entity_id, event_type, from_status, to_status, occurred_at,
                    actor, automated, reason, payload, db_role)
SELECT order_id, entity, entity_id, event_type, from_status, to_status, occurred_at, actor,
       automated, reason, payload, 'bench'
  FROM ev WHERE occurred_at <= now()
 ORDER BY occurred_at, order_id, k;

\echo '-- orders, lines, shipments, holds, payments, returns as of now'
CREATE TEMP TABLE now_o AS
SELECT o.*,
       CASE WHEN o.t_cancel <= now() THEN 'cancelled'
            WHEN o.t_complete <= now() THEN 'completed'
            WHEN o.t_del_last <= now() THEN 'delivered'
            WHEN o.t_disp_last <= now() THEN 'shipped'
            WHEN o.t_disp_first <= now() THEN 'partially_shipped'
            WHEN o.t_rel <= now() THEN 'processing'
            WHEN o.t_fh <= now() AND NOT o.t_fhr <= now() THEN 'on_hold'
            WHEN o.t_confirmed <= now() THEN 'confirmed'
            WHEN o.t_ch <= now() AND NOT o.t_chr <= now() THEN 'on_hold'
            WHEN o.awaiting AND o.t_res <= now() THEN 'awaiting_payment'
            ELSE 'placed' END AS status
  FROM o;
ALTER TABLE now_o ADD PRIMARY KEY (order_id);

CREATE TEMP TABLE now_l AS
SELECT l.order_id, l.line_no, l.sku, l.qty, l.unit_price, l.ship_no,
       CASE WHEN o.t_res <= now() THEN o.wh END AS warehouse_id,
       CASE WHEN l.bo AND o.t_alloc <= now() THEN o.t_alloc END AS ready_at,
       CASE WHEN s.t_disp <= now() THEN l.qty ELSE 0 END AS qty_shipped,
       CASE WHEN s.t_del <= now() THEN l.qty ELSE 0 END AS qty_delivered,
       CASE WHEN o.status = 'cancelled' THEN l.qty ELSE 0 END AS qty_cancelled,
       CASE WHEN l.bo AND o.t_res <= now() AND NOT o.t_alloc <= now() THEN l.qty ELSE 0 END
           AS qty_backordered,
       CASE WHEN o.status IN ('cancelled', 'completed') OR s.t_disp <= now() THEN 0
            WHEN l.bo THEN CASE WHEN o.t_alloc <= now() THEN l.qty ELSE 0 END
            WHEN o.t_res <= now() THEN l.qty ELSE 0 END AS qty_reserved,
       CASE WHEN l.line_no = 1 AND o.t_ret + interval '5 days' <= now() THEN 1 ELSE 0 END
           AS qty_returned,
       l.bo, o.t_res, o.t_alloc, o.t_cancel, s.t_disp
  FROM gl l JOIN now_o o USING (order_id)
  LEFT JOIN ts s ON s.order_id = l.order_id AND s.ship_no = l.ship_no;

INSERT INTO orders (order_id, external_ref, customer_id, channel, status, held_from, payment_status,
                    return_status, currency, total, ship_to, ship_to_country, ship_to_postal,
                    service_id, allow_backorder, promised_ship_earliest, promised_ship_latest,
                    promised_delivery_earliest, promised_delivery_latest, placed_at,
                    credit_approved_at, exposure, updated_at)
SELECT o.order_id, 'H-' || o.order_id, o.customer_id, o.channel, o.status,
       CASE WHEN o.status = 'on_hold' THEN CASE WHEN o.t_fh <= now() THEN 'confirmed' ELSE 'placed' END END,
       -- return_status: nothing derives it before the returns API (issue 11); the API part leaves it too
       'unpaid', 'none',
       'EUR', o.total, jsonb_build_object('country', CASE WHEN o.wh = 'NYC' THEN 'US' ELSE 'DE' END),
       CASE WHEN o.wh = 'NYC' THEN 'US' ELSE 'DE' END, CASE WHEN o.wh = 'NYC' THEN '10001' ELSE '10115' END,
       'STD', o.backorder, e.ship_earliest, e.ship_latest, e.delivery_earliest, e.delivery_latest,
       o.t0,
       CASE WHEN o.credit AND o.t_confirmed <= now() THEN coalesce(o.t_chr, o.t_confirmed) END,
       0, NULL
  FROM now_o o
  -- the promise is stored when the order is confirmed (the C engine, from placed_at)
  LEFT JOIN LATERAL estimate_delivery(o.wh, 'STD', CASE WHEN o.wh = 'NYC' THEN 'US' ELSE 'DE' END,
                                      CASE WHEN o.wh = 'NYC' THEN '10001' ELSE '10115' END, o.t0) e
         ON o.t_confirmed <= now()
 ORDER BY o.order_id;

INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price, warehouse_id, ready_at, qty_reserved,
                         qty_backordered, qty_shipped, qty_delivered, qty_cancelled, qty_returned)
SELECT order_id, line_no, sku, qty, unit_price, warehouse_id, ready_at, qty_reserved, qty_backordered,
       qty_shipped, qty_delivered, qty_cancelled, qty_returned
  FROM now_l ORDER BY order_id, line_no;

INSERT INTO shipments (order_id, shipment_id, warehouse_id, status, service_id, carrier, tracking_number,
                       weight_g, length_mm, width_mm, height_mm, label_ref, promised_delivery_earliest,
                       promised_delivery_latest, estimated_delivery_earliest, estimated_delivery_latest,
                       created_at, dispatched_at, delivered_at)
SELECT s.order_id, s.shipment_id, s.wh, x.status, 'STD',
       CASE WHEN s.t_label <= now() THEN 'DHL' END,
       CASE WHEN s.t_label <= now() THEN 'HT' || s.shipment_id END,
       CASE WHEN s.t_pack <= now() THEN 1200 END, CASE WHEN s.t_pack <= now() THEN 300 END,
       CASE WHEN s.t_pack <= now() THEN 200 END, CASE WHEN s.t_pack <= now() THEN 100 END,
       CASE WHEN s.t_label <= now() THEN 'L' || s.shipment_id END,
       o.promised_delivery_earliest, o.promised_delivery_latest,
       o.promised_delivery_earliest,
       -- the carrier's window moves out with a delay
       CASE WHEN s.t_delayed <= now() THEN (s.t_del AT TIME ZONE 'UTC')::date + 1
            ELSE o.promised_delivery_latest END,
       n.t_rel, CASE WHEN s.t_disp <= now() THEN s.t_disp END,
       CASE WHEN s.t_del <= now() THEN s.t_del END
  FROM ts s JOIN now_o n USING (order_id)
  JOIN orders o ON o.order_id = s.order_id
 CROSS JOIN LATERAL (SELECT CASE
       WHEN s.t_del <= now() THEN 'delivered' WHEN s.t_ofd <= now() THEN 'out_for_delivery'
       WHEN s.t_retransit <= now() THEN 'in_transit' WHEN s.t_delayed <= now() THEN 'delayed'
       WHEN s.t_transit <= now() THEN 'in_transit' WHEN s.t_disp <= now() THEN 'dispatched'
       WHEN s.t_label <= now() THEN 'labelled'
       WHEN s.t_repack <= now() THEN 'packed' WHEN s.t_repick <= now() AND s.repack THEN 'picking'
       WHEN s.t_pack <= now() THEN 'packed' WHEN s.t_pick <= now() THEN 'picking'
       ELSE 'pending' END AS status) x
 WHERE n.t_rel <= now()
 ORDER BY s.shipment_id;

INSERT INTO shipment_lines (order_id, shipment_id, line_no, qty)
SELECT l.order_id, l.order_id * 2 - 2 + l.ship_no, l.line_no, l.qty
  FROM now_l l JOIN shipments s ON s.order_id = l.order_id AND s.shipment_id = l.order_id * 2 - 2 + l.ship_no;

INSERT INTO order_holds (order_id, hold_id, kind, reason, placed_at, placed_by, released_at, released_by,
                         release_reason)
SELECT order_id, entity_id, payload->>'kind', max(reason) FILTER (WHERE event_type = 'hold.placed'),
       min(occurred_at) FILTER (WHERE event_type = 'hold.placed'),
       min(actor) FILTER (WHERE event_type = 'hold.placed'),
       min(occurred_at) FILTER (WHERE event_type = 'hold.released'),
       min(actor) FILTER (WHERE event_type = 'hold.released'),
       min(reason) FILTER (WHERE event_type = 'hold.released')
  FROM events WHERE entity = 'hold' AND event_type IN ('hold.placed', 'hold.released')
 GROUP BY order_id, entity_id, payload->>'kind';

INSERT INTO returns (order_id, return_id, status, reason, resolution, created_at)
SELECT o.order_id, o.order_id,
       CASE WHEN o.t_ret + interval '6 days 1 hour' <= now() THEN 'completed'
            WHEN o.t_ret + interval '6 days' <= now() THEN 'inspected'
            WHEN o.t_ret + interval '5 days' <= now() THEN 'received'
            WHEN o.t_ret + interval '1 day' <= now() THEN 'approved'
            ELSE 'requested' END, 'does not fit', 'refund', o.t_ret
  FROM now_o o WHERE o.t_ret <= now();
INSERT INTO return_lines (order_id, return_id, line_no, qty, condition, disposition)
SELECT r.order_id, r.return_id, 1, 1,
       CASE WHEN r.status IN ('inspected', 'completed')
            THEN CASE WHEN pg_temp.u(r.order_id, 75) < 0.7 THEN 'resellable' ELSE 'damaged' END END,
       CASE WHEN r.status IN ('inspected', 'completed')
            THEN CASE WHEN pg_temp.u(r.order_id, 75) < 0.7 THEN 'restock' ELSE 'scrap' END END
  FROM returns r JOIN g USING (order_id);

INSERT INTO payments (order_id, payment_id, kind, amount, psp_reference, return_id, created_at, actor)
SELECT e.order_id, e.entity_id,
       CASE e.event_type WHEN 'payment.authorized' THEN 'authorization'
                         WHEN 'payment.captured' THEN 'capture'
                         WHEN 'payment.refunded' THEN 'refund' ELSE 'void' END,
       CASE WHEN e.event_type = 'payment.refunded' THEN l.unit_price ELSE o.total END,
       'HPSP-' || e.entity_id, (e.payload->>'return_id')::bigint, e.occurred_at, e.actor
  FROM events e JOIN orders o USING (order_id)
  JOIN order_lines l ON l.order_id = e.order_id AND l.line_no = 1
 WHERE e.entity = 'payment';

\echo '-- derived columns: payment status, exposure, credit accounts, last change'
UPDATE orders o
   SET payment_status = derive_payment_status(o.total, p.authorized, p.captured, p.refunded, p.voided),
       exposure = order_exposure(o.total, o.credit_approved_at, o.status, p.captured),
       updated_at = p.last_event
  FROM (SELECT y.order_id,
               coalesce(x.authorized, 0) AS authorized, coalesce(x.captured, 0) AS captured,
               coalesce(x.refunded, 0) AS refunded, coalesce(x.voided, 0) AS voided, e.last_event
          FROM orders y
          LEFT JOIN (SELECT z.order_id,
                            sum(z.amount) FILTER (WHERE z.kind = 'authorization') AS authorized,
                            sum(z.amount) FILTER (WHERE z.kind = 'capture') AS captured,
                            sum(z.amount) FILTER (WHERE z.kind = 'refund') AS refunded,
                            sum(z.amount) FILTER (WHERE z.kind = 'void') AS voided
                       FROM payments z GROUP BY z.order_id) x USING (order_id)
          JOIN (SELECT z.order_id, max(z.occurred_at) AS last_event
                  FROM events z GROUP BY z.order_id) e USING (order_id)
         WHERE y.order_id BETWEEN :first AND :first + :n - 1) p
 WHERE o.order_id = p.order_id;
INSERT INTO credit_accounts (customer_id, exposure)
SELECT customer_id, sum(exposure) FROM orders GROUP BY customer_id HAVING sum(exposure) <> 0
    ON CONFLICT (customer_id) DO UPDATE SET exposure = excluded.exposure, updated_at = now();

\echo '-- stock: the ledger of every unit and the levels it sums to'
INSERT INTO inventory_movements (warehouse_id, sku, kind, on_hand_delta, reserved_delta, order_id,
                                 line_no, reason, actor, created_at)
SELECT x.* FROM (
    -- reservations at confirmation, and of backorders when stock arrives
    SELECT l.warehouse_id, l.sku, 'reserve', 0, l.qty, l.order_id, l.line_no, NULL::text, 'bench',
           CASE WHEN l.bo THEN l.t_alloc ELSE l.t_res END
      FROM now_l l WHERE l.warehouse_id IS NOT NULL AND (NOT l.bo OR l.t_alloc <= now())
    UNION ALL   -- the stock of a backorder arrives (receive_stock)
    SELECT l.warehouse_id, l.sku, 'receipt', l.qty, 0, NULL, NULL, 'purchase order', 'wms', l.t_alloc
      FROM now_l l WHERE l.bo AND l.t_alloc <= now()
    UNION ALL   -- dispatch consumes the reservation
    SELECT l.warehouse_id, l.sku, 'ship', -l.qty, -l.qty, l.order_id, l.line_no,
           'shipment ' || (l.order_id * 2 - 2 + l.ship_no), 'wms', l.t_disp
      FROM now_l l WHERE l.t_disp <= now()
    UNION ALL   -- cancellation releases it
    SELECT l.warehouse_id, l.sku, 'release', 0, -l.qty, l.order_id, l.line_no, 'customer request',
           'bench', l.t_cancel
      FROM now_l l WHERE l.qty_cancelled > 0 AND l.warehouse_id IS NOT NULL
    UNION ALL   -- a resellable return goes back on the shelf
    SELECT o.wh, rl_l.sku, 'restock', rl.qty, 0, rl.order_id, rl.line_no, 'return', 'wms',
           o.t_ret + interval '6 days'
      FROM return_lines rl JOIN now_l rl_l ON rl_l.order_id = rl.order_id AND rl_l.line_no = rl.line_no
      JOIN now_o o ON o.order_id = rl.order_id
     WHERE rl.disposition = 'restock') x(warehouse_id, sku, kind, on_hand_delta, reserved_delta,
                                        order_id, line_no, reason, actor, created_at)
 ORDER BY x.created_at;
-- the opening count of every (warehouse, sku) that is not scarce: enough
-- for everything that ever left, plus shelf stock
INSERT INTO inventory_movements (warehouse_id, sku, kind, on_hand_delta, reserved_delta, reason, actor,
                                 created_at)
SELECT w.warehouse_id, p.sku, 'receipt',
       200 + coalesce((SELECT -sum(m.on_hand_delta) FROM inventory_movements m
                        WHERE m.warehouse_id = w.warehouse_id AND m.sku = p.sku
                          AND m.kind = 'ship'), 0)
           + coalesce((SELECT sum(m.reserved_delta) FROM inventory_movements m
                        WHERE m.warehouse_id = w.warehouse_id AND m.sku = p.sku), 0),
       0, 'opening count', 'wms', now() - make_interval(days => :days + 1)
  FROM warehouses w, products p
 WHERE w.warehouse_id IN ('BER', 'LEJ', 'NYC') AND p.sku LIKE 'SKU-%'
   AND NOT EXISTS (SELECT 1 FROM inventory_movements m
                    WHERE m.warehouse_id = w.warehouse_id AND m.sku = p.sku AND m.kind = 'receipt'
                      AND m.reason = 'opening count');
DELETE FROM stock_levels;
INSERT INTO stock_levels (warehouse_id, sku, on_hand, reserved)
SELECT warehouse_id, sku, sum(on_hand_delta), sum(reserved_delta)
  FROM inventory_movements GROUP BY warehouse_id, sku;
RESET session_replication_role;

\o /dev/null
SELECT setval('orders_order_id_seq', (SELECT max(order_id) FROM orders));
SELECT setval('shipments_shipment_id_seq', greatest((SELECT max(shipment_id) FROM shipments), 1));
SELECT setval('returns_return_id_seq', greatest((SELECT max(return_id) FROM returns), 1));
SELECT setval('order_holds_hold_id_seq', greatest((SELECT max(hold_id) FROM order_holds), 1));
SELECT setval('payments_payment_id_seq', greatest((SELECT max(payment_id) FROM payments), 1));
\o
COMMIT;
