#!/usr/bin/env bash
# Schema 0.6.0 (post-sales) over data of 0.5.0: an install at 0.5.0 with
# data (workload.sql and data-0.2.0/0.4.0/0.5.0.sql: a return made by hand
# under 0.1.0 rules, an order delivered through the fulfilment API) is
# updated; every row and sequence survives; the old return is approved,
# received, inspected and refused a refund (nothing was captured), the
# delivered order is returned and exchanged through the new API, and its
# return_status and the ledger follow.  Prints TAP.
set -u
cd "$(dirname "$0")/../.."
FIX=test/fixtures
DB=om_returns_up
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0
tap() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
q() { PGOPTIONS="-c client_min_messages=warning" psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
is() {  # is GOT WANT NAME
    if [ "$1" = "$2" ]; then tap 0 "$3"; else tap 1 "$3"; echo "# got:  $1"; echo "# want: $2"; fi
}

q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q -d $DB -c "CREATE EXTENSION order_mgmt VERSION '0.5.0'"
tap $? "install 0.5.0"
q -d $DB -f $FIX/workload.sql -f $FIX/data-0.2.0.sql -f $FIX/data-0.4.0.sql -f $FIX/data-0.5.0.sql >/dev/null
tap $? "add data at 0.5.0"
q -d $DB -f $FIX/digest.sql && q -d $DB -c "SELECT * FROM public.om_digest()" >"$TMP/before"
q -d $DB -c "ALTER EXTENSION order_mgmt UPDATE TO '0.6.0'" >/dev/null
tap $? "ALTER EXTENSION order_mgmt UPDATE TO '0.6.0'"
q -d $DB -c "SELECT * FROM public.om_digest()" >"$TMP/after"
diff "$TMP/before" "$TMP/after" >/dev/null
tap $? "every row and sequence of 0.5.0 survives ($(grep -c . "$TMP/before") tables and sequences)"

# the return made by hand before 0.6.0 goes on through the API
OLD="SELECT return_id FROM order_mgmt.returns r JOIN order_mgmt.orders o USING (order_id) WHERE o.external_ref = 'W-1'"
q -d $DB -c "SELECT order_mgmt.approve_return(($OLD)), order_mgmt.receive_return(($OLD))" >/dev/null
tap $? "the old return is approved and received"
q -d $DB -v VERBOSITY=verbose -c "SELECT order_mgmt.inspect_return(($OLD), '[{\"line_no\": 1, \"qty\": 1, \"condition\": \"defective\", \"disposition\": \"return_to_vendor\"}]')" 2>"$TMP/err" >/dev/null
grep -q "OM051" "$TMP/err"
tap $? "its order was never delivered: accepting the unit is refused (OM051)"
q -d $DB -c "SELECT order_mgmt.inspect_return(($OLD), '[{\"line_no\": 1, \"qty\": 1, \"condition\": \"missing\"}]')" >/dev/null
tap $? "inspected as missing, it is closed out"
q -d $DB -v VERBOSITY=verbose -c "SELECT order_mgmt.refund_return(($OLD))" 2>"$TMP/err" >/dev/null
grep -q "OM010" "$TMP/err"
tap $? "and has nothing to refund (OM010)"

# the order delivered through the 0.5.0 API is returned and exchanged
P1="SELECT order_id FROM order_mgmt.orders WHERE external_ref = 'P5-1'"
R=$(q -d $DB -c "SELECT order_mgmt.request_return(($P1), '[{\"line_no\": 1, \"qty\": 2}]', 'wrong size', 'exchange')")
tap $? "request_return on the order delivered under 0.5.0 (return $R)"
is "$(q -d $DB -c "SELECT return_status FROM order_mgmt.orders WHERE order_id = ($P1)")" "requested" "return_status: requested"
stock0=$(q -d $DB -c "SELECT on_hand FROM order_mgmt.stock WHERE warehouse_id = 'W-BER' AND sku = 'W-A'")
q -d $DB -c "SELECT order_mgmt.approve_return($R), order_mgmt.receive_return($R),
             order_mgmt.inspect_return($R, '[{\"line_no\": 1, \"qty\": 2, \"condition\": \"resellable\", \"disposition\": \"restock\"}]')" >/dev/null
tap $? "approved, received and inspected"
is "$(q -d $DB -c "SELECT on_hand - $stock0 FROM order_mgmt.stock WHERE warehouse_id = 'W-BER' AND sku = 'W-A'")" "2" \
   "the two units are restocked"
X=$(q -d $DB -c "SELECT order_mgmt.exchange_return($R)")
tap $? "exchange_return places a replacement (order $X)"
is "$(q -d $DB -c "SELECT o.status || ' ' || o.total || ' ' || r.exchange_order_id FROM order_mgmt.orders o, order_mgmt.returns r WHERE o.order_id = $X AND r.return_id = $R")" \
   "confirmed 0.00 $X" "the replacement is confirmed, free of charge, linked from the return"
is "$(q -d $DB -c "SELECT return_status FROM order_mgmt.orders WHERE order_id = ($P1)")" "returned" "return_status: returned"
is "$(q -d $DB -c "SELECT bool_and(s.on_hand = m.oh) FROM order_mgmt.stock s JOIN (SELECT warehouse_id, sku, sum(on_hand_delta) oh FROM order_mgmt.inventory_movements GROUP BY 1, 2) m USING (warehouse_id, sku)")" \
   "t" "the ledger still sums to stock"
echo "1..$n"
