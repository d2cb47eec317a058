#!/bin/sh
# Exit status of the real binary: 0 when -run would proceed (and for -help,
# -version, -iommugroups, -cputhreads, -colortest), 1 when the plan has
# errors or -run cannot go ahead, 2 for usage errors, with the message on
# stderr naming the flag.
set -u
: "${VFIO:?VFIO is the vfio binary}" "${MKHOST:?}"
tmp=$(mktemp -d) || exit 1
chmod 755 "$tmp"   # QEMU is asked what it offers as its own user (vfio-qemu, uid 999)
trap 'rm -rf "$tmp"' EXIT
python3 "$MKHOST" --preset desktop "$tmp/desktop" >/dev/null || exit 1
python3 "$MKHOST" --preset iommu-off "$tmp/off" >/dev/null || exit 1
failed=0

# expect STATUS ROOT STDERR-NEEDLE -- ARGS...
expect() {
	want=$1 root=$2 needle=$3
	shift 4
	VFIO_HOST_ROOT=$root NO_COLOR=1 "$VFIO" "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL: vfio $*: exit $got, want $want"; cat "$tmp/err"; failed=1
	elif [ -n "$needle" ] && ! grep -qF -- "$needle" "$tmp/err"; then
		echo "FAIL: vfio $*: stderr lacks '$needle':"; cat "$tmp/err"; failed=1
	else
		echo "ok: vfio $* -> $got"
	fi
}

d=$tmp/desktop
expect 2 "$d" "unknown flag '-pcie'; did you mean -pci?" -- -pcie x
expect 2 "$d" "-memory: '0' is zero" -- -m 0
expect 2 "$d" "was split into -tap, -bridge and -hostint" -- -bridge tap0,br0,eth0
expect 2 "$d" "unterminated single quote" -- -extras "-device 'x"
expect 2 "$d" "no -image came before it" -- -imageformat raw
expect 2 "$d" "is not a valid extended regular expression" -- -pci 'a('
# The args-file fuzzer's find: glibc's regcomp passed 2 GB on it.
expect 2 "$d" "stacks quantifiers: '+' at position 14" -- -pci 'NVIDIA Corpo+++++++++++++++++++++++++++ration|00'
# QEMU must stay the supervisor's child with its one monitor: not even -force runs these.
expect 2 "$d" "-extras '-daemonize': QEMU would detach" -- -force -run -extras -daemonize
expect 2 "$d" "-extras '-qmp'" -- -extras '-qmp unix:/tmp/q,server=on,wait=off'
expect 2 "$d" "stacks quantifiers" -- -usb 'Logitech+++++++++++++++++++++++++++|046d'
# What -run would refuse later, refused by the dry run already.
expect 2 "$d" "-name: \".hidden\" is not a guest name" -- -name .hidden
expect 2 "$d" "-name: \"-x\" is not a guest name" -- -name -x
expect 2 "$d" "host port tcp 2222 is already forwarded" -- -portforward tcp:2222:22 -portforward tcp:2222:80
expect 2 "$d" "-lgsize 8T: at most 1024M" -- -lgsize 8T
# A host without interrupt remapping: -run refuses before any change, -force warns.
python3 "$MKHOST" --preset desktop --spec /dev/stdin "$tmp/noir" >/dev/null <<'JSON' || exit 1
{"intremap": false}
JSON
expect 1 "$tmp/noir" "the kernel does not remap interrupts" -- -run -pci 0000:02:00.0 -nonet -noBios
[ ! -e "$tmp/noir/run/vfio" ] || { echo "FAIL: -run made its runtime directory"; failed=1; }
expect 0 "$tmp/noir" "-force: -pci: 0000:02:00.0: the kernel does not remap interrupts" -- -force -pci 0000:02:00.0 -nonet
# QEMU's modules, asked once and cached per binary and module directory:
# the fake QEMU with no modules lacks SPICE, qxl and usb-redir for -spice.
mkdir -p "$tmp/mods"
VFIO_QEMU=$QEMU_MOCK QEMU_MODULE_DIR=$tmp/mods expect 1 "$d" "its module ui-spice-core is not installed" -- -spice -nonet
grep -qF "has no device 'qxl-vga': its module hw-display-qxl" "$tmp/err" || { echo "FAIL: qxl not named"; failed=1; }
touch "$tmp/mods/ui-spice-core.so" "$tmp/mods/hw-display-qxl.so" "$tmp/mods/hw-usb-redirect.so"
VFIO_QEMU=$QEMU_MOCK QEMU_MODULE_DIR=$tmp/mods expect 0 "$d" "" -- -spice -nonet
expect 0 "$d" "" -- -help
expect 0 "$d" "" -- -version
expect 0 "$d" "" -- -colortest
expect 0 "$d" "" -- -iommugroups
expect 0 "$d" "" -- -cputhreads
expect 0 "$d" "" -- -m 4G -nonet
expect 1 "$d" "-image /nonexistent.img: no such file" -- -image /nonexistent.img
expect 1 "$tmp/off" "amd_iommu=on" -- -pci USB
expect 0 "$tmp/off" "-force: the IOMMU is off" -- -pci USB -force
expect 1 "$d" "-bridge br0: there is no bridge named br0" -- -bridge br0

# -quiet prints only errors: nothing on stdout, the error on stderr.
expect 1 "$d" "no such file" -- -quiet -image /nonexistent.img
if [ -s "$tmp/out" ]; then echo "FAIL: -quiet printed on stdout:"; cat "$tmp/out"; failed=1; fi

# -help comes from the flag table: every flag of the original is in it.
VFIO_HOST_ROOT=$d "$VFIO" -help >"$tmp/help"
for f in -image -imageformat -iso -nvme -noVirtio -bios -noBios -biosvars -secureboot -tpm -win11 \
	-memory -hugepages -pinvcpus -cputhreads -iommugroups -pci -usb -romfile -bridge -tap -hostint \
	-nonet -portforward -hyperv -hostaudio -looking-glass -spice -qemu-agent -agents -kernel -initrd \
	-cmdline -extras -ignorevtcon -killx -force -quiet -nocolor -colortest -help -run -name -json -version; do
	grep -q -- "  $f" "$tmp/help" || { echo "FAIL: -help lacks $f"; failed=1; }
done

# Colour: never when piped, and NO_COLOR / -nocolor win even for -colortest's
# neighbours (the rundown); -colortest itself always shows colours.
VFIO_HOST_ROOT=$d "$VFIO" -nonet >"$tmp/plain" 2>&1
if grep -q "$(printf '\033')" "$tmp/plain"; then echo "FAIL: colour codes in piped output"; failed=1; fi
VFIO_HOST_ROOT=$d "$VFIO" -colortest >"$tmp/colors"
grep -q "$(printf '\033')\[31m" "$tmp/colors" || { echo "FAIL: -colortest shows no red"; failed=1; }

# On a terminal the rundown is coloured; NO_COLOR and -nocolor turn it off.
if command -v script >/dev/null 2>&1; then
	tty_run() { VFIO_HOST_ROOT=$d script -qec "$*" /dev/null; }
	tty_run "env -u NO_COLOR '$VFIO' -nonet" >"$tmp/tty"
	grep -q "$(printf '\033')\[1m" "$tmp/tty" || { echo "FAIL: no colour on a TTY"; failed=1; }
	tty_run "env NO_COLOR=1 '$VFIO' -nonet" >"$tmp/tty"
	if grep -q "$(printf '\033')" "$tmp/tty"; then echo "FAIL: colour despite NO_COLOR"; failed=1; fi
	tty_run "env -u NO_COLOR '$VFIO' -nonet -nocolor" >"$tmp/tty"
	if grep -q "$(printf '\033')" "$tmp/tty"; then echo "FAIL: colour despite -nocolor"; failed=1; fi
fi

# -hostaudio asks QEMU for its audio drivers: PipeWire when it has it, else
# pa; the sound server is QEMU's user's (here -user nobody's).
printf '#!/bin/sh\nprintf "Available audio drivers:\\nnone\\npa\\npipewire\\n"\n' >"$tmp/qemu-pw"
printf '#!/bin/sh\nprintf "Available audio drivers:\\nnone\\npa\\n"\n' >"$tmp/qemu-pa"
chmod +x "$tmp/qemu-pw" "$tmp/qemu-pa"
nobody=$(id -u nobody)
mkdir -p "$d/run/user/$nobody"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$d/run/user/$nobody/pipewire-0"
VFIO_HOST_ROOT=$d VFIO_QEMU=$tmp/qemu-pw "$VFIO" -hostaudio -nonet -user nobody >"$tmp/out" 2>&1
grep -q -- "-audiodev pipewire,id=snd0" "$tmp/out" || { echo "FAIL: no pipewire audiodev"; cat "$tmp/out"; failed=1; }
VFIO_HOST_ROOT=$d VFIO_QEMU=$tmp/qemu-pa "$VFIO" -hostaudio -nonet -user nobody >"$tmp/out" 2>&1
grep -q -- "-audiodev pa,id=snd0,server=unix:$d/run/user/$nobody/pulse/native" "$tmp/out" ||
	{ echo "FAIL: no pa audiodev on the user's pulse socket"; cat "$tmp/out"; failed=1; }
rm -f "$d/run/user/$nobody/pipewire-0"
# As root with nobody behind it, QEMU is vfio's own user, who has no sound server.
VFIO_QEMU=$tmp/qemu-pa expect 1 "$d" "-hostaudio: QEMU runs as vfio's own user vfio-qemu, which has no sound server" -- \
	-hostaudio -nonet

# -run refuses with a plan error, and without the session area says so.
expect 1 "$d" "no such file" -- -run -image /nonexistent.img
exit $failed
