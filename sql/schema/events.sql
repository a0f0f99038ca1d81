-- The event log: appending events (C), the actor of a step, and the
-- append-only rule.

-- Appends one event (and queues its NOTIFY); returns its seq.  Used by the
-- API for events that are not status changes (placement, holds, payments...).
CREATE FUNCTION @extschema@.emit_event(
    order_id bigint, entity text, entity_id bigint, event_type text,
    from_status text DEFAULT NULL, to_status text DEFAULT NULL,
    reason text DEFAULT NULL, payload jsonb DEFAULT NULL)
RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'emit_event';

-- The actor recorded on events and ledgers: order_mgmt.actor when set, else
-- the session user (the same C function the event log uses).
CREATE FUNCTION @extschema@.current_actor() RETURNS text
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'current_actor';

CREATE FUNCTION @extschema@.events_append_only() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'events_append_only';

CREATE TRIGGER order_mgmt_append_only BEFORE UPDATE OR DELETE ON @extschema@.events
    FOR EACH ROW EXECUTE FUNCTION @extschema@.events_append_only();

CREATE TRIGGER order_mgmt_append_only_truncate BEFORE TRUNCATE ON @extschema@.events
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_append_only();
