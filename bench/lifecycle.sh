#!/usr/bin/env bash
# Status change through the C trigger (a) against the same UPDATE plus a
# hand-written event INSERT with no checks (b) and a PL/pgSQL reference
# trigger (c); (d) is the C trigger alone on a copy of the table, without
# the fulfilment triggers (a) has since 0.5.0; 1 and 8 clients; synchronous_commit off and on; median of
# RUNS runs of SECS seconds.  NOTIFY (notify_mode=commit) is measured
# separately at the default synchronous_commit.
source "$(dirname "$0")/../tools/common.sh"
RUNS=${RUNS:-3}
SECS=${SECS:-5}
[ "${SKIP_SETUP:-}" ] || om_setup
psql -qX -f "$ROOT/bench/lifecycle_setup.sql"
OUT=$(mktemp)

run() {  # label clients sync notify script
    local tps
    tps=$(PGOPTIONS="-c synchronous_commit=$3 -c order_mgmt.notify_mode=$4" \
          pgbench -n -M prepared -T "$SECS" -c "$2" -j "$2" -f "$ROOT/bench/$5" 2>/dev/null |
          sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    echo "$1 $tps" >>"$OUT"
}

for sync in off on; do
    for c in 1 8; do
        for i in $(seq "$RUNS"); do
            run "a_c${c}_sync_$sync" "$c" $sync off lifecycle_a.sql
            run "b_c${c}_sync_$sync" "$c" $sync off lifecycle_b.sql
            run "c_c${c}_sync_$sync" "$c" $sync off lifecycle_c.sql
            run "d_c${c}_sync_$sync" "$c" $sync off lifecycle_d.sql
        done
    done
done
for c in 1 8; do
    for i in $(seq "$RUNS"); do
        run "a_notify_c${c}_sync_on" "$c" on commit lifecycle_a.sql
    done
done
echo "== lifecycle: $(nproc) cores, $(date -u +%F), RUNS=$RUNS SECS=$SECS"
/usr/bin/python3 "$ROOT/bench/stats.py" \
    a_c1_sync_off:b_c1_sync_off:'>=0.95' a_c8_sync_off:b_c8_sync_off:'>=0.95' \
    a_c1_sync_off:c_c1_sync_off:'>1' a_c8_sync_off:c_c8_sync_off:'>1' \
    a_c1_sync_on:b_c1_sync_on:'>=0.95' a_c8_sync_on:b_c8_sync_on:'>=0.95' \
    a_c1_sync_on:c_c1_sync_on:'>1' a_c8_sync_on:c_c8_sync_on:'>1' \
    d_c1_sync_off:b_c1_sync_off:'>=0.95' d_c8_sync_off:b_c8_sync_off:'>=0.95' \
    d_c1_sync_on:b_c1_sync_on:'>=0.95' d_c8_sync_on:b_c8_sync_on:'>=0.95' \
    a_notify_c1_sync_on:a_c1_sync_on:'info' a_notify_c8_sync_on:a_c8_sync_on:'info' <"$OUT"
rm -f "$OUT"
