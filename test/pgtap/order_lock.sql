-- One lock and one mark per order and transaction (0.12.0, order_lock.c):
-- the first API call on an order in a transaction locks and marks it with an
-- UPDATE (a new row version); later calls on it in the same transaction only
-- read it.  A subtransaction that aborts takes its lock along, and then the
-- order is locked again.  (test/isolation/specs/lock_once.spec shows the
-- locks from other sessions, and the next transaction.)
BEGIN;
SELECT plan(14);
SET LOCAL search_path = order_mgmt, public;

INSERT INTO customers (customer_id, name, payment_terms, credit_limit) VALUES
    ('LK', 'Lock Ltd', 'credit', 1000);
INSERT INTO products (sku, name, list_price) VALUES ('LK-A', 'a', 10);
INSERT INTO warehouses (warehouse_id, name) VALUES ('LK-W', 'w');
SELECT receive_stock('LK-W', 'LK-A', 100) AS _ \gset
-- (pgTAP runs the file in one transaction: each test's order is placed in it)
SELECT place_order('LK', '[{"sku": "LK-A", "qty": 1}]', '{"country": "DE"}') AS a \gset
SELECT place_order('LK', '[{"sku": "LK-A", "qty": 1}]', '{"country": "DE"}') AS b \gset

SELECT ok(order_locked_here(:b), 'the order placed last is noted as locked by this transaction');
SELECT ok(NOT order_locked_here(:a), 'one order is remembered: the one before it is not');
SELECT ok(NOT order_locked_here(NULL), 'null is no order');

-- a call on the remembered order writes no new row version
SELECT ctid AS b0 FROM orders WHERE order_id = :b \gset
SELECT lock_order(:b) AS _ \gset
SELECT is((SELECT ctid FROM orders WHERE order_id = :b), :'b0'::tid,
          'lock_order on the order it holds: the same row version');
-- one on another order locks it with an UPDATE and remembers it instead
SELECT ctid AS a0 FROM orders WHERE order_id = :a \gset
SELECT is((lock_order(:a)).order_id, :'a'::bigint, 'lock_order returns the order');
SELECT isnt((SELECT ctid FROM orders WHERE order_id = :a), :'a0'::tid,
            'lock_order on another order: a new row version (the lock and the mark)');
SELECT ok(order_locked_here(:a) AND NOT order_locked_here(:b), 'and that order is remembered now');

-- the API still works on the remembered order, with its checks
SELECT is(confirm_order(:a), 'confirmed', 'confirm_order on the remembered order');
SELECT throws_ok(format('SELECT order_mgmt.confirm_order(%s)', :a), 'OM010', NULL,
                 'and refuses to confirm it twice');

-- a savepoint rolled back after the lock: the lock stays, so does the memory
SAVEPOINT s1;
SELECT lock_order(:a) AS _ \gset
ROLLBACK TO SAVEPOINT s1;
SELECT ok(order_locked_here(:a), 'a savepoint rolled back after the lock keeps it');

-- a savepoint rolled back with the lock in it: forgotten, and locked again
SELECT lock_order(:b) AS _ \gset
SAVEPOINT s2;
SELECT hold_order(:b, 'manual', 'call the customer') AS _ \gset
SELECT ok(order_locked_here(:b), 'inside the savepoint the order is held');
ROLLBACK TO SAVEPOINT s2;
SELECT ok(order_locked_here(:b), 'the lock taken before the savepoint survives its rollback');
SAVEPOINT s3;
SELECT lock_order(:a) AS _ \gset
SELECT lock_order(:b) AS _ \gset
ROLLBACK TO SAVEPOINT s3;
SELECT ok(NOT order_locked_here(:b), 'a lock taken inside a rolled-back savepoint is forgotten');
SELECT ctid AS b1 FROM orders WHERE order_id = :b \gset
SELECT lock_order(:b) AS _ \gset
SELECT isnt((SELECT ctid FROM orders WHERE order_id = :b), :'b1'::tid,
            'and the next call locks it again with an UPDATE');

SELECT * FROM finish();
ROLLBACK;
