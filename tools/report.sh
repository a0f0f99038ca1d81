#!/usr/bin/env bash
# tools/report.sh DB OUTDIR: the BI report of an order_mgmt database.
# Writes OUTDIR/index.html (KPIs in total, by channel and by day, the top
# process variants, the open orders at risk, stock short of demand) and
# OUTDIR/process.svg (the process map, rendered from process_map_dot() by
# Graphviz's dot), and prints the path of index.html.  Reads the BI views
# only: any role granted order_mgmt_reader can run it.  DB is a database
# name or a connection string; PGHOST, PGPORT, PGUSER apply as for psql.
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 DB OUTDIR" >&2
    exit 2
fi
DB=$1
OUT=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v dot >/dev/null || { echo "report.sh: Graphviz's dot is missing (apt-get install graphviz)" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "SELECT order_mgmt.process_map_dot()" >"$OUT/process.dot"
dot -Tsvg "$OUT/process.dot" -o "$OUT/process.svg"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$HERE/report.sql" -o "$OUT/index.html"
echo "$OUT/index.html"
