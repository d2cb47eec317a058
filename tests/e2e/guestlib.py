"""Helpers for end-to-end tests that boot the test guest (tools/guest/README.md).

guest_dir() builds or reuses the guest and exits 77 (skip) with the reason when
it cannot be built here. Qemu runs qemu-system-x86_64 with the guest's serial
console on a pipe (read by a thread, so waiting for a line is event driven) and,
when asked, a QMP monitor on a socketpair. Every wait has a deadline and fails
with the console and QEMU's stderr so far; close() kills a QEMU still running.
Python standard library only.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77


class Failure(Exception):
    pass


class Skip(Exception):
    """The guest cannot run here; the message says why."""


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def guest_dir():
    """Build the guest into $VFIO_GUEST_DIR (default BUILDDIR/guest), or skip."""
    try:
        return build_guest()
    except Skip as e:
        skip(str(e))


def build_guest():
    """Build the guest into $VFIO_GUEST_DIR (default BUILDDIR/guest); raises
    Skip when QEMU or the guest's packages are not to be had here."""
    src = os.environ.get("VFIO_SRCDIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    build = os.environ.get("VFIO_BUILDDIR") or os.path.join(src, "build")
    gdir = os.environ.get("VFIO_GUEST_DIR") or os.path.join(build, "guest")
    if shutil.which("qemu-system-x86_64") is None:
        raise Skip("qemu-system-x86_64 is not installed: run tools/install-deps as root")
    r = subprocess.run([os.path.join(src, "tools", "build-test-guest"), gdir],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    print(r.stdout, end="")
    if r.returncode == 2:
        raise Skip("the test guest cannot be built here, apt cannot provide its packages (see above)")
    if r.returncode != 0:
        raise Failure(f"tools/build-test-guest {gdir} failed with status {r.returncode}")
    return gdir


class Qemu:
    """qemu-system-x86_64 -accel tcg -machine q35 booting the test guest (or,
    with initrd="kernel-host.img", the kernel host: tools/kernel-host)."""

    def __init__(self, gdir, append, extra=(), qmp=False, machine="q35", memory="256",
                 initrd="initrd.img"):
        self.lines = []          # console lines, without line ends
        self.cond = threading.Condition()
        self.events = []         # QMP events not yet waited for
        self.qmp_sock = None
        self.qmp_buf = b""
        self.stderr = tempfile.TemporaryFile()
        argv = ["qemu-system-x86_64", "-accel", "tcg", "-machine", machine, "-nodefaults",
                "-m", memory, "-display", "none", "-no-reboot",
                "-kernel", os.path.join(gdir, "vmlinuz"), "-initrd", os.path.join(gdir, initrd),
                "-append", f"console=ttyS0 panic=-1 {append}", "-serial", "stdio"]
        pass_fds = ()
        if qmp:
            ours, theirs = socket.socketpair()
            argv += ["-chardev", f"socket,id=qmp,fd={theirs.fileno()}", "-mon", "chardev=qmp,mode=control"]
            pass_fds = (theirs.fileno(),)
        argv += list(extra)
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr, pass_fds=pass_fds)
        self.reader = threading.Thread(target=self._read_console, daemon=True)
        self.reader.start()
        if qmp:
            theirs.close()
            self.qmp_sock = ours
            try:
                self._qmp_recv(30)                  # the greeting
                self.command("qmp_capabilities")
            except BaseException:
                self.close()
                raise

    # --- console -------------------------------------------------------
    def _read_console(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)                 # EOF: QEMU closed the console
            self.cond.notify_all()

    def wait_line(self, pattern, timeout, start=0):
        """Wait for a console line matching the regex; returns (match, index)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        self.fail(f"the console ended before a line matching {pattern!r}")
                    m = rx.search(line)
                    if m:
                        return m, i + 1
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    self.fail(f"no console line matching {pattern!r} within {timeout} s")
                self.cond.wait(left)

    def reports(self):
        """The VFIO-TEST lines so far, prefix removed."""
        with self.cond:
            return [l.split("VFIO-TEST: ", 1)[1] for l in self.lines if l and "VFIO-TEST: " in l]

    # --- QMP -----------------------------------------------------------
    def _qmp_recv(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.qmp_buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail(f"no QMP message within {timeout} s")
            self.qmp_sock.settimeout(left)
            try:
                data = self.qmp_sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                self.fail("QEMU closed the QMP connection")
            self.qmp_buf += data
        line, self.qmp_buf = self.qmp_buf.split(b"\n", 1)
        return json.loads(line)

    def command(self, execute, timeout=30, **arguments):
        msg = {"execute": execute}
        if arguments:
            msg["arguments"] = arguments
        self.qmp_sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._qmp_recv(timeout)
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                self.fail(f"QMP {execute} failed: {reply['error']}")
            return reply.get("return")

    def wait_event(self, name, timeout, **data):
        """Wait for event NAME whose data has these key/values; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name and all(ev.get("data", {}).get(k) == v for k, v in data.items()):
                    self.events.remove(ev)
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail(f"no QMP event {name} {data or ''} within {timeout} s")
            msg = self._qmp_recv(left)
            if "event" in msg:
                self.events.append(msg)

    # --- process -------------------------------------------------------
    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"QEMU did not exit within {timeout} s")

    def fail(self, why):
        self.stderr.seek(0)
        err = self.stderr.read().decode("utf-8", "replace")
        with self.cond:
            # The end of the console says most; the start is the kernel booting.
            console = "\n".join(l for l in self.lines[-80:] if l is not None)
        raise Failure(f"{why}\n--- QEMU: {' '.join(self.argv)}\n--- console:\n{console}\n--- QEMU stderr:\n{err}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.qmp_sock:
            self.qmp_sock.close()
        self.reader.join(10)
        self.stderr.close()


def fixture_host(tmp, gdir, **spec):
    """A small fixture host root in tmp/host (tests/fixtures/mkhost.py: two
    cores, no KVM, plus spec) where the guest's kernel and initrd are at
    their real paths too: the snapshot checks the files the user names under
    the host root, QEMU opens them at the real path. Returns its path."""
    host = os.path.join(tmp, "host")
    path = os.path.join(tmp, "spec.json")
    with open(path, "w") as f:
        json.dump(dict({"cpus": {"cores": 2, "threads": 1}, "mem_kib": 4096000, "mem_available_kib": 3000000,
                        "kvm": False}, **spec), f)
    subprocess.run([sys.executable, os.environ["MKHOST"], "--spec", path, host], check=True)
    inroot = os.path.join(host, gdir.lstrip("/"))
    os.makedirs(inroot)
    for name in ("vmlinuz", "initrd.img"):
        os.symlink(os.path.join(gdir, name), os.path.join(inroot, name))
    return host


def fail_run(msg, out=""):
    """A failed run of vfio: the reason, then what vfio said; exit 1."""
    print("FAIL: " + msg)
    if out:
        print("--- vfio output:\n" + out)
    sys.exit(1)


def main(test):
    """Run test(gdir) with the guest built; a Failure prints and exits 1."""
    gdir = guest_dir()
    try:
        test(gdir)
    except Failure as e:
        print(f"FAIL: {e}")
        sys.exit(1)
    print("PASS")
