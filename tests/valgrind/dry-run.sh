#!/usr/bin/env bash
# The dry run's main paths under valgrind: plain, -json, -iommugroups,
# -cputhreads, a refused plan and a usage error, on the desktop fixture. Each
# must exit with its usual status and valgrind must find nothing (99).
set -u
command -v valgrind >/dev/null || { echo "skip: valgrind is not installed"; exit 77; }
VG=$(dirname "$0")/vg
VFIO=$VFIO_BUILDDIR/src/supervisor/vfio
T=$(mktemp -d /tmp/vfio-vg-XXXXXX)
trap 'rm -rf "$T"' EXIT
python3 "$MKHOST" --preset desktop "$T/host" || exit 1
export VFIO_HOST_ROOT=$T/host
: > "$T/host/win.img"
status=0
check() {	# check WANT ARGS...: run vfio under valgrind, want exit status WANT
	local want=$1; shift
	"$VG" "$VFIO" "$@" > "$T/out" 2>&1
	local rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "FAIL: vfio $* exited $rc, want $want (99 = valgrind found errors)"
		cat "$T/out"
		status=1
	fi
}
check 0 -m 8G -image /win.img -imageformat raw -pci 'NVIDIA' -usb 'SteelSeries|Xbox' -pinvcpus 1,9,2,10 -nocolor
check 0 -json -m 8G -image /win.img -imageformat raw -pci 'NVIDIA|USB' -bridge br0 -hostint enp3s0 -hugepages
check 0 -iommugroups
check 0 -cputhreads
check 1 -image /missing.img -m 4G
check 2 -pci '(' 
check 2 -notaflag
exit $status
