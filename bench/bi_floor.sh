#!/usr/bin/env bash
# bench/bi_floor.sh: how far issue 13's two BI targets are from what SPEC
# section 2's schema allows, on the history of bench/history.sh (run
# bench/bi.sh first; this script reads DB as it is).  Medians of RUNS runs
# after a warm-up, EXPLAIN (ANALYZE, TIMING OFF) as in bench/bi.sh.
#
# - Per-order views (target: within 3x of one scan of events): order_facts
#   next to the least it must read (bench/bi_floor_order_facts.sql), the
#   process views next to one pass over the steps (bench/bi_floor_steps.sql).
# - Open-order views (target: under 50 ms with indexes): open_order_risk
#   next to the least it must read through the tables' indexes
#   (bench/bi_floor_open_orders.sql), and next to a prototype reading a
#   table of open orders (bench/bi_floor_table.sql, scratch schema
#   bi_floor, dropped at the end unless KEEP=1), with what keeping that
#   table up to date would cost each writing transaction: bi_floor.refresh
#   of REFRESH open orders (default 2,000) in a transaction rolled back.
#
#   DB=om_bi_bench RUNS=5 bash bench/bi_floor.sh
source "$(dirname "$0")/../tools/common.sh"
set -euo pipefail
DB=${DB:-om_bi_bench}
RUNS=${RUNS:-5}
REFRESH=${REFRESH:-2000}
export PGOPTIONS="-c client_min_messages=warning -c work_mem=${WORK_MEM:-256MB} -c jit=off"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

# median SQL: median execution time (ms) of RUNS runs after a warm-up
median() {
    local i
    q -c "EXPLAIN (ANALYZE, TIMING OFF) $1" >/dev/null
    for i in $(seq "$RUNS"); do
        q -c "EXPLAIN (ANALYZE, TIMING OFF) $1" | sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p'
    done | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}'
}
ratio() { echo "scale=2; $1 / $2" | bc; }

q -f "$ROOT/bench/bi_floor_table.sql"
same=$(q -c "SELECT (SELECT count(*) FROM (TABLE order_mgmt.open_order_risk
                                           EXCEPT TABLE bi_floor.open_order_risk) a)
                  + (SELECT count(*) FROM (TABLE bi_floor.open_order_risk
                                           EXCEPT TABLE order_mgmt.open_order_risk) b)")
open=$(q -c "SELECT count(*) FROM bi_floor.open_orders")

scan=$(median "SELECT * FROM order_mgmt.events WHERE db_role IS DISTINCT FROM '-'")
facts=$(median "SELECT * FROM order_mgmt.order_facts")
facts_floor=$(median "$(cat "$ROOT/bench/bi_floor_order_facts.sql")")
variants=$(median "SELECT * FROM order_mgmt.process_variants")
dfg=$(median "SELECT * FROM order_mgmt.process_dfg")
steps_floor=$(median "$(cat "$ROOT/bench/bi_floor_steps.sql")")
risk=$(median "SELECT * FROM order_mgmt.open_order_risk")
risk_floor=$(median "$(cat "$ROOT/bench/bi_floor_open_orders.sql")")
risk_table=$(median "SELECT * FROM bi_floor.open_order_risk")
refresh=$(for i in $(seq "$RUNS"); do
    q <<SQL | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1
BEGIN;
\timing on
SELECT count(*) FROM (SELECT bi_floor.refresh(order_id)
                        FROM (SELECT order_id FROM bi_floor.open_orders LIMIT $REFRESH) o) r;
\timing off
ROLLBACK;
SQL
done | sort -n | awk -v n="$REFRESH" '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)] * 1000 / n}')
[ "${KEEP:-0}" = 1 ] || q -c "DROP SCHEMA bi_floor CASCADE"

echo "Open orders: $open; the prototype's open_order_risk differs from the view's in $same rows."
echo
echo "| query | median ms | |"
echo "|---|---:|---|"
echo "| scan of events (every column) | $scan | 1.00x scan |"
echo "| \`order_facts\` | $facts | $(ratio "$facts" "$scan")x scan |"
echo "| the least \`order_facts\` reads (bi_floor_order_facts.sql) | $facts_floor | $(ratio "$facts_floor" "$scan")x scan |"
echo "| \`process_variants\` | $variants | $(ratio "$variants" "$scan")x scan |"
echo "| \`process_dfg\` | $dfg | $(ratio "$dfg" "$scan")x scan |"
echo "| one pass over the steps (bi_floor_steps.sql) | $steps_floor | $(ratio "$steps_floor" "$scan")x scan |"
echo "| \`open_order_risk\` | $risk | |"
echo "| the least it reads through indexes (bi_floor_open_orders.sql) | $risk_floor | |"
echo "| the same view over a table of open orders (bi_floor_table.sql) | $risk_table | |"
echo "| keeping that table: \`bi_floor.refresh\` of one order, µs | $refresh | |"
