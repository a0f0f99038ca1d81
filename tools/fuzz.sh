#!/usr/bin/env bash
# Random SQL (sqlsmith) against the demo database, as a role holding
# order_mgmt_operator and order_mgmt_reader, for SECS seconds; fails when a
# backend crashed meanwhile.  Run tools/demo.sh first (it leaves om_demo).
source "$(dirname "$0")/common.sh"
SECS=${SECS:-120}
command -v sqlsmith >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlsmith >/dev/null
psql -qX -d om_demo -c "DROP ROLE IF EXISTS om_fuzz" \
    -c "CREATE ROLE om_fuzz LOGIN IN ROLE order_mgmt_operator, order_mgmt_reader" \
    -c "ALTER ROLE om_fuzz SET statement_timeout = '2s'" 2>/dev/null
log="$OM_SOCK/server.log"
before=$(grep -c 'terminated by signal' "$log" || true)
timeout "$SECS" sqlsmith --target="host=$PGHOST port=$PGPORT user=om_fuzz dbname=om_demo" \
    --seed="${SEED:-42}" >/dev/null 2>&1 || true
after=$(grep -c 'terminated by signal' "$log" || true)
calls=$(tail -c 50000000 "$log" | grep -o 'order_mgmt\.[a-z_]*' | sort -u | wc -l)
echo "sqlsmith: ${SECS}s, $((after - before)) crashed backends; $calls order_mgmt objects seen in errors"
[ "$after" -eq "$before" ]
