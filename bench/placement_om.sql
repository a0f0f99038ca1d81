-- bench/placement.sh's order_mgmt workload: place_order (2 lines) + confirm_order
-- in one transaction, 10,000 customers and 1,000 skus chosen at random.
\set c random(1, 10000)
\set s1 random(1, 1000)
\set s2 random(1, 1000)
BEGIN;
SELECT order_mgmt.place_order('C' || :c, ('[{"sku": "S' || :s1 || '", "qty": 1}, {"sku": "S' || :s2 || '", "qty": 2}]')::jsonb, '{"country": "DE", "postal_code": "10115"}'::jsonb) AS id \gset
SELECT order_mgmt.confirm_order(:id);
COMMIT;
