/* order_mgmt 0.11.0 -> 0.12.0: one lock and one mark per order and
 * transaction (issues 9 and 10)
 * - lock_order locked and marked the order with an UPDATE of updated_at
 *   at every API call; an order placed, confirmed and fulfilled in one
 *   transaction took nine such UPDATEs (about 40 us each: a row version,
 *   the table's CHECKs).  Lock and mark last to the end of the
 *   transaction, so a later call on the same order only reads it;
 *   order_locked_here and note_order_locked (C, order_lock.c) remember the
 *   order, and forget it when a subtransaction that locked it aborts;
 * - place_order notes the order it inserts, and rollup_order marks the
 *   order only when no call of the transaction did. */

\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit

CREATE FUNCTION @extschema@.order_locked_here(order_id bigint) RETURNS boolean
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'order_locked_here';

CREATE FUNCTION @extschema@.note_order_locked(order_id bigint) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'note_order_locked';

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
    IF @extschema@.order_locked_here(p_order) THEN
        SELECT * INTO o FROM @extschema@.orders x WHERE x.order_id = p_order;
    ELSE
        UPDATE @extschema@.orders x SET updated_at = v_now WHERE x.order_id = p_order
        RETURNING * INTO o;
        PERFORM @extschema@.note_order_locked(o.order_id);
    END IF;
    IF o.order_id IS NULL THEN
        RAISE EXCEPTION 'order % does not exist', p_order USING ERRCODE = 'OM004';
    END IF;
    RETURN o;
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
    -- nobody else sees the new row before the commit: locked and marked
    PERFORM @extschema@.note_order_locked(v_new);
    RETURN v_new;
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
        IF NOT @extschema@.order_locked_here(p_order) THEN
            UPDATE @extschema@.orders x SET updated_at = v_now WHERE x.order_id = p_order;
            PERFORM @extschema@.note_order_locked(p_order);
        END IF;
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


REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.status_class(text, text), @extschema@.current_actor()
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.status_in_class(text, text, text[]),
                          @extschema@.class_entered(text, text, text, text[])
    TO PUBLIC;
