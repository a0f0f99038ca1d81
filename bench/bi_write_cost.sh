#!/usr/bin/env bash
# bench/bi_write_cost.sh DB: what events_case_idx (schema 0.5.0) costs the
# writers of the event log.  Two copies of order_mgmt.events with all its
# indexes, one without events_case_idx, each receiving the same inserts of
# ROWS (default 300,000) events in batches of 1,000 rows (a transaction
# each), alternating, RUNS times (default 3); prints the median time of each
# and the ratio.  The copies live in a scratch schema and are dropped.
source "$(dirname "$0")/../tools/common.sh"
set -euo pipefail
DB=${1:?usage: bench/bi_write_cost.sh DB}
ROWS=${ROWS:-300000}
RUNS=${RUNS:-3}
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
q <<'SQL'
DROP SCHEMA IF EXISTS bi_write_cost CASCADE;
CREATE SCHEMA bi_write_cost;
CREATE TABLE bi_write_cost.with_idx (LIKE order_mgmt.events INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE bi_write_cost.without_idx (LIKE order_mgmt.events INCLUDING DEFAULTS INCLUDING INDEXES);
DO $$
DECLARE i text;
BEGIN
    SELECT indexrelid::regclass::text INTO i FROM pg_index
     WHERE indrelid = 'bi_write_cost.without_idx'::regclass
       AND pg_get_indexdef(indexrelid) LIKE '%INCLUDE (entity, entity_id, event_type%';
    EXECUTE 'DROP INDEX ' || i;
END $$;
-- events as the lifecycle writes them: one order's steps close together
CREATE PROCEDURE bi_write_cost.fill(tbl text, n int) LANGUAGE plpgsql AS $$
BEGIN
    FOR b IN 0 .. n / 1000 - 1 LOOP
        EXECUTE format($f$INSERT INTO bi_write_cost.%I (order_id, entity, entity_id, event_type,
                          from_status, to_status, actor, automated)
                       SELECT 1000000 + (g / 12), 'shipment', g / 12, 'shipment.in_transit',
                              'dispatched', 'in_transit', 'carrier:DHL', true
                         FROM generate_series($1, $2) g$f$, tbl) USING b * 1000, b * 1000 + 999;
        COMMIT;
    END LOOP;
END $$;
SQL
declare -A T
for r in $(seq "$RUNS"); do
    for t in with_idx without_idx; do
        q -c "TRUNCATE bi_write_cost.$t"
        s=$(date +%s.%N)
        q -c "CALL bi_write_cost.fill('$t', $ROWS)"
        T[$t]="${T[$t]:-} $(echo "($(date +%s.%N) - $s) * 1000" | bc)"
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
w=$(echo "${T[with_idx]}" | median)
wo=$(echo "${T[without_idx]}" | median)
printf 'with events_case_idx: median %.0f ms (%s)\n' "$w" "${T[with_idx]}"
printf 'without: median %.0f ms (%s)\n' "$wo" "${T[without_idx]}"
printf 'ratio with / without: %.2f (%s events, batches of 1,000)\n' "$(echo "$w / $wo" | bc -l)" "$ROWS"
q -c "DROP SCHEMA bi_write_cost CASCADE"
