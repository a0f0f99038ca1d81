#!/usr/bin/env bash
# Delivery promise caches across sessions: session A has its calendar and
# warehouse caches loaded; session B commits a new holiday and a new cut-off;
# A's next statement must see them.  Also checks a rollback restores A.
# Env: PGHOST, PGPORT, PGUSER.  Prints TAP.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DB=om_promise_cache
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
psql -qX -d $DB -v ON_ERROR_STOP=1 -c "CREATE EXTENSION order_mgmt" \
     -f "$HERE/../fixtures/promise_fixture.sql" >/dev/null || { echo "1..0 # setup failed"; exit 1; }

B="psql -qX -d $DB -v ON_ERROR_STOP=1"
out=$(psql -qXAt -d $DB -v ON_ERROR_STOP=1 <<SQL 2>&1
SELECT order_mgmt.is_business_day('2025-11-03', 'DE-HANDLING');
SELECT (order_mgmt.estimate_delivery('BER','STD','DE','10115','2025-10-31 13:30Z')).ship_earliest;
\! $B -c "INSERT INTO order_mgmt.calendar_exceptions VALUES ('DE-HANDLING', '2025-11-03', false, 'closure')"
SELECT order_mgmt.is_business_day('2025-11-03', 'DE-HANDLING');
SELECT (order_mgmt.estimate_delivery('BER','STD','DE','10115','2025-10-31 13:30Z')).ship_earliest;
\! $B -c "UPDATE order_mgmt.warehouses SET cutoff_local = '15:00' WHERE warehouse_id = 'BER'"
SELECT (order_mgmt.estimate_delivery('BER','STD','DE','10115','2025-10-31 13:30Z')).ship_earliest;
\! $B -c "BEGIN" -c "DELETE FROM order_mgmt.calendar_exceptions WHERE day = '2025-11-03'" -c "ROLLBACK"
SELECT order_mgmt.is_business_day('2025-11-03', 'DE-HANDLING');
BEGIN;
DELETE FROM order_mgmt.calendar_exceptions WHERE day = '2025-11-03';
SELECT order_mgmt.is_business_day('2025-11-03', 'DE-HANDLING');
ROLLBACK;
SELECT order_mgmt.is_business_day('2025-11-03', 'DE-HANDLING');
SQL
)
mapfile -t got <<<"$out"
want=(t 2025-11-03 f 2025-11-04 2025-10-31 f t f)
names=("A: 2025-11-03 is a business day"
       "A: order after the cut-off on Friday ships Monday"
       "A sees B's committed holiday"
       "A's estimate moves to Tuesday"
       "A sees B's later cut-off (15:00): ships Friday"
       "B's rolled-back delete does not reach A"
       "A sees its own uncommitted delete"
       "A's own rollback restores the holiday")
echo "1..${#want[@]}"
for i in "${!want[@]}"; do
    if [ "${got[$i]:-}" = "${want[$i]}" ]; then
        echo "ok $((i + 1)) - ${names[$i]}"
    else
        echo "not ok $((i + 1)) - ${names[$i]} (got '${got[$i]:-}', want '${want[$i]}')"
    fi
done
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
