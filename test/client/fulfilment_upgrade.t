#!/usr/bin/env bash
# Schema 0.5.0 (fulfilment) over data of 0.4.0: an install at 0.4.0 with
# data (workload.sql, data-0.2.0.sql, data-0.4.0.sql: a shipment prepared by
# hand) is updated; every row and sequence survives; the shipment prepared
# under 0.4.0 is dispatched and tracked through the new API; then pg_dump /
# pg_restore of the updated database keeps shipments, tracking events and
# their sequences, and the restored database carries on (a checkpoint for a
# restored parcel, a new order through the whole lifecycle with ids after
# the old ones).  Prints TAP.
set -u
cd "$(dirname "$0")/../.."
FIX=test/fixtures
UP=om_fulfil_up
RESTORED=om_fulfil_restored
TMP=$(mktemp -d)
chmod 755 "$TMP"
trap 'rm -rf "$TMP"' EXIT
n=0
tap() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
q() { PGOPTIONS="-c client_min_messages=warning" psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
is() {  # is GOT WANT NAME
    if [ "$1" = "$2" ]; then tap 0 "$3"; else tap 1 "$3"; echo "# got:  $1"; echo "# want: $2"; fi
}

for db in $UP $RESTORED; do
    q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done

# 0.4.0 with data
q -d $UP -c "CREATE EXTENSION order_mgmt VERSION '0.4.0'"
tap $? "install 0.4.0"
q -d $UP -f $FIX/workload.sql -f $FIX/data-0.2.0.sql -f $FIX/data-0.4.0.sql >/dev/null
tap $? "add data at 0.4.0 (a shipment labelled by hand)"
q -d $UP -f $FIX/digest.sql && q -d $UP -c "SELECT * FROM public.om_digest()" >"$TMP/before"
q -d $UP -c "ALTER EXTENSION order_mgmt UPDATE" >/dev/null
tap $? "ALTER EXTENSION order_mgmt UPDATE to 0.5.0"
q -d $UP -c "SELECT * FROM public.om_digest()" >"$TMP/after"
diff "$TMP/before" "$TMP/after" >/dev/null
tap $? "every row and sequence of 0.4.0 survives ($(grep -c . "$TMP/before") tables and sequences)"
is "$(q -d $UP -c "SELECT status || ' ' || (last_checkpoint_id IS NULL) FROM order_mgmt.shipments WHERE tracking_number = 'P4-TRK-1'")" \
   "labelled true" "the shipment labelled under 0.4.0 is there, with no checkpoint yet"

# the old shipment goes on through the new API
SHIP="SELECT shipment_id FROM order_mgmt.shipments WHERE tracking_number = 'P4-TRK-1'"
before=$(q -d $UP -c "SELECT on_hand || '/' || reserved FROM order_mgmt.stock WHERE warehouse_id = 'W-BER' AND sku = 'W-A'")
q -d $UP -c "SELECT order_mgmt.dispatch_shipment(($SHIP))" >/dev/null
tap $? "dispatch_shipment of the shipment prepared under 0.4.0"
after=$(q -d $UP -c "SELECT on_hand || '/' || reserved FROM order_mgmt.stock WHERE warehouse_id = 'W-BER' AND sku = 'W-A'")
is "$(echo "$before $after" | awk '{split($1, a, "/"); split($2, b, "/"); print a[1] - b[1] "/" a[2] - b[2]}')" \
   "2/2" "its two units of W-A leave stock (on_hand and reserved)"
q -d $UP -c "SELECT order_mgmt.record_tracking_event('P4-TRK-1', 'P4-E2', 'delivered', '2030-01-08 12:00+01')" \
         -c "SELECT order_mgmt.record_tracking_event('P4-TRK-1', 'P4-E1', 'in_transit', '2030-01-07 09:00+01')" >/dev/null
tap $? "checkpoints for it are recorded (out of order)"
is "$(q -d $UP -c "SELECT s.status || ' ' || o.status FROM order_mgmt.shipments s JOIN order_mgmt.orders o USING (order_id) WHERE s.tracking_number = 'P4-TRK-1'")" \
   "delivered delivered" "the parcel and its order are delivered"

# fulfilment data of 0.5.0, then pg_dump / pg_restore of the updated database
q -d $UP -f $FIX/data-0.5.0.sql >/dev/null
tap $? "add data through the 0.5.0 API (data-0.5.0.sql)"
q -d $UP -c "DROP TABLE public.om_cols, public.om_seqs" && q -d $UP -f $FIX/digest.sql
q -d $UP -c "SELECT * FROM public.om_digest()" >"$TMP/dumped"
grep -q '^tracking_events|[1-9]' "$TMP/dumped" && grep -q '^tracking_events_tracking_event_id_seq|[1-9]' "$TMP/dumped" \
    && grep -q '^shipments|[1-9]' "$TMP/dumped"
tap $? "the digest covers shipments, tracking events and their sequence"
pg_dump -Fc -d $UP -f "$TMP/up.dump" 2>"$TMP/err" && pg_restore -d $RESTORED --exit-on-error "$TMP/up.dump" 2>>"$TMP/err"
tap $? "pg_dump / pg_restore of the updated database $(head -c 300 "$TMP/err")"
q -d $RESTORED -c "SELECT * FROM public.om_digest()" >"$TMP/restored"
diff "$TMP/dumped" "$TMP/restored" >/dev/null
tap $? "every row and sequence value is restored ($(grep -c . "$TMP/dumped") compared)"
STATE="SELECT string_agg(concat_ws(':', s.shipment_id, s.status, s.tracking_number, s.dispatched_at, s.delivered_at,
               s.estimated_delivery_latest, t.carrier_event_id), ' ' ORDER BY s.shipment_id)
          FROM order_mgmt.shipments s LEFT JOIN order_mgmt.tracking_events t
            ON t.order_id = s.order_id AND t.tracking_event_id = s.last_checkpoint_id"
is "$(q -d $RESTORED -c "$STATE")" "$(q -d $UP -c "$STATE")" "shipments keep their status, dates and latest checkpoint"

# the restored database carries on
q -d $RESTORED -c "SELECT order_mgmt.record_tracking_event('P5-TRK-2', 'P5-F2', 'in_transit', '2030-01-08 07:00+01')" >/dev/null
is "$(q -d $RESTORED -c "SELECT status FROM order_mgmt.shipments WHERE tracking_number = 'P5-TRK-2'")" "in_transit" \
   "a restored parcel takes its next checkpoint"
is "$(q -d $RESTORED -c "SELECT order_mgmt.record_tracking_event('P5-TRK-1', 'P5-E3', 'delivered', '2030-01-08 12:00+01', 'door')")" \
   "f" "a checkpoint stored before the dump is still a repeat"
new=$(q -d $RESTORED <<'SQL'
SELECT order_mgmt.place_order('W-C1', '[{"sku": "W-A", "qty": 1}]', '{"country": "DE"}') AS o \gset
SELECT order_mgmt.confirm_order(:o) AS c, order_mgmt.release_to_warehouse(:o) AS r \gset
SELECT shipment_id AS s FROM order_mgmt.shipments WHERE order_id = :o \gset
SELECT order_mgmt.start_picking(:s), order_mgmt.pack_shipment(:s, 1, 1, 1, 1),
       order_mgmt.label_shipment(:s, 'DHL', 'W-STD', 'AFTER-RESTORE'), order_mgmt.dispatch_shipment(:s) \gset
SELECT order_mgmt.record_tracking_event('AFTER-RESTORE', 'AR-1', 'delivered', now()) \gset
SELECT :s || ' ' || (SELECT max(tracking_event_id) FROM order_mgmt.tracking_events WHERE carrier_event_id = 'AR-1')
       || ' ' || (SELECT status FROM order_mgmt.orders WHERE order_id = :o);
SQL
)
read -r s t st <<<"$new"
maxs=$(q -d $UP -c "SELECT max(shipment_id) FROM order_mgmt.shipments")
maxt=$(q -d $UP -c "SELECT max(tracking_event_id) FROM order_mgmt.tracking_events")
[ -n "$s" ] && [ "$s" -gt "$maxs" ] && [ "$t" -gt "$maxt" ] && [ "$st" = "delivered" ]
tap $? "a new order is delivered after the restore, with shipment and checkpoint ids after the old ones ($new > $maxs, $maxt)"

for db in $UP $RESTORED; do q -d postgres -c "DROP DATABASE IF EXISTS $db"; done
echo "1..$n"
