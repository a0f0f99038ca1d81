-- Payments and credit: the ledger's totals, the derived payment_status and
-- credit exposure, and the authorize / capture / refund / void API.

-- The customer's credit lock and exposure (src/credit.c).  credit_add's
-- order_id: on a Citus worker the change is an effect of that order, which
-- the coordinator applies (src/citus.c).
CREATE FUNCTION @extschema@.credit_exposure(customer_id text) RETURNS numeric
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'credit_exposure';
CREATE FUNCTION @extschema@.credit_add(customer_id text, delta numeric, order_id bigint DEFAULT NULL)
RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'credit_add';

-- Totals of the payments ledger of one order.  (Helpers are PL/pgSQL, not
-- SQL: a non-inlinable SQL function is planned again on every call.)
CREATE FUNCTION @extschema@.payment_totals(
    p_order bigint, OUT authorized numeric, OUT captured numeric, OUT refunded numeric,
    OUT voided numeric)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    SELECT coalesce(sum(p.amount) FILTER (WHERE p.kind = 'authorization'), 0),
           coalesce(sum(p.amount) FILTER (WHERE p.kind = 'capture'), 0),
           coalesce(sum(p.amount) FILTER (WHERE p.kind = 'refund'), 0),
           coalesce(sum(p.amount) FILTER (WHERE p.kind = 'void'), 0)
      INTO authorized, captured, refunded, voided
      FROM @extschema@.payments p
     WHERE p.order_id = p_order AND p.status = 'succeeded';
END;
$$;

-- payment_status from the ledger totals and the order total.
CREATE FUNCTION @extschema@.derive_payment_status(
    total numeric, authorized numeric, captured numeric, refunded numeric, voided numeric)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RETURN CASE
        WHEN refunded > 0 AND refunded >= captured THEN 'refunded'
        WHEN refunded > 0 THEN 'partially_refunded'
        WHEN captured > 0 AND captured >= total THEN 'paid'
        WHEN captured > 0 THEN 'partially_captured'
        WHEN authorized > 0 AND voided >= authorized THEN 'voided'
        WHEN authorized > 0 THEN 'authorized'
        ELSE 'unpaid'
    END;
END;
$$;

-- What an order adds to its customer's credit exposure: the part of its
-- total not captured yet, from its credit approval on, while it is not
-- cancelled.  The one home of the exposure rule; credit_accounts holds the
-- sum per customer.
CREATE FUNCTION @extschema@.order_exposure(p_total numeric, p_approved timestamptz,
                                           p_status text, p_captured numeric)
RETURNS numeric
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN p_approved IS NULL
                  OR @extschema@.status_class('order', p_status) = 'cancelled' THEN 0
                ELSE greatest(p_total - p_captured, 0) END
$$;

/*
 * BEFORE INSERT OR UPDATE on orders of what money depends on: clients
 * cannot write payment_status or exposure; whatever they set, both are
 * recomputed from the payments ledger, and a change of exposure is added
 * to the customer's credit account (credit_add takes the customer's credit
 * lock).  An insert starts from an empty ledger, as a restore does before
 * its payments arrive, so a restore rebuilds credit_accounts exactly.
 */
CREATE FUNCTION @extschema@.orders_money()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.payment_status := 'unpaid';
        NEW.exposure := @extschema@.order_exposure(NEW.total, NEW.credit_approved_at, NEW.status, 0);
        IF NEW.exposure <> 0 THEN
            PERFORM @extschema@.credit_add(NEW.customer_id, NEW.exposure, NEW.order_id);
        END IF;
        RETURN NEW;
    END IF;
    -- a status move that neither enters nor leaves the cancelled class changes nothing here
    IF NEW.payment_status IS NOT DISTINCT FROM OLD.payment_status AND NEW.total = OLD.total
       AND NEW.credit_approved_at IS NOT DISTINCT FROM OLD.credit_approved_at
       AND NEW.exposure = OLD.exposure AND NEW.customer_id = OLD.customer_id
       AND (@extschema@.status_class('order', OLD.status) = 'cancelled')
           = (@extschema@.status_class('order', NEW.status) = 'cancelled') THEN
        RETURN NEW;
    END IF;
    t := @extschema@.payment_totals(NEW.order_id);
    NEW.payment_status := @extschema@.derive_payment_status(NEW.total, t.authorized, t.captured,
                                                            t.refunded, t.voided);
    NEW.exposure := @extschema@.order_exposure(NEW.total, NEW.credit_approved_at, NEW.status,
                                               t.captured);
    IF NEW.customer_id <> OLD.customer_id THEN
        PERFORM @extschema@.credit_add(OLD.customer_id, -OLD.exposure, NEW.order_id);
        PERFORM @extschema@.credit_add(NEW.customer_id, NEW.exposure, NEW.order_id);
    ELSIF NEW.exposure <> OLD.exposure THEN
        PERFORM @extschema@.credit_add(NEW.customer_id, NEW.exposure - OLD.exposure, NEW.order_id);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_mgmt_money
    BEFORE INSERT OR UPDATE OF payment_status, total, status, credit_approved_at, exposure,
                               customer_id ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.orders_money();

-- AFTER each change of the payments ledger, by any path (the API, a
-- restore, the owner's hand): recompute the order's payment_status.
CREATE FUNCTION @extschema@.payments_changed()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE @extschema@.orders o SET payment_status = NULL WHERE o.order_id = OLD.order_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE @extschema@.orders o SET payment_status = NULL WHERE o.order_id = NEW.order_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER order_mgmt_payment_status
    AFTER INSERT OR UPDATE OR DELETE ON @extschema@.payments
    FOR EACH ROW EXECUTE FUNCTION @extschema@.payments_changed();

CREATE FUNCTION @extschema@.record_payment(
    p_order bigint, p_kind text, p_amount numeric, p_psp text, p_return bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    o       @extschema@.orders;
    p       @extschema@.payments;
    t       record;
    v_id    bigint;
    k       @extschema@.business_keys;
    v_amount numeric := p_amount;
    v_limit numeric;
BEGIN
    IF p_psp IS NULL OR btrim(p_psp) = '' THEN
        RAISE EXCEPTION 'psp_reference must not be null or empty' USING ERRCODE = '22004';
    END IF;
    IF length(p_psp) > 200 THEN
        RAISE EXCEPTION 'psp_reference is too long' USING ERRCODE = '22001',
              DETAIL = format('It has %s characters; at most 200 are allowed.', length(p_psp));
    END IF;
    IF v_amount IS NULL AND p_kind <> 'void' THEN
        RAISE EXCEPTION 'amount must not be null' USING ERRCODE = '22004';
    END IF;
    IF v_amount IS NOT NULL AND (v_amount <= 0 OR v_amount <> round(v_amount, 2)
                                 OR v_amount >= 1e12) THEN
        RAISE EXCEPTION 'invalid payment amount %', v_amount USING ERRCODE = '22023',
              DETAIL = 'An amount is positive, below 10^12, with at most two decimals.';
    END IF;
    o := @extschema@.lock_order(p_order);

    -- a repeated psp_reference is the same payment, not a second one (on
    -- Citus the key's claim names it: payments is distributed by order)
    IF @extschema@.citus_active() THEN
        SELECT * INTO k FROM @extschema@.business_keys x
         WHERE x.key = p_psp AND x.kind = 'psp_reference';
        IF k.key IS NOT NULL THEN
            SELECT * INTO p FROM @extschema@.payments x
             WHERE x.order_id = k.order_id AND x.payment_id = k.entity_id;
        END IF;
    ELSE
        SELECT * INTO p FROM @extschema@.payments x WHERE x.psp_reference = p_psp;
    END IF;
    IF p.payment_id IS NOT NULL THEN
        IF p.order_id <> o.order_id OR p.kind <> p_kind
           OR (v_amount IS NOT NULL AND p.amount <> v_amount)
           OR p.return_id IS DISTINCT FROM p_return THEN
            RAISE EXCEPTION 'psp_reference "%" is already used by another payment', p_psp
                USING ERRCODE = 'OM005',
                      DETAIL = format('Payment %s: %s of %s on order %s.', p.payment_id, p.kind,
                                      p.amount, p.order_id);
        END IF;
        RETURN p.payment_id;
    END IF;

    IF p_kind IN ('authorization', 'capture')
       AND @extschema@.status_class('order', o.status) = 'cancelled' THEN
        RAISE EXCEPTION 'order % is %', o.order_id, o.status USING ERRCODE = 'OM010',
              DETAIL = format('No %s is taken on a %s order.', p_kind, o.status);
    END IF;
    t := @extschema@.payment_totals(o.order_id);
    v_limit := CASE p_kind
        WHEN 'capture' THEN t.authorized - t.voided - t.captured
        WHEN 'void' THEN t.authorized - t.voided - t.captured
        WHEN 'refund' THEN t.captured - t.refunded
    END;
    IF p_kind = 'void' THEN
        v_amount := coalesce(v_amount, v_limit);
    END IF;
    IF v_limit IS NOT NULL AND v_amount > v_limit THEN
        RAISE EXCEPTION '% of % exceeds what order % allows', p_kind, coalesce(v_amount, 0),
                        o.order_id
            USING ERRCODE = 'OM015',
                  DETAIL = format('Order %s: authorized %s, captured %s, refunded %s, voided %s; at most %s can be %s.',
                                  o.order_id, t.authorized, t.captured, t.refunded, t.voided,
                                  v_limit, CASE p_kind WHEN 'capture' THEN 'captured'
                                                       WHEN 'void' THEN 'voided'
                                                       ELSE 'refunded' END);
    END IF;
    IF v_amount <= 0 THEN
        RAISE EXCEPTION 'nothing to void on order %', o.order_id USING ERRCODE = 'OM015',
              DETAIL = format('Order %s has no open authorization.', o.order_id);
    END IF;

    v_id := nextval('@extschema@.payments_payment_id_seq');
    IF @extschema@.citus_active() THEN
        k := @extschema@.claim_key('psp_reference', p_psp, o.order_id, v_id, NULL);
        IF k.entity_id <> v_id THEN
            v_id := NULL;       -- claimed meanwhile for another order
        END IF;
    END IF;
    IF v_id IS NOT NULL THEN
        INSERT INTO @extschema@.payments AS x
            (order_id, payment_id, kind, amount, psp_reference, return_id, actor)
        VALUES (o.order_id, v_id, p_kind, v_amount, p_psp, p_return, @extschema@.current_actor())
        ON CONFLICT DO NOTHING
        RETURNING x.payment_id INTO v_id;
    END IF;
    IF v_id IS NULL THEN
        -- the same reference was committed meanwhile for another order
        RAISE EXCEPTION 'psp_reference "%" is already used by another payment', p_psp
            USING ERRCODE = 'OM005';
    END IF;
    -- (order_mgmt_payment_status on payments has recomputed payment_status and exposure)
    PERFORM @extschema@.emit_event(o.order_id, 'payment', v_id,
        'payment.' || CASE p_kind WHEN 'authorization' THEN 'authorized'
                                  WHEN 'capture' THEN 'captured'
                                  WHEN 'refund' THEN 'refunded' ELSE 'voided' END,
        NULL, NULL, NULL,
        jsonb_build_object('amount', v_amount, 'psp_reference', p_psp, 'return_id', p_return));

    -- an authorization that now covers an order awaiting payment confirms it
    IF p_kind = 'authorization' AND o.status = 'awaiting_payment' THEN
        PERFORM @extschema@.confirm_automated(o.order_id);
    END IF;
    RETURN v_id;
END;
$$;

CREATE FUNCTION @extschema@.authorize_payment(order_id bigint, amount numeric, psp_reference text)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.record_payment(order_id, 'authorization', amount, psp_reference, NULL)
$$;

CREATE FUNCTION @extschema@.capture_payment(order_id bigint, amount numeric, psp_reference text)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.record_payment(order_id, 'capture', amount, psp_reference, NULL)
$$;

CREATE FUNCTION @extschema@.refund_payment(order_id bigint, amount numeric, psp_reference text,
                                           return_id bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.record_payment(order_id, 'refund', amount, psp_reference, return_id)
$$;

-- amount NULL voids everything authorized and not yet captured.
CREATE FUNCTION @extschema@.void_payment(order_id bigint, amount numeric, psp_reference text)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.record_payment(order_id, 'void', amount, psp_reference, NULL)
$$;
