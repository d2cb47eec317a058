#!/usr/bin/env python3
"""The plan against real QEMU: for a set of option combinations, the argv
vfio plans (-json, tcg) starts the real qemu-system-x86_64 with the QMP
monitor on fd 3, the guest is stopped (-S, "prelaunch"), and every planned
QMP command succeeds. Catches option strings QEMU 7.2 does not accept.
Exit 77 (skip) when QEMU is not installed.
"""
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

VFIO = os.environ["VFIO"]
MKHOST = os.environ["MKHOST"]
QEMU = shutil.which("qemu-system-x86_64")
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
OVMF = os.path.exists("/usr/share/OVMF/OVMF_CODE_4M.fd") and os.path.exists(OVMF_VARS)

CASES = [
    ("virtio disks, cd, user net with port forward, extras",
     ["-noBios", "-image", "d0.img", "-imageformat", "raw", "-image", "d1.qcow2", "-imageformat", "qcow2",
      "-iso", "cd.iso", "-portforward", "tcp:%(port)d:22", "-extras", "-device virtio-rng-pci"]),
    ("legacy devices", ["-noBios", "-image", "d0.img", "-format", "raw", "-noVirtio", "-iso", "cd.iso"]),
    ("nvme disks, no network", ["-noBios", "-image", "d0.img", "-format", "raw", "-image", "d1.qcow2",
                                "-format", "qcow2", "-nvme", "-nonet"]),
    ("spice, agent, usb controller", ["-noBios", "-spice", "-qemu-agent", "-usb", "NoSuchDevice"]),
    ("looking glass", ["-noBios", "-lg", "-lgsize", "32M"]),
    ("pinned siblings", ["-noBios", "-m", "256M", "-pinvcpus", "1,9", "-hyperv"]),
]
if OVMF:
    CASES.append(("secure boot with its variables", ["-secureboot", "-biosvars", "vars.fd", "-m", "512M"]))
    CASES.append(("uefi", ["-image", "d0.img", "-format", "raw", "-m", "512M"]))


class Qmp:
    def __init__(self, sock):
        self.f = sock.makefile("rwb", buffering=0)

    def read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("QEMU closed the monitor")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, obj):
        self.f.write(json.dumps(obj).encode() + b"\n")
        return self.read()


def run_case(tmp, root, name, args):
    env = dict(os.environ, VFIO_HOST_ROOT=root, NO_COLOR="1")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    p = subprocess.run([VFIO, "-json", "-accel", "tcg", "-name", "qtest"] + args, cwd=tmp, env=env,
                       capture_output=True, text=True, timeout=60)
    plan = json.loads(p.stdout)
    if plan["errors"]:
        raise RuntimeError("plan errors: %s" % plan["errors"])
    # The session makes /run/vfio/NAME under the host root, where the plan
    # points QEMU's sockets; here the test makes it.
    os.makedirs(os.path.join(root, "run/vfio/qtest/qemu"), exist_ok=True)
    argv = [a.replace("/dev/shm/looking-glass", tmp + "/lg") for a in plan["argv"]]
    argv[0] = QEMU
    # As the supervisor's spawn does: QEMU's monitor and console listen on
    # sockets it is handed as fds 3 and 5 (server=on,fd=N), its console log
    # is fd 4 (the plan's -add-fd); the supervisor connects to the monitor.
    listeners = []
    for name in ("qmp.sock", "console.sock"):
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(os.path.join(tmp, name)):
            os.unlink(os.path.join(tmp, name))
        ls.bind(os.path.join(tmp, name))
        ls.listen(4)
        listeners.append(ls)
    console = os.open(os.path.join(root, "run/vfio/qtest/console.log"), os.O_WRONLY | os.O_CREAT, 0o600)
    # Numbered out of the way first, so the shell's redirections cannot
    # overwrite one with another.
    fds = [fcntl.fcntl(fd, fcntl.F_DUPFD, 20) for fd in (listeners[0].fileno(), console, listeners[1].fileno())]
    def into_place():
        for i, fd in enumerate(fds):
            os.dup2(fd, 3 + i)
    q = subprocess.Popen(argv, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, pass_fds=(3, 4, 5), preexec_fn=into_place)
    for ls in listeners:
        ls.close()
    os.close(console)
    for fd in fds:
        os.close(fd)
    parent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    parent.settimeout(60)
    try:
        parent.connect(os.path.join(tmp, "qmp.sock"))
        m = Qmp(parent)
        greeting = m.read()
        assert "QMP" in greeting, greeting
        assert "return" in m.cmd({"execute": "qmp_capabilities"})
        status = m.cmd({"execute": "query-status"})
        assert status["return"]["status"] == "prelaunch", status
        for c in plan["qmp"]:
            if "fd" in c:
                continue
            r = m.cmd(c)
            if "return" not in r:
                raise RuntimeError("QMP %s refused: %s" % (json.dumps(c), r))
        m.cmd({"execute": "quit"})
        q.wait(timeout=60)
    except Exception as e:
        q.kill()
        out, err = q.communicate()
        raise RuntimeError("%s\nargv: %s\nQEMU stderr: %s" % (e, " ".join(argv), err.decode(errors="replace")))
    finally:
        parent.close()


def main():
    if QEMU is None:
        print("qemu-system-x86_64 is not installed")
        return 77
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        subprocess.run([sys.executable, MKHOST, "--preset", "desktop", root], check=True,
                       stdout=subprocess.DEVNULL)
        for f in ("d0.img", "cd.iso"):
            with open(os.path.join(tmp, f), "wb") as fh:
                fh.truncate(1 << 20)
        # qemu-img (qemu-utils) is only a recommendation of qemu-system-x86:
        # without it the second disk is raw, named the same.
        if shutil.which("qemu-img"):
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", os.path.join(tmp, "d1.qcow2"), "16M"],
                           check=True)
        else:
            with open(os.path.join(tmp, "d1.qcow2"), "wb") as fh:
                fh.truncate(1 << 20)
            for _, args in CASES:
                for i, a in enumerate(args):
                    if a == "qcow2":
                        args[i] = "raw"
        if OVMF:
            shutil.copy(OVMF_VARS, os.path.join(tmp, "vars.fd"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        for name, args in CASES:
            args = [a % {"port": port} if "%(port)" in a else a for a in args]
            try:
                run_case(tmp, root, name, args)
                print("ok: %s" % name)
            except Exception as e:
                print("FAIL: %s: %s" % (name, e))
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
