\set id random(1, 10000)
UPDATE bench.shipments_d SET status = CASE status WHEN 'in_transit' THEN 'delayed' ELSE 'in_transit' END
 WHERE order_id = :id AND shipment_id = :id;
