/* order_mgmt 0.8.0 -> 0.9.0: scale-out on Citus (issue 15).
 * - CALL order_mgmt.distribute(): master data as reference tables, orders
 *   and every order-scoped table distributed by order_id co-located with
 *   orders; nothing changes on a single node (citus_active() is false);
 * - business_keys: external_ref, psp_reference, tracking_number and
 *   carrier_event_id claimed once cluster-wide on Citus (claim_key); the
 *   API takes its ids from the sequences before inserting;
 * - order_effects / effects_armed: stock and credit changes of triggers on
 *   the workers, applied by the coordinator before it commits;
 * - set_reason / citus_arm: actor, reason, automated and db_role reach
 *   the workers; the setting order_mgmt.db_role (library);
 * - consumer_cursors: the consumers' cursors per node group on Citus;
 *   events_stamp (the trigger distribute() creates); purge_events per
 *   shard (purge_shard); consumer_lag through consumer_backlog;
 * - Citus plans no UPDATE with a volatile call or a non-immutable call in
 *   a CASE, no SQL function with parameters that reads a distributed
 *   table, and runs a statement that reads a shard and calls a function on
 *   the worker: the functions concerned compute such values first (the
 *   return helpers are PL/pgSQL now). */

\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit

------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------
CREATE TABLE @extschema@.business_keys (
    key       text NOT NULL CHECK (key <> ''),
    kind      text NOT NULL
              CHECK (kind IN ('external_ref', 'psp_reference', 'tracking_number', 'carrier_event_id')),
    order_id  bigint NOT NULL,
    entity_id bigint NOT NULL,
    content   text,
    claimed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (key, kind)
);

CREATE SEQUENCE @extschema@.order_effects_effect_id_seq;

CREATE TABLE @extschema@.order_effects (
    order_id       bigint NOT NULL,
    effect_id      bigint NOT NULL DEFAULT nextval('@extschema@.order_effects_effect_id_seq'),
    kind           text NOT NULL CHECK (kind IN ('stock', 'credit')),
    customer_id    text,            -- credit: credit_add(customer_id, amount)
    amount         numeric,
    warehouse_id   text,            -- stock: stock_move(warehouse_id, sku, stock_kind, ...)
    sku            text,
    stock_kind     text,
    on_hand_delta  int,
    reserved_delta int,
    line_no        int,
    reason         text,
    PRIMARY KEY (order_id, effect_id),
    CHECK (kind = 'credit' AND customer_id IS NOT NULL AND amount IS NOT NULL
           OR kind = 'stock' AND warehouse_id IS NOT NULL AND sku IS NOT NULL
              AND stock_kind IS NOT NULL AND on_hand_delta IS NOT NULL
              AND reserved_delta IS NOT NULL)
);
ALTER SEQUENCE @extschema@.order_effects_effect_id_seq
    OWNED BY @extschema@.order_effects.effect_id;

CREATE UNLOGGED TABLE @extschema@.effects_armed (
    order_id bigint PRIMARY KEY
);

CREATE TABLE @extschema@.consumer_cursors (
    consumer   text NOT NULL REFERENCES @extschema@.consumers ON DELETE CASCADE,
    node_group int NOT NULL CHECK (node_group >= 0),
    acked_tx   xid8 NOT NULL DEFAULT '0',
    acked_seq  bigint NOT NULL DEFAULT 0,
    acked_at   timestamptz,
    PRIMARY KEY (consumer, node_group)
);

------------------------------------------------------------------------
-- Citus: C entry points, claims, effects, the stream per node group,
-- distribute()
------------------------------------------------------------------------
CREATE FUNCTION @extschema@.citus_active() RETURNS boolean
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'citus_active';

CREATE FUNCTION @extschema@.on_citus_worker() RETURNS boolean
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'on_citus_worker';

CREATE FUNCTION @extschema@.set_reason(reason text) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'set_reason';

CREATE FUNCTION @extschema@.citus_arm(order_id bigint) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'citus_arm';

CREATE FUNCTION @extschema@.claim_key(p_kind text, p_key text, p_order bigint, p_entity bigint,
                                      p_content text)
RETURNS @extschema@.business_keys
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    k @extschema@.business_keys;
BEGIN
    INSERT INTO @extschema@.business_keys AS b (key, kind, order_id, entity_id, content)
    VALUES (p_key, p_kind, p_order, p_entity, p_content)
    ON CONFLICT ON CONSTRAINT business_keys_pkey DO NOTHING
    RETURNING b.* INTO k;
    IF k.key IS NULL THEN
        SELECT * INTO k FROM @extschema@.business_keys b WHERE b.key = p_key AND b.kind = p_kind;
    END IF;
    RETURN k;
END;
$$;

CREATE FUNCTION @extschema@.order_effects_check() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'order_effects_check';

CREATE CONSTRAINT TRIGGER order_mgmt_effects_applied
    AFTER INSERT ON @extschema@.order_effects DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION @extschema@.order_effects_check();

CREATE FUNCTION @extschema@.apply_effects(p_orders bigint[])
RETURNS int
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    e       record;
    v_n     int := 0;
    v_freed text[] := '{}';
BEGIN
    FOR e IN DELETE FROM @extschema@.order_effects x WHERE x.order_id = ANY (p_orders)
             RETURNING x.* LOOP
        IF e.kind = 'credit' THEN
            PERFORM @extschema@.credit_add(e.customer_id, e.amount);
        ELSE
            PERFORM @extschema@.stock_move(e.warehouse_id, e.sku, e.stock_kind, e.on_hand_delta,
                                           e.reserved_delta, e.order_id, e.line_no, e.reason);
            IF e.on_hand_delta - e.reserved_delta > 0 THEN
                v_freed := v_freed || ARRAY[e.warehouse_id, e.sku];
            END IF;
        END IF;
        v_n := v_n + 1;
    END LOOP;
    PERFORM @extschema@.serve_freed(v_freed);
    RETURN v_n;
END;
$$;

CREATE FUNCTION @extschema@.apply_armed_effects(p_final boolean)
RETURNS int
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_orders bigint[];
    v_n      int := 0;
BEGIN
    IF NOT p_final THEN
        SELECT array_agg(a.order_id ORDER BY a.order_id) INTO v_orders
          FROM @extschema@.effects_armed a;
        RETURN CASE WHEN v_orders IS NULL THEN 0 ELSE @extschema@.apply_effects(v_orders) END;
    END IF;
    FOR i IN 1 .. 100 LOOP
        WITH d AS (DELETE FROM @extschema@.effects_armed RETURNING order_id)
        SELECT array_agg(d.order_id ORDER BY d.order_id) INTO v_orders FROM d;
        EXIT WHEN v_orders IS NULL;
        v_n := v_n + @extschema@.apply_effects(v_orders);
    END LOOP;
    RETURN v_n;
END;
$$;

CREATE FUNCTION @extschema@.effects_armed_trigger()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM @extschema@.effects_armed a WHERE a.order_id = NEW.order_id) THEN
        PERFORM @extschema@.apply_armed_effects(true);
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER order_mgmt_apply_effects
    AFTER INSERT ON @extschema@.effects_armed DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION @extschema@.effects_armed_trigger();

CREATE FUNCTION @extschema@.events_stamp() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'events_stamp';

CREATE FUNCTION @extschema@.seq_group(seq bigint)
RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ((seq - 1) >> 48)::int
$$;

CREATE FUNCTION @extschema@.citus_horizons()
RETURNS TABLE (node_group int, horizon xid8)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN QUERY
        SELECT n.groupid, r.result::xid8
          FROM pg_catalog.run_command_on_all_nodes(
                   'SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())') r
          JOIN pg_catalog.pg_dist_node n ON n.nodeid = r.nodeid
         WHERE r.success AND n.noderole = 'primary'
         ORDER BY n.groupid;
END;
$$;

CREATE FUNCTION @extschema@.citus_require_read_committed()
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'on Citus, fetch_events and ack_events run in READ COMMITTED'
            USING ERRCODE = '25000',
                  DETAIL = format('This transaction is %s: its snapshot on a worker may predate the delivery horizon.',
                                  current_setting('transaction_isolation')),
                  HINT = 'Call them outside an explicit REPEATABLE READ or SERIALIZABLE transaction.';
    END IF;
END;
$$;

CREATE FUNCTION @extschema@.citus_cursor(p_consumer text, p_group int,
                                         OUT acked_tx xid8, OUT acked_seq bigint)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    SELECT c.acked_tx, c.acked_seq INTO acked_tx, acked_seq
      FROM @extschema@.consumer_cursors c
     WHERE c.consumer = p_consumer AND c.node_group = p_group;
    acked_tx := coalesce(acked_tx, '0');
    acked_seq := coalesce(acked_seq, 0);
END;
$$;

CREATE FUNCTION @extschema@.citus_register_consumer(p_consumer text, p_from_now boolean)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    h     record;
    v_tx  xid8;
    v_seq bigint;
BEGIN
    INSERT INTO @extschema@.consumers (consumer) VALUES (p_consumer)
    ON CONFLICT ON CONSTRAINT consumers_pkey DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_from_now THEN
        FOR h IN SELECT * FROM @extschema@.citus_horizons() LOOP
            v_tx := NULL;
            v_seq := NULL;
            SELECT e.tx, e.seq INTO v_tx, v_seq FROM @extschema@.events e
             WHERE e.seq > (h.node_group::bigint << 48) AND e.seq <= ((h.node_group + 1)::bigint << 48)
               AND e.tx < h.horizon
             ORDER BY e.tx DESC, e.seq DESC LIMIT 1;
            INSERT INTO @extschema@.consumer_cursors (consumer, node_group, acked_tx, acked_seq)
            VALUES (p_consumer, h.node_group, coalesce(v_tx, '0'), coalesce(v_seq, 0));
        END LOOP;
    END IF;
    RETURN true;
END;
$$;

CREATE FUNCTION @extschema@.citus_fetch_events(p_consumer text, p_max_rows int)
RETURNS SETOF @extschema@.events
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    h        record;
    c        record;
    v_at     timestamptz;
    v_best   record;
    v_best_at timestamptz;
BEGIN
    -- the horizons first: every event below them is visible to what follows
    FOR h IN SELECT * FROM @extschema@.citus_horizons() LOOP
        c := @extschema@.citus_cursor(p_consumer, h.node_group);
        SELECT e.occurred_at INTO v_at FROM @extschema@.events e
         WHERE e.seq > (h.node_group::bigint << 48) AND e.seq <= ((h.node_group + 1)::bigint << 48)
           AND (e.tx, e.seq) > (c.acked_tx, c.acked_seq) AND e.tx < h.horizon
         ORDER BY e.tx, e.seq LIMIT 1;
        IF FOUND AND (v_best_at IS NULL OR v_at < v_best_at) THEN
            v_best_at := v_at;
            SELECT h.node_group, h.horizon, c.acked_tx, c.acked_seq INTO v_best;
        END IF;
    END LOOP;
    IF v_best_at IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT e.* FROM @extschema@.events e
         WHERE e.seq > (v_best.node_group::bigint << 48)
           AND e.seq <= ((v_best.node_group + 1)::bigint << 48)
           AND (e.tx, e.seq) > (v_best.acked_tx, v_best.acked_seq) AND e.tx < v_best.horizon
         ORDER BY e.tx, e.seq
         LIMIT p_max_rows;
END;
$$;

CREATE FUNCTION @extschema@.citus_ack_events(p_consumer text, p_tx xid8, p_seq bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_group int := @extschema@.seq_group(p_seq);
    c       record;
    v_horizon xid8;
BEGIN
    c := @extschema@.citus_cursor(p_consumer, v_group);
    IF (p_tx, p_seq) <= (c.acked_tx, c.acked_seq) THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.events e WHERE e.tx = p_tx AND e.seq = p_seq) THEN
        RAISE EXCEPTION 'cannot acknowledge (%, %) for consumer "%"', p_tx, p_seq, p_consumer
            USING ERRCODE = 'OM040', DETAIL = 'There is no event at this position.',
                  HINT = 'Acknowledge the (tx, seq) of the last event fetch_events returned.';
    END IF;
    SELECT h.horizon INTO v_horizon FROM @extschema@.citus_horizons() h
     WHERE h.node_group = v_group;
    IF v_horizon IS NULL OR p_tx >= v_horizon THEN
        RAISE EXCEPTION 'cannot acknowledge (%, %) for consumer "%"', p_tx, p_seq, p_consumer
            USING ERRCODE = 'OM040',
                  DETAIL = format('fetch_events has not handed out this event yet: an older transaction of node group %s is still running.', v_group),
                  HINT = 'Acknowledge the (tx, seq) of the last event fetch_events returned.';
    END IF;
    INSERT INTO @extschema@.consumer_cursors AS x (consumer, node_group, acked_tx, acked_seq, acked_at)
    VALUES (p_consumer, v_group, p_tx, p_seq, pg_catalog.now())
    ON CONFLICT ON CONSTRAINT consumer_cursors_pkey DO UPDATE
       SET acked_tx = excluded.acked_tx, acked_seq = excluded.acked_seq, acked_at = excluded.acked_at
     WHERE (x.acked_tx, x.acked_seq) < (excluded.acked_tx, excluded.acked_seq);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- (consumer_lag: the last position acknowledged, in some group)
    UPDATE @extschema@.consumers x
       SET acked_tx = p_tx, acked_seq = p_seq, acked_at = pg_catalog.now()
     WHERE x.consumer = p_consumer;
    RETURN true;
END;
$$;

CREATE FUNCTION @extschema@.citus_events_pending(p_consumer text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    g int;
    c record;
BEGIN
    FOR g IN SELECT n.groupid FROM pg_catalog.pg_dist_node n WHERE n.noderole = 'primary'
              UNION SELECT x.node_group FROM @extschema@.consumer_cursors x
              ORDER BY 1 LOOP
        c := @extschema@.citus_cursor(p_consumer, g);
        IF EXISTS (SELECT 1 FROM @extschema@.events e
                    WHERE e.seq > (g::bigint << 48) AND e.seq <= ((g + 1)::bigint << 48)
                      AND (e.tx, e.seq) > (c.acked_tx, c.acked_seq)) THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END;
$$;

CREATE FUNCTION @extschema@.citus_purge_events(p_cutoff timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_any    boolean;
    v_groups int[] := '{}';
    v_txs    xid8[] := '{}';
    v_seqs   bigint[] := '{}';
    g        int;
    c        record;
    r        record;
    v_n      bigint := 0;
BEGIN
    LOCK TABLE @extschema@.consumers IN SHARE UPDATE EXCLUSIVE MODE;
    v_any := NOT EXISTS (SELECT 1 FROM @extschema@.consumers);
    IF NOT v_any THEN
        FOR g IN SELECT n.groupid FROM pg_catalog.pg_dist_node n WHERE n.noderole = 'primary'
                  UNION SELECT x.node_group FROM @extschema@.consumer_cursors x ORDER BY 1 LOOP
            SELECT coalesce(x.acked_tx, '0') AS tx, coalesce(x.acked_seq, 0) AS seq INTO c
              FROM @extschema@.consumers k
              LEFT JOIN @extschema@.consumer_cursors x ON x.consumer = k.consumer AND x.node_group = g
             ORDER BY 1, 2 LIMIT 1;
            v_groups := v_groups || g;
            v_txs := v_txs || c.tx;
            v_seqs := v_seqs || c.seq;
        END LOOP;
    END IF;
    FOR r IN SELECT * FROM pg_catalog.run_command_on_placements('@extschema@.events',
                 -- (%s: the shard, filled in by Citus)
                 format('SELECT @extschema@.purge_shard(''%%s'', %L, %L, %L, %L, %L)',
                        p_cutoff, v_any, v_groups, v_txs, v_seqs)) LOOP
        IF NOT r.success THEN
            RAISE EXCEPTION 'could not purge shard % on %:%: %', r.shardid, r.nodename,
                            r.nodeport, r.result;
        END IF;
        v_n := v_n + r.result::bigint;
    END LOOP;
    RETURN v_n;
END;
$$;

CREATE FUNCTION @extschema@.purge_shard(shard regclass, cutoff timestamptz, any_position boolean,
                                        groups int[], txs xid8[], seqs bigint[])
RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'purge_shard';

CREATE PROCEDURE @extschema@.distribute()
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reference text[] := ARRAY['customers', 'products', 'calendars', 'calendar_exceptions',
                                'warehouses', 'services', 'lanes', 'zone_rules', 'statuses',
                                'transitions', 'bi_settings'];
    v_colocated text[] := ARRAY['order_lines', 'shipments', 'shipment_lines', 'returns',
                                'return_lines', 'return_inspections', 'order_holds', 'payments',
                                'tracking_events', 'events', 'order_effects'];
    -- constraints Citus cannot distribute: UNIQUEs without order_id (the
    -- business keys move to business_keys) and the exchange link between
    -- two orders, which may live on two shards; and the foreign keys of the
    -- coordinator's stock and credit tables to master data: checking one
    -- locks the row in every placement of the reference table, which
    -- deadlocks concurrent confirmations (the API checks warehouses, skus
    -- and customers itself)
    v_drop text[] := ARRAY['orders', 'orders_external_ref_key',
                           'payments', 'payments_psp_reference_key',
                           'shipments', 'shipments_tracking_number_key',
                           'tracking_events', 'tracking_events_carrier_event_id_key',
                           'returns', 'returns_exchange_order_id_key',
                           'returns', 'returns_exchange_order_id_fkey',
                           'stock_levels', 'stock_levels_warehouse_id_fkey',
                           'stock_levels', 'stock_levels_sku_fkey',
                           'inventory_movements', 'inventory_movements_warehouse_id_fkey',
                           'inventory_movements', 'inventory_movements_sku_fkey',
                           'credit_accounts', 'credit_accounts_customer_id_fkey'];
    t       text;
    v_moved boolean := false;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'Citus is not installed in database %', current_database()
            USING ERRCODE = '55000',
                  DETAIL = 'order_mgmt.distribute() distributes order_mgmt over a Citus cluster.',
                  HINT = 'Install Citus on every node (shared_preload_libraries = ''citus''), CREATE EXTENSION citus, add the workers with citus_add_node, then call distribute() again.';
    END IF;
    IF (SELECT l.groupid FROM pg_catalog.pg_dist_local_group l) <> 0 THEN
        RAISE EXCEPTION 'distribute() runs on the Citus coordinator' USING ERRCODE = '55000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node n WHERE n.groupid = 0) THEN
        RAISE EXCEPTION 'the coordinator is not in the Citus metadata' USING ERRCODE = '55000',
              DETAIL = 'Stock, credit accounts and consumers stay on the coordinator, which reads the master data from its own placement of the reference tables.',
              HINT = 'SELECT citus_set_coordinator_host(''<host>'', <port>); then call distribute() again.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node n WHERE n.groupid = 0 AND n.shouldhaveshards) THEN
        RAISE EXCEPTION 'the coordinator must not hold shards' USING ERRCODE = '55000',
              DETAIL = 'Triggers on a shard on the coordinator could not apply stock and credit changes as the coordinator does.',
              HINT = 'SELECT citus_set_node_property(''<host>'', <port>, ''shouldhaveshards'', false);';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node n
                    WHERE n.groupid > 0 AND n.noderole = 'primary' AND n.isactive) THEN
        RAISE EXCEPTION 'the Citus cluster has no worker' USING ERRCODE = '55000',
              HINT = 'Add workers with citus_add_node, then call distribute() again.';
    END IF;

    -- Triggers on distributed tables (they stay order-scoped: see src/citus.c);
    -- local tables referencing master data are not turned into Citus
    -- tables; one connection per worker while tables are created in one
    -- transaction.
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    PERFORM set_config('citus.enable_local_reference_table_foreign_keys', 'off', true);
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);

    -- Every node group its own range of every sequence of the schema
    -- (Citus gives ranges only to the sequences it creates itself), first,
    -- while no sequence belongs to a distributed table yet.
    PERFORM @extschema@.citus_sequence_ranges();

    -- The business keys of existing rows, before their UNIQUEs go.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition
                    WHERE logicalrelid = '@extschema@.business_keys'::regclass) THEN
        INSERT INTO @extschema@.business_keys (key, kind, order_id, entity_id, content)
        SELECT o.external_ref, 'external_ref', o.order_id, o.order_id, o.request_hash
          FROM @extschema@.orders o WHERE o.external_ref IS NOT NULL
        UNION ALL
        SELECT p.psp_reference, 'psp_reference', p.order_id, p.payment_id, NULL
          FROM @extschema@.payments p
        UNION ALL
        SELECT s.tracking_number, 'tracking_number', s.order_id, s.shipment_id, NULL
          FROM @extschema@.shipments s WHERE s.tracking_number IS NOT NULL
        UNION ALL
        SELECT t.carrier_event_id, 'carrier_event_id', t.order_id, t.tracking_event_id, NULL
          FROM @extschema@.tracking_events t
        ON CONFLICT ON CONSTRAINT business_keys_pkey DO NOTHING;
    END IF;
    FOR i IN 1 .. array_length(v_drop, 1) / 2 LOOP
        EXECUTE format('ALTER TABLE @extschema@.%I DROP CONSTRAINT IF EXISTS %I',
                       v_drop[2 * i - 1], v_drop[2 * i]);
    END LOOP;

    -- Master data first: a distributed table may only reference a
    -- reference table.
    FOREACH t IN ARRAY v_reference LOOP
        IF NOT @extschema@.citus_table(t) THEN
            PERFORM create_reference_table(format('@extschema@.%I', t)::regclass);
            v_moved := true;
        END IF;
    END LOOP;
    IF NOT @extschema@.citus_table('orders') THEN
        PERFORM create_distributed_table('@extschema@.orders', 'order_id');
        v_moved := true;
    END IF;
    -- parents before children (their foreign keys include order_id)
    FOREACH t IN ARRAY v_colocated LOOP
        IF NOT @extschema@.citus_table(t) THEN
            PERFORM create_distributed_table(format('@extschema@.%I', t)::regclass, 'order_id',
                                             colocate_with => '@extschema@.orders');
            v_moved := true;
        END IF;
    END LOOP;
    IF NOT @extschema@.citus_table('business_keys') THEN
        PERFORM create_distributed_table('@extschema@.business_keys', 'key', colocate_with => 'none');
        v_moved := true;
    END IF;
    -- the coordinator's copies of what moved to the shards; the shell of
    -- events past its append-only trigger (replica role: no trigger
    -- fires), its rows are on the shards now
    IF v_moved THEN
        PERFORM set_config('session_replication_role', 'replica', true);
        FOREACH t IN ARRAY v_reference || ARRAY['orders'] || v_colocated || ARRAY['business_keys'] LOOP
            PERFORM truncate_local_data_after_distributing_table(format('@extschema@.%I', t)::regclass);
        END LOOP;
        PERFORM set_config('session_replication_role', 'origin', true);
    END IF;

    -- seq and tx of every event from the node that stores it
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                    WHERE tgrelid = '@extschema@.events'::regclass AND tgname = 'order_mgmt_stamp') THEN
        CREATE TRIGGER order_mgmt_stamp BEFORE INSERT ON @extschema@.events
            FOR EACH ROW EXECUTE FUNCTION @extschema@.events_stamp();
    END IF;

    -- the cursors of existing consumers: every event so far was written by
    -- the coordinator (node group 0)
    INSERT INTO @extschema@.consumer_cursors (consumer, node_group, acked_tx, acked_seq, acked_at)
    SELECT c.consumer, 0, c.acked_tx, c.acked_seq, c.acked_at FROM @extschema@.consumers c
    ON CONFLICT ON CONSTRAINT consumer_cursors_pkey DO NOTHING;

    -- a client's SET LOCAL order_mgmt.actor (and reason, automated) in a
    -- transaction reaches the workers that run its triggers
    EXECUTE format('ALTER DATABASE %I SET citus.propagate_set_commands = local', current_database());
    -- reference tables onto nodes added since the last call
    PERFORM replicate_reference_tables();
    IF current_database() <> ALL (SELECT btrim(d) FROM pg_catalog.regexp_split_to_table(
           coalesce(current_setting('order_mgmt.relay_databases', true), ''), ',') AS d) THEN
        RAISE WARNING 'no order_mgmt relay worker serves database %', current_database()
            USING DETAIL = 'On Citus writers send no NOTIFY; the relay worker on the coordinator announces every event.',
                  HINT = 'On the coordinator: shared_preload_libraries = ''citus,order_mgmt'' and order_mgmt.relay_databases, then restart.';
    END IF;
END;
$$;

CREATE FUNCTION @extschema@.citus_table(p_table text)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
                    WHERE d.logicalrelid = format('@extschema@.%I', p_table)::regclass);
END;
$$;

CREATE FUNCTION @extschema@.citus_sequence_ranges()
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM pg_catalog.run_command_on_all_nodes($cmd$
        DO $do$
        DECLARE
            g  bigint := (SELECT groupid FROM pg_catalog.pg_dist_local_group);
            lo bigint := (g << 48) + 1;
            hi bigint := (g + 1) << 48;
            s  record;
        BEGIN
            SET LOCAL citus.enable_ddl_propagation = off;
            FOR s IN SELECT q.sequencename, q.min_value, q.max_value, q.last_value
                       FROM pg_catalog.pg_sequences q WHERE q.schemaname = '@extschema@' LOOP
                CONTINUE WHEN s.min_value = lo AND s.max_value = hi;
                EXECUTE format('ALTER SEQUENCE @extschema@.%I MINVALUE %s MAXVALUE %s START WITH %s %s',
                               s.sequencename, lo, hi, lo,
                               CASE WHEN coalesce(s.last_value, 0) NOT BETWEEN lo AND hi
                                    THEN 'RESTART WITH ' || lo ELSE '' END);
            END LOOP;
        END
        $do$
        $cmd$) LOOP
        IF NOT r.success THEN
            RAISE EXCEPTION 'could not give node % its sequence ranges: %', r.nodeid, r.result
                USING ERRCODE = '55000';
        END IF;
    END LOOP;
END;
$$;


------------------------------------------------------------------------
-- The rules engine, made to run on Citus too
------------------------------------------------------------------------
CREATE FUNCTION @extschema@.statuses_of_class(entity text, class text) RETURNS text[]
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'statuses_of_class';

CREATE OR REPLACE FUNCTION @extschema@.orders_closed()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reason text := coalesce(nullif(current_setting('order_mgmt.reason', true), ''),
                              'order ' || NEW.status);
    v_cancel boolean := @extschema@.status_class('order', NEW.status) = 'cancelled';
    v_freed  text[];
BEGIN
    v_freed := @extschema@.release_reservations(NEW.order_id, v_reason);
    UPDATE @extschema@.order_lines x
       SET qty_cancelled = CASE WHEN v_cancel THEN x.qty - x.qty_shipped ELSE x.qty_cancelled END,
           qty_reserved = 0, qty_backordered = 0
     WHERE x.order_id = NEW.order_id
       AND (x.qty_reserved > 0 OR x.qty_backordered > 0
            OR (v_cancel AND x.qty_cancelled < x.qty - x.qty_shipped));
    UPDATE @extschema@.order_holds x
       SET released_at = now(), released_by = @extschema@.current_actor(),
           release_reason = v_reason
     WHERE x.order_id = NEW.order_id AND x.released_at IS NULL;
    -- 0.5.0: shipments still being prepared are cancelled with the order
    -- (their units were reservations, released above); the lifecycle
    -- trigger writes their events with the order's reason
    UPDATE @extschema@.shipments x SET status = 'cancelled'
     WHERE x.order_id = NEW.order_id
       AND x.status = ANY (@extschema@.statuses_of_class('shipment', 'preparing'));
    PERFORM @extschema@.serve_freed(v_freed);
    RETURN NULL;
END;
$$;

DROP FUNCTION @extschema@.credit_add(text, numeric);
CREATE FUNCTION @extschema@.credit_add(customer_id text, delta numeric, order_id bigint DEFAULT NULL)
RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'credit_add';

CREATE OR REPLACE FUNCTION @extschema@.orders_money()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.payment_status := 'unpaid';
        NEW.exposure := @extschema@.order_exposure(NEW.total, NEW.credit_approved_at, NEW.status, 0);
        IF NEW.exposure <> 0 THEN
            PERFORM @extschema@.credit_add(NEW.customer_id, NEW.exposure, NEW.order_id);
        END IF;
        RETURN NEW;
    END IF;
    -- a status move that neither enters nor leaves the cancelled class changes nothing here
    IF NEW.payment_status IS NOT DISTINCT FROM OLD.payment_status AND NEW.total = OLD.total
       AND NEW.credit_approved_at IS NOT DISTINCT FROM OLD.credit_approved_at
       AND NEW.exposure = OLD.exposure AND NEW.customer_id = OLD.customer_id
       AND (@extschema@.status_class('order', OLD.status) = 'cancelled')
           = (@extschema@.status_class('order', NEW.status) = 'cancelled') THEN
        RETURN NEW;
    END IF;
    t := @extschema@.payment_totals(NEW.order_id);
    NEW.payment_status := @extschema@.derive_payment_status(NEW.total, t.authorized, t.captured,
                                                            t.refunded, t.voided);
    NEW.exposure := @extschema@.order_exposure(NEW.total, NEW.credit_approved_at, NEW.status,
                                               t.captured);
    IF NEW.customer_id <> OLD.customer_id THEN
        PERFORM @extschema@.credit_add(OLD.customer_id, -OLD.exposure, NEW.order_id);
        PERFORM @extschema@.credit_add(NEW.customer_id, NEW.exposure, NEW.order_id);
    ELSIF NEW.exposure <> OLD.exposure THEN
        PERFORM @extschema@.credit_add(NEW.customer_id, NEW.exposure - OLD.exposure, NEW.order_id);
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.record_payment(
    p_order bigint, p_kind text, p_amount numeric, p_psp text, p_return bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    o       @extschema@.orders;
    p       @extschema@.payments;
    t       record;
    v_id    bigint;
    k       @extschema@.business_keys;
    v_amount numeric := p_amount;
    v_limit numeric;
BEGIN
    IF p_psp IS NULL OR btrim(p_psp) = '' THEN
        RAISE EXCEPTION 'psp_reference must not be null or empty' USING ERRCODE = '22004';
    END IF;
    IF length(p_psp) > 200 THEN
        RAISE EXCEPTION 'psp_reference is too long' USING ERRCODE = '22001',
              DETAIL = format('It has %s characters; at most 200 are allowed.', length(p_psp));
    END IF;
    IF v_amount IS NULL AND p_kind <> 'void' THEN
        RAISE EXCEPTION 'amount must not be null' USING ERRCODE = '22004';
    END IF;
    IF v_amount IS NOT NULL AND (v_amount <= 0 OR v_amount <> round(v_amount, 2)
                                 OR v_amount >= 1e12) THEN
        RAISE EXCEPTION 'invalid payment amount %', v_amount USING ERRCODE = '22023',
              DETAIL = 'An amount is positive, below 10^12, with at most two decimals.';
    END IF;
    o := @extschema@.lock_order(p_order);

    -- a repeated psp_reference is the same payment, not a second one (on
    -- Citus the key's claim names it: payments is distributed by order)
    IF @extschema@.citus_active() THEN
        SELECT * INTO k FROM @extschema@.business_keys x
         WHERE x.key = p_psp AND x.kind = 'psp_reference';
        IF k.key IS NOT NULL THEN
            SELECT * INTO p FROM @extschema@.payments x
             WHERE x.order_id = k.order_id AND x.payment_id = k.entity_id;
        END IF;
    ELSE
        SELECT * INTO p FROM @extschema@.payments x WHERE x.psp_reference = p_psp;
    END IF;
    IF p.payment_id IS NOT NULL THEN
        IF p.order_id <> o.order_id OR p.kind <> p_kind
           OR (v_amount IS NOT NULL AND p.amount <> v_amount)
           OR p.return_id IS DISTINCT FROM p_return THEN
            RAISE EXCEPTION 'psp_reference "%" is already used by another payment', p_psp
                USING ERRCODE = 'OM005',
                      DETAIL = format('Payment %s: %s of %s on order %s.', p.payment_id, p.kind,
                                      p.amount, p.order_id);
        END IF;
        RETURN p.payment_id;
    END IF;

    IF p_kind IN ('authorization', 'capture')
       AND @extschema@.status_class('order', o.status) = 'cancelled' THEN
        RAISE EXCEPTION 'order % is %', o.order_id, o.status USING ERRCODE = 'OM010',
              DETAIL = format('No %s is taken on a %s order.', p_kind, o.status);
    END IF;
    t := @extschema@.payment_totals(o.order_id);
    v_limit := CASE p_kind
        WHEN 'capture' THEN t.authorized - t.voided - t.captured
        WHEN 'void' THEN t.authorized - t.voided - t.captured
        WHEN 'refund' THEN t.captured - t.refunded
    END;
    IF p_kind = 'void' THEN
        v_amount := coalesce(v_amount, v_limit);
    END IF;
    IF v_limit IS NOT NULL AND v_amount > v_limit THEN
        RAISE EXCEPTION '% of % exceeds what order % allows', p_kind, coalesce(v_amount, 0),
                        o.order_id
            USING ERRCODE = 'OM015',
                  DETAIL = format('Order %s: authorized %s, captured %s, refunded %s, voided %s; at most %s can be %s.',
                                  o.order_id, t.authorized, t.captured, t.refunded, t.voided,
                                  v_limit, CASE p_kind WHEN 'capture' THEN 'captured'
                                                       WHEN 'void' THEN 'voided'
                                                       ELSE 'refunded' END);
    END IF;
    IF v_amount <= 0 THEN
        RAISE EXCEPTION 'nothing to void on order %', o.order_id USING ERRCODE = 'OM015',
              DETAIL = format('Order %s has no open authorization.', o.order_id);
    END IF;

    v_id := nextval('@extschema@.payments_payment_id_seq');
    IF @extschema@.citus_active() THEN
        k := @extschema@.claim_key('psp_reference', p_psp, o.order_id, v_id, NULL);
        IF k.entity_id <> v_id THEN
            v_id := NULL;       -- claimed meanwhile for another order
        END IF;
    END IF;
    IF v_id IS NOT NULL THEN
        INSERT INTO @extschema@.payments AS x
            (order_id, payment_id, kind, amount, psp_reference, return_id, actor)
        VALUES (o.order_id, v_id, p_kind, v_amount, p_psp, p_return, @extschema@.current_actor())
        ON CONFLICT DO NOTHING
        RETURNING x.payment_id INTO v_id;
    END IF;
    IF v_id IS NULL THEN
        -- the same reference was committed meanwhile for another order
        RAISE EXCEPTION 'psp_reference "%" is already used by another payment', p_psp
            USING ERRCODE = 'OM005';
    END IF;
    -- (order_mgmt_payment_status on payments has recomputed payment_status and exposure)
    PERFORM @extschema@.emit_event(o.order_id, 'payment', v_id,
        'payment.' || CASE p_kind WHEN 'authorization' THEN 'authorized'
                                  WHEN 'capture' THEN 'captured'
                                  WHEN 'refund' THEN 'refunded' ELSE 'voided' END,
        NULL, NULL, NULL,
        jsonb_build_object('amount', v_amount, 'psp_reference', p_psp, 'return_id', p_return));

    -- an authorization that now covers an order awaiting payment confirms it
    IF p_kind = 'authorization' AND o.status = 'awaiting_payment' THEN
        PERFORM @extschema@.confirm_automated(o.order_id);
    END IF;
    RETURN v_id;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.place_order(
    customer_id text,
    lines jsonb,
    ship_to jsonb,
    channel text DEFAULT 'web',
    service_id text DEFAULT NULL,
    external_ref text DEFAULT NULL,
    requested_delivery date DEFAULT NULL,
    allow_backorder boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cust   @extschema@.customers%ROWTYPE;
    v_lines  jsonb;
    v_hash   text;
    v_new    bigint;    -- the id of a new order
    v_id     bigint;    -- the order an earlier call placed with this external_ref
    v_old    text;      -- its request hash
    k        @extschema@.business_keys;
    v_country text := upper(ship_to->>'country');
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be null' USING ERRCODE = '22004';
    END IF;
    IF channel IS NULL OR channel NOT IN ('web', 'phone', 'in_person', 'edi', 'marketplace') THEN
        RAISE EXCEPTION 'invalid channel "%"', channel
            USING ERRCODE = '22023',
                  DETAIL = 'channel must be one of web, phone, in_person, edi, marketplace.';
    END IF;
    IF ship_to IS NULL OR jsonb_typeof(ship_to) <> 'object' THEN
        RAISE EXCEPTION 'ship_to must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF v_country IS NULL OR v_country !~ '^[A-Z]{2}$' THEN
        RAISE EXCEPTION 'ship_to.country must be an ISO 3166 alpha-2 code'
            USING ERRCODE = '22023', DETAIL = format('Got %s.', coalesce(ship_to->>'country', 'nothing'));
    END IF;
    IF coalesce(allow_backorder, false) IS DISTINCT FROM allow_backorder THEN
        RAISE EXCEPTION 'allow_backorder must not be null' USING ERRCODE = '22004';
    END IF;
    IF length(external_ref) > 200 THEN
        RAISE EXCEPTION 'external_ref is too long' USING ERRCODE = '22001',
              DETAIL = format('It has %s characters; at most 200 are allowed.', length(external_ref));
    END IF;
    SELECT * INTO v_cust FROM @extschema@.customers c WHERE c.customer_id = place_order.customer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer "%" does not exist', customer_id
            USING ERRCODE = 'OM004', HINT = 'Create the customer in order_mgmt.customers first.';
    END IF;
    IF service_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.services s WHERE s.service_id = place_order.service_id) THEN
        RAISE EXCEPTION 'service "%" does not exist', service_id
            USING ERRCODE = 'OM004', HINT = 'Services are the rows of order_mgmt.services.';
    END IF;
    v_lines := @extschema@.normalize_lines(lines);
    v_hash := md5(jsonb_build_array(customer_id, v_lines, ship_to, channel, service_id,
                                    requested_delivery, allow_backorder)::text);
    v_new := nextval('@extschema@.orders_order_id_seq');

    -- On Citus the key's claim (business_keys) decides; on a single node
    -- the UNIQUE of external_ref (ON CONFLICT below).  Either way a
    -- concurrent twin waits for the first and then sees it.
    IF external_ref IS NOT NULL AND @extschema@.citus_active() THEN
        k := @extschema@.claim_key('external_ref', external_ref, v_new, v_new, v_hash);
        v_id := NULLIF(k.order_id, v_new);
        v_old := k.content;
    END IF;
    IF v_id IS NULL THEN
        INSERT INTO @extschema@.orders AS o
            (order_id, external_ref, customer_id, channel, currency, total, ship_to,
             ship_to_country, ship_to_postal, service_id, requested_delivery, allow_backorder,
             request_hash)
        SELECT v_new, place_order.external_ref, v_cust.customer_id, place_order.channel,
               v_cust.currency,
               (SELECT sum((x->>'qty')::int * (x->>'unit_price')::numeric)
                  FROM jsonb_array_elements(v_lines) x),
               place_order.ship_to, v_country, place_order.ship_to->>'postal_code',
               place_order.service_id, place_order.requested_delivery, place_order.allow_backorder,
               v_hash
        ON CONFLICT DO NOTHING
        RETURNING o.order_id INTO v_id;
        IF v_id IS NULL THEN
            SELECT o.order_id, o.request_hash INTO v_id, v_old
              FROM @extschema@.orders o WHERE o.external_ref = place_order.external_ref;
        ELSE
            v_id := NULL;       -- placed now
        END IF;
    END IF;

    IF v_id IS NOT NULL THEN
        IF v_old IS DISTINCT FROM v_hash THEN
            RAISE EXCEPTION 'external_ref "%" is already used by order % with other content',
                            external_ref, v_id
                USING ERRCODE = 'OM005',
                      HINT = 'Use a new external_ref for a new order.';
        END IF;
        RETURN v_id;
    END IF;

    INSERT INTO @extschema@.order_lines (order_id, line_no, sku, qty, unit_price)
    SELECT v_new, (x->>'line_no')::int, x->>'sku', (x->>'qty')::int, (x->>'unit_price')::numeric
      FROM jsonb_array_elements(v_lines) x;

    PERFORM @extschema@.emit_event(v_new, 'order', v_new, 'order.placed', NULL, 'placed', NULL,
                                   jsonb_build_object('channel', channel, 'external_ref', external_ref));
    RETURN v_new;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.move_order(p_order bigint, p_status text, p_reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_saved text := current_setting('order_mgmt.reason', true);
BEGIN
    PERFORM @extschema@.set_reason(p_reason);
    UPDATE @extschema@.orders SET status = p_status WHERE order_id = p_order;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.lock_order(p_order bigint)
RETURNS @extschema@.orders
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    o     @extschema@.orders;
    v_now timestamptz := clock_timestamp();     -- (Citus takes no volatile call in an UPDATE)
BEGIN
    IF p_order IS NULL THEN
        RAISE EXCEPTION 'order_id must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM @extschema@.citus_arm(p_order);     -- nothing on a single node
    UPDATE @extschema@.orders x SET updated_at = v_now WHERE x.order_id = p_order
    RETURNING * INTO o;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % does not exist', p_order USING ERRCODE = 'OM004';
    END IF;
    RETURN o;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.confirm_locked(o @extschema@.orders)
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    c          @extschema@.customers;
    v_exposure numeric;
    v_covered  numeric;
    v_credit_ok boolean := true;
    v_paid_ok  boolean := true;
    v_short    jsonb;
    v_pt       record;
    v_approve  boolean := false;
    v_saved    text;
    v_now      timestamptz := now();    -- (Citus: no function call in a CASE of an UPDATE)
BEGIN
    SELECT * INTO c FROM @extschema@.customers x WHERE x.customer_id = o.customer_id;
    IF c.payment_terms = 'credit' AND o.credit_approved_at IS NULL THEN
        v_exposure := @extschema@.credit_exposure(c.customer_id);
        v_credit_ok := v_exposure + o.total <= c.credit_limit;
        PERFORM @extschema@.emit_event(o.order_id, 'order', o.order_id, 'order.credit_checked',
                    NULL, NULL, NULL,
                    jsonb_build_object('exposure', v_exposure, 'total', o.total,
                                       'credit_limit', c.credit_limit, 'passed', v_credit_ok));
        v_approve := v_credit_ok;   -- recorded with the status move below
    ELSIF c.payment_terms <> 'credit' THEN
        v_pt := @extschema@.payment_totals(o.order_id);
        v_covered := v_pt.authorized - v_pt.voided - v_pt.refunded;
        v_paid_ok := v_covered >= o.total;
        PERFORM @extschema@.emit_event(o.order_id, 'order', o.order_id, 'order.payment_checked',
                    NULL, NULL, NULL,
                    jsonb_build_object('authorized', v_covered, 'total', o.total,
                                       'passed', v_paid_ok));
    END IF;

    v_short := @extschema@.reserve_lines(o.order_id, o.allow_backorder, o.warehouse_id);

    IF NOT v_credit_ok THEN
        PERFORM @extschema@.add_hold(o.order_id, 'credit',
            format('open exposure %s plus order total %s exceeds the credit limit %s of customer %s',
                   v_exposure, o.total, c.credit_limit, c.customer_id), NULL);
    END IF;
    IF jsonb_array_length(v_short) > 0 THEN
        PERFORM @extschema@.add_hold(o.order_id, 'stock',
            format('%s line(s) cannot be reserved in full', jsonb_array_length(v_short)),
            jsonb_build_object('lines', v_short));
    END IF;
    IF NOT v_credit_ok OR jsonb_array_length(v_short) > 0 THEN
        IF v_approve THEN
            UPDATE @extschema@.orders x SET credit_approved_at = now() WHERE x.order_id = o.order_id;
        END IF;
        RETURN 'on_hold';
    END IF;
    IF NOT v_paid_ok THEN
        IF o.status <> 'awaiting_payment' THEN
            PERFORM @extschema@.move_order(o.order_id, 'awaiting_payment',
                'authorizations do not cover the order total');
        END IF;
        RETURN 'awaiting_payment';
    END IF;
    -- the approval and the status in one UPDATE (each statement on orders pays for its CHECKs)
    v_saved := current_setting('order_mgmt.reason', true);
    PERFORM @extschema@.set_reason('');
    UPDATE @extschema@.orders x
       SET status = 'confirmed',
           credit_approved_at = CASE WHEN v_approve THEN v_now ELSE x.credit_approved_at END
     WHERE x.order_id = o.order_id;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
    RETURN 'confirmed';
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.serve_freed(p_pairs text[])
RETURNS int
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_total int := 0;
BEGIN
    IF cardinality(p_pairs) = 0 OR @extschema@.on_citus_worker() THEN
        RETURN 0;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_pairs, 1), 0) / 2 LOOP
        v_total := v_total + @extschema@.serve_waiting_demand(p_pairs[2 * i - 1], p_pairs[2 * i]);
    END LOOP;
    RETURN v_total;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.serve_line(p_order bigint, p_line int, p_warehouse text,
                                       p_sku text)
RETURNS int
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    o      @extschema@.orders;
    l      @extschema@.order_lines;
    v_take int;
    h      record;
    v_now  timestamptz;
BEGIN
    SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = p_order FOR UPDATE SKIP LOCKED;
    IF NOT FOUND
       OR @extschema@.status_class('order', o.status) IN ('completed', 'cancelled') THEN
        RETURN 0;
    END IF;
    PERFORM @extschema@.citus_arm(p_order);     -- nothing on a single node
    SELECT * INTO l FROM @extschema@.order_lines x
     WHERE x.order_id = p_order AND x.line_no = p_line;
    IF l.qty_backordered <= 0 OR l.warehouse_id <> p_warehouse OR l.sku <> p_sku THEN
        RETURN 0;
    END IF;
    v_take := @extschema@.stock_reserve(p_warehouse, p_sku, 'reserve', 0, l.qty_backordered,
                                        p_order, p_line, 'backorder allocated');
    IF v_take = 0 THEN
        RETURN 0;
    END IF;
    UPDATE @extschema@.order_lines x
       SET qty_reserved = x.qty_reserved + v_take, qty_backordered = x.qty_backordered - v_take,
           warehouse_id = p_warehouse
     WHERE x.order_id = p_order AND x.line_no = p_line;
    v_now := clock_timestamp();     -- (Citus takes no volatile call in an UPDATE)
    UPDATE @extschema@.orders x SET updated_at = v_now WHERE x.order_id = p_order;
    PERFORM @extschema@.emit_event(p_order, 'line', p_line, 'line.backorder_allocated', NULL, NULL,
                                   NULL, jsonb_build_object('sku', p_sku, 'warehouse_id', p_warehouse,
                                                            'qty', v_take, 'still_backordered',
                                                            l.qty_backordered - v_take));
    IF @extschema@.status_class('order', o.status) = 'held'
       AND NOT EXISTS (SELECT 1 FROM @extschema@.order_lines x
                        WHERE x.order_id = p_order AND x.qty_backordered > 0) THEN
        FOR h IN SELECT * FROM @extschema@.order_holds x
                  WHERE x.order_id = p_order AND x.released_at IS NULL AND x.kind = 'stock' LOOP
            PERFORM @extschema@.close_hold(p_order, h.hold_id, h.kind, 'stock arrived');
        END LOOP;
        PERFORM @extschema@.after_hold_released(p_order, 'stock arrived');
    END IF;
    RETURN v_take;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.set_status(
    entity text, id bigint, to_status text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_saved text := current_setting('order_mgmt.reason', true);
    v_order bigint;
BEGIN
    IF entity IS NULL OR id IS NULL OR to_status IS NULL THEN
        RAISE EXCEPTION 'entity, id and to_status must not be null' USING ERRCODE = '22004';
    END IF;
    IF entity NOT IN ('order', 'shipment', 'return') THEN
        RAISE EXCEPTION 'unknown entity "%"', entity
            USING ERRCODE = '22023', DETAIL = 'entity must be order, shipment or return.';
    END IF;
    -- on Citus: the order of the row is armed (its stock and credit
    -- effects are applied at commit)
    IF @extschema@.citus_active() THEN
        IF entity = 'order' THEN
            SELECT x.order_id INTO v_order FROM @extschema@.orders x WHERE x.order_id = id;
        ELSIF entity = 'shipment' THEN
            SELECT x.order_id INTO v_order FROM @extschema@.shipments x WHERE x.shipment_id = id;
        ELSE
            SELECT x.order_id INTO v_order FROM @extschema@.returns x WHERE x.return_id = id;
        END IF;
        IF v_order IS NULL THEN
            RAISE EXCEPTION '% % does not exist', entity, id USING ERRCODE = 'OM004';
        END IF;
        PERFORM @extschema@.citus_arm(v_order);
    END IF;
    PERFORM @extschema@.set_reason(coalesce(reason, v_saved));
    CASE entity
    WHEN 'order' THEN
        UPDATE @extschema@.orders SET status = to_status WHERE order_id = id;
    WHEN 'shipment' THEN
        UPDATE @extschema@.shipments SET status = to_status WHERE shipment_id = id;
    ELSE
        UPDATE @extschema@.returns SET status = to_status WHERE return_id = id;
    END CASE;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% % does not exist', entity, id USING ERRCODE = 'OM004';
    END IF;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.late_promise_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e record;
BEGIN
    -- the estimate as values, not a FROM item: on Citus the UPDATE goes to
    -- the order's shard, and Citus cannot send it an anonymous record
    e := @extschema@.estimate_order_delivery(NEW.order_id);
    IF e.known THEN
        UPDATE @extschema@.orders o
           SET promised_ship_earliest = e.ship_earliest, promised_ship_latest = e.ship_latest,
               promised_delivery_earliest = e.delivery_earliest,
               promised_delivery_latest = e.delivery_latest
         WHERE o.order_id = NEW.order_id
           AND o.status = ANY (@extschema@.statuses_of_class('order', 'open'))
           AND o.promised_delivery_latest IS NULL;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE VIEW @extschema@.orders_at_risk AS
SELECT o.order_id, o.status, o.promised_delivery_latest,
       e.delivery_latest AS estimated_delivery_latest,
       e.delivery_latest - o.promised_delivery_latest AS days_late,
       CASE WHEN NOT e.known THEN 'unknown: ' || e.note
            ELSE 'late' END AS risk
  FROM @extschema@.orders o
 CROSS JOIN LATERAL @extschema@.estimate_order_window(ROW(o.*)::@extschema@.orders,
       ARRAY(SELECT ROW(l.*)::@extschema@.order_lines FROM @extschema@.order_lines l
              WHERE l.order_id = o.order_id ORDER BY l.line_no)) e
 WHERE @extschema@.status_class('order', o.status) IN ('pending', 'open', 'held')
   AND o.promised_delivery_latest IS NOT NULL
   AND (NOT e.known OR e.delivery_latest > o.promised_delivery_latest);

CREATE OR REPLACE FUNCTION @extschema@.move_shipment(p_order bigint, p_shipment bigint, p_status text,
                                          p_reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_saved text := current_setting('order_mgmt.reason', true);
BEGIN
    PERFORM @extschema@.set_reason(p_reason);
    UPDATE @extschema@.shipments x SET status = p_status
     WHERE x.order_id = p_order AND x.shipment_id = p_shipment;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.rollup_order(p_order bigint, p_reason text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET order_mgmt.automated = on
AS $$
DECLARE
    v_status  text;
    v_implied text := @extschema@.lines_status(p_order);
    v_edge    boolean;
    v_saved   text;
    v_now     timestamptz := clock_timestamp();     -- (Citus takes no volatile call in an UPDATE)
BEGIN
    SELECT x.status, t.to_status IS NOT NULL INTO v_status, v_edge
      FROM @extschema@.orders x
      LEFT JOIN @extschema@.transitions t
             ON t.entity = 'order' AND t.from_status = x.status AND t.to_status = v_implied
     WHERE x.order_id = p_order;
    IF v_implied IS NULL OR v_implied = v_status OR NOT v_edge THEN
        UPDATE @extschema@.orders x SET updated_at = v_now WHERE x.order_id = p_order;
        RETURN v_status;
    END IF;
    v_saved := current_setting('order_mgmt.reason', true);
    PERFORM @extschema@.set_reason(p_reason);
    UPDATE @extschema@.orders x SET status = v_implied, updated_at = v_now
     WHERE x.order_id = p_order;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
    RETURN v_implied;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.start_picking(shipment_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sh    @extschema@.shipments := @extschema@.begin_step(start_picking.shipment_id, 'picking', 'picked');
    v_qty bigint;
BEGIN
    -- (read first: on Citus a statement that reads a shard and calls a
    -- function runs on the worker, where the function may not query)
    SELECT sum(l.qty) INTO v_qty FROM @extschema@.shipment_lines l
     WHERE l.order_id = sh.order_id AND l.shipment_id = sh.shipment_id;
    PERFORM @extschema@.move_shipment(sh.order_id, sh.shipment_id, 'picking',
        @extschema@.step_reason(format('%s unit(s) to pick in %s', v_qty, sh.warehouse_id)));
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.pack_shipment(shipment_id bigint, weight_g int, length_mm int,
                                          width_mm int, height_mm int, package_count int DEFAULT 1)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sh      @extschema@.shipments;
    v_saved text := current_setting('order_mgmt.reason', true);
BEGIN
    IF weight_g IS NULL OR length_mm IS NULL OR width_mm IS NULL OR height_mm IS NULL
       OR package_count IS NULL THEN
        RAISE EXCEPTION 'weight_g, length_mm, width_mm, height_mm and package_count must not be null'
            USING ERRCODE = '22004';
    END IF;
    IF weight_g <= 0 OR length_mm <= 0 OR width_mm <= 0 OR height_mm <= 0 OR package_count <= 0 THEN
        RAISE EXCEPTION 'weight, dimensions and package count must be positive'
            USING ERRCODE = '22023',
                  DETAIL = format('Got weight_g %s, length_mm %s, width_mm %s, height_mm %s, package_count %s.',
                                  weight_g, length_mm, width_mm, height_mm, package_count);
    END IF;
    sh := @extschema@.begin_step(pack_shipment.shipment_id, 'packed', 'packed');
    PERFORM @extschema@.set_reason(@extschema@.step_reason(
        format('%s package(s), %s g, %sx%sx%s mm', package_count, weight_g, length_mm, width_mm,
               height_mm)));
    UPDATE @extschema@.shipments x
       SET status = 'packed', weight_g = pack_shipment.weight_g, length_mm = pack_shipment.length_mm,
           width_mm = pack_shipment.width_mm, height_mm = pack_shipment.height_mm,
           package_count = pack_shipment.package_count
     WHERE x.order_id = sh.order_id AND x.shipment_id = sh.shipment_id;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.label_shipment(shipment_id bigint, carrier text, service_id text,
                                           tracking_number text, label_ref text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sh      @extschema@.shipments;
    s       @extschema@.services;
    v_other bigint;
    v_saved text := current_setting('order_mgmt.reason', true);
BEGIN
    IF carrier IS NULL OR service_id IS NULL OR tracking_number IS NULL THEN
        RAISE EXCEPTION 'carrier, service_id and tracking_number must not be null'
            USING ERRCODE = '22004';
    END IF;
    IF btrim(carrier) = '' OR length(carrier) > 64 OR btrim(tracking_number) = ''
       OR length(tracking_number) > 100 OR length(label_ref) > 2000 THEN
        RAISE EXCEPTION 'invalid carrier, tracking number or label reference'
            USING ERRCODE = '22023',
                  DETAIL = 'carrier has 1 to 64 characters, tracking_number 1 to 100, label_ref at most 2000.';
    END IF;
    SELECT * INTO s FROM @extschema@.services x WHERE x.service_id = label_shipment.service_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'service "%" does not exist', service_id
            USING ERRCODE = 'OM004', HINT = 'order_mgmt.choose_service proposes one.';
    END IF;
    IF s.carrier <> carrier OR NOT s.active THEN
        RAISE EXCEPTION 'service "%" cannot be used by carrier "%"', service_id, carrier
            USING ERRCODE = '22023',
                  DETAIL = format('Service %s is run by %s and is %s.', s.service_id, s.carrier,
                                  CASE WHEN s.active THEN 'active' ELSE 'not active' END);
    END IF;
    sh := @extschema@.begin_step(label_shipment.shipment_id, 'labelled', 'labelled');
    -- on Citus the number's claim decides (shipments is distributed by order)
    IF @extschema@.citus_active() THEN
        v_other := nullif((@extschema@.claim_key('tracking_number', tracking_number, sh.order_id,
                                                 sh.shipment_id, NULL)).entity_id, sh.shipment_id);
    ELSE
        SELECT x.shipment_id INTO v_other FROM @extschema@.shipments x
         WHERE x.tracking_number = label_shipment.tracking_number;
    END IF;
    IF v_other IS NOT NULL THEN
        RAISE EXCEPTION 'tracking number "%" is already used by shipment %', tracking_number, v_other
            USING ERRCODE = 'OM005', HINT = 'Each shipment needs its own tracking number.';
    END IF;
    PERFORM @extschema@.set_reason(@extschema@.step_reason(
        format('%s %s %s', carrier, service_id, tracking_number)));
    UPDATE @extschema@.shipments x
       SET status = 'labelled', carrier = label_shipment.carrier,
           service_id = label_shipment.service_id,
           tracking_number = label_shipment.tracking_number, label_ref = label_shipment.label_ref
     WHERE x.order_id = sh.order_id AND x.shipment_id = sh.shipment_id;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.record_tracking_event(
    tracking_number text, carrier_event_id text, code text, occurred_at timestamptz,
    location text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET order_mgmt.automated = on
AS $$
DECLARE
    v_order  bigint;
    sh       @extschema@.shipments;
    c        @extschema@.tracking_events;
    e        @extschema@.tracking_events;
    v_path   text[];
    v_step   text;
    v_final  boolean;
    v_window record;
    v_saved  text := current_setting('order_mgmt.reason', true);
    v_reason text;
    v_id     bigint;
    k        @extschema@.business_keys;
BEGIN
    IF tracking_number IS NULL OR carrier_event_id IS NULL OR code IS NULL
       OR occurred_at IS NULL THEN
        RAISE EXCEPTION 'tracking_number, carrier_event_id, code and occurred_at must not be null'
            USING ERRCODE = '22004';
    END IF;
    IF btrim(carrier_event_id) = '' OR length(carrier_event_id) > 200
       OR length(location) > 200 THEN
        RAISE EXCEPTION 'invalid carrier_event_id or location'
            USING ERRCODE = '22023',
                  DETAIL = 'carrier_event_id has 1 to 200 characters, location at most 200.';
    END IF;
    IF NOT isfinite(occurred_at) THEN
        RAISE EXCEPTION 'occurred_at must be a finite time' USING ERRCODE = '22008';
    END IF;
    IF NOT @extschema@.is_checkpoint_code(code) THEN
        RAISE EXCEPTION 'unknown checkpoint code "%"', code
            USING ERRCODE = 'OM031',
                  DETAIL = 'Codes are in_transit, out_for_delivery, delayed, failed_attempt, delivered, returned_to_sender and lost.';
    END IF;
    IF @extschema@.citus_active() THEN
        SELECT b.order_id INTO v_order FROM @extschema@.business_keys b
         WHERE b.key = record_tracking_event.tracking_number AND b.kind = 'tracking_number';
    ELSE
        SELECT x.order_id INTO v_order FROM @extschema@.shipments x
         WHERE x.tracking_number = record_tracking_event.tracking_number;
    END IF;
    IF v_order IS NULL THEN
        RAISE EXCEPTION 'no shipment has tracking number "%"', tracking_number
            USING ERRCODE = 'OM004', HINT = 'label_shipment records the tracking number.';
    END IF;
    PERFORM @extschema@.lock_order(v_order);
    SELECT * INTO sh FROM @extschema@.shipments x
     WHERE x.order_id = v_order AND x.tracking_number = record_tracking_event.tracking_number;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no shipment has tracking number "%"', tracking_number
            USING ERRCODE = 'OM004';
    END IF;
    IF @extschema@.status_class('shipment', sh.status) IN ('preparing', 'cancelled') THEN
        RAISE EXCEPTION 'shipment % has not been dispatched', sh.shipment_id
            USING ERRCODE = 'OM010',
                  DETAIL = format('Shipment %s (tracking number %s) is %s.', sh.shipment_id,
                                  tracking_number, sh.status),
                  HINT = 'Checkpoints follow order_mgmt.dispatch_shipment.';
    END IF;

    -- once per carrier_event_id: a concurrent twin waits for the first here
    -- (on Citus at the id's claim, on a single node at its UNIQUE)
    v_id := nextval('@extschema@.tracking_events_tracking_event_id_seq');
    IF @extschema@.citus_active() THEN
        k := @extschema@.claim_key('carrier_event_id', carrier_event_id, sh.order_id, v_id, NULL);
    END IF;
    IF k.key IS NULL OR k.entity_id = v_id THEN
        INSERT INTO @extschema@.tracking_events AS t
            (order_id, tracking_event_id, shipment_id, carrier_event_id, code, occurred_at,
             location, actor)
        VALUES (sh.order_id, v_id, sh.shipment_id, record_tracking_event.carrier_event_id,
                record_tracking_event.code, record_tracking_event.occurred_at,
                record_tracking_event.location, @extschema@.current_actor())
        ON CONFLICT DO NOTHING
        RETURNING * INTO c;
    END IF;
    IF c.tracking_event_id IS NULL THEN
        IF k.key IS NOT NULL THEN
            SELECT * INTO c FROM @extschema@.tracking_events t
             WHERE t.order_id = k.order_id AND t.tracking_event_id = k.entity_id;
        ELSE
            SELECT * INTO c FROM @extschema@.tracking_events t
             WHERE t.carrier_event_id = record_tracking_event.carrier_event_id;
        END IF;
        IF c.order_id = sh.order_id AND c.shipment_id = sh.shipment_id
           AND c.code = record_tracking_event.code
           AND c.occurred_at = record_tracking_event.occurred_at
           AND c.location IS NOT DISTINCT FROM record_tracking_event.location THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION 'carrier_event_id "%" is already used with other content', carrier_event_id
            USING ERRCODE = 'OM005',
                  DETAIL = format('Stored: shipment %s, %s at %s, location %s.', c.shipment_id,
                                  c.code, c.occurred_at, coalesce(c.location, 'none'));
    END IF;

    SELECT * INTO e FROM @extschema@.tracking_events t
     WHERE t.order_id = sh.order_id AND t.tracking_event_id = sh.last_checkpoint_id;
    IF @extschema@.checkpoint_supersedes(c, e) THEN
        v_path := @extschema@.shipment_path(sh.status, code);
    END IF;
    v_reason := @extschema@.step_reason(format('carrier checkpoint %s at %s%s', code, occurred_at,
                                               coalesce(' (' || location || ')', '')));
    PERFORM @extschema@.emit_event(sh.order_id, 'shipment', sh.shipment_id, 'shipment.checkpoint',
        NULL, NULL, v_reason,
        jsonb_build_object('tracking_event_id', c.tracking_event_id,
                           'carrier_event_id', carrier_event_id, 'code', code,
                           'occurred_at', occurred_at, 'location', location,
                           'applied', v_path IS NOT NULL));

    IF v_path IS NOT NULL THEN
        -- the steps on the way (inferred), then the checkpoint's own status
        -- with the checkpoint and, for a delivery, the carrier's time
        v_final := @extschema@.status_class('shipment', code) = 'delivered';
        FOREACH v_step IN ARRAY v_path[1:cardinality(v_path) - 1] LOOP
            PERFORM @extschema@.move_shipment(sh.order_id, sh.shipment_id, v_step,
                format('inferred from carrier checkpoint %s (%s)', carrier_event_id, code));
        END LOOP;
        PERFORM @extschema@.set_reason(v_reason);
        UPDATE @extschema@.shipments x
           SET status = code, last_checkpoint_id = c.tracking_event_id,
               delivered_at = CASE WHEN v_final THEN record_tracking_event.occurred_at
                                   ELSE x.delivered_at END
         WHERE x.order_id = sh.order_id AND x.shipment_id = sh.shipment_id;
        PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
    END IF;

    -- a delay or failed attempt restarts the window, from the latest of them
    IF code IN ('delayed', 'failed_attempt') AND sh.service_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.tracking_events t
                        WHERE t.order_id = sh.order_id AND t.shipment_id = sh.shipment_id
                          AND t.code IN ('delayed', 'failed_attempt')
                          AND (t.occurred_at > c.occurred_at
                               OR (t.occurred_at = c.occurred_at
                                   AND t.carrier_event_id COLLATE "C" > c.carrier_event_id COLLATE "C"))) THEN
        SELECT w.* INTO v_window
          FROM @extschema@.orders o,
               @extschema@.estimate_transit(sh.warehouse_id, sh.service_id, o.ship_to_country,
                                            o.ship_to_postal, c.occurred_at) w
         WHERE o.order_id = sh.order_id;
        IF v_window.known THEN
            UPDATE @extschema@.shipments x
               SET estimated_delivery_earliest = v_window.delivery_earliest,
                   estimated_delivery_latest = v_window.delivery_latest
             WHERE x.order_id = sh.order_id AND x.shipment_id = sh.shipment_id;
        END IF;
    END IF;
    RETURN true;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.return_deadline(p_order bigint)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (SELECT max(x.delivered_at) FROM @extschema@.shipments x
             WHERE x.order_id = p_order
               AND @extschema@.status_class('shipment', x.status) = 'delivered')
           + @extschema@.return_window();
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.has_open_return(p_order bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM @extschema@.returns r
                    WHERE r.order_id = p_order
                      AND @extschema@.status_class('return', r.status) = 'open');
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.return_status_of(p_order bigint)
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_returned bigint;
    v_delivered bigint;
BEGIN
    SELECT coalesce(sum(x.qty_returned), 0), coalesce(sum(x.qty_delivered), 0)
      INTO v_returned, v_delivered
      FROM @extschema@.order_lines x WHERE x.order_id = p_order;
    RETURN CASE WHEN v_returned > 0 AND v_returned >= v_delivered THEN 'returned'
                WHEN v_returned > 0 THEN 'partially_returned'
                WHEN @extschema@.has_open_return(p_order) THEN 'requested'
                ELSE 'none' END;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.refresh_return_status(p_order bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_status text := @extschema@.return_status_of(p_order);
BEGIN
    UPDATE @extschema@.orders o SET return_status = 'none'
     WHERE o.order_id = p_order AND o.return_status <> v_status;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.returnable_units(p_order bigint)
RETURNS TABLE (line_no int, returnable int)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY
    SELECT l.line_no, l.qty_delivered - l.qty_returned
           - coalesce((SELECT sum(rl.qty) FROM @extschema@.return_lines rl
                         JOIN @extschema@.returns r USING (order_id, return_id)
                        WHERE rl.order_id = l.order_id AND rl.line_no = l.line_no
                          AND r.inspected_at IS NULL
                          AND @extschema@.status_class('return', r.status) = 'open'), 0)::int
      FROM @extschema@.order_lines l WHERE l.order_id = p_order;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.accepted_units(p_order bigint, p_return bigint)
RETURNS TABLE (line_no int, sku text, qty int, unit_price numeric)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY
    SELECT l.line_no, l.sku, sum(i.qty)::int, l.unit_price
      FROM @extschema@.return_inspections i
      JOIN @extschema@.order_lines l USING (order_id, line_no)
     WHERE i.order_id = p_order AND i.return_id = p_return AND i.condition <> 'missing'
     GROUP BY l.line_no, l.sku, l.unit_price
     ORDER BY l.line_no;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.move_return(r @extschema@.returns, p_status text, p_reason text,
                                        p_stamp text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_saved text := current_setting('order_mgmt.reason', true);
    v_now   timestamptz := now();       -- (Citus: no function call in a CASE of an UPDATE)
BEGIN
    PERFORM @extschema@.set_reason(p_reason);
    UPDATE @extschema@.returns x
       SET status = p_status,
           received_at = CASE WHEN p_stamp = 'received_at' THEN v_now ELSE x.received_at END,
           inspected_at = CASE WHEN p_stamp = 'inspected_at' THEN v_now ELSE x.inspected_at END,
           resolved_at = CASE WHEN p_stamp = 'resolved_at' THEN v_now ELSE x.resolved_at END
     WHERE x.order_id = r.order_id AND x.return_id = r.return_id;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.receive_return(return_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r     @extschema@.returns := @extschema@.lock_return(receive_return.return_id);
    v_qty bigint;
BEGIN
    PERFORM @extschema@.require_return_status(r, 'approved', 'received');
    UPDATE @extschema@.return_lines x SET qty_received = x.qty
     WHERE x.order_id = r.order_id AND x.return_id = r.return_id;
    -- (read first: on Citus a statement that reads a shard and calls a
    -- function runs on the worker, where the function may not query)
    SELECT sum(x.qty) INTO v_qty FROM @extschema@.return_lines x
     WHERE x.order_id = r.order_id AND x.return_id = r.return_id;
    PERFORM @extschema@.move_return(r, 'received',
        @extschema@.step_reason(format('%s unit(s) received', v_qty)), 'received_at');
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.refund_return(return_id bigint, amount numeric DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r        @extschema@.returns := @extschema@.lock_return(refund_return.return_id);
    v_amount numeric := refund_return.amount;
    v_id     bigint;
BEGIN
    IF r.resolved_at IS NOT NULL AND r.resolution = 'refund' THEN
        RETURN (SELECT max(p.payment_id) FROM @extschema@.payments p    -- a repeated call
                 WHERE p.order_id = r.order_id AND p.return_id = r.return_id AND p.kind = 'refund');
    END IF;
    PERFORM @extschema@.require_return_status(r, 'inspected', 'refunded');
    IF v_amount IS NULL THEN
        -- the accepted units, less what refund_payment already refunded for
        -- this return (two statements: on Citus a statement that reads a
        -- shard runs on the worker, where accepted_units may not query)
        v_amount := (SELECT coalesce(sum(a.qty * a.unit_price), 0)
                       FROM @extschema@.accepted_units(r.order_id, r.return_id) a);
        v_amount := v_amount - (SELECT coalesce(sum(p.amount), 0) FROM @extschema@.payments p
                                 WHERE p.order_id = r.order_id AND p.return_id = r.return_id
                                   AND p.kind = 'refund');
        IF v_amount <= 0 THEN
            RAISE EXCEPTION 'return % has nothing to refund', r.return_id USING ERRCODE = 'OM010',
                  DETAIL = 'No unit was accepted, the accepted units have no price, or they were refunded already.',
                  HINT = 'Pass an amount to refund something else.';
        END IF;
    END IF;
    v_id := @extschema@.record_payment(r.order_id, 'refund', v_amount,
                                       'order_mgmt:return:' || r.return_id, r.return_id);
    UPDATE @extschema@.returns x SET resolution = 'refund'
     WHERE x.order_id = r.order_id AND x.return_id = r.return_id;
    PERFORM @extschema@.move_return(r, 'completed',
        @extschema@.step_reason(format('refunded %s', v_amount)), 'resolved_at');
    RETURN v_id;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.complete_due_orders(as_of timestamptz DEFAULT now())
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET order_mgmt.automated = on
AS $$
DECLARE
    v_id    bigint;
    o       @extschema@.orders;
    v_count int := 0;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be finite' USING ERRCODE = '22008';
    END IF;
    FOR v_id IN SELECT x.order_id FROM @extschema@.orders x
                 WHERE @extschema@.status_class('order', x.status) = 'delivered'
                 ORDER BY x.order_id LOOP
        SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = v_id FOR UPDATE SKIP LOCKED;
        PERFORM @extschema@.citus_arm(o.order_id);  -- nothing on a single node
        CONTINUE WHEN o.order_id IS NULL
                   OR @extschema@.status_class('order', o.status) IS DISTINCT FROM 'delivered'
                   OR @extschema@.return_deadline(o.order_id) >= as_of
                   OR @extschema@.has_open_return(o.order_id);
        PERFORM @extschema@.complete_locked(o, format('return window ended %s',
                                                      @extschema@.return_deadline(o.order_id)));
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.register_consumer(consumer text, from_now boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := @extschema@.consumer_name(consumer);
    v_tx   xid8;
    v_seq  bigint;
BEGIN
    IF from_now IS NULL THEN
        RAISE EXCEPTION 'from_now must not be null' USING ERRCODE = '22004';
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.consumers c WHERE c.consumer = v_name) THEN
        RETURN false;
    END IF;
    -- Waits for a running purge_events, and keeps the next one from deleting
    -- events this consumer has not seen until we commit (see stream.c).
    LOCK TABLE @extschema@.consumers IN SHARE UPDATE EXCLUSIVE MODE;
    IF @extschema@.citus_active() THEN
        RETURN @extschema@.citus_register_consumer(v_name, from_now);   -- a cursor per node group
    END IF;
    IF from_now THEN
        SELECT e.tx, e.seq INTO v_tx, v_seq FROM @extschema@.events e
         WHERE e.tx < @extschema@.delivery_horizon()
         ORDER BY e.tx DESC, e.seq DESC LIMIT 1;
    END IF;
    INSERT INTO @extschema@.consumers (consumer, acked_tx, acked_seq)
    VALUES (v_name, coalesce(v_tx, '0'), coalesce(v_seq, 0))
    ON CONFLICT ON CONSTRAINT consumers_pkey DO NOTHING;
    RETURN FOUND;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.fetch_events(consumer text, max_rows int DEFAULT 100)
RETURNS SETOF @extschema@.events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name    text := @extschema@.consumer_name(consumer);
    v_tx      xid8;
    v_seq     bigint;
    v_horizon xid8;
BEGIN
    IF max_rows IS NULL THEN
        RAISE EXCEPTION 'max_rows must not be null' USING ERRCODE = '22004';
    END IF;
    IF max_rows < 1 OR max_rows > 10000 THEN
        RAISE EXCEPTION 'max_rows must be between 1 and 10000'
            USING ERRCODE = '22023', DETAIL = format('Got %s.', max_rows);
    END IF;
    PERFORM @extschema@.register_consumer(v_name);
    SELECT c.acked_tx, c.acked_seq INTO v_tx, v_seq
      FROM @extschema@.consumers c WHERE c.consumer = v_name;
    IF NOT FOUND THEN           -- dropped by a concurrent drop_consumer
        RAISE EXCEPTION 'unknown consumer "%"', v_name USING ERRCODE = 'OM004';
    END IF;
    IF @extschema@.citus_active() THEN
        PERFORM @extschema@.citus_require_read_committed();
        RETURN QUERY SELECT * FROM @extschema@.citus_fetch_events(v_name, max_rows);
        RETURN;
    END IF;
    -- Taken before the query's own snapshot: every transaction below it had
    -- ended then, so its events are visible to the query.
    v_horizon := @extschema@.delivery_horizon();
    RETURN QUERY
        SELECT e.* FROM @extschema@.events e
         WHERE (e.tx, e.seq) > (v_tx, v_seq) AND e.tx < v_horizon
         ORDER BY e.tx, e.seq
         LIMIT max_rows;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.ack_events(consumer text, tx xid8, seq bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := @extschema@.consumer_name(consumer);
    v_tx   xid8;
    v_seq  bigint;
BEGIN
    IF ack_events.tx IS NULL OR ack_events.seq IS NULL THEN
        RAISE EXCEPTION 'tx and seq must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT c.acked_tx, c.acked_seq INTO v_tx, v_seq
      FROM @extschema@.consumers c WHERE c.consumer = v_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown consumer "%"', v_name
            USING ERRCODE = 'OM004', HINT = 'A consumer is registered by its first fetch_events.';
    END IF;
    IF @extschema@.citus_active() THEN
        PERFORM @extschema@.citus_require_read_committed();
        RETURN @extschema@.citus_ack_events(v_name, ack_events.tx, ack_events.seq);
    END IF;
    IF (ack_events.tx, ack_events.seq) <= (v_tx, v_seq) THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.events e
                    WHERE e.tx = ack_events.tx AND e.seq = ack_events.seq) THEN
        RAISE EXCEPTION 'cannot acknowledge (%, %) for consumer "%"', ack_events.tx, ack_events.seq, v_name
            USING ERRCODE = 'OM040', DETAIL = 'There is no event at this position.',
                  HINT = 'Acknowledge the (tx, seq) of the last event fetch_events returned.';
    END IF;
    IF ack_events.tx >= @extschema@.delivery_horizon() THEN
        RAISE EXCEPTION 'cannot acknowledge (%, %) for consumer "%"', ack_events.tx, ack_events.seq, v_name
            USING ERRCODE = 'OM040',
                  DETAIL = 'fetch_events has not handed out this event yet: an older transaction is still running.',
                  HINT = 'Acknowledge the (tx, seq) of the last event fetch_events returned.';
    END IF;
    UPDATE @extschema@.consumers c
       SET acked_tx = ack_events.tx, acked_seq = ack_events.seq, acked_at = pg_catalog.now()
     WHERE c.consumer = v_name AND (c.acked_tx, c.acked_seq) < (ack_events.tx, ack_events.seq);
    RETURN FOUND;
END;
$$;

CREATE FUNCTION @extschema@.consumer_backlog(consumer text,
                                             OUT events_behind bigint,
                                             OUT oldest_unacked_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g int;
    c record;
    v_n bigint;
    v_at timestamptz;
BEGIN
    IF NOT @extschema@.citus_active() THEN
        SELECT pg_catalog.count(*), pg_catalog.min(e.occurred_at) INTO events_behind, oldest_unacked_at
          FROM @extschema@.consumers k, @extschema@.events e
         WHERE k.consumer = consumer_backlog.consumer AND (e.tx, e.seq) > (k.acked_tx, k.acked_seq);
        RETURN;
    END IF;
    events_behind := 0;
    FOR g IN SELECT n.groupid FROM pg_catalog.pg_dist_node n WHERE n.noderole = 'primary'
              UNION SELECT x.node_group FROM @extschema@.consumer_cursors x ORDER BY 1 LOOP
        c := @extschema@.citus_cursor(consumer_backlog.consumer, g);
        SELECT pg_catalog.count(*), pg_catalog.min(e.occurred_at) INTO v_n, v_at
          FROM @extschema@.events e
         WHERE e.seq > (g::bigint << 48) AND e.seq <= ((g + 1)::bigint << 48)
           AND (e.tx, e.seq) > (c.acked_tx, c.acked_seq);
        events_behind := events_behind + v_n;
        oldest_unacked_at := least(oldest_unacked_at, v_at);
    END LOOP;
END;
$$;

CREATE OR REPLACE VIEW @extschema@.consumer_lag AS
SELECT c.consumer, c.acked_tx, c.acked_seq, c.acked_at, l.events_behind, l.oldest_unacked_at,
       pg_catalog.clock_timestamp() - l.oldest_unacked_at AS oldest_unacked_age
  FROM @extschema@.consumers c
 CROSS JOIN LATERAL @extschema@.consumer_backlog(c.consumer) l;


------------------------------------------------------------------------
-- pg_dump support and privileges
------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('@extschema@.business_keys', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.consumer_cursors', '');

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON PROCEDURE @extschema@.distribute() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.status_class(text, text), @extschema@.current_actor()
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.consumer_backlog(text)
    TO order_mgmt_reader, order_mgmt_operator;
GRANT SELECT ON @extschema@.business_keys, @extschema@.order_effects, @extschema@.effects_armed,
    @extschema@.consumer_cursors TO order_mgmt_operator;
