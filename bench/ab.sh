#!/usr/bin/env bash
# A/B of one pgbench script on two databases of one cluster, runs
# alternating, e.g. the same workload on an install of the previous schema
# version (A) and one updated to the current (B):
#   A=om_lc_old B=om_lc_new SCRIPT=file.sql [CLIENTS="1 4 8"] [RUNS=5] [SECS=10] [SYNC=off] bash bench/ab.sh
# Prints per client count the median tps of each (min-max) and B / A.
# Uses the cluster of tools/common.sh (OM_* variables); notify_mode = off.
source "$(dirname "$0")/../tools/common.sh"
set +e
: "${A:?database A}" "${B:?database B}" "${SCRIPT:?pgbench script}"
CLIENTS=${CLIENTS:-"1 4 8"}
RUNS=${RUNS:-5}
SECS=${SECS:-10}
SYNC=${SYNC:-off}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
tps() {
    PGOPTIONS="-c synchronous_commit=$SYNC -c order_mgmt.notify_mode=off" \
        pgbench -n -M prepared -c "$2" -j "$2" -T "$SECS" -f "$SCRIPT" "$1" 2>>"$TMP/err" \
        | awk '/^tps = / {printf "%.0f\n", $3}'
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
spread() { sort -n | awk 'NR == 1 {min = $1} {max = $1} END {print min "-" max}'; }
ver() { psql -qXAt -d "$1" -c "SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'"; }
echo "# A/B $(basename "$SCRIPT"), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# A = $A (order_mgmt $(ver "$A")), B = $B (order_mgmt $(ver "$B")), synchronous_commit=$SYNC, ${RUNS}x${SECS}s"
printf "%7s %20s %20s %7s\n" clients "A tps" "B tps" "B/A"
for c in $CLIENTS; do
    : >"$TMP/a"; : >"$TMP/b"
    for r in $(seq "$RUNS"); do
        tps "$A" "$c" >>"$TMP/a"
        tps "$B" "$c" >>"$TMP/b"
    done
    a=$(median <"$TMP/a"); b=$(median <"$TMP/b")
    printf "%7s %7s (%11s) %7s (%11s) %7s\n" "$c" "$a" "$(spread <"$TMP/a")" "$b" "$(spread <"$TMP/b")" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", (a > 0 ? b / a : 0)}')"
done
[ -s "$TMP/err" ] && sed 's/^/# pgbench: /' "$TMP/err" | tail -5
exit 0
