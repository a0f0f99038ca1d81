"""Shared by stream_listener.t (notify_mode commit) and stream_relay.t (relay):
TAP output, and the durable-listener scenario: examples/listener.py runs as a
separate process while 8 pgbench writers produce thousands of events; it is
killed (SIGKILL) and restarted in the middle, its backend is terminated
once; in the end every event_id must have been processed at least once.

No assertion is about time: sleeps only sequence the steps, and waits poll
for a condition with a generous limit."""
import json
import os
import signal
import subprocess
import time

import psycopg2

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(ROOT, "examples", "listener.py")
WRITER = os.path.join(ROOT, "test", "fixtures", "stream_writer.sql")
SETUP = os.path.join(ROOT, "test", "fixtures", "stream_setup.sql")


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name):
        self.n += 1
        if not cond:
            self.failed += 1
        print(("ok" if cond else "not ok") + f" {self.n} - {name}", flush=True)
        return cond

    def diag(self, msg):
        for line in str(msg).splitlines():
            print(f"# {line}", flush=True)

    def done(self):
        print(f"1..{self.n}", flush=True)


def wait_for(cond, limit=120.0, step=0.05):
    """Poll cond() until it is true (returns True) or limit seconds pass."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


class Db:
    """Connection parameters of one database of one cluster."""

    def __init__(self, host, port, dbname):
        self.host, self.port, self.dbname = host, str(port), dbname

    def env(self, **extra):
        env = dict(os.environ, PGHOST=self.host, PGPORT=self.port, PGUSER="postgres",
                   PGDATABASE=self.dbname)
        env.pop("PGOPTIONS", None)
        env.update(extra)
        return env

    def connect(self, dbname=None, **kw):
        conn = psycopg2.connect(host=self.host, port=self.port, user="postgres",
                                dbname=dbname or self.dbname, **kw)
        conn.autocommit = True
        return conn

    def one(self, sql, args=None):
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
        conn.close()
        return row[0] if row else None

    def recreate(self):
        """A fresh database with the extension and the writers' data."""
        admin = self.connect("postgres")
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {self.dbname}")
        admin.cursor().execute(f"CREATE DATABASE {self.dbname}")
        admin.close()
        subprocess.run(["psql", "-qX", "-f", SETUP], env=self.env(), check=True,
                       stdout=subprocess.DEVNULL)


def start_listener(db, consumer, out, log, *extra):
    return subprocess.Popen(
        ["/usr/bin/python3", EXAMPLE, "--dsn", f"dbname={db.dbname}", "--consumer", consumer,
         "--batch", "50", "--poll", "1", *extra] + (["--output", out] if out else []),
        env=db.env(), stdout=subprocess.DEVNULL, stderr=open(log, "a"))


def read_lines(path):
    """The events the listener wrote; a line cut by SIGKILL is skipped (its
    batch was not acknowledged, so it comes again)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def in_order_or_repeat(lines):
    """Each event comes after the one before it in (tx, seq) order, unless it
    is a repeat (handed out again after a restart)."""
    seen, prev = set(), None
    for e in lines:
        pos = (int(e["tx"]), int(e["seq"]))
        if prev is not None and pos <= prev and e["event_id"] not in seen:
            return False
        seen.add(e["event_id"])
        prev = pos
    return True


def backend_of(db, consumer):
    return db.one("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                  (f"order_mgmt_listener:{consumer}",))


def durable_listener_scenario(tap, db, mode, workdir, secs=6, rate=500):
    """8 pgbench writers (notify_mode = mode) for secs seconds at about rate
    transactions per second (3 events each) while the example listener is
    killed, restarted and disconnected; every event must be processed."""
    label = f"[{mode}]"
    out = os.path.join(workdir, f"{db.dbname}-{mode}.jsonl")
    log = os.path.join(workdir, f"{db.dbname}-{mode}.log")
    consumer = f"it_{mode}"
    first = start_listener(db, consumer, out, log)
    tap.ok(wait_for(lambda: db.one("SELECT count(*) FROM order_mgmt.consumers WHERE consumer = %s",
                                   (consumer,)) == 1),
           f"{label} the listener runs as a separate process and registered its consumer")

    bench = subprocess.Popen(
        ["pgbench", "-n", "-c", "8", "-j", "8", "-T", str(secs), "-R", str(rate), "-f", WRITER],
        env=db.env(PGOPTIONS=f"-c order_mgmt.notify_mode={mode}"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(secs / 3)
    wait_for(lambda: len(read_lines(out)) > 0, limit=30)
    processed_before_kill = len(read_lines(out))
    first.send_signal(signal.SIGKILL)
    first.wait()
    events_at_kill = db.one("SELECT count(*) FROM order_mgmt.events")
    time.sleep(secs / 6)
    second = start_listener(db, consumer, out, log)
    wait_for(lambda: backend_of(db, consumer) is not None, limit=30)
    time.sleep(secs / 6)
    pid = backend_of(db, consumer)
    terminated = pid is not None and db.one("SELECT pg_terminate_backend(%s)", (pid,))
    bench_out, _ = bench.communicate()
    tap.ok(bench.returncode == 0, f"{label} 8 concurrent pgbench writers ran without error")
    if bench.returncode != 0:
        tap.diag(bench_out)
    total = db.one("SELECT count(*) FROM order_mgmt.events")
    tap.ok(total >= 1000, f"{label} they wrote thousands of events ({total})")
    tap.ok(processed_before_kill > 0 and total > events_at_kill,
           f"{label} the listener was killed in the middle ({processed_before_kill} events processed, "
           f"{events_at_kill} written at the kill, {total} in the end)")
    caught_up = wait_for(lambda: db.one(
        "SELECT events_behind FROM order_mgmt.consumer_lag WHERE consumer = %s", (consumer,)) == 0)
    tap.ok(caught_up, f"{label} the restarted listener caught up (consumer_lag shows 0 behind)")
    second.send_signal(signal.SIGTERM)
    tap.ok(second.wait(timeout=30) == 0, f"{label} the listener stops cleanly on SIGTERM")
    with open(log, encoding="utf-8") as f:
        logtext = f.read()
    tap.ok(terminated and "connection lost" in logtext and logtext.count("connected, consumer") >= 3,
           f"{label} after its backend was terminated, the listener reconnected (with backoff)")

    lines = read_lines(out)
    got = {e["event_id"] for e in lines}
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT event_id::text FROM order_mgmt.events")
        want = {r[0] for r in cur.fetchall()}
    conn.close()
    missing, unknown = want - got, got - want
    tap.ok(not missing, f"{label} every event_id was processed at least once "
                        f"({len(want)} events, {len(missing)} missing, "
                        f"{len(lines) - len(got)} processed twice after the kill)")
    if missing:
        tap.diag(f"missing: {sorted(missing)[:10]}")
    tap.ok(not unknown, f"{label} nothing was processed that is not an event")
    tap.ok(in_order_or_repeat(lines), f"{label} events were processed in (tx, seq) order (repeats aside)")
