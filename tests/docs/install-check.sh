#!/bin/sh
# A staged install (meson install --destdir) holds everything a package
# needs: the vfio and vfioctl binaries, both man pages
# (rendered roff), the bash completion under both command names, and the
# systemd unit whose ExecStart names the installed vfio, and the sysusers.d
# file for vfio's own user for QEMU.
set -u
: "${VFIO_BUILDDIR:?VFIO_BUILDDIR is the build directory}"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failed=0

if ! meson install -C "$VFIO_BUILDDIR" --destdir "$tmp/stage" --no-rebuild --quiet >"$tmp/log" 2>&1; then
	echo "FAIL: meson install --destdir failed:"; cat "$tmp/log"; exit 1
fi

prefix=$(meson introspect --buildoptions "$VFIO_BUILDDIR" |
	python3 -c 'import json,sys; print({o["name"]: o["value"] for o in json.load(sys.stdin)}["prefix"])')
stage=$tmp/stage

# expect DESCRIPTION FIND-PATH-PATTERN: exactly one installed file matches.
found=
expect() {
	found=$(cd "$stage" && find . -path "$2" \( -type f -o -type l \) | sed 's|^\.||')
	if [ -z "$found" ]; then
		echo "FAIL: no $1 installed (looked for $2)"; failed=1
	else
		echo "ok: $1 at $found"
	fi
}

expect "vfio binary" "*/bin/vfio"
[ -n "$found" ] && { [ -x "$stage$found" ] || { echo "FAIL: $found is not executable"; failed=1; }; }
[ "$found" = "$prefix/bin/vfio" ] || { echo "FAIL: vfio installed at '$found', not $prefix/bin/vfio"; failed=1; }
vfio_installed=$found

expect "vfioctl binary" "*/bin/vfioctl"
[ -n "$found" ] && { [ -x "$stage$found" ] || { echo "FAIL: $found is not executable"; failed=1; }; }

for page in vfio.1 vfioctl.1; do
	expect "man page $page" "*/man1/$page"
	if [ -n "$found" ] && ! grep -q '^\.TH' "$stage$found"; then
		echo "FAIL: $found is not a rendered man page (no .TH)"; failed=1
	fi
done

for cmd in vfio vfioctl; do
	expect "bash completion for $cmd" "*/bash-completion/completions/$cmd"
	if [ -n "$found" ] && ! bash -n "$stage$found"; then
		echo "FAIL: $found is not valid bash"; failed=1
	fi
	if [ -n "$found" ] && ! grep -q "complete -F _$cmd $cmd" "$stage$found"; then
		echo "FAIL: $found does not register a completion for $cmd"; failed=1
	fi
done

expect "systemd unit" "*/systemd/system/vfio@.service"
if [ -n "$found" ]; then
	unit=$stage$found
	grep -qx "ExecStart=$vfio_installed -run -name %i -args /etc/vfio/%i.args" "$unit" ||
		{ echo "FAIL: $found does not run $vfio_installed -run -name %i -args /etc/vfio/%i.args:"; grep Exec "$unit"; failed=1; }
	grep -qx "Type=notify" "$unit" || { echo "FAIL: $found is not Type=notify"; failed=1; }
	# systemctl stop must outlast the guest's power-down (-shutdowntimeout, 60 s by
	# default) plus QEMU's 10 s to exit after quit, or systemd SIGKILLs mid-teardown.
	stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
	[ -n "$stop" ] && [ "$stop" -gt 70 ] ||
		{ echo "FAIL: $found: TimeoutStopSec='$stop' does not outlast the default -shutdowntimeout"; failed=1; }
	# QEMU is neither signalled nor killed by systemd (it outlives a restart
	# of its supervisor): docs-systemd-unit-keeps-the-guest-across-restarts.
	grep -qx "KillMode=process" "$unit" || { echo "FAIL: $found would kill QEMU with the supervisor (KillMode=process missing)"; failed=1; }
	if command -v systemd-analyze >/dev/null 2>&1; then
		# Check the unit's keys as an instance (executables point at the staged copy).
		sed "s|$vfio_installed|$stage$vfio_installed|g" "$unit" >"$tmp/vfio@check.service"
		out=$(cd "$tmp" && systemd-analyze verify --man=no "./vfio@check.service" 2>&1 </dev/null)
		if echo "$out" | grep -qiE 'unknown (key|section)|invalid|failed to parse|not executable'; then
			echo "FAIL: systemd-analyze verify complains about vfio@.service:"; echo "$out"; failed=1
		else
			echo "ok: systemd-analyze verify accepts vfio@.service"
		fi
	fi
fi

expect "sysusers.d entry for vfio-qemu" "*/sysusers.d/vfio.conf"
if [ -n "$found" ]; then
	grep -q '^u vfio-qemu - ' "$stage$found" || { echo "FAIL: $found does not make the user vfio-qemu"; failed=1; }
	if command -v systemd-sysusers >/dev/null 2>&1; then
		# What systemd-sysusers would do with it, on an empty root.
		mkdir -p "$tmp/sysroot/etc"
		if systemd-sysusers --root="$tmp/sysroot" "$stage$found" >"$tmp/sysusers.log" 2>&1 &&
		    grep -q '^vfio-qemu:' "$tmp/sysroot/etc/passwd"; then
			echo "ok: systemd-sysusers makes vfio-qemu from it"
		else
			echo "FAIL: systemd-sysusers does not make vfio-qemu from $found:"; cat "$tmp/sysusers.log"; failed=1
		fi
	fi
fi

[ "$failed" -eq 0 ] && echo "staged install complete"
exit "$failed"
