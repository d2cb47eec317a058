#!/usr/bin/env python3
"""End to end: the real `vfio -run` supervises real QEMU (tcg) booting the test
guest, with a virtio NIC attached over QMP (user-mode networking). The guest
lists its interfaces on the serial console (console.log, stdin is not a TTY)
and powers off; the supervisor sees SHUTDOWN from the guest, restores the host
root and exits 0. Skips (77) when the guest cannot be built.

Started as root with nobody behind it, QEMU never runs as root: the plan
names vfio's own user (not there yet on this host, so -run creates it with the
uid the plan shows, the one change a run keeps), and QEMU runs as that user
in its seccomp sandbox (/proc/PID/status: Uid, Seccomp 2).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

src = os.environ["VFIO_SRCDIR"]
build = os.environ["VFIO_BUILDDIR"]
sys.path.insert(0, os.path.join(src, "tests", "e2e"))
import guestlib  # noqa: E402

TREESNAP = os.path.join(src, "tests", "session", "treesnap.py")


def snap(root):
    return subprocess.run([sys.executable, TREESNAP, root], check=True, stdout=subprocess.PIPE,
                          text=True).stdout


fail = guestlib.fail_run


def main():
    gdir = guestlib.guest_dir()
    with tempfile.TemporaryDirectory(prefix="vfio-e2e-run-") as tmp:
        # This host lacks vfio's own user: -run creates it.
        host = guestlib.fixture_host(tmp, gdir, qemu_user=None)
        before = snap(host)
        env = dict(os.environ, VFIO_HOST_ROOT=host)
        env.pop("VFIO_QEMU", None)      # the real qemu-system-x86_64 from PATH
        env.pop("SUDO_UID", None)
        env.pop("SUDO_GID", None)
        argv = [os.path.join(build, "src", "supervisor", "vfio"), "-run", "-accel", "tcg",
                "-noBios", "-m", "256M", "-name", "e2e",
                "-kernel", os.path.join(gdir, "vmlinuz"), "-initrd", os.path.join(gdir, "initrd.img"),
                "-cmdline", "console=ttyS0 panic=-1 vfiotest=poweroff"]
        plan = json.loads(subprocess.run(argv[:1] + ["-json"] + argv[2:], env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, text=True, timeout=60).stdout)
        user = plan["qemu_user"]
        if not user or user["name"] != "vfio-qemu" or not user["create"] or not user["sandbox"]:
            fail("the plan does not show QEMU as vfio's own user, to be created, sandboxed: %r" % user)
        if "-sandbox" not in plan["argv"]:
            fail("no -sandbox in the planned argv: %r" % plan["argv"])
        uid = user["uid"]
        with tempfile.TemporaryFile("w+") as log:
            p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 text=True)
            status = os.path.join(host, "run", "vfio", "e2e", "status.json")
            seen = None
            deadline = time.monotonic() + 120
            while seen is None and p.poll() is None and time.monotonic() < deadline:
                try:
                    with open(status) as f:
                        st = json.load(f)
                    # Once the guest runs, QEMU has long set up its sandbox.
                    if st.get("state") != "running":
                        raise ValueError("not running yet")
                    pid = st["qemu_pid"]
                    with open("/proc/%d/status" % pid) as f:
                        fields = dict(l.split(":", 1) for l in f if ":" in l)
                    seen = (fields["Uid"].split(), fields["Gid"].split(), fields["Seccomp"].strip())
                except (OSError, ValueError, KeyError):
                    time.sleep(0.1)
            try:
                p.wait(timeout=240)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                log.seek(0)
                fail("vfio -run did not finish within 240 s", log.read())
            log.seek(0)
            out = log.read()
        if p.returncode != 0:
            fail("vfio -run exited with %d, want 0" % p.returncode, out)
        if seen is None:
            fail("QEMU's /proc/PID/status was never seen", out)
        if seen[0] != [str(uid)] * 4 or seen[1] != [str(uid)] * 4 or seen[2] != "2":
            fail("QEMU ran with Uid %s, Gid %s, Seccomp %s; want uid/gid %d and Seccomp 2 (filter)"
                 % (seen[0], seen[1], seen[2], uid), out)
        if "creating the system user vfio-qemu (uid %d)" % uid not in out:
            fail("the run did not say it creates vfio-qemu", out)
        m = re.search(r"Guest MAC address: ([0-9a-f:]{17})", out)
        if not m:
            fail("the rundown names no guest MAC address", out)
        console = os.path.join(host, "var", "lib", "vfio", "e2e", "console.log")
        if not os.path.exists(console):
            fail("no console log kept at " + console, out)
        with open(console, errors="replace") as f:
            text = f.read()
        ifaces = re.findall(r"VFIO-TEST: iface (\S+) (\S+) (\S+)", text)
        if (m.group(1), "virtio_net") not in [(mac, drv) for _, mac, drv in ifaces]:
            fail("the guest did not report the virtio NIC %s; it reported %r\n--- console:\n%s"
                 % (m.group(1), ifaces, text[-3000:]), out)
        if "VFIO-TEST: poweroff" not in text:
            fail("the guest did not power off by itself\n--- console:\n" + text[-3000:], out)
        # The host root is as before, but for the console log kept for the user.
        os.unlink(console)
        os.rmdir(os.path.dirname(console))
        os.rmdir(os.path.dirname(os.path.dirname(console)))
        # ... and for vfio's own user, which -run created and keeps: exactly
        # its lines, with the planned ids.
        with open(os.path.join(host, "etc", "passwd")) as f:
            if "vfio-qemu:!:%d:%d:vfio QEMU guests:/:/usr/sbin/nologin\n" % (uid, uid) not in f.read():
                fail("/etc/passwd has no vfio-qemu with uid %d" % uid, out)
        keep = ("etc/passwd ", "etc/group ", "etc/passwd- ", "etc/group- ")
        before = "\n".join(l for l in before.splitlines() if not l.startswith(keep))
        after = "\n".join(l for l in snap(host).splitlines() if not l.startswith(keep))
        if before != after:
            fail("the host root differs after the run:\n" + "\n".join(
                set(before.splitlines()) ^ set(after.splitlines())), out)
    print("ok: booted, NIC attached over QMP and seen by the guest, QEMU as vfio-qemu (uid %d) under seccomp, "
          "SHUTDOWN from the guest, host restored" % uid)


main()
