-- bench/history_bulk.sql: the bulk of a BI history, written set-based
-- (bench/history.sh runs it; psql variables n, days, first).  Orders
-- first .. first + n - 1 are placed evenly over the last :days days, each
-- with a scenario drawn from a hash of its id (deterministic): channel,
-- customer, lines, credit and fraud holds, payment before or after
-- confirmation, backorders, cancellations, split shipments, re-packs,
-- carrier delays and late deliveries, returns with inspection and refund,
-- completion.  Every step is the row changes and the events the API of
-- schema 0.8.0 makes for it (release_to_warehouse ... dispatch_shipment,
-- record_tracking_event, request_return ... refund_return,
-- complete_due_orders: the same shapes as bench/history_api.sql, which
-- drives that API), with the clock of the scenario; orders still in
-- flight at now() stop there.
--
-- Triggers are off while writing (session_replication_role = replica, so
-- the rules, foreign keys and derived columns are not checked row by row);
-- every derived value (payment_status, exposure, credit_accounts,
-- stock_levels, the order's shipping status and return_status) is
-- computed set-based here, and bench/history_check.sql
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
       -- a split: the last line reserved in the other German warehouse
       b.n_lines > 1 AND pg_temp.u(b.order_id, 15) < 0.20 AND b.wh <> 'NYC'
           AND NOT pg_temp.u(b.order_id, 13) < 0.03 AS split,
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
-- A line is reserved in the order's warehouse, or (split) in the other
-- German one: release_to_warehouse then makes one shipment per warehouse.
-- A backordered line (a scarce sku) of an order with other lines leaves
-- in a shipment of its own, from the release after its purchase arrived
-- (rel_no 2).  ship_no numbers the shipments as the API creates them:
-- by release, then by warehouse.
CREATE TEMP TABLE gl AS
SELECT g.order_id, l.line_no,
       CASE WHEN g.backorder AND l.line_no = 1
            THEN 'SCARCE-' || (1 + floor(pg_temp.u(g.order_id, 40) * 20))::int
            ELSE 'SKU-' || lpad((1 + floor(pg_temp.u(g.order_id, 40 + l.line_no) * 500))::int::text, 3, '0')
       END AS sku,
       (1 + floor(pg_temp.u(g.order_id, 50 + l.line_no) * 4))::int AS qty,
       g.backorder AND l.line_no = 1 AS bo,
       CASE WHEN g.split AND l.line_no = g.n_lines THEN CASE g.wh WHEN 'BER' THEN 'LEJ' ELSE 'BER' END
            ELSE g.wh END AS wh,
       CASE WHEN g.backorder AND l.line_no = 1 AND g.n_lines > 1 THEN 2 ELSE 1 END AS rel_no
  FROM g, generate_series(1, g.n_lines) l(line_no);
ALTER TABLE gl ADD COLUMN unit_price numeric(14,2), ADD COLUMN ship_no int;
UPDATE gl SET unit_price = p.list_price FROM products p WHERE p.sku = gl.sku;
UPDATE gl SET ship_no = x.ship_no
  FROM (SELECT order_id, line_no,
               dense_rank() OVER (PARTITION BY order_id ORDER BY rel_no, wh COLLATE "C") AS ship_no
          FROM gl) x
 WHERE x.order_id = gl.order_id AND x.line_no = gl.line_no;
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
    -- the release: once confirmed and not held; an order whose only line
    -- is backordered waits for its stock (nothing else to ship)
    SELECT d.*,
           CASE WHEN d.t_cancel IS NULL
                THEN greatest(d.t_conf, d.t_fhr,
                              CASE WHEN d.backorder AND d.n_lines = 1 THEN d.t_alloc END)
                     + pg_temp.h(d.release_h) END AS t_rel
      FROM d)
SELECT e.*, e.t_cancel IS NOT NULL AS cancelled,
       -- the release that ships a backorder filled after the first release
       CASE WHEN e.backorder AND e.n_lines > 1
            THEN greatest(e.t_alloc, e.t_rel) + pg_temp.h(e.release_h * 0.5) END AS t_rel2,
       -- the confirmation of a prepaid order awaiting payment never
       -- happens when it is cancelled first
       CASE WHEN e.t_cancel IS NOT NULL AND e.awaiting THEN NULL ELSE e.t_conf END AS t_confirmed
  FROM e;
ALTER TABLE t ADD PRIMARY KEY (order_id);

-- shipments: one per (release, warehouse); a split's second parcel leaves
-- its warehouse a day or two later
CREATE TEMP TABLE ts AS
WITH s AS (
    SELECT t.order_id, x.ship_no, t.order_id * 2 - 2 + x.ship_no AS shipment_id, x.wh, x.units,
           x.line_nos, x.qtys,
           CASE WHEN x.rel_no = 2 THEN t.t_rel2 ELSE t.t_rel END AS t_created,
           CASE WHEN x.rel_no = 2 THEN t.t_rel2 ELSE t.t_rel END
               + CASE WHEN x.ship_no = 2 AND t.split THEN pg_temp.h(t.second_h) ELSE interval '0' END
               + pg_temp.h(t.pick_h * (0.5 + pg_temp.u(t.order_id, 60 + x.ship_no))) AS t_pick,
           (t.repack AND x.ship_no = 1) AS repack,
           (t.delay AND x.ship_no = t.n_ship) AS delay,
           t.transit_h + CASE WHEN t.slow_carrier THEN t.slow_h ELSE 0 END
               + 6 * pg_temp.u(t.order_id, 62 + x.ship_no) AS transit_h
      FROM t
      JOIN (SELECT order_id, ship_no, min(wh) AS wh, min(rel_no) AS rel_no, sum(qty) AS units,
                   array_agg(line_no ORDER BY line_no) AS line_nos,
                   array_agg(qty ORDER BY line_no) AS qtys
              FROM gl GROUP BY order_id, ship_no) x USING (order_id)
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

-- the carrier's checkpoints of each shipment (record_tracking_event), k
-- their number (carrier_event_id 'HT<shipment>-<k>', tracking_event_id
-- shipment_id * 8 + k)
CREATE TEMP TABLE tc AS
SELECT s.order_id, s.shipment_id, x.code, x.at, x.location,
       row_number() OVER (PARTITION BY s.shipment_id ORDER BY x.at)::int AS k
  FROM ts s
 CROSS JOIN LATERAL (VALUES ('in_transit', s.t_transit, 'DHL hub'),
                            ('delayed', s.t_delayed, 'DHL hub'),
                            ('in_transit', s.t_retransit, 'DHL hub'),
                            ('out_for_delivery', s.t_ofd, 'DHL hub'),
                            ('delivered', s.t_del, 'front door')) x(code, at, location)
 WHERE x.at IS NOT NULL;

-- The order follows its shipments (rollup_order): after each dispatch and
-- each delivery, the status its lines imply (lines_status: some units
-- shipped -> partially_shipped, all shipped -> shipped, all delivered ->
-- delivered); a move is an event when the implied status changes.
CREATE TEMP TABLE tr AS
WITH m AS (
    SELECT s.order_id, s.shipment_id, s.t_disp AS at, 'dispatched' AS step, s.units AS shipped,
           0 AS delivered, 'wms' AS actor
      FROM ts s
    UNION ALL
    SELECT s.order_id, s.shipment_id, s.t_del, 'delivered', 0, s.units, 'carrier:DHL' FROM ts s),
c AS (
    SELECT m.*,
           CASE WHEN sum(m.shipped) OVER w < t.units THEN 'partially_shipped'
                WHEN sum(m.delivered) OVER w < t.units THEN 'shipped'
                ELSE 'delivered' END AS implied
      FROM m JOIN t USING (order_id)
    WINDOW w AS (PARTITION BY m.order_id ORDER BY m.at ROWS UNBOUNDED PRECEDING))
SELECT c.*, lag(c.implied, 1, 'processing') OVER (PARTITION BY c.order_id ORDER BY c.at) AS prev
  FROM c;
DELETE FROM tr WHERE implied = prev;

-- order milestones that depend on shipments: completion by the nightly
-- complete_due_orders (02:00 UTC) after the return window (30 days after
-- the last delivery); a return opened some days after delivery, and
-- closed before the window ends
CREATE TEMP TABLE tm AS
SELECT t.order_id,
       min(s.t_disp) AS t_disp_first, max(s.t_disp) AS t_disp_last,
       max(s.t_del) AS t_del_last
  FROM t JOIN ts s USING (order_id) GROUP BY t.order_id;
ALTER TABLE tm ADD PRIMARY KEY (order_id);
CREATE TEMP TABLE o AS
SELECT t.*, tm.t_disp_first, tm.t_disp_last, tm.t_del_last,
       tm.t_del_last + interval '30 days' AS t_deadline,
       date_trunc('day', tm.t_del_last + interval '30 days', 'UTC') + interval '26 hours' AS t_complete,
       -- returns of prepaid (consumer) orders; backordered lines are not returned
       CASE WHEN t.ret AND NOT t.credit AND NOT t.backorder
            THEN tm.t_del_last + pg_temp.h(t.return_h) END AS t_ret,
       CASE WHEN t.credit THEN tm.t_del_last + interval '20 days' END AS t_invoice_paid
  FROM t LEFT JOIN tm USING (order_id);
ALTER TABLE o ADD PRIMARY KEY (order_id);
-- a return's steps; a resellable unit is restocked, a damaged one scrapped
-- (refund_return refunds the unit's price)
ALTER TABLE o ADD COLUMN resellable boolean, ADD COLUMN refund numeric(14,2);
UPDATE o SET resellable = pg_temp.u(o.order_id, 75) < 0.7, refund = l.unit_price
  FROM gl l WHERE l.order_id = o.order_id AND l.line_no = 1 AND o.t_ret IS NOT NULL;
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
       jsonb_build_object('sku', l.sku, 'warehouse_id', l.wh, 'qty', l.qty)
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
  FROM o WHERE o.cancelled AND NOT o.credit AND NOT o.awaiting;

-- release_to_warehouse: the order's first release moves it to processing;
-- each release makes its shipments (shipment.created)
INSERT INTO ev
SELECT o.order_id, 17, 'order', o.order_id, 'order.released', 'confirmed', 'processing', o.t_rel,
       'wms', false, 'released to the warehouse', NULL
  FROM o WHERE o.t_rel IS NOT NULL
UNION ALL
SELECT s.order_id, 18, 'shipment', s.shipment_id, 'shipment.created', NULL, 'pending', s.t_created,
       'wms', false, 'released to the warehouse',
       jsonb_build_object('warehouse_id', s.wh, 'line_nos', to_jsonb(s.line_nos), 'qtys', to_jsonb(s.qtys))
  FROM ts s;

-- preparation and dispatch (start_picking, pack_shipment, label_shipment,
-- dispatch_shipment), with the reasons the API writes
INSERT INTO ev
SELECT s.order_id, 20 + x.k, 'shipment', s.shipment_id, 'shipment.' || x.activity, x.f, x.t2, x.at,
       'wms', false, x.reason, NULL
  FROM ts s
 CROSS JOIN LATERAL (VALUES
       (0, 'picking_started', 'pending', 'picking', s.t_pick,
        format('%s unit(s) to pick in %s', s.units, s.wh)),
       (1, 'packed', 'picking', 'packed', s.t_pack, '1 package(s), 1200 g, 300x200x100 mm'),
       (2, CASE WHEN s.repack THEN 'repack_started' END, 'packed', 'picking', s.t_repick,
        'parcel damaged, re-pack'),
       (3, CASE WHEN s.repack THEN 'packed' END, 'picking', 'packed', s.t_repack,
        '1 package(s), 1200 g, 300x200x100 mm'),
       (4, 'labelled', 'packed', 'labelled', s.t_label, 'DHL STD HT' || s.shipment_id),
       (5, 'dispatched', 'labelled', 'dispatched', s.t_disp,
        'handed to DHL, tracking number HT' || s.shipment_id))
       AS x(k, activity, f, t2, at, reason)
 WHERE x.activity IS NOT NULL;
-- carrier checkpoints (record_tracking_event, automated): the checkpoint,
-- then the move it causes, with the same reason
INSERT INTO ev
SELECT c.order_id, 30 + 2 * c.k + x.n, 'shipment', c.shipment_id,
       CASE x.n WHEN 0 THEN 'shipment.checkpoint' ELSE 'shipment.' || c.code END,
       CASE x.n WHEN 1 THEN coalesce(p.code, 'dispatched') END, CASE x.n WHEN 1 THEN c.code END,
       c.at, 'carrier:DHL', true,
       format('carrier checkpoint %s at %s (%s)', c.code, c.at, c.location),
       CASE x.n WHEN 0 THEN jsonb_build_object(
           'tracking_event_id', c.shipment_id * 8 + c.k, 'carrier_event_id', 'HT' || c.shipment_id || '-' || c.k,
           'code', c.code, 'occurred_at', c.at, 'location', c.location, 'applied', true) END
  FROM tc c
  LEFT JOIN tc p ON p.shipment_id = c.shipment_id AND p.k = c.k - 1
 CROSS JOIN (VALUES (0), (1)) x(n);
-- the order follows its shipments (rollup_order, automated, the actor of
-- the step that moved it)
INSERT INTO ev
SELECT r.order_id, 45, 'order', r.order_id, 'order.' || r.implied, r.prev, r.implied, r.at, r.actor,
       true, format('shipment %s %s', r.shipment_id, r.step), NULL
  FROM tr r;
INSERT INTO ev
-- prepaid orders are captured once the goods left
SELECT o.order_id, 46, 'payment', o.order_id * 4 + 1, 'payment.captured', NULL, NULL, o.t_disp_first,
       'psp', true, NULL, jsonb_build_object('amount', o.total)
  FROM o WHERE NOT o.credit AND o.t_disp_first IS NOT NULL
UNION ALL   -- credit customers pay the invoice (authorized and captured at once)
SELECT o.order_id, 47, 'payment', o.order_id * 4, 'payment.authorized', NULL, NULL,
       o.t_invoice_paid, 'erp', true, NULL, jsonb_build_object('amount', o.total)
  FROM o WHERE o.credit AND o.t_invoice_paid IS NOT NULL
UNION ALL
SELECT o.order_id, 48, 'payment', o.order_id * 4 + 1, 'payment.captured', NULL, NULL,
       o.t_invoice_paid, 'erp', true, NULL, jsonb_build_object('amount', o.total)
  FROM o WHERE o.credit AND o.t_invoice_paid IS NOT NULL
UNION ALL   -- complete_due_orders, the night after the return window ended
SELECT o.order_id, 49, 'order', o.order_id, 'order.completed', 'delivered', 'completed',
       o.t_complete, 'scheduler', true, format('return window ended %s', o.t_deadline), NULL
  FROM o WHERE o.t_complete IS NOT NULL
UNION ALL   -- a return of one unit of line 1: requested by the customer,
            -- approved by the service desk, received and inspected by the
            -- warehouse, refunded (refund_return completes it)
SELECT o.order_id, 50 + x.k, x.ent, CASE WHEN x.ent = 'return' THEN o.order_id ELSE o.order_id * 4 + 2 END,
       x.typ, x.f, x.t2, o.t_ret + x.after, x.actor, x.auto, x.reason, x.payload
  FROM o CROSS JOIN LATERAL (VALUES
       (0, 'return', 'return.requested', NULL, 'requested', interval '0', o.placer, false, 'does not fit',
        '{"lines": [{"qty": 1, "line_no": 1}], "resolution": "refund"}'::jsonb),
       (1, 'return', 'return.approved', 'requested', 'approved', interval '1 day',
        'service-desk:' || (1 + floor(pg_temp.u(o.order_id, 74) * 8)), false, 'approved', NULL),
       (2, 'return', 'return.received', 'approved', 'received', interval '5 days', 'wms', false,
        '1 unit(s) received', NULL),
       (3, 'return', 'return.inspected', 'received', 'inspected', interval '6 days', 'wms', false,
        CASE WHEN o.resellable THEN 'line 1: 1 resellable -> restock' ELSE 'line 1: 1 damaged -> scrap' END,
        NULL),
       (4, 'payment', 'payment.refunded', NULL, NULL, interval '6 days 2 hours', 'psp', true, NULL,
        jsonb_build_object('amount', o.refund, 'return_id', o.order_id, 'psp_reference', 'order_mgmt:return:' || o.order_id)),
       (5, 'return', 'return.completed', 'inspected', 'completed', interval '6 days 2 hours', 'psp', true,
        'refunded ' || o.refund, NULL))
       AS x(k, ent, typ, f, t2, after, actor, auto, reason, payload)
 WHERE o.t_ret IS NOT NULL;

\echo '-- the event log: what happened by now, in the order it happened'
SET session_replication_role = replica;
INSERT INTO events (order_id, entity, entity_id, event_type, from_status, to_status, occurred_at,
                    actor, automated, reason, payload, db_role)
SELECT order_id, entity, entity_id, event_type, from_status, to_status, occurred_at, actor,
       automated, reason, payload, 'bench'
  FROM ev WHERE occurred_at <= now()
 ORDER BY occurred_at, order_id, k;


\echo '-- orders, lines, shipments, tracking, holds, payments, returns as of now'
CREATE TEMP TABLE now_o AS
SELECT o.*,
       CASE WHEN o.t_cancel <= now() THEN 'cancelled'
            WHEN o.t_complete <= now() THEN 'completed'
            WHEN r.implied IS NOT NULL THEN r.implied
            WHEN o.t_rel <= now() THEN 'processing'
            WHEN o.t_fh <= now() AND NOT o.t_fhr <= now() THEN 'on_hold'
            WHEN o.t_confirmed <= now() THEN 'confirmed'
            WHEN o.t_ch <= now() AND NOT o.t_chr <= now() THEN 'on_hold'
            WHEN o.awaiting AND o.t_res <= now() THEN 'awaiting_payment'
            ELSE 'placed' END AS status,
       -- the return: its status, and whether it is still open
       CASE WHEN o.t_ret + interval '6 days 2 hours' <= now() THEN 'completed'
            WHEN o.t_ret + interval '6 days' <= now() THEN 'inspected'
            WHEN o.t_ret + interval '5 days' <= now() THEN 'received'
            WHEN o.t_ret + interval '1 day' <= now() THEN 'approved'
            WHEN o.t_ret <= now() THEN 'requested' END AS return_status
  FROM o
  LEFT JOIN (SELECT DISTINCT ON (x.order_id) x.order_id, x.implied FROM tr x WHERE x.at <= now()
              ORDER BY x.order_id, x.at DESC) r USING (order_id);
ALTER TABLE now_o ADD PRIMARY KEY (order_id);

CREATE TEMP TABLE now_l AS
SELECT l.order_id, l.line_no, l.sku, l.qty, l.unit_price, l.ship_no,
       CASE WHEN o.t_res <= now() THEN l.wh END AS warehouse_id,
       CASE WHEN l.bo AND o.t_alloc <= now() THEN o.t_alloc END AS ready_at,
       CASE WHEN s.t_disp <= now() THEN l.qty ELSE 0 END AS qty_shipped,
       CASE WHEN s.t_del <= now() THEN l.qty ELSE 0 END AS qty_delivered,
       CASE WHEN o.status = 'cancelled' THEN l.qty ELSE 0 END AS qty_cancelled,
       CASE WHEN l.bo AND o.t_res <= now() AND NOT o.t_alloc <= now() THEN l.qty ELSE 0 END
           AS qty_backordered,
       CASE WHEN o.status = 'cancelled' OR s.t_disp <= now() THEN 0
            WHEN l.bo THEN CASE WHEN o.t_alloc <= now() THEN l.qty ELSE 0 END
            WHEN o.t_res <= now() THEN l.qty ELSE 0 END AS qty_reserved,
       -- inspected units are accepted (resellable or damaged, never missing)
       CASE WHEN l.line_no = 1 AND o.return_status IN ('inspected', 'completed') THEN 1 ELSE 0 END
           AS qty_returned,
       l.bo, o.t_res, o.t_alloc, o.t_cancel, s.t_disp
  FROM gl l JOIN now_o o USING (order_id)
  LEFT JOIN ts s ON s.order_id = l.order_id AND s.ship_no = l.ship_no;
ALTER TABLE now_l ADD PRIMARY KEY (order_id, line_no);

INSERT INTO orders (order_id, external_ref, customer_id, channel, status, held_from, payment_status,
                    return_status, currency, total, ship_to, ship_to_country, ship_to_postal,
                    service_id, allow_backorder, promised_ship_earliest, promised_ship_latest,
                    promised_delivery_earliest, promised_delivery_latest, placed_at,
                    credit_approved_at, exposure, updated_at)
SELECT o.order_id, 'H-' || o.order_id, o.customer_id, o.channel, o.status,
       CASE WHEN o.status = 'on_hold' THEN CASE WHEN o.t_fh <= now() THEN 'confirmed' ELSE 'placed' END END,
       'unpaid',
       -- return_status_of: returned when every delivered unit came back,
       -- partially_returned when some did, requested while a return is open
       CASE WHEN l.returned > 0 AND l.returned >= l.delivered THEN 'returned'
            WHEN l.returned > 0 THEN 'partially_returned'
            WHEN o.return_status IN ('requested', 'approved', 'received', 'inspected') THEN 'requested'
            ELSE 'none' END,
       'EUR', o.total, jsonb_build_object('country', CASE WHEN o.wh = 'NYC' THEN 'US' ELSE 'DE' END),
       CASE WHEN o.wh = 'NYC' THEN 'US' ELSE 'DE' END, CASE WHEN o.wh = 'NYC' THEN '10001' ELSE '10115' END,
       'STD', o.backorder, e.ship_earliest, e.ship_latest, e.delivery_earliest, e.delivery_latest,
       o.t0,
       CASE WHEN o.credit AND o.t_confirmed <= now() THEN coalesce(o.t_chr, o.t_confirmed) END,
       0, NULL
  FROM now_o o
  JOIN (SELECT order_id, sum(qty_returned) AS returned, sum(qty_delivered) AS delivered
          FROM now_l GROUP BY order_id) l USING (order_id)
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

-- checkpoints received by now; a shipment's status follows the latest
INSERT INTO tracking_events (order_id, tracking_event_id, shipment_id, carrier_event_id, code,
                             occurred_at, location, recorded_at, actor)
SELECT c.order_id, c.shipment_id * 8 + c.k, c.shipment_id, 'HT' || c.shipment_id || '-' || c.k, c.code,
       c.at, c.location, c.at, 'carrier:DHL'
  FROM tc c WHERE c.at <= now() ORDER BY c.at;

-- a shipment as the API leaves it: the order's promise; its estimate made
-- at creation (shipment_promise_trigger), counted again from the dispatch
-- and from the latest delay (estimate_transit)
INSERT INTO shipments (order_id, shipment_id, warehouse_id, status, service_id, carrier, tracking_number,
                       weight_g, length_mm, width_mm, height_mm, package_count, label_ref,
                       promised_delivery_earliest, promised_delivery_latest,
                       estimated_delivery_earliest, estimated_delivery_latest,
                       created_at, dispatched_at, delivered_at, last_checkpoint_id)
SELECT s.order_id, s.shipment_id, s.wh, x.status,
       CASE WHEN s.t_label <= now() THEN 'STD' END,
       CASE WHEN s.t_label <= now() THEN 'DHL' END,
       CASE WHEN s.t_label <= now() THEN 'HT' || s.shipment_id END,
       CASE WHEN s.t_pack <= now() THEN 1200 END, CASE WHEN s.t_pack <= now() THEN 300 END,
       CASE WHEN s.t_pack <= now() THEN 200 END, CASE WHEN s.t_pack <= now() THEN 100 END, 1,
       CASE WHEN s.t_label <= now() THEN 'L' || s.shipment_id END,
       o.promised_delivery_earliest, o.promised_delivery_latest,
       coalesce(tr.delivery_earliest, cr.delivery_earliest),
       coalesce(tr.delivery_latest, cr.delivery_latest),
       s.t_created, CASE WHEN s.t_disp <= now() THEN s.t_disp END,
       CASE WHEN s.t_del <= now() THEN s.t_del END,
       (SELECT max(t.tracking_event_id) FROM tracking_events t
         WHERE t.order_id = s.order_id AND t.shipment_id = s.shipment_id)
  FROM ts s JOIN orders o ON o.order_id = s.order_id
 CROSS JOIN LATERAL (SELECT CASE
       WHEN s.t_del <= now() THEN 'delivered' WHEN s.t_ofd <= now() THEN 'out_for_delivery'
       WHEN s.t_retransit <= now() THEN 'in_transit' WHEN s.t_delayed <= now() THEN 'delayed'
       WHEN s.t_transit <= now() THEN 'in_transit' WHEN s.t_disp <= now() THEN 'dispatched'
       WHEN s.t_label <= now() THEN 'labelled'
       WHEN s.t_repack <= now() AND s.repack THEN 'packed' WHEN s.t_repick <= now() AND s.repack THEN 'picking'
       WHEN s.t_pack <= now() THEN 'packed' WHEN s.t_pick <= now() THEN 'picking'
       ELSE 'pending' END AS status,
       CASE WHEN s.t_delayed <= now() THEN s.t_delayed ELSE s.t_disp END AS restart) x
  LEFT JOIN LATERAL estimate_delivery(s.wh, 'STD', o.ship_to_country, o.ship_to_postal, s.t_created) cr
         ON true
  LEFT JOIN LATERAL (SELECT y.* FROM estimate_transit(s.wh, 'STD', o.ship_to_country, o.ship_to_postal,
                                                      x.restart) y WHERE y.known) tr
         ON s.t_disp <= now()
 WHERE s.t_created <= now()
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

-- returns: received_at, inspected_at and resolved_at as the API stamps them
INSERT INTO returns (order_id, return_id, status, reason, resolution, created_at, received_at,
                     inspected_at, resolved_at)
SELECT o.order_id, o.order_id, o.return_status, 'does not fit', 'refund', o.t_ret,
       CASE WHEN o.return_status IN ('received', 'inspected', 'completed') THEN o.t_ret + interval '5 days' END,
       CASE WHEN o.return_status IN ('inspected', 'completed') THEN o.t_ret + interval '6 days' END,
       CASE WHEN o.return_status = 'completed' THEN o.t_ret + interval '6 days 2 hours' END
  FROM now_o o WHERE o.return_status IS NOT NULL;
INSERT INTO return_lines (order_id, return_id, line_no, qty, qty_received, condition, disposition)
SELECT r.order_id, r.return_id, 1, 1, CASE WHEN r.received_at IS NOT NULL THEN 1 ELSE 0 END,
       CASE WHEN r.inspected_at IS NOT NULL THEN CASE WHEN o.resellable THEN 'resellable' ELSE 'damaged' END END,
       CASE WHEN r.inspected_at IS NOT NULL THEN CASE WHEN o.resellable THEN 'restock' ELSE 'scrap' END END
  FROM returns r JOIN o USING (order_id);
INSERT INTO return_inspections (order_id, inspection_id, return_id, line_no, qty, condition, disposition,
                                inspected_at, actor)
SELECT rl.order_id, rl.return_id, rl.return_id, rl.line_no, rl.qty_received, rl.condition, rl.disposition,
       r.inspected_at, 'wms'
  FROM return_lines rl JOIN returns r USING (order_id, return_id)
 WHERE r.inspected_at IS NOT NULL;

INSERT INTO payments (order_id, payment_id, kind, amount, psp_reference, return_id, created_at, actor)
SELECT e.order_id, e.entity_id,
       CASE e.event_type WHEN 'payment.authorized' THEN 'authorization'
                         WHEN 'payment.captured' THEN 'capture'
                         WHEN 'payment.refunded' THEN 'refund' ELSE 'void' END,
       (e.payload->>'amount')::numeric,
       coalesce(e.payload->>'psp_reference', 'HPSP-' || e.entity_id), (e.payload->>'return_id')::bigint,
       e.occurred_at, e.actor
  FROM events e
 WHERE e.entity = 'payment' AND e.order_id BETWEEN :first AND :first + :n - 1;

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
    UNION ALL   -- inspect_return: a resellable unit back on the shelf, a damaged one scrapped
    SELECT l.warehouse_id, l.sku, i.disposition, CASE WHEN i.disposition = 'restock' THEN i.qty ELSE 0 END,
           0, i.order_id, i.line_no,
           format('return %s: %s unit(s) %s', i.return_id, i.qty, i.disposition), i.actor, i.inspected_at
      FROM return_inspections i JOIN now_l l USING (order_id, line_no)
     WHERE i.disposition IS NOT NULL) x(warehouse_id, sku, kind, on_hand_delta, reserved_delta,
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
SELECT setval('tracking_events_tracking_event_id_seq',
              greatest((SELECT max(tracking_event_id) FROM tracking_events), 1));
SELECT setval('return_inspections_inspection_id_seq',
              greatest((SELECT max(inspection_id) FROM return_inspections), 1));
\o
COMMIT;

