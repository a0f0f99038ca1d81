-- The delivery promise: the C engine (calendars, estimates, services),
-- the promise stored on orders and shipments, and orders_at_risk.

CREATE FUNCTION @extschema@.reference_data_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'reference_data_changed';

CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.calendars
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.reference_data_changed();

CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.calendar_exceptions
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.reference_data_changed();

CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.warehouses
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.reference_data_changed();

CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.services
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.reference_data_changed();

CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.lanes
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.reference_data_changed();

CREATE TRIGGER order_mgmt_reference_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.zone_rules
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.reference_data_changed();

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

-- A new shipment takes the order's promise and its own estimate: from its
-- warehouse, with its service (else the order's, else the cheapest that
-- meets the promise, else the fastest), starting at created_at.
CREATE FUNCTION @extschema@.shipment_promise_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o   record;
    svc text;
    est record;
BEGIN
    SELECT ord.promised_delivery_earliest, ord.promised_delivery_latest, ord.service_id,
           ord.ship_to_country, ord.ship_to_postal, ord.placed_at
      INTO o FROM @extschema@.orders ord WHERE ord.order_id = NEW.order_id;
    IF NOT FOUND THEN
        RETURN NEW;             -- the foreign key reports it
    END IF;
    IF NEW.promised_delivery_earliest IS NULL AND NEW.promised_delivery_latest IS NULL THEN
        NEW.promised_delivery_earliest := o.promised_delivery_earliest;
        NEW.promised_delivery_latest := o.promised_delivery_latest;
    END IF;
    IF NEW.estimated_delivery_earliest IS NOT NULL OR NEW.estimated_delivery_latest IS NOT NULL
       OR NOT EXISTS (SELECT 1 FROM @extschema@.warehouses w
                       WHERE w.warehouse_id = NEW.warehouse_id AND w.calendar_id IS NOT NULL) THEN
        RETURN NEW;
    END IF;
    svc := coalesce(NEW.service_id, o.service_id);
    IF svc IS NULL THEN
        svc := coalesce(
            @extschema@.best_service(NEW.warehouse_id, o.ship_to_country, o.ship_to_postal,
                                     greatest(o.placed_at, NEW.created_at), NULL,
                                     NEW.promised_delivery_latest, 'cheapest'),
            @extschema@.best_service(NEW.warehouse_id, o.ship_to_country, o.ship_to_postal,
                                     greatest(o.placed_at, NEW.created_at), NULL, NULL,
                                     'fastest'));
    END IF;
    IF svc IS NULL OR NOT EXISTS (SELECT 1 FROM @extschema@.services s WHERE s.service_id = svc) THEN
        RETURN NEW;
    END IF;
    est := @extschema@.estimate_delivery(NEW.warehouse_id, svc, o.ship_to_country,
                                         o.ship_to_postal, greatest(o.placed_at, NEW.created_at));
    NEW.estimated_delivery_earliest := est.delivery_earliest;
    NEW.estimated_delivery_latest := est.delivery_latest;
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_mgmt_promise BEFORE INSERT ON @extschema@.shipments
    FOR EACH ROW EXECUTE FUNCTION @extschema@.shipment_promise_trigger();

CREATE FUNCTION @extschema@.choose_service(
    shipment_id bigint, strategy text DEFAULT 'cheapest', as_of timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s       record;
    v_start timestamptz;
    v_svc   text;
BEGIN
    IF shipment_id IS NULL OR strategy IS NULL THEN
        RAISE EXCEPTION 'shipment_id and strategy must not be null' USING ERRCODE = '22004';
    END IF;
    IF strategy NOT IN ('cheapest', 'fastest') THEN
        RAISE EXCEPTION 'unknown strategy "%"', strategy
            USING ERRCODE = '22023', DETAIL = 'strategy must be cheapest or fastest.';
    END IF;
    SELECT sh.warehouse_id, sh.created_at, o.placed_at, o.ship_to_country, o.ship_to_postal,
           coalesce(sh.promised_delivery_latest, o.promised_delivery_latest) AS deliver_by
      INTO s
      FROM @extschema@.shipments sh JOIN @extschema@.orders o USING (order_id)
     WHERE sh.shipment_id = choose_service.shipment_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'shipment % does not exist', shipment_id USING ERRCODE = 'OM004';
    END IF;
    v_start := greatest(coalesce(as_of, now()), s.placed_at);
    v_svc := @extschema@.best_service(s.warehouse_id, s.ship_to_country, s.ship_to_postal,
                                      v_start, NULL, s.deliver_by, strategy);
    IF v_svc IS NULL THEN
        RAISE EXCEPTION 'no service can deliver shipment % by %', shipment_id,
                        coalesce(s.deliver_by::text, 'any date')
            USING ERRCODE = 'OM021',
                  DETAIL = format('Warehouse "%s", destination %s %s, handling from %s.',
                                  s.warehouse_id, s.ship_to_country,
                                  coalesce(s.ship_to_postal, ''), v_start),
                  HINT = 'Add a faster service or lane, or renegotiate the promise.';
    END IF;
    RETURN v_svc;
END;
$$;

CREATE VIEW @extschema@.orders_at_risk AS
SELECT o.order_id, o.status, o.promised_delivery_latest,
       e.delivery_latest AS estimated_delivery_latest,
       e.delivery_latest - o.promised_delivery_latest AS days_late,
       CASE WHEN NOT e.known THEN 'unknown: ' || e.note
            ELSE 'late' END AS risk
  FROM @extschema@.orders o
 CROSS JOIN LATERAL @extschema@.estimate_order_delivery(o.order_id) e
 WHERE o.status IN ('awaiting_payment', 'confirmed', 'processing', 'on_hold')
   AND o.promised_delivery_latest IS NOT NULL
   AND (NOT e.known OR e.delivery_latest > o.promised_delivery_latest);

CREATE FUNCTION @extschema@.line_ready_trigger() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.qty_backordered < OLD.qty_backordered AND NEW.qty_reserved > OLD.qty_reserved THEN
        NEW.ready_at := greatest(now(), OLD.ready_at);
        IF NEW.ready_at > now() THEN
            NEW.ready_at := now();      -- the stock is here: earlier than expected
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_mgmt_line_ready BEFORE UPDATE OF qty_backordered ON @extschema@.order_lines
    FOR EACH ROW EXECUTE FUNCTION @extschema@.line_ready_trigger();

CREATE FUNCTION @extschema@.late_promise_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE @extschema@.orders o
       SET promised_ship_earliest = e.ship_earliest, promised_ship_latest = e.ship_latest,
           promised_delivery_earliest = e.delivery_earliest,
           promised_delivery_latest = e.delivery_latest
      FROM @extschema@.estimate_order_delivery(NEW.order_id) e
     WHERE o.order_id = NEW.order_id AND e.known
       AND o.status IN ('confirmed', 'processing')
       AND o.promised_delivery_latest IS NULL;
    RETURN NULL;
END;
$$;

CREATE TRIGGER order_mgmt_late_promise AFTER UPDATE OF qty_backordered, ready_at
    ON @extschema@.order_lines
    FOR EACH ROW WHEN (NEW.qty_backordered = 0 OR NEW.ready_at IS NOT NULL)
    EXECUTE FUNCTION @extschema@.late_promise_trigger();
