#!/usr/bin/env python3
"""End to end: the real `vfio -run` supervises real QEMU (tcg) booting the test
guest, with a virtio NIC attached over QMP (user-mode networking). The guest
lists its interfaces on the serial console (console.log, stdin is not a TTY)
and powers off; the supervisor sees SHUTDOWN from the guest, restores the host
root and exits 0. Skips (77) when the guest cannot be built.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

src = os.environ["VFIO_SRCDIR"]
build = os.environ["VFIO_BUILDDIR"]
sys.path.insert(0, os.path.join(src, "tests", "e2e"))
import guestlib  # noqa: E402

TREESNAP = os.path.join(src, "tests", "session", "treesnap.py")


def snap(root):
    return subprocess.run([sys.executable, TREESNAP, root], check=True, stdout=subprocess.PIPE,
                          text=True).stdout


def fail(msg, out=""):
    print("FAIL: " + msg)
    if out:
        print("--- vfio output:\n" + out)
    sys.exit(1)


def main():
    gdir = guestlib.guest_dir()
    with tempfile.TemporaryDirectory(prefix="vfio-e2e-run-") as tmp:
        host = os.path.join(tmp, "host")
        spec = os.path.join(tmp, "spec.json")
        with open(spec, "w") as f:
            # A small host: one vCPU for the guest (half of two), no KVM.
            json.dump({"cpus": {"cores": 2, "threads": 1}, "mem_kib": 4096000,
                       "mem_available_kib": 3000000, "kvm": False}, f)
        subprocess.run([sys.executable, os.environ["MKHOST"], "--spec", spec, host], check=True)
        # The snapshot checks the files the user names under the host root;
        # QEMU opens them at their real path: make both see the guest.
        inroot = os.path.join(host, gdir.lstrip("/"))
        os.makedirs(inroot)
        for name in ("vmlinuz", "initrd.img"):
            os.symlink(os.path.join(gdir, name), os.path.join(inroot, name))
        before = snap(host)
        env = dict(os.environ, VFIO_HOST_ROOT=host)
        env.pop("VFIO_QEMU", None)      # the real qemu-system-x86_64 from PATH
        env.pop("SUDO_UID", None)
        env.pop("SUDO_GID", None)
        argv = [os.path.join(build, "src", "supervisor", "vfio"), "-run", "-accel", "tcg",
                "-noBios", "-m", "256M", "-name", "e2e",
                "-kernel", os.path.join(gdir, "vmlinuz"), "-initrd", os.path.join(gdir, "initrd.img"),
                "-cmdline", "console=ttyS0 panic=-1 vfiotest=poweroff"]
        try:
            r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=240)
        except subprocess.TimeoutExpired as e:
            fail("vfio -run did not finish within 240 s", e.stdout or "")
        out = r.stdout
        if r.returncode != 0:
            fail("vfio -run exited with %d, want 0" % r.returncode, out)
        for want in ("attached nic0 (virtio-net-pci)", "the guest shut down (by the guest",
                     "the guest \"e2e\" is done"):
            if want not in out:
                fail("expected %r in the output" % want, out)
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
        after = snap(host)
        if before != after:
            fail("the host root differs after the run:\n" + "\n".join(
                set(before.splitlines()) ^ set(after.splitlines())), out)
    print("ok: booted, NIC attached over QMP and seen by the guest, SHUTDOWN from the guest, host restored")


main()
