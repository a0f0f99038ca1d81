-- event_facts (0.10.0, src/bi.c): the aggregate order_facts reads the log
-- with answers, for any events, what 0.8.0's SQL formulation answered
-- (kept below as the reference): events, manual events, the first entry
-- into the open and the completed class, rework steps.  Random events over
-- every entity, the held status, null statuses and system actors; serially,
-- and in parallel workers whose partial states are combined.
BEGIN;
SELECT plan(9);
SET LOCAL search_path = order_mgmt, public;

CREATE TABLE ef (order_id bigint, entity text, entity_id bigint, from_status text,
                 to_status text, occurred_at timestamptz, automated boolean, actor text);
SELECT setseed(0.13);
INSERT INTO ef
SELECT 1 + (g % 400), e.entity, 1 + (random() * 3)::int,
       CASE WHEN random() < 0.8 THEN s.f END, CASE WHEN random() < 0.9 THEN s.t END,
       '2026-01-01'::timestamptz + random() * interval '90 days',
       random() < 0.4, (ARRAY['wms', 'webshop', 'psp', 'carrier:DHL', 'alice'])[1 + (random() * 4)::int]
  FROM generate_series(1, 20000) g
 CROSS JOIN LATERAL (SELECT (ARRAY['order', 'order', 'order', 'shipment', 'return', 'line', 'hold'])
                            [1 + (random() * 6)::int + (g * 0)] AS entity) e
 CROSS JOIN LATERAL (SELECT t.from_status AS f, t.to_status AS t FROM transitions t
                      WHERE t.entity = CASE WHEN e.entity IN ('line', 'hold') THEN 'order' ELSE e.entity END
                      ORDER BY random() + g * 0 LIMIT 1) s;
ANALYZE ef;

-- 0.8.0's formulation, the reference
-- (STABLE SQL functions are inlined into the calling query; PARALLEL SAFE,
-- or the planner keeps every query that names them serial)
CREATE FUNCTION pg_temp.reference(p text[]) RETURNS TABLE (order_id bigint, f event_facts)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT e.order_id,
           ROW(count(*),
               count(*) FILTER (WHERE is_manual_event(e.automated, e.actor, p)),
               min(e.occurred_at) FILTER (WHERE s.to_class = 'open'),
               min(e.occurred_at) FILTER (WHERE s.to_class = 'completed'),
               count(*) FILTER (WHERE s.lifecycle_step)
               - count(DISTINCT hashtextextended(e.entity || '.' || e.to_status, e.entity_id))
                     FILTER (WHERE s.lifecycle_step))::event_facts
      FROM ef e
     CROSS JOIN LATERAL (
           SELECT CASE WHEN e.entity = 'order' THEN status_class('order', e.to_status) END AS to_class,
                  CASE WHEN e.entity = 'order' THEN status_class('order', e.from_status) END AS from_class) k
     CROSS JOIN LATERAL (
           SELECT k.to_class,
                  e.to_status IS NOT NULL AND e.entity IN ('order', 'shipment', 'return')
                  AND 'held' IS DISTINCT FROM k.to_class
                  AND 'held' IS DISTINCT FROM k.from_class AS lifecycle_step) s
     GROUP BY e.order_id
$$;
CREATE FUNCTION pg_temp.facts(p text[]) RETURNS TABLE (order_id bigint, f event_facts)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT e.order_id, event_facts(e.entity, e.entity_id, e.from_status, e.to_status,
                                   e.occurred_at, e.automated, e.actor, p)
      FROM ef e GROUP BY e.order_id
$$;

-- the data exercise every part of the definition
SELECT ok((SELECT count(*) FILTER (WHERE (x.f).rework_steps > 0) > 50
              AND count((x.f).confirmed_at) > 50 AND count((x.f).completed_at) > 50
              AND count(*) FILTER (WHERE (x.f).manual_events BETWEEN 1 AND (x.f).events - 1) > 50
             FROM pg_temp.reference('{}') x),
          'the random events have rework, confirmations, completions and manual events');
SELECT set_eq('SELECT * FROM pg_temp.facts(''{}'')', 'SELECT * FROM pg_temp.reference(''{}'')',
              'event_facts = the SQL definition, no system actor');
SELECT set_eq('SELECT * FROM pg_temp.facts(''{wm%,carrier:%,ps_}'')',
              'SELECT * FROM pg_temp.reference(''{wm%,carrier:%,ps_}'')',
              'event_facts = the SQL definition, with LIKE patterns of system actors');
SELECT set_eq('SELECT * FROM pg_temp.facts(''{wm%,NULL}'')',
              'SELECT * FROM pg_temp.reference(''{wm%,NULL}'')',
              'event_facts = the SQL definition, with a null pattern (LIKE ANY is then never false)');
SELECT is((SELECT sum((x.f).manual_events) FROM pg_temp.facts(NULL) x), 0::numeric,
          'no system_actors (null): no event is manual, as is_manual_event is null');
SELECT is((SELECT event_facts(e.entity, e.entity_id, e.from_status, e.to_status, e.occurred_at,
                              e.automated, e.actor, '{}') FROM ef e WHERE false),
          NULL, 'no events: null');
SELECT is((SELECT event_facts(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)),
          ROW(1, 0, NULL, NULL, 0)::event_facts, 'an event of nulls counts, and nothing else');

-- parallel: partial states built in workers, serialized, combined
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL parallel_leader_participation = off;
SET LOCAL enable_hashagg = off;
CREATE FUNCTION pg_temp.plan(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
    o text := '';
BEGIN
    FOR r IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
        o := o || r || E'\n';
    END LOOP;
    RETURN o;
END $$;
SELECT matches(pg_temp.plan('SELECT * FROM pg_temp.facts(''{wm%}'')'),
               'Finalize GroupAggregate.*Gather Merge.*Workers Launched: [1-9].*Partial GroupAggregate',
               'in parallel, workers aggregate partially and the leader combines');
SELECT set_eq('SELECT * FROM pg_temp.facts(''{wm%}'')', 'SELECT * FROM pg_temp.reference(''{wm%}'')',
              'event_facts combined from parallel workers = the SQL definition');
SELECT * FROM finish();
ROLLBACK;
