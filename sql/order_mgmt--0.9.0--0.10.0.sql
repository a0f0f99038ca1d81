/* order_mgmt 0.9.0 -> 0.10.0
 * - normalize_lines probes products by key for each line: as a join, the
 *   planner (which guesses 100 JSON elements) hashed the whole catalog for
 *   every order while the catalog was small (issue 9, bench/RESULTS.md). */

\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit

CREATE OR REPLACE FUNCTION @extschema@.normalize_lines(lines jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l     record;
    v_qty numeric;
    v_price numeric;
    out   jsonb[] := '{}';
BEGIN
    IF lines IS NULL OR jsonb_typeof(lines) <> 'array' OR jsonb_array_length(lines) = 0 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array'
            USING ERRCODE = '22023', DETAIL = format('Got %s.', coalesce(lines::text, 'NULL'));
    END IF;
    IF jsonb_array_length(lines) > 1000 THEN
        RAISE EXCEPTION 'too many order lines'
            USING ERRCODE = '22023', DETAIL = 'An order has at most 1000 lines.';
    END IF;
    -- one key probe of products per line: as a plain join the planner,
    -- which guesses 100 elements, hashes the whole catalog for each order
    -- while it is small (LIMIT keeps the subquery from being flattened)
    FOR l IN SELECT e.n, e.value AS v, p.sku IS NOT NULL AS known, p.list_price
               FROM jsonb_array_elements(lines) WITH ORDINALITY e(value, n)
               LEFT JOIN LATERAL (SELECT x.sku, x.list_price FROM @extschema@.products x
                                   WHERE x.sku = e.value->>'sku' LIMIT 1) p ON true
              ORDER BY e.n LOOP
        IF jsonb_typeof(l.v) <> 'object' OR jsonb_typeof(l.v->'sku') IS DISTINCT FROM 'string'
           OR jsonb_typeof(l.v->'qty') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'order line % is malformed', l.n
                USING ERRCODE = '22023',
                      DETAIL = format('Each line needs a string "sku" and a numeric "qty"; got %s.', l.v);
        END IF;
        v_qty := (l.v->>'qty')::numeric;
        IF v_qty <= 0 OR v_qty <> trunc(v_qty) OR v_qty > 1000000 THEN
            RAISE EXCEPTION 'order line % has an invalid quantity', l.n
                USING ERRCODE = '22023',
                      DETAIL = format('qty must be a whole number between 1 and 1000000; got %s.', l.v->>'qty');
        END IF;
        IF NOT l.known THEN
            RAISE EXCEPTION 'sku "%" does not exist', l.v->>'sku'
                USING ERRCODE = 'OM004', DETAIL = format('Order line %s names a product that does not exist.', l.n);
        END IF;
        v_price := coalesce((l.v->>'unit_price')::numeric, l.list_price);
        IF v_price IS NULL OR v_price = 'NaN' OR v_price < 0 OR v_price >= 1e12
           OR v_price <> round(v_price, 2) THEN
            RAISE EXCEPTION 'order line % has no valid unit price', l.n
                USING ERRCODE = '22023',
                      DETAIL = format('A unit price is a number from 0 to 10^12 with at most two decimals; product "%s" has list price %s and the line gives %s.',
                                      l.v->>'sku', coalesce(l.list_price::text, 'none'),
                                      coalesce(l.v->>'unit_price', 'none')),
                      HINT = 'Pass "unit_price" in the line.';
        END IF;
        out := out || jsonb_build_object('line_no', l.n, 'sku', l.v->>'sku', 'qty', v_qty::int,
                                         'unit_price', v_price);
    END LOOP;
    RETURN to_jsonb(out);
END;
$$;

