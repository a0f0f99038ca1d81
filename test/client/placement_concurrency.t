#!/usr/bin/env bash
# Placement under concurrency (issue 3), with pgbench and 16 clients:
# one sku with 50 units is never oversold, two lines of one order competing,
# cancellations racing confirmations and receipts, concurrent captures and
# refunds, concurrent identical place_order and authorize calls.
set -u
DB=om_placement_conc
CLIENTS=16
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
N=0
check() {   # check DESCRIPTION SQL-returning-boolean
    N=$((N + 1))
    local got
    got=$(psql -qXAt -d "$DB" -c "$2" 2>&1)
    if [ "$got" = "t" ]; then echo "ok $N - $1"; else echo "not ok $N - $1"; echo "# got: $got"; fi
}
bench() {   # bench DESCRIPTION SCRIPT TRANSACTIONS-PER-CLIENT
    N=$((N + 1))
    if timeout 120 pgbench -n -c "$CLIENTS" -j 4 -t "$3" -f "$2" "$DB" >"$TMP/out" 2>&1 \
       && ! grep -qiE 'aborted|deadlock|error' "$TMP/out"; then
        echo "ok $N - $1"
    else
        echo "not ok $N - $1"; sed 's/^/# /' "$TMP/out" | head -20
    fi
}
sql() { psql -qX -v ON_ERROR_STOP=1 -d "$DB" "$@" >/dev/null; }

echo "1..26"
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
sql <<'SQL'
CREATE EXTENSION order_mgmt;
SET search_path = order_mgmt;
INSERT INTO customers (customer_id, name, payment_terms, credit_limit) VALUES
    ('CR', 'credit', 'credit', 100000000), ('PP', 'prepaid', 'prepaid', 0);
INSERT INTO products (sku, name, list_price) VALUES
    ('ONE', 'one', 1), ('BO', 'backorder', 1), ('TWO', 'two lines', 1), ('RACE', 'race', 1);
INSERT INTO warehouses (warehouse_id, name) VALUES ('W', 'w');
SELECT receive_stock('W', 'ONE', 50), receive_stock('W', 'BO', 50), receive_stock('W', 'TWO', 50),
       receive_stock('W', 'RACE', 50);
-- callers that expect some rejections and count them instead of aborting
CREATE FUNCTION public.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN SQLSTATE 'OM010' OR SQLSTATE 'OM015' OR SQLSTATE 'OM006' THEN
    RETURN SQLSTATE;
END $$;
CREATE FUNCTION public.ledger_ok() RETURNS boolean LANGUAGE sql AS $$
    SELECT bool_and(s.on_hand = m.oh AND s.reserved = m.r AND s.reserved <= s.on_hand
                    AND s.reserved >= 0)
      FROM order_mgmt.stock s
      JOIN (SELECT warehouse_id, sku, sum(on_hand_delta) oh, sum(reserved_delta) r
              FROM order_mgmt.inventory_movements GROUP BY 1, 2) m USING (warehouse_id, sku)
$$;
CREATE FUNCTION public.lines_match(p_sku text) RETURNS boolean LANGUAGE sql AS $$
    SELECT (SELECT sum(reserved) FROM order_mgmt.stock WHERE sku = p_sku)
         = (SELECT coalesce(sum(qty_reserved), 0) FROM order_mgmt.order_lines WHERE sku = p_sku)
$$;
SQL

# 1. one sku, 50 units, 16 clients placing and confirming 1 unit each
cat >"$TMP/one.sql" <<'EOF2'
SELECT order_mgmt.place_order('CR', '[{"sku": "ONE", "qty": 1}]', '{"country": "DE"}') AS id \gset
SELECT order_mgmt.confirm_order(:id);
EOF2
bench "16 clients place and confirm 192 orders for 50 units" "$TMP/one.sql" 12
check "exactly 50 units reserved" "SELECT reserved = 50 AND on_hand = 50 FROM order_mgmt.stock WHERE sku = 'ONE'"
check "50 orders confirmed" "SELECT count(*) = 50 FROM order_mgmt.orders o JOIN order_mgmt.order_lines l USING (order_id) WHERE l.sku = 'ONE' AND o.status = 'confirmed'"
check "every other order is on a stock hold" "SELECT count(*) = 142 FROM order_mgmt.orders o JOIN order_mgmt.order_lines l USING (order_id) JOIN order_mgmt.order_holds h USING (order_id) WHERE l.sku = 'ONE' AND o.status = 'on_hold' AND h.kind = 'stock' AND h.released_at IS NULL AND l.qty_reserved = 0"
check "stock never negative and the ledger sums to the stock row" "SELECT public.ledger_ok()"
check "reserved line quantities equal stock.reserved" "SELECT public.lines_match('ONE')"

# 2. the same with backorders allowed, then a receipt allocates oldest first
cat >"$TMP/bo.sql" <<'EOF2'
SELECT order_mgmt.place_order('CR', '[{"sku": "BO", "qty": 1}]', '{"country": "DE"}', allow_backorder => true) AS id \gset
SELECT order_mgmt.confirm_order(:id);
EOF2
bench "16 clients place and confirm 192 backorderable orders for 50 units" "$TMP/bo.sql" 12
check "exactly 50 units reserved, 142 backordered" "SELECT sum(qty_reserved) = 50 AND sum(qty_backordered) = 142 FROM order_mgmt.order_lines WHERE sku = 'BO'"
check "all 192 confirmed" "SELECT count(*) = 192 FROM order_mgmt.orders o JOIN order_mgmt.order_lines l USING (order_id) WHERE l.sku = 'BO' AND o.status = 'confirmed'"
sql -c "SELECT order_mgmt.receive_stock('W', 'BO', 30, 'po 1')"
check "a receipt of 30 allocates the 30 oldest backorders" "SELECT count(*) = 142 AND bool_and(CASE WHEN rn <= 30 THEN qty_reserved = 1 AND qty_backordered = 0 ELSE qty_backordered = 1 END) FROM (SELECT l.*, row_number() OVER (ORDER BY o.placed_at, o.order_id) rn FROM order_mgmt.order_lines l JOIN order_mgmt.orders o USING (order_id) WHERE l.sku = 'BO' AND NOT EXISTS (SELECT 1 FROM order_mgmt.events e WHERE e.order_id = o.order_id AND e.event_type = 'line.reserved')) x"
check "backorder ledger and lines agree" "SELECT public.ledger_ok() AND public.lines_match('BO') AND (SELECT reserved = 80 AND on_hand = 80 FROM order_mgmt.stock WHERE sku = 'BO')"

# 3. two lines of one order competing for the same sku
cat >"$TMP/two.sql" <<'EOF2'
SELECT order_mgmt.place_order('CR', '[{"sku": "TWO", "qty": 2}, {"sku": "TWO", "qty": 3}]', '{"country": "DE"}') AS id \gset
SELECT order_mgmt.confirm_order(:id);
EOF2
bench "16 clients confirm 128 two-line orders for 50 units" "$TMP/two.sql" 8
check "exactly 50 units reserved, never more" "SELECT reserved = 50 AND on_hand = 50 FROM order_mgmt.stock WHERE sku = 'TWO'"
check "10 orders confirmed in full, the rest on a stock hold" "SELECT count(*) FILTER (WHERE status = 'confirmed') = 10 AND count(*) FILTER (WHERE status = 'on_hold') = 118 FROM order_mgmt.orders o WHERE EXISTS (SELECT 1 FROM order_mgmt.order_lines l WHERE l.order_id = o.order_id AND l.sku = 'TWO')"
check "two-line ledger and lines agree" "SELECT public.ledger_ok() AND public.lines_match('TWO')"

# 4. cancellations racing confirmations, cancel_line and receipts
sql <<'SQL'
CREATE TABLE public.race AS
SELECT row_number() OVER () AS k,
       order_mgmt.place_order('CR', '[{"sku": "RACE", "qty": 2}]', '{"country": "DE"}',
                              allow_backorder => g % 3 = 0) AS id
  FROM generate_series(1, 200) g;
SQL
cat >"$TMP/race_confirm.sql" <<'EOF2'
\set k random(1, 200)
SELECT public.try(format('SELECT order_mgmt.confirm_order(%s)', id)) FROM public.race WHERE k = :k;
EOF2
cat >"$TMP/race_cancel.sql" <<'EOF2'
\set k random(1, 200)
SELECT public.try(format('SELECT order_mgmt.cancel_order(%s, %L)', id, 'race')) FROM public.race WHERE k = :k;
EOF2
cat >"$TMP/race_line.sql" <<'EOF2'
\set k random(1, 200)
SELECT public.try(format('SELECT order_mgmt.cancel_line(%s, 1, 1, %L)', id, 'race'))
  FROM public.race r JOIN order_mgmt.order_lines l ON l.order_id = r.id
 WHERE r.k = :k AND l.qty - l.qty_cancelled >= 1;
EOF2
cat >"$TMP/race_receive.sql" <<'EOF2'
SELECT order_mgmt.receive_stock('W', 'RACE', 1, 'race');
EOF2
N=$((N + 1))
if timeout 120 pgbench -n -c "$CLIENTS" -j 4 -t 25 -f "$TMP/race_confirm.sql@6" -f "$TMP/race_cancel.sql@3" \
     -f "$TMP/race_line.sql@1" -f "$TMP/race_receive.sql@1" "$DB" >"$TMP/out" 2>&1 \
   && ! grep -qiE 'aborted|deadlock|error' "$TMP/out"; then
    echo "ok $N - 16 clients race confirm, cancel_order, cancel_line and receive_stock without deadlock"
else
    echo "not ok $N - 16 clients race confirm, cancel_order, cancel_line and receive_stock without deadlock"
    sed 's/^/# /' "$TMP/out" | head -20
fi
check "cancelled orders hold no reservation" "SELECT coalesce(bool_and(l.qty_reserved = 0 AND l.qty_backordered = 0 AND l.qty_cancelled = l.qty), true) FROM order_mgmt.orders o JOIN order_mgmt.order_lines l USING (order_id) WHERE o.status = 'cancelled'"
check "race: reserved <= on_hand, ledger sums, lines match stock" "SELECT public.ledger_ok() AND public.lines_match('RACE')"
check "race: no open hold on a cancelled order, on_hold iff an open hold" "SELECT bool_and((o.status = 'on_hold') = EXISTS (SELECT 1 FROM order_mgmt.order_holds h WHERE h.order_id = o.order_id AND h.released_at IS NULL)) FROM order_mgmt.orders o"
check "race: every confirmed order is reserved or backordered in full" "SELECT coalesce(bool_and(l.qty_reserved + l.qty_backordered + l.qty_cancelled = l.qty), true) FROM order_mgmt.orders o JOIN order_mgmt.order_lines l USING (order_id) WHERE l.sku = 'RACE' AND o.status = 'confirmed'"

# 5. concurrent captures and refunds on one order
sql <<'SQL'
CREATE TABLE public.pay AS
SELECT order_mgmt.place_order('PP', '[{"sku": "ONE", "qty": 100}]', '{"country": "DE"}') AS id;
SELECT order_mgmt.authorize_payment((SELECT id FROM public.pay), 100, 'AUTH-PAY');
SQL
cat >"$TMP/capture.sql" <<'EOF2'
\set r random(1, 1000000000)
SELECT public.try(format('SELECT order_mgmt.capture_payment(%s, 7, %L)', id, 'cap-' || :client_id || '-' || :r)) FROM public.pay;
SELECT public.try(format('SELECT order_mgmt.refund_payment(%s, 5, %L)', id, 'ref-' || :client_id || '-' || :r)) FROM public.pay;
EOF2
bench "16 clients capture and refund on one order" "$TMP/capture.sql" 10
check "captured <= authorized and refunded <= captured" "SELECT t.captured <= t.authorized AND t.refunded <= t.captured AND t.captured = 98 FROM public.pay, order_mgmt.payment_totals(pay.id) t"
check "payment_status agrees with the ledger" "SELECT o.payment_status = order_mgmt.derive_payment_status(o.total, t.authorized, t.captured, t.refunded, t.voided) FROM public.pay JOIN order_mgmt.orders o ON o.order_id = pay.id, order_mgmt.payment_totals(pay.id) t"

# 6. the same psp_reference and the same external_ref from 16 sessions at once
cat >"$TMP/dup.sql" <<'EOF2'
SELECT order_mgmt.authorize_payment(id, 1, 'SAME-PSP') FROM public.pay;
SELECT order_mgmt.place_order('PP', '[{"sku": "ONE", "qty": 1}]', '{"country": "DE"}', external_ref => 'SAME-REF-' || (:client_id % 2));
EOF2
bench "16 sessions send the same authorization and the same order" "$TMP/dup.sql" 5
check "one payment for one psp_reference" "SELECT count(*) = 1 FROM order_mgmt.payments WHERE psp_reference = 'SAME-PSP'"
check "one order per external_ref" "SELECT count(*) = 2 FROM order_mgmt.orders WHERE external_ref LIKE 'SAME-REF-%'"

[ -n "${KEEP:-}" ] || psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
