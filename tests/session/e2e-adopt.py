#!/usr/bin/env python3
"""End to end, real QEMU (tcg) and the real test guest: the guest outlives
its supervisor. `vfio -run` boots the guest (vfiotest=wait); the supervisor
is killed (SIGKILL); the guest keeps running, the same QEMU; the dry run
for the same flags says -run would adopt it; the same `vfio -run` adopts it;
a NIC hot-added afterwards (`vfioctl NAME net add user`) reaches the guest
(it reports iface-added); `vfioctl NAME quit` ends the run with exit 0 and
no runtime directory left. Every wait has a deadline; skips (77) when the
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

VFIO = os.path.join(build, "src", "supervisor", "vfio")
VFIOCTL = os.path.join(build, "tools", "vfioctl")
NAME = "e2eadopt"
procs = []
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
    sys.exit(1)


def wait_console(path, pattern, deadline_s, start=0):
    """QEMU appends to its console log (even with no supervisor): wait for
    a line, re-reading it at most every 0.2 s."""
    end = time.monotonic() + deadline_s
    rx = re.compile(pattern)
    text = ""
    while time.monotonic() < end:
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
        m = rx.search(text, start)
        if m:
            return m, text
        time.sleep(0.2)
    fail("timed out after %d s waiting for %r on the console" % (deadline_s, pattern), text)


def status(host):
    with open(os.path.join(host, "run", "vfio", NAME, "status.json")) as f:
        return json.load(f)


def wait_status(host, what, cond, proc, deadline_s=120):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            st = status(host)
            if cond(st):
                return st
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            fail("vfio exited (%d) while waiting for %s" % (proc.returncode, what))
        time.sleep(0.2)
    fail("timed out waiting for " + what)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main():
    global out_path
    gdir = guestlib.guest_dir()
    with tempfile.TemporaryDirectory(prefix="vfio-e2e-adopt-") as tmp:
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
        for k in ("VFIO_QEMU", "SUDO_UID", "SUDO_GID"):
            env.pop(k, None)
        flags = ["-accel", "tcg", "-noBios", "-m", "256M", "-name", NAME,
                 "-kernel", os.path.join(gdir, "vmlinuz"), "-initrd", os.path.join(gdir, "initrd.img"),
                 "-cmdline", "console=ttyS0 panic=-1 vfiotest=wait"]
        out_path = os.path.join(tmp, "vfio.out")
        console = os.path.join(host, "run", "vfio", NAME, "console.log")
        qpid = None
        try:
            with open(out_path, "w") as out:
                first = subprocess.Popen([VFIO, "-run"] + flags, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
            procs.append(first)
            st = wait_status(host, "the guest to run", lambda s: s["state"] == "running", first)
            qpid = st["qemu_pid"]
            _, text = wait_console(console, r"VFIO-TEST: ready", 180)
            at = len(text)

            first.send_signal(signal.SIGKILL)
            first.wait()
            # (adopting the same pid below shows it ran on, too)
            if not alive(qpid):
                fail("QEMU (pid %d) died with its supervisor" % qpid)

            plan = json.loads(subprocess.run([VFIO, "-json"] + flags, env=env, stdin=subprocess.DEVNULL,
                                             capture_output=True, text=True, timeout=120).stdout)
            if plan["running"] != {"run": "adopt", "qemu_pid": qpid, "differences": []}:
                fail("the dry run says %s, not that -run adopts QEMU %d" % (plan["running"], qpid))

            with open(out_path, "a") as out:
                second = subprocess.Popen([VFIO, "-run"] + flags, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT)
            procs.append(second)
            st = wait_status(host, "the guest to be adopted",
                             lambda s: s["pid"] == second.pid and s["state"] == "running" and s.get("adopted"),
                             second)
            if st["qemu_pid"] != qpid:
                fail("adopted QEMU %d, not the running one (%d)" % (st["qemu_pid"], qpid))

            r = subprocess.run([VFIOCTL, "-timeout", "90", NAME, "net", "add", "user"], env=env,
                               capture_output=True, text=True, timeout=120)
            m = re.match(r"(nic\d+) attached", r.stdout)
            if r.returncode != 0 or not m:
                fail("vfioctl net add user after adoption exited %d: %s%s" % (r.returncode, r.stdout, r.stderr))
            m, text = wait_console(console, r"VFIO-TEST: iface-added (\S+) (\S+) (\S+)", 90, at)
            if m.group(3) != "virtio_net":
                fail("the guest reported %r, want a virtio_net interface" % m.group(0), text)

            r = subprocess.run([VFIOCTL, "-timeout", "90", NAME, "quit"], env=env, capture_output=True, text=True,
                               timeout=120)
            if r.returncode != 0:
                fail("vfioctl quit exited %d: %s%s" % (r.returncode, r.stdout, r.stderr))
            try:
                code = second.wait(timeout=120)
            except subprocess.TimeoutExpired:
                fail("vfio did not end within 120 s of quit")
            if code != 0:
                fail("vfio exited %d after quit, want 0" % code)
            if os.path.exists(os.path.join(host, "run", "vfio", NAME)):
                fail("the runtime directory was left")
            if alive(qpid):
                fail("QEMU outlived quit")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            if qpid is not None and alive(qpid):
                os.kill(qpid, signal.SIGKILL)
    print("ok: supervisor killed, the guest ran on (QEMU %d), the same -run adopted it, a NIC hot-added "
          "afterwards reached the guest, quit ended the run with 0 and no runtime directory" % qpid)


main()
