#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 (as root) and runs the order
# workflow demo against a private cluster, with a LISTEN session printing
# the events as they are committed.
source "$(dirname "$0")/common.sh"
om_setup
PGOPTIONS="-c client_min_messages=warning" psql -qX -d postgres \
    -c "DROP DATABASE IF EXISTS om_demo" -c "CREATE DATABASE om_demo"
psql -qX -d om_demo -c "CREATE EXTENSION order_mgmt"
/usr/bin/python3 "$ROOT/tools/listen.py" 2 om_demo &
listener=$!
sleep 1
psql -qX -d om_demo -f "$ROOT/tools/demo.sql"
sleep 0.5
wait "$listener"
# the BI report of the demo: KPI tables, variants, at-risk list, process map
report=$(bash "$ROOT/tools/report.sh" om_demo "${OM_REPORT_DIR:-/tmp/order_mgmt_report}")
echo "== BI report written: $report (and process.svg next to it)"
echo "== the cluster keeps running: PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER psql -d om_demo"
