#!/usr/bin/python3
"""Notification latency: commit -> listener.

Usage: stream_latency.py DBNAME MODE COUNT [INTERVAL_MS]   (PGHOST/PGPORT/PGUSER)

COUNT probes, one every INTERVAL_MS: a writer with order_mgmt.notify_mode =
MODE appends one event (order_id 0, so its notification is told apart from
other writers') in its own transaction; the time from COMMIT returning to the
client until a listener on another connection (a thread of this process, same
clock) has received the event's notification.  Prints one line:
'latency MODE n=... p50=... p90=... p99=... max=... ms' (negative values are
possible in commit mode, where the notification leaves during COMMIT)."""
import select
import statistics
import sys
import threading
import time

import psycopg2

db, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
interval = (float(sys.argv[4]) if len(sys.argv) > 4 else 20.0) / 1000
received = {}
stop = threading.Event()


def listen():
    conn = psycopg2.connect(dbname=db)
    conn.autocommit = True
    conn.cursor().execute("LISTEN order_mgmt_events")
    ready.set()
    while not stop.is_set():
        if select.select([conn], [], [], 0.2) == ([], [], []):
            continue
        conn.poll()
        now = time.perf_counter()
        for n in conn.notifies:
            if '"order_id":0,' in n.payload:
                seq = int(n.payload.split('"seq":', 1)[1].split(",", 1)[0])
                received.setdefault(seq, now)
        conn.notifies.clear()
    conn.close()


ready = threading.Event()
t = threading.Thread(target=listen, daemon=True)
t.start()
ready.wait()
w = psycopg2.connect(dbname=db, options=f"-c order_mgmt.notify_mode={mode}")
cur = w.cursor()
sent = {}
for _ in range(count):
    cur.execute("SELECT order_mgmt.emit_event(0, 'order', 0, 'order.note_added')")
    seq = cur.fetchone()[0]
    w.commit()
    sent[seq] = time.perf_counter()
    time.sleep(interval)
deadline = time.monotonic() + 30
while len(received) < len(sent) and time.monotonic() < deadline:
    time.sleep(0.05)
stop.set()
t.join()
lat = sorted((received[s] - sent[s]) * 1000 for s in sent if s in received)
lost = len(sent) - len(lat)
if not lat:
    print(f"latency {mode} n=0 lost={lost}")
    sys.exit(1)
q = statistics.quantiles(lat, n=100, method="inclusive")
print(f"latency {mode} n={len(lat)} lost={lost} p50={q[49]:.2f} p90={q[89]:.2f} p99={q[98]:.2f} "
      f"max={lat[-1]:.2f} ms")
