#!/usr/bin/python3
"""Durable consumption with notify_mode = commit, on the test cluster:
examples/listener.py against 8 concurrent writers, killed and restarted in
the middle, processes every event at least once; the webhook forwarder posts
every event once it is accepted, with the event_id as Idempotency-Key.
Prints TAP."""
import http.server
import os
import shutil
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stream_scenario import Db, Tap, durable_listener_scenario, start_listener, wait_for  # noqa: E402

tap = Tap()
work = tempfile.mkdtemp(prefix="om_stream_")
db = Db(os.environ.get("PGHOST", "/tmp/order_mgmt_pg"), os.environ.get("PGPORT", "5499"), "om_stream")
db.recreate()
durable_listener_scenario(tap, db, "commit", work)

# The webhook forwarder: the endpoint fails the first request (the event must
# be sent again, not acknowledged), then accepts; it sees every event.
received, lock = [], threading.Lock()


class Hook(http.server.BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        with lock:
            Hook.calls += 1
            fail = Hook.calls == 1
            if not fail:
                received.append(self.headers["Idempotency-Key"])
        self.send_response(500 if fail else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
db.one("SELECT order_mgmt.register_consumer('hook', true)")
db.one("SELECT count(order_mgmt.emit_event(i % 100 + 1, 'order', i % 100 + 1, 'order.note_added'))"
       " FROM generate_series(1, 40) i")
hook = start_listener(db, "hook", None, os.path.join(work, "hook.log"),
                      "--webhook", f"http://127.0.0.1:{server.server_address[1]}/events")
done = wait_for(lambda: db.one("SELECT events_behind FROM order_mgmt.consumer_lag WHERE consumer = 'hook'") == 0)
hook.terminate()
hook.wait(timeout=30)
server.shutdown()
with db.connect() as conn, conn.cursor() as cur:
    cur.execute("SELECT event_id::text FROM (SELECT event_id, tx, seq FROM order_mgmt.events"
                " ORDER BY tx DESC, seq DESC LIMIT 40) x ORDER BY tx, seq")
    last40 = [r[0] for r in cur.fetchall()]
tap.ok(done, "the webhook forwarder drained its cursor")
tap.ok(received == last40, "the endpoint received each new event once, in order, keyed by event_id "
                           f"(after one refused request; {len(received)} accepted)")
tap.ok(Hook.calls == len(received) + 1, "the refused event was sent again, not acknowledged")
if tap.failed == 0:
    shutil.rmtree(work, ignore_errors=True)
else:
    tap.diag(f"kept {work} for inspection")
tap.done()
