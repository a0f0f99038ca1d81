-- PL/pgSQL reference implementation of the delivery promise rules
-- (SPEC.md section 5, README "Delivery promise"), for bench/estimate.sh:
-- the same rules as src/calendar.c + src/promise.c, written the way a
-- PL/pgSQL developer would, reading the reference tables on each call.
CREATE SCHEMA om_ref;

CREATE FUNCTION om_ref.is_business_day(p_day date, p_cal text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_work boolean;
BEGIN
    SELECT e.is_working INTO v_work FROM order_mgmt.calendar_exceptions e
     WHERE e.calendar_id = p_cal AND e.day = p_day;
    IF FOUND THEN
        RETURN v_work;
    END IF;
    RETURN EXISTS (SELECT 1 FROM order_mgmt.calendars c
                    WHERE c.calendar_id = p_cal
                      AND extract(isodow FROM p_day)::int = ANY (c.workdays));
END;
$$;

CREATE FUNCTION om_ref.roll_forward(p_day date, p_cal text) RETURNS date
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d date := p_day;
BEGIN
    FOR i IN 1..3660 LOOP
        IF om_ref.is_business_day(d, p_cal) THEN
            RETURN d;
        END IF;
        d := d + 1;
    END LOOP;
    RAISE EXCEPTION 'calendar "%" has no working day within 3660 days of %', p_cal, p_day
        USING ERRCODE = 'OM020';
END;
$$;

CREATE FUNCTION om_ref.add_business_days(p_day date, p_n int, p_cal text) RETURNS date
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d       date := p_day;
    step    int := CASE WHEN p_n < 0 THEN -1 ELSE 1 END;
    left_   int := abs(p_n);
    scanned int := 0;
BEGIN
    WHILE left_ > 0 LOOP
        d := d + step;
        IF om_ref.is_business_day(d, p_cal) THEN
            left_ := left_ - 1;
            scanned := 0;
        ELSE
            scanned := scanned + 1;
            IF scanned >= 3660 THEN
                RAISE EXCEPTION 'calendar "%" has no working day within 3660 days of %', p_cal, p_day
                    USING ERRCODE = 'OM020';
            END IF;
        END IF;
    END LOOP;
    RETURN d;
END;
$$;

CREATE FUNCTION om_ref.estimate_delivery(
    warehouse_id text, service_id text, country text, postal_code text,
    placed_at timestamptz, ready_at timestamptz DEFAULT NULL,
    OUT ship_earliest date, OUT ship_latest date,
    OUT delivery_earliest date, OUT delivery_latest date)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    w      order_mgmt.warehouses%ROWTYPE;
    s      order_mgmt.services%ROWTYPE;
    v_local timestamp;
    v_day  date;
    v_dest text;
    v_tmin int;
    v_tmax int;
    v_postal text := upper(regexp_replace(coalesce(postal_code, ''), '[^0-9A-Za-z]', '', 'g'));
BEGIN
    SELECT * INTO w FROM order_mgmt.warehouses x WHERE x.warehouse_id = estimate_delivery.warehouse_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'warehouse "%" does not exist', warehouse_id USING ERRCODE = 'OM004';
    END IF;
    SELECT * INTO s FROM order_mgmt.services x WHERE x.service_id = estimate_delivery.service_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'service "%" does not exist', service_id USING ERRCODE = 'OM004';
    END IF;
    v_local := greatest(placed_at, coalesce(ready_at, placed_at)) AT TIME ZONE w.tz;
    v_day := v_local::date;
    IF v_local::time > w.cutoff_local THEN
        v_day := v_day + 1;
    END IF;
    v_day := om_ref.roll_forward(v_day, w.calendar_id);
    ship_earliest := om_ref.add_business_days(v_day, s.handling_min, w.calendar_id);
    ship_latest := om_ref.add_business_days(v_day, s.handling_max, w.calendar_id);
    IF s.pickup_calendar_id IS NOT NULL THEN
        ship_earliest := om_ref.roll_forward(ship_earliest, s.pickup_calendar_id);
        ship_latest := om_ref.roll_forward(ship_latest, s.pickup_calendar_id);
    END IF;
    SELECT z.zone INTO v_dest FROM order_mgmt.zone_rules z
     WHERE z.country = upper(estimate_delivery.country)
       AND left(v_postal, length(z.postal_prefix)) = z.postal_prefix
     ORDER BY length(z.postal_prefix) DESC LIMIT 1;
    v_tmin := s.transit_min;
    v_tmax := s.transit_max;
    SELECT l.transit_min, l.transit_max INTO v_tmin, v_tmax FROM order_mgmt.lanes l
     WHERE l.service_id = s.service_id AND l.origin_zone = w.zone AND l.dest_zone = v_dest;
    IF NOT FOUND THEN
        v_tmin := s.transit_min;
        v_tmax := s.transit_max;
    END IF;
    delivery_earliest := om_ref.roll_forward(
        om_ref.add_business_days(ship_earliest, v_tmin, s.transit_calendar_id), s.delivery_calendar_id);
    delivery_latest := om_ref.roll_forward(
        om_ref.add_business_days(ship_latest, v_tmax, s.transit_calendar_id), s.delivery_calendar_id);
END;
$$;
