#!/usr/bin/env bash
# Upgrades: for every released version V older than default_version,
# install V, add data (test/fixtures/workload.sql, plus every data-X.sql with
# X <= V), ALTER EXTENSION UPDATE; the data must be intact and the schema
# must equal a fresh install of default_version.  Prints TAP.
set -u
cd "$(dirname "$0")/../.."
FIX=test/fixtures
default=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" order_mgmt.control)
versions=$(ls sql/order_mgmt--*.sql | sed -E 's/.*--([0-9.]+)\.sql$/\1/' | sort -uV)
older=$(printf '%s\n' $versions | while read -r v; do
    [ "$v" != "$default" ] && [ "$(printf '%s\n%s\n' "$v" "$default" | sort -V | head -1)" = "$v" ] && echo "$v"
done)
n=0
tap() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
q() { PGOPTIONS="-c client_min_messages=warning" psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
TMP=$(mktemp -d)
# workload.sql and every data-X.sql with X <= $2, in version order (later
# files build on earlier ones), into database $1
load_data() {
    q -d "$1" -f $FIX/workload.sql || return 1
    for f in $(ls $FIX/data-*.sql | sort -V); do
        fv=$(basename "$f" .sql); fv=${fv#data-}
        [ "$(printf '%s\n%s\n' "$fv" "$2" | sort -V | tail -1)" = "$2" ] || continue
        q -d "$1" -f "$f" || return 1
    done
}

q -d postgres -c "DROP DATABASE IF EXISTS om_fresh" -c "CREATE DATABASE om_fresh"
q -d om_fresh -c "CREATE EXTENSION order_mgmt"
tap $? "a fresh CREATE EXTENSION installs"
[ "$(q -d om_fresh -c "SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'")" = "$default" ]
tap $? "a fresh install is at default_version $default"
q -d om_fresh -f $FIX/schema.sql >"$TMP/fresh.schema" && [ -s "$TMP/fresh.schema" ]
tap $? "the schema facts of a fresh install are read ($(grep -c . "$TMP/fresh.schema") facts)"

for v in $older; do
    db=om_from_${v//./_}
    q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    q -d "$db" -c "CREATE EXTENSION order_mgmt VERSION '$v'" >/dev/null
    tap $? "install $v"
    load_data "$db" "$v" >/dev/null
    tap $? "add data at $v"
    q -d "$db" -f $FIX/digest.sql && q -d "$db" -c "SELECT * FROM public.om_digest()" >"$TMP/before"
    q -d "$db" -c "ALTER EXTENSION order_mgmt UPDATE" >/dev/null
    tap $? "ALTER EXTENSION order_mgmt UPDATE from $v"
    q -d "$db" -c "SELECT * FROM public.om_digest()" >"$TMP/after"
    diff "$TMP/before" "$TMP/after"
    tap $? "from $v: every row and sequence survives the upgrade ($(grep -c . "$TMP/before") tables and sequences compared)"
    q -d "$db" -f $FIX/schema.sql >"$TMP/upgraded.schema" \
        && diff "$TMP/fresh.schema" "$TMP/upgraded.schema"
    tap $? "from $v: the upgraded schema equals a fresh install ($(grep -c . "$TMP/fresh.schema") facts)"
    [ "$(q -d "$db" -c "SELECT count(*) > 0 FROM pg_stats_ext_exprs
                          WHERE statistics_name = 'order_lines_open_stat'")" = t ]
    tap $? "from $v: the update analyzed the open lines (order_lines_open_stat has statistics)"
    q -d "$db" -c "SELECT order_mgmt.place_order('W-C1', '[{\"sku\": \"W-A\", \"qty\": 1}]', '{\"country\": \"DE\"}')" >/dev/null
    tap $? "from $v: the upgraded install takes new orders"
done

# Every version has a path to default_version.
for v in $older; do
    p=$(q -d om_fresh -c "SELECT path FROM pg_extension_update_paths('order_mgmt') WHERE source = '$v' AND target = '$default'")
    [ -n "$p" ]
    tap $? "update path $v -> $default exists ($p)"
done
rm -rf "$TMP"
echo "1..$n"
