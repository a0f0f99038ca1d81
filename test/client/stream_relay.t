#!/usr/bin/python3
"""notify_mode = relay on a cluster this test starts with order_mgmt in
shared_preload_libraries (ports PGPORT+1 and, for a standby, PGPORT+2, or
OM_RELAY_PORT): real listeners receive the worker's NOTIFYs, with the
payload of commit mode, after commit only, in (tx, seq) order, also for a
late commit and for COMMIT PREPARED; the worker waits for the extension, keeps
running over SIGHUP, resumes after SIGTERM from its durable cursor, is idle
on a hot standby and relays after promotion; the durable listener scenario
in relay mode.  relay_naptime is 1 hour here, so every prompt delivery
comes from the latch a committing writer sets, not from polling.
Prints TAP."""
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stream_scenario import Db, Tap, durable_listener_scenario, wait_for  # noqa: E402

import psycopg2  # noqa: E402

tap = Tap()
PORT = int(os.environ.get("OM_RELAY_PORT", int(os.environ.get("PGPORT", "5499")) + 1))
WORK = tempfile.mkdtemp(prefix="om_relay_")
PRIMARY, STANDBY = os.path.join(WORK, "primary"), os.path.join(WORK, "standby")
shutil.chown(WORK, "postgres", "postgres")
os.chmod(WORK, 0o755)


BIN = os.path.dirname(shutil.which("pg_ctl"))   # tools/common.sh puts the private install first


def as_postgres(cmd):
    return subprocess.run(["su", "postgres", "-c", f"PATH={BIN}:$PATH; {cmd}"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def pg_ctl(datadir, *args):
    r = as_postgres(f"pg_ctl -D {datadir}/data -l {datadir}/server.log -w " + " ".join(args))
    if r.returncode != 0:
        tap.diag(r.stdout)
    return r.returncode == 0


def conf(datadir, text):
    with open(os.path.join(datadir, "data", "postgresql.conf"), "a") as f:
        f.write(text)


def server_log(datadir):
    with open(os.path.join(datadir, "server.log"), encoding="utf-8", errors="replace") as f:
        return f.read()


def workers(db, dbname=None):
    """pid of each relay worker: {datname: pid}."""
    with db.connect("postgres") as conn, conn.cursor() as cur:
        cur.execute("SELECT datname, pid FROM pg_stat_activity WHERE backend_type = 'order_mgmt relay'")
        rows = dict(cur.fetchall())
    conn.close()
    return rows


def drain(conn, wait=0.3, until=0, limit=30.0):
    """Notifications on conn: wait (at most limit seconds) until `until` of
    them have arrived, then until none comes for `wait` seconds (so a check
    also sees one too many)."""
    out, end = [], time.monotonic() + limit
    while time.monotonic() < end:
        enough = len(out) >= until
        timeout = wait if enough else min(0.5, max(end - time.monotonic(), 0))
        if select.select([conn], [], [], timeout) == ([], [], []):
            if enough:
                break
            continue
        conn.poll()
        while conn.notifies:
            out.append(conn.notifies.pop(0))
    return out


def listen(db):
    conn = db.connect()
    conn.cursor().execute("LISTEN order_mgmt_events")
    return conn


def writer(db, mode="relay"):
    conn = psycopg2.connect(host=db.host, port=db.port, user="postgres", dbname=db.dbname,
                            options=f"-c order_mgmt.notify_mode={mode}")
    return conn


def rows_as_payloads(db, where):
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT event_id::text, seq, order_id, event_type, from_status, to_status"
                    f" FROM order_mgmt.events WHERE {where} ORDER BY tx, seq")
        keys = ["event_id", "seq", "order_id", "event_type", "from", "to"]
        rows = [dict(zip(keys, r)) for r in cur.fetchall()]
    conn.close()
    return rows


def flip(cur, order_id):
    cur.execute("UPDATE order_mgmt.shipments SET status = CASE status WHEN 'in_transit' THEN 'delayed'"
                " ELSE 'in_transit' END WHERE shipment_id = %s", (order_id,))


try:
    # -- a preloaded cluster; the served databases exist before the workers start
    r = as_postgres(f"mkdir -p {PRIMARY} && initdb -D {PRIMARY}/data -A trust -U postgres --no-sync")
    conf(PRIMARY, f"""
port = {PORT}
unix_socket_directories = '{PRIMARY}'
listen_addresses = ''
max_connections = 50
shared_buffers = 128MB
max_prepared_transactions = 5
wal_level = replica
""")
    with open(os.path.join(PRIMARY, "data", "pg_hba.conf"), "a") as f:
        f.write("local replication postgres trust\n")
    pg_ctl(PRIMARY, "start")
    primary = Db(PRIMARY, PORT, "om_relay")
    admin = primary.connect("postgres")
    for name in ("om_relay", "om_noext"):
        admin.cursor().execute(f"CREATE DATABASE {name}")
    admin.close()
    pg_ctl(PRIMARY, "stop -m fast")
    conf(PRIMARY, """
shared_preload_libraries = 'order_mgmt'
order_mgmt.relay_databases = 'om_relay, om_noext'
order_mgmt.relay_naptime = '1h'
""")
    tap.ok(pg_ctl(PRIMARY, "start"), "a cluster with order_mgmt in shared_preload_libraries starts")
    tap.ok(wait_for(lambda: set(workers(primary)) == {"om_relay", "om_noext"}, limit=60),
           "one relay worker per database of order_mgmt.relay_databases")
    noext_pid = workers(primary)["om_noext"]

    # -- a database without the extension: the worker waits, it does not crash
    subprocess.run(["psql", "-qX", "-f", os.path.join(os.path.dirname(__file__), "..", "fixtures",
                                                       "stream_setup.sql")],
                   env=primary.env(), check=True, stdout=subprocess.DEVNULL)
    tap.ok(wait_for(lambda: 'extension order_mgmt 0.7.0 or later is not installed in database "om_noext"'
                    in server_log(PRIMARY)),
           "the worker of a database without the extension logs that it waits")
    time.sleep(1)
    tap.ok(workers(primary).get("om_noext") == noext_pid
           and server_log(PRIMARY).count('not installed in database "om_noext"') == 1,
           "... and stays up, the same process, without repeating itself (no crash loop)")

    # -- relay mode is refused where no worker serves
    r = subprocess.run(["psql", "-qX", "-d", "postgres", "-c", "SET order_mgmt.notify_mode = relay"],
                       env=primary.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tap.ok(r.returncode != 0 and 'no order_mgmt relay worker serves database "postgres"' in r.stdout
           and "relay_databases" in r.stdout,
           "SET notify_mode = relay in a database no worker serves: refused with a hint")

    # -- delivery: after commit only, from the worker, the commit-mode payload
    lis = listen(primary)
    w = writer(primary)
    cur = w.cursor()
    cur.execute("SELECT pg_backend_pid()")
    writer_pid = cur.fetchone()[0]
    relay_pid = workers(primary)["om_relay"]
    flip(cur, 1)
    flip(cur, 2)
    tap.ok(drain(lis) == [], "nothing is announced before commit")
    w.commit()
    got = drain(lis, until=2)
    payloads = [json.loads(n.payload) for n in got]
    tap.ok(len(got) == 2, f"after commit: one notification per event (got {len(got)})")
    tap.ok(all(n.pid == relay_pid for n in got) and writer_pid != relay_pid,
           "sent by the relay worker, not by the writer (writers in relay mode send no NOTIFY)")
    tap.ok(all(n.channel == "order_mgmt_events" for n in got), "on channel order_mgmt_events")
    tap.ok(payloads == rows_as_payloads(primary, "entity_id IN (1, 2)"),
           "payloads are exactly commit mode's (event_id, seq, order_id, event_type, from, to), in order")
    flip(cur, 3)
    w.rollback()
    tap.ok(drain(lis) == [], "a rolled-back transaction announces nothing")

    # -- commit mode on the same cluster: the writer notifies at its commit;
    # the worker, which announces every event of its database, does so again
    # at its next round (here: the next relay-mode commit)
    wc = writer(primary, "commit")
    cc = wc.cursor()
    cc.execute("SELECT pg_backend_pid()")
    commit_pid = cc.fetchone()[0]
    flip(cc, 4)
    wc.commit()
    wc.close()
    got = drain(lis, wait=0.5)
    tap.ok([(json.loads(n.payload)["order_id"], n.pid) for n in got] == [(4, commit_pid)],
           "notify_mode = commit in a served database: the writer notifies at commit")
    cur.execute("SELECT order_mgmt.emit_event(4, 'order', 4, 'order.note_added')")
    w.commit()
    got = drain(lis, until=2)
    tap.ok([(json.loads(n.payload)["order_id"], n.pid) for n in got] == [(4, relay_pid), (4, relay_pid)],
           "... and the worker announces that event again with the next one (a repeat listeners ignore)")

    # -- late commit: a (lower tx) commits after b; the worker announces in (tx, seq) order
    a = writer(primary)
    flip(a.cursor(), 5)              # a takes its xid and writes first
    flip(cur, 6)
    w.commit()                       # b commits first: its event waits behind a
    early = drain(lis, wait=0.5)
    a.commit()
    got = drain(lis, until=2)
    tap.ok(early == [] and [json.loads(n.payload)["order_id"] for n in got] == [5, 6],
           "an event committed behind an older running transaction waits for it; then both, in (tx, seq) order")
    a.close()

    # -- two-phase commit: commit mode cannot prepare a transaction that
    # notifies; relay mode can, and COMMIT PREPARED wakes the worker
    wc = writer(primary, "commit")
    flip(wc.cursor(), 8)
    try:
        wc.cursor().execute("PREPARE TRANSACTION 'om_commit_2pc'")
        refused = False
    except psycopg2.Error as e:
        refused = e.pgcode == "0A000"
    tap.ok(refused, "notify_mode = commit: PREPARE TRANSACTION fails (a NOTIFY was queued)")
    wc.close()
    flip(cur, 7)
    cur.execute("PREPARE TRANSACTION 'om_relay_2pc'")
    w.commit()
    tap.ok(drain(lis) == [], "a prepared transaction announces nothing")
    admin = primary.connect()
    admin.cursor().execute("COMMIT PREPARED 'om_relay_2pc'")
    got = drain(lis, until=1)
    tap.ok([(json.loads(n.payload)["order_id"], n.pid) for n in got] == [(7, relay_pid)],
           "relay mode: after COMMIT PREPARED the worker announces the event (woken at once, naptime is 1 h)")

    # -- SIGHUP: a smaller batch size, the same worker
    admin.cursor().execute("ALTER SYSTEM SET order_mgmt.relay_batch_size = 5")
    admin.cursor().execute("SELECT pg_reload_conf()")
    time.sleep(0.5)
    cur.execute("SELECT count(order_mgmt.emit_event(i, 'order', i, 'order.note_added'))"
                " FROM generate_series(1, 12) i")
    w.commit()
    got = drain(lis, until=12)
    tap.ok(workers(primary).get("om_relay") == relay_pid and len(got) == 12
           and [json.loads(n.payload)["seq"] for n in got] == sorted(json.loads(n.payload)["seq"] for n in got),
           "after SIGHUP (relay_batch_size = 5) the same worker announces all 12 events of a transaction, in order")

    # -- SIGTERM: the worker ends; restarted, it resumes from its durable cursor
    admin.cursor().execute("SELECT pg_terminate_backend(%s)", (relay_pid,))
    wait_for(lambda: workers(primary).get("om_relay") != relay_pid, limit=30)
    cur.execute("SELECT count(order_mgmt.emit_event(i, 'order', i, 'order.note_added'))"
                " FROM generate_series(1, 3) i")
    w.commit()
    tap.ok(wait_for(lambda: workers(primary).get("om_relay") not in (None, relay_pid), limit=60),
           "after SIGTERM the postmaster starts the worker again")
    got = drain(lis, until=3, limit=60)
    tap.ok(len(got) == 3, "... and it announces the events written while it was down")
    relay_pid = workers(primary)["om_relay"]

    # -- the extension arrives in om_noext: the waiting worker starts relaying
    noext = Db(PRIMARY, PORT, "om_noext")
    subprocess.run(["psql", "-qX", "-f", os.path.join(os.path.dirname(__file__), "..", "fixtures",
                                                       "stream_setup.sql")],
                   env=noext.env(), check=True, stdout=subprocess.DEVNULL)
    nl = listen(noext)
    nw = writer(noext)
    flip(nw.cursor(), 1)
    nw.commit()
    got = drain(nl, until=1)
    tap.ok(len(got) == 1 and workers(primary).get("om_noext") == noext_pid,
           "after CREATE EXTENSION the same worker relays (woken by the first commit)")
    for c in (nl, nw):
        c.close()

    # -- the durable listener in relay mode
    primary_db = Db(PRIMARY, PORT, "om_relay")
    durable_listener_scenario(tap, primary_db, "relay", WORK)
    tap.ok(workers(primary).get("om_relay") == relay_pid, "the relay worker ran through all of it")

    # -- hot standby: no worker; after promotion it relays
    r = as_postgres(f"mkdir -p {STANDBY} && pg_basebackup -h {PRIMARY} -p {PORT} -D {STANDBY}/data -R -X stream -c fast")
    tap.ok(r.returncode == 0, "a standby from pg_basebackup")
    if r.returncode != 0:
        tap.diag(r.stdout)
    conf(STANDBY, f"port = {PORT + 1}\nunix_socket_directories = '{STANDBY}'\n")
    pg_ctl(STANDBY, "start")
    standby = Db(STANDBY, PORT + 1, "om_relay")
    tap.ok(standby.one("SELECT pg_is_in_recovery()") is True and workers(standby) == {},
           "on the hot standby no relay worker runs (it starts when recovery ends)")
    cur.execute("SELECT order_mgmt.emit_event(1, 'order', 1, 'order.note_added')")
    w.commit()
    tap.ok(wait_for(lambda: standby.one("SELECT count(*) FROM order_mgmt.events") ==
                    primary_db.one("SELECT count(*) FROM order_mgmt.events")),
           "the standby replays the primary's events")
    w.close()
    lis.close()
    admin.close()
    pg_ctl(PRIMARY, "stop -m fast")
    tap.ok(pg_ctl(STANDBY, "promote"), "the standby is promoted")
    tap.ok(wait_for(lambda: set(workers(standby)) == {"om_relay", "om_noext"}, limit=60),
           "after promotion the relay workers start")
    sl = listen(standby)
    sw = writer(standby)
    flip(sw.cursor(), 9)
    sw.commit()
    got = []
    wait_for(lambda: got.extend(drain(sl, wait=0.2)) or
             any(json.loads(n.payload)["order_id"] == 9 for n in got), limit=30)
    # (the event the old primary wrote last may come first: its cursor is
    # acknowledged asynchronously, so after a failover an event can repeat)
    tap.ok(any(json.loads(n.payload)["order_id"] == 9 for n in got),
           "the promoted server relays a new event")
    sl.close()
    sw.close()
finally:
    for d in (STANDBY, PRIMARY):
        if os.path.exists(os.path.join(d, "data", "postmaster.pid")):
            pg_ctl(d, "stop -m immediate")
    if tap.failed == 0:
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        tap.diag(f"kept {WORK} for inspection")
    tap.done()
