# Shared by tools/demo.sh, tools/test.sh and the bench/ scripts: packages, build,
# install, and a private PostgreSQL 15 cluster run by the postgres user.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# OM_DESTDIR: install into a private copy of PostgreSQL 15 instead of the
# system one, so several work trees can be tested side by side.
OM_DESTDIR=${OM_DESTDIR:-}
PGBIN=$OM_DESTDIR/usr/lib/postgresql/15/bin
OM_PGDATA=${OM_PGDATA:-/tmp/order_mgmt_pg/data}
OM_SOCK=${OM_SOCK:-/tmp/order_mgmt_pg}
export PGHOST=$OM_SOCK PGPORT=${OM_PGPORT:-5499} PGUSER=postgres
export PATH="$PGBIN:$PATH"

PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap \
libtap-parser-sourcehandler-pgtap-perl postgresql-contrib build-essential python3-psycopg2 valgrind sqlsmith"
# BI (issue 13): dot renders the process map (tools/report.sh), xmllint checks
# the XES export, headless chromium opens the report page (test/client/bi_report.t)
PACKAGES="$PACKAGES graphviz libxml2-utils chromium"

# Install the Debian packages the project needs (only when one is missing).
om_packages() {
    local missing=""
    for p in $PACKAGES; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "== installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

# Build with warnings as errors, and install into PostgreSQL 15.
om_build() {
    echo "== building"
    if [ -n "$OM_DESTDIR" ] && [ ! -x "$PGBIN/postgres" ]; then
        mkdir -p "$OM_DESTDIR/usr/lib/postgresql" "$OM_DESTDIR/usr/share/postgresql"
        cp -a /usr/lib/postgresql/15 "$OM_DESTDIR/usr/lib/postgresql/"
        cp -a /usr/share/postgresql/15 "$OM_DESTDIR/usr/share/postgresql/"
    fi
    make -C "$ROOT" -s with_llvm=no WERROR=1 PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
    # scripts of an older build (a full script of a version no longer
    # current) would be picked over the update path: install afresh
    rm -f "$OM_DESTDIR"/usr/share/postgresql/15/extension/order_mgmt--*.sql
    make -C "$ROOT" -s with_llvm=no PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config \
        ${OM_DESTDIR:+DESTDIR=$OM_DESTDIR} install >/dev/null
}

# A fresh private cluster (the server refuses to run as root).
om_cluster() {
    echo "== starting a private cluster on port $PGPORT"
    om_stop_cluster
    rm -rf "$OM_PGDATA"
    mkdir -p "$OM_PGDATA" && chown -R postgres:postgres "$OM_SOCK"
    su postgres -c "$PGBIN/initdb -D $OM_PGDATA -A trust -U postgres --no-sync" >/dev/null
    cat >>"$OM_PGDATA/postgresql.conf" <<CONF
port = $PGPORT
unix_socket_directories = '$OM_SOCK'
listen_addresses = ''
max_connections = 120
shared_buffers = 512MB
fsync = on
max_prepared_transactions = 10
# test/client/standby.t streams a replica from this cluster (initdb's
# pg_hba.conf already trusts local replication connections)
wal_level = replica
CONF
    su postgres -c "$PGBIN/pg_ctl -D $OM_PGDATA -l $OM_SOCK/server.log -w start" >/dev/null
}

om_stop_cluster() {
    if [ -f "$OM_PGDATA/postmaster.pid" ]; then
        su postgres -c "$PGBIN/pg_ctl -D $OM_PGDATA -m fast -w stop" >/dev/null 2>&1 || true
    fi
}

om_setup() {
    om_packages
    om_build
    om_cluster
}
