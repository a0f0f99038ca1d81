#!/usr/bin/env bash
# estimate_delivery (C) against the PL/pgSQL reference (bench/estimate_ref.sql).
# Uses the private cluster of tools/common.sh (same OM_* variables as
# tools/test.sh); run tools/test.sh or om_setup first, or set OM_SETUP=1.
#   ROWS=1000000 REF_ROWS=20000 RUNS=3 bash bench/estimate.sh
source "$(dirname "$0")/../tools/common.sh"
[ "${OM_SETUP:-0}" = 1 ] && om_setup
ROWS=${ROWS:-1000000}
REF_ROWS=${REF_ROWS:-20000}
CHECK_ROWS=${CHECK_ROWS:-10000}
RUNS=${RUNS:-3}
DB=om_bench
P="psql -qXAt -v ON_ERROR_STOP=1 -d $DB"

psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
$P -c "CREATE EXTENSION order_mgmt" -f "$ROOT/test/fixtures/promise_fixture.sql" \
   -f "$ROOT/bench/estimate_ref.sql" >/dev/null
# inputs: times over a year (incl. DST changes and the year end), three
# warehouses, two services, destinations with and without lanes
$P <<SQL
CREATE TABLE bench_in AS
SELECT g AS id,
       (ARRAY['BER','BER','LAX','TYO'])[1 + g % 4] AS wh,
       (ARRAY['STD','EXP'])[1 + (g / 4) % 2] AS svc,
       (ARRAY['DE','AT','AT','FR','US'])[1 + (g / 8) % 5] AS country,
       lpad(((g * 7919) % 100000)::text, 5, '0') AS postal,
       '2025-06-01 00:00Z'::timestamptz + ((g * 104729) % 31536000) * interval '1 second' AS placed_at,
       CASE WHEN g % 10 = 0 THEN '2025-06-01 00:00Z'::timestamptz
            + ((g * 15485863) % 31536000) * interval '1 second' END AS ready_at
  FROM generate_series(1::bigint, $ROWS) g;
ANALYZE bench_in;
SQL

# median and spread of RUNS timings (ms) of one query
time_query() {
    local q="$1" t all=()
    for _ in $(seq "$RUNS"); do
        t=$($P -c "SET max_parallel_workers_per_gather = 0" -c "SET jit = off" \
              -c '\timing on' -c "$q" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
        all+=("$t")
    done
    printf '%s\n' "${all[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f %.1f %.1f\n", a[int((NR+1)/2)], a[1], a[NR]}'
}

echo "== identical answers on $CHECK_ROWS rows"
diff=$($P -c "SELECT count(*) FROM bench_in i,
        LATERAL order_mgmt.estimate_delivery(i.wh, i.svc, i.country, i.postal, i.placed_at, i.ready_at) c,
        LATERAL om_ref.estimate_delivery(i.wh, i.svc, i.country, i.postal, i.placed_at, i.ready_at) r
       WHERE i.id <= $CHECK_ROWS AND (c.*) IS DISTINCT FROM (r.*)")
echo "   rows that differ: $diff"
[ "$diff" = 0 ] || { echo "C and reference disagree"; exit 1; }

SCAN="SELECT count(i.placed_at) FROM bench_in i"
C="SELECT max(e.delivery_latest) FROM bench_in i,
     LATERAL order_mgmt.estimate_delivery(i.wh, i.svc, i.country, i.postal, i.placed_at, i.ready_at) e"
REF="SELECT max(e.delivery_latest) FROM bench_in i,
     LATERAL om_ref.estimate_delivery(i.wh, i.svc, i.country, i.postal, i.placed_at, i.ready_at) e
     WHERE i.id <= $REF_ROWS"

read -r scan_med scan_min scan_max <<<"$(time_query "$SCAN")"
read -r c_med c_min c_max <<<"$(time_query "$C")"
read -r r_med r_min r_max <<<"$(time_query "$REF")"
awk -v rows="$ROWS" -v rrows="$REF_ROWS" -v s="$scan_med" -v c="$c_med" -v cmin="$c_min" -v cmax="$c_max" \
    -v r="$r_med" -v rmin="$r_min" -v rmax="$r_max" -v smin="$scan_min" -v smax="$scan_max" 'BEGIN {
    rscaled = r * rows / rrows
    printf "scan only          %d rows: median %.0f ms (min %.0f, max %.0f)\n", rows, s, smin, smax
    printf "C estimate         %d rows: median %.0f ms (min %.0f, max %.0f) = %.2f M estimates/s\n", rows, c, cmin, cmax, rows / c / 1000
    printf "PL/pgSQL reference %d rows: median %.0f ms (min %.0f, max %.0f); scaled to %d rows: %.0f ms\n", rrows, r, rmin, rmax, rows, rscaled
    printf "ratio (reference / C, per estimate): %.1fx\n", rscaled / c
}'
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
