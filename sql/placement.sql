-- Placement walk-through (issue 3): what an operator sees, errors included.
SET search_path = order_mgmt, public;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET order_mgmt.actor = 'regress';
-- deterministic ids whatever ran before in this database
ALTER SEQUENCE orders_order_id_seq RESTART 9000;
ALTER SEQUENCE order_holds_hold_id_seq RESTART 900;
ALTER SEQUENCE payments_payment_id_seq RESTART 800;

INSERT INTO customers (customer_id, name, payment_terms, credit_limit) VALUES
    ('R-CREDIT', 'Credit buyer', 'credit', 100), ('R-PRE', 'Card buyer', 'prepaid', 0);
INSERT INTO products (sku, name, list_price) VALUES ('R-MUG', 'mug', 8), ('R-CUP', 'cup', 4);
INSERT INTO warehouses (warehouse_id, name) VALUES ('R-NORTH', 'north'), ('R-SOUTH', 'south');

-- stock and its ledger
SELECT receive_stock('R-NORTH', 'R-MUG', 3, 'po 1'), receive_stock('R-SOUTH', 'R-MUG', 6, 'po 2'),
       receive_stock('R-NORTH', 'R-CUP', 10);
SELECT adjust_stock('R-SOUTH', 'R-MUG', -7, 'cycle count');
SELECT adjust_stock('R-SOUTH', 'R-MUG', 0, 'nothing');
SELECT warehouse_id, sku, kind, on_hand_delta, reserved_delta, reason
  FROM inventory_movements WHERE sku LIKE 'R-%' ORDER BY movement_id;

-- a credit order within the limit: reserved line by line, confirmed
SELECT place_order('R-CREDIT', '[{"sku": "R-MUG", "qty": 4}, {"sku": "R-CUP", "qty": 2}]',
                   '{"country": "FR"}', external_ref => 'R-1');
SELECT confirm_order(9000);
SELECT line_no, sku, warehouse_id, qty, qty_reserved FROM order_lines WHERE order_id = 9000 ORDER BY 1;
SELECT confirm_order(9000);

-- the same external_ref: same order; other content: OM005
SELECT place_order('R-CREDIT', '[{"sku": "R-MUG", "qty": 4}, {"sku": "R-CUP", "qty": 2}]',
                   '{"country": "FR"}', external_ref => 'R-1');
SELECT place_order('R-CREDIT', '[{"sku": "R-MUG", "qty": 5}]', '{"country": "FR"}', external_ref => 'R-1');

-- over the credit limit and short of stock: two holds
SELECT place_order('R-CREDIT', '[{"sku": "R-MUG", "qty": 9}]', '{"country": "FR"}') AS o2 \gset
SELECT confirm_order(:o2);
SELECT hold_id, kind, reason, released_at IS NULL AS open FROM order_holds WHERE order_id = :o2 ORDER BY 1;
SELECT status, held_from FROM orders WHERE order_id = :o2;
SELECT min(hold_id) AS h1, max(hold_id) AS h2 FROM order_holds WHERE order_id = :o2 \gset
SELECT confirm_order(:o2);
SELECT release_hold(:o2, :h1, 'approved by credit control');
SELECT release_hold(:o2, :h1);
SELECT release_hold(:o2, :h2, 'customer accepts a partial delivery later');
SELECT cancel_order(:o2, 'customer withdrew');
SELECT status, payment_status FROM orders WHERE order_id = :o2;
SELECT line_no, qty_reserved, qty_cancelled FROM order_lines WHERE order_id = :o2;

-- prepaid with backorder: awaiting payment, confirmed by the authorization
SELECT place_order('R-PRE', '[{"sku": "R-MUG", "qty": 8}]', '{"country": "FR"}', allow_backorder => true) AS o3 \gset
SELECT confirm_order(:o3);
SELECT authorize_payment(:o3, 64, 'R-PSP-1');
SELECT authorize_payment(:o3, 64, 'R-PSP-1');
SELECT status, payment_status FROM orders WHERE order_id = :o3;
SELECT capture_payment(:o3, 70, 'R-PSP-2');
SELECT capture_payment(:o3, 64, 'R-PSP-2');
SELECT refund_payment(:o3, 4, 'R-PSP-3');
SELECT kind, amount, psp_reference FROM payments WHERE order_id = :o3 ORDER BY payment_id;
SELECT status, payment_status FROM orders WHERE order_id = :o3;
SELECT qty_reserved, qty_backordered FROM order_lines WHERE order_id = :o3;
SELECT receive_stock('R-NORTH', 'R-MUG', 10, 'po 3');
SELECT qty_reserved, qty_backordered, warehouse_id FROM order_lines WHERE order_id = :o3;

-- every decision is an event
SELECT order_id, entity, event_type, from_status, to_status, automated, reason
  FROM events WHERE order_id IN (9000, :o2, :o3) ORDER BY seq;

-- the ledger sums to the stock rows
SELECT s.warehouse_id, s.sku, s.on_hand, s.reserved,
       s.on_hand = sum(m.on_hand_delta) AND s.reserved = sum(m.reserved_delta) AS ledger_ok
  FROM stock s JOIN inventory_movements m USING (warehouse_id, sku)
 WHERE s.sku LIKE 'R-%' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2;
