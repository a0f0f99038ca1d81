#!/usr/bin/env bash
# Runs the pg_regress, isolation and listener suites against a server under
# valgrind memcheck and reports every error whose stack passes through
# order_mgmt.so.  Debian's server is not built with USE_VALGRIND, so palloc
# chunks are not instrumented; this catches invalid reads/writes of malloc'd
# memory, uninitialised values and bad syscall arguments in our code.
export OM_PGDATA=/tmp/order_mgmt_vg/data OM_SOCK=/tmp/order_mgmt_vg OM_PGPORT=5498
source "$(dirname "$0")/common.sh"
om_packages
om_build
om_stop_cluster
rm -rf "$OM_SOCK" && mkdir -p "$OM_PGDATA" "$OM_SOCK/vg" && chown -R postgres:postgres "$OM_SOCK"
su postgres -c "$PGBIN/initdb -D $OM_PGDATA -A trust -U postgres --no-sync" >/dev/null
su postgres -c "valgrind --quiet --trace-children=yes --leak-check=no --num-callers=40 \
    --error-limit=no --read-var-info=no --log-file=$OM_SOCK/vg/%p.log \
    $PGBIN/postgres -D $OM_PGDATA -c port=$PGPORT -c unix_socket_directories=$OM_SOCK \
    -c listen_addresses= -c max_connections=20" >"$OM_SOCK/server.log" 2>&1 &
for i in $(seq 120); do pg_isready -q && break; sleep 1; done
cd "$ROOT"
make -s with_llvm=no PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config installcheck \
    >"$OM_SOCK/regress.out" 2>&1 || true
grep -E '\.\.\. ' "$OM_SOCK/regress.out"
/usr/bin/python3 test/client/listener.t | tail -1
psql -qX -d postgres -c "CREATE DATABASE om_tap"
psql -qX -d om_tap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION order_mgmt"
pg_prove -d om_tap test/pgtap/*.sql 2>&1 | tail -2
test/client/dump_restore.t | grep -c '^ok' | sed 's/$/ dump_restore checks ok/'
su postgres -c "$PGBIN/pg_ctl -D $OM_PGDATA -m fast -w -t 300 stop" >/dev/null
# with --quiet a log holds only errors; each error has one "at" frame
errors=$(cat "$OM_SOCK"/vg/*.log | grep -cE '^==[0-9]+==    at ' || true)
ours=$(grep -l 'order_mgmt.so' "$OM_SOCK"/vg/*.log 2>/dev/null | wc -l || true)
echo "valgrind: $(ls "$OM_SOCK"/vg | wc -l) processes, $errors errors in all (PostgreSQL's own known ones: WAL padding, regex cache), $ours processes with an error in order_mgmt.so"
[ "$ours" -eq 0 ] || grep -B5 -A30 'order_mgmt.so' "$OM_SOCK"/vg/*.log | head -100
[ "$ours" -eq 0 ]
