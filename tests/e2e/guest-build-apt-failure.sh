#!/usr/bin/env bash
# tools/build-test-guest, when apt cannot download the packages: exits 2 (the
# status e2e tests skip on), says which download failed and what to do, and
# leaves no vmlinuz/initrd.img behind. apt-get is replaced by a stand-in whose
# download fails like apt's own; apt-cache is the real one.
set -u
src=${VFIO_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
apt-cache depends linux-image-amd64 2>/dev/null | grep -q 'Depends: linux-image-' ||
	{ echo "SKIP: apt knows no linux-image-amd64 here (empty package lists): run apt-get update as root"; exit 77; }

mkdir "$tmp/bin"
cat >"$tmp/bin/apt-get" <<'FAKE'
#!/bin/sh
echo "E: Failed to fetch http://deb.debian.org/debian/pool/main/l/linux-signed-amd64/x.deb  Could not resolve 'deb.debian.org'" >&2
exit 100
FAKE
chmod +x "$tmp/bin/apt-get"

PATH=$tmp/bin:$PATH "$src/tools/build-test-guest" "$tmp/guest" >"$tmp/out" 2>&1
rc=$?
cat "$tmp/out"
fail() { echo "FAIL: $*"; exit 1; }
[ $rc -eq 2 ] || fail "exit status $rc, expected 2 (apt cannot provide the packages)"
grep -q "apt-get download .* failed" "$tmp/out" || fail "the message does not say the apt-get download failed"
grep -q "Could not resolve" "$tmp/out" || fail "apt's own error is not shown"
grep -q "check the network" "$tmp/out" || fail "the message does not say what to do"
[ ! -e "$tmp/guest/vmlinuz" ] && [ ! -e "$tmp/guest/initrd.img" ] || fail "a guest was left behind although nothing was downloaded"
echo PASS
