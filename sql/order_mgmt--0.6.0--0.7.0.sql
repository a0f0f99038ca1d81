/* order_mgmt 0.6.0 -> 0.7.0: the event stream (issue 12).
 * - consumers: a durable cursor per consumer on (tx, seq); fetch_events
 *   hands out only events of transactions below the snapshot's xmin, so an
 *   event whose transaction commits late is never skipped; ack_events
 *   (OM040 for a position that is not an event or not deliverable yet);
 *   register_consumer, drop_consumer;
 * - purge_events: the one DELETE the append-only trigger lets through
 *   (events every consumer acknowledged, older than a cut-off);
 * - the view consumer_lag;
 * - notify_mode = relay (a background worker sends the NOTIFYs) is in the
 *   library alone: no schema object. */

\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit

------------------------------------------------------------------------
-- Consumers and their cursors
------------------------------------------------------------------------
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


CREATE TABLE @extschema@.consumers (
    consumer      text PRIMARY KEY CHECK (@extschema@.consumer_name(consumer) IS NOT NULL),
    acked_tx      xid8 NOT NULL DEFAULT '0',
    acked_seq     bigint NOT NULL DEFAULT 0,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    acked_at      timestamptz
);

------------------------------------------------------------------------
-- The API
------------------------------------------------------------------------
CREATE FUNCTION @extschema@.delivery_horizon()
RETURNS xid8
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT least(pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()),
                 pg_catalog.pg_current_xact_id_if_assigned())
$$;

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

CREATE FUNCTION @extschema@.purge_events(older_than interval)
RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'purge_events';

CREATE VIEW @extschema@.consumer_lag AS
SELECT c.consumer, c.acked_tx, c.acked_seq, c.acked_at, l.events_behind, l.oldest_unacked_at,
       pg_catalog.clock_timestamp() - l.oldest_unacked_at AS oldest_unacked_age
  FROM @extschema@.consumers c
 CROSS JOIN LATERAL (
       SELECT pg_catalog.count(*) AS events_behind, pg_catalog.min(e.occurred_at) AS oldest_unacked_at
         FROM @extschema@.events e
        WHERE (e.tx, e.seq) > (c.acked_tx, c.acked_seq)) l;


------------------------------------------------------------------------
-- pg_dump support and privileges
------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('@extschema@.consumers', '');

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.status_class(text, text), @extschema@.current_actor()
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.register_consumer(text, boolean),
    @extschema@.fetch_events(text, int),
    @extschema@.ack_events(text, xid8, bigint)
TO order_mgmt_operator;
-- (operator first: the ACLs then read as a fresh install's)
GRANT SELECT ON @extschema@.consumers, @extschema@.consumer_lag TO order_mgmt_operator;
GRANT SELECT ON @extschema@.consumer_lag TO order_mgmt_reader;
