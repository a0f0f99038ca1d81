#!/usr/bin/env bash
# The whole suite (tools/test.sh: pg_regress, isolation, pgTAP, client
# tests) against order_mgmt built with -fsanitize=address,undefined, and
# fails on any sanitizer report whose stack names order_mgmt.
#
# Debian's postgres is not sanitized, so the sanitizer runtimes are
# preloaded into it (LD_PRELOAD; ASan must come first in the process), and
# exported to every process of the run, so the servers the client tests
# start (standby, crash test) get them too.  Leak detection is off: a
# backend frees by memory context or by exiting, which LeakSanitizer
# reports as leaks.  Only malloc'd memory is checked: palloc chunks inside
# a context's blocks are not poisoned.  A canary C function first proves
# that both sanitizers report from inside a backend.
#
# The sanitized build goes into its own private copy of PostgreSQL
# (OM_ASAN_DESTDIR, default /opt/order_mgmt_asan), built in a temporary copy
# of the tree; the cluster is OM_ASAN_PGPORT (default 5494; the standby and
# crash-test clusters take the next two ports) under
# /tmp/order_mgmt_asan.  Never touches the system PostgreSQL.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export OM_DESTDIR=${OM_ASAN_DESTDIR:-/opt/order_mgmt_asan}
export OM_PGPORT=${OM_ASAN_PGPORT:-5494}
export OM_SOCK=${OM_ASAN_SOCK:-/tmp/order_mgmt_asan} OM_PGDATA=${OM_ASAN_SOCK:-/tmp/order_mgmt_asan}/data
export OM_STANDBY_PORT=${OM_STANDBY_PORT:-$((OM_PGPORT + 1))} OM_CRASH_PORT=${OM_CRASH_PORT:-$((OM_PGPORT + 2))}
source "$ROOT/tools/common.sh"
set +e
om_packages
LIBASAN=$(gcc -print-file-name=libasan.so)
LIBUBSAN=$(gcc -print-file-name=libubsan.so)
[ -f "$LIBASAN" ] && [ -f "$LIBUBSAN" ] || { echo "no libasan/libubsan for gcc: cannot sanitize"; exit 1; }
LIBASAN=$(readlink -f "$LIBASAN")
LIBUBSAN=$(readlink -f "$LIBUBSAN")

# a private copy of PostgreSQL 15 (as om_build makes it), then the sanitized
# extension built in a copy of the work tree (the tree's objects stay as they are)
if [ ! -x "$PGBIN/postgres" ]; then
    mkdir -p "$OM_DESTDIR/usr/lib/postgresql" "$OM_DESTDIR/usr/share/postgresql"
    cp -a /usr/lib/postgresql/15 "$OM_DESTDIR/usr/lib/postgresql/"
    cp -a /usr/share/postgresql/15 "$OM_DESTDIR/usr/share/postgresql/"
fi
BUILD=$(mktemp -d /tmp/om-asan-build.XXXXXX)
trap '[ -n "${OM_KEEP:-}" ] || rm -rf "$BUILD"' EXIT
(cd "$ROOT" && git ls-files -co --exclude-standard | tar -cf - -T -) | tar -xf - -C "$BUILD"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
echo "== building with $SAN"
make -C "$BUILD" -s with_llvm=no WERROR=1 PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config COPT="$SAN" &&
make -C "$BUILD" -s with_llvm=no PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config COPT="$SAN" \
    DESTDIR="$OM_DESTDIR" install >/dev/null || { echo "sanitized build failed"; exit 1; }
ldd "$OM_DESTDIR/usr/lib/postgresql/15/lib/order_mgmt.so" | grep libasan >/dev/null ||
    { echo "order_mgmt.so is not linked with libasan"; exit 1; }

REPORTS=$OM_SOCK/reports
om_stop_cluster
rm -rf "$OM_SOCK" && mkdir -p "$OM_SOCK" "$REPORTS" && chown -R postgres: "$OM_SOCK"
chmod 1777 "$REPORTS"       # root's clients and postgres's servers both write here
# Preloaded into an unsanitized program, ASan initializes lazily at the
# first call it intercepts, which for postgres is inside libgpg-error's
# constructor while glibc's bindtextdomain holds its gettext lock.  ASan's
# start-up looks up swift_demangle with dlsym; the failure message goes
# through dcgettext, which releases that lock under bindtextdomain, and
# postgres then hangs in its own bindtextdomain.  A stub swift_demangle
# (returns NULL: "cannot demangle") lets the lookup succeed.
printf '%s\n' '#include <stddef.h>' \
    'char *swift_demangle(const char *m, size_t n, char *o, size_t *s, unsigned f);' \
    'char *swift_demangle(const char *m, size_t n, char *o, size_t *s, unsigned f) { return NULL; }' \
    >"$BUILD/swift_stub.c"
gcc -shared -fPIC -o "$OM_SOCK/swift_stub.so" "$BUILD/swift_stub.c" || exit 1
# halt_on_error: an error ends the process, so the test that caused it fails
# too; the report file names the code.
export LD_PRELOAD="$LIBASAN $LIBUBSAN $OM_SOCK/swift_stub.so"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:log_path=$REPORTS/asan:detect_odr_violation=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$REPORTS/ubsan"
om_cluster

# Canary: a C function compiled the same way with a heap overflow and a
# signed overflow must each produce a report, or the sanitizers are not
# active in the backends and a clean run would prove nothing.
cat >"$BUILD/om_asan_canary.c" <<'C'
#include "postgres.h"
#include "fmgr.h"
PG_MODULE_MAGIC;
PG_FUNCTION_INFO_V1(om_asan_canary);
/* kind 1: read past a malloc'd block; kind 2: signed integer overflow */
Datum
om_asan_canary(PG_FUNCTION_ARGS)
{
	int			kind = PG_GETARG_INT32(0);
	volatile int big = PG_INT32_MAX;
	char	   *p = malloc(7 + kind);	/* a size UBSan's object-size check cannot know */
	int			r = kind == 1 ? p[7 + kind] : big + kind;

	free(p);
	PG_RETURN_INT32(r);
}
C
gcc $SAN -fPIC -shared -I"$(/usr/lib/postgresql/15/bin/pg_config --includedir-server)" \
    -o "$PGBIN/../lib/om_asan_canary.so" "$BUILD/om_asan_canary.c" || exit 1
for kind in 1 2; do
    psql -qX -d postgres -c "CREATE FUNCTION pg_temp.canary(int) RETURNS int LANGUAGE c
                             AS '\$libdir/om_asan_canary', 'om_asan_canary'" \
         -c "SELECT pg_temp.canary($kind)" >/dev/null 2>&1
    sleep 1     # the postmaster restarts after the failed backend: wait until it accepts again
    for _ in $(seq 120); do pg_isready -q && break; sleep 0.5; done
done
rm -f "$PGBIN/../lib/om_asan_canary.so"
mkdir -p "$OM_SOCK/canary" && mv "$REPORTS"/* "$OM_SOCK/canary/" 2>/dev/null
heap=$(grep -l 'heap-buffer-overflow' "$OM_SOCK"/canary/* 2>/dev/null | wc -l)
ub=$(grep -c 'om_asan_canary.c.*runtime error: signed integer overflow' "$OM_SOCK/server.log")
echo "canary: $heap AddressSanitizer heap-buffer-overflow report(s), $ub UBSan signed-overflow report(s)"
[ "$heap" -ge 1 ] && [ "$ub" -ge 1 ] || { echo "the sanitizers are not active in the backends"; om_stop_cluster; exit 1; }
LOGSTART=$(wc -l <"$OM_SOCK/server.log")

echo "== the suite against the sanitized build (server with $LIBASAN preloaded)"
OM_USE_CLUSTER=1 bash "$ROOT/tools/test.sh" >"$OM_SOCK/suite.log" 2>&1
rc=$?
om_stop_cluster
unset LD_PRELOAD
grep -E '^   |passed, ' "$OM_SOCK/suite.log"

# ASan writes one file per process; UBSan (combined with ASan, GCC 12)
# ignores log_path and writes to stderr: the server log and the test logs.
all=$(ls "$REPORTS" | wc -l)
ours=$(grep -l 'order_mgmt' "$REPORTS"/* 2>/dev/null | wc -l)
tail -n +"$((LOGSTART + 1))" "$OM_SOCK/server.log" >"$OM_SOCK/suite-server.log"
ub=$(cat "$OM_SOCK/suite-server.log" "$OM_SOCK/suite.log" | grep -c 'runtime error:')
ubours=$(cat "$OM_SOCK/suite-server.log" "$OM_SOCK/suite.log" | grep 'runtime error:' | grep -c "$BUILD/")
echo "AddressSanitizer reports: $all in all, $ours naming order_mgmt (in $REPORTS)"
echo "UBSan reports: $ub in all, $ubours in order_mgmt code"
[ "$ours" -eq 0 ] || grep -h -A40 'ERROR: AddressSanitizer' $(grep -l order_mgmt "$REPORTS"/*) | head -120
[ "$ubours" -eq 0 ] || grep -h -A5 'runtime error:' "$OM_SOCK/suite-server.log" "$OM_SOCK/suite.log" | head -60
[ "$all" -eq 0 ] || [ "$ours" -ne 0 ] || ls "$REPORTS" | head
grep -q 'terminated by signal' "$OM_SOCK/suite-server.log" && echo "the server log shows a backend terminated by a signal"
[ "$rc" -eq 0 ] && [ "$ours" -eq 0 ] && [ "$ubours" -eq 0 ]
