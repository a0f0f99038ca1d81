-- Carrier checkpoints (issue 10): what moves a shipment and what does not.
-- Later checkpoints move it along the graph (skipped scans are inferred),
-- older ones are stored and never move it backwards, final checkpoints
-- win, repeats change nothing, delays restart the estimated window from the
-- latest delay whatever the order of arrival.  (The same checkpoints from
-- concurrent sessions: test/client/tracking_concurrency.t.)
BEGIN;
SELECT plan(29);
SET LOCAL search_path = order_mgmt, public;
\ir ../fixtures/fulfilment_fixture.sql
SELECT receive_stock('F-BER', 'F-A', 100) AS _ \gset
CREATE FUNCTION pg_temp.st(s bigint) RETURNS text LANGUAGE sql AS $$
    SELECT status FROM order_mgmt.shipments WHERE shipment_id = s
$$;
CREATE FUNCTION pg_temp.moves(s bigint) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(to_status ORDER BY seq) FROM order_mgmt.events
     WHERE entity = 'shipment' AND entity_id = s AND to_status IS NOT NULL
       AND event_type NOT IN ('shipment.created', 'shipment.picking_started', 'shipment.packed',
                              'shipment.labelled', 'shipment.dispatched')
$$;

-- skipped scans are inferred along the graph
SELECT pg_temp.shipment_at('dispatched', 'T-SKIP') AS s1 \gset
SELECT is(record_tracking_event('T-SKIP', 'SKIP-3', 'delivered', '2030-01-08 12:00+01'), true,
          'delivered arrives first');
SELECT is(pg_temp.moves(:s1), '{in_transit,out_for_delivery,delivered}',
          'the shipment passes in_transit and out_for_delivery on its way');
SELECT is((SELECT array_agg(reason ORDER BY seq) FROM events WHERE entity = 'shipment' AND entity_id = :s1
            AND event_type IN ('shipment.in_transit', 'shipment.out_for_delivery')),
          '{"inferred from carrier checkpoint SKIP-3 (delivered)","inferred from carrier checkpoint SKIP-3 (delivered)"}',
          'the inferred steps say so');
SELECT is((SELECT o.status FROM orders o JOIN shipments s USING (order_id) WHERE s.shipment_id = :s1),
          'delivered', 'the order is delivered');
-- older checkpoints are stored, never applied
SELECT is(record_tracking_event('T-SKIP', 'SKIP-1', 'in_transit', '2030-01-07 09:00+01'), true,
          'an older in_transit arrives');
SELECT is(record_tracking_event('T-SKIP', 'SKIP-2', 'out_for_delivery', '2030-01-08 08:00+01'), true,
          'an older out_for_delivery arrives');
SELECT is(pg_temp.st(:s1), 'delivered', 'the shipment does not move backwards');
SELECT is(pg_temp.moves(:s1), '{in_transit,out_for_delivery,delivered}', 'no status event for them');
SELECT is((SELECT array_agg((payload->>'applied')::boolean ORDER BY seq) FROM events
            WHERE entity_id = :s1 AND event_type = 'shipment.checkpoint'),
          '{t,f,f}', 'each checkpoint has one event, saying whether it moved the shipment');
SELECT is((SELECT count(*) FROM tracking_events WHERE shipment_id = :s1), 3::bigint, 'all three are stored');

-- the later checkpoint wins; equal times: the greater carrier_event_id
SELECT pg_temp.shipment_at('dispatched', 'T-ORDER') AS s2 \gset
SELECT record_tracking_event('T-ORDER', 'O-2', 'delayed', '2030-01-08 09:00+01') AS _ \gset
SELECT record_tracking_event('T-ORDER', 'O-1', 'in_transit', '2030-01-07 09:00+01') AS _ \gset
SELECT is(pg_temp.st(:s2), 'delayed', 'an older in_transit does not undo the delay');
SELECT record_tracking_event('T-ORDER', 'O-3', 'in_transit', '2030-01-08 09:00+01') AS _ \gset
SELECT is(pg_temp.st(:s2), 'in_transit', 'the same time with a greater carrier_event_id wins');
SELECT record_tracking_event('T-ORDER', 'O-0', 'delayed', '2030-01-08 09:00+01') AS _ \gset
SELECT is(pg_temp.st(:s2), 'in_transit', 'the same time with a smaller carrier_event_id does not');
SELECT record_tracking_event('T-ORDER', 'O-4', 'out_for_delivery', '2030-01-09 07:00+01') AS _ \gset
SELECT record_tracking_event('T-ORDER', 'O-5', 'in_transit', '2030-01-09 15:00+01', 'back at depot') AS _ \gset
SELECT is(pg_temp.moves(:s2), '{in_transit,delayed,in_transit,out_for_delivery,delayed,in_transit}',
          'back to in_transit after out_for_delivery passes the graph''s delayed');
SELECT is((SELECT t.carrier_event_id FROM shipments s JOIN tracking_events t
             ON t.order_id = s.order_id AND t.tracking_event_id = s.last_checkpoint_id
            WHERE s.shipment_id = :s2), 'O-5', 'the shipment follows its latest checkpoint');

-- delays and failed attempts restart the window, from the latest of them
SELECT pg_temp.shipment_at('dispatched', 'T-LATE') AS s3 \gset
SELECT array[estimated_delivery_earliest, estimated_delivery_latest] AS w0 FROM shipments
 WHERE shipment_id = :s3 \gset
SELECT record_tracking_event('T-LATE', 'L-2', 'failed_attempt', '2030-01-10 17:00+01') AS _ \gset
SELECT is((SELECT array[estimated_delivery_earliest, estimated_delivery_latest] FROM shipments
            WHERE shipment_id = :s3),
          (SELECT array[delivery_earliest, delivery_latest]
             FROM estimate_transit('F-BER', 'F-STD', 'DE', '10115', '2030-01-10 17:00+01')),
          'a failed attempt restarts the window from its time (estimate_transit)');
SELECT is((SELECT array[estimated_delivery_earliest, estimated_delivery_latest]::text FROM shipments
            WHERE shipment_id = :s3), '{2030-01-11,2030-01-15}', 'Thursday + 1..3 business days');
SELECT record_tracking_event('T-LATE', 'L-1', 'delayed', '2030-01-08 10:00+01') AS _ \gset
SELECT is((SELECT array[estimated_delivery_earliest, estimated_delivery_latest]::text FROM shipments
            WHERE shipment_id = :s3), '{2030-01-11,2030-01-15}',
          'an older delay arriving later leaves the window of the latest one');
SELECT record_tracking_event('T-LATE', 'L-3', 'delayed', '2030-01-14 08:00+01') AS _ \gset
SELECT is((SELECT array[estimated_delivery_earliest, estimated_delivery_latest]::text FROM shipments
            WHERE shipment_id = :s3), '{2030-01-15,2030-01-17}', 'a later delay moves it again');
SELECT is((SELECT array[promised_delivery_earliest, promised_delivery_latest] FROM shipments
            WHERE shipment_id = :s3),
          (SELECT array[o.promised_delivery_earliest, o.promised_delivery_latest] FROM orders o
             JOIN shipments s USING (order_id) WHERE s.shipment_id = :s3),
          'the promise stays as it was');

-- final checkpoints: a final status is never left
SELECT pg_temp.shipment_at('dispatched', 'T-LOST') AS s4 \gset
SELECT record_tracking_event('T-LOST', 'X-1', 'in_transit', '2030-01-07 09:00+01') AS _ \gset
SELECT record_tracking_event('T-LOST', 'X-3', 'in_transit', '2030-01-12 09:00+01') AS _ \gset
SELECT record_tracking_event('T-LOST', 'X-2', 'lost', '2030-01-10 09:00+01') AS _ \gset
SELECT is(pg_temp.st(:s4), 'lost', 'lost wins over a later in_transit scan (a final status is final)');
SELECT record_tracking_event('T-LOST', 'X-4', 'delivered', '2030-01-13 09:00+01') AS _ \gset
SELECT is(pg_temp.st(:s4), 'lost', 'a later delivered cannot leave lost');
SELECT is((SELECT o.status FROM orders o JOIN shipments s USING (order_id) WHERE s.shipment_id = :s4),
          'shipped', 'the order of a lost parcel stays shipped');
SELECT is((SELECT qty_delivered FROM order_lines l JOIN shipments s USING (order_id) WHERE s.shipment_id = :s4),
          0, 'nothing was delivered');
SELECT pg_temp.shipment_at('dispatched', 'T-TWICE') AS s5 \gset
SELECT record_tracking_event('T-TWICE', 'D-2', 'delivered', '2030-01-09 09:00+01') AS _ \gset
SELECT record_tracking_event('T-TWICE', 'D-1', 'delivered', '2030-01-08 17:00+01') AS _ \gset
SELECT is((SELECT delivered_at FROM shipments WHERE shipment_id = :s5), '2030-01-08 17:00+01'::timestamptz,
          'of two delivered checkpoints the earlier gives delivered_at, whatever the order');
SELECT is((SELECT qty_delivered FROM order_lines l JOIN shipments s USING (order_id) WHERE s.shipment_id = :s5),
          1, 'and the unit is delivered once');

-- the codes are the graph's: a status added after dispatch is a code
INSERT INTO statuses (entity, status, class) VALUES ('shipment', 'at_customs', 'in_transit');
INSERT INTO transitions (entity, from_status, to_status, activity) VALUES
    ('shipment', 'in_transit', 'at_customs', 'at_customs'),
    ('shipment', 'at_customs', 'in_transit', 'cleared_customs');
SELECT is(is_checkpoint_code('at_customs'), true, 'a new status reachable in transit is a checkpoint code');
SELECT pg_temp.shipment_at('dispatched', 'T-CUSTOMS') AS s6 \gset
SELECT record_tracking_event('T-CUSTOMS', 'C-1', 'at_customs', '2030-01-08 09:00+01') AS _ \gset
SELECT is(pg_temp.moves(:s6), '{in_transit,at_customs}', 'and moves the shipment like the seed codes');
SELECT is(is_checkpoint_code('picking'), false, 'a preparation status is not a code');

SELECT * FROM finish();
ROLLBACK;
