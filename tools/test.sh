#!/usr/bin/env bash
# Every test suite of order_mgmt on a fresh private cluster: pg_regress and
# isolation specs (make installcheck), pgTAP files (pg_prove), and
# client tests (test/client/*.t: real sessions, pgbench, dump/restore,
# upgrades).  Ends with one line "N passed, N failed" over all suites.
source "$(dirname "$0")/common.sh"
# OM_USE_CLUSTER=1: test the order_mgmt already installed on the running
# server that OM_SOCK/OM_PGPORT point at (the Debian autopkgtest, the
# package test): build nothing, start and stop no cluster.
[ -n "${OM_USE_CLUSTER:-}" ] || om_setup

PASS=0
FAIL=0
LOG=$(mktemp -d)
MAKEARGS="-s with_llvm=no PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config"
export PGOPTIONS="-c client_min_messages=warning"

# suite NAME COMMAND...: run it, count its ok / not ok lines (TAP or
# pg_regress); a suite that fails without reporting a failure counts one.
suite() {
    local name=$1 rc=0 ok bad
    shift
    "$@" >"$LOG/$name" 2>&1 || rc=$?
    ok=$(grep -cE '^\s*ok [0-9]|\.\.\. ok' "$LOG/$name" || true)
    bad=$(grep -cE '^\s*not ok [0-9]|\.\.\. FAILED|\.\.\. failed' "$LOG/$name" || true)
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        bad=1
        echo "   $name exited with status $rc without reporting a failure"
    fi
    PASS=$((PASS + ok))
    FAIL=$((FAIL + bad))
    printf '   %-22s %4d passed, %d failed\n' "$name" "$ok" "$bad"
    if [ "$bad" -ne 0 ]; then
        grep -vE '^\s*ok [0-9]|\.\.\. ok' "$LOG/$name" | head -100
    fi
}

cd "$ROOT"
echo "== pg_regress and isolation"
rm -rf results output_iso regression.diffs regression.out
suite pg_regress make $MAKEARGS installcheck ISOLATION=
suite isolation make $MAKEARGS installcheck REGRESS=
for d in regression.diffs output_iso/regression.diffs; do
    [ -f "$d" ] && cat "$d"
done

echo "== pgTAP"
psql -qX -d postgres -c "DROP DATABASE IF EXISTS om_tap" -c "CREATE DATABASE om_tap"
psql -qX -d om_tap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION order_mgmt"
suite pgtap pg_prove -v -d om_tap test/pgtap/*.sql

echo "== client tests"
for t in test/client/*.t; do
    suite "$(basename "$t")" "$t"
done

[ -n "${OM_USE_CLUSTER:-}" ] || om_stop_cluster

# Citus (README "Scaling out"): a coordinator and two workers of their own,
# from the Citus install in OM_CITUS_DESTDIR; where Citus is not installed
# (CI: Debian packages only) it prints "skipped" and counts nothing.
# (Not with OM_USE_CLUSTER: it builds order_mgmt from this tree.)
if [ -z "${OM_USE_CLUSTER:-}" ]; then
    echo "== Citus"
    suite citus-test.sh bash tools/citus-test.sh
    if grep -q '^skipped:' "$LOG/citus-test.sh"; then
        grep '^skipped:' "$LOG/citus-test.sh" | sed 's/^/   /'
    fi
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
