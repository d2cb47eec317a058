#!/bin/sh
# The VFIO_* variables choose what root runs ($VFIO_QEMU, $VFIO_HOST_ROOT,
# ...): the real binary honours them in a root shell and ignores them, naming
# each, when it runs for a sudo/doas/pkexec caller (src/common/vfioenv.h).
# test-vfioenv.sh CASE
set -u
: "${VFIO:?VFIO is the vfio binary}" "${MKHOST:?}"
[ "$(id -u)" = 0 ] || { echo "skip: needs root (the rule is about root)"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
python3 "$MKHOST" --preset desktop "$tmp/host" >/dev/null || exit 1
fail() { echo "FAIL: $*"; echo "--- stderr:"; cat "$tmp/err"; exit 1; }

# dry [VAR=VALUE...]: a JSON dry run with the fixture and a fake QEMU named
dry() {
	env -u SUDO_UID -u DOAS_USER -u PKEXEC_UID "$@" VFIO_HOST_ROOT="$tmp/host" VFIO_QEMU=/opt/evil/qemu \
	    NO_COLOR=1 "$VFIO" -json -noBios -nonet >"$tmp/out" 2>"$tmp/err"
	binary=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["argv"][0])' "$tmp/out" 2>/dev/null)
}

case $1 in
honoured-in-a-root-shell)
	dry
	[ "$binary" = /opt/evil/qemu ] || fail "QEMU is '$binary', want \$VFIO_QEMU"
	! grep -q "ignoring" "$tmp/err" || fail "a root shell's variables were ignored"
	;;
ignored-for-a-sudo-caller)
	for caller in SUDO_UID=1000 DOAS_USER=alice PKEXEC_UID=1000; do
		dry "$caller"
		[ "$binary" = qemu-system-x86_64 ] || fail "$caller: QEMU is '$binary', want the default"
		grep -qF 'ignoring $VFIO_QEMU' "$tmp/err" || fail "$caller: \$VFIO_QEMU not named as ignored"
		grep -qF 'ignoring $VFIO_HOST_ROOT' "$tmp/err" || fail "$caller: \$VFIO_HOST_ROOT not named"
		grep -qF "(${caller%%=*} is set)" "$tmp/err" || fail "$caller: the reason is not given"
		[ "$(grep -c 'ignoring \$VFIO_HOST_ROOT' "$tmp/err")" = 1 ] || fail "$caller: warned more than once"
	done
	;;
*) echo "unknown case $1"; exit 2 ;;
esac
echo ok
