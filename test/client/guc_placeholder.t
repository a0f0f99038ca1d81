#!/usr/bin/env bash
# A session that set order_mgmt.automated before order_mgmt's library was
# loaded holds a placeholder (here '', which is no boolean) must still be
# able to allocate backorders: the allocation runs with automated on and
# gives the session its setting back (0.3.0 saved and restored the
# placeholder's '' and failed).  Needs fresh sessions (CREATE EXTENSION
# loads the library), hence a client test.  Prints TAP.
set -u
DB=om_guc_placeholder
n=0
tap() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
q() { psql -qXAt -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
q >/dev/null <<'SQL'
CREATE EXTENSION order_mgmt;
INSERT INTO order_mgmt.customers (customer_id, name, payment_terms, credit_limit) VALUES ('C', 'c', 'credit', 1e6);
INSERT INTO order_mgmt.products (sku, name, list_price) VALUES ('S', 's', 1);
INSERT INTO order_mgmt.warehouses (warehouse_id, name) VALUES ('W', 'w');
SQL
out=$(q 2>/dev/null <<SQL
SELECT set_config('order_mgmt.automated', '', false) = '';
SELECT count(*) FROM pg_catalog.pg_settings WHERE name = 'order_mgmt.automated';
\! psql -qXAt -d $DB -c "SELECT order_mgmt.confirm_order(order_mgmt.place_order('C', '[{\"sku\": \"S\", \"qty\": 5}]', '{\"country\": \"DE\"}', allow_backorder => true))"
SELECT order_mgmt.receive_stock('W', 'S', 10);
SELECT current_setting('order_mgmt.automated');
SQL
)
mapfile -t got <<<"$out"
[ "${got[0]:-}" = t ] && [ "${got[1]:-}" = 0 ]
tap $? "the session holds a placeholder '' and the library is not loaded (got: ${got[0]:-}, ${got[1]:-} settings)"
[ "${got[3]:-}" = 5 ]
tap $? "a later receipt in that session allocates the backordered units (got: ${got[3]:-})"
[ "${got[4]:-}" = off ]
tap $? "order_mgmt.automated is back to the session's setting, the default (got: ${got[4]:-})"
[ "$(q -c "SELECT qty_backordered || '/' || qty_reserved FROM order_mgmt.order_lines")" = 0/5 ]
tap $? "the order's line is fully reserved"
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
echo "1..$n"
