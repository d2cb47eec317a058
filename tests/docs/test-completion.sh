#!/bin/bash
# Bash completion as a user meets it, against a fixture host: flags from the
# options table (one or two dashes, any case), PCI addresses for -pci
# (colons included), USB ids for -usb, guest names for -restore and vfioctl,
# interfaces, and vfioctl's command words.
set -u
: "${VFIO:?VFIO is the vfio binary}" "${MKHOST:?}" "${VFIO_SRCDIR:?}"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
python3 "$MKHOST" --preset desktop "$tmp/host" >/dev/null || exit 1
mkdir -p "$tmp/host/run/vfio/win10" "$tmp/host/run/vfio/linux-test"
export VFIO_HOST_ROOT=$tmp/host
PATH=$(dirname "$VFIO"):$PATH
source "$VFIO_SRCDIR/tools/completion/vfio"
failed=0

# expect "LINE" WANT...: completing at the end of LINE offers exactly WANT.
expect() {
	local line=$1
	shift
	COMP_LINE=$line COMP_POINT=${#line} COMP_WORDBREAKS=$' \t\n"\'><=;|&(:'
	COMPREPLY=()
	local cmd=${line%% *}
	"_$cmd" "$cmd"
	local got="${COMPREPLY[*]}" want="$*"
	if [ "$got" != "$want" ]; then
		echo "FAIL: '$line' completes to [$got], want [$want]"; failed=1
	else
		echo "ok: '$line' -> [$got]"
	fi
}

expect "vfio -pc" -pci
expect "vfio --pinv" --pinvcpus
expect "vfio -leave" -leavefb -leaveframebuffer -leavevtcon
expect "vfio -ar" -args
# bash replaces only what follows the last ':' in the word.
expect "vfio -pci 0000:01:00" 00.0 00.1 00.2 00.3
expect "vfio -PCI 0000:0" 00:00.0 00:01.0 00:14.0 00:17.0 00:1c.0 00:1c.4 00:1d.0 01:00.0 01:00.1 01:00.2 01:00.3 02:00.0 03:00.0 04:00.0
expect "vfio -usb 046d:" c52b
expect "vfio -usb 05" 05e3:0610
expect "vfio -restore " linux-test win10
expect "vfio -accel " kvm tcg
expect "vfio -format q" qcow2 qcow qed
expect "vfio -bridge en" enp3s0
expect "vfio -memory " 
expect "vfio -run -name x -nonet -q" -qemu-agent -qemuagent -qemu -quiet -q
expect "vfioctl " linux-test win10 list pci usb net status powerdown reset quit help
expect "vfioctl win10 " pci usb net status powerdown reset quit help
expect "vfioctl win10 pci " add del
expect "vfioctl win10 pci add 0000:01:00.1" 00.1
expect "vfioctl net a" add
expect "vfioctl win10 net add " user bridge= tap=
expect "vfioctl -j" -json
expect "vfioctl win10 pci del 0000:01:00.0 " force
expect "vfioctl win10 usb del usb-1-4 "

# The completion file offers every flag -help lists.
COMP_LINE="vfio -" COMP_POINT=6
_vfio vfio
n_help=$("$VFIO" -help | grep -c '^  -')
n_flags=$("$VFIO" -help | grep '^  -' | tr ',' '\n' | grep -c -- '-')
extra=1
"$VFIO" -help | grep -q '^  -args ' && extra=0
if [ "${#COMPREPLY[@]}" -ne $((n_flags + extra)) ]; then
	echo "FAIL: 'vfio -' offers ${#COMPREPLY[@]} flags; -help has $n_flags flags and aliases ($n_help entries) plus -args"
	failed=1
else
	echo "ok: 'vfio -' offers all $n_flags flags and aliases of -help, and -args"
fi
exit "$failed"
