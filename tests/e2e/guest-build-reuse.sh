#!/usr/bin/env bash
# tools/build-test-guest DIR a second time with nothing changed: says DIR is up
# to date and leaves vmlinuz and initrd.img untouched (same inode and mtime),
# in well under the time a build takes.
set -u
src=${VFIO_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
gdir=${VFIO_GUEST_DIR:-${VFIO_BUILDDIR:-$src/build}/guest}
"$src/tools/build-test-guest" "$gdir"
case $? in
0) ;;
2) echo "SKIP: the test guest cannot be built here, apt cannot provide its packages (see above)"; exit 77 ;;
*) echo "FAIL: tools/build-test-guest $gdir failed"; exit 1 ;;
esac
before=$(stat -c '%i %Y' "$gdir/vmlinuz" "$gdir/initrd.img")
out=$("$src/tools/build-test-guest" "$gdir" 2>&1) || { echo "$out"; echo "FAIL: the second run failed"; exit 1; }
echo "$out"
after=$(stat -c '%i %Y' "$gdir/vmlinuz" "$gdir/initrd.img")
echo "$out" | grep -q 'is up to date' || { echo "FAIL: the second run did not say the guest is up to date"; exit 1; }
[ "$before" = "$after" ] || { echo "FAIL: the second run rewrote vmlinuz or initrd.img"; exit 1; }
echo PASS
