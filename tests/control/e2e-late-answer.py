#!/usr/bin/env python3
"""End to end: real QEMU (tcg) stopped while `vfioctl NAME net add user`
waits (SIGSTOP, longer than the supervisor's wait for netdev_add, shortened
to 3 s with $VFIO_TEST_QMP_TIMEOUT_MS): once QEMU runs again it makes the
backend late; the supervisor asks, removes it, and only then replies. The
next `net add user` works (no "Duplicate ID 'net1'"). Skips (77) when the
guest cannot be built."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

src = os.environ["VFIO_SRCDIR"]
build = os.environ["VFIO_BUILDDIR"]
sys.path.insert(0, os.path.join(src, "tests", "e2e"))
import guestlib  # noqa: E402

VFIOCTL = os.path.join(build, "tools", "vfioctl")
NAME = "e2elate"
TIMEOUT_MS = 3000


def main():
    gdir = guestlib.guest_dir()
    with tempfile.TemporaryDirectory(prefix="vfio-e2e-late-") as tmp:
        host = guestlib.fixture_host(tmp, gdir)
        env = dict(os.environ, VFIO_HOST_ROOT=host, VFIO_TEST_QMP_TIMEOUT_MS=str(TIMEOUT_MS))
        for k in ("VFIO_QEMU", "SUDO_UID", "SUDO_GID"):
            env.pop(k, None)
        argv = [os.path.join(build, "src", "supervisor", "vfio"), "-run", "-accel", "tcg", "-noBios", "-m", "256M",
                "-name", NAME, "-kernel", os.path.join(gdir, "vmlinuz"), "-initrd", os.path.join(gdir, "initrd.img"),
                "-cmdline", "console=ttyS0 panic=-1 vfiotest=wait"]
        status = os.path.join(host, "run", "vfio", NAME, "status.json")
        with tempfile.TemporaryFile("w+") as log:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            qemu = None

            def fail(msg):
                if qemu is not None:
                    os.kill(qemu, signal.SIGCONT)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                log.seek(0)
                guestlib.fail_run(msg, log.read())

            def vfioctl(*words):
                r = subprocess.run([VFIOCTL, "-timeout", "60", NAME] + list(words), env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=90)
                return r.returncode, r.stdout

            deadline = time.monotonic() + 120
            while qemu is None and time.monotonic() < deadline and proc.poll() is None:
                try:
                    with open(status) as f:
                        st = json.load(f)
                    if st.get("state") == "running":
                        qemu = st["qemu_pid"]
                except (OSError, ValueError):
                    pass
                time.sleep(0.2)
            if qemu is None:
                fail("the guest never ran")
            os.kill(qemu, signal.SIGSTOP)
            add = subprocess.Popen([VFIOCTL, "-timeout", "60", NAME, "net", "add", "user"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            # Past the supervisor's wait for netdev_add, well within its
            # wait for the question that follows (twice as long).
            time.sleep(TIMEOUT_MS * 1.5 / 1000)
            os.kill(qemu, signal.SIGCONT)
            so, _ = add.communicate(timeout=90)
            if add.returncode != 1 or "made the network backend net1 late, and it was removed again" not in so:
                fail("net add user while QEMU was stopped: exit %d, %r" % (add.returncode, so))
            rc, so = vfioctl("net", "add", "user")
            if rc != 0 or not re.match(r"nic1 attached", so):
                fail("the next net add user: exit %d, %r (want nic1 attached)" % (rc, so))
            rc, so = vfioctl("quit")
            if rc != 0:
                fail("vfioctl quit: exit %d, %r" % (rc, so))
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                fail("vfio did not end after quit")
            if proc.returncode != 0:
                fail("vfio exited %d after quit" % proc.returncode)
    print("ok: a netdev_add QEMU answered late was removed again before the reply; the next net add worked")


main()
