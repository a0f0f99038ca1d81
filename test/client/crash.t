#!/usr/bin/env bash
# Crash recovery (tools/crash-test.sh: 3 immediate shutdowns under a
# pgbench workload, invariants after each recovery) on a cluster of its
# own, against the order_mgmt that tools/test.sh installed.  Prints TAP.
cd "$(dirname "$0")/../.."
OM_NO_BUILD=1 exec bash tools/crash-test.sh
