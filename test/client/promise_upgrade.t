#!/usr/bin/env bash
# Schema 0.3.0 (delivery promise): an install upgraded from 0.1.0 has the
# same member objects as a fresh one and keeps its warehouses; pg_dump /
# pg_restore keep the reference data (foreign keys between config tables).
# Env: PGHOST, PGPORT, PGUSER.  Prints TAP.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DEFAULT=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$HERE/../../order_mgmt.control")
Q="psql -qXAt -v ON_ERROR_STOP=1"
n=0
ok() {  # ok CONDITION-EXIT-STATUS NAME
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}
members() {
    $Q -d "$1" -c "SELECT pg_catalog.pg_describe_object(classid, objid, 0) FROM pg_catalog.pg_depend
                    WHERE refclassid = 'pg_catalog.pg_extension'::regclass AND deptype = 'e'
                      AND refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'order_mgmt')
                    ORDER BY 1"
}
for db in om_p_old om_p_new om_p_restored; do
    psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
done
echo "1..8"

$Q -d om_p_old -c "CREATE EXTENSION order_mgmt VERSION '0.1.0'" \
   -c "INSERT INTO order_mgmt.warehouses (warehouse_id, name, tz) VALUES ('OLD', 'Old', 'Europe/Berlin')" \
   -c "ALTER EXTENSION order_mgmt UPDATE" >/dev/null 2>&1
ok $? "0.1.0 with a warehouse updates to the default version"
[ "$($Q -d om_p_old -c "SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'")" = "$DEFAULT" ]
ok $? "the updated version is $DEFAULT"
$Q -d om_p_new -c "CREATE EXTENSION order_mgmt" >/dev/null 2>&1
diff <(members om_p_old) <(members om_p_new) >/dev/null
ok $? "upgraded and fresh installs have the same member objects"
out=$($Q -d om_p_old -c "SELECT order_mgmt.estimate_delivery('OLD','X','DE',NULL,now())" 2>&1)
case "$out" in *'warehouse "OLD" has no handling calendar'*) r=0 ;; *) r=1 ;; esac
ok $r "the old warehouse is kept; without a calendar it gives OM022"

$Q -d om_p_new -f "$HERE/../fixtures/promise_fixture.sql" >/dev/null
pg_dump -Fc -d om_p_new -f /tmp/om_p_new.$$.dump
ok $? "pg_dump of the reference data"
pg_restore --exit-on-error -d om_p_restored /tmp/om_p_new.$$.dump >/dev/null 2>&1
ok $? "pg_restore without errors"
rm -f /tmp/om_p_new.$$.dump
COUNTS="SELECT (SELECT count(*) FROM order_mgmt.calendars) || '/' ||
               (SELECT count(*) FROM order_mgmt.calendar_exceptions) || '/' ||
               (SELECT count(*) FROM order_mgmt.warehouses) || '/' ||
               (SELECT count(*) FROM order_mgmt.services) || '/' ||
               (SELECT count(*) FROM order_mgmt.lanes) || '/' ||
               (SELECT count(*) FROM order_mgmt.zone_rules)"
[ "$($Q -d om_p_restored -c "$COUNTS")" = "$($Q -d om_p_new -c "$COUNTS")" ]
ok $? "pg_restore brings back every reference row"
E="SELECT e::text FROM order_mgmt.estimate_delivery('BER','STD','AT','6900','2025-09-09 08:00Z') e"
[ "$($Q -d om_p_restored -c "$E")" = "(2025-09-09,2025-09-10,2025-09-12,2025-09-17)" ]
ok $? "estimates after the restore are the same"

for db in om_p_old om_p_new om_p_restored; do
    psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
done
