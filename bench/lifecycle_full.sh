#!/usr/bin/env bash
# The whole lifecycle of an order (issue 10), one order per transaction:
# place_order (2 lines), confirm_order, release_to_warehouse, start_picking,
# pack_shipment, label_shipment, dispatch_shipment, two checkpoints
# (in_transit, out_for_delivery) and the delivered checkpoint.  Compared
# with the same writes (order, lines, stock and movements, shipment and its
# lines, checkpoints, status changes, every event row) done with no checks:
#   bare fn  - in one PL/pgSQL call (one round trip, cached plans),
#   bare SQL - sent statement by statement from the client (35 statements).
# order_mgmt sends its 11 calls from the client (11 round trips); for the
# record, the same 11 calls from one PL/pgSQL call are measured too, and
# "floor fn": bare fn's statements into copies of order_mgmt's tables with
# their CHECKs, indexes and foreign keys (no trigger, no rule).
# pgbench -M prepared at 1, 4, 8 clients, synchronous_commit off and on,
# median of RUNS runs of SECS seconds, the three workloads alternating run by
# run in one cluster; 10,000 customers and 1,000 skus chosen at random.
# Uses the OM_* variables of tools/common.sh, e.g.
#   OM_DESTDIR=/opt/om-fulfil OM_PGPORT=5540 OM_PGDATA=/tmp/om-fulfil/data OM_SOCK=/tmp/om-fulfil bash bench/lifecycle_full.sh
# BENCH_SETUP=0 reuses a running cluster; SECS, RUNS, CLIENTS, SYNCS, NOTIFY
# (order_mgmt.notify_mode, default off: CPU cost; SPEC.md section 10) may be set.
source "$(dirname "$0")/../tools/common.sh"
set +e
SECS=${SECS:-10}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-"1 4 8"}
NOTIFY=${NOTIFY:-off}
DB=om_bench_lifecycle
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
INSERT INTO order_mgmt.calendars (calendar_id, tz) VALUES ('CAL', 'Europe/Berlin');
INSERT INTO order_mgmt.warehouses (warehouse_id, name, tz, calendar_id, zone)
    VALUES ('W', 'main', 'Europe/Berlin', 'CAL', 'DE');
INSERT INTO order_mgmt.services (service_id, carrier, handling_min, handling_max, transit_min,
                                 transit_max, transit_calendar_id, delivery_calendar_id)
    VALUES ('STD', 'DHL', 0, 1, 1, 3, 'CAL', 'CAL');
INSERT INTO order_mgmt.zone_rules (country, zone) VALUES ('DE', 'DE');
SELECT count(order_mgmt.receive_stock('W', 'S' || g, 1000000000)) FROM generate_series(1, 1000) g;

-- the baseline: the same rows, written by hand, no checks, no triggers
CREATE TABLE bare_orders (order_id bigserial PRIMARY KEY, customer_id text, channel text,
    status text, payment_status text, currency char(3), total numeric(14,2), ship_to jsonb,
    ship_to_country char(2), allow_backorder boolean, placed_at timestamptz DEFAULT now(),
    updated_at timestamptz);
CREATE TABLE bare_lines (order_id bigint, line_no int, sku text, qty int, unit_price numeric(14,2),
    warehouse_id text, qty_reserved int DEFAULT 0, qty_shipped int DEFAULT 0,
    qty_delivered int DEFAULT 0, PRIMARY KEY (order_id, line_no));
CREATE TABLE bare_stock (warehouse_id text, sku text, on_hand int, reserved int,
    PRIMARY KEY (warehouse_id, sku));
CREATE TABLE bare_movements (movement_id bigserial PRIMARY KEY, warehouse_id text, sku text,
    kind text, on_hand_delta int, reserved_delta int, order_id bigint, line_no int, actor text,
    created_at timestamptz DEFAULT now());
CREATE TABLE bare_events (seq bigserial, order_id bigint, entity text, entity_id bigint,
    event_type text, from_status text, to_status text, actor text, reason text, payload jsonb,
    tx xid8 DEFAULT pg_current_xact_id(), event_id uuid DEFAULT gen_random_uuid(),
    occurred_at timestamptz DEFAULT clock_timestamp(), PRIMARY KEY (order_id, seq));
CREATE TABLE bare_shipments (order_id bigint, shipment_id bigserial, warehouse_id text, status text,
    service_id text, carrier text, tracking_number text UNIQUE, weight_g int, length_mm int,
    width_mm int, height_mm int, package_count int, dispatched_at timestamptz,
    delivered_at timestamptz, last_checkpoint_id bigint, PRIMARY KEY (order_id, shipment_id));
CREATE TABLE bare_shipment_lines (order_id bigint, shipment_id bigint, line_no int, qty int,
    PRIMARY KEY (order_id, shipment_id, line_no));
CREATE TABLE bare_tracking (order_id bigint, tracking_event_id bigserial, shipment_id bigint,
    carrier_event_id text UNIQUE, code text, occurred_at timestamptz, actor text,
    PRIMARY KEY (order_id, tracking_event_id));
INSERT INTO bare_stock SELECT 'W', 'S' || g, 1000000000, 0 FROM generate_series(1, 1000) g;

VACUUM ANALYZE;
SQL


# the same writes with no checks, statement by statement from the client
cat >"$TMP/bare.sql" <<'SQL'
\set c random(1, 10000)
\set s1 random(1, 1000)
\set s2 random(1, 1000)
BEGIN;
INSERT INTO bare_orders (customer_id, channel, status, payment_status, currency, total, ship_to, ship_to_country, allow_backorder) VALUES ('C' || :c, 'web', 'placed', 'unpaid', 'EUR', 3, '{"country": "DE", "postal_code": "10115"}', 'DE', false) RETURNING order_id AS id \gset
INSERT INTO bare_lines (order_id, line_no, sku, qty, unit_price) VALUES (:id, 1, 'S' || :s1, 1, 1), (:id, 2, 'S' || :s2, 2, 1);
INSERT INTO bare_events (order_id, entity, entity_id, event_type, to_status, actor) VALUES (:id, 'order', :id, 'order.placed', 'placed', current_user);
INSERT INTO bare_events (order_id, entity, entity_id, event_type, actor, payload) VALUES (:id, 'order', :id, 'order.credit_checked', current_user, '{"passed": true}');
UPDATE bare_stock SET reserved = reserved + 1 WHERE warehouse_id = 'W' AND sku = 'S' || :s1;
INSERT INTO bare_movements (warehouse_id, sku, kind, on_hand_delta, reserved_delta, order_id, line_no, actor) VALUES ('W', 'S' || :s1, 'reserve', 0, 1, :id, 1, current_user);
UPDATE bare_stock SET reserved = reserved + 2 WHERE warehouse_id = 'W' AND sku = 'S' || :s2;
INSERT INTO bare_movements (warehouse_id, sku, kind, on_hand_delta, reserved_delta, order_id, line_no, actor) VALUES ('W', 'S' || :s2, 'reserve', 0, 2, :id, 2, current_user);
UPDATE bare_lines SET qty_reserved = qty, warehouse_id = 'W' WHERE order_id = :id;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, actor) VALUES (:id, 'line', 1, 'line.reserved', current_user), (:id, 'line', 2, 'line.reserved', current_user);
UPDATE bare_orders SET status = 'confirmed', updated_at = now() WHERE order_id = :id;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'order', :id, 'order.confirmed', 'placed', 'confirmed', current_user);
UPDATE bare_orders SET status = 'processing', updated_at = now() WHERE order_id = :id;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'order', :id, 'order.released', 'confirmed', 'processing', current_user);
INSERT INTO bare_shipments (order_id, warehouse_id, status) VALUES (:id, 'W', 'pending') RETURNING shipment_id AS sh \gset
INSERT INTO bare_shipment_lines VALUES (:id, :sh, 1, 1), (:id, :sh, 2, 2);
INSERT INTO bare_events (order_id, entity, entity_id, event_type, to_status, actor) VALUES (:id, 'shipment', :sh, 'shipment.created', 'pending', current_user);
UPDATE bare_shipments SET status = 'picking' WHERE order_id = :id AND shipment_id = :sh;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'shipment', :sh, 'shipment.picking_started', 'pending', 'picking', current_user);
UPDATE bare_shipments SET status = 'packed', weight_g = 1200, length_mm = 400, width_mm = 300, height_mm = 200, package_count = 1 WHERE order_id = :id AND shipment_id = :sh;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'shipment', :sh, 'shipment.packed', 'picking', 'packed', current_user);
UPDATE bare_shipments SET status = 'labelled', carrier = 'DHL', service_id = 'STD', tracking_number = 'T' || :id WHERE order_id = :id AND shipment_id = :sh;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'shipment', :sh, 'shipment.labelled', 'packed', 'labelled', current_user);
UPDATE bare_shipments SET status = 'dispatched', dispatched_at = now() WHERE order_id = :id AND shipment_id = :sh;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'shipment', :sh, 'shipment.dispatched', 'labelled', 'dispatched', current_user);
UPDATE bare_stock SET on_hand = on_hand - 1, reserved = reserved - 1 WHERE warehouse_id = 'W' AND sku = 'S' || :s1;
INSERT INTO bare_movements (warehouse_id, sku, kind, on_hand_delta, reserved_delta, order_id, line_no, actor) VALUES ('W', 'S' || :s1, 'ship', -1, -1, :id, 1, current_user);
UPDATE bare_stock SET on_hand = on_hand - 2, reserved = reserved - 2 WHERE warehouse_id = 'W' AND sku = 'S' || :s2;
INSERT INTO bare_movements (warehouse_id, sku, kind, on_hand_delta, reserved_delta, order_id, line_no, actor) VALUES ('W', 'S' || :s2, 'ship', -2, -2, :id, 2, current_user);
UPDATE bare_lines SET qty_shipped = qty, qty_reserved = 0 WHERE order_id = :id;
UPDATE bare_orders SET status = 'shipped', updated_at = now() WHERE order_id = :id;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'order', :id, 'order.shipped', 'processing', 'shipped', current_user);
INSERT INTO bare_tracking (order_id, shipment_id, carrier_event_id, code, occurred_at, actor) VALUES (:id, :sh, :id || '-1', 'in_transit', now(), current_user) RETURNING tracking_event_id AS t \gset
INSERT INTO bare_events (order_id, entity, entity_id, event_type, actor) VALUES (:id, 'shipment', :sh, 'shipment.checkpoint', current_user);
UPDATE bare_shipments SET status = 'in_transit', last_checkpoint_id = :t WHERE order_id = :id AND shipment_id = :sh;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'shipment', :sh, 'shipment.in_transit', 'dispatched', 'in_transit', current_user);
INSERT INTO bare_tracking (order_id, shipment_id, carrier_event_id, code, occurred_at, actor) VALUES (:id, :sh, :id || '-2', 'out_for_delivery', now(), current_user) RETURNING tracking_event_id AS t \gset
INSERT INTO bare_events (order_id, entity, entity_id, event_type, actor) VALUES (:id, 'shipment', :sh, 'shipment.checkpoint', current_user);
UPDATE bare_shipments SET status = 'out_for_delivery', last_checkpoint_id = :t WHERE order_id = :id AND shipment_id = :sh;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'shipment', :sh, 'shipment.out_for_delivery', 'in_transit', 'out_for_delivery', current_user);
INSERT INTO bare_tracking (order_id, shipment_id, carrier_event_id, code, occurred_at, actor) VALUES (:id, :sh, :id || '-3', 'delivered', now(), current_user) RETURNING tracking_event_id AS t \gset
INSERT INTO bare_events (order_id, entity, entity_id, event_type, actor) VALUES (:id, 'shipment', :sh, 'shipment.checkpoint', current_user);
UPDATE bare_shipments SET status = 'delivered', delivered_at = now(), last_checkpoint_id = :t WHERE order_id = :id AND shipment_id = :sh;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'shipment', :sh, 'shipment.delivered', 'out_for_delivery', 'delivered', current_user);
UPDATE bare_lines SET qty_delivered = qty WHERE order_id = :id;
UPDATE bare_orders SET status = 'delivered', updated_at = now() WHERE order_id = :id;
INSERT INTO bare_events (order_id, entity, entity_id, event_type, from_status, to_status, actor) VALUES (:id, 'order', :id, 'order.delivered', 'shipped', 'delivered', current_user);
COMMIT;
SQL

# ... and the very same statements in one PL/pgSQL call (one round trip,
# cached plans): :x becomes the variable x, "RETURNING a AS x \gset" INTO x
{
    echo 'CREATE FUNCTION bare_lifecycle(c int, s1 int, s2 int) RETURNS bigint LANGUAGE plpgsql AS $f$'
    echo 'DECLARE id bigint; sh bigint; t bigint;'
    echo 'BEGIN'
    grep -vE '^(\\set|BEGIN;|COMMIT;)' "$TMP/bare.sql" \
        | sed -E 's/RETURNING ([a-z_]+) AS ([a-z]+) \\gset$/RETURNING \1 INTO \2;/; s/:([a-z][a-z0-9]*)/\1/g'
    echo 'RETURN id;'
    echo 'END $f$;'
} >"$TMP/barefn_def.sql"
psql -qX -v ON_ERROR_STOP=1 -d $DB -f "$TMP/barefn_def.sql" >/dev/null || { cat "$TMP/barefn_def.sql"; exit 1; }

cat >"$TMP/barefn.sql" <<'SQL'
\set c random(1, 10000)
\set s1 random(1, 1000)
\set s2 random(1, 1000)
SELECT bare_lifecycle(:c, :s1, :s2);
SQL

# for the record (not a target): order_mgmt's 11 calls made from one
# PL/pgSQL call, which shows what the round trips cost and what the checks do
psql -qX -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
CREATE FUNCTION om_lifecycle(c int, s1 int, s2 int) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE id bigint; sh bigint;
BEGIN
    id := order_mgmt.place_order('C' || c, jsonb_build_array(jsonb_build_object('sku', 'S' || s1, 'qty', 1),
                                                             jsonb_build_object('sku', 'S' || s2, 'qty', 2)),
                                 '{"country": "DE", "postal_code": "10115"}');
    PERFORM order_mgmt.confirm_order(id);
    PERFORM order_mgmt.release_to_warehouse(id);
    SELECT shipment_id INTO sh FROM order_mgmt.shipments WHERE order_id = id;
    PERFORM order_mgmt.start_picking(sh);
    PERFORM order_mgmt.pack_shipment(sh, 1200, 400, 300, 200);
    PERFORM order_mgmt.label_shipment(sh, 'DHL', 'STD', 'T' || id);
    PERFORM order_mgmt.dispatch_shipment(sh);
    PERFORM order_mgmt.record_tracking_event('T' || id, id || '-1', 'in_transit', now());
    PERFORM order_mgmt.record_tracking_event('T' || id, id || '-2', 'out_for_delivery', now());
    PERFORM order_mgmt.record_tracking_event('T' || id, id || '-3', 'delivered', now());
    RETURN id;
END $f$;
SQL
cat >"$TMP/omfn.sql" <<'SQL'
\set c random(1, 10000)
\set s1 random(1, 1000)
\set s2 random(1, 1000)
SELECT om_lifecycle(:c, :s1, :s2);
SQL

# tps SCRIPT CLIENTS SYNC -> prints the tps of one run
tps() {
    PGOPTIONS="-c synchronous_commit=$3 -c order_mgmt.notify_mode=$NOTIFY" \
        pgbench -n -M prepared -c "$2" -j "$2" -T "$SECS" -f "$1" $DB 2>"$TMP/err" \
        | awk '/^tps = / {printf "%.0f\n", $3}'
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
spread() { sort -n | awk 'NR == 1 {min = $1} {max = $1} END {print min "-" max}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }

# one warm-up run of each
for w in "$ROOT/bench/lifecycle_om.sql" "$TMP/bare.sql" "$TMP/barefn.sql" "$TMP/omfn.sql"; do SECS=3 tps "$w" 1 off >/dev/null; done

# floor fn: bare fn's statements into copies of order_mgmt's tables (LIKE
# ... INCLUDING ALL: its CHECKs, defaults and indexes, plus its foreign keys)
# with no trigger: what the declared schema costs before any rule runs.
# The copies start from the rows the warm-up wrote (plans made on empty
# tables would scan them sequentially).
psql -qX -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
CREATE SCHEMA floor;
CREATE TABLE floor.bare_orders (LIKE order_mgmt.orders INCLUDING ALL,
    FOREIGN KEY (customer_id) REFERENCES order_mgmt.customers,
    FOREIGN KEY (warehouse_id) REFERENCES order_mgmt.warehouses);
CREATE TABLE floor.bare_lines (LIKE order_mgmt.order_lines INCLUDING ALL,
    FOREIGN KEY (order_id) REFERENCES floor.bare_orders ON DELETE CASCADE,
    FOREIGN KEY (sku) REFERENCES order_mgmt.products,
    FOREIGN KEY (warehouse_id) REFERENCES order_mgmt.warehouses);
CREATE TABLE floor.bare_stock (LIKE order_mgmt.stock_levels INCLUDING ALL,
    FOREIGN KEY (warehouse_id) REFERENCES order_mgmt.warehouses,
    FOREIGN KEY (sku) REFERENCES order_mgmt.products);
CREATE TABLE floor.bare_movements (LIKE order_mgmt.inventory_movements INCLUDING ALL,
    FOREIGN KEY (warehouse_id) REFERENCES order_mgmt.warehouses,
    FOREIGN KEY (sku) REFERENCES order_mgmt.products);
CREATE TABLE floor.bare_events (LIKE order_mgmt.events INCLUDING ALL);
CREATE TABLE floor.bare_shipments (LIKE order_mgmt.shipments INCLUDING ALL,
    FOREIGN KEY (order_id) REFERENCES floor.bare_orders ON DELETE CASCADE,
    FOREIGN KEY (warehouse_id) REFERENCES order_mgmt.warehouses);
CREATE TABLE floor.bare_shipment_lines (LIKE order_mgmt.shipment_lines INCLUDING ALL,
    FOREIGN KEY (order_id, shipment_id) REFERENCES floor.bare_shipments ON DELETE CASCADE,
    FOREIGN KEY (order_id, line_no) REFERENCES floor.bare_lines);
CREATE TABLE floor.bare_tracking (LIKE order_mgmt.tracking_events INCLUDING ALL,
    FOREIGN KEY (order_id, shipment_id) REFERENCES floor.bare_shipments ON DELETE CASCADE);
INSERT INTO floor.bare_orders SELECT * FROM order_mgmt.orders;
INSERT INTO floor.bare_lines SELECT * FROM order_mgmt.order_lines;
INSERT INTO floor.bare_stock SELECT * FROM order_mgmt.stock_levels;
INSERT INTO floor.bare_movements SELECT * FROM order_mgmt.inventory_movements;
INSERT INTO floor.bare_events SELECT * FROM order_mgmt.events;
INSERT INTO floor.bare_shipments SELECT * FROM order_mgmt.shipments;
INSERT INTO floor.bare_shipment_lines SELECT * FROM order_mgmt.shipment_lines;
INSERT INTO floor.bare_tracking SELECT * FROM order_mgmt.tracking_events;
ANALYZE;
SQL
sed -E 's/FUNCTION bare_lifecycle/FUNCTION floor_lifecycle/; s/\b(bare_[a-z_]+) /floor.\1 /g' \
    "$TMP/barefn_def.sql" >"$TMP/floorfn_def.sql"
psql -qX -v ON_ERROR_STOP=1 -d $DB -f "$TMP/floorfn_def.sql" >/dev/null || { cat "$TMP/floorfn_def.sql"; exit 1; }
sed 's/bare_lifecycle/floor_lifecycle/' "$TMP/barefn.sql" >"$TMP/floorfn.sql"
SECS=3 tps "$TMP/floorfn.sql" 1 off >/dev/null
[ -s "$TMP/err" ] && sed 's/^/# pgbench: /' "$TMP/err" | tail -5

REPORT="$OUT/lifecycle_full-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
echo "# whole lifecycle, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# PostgreSQL $(psql -qXAt -d $DB -c 'SHOW server_version'), order_mgmt $(psql -qXAt -d $DB -c "SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'"), notify_mode=$NOTIFY, ${RUNS}x${SECS}s per cell"
echo "# rows per order: order_mgmt $(psql -qXAt -d $DB -c "SELECT (SELECT count(*) FROM order_mgmt.events) / count(*) FROM order_mgmt.orders") events, bare $(psql -qXAt -d $DB -c "SELECT (SELECT count(*) FROM bare_events) / count(*) FROM bare_orders") events"
printf "%-8s %7s %20s %20s %20s %9s %8s %20s %8s %20s %8s %9s\n" sync_commit clients "order_mgmt tps" "bare SQL tps" \
    "bare fn tps" "vs SQL" "vs fn" "om in 1 call tps" "1call/fn" "floor fn tps" "floor/fn" "floor/SQL"
for sync in ${SYNCS:-off on}; do
    for c in $CLIENTS; do
        : >"$TMP/om"; : >"$TMP/bare"; : >"$TMP/barefn"; : >"$TMP/omfn"; : >"$TMP/floorfn"
        for r in $(seq "$RUNS"); do
            tps "$ROOT/bench/lifecycle_om.sql" "$c" "$sync" >>"$TMP/om"
            tps "$TMP/bare.sql" "$c" "$sync" >>"$TMP/bare"
            tps "$TMP/barefn.sql" "$c" "$sync" >>"$TMP/barefn"
            tps "$TMP/omfn.sql" "$c" "$sync" >>"$TMP/omfn"
            tps "$TMP/floorfn.sql" "$c" "$sync" >>"$TMP/floorfn"
        done
        om=$(median <"$TMP/om"); bare=$(median <"$TMP/bare"); fn=$(median <"$TMP/barefn")
        omfn=$(median <"$TMP/omfn"); floorfn=$(median <"$TMP/floorfn")
        printf "%-11s %4s %7s (%11s) %7s (%11s) %7s (%11s) %8s %8s %7s (%11s) %8s %7s (%11s) %8s %9s\n" "$sync" "$c" \
            "$om" "$(spread <"$TMP/om")" "$bare" "$(spread <"$TMP/bare")" "$fn" "$(spread <"$TMP/barefn")" \
            "$(ratio "$om" "$bare")" "$(ratio "$om" "$fn")" "$omfn" "$(spread <"$TMP/omfn")" \
            "$(ratio "$omfn" "$fn")" "$floorfn" "$(spread <"$TMP/floorfn")" "$(ratio "$floorfn" "$fn")" \
            "$(ratio "$floorfn" "$bare")"
    done
done
# where the time goes: per-call latency of one client, synchronous_commit off
echo "# per call, 1 client, sync off (pgbench -r, ms):"
PGOPTIONS="-c synchronous_commit=off -c order_mgmt.notify_mode=$NOTIFY" \
    pgbench -n -M prepared -c 1 -T "$SECS" -r -f "$ROOT/bench/lifecycle_om.sql" $DB 2>/dev/null \
    | sed -n '/statement latencies/,$p' | grep -vE '\\set|statement latencies' \
    | awk '{printf "#   %6.3f  %s\n", $1, substr($0, index($0, $3), 70)}'
echo "# orders run through the lifecycle: $(psql -qXAt -d $DB -c 'SELECT count(*) FROM order_mgmt.orders'), all delivered: $(psql -qXAt -d $DB -c "SELECT bool_and(status = 'delivered') FROM order_mgmt.orders")"
} | tee "$REPORT"
[ -s "$TMP/err" ] && sed 's/^/# pgbench: /' "$TMP/err" | tail -5
echo "saved in $REPORT"
