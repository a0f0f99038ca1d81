-- bench/bi_floor.sh: the least process_variants and process_dfg must read:
-- one pass over the process steps of every case (process_steps' filter),
-- grouped by case, with no order among them and nothing computed per step
-- but a hash of its activity.
SELECT e.order_id, count(*), bit_xor(hashtextextended(e.event_type, 0))
  FROM order_mgmt.events e
 WHERE e.entity <> 'line' AND NOT (e.entity = 'shipment' AND e.to_status IS NULL)
 GROUP BY e.order_id
