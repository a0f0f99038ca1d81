# A second private cluster with order_mgmt in shared_preload_libraries, for
# bench/stream.sh (the main test cluster does not preload, so it proves
# relay mode is refused there; test/client/stream_relay.t starts its own).  Source it; needs
# PGBIN (tools/common.sh).  The server runs as the postgres user.
#
#   relay_cluster_init DIR PORT 'db1,db2' [extra postgresql.conf lines]
#   relay_cluster_start DIR ; relay_cluster_stop DIR
#   relay_cluster_wait_worker PORT SOCKDIR DB   (until its relay worker runs)

relay_cluster_init() {
    local dir=$1 port=$2 dbs=$3 extra=${4:-}
    relay_cluster_stop "$dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    su postgres -c "$PGBIN/initdb -D $dir/data -A trust -U postgres --no-sync" >/dev/null
    cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$dir'
listen_addresses = ''
max_connections = 60
shared_buffers = 256MB
fsync = on
max_prepared_transactions = 10
wal_level = replica
max_wal_senders = 4
shared_preload_libraries = 'order_mgmt'
order_mgmt.relay_databases = '$dbs'
$extra
CONF
    echo "local replication postgres trust" >>"$dir/data/pg_hba.conf"
}

relay_cluster_start() {
    su postgres -c "$PGBIN/pg_ctl -D $1/data -l $1/server.log -w start" >/dev/null
}

relay_cluster_stop() {
    if [ -f "$1/data/postmaster.pid" ]; then
        su postgres -c "$PGBIN/pg_ctl -D $1/data -m fast -w stop" >/dev/null 2>&1 || true
    fi
}

# Wait (at most ~60 s) until the relay worker of DB shows in pg_stat_activity.
relay_cluster_wait_worker() {
    local port=$1 sock=$2 db=$3 i
    for i in $(seq 600); do
        [ "$(psql -qXAt -h "$sock" -p "$port" -d postgres -c \
             "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'order_mgmt relay' AND datname = '$db'")" = 1 ] \
            && return 0
        sleep 0.1
    done
    return 1
}
