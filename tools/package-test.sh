#!/usr/bin/env bash
# Pre-release check of both ways users install order_mgmt; prints TAP.
#
# Debian package: builds postgresql-15-order-mgmt with dpkg-buildpackage in
# a temporary copy of the work tree, checks its file list against the
# source (the generated install script, every frozen script, the library),
# extracts it (dpkg -x) over a private copy of PostgreSQL 15 from which any
# order_mgmt file was removed, starts a private cluster from that copy and
# proves CREATE EXTENSION, the upgrade path and the whole suite
# (tools/test.sh) work from the packaged files.
# PGXN: make dist, checks the archive's file list and META.json, installs
# it with `pgxn install` into a second private copy and runs `pgxn check`.
#
# Run as root on Debian 12 (it installs the build dependencies with apt, and
# the servers run as the postgres user).  Never touches the system
# PostgreSQL.  Port: OM_PKG_PGPORT (default 5490); the suite's standby and
# crash-test clusters use the two ports after it.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${OM_PKG_PGPORT:-5490}
VER=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$ROOT/order_mgmt.control")
T=$(mktemp -d /tmp/om-package-test.XXXXXX)
chmod 755 "$T"
SOCK=$T/sock
N=0
FAILED=0

tap() {     # tap EXIT-STATUS NAME
    N=$((N + 1))
    if [ "$1" -eq 0 ]; then echo "ok $N - $2"; else echo "not ok $N - $2"; FAILED=1; fi
}
show() { sed 's/^/# /' "$@" | tail -30; }
as_pg() { su postgres -c "$*"; }
# start_cluster PGROOT: a fresh cluster from the binaries under PGROOT
start_cluster() {
    local bin=$1/usr/lib/postgresql/15/bin
    stop_cluster
    rm -rf "$T/data" && mkdir -p "$T/data" "$SOCK" && chown postgres: "$T/data" "$SOCK"
    as_pg "$bin/initdb -D $T/data -A trust -U postgres --no-sync" >"$T/initdb.log" 2>&1 &&
    as_pg "$bin/pg_ctl -D $T/data -l $SOCK/server.log -w start \
           -o '-c port=$PORT -c unix_socket_directories=$SOCK -c listen_addresses='" >/dev/null
}
stop_cluster() {
    [ -f "$T/data/postmaster.pid" ] &&
        as_pg "$T/bin/pg_ctl -D $T/data -m fast -w stop" >/dev/null 2>&1
    return 0
}
# private_pg DIR: a copy of the system PostgreSQL 15 without any order_mgmt file
private_pg() {
    mkdir -p "$1/usr/lib/postgresql" "$1/usr/share/postgresql"
    cp -a /usr/lib/postgresql/15 "$1/usr/lib/postgresql/"
    cp -a /usr/share/postgresql/15 "$1/usr/share/postgresql/"
    find "$1" -name 'order_mgmt*' -prune -exec rm -rf {} +
    ln -sfn "$1/usr/lib/postgresql/15/bin" "$T/bin"
}
cleanup() { stop_cluster; [ -n "${OM_KEEP:-}" ] || rm -rf "$T"; }
trap cleanup EXIT
export PGHOST=$SOCK PGPORT=$PORT PGUSER=postgres PGOPTIONS="-c client_min_messages=warning"
q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }

# --- tools --------------------------------------------------------------
need="dpkg-dev debhelper fakeroot postgresql-server-dev-all pgxnclient unzip"
missing=""
for p in $need; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

# --- Debian package -----------------------------------------------------
SRC=$T/src/order-mgmt
mkdir -p "$SRC"
(cd "$ROOT" && git ls-files -co --exclude-standard | tar -cf - -T -) | tar -xf - -C "$SRC"
(cd "$SRC" && dpkg-checkbuilddeps) >"$T/deps.log" 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq "$SRC" >>"$T/deps.log" 2>&1
(cd "$SRC" && dpkg-checkbuilddeps) >>"$T/deps.log" 2>&1
tap $? "the build dependencies of debian/control are installed"
(cd "$SRC" && dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1
rc=$?
tap $rc "dpkg-buildpackage -us -uc -b (build-time installcheck included)"
[ $rc -eq 0 ] || show "$T/build.log"
DEB=$(ls "$T"/src/postgresql-15-order-mgmt_"$VER"-*_*.deb 2>/dev/null | head -1)
[ -n "$DEB" ] && [ "$(dpkg-deb -f "$DEB" Package)" = postgresql-15-order-mgmt ]
tap $? "the package is postgresql-15-order-mgmt $VER ($(basename "${DEB:-none}"))"
[ -n "$DEB" ] || { echo "1..$N"; exit 1; }

# The expected files, from the source: the library, its bitcode (one per
# object of OBJS in the Makefile), the control file, the install script
# make generates, and every frozen script of sql/.
printf 'om_print_objs:\n\t@echo $(OBJS)\n' >"$T/print.mk"
objs=$(make -s -C "$ROOT" -f Makefile -f "$T/print.mk" om_print_objs \
       PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config)
{
    echo usr/lib/postgresql/15/lib/order_mgmt.so
    echo usr/lib/postgresql/15/lib/bitcode/order_mgmt.index.bc
    for o in $objs; do echo "usr/lib/postgresql/15/lib/bitcode/order_mgmt/${o%.o}.bc"; done
    echo usr/share/postgresql/15/extension/order_mgmt.control
    echo "usr/share/postgresql/15/extension/order_mgmt--$VER.sql"
    for f in "$ROOT"/sql/order_mgmt--*.sql; do echo "usr/share/postgresql/15/extension/$(basename "$f")"; done
    echo usr/share/doc/postgresql-15-order-mgmt/changelog.Debian.gz
    echo usr/share/doc/postgresql-15-order-mgmt/copyright
} | sort >"$T/want.files"
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {sub(/^\.\//, "", $6); print $6}' | sort >"$T/got.files"
diff "$T/want.files" "$T/got.files" >"$T/files.diff"
rc=$?
tap $rc "the package holds exactly the $(wc -l <"$T/want.files") expected files"
[ $rc -eq 0 ] || show "$T/files.diff"
dpkg-deb -e "$DEB" "$T/DEBIAN"
[ "$(ls "$T/DEBIAN" | tr '\n' ' ')" = "control md5sums " ]
tap $? "the package has no maintainer scripts (nothing runs at install)"

# Extract it over a private PostgreSQL copy (never the system one).
PKGROOT=$T/pkgroot
private_pg "$PKGROOT"
[ -z "$(find "$PKGROOT" -name 'order_mgmt*')" ]
tap $? "the private PostgreSQL copy has no order_mgmt file before extraction"
dpkg -x "$DEB" "$PKGROOT" && (cd "$PKGROOT" && md5sum -c --quiet "$T/DEBIAN/md5sums")
tap $? "dpkg -x into the private copy; every file matches the package's md5sums"
EXT=$PKGROOT/usr/share/postgresql/15/extension
cp -a "$SRC" "$T/fresh" && make -s -C "$T/fresh" "build/order_mgmt--$VER.sql" >/dev/null 2>&1 &&
    cmp -s "$T/fresh/build/order_mgmt--$VER.sql" "$EXT/order_mgmt--$VER.sql"
tap $? "the packaged order_mgmt--$VER.sql is the script make builds from sql/schema/"
rc=0
for f in "$ROOT"/sql/order_mgmt--*.sql; do cmp -s "$f" "$EXT/$(basename "$f")" || rc=1; done
tap $rc "every frozen script of sql/ is packaged unchanged"

start_cluster "$PKGROOT"
tap $? "a private cluster starts from the package's PostgreSQL copy"
q -d postgres -c "CREATE DATABASE om_pkg" -c "CREATE DATABASE om_pkg_up" >/dev/null
got=$(q -d om_pkg -c "CREATE EXTENSION order_mgmt" \
        -c "SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'" 2>&1)
[ "$got" = "$VER" ]
tap $? "CREATE EXTENSION order_mgmt from the package installs $VER (got: $got)"
# the backend that loads the module maps order_mgmt.so from the package
pid=$(q -d om_pkg <<'SQL'
LOAD 'order_mgmt';
SELECT pg_backend_pid() AS pid \gset
\setenv OM_PID :pid
\! grep -o '/[^ ]*order_mgmt\.so' /proc/$OM_PID/maps | sort -u
SQL
)
case "$pid" in "$PKGROOT/usr/lib/postgresql/15/lib/order_mgmt.so") rc=0 ;; *) rc=1 ;; esac
tap $rc "the backend loaded order_mgmt.so from the package (${pid:-nothing})"
got=$(q -d om_pkg_up -c "CREATE EXTENSION order_mgmt VERSION '0.1.0'" -c "ALTER EXTENSION order_mgmt UPDATE" \
        -c "SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'" 2>&1)
[ "$got" = "$VER" ]
tap $? "the packaged upgrade scripts take 0.1.0 to $VER (got: $got)"

# The whole suite against the packaged files (binaries of the same copy
# for the standby and crash-test clusters).
(cd "$SRC" && OM_DESTDIR=$PKGROOT OM_SOCK=$SOCK OM_PGPORT=$PORT OM_USE_CLUSTER=1 \
    OM_STANDBY_PORT=$((PORT + 1)) OM_CRASH_PORT=$((PORT + 2)) bash tools/test.sh) >"$T/suite.log" 2>&1
rc=$?
tap $rc "tools/test.sh against the package: $(tail -1 "$T/suite.log")"
[ $rc -eq 0 ] && grep -E '^   ' "$T/suite.log" | sed 's/^ */#   /' || show "$T/suite.log"
stop_cluster

# --- PGXN ---------------------------------------------------------------
make -s -C "$ROOT" dist >"$T/dist.log" 2>&1 && mv "$ROOT/order_mgmt-$VER.zip" "$T/"
tap $? "make dist writes order_mgmt-$VER.zip"
ZIP=$T/order_mgmt-$VER.zip
# what `make installcheck` of a PGXN user reads: the build inputs, the
# regression and isolation tests with the fixtures they include, README and
# the documents it links (docs/)
{
    echo META.json
    git -C "$ROOT" ls-files Makefile order_mgmt.control README.md docs src sql expected test/isolation
    sed -n 's/^\\i \(test\/fixtures\/[^ ]*\).*/\1/p' "$ROOT"/sql/*.sql | sort -u
} | sed "s|^|order_mgmt-$VER/|" | sort >"$T/want.zip"
unzip -Z1 "$ZIP" 2>/dev/null | grep -v '/$' | sort >"$T/got.zip"
diff "$T/want.zip" "$T/got.zip" >"$T/zip.diff"
rc=$?
tap $rc "the archive holds exactly the $(wc -l <"$T/want.zip") files a PGXN user needs (build inputs, regression and isolation tests and their fixtures, README and docs/, META.json)"
[ $rc -eq 0 ] || show "$T/zip.diff"
unzip -p "$ZIP" "order_mgmt-$VER/META.json" | python3 -c '
import json, sys
m = json.load(sys.stdin)
ok = (m["meta-spec"]["version"] == "1.0.0" and m["name"] == "order_mgmt" and m["version"] == sys.argv[1]
      and m["provides"]["order_mgmt"]["version"] == sys.argv[1]
      and all(k in m for k in ("abstract", "maintainer", "license")))
sys.exit(0 if ok else 1)' "$VER"
tap $? "META.json: meta-spec 1.0.0, order_mgmt $VER, provides order_mgmt $VER, required keys present"

PGXNROOT=$T/pgxnroot
private_pg "$PGXNROOT"
# headers for PGXS (pg_config is relocatable); pgxn wants pg_config --libdir writable
ln -s /usr/include "$PGXNROOT/usr/include"
mkdir -p "$PGXNROOT/$(/usr/lib/postgresql/15/bin/pg_config --libdir)"
PGC=$PGXNROOT/usr/lib/postgresql/15/bin/pg_config
(cd "$T" && pgxn install --nosudo --pg_config "$PGC" "$ZIP") >"$T/pgxn.log" 2>&1 &&
    [ -f "$PGXNROOT/usr/share/postgresql/15/extension/order_mgmt--$VER.sql" ]
rc=$?
tap $rc "pgxn install of the archive into a second private copy"
[ $rc -eq 0 ] || show "$T/pgxn.log"
start_cluster "$PGXNROOT"
got=$(q -d postgres -c "CREATE EXTENSION order_mgmt" \
        -c "SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'" 2>&1)
[ "$got" = "$VER" ]
tap $? "CREATE EXTENSION order_mgmt after pgxn install gives $VER (got: $got)"
(cd "$T" && pgxn check --pg_config "$PGC" "$ZIP") >"$T/check.log" 2>&1
rc=$?
tap $rc "pgxn check (make installcheck from the archive): $(grep -E 'tests passed|failed' "$T/check.log" | tr -s ' \n' ' ')"
[ $rc -eq 0 ] || show "$T/check.log"
stop_cluster

echo "1..$N"
[ $FAILED -eq 0 ]
