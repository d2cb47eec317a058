#!/usr/bin/env bash
# The control FIFO and vfioctl against the fake QEMU (qemu-mock) and a
# host-root fixture, one behaviour per case: control-test.sh CASE. The
# supervisor runs a hand-written plan through the session tests' driver; the
# checks are what a user sees: vfioctl's output and exit status, the replies
# file, status.json, what QEMU was told (the fake's record), and the host.
#
# Needs: VFIO_BUILDDIR, VFIO_SRCDIR, MKHOST (set by meson); DRVCORE for pci.
set -u
case_name=$1
# The net cases make real bridges and taps: each in a network namespace of its own.
case $case_name in net-add-bridge-*|net-add-tap-*)
	if [ -z "${CONTROL_IN_NETNS:-}" ]; then
		[ "$(id -u)" = 0 ] && command -v unshare > /dev/null && command -v ip > /dev/null &&
			unshare -n true 2> /dev/null || { echo "skip: needs root, unshare and ip"; exit 77; }
		CONTROL_IN_NETNS=1 exec unshare -n "$0" "$@"
	fi
	ip link set lo up
	;;
run-full-*)
	# /run as a small tmpfs of its own, in a private mount namespace.
	if [ -z "${CONTROL_IN_MNTNS:-}" ]; then
		[ "$(id -u)" = 0 ] && unshare -m true 2> /dev/null || { echo "skip: needs root and unshare"; exit 77; }
		CONTROL_IN_MNTNS=1 exec unshare -m --propagation private "$0" "$@"
	fi
	;;
esac
B=$VFIO_BUILDDIR
DRIVER=${VFIO_TEST_DRIVER:-$B/tests/session/session-driver}   # tests/valgrind wraps it
MOCK=$B/tests/qmp-mock/qemu-mock
VFIOCTL=$B/tools/vfioctl
[ -x "$MOCK" ] || { echo "skip: no qemu-mock built"; exit 77; }

T=$(mktemp -d /tmp/vfio-control-XXXXXX)
chmod 1777 "$T"
HOST=$T/host
NAME=ctl
RUN=$HOST/run/vfio/$NAME
FIFO=$RUN/control
REPLIES=$RUN/replies
children=()
cleanup() {
	for p in "${children[@]}"; do kill -9 "$p" 2>/dev/null; done
	[ -n "${sup:-}" ] && kill -9 "$sup" 2>/dev/null
	pkill_mock
	rm -rf "$T"
}
pkill_mock() {	# the fake QEMU this test started, by the pid it recorded
	[ -f "$T/argv" ] || return 0
	local p
	p=$(cat "$HOST/run/vfio/$NAME/status.json" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["qemu_pid"])' 2>/dev/null) || return 0
	[ -n "$p" ] && [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null
	return 0
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; for f in out vout verr; do [ -f "$T/$f" ] && { echo "--- $f:"; cat "$T/$f"; } >&2; done; exit 1; }
expect_in() { grep -qF -- "$2" "$1" || fail "expected '$2' in $1"; }
expect_not_in() { ! grep -qF -- "$2" "$1" || fail "did not expect '$2' in $1"; }

python3 "$MKHOST" --preset desktop "$HOST" || fail "mkhost"

export VFIO_HOST_ROOT=$HOST VFIO_QEMU=$MOCK
export QMP_MOCK_SCENARIO=$T/scenario.json QMP_MOCK_RECORD=$T/record QMP_MOCK_ARGV=$T/argv
unset SUDO_UID SUDO_GID

# A guest with a user-mode NIC in rp1, three spare root ports and an xhci.
cat > "$T/plan.json" <<JSON
{"argv": ["qemu-system-x86_64", "-name", "$NAME", "-machine", "q35", "-nodefaults", "-S",
  "-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control", "-m", "512",
  "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,port=1,addr=0x1c.0",
  "-device", "pcie-root-port,id=rp2,bus=pcie.0,chassis=2,port=2,addr=0x1c.1",
  "-device", "pcie-root-port,id=rp3,bus=pcie.0,chassis=3,port=3,addr=0x1c.2",
  "-device", "pcie-root-port,id=rp4,bus=pcie.0,chassis=4,port=4,addr=0x1c.3",
  "-device", "qemu-xhci,id=xhci,bus=pcie.0", "-add-fd", "fd=4,set=1,opaque=console-log",
  "-chardev", "socket,id=console,fd=5,server=on,wait=off,logfile=/dev/fdset/1", "-serial", "chardev:console"],
 "qmp": [
  {"execute": "netdev_add", "arguments": {"type": "user", "id": "net0"}},
  {"execute": "device_add", "arguments": {"driver": "virtio-net-pci", "id": "nic0", "netdev": "net0", "bus": "rp1"}}
 ],
 "host_changes": [],
 "n_root_ports": 4, "memory_mib": 512, "has_xhci": true}
JSON
scenario() { printf '%s\n' "$1" > "$T/scenario.json"; }
scenario '{}'

start() {	# start the supervisor in the background and wait until the guest runs
	"$DRIVER" run "$T/plan.json" -name "$NAME" "$@" < /dev/null > "$T/out" 2>&1 &
	sup=$!
	wait_for "the guest to run" grep -q '"state": "running"' "$RUN/status.json"
	[ -p "$FIFO" ] || fail "no control FIFO at $FIFO"
}
finish() { wait "$sup"; rc=$?; sup=; }
# adopt [driver args]: the same run again over a guest whose supervisor was
# killed: waits until this supervisor (its pid in status.json) runs it.
adopt() {
	"$DRIVER" run "$T/plan.json" -name "$NAME" "$@" < /dev/null > "$T/out" 2>&1 &
	sup=$!
	wait_for "the guest to be adopted" python3 -c 'import json,sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if s["pid"] == int(sys.argv[2]) and s["state"] == "running" and s.get("adopted") else 1)' "$RUN/status.json" "$sup"
}
stop() { kill -TERM "$sup" 2>/dev/null; finish; }

wait_for() {	# wait_for DESCRIPTION COMMAND...: up to 30 s
	local what=$1; shift
	for _ in $(seq 300); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "timed out waiting for $what"
}

ctl() {	# ctl ARGS...: vfioctl, output in vout/verr, status in $vrc
	"$VFIOCTL" "$@" > "$T/vout" 2> "$T/verr"
	vrc=$?
}
ctl_ok() { ctl "$@"; [ $vrc -eq 0 ] || fail "vfioctl $* exited $vrc, want 0"; }
ctl_err() { ctl "$@"; [ $vrc -eq 1 ] || fail "vfioctl $* exited $vrc, want 1"; }

send() { printf '%b' "$1" > "$FIFO"; }     # raw bytes into the FIFO
nreplies() { [ "$(grep -c "$1" "$REPLIES")" -eq "$2" ]; }   # nreplies REGEX COUNT
reply_for() { grep -q "^@$1 " "$REPLIES"; }
wait_reply() { wait_for "the reply tagged $1" reply_for "$1"; grep "^@$1 " "$REPLIES"; }
nrecorded() { grep -c "\"$1\"" "$T/record"; }
recorded_line() { grep "\"$1\"" "$T/record" | tail -1; }
driver_of() { basename "$(readlink "$HOST/sys/bus/pci/devices/$1/driver")"; }
# A command for wait_for: its arguments are expanded once, so the driver is
# read here, at each try.
driver_is() { [ "$(driver_of "$1")" = "$2" ]; }

# A guest that ignores unplugs is given 0000:02:00.0, its pci del goes
# pending (exit 3), then the supervisor is SIGKILLed: what adoption finds.
killed_with_a_removal_pending() {
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	export LD_PRELOAD=$DRVCORE
	scenario '{"guest": {"ignore_unplug": true}}'
	VFIO_TEST_DETACH_TIMEOUT_MS=200 start
	ctl_ok "$NAME" pci add 0000:02:00.0
	ctl "$NAME" pci del hostdev-0000-02-00-0 force
	[ $vrc -eq 3 ] || fail "pci del exited $vrc, want 3 (pending)"
	kill -9 "$sup"; finish
}

# Bad input: the reply is an error naming the problem, QEMU hears nothing.
bad_input() {	# bad_input BYTES TAG EXPECTED-TEXT
	start
	local before; before=$(wc -l < "$T/record")
	send "$1"
	local r; r=$(wait_reply "$2")
	case $r in "@$2 error "*) ;; *) fail "reply '$r' is not an error";; esac
	echo "$r" | grep -qF -- "$3" || fail "reply '$r' does not say '$3'"
	ctl_ok "$NAME" status
	[ "$(wc -l < "$T/record")" = "$before" ] || fail "QEMU was sent something"
	stop
	[ $rc -eq 0 ] || fail "supervisor exit $rc after bad input"
}

case $case_name in
replies-stay-small-however-many-commands)
	start
	# 8000 status commands made a 1.6 MB replies file.
	python3 -c 'import sys
sys.stdout.write("".join("@s%d status\n" % i for i in range(1, 8001)))' > "$FIFO"
	r=$(wait_reply s8000)
	case $r in '@s8000 ok {'*) ;; *) fail "last reply '$r'";; esac
	size=$(stat -c %s "$REPLIES")
	[ "$size" -le 65536 ] || fail "the replies file holds $size bytes after 8000 commands"
	ctl_ok "$NAME" status
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	;;
vfioctl-finds-its-reply-while-the-replies-file-is-replaced)
	start
	# Another client floods the supervisor, so the replies file keeps being replaced.
	( for _ in $(seq 40); do python3 -c 'import sys
sys.stdout.write("".join("@flood%d status\n" % i for i in range(400)))'; done > "$FIFO" ) &
	flooder=$!
	children+=("$flooder")
	for i in $(seq 40); do
		ctl "$NAME" status -json
		[ $vrc -eq 0 ] || fail "vfioctl status #$i exited $vrc during the flood"
	done
	wait "$flooder"
	stop
	;;
run-full-replies-still-reach-vfioctl)
	mount -t tmpfs -o size=1m vfio-test "$HOST/run" || fail "cannot mount a tmpfs on $HOST/run"
	start
	# Fill /run to the last byte.
	dd if=/dev/zero of="$HOST/run/filler" bs=4k 2> /dev/null
	[ "$(stat -f -c %a "$HOST/run")" = 0 ] || fail "/run is not full"
	for i in $(seq 300); do
		ctl -timeout 5 "$NAME" status
		[ $vrc -eq 0 ] || fail "vfioctl status #$i on a full /run exited $vrc"
	done
	rm -f "$HOST/run/filler"
	stop
	;;
vfioctl-without-root-says-it-needs-root)
	start
	chmod 755 "$T" "$HOST" "$HOST/run" "$HOST/run/vfio"   # so only the supervisor's own directory is private
	setpriv --reuid=65534 --regid=65534 --clear-groups "$VFIOCTL" "$NAME" status > "$T/vout" 2> "$T/verr"
	vrc=$?
	[ $vrc -eq 1 ] || fail "vfioctl as nobody exited $vrc, want 1"
	expect_in "$T/verr" "vfioctl needs root"
	expect_in "$T/verr" "sudo"
	stop
	;;
fifo-and-replies-private-and-removed)
	start
	[ "$(stat -c %a "$FIFO")" = 600 ] || fail "FIFO mode $(stat -c %a "$FIFO")"
	ctl_ok "$NAME" status
	[ "$(stat -c %a "$REPLIES")" = 600 ] || fail "replies mode"
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	[ ! -e "$FIFO" ] && [ ! -e "$REPLIES" ] || fail "FIFO or replies left behind"
	;;
tagged-command-gets-tagged-reply)
	start
	send '@req-1 status\n'
	r=$(wait_reply req-1)
	case $r in '@req-1 ok {'*) ;; *) fail "reply '$r'";; esac
	expect_in "$T/out" "control: @req-1 ok"
	stop
	;;
untagged-command-gets-untagged-reply)
	start
	send 'help\n'
	wait_for "an untagged reply" grep -q '^ok pci add' "$REPLIES"
	stop
	;;
status-table-and-json)
	start
	ctl_ok "$NAME" status
	expect_in "$T/vout" "guest $NAME: running"
	grep -Eq '^nic0 +virtio-net-pci +rp1 +attached$' "$T/vout" || fail "no nic0 row"
	expect_in "$T/vout" "free root ports: rp2 rp3 rp4"
	ctl_ok -json "$NAME" status
	python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["devices"]["attached"][0]["id"]=="nic0", s' "$T/vout" || fail "json"
	ctl_ok "$NAME" status -json
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/vout" || fail "trailing -json"
	stop
	;;
help-lists-every-command)
	start
	ctl_ok "$NAME" help
	for c in "pci add" "pci del" "usb add" "usb del" "net add" "net del" status powerdown reset quit help; do
		grep -q "^$c" "$T/vout" || fail "help lacks $c"
	done
	stop
	;;
name-may-be-left-out-with-one-supervisor)
	start
	ctl_ok status
	expect_in "$T/vout" "guest $NAME"
	stop
	;;
list-shows-running-supervisors)
	start
	ctl_ok list
	grep -Eq "^$NAME +running$" "$T/vout" || fail "list: $(cat "$T/vout")"
	stop
	ctl_ok list
	[ ! -s "$T/vout" ] || fail "list after the run: $(cat "$T/vout")"
	;;
net-add-user-with-hostfwd)
	start
	ctl_ok "$NAME" net add user hostfwd=tcp::2222-:22,udp:127.0.0.1:5353-:53
	expect_in "$T/vout" "nic1 attached (virtio-net-pci on rp2)"
	recorded_line netdev_add | grep -q '"hostfwd":\[{"str":"tcp::2222-:22"},{"str":"udp:127.0.0.1:5353-:53"}\]' ||
		fail "netdev_add: $(recorded_line netdev_add)"
	recorded_line device_add | grep -q '"id":"nic1"' || fail "device_add: $(recorded_line device_add)"
	python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert [d["id"] for d in s["devices"]["attached"]]==["nic0","nic1"], s' "$RUN/status.json" ||
		fail "status.json not updated"
	stop
	;;
net-add-bad-hostfwd-refused)
	start
	ctl_err "$NAME" net add user hostfwd=tcp:2222:22
	expect_in "$T/verr" 'hostfwd rule "tcp:2222:22" is not'
	[ "$(nrecorded netdev_add)" = 1 ] || fail "netdev_add sent"
	ctl_err "$NAME" net add wifi
	expect_in "$T/verr" 'unknown network "wifi"'
	stop
	;;
net-add-refused-by-qemu-rolls-back)
	scenario '{"commands": [{"command": "device_add", "nth": 2, "reply": {"error": {"class": "GenericError", "desc": "no more PCI slots"}}}]}'
	start
	ctl_err "$NAME" net add user
	expect_in "$T/verr" "QEMU refused to add nic1: no more PCI slots"
	recorded_line netdev_del | grep -q '"id":"net1"' || fail "netdev net1 not rolled back"
	ctl_ok "$NAME" status -json
	expect_not_in "$T/vout" nic1
	stop
	;;
net-add-answered-late-leaves-no-duplicate-id)
	# QEMU takes longer than the supervisor waits for netdev_add (1.5 s
	# against a 1 s bound, as a QEMU stopped for a while): it makes net1
	# later. The reply comes once QEMU has been asked what it has: net1
	# is removed again, and the next net add does not fail with
	# "Duplicate ID 'net1'".
	scenario '{"commands": [{"command": "netdev_add", "nth": 2, "delay_ms": 1500}]}'
	VFIO_TEST_QMP_TIMEOUT_MS=1000 start
	ctl_err "$NAME" net add user
	expect_in "$T/verr" "QEMU did not answer netdev_add net1 in time"
	expect_in "$T/verr" "QEMU made the network backend net1 late, and it was removed again"
	ctl_ok "$NAME" net add user
	expect_in "$T/vout" "attached (virtio-net-pci"
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	;;
pci-add-answered-late-is-not-given-back-under-qemu)
	# device_add of a hot-added PCI device answers after the supervisor
	# stopped waiting: QEMU attached it after all, so it must stay on
	# vfio-pci and in the guest's list, not go back to nvme under QEMU.
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	scenario '{"commands": [{"command": "device_add", "nth": 2, "delay_ms": 1500}]}'
	LD_PRELOAD=$DRVCORE VFIO_TEST_QMP_TIMEOUT_MS=1000 start
	ctl_ok "$NAME" pci add 0000:02:00.0
	expect_in "$T/vout" "hostdev-0000-02-00-0 attached"
	[ "$(driver_of 0000:02:00.0)" = vfio-pci ] || fail "0000:02:00.0 went back to $(driver_of 0000:02:00.0) while QEMU has it"
	ctl_ok "$NAME" status -json
	expect_in "$T/vout" hostdev-0000-02-00-0
	expect_in "$T/out" "QEMU answered device_add hostdev-0000-02-00-0 late: it has the device"
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "not on nvme after the run"
	;;
net-del-removes-nic-and-backend)
	start
	ctl_ok "$NAME" net add user
	ctl_ok "$NAME" net del nic1
	expect_in "$T/vout" "nic1 removed"
	recorded_line device_del | grep -q '"id":"nic1"' || fail "no device_del"
	recorded_line netdev_del | grep -q '"id":"net1"' || fail "no netdev_del"
	ctl_ok "$NAME" net del nic0
	ctl_ok "$NAME" status
	expect_in "$T/vout" "free root ports: rp1 rp2 rp3 rp4"
	ctl_err "$NAME" net del nic0
	expect_in "$T/verr" "no device nic0 is attached"
	stop
	;;
commands-run-while-a-device-del-waits)
	scenario '{"guest": {"ignore_unplug": true}}'
	start
	"$VFIOCTL" "$NAME" net del nic0 > "$T/del.out" 2>&1 &
	delpid=$!
	children+=("$delpid")
	wait_for "device_del to reach QEMU" grep -q device_del "$T/record"
	ctl_ok "$NAME" status
	expect_in "$T/vout" "in progress: net del nic0"
	grep -Eq '^nic0 +virtio-net-pci +rp1 +removing$' "$T/vout" || fail "nic0 not shown as removing"
	# A second del of the same device joins the first: one device_del.
	"$VFIOCTL" "$NAME" net del nic0 > "$T/del2.out" 2>&1 &
	del2pid=$!
	children+=("$del2pid")
	wait_for "the second net del to arrive" sh -c "[ \$(grep -c 'control: @[^ ]* net del nic0\$' '$T/out') -ge 2 ]"
	ctl_ok "$NAME" net add user
	expect_in "$T/vout" "nic1 attached (virtio-net-pci on rp2)"
	# A reset completes the pending unplug, as in QEMU.
	ctl_ok "$NAME" reset
	wait "$delpid"; drc=$?
	[ $drc -eq 0 ] || { cat "$T/del.out"; fail "net del exited $drc"; }
	expect_in "$T/del.out" "nic0 removed"
	wait "$del2pid"; drc=$?
	[ $drc -eq 0 ] || { cat "$T/del2.out"; fail "the second net del exited $drc"; }
	expect_in "$T/del2.out" "nic0 removed"
	[ "$(nrecorded device_del)" = 1 ] || fail "$(nrecorded device_del) device_del sent, want 1"
	stop
	;;
device-del-the-guest-ignores-is-pending-and-completes-later)
	# The guest does not ack the unplug within the wait: the reply says the
	# removal is pending (vfioctl exits 3), status shows it, and when the
	# DEVICE_DELETED comes later the backend goes and the device is gone.
	scenario '{"guest": {"ignore_unplug": true}}'
	VFIO_TEST_DETACH_TIMEOUT_MS=300 start
	ctl "$NAME" net del nic0
	[ $vrc -eq 3 ] || fail "vfioctl net del exited $vrc, want 3 (pending)"
	expect_in "$T/vout" "nic0: removal pending"
	ctl_ok "$NAME" status
	grep -Eq '^nic0 +virtio-net-pci +rp1 +removing$' "$T/vout" || fail "nic0 not shown as removing"
	grep -q '"device-del":"nic0"' "$RUN/journal" || fail "the pending removal is not journaled"
	[ "$(nrecorded netdev_del)" = 0 ] || fail "netdev_del before the guest let go"
	ctl_ok "$NAME" reset
	wait_for "nic0 to leave status.json" python3 -c 'import json,sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if s["devices"]["attached"] == [] else 1)' "$RUN/status.json"
	wait_for "netdev_del net0" grep -q '"netdev_del","arguments":{"id":"net0"}' "$T/record"
	grep -q '"device-gone":"nic0"' "$RUN/journal" || fail "the removal is not closed in the journal"
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	;;
several-writers-at-once)
	start
	pids=()
	for i in $(seq 1 12); do
		"$VFIOCTL" "$NAME" status > "$T/w$i" 2>&1 & pids+=($!)
		"$VFIOCTL" "$NAME" help > "$T/h$i" 2>&1 & pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fail "a writer exited $?"; done
	for i in $(seq 1 12); do
		grep -q "guest $NAME: running" "$T/w$i" || fail "writer $i got $(cat "$T/w$i")"
		grep -q "^powerdown" "$T/h$i" || fail "help writer $i got $(cat "$T/h$i")"
	done
	# Raw tagged lines from many writers: every tag answered exactly once.
	for i in $(seq 1 30); do send "@raw$i status\n" & done
	wait_for "30 replies" nreplies '^@raw[0-9]* ok' 30
	stop
	;;
unknown-command) bad_input '@u1 frobnicate now\n' u1 'unknown command "frobnicate"' ;;
unknown-subcommand) bad_input '@u2 pci attach 1\n' u2 'pci attach: unknown; pci takes add or del' ;;
missing-argument) bad_input '@m1 pci add\n' m1 'pci add takes REGEX|ADDRESS [force] (missing argument)' ;;
too-many-arguments) bad_input '@m2 status now\n' m2 'status takes no arguments' ;;
invalid-regex) bad_input "@r1 pci add 'NVMe(('\n" r1 "'NVMe((' is not a valid extended regular expression" ;;
regex-that-would-exhaust-memory)
	bad_input "@r1 pci add 'NVIDIA Corpo+++++++++++++++++++++++++++ration|00'\n" r1 "stacks quantifiers"
	bad_input "@r2 usb add 'Logitech+++++++++++++++++++++++++++'\n" r2 "stacks quantifiers"
	;;
unterminated-quote) bad_input "@q1 pci add 'Non-Volatile\n" q1 'is never closed' ;;
nul-byte) bad_input '@n1 sta\0tus\n' n1 'NUL byte' ;;
binary-garbage) bad_input '@g1 \xff\xfe\x01\x80garbage\n' g1 'not UTF-8 text' ;;
control-characters) bad_input '@c1 status\x1b[2J\n' c1 'control character 0x1b' ;;
bad-tag)
	start
	send '@ status\n@t!x status\n@ok1 help\n'
	wait_reply ok1 > /dev/null
	[ "$(grep -c '^error the request tag must follow' "$REPLIES")" = 2 ] || fail "bad tags: $(cat "$REPLIES")"
	stop
	;;
tag-without-command) bad_input '@lonely\n' lonely 'carries no command' ;;
line-over-4096-bytes)
	long=$(head -c 5000 /dev/zero | tr '\0' 'a')
	bad_input "@big pci add $long\n" big 'more than the 4096 allowed'
	;;
partial-line-when-writer-closes)
	bad_input '@half status' half 'without a newline'
	;;
bad-input-then-good-input)
	start
	send '\xff\xff\n@after status\n'
	r=$(wait_reply after)
	case $r in '@after ok '*) ;; *) fail "good command after garbage: $r";; esac
	grep -q '^error .*not UTF-8' "$REPLIES" || fail "no error for the garbage"
	stop
	;;
pci-add-binds-and-del-gives-back)
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	# QEMU runs as the sudo user: it gets the group's node.
	LD_PRELOAD=$DRVCORE SUDO_UID=1000 SUDO_GID=1000 start
	ctl_ok "$NAME" pci add 'Non-Volatile memory'
	expect_in "$T/vout" "hostdev-0000-02-00-0 attached (0000:02:00.0 on rp2)"
	[ "$(driver_of 0000:02:00.0)" = vfio-pci ] || fail "not on vfio-pci"
	[ "$(stat -c %u "$HOST/dev/vfio/11")" = 1000 ] || fail "/dev/vfio/11 not given to QEMU's user"
	recorded_line device_add | grep -q '"driver":"vfio-pci","host":"0000:02:00.0"' || fail "$(recorded_line device_add)"
	grep -q '"pci-bind-vfio"' "$RUN/journal" || fail "bind not journaled"
	grep -q '"target": "0000:02:00.0"' "$RUN/status.json" || fail "status.json lacks the host change"
	# The NVMe controller is the guest's only disk: force is needed.
	ctl_err "$NAME" pci del hostdev-0000-02-00-0
	expect_in "$T/verr" "add force as the last word"
	[ "$(nrecorded device_del)" = 0 ] || fail "device_del sent without force"
	ctl_ok "$NAME" pci del 0000:02:00.0 force
	expect_in "$T/vout" "hostdev-0000-02-00-0 removed; 0000:02:00.0 is back with its driver"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "not back on nvme"
	ctl_ok "$NAME" status -json
	expect_not_in "$T/vout" hostdev
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "not on nvme after the run"
	;;
pci-del-pending-gives-the-device-back-when-the-guest-lets-go)
	# A late DEVICE_DELETED still gives the device back to its driver, and
	# the journal entry of its bind is closed.
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	scenario '{"guest": {"ignore_unplug": true}}'
	LD_PRELOAD=$DRVCORE VFIO_TEST_DETACH_TIMEOUT_MS=300 start
	ctl_ok "$NAME" pci add 0000:02:00.0
	ctl "$NAME" pci del hostdev-0000-02-00-0 force
	[ $vrc -eq 3 ] || fail "pci del exited $vrc, want 3 (pending)"
	[ "$(driver_of 0000:02:00.0)" = vfio-pci ] || fail "given back before the guest let go"
	ctl "$NAME" pci del 0000:02:00.0 force
	[ $vrc -eq 3 ] || fail "a second pci del exited $vrc, want 3 (joined the pending one)"
	[ "$(nrecorded device_del)" = 1 ] || fail "$(nrecorded device_del) device_del sent, want 1"
	ctl_ok "$NAME" reset
	wait_for "0000:02:00.0 back on nvme" driver_is 0000:02:00.0 nvme
	python3 - "$RUN/journal" <<'PY' || fail "the bind is not closed in the journal: $(cat "$RUN/journal")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
binds = [r["seq"] for r in recs if r.get("state") == "begin" and r["change"]["action"] == "pci-bind-vfio"]
undone = [r["seq"] for r in recs if r.get("state") == "undone"]
assert binds and all(b in undone for b in binds), (binds, undone)
assert {"device-gone": "hostdev-0000-02-00-0"} in recs
PY
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	;;
pci-del-gives-back-a-device-the-plan-attached)
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	python3 - "$T/plan.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["host_changes"] = [{"action": "pci-bind-vfio", "target": "0000:02:00.0", "from": "nvme", "to": "vfio-pci",
                      "args": {"group": 11, "display": False}}]
p["qmp"].append({"execute": "device_add", "arguments": {"driver": "vfio-pci", "host": "0000:02:00.0",
                 "id": "hostdev-0000-02-00-0", "bus": "rp2"}})
json.dump(p, open(sys.argv[1], "w"))
PY
	LD_PRELOAD=$DRVCORE start
	[ "$(driver_of 0000:02:00.0)" = vfio-pci ] || fail "not on vfio-pci while running"
	ctl_ok "$NAME" pci del hostdev-0000-02-00-0 force
	expect_in "$T/vout" "0000:02:00.0 is back with its driver"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "not back on nvme"
	ctl_ok "$NAME" pci add 0000:02:00.0
	expect_in "$T/vout" "hostdev-0000-02-00-0 attached (0000:02:00.0 on rp2)"
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	expect_not_in "$T/out" "could not be restored"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "not on nvme after the run"
	;;
pci-add-slow-unbind-does-not-block-other-commands)
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	mkdir -p "$HOST/.drvcore" && echo "unbind-block 0000:02:00.0 5" > "$HOST/.drvcore/faults"
	LD_PRELOAD=$DRVCORE start
	"$VFIOCTL" "$NAME" pci add 0000:02:00.0 > "$T/add.out" 2>&1 &
	addpid=$!
	children+=("$addpid")
	wait_for "the bind to start" grep -q "control: @vfioctl-[0-9-]* pci add" "$T/out"
	# While the child waits in the kernel the loop answers: status is
	# served with the add still listed as under way.
	ctl_ok "$NAME" status
	expect_in "$T/vout" "in progress: pci add 0000:02:00.0"
	ctl_ok "$NAME" net add user
	kill -0 "$addpid" 2>/dev/null || fail "the pci add was over before the other commands ran"
	wait "$addpid" || { cat "$T/add.out"; fail "pci add exited $?"; }
	expect_in "$T/add.out" "hostdev-0000-02-00-0 attached"
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	;;
pci-add-bind-deadline-is-bindtimeout-plus-the-binds-waits)
	# vfio(1): -bindtimeout 1 gives the bind 1 + 6 = 7 s, once, not padded again.
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	mkdir -p "$HOST/.drvcore" && echo "unbind-block 0000:02:00.0 60" > "$HOST/.drvcore/faults"
	LD_PRELOAD=$DRVCORE start -bindtimeout 1
	ctl_err "$NAME" pci add 0000:02:00.0
	expect_in "$T/verr" "did not finish within 7.0 s (-bindtimeout)"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "not left on nvme"
	[ "$(nrecorded device_add)" = 1 ] || fail "device_add sent"
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	;;
pci-add-bind-failure-gives-the-device-back)
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	mkdir -p "$HOST/.drvcore" && echo "bind-fail 0000:02:00.0 vfio-pci" > "$HOST/.drvcore/faults"
	LD_PRELOAD=$DRVCORE start
	ctl_err "$NAME" pci add 0000:02:00.0
	expect_in "$T/verr" "cannot bind 0000:02:00.0 to vfio-pci"
	expect_in "$T/verr" "nothing changed: 0000:02:00.0 is back with its own driver"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "not given back to nvme"
	[ "$(nrecorded device_add)" = 1 ] || fail "device_add sent"
	grep -q '"state":"undone"' "$RUN/journal" || fail "the bind is still in force in the journal"
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	expect_not_in "$T/out" "could not be restored"
	;;
pci-add-refuses-the-root-disk-controller-unless-forced)
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	# The host's / is on the NVMe drive behind 0000:02:00.0: the plan's rule.
	echo '{"disks": [{"name": "nvme0n1", "pci": "0000:02:00.0", "partitions": [1, 2],
		"mounts": {"2": "/"}, "dev": false}]}' > "$T/spec.json"
	python3 "$MKHOST" --preset desktop --spec "$T/spec.json" "$HOST" || fail "mkhost"
	LD_PRELOAD=$DRVCORE start
	ctl_err "$NAME" pci add 0000:02:00.0
	expect_in "$T/verr" "holds what the host runs on: / (nvme0n1p2)"
	expect_in "$T/verr" "force"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "the host changed"
	[ "$(nrecorded device_add)" = 1 ] || fail "device_add sent"
	ctl_ok "$NAME" pci add 0000:02:00.0 force
	expect_in "$T/vout" "hostdev-0000-02-00-0 attached"
	expect_in "$T/out" "pci add: 0000:02:00.0 Non-Volatile memory controller"
	stop
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "not given back"
	;;
pci-add-loads-vfio-pci-for-a-guest-started-without-one)
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	# A guest started without -pci, on a host that has not loaded vfio-pci
	# since boot (the real-kernel suite found it: "the vfio-pci driver is
	# not loaded"): pci add loads it, as -pci's plan does, journaled.
	rm -rf "$HOST"
	echo '{"vfio_pci": false}' > "$T/spec.json"
	python3 "$MKHOST" --preset desktop --spec "$T/spec.json" "$HOST" || fail "mkhost"
	VFIO_MODPROBE=$VFIO_SRCDIR/tests/drvcore/fake-modprobe LD_PRELOAD=$DRVCORE start
	[ ! -d "$HOST/sys/bus/pci/drivers/vfio-pci" ] || fail "vfio-pci is loaded before the pci add"
	ctl_ok "$NAME" pci add 0000:02:00.0
	expect_in "$T/vout" "hostdev-0000-02-00-0 attached (0000:02:00.0 on rp2)"
	expect_in "$HOST/.drvcore/modprobe.log" "vfio-pci"
	[ "$(driver_of 0000:02:00.0)" = vfio-pci ] || fail "not on vfio-pci"
	grep -q '"module-load"' "$RUN/journal" || fail "the module load is not journaled"
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "not on nvme after the run"
	;;
pci-add-says-why-vfio-pci-cannot-load)
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	rm -rf "$HOST"
	echo '{"vfio_pci": false}' > "$T/spec.json"
	python3 "$MKHOST" --preset desktop --spec "$T/spec.json" "$HOST" || fail "mkhost"
	mkdir -p "$HOST/.drvcore" && echo "modprobe-fail vfio-pci" > "$HOST/.drvcore/faults"
	VFIO_MODPROBE=$VFIO_SRCDIR/tests/drvcore/fake-modprobe LD_PRELOAD=$DRVCORE start
	ctl_err "$NAME" pci add 0000:02:00.0
	expect_in "$T/verr" "cannot load vfio-pci: modprobe vfio-pci failed"
	expect_in "$T/verr" "nothing changed"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "the device left nvme"
	[ "$(nrecorded device_add)" = 1 ] || fail "device_add sent"
	ctl_ok "$NAME" status
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	;;
pci-add-refuses-a-locked-memory-limit-below-guest-ram)
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	# A supervisor held to 16 MiB of locked memory, without CAP_SYS_RESOURCE,
	# runs a 512 MiB guest that had no device: QEMU would fail to map its
	# memory for the device ("vfio_dma_map ... Cannot allocate memory", seen
	# on the real kernel) after the bind; pci add refuses before it, as -pci.
	echo '{"memlock": {"hard": 16777216, "cap_sys_resource": false}}' > "$T/spec.json"
	python3 "$MKHOST" --preset desktop --spec "$T/spec.json" "$HOST" || fail "mkhost"
	LD_PRELOAD=$DRVCORE start
	ctl_err "$NAME" pci add 0000:02:00.0
	expect_in "$T/verr" "the locked-memory limit is 16384 KiB"
	expect_in "$T/verr" "force"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "the device left nvme"
	[ "$(nrecorded device_add)" = 1 ] || fail "device_add sent"
	! grep -q '"pci-bind-vfio"' "$RUN/journal" || fail "the bind was journaled"
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	;;
pci-add-refuses-without-interrupt-remapping)
	echo '{"intremap": false}' > "$T/spec.json"
	python3 "$MKHOST" --preset desktop --spec "$T/spec.json" "$HOST" || fail "mkhost"
	start
	ctl_err "$NAME" pci add 0000:00:17.0
	expect_in "$T/verr" "the kernel does not remap interrupts"
	expect_in "$T/verr" "allow_unsafe_interrupts"
	[ "$(driver_of 0000:00:17.0)" = ahci ] || fail "the host changed"
	[ "$(nrecorded device_add)" = 1 ] || fail "device_add sent"
	stop
	;;
pci-add-refusals)
	start
	ctl_err "$NAME" pci add Intel
	expect_in "$T/verr" "matches"
	expect_in "$T/verr" "add one at a time"
	ctl_err "$NAME" pci add 'NoSuchDevice'
	expect_in "$T/verr" "no PCI device matches 'NoSuchDevice'"
	ctl_err "$NAME" pci add 0000:01:00.0
	expect_in "$T/verr" "is a display device"
	ctl_err "$NAME" pci add 0000:01:00.1
	expect_in "$T/verr" "shares IOMMU group 1 with"
	ctl_err "$NAME" pci add 0000:09:00.0
	expect_in "$T/verr" "the host has no PCI device 0000:09:00.0"
	# The host bridge stays with the host, as -pci says.
	ctl_err "$NAME" pci add 0000:00:00.0
	expect_in "$T/verr" "bridges stay with the host"
	ctl_err "$NAME" pci add ''
	expect_in "$T/verr" "pci add needs a regular expression"
	ctl_err "$NAME" pci del hostdev-0000-02-00-0
	expect_in "$T/verr" "is not a host PCI device of the guest"
	[ "$(nrecorded device_add)" = 1 ] || fail "device_add sent"
	[ "$(driver_of 0000:01:00.1)" = snd_hda_intel ] || fail "the host changed"
	stop
	;;
usb-add-and-del)
	# Through the USB area's watcher (usbwatch.h): one bookkeeping with hotplug.
	start
	ctl_ok "$NAME" usb add 'Logitech'
	expect_in "$T/vout" "attached usb-1-4.2"
	recorded_line device_add | grep -q '"driver":"usb-host"' || fail "$(recorded_line device_add)"
	recorded_line device_add | grep -q '"id":"usb-1-4.2"' || fail "$(recorded_line device_add)"
	ctl_err "$NAME" usb add 'Logitech'
	expect_in "$T/verr" "already attached"
	expect_not_in "$T/verr" "usb add: usb add"
	ctl_ok "$NAME" status
	grep -Eq '^usb-1-4.2 +usb-host' "$T/vout" || fail "status lacks usb-1-4.2"
	ctl_ok "$NAME" usb del usb-1-4.2
	expect_in "$T/vout" "removed usb-1-4.2"
	ctl_err "$NAME" usb del usb-1-4.2
	ctl_err "$NAME" usb add 'NoSuchThing'
	ctl_err "$NAME" usb add '(('
	expect_in "$T/verr" "usb add '((' is not a valid extended regular expression"
	# Refused like -usb '' and pci add '': it would select every device.
	ctl_err "$NAME" usb add ''
	expect_in "$T/verr" "usb add needs a regular expression"
	[ "$(nrecorded device_add)" = 2 ] || fail "usb add '' attached something"
	stop
	;;
net-add-bridge-makes-a-tap-and-del-removes-it)
	tun=$HOST/dev/net/tun; rm -f "$tun"; mknod -m 666 "$tun" c 10 200
	ip link add brx type bridge || fail "cannot make a bridge"
	start
	ctl_ok "$NAME" net add bridge=brx
	expect_in "$T/vout" "nic1 attached (virtio-net-pci on rp2)"
	ip -o link show tap0 | grep -q "master brx" || fail "tap0 is not on brx: $(ip -o link show tap0 2>&1)"
	recorded_line getfd | grep -q '"fd_received":true' || fail "getfd: $(recorded_line getfd)"
	recorded_line netdev_add | grep -q '"type":"tap","id":"net1","fd":"ctlfd0"' || fail "$(recorded_line netdev_add)"
	grep -q '"tap-create"' "$RUN/journal" || fail "tap-create not journaled"
	ctl_ok "$NAME" net del nic1
	! ip link show tap0 > /dev/null 2>&1 || fail "tap0 left after net del"
	ctl_err "$NAME" net add bridge=nosuch
	expect_in "$T/verr" "nosuch does not exist"
	stop
	[ $rc -eq 0 ] || fail "exit $rc"
	ip link show brx > /dev/null 2>&1 || fail "the user's bridge went away"
	;;
net-add-tap-uses-an-existing-tap)
	tun=$HOST/dev/net/tun; rm -f "$tun"; mknod -m 666 "$tun" c 10 200
	ip tuntap add tapx mode tap vnet_hdr || fail "cannot make a tap"
	start
	ctl_ok "$NAME" net add tap=tapx
	expect_in "$T/vout" "nic1 attached"
	recorded_line getfd | grep -q '"fd_received":true' || fail "getfd: $(recorded_line getfd)"
	ctl_ok "$NAME" net del nic1
	ip link show tapx > /dev/null 2>&1 || fail "the user's tap went away"
	ctl_err "$NAME" net add tap=nosuch0
	expect_in "$T/verr" "nosuch0"
	ctl_err "$NAME" net add tap=bad/name
	expect_in "$T/verr" "not a valid interface name"
	stop
	;;
reset-resets-the-guest)
	start
	ctl_ok "$NAME" reset
	[ "$(nrecorded system_reset)" = 1 ] || fail "no system_reset"
	stop
	;;
powerdown-ends-the-run-cleanly)
	start
	ctl_ok "$NAME" powerdown
	finish
	[ $rc -eq 0 ] || fail "exit $rc"
	expect_in "$T/out" "control FIFO: asking the guest to power down"
	[ "$(nrecorded system_powerdown)" = 1 ] || fail "no system_powerdown"
	[ ! -e "$RUN" ] || fail "runtime dir left"
	;;
adopted-guest-keeps-its-devices-and-takes-commands)
	# SIGKILL the supervisor: the guest runs on (same QEMU); the same run
	# adopts it: what was attached is listed, commands work, quit ends it
	# with the host put back and no runtime directory left.
	[ -n "${DRVCORE:-}" ] && [ -f "$DRVCORE" ] || { echo "skip: no drvcore"; exit 77; }
	export LD_PRELOAD=$DRVCORE
	start
	ctl_ok "$NAME" pci add 0000:02:00.0
	qpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["qemu_pid"])' "$RUN/status.json")
	kill -9 "$sup"; finish
	kill -0 "$qpid" || fail "QEMU died with its supervisor"
	[ "$(driver_of 0000:02:00.0)" = vfio-pci ] || fail "the device left vfio-pci without a supervisor"
	adopt
	expect_in "$T/out" "adopting it"
	grep -q "\"qemu_pid\": $qpid," "$RUN/status.json" || fail "not the same QEMU: $(cat "$RUN/status.json")"
	ctl_ok "$NAME" status
	grep -Eq '^nic0 +virtio-net-pci +rp1 +attached$' "$T/vout" || fail "nic0 not adopted"
	grep -Eq '^hostdev-0000-02-00-0 +vfio-pci +rp2 +attached$' "$T/vout" || fail "the hot-added device not adopted"
	ctl_ok "$NAME" net add user
	expect_in "$T/vout" "nic1 attached (virtio-net-pci on rp3)"
	ctl_ok "$NAME" pci del hostdev-0000-02-00-0 force
	expect_in "$T/vout" "0000:02:00.0 is back with its driver"
	ctl_ok "$NAME" quit
	finish
	[ $rc -eq 0 ] || fail "exit $rc"
	[ ! -e "$RUN" ] || fail "the runtime directory was left"
	[ "$(driver_of 0000:02:00.0)" = nvme ] || fail "not on nvme after the run"
	;;
device-the-guest-let-go-while-no-supervisor-ran-is-given-back-on-adoption)
	# pci del goes pending, the supervisor is killed, the guest lets go
	# meanwhile (nobody hears DEVICE_DELETED): the adopter finds the device
	# gone from QEMU and gives it back to its driver.
	killed_with_a_removal_pending
	# The guest lets go while nobody watches: a reset completes the pending
	# unplug (as in QEMU 7.2), asked on QEMU's monitor socket directly.
	python3 - "$RUN/qmp.sock" <<'PY' || fail "resetting the guest"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1])
f = s.makefile("rwb")
f.readline()
for cmd in ("qmp_capabilities", "system_reset"):
    f.write(json.dumps({"execute": cmd}).encode() + b"\n")
    f.flush()
    while "return" not in json.loads(f.readline()):
        pass
PY
	adopt
	wait_for "0000:02:00.0 back on nvme" driver_is 0000:02:00.0 nvme
	expect_in "$T/out" "hostdev-0000-02-00-0 removed; 0000:02:00.0 is back with its driver (it left the guest while no supervisor ran)"
	ctl_ok "$NAME" status -json
	expect_not_in "$T/vout" hostdev
	ctl_ok "$NAME" quit
	finish
	[ $rc -eq 0 ] || fail "exit $rc"
	;;
removal-pending-across-adoption-completes-when-the-guest-lets-go)
	# The guest acks only after a new supervisor adopted it: the adopter
	# shows the removal as pending (the journal said so) and gives the
	# device back when DEVICE_DELETED comes.
	killed_with_a_removal_pending
	adopt
	ctl_ok "$NAME" status
	grep -Eq '^hostdev-0000-02-00-0 +vfio-pci +rp2 +removing$' "$T/vout" || fail "the pending removal was not adopted"
	[ "$(driver_of 0000:02:00.0)" = vfio-pci ] || fail "given back before the guest let go"
	ctl_ok "$NAME" reset
	wait_for "0000:02:00.0 back on nvme" driver_is 0000:02:00.0 nvme
	[ "$(nrecorded device_del)" = 1 ] || fail "the adopter asked again: $(nrecorded device_del) device_del"
	ctl_ok "$NAME" quit
	finish
	[ $rc -eq 0 ] || fail "exit $rc"
	;;
adoption-resyncs-usb-with-what-came-and-went)
	# -usb matches two devices; one is plugged in at the start, the other
	# only while no supervisor runs, when the first is unplugged: the
	# adopter removes the first and attaches the second.
	usbdev=$HOST/sys/bus/usb/devices
	mkdir -p "$T/unplugged"
	mv "$usbdev/1-6" "$T/unplugged/"
	SUDO_UID=1000 SUDO_GID=1000 start -usb 'SteelSeries|Controller'
	wait_for "usb-1-3 attached" grep -q '"id": "usb-1-3"' "$RUN/status.json"
	[ "$(stat -c %u "$HOST/dev/bus/usb/001/002")" = 1000 ] || fail "usb-1-3's node not given to QEMU's user"
	kill -9 "$sup"; finish
	mv "$usbdev/1-3" "$T/unplugged/" && mv "$T/unplugged/1-6" "$usbdev/"
	SUDO_UID=1000 SUDO_GID=1000 adopt -usb 'SteelSeries|Controller'
	wait_for "usb-1-6 attached" grep -q '"id": "usb-1-6"' "$RUN/status.json"
	wait_for "usb-1-3 removed" sh -c "! grep -q '\"id\": \"usb-1-3\"' $RUN/status.json"
	grep -q '"device_del","arguments":{"id":"usb-1-3"}' "$T/record" || fail "usb-1-3 was not removed from QEMU"
	[ "$(stat -c %u "$HOST/dev/bus/usb/001/002")" = 0 ] || fail "usb-1-3's node not given back"
	[ "$(stat -c %u "$HOST/dev/bus/usb/001/005")" = 1000 ] || fail "usb-1-6's node not given to QEMU's user"
	ctl_ok "$NAME" quit
	finish
	[ $rc -eq 0 ] || fail "exit $rc"
	mv "$T/unplugged/1-3" "$usbdev/"
	[ "$(stat -c %u "$HOST/dev/bus/usb/001/005")" = 0 ] || fail "usb-1-6's node not given back"
	;;
quit-stops-qemu)
	start
	ctl_ok "$NAME" quit
	finish
	[ $rc -eq 0 ] || fail "exit $rc"
	[ "$(nrecorded quit)" = 1 ] || fail "no quit"
	;;
vfioctl-exit-2-without-supervisor)
	ctl nosuch status
	[ $vrc -eq 2 ] || fail "exit $vrc, want 2"
	expect_in "$T/verr" 'no supervisor named "nosuch" runs'
	# A FIFO left by a killed supervisor has no reader: still 2.
	mkdir -p "$HOST/run/vfio/dead" && mkfifo -m 600 "$HOST/run/vfio/dead/control" && : > "$HOST/run/vfio/dead/replies"
	ctl dead status
	[ $vrc -eq 2 ] || fail "stale FIFO: exit $vrc, want 2"
	;;
vfioctl-exit-1-on-error-reply)
	start
	ctl "$NAME" net del nic9
	[ $vrc -eq 1 ] || fail "exit $vrc"
	expect_in "$T/verr" "error net del: no device nic9"
	stop
	;;
commands-before-the-guest-runs-refused)
	scenario '{"commands": [{"command": "cont", "delay_ms": 4000}]}'
	"$DRIVER" run "$T/plan.json" -name "$NAME" < /dev/null > "$T/out" 2>&1 &
	sup=$!
	wait_for "the FIFO" test -p "$FIFO"
	ctl_err "$NAME" net add user
	expect_in "$T/verr" "needs the running guest"
	ctl_ok "$NAME" status
	stop
	;;
*)
	fail "unknown case $case_name"
	;;
esac
echo "ok: $case_name"
