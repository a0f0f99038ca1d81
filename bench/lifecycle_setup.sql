-- Fixture for bench/lifecycle.sh: 10k in-transit shipments in three copies:
-- (a) order_mgmt.shipments with the C lifecycle trigger,
-- (b) bench.shipments_b, no trigger (the script writes the event itself),
-- (c) bench.shipments_c with a PL/pgSQL trigger doing the same checks,
-- (d) bench.shipments_d with the C lifecycle trigger alone: since 0.5.0 the
--     real table (a) also has fulfilment's triggers, whose WHEN conditions
--     (a change of status class) are evaluated on every status update; (d)
--     is the setup (a) had up to 0.4.0, the trigger itself.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
DROP EXTENSION IF EXISTS order_mgmt CASCADE;
CREATE EXTENSION order_mgmt;
CREATE SCHEMA bench;

INSERT INTO order_mgmt.customers (customer_id, name) VALUES ('B-C', 'Bench');
INSERT INTO order_mgmt.warehouses (warehouse_id, name) VALUES ('B-W', 'Bench');
INSERT INTO order_mgmt.orders (order_id, customer_id, currency, ship_to, ship_to_country, status)
SELECT i, 'B-C', 'EUR', '{}', 'DE', 'shipped' FROM generate_series(1, 10000) i;
INSERT INTO order_mgmt.shipments (order_id, shipment_id, warehouse_id, status, weight_g, length_mm,
                                  width_mm, height_mm, carrier, service_id, tracking_number)
SELECT i, i, 'B-W', 'in_transit', 500, 300, 200, 100, 'DHL', 'STD', 'T' || i
  FROM generate_series(1, 10000) i;

CREATE TABLE bench.shipments_b (LIKE order_mgmt.shipments INCLUDING ALL);
CREATE TABLE bench.shipments_c (LIKE order_mgmt.shipments INCLUDING ALL);
CREATE TABLE bench.shipments_d (LIKE order_mgmt.shipments INCLUDING ALL);
INSERT INTO bench.shipments_b SELECT * FROM order_mgmt.shipments;
INSERT INTO bench.shipments_c SELECT * FROM order_mgmt.shipments;
INSERT INTO bench.shipments_d SELECT * FROM order_mgmt.shipments;
CREATE TRIGGER order_mgmt_lifecycle BEFORE UPDATE OF status ON bench.shipments_d
    FOR EACH ROW EXECUTE FUNCTION order_mgmt.lifecycle_trigger('shipment', 'shipment_id');

-- The PL/pgSQL reference: the same lookups, checks and event row as the C trigger.
CREATE FUNCTION bench.ref_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_activity text;
    v_requires text[];
    v_col text;
BEGIN
    IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NEW;
    END IF;
    SELECT activity, requires INTO v_activity, v_requires FROM order_mgmt.transitions
     WHERE entity = TG_ARGV[0] AND from_status = OLD.status AND to_status = NEW.status;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM order_mgmt.transitions
                        WHERE entity = TG_ARGV[0] AND from_status = OLD.status) THEN
            RAISE EXCEPTION 'illegal % status change', TG_ARGV[0] USING ERRCODE = 'OM001',
                DETAIL = 'the current status is final.';
        END IF;
        RAISE EXCEPTION 'illegal % status change', TG_ARGV[0] USING ERRCODE = 'OM001';
    END IF;
    FOREACH v_col IN ARRAY v_requires LOOP
        IF to_jsonb(NEW) ->> v_col IS NULL THEN
            RAISE EXCEPTION 'missing %', v_col USING ERRCODE = 'OM002';
        END IF;
    END LOOP;
    INSERT INTO order_mgmt.events (order_id, entity, entity_id, event_type, from_status, to_status,
                                   actor, automated, reason)
    VALUES (NEW.order_id, TG_ARGV[0], NEW.shipment_id, TG_ARGV[0] || '.' || v_activity, OLD.status,
            NEW.status, coalesce(nullif(current_setting('order_mgmt.actor', true), ''), session_user),
            coalesce(nullif(current_setting('order_mgmt.automated', true), '')::bool, false),
            nullif(current_setting('order_mgmt.reason', true), ''));
    RETURN NEW;
END;
$$;
CREATE TRIGGER ref_lifecycle BEFORE UPDATE ON bench.shipments_c
    FOR EACH ROW EXECUTE FUNCTION bench.ref_lifecycle('shipment');
VACUUM ANALYZE;
