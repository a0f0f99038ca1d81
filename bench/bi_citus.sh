#!/usr/bin/env bash
# bench/bi_citus.sh: the BI views through a Citus coordinator (issue 15,
# schema 0.10.0), for the record: tools/citus-test.sh start (coordinator +
# 2 workers on loopback, this tree, distribute()), the master data of
# citus-test.sh, ORDERS orders taken from placement to a refunded return by
# 8 pgbench sessions and the BI fixture, then each view and function timed
# through the coordinator (psql \timing, the whole result fetched; median
# of RUNS after a warm-up).  The nodes are stopped at the end.
#
#   ORDERS=200 RUNS=5 bash bench/bi_citus.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ORDERS=${ORDERS:-200}
RUNS=${RUNS:-5}
DIR=${OM_CITUS_DIR:-/tmp/om-citus}
PORT=${OM_CITUS_PORT:-5530}
export PATH=${OM_CITUS_DESTDIR:-/opt/om-citus}/usr/lib/postgresql/15/bin:$PATH
export PGOPTIONS="-c client_min_messages=warning"
q() { psql -qXAt -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d om_citus "$@"; }
TMP=$(mktemp -d)
trap 'bash "$ROOT/tools/citus-test.sh" stop; rm -rf "$TMP"' EXIT
bash "$ROOT/tools/citus-test.sh" start >/dev/null

# the SEED and LIFECYCLE scripts of tools/citus-test.sh
sed -n '/^SEED="$/,/^"$/p' "$ROOT/tools/citus-test.sh" | sed '1d;$d' >"$TMP/seed.sql"
q -f "$TMP/seed.sql" >/dev/null
{
    echo "SELECT quote_literal('BB-' || :client_id || '-' || random()) AS ref,"
    echo "       quote_literal(now() - interval '2 hours') AS t1, quote_literal(now() - interval '1 hour') AS t2 \\gset"
    sed -n "/^LIFECYCLE=\$(cat <<'SQL'$/,/^SQL$/p" "$ROOT/tools/citus-test.sh" | sed '1d;$d'
    echo "SELECT order_mgmt.refund_return(:r);"
} >"$TMP/lifecycle.sql"
pgbench -n -h "$DIR" -p "$PORT" -U postgres -c 8 -j 2 -t $((ORDERS / 8)) -f "$TMP/lifecycle.sql" om_citus \
    >"$TMP/pgbench.out" 2>&1
TODAY=$(q -c "SELECT (now() AT TIME ZONE 'Europe/Berlin')::date")
sed -E "/^UPDATE shipments SET estimated_delivery_latest/s/pg_temp\.today\(\)/'$TODAY'::date/" \
    "$ROOT/test/fixtures/bi_fixture.sql" | q >/dev/null 2>&1

echo "Citus $(q -c "SELECT citus_version()" | cut -d' ' -f2), coordinator + 2 workers on loopback:" \
     "$(q -c "SELECT count(*) FROM order_mgmt.orders") orders, $(q -c "SELECT count(*) FROM order_mgmt.events") events;" \
     "median of $RUNS runs after a warm-up, result fetched by psql."
echo
echo "| query | rows | median ms | min-max ms |"
echo "|---|---:|---:|---:|"
for v in order_overview order_facts kpi_daily process_variants process_dfg open_order_risk \
         orders_at_risk event_log process_steps inventory_availability \
         "process_map_dot()" "export_xes()"; do
    sql="SELECT * FROM order_mgmt.$v"
    t=$(for i in $(seq 0 "$RUNS"); do
            psql -qXA -h "$DIR" -p "$PORT" -U postgres -d om_citus -c '\timing on' -c "$sql" -o /dev/null |
                sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
        done | tail -n +2 | sort -n)
    printf '| %s | %s | %.0f | %.0f-%.0f |\n' "$v" "$(q -c "SELECT count(*) FROM ($sql) v")" \
        "$(echo "$t" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" "$(echo "$t" | head -1)" "$(echo "$t" | tail -1)"
done
