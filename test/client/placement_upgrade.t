#!/usr/bin/env bash
# Upgrade 0.1.0 -> default_version across the placement schema (0.2.0):
# data written under 0.1.0 survives ALTER EXTENSION UPDATE, orders placed
# under 0.1.0 can be confirmed, the upgraded schema equals a fresh install
# (member objects, definitions, constraints, triggers, privileges, dump
# configuration), and pg_dump/pg_restore keeps the new 0.2.0 tables.
set -u
cd "$(dirname "$0")/../.."
DEFAULT=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" order_mgmt.control)
UP=om_placement_up
FRESH=om_placement_fresh
RESTORED=om_placement_restored
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
N=0
say() { N=$((N + 1)); if [ "$1" = 0 ]; then echo "ok $N - $2"; else echo "not ok $N - $2"; fi; }
q() { psql -qXAt -v ON_ERROR_STOP=1 -d "$@"; }

echo "1..9"
for db in $UP $FRESH $RESTORED; do
    psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
done

# 0.1.0 with data
q $UP >/dev/null <<'SQL'
CREATE EXTENSION order_mgmt VERSION '0.1.0';
SET search_path = order_mgmt;
INSERT INTO customers (customer_id, name, payment_terms, credit_limit) VALUES ('U1', 'u', 'credit', 1000);
INSERT INTO products (sku, name, list_price) VALUES ('U-A', 'a', 3);
INSERT INTO warehouses (warehouse_id, name) VALUES ('U-W', 'w');
SELECT place_order('U1', '[{"sku": "U-A", "qty": 2}]', '{"country": "NL"}', external_ref => 'old-1');
SELECT place_order('U1', '[{"sku": "U-A", "qty": 1}]', '{"country": "NL"}', external_ref => 'old-2');
SELECT set_status('order', (SELECT order_id FROM orders WHERE external_ref = 'old-2'), 'cancelled', 'test');
SQL
DATA="SELECT md5(string_agg(x, ';' ORDER BY x)) FROM (
  SELECT concat_ws(',', order_id, external_ref, status, payment_status, total, request_hash) x FROM order_mgmt.orders
  UNION ALL SELECT concat_ws(',', order_id, line_no, sku, qty, unit_price) FROM order_mgmt.order_lines
  UNION ALL SELECT concat_ws(',', seq, event_id, event_type, to_status) FROM order_mgmt.events
  UNION ALL SELECT concat_ws(',', customer_id, credit_limit) FROM order_mgmt.customers) t"
before=$(q $UP -c "$DATA")
q $UP -c "ALTER EXTENSION order_mgmt UPDATE" >/dev/null 2>"$TMP/err"
say $? "ALTER EXTENSION order_mgmt UPDATE from 0.1.0"
[ "$(q $UP -c "SELECT extversion FROM pg_extension WHERE extname = 'order_mgmt'")" = "$DEFAULT" ]
say $? "the upgraded version is $DEFAULT"
[ "$(q $UP -c "$DATA")" = "$before" ]
say $? "0.1.0 data is intact after the upgrade"

# the new API works on an order placed under 0.1.0
got=$(q $UP -c "SELECT order_mgmt.receive_stock('U-W', 'U-A', 5)" \
             -c "SELECT order_mgmt.confirm_order(order_id) FROM order_mgmt.orders WHERE external_ref = 'old-1'" 2>&1 | tail -1)
[ "$got" = "confirmed" ]
say $? "an order placed under 0.1.0 is confirmed after the upgrade (got: $got)"

# schema of the upgraded install vs a fresh one
q $FRESH -c "CREATE EXTENSION order_mgmt" >/dev/null
SCHEMA=$(cat <<'SQL'
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'order_mgmt'),
members AS (
  SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS obj, d.classid, d.objid
    FROM pg_depend d, ext WHERE d.refobjid = ext.oid AND d.deptype = 'e')
SELECT 'member ' || obj FROM members
UNION ALL
SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid)) || ' ' || coalesce(p.proacl::text, '')
  FROM pg_proc p JOIN members m ON m.objid = p.oid AND m.classid = 'pg_proc'::regclass WHERE p.prokind <> 'a'
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull
       || ' ' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '') || ' ' || a.attnum
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'order_mgmt'
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'order_mgmt'::regnamespace
UNION ALL
SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE c.relnamespace = 'order_mgmt'::regnamespace
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'order_mgmt'::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'acl ' || c.relname || ' ' || coalesce(c.relacl::text, '') FROM pg_class c
 WHERE c.relnamespace = 'order_mgmt'::regnamespace
UNION ALL
SELECT 'dump ' || x.cfg::regclass || ' ' || coalesce(x.cond, '')
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(cfg, cond) WHERE e.extname = 'order_mgmt'
ORDER BY 1
SQL
)
q $UP -c "$SCHEMA" >"$TMP/up.txt" && q $FRESH -c "$SCHEMA" >"$TMP/fresh.txt"
if diff "$TMP/fresh.txt" "$TMP/up.txt" >"$TMP/diff"; then say 0 "upgraded schema equals a fresh install ($(wc -l <"$TMP/up.txt") catalog lines)"
else say 1 "upgraded schema equals a fresh install"; sed 's/^/# /' "$TMP/diff" | head -30; fi
grep -q "dump order_mgmt.payments_payment_id_seq" "$TMP/up.txt" && grep -q "dump order_mgmt.inventory_movements " "$TMP/up.txt"
say $? "the 0.2.0 tables and sequences are registered for pg_dump"

# dump / restore keeps the 0.2.0 data
q $UP >/dev/null <<'SQL'
SELECT order_mgmt.place_order('U1', '[{"sku": "U-A", "qty": 9}]', '{"country": "NL"}') AS id \gset
SELECT order_mgmt.confirm_order(:id);
SELECT order_mgmt.hold_order(:id, 'manual', 'check');
SELECT order_mgmt.authorize_payment(:id, 27, 'UP-PSP');
SQL
COUNTS="SELECT concat_ws(',', (SELECT count(*) FROM order_mgmt.stock), (SELECT count(*) FROM order_mgmt.inventory_movements),
  (SELECT count(*) FROM order_mgmt.order_holds), (SELECT count(*) FROM order_mgmt.payments),
  (SELECT string_agg(concat_ws(':', order_id, status, held_from, payment_status), ' ' ORDER BY order_id) FROM order_mgmt.orders),
  (SELECT sum(reserved) FROM order_mgmt.stock))"
pg_dump -Fc -d $UP -f "$TMP/up.dump" 2>"$TMP/err" && pg_restore -d $RESTORED "$TMP/up.dump" 2>>"$TMP/err"
say $? "pg_dump / pg_restore of the upgraded database"
[ "$(q $UP -c "$COUNTS")" = "$(q $RESTORED -c "$COUNTS")" ]
say $? "stock, movements, holds, payments and orders survive dump/restore ($(q $RESTORED -c "$COUNTS"))"
got=$(q $RESTORED -c "SELECT order_mgmt.authorize_payment(order_id, 1, 'AFTER-RESTORE') > (SELECT max(payment_id) FROM order_mgmt.payments WHERE psp_reference <> 'AFTER-RESTORE') FROM order_mgmt.orders WHERE held_from IS NOT NULL" 2>&1)
[ "$got" = "t" ]
say $? "sequences continue after restore (got: $got)"
cat "$TMP/err" | sed 's/^/# /' | head -10

for db in $UP $FRESH $RESTORED; do psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; done
