#!/usr/bin/python3
"""Carrier checkpoints from real sessions (issue 10).  The same 6
checkpoints of a parcel (in_transit, delayed, in_transit, out_for_delivery,
failed_attempt, then delivered; and for a parcel still on the way, a last
in_transit instead) are delivered to record_tracking_event in order,
reversed, each twice, and from 4 concurrent sessions (each sending all six
in its own order; READ COMMITTED and REPEATABLE READ; and the twelve calls of
"each twice" split over the sessions).  Every delivery must end in the same
shipment and order state as the in-order one, with each checkpoint stored
once and reported new (true) exactly once.  Each call is its own
transaction, as a carrier webhook's would be.  Prints TAP."""
import random
import threading

import psycopg2
import psycopg2.extensions

DB = "om_tracking"
SESSIONS = 4
ROUNDS = 4
# Two journeys of six checkpoints: one ends delivered (the order rolls up),
# one is still on the way (only the precedence of checkpoints decides where
# the parcel is: a final checkpoint would hide a wrong precedence).
JOURNEYS = {
    "delivered": [
        ("in_transit", "2030-01-07 08:00+01", "Berlin hub"),
        ("delayed", "2030-01-07 20:00+01", "Berlin hub"),
        ("in_transit", "2030-01-08 06:00+01", "Leipzig hub"),
        ("out_for_delivery", "2030-01-08 09:00+01", "Munich"),
        ("failed_attempt", "2030-01-08 14:00+01", "Munich"),
        ("delivered", "2030-01-09 11:00+01", "front door"),
    ],
    "on the way": [
        ("in_transit", "2030-01-07 08:00+01", "Berlin hub"),
        ("delayed", "2030-01-07 20:00+01", "Berlin hub"),
        ("in_transit", "2030-01-08 06:00+01", "Leipzig hub"),
        ("out_for_delivery", "2030-01-08 09:00+01", "Munich"),
        ("failed_attempt", "2030-01-08 14:00+01", "Munich"),
        ("in_transit", "2030-01-08 18:00+01", "back at the Munich depot"),
    ],
}
n = 0


def tap(ok, name, diag=None):
    global n
    n += 1
    print(("ok" if ok else "not ok") + f" {n} - {name}", flush=True)
    if not ok and diag:
        for line in str(diag).splitlines():
            print("# " + line, flush=True)


def connect(isolation=None):
    conn = psycopg2.connect(dbname=DB)
    conn.autocommit = True
    if isolation:
        conn.set_session(isolation_level=isolation, autocommit=True)
    return conn


admin = psycopg2.connect(dbname="postgres")
admin.autocommit = True
with admin.cursor() as cur:
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    cur.execute(f"CREATE DATABASE {DB}")

setup = connect()
with setup.cursor() as cur:
    cur.execute("SET client_min_messages = warning")
    cur.execute("CREATE EXTENSION order_mgmt")
    cur.execute("""
        SET search_path = order_mgmt;
        INSERT INTO customers (customer_id, name, payment_terms, credit_limit)
            VALUES ('TC', 'Tracking Ltd', 'credit', 100000000);
        INSERT INTO products (sku, name, list_price) VALUES ('TA', 'a', 1), ('TB', 'b', 2);
        INSERT INTO calendars (calendar_id, tz) VALUES ('CAL', 'Europe/Berlin');
        INSERT INTO warehouses (warehouse_id, name, tz, calendar_id, zone)
            VALUES ('W', 'w', 'Europe/Berlin', 'CAL', 'DE');
        INSERT INTO services (service_id, carrier, transit_min, transit_max, transit_calendar_id,
                              delivery_calendar_id) VALUES ('STD', 'DHL', 1, 3, 'CAL', 'CAL');
        INSERT INTO zone_rules (country, zone) VALUES ('DE', 'DE');
        SELECT receive_stock('W', 'TA', 1000), receive_stock('W', 'TB', 1000);
        -- a dispatched shipment of a new order (two lines), tracking number trk
        CREATE FUNCTION public.dispatched(trk text) RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            o bigint := order_mgmt.place_order('TC', '[{"sku": "TA", "qty": 2}, {"sku": "TB", "qty": 1}]',
                                               '{"country": "DE", "postal_code": "80331"}');
            s bigint;
        BEGIN
            PERFORM order_mgmt.confirm_order(o);
            PERFORM order_mgmt.release_to_warehouse(o);
            SELECT shipment_id INTO s FROM order_mgmt.shipments WHERE order_id = o;
            PERFORM order_mgmt.start_picking(s);
            PERFORM order_mgmt.pack_shipment(s, 900, 300, 200, 100);
            PERFORM order_mgmt.label_shipment(s, 'DHL', 'STD', trk);
            PERFORM order_mgmt.dispatch_shipment(s);
            RETURN s;
        END $$;
    """)


def new_parcel(name):
    with setup.cursor() as cur:
        cur.execute("SELECT public.dispatched(%s)", (name,))
        return cur.fetchone()[0]


def calls(journey, trk, order):
    """The record_tracking_event arguments of checkpoints `order` (indexes)."""
    cps = JOURNEYS[journey]
    return [(trk, f"{trk}-E{i}", cps[i][0], cps[i][1], cps[i][2]) for i in order]


def send(conn, todo, results, errors):
    with conn.cursor() as cur:
        for args in todo:
            for attempt in range(50):
                try:
                    cur.execute("SELECT order_mgmt.record_tracking_event(%s, %s, %s, %s, %s)", args)
                    results.append((args[1], cur.fetchone()[0]))
                    break
                except psycopg2.errors.SerializationFailure:
                    continue    # a REPEATABLE READ snapshot older than the order row: retry
                except psycopg2.Error as e:
                    errors.append(f"{args[1]}: {e.pgcode} {e}")
                    break
            else:
                errors.append(f"{args[1]}: still failing after 50 retries")


def run(parts, isolation=None):
    """Send each list of calls from its own session, all starting together."""
    conns = [connect(isolation) for _ in parts]
    results, errors = [], []
    barrier = threading.Barrier(len(parts))

    def worker(conn, todo):
        barrier.wait()
        send(conn, todo, results, errors)

    threads = [threading.Thread(target=worker, args=(c, p)) for c, p in zip(conns, parts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    return results, errors


STATE = """
SELECT s.status, s.delivered_at, s.estimated_delivery_earliest, s.estimated_delivery_latest,
       t.code, t.occurred_at, t.location, o.status,
       (SELECT array_agg(array[l.qty_shipped, l.qty_delivered] ORDER BY l.line_no)
          FROM order_mgmt.order_lines l WHERE l.order_id = s.order_id),
       (SELECT array_agg(array[x.code, x.occurred_at::text, x.location] ORDER BY x.occurred_at)
          FROM order_mgmt.tracking_events x WHERE x.order_id = s.order_id AND x.shipment_id = s.shipment_id)
  FROM order_mgmt.shipments s
  JOIN order_mgmt.orders o USING (order_id)
  LEFT JOIN order_mgmt.tracking_events t
         ON t.order_id = s.order_id AND t.tracking_event_id = s.last_checkpoint_id
 WHERE s.shipment_id = %s"""


def state(shipment):
    with setup.cursor() as cur:
        cur.execute(STATE, (shipment,))
        return cur.fetchone()


def stored(shipment):
    with setup.cursor() as cur:
        cur.execute("""SELECT count(*), count(DISTINCT carrier_event_id),
                              (SELECT count(*) FROM order_mgmt.events e
                                WHERE e.entity = 'shipment' AND e.entity_id = %s
                                  AND e.event_type = 'shipment.checkpoint')
                         FROM order_mgmt.tracking_events WHERE shipment_id = %s""",
                    (shipment, shipment))
        return cur.fetchone()


def check(name, shipment, results, errors, reference):
    got = state(shipment)
    tap(not errors, f"{name}: no call failed", "\n".join(errors[:5]))
    tap(got == reference, f"{name}: the same shipment and order state as in order",
        f"got:  {got}\nwant: {reference}")
    count, distinct, events = stored(shipment)
    tap(count == 6 and distinct == 6 and events == 6,
        f"{name}: each checkpoint stored once, one checkpoint event each",
        f"stored {count}, distinct {distinct}, events {events}")
    new = {}
    for cid, fresh in results:
        new[cid] = new.get(cid, 0) + (1 if fresh else 0)
    tap(len(new) == 6 and all(v == 1 for v in new.values()),
        f"{name}: each checkpoint reported new exactly once ({len(results)} calls)", new)


rng = random.Random(10)
for journey, final in (("delivered", ("delivered", "delivered")), ("on the way", ("in_transit", "shipped"))):
    j = journey.replace(" ", "")
    ref_ship = new_parcel(f"{j}-ORDER")
    res, err = run([calls(journey, f"{j}-ORDER", range(6))])
    reference = state(ref_ship)
    tap(not err and (reference[0], reference[7]) == final,
        f"{journey}, in order: the parcel is {final[0]}, the order {final[1]}", err or reference)
    count, distinct, events = stored(ref_ship)
    tap(count == 6 and events == 6, f"{journey}, in order: six checkpoints stored, six checkpoint events")

    s = new_parcel(f"{j}-REV")
    res, err = run([calls(journey, f"{j}-REV", reversed(range(6)))])
    check(f"{journey}, reversed", s, res, err, reference)

    s = new_parcel(f"{j}-TWICE")
    res, err = run([calls(journey, f"{j}-TWICE", [i for i in range(6) for _ in (0, 1)])])
    check(f"{journey}, each twice", s, res, err, reference)

    for r in range(ROUNDS):
        for isolation, label in ((None, "read committed"), ("REPEATABLE READ", "repeatable read")):
            trk = f"{j}-C{r}-{label[:4]}"
            s = new_parcel(trk)
            orders = [list(range(6)), list(reversed(range(6)))]
            for _ in range(SESSIONS - 2):
                o = list(range(6))
                rng.shuffle(o)
                orders.append(o)
            res, err = run([calls(journey, trk, o) for o in orders], isolation)
            check(f"{journey}, {SESSIONS} sessions ({label}, round {r + 1}), each sending all six",
                  s, res, err, reference)
        trk = f"{j}-S{r}"
        s = new_parcel(trk)
        twice = [i for i in range(6) for _ in (0, 1)]
        rng.shuffle(twice)
        res, err = run([calls(journey, trk, twice[k::SESSIONS]) for k in range(SESSIONS)])
        check(f"{journey}, {SESSIONS} sessions (round {r + 1}), each checkpoint twice, split over the sessions",
              s, res, err, reference)

with setup.cursor() as cur:
    cur.execute("""SELECT bool_and(s.on_hand = m.oh AND s.reserved = m.r)
                     FROM order_mgmt.stock s
                     JOIN (SELECT warehouse_id, sku, sum(on_hand_delta) oh, sum(reserved_delta) r
                             FROM order_mgmt.inventory_movements GROUP BY 1, 2) m USING (warehouse_id, sku)""")
    tap(cur.fetchone()[0], "the stock ledger sums to the stock rows")
    cur.execute("""SELECT count(*) FILTER (WHERE o.status = 'delivered' AND l.qty_delivered = l.qty),
                          count(*) FILTER (WHERE o.status = 'shipped' AND l.qty_delivered = 0),
                          count(*) FILTER (WHERE l.qty_shipped = l.qty), count(*)
                     FROM order_mgmt.order_lines l JOIN order_mgmt.orders o USING (order_id)""")
    dl, sh, shipped, total = cur.fetchone()
    tap(dl + sh == total and shipped == total and dl == sh,
        "every line is shipped once; delivered once on the delivered journey, not at all on the other",
        (dl, sh, shipped, total))
setup.close()
with admin.cursor() as cur:
    cur.execute(f"DROP DATABASE {DB}")
print(f"1..{n}")
