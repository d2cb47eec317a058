#!/usr/bin/env python3
"""A fresh machine (issue 14): every program and file the build, the tests
and tools/ run or read comes from a package tools/install-deps installs (or
one of their dependencies), or from one every Debian 12 has (Essential, or
Priority required: debootstrap's minbase, Debian's container images).

Each entry names the package that ships it in Debian 12; the test checks
that `dpkg -S` agrees (so the table stays true) and that install-deps gives
it. A failure names the program and the package to add. Skips without dpkg.
"""
import os
import shutil
import subprocess
import sys

SRC = os.environ.get("VFIO_SRCDIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (program or absolute file, the Debian 12 package, who needs it)
NEEDED = [
    ("meson", "meson", "the build"),
    ("ninja", "ninja-build", "the build"),
    ("pkg-config", "pkgconf", "the build (install-deps: pkg-config)"),
    ("gcc", "gcc", "the build"),
    ("clang", "clang", "the sanitizer build, the fuzz targets"),
    ("scdoc", "scdoc", "the man pages"),
    ("python3", "python3-minimal", "test helpers, tests/fixtures/mkhost.py"),
    ("qemu-system-x86_64", "qemu-system-x86", "the end-to-end and real-kernel tests, tools/demo"),
    ("qemu-img", "qemu-utils", "tests/plan/qemu-accepts.py (a qcow2 disk)"),
    ("modprobe", "kmod", "vfio (module-load), tools/build-test-guest"),
    ("depmod", "kmod", "tools/build-test-guest"),
    ("cpio", "cpio", "tools/build-test-guest"),
    ("dpkg-deb", "dpkg", "tools/build-test-guest"),
    ("apt-get", "apt", "tools/build-test-guest, tools/install-deps"),
    ("udevadm", "udev", "the kernel host (tools/kernel-host/setup), tests/kernel"),
    ("/lib/systemd/systemd-udevd", "udev", "the kernel host"),
    ("systemctl", "systemd", "vfio -killx"),
    ("systemd-analyze", "systemd", "tests/docs/install-check.sh"),
    ("ip", "iproute2", "tests/net, tests/kernel"),
    ("unshare", "util-linux", "namespaces in tests/control, tests/plan, tests/deps"),
    ("setpriv", "util-linux", "tests/control, tests/kernel"),
    ("prlimit", "util-linux", "tests/kernel (memlock)"),
    ("mkswap", "util-linux", "tests/kernel (host-disk)"),
    ("flock", "util-linux", "tools/build-test-guest"),
    ("dmesg", "util-linux", "tests/kernel"),
    ("script", "bsdutils", "tests/plan/test-exit-codes.sh (a terminal)"),
    ("mount", "mount", "tests, the kernel host"),
    ("swapon", "mount", "tests/kernel (host-disk)"),
    ("mkfs.ext4", "e2fsprogs", "tests/kernel (host-disk)"),
    ("getent", "libc-bin", "tests/session"),
    ("pgrep", "procps", "tests/session"),
    ("valgrind", "valgrind", "the valgrind suite"),
    ("umockdev-wrapper", "umockdev", "tests/usb"),
    ("swtpm", "swtpm", "vfio -tpm, tests/session"),
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf", "vfio's UEFI guests, tests/plan/qemu-accepts.py"),
    ("/usr/share/misc/pci.ids", "pci.ids", "PCI names (libpci), tests/host"),
    ("/usr/share/misc/usb.ids", "usb.ids", "USB names, tests/host"),
]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True).stdout


def candidates(path):
    """path as dpkg may know it: itself, its target, either side of the /usr merge."""
    real = os.path.realpath(path)
    return list(dict.fromkeys([path, real] + [q[4:] if q.startswith("/usr/") else "/usr" + q for q in (path, real)]))


def owners(paths):
    """{path: the package that ships it}, from one dpkg -S."""
    out = {}
    for line in run(["dpkg", "-S"] + paths).splitlines():
        pkg, _, f = line.partition(": ")
        if f and "diversion" not in pkg:
            out.setdefault(f, pkg.split(",")[0].split(":")[0].strip())
    return out


def main():
    if shutil.which("dpkg") is None or shutil.which("apt-cache") is None:
        print("skip: not a Debian machine (no dpkg, apt-cache)")
        return 77
    listed = run([os.path.join(SRC, "tools", "install-deps"), "--list"]).split()
    if not listed:
        print("FAIL: tools/install-deps --list printed no packages", file=sys.stderr)
        return 1
    # What install-deps gives: its packages and everything they depend on.
    closure = {l.strip() for l in run(["apt-cache", "depends", "--recurse", "-i"] + listed).splitlines()
               if l and not l[0].isspace()}
    problems = []
    paths = {what: what if what.startswith("/") else shutil.which(what, path=PATH) for what, _, _ in NEEDED}
    known = owners([c for p in paths.values() if p and os.path.exists(p) for c in candidates(p)])
    for what, package, who in NEEDED:
        path = paths[what]
        if path is None or not os.path.exists(path):
            problems.append(f"{what} ({who}) is not installed: it is in {package}; add {package} to "
                            "tools/install-deps")
            continue
        got = next((known[c] for c in candidates(path) if c in known), None)
        if got != package:
            problems.append(f"{what}: this table says {package}, dpkg -S {path} says {got}; correct the table")
            continue
        fields = run(["dpkg-query", "-W", "-f", "${Essential} ${Priority}", package]).split()
        given = fields[:1] == ["yes"] or "required" in fields
        if package not in closure and not given:
            problems.append(f"{what} ({who}) comes from {package}, which tools/install-deps does not install "
                            f"(nor anything it depends on), and a fresh Debian 12 lacks: add {package}")
        else:
            print(f"# {what}: {package}{' (every Debian has it)' if given and package not in closure else ''}")
    if problems:
        print("FAIL:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    print(f"ok: {len(NEEDED)} programs and files come with tools/install-deps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
