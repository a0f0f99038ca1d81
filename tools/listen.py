#!/usr/bin/python3
"""LISTEN on order_mgmt_events and print each notification as it arrives.

Usage: listen.py SECONDS [DBNAME]  (connection from PGHOST/PGPORT/PGUSER)
Stops after SECONDS without a notification.
"""
import json
import select
import sys

import psycopg2

idle = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
conn = psycopg2.connect(dbname=sys.argv[2] if len(sys.argv) > 2 else "postgres")
conn.autocommit = True
conn.cursor().execute("LISTEN order_mgmt_events")
print("listener: waiting on channel order_mgmt_events", flush=True)
while select.select([conn], [], [], idle) != ([], [], []):
    conn.poll()
    while conn.notifies:
        n = conn.notifies.pop(0)
        e = json.loads(n.payload)
        print(f"listener: #{e['seq']:<3} order {e['order_id']:<3} {e['event_type']:<26}"
              f" {e['from'] or '':>17} -> {e['to'] or ''}", flush=True)
print("listener: idle, stopping", flush=True)
