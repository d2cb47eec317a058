#!/usr/bin/env python3
"""A fresh machine (issue 14): QEMU has every module the tests and vfio's
documented features need, and vfio names the right Debian package for each.

    qemu-modules.py installed   every feature below plans with no
                                "its module ... is not installed" error; a
                                failure names the module and the package
                                tools/install-deps must install
    qemu-modules.py packages    (root, unshare) QEMU's module directory
                                emptied in a private mount namespace (but the
                                accelerators): every feature is refused, and
                                the package each refusal names is the one
                                `dpkg -S` says ships the module

The features are asked through vfio's own pre-flight (a dry run against a
fixture host and the real QEMU): the module each one needs, and its
package, are known in one place, src/hostprep/qemucaps.c.
"""
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

VFIO = os.environ["VFIO"]
MKHOST = os.environ["MKHOST"]

# What needs a QEMU module, and which test or feature relies on it.
FEATURES = [
    ("-hostaudio (PulseAudio; tests/mem/qemu-args.py)", ["-hostaudio"]),
    ("-spice (tests/plan/qemu-accepts.py)", ["-spice"]),
    ("-looking-glass", ["-looking-glass"]),
    ("-usb, pci/usb add (tests/kernel)", ["-usb", "SteelSeries"]),
    ("a window on the desktop (QEMU's default display)", ["-extras", "-display gtk"]),
]
MODULE_ERROR = re.compile(r"its module (\S+) is not installed; install it \(Debian: apt install (\S+)\)")


def fail(why):
    print("FAIL: " + why, file=sys.stderr)
    sys.exit(1)


def qemu():
    q = shutil.which("qemu-system-x86_64")
    if q is None:
        fail("qemu-system-x86_64 is not installed: tools/install-deps installs qemu-system-x86")
    return os.path.realpath(q)


def module_dir(q):
    """QEMU's module directory, as QEMU looks for it beside its binary."""
    top = os.path.dirname(os.path.dirname(q))
    for d in sorted(glob.glob(f"{top}/lib/*/qemu")) + [f"{top}/lib/qemu"]:
        if glob.glob(f"{d}/*.so"):
            return d
    fail(f"{q} has no module directory with modules beside it ({top}/lib/*/qemu): "
         "tools/install-deps installs qemu-system-x86 (qemu-system-common ships them)")


def fixture(tmp):
    host = os.path.join(tmp, "host")
    subprocess.run([sys.executable, MKHOST, "--preset", "desktop", host], check=True, stdout=subprocess.DEVNULL)
    # -hostaudio finds the desktop user's PulseAudio by its socket.
    pulse = os.path.join(host, "run/user/0/pulse")
    os.makedirs(pulse)
    socket.socket(socket.AF_UNIX).bind(os.path.join(pulse, "native"))
    return host


def plan_errors(host, args):
    env = dict(os.environ, VFIO_HOST_ROOT=host, NO_COLOR="1")
    for v in ("VFIO_QEMU", "SUDO_UID", "SUDO_GID", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(v, None)
    p = subprocess.run([VFIO, "-json", "-nonet", "-name", "deps"] + args, env=env, capture_output=True,
                       text=True, timeout=60)
    try:
        return json.loads(p.stdout)["errors"]
    except ValueError:
        fail(f"vfio -json {' '.join(args)} printed no plan (exit {p.returncode}):\n{p.stdout}{p.stderr}")


def installed(host):
    missing = []
    for what, args in FEATURES:
        for e in plan_errors(host, args):
            if MODULE_ERROR.search(e):
                missing.append(f"{what}: {e}")
    if missing:
        fail("QEMU lacks modules the tests and features need; add their packages to tools/install-deps:\n"
             + "\n".join(missing))
    print(f"ok: QEMU has the modules of {len(FEATURES)} features")


def dpkg_owner(path):
    p = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    return p.stdout.split(":", 1)[0] if p.returncode == 0 else None


def packages(host, q):
    moddir = module_dir(q)
    empty = os.path.join(os.path.dirname(host), "modules")
    os.mkdir(empty)
    for so in glob.glob(f"{moddir}/accel-*.so"):       # QEMU needs one to answer at all
        shutil.copy2(so, empty)
    subprocess.run(["mount", "--bind", empty, moddir], check=True)
    wrong, told = [], set()
    try:
        for what, args in FEATURES:
            named = [m.groups() for e in plan_errors(host, args) for m in [MODULE_ERROR.search(e)] if m]
            if not named:
                wrong.append(f"{what}: no module named with QEMU's modules hidden")
            told.update(named)
    finally:
        subprocess.run(["umount", moddir])
    for module, package in sorted(told):
        owner = dpkg_owner(f"{moddir}/{module}.so")
        if owner != package:
            wrong.append(f"{module}: vfio says `apt install {package}`, dpkg -S says {owner}")
        else:
            print(f"# {module}.so: {package}")
    if wrong:
        fail("\n".join(wrong))
    print(f"ok: {len(told)} modules named with the package that ships them")


def main():
    mode = sys.argv[1]
    q = qemu()
    if mode == "packages" and not os.environ.get("DEPS_IN_MNTNS"):
        if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("dpkg") is None:
            print("skip: needs root, unshare and dpkg")
            sys.exit(77)
        os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", sys.executable] + sys.argv,
                   dict(os.environ, DEPS_IN_MNTNS="1"))
    with tempfile.TemporaryDirectory(prefix="vfio-deps-") as tmp:
        host = fixture(tmp)
        if mode == "installed":
            installed(host)
        else:
            packages(host, q)


if __name__ == "__main__":
    main()
