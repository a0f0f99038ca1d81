#!/usr/bin/env bash
# bench/bi_old_new.sh: the BI views rewritten for Citus (schema 0.10.0)
# against their definitions at OLD_REV (default the merge base with main, schema 0.9.0) on the
# same single-node data: the old definitions are created in a schema
# om_old of the benchmark database, each query is timed old and new
# alternately (EXPLAIN (ANALYZE, TIMING OFF), median of RUNS after one
# warm-up each), and each pair must return the same rows (md5 of the rows
# as text, sorted).  Prints a Markdown table for bench/RESULTS.md.
#
#   N=100000 API_ORDERS=2000 RUNS=3 bash bench/bi_old_new.sh   (OM_* as tools/common.sh)
#   REUSE=1 keeps DB as it is (the history generated before).
source "$(dirname "$0")/../tools/common.sh"
set -euo pipefail
N=${N:-100000}
DB=${DB:-om_bi_bench}
RUNS=${RUNS:-3}
OLD_REV=${OLD_REV:-$(git -C "$ROOT" merge-base HEAD main)}
export PGOPTIONS="-c client_min_messages=warning -c work_mem=${WORK_MEM:-256MB} -c jit=${JIT:-off}"
[ "${OM_SETUP:-0}" = 1 ] && om_setup
[ "${REUSE:-0}" = 1 ] || OM_SETUP=0 bash "$ROOT/bench/history.sh" "$DB" "$N"

# The changed definitions as they were at OLD_REV, in schema om_old; what
# they read of each other is om_old's, everything else order_mgmt's.
CHANGED="order_overview order_facts kpi_daily process_variants process_dfg open_order_risk process_map_dot"
old_sql() {
    python3 - "$CHANGED" <(git -C "$ROOT" show "$OLD_REV:sql/schema/bi.sql") \
              <(git -C "$ROOT" show "$OLD_REV:sql/schema/fulfilment.sql") <<'PY'
import re, sys
names = sys.argv[1].split()
src = open(sys.argv[2]).read() + "\n" + open(sys.argv[3]).read()
out = ["DROP SCHEMA IF EXISTS om_old CASCADE;", "CREATE SCHEMA om_old;"]
order = ["order_overview", "order_facts", "kpi_daily", "process_dfg(", "process_dfg", "process_variants",
         "open_order_risk", "process_map_dot("]
for n in order:
    fn = n.endswith("(")
    m = re.search(r"CREATE %s @extschema@\.%s%s" % ("FUNCTION" if fn else "VIEW", re.escape(n.rstrip("(")),
                                                   r"\(" if fn else " AS"), src)
    start = m.start()
    if fn:
        body = src.find("$$", start); end = src.find(";", src.find("$$", body + 2))
    else:
        end = src.find(";", start)
    text = src[start:end + 1]
    text = re.sub(r"@extschema@\.(%s)\b" % "|".join(names), r"om_old.\1", text)
    out.append(text.replace("@extschema@", "order_mgmt"))
print("\n".join(out))
PY
}
old_sql | psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null

ms() {   # ms SQL: execution time of one run
    psql -X -At -d "$DB" -c "EXPLAIN (ANALYZE, TIMING OFF) $1" | sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p'
}
median() { sort -n | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)]}'; }
# same OLD NEW: "yes" if both return the same rows, read in one statement
# (one now(): the hours of open holds and in a status move with it)
same() {
    psql -X -At -d "$DB" -c "WITH o AS (SELECT count(*) || ' ' || md5(coalesce(string_agg(v::text, '|' ORDER BY v::text), '')) AS d FROM ($1) v),
                                  n AS (SELECT count(*) || ' ' || md5(coalesce(string_agg(v::text, '|' ORDER BY v::text), '')) AS d FROM ($2) v)
                             SELECT CASE WHEN o.d = n.d THEN 'yes' ELSE 'NO (' || o.d || ' / ' || n.d || ')' END FROM o, n"
}

echo "Data: $(psql -X -At -d "$DB" -c "SELECT format('%s orders, %s events', (SELECT count(*) FROM order_mgmt.orders), (SELECT count(*) FROM order_mgmt.events))"); old = $OLD_REV ($(git -C "$ROOT" rev-parse --short "$OLD_REV")), median of $RUNS runs after a warm-up, old and new alternately."
echo
echo "| query | rows | old ms | new ms | new / old | same rows |"
echo "|---|---:|---:|---:|---:|---|"
for q in "order_overview" "order_facts" "kpi_daily" "process_variants" "process_dfg" "open_order_risk" \
         "process_map_dot()" "process_map_dot(now() - interval '30 days', NULL)"; do
    case $q in
        *"("*) new="SELECT order_mgmt.$q"; old="SELECT om_old.$q" ;;
        *) new="SELECT * FROM order_mgmt.$q"; old="SELECT * FROM om_old.$q" ;;
    esac
    ms "$old" >/dev/null; ms "$new" >/dev/null
    : >/tmp/bi_old_new.$$.old; : >/tmp/bi_old_new.$$.new
    for i in $(seq "$RUNS"); do
        ms "$old" >>/tmp/bi_old_new.$$.old
        ms "$new" >>/tmp/bi_old_new.$$.new
    done
    o=$(median </tmp/bi_old_new.$$.old); n=$(median </tmp/bi_old_new.$$.new)
    rows=$(psql -X -At -d "$DB" -c "SELECT count(*) FROM ($new) v")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$q" "$rows" "$o" "$n" \
        "$(echo "scale=2; $n / ($o + 0.0001)" | bc)" "$(same "$old" "$new")"
done
rm -f /tmp/bi_old_new.$$.old /tmp/bi_old_new.$$.new
