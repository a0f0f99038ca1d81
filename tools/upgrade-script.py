#!/usr/bin/env python3
"""Assemble the upgrade script of the version under development from its
template and the current schema sources, so the definitions in the upgrade
script are the ones sql/schema/ has (test/client/upgrade.t compares them).

    python3 tools/upgrade-script.py sql/upgrade/order_mgmt--A--B.sql.in > sql/order_mgmt--A--B.sql

The template is plain SQL (table changes, data migration, privileges) with
one directive per line where a definition from sql/schema/ goes:
    @@NEW name@@          CREATE FUNCTION name(...) as in sql/schema
    @@NEWPROC name@@      CREATE PROCEDURE name(...) as in sql/schema
    @@REPLACE name@@      the same as CREATE OR REPLACE FUNCTION
    @@NEWTRIGGER name@@   the (one) CREATE [CONSTRAINT] TRIGGER name
    @@NEWTRIGGERS name@@  every CREATE TRIGGER of that name (several tables)
    @@NEWVIEW name@@, @@REPLACEVIEW name@@, @@SEED table@@ (its INSERT)
    @@NEWTYPE name@@, @@NEWAGGREGATE name@@   CREATE TYPE / AGGREGATE name
Once version B is released the generated script is frozen like every
other; the template stays as the record of how it was made.
"""
import glob
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = "\n".join(open(f).read() for f in sorted(glob.glob(os.path.join(ROOT, "sql/schema/*.sql"))))


def statement(start):
    """The statement starting at start: to the ';' after its $$ body, if any."""
    body = SRC.find("$$", start)
    end = SRC.find(";", start)
    if body < 0 or end < body:
        return SRC[start:end + 1]
    close = SRC.find("$$", body + 2)
    return SRC[start:SRC.find(";", close) + 1]


def one(pattern, what):
    m = re.search(pattern, SRC)
    if not m:
        sys.exit("upgrade-script: %s not found in sql/schema" % what)
    return m.start()


def function(name):
    return statement(one(r"CREATE FUNCTION @extschema@\.%s\(" % name, "function " + name))


def procedure(name):
    return statement(one(r"CREATE PROCEDURE @extschema@\.%s\(" % name, "procedure " + name))


def triggers(name):
    found = [statement(m.start()) for m in re.finditer(r"CREATE (CONSTRAINT )?TRIGGER %s\b" % name, SRC)]
    if not found:
        sys.exit("upgrade-script: trigger %s not found in sql/schema" % name)
    return found


def created(kind, name):
    return statement(one(r"CREATE %s @extschema@\.%s\b" % (kind, name), kind.lower() + " " + name))


def view(name):
    """The view's statement: to the first ';' outside a -- comment."""
    start = one(r"CREATE VIEW @extschema@\.%s AS" % name, "view " + name)
    pos = start
    for line in SRC[start:].split("\n"):
        code = line.split("--", 1)[0]
        if ";" in code:
            return SRC[start:pos + code.index(";") + 1]
        pos += len(line) + 1
    sys.exit("upgrade-script: view %s has no end" % name)


def seed(table):
    start = one(r"INSERT INTO @extschema@\.%s\b" % table, "seed rows of " + table)
    return SRC[start:SRC.find(";", start) + 1]


def expand(op, name):
    if op == "NEW":
        return function(name)
    if op == "NEWPROC":
        return procedure(name)
    if op == "REPLACE":
        return function(name).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    if op == "NEWTRIGGER":
        found = triggers(name)
        if len(found) != 1:
            sys.exit("upgrade-script: %d triggers named %s; use NEWTRIGGERS" % (len(found), name))
        return found[0]
    if op == "NEWTRIGGERS":
        return "\n".join(triggers(name))
    if op == "NEWVIEW":
        return view(name)
    if op == "REPLACEVIEW":
        return view(name).replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1)
    if op == "SEED":
        return seed(name)
    if op == "NEWTYPE":
        return created("TYPE", name)
    if op == "NEWAGGREGATE":
        return created("AGGREGATE", name)
    sys.exit("upgrade-script: unknown directive %s" % op)


out = []
for line in open(sys.argv[1]).read().split("\n"):
    m = re.match(r"@@(\w+) (\w+)@@$", line)
    out.append(expand(*m.groups()) + "\n" if m else line)
sys.stdout.write("\n".join(out))
