#!/usr/bin/env bash
# Placement + confirmation throughput (issue 3): place_order (2 lines) +
# confirm_order (credit check, reservation of both lines, events) in one
# transaction, against a bare-SQL baseline doing the same inserts and stock
# updates with no checks, no triggers, no locks beyond the UPDATEs.
# pgbench at 1, 4, 8 clients, median of RUNS runs of SECS seconds each, with
# synchronous_commit=off and at the default (on); the two workloads run side
# by side (alternating) in one cluster.  Uses the OM_* variables of
# tools/common.sh, e.g.
#   OM_DESTDIR=/opt/om-wt3 OM_PGPORT=5503 OM_PGDATA=/tmp/om-wt3/data OM_SOCK=/tmp/om-wt3 bash bench/placement.sh
# BENCH_SETUP=0 reuses a running cluster; SECS, RUNS, CLIENTS, SYNCS, NOTIFY
# (order_mgmt.notify_mode, default commit) can be overridden.
source "$(dirname "$0")/../tools/common.sh"
set +e
SECS=${SECS:-10}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-"1 4 8"}
NOTIFY=${NOTIFY:-commit}
DB=om_bench_placement
if [ "${BENCH_SETUP:-1}" = 1 ]; then om_setup; fi
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
psql -qX -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
CREATE EXTENSION order_mgmt;
INSERT INTO order_mgmt.customers (customer_id, name, payment_terms, credit_limit)
SELECT 'C' || g, 'customer ' || g, 'credit', 1e11 FROM generate_series(1, 10000) g;
INSERT INTO order_mgmt.products (sku, name, list_price)
SELECT 'S' || g, 'product ' || g, 1 FROM generate_series(1, 1000) g;
INSERT INTO order_mgmt.warehouses (warehouse_id, name) VALUES ('W', 'main');
SELECT count(order_mgmt.receive_stock('W', 'S' || g, 1000000000)) FROM generate_series(1, 1000) g;

-- the baseline: the same rows, written by hand, no checks
CREATE TABLE bare_orders (order_id bigserial PRIMARY KEY, customer_id text, channel text,
    status text, payment_status text, currency char(3), total numeric(14,2), ship_to jsonb,
    ship_to_country char(2), allow_backorder boolean, placed_at timestamptz DEFAULT now());
CREATE TABLE bare_lines (order_id bigint, line_no int, sku text, qty int, unit_price numeric(14,2),
    warehouse_id text, qty_reserved int DEFAULT 0, PRIMARY KEY (order_id, line_no));
CREATE TABLE bare_stock (warehouse_id text, sku text, on_hand int, reserved int,
    PRIMARY KEY (warehouse_id, sku));
CREATE TABLE bare_movements (movement_id bigserial PRIMARY KEY, warehouse_id text, sku text,
    kind text, reserved_delta int, order_id bigint, line_no int, actor text,
    created_at timestamptz DEFAULT now());
CREATE TABLE bare_events (seq bigserial, order_id bigint, entity text, entity_id bigint,
    event_type text, from_status text, to_status text, actor text, payload jsonb,
    tx xid8 DEFAULT pg_current_xact_id(), event_id uuid DEFAULT gen_random_uuid(),
    occurred_at timestamptz DEFAULT clock_timestamp(), PRIMARY KEY (order_id, seq));
INSERT INTO bare_stock SELECT 'W', 'S' || g, 1000000000, 0 FROM generate_series(1, 1000) g;
-- the same writes in one server-side call (one round trip, cached plans)
CREATE FUNCTION bare_place_confirm(c int, s1 int, s2 int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE id bigint;
BEGIN
    INSERT INTO bare_orders (customer_id, channel, status, payment_status, currency, total, ship_to, ship_to_country, allow_backorder)
    VALUES ('C' || c, 'web', 'placed', 'unpaid', 'EUR', 3, '{"country": "DE", "postal_code": "10115"}', 'DE', false) RETURNING order_id INTO id;
    INSERT INTO bare_lines (order_id, line_no, sku, qty, unit_price) VALUES (id, 1, 'S' || s1, 1, 1), (id, 2, 'S' || s2, 2, 1);
    INSERT INTO bare_events (order_id, entity, entity_id, event_type, to_status, actor) VALUES (id, 'order', id, 'order.placed', 'placed', current_user);
    INSERT INTO bare_events (order_id, entity, entity_id, event_type, actor, payload) VALUES (id, 'order', id, 'order.credit_checked', current_user, '{"passed": true}');
    UPDATE bare_stock SET reserved = reserved + 1 WHERE warehouse_id = 'W' AND sku = 'S' || s1;
    INSERT INTO bare_movements (warehouse_id, sku, kind, reserved_delta, order_id, line_no, actor) VALUES ('W', 'S' || s1, 'reserve', 1, id, 1, current_user);
    UPDATE bare_lines SET qty_reserved = 1, warehouse_id = 'W' WHERE order_id = id AND line_no = 1;
    INSERT INTO bare_events (order_id, entity, entity_id, event_type, actor) VALUES (id, 'line', 1, 'line.reserved', current_user);
    UPDATE bare_stock SET reserved = reserved + 2 WHERE warehouse_id = 'W' AND sku = 'S' || s2;
    INSERT INTO bare_movements (warehouse_id, sku, kind, reserved_delta, order_id, line_no, actor) VALUES ('W', 'S' || s2, 'reserve', 2, id, 2, current_user);
    UPDATE bare_lines SET qty_reserved = 2, warehouse_id = 'W' WHERE order_id = id AND line_no = 2;
    INSERT INTO bare_events (order_id, entity, entity_id, event_type, actor) VALUES (id, 'line', 2, 'line.reserved', current_user);
    UPDATE bare_orders SET status = 'confirmed' WHERE order_id = id;
    INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (id, 'order', id, 'order.confirmed', 'placed', 'confirmed', current_user);
    RETURN id;
END $$;
VACUUM ANALYZE;
SQL

# bare SQL (bench/placement_bare.sql), the same writes: order + 2 lines +
# placed event; 2 stock updates + 2 movements, 2 reserved events + 1 credit
# event, status update + confirmed event; bare fn: the same in one call
cat >"$TMP/barefn.sql" <<'SQL'
\set c random(1, 10000)
\set s1 random(1, 1000)
\set s2 random(1, 1000)
SELECT bare_place_confirm(:c, :s1, :s2);
SQL

# tps SCRIPT CLIENTS SYNC -> prints the tps of one run
tps() {
    PGOPTIONS="-c synchronous_commit=$3 -c order_mgmt.notify_mode=$NOTIFY" \
        pgbench -n -M prepared -c "$2" -j "$2" -T "$SECS" -f "$1" $DB 2>"$TMP/err" \
        | awk '/^tps = / {printf "%.0f\n", $3}'
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
spread() { sort -n | awk 'NR == 1 {min = $1} {max = $1} END {print min "-" max}'; }

REPORT="$OUT/placement-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
echo "# placement + confirmation, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# PostgreSQL $(psql -qXAt -d $DB -c 'SHOW server_version'), order_mgmt $(psql -qXAt -d $DB -c "SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'"), notify_mode=$NOTIFY, ${RUNS}x${SECS}s per cell"
# bare SQL: 15 statements sent by the client; bare fn: the same in one
# PL/pgSQL call (the fairer CPU comparison: one round trip like order_mgmt)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
printf "%-8s %7s %20s %20s %20s %9s %8s\n" sync_commit clients "order_mgmt tps" "bare SQL tps" "bare fn tps" "vs SQL" "vs fn"
for sync in ${SYNCS:-off on}; do
    for c in $CLIENTS; do
        : >"$TMP/om"; : >"$TMP/bare"; : >"$TMP/barefn"
        for r in $(seq "$RUNS"); do
            tps "$ROOT/bench/placement_om.sql" "$c" "$sync" >>"$TMP/om"
            tps "$ROOT/bench/placement_bare.sql" "$c" "$sync" >>"$TMP/bare"
            tps "$TMP/barefn.sql" "$c" "$sync" >>"$TMP/barefn"
        done
        om=$(median <"$TMP/om"); bare=$(median <"$TMP/bare"); fn=$(median <"$TMP/barefn")
        printf "%-11s %4s %7s (%11s) %7s (%11s) %7s (%11s) %8s %8s\n" "$sync" "$c" \
            "$om" "$(spread <"$TMP/om")" "$bare" "$(spread <"$TMP/bare")" "$fn" "$(spread <"$TMP/barefn")" \
            "$(ratio "$om" "$bare")" "$(ratio "$om" "$fn")"
    done
done
echo "# orders placed by the bench: $(psql -qXAt -d $DB -c 'SELECT count(*) FROM order_mgmt.orders'), all confirmed: $(psql -qXAt -d $DB -c "SELECT bool_and(status = 'confirmed') FROM order_mgmt.orders")"
} | tee "$REPORT"
[ -s "$TMP/err" ] && sed 's/^/# pgbench: /' "$TMP/err" | tail -5
echo "saved in $REPORT"
