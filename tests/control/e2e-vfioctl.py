#!/usr/bin/env python3
"""End to end: `vfio -run` boots the test guest (vfiotest=wait) under real
QEMU (tcg); `vfioctl NAME net add user` hot-adds a NIC and the guest reports
it (iface-added); `vfioctl NAME net del ID` removes it once the guest let go
(iface-removed); `vfioctl NAME powerdown` ends the run, vfio exits 0. Every
wait has a deadline; skips (77) when the guest cannot be built."""
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

VFIOCTL = os.path.join(build, "tools", "vfioctl")
NAME = "e2ectl"
proc = None
out_path = None


def output():
    try:
        with open(out_path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def fail(msg, console=""):
    print("FAIL: " + msg)
    print("--- vfio output:\n" + output())
    if console:
        print("--- console (end):\n" + console[-4000:])
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
    sys.exit(1)


def vfioctl(env, *words, timeout=90):
    r = subprocess.run([VFIOCTL, "-timeout", str(timeout), NAME] + list(words), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout + 30)
    return r.returncode, r.stdout, r.stderr


def wait_console(path, pattern, deadline_s, start=0):
    """The console log is a file QEMU appends to: wait for a line, re-reading
    it at most every 0.2 s (the file has no other change notification that
    this stdlib test can use portably)."""
    end = time.monotonic() + deadline_s
    rx = re.compile(pattern)
    while time.monotonic() < end:
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
        m = rx.search(text, start)
        if m:
            return m, text
        if proc.poll() is not None:
            fail("vfio exited (%d) while waiting for %r" % (proc.returncode, pattern), text)
        time.sleep(0.2)
    fail("timed out after %d s waiting for %r on the console" % (deadline_s, pattern), text)


def main():
    global proc, out_path
    gdir = guestlib.guest_dir()
    with tempfile.TemporaryDirectory(prefix="vfio-e2e-ctl-") as tmp:
        host = os.path.join(tmp, "host")
        spec = os.path.join(tmp, "spec.json")
        with open(spec, "w") as f:
            json.dump({"cpus": {"cores": 2, "threads": 1}, "mem_kib": 4096000,
                       "mem_available_kib": 3000000, "kvm": False}, f)
        subprocess.run([sys.executable, os.environ["MKHOST"], "--spec", spec, host], check=True)
        inroot = os.path.join(host, gdir.lstrip("/"))
        os.makedirs(inroot)
        for name in ("vmlinuz", "initrd.img"):
            os.symlink(os.path.join(gdir, name), os.path.join(inroot, name))
        env = dict(os.environ, VFIO_HOST_ROOT=host)
        env.pop("VFIO_QEMU", None)
        env.pop("SUDO_UID", None)
        env.pop("SUDO_GID", None)
        argv = [os.path.join(build, "src", "supervisor", "vfio"), "-run", "-accel", "tcg",
                "-noBios", "-m", "256M", "-name", NAME,
                "-kernel", os.path.join(gdir, "vmlinuz"), "-initrd", os.path.join(gdir, "initrd.img"),
                "-cmdline", "console=ttyS0 panic=-1 vfiotest=wait"]
        out_path = os.path.join(tmp, "vfio.out")
        console = os.path.join(host, "run", "vfio", NAME, "console.log")
        with open(out_path, "w") as out:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)
        try:
            _, text = wait_console(console, r"VFIO-TEST: ready", 180)
            at = len(text)
            rc, so, se = vfioctl(env, "net", "add", "user")
            if rc != 0:
                fail("vfioctl net add user exited %d: %s%s" % (rc, so, se))
            m = re.match(r"(nic\d+) attached", so)
            if not m:
                fail("vfioctl net add user printed %r, want 'nicN attached ...'" % so)
            nic = m.group(1)
            m, text = wait_console(console, r"VFIO-TEST: iface-added (\S+) (\S+) (\S+)", 90, at)
            if m.group(3) != "virtio_net":
                fail("the guest reported %r, want a virtio_net interface" % m.group(0), text)
            iface = m.group(1)
            at = m.end()
            rc, so, se = vfioctl(env, "status")
            if rc != 0 or nic not in so:
                fail("vfioctl status (%d) does not list %s: %s%s" % (rc, nic, so, se))
            rc, so, se = vfioctl(env, "net", "del", nic)
            if rc != 0:
                fail("vfioctl net del %s exited %d: %s%s" % (nic, rc, so, se))
            m, text = wait_console(console, r"VFIO-TEST: iface-removed %s\b" % re.escape(iface), 90, at)
            rc, so, se = vfioctl(env, "powerdown")
            if rc != 0:
                fail("vfioctl powerdown exited %d: %s%s" % (rc, so, se))
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                fail("vfio did not end within 120 s of powerdown")
            if code != 0:
                fail("vfio exited %d after powerdown, want 0" % code)
            if "the guest shut down (by the guest" not in output():
                fail("no guest shutdown reported")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print("ok: NIC hot-added and removed with vfioctl, seen by the guest, powerdown ended the run")


main()
