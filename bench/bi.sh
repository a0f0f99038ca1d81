#!/usr/bin/env bash
# bench/bi.sh: the BI views on a history of N orders (default 1,000,000,
# bench/history.sh), each view's query time next to one sequential scan of
# order_mgmt.events on the same data.  Prints a Markdown table (median of
# RUNS runs after one warm-up, min-max) for bench/RESULTS.md.
#
# Each query runs as EXPLAIN (ANALYZE, TIMING OFF): the whole result is
# computed (every column of every row), nothing is sent to the client.
# Two baselines: the plain scan (SELECT * FROM events: no column is even
# read) and a scan that reads every column of every row (a filter on the
# last column, db_role, that keeps every row).  Ratios are against the
# second, the honest "one pass over the log".
#
#   N=1000000 DB=om_bi_bench RUNS=3 WORK_MEM=256MB JIT=off bash bench/bi.sh
#   REUSE=1 skips the generator and uses DB as it is.
#   VIEWS="open_order_risk order_overview" measures only those views (and
#   the two scans); JIT=on measures with the server's default JIT settings.
source "$(dirname "$0")/../tools/common.sh"
set -euo pipefail
N=${N:-1000000}
DB=${DB:-om_bi_bench}
RUNS=${RUNS:-3}
WORK_MEM=${WORK_MEM:-256MB}
JIT=${JIT:-off}
[ "${OM_SETUP:-0}" = 1 ] && om_setup
if [ "${REUSE:-0}" != 1 ]; then
    OM_SETUP=0 bash "$ROOT/bench/history.sh" "$DB" "$N"
fi
export PGOPTIONS="-c client_min_messages=warning -c work_mem=$WORK_MEM -c jit=$JIT"

# ms NAME SQL: RUNS timings (ms) of SQL, after a warm-up run
ms() {
    local i out
    psql -X -At -d "$DB" -c "EXPLAIN (ANALYZE, TIMING OFF) $2" >/dev/null
    for i in $(seq "$RUNS"); do
        out=$(psql -X -At -d "$DB" -c "EXPLAIN (ANALYZE, TIMING OFF) $2")
        echo "$out" | sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p'
    done
}

# row NAME SQL ROWS-SQL: one line of the table
declare -A MEDIAN
row() {
    local name=$1 sql=$2 rows t med min max err
    # a query that fails is a row of the table too (the error, not a time)
    if ! err=$(psql -X -At -d "$DB" -c "EXPLAIN $sql" 2>&1 >/dev/null) || \
       ! err=$(psql -X -At -d "$DB" -c "EXPLAIN (ANALYZE, TIMING OFF) $sql" 2>&1 >/dev/null); then
        printf '| %s | - | fails: %s | | |\n' "$name" "$(echo "$err" | head -1)"
        return 0
    fi
    t=$(ms "$name" "$sql" | sort -n)
    med=$(echo "$t" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    min=$(echo "$t" | head -1)
    max=$(echo "$t" | tail -1)
    rows=$(psql -X -At -d "$DB" -c "$3")
    MEDIAN[$name]=$med
    local ratio="-"
    [ -n "${MEDIAN[scan]:-}" ] && ratio=$(echo "scale=2; $med / ${MEDIAN[scan]}" | bc)
    printf '| %s | %s | %.0f | %.0f-%.0f | %s |\n' "$name" "$rows" "$med" "$min" "$max" "$ratio"
}

facts=$(psql -X -At -d "$DB" -c "SELECT format('%s orders, %s events (%s), events_case_idx %s, %s open orders',
    (SELECT count(*) FROM order_mgmt.orders), (SELECT count(*) FROM order_mgmt.events),
    pg_size_pretty(pg_table_size('order_mgmt.events')),
    pg_size_pretty(pg_relation_size('order_mgmt.events_case_idx')),
    (SELECT count(*) FROM order_mgmt.orders o JOIN order_mgmt.statuses s
        ON s.entity = 'order' AND s.status = o.status
       AND s.class IN ('pending', 'held', 'open', 'shipping')))")
echo "Data: $facts. work_mem=$WORK_MEM, jit=$JIT, median of $RUNS runs after a warm-up."
echo
echo "| query | rows | median ms | min-max ms | x scan |"
echo "|---|---:|---:|---:|---:|"
row "plain scan" "SELECT * FROM order_mgmt.events" "SELECT count(*) FROM order_mgmt.events"
row scan "SELECT * FROM order_mgmt.events WHERE db_role IS DISTINCT FROM '-'" \
    "SELECT count(*) FROM order_mgmt.events"
for v in ${VIEWS:-event_log order_facts kpi_daily process_steps process_variants process_dfg \
         open_order_risk inventory_availability orders_at_risk}; do
    row "$v" "SELECT * FROM order_mgmt.$v" "SELECT count(*) FROM order_mgmt.$v"
done
[ -n "${VIEWS:-}" ] && exit 0
row "process_map_dot()" "SELECT order_mgmt.process_map_dot()" "SELECT 1"
row "process_map_dot(last 30 days)" \
    "SELECT order_mgmt.process_map_dot(now() - interval '30 days', NULL)" "SELECT 1"
row "export_xes(last 7 days)" "SELECT order_mgmt.export_xes(now() - interval '7 days', NULL)" \
    "SELECT count(*) FROM order_mgmt.event_log WHERE case_placed_at >= now() - interval '7 days'"
