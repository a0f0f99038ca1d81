#!/usr/bin/env bash
# order_mgmt on Citus (issue 15): a coordinator and two workers on loopback,
# built from a Citus-enabled private copy of PostgreSQL 15.
#
#   bash tools/citus-test.sh          # run the checks (TAP), always stop the nodes
#   bash tools/citus-test.sh start    # set up the three nodes and leave them running
#   bash tools/citus-test.sh stop     # stop them
#
# Citus is not a Debian package and nothing of it lives in this repository:
# OM_CITUS_DESTDIR (default /opt/om-citus) is a copy of /usr/lib/postgresql/15
# and /usr/share/postgresql/15 (as tools/common.sh om_build makes) into which
# Citus was installed with `make install DESTDIR=...` (see CITUS-NOTES.md).
# Without it the script prints "skipped: Citus is not installed" and exits 0.
#
# Nodes: coordinator on OM_CITUS_PORT (default 5530), workers on the next two
# ports, data in OM_CITUS_DIR (default /tmp/om-citus), database om_citus,
# user postgres, trust on loopback only.  order_mgmt is built from this tree
# and installed into the same private copy (OM_CITUS_NO_BUILD=1 keeps the one
# installed there).  Checks print TAP; the last line is "N passed, N failed".
# TODO lines (the known gaps of issue 15, still run) count in neither.
set -euo pipefail

CITUS_DESTDIR=${OM_CITUS_DESTDIR:-/opt/om-citus}
BASE_PORT=${OM_CITUS_PORT:-5530}
DIR=${OM_CITUS_DIR:-/tmp/om-citus}
DB=om_citus
MODE=${1:-test}

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

# One node: a fresh cluster with Citus preloaded, listening on 127.0.0.1
# (the other nodes connect over TCP) and on the socket directory.
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
shared_buffers = 256MB
max_prepared_transactions = 100
max_worker_processes = 32
wal_level = logical
citus.log_distributed_deadlock_detection = off
CONF
    # the relay worker runs on the coordinator only (README "Scaling out")
    [ "$name" = coord ] && echo "order_mgmt.relay_databases = '$DB'" >>"$DIR/$name/postgresql.conf"
    su postgres -c "$PGBIN/pg_ctl -D $DIR/$name -l $DIR/$name.log -w start" >/dev/null
    psql -qX -h "$DIR" -p "$port" -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null
    q "$port" -c "CREATE EXTENSION citus" >/dev/null
}

# Three nodes, workers registered with the coordinator, order_mgmt created
# on the coordinator (Citus propagates CREATE EXTENSION to the workers).
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

# What order_mgmt.distribute() (issue 15) must do, done by hand with today's
# schema: the settings and the order that work on Citus 13.0.5 (see
# CITUS-NOTES.md).  Reference tables first (master data, stock), then orders
# and every order-scoped table co-located with it.  The three UNIQUEs on
# business keys cannot be distributed (they lack order_id) and are dropped:
# idempotency is lost until the lookup tables of issue 15 exist.
distribute_by_hand() {
    q "$COORD" >/dev/null <<'SQL'
SET search_path = order_mgmt;
SET citus.enable_unsafe_triggers = on;
SET citus.enable_local_reference_table_foreign_keys = off;
SET citus.shard_count = 8;
SET citus.multi_shard_modify_mode = 'sequential';
ALTER TABLE orders DROP CONSTRAINT orders_external_ref_key;
ALTER TABLE shipments DROP CONSTRAINT shipments_tracking_number_key;
ALTER TABLE payments DROP CONSTRAINT payments_psp_reference_key;
SELECT create_reference_table(t) FROM unnest(ARRAY['customers', 'products', 'calendars',
    'calendar_exceptions', 'warehouses', 'services', 'lanes', 'zone_rules', 'transitions',
    'stock', 'inventory_movements']) t;
SELECT create_distributed_table('orders', 'order_id');
SELECT create_distributed_table(t, 'order_id', colocate_with => 'orders')
  FROM unnest(ARRAY['order_lines', 'shipments', 'shipment_lines', 'returns', 'return_lines',
                    'order_holds', 'payments', 'events']) t;
SELECT truncate_local_data_after_distributing_table('transitions');
SQL
}

# Master data and a few orders, inserted through the coordinator.
seed() {
    q "$COORD" >/dev/null <<'SQL'
SET search_path = order_mgmt;
INSERT INTO customers (customer_id, name, payment_terms, credit_limit)
VALUES ('CR', 'credit', 'credit', 100000000);
INSERT INTO products (sku, name, list_price) VALUES ('A', 'a', 10);
INSERT INTO warehouses (warehouse_id, name) VALUES ('W', 'w');
INSERT INTO orders (order_id, customer_id, currency, total, ship_to, ship_to_country)
SELECT g, 'CR', 'EUR', 10, '{"country": "DE"}', 'DE' FROM generate_series(1, 40) g;
INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price)
SELECT g, 1, 'A', 1, 10 FROM generate_series(1, 40) g;
SQL
}

# TAP.  ok: a check of what works today.  todo: a known gap of issue 15,
# still run, reported as a TODO line and counted in neither total.
N=0
PASS=0
FAIL=0
TODO=0
LOG=$(mktemp -d)
result() {   # result KIND DESCRIPTION SUCCEEDED OUTPUT
    N=$((N + 1))
    local line="$N - $2"
    if [ "$1" = todo ]; then
        TODO=$((TODO + 1))
        line="$line # TODO issue 15"
    fi
    if [ "$3" = 1 ]; then
        echo "ok $line"
        [ "$1" = todo ] || PASS=$((PASS + 1))
    else
        echo "not ok $line"
        [ "$1" = todo ] || FAIL=$((FAIL + 1))
        printf '%s\n' "$4" | head -5 | sed 's/^/#   /'
    fi
}
# check KIND DESCRIPTION SQL: the last line printed must be "t".
check() {
    local out ok=0
    out=$(q "$COORD" <<<"$3" 2>&1) && [ "$(printf '%s\n' "$out" | tail -1)" = t ] && ok=1
    result "$1" "$2" "$ok" "$out"
}
# fails KIND DESCRIPTION SQLSTATE SQL: the SQL must fail with SQLSTATE, raised
# on a worker (Citus adds "while executing command on" to its context).
fails() {
    local out ok=0
    if ! out=$(q "$COORD" -v VERBOSITY=verbose <<<"$4" 2>&1) \
       && printf '%s' "$out" | grep -q "ERROR:  $3:" \
       && printf '%s' "$out" | grep -q "while executing command on 127.0.0.1"; then
        ok=1
    fi
    result "$1" "$2" "$ok" "$out"
}
# runs KIND DESCRIPTION SQL: the SQL must succeed.
runs() {
    local out ok=0
    out=$(q "$COORD" <<<"$3" 2>&1) && ok=1
    result "$1" "$2" "$ok" "$out"
}
# the port of the worker holding order_id's shard
node_of() {
    q "$COORD" -c "SELECT nodeport FROM pg_dist_shard_placement
                    WHERE shardid = get_shard_id_for_distribution_column('order_mgmt.orders', $1)"
}

case $MODE in
stop)
    stop_nodes
    exit 0
    ;;
start)
    build
    setup
    echo "coordinator: psql -h $DIR -p $COORD -U postgres $DB   (workers: -p $W1, -p $W2)"
    echo "not distributed yet: CALL order_mgmt.distribute() or the SQL of distribute_by_hand in $0"
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

echo "== Citus: $(q "$COORD" -c "SELECT citus_version()" | cut -d' ' -f1-2), coordinator $COORD, workers $W1 $W2"
check ok "two workers are registered and active" \
    "SELECT count(*) = 2 FROM pg_dist_node WHERE groupid > 0 AND isactive AND noderole = 'primary'"
check ok "CREATE EXTENSION order_mgmt on the coordinator created it on both workers" \
    "SELECT bool_and(success AND result = (SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'))
       FROM run_command_on_workers(\$\$SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'\$\$)"

distribute_by_hand
check ok "11 reference tables and 9 order-scoped tables co-located with orders" \
    "SELECT count(*) FILTER (WHERE partmethod = 'n') = 11
        AND count(*) FILTER (WHERE partmethod = 'h' AND colocationid =
              (SELECT colocationid FROM pg_dist_partition
                WHERE logicalrelid = 'order_mgmt.orders'::regclass)) = 9
       FROM pg_dist_partition WHERE logicalrelid::text LIKE 'order_mgmt.%'"
check ok "every shard of orders carries the lifecycle trigger" \
    "SELECT bool_and(success AND result = '4')
       FROM run_command_on_workers(\$\$SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
              WHERE c.relname ~ '^orders_[0-9]+\$' AND t.tgname ~ '^order_mgmt_lifecycle_'\$\$)"
seed
check ok "orders and lines inserted through the coordinator land on both workers" \
    "SELECT count(DISTINCT p.nodeport) = 2 AND count(*) = 40
       FROM order_mgmt.orders o
       JOIN pg_dist_shard_placement p
         ON p.shardid = get_shard_id_for_distribution_column('order_mgmt.orders', o.order_id)"

fails ok "an illegal move through the coordinator fails with OM001 raised on a worker" \
    OM001 \
    "UPDATE order_mgmt.orders SET status = 'shipped' WHERE order_id = 1"
check ok "... and changed nothing" "SELECT status = 'placed' FROM order_mgmt.orders WHERE order_id = 1"

runs ok "a legal move (placed -> on_hold) through the coordinator, with SET LOCAL propagated" \
    "SET citus.propagate_set_commands = 'local';
     BEGIN;
     SET LOCAL order_mgmt.actor = 'alice';
     SET LOCAL order_mgmt.reason = 'address check';
     UPDATE order_mgmt.orders SET status = 'on_hold' WHERE order_id = 2;
     COMMIT;"
check ok "... the worker's hold trigger wrote the co-located hold row with the propagated actor and reason" \
    "SELECT o.status = 'on_hold' AND o.held_from = 'placed' AND h.placed_by = 'alice'
            AND h.reason = 'address check'
       FROM order_mgmt.orders o JOIN order_mgmt.order_holds h USING (order_id) WHERE order_id = 2"

# two orders whose shards are on different workers
A=3
B=$(q "$COORD" -c "SELECT order_id FROM order_mgmt.orders o JOIN pg_dist_shard_placement p
        ON p.shardid = get_shard_id_for_distribution_column('order_mgmt.orders', o.order_id)
      WHERE o.order_id > 3 AND p.nodeport <> $(node_of $A) ORDER BY 1 LIMIT 1")
runs ok "one transaction moving orders on both workers commits (2PC) with notify_mode off on the workers" \
    "SET citus.propagate_set_commands = 'local';
     BEGIN;
     SET LOCAL order_mgmt.notify_mode = 'off';
     UPDATE order_mgmt.orders SET status = 'on_hold' WHERE order_id = $A;
     UPDATE order_mgmt.orders SET status = 'on_hold' WHERE order_id = $B;
     COMMIT;"
check ok "... both moves are there" \
    "SELECT count(*) = 2 FROM order_mgmt.orders WHERE order_id IN ($A, $B) AND status = 'on_hold'"

# 8 concurrent sessions through the coordinator: hold and release orders 10..40
cat >"$LOG/hold.sql" <<'SQL'
\set id random(10, 40)
SELECT order_mgmt.hold_order(:id, 'manual', 'bench') AS h \gset
SELECT order_mgmt.release_hold(:id, :h);
SQL
out=$(pgbench -n -h "$DIR" -p "$COORD" -U postgres -c 8 -j 2 -t 25 -f "$LOG/hold.sql" "$DB" 2>&1) \
    && ! printf '%s' "$out" | grep -qiE 'aborted|error' && ok=1 || ok=0
result ok "8 concurrent sessions hold and release orders through the coordinator" "$ok" "$out"
check ok "... every hold was released and the orders are back to placed" \
    "WITH h AS (SELECT count(*) = 200 AND bool_and(released_at IS NOT NULL) AS ok
                  FROM order_mgmt.order_holds WHERE reason = 'bench'),
          o AS (SELECT bool_and(status = 'placed') AS ok FROM order_mgmt.orders WHERE order_id >= 10)
     SELECT h.ok AND o.ok FROM h, o"

echo "# known gaps of issue 15 (run, reported as TODO, counted in neither total):"
check todo "status events reach the distributed events table (today: the worker's local copy)" \
    "SELECT count(*) > 0 FROM order_mgmt.events WHERE order_id IN (2, $A, $B)"
check todo "emit_event on the coordinator reaches the distributed events table" \
    "SELECT count(*) > 0 FROM order_mgmt.events WHERE event_type = 'hold.placed'"
runs todo "place_order works on the distributed orders (today: orders_external_ref_key is gone)" \
    "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 1}]', '{\"country\": \"DE\"}',
                                   external_ref => 'EDI-1')"
check todo "place_order is idempotent on external_ref (lookup table distributed by the key)" \
    "SELECT order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 1}]', '{\"country\": \"DE\"}',
                                   external_ref => 'EDI-2')
          = order_mgmt.place_order('CR', '[{\"sku\": \"A\", \"qty\": 1}]', '{\"country\": \"DE\"}',
                                   external_ref => 'EDI-2')"
runs todo "receive_stock works (today: multi-shard FOR UPDATE of backordered orders)" \
    "SELECT order_mgmt.receive_stock('W', 'A', 100)"
runs todo "confirm_order works (today: relcache callback slots, sequential mode, NOTIFY in 2PC)" \
    "SELECT order_mgmt.confirm_order(5)"
runs todo "a worker backend loads every order_mgmt cache (today: out of relcache_callback_list slots)" \
    "UPDATE order_mgmt.orders SET status = 'confirmed' WHERE order_id = 6"
runs todo "a 2PC transaction with notify_mode = commit commits (no NOTIFY inside distributed transactions)" \
    "BEGIN;
     UPDATE order_mgmt.products SET name = 'a' WHERE sku = 'A';
     UPDATE order_mgmt.orders SET status = 'on_hold' WHERE order_id = 7;
     COMMIT;"
q "$COORD" -c "SELECT order_mgmt.set_status('order', 8, 'on_hold', 'fraud check')" >/dev/null 2>&1 || true
check todo "set_status' reason (set_config in PL/pgSQL) reaches the worker's hold trigger" \
    "SELECT reason = 'fraud check' FROM order_mgmt.order_holds WHERE order_id = 8"
runs todo "estimate_order_delivery in a multi-shard query (today: distributed query from a query on a shard)" \
    "SELECT count(*) FROM order_mgmt.orders o, LATERAL order_mgmt.estimate_order_delivery(o.order_id) e"
# a worker session that has loaded the graph must see an edge added on the coordinator
P=$(node_of 9)
out=$(psql -qXAt -h "$DIR" -p "$P" -U postgres -d "$DB" 2>&1 <<SQL
SET search_path = order_mgmt;
UPDATE orders SET status = 'on_hold' WHERE order_id = 9;
\! psql -qX -h $DIR -p $COORD -U postgres -d $DB -c "INSERT INTO order_mgmt.transitions (entity, from_status, to_status, activity) VALUES ('order', 'on_hold', 'rejected', 'rejected')"
UPDATE orders SET status = 'rejected' WHERE order_id = 9;
SQL
) && ! printf '%s' "$out" | grep -q ERROR && ok=1 || ok=0
result todo "a new transitions edge reaches worker sessions (today: the shard's trigger invalidates the shard, not the cached table)" "$ok" "$out"
check todo "a consumer fetches every event of every shard (fetch_events over shards)" \
    "SELECT count(*) > 0 FROM order_mgmt.fetch_events('citus-test')"

echo "# $TODO todo (known gaps of issue 15, see CITUS-NOTES.md)"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
