#!/usr/bin/env bash
# How far below the one-call baseline of bench/placement.sh the declared
# schema alone puts any implementation (issue 9's target is >= 0.5x of it).
#
# Four workloads, alternating run by run, 1 client by default:
# - bare SQL: placement.sh's client-side baseline (bench/placement_bare.sql);
# - bare fn:  placement.sh's bare_place_confirm (plain tables, primary keys only);
# - floor fn: the very same 15 writes into copies of order_mgmt's tables made
#   with LIKE ... INCLUDING ALL (its CHECKs, defaults and indexes) plus its
#   foreign keys to the real master data, and no trigger: what keeping the
#   schema's declared integrity costs before any rule of the engine runs;
# - order_mgmt: place_order + confirm_order, as in placement.sh.
# Uses the database of bench/placement.sh (created with a 1-second run of it
# when missing) and the OM_* variables of tools/common.sh; BENCH_SETUP=1
# starts a fresh cluster first.  SECS, RUNS, CLIENTS, SYNC can be overridden.
source "$(dirname "$0")/../tools/common.sh"
set +e
SECS=${SECS:-10}
RUNS=${RUNS:-5}
CLIENTS=${CLIENTS:-1}
SYNC=${SYNC:-off}
DB=om_bench_placement
if [ "${BENCH_SETUP:-0}" = 1 ]; then om_setup; fi
if [ "$(psql -qXAt -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = 0 ]; then
    SECS=1 RUNS=1 CLIENTS=1 SYNCS=off BENCH_SETUP=0 bash "$ROOT/bench/placement.sh" >/dev/null
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

psql -qX -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS floor CASCADE;
CREATE SCHEMA floor;
CREATE TABLE floor.orders (LIKE order_mgmt.orders INCLUDING ALL,
    FOREIGN KEY (customer_id) REFERENCES order_mgmt.customers,
    FOREIGN KEY (warehouse_id) REFERENCES order_mgmt.warehouses);
CREATE TABLE floor.order_lines (LIKE order_mgmt.order_lines INCLUDING ALL,
    FOREIGN KEY (order_id) REFERENCES floor.orders ON DELETE CASCADE,
    FOREIGN KEY (sku) REFERENCES order_mgmt.products,
    FOREIGN KEY (warehouse_id) REFERENCES order_mgmt.warehouses);
CREATE TABLE floor.events (LIKE order_mgmt.events INCLUDING ALL);
CREATE TABLE floor.stock_levels (LIKE order_mgmt.stock_levels INCLUDING ALL,
    FOREIGN KEY (warehouse_id) REFERENCES order_mgmt.warehouses,
    FOREIGN KEY (sku) REFERENCES order_mgmt.products);
CREATE TABLE floor.inventory_movements (LIKE order_mgmt.inventory_movements INCLUDING ALL,
    FOREIGN KEY (warehouse_id) REFERENCES order_mgmt.warehouses,
    FOREIGN KEY (sku) REFERENCES order_mgmt.products);
INSERT INTO floor.stock_levels (warehouse_id, sku, on_hand, reserved)
SELECT warehouse_id, sku, on_hand, 0 FROM order_mgmt.stock_levels;
-- start from the rows order_mgmt has (statistics and index sizes alike:
-- plans made on empty tables would scan them sequentially forever)
INSERT INTO floor.orders SELECT * FROM order_mgmt.orders;
INSERT INTO floor.order_lines SELECT * FROM order_mgmt.order_lines;
INSERT INTO floor.events SELECT * FROM order_mgmt.events;
INSERT INTO floor.inventory_movements SELECT * FROM order_mgmt.inventory_movements;
-- bare_place_confirm's statements, column for column, into floor.*
CREATE FUNCTION floor.place_confirm(c int, s1 int, s2 int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE id bigint;
BEGIN
    INSERT INTO floor.orders (customer_id, channel, status, payment_status, currency, total, ship_to, ship_to_country, allow_backorder)
    VALUES ('C' || c, 'web', 'placed', 'unpaid', 'EUR', 3, '{"country": "DE", "postal_code": "10115"}', 'DE', false) RETURNING order_id INTO id;
    INSERT INTO floor.order_lines (order_id, line_no, sku, qty, unit_price) VALUES (id, 1, 'S' || s1, 1, 1), (id, 2, 'S' || s2, 2, 1);
    INSERT INTO floor.events (order_id, entity, entity_id, event_type, to_status, actor) VALUES (id, 'order', id, 'order.placed', 'placed', current_user);
    INSERT INTO floor.events (order_id, entity, entity_id, event_type, actor, payload) VALUES (id, 'order', id, 'order.credit_checked', current_user, '{"passed": true}');
    UPDATE floor.stock_levels SET reserved = reserved + 1 WHERE warehouse_id = 'W' AND sku = 'S' || s1;
    INSERT INTO floor.inventory_movements (warehouse_id, sku, kind, reserved_delta, order_id, line_no, actor) VALUES ('W', 'S' || s1, 'reserve', 1, id, 1, current_user);
    UPDATE floor.order_lines SET qty_reserved = 1, warehouse_id = 'W' WHERE order_id = id AND line_no = 1;
    INSERT INTO floor.events (order_id, entity, entity_id, event_type, actor) VALUES (id, 'line', 1, 'line.reserved', current_user);
    UPDATE floor.stock_levels SET reserved = reserved + 2 WHERE warehouse_id = 'W' AND sku = 'S' || s2;
    INSERT INTO floor.inventory_movements (warehouse_id, sku, kind, reserved_delta, order_id, line_no, actor) VALUES ('W', 'S' || s2, 'reserve', 2, id, 2, current_user);
    UPDATE floor.order_lines SET qty_reserved = 2, warehouse_id = 'W' WHERE order_id = id AND line_no = 2;
    INSERT INTO floor.events (order_id, entity, entity_id, event_type, actor) VALUES (id, 'line', 2, 'line.reserved', current_user);
    UPDATE floor.orders SET status = 'confirmed' WHERE order_id = id;
    INSERT INTO floor.events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (id, 'order', id, 'order.confirmed', 'placed', 'confirmed', current_user);
    RETURN id;
END $$;
VACUUM ANALYZE;
SQL

for w in bare_place_confirm floor.place_confirm; do
    printf '\\set c random(1, 10000)\n\\set s1 random(1, 1000)\n\\set s2 random(1, 1000)\nSELECT %s(:c, :s1, :s2);\n' "$w" >"$TMP/$w.sql"
done
cat >"$TMP/om.sql" <<'SQL'
\set c random(1, 10000)
\set s1 random(1, 1000)
\set s2 random(1, 1000)
SELECT order_mgmt.confirm_order(order_mgmt.place_order('C' || :c, ('[{"sku": "S' || :s1 || '", "qty": 1}, {"sku": "S' || :s2 || '", "qty": 2}]')::jsonb, '{"country": "DE", "postal_code": "10115"}'::jsonb));
SQL

tps() {
    PGOPTIONS="-c synchronous_commit=$SYNC -c order_mgmt.notify_mode=off" \
        pgbench -n -M prepared -c "$2" -j "$2" -T "$SECS" -f "$1" $DB 2>>"$TMP/err" \
        | awk '/^tps = / {printf "%.0f\n", $3}'
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
spread() { sort -n | awk 'NR == 1 {min = $1} {max = $1} END {print min "-" max}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }

echo "# placement floor, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, PostgreSQL $(psql -qXAt -d $DB -c 'SHOW server_version'), order_mgmt $(psql -qXAt -d $DB -c "SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'"), synchronous_commit=$SYNC, ${RUNS}x${SECS}s"
printf "%7s %20s %20s %20s %20s %9s %9s %9s %9s\n" clients "bare SQL tps" "bare fn tps" "floor fn tps" "order_mgmt tps" \
    "floor/fn" "om/fn" "floor/SQL" "om/SQL"
for c in $CLIENTS; do
    : >"$TMP/sql"; : >"$TMP/fn"; : >"$TMP/floor"; : >"$TMP/om"
    for r in $(seq "$RUNS"); do
        tps "$ROOT/bench/placement_bare.sql" "$c" >>"$TMP/sql"
        tps "$TMP/bare_place_confirm.sql" "$c" >>"$TMP/fn"
        tps "$TMP/floor.place_confirm.sql" "$c" >>"$TMP/floor"
        tps "$TMP/om.sql" "$c" >>"$TMP/om"
    done
    sq=$(median <"$TMP/sql"); fn=$(median <"$TMP/fn"); fl=$(median <"$TMP/floor"); om=$(median <"$TMP/om")
    printf "%7s %7s (%11s) %7s (%11s) %7s (%11s) %7s (%11s) %9s %9s %9s %9s\n" "$c" \
        "$sq" "$(spread <"$TMP/sql")" "$fn" "$(spread <"$TMP/fn")" \
        "$fl" "$(spread <"$TMP/floor")" "$om" "$(spread <"$TMP/om")" \
        "$(ratio "$fl" "$fn")" "$(ratio "$om" "$fn")" "$(ratio "$fl" "$sq")" "$(ratio "$om" "$sq")"
done
echo "# floor rows: $(psql -qXAt -d $DB -c 'SELECT count(*) FROM floor.orders') orders, $(psql -qXAt -d $DB -c 'SELECT count(*) FROM floor.events') events"
[ -s "$TMP/err" ] && sed 's/^/# pgbench: /' "$TMP/err" | tail -5
exit 0
