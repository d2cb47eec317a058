#!/usr/bin/env bash
# e2e: the test guest boots under plain QEMU (q35, tcg), reports itself and its
# virtio NIC (as a PCI device bound to virtio-pci, and as an interface with the
# MAC given on the command line and its driver) on the serial
# console, powers off with vfiotest=poweroff, and QEMU exits by itself with
# status 0. Skips (77) when the guest cannot be built here (no apt access).
set -u
src=${VFIO_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
gdir=${VFIO_GUEST_DIR:-${VFIO_BUILDDIR:-$src/build}/guest}
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed: run tools/install-deps as root"; exit 77; }
"$src/tools/build-test-guest" "$gdir"
case $? in
0) ;;
2) echo "SKIP: the test guest cannot be built here, apt cannot provide its packages (see above)"; exit 77 ;;
*) echo "FAIL: tools/build-test-guest $gdir failed"; exit 1 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mac=52:54:00:12:34:56
# timeout: a guest that hangs must fail the test, not the suite.
timeout -k 5 120 qemu-system-x86_64 -accel tcg -machine q35 -nodefaults -m 256 -display none -no-reboot \
	-kernel "$gdir/vmlinuz" -initrd "$gdir/initrd.img" \
	-append 'console=ttyS0 panic=-1 vfiotest=poweroff' -serial "file:$tmp/console" \
	-netdev user,id=n0 -device "virtio-net-pci,netdev=n0,mac=$mac" 2>"$tmp/stderr"
rc=$?

fail() {
	echo "FAIL: $*"
	echo "--- console (end):"; tail -n 40 "$tmp/console"
	echo "--- QEMU stderr:"; cat "$tmp/stderr"
	exit 1
}
[ $rc -eq 124 ] && fail "QEMU did not exit within 120 s (the guest did not power off)"
[ $rc -eq 0 ] || fail "QEMU exited with status $rc"
reports=$(grep -a '^VFIO-TEST: ' "$tmp/console" | tr -d '\r')
echo "$reports"
echo "$reports" | grep -q '^VFIO-TEST: boot ' || fail "no 'VFIO-TEST: boot' line"
echo "$reports" | grep -qx "VFIO-TEST: iface eth0 $mac virtio_net" || fail "no 'VFIO-TEST: iface eth0 $mac virtio_net' line"
echo "$reports" | grep -qE '^VFIO-TEST: pci 0000:00:[0-9a-f]{2}\.0 1af4:1000 virtio-pci$' || fail "no 'VFIO-TEST: pci ADDR 1af4:1000 virtio-pci' line for the NIC"
echo "$reports" | grep -qx 'VFIO-TEST: ifaces 1' || fail "the guest did not report exactly one interface"
echo "$reports" | grep -qx 'VFIO-TEST: poweroff' || fail "no 'VFIO-TEST: poweroff' line"
echo "$reports" | grep -q '^VFIO-TEST: error' && fail "the guest reported an error"
echo PASS
