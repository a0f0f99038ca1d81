#!/usr/bin/env bash
# Confirmation cost against the size of a customer's history (issue 9): a
# credit customer with OPEN=100000 open, credit-approved orders against new
# customers with none.  One client (the cost of one confirmation, not the
# queueing on one customer's credit lock), synchronous_commit off, median of
# RUNS runs of SECS seconds, the two workloads alternating.  Target: BIG
# within 1.2x of NEW (0.3.0 summed the customer's open orders at every
# confirmation).  Uses the cluster of tools/common.sh (OM_* variables).
source "$(dirname "$0")/../tools/common.sh"
set +e
OPEN=${OPEN:-100000}
SECS=${SECS:-10}
RUNS=${RUNS:-3}
DB=om_bench_exposure
[ "${BENCH_SETUP:-1}" = 1 ] && om_setup
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
psql -qX -v ON_ERROR_STOP=1 -d $DB >/dev/null <<SQL
CREATE EXTENSION order_mgmt;
INSERT INTO order_mgmt.customers (customer_id, name, payment_terms, credit_limit)
SELECT 'N' || g, 'new customer ' || g, 'credit', 1e11 FROM generate_series(1, 10000) g;
INSERT INTO order_mgmt.customers (customer_id, name, payment_terms, credit_limit)
VALUES ('BIG', 'a customer with history', 'credit', 1e11);
INSERT INTO order_mgmt.products (sku, name, list_price) SELECT 'S' || g, 'p', 1 FROM generate_series(1, 1000) g;
INSERT INTO order_mgmt.warehouses (warehouse_id, name) VALUES ('W', 'w');
SELECT count(order_mgmt.receive_stock('W', 'S' || g, 1000000000)) FROM generate_series(1, 1000) g;
-- the history: open orders whose credit was approved (they count in the exposure)
INSERT INTO order_mgmt.orders (customer_id, status, currency, total, ship_to, ship_to_country,
                               credit_approved_at)
SELECT 'BIG', 'confirmed', 'EUR', 10, '{}', 'DE', now() FROM generate_series(1, $OPEN);
VACUUM ANALYZE;
SQL
echo "# BIG: $(psql -qXAt -d $DB -c "SELECT count(*) || ' open orders, exposure ' || (SELECT exposure FROM order_mgmt.credit_accounts WHERE customer_id = 'BIG') FROM order_mgmt.orders WHERE customer_id = 'BIG'")"
for who in BIG NEW; do
    if [ $who = BIG ]; then cust="'BIG'"; else cust="'N' || :n"; fi
    cat >"$TMP/$who.sql" <<EOF2
\set n random(1, 10000)
\set s random(1, 1000)
BEGIN;
SELECT order_mgmt.confirm_order(order_mgmt.place_order($cust, ('[{"sku": "S' || :s || '", "qty": 1}]')::jsonb, '{"country": "DE"}'::jsonb));
COMMIT;
EOF2
done
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
: >"$TMP/BIG.tps"; : >"$TMP/NEW.tps"
for r in $(seq "$RUNS"); do
    for who in BIG NEW; do
        PGOPTIONS="-c synchronous_commit=off" pgbench -n -M prepared -c 1 -T "$SECS" -f "$TMP/$who.sql" $DB 2>>"$TMP/err" \
            | awk '/^tps = / {printf "%.0f\n", $3}' >>"$TMP/$who.tps"
    done
done
big=$(median <"$TMP/BIG.tps"); new=$(median <"$TMP/NEW.tps")
echo "# place + confirm, 1 client, sync off, ${RUNS}x${SECS}s, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
echo "customer with $OPEN open orders: $big tps ($(sort -n "$TMP/BIG.tps" | paste -sd' '))"
echo "new customers:                   $new tps ($(sort -n "$TMP/NEW.tps" | paste -sd' '))"
awk -v a="$new" -v b="$big" 'BEGIN {printf "cost ratio BIG/NEW = %.2f (target <= 1.2)\n", a / b}'
if [ -s "$TMP/err" ]; then sed 's/^/# pgbench: /' "$TMP/err" | tail -3; fi
