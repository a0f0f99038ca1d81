-- Citus (0.9.0): order_mgmt distributed by order_id on a coordinator and
-- workers (README "Scaling out"; src/citus.c says what runs where).  On a
-- single node nothing of this runs: citus_active() is false, the tables
-- stay empty and every caller takes its single-node path.  distribute()
-- is the only code that calls Citus, from PL/pgSQL, so this script installs
-- without Citus.

------------------------------------------------------------------------
-- C entry points (src/citus.c)
------------------------------------------------------------------------
-- Has distribute() distributed this database?
CREATE FUNCTION @extschema@.citus_active() RETURNS boolean
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'citus_active';

-- Distributed, and this node is a worker?
CREATE FUNCTION @extschema@.on_citus_worker() RETURNS boolean
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'on_citus_worker';

-- order_mgmt.reason for the rest of the transaction; on Citus sent to the
-- workers with actor, automated and db_role.  Called before every
-- statement of the API that moves a status.
CREATE FUNCTION @extschema@.set_reason(reason text) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'set_reason';

-- Called by lock_order for every order the API locks: nothing on a single
-- node; on Citus the order's stock and credit effects are applied before
-- the transaction commits (and a worker is refused: OM060).
CREATE FUNCTION @extschema@.citus_arm(order_id bigint) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'citus_arm';

------------------------------------------------------------------------
-- Globally unique business keys on Citus (the table is in tables.sql)
------------------------------------------------------------------------
/*
 * (Citus) Claim a business key for an order's entity; returns the claim
 * that holds: this one, or the one committed before it (a concurrent twin
 * waits for the first here and then sees it).  The caller decides whether
 * the earlier claim is a repeat (the same content) or a conflict (OM005).
 */
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

------------------------------------------------------------------------
-- Stock and credit effects of triggers on the workers (src/citus.c).
-- Rows live only inside the transaction that writes them: the coordinator
-- applies (deletes) them before it commits; one still there when a worker
-- commits is refused (OM060).
------------------------------------------------------------------------
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

CREATE FUNCTION @extschema@.order_effects_check() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'order_effects_check';

CREATE CONSTRAINT TRIGGER order_mgmt_effects_applied
    AFTER INSERT ON @extschema@.order_effects DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION @extschema@.order_effects_check();

-- (coordinator) The orders whose effects this transaction applies before
-- it commits.  Rows live only inside a transaction: unlogged.
CREATE UNLOGGED TABLE @extschema@.effects_armed (
    order_id bigint PRIMARY KEY
);

/*
 * (coordinator) Apply, then delete, the effects of p_orders: credit
 * exposure (credit_add) and stock movements (stock_move; these never lower
 * availability), then let waiting demand take the stock they freed, as the
 * triggers that recorded them do on a single node.
 */
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

/*
 * (coordinator) Apply the effects of every armed order.  p_final (at
 * commit): the orders are disarmed, and the orders that applying them arms
 * in turn (waiting demand served) are applied too.  Otherwise (before a
 * credit decision) they stay armed for the commit.  Returns how many.
 */
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

-- Deferred: the first armed order's trigger applies them all (the others
-- find their row gone).
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

-- at commit (first arm of the transaction, and again after a drain)
CREATE CONSTRAINT TRIGGER order_mgmt_apply_effects
    AFTER INSERT ON @extschema@.effects_armed DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION @extschema@.effects_armed_trigger();

------------------------------------------------------------------------
-- The event stream on Citus.  Every node group has its own transaction
-- ids and its own range of events_seq_seq (distribute(): group g writes
-- seq g * 2^48 + 1 .. (g + 1) * 2^48, and events_stamp sets tx and seq on
-- the storing node), so (seq - 1) >> 48 is the group that wrote an event.
-- A consumer's cursor is one (tx, seq) per group: within a group the
-- single-node rule holds (events of transactions below that group's
-- snapshot xmin, in (tx, seq) order).  fetch_events hands out the events
-- of one group per call, the group whose next event is the oldest.
------------------------------------------------------------------------
CREATE FUNCTION @extschema@.events_stamp() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'events_stamp';

CREATE TABLE @extschema@.consumer_cursors (
    consumer   text NOT NULL REFERENCES @extschema@.consumers ON DELETE CASCADE,
    node_group int NOT NULL CHECK (node_group >= 0),
    acked_tx   xid8 NOT NULL DEFAULT '0',
    acked_seq  bigint NOT NULL DEFAULT 0,
    acked_at   timestamptz,
    PRIMARY KEY (consumer, node_group)
);

-- The node group whose sequence range holds seq.
CREATE FUNCTION @extschema@.seq_group(seq bigint)
RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ((seq - 1) >> 48)::int
$$;

/*
 * (Citus) Each node group's delivery horizon: the xmin of a snapshot taken
 * there now, before the caller reads.  Every transaction of the group below
 * it has ended (a prepared two-phase transaction holds it back), so its
 * events are visible to a later read wherever their shard is.  A group
 * whose node does not answer has no horizon: its events wait.
 */
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

/*
 * (Citus) fetch_events and ack_events read each node group's horizon on
 * connections of their own, then the events in this transaction: only a
 * READ COMMITTED statement is sure to see what committed below the
 * horizons (a REPEATABLE READ snapshot on a worker may be older).
 */
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

-- (Citus) The cursor of a consumer in one node group ((0, 0) before its
-- first acknowledgement there).
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

-- (Citus) register_consumer's work: cursors for every node group, before
-- the oldest retained event or (from_now) after the last deliverable one.
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

/*
 * (Citus) fetch_events' work: the next max_rows events of one node group
 * after the consumer's cursor there, in (tx, seq) order, below the
 * group's horizon; the group whose next event is the oldest goes first.
 * Acknowledging the last of them (ack_events) moves that group's cursor.
 */
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

-- (Citus) ack_events' work, for the node group of seq.
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

-- (Citus, the relay) Does any node group have events after the consumer's
-- cursor there, deliverable or still held back?
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

/*
 * (Citus) purge_events' work (src/stream.c): the slowest cursor of each
 * node group over every consumer (a consumer with no cursor in a group
 * holds back all of it), then purge_shard on every placement of events.
 * Registrations wait (SHARE UPDATE EXCLUSIVE on consumers, as on a single
 * node) until this transaction ends.
 */
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

-- (Citus) purge_events on one placement of events (src/stream.c).
CREATE FUNCTION @extschema@.purge_shard(shard regclass, cutoff timestamptz, any_position boolean,
                                        groups int[], txs xid8[], seqs bigint[])
RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'purge_shard';

------------------------------------------------------------------------
-- distribute()
------------------------------------------------------------------------
/*
 * CALL order_mgmt.distribute(): on the coordinator of a Citus cluster,
 * after CREATE EXTENSION citus, the workers (citus_add_node), the
 * coordinator in the metadata (citus_set_coordinator_host) and CREATE
 * EXTENSION order_mgmt.  Master data becomes reference tables, orders and
 * every order-scoped table are distributed by order_id co-located with
 * orders, business_keys by its key; stock, credit accounts and the
 * consumers stay on the coordinator.  Idempotent: call it again after
 * adding a node (sequence ranges, reference tables).  55000 without Citus.
 */
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

-- (distribute) Is this table of the schema a Citus table already?
CREATE FUNCTION @extschema@.citus_table(p_table text)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
                    WHERE d.logicalrelid = format('@extschema@.%I', p_table)::regclass);
END;
$$;

/*
 * (distribute) Give every node group g the range g * 2^48 + 1 ..
 * (g + 1) * 2^48 of every sequence of the schema, on every node: rows
 * written on two nodes (an event, a hold a trigger opens) never share an
 * id, and (seq - 1) >> 48 is the group that wrote an event.  A sequence
 * already in its range keeps its value.
 */
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
