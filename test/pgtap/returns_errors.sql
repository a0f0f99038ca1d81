-- Post-sales (issue 11): every rejected call fails with its SQLSTATE and
-- changes nothing.
BEGIN;
SELECT plan(64);
SET LOCAL search_path = order_mgmt, public;
\ir ../fixtures/returns_fixture.sql
INSERT INTO customers (customer_id, name, payment_terms, credit_limit) VALUES ('F-P', 'Prepaid', 'prepaid', 0);
SELECT receive_stock('F-BER', 'F-A', 20) AS _, receive_stock('F-FRA', 'F-B', 20) AS _ \gset
-- everything a rejected post-sales call could have touched
CREATE FUNCTION pg_temp.rdigest() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|', pg_temp.digest(),
        (SELECT string_agg(r::text, ';' ORDER BY r::text) FROM order_mgmt.returns r),
        (SELECT string_agg(l::text, ';' ORDER BY l::text) FROM order_mgmt.return_lines l),
        (SELECT string_agg(i::text, ';' ORDER BY i::text) FROM order_mgmt.return_inspections i),
        (SELECT string_agg(p::text, ';' ORDER BY p::text) FROM order_mgmt.payments p),
        (SELECT string_agg(o.return_status || o.payment_status, ';' ORDER BY o.order_id) FROM order_mgmt.orders o),
        (SELECT string_agg(l.qty_returned::text, ';' ORDER BY l.order_id, l.line_no) FROM order_mgmt.order_lines l)))
$$;
-- a call that must fail with code: ok when it does and nothing changed
CREATE FUNCTION pg_temp.refused(q text, code text, what text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    before text := pg_temp.rdigest();
BEGIN
    RETURN QUERY SELECT throws_ok(q, code, NULL, what);
    RETURN QUERY SELECT is(pg_temp.rdigest(), before, what || ': nothing changed');
END;
$$;

-- a prepaid order of 2 x F-A, paid 20.00 and delivered yesterday
SELECT place_order('F-P', '[{"sku": "F-A", "qty": 2}]', '{"country": "DE", "postal_code": "10115"}') AS o \gset
SELECT authorize_payment(:o, 20, 'E-AUTH') AS _, capture_payment(:o, 20, 'E-CAP') AS _,
       confirm_order(:o) AS _, pg_temp.deliver(:o) AS _ \gset
-- one delivered 31 days ago, one placed and never shipped
SELECT pg_temp.delivered('[{"sku": "F-B", "qty": 1}]', now() - interval '31 days') AS old \gset
SELECT pg_temp.ord('[{"sku": "F-B", "qty": 1}]') AS placed \gset

-- request_return
SELECT pg_temp.refused(format($$SELECT request_return(%s, '[{"line_no": 1, "qty": 3}]', 'x')$$, :o),
                       'OM051', 'a return of more than was delivered');
SELECT pg_temp.refused(format($$SELECT request_return(%s, '[{"line_no": 1, "qty": 2}, {"line_no": 1, "qty": 1}]', 'x')$$, :o),
                       'OM051', 'the same line twice, together more than delivered');
SELECT pg_temp.refused(format($$SELECT request_return(%s, '[{"line_no": 1, "qty": 1}]', 'x')$$, :old),
                       'OM050', 'a request after the return window');
SELECT pg_temp.refused(format($$SELECT request_return(%s, '[{"line_no": 1, "qty": 1}]', 'x')$$, :placed),
                       'OM010', 'a return of an order not delivered');
SELECT pg_temp.refused(format($$SELECT request_return(%s, '[{"line_no": 9, "qty": 1}]', 'x')$$, :o),
                       'OM004', 'an unknown line');
SELECT pg_temp.refused($$SELECT request_return(-1, '[{"line_no": 1, "qty": 1}]', 'x')$$, 'OM004', 'an unknown order');
SELECT pg_temp.refused(format($$SELECT request_return(%s, '[{"line_no": 1, "qty": 0}]', 'x')$$, :o),
                       '22023', 'qty 0');
SELECT pg_temp.refused(format($$SELECT request_return(%s, '[{"line_no": "1", "qty": 1}]', 'x')$$, :o),
                       '22023', 'a line_no that is not a number');
SELECT pg_temp.refused(format($$SELECT request_return(%s, '{}', 'x')$$, :o), '22023', 'lines not an array');
SELECT pg_temp.refused(format($$SELECT request_return(%s, '[{"line_no": 1, "qty": 1}]', 'x', 'credit_note')$$, :o),
                       '22023', 'an unknown resolution');
SELECT pg_temp.refused(format($$SELECT request_return(%s, '[{"line_no": 1, "qty": 1}]', NULL)$$, :o),
                       '22004', 'no reason');

-- one return of one unit, walked step by step
SELECT request_return(:o, '[{"line_no": 1, "qty": 1}]', 'scratched') AS r \gset
SELECT pg_temp.refused(format($$SELECT request_return(%s, '[{"line_no": 1, "qty": 2}]', 'x')$$, :o),
                       'OM051', 'units on an open return cannot be asked back twice');
SELECT pg_temp.refused(format('SELECT receive_return(%s)', :r), 'OM010', 'receiving before approval');
SELECT pg_temp.refused(format('SELECT refund_return(%s)', :r), 'OM010', 'a refund before inspection');
SELECT approve_return(:r) AS _ \gset
SELECT pg_temp.refused(format('SELECT approve_return(%s)', :r), 'OM010', 'approving twice');
SELECT pg_temp.refused(format($$SELECT reject_return(%s, 'x')$$, :r), 'OM010', 'rejecting an approved return');
SELECT pg_temp.refused(format($$SELECT inspect_return(%s, '[{"line_no": 1, "qty": 1, "condition": "resellable", "disposition": "restock"}]')$$, :r),
                       'OM010', 'inspecting before receipt');
SELECT receive_return(:r) AS _ \gset
SELECT pg_temp.refused(format($$SELECT inspect_return(%s, '[{"line_no": 1, "qty": 2, "condition": "resellable", "disposition": "restock"}]')$$, :r),
                       'OM051', 'inspecting more than was received');
SELECT pg_temp.refused(format($$SELECT inspect_return(%s, '[{"line_no": 2, "qty": 1, "condition": "resellable", "disposition": "restock"}]')$$, :r),
                       'OM004', 'inspecting a line not on the return');
SELECT pg_temp.refused(format($$SELECT inspect_return(%s, '[{"line_no": 1, "qty": 1, "condition": "damaged", "disposition": "restock"}]')$$, :r),
                       '22023', 'restocking a damaged unit');
SELECT pg_temp.refused(format($$SELECT inspect_return(%s, '[{"line_no": 1, "qty": 1, "condition": "missing", "disposition": "scrap"}]')$$, :r),
                       '22023', 'a disposition for a missing unit');
SELECT pg_temp.refused(format($$SELECT inspect_return(%s, '[{"line_no": 1, "qty": 1, "condition": "broken", "disposition": "scrap"}]')$$, :r),
                       '22023', 'an unknown condition');
SELECT inspect_return(:r, '[{"line_no": 1, "qty": 1, "condition": "damaged", "disposition": "repair"}]') AS _ \gset
SELECT pg_temp.refused(format('SELECT refund_return(%s, 25)', :r), 'OM015', 'a refund above what was captured');
SELECT pg_temp.refused(format('SELECT refund_return(%s, -1)', :r), '22023', 'a negative refund');
SELECT pg_temp.refused(format('SELECT complete_order(%s)', :o), 'OM010', 'completing an order with an open return');
SELECT pg_temp.refused(format('SELECT complete_order(%s)', :placed), 'OM010', 'completing an order not delivered');
SELECT pg_temp.refused('SELECT complete_due_orders(NULL)', '22004', 'complete_due_orders(NULL)');
SELECT pg_temp.refused($$SELECT complete_due_orders('infinity')$$, '22008', 'complete_due_orders(infinity)');
SELECT pg_temp.refused('SELECT approve_return(-1)', 'OM004', 'an unknown return');
SELECT pg_temp.refused('SELECT exchange_return(NULL)', '22004', 'a null return_id');

-- a return whose only unit was missing: nothing to refund or exchange
SELECT refund_return(:r) AS _ \gset
SELECT request_return(:o, '[{"line_no": 1, "qty": 1}]', 'never arrived back', 'exchange') AS m \gset
SELECT approve_return(:m) AS _, receive_return(:m) AS _,
       inspect_return(:m, '[{"line_no": 1, "qty": 1, "condition": "missing"}]') AS _ \gset
SELECT pg_temp.refused(format('SELECT exchange_return(%s)', :m), 'OM010', 'an exchange of nothing accepted');
SELECT pg_temp.refused(format('SELECT refund_return(%s)', :m), 'OM010', 'a refund of nothing accepted');

SELECT * FROM finish();
ROLLBACK;
