#!/usr/bin/env bash
# Pre-release: the Debian package on a fresh Debian 12.  debootstrap makes a
# minimal bookworm root (a chroot, thrown away at the end), apt installs
# build-essential and exactly the Build-Depends of debian/control
# (apt-get build-dep), `dpkg-buildpackage -us -uc -b` builds the committed
# tree, and autopkgtest (virt-chroot) installs the package in that root and
# runs debian/tests: installcheck and the whole suite.  The build and the
# tests run in a network namespace of their own (only loopback), so their
# servers are invisible to this machine's.  Prints TAP.
#
# Root, Debian 12, network to the Debian mirror; about 5 minutes.  Touches
# nothing outside its temporary directory (OM_FRESH_DIR, default a new
# directory under /var/tmp) except installing debootstrap and autopkgtest.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIRROR=${OM_MIRROR:-http://deb.debian.org/debian}
D=${OM_FRESH_DIR:-$(mktemp -d /var/tmp/om-fresh.XXXXXX)}
R=$D/chroot
N=0
FAILED=0
tap() { N=$((N + 1)); if [ "$1" -eq 0 ]; then echo "ok $N - $2"; else echo "not ok $N - $2"; FAILED=1; fi; }
show() { sed 's/^/# /' "$1" | tail -"${2:-25}"; }
in_root() { chroot "$R" sh -c "$1"; }
isolated() { unshare --net sh -c "ip link set lo up && $1"; }   # loopback only
cleanup() {
    for m in dev/pts dev/shm proc; do mountpoint -q "$R/$m" && umount "$R/$m"; done
    [ -n "${OM_KEEP:-}" ] || rm -rf "$D"
}
trap cleanup EXIT

for p in debootstrap autopkgtest; do
    dpkg -s "$p" >/dev/null 2>&1 ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
done

debootstrap --variant=minbase bookworm "$R" "$MIRROR" >"$D/debootstrap.log" 2>&1
tap $? "debootstrap: a minimal Debian 12 root"
[ -d "$R/usr" ] || { show "$D/debootstrap.log"; echo "1..$N"; exit 1; }
mount -t proc proc "$R/proc"
mkdir -p "$R/dev/shm" "$R/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"                 # POSIX shared memory for PostgreSQL
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
cp /etc/resolv.conf "$R/etc/resolv.conf"
cat >"$R/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
EOF
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"      # packages start no service
chmod +x "$R/usr/sbin/policy-rc.d"
mkdir -p "$R/etc/postgresql-common"
echo "create_main_cluster = false" >"$R/etc/postgresql-common/createcluster.conf"

mkdir -p "$R/build/order-mgmt"
(cd "$ROOT" && git ls-files -c | tar -cf - -T -) | tar -xf - -C "$R/build/order-mgmt"
in_root 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq &&
         apt-get install -y -qq --no-install-recommends build-essential dpkg-dev apt-utils &&
         cd /build/order-mgmt && apt-get build-dep -y -qq --no-install-recommends .' >"$D/deps.log" 2>&1
tap $? "apt-get build-dep: build-essential and the Build-Depends of debian/control"

isolated "chroot $R sh -c 'cd /build/order-mgmt && dpkg-buildpackage -us -uc -b'" >"$D/build.log" 2>&1
rc=$?
tap $rc "dpkg-buildpackage -us -uc -b on fresh Debian 12 ($(grep -c '\.\.\. ok' "$D/build.log") build-time regression tests ok)"
[ $rc -eq 0 ] || show "$D/build.log"
DEB=$(ls "$R"/build/postgresql-15-order-mgmt_*_amd64.deb 2>/dev/null | head -1)

# the tests' dependencies come from the mirror now; autopkgtest then runs
# without network (it finds them installed)
TESTDEPS="make postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl python3-psycopg2"
in_root "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $TESTDEPS" \
    >"$D/testdeps.log" 2>&1
tap $? "the autopkgtests' dependencies are installed from the mirror"
isolated "autopkgtest --output-dir $D/autopkgtest $R/build/order-mgmt $DEB -- chroot $R" >"$D/autopkgtest.log" 2>&1
rc=$?
tap $rc "autopkgtest (virt-chroot) exits 0"
[ $rc -eq 0 ] || show "$D/autopkgtest.log" 40
for t in installcheck suite; do
    grep -qE "^$t +PASS" "$D/autopkgtest.log"
    tap $? "autopkgtest $t: PASS"
done
grep -E '^ +[a-z_.]+ +[0-9]+ passed|^[0-9]+ passed, ' "$D/autopkgtest.log" | sed 's/^/# suite: /'
echo "1..$N"
[ $FAILED -eq 0 ]
