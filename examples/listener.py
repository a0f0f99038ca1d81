#!/usr/bin/python3
"""A durable order_mgmt event consumer: at-least-once, in order, restartable.

It LISTENs on channel order_mgmt_events only to wake up; the events come from
its cursor: fetch_events(consumer, batch) returns the next events in (tx, seq)
order, the handler processes them, and ack_events moves the cursor past the
last one.  A crash between handling and acknowledging means the batch is
handed out again after the restart, so the handler must be idempotent: dedupe
on event_id (or make the effect idempotent, e.g. an upsert keyed by it).

    examples/listener.py [--dsn DSN] [--consumer NAME] [--batch N] [--poll SECONDS]
                         [--output FILE | --webhook URL]

Connection: the DSN plus the libpq environment (PGHOST, PGPORT, PGDATABASE,
PGUSER, ...); the role needs order_mgmt_operator.  Handlers: print one JSON
line per event (stdout, or --output FILE, flushed to disk before each
acknowledgement), or POST each event to --webhook URL with the event_id as
Idempotency-Key.  A lost connection is retried with exponential backoff
(0.5 s doubling to 30 s, with jitter); SIGTERM or Ctrl-C stops it.
Needs Debian's python3-psycopg2.
"""
import argparse
import datetime
import decimal
import json
import os
import random
import select
import signal
import sys
import time
import urllib.error
import urllib.request

import psycopg2
import psycopg2.extras

CHANNEL = "order_mgmt_events"


def log(msg):
    print(f"{datetime.datetime.now():%H:%M:%S.%f} listener: {msg}", file=sys.stderr, flush=True)


def jsonable(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


class Backoff:
    """Exponential backoff with jitter for reconnects and retries."""

    def __init__(self, first=0.5, cap=30.0):
        self.first, self.cap, self.delay = first, cap, first

    def reset(self):
        self.delay = self.first

    def sleep(self):
        time.sleep(self.delay * random.uniform(0.5, 1.0))
        self.delay = min(self.delay * 2, self.cap)


class LineHandler:
    """One JSON line per event; durable (fsync) before the batch is acknowledged."""

    def __init__(self, path):
        self.out = open(path, "a", encoding="utf-8") if path else sys.stdout

    def handle(self, event):
        self.out.write(json.dumps(event, default=jsonable, separators=(",", ":")) + "\n")

    def flush(self):
        self.out.flush()
        if self.out is not sys.stdout:
            os.fsync(self.out.fileno())


class WebhookHandler:
    """POST each event as JSON; retried (with backoff) until the endpoint answers 2xx.

    The receiver dedupes on the Idempotency-Key header (the event_id).  A real
    forwarder also needs a policy for an event the endpoint never accepts
    (e.g. after N attempts store it in a dead-letter table and go on); this
    one keeps retrying, so such an event holds up the stream, in order.
    """

    def __init__(self, url):
        self.url = url

    def handle(self, event):
        body = json.dumps(event, default=jsonable).encode()
        backoff = Backoff(0.2, 10.0)
        while True:
            req = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Content-Type": "application/json", "Idempotency-Key": event["event_id"]})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    if 200 <= resp.status < 300:
                        return
                    log(f"webhook answered {resp.status} for {event['event_id']}; retrying")
            except (urllib.error.URLError, OSError) as e:
                log(f"webhook failed for {event['event_id']}: {e}; retrying")
            backoff.sleep()

    def flush(self):
        pass


class Listener:
    def __init__(self, args, handler):
        self.args, self.handler = args, handler
        self.conn = None

    def connect(self):
        self.conn = psycopg2.connect(self.args.dsn, application_name=f"order_mgmt_listener:{self.args.consumer}")
        self.conn.autocommit = True  # LISTEN takes effect at once; fetch and ack are one statement each
        with self.conn.cursor() as cur:
            cur.execute(f"LISTEN {CHANNEL}")
        log(f"connected, consumer {self.args.consumer!r}")

    def drain(self):
        """Fetch, handle, acknowledge, batch after batch, until nothing is left; returns the count."""
        total = 0
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            while True:
                cur.execute("SELECT * FROM order_mgmt.fetch_events(%s, %s)",
                            (self.args.consumer, self.args.batch))
                rows = cur.fetchall()
                if not rows:
                    return total
                for row in rows:
                    self.handler.handle({k: jsonable(v) for k, v in row.items()})
                self.handler.flush()  # handled for good before the cursor moves
                last = rows[-1]
                cur.execute("SELECT order_mgmt.ack_events(%s, %s::xid8, %s)",
                            (self.args.consumer, last["tx"], last["seq"]))
                total += len(rows)
                if len(rows) < self.args.batch:
                    return total

    def wait(self, timeout):
        """Block until a notification arrives or timeout passes; true if notified."""
        if select.select([self.conn], [], [], timeout) == ([], [], []):
            return False
        self.conn.poll()
        notified = bool(self.conn.notifies)
        self.conn.notifies.clear()  # a wake-up only: the events come from the cursor
        return notified

    def serve(self):
        """Drain, then wait for a wake-up.  A notification whose drain finds
        nothing means the event waits behind an older transaction that is
        still running (which may write no event, so nobody notifies when it
        ends): then look again soon, backing off up to --poll."""
        notified, retry = False, None
        while True:
            got = self.drain()
            if got:
                retry = None
            elif notified or retry is not None:
                retry = 0.02 if retry is None else min(retry * 2, self.args.poll)
            notified = self.wait(retry if retry is not None else self.args.poll)

    def run(self):
        backoff = Backoff()
        while True:
            try:
                self.connect()
                backoff.reset()
                self.serve()
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
                log(f"connection lost ({str(e).strip() or type(e).__name__}); reconnecting")
            except psycopg2.Error as e:  # e.g. a statement timeout: start over from the cursor
                log(f"error {e.pgcode}: {str(e).strip()}; reconnecting")
            finally:
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
            backoff.sleep()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dsn", default="", help="libpq connection string (default: from the environment)")
    p.add_argument("--consumer", default="example_listener", help="consumer name (1-63 characters)")
    p.add_argument("--batch", type=int, default=100, help="events per fetch (1-10000)")
    p.add_argument("--poll", type=float, default=5.0, help="seconds between looks without a notification")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--output", help="append JSON lines to this file instead of stdout")
    out.add_argument("--webhook", help="POST each event to this URL")
    args = p.parse_args()
    handler = WebhookHandler(args.webhook) if args.webhook else LineHandler(args.output)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        Listener(args, handler).run()
    except (KeyboardInterrupt, SystemExit):
        pass
    log("stopped")


if __name__ == "__main__":
    main()
