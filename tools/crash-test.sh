#!/usr/bin/env bash
# Crash recovery: while pgbench drives the whole workflow (place and
# confirm orders, authorize / capture / refund / void payments, holds and
# releases, cancellations, stock receipts that allocate backorders, release,
# picking, packing, labelling, dispatch and delivery, returns through
# inspection to refund or exchange, completion) with 8 clients, the server
# is stopped with `pg_ctl -m immediate` at a random moment, restarted
# (crash recovery), and the invariants are checked: every order's,
# shipment's and return's status is the to_status of its last status
# event, every hold, payment and placement has its event and every such
# event its row, the movement ledger sums to the stock rows, reservations
# match the lines, shipped, delivered and returned units match the
# shipments and inspections, payment_status and return_status are the
# derived ones, an order is on_hold iff it has an open hold, and every
# order whose commit a client saw acknowledged exists.  Three rounds on the
# same cluster.
#
# Uses its own cluster (port OM_CRASH_PORT, default OM_PGPORT + 2) under a
# temporary directory, run by the postgres user; the installed order_mgmt
# of OM_DESTDIR (built and installed first unless OM_NO_BUILD=1, as
# test/client/crash.t does).  ROUNDS (3), CLIENTS (8).  Prints TAP.
source "$(dirname "$0")/common.sh"
set +e
[ -n "${OM_NO_BUILD:-}" ] || { om_packages && om_build; } >&2 || exit 1
PORT=${OM_CRASH_PORT:-$((PGPORT + 2))}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-8}
TMP=$(mktemp -d /tmp/om-crash.XXXXXX)
chmod 755 "$TMP"
DATA=$TMP/data
export PGHOST=$TMP PGPORT=$PORT PGUSER=postgres PGDATABASE=om_crash
N=0
FAILED=0
tap() { N=$((N + 1)); if [ "$1" -eq 0 ]; then echo "ok $N - $2"; else echo "not ok $N - $2"; FAILED=1; fi; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then su postgres -c "$*"; else sh -c "$*"; fi; }
q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
check() {   # check NAME SQL-RETURNING-BOOLEAN [DIAGNOSTIC-SQL]
    local got
    got=$(q -c "$2" 2>&1)
    tap "$([ "$got" = t ] && echo 0 || echo 1)" "$1"
    [ "$got" = t ] || { echo "# got: $got"; [ -n "${3:-}" ] && q -c "$3" 2>&1 | head -5 | sed 's/^/# /'; }
}
pg_ctl_() { as_pg "$PGBIN/pg_ctl -D $DATA -l $TMP/server.log -w -t 120 $*"; }
cleanup() {
    [ -f "$DATA/postmaster.pid" ] && pg_ctl_ -m immediate stop >/dev/null 2>&1
    [ -n "${OM_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

# --- a cluster of its own, durable as in production (fsync, synchronous_commit)
[ "$(id -u)" -eq 0 ] && chown postgres: "$TMP"
as_pg "$PGBIN/initdb -D $DATA -A trust -U postgres" >/dev/null
cat >>"$DATA/postgresql.conf" <<CONF
port = $PORT
unix_socket_directories = '$TMP'
listen_addresses = ''
max_connections = 40
fsync = on
synchronous_commit = on
full_page_writes = on
checkpoint_timeout = 30s
CONF
pg_ctl_ start >/dev/null
q -d postgres -c "CREATE DATABASE om_crash" >/dev/null
q >/dev/null <<'SQL'
CREATE EXTENSION order_mgmt;
SET search_path = order_mgmt;
INSERT INTO customers (customer_id, name, payment_terms, credit_limit)
SELECT 'CR' || i, 'credit ' || i, 'credit', 1e9 FROM generate_series(1, 4) i;
INSERT INTO customers (customer_id, name, payment_terms, credit_limit)
SELECT 'PP' || i, 'prepaid ' || i, 'prepaid', 0 FROM generate_series(1, 4) i;
INSERT INTO products (sku, name, list_price) SELECT 'S' || i, 'sku ' || i, i FROM generate_series(1, 6) i;
INSERT INTO calendars (calendar_id, tz) VALUES ('CAL', 'Europe/Berlin');
INSERT INTO warehouses (warehouse_id, name, calendar_id) VALUES ('W1', 'one', 'CAL'), ('W2', 'two', 'CAL');
INSERT INTO services (service_id, carrier, transit_min, transit_max, transit_calendar_id, delivery_calendar_id)
    VALUES ('STD', 'DHL', 1, 2, 'CAL', 'CAL');
SELECT receive_stock(w, 'S' || i, 20) FROM generate_series(1, 6) i, unnest('{W1,W2}'::text[]) w;
-- The workload expects some calls to be refused by the rules (class OM:
-- wrong status, amount beyond the ledger, ...); anything else aborts the
-- client, as it would an application.
CREATE FUNCTION public.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    IF SQLSTATE LIKE 'OM%' THEN RETURN SQLSTATE; END IF;
    RAISE;
END $$;
-- one step of a shipment along the API (release, pick, pack, label,
-- dispatch, a delivery checkpoint), and of a return (approve, receive,
-- inspect, refund or exchange); a refusal by the rules is the answer
CREATE FUNCTION public.advance(p_shipment bigint) RETURNS text LANGUAGE sql AS $$
    SELECT public.try(CASE s.status
        WHEN 'pending' THEN format('SELECT order_mgmt.start_picking(%s)', s.shipment_id)
        WHEN 'picking' THEN format('SELECT order_mgmt.pack_shipment(%s, 100, 10, 10, 10)', s.shipment_id)
        WHEN 'packed' THEN format('SELECT order_mgmt.label_shipment(%s, %L, %L, %L)', s.shipment_id,
                                  'DHL', 'STD', 'T-' || s.shipment_id)
        WHEN 'labelled' THEN format('SELECT order_mgmt.dispatch_shipment(%s)', s.shipment_id)
        ELSE format('SELECT order_mgmt.record_tracking_event(%L, %L, %L, now())', 'T-' || s.shipment_id,
                    'E-' || s.shipment_id, 'delivered') END)
      FROM order_mgmt.shipments s WHERE s.shipment_id = p_shipment
$$;
CREATE FUNCTION public.advance_return(p_return bigint) RETURNS text LANGUAGE sql AS $$
    SELECT public.try(CASE r.status
        WHEN 'requested' THEN format('SELECT order_mgmt.approve_return(%s)', r.return_id)
        WHEN 'approved' THEN format('SELECT order_mgmt.receive_return(%s)', r.return_id)
        WHEN 'received' THEN format('SELECT order_mgmt.inspect_return(%s, %L)', r.return_id,
            jsonb_build_array(CASE WHEN r.return_id % 2 = 0
                THEN '{"line_no": 1, "qty": 1, "condition": "resellable", "disposition": "restock"}'::jsonb
                ELSE '{"line_no": 1, "qty": 1, "condition": "damaged", "disposition": "scrap"}'::jsonb END))
        ELSE CASE WHEN r.return_id % 3 = 0 THEN format('SELECT order_mgmt.exchange_return(%s)', r.return_id)
                  ELSE format('SELECT order_mgmt.refund_return(%s)', r.return_id) END END)
      FROM order_mgmt.returns r WHERE r.return_id = p_return
$$;
CREATE FUNCTION public.pick(p_status text[]) RETURNS bigint LANGUAGE sql AS $$
    SELECT order_id FROM order_mgmt.orders
     WHERE status = ANY (p_status)
       AND order_id >= (SELECT (max(order_id) * random())::bigint FROM order_mgmt.orders)
     ORDER BY order_id LIMIT 1
$$;
SQL
tap $? "a private cluster on port $PORT with order_mgmt, customers, skus and stock"

# --- the workload (weights: placement 6, payments 3, holds 1, cancellations 1, receipts 2,
# fulfilment 4, returns 2, completion 1)
W=$TMP/w
mkdir -p "$W"
cat >"$W/place.sql" <<'SQL'
\set c random(1, 4)
\set s random(1, 6)
\set n random(1, 4)
\set b random(0, 1)
SELECT order_mgmt.place_order(CASE WHEN :c % 2 = 0 THEN 'CR' ELSE 'PP' END || :c,
       jsonb_build_array(jsonb_build_object('sku', 'S' || :s, 'qty', :n)),
       '{"country": "DE", "postal_code": "10115"}', allow_backorder => :b = 1) AS o \gset
SELECT public.try(format('SELECT order_mgmt.confirm_order(%s)', :o));
SQL
cat >"$W/pay.sql" <<'SQL'
-- an authorization of the total (it confirms a prepaid order awaiting
-- payment; an exchange's replacement order costs nothing and needs none),
-- then either a capture and a refund, or a void, each its own transaction
\set k random(1, 2)
SELECT coalesce(public.pick('{awaiting_payment,confirmed}'), 0) AS o \gset
SELECT public.try(format('SELECT order_mgmt.authorize_payment(%s, %s, %L)', :o, total,
                         'psp-' || gen_random_uuid()))
  FROM order_mgmt.orders WHERE order_id = :o AND payment_status = 'unpaid' AND total > 0;
SELECT public.try(format('SELECT order_mgmt.capture_payment(%s, 1, %L)', :o, 'psp-' || gen_random_uuid()))
 WHERE :o > 0 AND :k = 1;
SELECT public.try(format('SELECT order_mgmt.refund_payment(%s, 1, %L)', :o, 'psp-' || gen_random_uuid()))
 WHERE :o > 0 AND :k = 1;
SELECT public.try(format('SELECT order_mgmt.void_payment(%s, 1, %L)', :o, 'psp-' || gen_random_uuid()))
 WHERE :o > 0 AND :k = 2;
SQL
cat >"$W/hold.sql" <<'SQL'
SELECT coalesce(public.pick('{placed,confirmed,on_hold}'), 0) AS o \gset
SELECT public.try(CASE WHEN h.hold_id IS NULL
                       THEN format('SELECT order_mgmt.hold_order(%s, %L, %L)', :o, 'manual', 'crash test')
                       ELSE format('SELECT order_mgmt.release_hold(%s, %s)', :o, h.hold_id) END)
  FROM (SELECT :o AS o) x
  LEFT JOIN LATERAL (SELECT hold_id FROM order_mgmt.order_holds
                      WHERE order_id = :o AND released_at IS NULL LIMIT 1) h ON true
 WHERE :o > 0;
SQL
cat >"$W/cancel.sql" <<'SQL'
\set l random(0, 1)
SELECT coalesce(public.pick('{placed,awaiting_payment,confirmed,on_hold}'), 0) AS o \gset
SELECT public.try(CASE WHEN :l = 1 THEN format('SELECT order_mgmt.cancel_line(%s, 1, 1)', :o)
                       ELSE format('SELECT order_mgmt.cancel_order(%s, %L)', :o, 'crash test') END)
 WHERE :o > 0;
SQL
cat >"$W/ship.sql" <<'SQL'
-- release an open order, then three steps for each of its shipments
SELECT coalesce(public.pick('{confirmed,processing,partially_shipped,shipped}'), 0) AS o \gset
SELECT public.try(format('SELECT order_mgmt.release_to_warehouse(%s)', :o))
  FROM order_mgmt.orders WHERE order_id = :o AND status IN ('confirmed', 'processing');
SELECT count(public.advance(shipment_id)) FROM order_mgmt.shipments
 WHERE order_id = :o AND status NOT IN ('delivered', 'cancelled', 'returned_to_sender', 'lost');
SELECT count(public.advance(shipment_id)) FROM order_mgmt.shipments
 WHERE order_id = :o AND status NOT IN ('delivered', 'cancelled', 'returned_to_sender', 'lost');
SELECT count(public.advance(shipment_id)) FROM order_mgmt.shipments
 WHERE order_id = :o AND status NOT IN ('delivered', 'cancelled', 'returned_to_sender', 'lost');
SQL
cat >"$W/return.sql" <<'SQL'
-- ask one unit of a delivered order back, then take its open returns
-- through approval, receipt, inspection and refund or exchange, each step
-- its own transaction
SELECT coalesce(public.pick('{delivered}'), 0) AS o \gset
SELECT public.try(format('SELECT order_mgmt.request_return(%s, %L, %L)', :o,
                         '[{"line_no": 1, "qty": 1}]', 'crash test'))
 WHERE :o > 0;
SELECT count(public.advance_return(return_id)) FROM order_mgmt.returns
 WHERE order_id = :o AND status IN ('requested', 'approved', 'received', 'inspected');
SELECT count(public.advance_return(return_id)) FROM order_mgmt.returns
 WHERE order_id = :o AND status IN ('requested', 'approved', 'received', 'inspected');
SELECT count(public.advance_return(return_id)) FROM order_mgmt.returns
 WHERE order_id = :o AND status IN ('requested', 'approved', 'received', 'inspected');
SELECT count(public.advance_return(return_id)) FROM order_mgmt.returns
 WHERE order_id = :o AND status IN ('requested', 'approved', 'received', 'inspected');
SQL
cat >"$W/complete.sql" <<'SQL'
SELECT coalesce(public.pick('{delivered}'), 0) AS o \gset
SELECT public.try(format('SELECT order_mgmt.complete_order(%s)', :o)) WHERE :o > 0;
SQL
cat >"$W/receive.sql" <<'SQL'
\set s random(1, 6)
\set w random(1, 2)
\set n random(1, 5)
SELECT order_mgmt.receive_stock('W' || :w, 'S' || :s, :n);
SQL

INVARIANTS() {
    check "every order's status is the to_status of its last status event" \
        "SELECT count(*) = 0 FROM order_mgmt.orders o
          WHERE o.status IS DISTINCT FROM (SELECT e.to_status FROM order_mgmt.events e
                                            WHERE e.order_id = o.order_id AND e.entity = 'order'
                                              AND e.to_status IS NOT NULL
                                            ORDER BY e.seq DESC LIMIT 1)" \
        "SELECT o.order_id, o.status FROM order_mgmt.orders o
          WHERE o.status IS DISTINCT FROM (SELECT e.to_status FROM order_mgmt.events e
                                            WHERE e.order_id = o.order_id AND e.entity = 'order'
                                              AND e.to_status IS NOT NULL ORDER BY e.seq DESC LIMIT 1)"
    check "every order has its order.placed event" \
        "SELECT count(*) = 0 FROM order_mgmt.orders o WHERE NOT EXISTS (
           SELECT FROM order_mgmt.events e WHERE e.order_id = o.order_id AND e.event_type = 'order.placed')"
    check "every payment has its event and every payment event its payment" \
        "SELECT (SELECT count(*) FROM order_mgmt.payments p WHERE NOT EXISTS (
                   SELECT FROM order_mgmt.events e WHERE e.order_id = p.order_id
                      AND e.entity = 'payment' AND e.entity_id = p.payment_id))
              + (SELECT count(*) FROM order_mgmt.events e WHERE e.entity = 'payment' AND NOT EXISTS (
                   SELECT FROM order_mgmt.payments p WHERE p.order_id = e.order_id
                      AND p.payment_id = e.entity_id)) = 0"
    # (cancelling an order closes its open holds: its order.cancelled event
    # records that, there is no hold.released event for them)
    check "every hold and release has its event and every hold event its row" \
        "SELECT (SELECT count(*) FROM order_mgmt.order_holds h WHERE NOT EXISTS (
                   SELECT FROM order_mgmt.events e WHERE e.order_id = h.order_id
                      AND e.event_type = 'hold.placed' AND e.entity_id = h.hold_id))
              + (SELECT count(*) FROM order_mgmt.order_holds h WHERE h.released_at IS NOT NULL
                    AND NOT EXISTS (SELECT FROM order_mgmt.events e WHERE e.order_id = h.order_id
                                       AND (e.event_type = 'hold.released' AND e.entity_id = h.hold_id
                                            OR e.event_type = 'order.cancelled')))
              + (SELECT count(*) FROM order_mgmt.events e WHERE e.entity = 'hold' AND NOT EXISTS (
                   SELECT FROM order_mgmt.order_holds h WHERE h.order_id = e.order_id
                      AND h.hold_id = e.entity_id
                      AND (e.event_type = 'hold.placed' OR h.released_at IS NOT NULL))) = 0"
    check "the movement ledger sums to every stock row (on_hand and reserved)" \
        "SELECT count(*) = 0 FROM order_mgmt.stock s
           FULL JOIN (SELECT warehouse_id, sku, sum(on_hand_delta) oh, sum(reserved_delta) r
                        FROM order_mgmt.inventory_movements GROUP BY 1, 2) m USING (warehouse_id, sku)
          WHERE s.on_hand IS DISTINCT FROM m.oh OR s.reserved IS DISTINCT FROM m.r"
    check "reserved stock equals the order lines' reservations, per warehouse and sku" \
        "SELECT count(*) = 0 FROM order_mgmt.stock s
           LEFT JOIN (SELECT warehouse_id, sku, sum(qty_reserved) r FROM order_mgmt.order_lines
                       GROUP BY 1, 2) l USING (warehouse_id, sku)
          WHERE s.reserved <> coalesce(l.r, 0)"
    check "payment_status equals the status derived from the payments ledger" \
        "SELECT count(*) = 0 FROM order_mgmt.orders o
          CROSS JOIN LATERAL order_mgmt.payment_totals(o.order_id) t
          WHERE o.payment_status <> order_mgmt.derive_payment_status(o.total, t.authorized,
                                       t.captured, t.refunded, t.voided)"
    check "captured <= authorized and refunded <= captured for every order" \
        "SELECT count(*) = 0 FROM order_mgmt.orders o
          CROSS JOIN LATERAL order_mgmt.payment_totals(o.order_id) t
          WHERE t.captured > t.authorized OR t.refunded > t.captured"
    check "every shipment's and return's status is the to_status of its last status event" \
        "SELECT count(*) = 0 FROM (
           SELECT 'shipment' AS entity, order_id, shipment_id AS id, status FROM order_mgmt.shipments
           UNION ALL SELECT 'return', order_id, return_id, status FROM order_mgmt.returns) x
          WHERE x.status IS DISTINCT FROM coalesce(
                (SELECT e.to_status FROM order_mgmt.events e
                  WHERE e.order_id = x.order_id AND e.entity = x.entity AND e.entity_id = x.id
                    AND e.to_status IS NOT NULL ORDER BY e.seq DESC LIMIT 1),
                CASE x.entity WHEN 'shipment' THEN 'pending' END)"
    check "shipped and delivered units equal the lines of dispatched and delivered shipments" \
        "SELECT count(*) = 0 FROM order_mgmt.order_lines l
           LEFT JOIN (SELECT sl.order_id, sl.line_no,
                             sum(sl.qty) FILTER (WHERE order_mgmt.status_class('shipment', s.status)
                                                       IN ('in_transit', 'delivered', 'failed')) AS shipped,
                             sum(sl.qty) FILTER (WHERE order_mgmt.status_class('shipment', s.status)
                                                       = 'delivered') AS delivered
                        FROM order_mgmt.shipment_lines sl JOIN order_mgmt.shipments s USING (order_id, shipment_id)
                       GROUP BY 1, 2) x USING (order_id, line_no)
          WHERE l.qty_shipped <> coalesce(x.shipped, 0) OR l.qty_delivered <> coalesce(x.delivered, 0)"
    check "returned units equal the accepted inspections; return_status is derived" \
        "SELECT (SELECT count(*) FROM order_mgmt.order_lines l
                  LEFT JOIN (SELECT order_id, line_no, sum(qty) AS accepted FROM order_mgmt.return_inspections
                              WHERE condition <> 'missing' GROUP BY 1, 2) i USING (order_id, line_no)
                 WHERE l.qty_returned <> coalesce(i.accepted, 0))
              + (SELECT count(*) FROM order_mgmt.orders o
                 WHERE o.return_status <> order_mgmt.return_status_of(o.order_id)) = 0"
    check "an order is on_hold if and only if it has an open hold" \
        "SELECT count(*) = 0 FROM order_mgmt.orders o
          WHERE (o.status = 'on_hold') <> EXISTS (SELECT FROM order_mgmt.order_holds h
                                                  WHERE h.order_id = o.order_id AND h.released_at IS NULL)"
}

# acknowledged: one client places orders one by one and writes down each
# order_id only after its commit was acknowledged
acked_loop() {
    while q -c "SELECT order_mgmt.place_order('CR2', '[{\"sku\": \"S1\", \"qty\": 1}]', '{\"country\": \"DE\"}')" \
            >>"$TMP/acked" 2>/dev/null; do :; done
}

START=$SECONDS
for round in $(seq "$ROUNDS"); do
    before=$(q -c "SELECT count(*) FROM order_mgmt.orders")
    : >"$TMP/acked"
    pgbench -n -c "$CLIENTS" -j 2 -T 120 -f "$W/place.sql@6" -f "$W/pay.sql@3" -f "$W/hold.sql@1" \
        -f "$W/cancel.sql@1" -f "$W/receive.sql@2" -f "$W/ship.sql@4" -f "$W/return.sql@2" \
        -f "$W/complete.sql@1" >"$TMP/pgbench.$round" 2>&1 &
    bench=$!
    acked_loop &
    loop=$!
    ms=$((1500 + RANDOM % 3000))                     # a random moment 1.5-4.5 s in
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    pg_ctl_ -m immediate stop >/dev/null
    tap $? "round $round: pg_ctl -m immediate stop after ${ms} ms of workload"
    wait "$bench" "$loop" 2>/dev/null
    # before the crash no client died of an unexpected error
    grep -E 'ERROR|FATAL' "$TMP/pgbench.$round" |
        grep -vE 'terminat|server closed the connection|connection to server|shutting down|crash of another' \
        >"$TMP/unexpected.$round"
    tap "$([ -s "$TMP/unexpected.$round" ] && echo 1 || echo 0)" \
        "round $round: no client error before the crash other than the connection loss"
    sed 's/^/# /' "$TMP/unexpected.$round" | head -5
    lines=$(wc -l <"$TMP/server.log")
    pg_ctl_ start >/dev/null
    tap $? "round $round: the server restarts"
    tail -n +"$((lines + 1))" "$TMP/server.log" | grep -q 'not properly shut down; automatic recovery'
    tap $? "round $round: it ran crash recovery"
    after=$(q -c "SELECT count(*) FROM order_mgmt.orders")
    [ "$after" -gt "$before" ]
    tap $? "round $round: the workload committed orders before the crash ($before -> $after orders)"
    INVARIANTS
    acked=$(grep -cE '^[0-9]+$' "$TMP/acked")
    check "round $round: all $acked orders acknowledged to the client survived" \
        "SELECT count(*) = $acked FROM order_mgmt.orders
          WHERE order_id = ANY ('{$(grep -E '^[0-9]+$' "$TMP/acked" | paste -sd,)}'::bigint[])"
done
check "the workload exercised every step (placed, confirmed, awaiting payment, held, released, cancelled, line cancelled, reserved, backordered, allocated, authorized, captured, refunded, voided, released to the warehouse, dispatched, delivered, return requested, inspected and completed, order completed)" \
    "SELECT count(DISTINCT event_type) = 21 FROM order_mgmt.events
      WHERE event_type IN ('order.placed', 'order.confirmed', 'order.awaiting_payment', 'hold.placed',
                           'hold.released', 'order.cancelled', 'line.cancelled', 'line.reserved',
                           'line.backordered', 'line.backorder_allocated', 'payment.authorized',
                           'payment.captured', 'payment.refunded', 'payment.voided', 'order.released',
                           'shipment.dispatched', 'order.delivered', 'return.requested',
                           'return.inspected', 'return.completed', 'order.completed')" \
    "SELECT 'seen: ' || string_agg(DISTINCT event_type, ' ') FROM order_mgmt.events"
q -c "SELECT status, count(*) FROM order_mgmt.orders GROUP BY 1 ORDER BY 1" | tr '\n' ' ' |
    sed 's/^/# orders by status: /'
echo
q -c "SELECT count(*) FROM order_mgmt.events" | sed 's/^/# events: /'
echo "# $ROUNDS rounds in $((SECONDS - START)) s"
grep -q 'terminated by signal' "$TMP/server.log"
tap $((1 - $?)) "the server log shows no backend terminated by a signal"
echo "1..$N"
[ "$FAILED" -eq 0 ]
