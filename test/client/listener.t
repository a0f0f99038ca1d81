#!/usr/bin/python3
"""A real LISTEN client: notifications arrive after commit only, one per
event, in seq order, with the documented JSON payload; none after a
rollback.  Prints TAP."""
import json
import select

import psycopg2

n = 0


def tap(ok, name):
    global n
    n += 1
    print(("ok" if ok else "not ok") + f" {n} - {name}", flush=True)


def drain(conn, wait=0.5):
    out = []
    while select.select([conn], [], [], wait) != ([], [], []):
        conn.poll()
        while conn.notifies:
            out.append(conn.notifies.pop(0))
    return out


admin = psycopg2.connect(dbname="postgres")
admin.autocommit = True
admin.cursor().execute("DROP DATABASE IF EXISTS om_listen")
admin.cursor().execute("CREATE DATABASE om_listen")
writer = psycopg2.connect(dbname="om_listen")
w = writer.cursor()
w.execute("CREATE EXTENSION order_mgmt")
w.execute("INSERT INTO order_mgmt.customers (customer_id, name) VALUES ('L', 'Listener')")
w.execute("INSERT INTO order_mgmt.products (sku, name, list_price) VALUES ('S', 'Sku', 1)")
writer.commit()

listener = psycopg2.connect(dbname="om_listen")
listener.autocommit = True
listener.cursor().execute("LISTEN order_mgmt_events")

w.execute("""SELECT order_mgmt.place_order('L', '[{"sku": "S", "qty": 1}]', '{"country": "DE"}')""")
oid = w.fetchone()[0]
w.execute("SELECT order_mgmt.set_status('order', %s, 'confirmed', 'ok')", (oid,))
tap(drain(listener) == [], "nothing arrives before commit")
writer.commit()
got = drain(listener)
tap(len(got) == 2, f"two events, two notifications after commit (got {len(got)})")
payloads = [json.loads(x.payload) for x in got]
tap(all(x.channel == "order_mgmt_events" for x in got), "channel is order_mgmt_events")
tap(all(set(p) == {"event_id", "seq", "order_id", "event_type", "from", "to"} for p in payloads),
    "payload has exactly event_id, seq, order_id, event_type, from, to")
tap([p["event_type"] for p in payloads] == ["order.placed", "order.confirmed"]
    and payloads[0]["seq"] < payloads[1]["seq"], "in seq order")
w.execute("SELECT event_id::text, seq, order_id, event_type, from_status, to_status "
          "FROM order_mgmt.events ORDER BY seq")
rows = [dict(zip(["event_id", "seq", "order_id", "event_type", "from", "to"], r)) for r in w.fetchall()]
tap(rows == payloads, "payloads equal the event rows")
tap(all(len(x.payload) < 8000 for x in got), "payloads are far below 8000 bytes")

w.execute("SELECT order_mgmt.set_status('order', %s, 'processing')", (oid,))
writer.rollback()
tap(drain(listener) == [], "a rolled-back change sends nothing")
w.execute("SET order_mgmt.notify_mode = off")
w.execute("SELECT order_mgmt.set_status('order', %s, 'processing')", (oid,))
writer.commit()
tap(drain(listener) == [], "notify_mode = off sends nothing")
w.execute("SELECT count(*) FROM order_mgmt.events WHERE event_type = 'order.released'")
tap(w.fetchone()[0] == 1, "... but the event is still written")
print(f"1..{n}")
