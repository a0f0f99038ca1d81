-- The delivery promise: the C engine (calendars, estimates, services),
-- the promise stored on orders and shipments, and orders_at_risk.


CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.calendars
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();

CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.calendar_exceptions
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();

CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.warehouses
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();

CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.services
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();

CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.lanes
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();

CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.zone_rules
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_cache();

CREATE FUNCTION @extschema@.is_business_day(day date, calendar_id text)
RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'is_business_day';

CREATE FUNCTION @extschema@.add_business_days(day date, n int, calendar_id text)
RETURNS date
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'add_business_days';

CREATE FUNCTION @extschema@.estimate_delivery(
    warehouse_id text, service_id text, country text, postal_code text,
    placed_at timestamptz, ready_at timestamptz DEFAULT NULL,
    OUT ship_earliest date, OUT ship_latest date,
    OUT delivery_earliest date, OUT delivery_latest date)
RETURNS record
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'estimate_delivery';

-- The best active service (strategy 'cheapest' or 'fastest') whose latest
-- delivery is on or before deliver_by (null: no deadline); null if none.
CREATE FUNCTION @extschema@.best_service(
    warehouse_id text, country text, postal_code text, placed_at timestamptz,
    ready_at timestamptz, deliver_by date, strategy text DEFAULT 'cheapest')
RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'best_service';

CREATE FUNCTION @extschema@.estimate_order_delivery(
    order_id bigint,
    OUT ship_earliest date, OUT ship_latest date,
    OUT delivery_earliest date, OUT delivery_latest date,
    OUT known boolean, OUT service_id text, OUT note text)
RETURNS record
    LANGUAGE c STABLE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'estimate_order_delivery';

CREATE FUNCTION @extschema@.promise_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'promise_trigger';

-- Fires after order_mgmt_lifecycle (BEFORE triggers fire in name order).
CREATE TRIGGER order_mgmt_promise BEFORE UPDATE OF status ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.promise_trigger();

-- A new shipment takes the order's promise and its own estimate (C).
CREATE FUNCTION @extschema@.shipment_promise_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'shipment_promise_trigger';

CREATE TRIGGER order_mgmt_promise BEFORE INSERT ON @extschema@.shipments
    FOR EACH ROW EXECUTE FUNCTION @extschema@.shipment_promise_trigger();

CREATE FUNCTION @extschema@.choose_service(
    shipment_id bigint, strategy text DEFAULT 'cheapest', as_of timestamptz DEFAULT NULL)
RETURNS text
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'choose_service';

-- The estimate of an order from rows the caller passes (its lines ordered
-- by line_no): it reads no order, only reference data, so views can show
-- estimates to order_mgmt_reader, who may not call estimate_order_delivery
-- (that reads any order as the owner).  Same record and rules.
CREATE FUNCTION @extschema@.estimate_order_window(
    o @extschema@.orders, lines @extschema@.order_lines[],
    OUT ship_earliest date, OUT ship_latest date,
    OUT delivery_earliest date, OUT delivery_latest date,
    OUT known boolean, OUT service_id text, OUT note text)
RETURNS record
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'estimate_order_window';

-- (ROW(o.*)::orders, not o: on Citus the row is a shard's, whose row type
-- the function does not take)
CREATE VIEW @extschema@.orders_at_risk AS
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

CREATE FUNCTION @extschema@.line_ready_trigger() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.ready_at := now();      -- the stock is here, whatever date was expected
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_mgmt_line_ready BEFORE UPDATE OF qty_backordered ON @extschema@.order_lines
    FOR EACH ROW
    WHEN (NEW.qty_backordered < OLD.qty_backordered AND NEW.qty_reserved > OLD.qty_reserved)
    EXECUTE FUNCTION @extschema@.line_ready_trigger();

CREATE FUNCTION @extschema@.late_promise_trigger() RETURNS trigger
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

CREATE TRIGGER order_mgmt_late_promise AFTER UPDATE OF qty_backordered, ready_at
    ON @extschema@.order_lines
    FOR EACH ROW
    WHEN ((NEW.qty_backordered < OLD.qty_backordered OR NEW.ready_at IS DISTINCT FROM OLD.ready_at)
          AND (NEW.qty_backordered = 0 OR NEW.ready_at IS NOT NULL))
    EXECUTE FUNCTION @extschema@.late_promise_trigger();
