#!/usr/bin/env bash
# pg_dump / pg_restore keeps every row of every user-data table and every
# sequence value, does not duplicate seed rows, and the restored database
# keeps working.  Prints TAP.
set -u
cd "$(dirname "$0")/../.."
FIX=test/fixtures
n=0
tap() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
q() { PGOPTIONS="-c client_min_messages=warning" psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
TMP=$(mktemp -d)
chmod 755 "$TMP"

q -d postgres -c "DROP DATABASE IF EXISTS om_dump" -c "DROP DATABASE IF EXISTS om_restore" \
  -c "CREATE DATABASE om_dump" -c "CREATE DATABASE om_restore"
q -d om_dump -c "CREATE EXTENSION order_mgmt"
q -d om_dump -f $FIX/workload.sql >/dev/null
for f in $(ls $FIX/data-*.sql | sort -V); do q -d om_dump -f "$f" >/dev/null; done
q -d om_dump -f $FIX/digest.sql
q -d om_dump -c "SELECT * FROM public.om_digest()" >"$TMP/before"
[ "$(awk -F'|' '$2 > 0' "$TMP/before" | wc -l)" -ge 8 ]
tap $? "the source database has data in at least 8 tables and sequences"

pg_dump -Fc -d om_dump -f "$TMP/om.dump"
tap $? "pg_dump -Fc"
pg_restore -d om_restore --exit-on-error "$TMP/om.dump" 2>"$TMP/restore.err"
tap $? "pg_restore without errors $(head -c 300 "$TMP/restore.err")"
q -d om_restore -c "SELECT * FROM public.om_digest()" >"$TMP/after"
diff "$TMP/before" "$TMP/after"
tap $? "every row and sequence value is restored ($(grep -c . "$TMP/before") compared)"
[ "$(q -d om_dump -c 'SELECT count(*) FROM order_mgmt.transitions')" = \
  "$(q -d om_restore -c 'SELECT count(*) FROM order_mgmt.transitions')" ]
tap $? "seed transitions are not duplicated, custom ones are kept"
new=$(q -d om_restore -c "SELECT order_mgmt.place_order('W-C1', '[{\"sku\": \"W-A\", \"qty\": 1}]', '{\"country\": \"DE\"}')")
max=$(q -d om_dump -c "SELECT max(order_id) FROM order_mgmt.orders")
[ -n "$new" ] && [ "$new" -gt "$max" ]
tap $? "the restored database places new orders after the old ids ($new > $max)"
# a consumer resumes where it stopped: the same next events, by event_id
next="SELECT string_agg(event_id::text, ',' ORDER BY tx, seq) FROM order_mgmt.fetch_events('D6-audit', 50)"
want=$(q -d om_dump -c "$next")
[ -n "$want" ] && [ "$(q -d om_restore -c "$next")" = "$want" ]
tap $? "a restored consumer resumes at its cursor (the same next events)"
q -d om_restore -c "UPDATE order_mgmt.orders SET status = 'delivered' WHERE external_ref = 'W-5'" 2>/dev/null
[ $? -ne 0 ]
tap $? "the lifecycle trigger is active after the restore"
rm -rf "$TMP"
echo "1..$n"
