-- Tables: master and reference data, lifecycle graphs, orders and their
-- children, the event log, stock, holds and payments.

------------------------------------------------------------------------
-- C entry points used by constraints and triggers
------------------------------------------------------------------------
-- Does PostgreSQL know this time zone name (IANA)?  Used by CHECKs.
CREATE FUNCTION @extschema@.valid_time_zone(tz text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'valid_time_zone';

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

-- Calendars: dates are local dates of the calendar's zone.
CREATE TABLE @extschema@.calendars (
    calendar_id text PRIMARY KEY CHECK (calendar_id <> '' AND length(calendar_id) < 64),
    name        text,
    tz          text NOT NULL DEFAULT 'UTC' CHECK (@extschema@.valid_time_zone(tz)),
    workdays    int[] NOT NULL DEFAULT '{1,2,3,4,5}'
                CHECK (workdays <@ '{1,2,3,4,5,6,7}' AND array_position(workdays, NULL) IS NULL)
);

CREATE TABLE @extschema@.calendar_exceptions (
    calendar_id text NOT NULL REFERENCES @extschema@.calendars ON DELETE CASCADE,
    day         date NOT NULL CHECK (day > '1900-01-01' AND day < '2200-01-01'),
    is_working  boolean NOT NULL DEFAULT false,
    name        text,
    PRIMARY KEY (calendar_id, day)
);

CREATE TABLE @extschema@.warehouses (
    warehouse_id  text PRIMARY KEY CHECK (warehouse_id <> ''),
    name          text NOT NULL,
    tz            text NOT NULL DEFAULT 'UTC',
    cutoff_local  time NOT NULL DEFAULT '14:00',
    calendar_id   text,
    zone          text,
    CONSTRAINT warehouses_id_length CHECK (length(warehouse_id) < 64),
    CONSTRAINT warehouses_tz_valid CHECK (@extschema@.valid_time_zone(tz)),
    CONSTRAINT warehouses_zone_length CHECK (zone <> '' AND length(zone) < 64),
    CONSTRAINT warehouses_calendar_id_fkey FOREIGN KEY (calendar_id)
        REFERENCES @extschema@.calendars
);

CREATE TABLE @extschema@.services (
    service_id           text PRIMARY KEY
                         CHECK (service_id <> '' AND length(service_id) < 64),
    carrier              text NOT NULL,
    name                 text,
    handling_min         int NOT NULL DEFAULT 0,
    handling_max         int NOT NULL DEFAULT 0,
    transit_min          int NOT NULL,
    transit_max          int NOT NULL,
    transit_calendar_id  text NOT NULL REFERENCES @extschema@.calendars,
    delivery_calendar_id text NOT NULL REFERENCES @extschema@.calendars,
    pickup_calendar_id   text REFERENCES @extschema@.calendars,
    cost                 numeric(14,2) NOT NULL DEFAULT 0 CHECK (cost >= 0),
    active               boolean NOT NULL DEFAULT true,
    CHECK (0 <= handling_min AND handling_min <= handling_max AND handling_max <= 365),
    CHECK (0 <= transit_min AND transit_min <= transit_max AND transit_max <= 365)
);

CREATE TABLE @extschema@.lanes (
    service_id  text NOT NULL REFERENCES @extschema@.services ON DELETE CASCADE,
    origin_zone text NOT NULL CHECK (origin_zone <> '' AND length(origin_zone) < 64),
    dest_zone   text NOT NULL CHECK (dest_zone <> '' AND length(dest_zone) < 64),
    transit_min int NOT NULL,
    transit_max int NOT NULL,
    cost        numeric(14,2) CHECK (cost >= 0),
    PRIMARY KEY (service_id, origin_zone, dest_zone),
    CHECK (0 <= transit_min AND transit_min <= transit_max AND transit_max <= 365)
);

-- Postal prefixes are stored normalized: upper-case letters and digits.
CREATE TABLE @extschema@.zone_rules (
    country       char(2) NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    postal_prefix text NOT NULL DEFAULT '' CHECK (postal_prefix ~ '^[0-9A-Z]{0,20}$'),
    zone          text NOT NULL CHECK (zone <> '' AND length(zone) < 64),
    PRIMARY KEY (country, postal_prefix)
);

------------------------------------------------------------------------
-- Lifecycle graphs as data.  statuses: every status and what it means
-- (its class; the checks of the API and the views read the class, never
-- a list of names).  transitions: one row per legal edge.  Leaving a held
-- status for the status it was held from needs no row (the trigger allows
-- it).  requires: columns that must be non-null on the row entering
-- to_status.  A status with no outgoing edge is final.
------------------------------------------------------------------------
CREATE TABLE @extschema@.statuses (
    entity  text NOT NULL CHECK (entity IN ('order', 'shipment', 'return')),
    status  text NOT NULL CHECK (status <> '' AND length(status) < 64),
    class   text NOT NULL,
    is_seed boolean NOT NULL DEFAULT false,
    PRIMARY KEY (entity, status),
    CONSTRAINT statuses_class_check CHECK (
        entity = 'order' AND class IN ('pending', 'held', 'open', 'shipping', 'delivered',
                                       'completed', 'cancelled')
        OR entity = 'shipment' AND class IN ('preparing', 'in_transit', 'delivered', 'failed',
                                             'cancelled')
        OR entity = 'return' AND class IN ('open', 'completed', 'cancelled'))
);

CREATE TABLE @extschema@.transitions (
    entity      text NOT NULL CHECK (entity IN ('order', 'shipment', 'return')),
    from_status text NOT NULL CHECK (from_status <> '' AND length(from_status) < 64),
    to_status   text NOT NULL CHECK (to_status <> '' AND length(to_status) < 64),
    activity    text NOT NULL CHECK (activity ~ '^[a-z_]{1,40}$'),
    requires    text[] NOT NULL DEFAULT '{}',
    is_seed     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (entity, from_status, to_status),
    CHECK (from_status <> to_status),
    CONSTRAINT transitions_from_status_fkey FOREIGN KEY (entity, from_status)
        REFERENCES @extschema@.statuses,
    CONSTRAINT transitions_to_status_fkey FOREIGN KEY (entity, to_status)
        REFERENCES @extschema@.statuses
);

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
    -- credit: when the order's credit was approved (check passed, or a
    -- credit hold released); exposure: what it adds to its customer's
    -- credit exposure (derived, kept by order_mgmt_money)
    credit_approved_at         timestamptz,
    exposure                   numeric(14,2) NOT NULL DEFAULT 0,
    -- changed by every API call that changes the order or its lines, so a
    -- REPEATABLE READ caller with an older snapshot gets 40001, not stale lines
    updated_at                 timestamptz,
    PRIMARY KEY (order_id)
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
-- the queue of demand waiting for stock (backordered and stock-held lines)
CREATE INDEX order_lines_waiting_idx ON @extschema@.order_lines (sku) WHERE qty_backordered > 0;

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
    -- 0.5.0: the carrier checkpoint (tracking_events) the status follows
    last_checkpoint_id          bigint,
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
    -- set by receive_return, inspect_return and refund/exchange_return; the
    -- edges into received, inspected and completed require them (0.6.0)
    received_at  timestamptz,
    inspected_at timestamptz,
    resolved_at  timestamptz,
    -- the replacement order of an exchange (exchange_return); the link is on
    -- the return, so pg_dump's data (orders before returns) restores (0.6.0)
    exchange_order_id bigint UNIQUE REFERENCES @extschema@.orders,
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
    -- condition and disposition: those of every inspected unit of the line
    -- when they agree, else null (return_inspections has the split)
    qty_received int NOT NULL DEFAULT 0 CHECK (qty_received >= 0),
    PRIMARY KEY (order_id, return_id, line_no),
    FOREIGN KEY (order_id, return_id) REFERENCES @extschema@.returns ON DELETE CASCADE,
    FOREIGN KEY (order_id, line_no) REFERENCES @extschema@.order_lines,
    CONSTRAINT return_lines_received_le_qty CHECK (qty_received <= qty)
);

-- Why a condition and a disposition of inspected units do not go together
-- (null when they do): only resellable units are restocked, and missing
-- units, which are not there, have no disposition.  The CHECK of
-- return_inspections and inspect_return's message both ask it.
CREATE FUNCTION @extschema@.disposition_problem(condition text, disposition text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN condition = 'missing' AND disposition IS NOT NULL THEN
            'missing units have no disposition'
        WHEN condition <> 'missing' AND disposition IS NULL THEN
            format('%s units need a disposition', condition)
        WHEN disposition = 'restock' AND condition <> 'resellable' THEN
            format('%s units cannot be restocked', condition)
    END
$$;

-- What inspection found (0.6.0): units of a return line by condition and
-- disposition; a line may be split (one resellable, one damaged).
CREATE SEQUENCE @extschema@.return_inspections_inspection_id_seq;

CREATE TABLE @extschema@.return_inspections (
    order_id      bigint NOT NULL,
    inspection_id bigint NOT NULL
                  DEFAULT nextval('@extschema@.return_inspections_inspection_id_seq'),
    return_id     bigint NOT NULL,
    line_no       int NOT NULL,
    qty           int NOT NULL CHECK (qty > 0),
    condition     text NOT NULL
                  CHECK (condition IN ('resellable', 'damaged', 'defective', 'missing')),
    disposition   text
                  CHECK (disposition IN ('restock', 'scrap', 'repair', 'return_to_vendor')),
    inspected_at  timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    PRIMARY KEY (order_id, inspection_id),
    FOREIGN KEY (order_id, return_id, line_no) REFERENCES @extschema@.return_lines ON DELETE CASCADE,
    CONSTRAINT return_inspections_disposition_fits
        CHECK (@extschema@.disposition_problem(condition, disposition) IS NULL)
);
ALTER SEQUENCE @extschema@.return_inspections_inspection_id_seq
    OWNED BY @extschema@.return_inspections.inspection_id;
CREATE INDEX return_inspections_return_idx
    ON @extschema@.return_inspections (order_id, return_id, line_no);

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
    db_role     text,           -- session_user of the writer (null before 0.4.0)
    PRIMARY KEY (order_id, seq)
);
ALTER SEQUENCE @extschema@.events_seq_seq OWNED BY @extschema@.events.seq;
CREATE INDEX events_tx_seq_idx ON @extschema@.events (tx, seq);
CREATE INDEX events_occurred_at_idx ON @extschema@.events USING brin (occurred_at);

------------------------------------------------------------------------
-- Inventory (src/stock.c).  stock_levels holds the committed quantities
-- of each (warehouse_id, sku); a transaction records its changes in
-- stock_pending (with their movements in inventory_movements) and applies
-- them at commit, so no stock row is locked across calls.  The view stock
-- shows the committed quantities plus the reader's own pending changes.
-- Movements are warehouse-scoped, not order-scoped: order_id and line_no
-- only say which order line a reserve/release was for.
------------------------------------------------------------------------
CREATE TABLE @extschema@.stock_levels (
    warehouse_id text NOT NULL,
    sku          text NOT NULL,
    on_hand      int NOT NULL DEFAULT 0,
    reserved     int NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stock_levels_pkey PRIMARY KEY (warehouse_id, sku),
    CONSTRAINT stock_levels_warehouse_id_fkey FOREIGN KEY (warehouse_id)
        REFERENCES @extschema@.warehouses,
    CONSTRAINT stock_levels_sku_fkey FOREIGN KEY (sku) REFERENCES @extschema@.products,
    CONSTRAINT stock_levels_on_hand_check CHECK (on_hand >= 0),
    CONSTRAINT stock_levels_reserved_check CHECK (reserved >= 0),
    CONSTRAINT stock_levels_reserved_le_on_hand CHECK (reserved <= on_hand)
);
CREATE INDEX stock_levels_sku_idx ON @extschema@.stock_levels (sku);

-- Rows live only inside the transaction that writes them (see stock.c).
CREATE TABLE @extschema@.stock_pending (
    warehouse_id   text NOT NULL,
    sku            text NOT NULL,
    on_hand_delta  int NOT NULL,
    reserved_delta int NOT NULL
);
CREATE INDEX stock_pending_stock_idx ON @extschema@.stock_pending (warehouse_id, sku);

CREATE SEQUENCE @extschema@.inventory_movements_movement_id_seq;

CREATE TABLE @extschema@.inventory_movements (
    movement_id    bigint NOT NULL
                   DEFAULT nextval('@extschema@.inventory_movements_movement_id_seq'),
    warehouse_id   text NOT NULL,
    sku            text NOT NULL,
    kind           text NOT NULL,
    on_hand_delta  int NOT NULL DEFAULT 0,
    reserved_delta int NOT NULL DEFAULT 0,
    order_id       bigint,
    line_no        int,
    reason         text,
    actor          text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (movement_id),
    CONSTRAINT inventory_movements_warehouse_id_fkey FOREIGN KEY (warehouse_id)
        REFERENCES @extschema@.warehouses,
    CONSTRAINT inventory_movements_sku_fkey FOREIGN KEY (sku) REFERENCES @extschema@.products,
    -- returned units that go to scrap, repair or the vendor are a ledger
    -- row without stock (0.6.0)
    CONSTRAINT inventory_movements_kind_check
        CHECK (kind IN ('receipt', 'adjustment', 'reserve', 'release', 'ship', 'restock',
                        'scrap', 'repair', 'return_to_vendor')),
    CONSTRAINT inventory_movements_check
        CHECK (on_hand_delta <> 0 OR reserved_delta <> 0
               OR kind IN ('scrap', 'repair', 'return_to_vendor'))
);
ALTER SEQUENCE @extschema@.inventory_movements_movement_id_seq
    OWNED BY @extschema@.inventory_movements.movement_id;
CREATE INDEX inventory_movements_stock_idx
    ON @extschema@.inventory_movements (warehouse_id, sku);
CREATE INDEX inventory_movements_order_idx
    ON @extschema@.inventory_movements (order_id) WHERE order_id IS NOT NULL;

------------------------------------------------------------------------
-- Holds: one row per hold; the order is on_hold iff an open hold exists.
------------------------------------------------------------------------
CREATE SEQUENCE @extschema@.order_holds_hold_id_seq;

CREATE TABLE @extschema@.order_holds (
    order_id       bigint NOT NULL REFERENCES @extschema@.orders ON DELETE CASCADE,
    hold_id        bigint NOT NULL DEFAULT nextval('@extschema@.order_holds_hold_id_seq'),
    kind           text NOT NULL
                   CHECK (kind IN ('credit', 'payment', 'stock', 'address', 'fraud', 'manual')),
    reason         text NOT NULL,
    placed_at      timestamptz NOT NULL DEFAULT now(),
    placed_by      text NOT NULL,
    released_at    timestamptz,
    released_by    text,
    release_reason text,
    PRIMARY KEY (order_id, hold_id),
    CHECK ((released_at IS NULL) = (released_by IS NULL))
);
ALTER SEQUENCE @extschema@.order_holds_hold_id_seq OWNED BY @extschema@.order_holds.hold_id;
CREATE INDEX order_holds_open_idx ON @extschema@.order_holds (order_id) WHERE released_at IS NULL;

------------------------------------------------------------------------
-- Payments ledger.  Rows are never updated; the order's payment_status is
-- derived from them (orders_payment_status trigger).
------------------------------------------------------------------------
CREATE SEQUENCE @extschema@.payments_payment_id_seq;

CREATE TABLE @extschema@.payments (
    order_id      bigint NOT NULL REFERENCES @extschema@.orders ON DELETE CASCADE,
    payment_id    bigint NOT NULL DEFAULT nextval('@extschema@.payments_payment_id_seq'),
    kind          text NOT NULL CHECK (kind IN ('authorization', 'capture', 'refund', 'void')),
    amount        numeric(14,2) NOT NULL CHECK (amount > 0),
    status        text NOT NULL DEFAULT 'succeeded' CHECK (status IN ('succeeded', 'failed')),
    psp_reference text NOT NULL CHECK (psp_reference <> ''),
    return_id     bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    PRIMARY KEY (order_id, payment_id),
    CONSTRAINT payments_psp_reference_key UNIQUE (psp_reference),
    FOREIGN KEY (order_id, return_id) REFERENCES @extschema@.returns,
    CHECK (return_id IS NULL OR kind = 'refund')
);
ALTER SEQUENCE @extschema@.payments_payment_id_seq OWNED BY @extschema@.payments.payment_id;


------------------------------------------------------------------------
-- Credit exposure per customer (src/credit.c), kept by the trigger
-- order_mgmt_money: always the sum of orders.exposure of the customer.
-- Derived data: not dumped; a restore rebuilds it through that trigger.
------------------------------------------------------------------------
CREATE TABLE @extschema@.credit_accounts (
    customer_id text PRIMARY KEY REFERENCES @extschema@.customers,
    exposure    numeric(14,2) NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

------------------------------------------------------------------------
-- Globally unique business keys.  On a single node the UNIQUE constraints
-- of orders.external_ref, payments.psp_reference, shipments.tracking_number
-- and tracking_events.carrier_event_id decide; Citus cannot keep a UNIQUE
-- without the distribution column, so there the first claim of a key in
-- this table, distributed by the key, decides (claim_key).  content:
-- what a repeat must match (external_ref: the request hash).
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
