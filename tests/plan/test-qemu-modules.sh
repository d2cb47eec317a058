#!/usr/bin/env bash
# The real QEMU without a module the flags need: the dry run names the
# module and its package and exits 1, before anything on the host changes;
# once the module is installed the cached answer is noticed stale and the
# dry run passes. The missing module is made the way a fresh machine has
# it: QEMU's module directory, in a private mount namespace, without
# audio-pa.so (the PulseAudio driver Debian ships in qemu-system-gui).
#
# Needs: VFIO, MKHOST (set by meson); root, unshare and qemu-system-x86_64.
set -u
QEMU=$(command -v qemu-system-x86_64) || { echo "skip: no qemu-system-x86_64"; exit 77; }
if [ -z "${QEMU_MODULES_IN_NS:-}" ]; then
	[ "$(id -u)" = 0 ] && command -v unshare > /dev/null && unshare -m true 2> /dev/null ||
		{ echo "skip: needs root and unshare -m"; exit 77; }
	QEMU_MODULES_IN_NS=1 exec unshare -m --propagation private "$0" "$@"
fi
MODDIR=
for d in "$(dirname "$(readlink -f "$QEMU")")"/../lib/*/qemu "$(dirname "$(readlink -f "$QEMU")")"/../lib/qemu; do
	[ -f "$d/audio-pa.so" ] && MODDIR=$(readlink -f "$d") && break
done
[ -n "$MODDIR" ] || { echo "skip: this QEMU has no audio-pa module to take away"; exit 77; }

T=$(mktemp -d /tmp/vfio-qemu-modules-XXXXXX)
trap 'umount "$MODDIR" 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/out" ] && cat "$T/out" >&2; exit 1; }

python3 "$MKHOST" --preset desktop "$T/host" > /dev/null || fail "mkhost"
# The sound server is QEMU's user's: -user nobody's below.
nobody=$(id -u nobody)
mkdir -p "$T/host/run/user/$nobody/pulse"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/host/run/user/$nobody/pulse/native"
export VFIO_HOST_ROOT=$T/host NO_COLOR=1
unset VFIO_QEMU SUDO_UID SUDO_GID

# QEMU's modules, less PulseAudio's, over its module directory.
mkdir "$T/mods"
cp -a "$MODDIR"/. "$T/mods/"
mv "$T/mods/audio-pa.so" "$T/audio-pa.so"
mount --bind "$T/mods" "$MODDIR" || fail "bind mount"

before=$(find "$T/host" -path "$T/host/var/cache/vfio" -prune -o -print | sort | md5sum)
"$VFIO" -hostaudio -nonet -user nobody > "$T/out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "exit status $rc, want 1"
grep -qF "has no audio driver 'pa': its module audio-pa is not installed" "$T/out" || fail "no module error"
grep -qF "apt install qemu-system-gui" "$T/out" || fail "the package is not named"
# -run refuses before touching the host
"$VFIO" -run -hostaudio -nonet -user nobody > "$T/out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "-run exit status $rc, want 1"
[ ! -e "$T/host/run/vfio" ] || fail "-run made its runtime directory"
after=$(find "$T/host" -path "$T/host/var/cache/vfio" -prune -o -print | sort | md5sum)
[ "$before" = "$after" ] || fail "the host changed"
ls "$T/host/var/cache/vfio/qemu/"*.json > /dev/null 2>&1 || fail "no capability cache written"

# Installing the module changes its directory: the cache is stale.
cp -a "$T/audio-pa.so" "$T/mods/"
[ -f "$MODDIR/audio-pa.so" ] || fail "could not put the module back"
"$VFIO" -hostaudio -nonet -user nobody > "$T/out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "with the module: exit status $rc, want 0"
grep -qF -- "-audiodev pa,id=snd0" "$T/out" || fail "no pa audiodev"
echo "ok"
