/* order_mgmt 0.1.0: schema, lifecycle graphs, event log, minimal API */

\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit

------------------------------------------------------------------------
-- Master data
------------------------------------------------------------------------
CREATE TABLE @extschema@.customers (
    customer_id   text PRIMARY KEY CHECK (customer_id <> ''),
    name          text NOT NULL,
    payment_terms text NOT NULL DEFAULT 'prepaid'
                  CHECK (payment_terms IN ('prepaid', 'credit')),
    credit_limit  numeric(14,2) NOT NULL DEFAULT 0 CHECK (credit_limit >= 0),
    currency      char(3) NOT NULL DEFAULT 'EUR',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE @extschema@.products (
    sku           text PRIMARY KEY CHECK (sku <> ''),
    name          text NOT NULL,
    list_price    numeric(14,2) CHECK (list_price >= 0),
    weight_g      int NOT NULL DEFAULT 0 CHECK (weight_g >= 0),
    handling_days int NOT NULL DEFAULT 0 CHECK (handling_days >= 0)
);

-- calendar_id gets its foreign key when calendars arrive (delivery promise).
CREATE TABLE @extschema@.warehouses (
    warehouse_id  text PRIMARY KEY CHECK (warehouse_id <> ''),
    name          text NOT NULL,
    tz            text NOT NULL DEFAULT 'UTC',
    cutoff_local  time NOT NULL DEFAULT '14:00',
    calendar_id   text,
    zone          text
);

------------------------------------------------------------------------
-- Lifecycle graphs as data, one row per legal edge.  Leaving 'on_hold' for
-- the status it was held from needs no row (the trigger allows it).
-- requires: columns that must be non-null on the row entering to_status.
-- A status with no outgoing edge is final.
------------------------------------------------------------------------
CREATE TABLE @extschema@.transitions (
    entity      text NOT NULL CHECK (entity IN ('order', 'shipment', 'return')),
    from_status text NOT NULL CHECK (from_status <> '' AND length(from_status) < 64),
    to_status   text NOT NULL CHECK (to_status <> '' AND length(to_status) < 64),
    activity    text NOT NULL CHECK (activity ~ '^[a-z_]{1,40}$'),
    requires    text[] NOT NULL DEFAULT '{}',
    is_seed     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (entity, from_status, to_status),
    CHECK (from_status <> to_status)
);

INSERT INTO @extschema@.transitions (entity, from_status, to_status, activity, requires, is_seed)
SELECT e, f, t, a, r::text[], true
FROM (VALUES
    ('order', 'placed',            'awaiting_payment',  'awaiting_payment',  '{}'),
    ('order', 'placed',            'confirmed',         'confirmed',         '{}'),
    ('order', 'placed',            'on_hold',           'held',              '{}'),
    ('order', 'placed',            'rejected',          'rejected',          '{}'),
    ('order', 'placed',            'cancelled',         'cancelled',         '{}'),
    ('order', 'awaiting_payment',  'confirmed',         'confirmed',         '{}'),
    ('order', 'awaiting_payment',  'on_hold',           'held',              '{}'),
    ('order', 'awaiting_payment',  'cancelled',         'cancelled',         '{}'),
    ('order', 'confirmed',         'processing',        'released',          '{}'),
    ('order', 'confirmed',         'on_hold',           'held',              '{}'),
    ('order', 'confirmed',         'cancelled',         'cancelled',         '{}'),
    ('order', 'processing',        'partially_shipped', 'partially_shipped', '{}'),
    ('order', 'processing',        'shipped',           'shipped',           '{}'),
    ('order', 'processing',        'on_hold',           'held',              '{}'),
    ('order', 'processing',        'cancelled',         'cancelled',         '{}'),
    ('order', 'partially_shipped', 'shipped',           'shipped',           '{}'),
    ('order', 'shipped',           'delivered',         'delivered',         '{}'),
    ('order', 'delivered',         'completed',         'completed',         '{}'),
    ('order', 'on_hold',           'cancelled',         'cancelled',         '{}'),
    ('shipment', 'pending',          'picking',            'picking_started',    '{}'),
    ('shipment', 'picking',          'packed',             'packed',
        '{weight_g,length_mm,width_mm,height_mm}'),
    ('shipment', 'packed',           'labelled',           'labelled',
        '{carrier,service_id,tracking_number}'),
    ('shipment', 'labelled',         'dispatched',         'dispatched',         '{}'),
    ('shipment', 'dispatched',       'in_transit',         'in_transit',         '{}'),
    ('shipment', 'in_transit',       'out_for_delivery',   'out_for_delivery',   '{}'),
    ('shipment', 'out_for_delivery', 'delivered',          'delivered',          '{}'),
    ('shipment', 'in_transit',       'delayed',            'delayed',            '{}'),
    ('shipment', 'in_transit',       'failed_attempt',     'failed_attempt',     '{}'),
    ('shipment', 'out_for_delivery', 'delayed',            'delayed',            '{}'),
    ('shipment', 'out_for_delivery', 'failed_attempt',     'failed_attempt',     '{}'),
    ('shipment', 'delayed',          'in_transit',         'in_transit',         '{}'),
    ('shipment', 'failed_attempt',   'in_transit',         'in_transit',         '{}'),
    ('shipment', 'in_transit',       'returned_to_sender', 'returned_to_sender', '{}'),
    ('shipment', 'out_for_delivery', 'returned_to_sender', 'returned_to_sender', '{}'),
    ('shipment', 'delayed',          'returned_to_sender', 'returned_to_sender', '{}'),
    ('shipment', 'failed_attempt',   'returned_to_sender', 'returned_to_sender', '{}'),
    ('shipment', 'in_transit',       'lost',               'lost',               '{}'),
    ('shipment', 'out_for_delivery', 'lost',               'lost',               '{}'),
    ('shipment', 'delayed',          'lost',               'lost',               '{}'),
    ('shipment', 'failed_attempt',   'lost',               'lost',               '{}'),
    ('shipment', 'pending',          'cancelled',          'cancelled',          '{}'),
    ('shipment', 'picking',          'cancelled',          'cancelled',          '{}'),
    ('shipment', 'packed',           'cancelled',          'cancelled',          '{}'),
    ('shipment', 'labelled',         'cancelled',          'cancelled',          '{}'),
    ('return', 'requested', 'approved',  'approved',  '{}'),
    ('return', 'requested', 'rejected',  'rejected',  '{}'),
    ('return', 'requested', 'cancelled', 'cancelled', '{}'),
    ('return', 'approved',  'received',  'received',  '{}'),
    ('return', 'approved',  'cancelled', 'cancelled', '{}'),
    ('return', 'received',  'inspected', 'inspected', '{}'),
    ('return', 'inspected', 'completed', 'completed', '{}')
) AS seed(e, f, t, a, r);

------------------------------------------------------------------------
-- Orders and their children.  Every order-scoped table has order_id in
-- its primary key and foreign keys (co-location by order_id).
------------------------------------------------------------------------
CREATE SEQUENCE @extschema@.orders_order_id_seq;

CREATE TABLE @extschema@.orders (
    order_id                   bigint NOT NULL
                               DEFAULT nextval('@extschema@.orders_order_id_seq'),
    external_ref               text UNIQUE,
    customer_id                text NOT NULL REFERENCES @extschema@.customers,
    channel                    text NOT NULL DEFAULT 'web'
        CHECK (channel IN ('web', 'phone', 'in_person', 'edi', 'marketplace')),
    status                     text NOT NULL DEFAULT 'placed',
    held_from                  text,
    payment_status             text NOT NULL DEFAULT 'unpaid'
        CHECK (payment_status IN ('unpaid', 'authorized', 'partially_captured', 'paid',
                                  'partially_refunded', 'refunded', 'voided')),
    return_status              text NOT NULL DEFAULT 'none'
        CHECK (return_status IN ('none', 'requested', 'partially_returned', 'returned')),
    currency                   char(3) NOT NULL,
    total                      numeric(14,2) NOT NULL DEFAULT 0 CHECK (total >= 0),
    ship_to                    jsonb NOT NULL,
    ship_to_country            char(2) NOT NULL CHECK (ship_to_country ~ '^[A-Z]{2}$'),
    ship_to_postal             text,
    warehouse_id               text REFERENCES @extschema@.warehouses,
    service_id                 text,
    requested_delivery         date,
    allow_backorder            boolean NOT NULL DEFAULT false,
    promised_ship_earliest     date,
    promised_ship_latest       date,
    promised_delivery_earliest date,
    promised_delivery_latest   date,
    placed_at                  timestamptz NOT NULL DEFAULT now(),
    request_hash               text,
    PRIMARY KEY (order_id),
    CHECK ((status = 'on_hold') = (held_from IS NOT NULL))
);
ALTER SEQUENCE @extschema@.orders_order_id_seq OWNED BY @extschema@.orders.order_id;
CREATE INDEX orders_customer_idx ON @extschema@.orders (customer_id);
CREATE INDEX orders_status_idx ON @extschema@.orders (status);

CREATE TABLE @extschema@.order_lines (
    order_id        bigint NOT NULL REFERENCES @extschema@.orders ON DELETE CASCADE,
    line_no         int NOT NULL CHECK (line_no > 0),
    sku             text NOT NULL REFERENCES @extschema@.products,
    qty             int NOT NULL CHECK (qty > 0),
    unit_price      numeric(14,2) NOT NULL CHECK (unit_price >= 0),
    warehouse_id    text REFERENCES @extschema@.warehouses,
    ready_at        timestamptz,
    qty_reserved    int NOT NULL DEFAULT 0 CHECK (qty_reserved >= 0),
    qty_backordered int NOT NULL DEFAULT 0 CHECK (qty_backordered >= 0),
    qty_shipped     int NOT NULL DEFAULT 0 CHECK (qty_shipped >= 0),
    qty_delivered   int NOT NULL DEFAULT 0 CHECK (qty_delivered >= 0),
    qty_cancelled   int NOT NULL DEFAULT 0 CHECK (qty_cancelled >= 0),
    qty_returned    int NOT NULL DEFAULT 0 CHECK (qty_returned >= 0),
    PRIMARY KEY (order_id, line_no),
    CHECK (qty_delivered <= qty_shipped),
    CHECK (qty_shipped + qty_cancelled <= qty),
    CHECK (qty_reserved + qty_backordered + qty_shipped + qty_cancelled <= qty),
    CHECK (qty_returned <= qty_delivered)
);
CREATE INDEX order_lines_sku_idx ON @extschema@.order_lines (sku);

CREATE SEQUENCE @extschema@.shipments_shipment_id_seq;

CREATE TABLE @extschema@.shipments (
    order_id                    bigint NOT NULL REFERENCES @extschema@.orders ON DELETE CASCADE,
    shipment_id                 bigint NOT NULL
                                DEFAULT nextval('@extschema@.shipments_shipment_id_seq'),
    warehouse_id                text NOT NULL REFERENCES @extschema@.warehouses,
    status                      text NOT NULL DEFAULT 'pending',
    service_id                  text,
    carrier                     text,
    tracking_number             text UNIQUE,
    weight_g                    int CHECK (weight_g > 0),
    length_mm                   int CHECK (length_mm > 0),
    width_mm                    int CHECK (width_mm > 0),
    height_mm                   int CHECK (height_mm > 0),
    package_count               int NOT NULL DEFAULT 1 CHECK (package_count > 0),
    label_ref                   text,
    promised_delivery_earliest  date,
    promised_delivery_latest    date,
    estimated_delivery_earliest date,
    estimated_delivery_latest   date,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    dispatched_at               timestamptz,
    delivered_at                timestamptz,
    PRIMARY KEY (order_id, shipment_id)
);
ALTER SEQUENCE @extschema@.shipments_shipment_id_seq OWNED BY @extschema@.shipments.shipment_id;
CREATE INDEX shipments_shipment_id_idx ON @extschema@.shipments (shipment_id);

CREATE TABLE @extschema@.shipment_lines (
    order_id    bigint NOT NULL,
    shipment_id bigint NOT NULL,
    line_no     int NOT NULL,
    qty         int NOT NULL CHECK (qty > 0),
    PRIMARY KEY (order_id, shipment_id, line_no),
    FOREIGN KEY (order_id, shipment_id)
        REFERENCES @extschema@.shipments ON DELETE CASCADE,
    FOREIGN KEY (order_id, line_no) REFERENCES @extschema@.order_lines
);

CREATE SEQUENCE @extschema@.returns_return_id_seq;

CREATE TABLE @extschema@.returns (
    order_id    bigint NOT NULL REFERENCES @extschema@.orders ON DELETE CASCADE,
    return_id   bigint NOT NULL DEFAULT nextval('@extschema@.returns_return_id_seq'),
    status      text NOT NULL DEFAULT 'requested',
    reason      text,
    resolution  text NOT NULL DEFAULT 'refund' CHECK (resolution IN ('refund', 'exchange')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, return_id)
);
ALTER SEQUENCE @extschema@.returns_return_id_seq OWNED BY @extschema@.returns.return_id;
CREATE INDEX returns_return_id_idx ON @extschema@.returns (return_id);

CREATE TABLE @extschema@.return_lines (
    order_id    bigint NOT NULL,
    return_id   bigint NOT NULL,
    line_no     int NOT NULL,
    qty         int NOT NULL CHECK (qty > 0),
    condition   text CHECK (condition IN ('resellable', 'damaged', 'defective', 'missing')),
    disposition text CHECK (disposition IN ('restock', 'scrap', 'repair', 'return_to_vendor')),
    PRIMARY KEY (order_id, return_id, line_no),
    FOREIGN KEY (order_id, return_id) REFERENCES @extschema@.returns ON DELETE CASCADE,
    FOREIGN KEY (order_id, line_no) REFERENCES @extschema@.order_lines
);

------------------------------------------------------------------------
-- The event log (append-only).  seq orders events within the log; the
-- durable cursor of consumers is (tx, seq).
------------------------------------------------------------------------
CREATE SEQUENCE @extschema@.events_seq_seq;

CREATE TABLE @extschema@.events (
    seq         bigint NOT NULL DEFAULT nextval('@extschema@.events_seq_seq'),
    tx          xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    event_id    uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    occurred_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    order_id    bigint NOT NULL,
    entity      text NOT NULL,
    entity_id   bigint NOT NULL,
    event_type  text NOT NULL,
    from_status text,
    to_status   text,
    actor       text NOT NULL,
    automated   boolean NOT NULL DEFAULT false,
    reason      text,
    payload     jsonb,
    PRIMARY KEY (order_id, seq)
);
ALTER SEQUENCE @extschema@.events_seq_seq OWNED BY @extschema@.events.seq;
CREATE INDEX events_tx_seq_idx ON @extschema@.events (tx, seq);
CREATE INDEX events_occurred_at_idx ON @extschema@.events USING brin (occurred_at);

------------------------------------------------------------------------
-- C entry points
------------------------------------------------------------------------
CREATE FUNCTION @extschema@.lifecycle_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'lifecycle_trigger';

CREATE FUNCTION @extschema@.transitions_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'transitions_changed';

CREATE FUNCTION @extschema@.events_append_only() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'events_append_only';

-- Appends one event (and queues its NOTIFY); returns its seq.  Used by the
-- API for events that are not status changes (placement, holds, payments...).
CREATE FUNCTION @extschema@.emit_event(
    order_id bigint, entity text, entity_id bigint, event_type text,
    from_status text DEFAULT NULL, to_status text DEFAULT NULL,
    reason text DEFAULT NULL, payload jsonb DEFAULT NULL)
RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'emit_event';

CREATE TRIGGER order_mgmt_lifecycle BEFORE UPDATE ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.lifecycle_trigger('order', 'order_id');
CREATE TRIGGER order_mgmt_lifecycle BEFORE UPDATE ON @extschema@.shipments
    FOR EACH ROW EXECUTE FUNCTION @extschema@.lifecycle_trigger('shipment', 'shipment_id');
CREATE TRIGGER order_mgmt_lifecycle BEFORE UPDATE ON @extschema@.returns
    FOR EACH ROW EXECUTE FUNCTION @extschema@.lifecycle_trigger('return', 'return_id');

CREATE TRIGGER order_mgmt_transitions_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.transitions
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.transitions_changed();

CREATE TRIGGER order_mgmt_append_only BEFORE UPDATE OR DELETE ON @extschema@.events
    FOR EACH ROW EXECUTE FUNCTION @extschema@.events_append_only();
CREATE TRIGGER order_mgmt_append_only_truncate BEFORE TRUNCATE ON @extschema@.events
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_append_only();

------------------------------------------------------------------------
-- API
------------------------------------------------------------------------

-- Canonical, validated order lines: [{line_no, sku, qty, unit_price}].
CREATE FUNCTION @extschema@.normalize_lines(lines jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l     jsonb;
    n     int := 0;
    v_sku text;
    v_qty numeric;
    v_price numeric;
    out   jsonb := '[]';
BEGIN
    IF lines IS NULL OR jsonb_typeof(lines) <> 'array' OR jsonb_array_length(lines) = 0 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array'
            USING ERRCODE = '22023', DETAIL = format('Got %s.', coalesce(lines::text, 'NULL'));
    END IF;
    IF jsonb_array_length(lines) > 1000 THEN
        RAISE EXCEPTION 'too many order lines'
            USING ERRCODE = '22023', DETAIL = 'An order has at most 1000 lines.';
    END IF;
    FOR l IN SELECT value FROM jsonb_array_elements(lines) LOOP
        n := n + 1;
        IF jsonb_typeof(l) <> 'object' OR jsonb_typeof(l->'sku') IS DISTINCT FROM 'string'
           OR jsonb_typeof(l->'qty') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'order line % is malformed', n
                USING ERRCODE = '22023',
                      DETAIL = format('Each line needs a string "sku" and a numeric "qty"; got %s.', l);
        END IF;
        v_sku := l->>'sku';
        v_qty := (l->>'qty')::numeric;
        IF v_qty <= 0 OR v_qty <> trunc(v_qty) OR v_qty > 1000000 THEN
            RAISE EXCEPTION 'order line % has an invalid quantity', n
                USING ERRCODE = '22023',
                      DETAIL = format('qty must be a whole number between 1 and 1000000; got %s.', l->>'qty');
        END IF;
        SELECT coalesce((l->>'unit_price')::numeric, p.list_price) INTO v_price
          FROM @extschema@.products p WHERE p.sku = v_sku;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown sku "%"', v_sku
                USING ERRCODE = 'OM004', DETAIL = format('Order line %s names a product that does not exist.', n);
        END IF;
        IF v_price IS NULL OR v_price < 0 THEN
            RAISE EXCEPTION 'order line % has no valid unit price', n
                USING ERRCODE = '22023',
                      DETAIL = format('Product "%s" has no list price and the line gives none (or a negative one).', v_sku),
                      HINT = 'Pass "unit_price" in the line.';
        END IF;
        out := out || jsonb_build_object('line_no', n, 'sku', v_sku, 'qty', v_qty::int,
                                         'unit_price', v_price);
    END LOOP;
    RETURN out;
END;
$$;

CREATE FUNCTION @extschema@.place_order(
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
    v_id     bigint;
    v_old    text;
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
    SELECT * INTO v_cust FROM @extschema@.customers c WHERE c.customer_id = place_order.customer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown customer "%"', customer_id
            USING ERRCODE = 'OM004', HINT = 'Create the customer in order_mgmt.customers first.';
    END IF;
    v_lines := @extschema@.normalize_lines(lines);
    v_hash := md5(jsonb_build_array(customer_id, v_lines, ship_to, channel, service_id,
                                    requested_delivery, allow_backorder)::text);

    -- ON CONFLICT makes a concurrent twin wait for the first and then see it.
    INSERT INTO @extschema@.orders AS o
        (external_ref, customer_id, channel, currency, total, ship_to, ship_to_country,
         ship_to_postal, service_id, requested_delivery, allow_backorder, request_hash)
    SELECT place_order.external_ref, v_cust.customer_id, place_order.channel, v_cust.currency,
           (SELECT sum((x->>'qty')::int * (x->>'unit_price')::numeric)
              FROM jsonb_array_elements(v_lines) x),
           place_order.ship_to, v_country, place_order.ship_to->>'postal_code',
           place_order.service_id, place_order.requested_delivery, place_order.allow_backorder,
           v_hash
    ON CONFLICT ON CONSTRAINT orders_external_ref_key DO NOTHING
    RETURNING o.order_id INTO v_id;

    IF v_id IS NULL THEN
        SELECT o.order_id, o.request_hash INTO v_id, v_old
          FROM @extschema@.orders o WHERE o.external_ref = place_order.external_ref;
        IF v_old IS DISTINCT FROM v_hash THEN
            RAISE EXCEPTION 'external_ref "%" is already used by order % with other content',
                            external_ref, v_id
                USING ERRCODE = 'OM005',
                      HINT = 'Use a new external_ref for a new order.';
        END IF;
        RETURN v_id;
    END IF;

    INSERT INTO @extschema@.order_lines (order_id, line_no, sku, qty, unit_price)
    SELECT v_id, (x->>'line_no')::int, x->>'sku', (x->>'qty')::int, (x->>'unit_price')::numeric
      FROM jsonb_array_elements(v_lines) x;

    PERFORM @extschema@.emit_event(v_id, 'order', v_id, 'order.placed', NULL, 'placed', NULL,
                                   jsonb_build_object('channel', channel, 'external_ref', external_ref));
    RETURN v_id;
END;
$$;

CREATE FUNCTION @extschema@.set_status(
    entity text, id bigint, to_status text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_saved text := current_setting('order_mgmt.reason', true);
BEGIN
    IF entity IS NULL OR id IS NULL OR to_status IS NULL THEN
        RAISE EXCEPTION 'entity, id and to_status must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM set_config('order_mgmt.reason', coalesce(reason, v_saved, ''), true);
    CASE entity
    WHEN 'order' THEN
        UPDATE @extschema@.orders SET status = to_status WHERE order_id = id;
    WHEN 'shipment' THEN
        UPDATE @extschema@.shipments SET status = to_status WHERE shipment_id = id;
    WHEN 'return' THEN
        UPDATE @extschema@.returns SET status = to_status WHERE return_id = id;
    ELSE
        RAISE EXCEPTION 'unknown entity "%"', entity
            USING ERRCODE = '22023', DETAIL = 'entity must be order, shipment or return.';
    END CASE;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% % does not exist', entity, id USING ERRCODE = 'OM004';
    END IF;
    PERFORM set_config('order_mgmt.reason', coalesce(v_saved, ''), true);
END;
$$;

------------------------------------------------------------------------
-- pg_dump support: user data and sequences, seed transitions filtered.
------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('@extschema@.customers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.products', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.warehouses', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.transitions', 'WHERE NOT is_seed');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.orders', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.orders_order_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.order_lines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.shipments', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.shipments_shipment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.shipment_lines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.returns', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.returns_return_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.return_lines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events_seq_seq', '');

------------------------------------------------------------------------
-- Roles and privileges
------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'order_mgmt_reader') THEN
        CREATE ROLE order_mgmt_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'order_mgmt_operator') THEN
        CREATE ROLE order_mgmt_operator NOLOGIN;
    END IF;
END;
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO order_mgmt_reader, order_mgmt_operator;
GRANT SELECT ON ALL TABLES IN SCHEMA @extschema@ TO order_mgmt_operator;
GRANT EXECUTE ON FUNCTION @extschema@.place_order(text, jsonb, jsonb, text, text, text, date, boolean),
                          @extschema@.set_status(text, bigint, text, text)
    TO order_mgmt_operator;
