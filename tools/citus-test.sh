#!/usr/bin/env bash
# order_mgmt on Citus (issue 15, README "Scaling out"): a coordinator and
# two workers on loopback, order_mgmt distributed with distribute(), then
# the checks, printed as TAP.
#
#   bash tools/citus-test.sh          # run the checks, always stop the nodes
#   bash tools/citus-test.sh start    # nodes up, order_mgmt created and distributed
#   bash tools/citus-test.sh stop     # stop them
#
# Citus is not a Debian package and nothing of it lives in this repository:
# OM_CITUS_DESTDIR (default /opt/om-citus) is a copy of /usr/lib/postgresql/15
# and /usr/share/postgresql/15 (as tools/common.sh om_build makes) into which
# Citus was installed with `make install DESTDIR=...` (README "Scaling out").
# Without it the script prints "skipped: Citus is not installed" and
# "0 passed, 0 failed" and exits 0 (CI machines have no Citus).
#
# Nodes: coordinator on OM_CITUS_PORT (default 5530), workers on the next two
# ports, data in OM_CITUS_DIR (default /tmp/om-citus), database om_citus,
# user postgres, trust on loopback only; shared_preload_libraries 'citus,
# order_mgmt' and the relay worker on the coordinator.  order_mgmt is built
# from this tree and installed into the same private copy
# (OM_CITUS_NO_BUILD=1 keeps the one installed there).  The last line is
# "N passed, N failed".  OM_CITUS_ORDERS (default 5) orders per session of
# the 8-session lifecycle run.
set -euo pipefail

CITUS_DESTDIR=${OM_CITUS_DESTDIR:-/opt/om-citus}
BASE_PORT=${OM_CITUS_PORT:-5530}
DIR=${OM_CITUS_DIR:-/tmp/om-citus}
DB=om_citus
MODE=${1:-test}
ORDERS=${OM_CITUS_ORDERS:-5}

if [ ! -f "$CITUS_DESTDIR/usr/lib/postgresql/15/lib/citus.so" ] \
   || [ ! -f "$CITUS_DESTDIR/usr/share/postgresql/15/extension/citus.control" ]; then
    echo "# no citus.so under $CITUS_DESTDIR (set OM_CITUS_DESTDIR)"
    echo "skipped: Citus is not installed"
    echo "0 passed, 0 failed"
    exit 0
fi

# order_mgmt is built and installed into the same private copy (om_build).
export OM_DESTDIR=$CITUS_DESTDIR OM_SOCK=$DIR OM_PGPORT=$BASE_PORT OM_PGDATA=$DIR/coord
export PGOPTIONS="-c client_min_messages=warning"
source "$(dirname "$0")/common.sh"

NODES="coord:$BASE_PORT w1:$((BASE_PORT + 1)) w2:$((BASE_PORT + 2))"
COORD=$BASE_PORT
W1=$((BASE_PORT + 1))
W2=$((BASE_PORT + 2))

# q PORT SQL...: run SQL on a node (unaligned, tuples only), stop on error.
q() {
    local port=$1
    shift
    psql -qXAt -v ON_ERROR_STOP=1 -h "$DIR" -p "$port" -U postgres -d "$DB" "$@"
}

stop_nodes() {
    for n in $NODES; do
        local name=${n%%:*}
        if [ -f "$DIR/$name/postmaster.pid" ]; then
            su postgres -c "$PGBIN/pg_ctl -D $DIR/$name -m fast -w stop" >/dev/null 2>&1 || true
        fi
    done
}

# One node: a fresh cluster with Citus and order_mgmt preloaded, listening
# on 127.0.0.1 (the other nodes connect over TCP) and on the socket
# directory; the coordinator also runs the relay worker.
start_node() {
    local name=$1 port=$2
    rm -rf "${DIR:?}/$name"
    su postgres -c "$PGBIN/initdb -D $DIR/$name -A trust -U postgres --no-sync" >/dev/null
    cat >>"$DIR/$name/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
shared_preload_libraries = 'citus,order_mgmt'
max_connections = 200
shared_buffers = 128MB
max_prepared_transactions = 100
max_worker_processes = 32
wal_level = logical
citus.log_distributed_deadlock_detection = off
CONF
    [ "$name" != coord ] || echo "order_mgmt.relay_databases = '$DB'" >>"$DIR/$name/postgresql.conf"
    su postgres -c "$PGBIN/pg_ctl -D $DIR/$name -l $DIR/$name.log -w start" >/dev/null
    psql -qX -h "$DIR" -p "$port" -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null
    q "$port" -c "CREATE EXTENSION citus" >/dev/null
}

# Three nodes, the coordinator and the workers in the metadata, order_mgmt
# created on the coordinator (Citus creates it on the workers).
setup() {
    mkdir -p "$DIR" && chown postgres:postgres "$DIR"
    stop_nodes
    for n in $NODES; do
        start_node "${n%%:*}" "${n##*:}"
    done
    q "$COORD" -c "SELECT citus_set_coordinator_host('127.0.0.1', $COORD)" >/dev/null
    q "$COORD" -c "SELECT citus_add_node('127.0.0.1', $W1)" \
               -c "SELECT citus_add_node('127.0.0.1', $W2)" >/dev/null
    q "$COORD" -c "CREATE EXTENSION order_mgmt" >/dev/null
}

build() {
    [ -n "${OM_CITUS_NO_BUILD:-}" ] || om_build >/dev/null
}

# Master data (reference tables) and stock, through the coordinator.
SEED="
INSERT INTO order_mgmt.calendars (calendar_id, tz) VALUES ('STD', 'Europe/Berlin');
INSERT INTO order_mgmt.customers (customer_id, name, payment_terms, credit_limit)
VALUES ('CR', 'credit', 'credit', 100000000), ('PP', 'prepaid', 'prepaid', 0);
INSERT INTO order_mgmt.products (sku, name, list_price) VALUES ('A', 'a', 10), ('B', 'b', 5), ('Z', 'scarce', 1);
INSERT INTO order_mgmt.warehouses (warehouse_id, name, tz, calendar_id, zone)
VALUES ('W', 'w', 'Europe/Berlin', 'STD', 'DE');
INSERT INTO order_mgmt.services (service_id, carrier, transit_min, transit_max, transit_calendar_id,
                                 delivery_calendar_id)
VALUES ('STD', 'DHL', 1, 2, 'STD', 'STD');
INSERT INTO order_mgmt.zone_rules (country, postal_prefix, zone) VALUES ('DE', '', 'DE');
SELECT order_mgmt.receive_stock('W', 'A', 100000), order_mgmt.receive_stock('W', 'B', 100000),
       order_mgmt.receive_stock('W', 'Z', 3);
"

# One order from placement to return through the API, as a psql or pgbench
# script: :ref (the external_ref), :t1 and :t2 (checkpoint times) are
# quoted literals.
LIFECYCLE=$(cat <<'SQL'
SELECT order_mgmt.place_order('CR', '[{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]', '{"name": "N", "country": "DE", "postal_code": "10115"}', external_ref => :ref) AS id \gset
SELECT order_mgmt.confirm_order(:id);
SELECT order_mgmt.authorize_payment(:id, 25, :ref || '-auth');
SELECT order_mgmt.capture_payment(:id, 25, :ref || '-cap');
SELECT order_mgmt.release_to_warehouse(:id);
SELECT min(shipment_id) AS sh FROM order_mgmt.shipments WHERE order_id = :id \gset
SELECT order_mgmt.start_picking(:sh);
SELECT order_mgmt.pack_shipment(:sh, 1200, 300, 200, 100);
SELECT order_mgmt.label_shipment(:sh, 'DHL', 'STD', :ref || '-tn');
SELECT order_mgmt.dispatch_shipment(:sh);
SELECT order_mgmt.record_tracking_event(:ref || '-tn', :ref || '-c1', 'in_transit', :t1);
SELECT order_mgmt.record_tracking_event(:ref || '-tn', :ref || '-c2', 'delivered', :t2);
SELECT order_mgmt.request_return(:id, '[{"line_no": 1, "qty": 1}]', 'too big') AS r \gset
SELECT order_mgmt.approve_return(:r);
SELECT order_mgmt.receive_return(:r);
SELECT order_mgmt.inspect_return(:r, '[{"line_no": 1, "qty": 1, "condition": "resellable", "disposition": "restock"}]');
SQL
)

# TAP
N=0
PASS=0
FAIL=0
LOG=$(mktemp -d)
chmod 755 "$LOG"
result() {   # result DESCRIPTION SUCCEEDED OUTPUT
    N=$((N + 1))
    if [ "$2" = 1 ]; then
        echo "ok $N - $1"
        PASS=$((PASS + 1))
    else
        echo "not ok $N - $1"
        FAIL=$((FAIL + 1))
        printf '%s\n' "$3" | head -8 | sed 's/^/#   /'
    fi
}
# check DESCRIPTION SQL: the last line printed on the coordinator must be "t".
check() {
    local out ok=0
    out=$(q "$COORD" <<<"$2" 2>&1) && [ "$(printf '%s\n' "$out" | tail -1)" = t ] && ok=1
    result "$1" "$ok" "$out"
}
# fails DESCRIPTION SQLSTATE WHERE SQL: the SQL (on the coordinator) must
# fail with SQLSTATE; WHERE=worker: raised on a worker (Citus adds "while
# executing command on" to the context).
fails() {
    local out ok=0
    if ! out=$(q "$COORD" -v VERBOSITY=verbose <<<"$4" 2>&1) \
       && printf '%s' "$out" | grep -q "ERROR:  $2:"; then
        ok=1
        if [ "$3" = worker ] && ! printf '%s' "$out" | grep -q "while executing command on 127.0.0.1"; then
            ok=0
        fi
    fi
    result "$1" "$ok" "$out"
}
# drain CONSUMER [WHERE]: fetch and acknowledge until nothing is left (a
# fetch hands out one node group's events); print "order_id:event_type" of
# every event (matching WHERE) in the order handed out
drain() {
    local rows
    while rows=$(q "$COORD" -F ' ' -c "SELECT tx, seq, order_id, event_type, ${2:-true}
                                          FROM order_mgmt.fetch_events('$1', 1000)") && [ -n "$rows" ]; do
        printf '%s\n' "$rows" | awk '$5 == "t" { print $3 ":" $4 }'
        set -- "$1" "${2:-true}" "$(printf '%s\n' "$rows" | tail -1)"
        q "$COORD" -c "SELECT order_mgmt.ack_events('$1', '${3%% *}', $(echo "$3" | cut -d' ' -f2))" >/dev/null
    done
}
# node_of ORDER_ID: the port of the worker holding the order's shard
node_of() {
    q "$COORD" -c "SELECT nodeport FROM pg_dist_shard_placement
                    WHERE shardid = get_shard_id_for_distribution_column('order_mgmt.orders', $1)"
}
# the events of the order with external_ref ONE-1 as a comparable list:
# what happened, not where
STEPS="SELECT string_agg(concat_ws('/', e.entity, e.event_type, e.from_status, e.to_status, e.actor,
                                  e.automated, e.reason), E'\n' ORDER BY e.seq)
         FROM order_mgmt.events e JOIN order_mgmt.orders o USING (order_id)
        WHERE o.external_ref = 'ONE-1'"

case $MODE in
stop)
    stop_nodes
    exit 0
    ;;
start)
    build
    setup
    q "$COORD" -c "CALL order_mgmt.distribute()" >/dev/null
    echo "coordinator: psql -h $DIR -p $COORD -U postgres $DB   (workers: -p $W1, -p $W2)"
    exit 0
    ;;
test) ;;
*)
    echo "usage: $0 [test|start|stop]" >&2
    exit 2
    ;;
esac

trap 'stop_nodes; rm -rf "$LOG"' EXIT
build
setup

echo "# Citus $(q "$COORD" -c "SELECT citus_version()" | cut -d' ' -f2), coordinator $COORD, workers $W1 $W2"
check "two workers are registered and active" \
    "SELECT count(*) = 2 FROM pg_dist_node WHERE groupid > 0 AND isactive AND noderole = 'primary'"
check "CREATE EXTENSION order_mgmt on the coordinator created it on both workers" \
    "SELECT bool_and(success AND result = (SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'))
       FROM run_command_on_workers(\$\$SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'\$\$)"

# --- distribute() -------------------------------------------------------
out=$(psql -qXAt -h "$DIR" -p "$W1" -U postgres -d "$DB" -v VERBOSITY=verbose \
          -c "CALL order_mgmt.distribute()" 2>&1) && ok=0 || ok=1
printf '%s' "$out" | grep -q "ERROR:  55000: distribute() runs on the Citus coordinator" || ok=0
result "distribute() on a worker fails with 55000" "$ok" "$out"
out=$(q "$COORD" -c "CALL order_mgmt.distribute()" 2>&1) && ok=1 || ok=0
result "CALL order_mgmt.distribute() on the coordinator" "$ok" "$out"
out=$(q "$COORD" -c "CALL order_mgmt.distribute()" 2>&1) && ok=1 || ok=0
result "distribute() again (idempotent: nothing left to do)" "$ok" "$out"
check "11 reference tables, orders and 11 tables co-located with it, business_keys by key; stock, credit and consumers stay on the coordinator" \
    "SELECT count(*) FILTER (WHERE partmethod = 'n') = 11
        AND count(*) FILTER (WHERE partmethod = 'h' AND colocationid =
              (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'order_mgmt.orders'::regclass)) = 12
        AND bool_or(logicalrelid = 'order_mgmt.business_keys'::regclass AND partmethod = 'h'
                    AND colocationid <> (SELECT colocationid FROM pg_dist_partition
                                          WHERE logicalrelid = 'order_mgmt.orders'::regclass))
        AND NOT bool_or(logicalrelid::text IN ('order_mgmt.stock_levels', 'order_mgmt.credit_accounts',
                                               'order_mgmt.consumers', 'order_mgmt.inventory_movements'))
       FROM pg_dist_partition WHERE logicalrelid::text LIKE 'order_mgmt.%'"
check "every node group has its own range of every sequence (g * 2^48 + 1 ..)" \
    "SELECT bool_and(success AND result::bigint = 0) AND count(*) = 3
       FROM run_command_on_all_nodes(\$\$SELECT count(*) FROM pg_sequences WHERE schemaname = 'order_mgmt'
              AND (min_value <> ((SELECT groupid FROM pg_dist_local_group)::bigint << 48) + 1
                   OR max_value <> ((SELECT groupid FROM pg_dist_local_group)::bigint + 1) << 48)\$\$)"
check "the events shards carry the lifecycle-independent stamp trigger" \
    "SELECT bool_and(success AND result::int > 0)
       FROM run_command_on_workers(\$\$SELECT count(*) FROM pg_trigger WHERE tgname ~ '^order_mgmt_stamp_[0-9]+\$'\$\$)"

q "$COORD" <<<"$SEED" >/dev/null

# --- one order from placement to return, as on a single node -----------
# The same steps in a database of the same server without Citus: the events
# (types, statuses, actor, automated, reason) must be the same.
psql -qX -h "$DIR" -p "$COORD" -U postgres -d postgres -c "CREATE DATABASE om_single" >/dev/null
psql -qXAt -v ON_ERROR_STOP=1 -h "$DIR" -p "$COORD" -U postgres -d om_single \
    -c "CREATE EXTENSION order_mgmt" -c "$SEED" >/dev/null
T1=$(q "$COORD" -c "SELECT quote_literal(now() - interval '2 hours')")
T2=$(q "$COORD" -c "SELECT quote_literal(now() - interval '1 hour')")
one() {   # one DATABASE: the lifecycle as actor erin, then its events
    psql -qXAt -v ON_ERROR_STOP=1 -h "$DIR" -p "$COORD" -U postgres -d "$1" -v ref="'ONE-1'" \
        -v t1="$T1" -v t2="$T2" -c "SET order_mgmt.actor = 'erin'" \
        -f <(printf '%s\n%s\n' "$LIFECYCLE" "SELECT order_mgmt.refund_return(:r);") >/dev/null &&
    psql -qXAt -h "$DIR" -p "$COORD" -U postgres -d "$1" -c "$STEPS"
}
single=$(one om_single) || true
citus=$(one "$DB") || true
[ -n "$single" ] && [ "$citus" = "$single" ] && ok=1 || ok=0
result "an order from placement to refunded return: the same $(printf '%s\n' "$single" | grep -c /) events (type, statuses, actor, automated, reason) as on a single node" \
    "$ok" "$(diff <(printf '%s\n' "$single") <(printf '%s\n' "$citus") | head -8)"
ID=$(q "$COORD" -c "SELECT order_id FROM order_mgmt.orders WHERE external_ref = 'ONE-1'")
check "... its events went to its shard with that worker's transaction id and sequence range" \
    "SELECT bool_and(order_mgmt.seq_group(e.seq) = p.groupid) AND count(*) > 20
       FROM order_mgmt.events e
       JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('order_mgmt.events', e.order_id)
      WHERE e.order_id = $ID"
check "... db_role is the coordinator's session user on the workers' events" \
    "SELECT bool_and(db_role = 'postgres') FROM order_mgmt.events WHERE order_id = $ID"

# --- idempotency of business keys ---------------------------------------
check "place_order with the same external_ref and content returns the same order" \
    "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 1}]', '{\"country\": \"DE\"}', external_ref => 'EDI-1')
          = order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 1}]', '{\"country\": \"DE\"}', external_ref => 'EDI-1')"
fails "... with other content: OM005" OM005 coordinator \
    "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 2}]', '{\"country\": \"DE\"}', external_ref => 'EDI-1')"
check "... and nothing changed: one order and one claim for EDI-1" \
    "SELECT (SELECT count(*) FROM order_mgmt.orders WHERE external_ref = 'EDI-1') = 1
        AND (SELECT count(*) FROM order_mgmt.business_keys WHERE key = 'EDI-1') = 1"
# the same EDI message sent by 8 sessions at once
cat >"$LOG/twin.sql" <<'SQL'
SELECT order_mgmt.place_order('CR', '[{"sku": "A", "qty": 1}]', '{"country": "DE"}', external_ref => 'EDI-TWIN');
SQL
out=$(pgbench -n -h "$DIR" -p "$COORD" -U postgres -c 8 -j 2 -t 3 -f "$LOG/twin.sql" "$DB" 2>&1) \
    && ! printf '%s' "$out" | grep -qiE 'aborted|error' && ok=1 || ok=0
result "8 sessions send the same external_ref at once, 3 times each: no error" "$ok" "$out"
check "... one order" "SELECT count(*) = 1 FROM order_mgmt.orders WHERE external_ref = 'EDI-TWIN'"
fails "a psp_reference of another order: OM005" OM005 coordinator \
    "SELECT order_mgmt.authorize_payment(order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 1}]', '{\"country\": \"DE\"}'), 5, 'ONE-1-auth')"
TN=$(q "$COORD" -c "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 1}]', '{\"country\": \"DE\"}')")
TS=$(q "$COORD" -c "SELECT order_mgmt.confirm_order($TN), order_mgmt.release_to_warehouse($TN)" >/dev/null &&
     q "$COORD" -c "SELECT shipment_id FROM order_mgmt.shipments WHERE order_id = $TN")
q "$COORD" -c "SELECT order_mgmt.start_picking($TS), order_mgmt.pack_shipment($TS, 1, 1, 1, 1)" >/dev/null
fails "a tracking number of another shipment: OM005" OM005 coordinator \
    "SELECT order_mgmt.label_shipment($TS, 'DHL', 'STD', 'ONE-1-tn')"
check "... nothing changed: the shipment is packed, the number claimed once" \
    "SELECT (SELECT status = 'packed' FROM order_mgmt.shipments WHERE shipment_id = $TS)
        AND (SELECT count(*) = 1 FROM order_mgmt.business_keys WHERE key = 'ONE-1-tn')"

# --- OM001 on a worker, a transaction on two shards ----------------------
A=$(q "$COORD" -c "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 1}]', '{\"country\": \"DE\"}')")
B=$A
while [ "$(node_of "$B")" = "$(node_of "$A")" ]; do
    B=$(q "$COORD" -c "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 1}]', '{\"country\": \"DE\"}')")
done
fails "an illegal move by a direct UPDATE through the coordinator: OM001 raised on the worker" \
    OM001 worker "UPDATE order_mgmt.orders SET status = 'shipped' WHERE order_id = $A"
fails "... and by set_status: OM001 raised on the worker" \
    OM001 worker "SELECT order_mgmt.set_status('order', $A, 'delivered')"
check "... nothing changed" \
    "SELECT status = 'placed' AND (SELECT count(*) = 1 FROM order_mgmt.events WHERE order_id = $A)
       FROM order_mgmt.orders WHERE order_id = $A"
out=$(q "$COORD" -c "BEGIN" -c "SET LOCAL order_mgmt.actor = 'frank'" \
        -c "SELECT order_mgmt.hold_order($A, 'fraud', 'two shards')" \
        -c "SELECT order_mgmt.hold_order($B, 'fraud', 'two shards')" -c "COMMIT" 2>&1) && ok=1 || ok=0
result "one transaction holds two orders on two workers (two-phase commit; no NOTIFY in it)" "$ok" "$out"
check "... both are on hold, each with its hold.placed and order.held by frank" \
    "SELECT count(*) = 4 AND bool_and(actor = 'frank')
       FROM order_mgmt.events WHERE order_id IN ($A, $B) AND event_type IN ('hold.placed', 'order.held')"
fails "a transaction on two shards that fails on the second: nothing of it stays" OM006 coordinator \
    "BEGIN;
     SELECT order_mgmt.cancel_order($A, 'undone');
     SELECT order_mgmt.cancel_order($ID, 'refused: it was delivered');
     COMMIT;"
check "... the first order is still on hold" "SELECT status = 'on_hold' FROM order_mgmt.orders WHERE order_id = $A"

# --- the rules that reach other orders, stock and credit -----------------
D=$(q "$COORD" -c "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 4}]', '{\"country\": \"DE\"}')")
q "$COORD" -c "SELECT order_mgmt.confirm_order($D)" >/dev/null
STOCK="SELECT (SELECT reserved FROM order_mgmt.stock WHERE sku = 'A') || '/' ||
              (SELECT exposure FROM order_mgmt.credit_accounts WHERE customer_id = 'CR')"
BEFORE=$(q "$COORD" -c "$STOCK")
fails "a direct UPDATE that would release stock and credit is refused at commit: OM060" OM060 worker \
    "UPDATE order_mgmt.orders SET status = 'cancelled' WHERE order_id = $D"
check "... nothing changed: the order confirmed with its reservation, stock and credit as they were" \
    "SELECT o.status = 'confirmed' AND l.qty_reserved = 4 AND ($STOCK) = '$BEFORE'
       FROM order_mgmt.orders o JOIN order_mgmt.order_lines l USING (order_id) WHERE o.order_id = $D"
out=$(psql -qXAt -h "$DIR" -p "$W1" -U postgres -d "$DB" -v VERBOSITY=verbose \
          -c "SELECT order_mgmt.hold_order($D, 'manual', 'on a worker')" 2>&1) && ok=0 || ok=1
printf '%s' "$out" | grep -q "ERROR:  OM060: order_mgmt's API runs on the Citus coordinator" || ok=0
result "the API called on a worker: OM060" "$ok" "$out"
Z1=$(q "$COORD" -c "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"Z\", \"qty\": 3}]', '{\"country\": \"DE\"}')")
Z2=$(q "$COORD" -c "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"Z\", \"qty\": 2}]', '{\"country\": \"DE\"}', allow_backorder => true)")
q "$COORD" -c "SELECT order_mgmt.confirm_order($Z1), order_mgmt.confirm_order($Z2)" >/dev/null
out=$(q "$COORD" -c "SELECT order_mgmt.cancel_order($Z1, 'changed mind')" 2>&1) && ok=1 || ok=0
result "cancel_order of an order with reservations (its release is a worker's effect)" "$ok" "$out"
check "... the freed stock went to the waiting order on another shard, as automation" \
    "SELECT l.qty_reserved = 2 AND l.qty_backordered = 0
        AND EXISTS (SELECT 1 FROM order_mgmt.events e WHERE e.order_id = $Z2
                     AND e.event_type = 'line.backorder_allocated' AND e.automated)
        AND (SELECT reserved FROM order_mgmt.stock WHERE sku = 'Z') = 2
       FROM order_mgmt.order_lines l WHERE l.order_id = $Z2"
check "... credit exposure is the sum of the orders' exposure, and no effect is left" \
    "SELECT (SELECT exposure FROM order_mgmt.credit_accounts WHERE customer_id = 'CR')
            = (SELECT sum(exposure) FROM order_mgmt.orders WHERE customer_id = 'CR')
        AND NOT EXISTS (SELECT 1 FROM order_mgmt.order_effects)
        AND NOT EXISTS (SELECT 1 FROM order_mgmt.effects_armed)"

# a worker session that has read the graph sees an edge added on the coordinator
P=$(node_of "$A")
out=$(psql -qXAt -h "$DIR" -p "$P" -U postgres -d "$DB" 2>&1 <<SQL
SELECT order_mgmt.status_class('order', 'placed');
\! psql -qX -h $DIR -p $COORD -U postgres -d $DB -c "INSERT INTO order_mgmt.statuses VALUES ('order', 'parked', 'held')"
SELECT coalesce(order_mgmt.status_class('order', 'parked'), 'unknown');
SQL
) && [ "$(printf '%s\n' "$out" | tail -1)" = held ] && ok=1 || ok=0
result "a worker session's cache of the graph sees a status added on the coordinator" "$ok" "$out"

# --- 8 sessions, orders from placement to return; a consumer; the relay --
q "$COORD" -c "SELECT order_mgmt.register_consumer('citus-test')" >/dev/null
# the relay registers "from now" once the database exists (it looks every 10 s)
for i in $(seq 150); do
    [ "$(q "$COORD" -c "SELECT count(*) FROM order_mgmt.consumers WHERE consumer = 'order_mgmt.relay'")" = 1 ] && break
    sleep 0.1
done
cat >"$LOG/consume.py" <<'PY'
# fetch and acknowledge until told to stop (a file), then until two empty
# batches in a row; print every event_id handed out
import os, sys, time, psycopg2
conn = psycopg2.connect(sys.argv[1]); conn.autocommit = True
cur = conn.cursor(); empty = 0
while True:
    cur.execute("SELECT tx, seq, event_id FROM order_mgmt.fetch_events('citus-test', 200)")
    rows = cur.fetchall()
    for r in rows:
        print(r[2])
    if rows:
        cur.execute("SELECT order_mgmt.ack_events('citus-test', %s::xid8, %s)", (rows[-1][0], rows[-1][1]))
        empty = 0
    elif os.path.exists(sys.argv[2]):
        empty += 1
        if empty >= 2:
            break
        time.sleep(0.3)
    else:
        time.sleep(0.05)
PY
cat >"$LOG/listen.py" <<'PY'
# LISTEN until told to stop; print the event_id of every notification
import json, os, select, sys, psycopg2
conn = psycopg2.connect(sys.argv[1]); conn.autocommit = True
conn.cursor().execute("LISTEN order_mgmt_events")
print("listening", flush=True)
while not os.path.exists(sys.argv[2]):
    if select.select([conn], [], [], 0.2) != ([], [], []):
        conn.poll()
        while conn.notifies:
            print(json.loads(conn.notifies.pop(0).payload)["event_id"], flush=True)
PY
DSN="host=$DIR port=$COORD user=postgres dbname=$DB"
/usr/bin/python3 "$LOG/consume.py" "$DSN" "$LOG/stop" >"$LOG/consumed" 2>"$LOG/consume.err" &
CONSUMER=$!
/usr/bin/python3 "$LOG/listen.py" "$DSN" "$LOG/stop-listen" >"$LOG/notified" 2>"$LOG/listen.err" &
LISTENER=$!
for i in $(seq 50); do grep -q listening "$LOG/notified" && break; sleep 0.1; done
{
    echo "\\set ex random(0, 1)"
    echo "SELECT quote_literal('PB-' || :client_id || '-' || random()) AS ref,"
    echo "       quote_literal(now() - interval '2 hours') AS t1, quote_literal(now() - interval '1 hour') AS t2 \\gset"
    printf '%s\n' "$LIFECYCLE"
    echo "\\if :ex"
    echo "SELECT order_mgmt.exchange_return(:r);"
    echo "\\else"
    echo "SELECT order_mgmt.refund_return(:r);"
    echo "\\endif"
} >"$LOG/lifecycle.sql"
out=$(PGOPTIONS="$PGOPTIONS -c order_mgmt.actor=pb" pgbench -n -h "$DIR" -p "$COORD" -U postgres \
          -c 8 -j 2 -t "$ORDERS" -f "$LOG/lifecycle.sql" "$DB" 2>&1) \
    && ! printf '%s' "$out" | grep -qiE 'aborted|error' && ok=1 || ok=0
result "8 sessions take $((8 * ORDERS)) orders from placement through dispatch, tracking and delivery to a refunded or exchanged return" \
    "$ok" "$(printf '%s' "$out" | grep -iE 'error|abort|tps|failed' | head -5)"
PB=$((8 * ORDERS))
check "... every one of them ended with a completed return, delivered and partially returned" \
    "SELECT count(*) = $PB
       FROM order_mgmt.orders o JOIN order_mgmt.returns r USING (order_id)
      WHERE o.external_ref LIKE 'PB-%' AND o.status = 'delivered' AND o.return_status = 'partially_returned'
        AND r.status = 'completed'"
check "... each order's status is the to_status of its last status event, actor pb on every event" \
    "SELECT count(*) FILTER (WHERE o.status <> l.last_status) = 0 AND count(*) = $PB
        AND bool_and(l.actors = '{pb}')
       FROM order_mgmt.orders o
       JOIN (SELECT order_id,
                    (array_agg(to_status ORDER BY seq DESC)
                       FILTER (WHERE entity = 'order' AND to_status IS NOT NULL))[1] AS last_status,
                    array_agg(DISTINCT actor) AS actors
               FROM order_mgmt.events GROUP BY order_id) l USING (order_id)
      WHERE o.external_ref LIKE 'PB-%'"
check "... the stock ledger sums to stock, reserved stock is what the lines reserve" \
    "WITH m AS (SELECT warehouse_id, sku, sum(on_hand_delta) AS h, sum(reserved_delta) AS r
                  FROM order_mgmt.inventory_movements GROUP BY 1, 2),
          l AS (SELECT warehouse_id, sku, sum(qty_reserved) AS r FROM order_mgmt.order_lines
                 WHERE qty_reserved > 0 GROUP BY 1, 2)
     SELECT bool_and(s.on_hand = m.h AND s.reserved = m.r AND s.reserved = coalesce(l.r, 0))
       FROM order_mgmt.stock s JOIN m USING (warehouse_id, sku) LEFT JOIN l USING (warehouse_id, sku)"
check "... credit exposure is the sum of the orders' exposure; no effect is left" \
    "SELECT (SELECT exposure FROM order_mgmt.credit_accounts WHERE customer_id = 'CR')
            = (SELECT sum(exposure) FROM order_mgmt.orders WHERE customer_id = 'CR')
        AND NOT EXISTS (SELECT 1 FROM order_mgmt.order_effects)"
check "... every business key claimed once: external refs, payments, tracking numbers, carrier events" \
    "SELECT count(*) FILTER (WHERE kind = 'external_ref') = $PB
        AND count(*) FILTER (WHERE kind = 'psp_reference') = 2 * $PB
        AND count(*) FILTER (WHERE kind = 'tracking_number') = $PB
        AND count(*) FILTER (WHERE kind = 'carrier_event_id') = 2 * $PB
       FROM order_mgmt.business_keys WHERE key LIKE 'PB-%'"
touch "$LOG/stop"
wait "$CONSUMER" || true
sort "$LOG/consumed" | uniq >"$LOG/consumed.set"
q "$COORD" -c "SELECT event_id FROM order_mgmt.events ORDER BY 1" >"$LOG/all.set"
cmp -s "$LOG/consumed.set" <(sort "$LOG/all.set") && ok=1 || ok=0
result "a consumer fetching while the sessions ran received every event of every shard ($(wc -l <"$LOG/all.set") events, $(wc -l <"$LOG/consumed") handed out)" \
    "$ok" "$(cat "$LOG/consume.err"; diff "$LOG/consumed.set" <(sort "$LOG/all.set") | head -5)"
for i in $(seq 100); do
    [ "$(q "$COORD" -c "SELECT events_behind FROM order_mgmt.consumer_lag WHERE consumer = 'order_mgmt.relay'")" = 0 ] && break
    sleep 0.1
done
sleep 0.5
touch "$LOG/stop-listen"
wait "$LISTENER" || true
grep -v listening "$LOG/notified" | sort -u >"$LOG/notified.set"
q "$COORD" -c "SELECT e.event_id FROM order_mgmt.events e JOIN order_mgmt.orders o USING (order_id)
                WHERE o.external_ref LIKE 'PB-%' ORDER BY 1" >"$LOG/pb.set"
comm -13 "$LOG/notified.set" "$LOG/pb.set" >"$LOG/unannounced"
RELAY_FROM=$(q "$COORD" -c "SELECT count(*) FROM order_mgmt.events")
[ -s "$LOG/notified.set" ] && [ "$(wc -l <"$LOG/unannounced")" -eq 0 ] && ok=1 || ok=0
result "the relay worker on the coordinator announced to a LISTEN session there every event of those orders ($(wc -l <"$LOG/pb.set"); $(wc -l <"$LOG/notified.set") notified)" \
    "$ok" "$(cat "$LOG/listen.err"; head -3 "$LOG/unannounced")"
check "consumer_lag: the drained consumer is 0 events behind" \
    "SELECT events_behind = 0 FROM order_mgmt.consumer_lag WHERE consumer = 'citus-test'"
# a transaction that commits late on a worker holds back the events committed
# after it there: nothing is skipped (README "Consumers" on Citus)
q "$COORD" -c "SELECT order_mgmt.register_consumer('late', from_now => true)" >/dev/null
L1=$(q "$COORD" -c "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 1}]', '{\"country\": \"DE\"}')")
L2=$L1
while [ "$(node_of "$L2")" != "$(node_of "$L1")" ] || [ "$L2" = "$L1" ]; do
    L2=$(q "$COORD" -c "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 1}]', '{\"country\": \"DE\"}')")
done
drain late >/dev/null
q "$COORD" -c "BEGIN" -c "SELECT order_mgmt.hold_order($L1, 'manual', 'late')" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null 2>&1 &
LATE=$!
sleep 1
q "$COORD" -c "SELECT order_mgmt.hold_order($L2, 'manual', 'early')" >/dev/null
EARLY=$(drain late "order_id IN ($L1, $L2)" | tr '\n' ' ')
wait "$LATE"
AFTER=$(drain late "order_id IN ($L1, $L2)" | tr '\n' ' ')
[ -z "$EARLY" ] && [ "$AFTER" = "$L1:hold.placed $L1:order.held $L2:hold.placed $L2:order.held " ] && ok=1 || ok=0
result "an event committed on a worker after an older open transaction there is held back until that one ends, then both come in (tx, seq) order" \
    "$ok" "before: $EARLY; after: $AFTER"
q "$COORD" -c "SELECT order_mgmt.drop_consumer('late')" >/dev/null
fails "fetch_events in REPEATABLE READ: 25000" 25000 coordinator \
    "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT * FROM order_mgmt.fetch_events('citus-test');"

# --- the BI views: the same result through the coordinator as on one node --
# The data of the 8 sessions plus the hand-worked BI fixture (holds, a
# re-pack, a lost parcel, time zones, open orders), loaded through the
# coordinator (its one UPDATE with a volatile call made constant: Citus
# plans none), then every table's rows copied into a database without
# Citus on the same server: each view and function must answer there and
# through the coordinator with the same rows (count and md5 of the rows as
# text, sorted).  Columns counted up to now() (hours of open holds, in a
# status) can cross a rounding step between the two reads: a difference
# is read again once.
TODAY=$(q "$COORD" -c "SELECT (now() AT TIME ZONE 'Europe/Berlin')::date")
sed -E "/^UPDATE shipments SET estimated_delivery_latest/s/pg_temp\.today\(\)/'$TODAY'::date/" \
    "$(dirname "$0")/../test/fixtures/bi_fixture.sql" >"$LOG/bi_fixture.sql"
out=$(q "$COORD" -f "$LOG/bi_fixture.sql" 2>&1) && ok=1 || ok=0
result "the BI fixture loads through the coordinator" "$ok" "$out"
psql -qX -h "$DIR" -p "$COORD" -U postgres -d postgres -c "CREATE DATABASE om_bi_single" >/dev/null
psql -qXAt -v ON_ERROR_STOP=1 -h "$DIR" -p "$COORD" -U postgres -d om_bi_single -c "CREATE EXTENSION order_mgmt" >/dev/null
qs() { psql -qXAt -v ON_ERROR_STOP=1 -h "$DIR" -p "$COORD" -U postgres -d om_bi_single "$@"; }
TABLES=$(qs -c "SELECT string_agg(tablename, ' ' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'order_mgmt'")
out=$(qs -c "SET session_replication_role = replica" \
         -c "TRUNCATE $(printf 'order_mgmt.%s, ' $TABLES | sed 's/, $//')" 2>&1) && ok=1 || ok=0
for t in $TABLES; do
    q "$COORD" -c "\\copy order_mgmt.$t TO STDOUT" |
        qs -c "SET session_replication_role = replica" -c "\\copy order_mgmt.$t FROM STDIN" >/dev/null 2>&1 || ok=0
done
result "every table's rows copied from the coordinator into a single-node database ($(qs -c "SELECT count(*) FROM order_mgmt.orders") orders, $(qs -c "SELECT count(*) FROM order_mgmt.events") events)" "$ok" "$out"
digest() {   # digest PSQL-FUNCTION EXPRESSION: row count and md5 of the rows, or the error
    "$1" -c "SELECT count(*) || ' ' || md5(coalesce(string_agg(v::text, '|' ORDER BY v::text), ''))
               FROM ($2) v" 2>&1 | head -2 || true
}
qc() { q "$COORD" "$@"; }
for v in order_overview order_facts kpi_daily process_variants process_dfg open_order_risk \
         orders_at_risk event_log process_steps process_traces order_zones inventory_availability bi_config \
         "process_dfg(NULL, NULL)" "process_dfg(now() - interval '5 days', now())" "process_map_dot()" \
         "process_map_dot('2025-10-01', '2025-11-01')" "export_xes()" \
         "export_xes(now() - interval '5 days', now())"; do
    sql="SELECT * FROM order_mgmt.$v"
    single=$(digest qs "$sql")
    citus=$(digest qc "$sql")
    if [ "$single" != "$citus" ]; then
        single=$(digest qs "$sql")
        citus=$(digest qc "$sql")
    fi
    [ "$single" = "$citus" ] && [ "${single%% *}" -gt 0 ] 2>/dev/null && ok=1 || ok=0
    result "BI: $v through the coordinator = on a single node (${single%% *} rows)" "$ok" \
        "single node: $single
citus: $citus"
done

out=$(qs -c "SELECT (SELECT count(*) FROM order_mgmt.process_dfg) > 0
                 AND NOT EXISTS (SELECT * FROM order_mgmt.process_dfg
                                 EXCEPT ALL SELECT * FROM order_mgmt.process_dfg(NULL, NULL))
                 AND NOT EXISTS (SELECT * FROM order_mgmt.process_dfg(NULL, NULL)
                                 EXCEPT ALL SELECT * FROM order_mgmt.process_dfg)" 2>&1) || true
[ "$out" = t ] && ok=1 || ok=0
result "BI: on the single node the process_dfg view and process_dfg(NULL, NULL) (the same query, twice) agree" "$ok" "$out"

# --- ALTER EXTENSION UPDATE on a distributed install ----------------------
# A second database of the same nodes, created at 0.9.0, distributed, with
# orders; then ALTER EXTENSION order_mgmt UPDATE on the coordinator.
UP=om_upgrade
for n in $NODES; do
    psql -qX -h "$DIR" -p "${n##*:}" -U postgres -d postgres -c "CREATE DATABASE $UP" >/dev/null
    psql -qXAt -h "$DIR" -p "${n##*:}" -U postgres -d "$UP" -c "CREATE EXTENSION citus" >/dev/null
done
qu() { psql -qXAt -v ON_ERROR_STOP=1 -h "$DIR" -p "$COORD" -U postgres -d "$UP" "$@"; }
out=$(qu -c "SELECT citus_set_coordinator_host('127.0.0.1', $COORD)" \
         -c "SELECT citus_add_node('127.0.0.1', $W1)" -c "SELECT citus_add_node('127.0.0.1', $W2)" \
         -c "CREATE EXTENSION order_mgmt VERSION '0.9.0'" -c "CALL order_mgmt.distribute()" \
         -c "$SEED" 2>&1 >/dev/null) && ok=1 || ok=0
for i in 1 2 3 4; do
    psql -qXAt -v ON_ERROR_STOP=1 -h "$DIR" -p "$COORD" -U postgres -d "$UP" -v ref="'UP-$i'" \
        -v t1="$T1" -v t2="$T2" -f <(printf '%s\n' "$LIFECYCLE") >/dev/null 2>&1 || ok=0
done
result "a distributed install at 0.9.0 with 4 orders taken from placement to a return" "$ok" "$out"
DATA="SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
        SELECT o::text AS x FROM order_mgmt.orders o UNION ALL SELECT e::text FROM order_mgmt.events e
        UNION ALL SELECT l::text FROM order_mgmt.order_lines l UNION ALL SELECT s::text FROM order_mgmt.shipments s) d"
BEFORE=$(qu -c "$DATA")
out=$(qu -c "ALTER EXTENSION order_mgmt UPDATE TO '0.10.0'" 2>&1) && ok=1 || ok=0
result "ALTER EXTENSION order_mgmt UPDATE TO '0.10.0' on the coordinator of the distributed install" "$ok" "$out"
check_up() { local out ok=0; out=$(qu <<<"$2" 2>&1) && [ "$(printf '%s\n' "$out" | tail -1)" = t ] && ok=1; result "$1" "$ok" "$out"; }
check_up "... Citus updated the extension on both workers too (0.10.0 everywhere)" \
    "SELECT bool_and(success AND result = '0.10.0') AND count(*) = 2
       FROM run_command_on_workers(\$\$SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'\$\$)"
check_up "... the workers have the new definitions (kpi_daily over a materialized CTE, process_dfg in PL/pgSQL)" \
    "SELECT bool_and(success AND result = 't') AND count(*) = 2
       FROM run_command_on_workers(\$\$SELECT pg_get_viewdef('order_mgmt.kpi_daily') LIKE '%MATERIALIZED%'
              AND (SELECT l.lanname = 'plpgsql' FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
                    WHERE p.oid = 'order_mgmt.process_dfg(timestamptz, timestamptz)'::regprocedure)\$\$)"
check_up "... the data are intact, the tables still distributed, without calling distribute() again" \
    "SELECT ($DATA) = '$BEFORE'
        AND (SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'order_mgmt.%') = 24"
check_up "... and the BI views answer through the coordinator" \
    "SELECT (SELECT count(*) FROM order_mgmt.order_facts) = 4
        AND (SELECT sum(orders) FROM order_mgmt.kpi_daily WHERE day IS NULL AND channel = 'all') = 4
        AND (SELECT sum(cases) FROM order_mgmt.process_variants) = 4
        AND (SELECT count(*) FROM order_mgmt.process_dfg) > 0
        AND order_mgmt.process_map_dot() LIKE '%4 cases%'"
# 0.11.0: no statistics object on the distributed order_lines (Citus 13
# refuses statistics on expressions of a distributed table), the rest as on
# a single node
out=$(qu -c "ALTER EXTENSION order_mgmt UPDATE TO '0.11.0'" 2>&1) && ok=1 || ok=0
result "ALTER EXTENSION order_mgmt UPDATE TO '0.11.0' on the same distributed install" "$ok" "$out"
check_up "... 0.11.0 everywhere, the data intact, order_overview and open_order_risk answer through the coordinator" \
    "SELECT (SELECT bool_and(success AND result = '0.11.0') AND count(*) = 2
               FROM run_command_on_workers(\$\$SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'\$\$))
        AND ($DATA) = '$BEFORE'
        AND (SELECT count(*) FROM order_mgmt.order_overview WHERE jsonb_array_length(shipments) > 0) = 4
        AND (SELECT count(*) FROM order_mgmt.open_order_risk) = 0
        AND NOT EXISTS (SELECT 1 FROM pg_statistic_ext WHERE stxname = 'order_lines_open_stat')"
# 0.12.0: one lock and one mark per order and transaction; the same
# lifecycle in one transaction ends as it does call by call
out=$(qu -c "ALTER EXTENSION order_mgmt UPDATE TO '0.12.0'" 2>&1) && ok=1 || ok=0
result "ALTER EXTENSION order_mgmt UPDATE TO '0.12.0' on the same distributed install" "$ok" "$out"
ok=1; out=""
for one in "UP-5:--single-transaction" "UP-6:"; do
    out+=$(psql -qXAt -v ON_ERROR_STOP=1 -h "$DIR" -p "$COORD" -U postgres -d "$UP" ${one#*:} \
               -v ref="'${one%%:*}'" -v t1="$T1" -v t2="$T2" -f <(printf '%s\n' "$LIFECYCLE") 2>&1 >/dev/null) || ok=0
done
result "... an order taken from placement to a return in one transaction, another call by call" "$ok" "$out"
check_up "... 0.12.0 everywhere, and both orders end alike: statuses, lines and the same events" \
    "WITH o AS (SELECT external_ref AS ref, o.status, o.return_status, o.payment_status,
                       (SELECT string_agg(concat_ws(':', l.qty_shipped, l.qty_delivered, l.qty_returned), ',' ORDER BY l.line_no)
                          FROM order_mgmt.order_lines l WHERE l.order_id = o.order_id) AS lines,
                       -- (the same events: event_id is not in order across Citus nodes)
                       (SELECT string_agg(e.event_type, ',' ORDER BY e.event_type)
                          FROM order_mgmt.events e WHERE e.order_id = o.order_id) AS events
                  FROM order_mgmt.orders o WHERE external_ref IN ('UP-5', 'UP-6'))
     SELECT (SELECT bool_and(success AND result = '0.12.0') AND count(*) = 2
               FROM run_command_on_workers(\$\$SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'\$\$))
        AND (SELECT count(*) FROM o) = 2
        AND (SELECT count(DISTINCT (status, return_status, payment_status, lines, events)) FROM o) = 1
        AND (SELECT events FROM o LIMIT 1) LIKE '%shipment.delivered%'"
# 0.13.0: the process views read each case's steps by its key (case_path,
# case_trace and dfg_bins, new aggregates each worker creates in its update)
out=$(qu -c "ALTER EXTENSION order_mgmt UPDATE TO '0.13.0'" 2>&1) && ok=1 || ok=0
result "ALTER EXTENSION order_mgmt UPDATE TO '0.13.0' on the same distributed install" "$ok" "$out"
check_up "... 0.13.0 everywhere, the variants and the graph of its 6 orders answer through the coordinator" \
    "SELECT (SELECT bool_and(success AND result = '0.13.0') AND count(*) = 2
               FROM run_command_on_workers(\$\$SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'\$\$))
        AND (SELECT sum(cases) FROM order_mgmt.process_variants) = 6
        AND (SELECT sum(frequency) FROM order_mgmt.process_dfg WHERE activity IS NULL) = 6
        AND (SELECT count(*) FROM order_mgmt.process_traces) = 6
        AND order_mgmt.process_map_dot() LIKE '%6 cases%'"

# --- retention ------------------------------------------------------------
q "$COORD" -c "SELECT order_mgmt.hold_order($B, 'manual', 'after the drain')" >/dev/null
for i in $(seq 100); do
    [ "$(q "$COORD" -c "SELECT events_behind FROM order_mgmt.consumer_lag WHERE consumer = 'order_mgmt.relay'")" = 0 ] && break
    sleep 0.1
done
TOTAL=$(q "$COORD" -c "SELECT count(*) FROM order_mgmt.events")
BEHIND=$(q "$COORD" -c "SELECT events_behind FROM order_mgmt.consumer_lag WHERE consumer = 'citus-test'")
out=$(q "$COORD" -c "SELECT order_mgmt.purge_events('0 seconds')" 2>&1) || true
check "purge_events deletes, shard by shard, every event that every consumer acknowledged ($out of $TOTAL; $BEHIND not acknowledged by citus-test)" \
    "SELECT '$out' = ($TOTAL - $BEHIND)::text AND $BEHIND > 0
        AND (SELECT count(*) FROM order_mgmt.events) = $BEHIND"
[ "$(drain citus-test | wc -l)" = "$BEHIND" ] && ok=1 || ok=0
result "... and the consumer still gets those $BEHIND" "$ok" ""

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
