-- The event stream (issue 12): durable consumers with a cursor on (tx, seq),
-- retention, lag.  NOTIFY itself is in C (events.c, relay.c).
--
-- Order and completeness: events are handed out in (tx, seq) order, and
-- only events of transactions below the delivery horizon (the snapshot's
-- xmin), which have all ended.  A transaction that is still running has an
-- xid at or above the horizon, so an event it commits later sorts after
-- every position a consumer can have acknowledged: it is never skipped,
-- however late it commits, even when its seq is lower than seqs already
-- handed out.

-- Validates a consumer name (the one home of the rule) and returns it.
CREATE FUNCTION @extschema@.consumer_name(consumer text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF consumer IS NULL THEN
        RAISE EXCEPTION 'consumer must not be null' USING ERRCODE = '22004';
    END IF;
    IF consumer = '' OR length(consumer) >= 64 THEN
        RAISE EXCEPTION 'invalid consumer name "%"', left(consumer, 100)
            USING ERRCODE = '22023', DETAIL = 'A consumer name is 1 to 63 characters long.';
    END IF;
    RETURN consumer;
END;
$$;

-- One row per consumer: the (tx, seq) of the last event it acknowledged;
-- (0, 0) before its first acknowledgement.  Every row counts for
-- purge_events (drop_consumer removes one).  The relay worker is the
-- consumer 'order_mgmt.relay'.
CREATE TABLE @extschema@.consumers (
    consumer      text PRIMARY KEY CHECK (@extschema@.consumer_name(consumer) IS NOT NULL),
    acked_tx      xid8 NOT NULL DEFAULT '0',
    acked_seq     bigint NOT NULL DEFAULT 0,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    acked_at      timestamptz
);

-- Events of transactions below this xid have all ended (committed and
-- visible, or rolled back).  This transaction's own xid bounds it too: its
-- own events are not committed yet.
CREATE FUNCTION @extschema@.delivery_horizon()
RETURNS xid8
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT least(pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()),
                 pg_catalog.pg_current_xact_id_if_assigned())
$$;

-- Registers a consumer; true when it is new.  It starts before the oldest
-- retained event, or (from_now) after the last event deliverable now.
CREATE FUNCTION @extschema@.register_consumer(consumer text, from_now boolean DEFAULT false)
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

-- The next max_rows events after the consumer's cursor, oldest first
-- (tx, seq); an unknown consumer is registered.  Fetching does not move the
-- cursor: ack_events does.
CREATE FUNCTION @extschema@.fetch_events(consumer text, max_rows int DEFAULT 100)
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

-- Moves the consumer's cursor to (tx, seq), an event fetch_events can hand
-- out; true when it moved.  A position at or behind the cursor changes
-- nothing (a repeated or late acknowledgement is harmless).
CREATE FUNCTION @extschema@.ack_events(consumer text, tx xid8, seq bigint)
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

-- Removes a consumer: purge_events no longer waits for it.
CREATE FUNCTION @extschema@.drop_consumer(consumer text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := @extschema@.consumer_name(consumer);
BEGIN
    DELETE FROM @extschema@.consumers c WHERE c.consumer = v_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown consumer "%"', v_name USING ERRCODE = 'OM004';
    END IF;
END;
$$;

-- Deletes the events older than now() - older_than that every consumer has
-- acknowledged; returns the count.  The only DELETE the append-only trigger
-- lets through (stream.c).
CREATE FUNCTION @extschema@.purge_events(older_than interval)
RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'purge_events';

/*
 * The events after a consumer's cursor (including committed events still
 * held back by an older running transaction) and when the oldest of them
 * occurred; on Citus summed over the cursors of every node group.  Counts
 * and times only (consumer_lag's reader sees no event).
 */
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

-- How far behind each consumer is (consumer_backlog).  On Citus acked_tx
-- and acked_seq are the last position acknowledged, in some node group
-- (consumer_cursors has the cursor of each).
CREATE VIEW @extschema@.consumer_lag AS
SELECT c.consumer, c.acked_tx, c.acked_seq, c.acked_at, l.events_behind, l.oldest_unacked_at,
       pg_catalog.clock_timestamp() - l.oldest_unacked_at AS oldest_unacked_age
  FROM @extschema@.consumers c
 CROSS JOIN LATERAL @extschema@.consumer_backlog(c.consumer) l;
