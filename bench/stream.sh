#!/usr/bin/env bash
# NOTIFY cost and relay latency (issue 12).  Throughput: the lifecycle
# workload (bench/lifecycle_a.sql: one shipment status change through the C
# trigger, with its event row) with order_mgmt.notify_mode = off, commit
# and relay, pgbench at 1, 8 and 16 clients, synchronous_commit on (the
# default, where the NOTIFY commit lock shows), median of RUNS runs of SECS
# seconds, the three modes alternating run by run.  Latency: commit ->
# listener, p50/p99, of relay mode idle and under 8 writers (and of commit
# mode under the same load, for reference).
#
# It starts its own cluster with order_mgmt in shared_preload_libraries, on
# port OM_BENCH_PORT (default OM_PGPORT + 3), and two identical databases:
# om_bench (no relay worker: off and commit) and om_bench_relay (served by
# the relay worker: relay).  A LISTEN session drains each database during
# the runs.  Needs the extension built and installed (tools/common.sh
# om_build, or SKIP_BUILD=1 when it is), e.g.
#   OM_DESTDIR=/opt/om-stream OM_PGPORT=5512 OM_PGDATA=/tmp/om-stream/data OM_SOCK=/tmp/om-stream bash bench/stream.sh
source "$(dirname "$0")/../tools/common.sh"
source "$ROOT/tools/relay_cluster.sh"
set +e
RUNS=${RUNS:-5}
SECS=${SECS:-10}
CLIENTS=${CLIENTS:-"1 8 16"}
PROBES=${PROBES:-500}
PORT=${OM_BENCH_PORT:-$((PGPORT + 3))}
DIR=/tmp/om-bench-stream-$PORT
[ "${SKIP_BUILD:-}" ] || { om_packages; om_build; }
relay_cluster_init "$DIR" "$PORT" om_bench_relay "synchronous_commit = on
jit = off"
relay_cluster_start "$DIR"
export PGHOST=$DIR PGPORT=$PORT
OUT=$(mktemp -d)
LISTENERS=()
cleanup() {
    for p in "${LISTENERS[@]}"; do kill "$p" 2>/dev/null; done
    relay_cluster_stop "$DIR"
    rm -rf "$OUT" "$DIR"
}
trap cleanup EXIT

for db in om_bench om_bench_relay; do
    psql -qX -d postgres -c "CREATE DATABASE $db"
    psql -qX -d $db -f "$ROOT/bench/lifecycle_setup.sql" >/dev/null
done
relay_cluster_wait_worker "$PORT" "$DIR" om_bench_relay || { echo "no relay worker"; exit 1; }
# a LISTEN session per database that only drains (as cheap as a listener gets)
for db in om_bench om_bench_relay; do
    /usr/bin/python3 -c '
import select, sys, psycopg2
c = psycopg2.connect(dbname=sys.argv[1]); c.autocommit = True
c.cursor().execute("LISTEN order_mgmt_events")
while True:
    select.select([c], [], [])
    c.poll(); c.notifies.clear()' $db &
    LISTENERS+=($!)
done

run() {  # mode clients
    local db=om_bench tps
    [ "$1" = relay ] && db=om_bench_relay
    psql -qX -d $db -c CHECKPOINT
    tps=$(PGOPTIONS="-c order_mgmt.notify_mode=$1" \
          pgbench -n -M prepared -T "$SECS" -c "$2" -j "$2" -f "$ROOT/bench/lifecycle_a.sql" $db 2>/dev/null |
          sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    echo "${1}_c$2 ${tps:-0}" >>"$OUT/tps"
}

echo "== throughput: RUNS=$RUNS SECS=$SECS clients $CLIENTS, $(nproc) cores, $(date -u '+%F %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
for c in $CLIENTS; do
    for i in $(seq "$RUNS"); do
        for mode in off commit relay; do
            run $mode "$c"
        done
    done
done
END=$(date -u '+%H:%M')
specs=()
for c in $CLIENTS; do
    specs+=("relay_c$c:off_c$c:>=0.9" "commit_c$c:off_c$c:info")
done
/usr/bin/python3 "$ROOT/bench/stats.py" "${specs[@]}" <"$OUT/tps"
echo "(throughput runs ended $END UTC, load $(cut -d' ' -f1-3 /proc/loadavg))"
psql -qX -d om_bench_relay -c "SELECT consumer, events_behind FROM order_mgmt.consumer_lag"

echo "== latency commit -> listener: $PROBES probes, one every 20 ms"
/usr/bin/python3 "$ROOT/bench/stream_latency.py" om_bench_relay relay "$PROBES" 20 | sed 's/^/idle:        /'
for mode in relay commit; do
    db=om_bench
    [ $mode = relay ] && db=om_bench_relay
    PGOPTIONS="-c order_mgmt.notify_mode=$mode" \
        pgbench -n -M prepared -T $((PROBES * 25 / 1000 + 10)) -c 8 -j 8 -f "$ROOT/bench/lifecycle_a.sql" $db \
        >"$OUT/load" 2>&1 &
    load=$!
    sleep 2
    /usr/bin/python3 "$ROOT/bench/stream_latency.py" $db $mode "$PROBES" 20 | sed 's/^/8 writers:   /'
    wait $load
    echo "             (load: $(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OUT/load") tps)"
done
