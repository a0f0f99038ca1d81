-- bench/lifecycle_full.sh's order_mgmt workload: one order's whole lifecycle
-- in one transaction, 11 API calls and one read of the shipment id.
\set c random(1, 10000)
\set s1 random(1, 1000)
\set s2 random(1, 1000)
BEGIN;
SELECT order_mgmt.place_order('C' || :c, ('[{"sku": "S' || :s1 || '", "qty": 1}, {"sku": "S' || :s2 || '", "qty": 2}]')::jsonb, '{"country": "DE", "postal_code": "10115"}'::jsonb) AS id \gset
SELECT order_mgmt.confirm_order(:id);
SELECT order_mgmt.release_to_warehouse(:id);
SELECT shipment_id AS sh FROM order_mgmt.shipments WHERE order_id = :id \gset
SELECT order_mgmt.start_picking(:sh);
SELECT order_mgmt.pack_shipment(:sh, 1200, 400, 300, 200);
SELECT order_mgmt.label_shipment(:sh, 'DHL', 'STD', 'T' || :id);
SELECT order_mgmt.dispatch_shipment(:sh);
SELECT order_mgmt.record_tracking_event('T' || :id, :id || '-1', 'in_transit', now());
SELECT order_mgmt.record_tracking_event('T' || :id, :id || '-2', 'out_for_delivery', now());
SELECT order_mgmt.record_tracking_event('T' || :id, :id || '-3', 'delivered', now());
COMMIT;
