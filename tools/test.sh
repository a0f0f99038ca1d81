#!/usr/bin/env bash
# Every test suite of order_mgmt on a fresh private cluster: pg_regress and
# isolation specs (make installcheck), pgTAP files (pg_prove), and
# client tests (test/client/*.t: real sessions, pgbench, dump/restore,
# upgrades).  Ends with one line "N passed, N failed" over all suites.
source "$(dirname "$0")/common.sh"
om_setup

PASS=0
FAIL=0
LOG=$(mktemp -d)
MAKEARGS="-s with_llvm=no PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config"

# count FILE: add the ok / not ok lines of a TAP or pg_regress log
count() {
    local ok bad
    ok=$(grep -cE '^\s*ok [0-9]|\.\.\. ok|^ok ' "$1" || true)
    bad=$(grep -cE '^\s*not ok [0-9]|\.\.\. FAILED|\.\.\. failed|^not ok ' "$1" || true)
    PASS=$((PASS + ok))
    FAIL=$((FAIL + bad))
    echo "   $ok passed, $bad failed"
    return "$bad"
}

# a runner that died without reporting a failure still counts as one
died() {
    echo "   suite $1 exited with an error"
    FAIL=$((FAIL + 1))
}

echo "== pg_regress and isolation"
cd "$ROOT"
rm -rf results output_iso
if ! make $MAKEARGS installcheck >"$LOG/regress" 2>&1; then
    cat "$LOG/regress"
    for d in regression.diffs output_iso/regression.diffs; do
        [ -f "$d" ] && cat "$d"
    done
    count "$LOG/regress" >/dev/null || true
    grep -qE 'FAILED|failed' "$LOG/regress" || died regress
else
    count "$LOG/regress" || true
fi

echo "== pgTAP"
PGOPTIONS="-c client_min_messages=warning" psql -qX -d postgres -c "DROP DATABASE IF EXISTS om_tap" -c "CREATE DATABASE om_tap"
psql -qX -d om_tap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION order_mgmt"
if pg_prove -v -d om_tap "$ROOT"/test/pgtap/*.sql >"$LOG/pgtap" 2>&1; then
    count "$LOG/pgtap" || true
else
    grep -E 'not ok|Failed|Dubious|ERROR|psql:' "$LOG/pgtap" | head -50
    count "$LOG/pgtap" || grep -q 'not ok' "$LOG/pgtap" || died pgtap
fi

echo "== client tests"
for t in "$ROOT"/test/client/*.t; do
    echo "-- $(basename "$t")"
    if "$t" >"$LOG/client" 2>&1; then
        count "$LOG/client" >/dev/null || true
    else
        cat "$LOG/client"
        count "$LOG/client" >/dev/null || true
        grep -q '^not ok' "$LOG/client" || died "$(basename "$t")"
    fi
    grep -E '^(not )?ok' "$LOG/client" | sed 's/^/   /'
done

om_stop_cluster
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
