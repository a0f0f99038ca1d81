#!/usr/bin/env bash
# The long fuzz run before a release: test/client/fuzz.t with many more
# calls and queries (and another seed each time unless OM_FUZZ_SEED is set)
# on a fresh private cluster.  Prints TAP.
source "$(dirname "$0")/common.sh"
om_setup >/dev/null
export OM_FUZZ_CALLS=${OM_FUZZ_CALLS:-1000} OM_FUZZ_QUERIES=${OM_FUZZ_QUERIES:-50000}
export OM_FUZZ_SEED=${OM_FUZZ_SEED:-$RANDOM}
echo "# seed $OM_FUZZ_SEED, $OM_FUZZ_CALLS calls per function, $OM_FUZZ_QUERIES queries per role"
"$ROOT/test/client/fuzz.t"
status=$?
om_stop_cluster
exit $status
