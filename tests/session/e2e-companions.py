#!/usr/bin/env python3
"""End to end: QEMU's companions work with QEMU as its own user. The real
`vfio -run`, started as root with nobody behind it, runs real QEMU (tcg) as
vfio-qemu under seccomp with -spice (its server socket), -qemu-agent (its
socket) and -tpm (the real swtpm, as the same user): each socket is made in
QEMU's own directory of the runtime directory (/run/vfio/NAME/qemu, the
user's) and takes connections; SIGTERM powers the guest down and the
runtime directory goes, sockets QEMU left included. Skips (77) when the
guest cannot be built or swtpm is missing.
"""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

src = os.environ["VFIO_SRCDIR"]
build = os.environ["VFIO_BUILDDIR"]
sys.path.insert(0, os.path.join(src, "tests", "e2e"))
import guestlib  # noqa: E402


fail = guestlib.fail_run


def main():
    if shutil.which("swtpm") is None:
        guestlib.skip("swtpm is not installed: run tools/install-deps as root")
    gdir = guestlib.guest_dir()
    with tempfile.TemporaryDirectory(prefix="vfio-e2e-comp-") as tmp:
        os.chmod(tmp, 0o755)    # QEMU's user reaches its directory under the host root
        host = guestlib.fixture_host(tmp, gdir)
        env = dict(os.environ, VFIO_HOST_ROOT=host)
        for k in ("VFIO_QEMU", "VFIO_SWTPM", "SUDO_UID", "SUDO_GID", "SUDO_USER", "DISPLAY", "WAYLAND_DISPLAY"):
            env.pop(k, None)
        argv = [os.path.join(build, "src", "supervisor", "vfio"), "-run", "-accel", "tcg", "-noBios", "-m", "256M",
                "-nonet", "-name", "comp", "-spice", "-qemu-agent", "-tpm",
                "-kernel", os.path.join(gdir, "vmlinuz"), "-initrd", os.path.join(gdir, "initrd.img"),
                "-cmdline", "console=ttyS0 panic=-1 vfiotest=wait"]
        qdir = os.path.join(host, "run", "vfio", "comp", "qemu")
        status = os.path.join(host, "run", "vfio", "comp", "status.json")
        with tempfile.TemporaryFile("w+") as log:
            p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 text=True)
            problem = None
            try:
                deadline = time.monotonic() + 120
                state = None
                while state != "running" and p.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.2)
                    try:
                        with open(status) as f:
                            st = json.load(f)
                        state = st["state"]
                    except (OSError, ValueError, KeyError):
                        pass
                if state != "running":
                    problem = "the guest never ran"
                else:
                    with open("/proc/%d/status" % st["qemu_pid"]) as f:
                        fields = dict(l.split(":", 1) for l in f if ":" in l)
                    if fields["Uid"].split()[0] != "999" or fields["Seccomp"].strip() != "2":
                        problem = "QEMU runs with Uid %s, Seccomp %s" % (fields["Uid"].split(),
                                                                         fields["Seccomp"].strip())
                    for name in ("spice.sock", "qga.sock", "swtpm.sock"):
                        path = os.path.join(qdir, name)
                        try:
                            s = os.lstat(path)
                        except OSError as e:
                            problem = problem or "%s: %s" % (path, e)
                            continue
                        if not stat.S_ISSOCK(s.st_mode) or s.st_uid != 999:
                            problem = problem or "%s is not a socket of uid 999 (mode %o, uid %d)" % (
                                path, s.st_mode, s.st_uid)
                    # SPICE and the agent's socket take connections.
                    for name in ("spice.sock", "qga.sock"):
                        c = socket.socket(socket.AF_UNIX)
                        try:
                            c.connect(os.path.join(qdir, name))
                        except OSError as e:
                            problem = problem or "cannot connect to %s: %s" % (name, e)
                        c.close()
                    swtpm = subprocess.run(["pgrep", "-u", "999", "-x", "swtpm"], stdout=subprocess.PIPE,
                                           text=True).stdout.split()
                    if not swtpm:
                        problem = problem or "no swtpm runs as uid 999"
            finally:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                log.seek(0)
                out = log.read()
        if problem:
            fail(problem, out)
        if p.returncode != 0:
            fail("vfio -run exited with %d, want 0" % p.returncode, out)
        for bad in ("cannot remove", "Directory not empty", "Failed to open SPICE sockets"):
            if bad in out:
                fail("%r in the output" % bad, out)
        if os.path.exists(os.path.join(host, "run", "vfio", "comp")):
            fail("the runtime directory was left: %s" % os.listdir(os.path.join(host, "run", "vfio", "comp")), out)
    print("ok: SPICE, the guest agent and swtpm made their sockets in QEMU's directory as vfio-qemu, "
          "and the runtime directory went at the end")


main()
