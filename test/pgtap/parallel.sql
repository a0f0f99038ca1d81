-- Parallel query (issue 13 found it): every parallel worker starts with cold
-- caches, and no new snapshot may be taken during a parallel operation; the
-- PARALLEL SAFE functions and the views that call them must still answer,
-- inside workers, what they answer outside.
BEGIN;
SELECT plan(5);
SET LOCAL search_path = order_mgmt, public;
\ir ../fixtures/promise_fixture.sql
INSERT INTO customers (customer_id, name) VALUES ('PQ', 'parallel');
INSERT INTO products (sku, name, list_price) VALUES ('PQ-A', 'a', 1);
SELECT receive_stock('BER', 'PQ-A', 5) AS _ \gset
SELECT place_order('PQ', '[{"sku": "PQ-A", "qty": 1}]', '{"country": "DE", "postal_code": "10115"}') AS o \gset
SELECT confirm_order(:o) AS _ \gset
UPDATE orders SET promised_delivery_latest = placed_at::date - 3 WHERE order_id = :o;
-- the answers outside parallel query
SELECT status_class('order', 'placed') AS c0,
       is_business_day('2025-12-25', 'DE-HANDLING') AS b0,
       (SELECT e::text FROM estimate_delivery('BER', 'STD', 'AT', '6900', '2025-09-09 08:00Z') e) AS e0,
       (SELECT w::text FROM orders o, estimate_order_window(o, ARRAY(SELECT l FROM order_lines l WHERE l.order_id = o.order_id)) w
         WHERE o.order_id = :o) AS w0,
       (SELECT count(*) FROM orders_at_risk) AS r0 \gset
-- the same questions, each run inside a parallel worker (single-copy Gather)
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SELECT status_class('order', 'placed') AS c1 \gset
SELECT is_business_day('2025-12-25', 'DE-HANDLING') AS b1 \gset
SELECT e::text AS e1 FROM estimate_delivery('BER', 'STD', 'AT', '6900', '2025-09-09 08:00Z') e \gset
SELECT w::text AS w1 FROM orders o, estimate_order_window(o, ARRAY(SELECT l FROM order_lines l WHERE l.order_id = o.order_id)) w
 WHERE o.order_id = :o \gset
SELECT count(*) AS r1 FROM orders_at_risk \gset
RESET force_parallel_mode;
SELECT is(:'c1'::text, :'c0'::text, 'status_class in a parallel worker');
SELECT is(:'b1'::text, :'b0'::text, 'is_business_day in a parallel worker');
SELECT is(:'e1'::text, :'e0'::text, 'estimate_delivery in a parallel worker');
SELECT is(:'w1'::text, :'w0'::text, 'estimate_order_window in a parallel worker');
SELECT is(:'r1'::text, :'r0'::text, 'orders_at_risk with force_parallel_mode');
SELECT * FROM finish();
ROLLBACK;
