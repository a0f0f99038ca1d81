#!/usr/bin/env bash
# bench/history.sh DB N: a history of N orders for the BI views, in a new
# database DB of the cluster of tools/common.sh (OM_* variables as usual).
#
#   API_ORDERS (default: N when N <= 20000, else 10000) orders are driven
#     through the real API (bench/history_api.sql), one transaction per
#     order, in CLIENTS (default 2) sessions; the API writes the clock
#     time, so these orders all happen during the run ("today").
#   The other N - API_ORDERS orders are written set-based
#     (bench/history_bulk.sql) with the same scenario draws and event
#     shapes, placed over the last DAYS (default 365) days with their own
#     clock: holds that last hours, deliveries days later (some late),
#     returns weeks later, orders still in flight today.  Through the API
#     1,000,000 orders would take hours on this 2-CPU machine (the rate of
#     the API part is printed), hence the set-based bulk.
#   bench/history_check.sql then proves every invariant on all of them.
#
# Example: OM_DESTDIR=/opt/om-bi OM_PGPORT=5550 OM_PGDATA=/tmp/om-bi/data \
#          OM_SOCK=/tmp/om-bi bash bench/history.sh om_history 1000000
# Set OM_SETUP=1 to build, install and start a fresh cluster first.
source "$(dirname "$0")/../tools/common.sh"
set -euo pipefail
DB=${1:?usage: bench/history.sh DB N}
N=${2:?usage: bench/history.sh DB N}
CLIENTS=${CLIENTS:-2}
DAYS=${DAYS:-365}
if [ -z "${API_ORDERS:-}" ]; then
    if [ "$N" -le 20000 ]; then API_ORDERS=$N; else API_ORDERS=10000; fi
fi
[ "$API_ORDERS" -le "$N" ] || API_ORDERS=$N
BULK=$((N - API_ORDERS))
[ "${OM_SETUP:-0}" = 1 ] && om_setup
export PGOPTIONS="-c client_min_messages=warning"
q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
now() { date +%s.%N; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q -c "CREATE EXTENSION order_mgmt"
q -f "$ROOT/bench/history_setup.sql"
q -f "$ROOT/bench/history_api.sql"

if [ "$BULK" -gt 0 ]; then
    echo "== $BULK orders set-based over $DAYS days"
    t0=$(now)
    q -v n="$BULK" -v days="$DAYS" -v first=1 -f "$ROOT/bench/history_bulk.sql"
    echo "   written in $(echo "$(now) - $t0" | bc) s"
else
    # no bulk: open the shelves through the API
    q -c "SELECT order_mgmt.receive_stock(w.warehouse_id, p.sku, 500, 'opening count')
            FROM order_mgmt.warehouses w, order_mgmt.products p WHERE p.sku LIKE 'SKU-%'" >/dev/null
fi

if [ "$API_ORDERS" -gt 0 ]; then
    echo "== $API_ORDERS orders through the API, $CLIENTS clients"
    t0=$(now)
    per=$(( (API_ORDERS + CLIENTS - 1) / CLIENTS ))
    pids=()
    for c in $(seq 0 $((CLIENTS - 1))); do
        from=$((10000000 + c * per + 1))
        to=$((10000000 + (c + 1) * per))
        [ $((c * per + per)) -gt "$API_ORDERS" ] && to=$((10000000 + API_ORDERS))
        [ "$from" -le "$to" ] || continue
        q -c "CALL bench_bi.api_run($from, $to)" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    secs=$(echo "$(now) - $t0" | bc)
    echo "   $API_ORDERS orders in $secs s: $(echo "scale=1; $API_ORDERS / $secs" | bc) orders/s" \
         "($(echo "scale=1; 1000000 / ($API_ORDERS / $secs) / 3600" | bc) h for 1,000,000)"
fi

q -c "VACUUM (ANALYZE)"
echo "== invariants"
checks=$(q -At -F ' | ' -f "$ROOT/bench/history_check.sql")
echo "$checks"
bad=$(echo "$checks" | awk -F' [|] ' '$2 != 0' | wc -l)
q -At -c "SELECT format('== %s orders, %s events, %s shipments, %s tracking events, %s holds, %s returns, %s payments',
                        (SELECT count(*) FROM order_mgmt.orders), (SELECT count(*) FROM order_mgmt.events),
                        (SELECT count(*) FROM order_mgmt.shipments), (SELECT count(*) FROM order_mgmt.tracking_events),
                        (SELECT count(*) FROM order_mgmt.order_holds),
                        (SELECT count(*) FROM order_mgmt.returns), (SELECT count(*) FROM order_mgmt.payments))"
[ "$bad" -eq 0 ] || { echo "history.sh: $bad invariant(s) violated" >&2; exit 1; }
