#!/usr/bin/env bash
# Hot standby: a streaming replica made with pg_basebackup from the test
# cluster serves every order_mgmt view, estimate_delivery and
# estimate_order_delivery read-only with the primary's answers (and
# fetch_events of a consumer registered there); every API
# function that writes fails there with SQLSTATE 25006 (read-only
# transaction), in one session that stays usable, and no backend is
# terminated by a signal.  Each write call is first shown to succeed on the
# primary (in a rolled-back transaction), so 25006 is due to the standby.
# Env: PGHOST, PGPORT, PGUSER, postgres on PATH; OM_STANDBY_PORT (default
# PGPORT + 1).  Runs the standby as the postgres user.  Prints TAP.
set -u
cd "$(dirname "$0")/../.."
DB=om_standby
SPORT=${OM_STANDBY_PORT:-$((PGPORT + 1))}
BIN=$(dirname "$(command -v postgres)")
TMP=$(mktemp -d /tmp/om-standby.XXXXXX)
SDATA=$TMP/data
N=0
tap() { N=$((N + 1)); if [ "$1" -eq 0 ]; then echo "ok $N - $2"; else echo "not ok $N - $2"; fi; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then su postgres -c "$*"; else sh -c "$*"; fi; }
p() { psql -qXAt -v ON_ERROR_STOP=1 -d "$DB" "$@"; }                         # primary
s() { psql -qXAt -v ON_ERROR_STOP=1 -h "$TMP" -p "$SPORT" -d "$DB" "$@"; }   # standby
cleanup() {
    [ -f "$SDATA/postmaster.pid" ] && as_pg "$BIN/pg_ctl -D $SDATA -m immediate -w stop" >/dev/null 2>&1
    rm -rf "$TMP"
    psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
}
trap cleanup EXIT
chmod 755 "$TMP"
[ "$(id -u)" -eq 0 ] && chown postgres: "$TMP"

# --- the primary: reference data and orders in the states the calls need
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
p -c "CREATE EXTENSION order_mgmt" -f test/fixtures/promise_fixture.sql >/dev/null
p >/dev/null <<'SQL'
SET search_path = order_mgmt;
INSERT INTO customers (customer_id, name, payment_terms, credit_limit) VALUES
    ('SB-CR', 'credit', 'credit', 1000000), ('SB-PP', 'prepaid', 'prepaid', 0);
INSERT INTO products (sku, name, list_price) VALUES ('SB-P', 'product', 10);
SELECT receive_stock('BER', 'SB-P', 100);
-- 1: placed; 2: confirmed, then held; 3: prepaid, authorized and partly captured;
-- 4: confirmed with a promise that the current estimate misses (at risk)
SELECT place_order(c, '[{"sku": "SB-P", "qty": 2}]', '{"country": "DE", "postal_code": "10115"}',
                   service_id => 'STD', external_ref => 'SB-' || i)
  FROM (VALUES (1, 'SB-CR'), (2, 'SB-CR'), (3, 'SB-PP'), (4, 'SB-CR')) v(i, c) ORDER BY i;
SELECT confirm_order(2), hold_order(2, 'manual', 'standby test');
SELECT confirm_order(3), authorize_payment(3, 20, 'sb-auth'), capture_payment(3, 5, 'sb-cap');
SELECT confirm_order(4);
UPDATE orders SET promised_delivery_latest = placed_at::date - 10 WHERE order_id = 4;
-- 5..9: released, their shipments pending, picking, packed, labelled, dispatched
SELECT place_order('SB-CR', '[{"sku": "SB-P", "qty": 1}]', '{"country": "DE", "postal_code": "10115"}',
                   service_id => 'STD', external_ref => 'SB-' || i)
  FROM generate_series(5, 9) i ORDER BY i;
SELECT confirm_order(i), release_to_warehouse(i) FROM generate_series(5, 9) i ORDER BY i;
SELECT start_picking(shipment_id) FROM shipments WHERE order_id >= 6;
SELECT pack_shipment(shipment_id, 500, 300, 200, 100) FROM shipments WHERE order_id >= 7;
SELECT label_shipment(shipment_id, 'DHL', 'STD', 'SB-T' || order_id) FROM shipments WHERE order_id >= 8;
SELECT dispatch_shipment(shipment_id) FROM shipments WHERE order_id = 9;
-- 10: prepaid, 5 units paid and delivered, with returns requested, approved, received and inspected
SELECT place_order('SB-PP', '[{"sku": "SB-P", "qty": 5}]', '{"country": "DE", "postal_code": "10115"}',
                   service_id => 'STD', external_ref => 'SB-10');
SELECT authorize_payment(10, 50, 'sb-auth-10'), capture_payment(10, 50, 'sb-cap-10'), confirm_order(10),
       release_to_warehouse(10);
SELECT start_picking(shipment_id), pack_shipment(shipment_id, 500, 300, 200, 100),
       label_shipment(shipment_id, 'DHL', 'STD', 'SB-T10'), dispatch_shipment(shipment_id)
  FROM shipments WHERE order_id = 10;
SELECT record_tracking_event('SB-T10', 'sb-ev-10', 'delivered', now() - interval '1 day');
-- 11: delivered, nothing returned
SELECT place_order('SB-CR', '[{"sku": "SB-P", "qty": 1}]', '{"country": "DE", "postal_code": "10115"}',
                   service_id => 'STD', external_ref => 'SB-11');
SELECT confirm_order(11), release_to_warehouse(11);
SELECT start_picking(shipment_id), pack_shipment(shipment_id, 500, 300, 200, 100),
       label_shipment(shipment_id, 'DHL', 'STD', 'SB-T11'), dispatch_shipment(shipment_id)
  FROM shipments WHERE order_id = 11;
SELECT record_tracking_event('SB-T11', 'sb-ev-11', 'delivered', now() - interval '1 day');
SELECT request_return(10, '[{"line_no": 1, "qty": 1}]', 'standby test') FROM generate_series(1, 4);
SELECT approve_return(return_id) FROM returns WHERE order_id = 10 AND return_id > (SELECT min(return_id) FROM returns WHERE order_id = 10);
SELECT receive_return(return_id) FROM returns WHERE order_id = 10 AND status = 'approved'
   AND return_id > (SELECT min(return_id) + 1 FROM returns WHERE order_id = 10);
SELECT inspect_return(return_id, '[{"line_no": 1, "qty": 1, "condition": "resellable", "disposition": "restock"}]')
  FROM returns WHERE order_id = 10 AND return_id = (SELECT max(return_id) FROM returns WHERE order_id = 10);
-- a consumer of the event stream with its cursor at the start
SELECT register_consumer('SB-C');
SQL
tap $? "primary: orders placed, confirmed, held, paid, one at risk, shipments and returns at every step, a consumer"

# --- the standby
as_pg "$BIN/pg_basebackup -D $SDATA -X stream -c fast -R" >"$TMP/basebackup.log" 2>&1
tap $? "pg_basebackup -R from the test cluster"
[ -f "$SDATA/postgresql.conf" ] || : >"$SDATA/postgresql.conf"      # a Debian cluster keeps it in /etc
[ -f "$SDATA/pg_hba.conf" ] || echo "local all all trust" >"$SDATA/pg_hba.conf"
# a hot standby needs these at least as high as on the primary
opts="-c port=$SPORT -c unix_socket_directories=$TMP -c listen_addresses= -c hot_standby=on"
opts="$opts -c shared_buffers=32MB -c logging_collector=off"
for g in max_connections max_prepared_transactions max_worker_processes max_wal_senders \
         max_locks_per_transaction; do
    opts="$opts -c $g=$(psql -qXAt -d postgres -c "SHOW $g")"
done
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$SDATA"
as_pg "$BIN/pg_ctl -D $SDATA -l $TMP/standby.log -w -t 60 start -o '$opts'" >/dev/null 2>&1
tap $? "the standby starts on port $SPORT"

# replayed up to the primary's current WAL position (bounded wait)
lsn=$(p -c "SELECT pg_current_wal_lsn()")
for _ in $(seq 300); do
    [ "$(s -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'" 2>/dev/null)" = t ] && break
    sleep 0.1
done
[ "$(s -c "SELECT pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= '$lsn'" 2>&1)" = t ]
tap $? "the standby is in recovery and has replayed the primary's WAL"

# --- read-only work: the same answers as on the primary
VIEWS=$(p -c "SELECT string_agg(format('%I.%I', schemaname, viewname), ' ' ORDER BY viewname)
                FROM pg_views WHERE schemaname = 'order_mgmt'")
# (measured up to the reading server's clock: consumer_lag's
# oldest_unacked_age; the hours of holds still open and of the wait in the
# current status in order_facts, kpi_daily and open_order_risk)
row="(to_jsonb(t) - '{oldest_unacked_age,hold_hours,credit_hold_hours,payment_hold_hours,stock_hold_hours,address_hold_hours,fraud_hold_hours,manual_hold_hours,credit_hold_mean_hours,hours_in_status}'::text[])::text"
for v in $VIEWS; do
    q="SELECT count(*) || ' ' || coalesce(md5(string_agg($row, ',' ORDER BY $row)), '') FROM $v t"
    want=$(p -c "$q" 2>&1)
    got=$(s -c "$q" 2>&1)
    [ "$got" = "$want" ]
    tap $? "standby: SELECT from $v gives the primary's rows (${got%% *} rows)"
done
[ "$(s -c "SELECT count(*) FROM order_mgmt.orders_at_risk WHERE order_id = 4 AND risk = 'late'")" = 1 ]
tap $? "standby: orders_at_risk lists the late order"
for q in "SELECT e::text FROM order_mgmt.estimate_delivery('BER', 'STD', 'AT', '6900', '2025-09-09 08:00Z') e" \
         "SELECT e::text FROM order_mgmt.estimate_order_delivery(4) e" \
         "SELECT order_mgmt.add_business_days('2025-12-24', 2, 'DE-HANDLING')"; do
    want=$(p -c "$q" 2>&1)
    got=$(s -c "$q" 2>&1)
    [ -n "$got" ] && [ "$got" = "$want" ]
    tap $? "standby: ${q#SELECT } = $got"
done
# fetching only reads (the consumer exists): a peek at the primary's events
q="SELECT count(*) || ' ' || md5(string_agg(event_id::text, ',' ORDER BY tx, seq)) FROM order_mgmt.fetch_events('SB-C', 1000)"
want=$(p -c "$q" 2>&1)
got=$(s -c "$q" 2>&1)
[ "${want%% *}" -gt 0 ] && [ "$got" = "$want" ]
tap $? "standby: fetch_events of a consumer registered on the primary reads its events (${got%% *})"

# --- every API function that writes: valid on the primary, 25006 on the standby
CALLS=(
    "place_order|SELECT order_mgmt.place_order('SB-CR', '[{\"sku\": \"SB-P\", \"qty\": 1}]', '{\"country\": \"DE\"}')"
    "confirm_order|SELECT order_mgmt.confirm_order(1)"
    "hold_order|SELECT order_mgmt.hold_order(1, 'manual', 'x')"
    "release_hold|SELECT order_mgmt.release_hold(2, (SELECT hold_id FROM order_mgmt.order_holds WHERE order_id = 2))"
    "cancel_order|SELECT order_mgmt.cancel_order(1, 'x')"
    "cancel_line|SELECT order_mgmt.cancel_line(1, 1, 1)"
    "authorize_payment|SELECT order_mgmt.authorize_payment(3, 1, 'sb-new-1')"
    "capture_payment|SELECT order_mgmt.capture_payment(3, 1, 'sb-new-2')"
    "refund_payment|SELECT order_mgmt.refund_payment(3, 1, 'sb-new-3')"
    "void_payment|SELECT order_mgmt.void_payment(3, 1, 'sb-new-4')"
    "receive_stock|SELECT order_mgmt.receive_stock('BER', 'SB-P', 1)"
    "adjust_stock|SELECT order_mgmt.adjust_stock('BER', 'SB-P', 1, 'count')"
    "release_to_warehouse|SELECT order_mgmt.release_to_warehouse(4)"
    "start_picking|SELECT order_mgmt.start_picking((SELECT shipment_id FROM order_mgmt.shipments WHERE order_id = 5))"
    "pack_shipment|SELECT order_mgmt.pack_shipment((SELECT shipment_id FROM order_mgmt.shipments WHERE order_id = 6), 500, 300, 200, 100)"
    "label_shipment|SELECT order_mgmt.label_shipment((SELECT shipment_id FROM order_mgmt.shipments WHERE order_id = 7), 'DHL', 'STD', 'SB-NEW')"
    "dispatch_shipment|SELECT order_mgmt.dispatch_shipment((SELECT shipment_id FROM order_mgmt.shipments WHERE order_id = 8))"
    "cancel_shipment|SELECT order_mgmt.cancel_shipment((SELECT shipment_id FROM order_mgmt.shipments WHERE order_id = 5), 'x')"
    "record_tracking_event|SELECT order_mgmt.record_tracking_event('SB-T9', 'sb-ev-1', 'in_transit', now())"
    "request_return|SELECT order_mgmt.request_return(10, '[{\"line_no\": 1, \"qty\": 1}]', 'x')"
    "approve_return|SELECT order_mgmt.approve_return((SELECT return_id FROM order_mgmt.returns WHERE order_id = 10 AND status = 'requested'))"
    "reject_return|SELECT order_mgmt.reject_return((SELECT return_id FROM order_mgmt.returns WHERE order_id = 10 AND status = 'requested'), 'x')"
    "receive_return|SELECT order_mgmt.receive_return((SELECT return_id FROM order_mgmt.returns WHERE order_id = 10 AND status = 'approved'))"
    "inspect_return|SELECT order_mgmt.inspect_return((SELECT return_id FROM order_mgmt.returns WHERE order_id = 10 AND status = 'received'), '[{\"line_no\": 1, \"qty\": 1, \"condition\": \"damaged\", \"disposition\": \"scrap\"}]')"
    "refund_return|SELECT order_mgmt.refund_return((SELECT return_id FROM order_mgmt.returns WHERE order_id = 10 AND status = 'inspected'))"
    "exchange_return|SELECT order_mgmt.exchange_return((SELECT return_id FROM order_mgmt.returns WHERE order_id = 10 AND status = 'inspected'))"
    "complete_order|SELECT order_mgmt.complete_order(11)"
    "complete_due_orders|SELECT order_mgmt.complete_due_orders(now() + interval '1 year')"
    "register_consumer|SELECT order_mgmt.register_consumer('SB-NEW')"
    # (the first fetch of a new consumer registers it)
    "fetch_events|SELECT count(*) FROM order_mgmt.fetch_events('SB-NEW', 10)"
    "ack_events|SELECT order_mgmt.ack_events('SB-C', tx, seq) FROM order_mgmt.events ORDER BY tx, seq LIMIT 1"
    "set_status|SELECT order_mgmt.set_status('order', 1, 'cancelled')"
    "UPDATE|UPDATE order_mgmt.orders SET status = 'cancelled' WHERE order_id = 1"
)
tried=" "
for c in "${CALLS[@]}"; do
    name=${c%%|*}
    sql=${c#*|}
    tried="$tried$name "
    out=$(p -c "BEGIN" -c "$sql" -c "ROLLBACK" 2>&1)
    tap $? "primary: $name succeeds (rolled back)"
    # all calls in one standby session: it must survive each failure
    printf '%s;\nSELECT 1 AS alive;\n' "$sql" >>"$TMP/calls.sql"
done
# every VOLATILE function the operator may call is in the list above
missing=$(p -c "SELECT string_agg(p.proname, ' ' ORDER BY p.proname)
                  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname = 'order_mgmt' AND p.provolatile = 'v'
                   AND has_function_privilege('order_mgmt_operator', p.oid, 'EXECUTE')" |
          tr ' ' '\n' | while read -r f; do case "$tried" in *" $f "*) ;; *) printf '%s ' "$f" ;; esac; done)
[ -z "$missing" ]
tap $? "every write function granted to order_mgmt_operator is tried${missing:+ (missing: $missing)}"

s -v ON_ERROR_STOP=0 -v VERBOSITY=sqlstate -f "$TMP/calls.sql" >"$TMP/calls.out" 2>&1
i=0
for c in "${CALLS[@]}"; do
    i=$((i + 1))
    err=$(grep -c "^psql:$TMP/calls.sql:$((2 * i - 1)): ERROR:  25006$" "$TMP/calls.out")
    [ "$err" -eq 1 ]
    tap $? "standby: ${c%%|*} fails with 25006 (read-only transaction)"
done
[ "$(grep -c '^1$' "$TMP/calls.out")" -eq "${#CALLS[@]}" ]
tap $? "standby: the session survives every failed call"
[ "$(s -c "SELECT count(*) FROM order_mgmt.orders")" = "$(p -c "SELECT count(*) FROM order_mgmt.orders")" ]
tap $? "standby: nothing changed (the order count is the primary's)"

# the standby keeps replaying after the failures
p -c "SELECT order_mgmt.set_status('order', 1, 'cancelled', 'after standby test')" >/dev/null
lsn=$(p -c "SELECT pg_current_wal_lsn()")
for _ in $(seq 300); do
    [ "$(s -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'" 2>/dev/null)" = t ] && break
    sleep 0.1
done
[ "$(s -c "SELECT status FROM order_mgmt.orders WHERE order_id = 1")" = cancelled ]
tap $? "standby: a later change on the primary is replayed"

as_pg "$BIN/pg_ctl -D $SDATA -m fast -w stop" >/dev/null 2>&1
tap $? "the standby stops cleanly"
! grep -E 'terminated by signal|PANIC' "$TMP/standby.log"
tap $? "standby log: no process terminated by a signal, no PANIC"
echo "1..$N"
