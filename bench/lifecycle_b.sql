\set id random(1, 10000)
WITH u AS (
    UPDATE bench.shipments_b n SET status = CASE n.status WHEN 'in_transit' THEN 'delayed' ELSE 'in_transit' END
      FROM bench.shipments_b o
     WHERE n.order_id = :id AND n.shipment_id = :id AND o.order_id = n.order_id AND o.shipment_id = n.shipment_id
    RETURNING n.order_id, n.shipment_id, o.status AS from_status, n.status AS to_status)
INSERT INTO order_mgmt.events (order_id, entity, entity_id, event_type, from_status, to_status, actor)
SELECT order_id, 'shipment', shipment_id, 'shipment.' || to_status, from_status, to_status, session_user FROM u;
