#!/usr/bin/env bash
# The supervised run against the fake QEMU (qemu-mock), one behaviour per
# case: session-test.sh CASE. Each case builds a host-root fixture, runs the
# supervisor on a hand-written plan through session-driver, and checks what a
# user would see: the exit status, the messages, the QMP conversation the
# fake recorded, and the host root byte for byte afterwards.
#
# Needs: VFIO_BUILDDIR, VFIO_SRCDIR, MKHOST (set by meson).
set -u
case_name=$1
B=$VFIO_BUILDDIR
DRIVER=${VFIO_TEST_DRIVER:-$B/tests/session/session-driver}	# tests/valgrind wraps it
MOCK=$B/tests/qmp-mock/qemu-mock
TREESNAP=$VFIO_SRCDIR/tests/session/treesnap.py
[ -x "$MOCK" ] || { echo "skip: no qemu-mock built"; exit 77; }

T=$(mktemp -d /tmp/vfio-session-XXXXXX)
chmod 1777 "$T"   # the fake QEMU may run as uid 1000 and writes its records here
HOST=$T/host
NAME=t
children=()
cleanup() {
	for p in "${children[@]}"; do kill -9 "$p" 2>/dev/null; done
	# A fake QEMU a test left behind (the crash cases) must not outlive it.
	[ -f "$T/qemu.pid" ] && kill -9 "$(cat "$T/qemu.pid")" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [ -f "$T/out" ] && { echo "--- supervisor output:"; cat "$T/out"; } >&2; exit 1; }
expect_in() { grep -qF -- "$2" "$1" || fail "expected '$2' in $1"; }
expect_not_in() { ! grep -qF -- "$2" "$1" || fail "did not expect '$2' in $1"; }

python3 "$MKHOST" --preset desktop "$HOST" || fail "mkhost"
python3 "$TREESNAP" "$HOST" > "$T/before"

export VFIO_HOST_ROOT=$HOST VFIO_QEMU=$MOCK
export QMP_MOCK_SCENARIO=$T/scenario.json QMP_MOCK_RECORD=$T/record QMP_MOCK_ARGV=$T/argv
unset SUDO_UID SUDO_GID

# The plan: three host changes (dev-chown, so each is visible in the tree),
# a user-mode NIC attached over QMP into root port 1.
plan() {
	cat > "$T/plan.json" <<JSON
{"argv": ["qemu-system-x86_64", "-name", "$NAME", "-machine", "q35", "-nodefaults", "-S",
  "-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control",
  "-m", "512", "-smp", "${SMP:-1}",
  "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,port=1,addr=0x1c.0",
  "-device", "pcie-root-port,id=rp2,bus=pcie.0,chassis=2,port=2,addr=0x1c.1",
  "-device", "qemu-xhci,id=xhci,bus=pcie.0",
  "-add-fd", "fd=4,set=1,opaque=console-log",
  "-chardev", "socket,id=console,fd=5,server=on,wait=off,logfile=/dev/fdset/1", "-serial", "chardev:console"
  ${EXTRA_ARGV:-}],
 "qmp": [
  {"execute": "netdev_add", "arguments": {"type": "user", "id": "net0"}},
  {"execute": "device_add", "arguments": {"driver": "virtio-net-pci", "id": "nic0", "netdev": "net0", "bus": "rp1"}}
  ${EXTRA_QMP:-}
 ],
 "host_changes": [ ${EXTRA_CHANGES:-}
  {"action": "dev-chown", "target": "${NODE1:-/dev/kvm}", "args": {"uid": 1000, "gid": 1000}},
  {"action": "dev-chown", "target": "${NODE2:-/dev/vhost-net}", "args": {"uid": 1000, "gid": 1000}},
  {"action": "dev-chown", "target": "${NODE3:-/dev/bus/usb/001/004}", "args": {"uid": 1000, "gid": 1000}}
 ],
 "viewers": [${VIEWERS:-}],
 "errors": [${ERRORS:-}],
 "block_files": [${BLOCK_FILES:-}],
 "n_root_ports": 2, "memory_mib": 512, "has_xhci": true ${EXTRA_PLAN:-}}
JSON
}

scenario() { printf '%s\n' "$1" > "$T/scenario.json"; }

# The guest powers off by itself shortly after cont.
GUEST_POWEROFF='{"commands": [{"command": "cont", "reply": {"return": {}}, "effects": true,
  "after": [{"delay_ms": 100}, {"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}, {"exit": 0}]}]}'
# The guest runs until told otherwise.
GUEST_RUNS='{}'

run() {	# run [driver args]: run the supervisor in the foreground, status in $rc
	"$DRIVER" run "$T/plan.json" -name "$NAME" "$@" < /dev/null > "$T/out" 2>&1
	rc=$?
}

start() {	# start [driver args]: run it in the background, pid in $sup
	"$DRIVER" run "$T/plan.json" -name "$NAME" "$@" < /dev/null > "$T/out" 2>&1 &
	sup=$!
	children+=("$sup")
}

finish() {	# finish: wait for the background supervisor, status in $rc
	wait "$sup"
	rc=$?
}

wait_for() {	# wait_for DESCRIPTION COMMAND...: up to 30 s, for the command to succeed
	local what=$1; shift
	for _ in $(seq 300); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "timed out waiting for $what"
}

running() { grep -q '"state": "running"' "$HOST/run/vfio/$NAME/status.json"; }
recorded() { grep -q "\"$1\"" "$T/record"; }

restored() {	# the host root is byte for byte as before the run
	python3 "$TREESNAP" "$HOST" > "$T/after"
	diff -u "$T/before" "$T/after" >&2 || fail "the host root differs from before the run"
}

owner() { stat -c %u "$HOST$1"; }
journal_qemu_pid() {	# the QEMU pid the journal recorded, if any
	python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "qemu" in r: print(r["qemu"]["pid"])' "$HOST/run/vfio/$NAME/journal"
}

# The byte in the middle of each record of a start (the run record, 3
# changes begun and done, then QEMU's pid: 8 records), from a run killed
# after the last one.
journal_midpoints() {
	scenario '{}'
	VFIO_TEST_CRASH_AT=8 run
	[ $rc -eq 137 ] || fail "measuring run: exit status $rc"
	python3 -c 'import sys
off = 0
for line in open(sys.argv[1], "rb"):
    print(off + len(line) // 2)
    off += len(line)' "$HOST/run/vfio/$NAME/journal"
	journal_qemu_pid > "$T/qemu.pid"
	"$DRIVER" restore "$NAME" > "$T/out" 2>&1 || fail "measuring run: restore failed"
	restored
}

# A fake QEMU whose pid never reached the journal outlives a killed
# supervisor (a known limit, docs/architecture.md): the test stops it.
stop_leftover_qemu() {
	for p in $(pgrep -f "^$MOCK" || true); do
		grep -q "VFIO_HOST_ROOT=$HOST" "/proc/$p/environ" 2>/dev/null && kill -9 "$p"
	done
	return 0
}

case $case_name in
guest-poweroff-restores-and-exits-0)
	plan; scenario "$GUEST_POWEROFF"
	run
	[ $rc -eq 0 ] || fail "exit status $rc, want 0"
	expect_in "$T/out" "the guest shut down (by the guest"
	expect_in "$T/out" "restored: dev-chown /dev/kvm"
	recorded device_add || fail "no device_add sent"
	restored
	;;
host-changes-are-undone-newest-first)
	plan; scenario "$GUEST_POWEROFF"
	run
	[ $rc -eq 0 ] || fail "exit status $rc"
	grep "restored:" "$T/out" | sed 's/.*restored: //' > "$T/order"
	printf '%s\n' "dev-chown /dev/bus/usb/001/004" "dev-chown /dev/vhost-net" "dev-chown /dev/kvm" > "$T/want"
	diff -u "$T/want" "$T/order" >&2 || fail "undo order"
	;;
status-shows-state-devices-and-changes)
	plan; scenario "$GUEST_RUNS"
	start
	wait_for "the guest to run" running
	st=$HOST/run/vfio/$NAME/status.json
	python3 - "$st" <<'PY' || fail "status.json content"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["state"] == "running", s
assert [d["id"] for d in s["devices"]["attached"]] == ["nic0"], s
assert s["devices"]["free_root_ports"] == ["rp2"], s
assert [c["target"] for c in s["host_changes"]] == ["/dev/kvm", "/dev/vhost-net", "/dev/bus/usb/001/004"], s
PY
	[ "$(stat -c %a "$HOST/run/vfio/$NAME")" = 700 ] || fail "runtime dir mode"
	[ "$(owner /dev/kvm)" = 1000 ] || fail "/dev/kvm not given to uid 1000 while running"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	restored
	;;
sigterm-powers-the-guest-down)
	plan; scenario "$GUEST_RUNS"
	start
	wait_for "the guest to run" running
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	recorded system_powerdown || fail "no system_powerdown"
	! recorded quit || fail "quit sent although the guest powered down"
	expect_in "$T/out" "asking the guest to power down"
	restored
	;;
sigint-quits-after-the-shutdown-timeout)
	plan; scenario '{"guest": {"ignore_powerdown": true}}'
	start -shutdowntimeout 1
	wait_for "the guest to run" running
	kill -INT "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	recorded system_powerdown || fail "no system_powerdown"
	recorded quit || fail "no quit after the timeout"
	expect_in "$T/out" "did not power down within 1 s"
	restored
	;;
second-signal-quits-at-once)
	plan; scenario '{"guest": {"ignore_powerdown": true}}'
	start -shutdowntimeout 600
	wait_for "the guest to run" running
	kill -INT "$sup"
	wait_for "system_powerdown" recorded system_powerdown
	kill -INT "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	recorded quit || fail "no quit on the second signal"
	expect_in "$T/out" "again: quitting QEMU now"
	restored
	;;
qemu-quit-by-host-shutdown-event)
	plan; scenario '{"commands": [{"command": "cont", "reply": {"return": {}}, "effects": true,
	  "after": [{"delay_ms": 100}, {"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}, {"exit": 0}]}]}'
	run
	[ $rc -eq 0 ] || fail "exit status $rc"
	expect_in "$T/out" "the guest shut down (by the host, host-signal)"
	restored
	;;
qemu-exits-without-event)
	plan; scenario '{"commands": [{"command": "cont", "reply": {"return": {}}, "effects": true,
	  "after": [{"delay_ms": 100}, {"exit": 0}]}]}'
	run
	[ $rc -eq 0 ] || fail "exit status $rc"
	expect_in "$T/out" "QEMU exited (exit status 0)"
	restored
	;;
qemu-crash-before-greeting)
	plan; scenario '{"start": [{"signal": "SEGV"}]}'
	run
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_in "$T/out" "QEMU exited while starting"
	expect_in "$T/out" "the host is restored"
	restored
	;;
qemu-crash-during-attach)
	plan; scenario '{"commands": [{"command": "device_add", "before": [{"signal": "SEGV"}], "reply": {"return": {}}}]}'
	run
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_in "$T/out" "while attaching"
	restored
	;;
qemu-crash-while-running)
	plan; scenario '{"commands": [{"command": "cont", "reply": {"return": {}}, "effects": true,
	  "after": [{"delay_ms": 100}, {"signal": "SEGV"}]}]}'
	run
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_in "$T/out" "while the guest was running (without a SHUTDOWN event: it crashed)"
	restored
	;;
failed-device-add-tears-down)
	plan; scenario '{"commands": [{"command": "device_add", "reply": {"error": {"class": "GenericError", "desc": "Bus '"'"'rp1'"'"' not found"}}}]}'
	run
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_in "$T/out" "QEMU refused device_add nic0: Bus 'rp1' not found"
	recorded quit || fail "QEMU not told to quit"
	! recorded cont || fail "the guest was started after a failed attach"
	restored
	;;
plan-errors-refuse-before-any-change)
	ERRORS='"-pci 01:00.0: the device is in IOMMU group 1 with 0000:01:00.1; pass the whole group"'
	plan; scenario "$GUEST_POWEROFF"
	run
	[ $rc -eq 2 ] || fail "exit status $rc, want 2"
	expect_in "$T/out" "pass the whole group"
	expect_in "$T/out" "-force"
	[ ! -e "$T/record" ] || fail "QEMU was started"
	restored
	;;
force-runs-despite-plan-errors)
	ERRORS='"something the plan disliked"'
	plan; scenario "$GUEST_POWEROFF"
	run -force
	[ $rc -eq 0 ] || fail "exit status $rc"
	expect_in "$T/out" "going ahead: -force"
	restored
	;;
second-supervisor-same-name-refused)
	plan; scenario "$GUEST_RUNS"
	start
	first=$sup
	wait_for "the guest to run" running
	"$DRIVER" run "$T/plan.json" -name "$NAME" < /dev/null > "$T/out2" 2>&1
	rc2=$?
	[ $rc2 -eq 2 ] || fail "second supervisor: exit status $rc2, want 2"
	expect_in "$T/out2" "already run by the supervisor with pid $first"
	running || fail "the first run was disturbed"
	kill -TERM "$first"; finish
	[ $rc -eq 0 ] || fail "first supervisor: exit status $rc"
	restored
	;;
console-log-kept-when-run-and-var-are-different-filesystems)
	# As on a real host: /run a tmpfs (in a private mount namespace), /var on disk.
	plan; scenario '{"guest": {"console": "guest: login prompt\n"}, "commands": [{"command": "cont",
	  "reply": {"return": {}}, "effects": true, "after": [{"delay_ms": 100},
	  {"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}, {"exit": 0}]}]}'
	[ "$(stat -f -c %T "$HOST/var")" != tmpfs ] || { echo "skip: $HOST/var is a tmpfs already"; exit 77; }
	unshare -m --propagation private sh -c 'mount -t tmpfs -o size=16m vfio-test "$1/run" && shift && exec "$@"' \
	    sh "$HOST" "$DRIVER" run "$T/plan.json" -name "$NAME" < /dev/null > "$T/out" 2>&1
	rc=$?
	[ $rc -eq 0 ] || fail "exit status $rc"
	expect_not_in "$T/out" "cannot keep the guest console log"
	[ "$(cat "$HOST/var/lib/vfio/$NAME/console.log")" = "guest: login prompt" ] || fail "the console log was not kept"
	[ "$(stat -c %u:%a "$HOST/var/lib/vfio/$NAME/console.log")" = 0:600 ] || fail "the kept log is not root's, 0600"
	;;
qemu-gets-a-clean-environment)
	# Root's secrets, PATH and HOME stay with the supervisor; the locale and TZ go along.
	plan; scenario "$GUEST_POWEROFF"
	EXTRA_ARGV=', "-display", "none"' plan
	home=$(getent passwd 1000 | cut -d: -f6); [ -n "$home" ] || home=/
	SUDO_UID=1000 SUDO_GID=1000 SECRET_TOKEN=hunter2 HOME=/root PATH="/usr/local/sbin:/sbin:$PATH" LANG=C.UTF-8 \
	    LC_TIME=C TZ=Europe/Berlin DISPLAY=:0 QMP_MOCK_ENV=$T/env.json run
	[ $rc -eq 0 ] || fail "exit status $rc"
	python3 - "$T/env.json" "$home" <<'PY2' || fail "QEMU's environment: $(cat "$T/env.json")"
import json, sys
env = dict(e.split("=", 1) for e in json.load(open(sys.argv[1]))["environ"])
mock = {k for k in env if k.startswith("QMP_MOCK_") or k.endswith("SAN_OPTIONS")}
want = {"PATH": "/usr/bin:/bin", "HOME": sys.argv[2], "LANG": "C.UTF-8", "LC_TIME": "C", "TZ": "Europe/Berlin"}
got = {k: v for k, v in env.items() if k not in mock}
assert got == want, got
PY2
	;;
qemu-gets-the-display-only-when-it-opens-a-window)
	plan; scenario "$GUEST_POWEROFF"
	DISPLAY=:7 WAYLAND_DISPLAY=wayland-7 QMP_MOCK_ENV=$T/env.json run
	[ $rc -eq 0 ] || fail "exit status $rc"
	grep -q '"DISPLAY=:7"' "$T/env.json" || fail "no DISPLAY for QEMU's window: $(cat "$T/env.json")"
	grep -q '"WAYLAND_DISPLAY=wayland-7"' "$T/env.json" || fail "no WAYLAND_DISPLAY for QEMU's window"
	EXTRA_ARGV=', "-display", "none"' plan
	DISPLAY=:7 WAYLAND_DISPLAY=wayland-7 QMP_MOCK_ENV=$T/env.json run
	[ $rc -eq 0 ] || fail "exit status $rc"
	! grep -q 'DISPLAY=' "$T/env.json" || fail "the display given to QEMU without a window: $(cat "$T/env.json")"
	;;
qemu-keeps-only-stdio-its-monitor-and-its-console)
	# Whatever started the supervisor left open (fds 7 and 9 here) stays with it.
	plan; scenario "$GUEST_POWEROFF"
	QMP_MOCK_ENV=$T/env.json run 7<"$TREESNAP" 9>"$T/stray"
	[ $rc -eq 0 ] || fail "exit status $rc"
	python3 - "$T/env.json" "$HOST/run/vfio/$NAME/console.log" <<'PY2' || fail "QEMU's descriptors: $(cat "$T/env.json")"
import json, sys
fds = json.load(open(sys.argv[1]))["fds"]
assert sorted(fds, key=int) == ["0", "1", "2", "3", "4", "5"], fds
assert fds["0"] == "/dev/null", fds
assert fds["3"].startswith("socket:") and fds["5"].startswith("socket:"), fds
assert fds["4"] == sys.argv[2], fds
PY2
	;;
serial-console-is-a-socket-qemu-serves-and-logs-to-console-log)
	# Terminal or not, the console is a socket QEMU serves (fd 5) and logs
	# to console.log (fd 4); both are made by the supervisor, root's and
	# private, so QEMU (dropped to the user) never creates a file in the
	# root-only directory, and a later supervisor can connect again.
	plan; scenario '{"guest": {"console": "guest: login prompt\n"}}'
	SUDO_UID=1000 SUDO_GID=1000 start
	wait_for "the guest to run" running
	qpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["qemu_pid"])' "$HOST/run/vfio/$NAME/status.json")
	[ "$(stat -c %u /proc/$qpid)" = 1000 ] || fail "QEMU does not run as uid 1000"
	[ "$(readlink "/proc/$qpid/fd/4")" = "$HOST/run/vfio/$NAME/console.log" ] ||
		fail "QEMU's fd 4 is $(readlink "/proc/$qpid/fd/4"), not the console log"
	for sock in qmp.sock console.sock; do
		[ -S "$HOST/run/vfio/$NAME/$sock" ] || fail "no $sock"
		[ "$(stat -c %u:%a "$HOST/run/vfio/$NAME/$sock")" = 0:600 ] || fail "$sock is not root's, 0600"
	done
	[ "$(cat "$HOST/run/vfio/$NAME/console.log")" = "guest: login prompt" ] || fail "the console log: $(cat "$HOST/run/vfio/$NAME/console.log")"
	python3 - "$T/argv" <<'PY' || fail "QEMU argv"
import json, sys
argv = json.load(open(sys.argv[1]))
assert argv[argv.index("-serial") + 1] == "chardev:console", argv
assert "socket,id=console,fd=5,server=on,wait=off,logfile=/dev/fdset/1" in argv, argv
assert "socket,id=qmp,fd=3,server=on,wait=off" in argv, argv
assert argv[argv.index("-add-fd") + 1] == "fd=4,set=1,opaque=console-log", argv
assert argv.count("-serial") == 1 and "-S" in argv, argv
assert "mon:stdio" not in argv, argv
PY
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	;;
console-relayed-to-the-terminal-and-qemu-survives-its-hangup)
	# With a terminal, the supervisor relays the console both ways (typed
	# input reaches the guest, its answer comes back); QEMU is not in the
	# terminal's session: killed supervisor, closed terminal, QEMU runs on.
	plan
	python3 - "$T/plan.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["console_tty"] = True
json.dump(p, open(sys.argv[1], "w"))
PY
	scenario '{}'
	python3 - "$DRIVER" "$T/plan.json" "$NAME" "$HOST/run/vfio/$NAME" "$T/qemu.pid" <<'PY' || fail "the console relay"
import json, os, pty, select, signal, subprocess, sys, time
driver, plan, name, rundir, qpidfile = sys.argv[1:]
master, slave = pty.openpty()
sup = subprocess.Popen([driver, "run", plan, "-name", name], stdin=slave, stdout=slave, stderr=slave,
                       start_new_session=True,
                       preexec_fn=lambda: __import__("fcntl").ioctl(0, __import__("termios").TIOCSCTTY, 0))
os.close(slave)
seen = b""
def read_until(want, secs):
    global seen
    end = time.monotonic() + secs
    while want not in seen:
        left = end - time.monotonic()
        if left <= 0:
            raise SystemExit("no %r on the terminal; it shows: %r" % (want, seen[-2000:]))
        r, _, _ = select.select([master], [], [], left)
        if r:
            try:
                seen += os.read(master, 4096)
            except OSError:
                raise SystemExit("the terminal closed; it showed: %r" % seen[-2000:])
read_until(b"is running", 30)
st = json.load(open(os.path.join(rundir, "status.json")))
qpid = st["qemu_pid"]
open(qpidfile, "w").write(str(qpid))
os.write(master, b"hello there\r")
read_until(b"guest: hello there", 30)
log = open(os.path.join(rundir, "console.log"), "rb").read()
assert b"guest: hello there" in log, log
# The supervisor dies, then the terminal closes: SIGHUP goes to its session.
sup.kill()
sup.wait()
os.close(master)
PY
	# QEMU was not in it: -restore finds it still running.
	"$DRIVER" restore "$NAME" > "$T/out" 2>&1 || fail "restore"
	expect_in "$T/out" "QEMU (pid $(cat "$T/qemu.pid")) from the previous run is still running"
	rm -r "$HOST/var/lib/vfio"    # the console log of the run is kept there, by design
	restored
	;;
qemu-runs-as-the-sudo-user-with-memlock-raised)
	plan; scenario "$GUEST_RUNS"
	SUDO_UID=1000 SUDO_GID=1000 start
	wait_for "the guest to run" running
	qpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["qemu_pid"])' "$HOST/run/vfio/$NAME/status.json")
	[ "$(stat -c %u /proc/$qpid)" = 1000 ] || fail "QEMU does not run as uid 1000"
	if (ulimit -l unlimited) 2>/dev/null; then
		grep -q "Max locked memory *unlimited *unlimited" /proc/$qpid/limits ||
			fail "memlock not raised: $(grep locked /proc/$qpid/limits)"
	else
		# No CAP_SYS_RESOURCE here: the hard limit, and a warning that says so.
		hard=$(( $(ulimit -H -l) * 1024 ))
		grep -q "Max locked memory *$hard *$hard" /proc/$qpid/limits ||
			fail "memlock not at the hard limit $hard: $(grep locked /proc/$qpid/limits)"
		expect_in "$T/out" "cannot raise the locked-memory limit for QEMU"
	fi
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	restored
	;;
usb-host-node-given-to-qemu-user)
	# The plan lists the node's dev-chown (plan-devices.c); the session makes exactly it.
	EXTRA_QMP=', {"execute": "device_add", "arguments": {"driver": "usb-host", "id": "usb-1-3", "bus": "xhci.0", "hostbus": 1, "hostaddr": 2}}'
	EXTRA_CHANGES='{"action": "dev-chown", "target": "/dev/bus/usb/001/002", "args": {"uid": 1000, "gid": 1000}},'
	plan; scenario "$GUEST_RUNS"
	SUDO_UID=1000 SUDO_GID=1000 start
	wait_for "the guest to run" running
	[ "$(owner /dev/bus/usb/001/002)" = 1000 ] || fail "/dev/bus/usb/001/002 not given to QEMU's user"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	expect_in "$T/out" "restored: dev-chown /dev/bus/usb/001/002"
	restored
	;;
vcpus-pinned-in-order)
	SMP=2 plan; scenario "$GUEST_RUNS"
	start -pinvcpus 0,1
	wait_for "the guest to run" running
	expect_in "$T/out" "vCPU 0 (thread"
	expect_in "$T/out" "pinned to host CPU 0"
	expect_in "$T/out" "pinned to host CPU 1"
	tid1=$(sed -n 's/.*vCPU 1 (thread \([0-9]*\)).*/\1/p' "$T/out")
	qpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["qemu_pid"])' "$HOST/run/vfio/$NAME/status.json")
	grep -q "Cpus_allowed_list:[[:space:]]*1$" /proc/$qpid/task/$tid1/status || fail "vCPU 1 thread not on CPU 1"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	;;
emulator-threads-kept-off-vcpu-cpus)
	# vCPU 0 on host CPU 1: QEMU's other threads (main loop, workers) must
	# not be allowed there, and the vCPU thread only there.
	SMP=1 plan; scenario "$GUEST_RUNS"
	start -pinvcpus 1
	wait_for "the guest to run" running
	expect_in "$T/out" "QEMU's other threads pinned to the host CPUs not given to vCPUs"
	tid0=$(sed -n 's/.*vCPU 0 (thread \([0-9]*\)).*/\1/p' "$T/out")
	qpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["qemu_pid"])' "$HOST/run/vfio/$NAME/status.json")
	python3 - "$qpid" "$tid0" <<'PY' || fail "QEMU's threads are not where they belong"
import os, sys
pid, vcpu = sys.argv[1], sys.argv[2]
def cpus(tid):
    for line in open(f"/proc/{pid}/task/{tid}/status"):
        if line.startswith("Cpus_allowed_list:"):
            out = set()
            for part in line.split()[1].split(","):
                a, _, b = part.partition("-")
                out.update(range(int(a), int(b or a) + 1))
            return out
others = [t for t in os.listdir(f"/proc/{pid}/task") if t != vcpu]
ok = cpus(vcpu) == {1} and len(others) > 0
for t in others:
    c = cpus(t)
    print(f"thread {t}: {sorted(c)}")
    ok = ok and 1 not in c and len(c) > 0
print(f"vCPU thread {vcpu}: {sorted(cpus(vcpu))}")
sys.exit(0 if ok else 1)
PY
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	;;
sd-notify-ready-after-cont-stopping-at-teardown)
	# A service manager's notify socket: READY=1 arrives only once QEMU
	# took `cont` (the listener looks at the fake's record when it does),
	# STOPPING=1 when the teardown starts.
	plan; scenario "$GUEST_RUNS"
	python3 - "$T/notify.sock" "$T/notify.log" "$T/record" <<'PY' &
import os, socket, sys
sock, log, record = sys.argv[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock)
os.chmod(sock, 0o777)
while True:
    msg = s.recv(4096).decode()
    try:
        cont = '"cont"' in open(record).read()
    except OSError:
        cont = False
    with open(log, "a") as f:
        f.write(msg.replace("\n", " ") + (" [after cont]" if cont else " [before cont]") + "\n")
    if "STOPPING=1" in msg:
        break
PY
	children+=($!)
	wait_for "the notify socket" test -S "$T/notify.sock"
	NOTIFY_SOCKET=$T/notify.sock start
	wait_for "the guest to run" running
	wait_for "READY=1" grep -q "READY=1" "$T/notify.log"
	expect_in "$T/notify.log" "READY=1 STATUS=guest $NAME running"
	grep "READY=1" "$T/notify.log" | grep -qF "[after cont]" || fail "READY=1 came before cont: $(cat "$T/notify.log")"
	expect_not_in "$T/notify.log" "STOPPING=1"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	wait_for "STOPPING=1" grep -q "STOPPING=1" "$T/notify.log"
	restored
	;;
no-notify-socket-sends-nothing-and-runs)
	# Outside a service manager nothing is sent and nothing complains.
	plan; scenario "$GUEST_POWEROFF"
	NOTIFY_SOCKET= run
	[ $rc -eq 0 ] || fail "exit status $rc"
	expect_not_in "$T/out" "service manager"
	restored
	;;
viewer-starts-after-cont-as-the-user-and-stops-at-teardown)
	# A fake remote-viewer: notes its uid, argv, DISPLAY and whether QEMU
	# already took `cont` (the fake QEMU's record), then waits like a window.
	cat > "$T/viewer" <<SH
#!/bin/sh
if grep -q '"cont"' "$T/record" 2>/dev/null; then when=after-cont; else when=before-cont; fi
echo "uid=\$(id -u) display=\$DISPLAY \$when args=\$*" > "$T/viewer.out"
exec sleep 300
SH
	chmod 755 "$T/viewer"
	VIEWERS="{\"action\": \"companion-start\", \"target\": \"viewer\", \"args\": {\"argv\": [\"$T/viewer\", \"spice+unix:///run/vfio/$NAME/spice.sock\"], \"env\": [\"DISPLAY=:7\"], \"uid\": 1000, \"gid\": 1000, \"log\": \"/run/vfio/$NAME/viewer.log\", \"pidfile\": \"/run/vfio/$NAME/viewer.pid\"}}"
	plan; scenario "$GUEST_RUNS"
	start
	wait_for "the guest to run" running
	wait_for "the viewer to start" test -s "$T/viewer.out"
	expect_in "$T/viewer.out" "uid=1000 display=:7 after-cont args=spice+unix:///run/vfio/$NAME/spice.sock"
	read -r vpid _ < "$HOST/run/vfio/$NAME/viewer.pid"
	kill -0 "$vpid" || fail "the viewer is not running"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	expect_in "$T/out" "restored: companion-start viewer"
	! kill -0 "$vpid" 2>/dev/null || [ "$(awk '{print $3}' /proc/$vpid/stat)" = Z ] || fail "the viewer outlived the guest"
	restored
	;;
killed-at-every-journal-step-then-restore)
	# The run record, 3 changes begun and done, QEMU's pid, nic0's
	# device_add, the guest started: 10 records. -restore is the explicit
	# "put the host back now": it stops a QEMU that is still running.
	plan
	for n in 1 2 3 4 5 6 7 8 9 10; do
		scenario '{}'   # the fake, like QEMU, keeps running when the supervisor dies
		rm -f "$T/record"
		VFIO_TEST_CRASH_AT=$n run
		[ $rc -eq 137 ] || fail "step $n: supervisor exit status $rc, want 137 (SIGKILL)"
		[ -f "$HOST/run/vfio/$NAME/journal" ] || fail "step $n: no journal left"
		qpid=
		if [ $n -ge 8 ]; then
			qpid=$(journal_qemu_pid)
			echo "$qpid" > "$T/qemu.pid"
			kill -0 "$qpid" || fail "step $n: the fake QEMU is not running"
		fi
		"$DRIVER" restore "$NAME" > "$T/out" 2>&1 || fail "step $n: restore failed"
		if [ -n "$qpid" ]; then
			expect_in "$T/out" "QEMU (pid $qpid) from the previous run is still running"
			! kill -0 "$qpid" 2>/dev/null || [ "$(awk '{print $3}' /proc/$qpid/stat)" = Z ] ||
				fail "step $n: the leftover QEMU still runs"
		fi
		restored
	done
	;;
journal-full-mid-record-then-restore-gives-the-host-back)
	# /run fills up in the middle of each of a start's 8 records in turn; the
	# space comes back (another file went) and the supervisor is killed right
	# after the next record that reached the disk. What -restore finds must be
	# a journal it can read and undo: a torn record is never left under a
	# good one. (When nothing was in force, nothing follows the failure: the
	# start just stops, with nothing left behind.)
	plan
	for at in $(journal_midpoints); do
		scenario '{}'
		ENOSPC_JOURNAL_AT=$at ENOSPC_KILL_AFTER=1 LD_PRELOAD=$ENOSPC run
		expect_in "$T/out" "cannot write the journal"
		if [ $rc -ne 137 ]; then
			[ $rc -eq 1 ] || fail "byte $at: exit status $rc, want 137 (killed) or 1"
			[ ! -d "$HOST/run/vfio/$NAME" ] || fail "byte $at: the runtime directory was left"
			restored
			continue
		fi
		python3 - "$HOST/run/vfio/$NAME/journal" <<'PY2' || fail "byte $at: the journal is damaged: $(cat "$HOST/run/vfio/$NAME/journal")"
import json, sys
data = open(sys.argv[1]).read()
assert data.endswith("\n"), data
for line in data.splitlines():
    json.loads(line)
PY2
		"$DRIVER" restore "$NAME" > "$T/out" 2>&1 || fail "byte $at: restore failed: $(cat "$T/out")"
		stop_leftover_qemu
		restored
	done
	;;
leftovers-of-a-killed-start-are-given-back-before-a-new-start)
	# Killed halfway through its host changes: the next run gives back what
	# the journal lists, then starts; the host ends as before.
	plan; scenario '{}'
	VFIO_TEST_CRASH_AT=4 run
	[ $rc -eq 137 ] || fail "exit status $rc"
	[ "$(owner /dev/kvm)" = 1000 ] || fail "the killed start did not change /dev/kvm"
	scenario "$GUEST_POWEROFF"
	run
	[ $rc -eq 0 ] || fail "exit status $rc, want 0"
	expect_in "$T/out" "an earlier run of the guest \"$NAME\" did not finish: giving back what it left"
	expect_in "$T/out" "restored: dev-chown /dev/vhost-net"
	restored
	;;
killed-before-cont-stops-that-qemu-and-starts-over)
	# Killed after QEMU was spawned but before the guest ran: nothing to
	# adopt; the next run stops that QEMU, gives the host back, starts anew.
	plan; scenario '{}'
	VFIO_TEST_CRASH_AT=8 run
	[ $rc -eq 137 ] || fail "exit status $rc"
	qpid=$(journal_qemu_pid); echo "$qpid" > "$T/qemu.pid"
	kill -0 "$qpid" || fail "the fake QEMU is not running"
	scenario "$GUEST_POWEROFF"
	run
	[ $rc -eq 0 ] || fail "exit status $rc, want 0"
	expect_in "$T/out" "QEMU (pid $qpid) from the previous run is still running"
	! kill -0 "$qpid" 2>/dev/null || [ "$(awk '{print $3}' /proc/$qpid/stat)" = Z ] || fail "that QEMU still runs"
	restored
	;;
restore-twice-is-safe)
	plan; scenario '{}'
	VFIO_TEST_CRASH_AT=4 run
	"$DRIVER" restore "$NAME" > "$T/out" 2>&1 || fail "first restore"
	expect_in "$T/out" "restored: dev-chown /dev/vhost-net"
	"$DRIVER" restore "$NAME" > "$T/out" 2>&1 || fail "second restore: exit status $?"
	expect_in "$T/out" "nothing to restore"
	restored
	;;
restore-without-name-restores-every-stale-guest)
	plan; scenario '{}'
	VFIO_TEST_CRASH_AT=3 run
	# Another guest, other device nodes.
	NAME=u NODE1=/dev/bus/usb/001/005 NODE2=/dev/bus/usb/001/006 NODE3=/dev/bus/usb/003/002 plan
	NAME=u
	VFIO_TEST_CRASH_AT=5 run
	[ -d "$HOST/run/vfio/t" ] && [ -d "$HOST/run/vfio/u" ] || fail "no stale journals"
	"$DRIVER" restore > "$T/out" 2>&1 || fail "restore: exit status $?"
	expect_in "$T/out" "the guest \"t\": the host is restored"
	expect_in "$T/out" "the guest \"u\": the host is restored"
	restored
	;;
restore-leaves-a-running-guest-alone)
	plan; scenario "$GUEST_RUNS"
	start
	wait_for "the guest to run" running
	"$DRIVER" restore > "$T/out2" 2>&1 || fail "restore: exit status $?"
	expect_in "$T/out2" "is running under its supervisor; not touched"
	running || fail "the run was disturbed"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	restored
	;;
bind-child-dies-with-a-killed-supervisor-and-restore-gives-the-host-back)
	# The supervisor is killed while its bind child waits on an unbind that
	# blocks (a GPU held by Xorg): the child must not outlive it and finish
	# the bind later, and -restore must see a dead supervisor, not a running one.
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	EXTRA_CHANGES='{"action": "pci-bind-vfio", "target": "0000:02:00.0", "from": "nvme", "to": "vfio-pci", "args": {"group": 11, "display": false}},'
	plan; scenario '{}'
	mkdir -p "$HOST/.drvcore"
	echo "unbind-block 0000:02:00.0 30" > "$HOST/.drvcore/faults"
	LD_PRELOAD=$DRVCORE start
	wait_for "the bind to begin" grep -q '"pci-bind-vfio"' "$HOST/run/vfio/$NAME/journal"
	wait_for "the bind child" pgrep -P "$sup"
	child=$(pgrep -P "$sup")
	kill -9 "$sup"; finish
	[ $rc -eq 137 ] || fail "supervisor exit status $rc, want 137 (SIGKILL)"
	LD_PRELOAD=$DRVCORE "$DRIVER" restore "$NAME" > "$T/out" 2>&1 || fail "restore refused"
	expect_not_in "$T/out" "already run by the supervisor"
	# (a zombie waiting for init to reap it has ended)
	! kill -0 $child 2>/dev/null || [ "$(awk '{print $3}' /proc/$child/stat 2>/dev/null)" = Z ] ||
		fail "the bind child $child outlived its supervisor"
	[ "$(basename "$(readlink "$HOST/sys/bus/pci/devices/0000:02:00.0/driver")")" = nvme ] ||
		fail "0000:02:00.0 is not on nvme"
	restored
	;;
nvme-bound-to-vfio-and-given-back)
	# The simulated driver core (tests/drvcore) plays the kernel.
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	EXTRA_CHANGES='{"action": "pci-bind-vfio", "target": "0000:02:00.0", "from": "nvme", "to": "vfio-pci", "args": {"group": 11, "display": false}},
	  {"action": "dev-chown", "target": "/dev/vfio/11", "args": {"uid": 1000, "gid": 1000}},'
	EXTRA_QMP=', {"execute": "device_add", "arguments": {"driver": "vfio-pci", "host": "0000:02:00.0", "id": "hostdev-0000-02-00-0", "bus": "rp2"}}'
	plan; scenario "$GUEST_RUNS"
	LD_PRELOAD=$DRVCORE SUDO_UID=1000 SUDO_GID=1000 start
	wait_for "the guest to run" running
	[ "$(basename "$(readlink "$HOST/sys/bus/pci/devices/0000:02:00.0/driver")")" = vfio-pci ] ||
		fail "0000:02:00.0 is not on vfio-pci while the guest runs"
	[ "$(owner /dev/vfio/11)" = 1000 ] || fail "/dev/vfio/11 not given to QEMU's user"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	expect_in "$T/out" "restored: pci-bind-vfio 0000:02:00.0 (nvme -> vfio-pci)"
	[ "$(basename "$(readlink "$HOST/sys/bus/pci/devices/0000:02:00.0/driver")")" = nvme ] ||
		fail "0000:02:00.0 is not back on nvme"
	restored
	;;
nvme-bind-killed-at-every-journal-step-then-restore)
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	EXTRA_CHANGES='{"action": "pci-bind-vfio", "target": "0000:02:00.0", "from": "nvme", "to": "vfio-pci", "args": {"group": 11, "display": false}},
	  {"action": "dev-chown", "target": "/dev/vfio/11", "args": {"uid": 1000, "gid": 1000}},'
	plan
	export LD_PRELOAD=$DRVCORE SUDO_UID=1000 SUDO_GID=1000
	# the run record, bind, the dev-chown of /dev/vfio/11, 3 dev-chowns: 11
	# records, then QEMU's pid.
	for n in $(seq 12); do
		scenario '{}'   # the fake, like QEMU, keeps running when the supervisor dies
		VFIO_TEST_CRASH_AT=$n run
		[ $rc -eq 137 ] || fail "step $n: supervisor exit status $rc, want 137 (SIGKILL)"
		if [ $n -eq 12 ]; then
			journal_qemu_pid > "$T/qemu.pid"
		fi
		"$DRIVER" restore "$NAME" > "$T/out" 2>&1 || fail "step $n: restore failed"
		restored
	done
	unset LD_PRELOAD
	;;
undo-failure-is-listed-and-restore-retries)
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	EXTRA_CHANGES='{"action": "pci-bind-vfio", "target": "0000:02:00.0", "from": "nvme", "to": "vfio-pci", "args": {"group": 11, "display": false}},'
	plan; scenario "$GUEST_RUNS"
	export LD_PRELOAD=$DRVCORE
	start
	wait_for "the guest to run" running
	# The nvme driver will refuse the device when it is given back.
	echo "bind-fail 0000:02:00.0 nvme" > "$HOST/.drvcore/faults"
	kill -TERM "$sup"; finish
	[ $rc -eq 3 ] || fail "exit status $rc, want 3"
	expect_in "$T/out" "1 host change could not be restored"
	expect_in "$T/out" "pci-bind-vfio 0000:02:00.0 (nvme -> vfio-pci)"
	expect_in "$T/out" "vfio -restore $NAME"
	expect_in "$T/out" "restored: dev-chown /dev/kvm"
	[ -f "$HOST/run/vfio/$NAME/journal" ] || fail "the journal was not kept"
	# A new run tries to give it back first, fails the same way, and starts nothing...
	QMP_MOCK_ARGV=$T/argv2 run
	[ $rc -eq 3 ] || fail "a new run over the unrestored journal: exit status $rc, want 3"
	expect_in "$T/out" "could not be restored"
	expect_in "$T/out" "nothing was started"
	[ ! -e "$T/argv2" ] || fail "a QEMU was started over the unrestored journal"
	# ...and once the cause is gone, -restore finishes the job.
	: > "$HOST/.drvcore/faults"
	"$DRIVER" restore "$NAME" > "$T/out" 2>&1 || fail "restore: exit status $?"
	expect_in "$T/out" "restored: pci-bind-vfio 0000:02:00.0"
	expect_not_in "$T/out" "restored: dev-chown"
	restored
	;;
qemu-ignoring-quit-is-killed)
	plan; scenario '{"guest": {"ignore_powerdown": true}, "commands": [{"command": "quit", "hang": true}]}'
	start -shutdowntimeout 1
	wait_for "the guest to run" running
	kill -TERM "$sup"; finish
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_in "$T/out" "did not exit within 10 s: killing it"
	expect_in "$T/out" "QEMU had to be killed"
	restored
	;;
sighup-powers-the-guest-down)
	plan; scenario "$GUEST_RUNS"
	start
	wait_for "the guest to run" running
	kill -HUP "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	recorded system_powerdown || fail "no system_powerdown on SIGHUP"
	restored
	;;
qemu-runs-as-the-user-flag)
	plan; scenario "$GUEST_RUNS"
	start -user nobody
	wait_for "the guest to run" running
	qpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["qemu_pid"])' "$HOST/run/vfio/$NAME/status.json")
	[ "$(stat -c %u /proc/$qpid)" = "$(id -u nobody)" ] || fail "QEMU does not run as nobody"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	restored
	;;
vfio-binary-killed-then-restore-stops-leftover-qemu)
	# The real command line: vfio -run, killed right after QEMU's pid is
	# journaled (its run record first), then vfio -restore NAME.
	VFIO=$B/src/supervisor/vfio
	scenario "$GUEST_RUNS"
	VFIO_TEST_CRASH_AT=2 "$VFIO" -run -accel tcg -noBios -m 256M -nonet -name "$NAME" < /dev/null > "$T/out" 2>&1
	rc=$?
	[ $rc -eq 137 ] || fail "vfio -run: exit status $rc, want 137"
	qpid=$(journal_qemu_pid)
	echo "$qpid" > "$T/qemu.pid"
	kill -0 "$qpid" || fail "the fake QEMU is not running"
	"$VFIO" -restore "$NAME" > "$T/out" 2>&1 || fail "vfio -restore: exit status $?"
	expect_in "$T/out" "QEMU (pid $qpid) from the previous run is still running"
	! kill -0 "$qpid" 2>/dev/null || [ "$(awk '{print $3}' /proc/$qpid/stat)" = Z ] ||
		fail "the leftover QEMU still runs"
	restored
	;;
guest-ejected-device-leaves-status)
	plan; scenario '{"commands": [{"command": "cont", "reply": {"return": {}}, "effects": true,
	  "after": [{"delay_ms": 100}, {"event": "DEVICE_DELETED", "data": {"path": "/machine/peripheral/nic0/virtio-backend"}},
	            {"event": "DEVICE_DELETED", "data": {"device": "nic0", "path": "/machine/peripheral/nic0"}}]}]}'
	start
	wait_for "the guest to run" running
	wait_for "nic0 to leave status.json" python3 -c 'import json,sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if s["devices"]["attached"] == [] and s["devices"]["free_root_ports"] == ["rp1", "rp2"] else 1)' "$HOST/run/vfio/$NAME/status.json"
	expect_in "$T/out" "QEMU released nic0"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	;;
systemd-restart-leaves-the-guest-to-the-next-start-and-stop-powers-it-down)
	# As vfio@.service runs it: $INVOCATION_ID set, the unit in
	# /proc/self/cgroup, systemd's SIGTERM for both `systemctl restart` and
	# `systemctl stop`; the unit's job (systemctl list-jobs) tells them apart.
	mkdir -p "$HOST/.drvcore"
	cgroup=$HOST/proc/self/cgroup
	echo "0::/system.slice/system-vfio.slice/vfio@$NAME.service" > "$cgroup"
	export VFIO_SYSTEMCTL=$VFIO_SRCDIR/tests/drvcore/fake-systemctl INVOCATION_ID=0123456789abcdef
	plan; scenario "$GUEST_RUNS"
	echo "4711 vfio@$NAME.service restart running" > "$HOST/.drvcore/jobs"
	start
	wait_for "the guest to run" running
	qpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["qemu_pid"])' "$HOST/run/vfio/$NAME/status.json")
	echo "$qpid" > "$T/qemu.pid"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "restart: exit status $rc, want 0"
	expect_in "$T/out" "the service restarts: the guest keeps running for its next start to adopt"
	expect_in "$HOST/.drvcore/systemctl.log" "list-jobs --no-legend --plain vfio@$NAME.service"
	! recorded system_powerdown || fail "a restart powered the guest down"
	kill -0 "$qpid" || fail "QEMU did not survive the restart"
	[ "$(owner /dev/kvm)" = 1000 ] || fail "the host was given back on a restart"
	# The unit starts again: the guest is adopted; then `systemctl stop`.
	echo "4712 vfio@$NAME.service stop running" > "$HOST/.drvcore/jobs"
	start
	wait_for "the guest to be adopted" grep -q '"adopted": true' "$HOST/run/vfio/$NAME/status.json"
	wait_for "the guest to run" running
	grep -q "\"qemu_pid\": $qpid," "$HOST/run/vfio/$NAME/status.json" || fail "another QEMU"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "stop: exit status $rc, want 0"
	recorded system_powerdown || fail "stop did not power the guest down"
	rm "$cgroup"
	restored
	;;
journal-of-the-previous-vfio-is-restored-and-its-live-guest-not-adopted)
	# A journal the vfio before adoption wrote (format 1, no version record:
	# tests/session/fixtures/journal-v1, from that binary, killed after it
	# spawned QEMU). Its QEMU's monitor was a socketpair that died with it:
	# a live one cannot be adopted; -run says so and changes nothing,
	# -restore stops it and gives the host back. Once its QEMU is gone, -run
	# gives the changes back first and starts.
	old_run() {	# old_run PID START: the journal and the changes it lists, in force
		mkdir -p "$HOST/run/vfio/$NAME" && chmod 700 "$HOST/run/vfio/$NAME"
		: > "$HOST/run/vfio/.created-by-vfio"    # that vfio made /run/vfio, as this one does
		sed -e "s/@PID@/$1/" -e "s/@START@/$2/" "$VFIO_SRCDIR/tests/session/fixtures/journal-v1" \
		    > "$HOST/run/vfio/$NAME/journal"
		chown 1000:1000 "$HOST/dev/kvm" "$HOST/dev/vhost-net"
	}
	scenario '{}'
	qpid=$(python3 - "$MOCK" <<'PY'
import socket, subprocess, sys
a, b = socket.socketpair()
p = subprocess.Popen([sys.argv[1], "-S", "-chardev", "socket,id=qmp,fd=3", "-mon", "chardev=qmp,mode=control"],
                     pass_fds=(3,), preexec_fn=lambda: __import__("os").dup2(b.fileno(), 3),
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
a.recv(4096)    # its greeting: it runs; then its supervisor "dies"
print(p.pid)
PY
)
	echo "$qpid" > "$T/qemu.pid"
	old_run "$qpid" "$(awk '{print $22}' /proc/$qpid/stat)"
	plan; scenario "$GUEST_POWEROFF"
	QMP_MOCK_ARGV=$T/argv2 run
	[ $rc -eq 2 ] || fail "-run over a live format-1 guest: exit status $rc, want 2"
	expect_in "$T/out" "started by an earlier vfio"
	expect_in "$T/out" "vfio -restore $NAME"
	[ ! -e "$T/argv2" ] || fail "a QEMU was started"
	kill -0 "$qpid" || fail "the old guest was stopped by -run"
	[ "$(owner /dev/kvm)" = 1000 ] || fail "-run changed the host"
	"$DRIVER" restore "$NAME" > "$T/out" 2>&1 || fail "restore: exit status $?"
	expect_in "$T/out" "QEMU (pid $qpid) from the previous run is still running"
	restored
	# Its QEMU gone (a pid that never started at that tick):
	old_run 1 1
	run
	[ $rc -eq 0 ] || fail "-run over a dead format-1 run: exit status $rc, want 0"
	expect_in "$T/out" "giving back what it left on the host first"
	expect_in "$T/out" "restored: dev-chown /dev/vhost-net"
	restored
	;;
qemu-that-never-greets-is-stopped)
	plan; scenario '{"start": [{"hang": true}]}'
	VFIO_TEST_GREETING_TIMEOUT_S=1 run
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_in "$T/out" "QEMU did not answer on its monitor within 1 s"
	restored
	;;
qemu-runs-as-vfios-own-user-created-first-and-sandboxed)
	# As root with nobody behind it, the plan names vfio's own user; this
	# host lacks it, so -run creates it (the one change it keeps) with the
	# planned uid, gives QEMU a directory of its own for its sockets, and
	# runs QEMU as that user.
	rm -rf "$HOST"
	python3 "$MKHOST" --preset desktop --spec <(echo '{"qemu_user": null}') "$HOST" > /dev/null || fail "mkhost"
	python3 "$TREESNAP" "$HOST" > "$T/before"
	EXTRA_PLAN=', "qemu_user": {"name": "vfio-qemu", "uid": 990, "gid": 990, "create": true}'
	EXTRA_ARGV=', "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"'
	plan; scenario "$GUEST_RUNS"
	start
	wait_for "the guest to run" running
	expect_in "$T/out" "creating the system user vfio-qemu (uid 990) for QEMU; it stays for later runs"
	grep -qx 'vfio-qemu:!:990:990:vfio QEMU guests:/:/usr/sbin/nologin' "$HOST/etc/passwd" || fail "no vfio-qemu in passwd"
	grep -qx 'vfio-qemu:!:990:' "$HOST/etc/group" || fail "no vfio-qemu in group"
	qpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["qemu_pid"])' "$HOST/run/vfio/$NAME/status.json")
	[ "$(awk '/^Uid:/ {print $2 $3 $4 $5}' /proc/$qpid/status)" = 990990990990 ] || fail "QEMU does not run as uid 990"
	[ "$(stat -c %u:%g:%a "$HOST/run/vfio/$NAME")" = 0:990:710 ] || fail "the runtime directory: $(stat -c %u:%g:%a "$HOST/run/vfio/$NAME")"
	[ "$(stat -c %u:%g:%a "$HOST/run/vfio/$NAME/qemu")" = 990:990:700 ] || fail "QEMU's directory: $(stat -c %u:%g:%a "$HOST/run/vfio/$NAME/qemu")"
	# A socket QEMU makes there (as SPICE does) is cleared with the directory.
	setpriv --reuid 990 --regid 990 --clear-groups /usr/bin/python3 -c \
	    'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$HOST/run/vfio/$NAME/qemu/spice.sock" ||
	    fail "QEMU's user cannot make a socket in its directory"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	expect_not_in "$T/out" "cannot remove"
	[ ! -e "$HOST/run/vfio/$NAME" ] || fail "the runtime directory was left"
	# The host is as before but for the user -run created.
	python3 "$TREESNAP" "$HOST" | grep -v '^etc/\(passwd\|group\)-\? ' > "$T/after"
	grep -v '^etc/\(passwd\|group\)-\? ' "$T/before" | diff -u - "$T/after" >&2 || fail "the host root differs"
	;;
device-node-qemus-user-cannot-open-is-named-with-the-fix)
	# The plan said QEMU opens /dev/vfio/11 itself; it is root's, 0600,
	# and nothing gives it to QEMU's user: the run names the node and the
	# fix before QEMU starts, and gives the host back.
	EXTRA_PLAN=', "qemu_user": {"name": "vfio-qemu", "uid": 999, "gid": 999}, "qemu_nodes": ["/dev/vfio/11"]'
	: > "$HOST/dev/vfio/11"; chmod 600 "$HOST/dev/vfio/11"
	python3 "$TREESNAP" "$HOST" > "$T/before"
	plan; scenario "$GUEST_RUNS"
	run
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_in "$T/out" "QEMU's user vfio-qemu (uid 999) cannot open the device node /dev/vfio/11 (owner 0:0, mode 0600): Permission denied"
	expect_in "$T/out" "chown 999, or a udev rule for it"
	[ ! -e "$T/record" ] || fail "QEMU was started"
	restored
	;;
monitor-garbage-is-named-as-the-cause)
	# QEMU's monitor sends what no JSON parser takes right after its
	# greeting: the user reads that, not "killed by signal 9".
	plan; scenario '{"start": [{"raw": "{\"return\": garbage}\r\n"}]}'
	run
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_in "$T/out" "QEMU's monitor sent what vfio cannot accept ("
	expect_not_in "$T/out" "killed by signal 9"
	expect_not_in "$T/out" "its messages above say why"
	restored
	;;
monitor-oversized-line-is-named-as-the-cause)
	# A line past the client's 64 MiB bound, while a command waits: QEMU
	# did not refuse the command, its monitor broke.
	plan; scenario '{"commands": [{"command": "device_add", "before": [{"raw": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "repeat": 1100000}]}]}'
	run
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_in "$T/out" "QEMU's monitor sent what vfio cannot accept (QMP message longer than"
	expect_not_in "$T/out" "killed by signal 9"
	expect_not_in "$T/out" "QEMU refused device_add"
	restored
	;;
monitor-closed-under-a-running-qemu-is-named-as-the-cause)
	# QEMU closes its monitor and goes on running: after the bound it is
	# killed, and the user reads why.
	plan; scenario '{"commands": [{"command": "device_add", "before": [{"close": true}]}]}'
	run
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_in "$T/out" "QEMU's monitor closed while attaching (QEMU closed the QMP connection) and QEMU did not exit by itself within 10 s: vfio killed it"
	expect_not_in "$T/out" "its messages above say why"
	restored
	;;
sigterm-during-a-blocked-unbind-stops-at-once-and-gives-the-host-back)
	# SIGTERM while the first change, a bind, waits on an unbind the driver
	# core blocks (30 s, far past its deadline): the bind child is cut short,
	# no later change is made, QEMU never starts, and the host comes back.
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	EXTRA_CHANGES='{"action": "pci-bind-vfio", "target": "0000:02:00.0", "from": "nvme", "to": "vfio-pci", "args": {"group": 11, "display": false}},'
	plan; scenario "$GUEST_RUNS"
	mkdir -p "$HOST/.drvcore"
	echo "unbind-block 0000:02:00.0 30" > "$HOST/.drvcore/faults"
	LD_PRELOAD=$DRVCORE start -bindtimeout 60
	wait_for "the bind to begin" grep -q '"pci-bind-vfio"' "$HOST/run/vfio/$NAME/journal"
	wait_for "the bind child" pgrep -P "$sup"
	child=$(pgrep -P "$sup")
	kill -TERM "$sup"; finish
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_in "$T/out" "Terminated while preparing the host: stopping; what was changed is given back"
	expect_not_in "$T/out" "host: dev-chown /dev/kvm"
	[ ! -e "$T/record" ] || fail "QEMU was started"
	! kill -0 "$child" 2>/dev/null || [ "$(awk '{print $3}' /proc/$child/stat 2>/dev/null)" = Z ] ||
		fail "the bind child $child still runs"
	: > "$HOST/.drvcore/faults"
	[ "$(basename "$(readlink "$HOST/sys/bus/pci/devices/0000:02:00.0/driver")")" = nvme ] ||
		fail "0000:02:00.0 is not on nvme"
	restored
	;;
a-device-another-guest-has-is-refused-to-a-second-guest)
	# Guest t has 0000:02:00.0 (bound for it, attached) and the USB mouse
	# on port 1-3. A second guest u may have neither: its dry run refuses
	# -pci and -usb naming t, and pci add on u's control FIFO refuses too.
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	EXTRA_CHANGES='{"action": "pci-bind-vfio", "target": "0000:02:00.0", "from": "nvme", "to": "vfio-pci", "args": {"group": 11, "display": false}},'
	EXTRA_QMP=', {"execute": "device_add", "arguments": {"driver": "vfio-pci", "host": "0000:02:00.0", "id": "hostdev-0000-02-00-0", "bus": "rp2"}},
	  {"execute": "device_add", "arguments": {"driver": "usb-host", "id": "usb-1-3", "bus": "xhci.0", "hostbus": 1, "hostaddr": 2}}'
	plan; scenario "$GUEST_RUNS"
	LD_PRELOAD=$DRVCORE start
	wait_for "the guest to run" running
	VFIO=$B/src/supervisor/vfio
	"$VFIO" -name u -nonet -pci 0000:02:00.0 < /dev/null > "$T/out2" 2>&1
	rc2=$?
	[ $rc2 -eq 1 ] || fail "-pci of t's device: exit status $rc2, want 1: $(cat "$T/out2")"
	expect_in "$T/out2" "-pci: 0000:02:00.0 is the guest \"t\"'s: a device goes to one guest at a time"
	"$VFIO" -name u -nonet -usb '^1-3$' < /dev/null > "$T/out2" 2>&1
	rc2=$?
	[ $rc2 -eq 1 ] || fail "-usb of t's device: exit status $rc2, want 1: $(cat "$T/out2")"
	expect_in "$T/out2" "(port 1-3) is the guest \"t\"'s"
	# A second supervisor, guest u, asks for it while running.
	NAME=u NODE1=/dev/bus/usb/001/005 NODE2=/dev/bus/usb/001/006 NODE3=/dev/bus/usb/003/002 EXTRA_CHANGES= EXTRA_QMP= plan
	cp "$T/plan.json" "$T/plan-u.json"
	"$DRIVER" run "$T/plan-u.json" -name u < /dev/null > "$T/out-u" 2>&1 &
	sup_u=$!
	children+=("$sup_u")
	wait_for "guest u to run" grep -q '"state": "running"' "$HOST/run/vfio/u/status.json"
	LD_PRELOAD=$DRVCORE "$B/tools/vfioctl" u pci add 0000:02:00.0 > "$T/reply" 2>&1
	expect_in "$T/reply" "pci add: 0000:02:00.0 is the guest \"t\"'s"
	[ "$(basename "$(readlink "$HOST/sys/bus/pci/devices/0000:02:00.0/driver")")" = vfio-pci ] ||
		fail "0000:02:00.0 left vfio-pci while t has it"
	kill -TERM "$sup_u"; wait "$sup_u"
	kill -TERM "$sup"; finish
	[ $rc -eq 0 ] || fail "exit status $rc"
	restored
	;;
missing-qemu-binary-changes-nothing)
	plan; scenario '{}'
	VFIO_QEMU=$T/no-such-qemu run
	[ $rc -eq 2 ] || fail "exit status $rc, want 2"
	[ ! -e "$HOST/run/vfio" ] || fail "runtime dir left"
	expect_in "$T/out" "cannot find the QEMU binary"
	expect_in "$T/out" "\$VFIO_QEMU"
	restored
	;;
*)
	echo "unknown case $case_name" >&2; exit 2
	;;
esac
exit 0
