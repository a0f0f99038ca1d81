#!/usr/bin/python3
"""Fuzzing (issue 14), on a database of its own.

1. Every function order_mgmt_operator may execute is called, as a role
   holding only that grant, OM_FUZZ_CALLS times (per function) with random
   arguments: valid ids, unknown ids, NULLs, wrong types, huge numbers,
   malformed or deeply nested JSON, out-of-range dates, long strings.
   Each failure must carry a SQLSTATE listed in README's Errors table (never
   XX000), and the database must be exactly as before the call.
2. sqlsmith sends OM_FUZZ_QUERIES random queries as the superuser (who can
   call the internal C functions directly), as the operator and as the
   reader.  No internal error may come from order_mgmt's C files.
A session held open across both parts proves no backend crashed: a crash
makes the postmaster end every session.  Prints TAP."""
import os
import random
import re
import subprocess
import time

import psycopg2
import psycopg2.extensions

# A call is judged by its SQLSTATE and its effect, not by its result: dates
# and times come back as text (Python has no year past 9999, which a
# function may return for the dates it was given, up to 294276).
_AS_TEXT = psycopg2.extensions.new_type((1082, 1083, 1114, 1184, 1186, 1266), "OM_TIME_AS_TEXT",
                                        lambda value, cur: value)
psycopg2.extensions.register_type(_AS_TEXT)
psycopg2.extensions.register_type(
    psycopg2.extensions.new_array_type((1182, 1183, 1115, 1185, 1187, 1270), "OM_TIMES_AS_TEXT", _AS_TEXT))

DB = "om_fuzz"
CALLS = int(os.environ.get("OM_FUZZ_CALLS", "60"))
QUERIES = int(os.environ.get("OM_FUZZ_QUERIES", "1000"))
SEED = int(os.environ.get("OM_FUZZ_SEED", "14"))
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
rng = random.Random(SEED)
n_test = 0


def ok(cond, name, diag=None):
    global n_test
    n_test += 1
    print("%sok %d - %s" % ("" if cond else "not ", n_test, name))
    if not cond and diag:
        for line in str(diag).splitlines()[:40]:
            print("# " + line)


def connect(dbname=DB, user=None):
    c = psycopg2.connect(dbname=dbname, user=user)
    c.autocommit = True
    return c


def connect_when_up(user=None):
    """Connect, waiting up to a minute for a server in crash recovery."""
    for _ in range(120):
        try:
            return connect(user=user)
        except psycopg2.OperationalError:
            time.sleep(0.5)
    return connect(user=user)


def documented_codes():
    """SQLSTATEs of README's Errors table; '23xxx' stands for a class."""
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text.split("\n## Errors", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| ([0-9A-Z]{2}[0-9A-Zx]{3}) ", section, re.M))


def is_documented(code, codes):
    return code in codes or code[:2] + "xxx" in codes


def setup():
    c = connect("postgres")
    c.cursor().execute("DROP DATABASE IF EXISTS %s" % DB)
    c.cursor().execute("CREATE DATABASE %s" % DB)
    for role, grant in (("om_fuzz_op", "order_mgmt_operator"), ("om_fuzz_reader", "order_mgmt_reader")):
        c.cursor().execute("DROP ROLE IF EXISTS %s" % role)
    c.close()
    c = connect()
    cur = c.cursor()
    cur.execute("SET client_min_messages = warning")
    cur.execute("CREATE EXTENSION order_mgmt")
    for role, grant in (("om_fuzz_op", "order_mgmt_operator"), ("om_fuzz_reader", "order_mgmt_reader")):
        cur.execute("CREATE ROLE %s LOGIN IN ROLE %s" % (role, grant))
    # errors with their SQLSTATE and source location in the server log;
    # random queries end within a second
    cur.execute("ALTER DATABASE %s SET log_error_verbosity = verbose" % DB)
    cur.execute("ALTER DATABASE %s SET statement_timeout = '2s'" % DB)
    cur.execute(open(os.path.join(ROOT, "test/fixtures/promise_fixture.sql")).read())
    cur.execute("""
        INSERT INTO order_mgmt.customers (customer_id, name, payment_terms, credit_limit) VALUES
            ('C-CREDIT', 'Acme', 'credit', 5000), ('C-PREPAID', 'Jane', 'prepaid', 0);
        INSERT INTO order_mgmt.products (sku, name, list_price, weight_g) VALUES
            ('A-1', 'Widget', 9.90, 100), ('B-2', 'Gadget', 24.50, 250);
        SELECT order_mgmt.receive_stock('BER', 'A-1', 50), order_mgmt.receive_stock('LAX', 'B-2', 5);
        SELECT order_mgmt.place_order(c, format('[{"sku": "%s", "qty": %s}]', s, q)::jsonb,
                                      '{"country": "DE", "postal_code": "10115"}')
          FROM (VALUES ('C-CREDIT', 'A-1', 2), ('C-CREDIT', 'B-2', 9), ('C-PREPAID', 'A-1', 1),
                       ('C-PREPAID', 'B-2', 1), ('C-CREDIT', 'A-1', 1), ('C-CREDIT', 'A-1', 3),
                       ('C-CREDIT', 'B-2', 1), ('C-CREDIT', 'A-1', 1), ('C-CREDIT', 'A-1', 2)) v(c, s, q);
        SELECT order_mgmt.confirm_order(order_id) FROM order_mgmt.orders WHERE order_id <> 4;
        SELECT order_mgmt.authorize_payment(3, 9.90, 'PSP-FIX-1');
        SELECT order_mgmt.release_to_warehouse(order_id) FROM order_mgmt.orders WHERE order_id IN (6, 8, 9);
        CREATE FUNCTION public.fuzz_digest() RETURNS text LANGUAGE plpgsql AS $$
        DECLARE
            t name;
            d text;
            acc text := '';
        BEGIN
            FOR t IN SELECT relname FROM pg_class WHERE relkind = 'r'
                        AND relnamespace = 'order_mgmt'::regnamespace ORDER BY relname LOOP
                EXECUTE format('SELECT md5(coalesce(string_agg(x::text, ''|'' ORDER BY x::text), ''''))
                                  FROM order_mgmt.%I x', t) INTO d;
                acc := acc || t || ':' || d || ',';
            END LOOP;
            RETURN acc;
        END $$;""")
    c.close()


# -- part 1: the API -------------------------------------------------------

LONG = "x" * 300000
TEXTS = ["", " ", "A-1", "B-2", "BER", "LAX", "STD", "EXP", "C-CREDIT", "C-PREPAID", "DE", "AT",
         "order", "shipment", "return", "placed", "confirmed", "cancelled", "credit", "stock",
         "cheapest", "fastest", "web", "edi", "no-such-id", "NaN", "1e400", "-1", "\\", "'", '"',
         "%s", "ü€😀", "a\tb\nc", LONG, "Europe/Berlin", "+01", "10115"]
INTS = [0, 1, 2, 3, 4, 5, 6, -1, 2 ** 31 - 1, -2 ** 31, 2 ** 63 - 1, -2 ** 63]
NUMS = ["0", "1", "9.90", "-1", "0.001", "1e300", "NaN", "Infinity", "-Infinity", "123456789.12"]
DATES = ["2026-11-27", "2025-12-24", "infinity", "-infinity", "294276-12-31", "4713-01-01 BC",
         "0001-01-01", "2000-02-29"]
STAMPS = [d + " 10:00:00+00" for d in DATES[:2]] + ["infinity", "-infinity",
          "294276-12-31 23:59:59+00", "4713-01-01 00:00:00+00 BC", "2026-03-29 02:30:00 Europe/Berlin"]
NEST = "[" * 5000 + "]" * 5000
JSONS = ['[{"sku": "A-1", "qty": 1}]', '[{"sku": "B-2", "qty": 3}, {"sku": "A-1", "qty": 1}]',
         '[]', '{}', 'null', '[null]', '[{"sku": "A-1"}]', '[{"sku": "A-1", "qty": "x"}]',
         '[{"sku": "A-1", "qty": 1e40}]', '[{"sku": "A-1", "qty": -3}]', '[{"sku": 7, "qty": 1}]',
         '[{"sku": "A-1", "qty": 1, "unit_price": "NaN"}]', '[{"sku": "A-1", "qty": 1, "unit_price": 1.2345}]',
         '{"country": "DE", "postal_code": "10115"}', '{"country": "AT", "postal_code": "6900"}',
         '{"country": 5}', '{"country": "XX"}', '"text"', '42', NEST,
         '[' + ','.join('{"sku": "A-1", "qty": 1}' for _ in range(500)) + ']']
MALFORMED_JSON = ['{', '[{"sku": }', '{"a": 1,}', "'", ""]
BOOLS = ["true", "false"]
INTERVALS = ["1 day", "-1 day", "1000000 years"]
XIDS = ["0", "1", "3", "4294967295", "4294967296", "18446744073709551615", "-1", "x"]
TIMES = ["14:00", "00:00", "24:00"]
WRONG = ["'x'::text", "1::integer", "1.5::numeric", "'{}'::jsonb", "true", "now()", "'1 day'::interval"]


COLUMNS = {}  # table of the extension -> (its columns, the NOT NULL ones)


def row_value(table):
    """A row of table: a stored one, with columns removed (null; NOT NULL
    ones above all) or overwritten with random values, as a caller may
    build it."""
    row = "(SELECT to_jsonb(x) FROM order_mgmt.%s x ORDER BY x::text LIMIT 1 OFFSET %d)" % (
        table, rng.randint(0, 9))
    names, not_null = COLUMNS[table]
    for col in rng.sample(names, rng.randint(0, 2)) + rng.sample(not_null, rng.randint(0, 2)):
        if col in not_null or rng.random() < 0.5:
            row = "(%s - %s)" % (row, pg_literal(col))
        else:
            scalar = rng.choice([rng.choice(TEXTS[:-3]), str(rng.choice(INTS)), rng.choice(DATES)])
            row = "(%s || jsonb_build_object(%s, %s::text))" % (row, pg_literal(col), pg_literal(scalar))
    return "jsonb_populate_record(NULL::order_mgmt.%s, %s)" % (table, row)


def value(typ):
    """A random SQL literal of type typ (as text), or a NULL, or a wrong type."""
    r = rng.random()
    if r < 0.08:
        return "NULL::" + typ
    if r < 0.13:
        return rng.choice(WRONG)
    if typ.startswith("order_mgmt.") and typ.endswith("[]"):
        table = typ[len("order_mgmt."):-2]
        elems = [row_value(table) if rng.random() < 0.9 else "NULL" for _ in range(rng.randint(0, 3))]
        return "ARRAY[%s]::%s" % (", ".join(elems), typ)
    if typ.startswith("order_mgmt."):
        return row_value(typ[len("order_mgmt."):])
    if typ == "text":
        return pg_literal(rng.choice(TEXTS)) + "::text"
    if typ in ("integer", "bigint", "smallint"):
        n = rng.choice(INTS) if rng.random() < 0.6 else rng.randint(-10, 10)
        return "%d::%s" % (n, typ) if rng.random() < 0.9 else "'99999999999999999999'::" + typ
    if typ == "numeric":
        return pg_literal(rng.choice(NUMS)) + "::numeric"
    if typ in ("jsonb", "json"):
        j = rng.choice(JSONS) if rng.random() < 0.85 else rng.choice(MALFORMED_JSON)
        return pg_literal(j) + "::" + typ
    if typ == "date":
        return pg_literal(rng.choice(DATES + ["2025-02-30", "yesterday"])) + "::date"
    if typ == "timestamp with time zone":
        return pg_literal(rng.choice(STAMPS + ["not a time"])) + "::timestamptz"
    if typ == "boolean":
        return rng.choice(BOOLS)
    if typ == "xid8":
        if rng.random() < 0.5:    # the position of a real event, or any transaction id
            return "(SELECT tx FROM order_mgmt.events ORDER BY tx, seq LIMIT 1 OFFSET %d)" % rng.randint(0, 30)
        return pg_literal(rng.choice(XIDS)) + "::xid8"
    if typ == "interval":
        return pg_literal(rng.choice(INTERVALS)) + "::interval"
    if typ.startswith("time"):
        return pg_literal(rng.choice(TIMES)) + "::" + typ
    return "NULL::" + typ


def pg_literal(s):
    return "'" + s.replace("'", "''") + "'"


def api_functions(cur):
    cur.execute("""
        SELECT p.proname, p.pronargs, p.pronargdefaults,
               array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, i)
                     ORDER BY i)
          FROM pg_proc p
         WHERE p.pronamespace = 'order_mgmt'::regnamespace AND p.prokind = 'f'
           AND p.prorettype <> 'trigger'::regtype
           AND has_function_privilege('order_mgmt_operator', p.oid, 'EXECUTE')
         ORDER BY 1""")
    return cur.fetchall()


def digest(cur):
    """Every row of every table of the extension (sequences aside: nextval
    is never rolled back, by design of PostgreSQL)."""
    cur.execute("SELECT public.fuzz_digest()")
    return cur.fetchone()[0]


class Caller:
    """Calls as om_fuzz_op and judges each call: a failure must carry a
    documented SQLSTATE, never XX000, and leave every table as it was."""

    def __init__(self, codes):
        self.codes = codes
        self.admin = connect().cursor()
        self.op = connect(user="om_fuzz_op")
        self.before = digest(self.admin)
        self.seen, self.undocumented = {}, {}
        self.changed, self.internal, self.lost = [], [], []
        self.calls = self.succeeded = 0

    def attempt(self, sql):
        self.calls += 1
        try:
            cur = self.op.cursor()
            cur.execute(sql)
            cur.fetchall()
            self.succeeded += 1
            self.before = digest(self.admin)
            return
        except psycopg2.Error as e:
            code, message = e.pgcode, e.pgerror or str(e)
        if code is None or self.op.closed:
            # a crashed backend: the server restarts every session
            self.lost.append("%s: %s" % (sql[:300], message))
            self.op = connect_when_up(user="om_fuzz_op")
            self.admin = connect_when_up().cursor()
            self.before = digest(self.admin)
            return
        self.seen[code] = self.seen.get(code, 0) + 1
        if code == "XX000":
            self.internal.append("%s -> %s" % (sql[:300], message))
        elif not is_documented(code, self.codes):
            self.undocumented.setdefault(code, "%s %s -> %s" % (code, sql[:300], message.splitlines()[0]))
        after = digest(self.admin)
        if after != self.before:
            self.changed.append("%s (%s)" % (sql[:300], code))
            self.before = after


def load_columns(cur):
    """Columns of every table, and the NOT NULL ones (what a row built by a
    caller may lack)."""
    cur.execute("""SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum),
                          array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnotnull)
                     FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                    WHERE c.relnamespace = 'order_mgmt'::regnamespace AND c.relkind = 'r'
                      AND a.attnum > 0 AND NOT a.attisdropped GROUP BY c.relname""")
    COLUMNS.update((t, (names, not_null or [])) for t, names, not_null in cur.fetchall())


def row_sweep_calls(fns):
    """Functions taking rows: each NOT NULL column of each row argument in
    turn missing, the other arguments the rows of a confirmed order."""
    for name, nargs, ndefaults, types in fns:
        if not all(t.startswith("order_mgmt.") for t in types):
            continue
        for i, typ in enumerate(types):
            for col in COLUMNS[typ[len("order_mgmt."):].rstrip("[]")][1]:
                yield "SELECT * FROM order_mgmt.%s(%s)" % (
                    name, ", ".join(order_rows(t, col if j == i else None) for j, t in enumerate(types)))


def order_rows(typ, drop):
    """The row (or rows, for an array type) of order 5 of the fixture, with
    column drop missing."""
    table = typ[len("order_mgmt."):].rstrip("[]")
    rec = "jsonb_populate_record(NULL::order_mgmt.%s, to_jsonb(x) - %s)" % (table, pg_literal(drop or ""))
    if typ.endswith("[]"):
        return "ARRAY(SELECT %s FROM order_mgmt.%s x WHERE x.order_id = 5 ORDER BY x::text)" % (rec, table)
    return "(SELECT %s FROM order_mgmt.%s x WHERE x.order_id = 5 ORDER BY x::text LIMIT 1)" % (rec, table)


def fuzz_api(codes, sentinel):
    caller = Caller(codes)
    fns = api_functions(caller.admin)
    load_columns(caller.admin)
    sweep = list(row_sweep_calls(fns))     # first: on the fixture as it was set up
    for sql in sweep:
        caller.attempt(sql)
    calls, succeeded = caller.calls, caller.succeeded
    for name, nargs, ndefaults, types in fns:
        for _ in range(CALLS):
            n = nargs - rng.randint(0, ndefaults)
            caller.attempt("SELECT * FROM order_mgmt.%s(%s)" % (name, ", ".join(value(t) for t in types[:n])))
    random_calls, random_succeeded = caller.calls - calls, caller.succeeded - succeeded
    print("# %d functions, %d random calls (%d succeeded), %d row-sweep calls; failures by SQLSTATE: %s" % (
        len(fns), random_calls, random_succeeded, len(sweep),
        ", ".join("%s %d" % kv for kv in sorted(caller.seen.items()))))
    ok(len(fns) >= 20 and random_calls == len(fns) * CALLS, "every API function was called %d times" % CALLS)
    ok(random_succeeded > len(fns), "the fuzzer also made calls that succeed (%d)" % random_succeeded)
    ok(len(sweep) >= 10, "functions taking rows were called with each NOT NULL column missing (%d calls)"
       % len(sweep))
    ok(not caller.lost, "no call lost its session", "\n".join(caller.lost))
    ok(not caller.internal, "no call ended in an internal error (XX000)", "\n".join(caller.internal))
    ok(not caller.undocumented, "every failure has a SQLSTATE of README's Errors table",
       "\n".join(caller.undocumented.values()))
    ok(not caller.changed, "a failed call changed nothing", "\n".join(caller.changed))
    ok(alive(sentinel), "no backend crashed (a session opened before is still there)")


def alive(conn):
    try:
        conn.cursor().execute("SELECT 1")
        return True
    except psycopg2.Error:
        return False


# -- part 2: sqlsmith --------------------------------------------------------

OUR_FILES = sorted(os.path.basename(f) for f in os.listdir(os.path.join(ROOT, "src")) if f.endswith(".c"))


def sqlsmith(user, sentinel, log):
    start = os.path.getsize(log) if log else 0
    target = "host=%s port=%s user=%s dbname=%s" % (
        os.environ.get("PGHOST", "/tmp"), os.environ.get("PGPORT", "5432"), user, DB)
    res = subprocess.run(["sqlsmith", "--target=" + target, "--seed=%d" % SEED,
                          "--max-queries=%d" % QUERIES, "--verbose"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
    queries = re.findall(r"queries: (\d+)", res.stderr.decode(errors="replace"))
    ok(alive(sentinel), "sqlsmith as %s: no backend crashed (%s queries)" % (
        user, queries[-1] if queries else "?"), res.stderr.decode(errors="replace")[-2000:])
    if not log:
        return
    with open(log, errors="replace") as f:
        f.seek(start)
        text = f.read()
    ours = re.findall(r"ERROR:  XX000: (.*)\n.*LOCATION:  \w+, (%s):\d+" % "|".join(map(re.escape, OUR_FILES)),
                      text)
    ok(not ours, "sqlsmith as %s: no internal error from order_mgmt's C code" % user,
       "\n".join("%s (%s)" % m for m in ours))


def main():
    setup()
    codes = documented_codes()
    sentinel = connect("postgres")
    fuzz_api(codes, sentinel)
    log = os.path.join(os.environ.get("PGHOST", ""), "server.log")
    log = log if os.path.isfile(log) else None
    if subprocess.run(["which", "sqlsmith"], stdout=subprocess.DEVNULL).returncode == 0:
        for user in ("postgres", "om_fuzz_op", "om_fuzz_reader"):
            sqlsmith(user, sentinel, log)
    else:
        ok(False, "sqlsmith is installed (tools/common.sh installs it)")
    if not os.environ.get("KEEP"):
        sentinel.cursor().execute("DROP DATABASE IF EXISTS %s" % DB)
    print("1..%d" % n_test)


main()
