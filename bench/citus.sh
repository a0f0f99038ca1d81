#!/usr/bin/env bash
# Placement + confirmation (the workload of bench/placement.sh) three ways,
# issue 15:
#   base   : a single node running order_mgmt built from BASE (default: the
#            merge base of this branch and main), the revision before Citus
#   single : a single node running this tree (the Citus code present but
#            inactive: no citus extension in the database)
#   citus  : this tree on a Citus coordinator + 2 workers on loopback
#            (tools/citus-test.sh start), after CALL order_mgmt.distribute()
# base against single shows what the Citus code costs where Citus is
# absent (target: nothing); single against citus what distribution costs on
# this machine (all three nodes share its CPUs).  One workload runs at a
# time, alternating run by run; median of RUNS runs of SECS seconds.
# Then the status change through the C trigger (bench/lifecycle_a.sql),
# base against single: the event writer's Citus check on the hot path; and
# the server CPU per transaction of both workloads, base against single.
#
#   bash bench/citus.sh        # CLIENTS="1 8" RUNS=3 SECS=10; CITUS=0 skips the cluster
#
# Private installs and clusters: OM_BENCH_DIR (default /tmp/om-bench-citus),
# installs under /opt/om-bench-citus-{base,single}, ports 5580 (base) and 5581
# (single); the Citus nodes are tools/citus-test.sh's (OM_CITUS_DESTDIR,
# ports 5530-5532).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${SECS:-10}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-"1 8"}
CITUS=${CITUS:-1}
BASE=${BASE:-$(git -C "$ROOT" merge-base HEAD main)}
DIR=${OM_BENCH_DIR:-/tmp/om-bench-citus}
DB=om_bench
CDIR=/tmp/om-citus
mkdir -p "$DIR/base-src" && chown postgres:postgres "$DIR"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# node NAME SRC PORT: build SRC into its own install, start a fresh cluster
node() {
    (
        export OM_DESTDIR=/opt/om-bench-citus-$1 OM_PGPORT=$3 OM_PGDATA=$DIR/$1/data OM_SOCK=$DIR/$1
        mkdir -p "$OM_SOCK"
        cd "$2"
        source tools/common.sh
        om_build >/dev/null
        om_cluster >/dev/null
    )
}
rm -rf "$DIR/base-src" && mkdir -p "$DIR/base-src"
# (every file of BASE: git archive would leave out tools/, export-ignore)
GIT_INDEX_FILE=$TMP/index git -C "$ROOT" read-tree "$BASE"
GIT_INDEX_FILE=$TMP/index git -C "$ROOT" checkout-index -a --prefix="$DIR/base-src/"
node base "$DIR/base-src" 5580
node single "$ROOT" 5581

SETUP="
CREATE EXTENSION IF NOT EXISTS order_mgmt;
INSERT INTO order_mgmt.customers (customer_id, name, payment_terms, credit_limit)
SELECT 'C' || g, 'customer ' || g, 'credit', 1e11 FROM generate_series(1, 10000) g;
INSERT INTO order_mgmt.products (sku, name, list_price)
SELECT 'S' || g, 'product ' || g, 1 FROM generate_series(1, 1000) g;
INSERT INTO order_mgmt.warehouses (warehouse_id, name) VALUES ('W', 'main');
SELECT count(order_mgmt.receive_stock('W', 'S' || g, 1000000000)) FROM generate_series(1, 1000) g;
VACUUM ANALYZE;
"
# conn NAME: the psql/pgbench connection options of a workload
conn() {
    case $1 in
    base) echo "-h $DIR/base -p 5580 -U postgres" ;;
    single) echo "-h $DIR/single -p 5581 -U postgres" ;;
    citus) echo "-h $CDIR -p 5530 -U postgres" ;;
    esac
}
WORKLOADS="base single"
for w in base single; do
    psql -qX $(conn $w) -d postgres -c "CREATE DATABASE $DB" >/dev/null
done
if [ "$CITUS" = 1 ] && [ -f "${OM_CITUS_DESTDIR:-/opt/om-citus}/usr/lib/postgresql/15/lib/citus.so" ]; then
    bash "$ROOT/tools/citus-test.sh" start >/dev/null
    WORKLOADS="base single citus"   # in om_citus, the distributed database it made
fi
for w in $WORKLOADS; do
    d=$DB
    [ "$w" != citus ] || d=om_citus
    psql -qX -v ON_ERROR_STOP=1 $(conn $w) -d "$d" <<<"$SETUP" >/dev/null
done

# tps WORKLOAD CLIENTS -> the tps of one run (notify_mode off: the same
# work on all three; on Citus the writer never notifies)
tps() {
    local d=$DB
    [ "$1" != citus ] || d=om_citus
    PGOPTIONS="-c synchronous_commit=on -c order_mgmt.notify_mode=off" \
        pgbench -n -M prepared $(conn "$1") -c "$2" -j "$2" -T "$SECS" -f "$ROOT/bench/placement_om.sql" "$d" 2>"$TMP/err" \
        | awk '/^tps = / {printf "%.0f\n", $3}'
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
spread() { sort -n | awk 'NR == 1 {min = $1} {max = $1} END {print min "-" max}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }

echo "# place_order + confirm_order, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, base $(git -C "$ROOT" rev-parse --short "$BASE"), this tree $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo '+edits'), ${RUNS}x${SECS}s per cell, synchronous_commit on"
printf "%7s %20s %20s %20s %12s %12s\n" clients base single citus single/base citus/single
for c in $CLIENTS; do
    for w in $WORKLOADS; do : >"$TMP/$w"; done
    for r in $(seq "$RUNS"); do
        for w in $WORKLOADS; do tps "$w" "$c" >>"$TMP/$w"; done
    done
    b=$(median <"$TMP/base"); s=$(median <"$TMP/single"); x=- xs=- xr=-
    if [ -f "$TMP/citus" ]; then
        x=$(median <"$TMP/citus"); xs=$(spread <"$TMP/citus"); xr=$(ratio "$x" "$s")
    fi
    printf "%7s %7s (%11s) %7s (%11s) %7s (%11s) %12s %12s\n" "$c" \
        "$b" "$(spread <"$TMP/base")" "$s" "$(spread <"$TMP/single")" "$x" "$xs" \
        "$(ratio "$s" "$b")" "$xr"
done

# The status change through the C trigger (bench/lifecycle_a.sql, the (a)
# of bench/lifecycle.sh: one UPDATE of a shipment, its event row), base
# against single, synchronous_commit off (CPU-bound: what the Citus check
# in the event writer costs); LRUNS runs of 5 s, alternating.
LRUNS=${LRUNS:-5}
for w in base single; do
    psql -qX $(conn $w) -d postgres -c "CREATE DATABASE om_bench_lc" >/dev/null
    psql -qX $(conn $w) -d om_bench_lc -f "$ROOT/bench/lifecycle_setup.sql" >/dev/null
done
echo "# status change through the C trigger (bench/lifecycle_a.sql), ${LRUNS}x5s per cell, synchronous_commit off, notify_mode off"
printf "%7s %20s %20s %12s\n" clients base single single/base
for c in 1 8; do
    : >"$TMP/lbase"; : >"$TMP/lsingle"
    for r in $(seq "$LRUNS"); do
        for w in base single; do
            PGOPTIONS="-c synchronous_commit=off -c order_mgmt.notify_mode=off" \
                pgbench -n -M prepared $(conn $w) -c "$c" -j "$c" -T 5 -f "$ROOT/bench/lifecycle_a.sql" om_bench_lc 2>/dev/null \
                | awk '/^tps = / {printf "%.0f\n", $3}' >>"$TMP/l$w"
        done
    done
    b=$(median <"$TMP/lbase"); s=$(median <"$TMP/lsingle")
    printf "%7s %7s (%11s) %7s (%11s) %12s\n" "$c" "$b" "$(spread <"$TMP/lbase")" "$s" "$(spread <"$TMP/lsingle")" "$(ratio "$s" "$b")"
done

# Server CPU per transaction (user + system time of the cluster's processes,
# /proc, over a run of a fixed number of transactions at 1 client): less
# sensitive to other load on the machine than tps.
ticks() {
    local pm t=0
    pm=$(head -1 "$DIR/$1/data/postmaster.pid")
    for p in $pm $(pgrep -P "$pm"); do
        [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat")))
    done
    echo "$t"
}
cpu() {   # cpu WORKLOAD SCRIPT DB N -> microseconds of server CPU per transaction
    local before after
    before=$(ticks "$1")
    PGOPTIONS="-c synchronous_commit=off -c order_mgmt.notify_mode=off" \
        pgbench -n -M prepared $(conn "$1") -c 1 -t "$4" -f "$2" "$3" >/dev/null 2>&1
    after=$(ticks "$1")
    awk -v t=$((after - before)) -v n="$4" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f\n", t * 1e6 / hz / n}'
}
echo "# server CPU per transaction (us), 1 client, synchronous_commit off, median of ${LRUNS} runs"
printf "%-28s %20s %20s %12s\n" workload base single single/base
for spec in "place+confirm:$TMP/om.sql:$DB:2000" "status change:$ROOT/bench/lifecycle_a.sql:om_bench_lc:20000"; do
    IFS=: read -r label script d n <<<"$spec"
    : >"$TMP/cbase"; : >"$TMP/csingle"
    for r in $(seq "$LRUNS"); do
        for w in base single; do cpu "$w" "$script" "$d" "$n" >>"$TMP/c$w"; done
    done
    b=$(median <"$TMP/cbase"); s=$(median <"$TMP/csingle")
    printf "%-28s %7s (%11s) %7s (%11s) %12s\n" "$label" "$b" "$(spread <"$TMP/cbase")" "$s" "$(spread <"$TMP/csingle")" "$(ratio "$s" "$b")"
done

for w in $WORKLOADS; do
    d=$DB
    [ "$w" != citus ] || d=om_citus
    echo "# $w: $(psql -qXAt $(conn $w) -d "$d" -c "SELECT count(*) || ' orders, all confirmed: ' || bool_and(status = 'confirmed') FROM order_mgmt.orders")"
done
if [ -s "$TMP/err" ]; then sed 's/^/# pgbench: /' "$TMP/err" | tail -5; fi
for w in base single; do
    su postgres -c "/opt/om-bench-citus-$w/usr/lib/postgresql/15/bin/pg_ctl -D $DIR/$w/data -m fast -w stop" >/dev/null
done
[ "$CITUS" != 1 ] || bash "$ROOT/tools/citus-test.sh" stop
