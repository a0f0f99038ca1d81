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

import psycopg2

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
                       ('C-PREPAID', 'B-2', 1), ('C-CREDIT', 'A-1', 1)) v(c, s, q);
        SELECT order_mgmt.confirm_order(order_id) FROM order_mgmt.orders WHERE order_id % 2 = 1;
        SELECT order_mgmt.authorize_payment(3, 9.90, 'PSP-FIX-1');
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
TIMES = ["14:00", "00:00", "24:00"]
WRONG = ["'x'::text", "1::integer", "1.5::numeric", "'{}'::jsonb", "true", "now()", "'1 day'::interval"]


def value(typ):
    """A random SQL literal of type typ (as text), or a NULL, or a wrong type."""
    r = rng.random()
    if r < 0.08:
        return "NULL::" + typ
    if r < 0.13:
        return rng.choice(WRONG)
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


def fuzz_api(codes, sentinel):
    admin = connect()
    acur = admin.cursor()
    fns = api_functions(acur)
    op = connect(user="om_fuzz_op")
    cur = op.cursor()
    before = digest(acur)
    seen, undocumented, changed, internal, lost = {}, {}, [], [], []
    calls = succeeded = 0
    for name, nargs, ndefaults, types in fns:
        for _ in range(CALLS):
            n = nargs - rng.randint(0, ndefaults)
            sql = "SELECT * FROM order_mgmt.%s(%s)" % (name, ", ".join(value(t) for t in types[:n]))
            calls += 1
            try:
                cur.execute(sql)
                cur.fetchall()
                succeeded += 1
                before = digest(acur)
                continue
            except psycopg2.Error as e:
                code, message = e.pgcode, e.pgerror or str(e)
            if code is None or op.closed:
                lost.append("%s: %s" % (sql[:300], message))
                op = connect(user="om_fuzz_op")
                cur = op.cursor()
                continue
            seen[code] = seen.get(code, 0) + 1
            if code == "XX000":
                internal.append("%s -> %s" % (sql[:300], message))
            elif not is_documented(code, codes):
                undocumented.setdefault(code, "%s %s -> %s" % (code, sql[:300], message.splitlines()[0]))
            after = digest(acur)
            if after != before:
                changed.append("%s (%s)" % (sql[:300], code))
                before = after
    print("# %d functions, %d calls, %d succeeded; failures by SQLSTATE: %s" % (
        len(fns), calls, succeeded, ", ".join("%s %d" % kv for kv in sorted(seen.items()))))
    ok(len(fns) >= 20 and calls == len(fns) * CALLS, "every API function was called %d times" % CALLS)
    ok(succeeded > len(fns), "the fuzzer also made calls that succeed (%d)" % succeeded)
    ok(not lost, "no call lost its session", "\n".join(lost))
    ok(not internal, "no call ended in an internal error (XX000)", "\n".join(internal))
    ok(not undocumented, "every failure has a SQLSTATE of README's Errors table",
       "\n".join(undocumented.values()))
    ok(not changed, "a failed call changed nothing", "\n".join(changed))
    ok(alive(sentinel), "no backend crashed (a session opened before is still there)")
    op.close()
    admin.close()


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
