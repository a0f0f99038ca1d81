#!/usr/bin/python3
"""Property test of the per-backend caches (issue 7): one session edits the
lifecycle graph and calendar exceptions at random while another, in random
isolation levels, uses the caches inside its transactions; after each of
its transactions, every answer of the caches (legal moves, business days)
must equal a fresh read of the tables.  Prints TAP."""
import os
import random
import threading
import time

import psycopg2
import psycopg2.extensions as ext

DB = "om_cache_prop"
ITERATIONS = int(os.environ.get("OM_PROP_ITERATIONS", "300"))
DAYS = ["2031-01-%02d" % d for d in range(1, 32)]
LOCK = 4242  # editor exclusive, checker shared while it compares
random.seed(int(os.environ.get("OM_PROP_SEED", "7")))


def connect(dbname=DB):
    c = psycopg2.connect(dbname=dbname)
    c.autocommit = True
    return c


def setup():
    c = connect("postgres")
    c.cursor().execute("DROP DATABASE IF EXISTS %s" % DB)
    c.cursor().execute("CREATE DATABASE %s" % DB)
    c.close()
    c = connect()
    cur = c.cursor()
    cur.execute("SET client_min_messages = warning")
    cur.execute("CREATE EXTENSION order_mgmt")
    cur.execute("""
        INSERT INTO order_mgmt.customers (customer_id, name) VALUES ('P', 'p');
        INSERT INTO order_mgmt.calendars (calendar_id) VALUES ('PC');
        INSERT INTO order_mgmt.statuses (entity, status, class) VALUES
            ('order', 'prop_a', 'open'), ('order', 'prop_b', 'open'), ('order', 'prop_c', 'open');
        INSERT INTO order_mgmt.transitions (entity, from_status, to_status, activity) VALUES
            ('order', 'placed', 'prop_a', 'to_a');
        INSERT INTO order_mgmt.orders (customer_id, currency, ship_to, ship_to_country)
            SELECT 'P', 'EUR', '{}', 'DE' FROM generate_series(1, 3);
        UPDATE order_mgmt.orders SET status = 'prop_a';""")
    c.close()


def editor(stop, edits):
    c = connect()
    cur = c.cursor()
    while not stop.is_set():
        cur.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
        cur.execute("BEGIN")
        for _ in range(random.randint(1, 3)):
            what = random.random()
            if what < 0.4:
                to = random.choice(["prop_b", "prop_c"])
                cur.execute("""DELETE FROM order_mgmt.transitions
                                WHERE from_status = 'prop_a' AND to_status = %s""", (to,))
                if cur.rowcount == 0:
                    cur.execute("""INSERT INTO order_mgmt.transitions
                                   (entity, from_status, to_status, activity)
                                   VALUES ('order', 'prop_a', %s, 'prop')""", (to,))
            else:
                day = random.choice(DAYS)
                cur.execute("""DELETE FROM order_mgmt.calendar_exceptions
                                WHERE calendar_id = 'PC' AND day = %s""", (day,))
                if cur.rowcount == 0:
                    cur.execute("""INSERT INTO order_mgmt.calendar_exceptions
                                   (calendar_id, day, is_working) VALUES ('PC', %s, %s)""",
                                (day, random.random() < 0.5))
            edits[0] += 1
        cur.execute("ROLLBACK" if random.random() < 0.1 else "COMMIT")
        cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
        time.sleep(random.random() * 0.004)
    c.close()


def can_move(cur, to):
    """Ask the lifecycle cache by trying the move in a savepoint."""
    cur.execute("SAVEPOINT try")
    try:
        cur.execute("UPDATE order_mgmt.orders SET status = %s WHERE order_id = 1", (to,))
        ok = True
    except psycopg2.Error as e:
        if e.pgcode != "OM001":
            raise
        ok = False
    cur.execute("ROLLBACK TO SAVEPOINT try")
    return ok


def use_caches(c):
    """A transaction in a random isolation level that uses both caches."""
    level = random.choice([ext.ISOLATION_LEVEL_READ_COMMITTED,
                           ext.ISOLATION_LEVEL_REPEATABLE_READ,
                           ext.ISOLATION_LEVEL_SERIALIZABLE])
    c.autocommit = False
    c.set_session(isolation_level=level)
    cur = c.cursor()
    cur.execute("SELECT count(*) FROM order_mgmt.orders")  # takes the snapshot
    time.sleep(random.random() * 0.006)                    # let the editor commit
    for _ in range(random.randint(1, 3)):
        cur.execute("SELECT order_mgmt.is_business_day(%s, 'PC')", (random.choice(DAYS),))
        can_move(cur, random.choice(["prop_b", "prop_c"]))
    c.rollback() if random.random() < 0.2 else c.commit()
    c.autocommit = True


def compare(c):
    """After a transaction: the caches against a fresh read; returns (checks, bad)."""
    cur = c.cursor()
    cur.execute("SELECT pg_advisory_lock_shared(%s)", (LOCK,))
    cur.execute("""SELECT d::text,
                          coalesce(e.is_working, extract(isodow FROM d) < 6) AS truth,
                          order_mgmt.is_business_day(d, 'PC') AS cached
                     FROM unnest(%s::date[]) d
                     LEFT JOIN order_mgmt.calendar_exceptions e
                            ON e.calendar_id = 'PC' AND e.day = d""", (DAYS,))
    rows = cur.fetchall()
    bad = [r for r in rows if r[1] != r[2]]
    checks = len(rows)
    cur.execute("""SELECT to_status FROM order_mgmt.transitions
                    WHERE entity = 'order' AND from_status = 'prop_a'""")
    legal = {r[0] for r in cur.fetchall()}
    c.autocommit = False
    for to in ("prop_b", "prop_c"):
        checks += 1
        if can_move(c.cursor(), to) != (to in legal):
            bad.append((to, to in legal))
    c.rollback()
    c.autocommit = True
    cur.execute("SELECT pg_advisory_unlock_shared(%s)", (LOCK,))
    return checks, bad


def main():
    setup()
    stop = threading.Event()
    edits = [0]
    t = threading.Thread(target=editor, args=(stop, edits))
    t.start()
    c = connect()
    checks = 0
    bad = []
    try:
        for _ in range(ITERATIONS):
            use_caches(c)
            n, b = compare(c)
            checks += n
            bad += b
    finally:
        stop.set()
        t.join()
    print("1..3")
    print("%s 1 - %d checks after transactions in random isolation levels"
          % ("ok" if checks >= 5000 else "not ok", checks))
    print("%s 2 - the editor made %d edits meanwhile" % ("ok" if edits[0] >= 100 else "not ok",
                                                         edits[0]))
    print("%s 3 - every cache answer equals a fresh read of the tables (%d disagreements)"
          % ("ok" if not bad else "not ok", len(bad)))
    for b in bad[:10]:
        print("# disagreement:", b)


main()
