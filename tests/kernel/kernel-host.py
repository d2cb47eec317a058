#!/usr/bin/env python3
"""The real-kernel suite (tests/kernel/README.md): boots the kernel host
(tools/kernel-host) once under TCG with an emulated Intel IOMMU, e1000e NICs in
PCIe root ports, the standard VGA and dummy_hcd, and runs the scenarios
(tests/kernel/scenarios.py) inside it against the just-built vfio. Prints TAP:
each scenario is a test point, each step's time a diagnostic.

usage: kernel-host.py intremap|no-intremap [SCENARIO...]

Skips (TAP "1..0 # SKIP" with the reason) only where QEMU cannot run the
kernel host: no qemu-system-x86_64, or apt cannot give the kernel package.
"""

import contextlib
import io
import os
import shlex
import sys
import tempfile
import time

src = os.environ.get("VFIO_SRCDIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = os.environ.get("VFIO_BUILDDIR") or os.path.join(src, "build")
sys.path.insert(0, os.path.join(src, "tests", "e2e"))
import guestlib  # noqa: E402

sys.path.insert(0, os.path.join(src, "tests", "kernel"))
from scenarios import HOSTDISK_MIB, HOSTDISK_SERIAL, MACS  # noqa: E402

BOOT_S = 300        # to "VFIO-HOST: ready" (15 s on an idle machine, 70 s seen under load)
LINE_S = 180        # between two TAP lines: one scenario's longest wait, with room


def tap(line):
    print(line, flush=True)


def diag(text):
    for line in text.rstrip("\n").splitlines():
        tap("# " + line)


def broken(planned, done, why):
    """TAP for a run that ended early: a failed test point, then a bail-out
    (meson reads a bail-out before any test point as a skip)."""
    if planned == 0:
        tap("1..1")
    tap(f"not ok {done + 1} - {why.splitlines()[0]}")
    diag(why)
    tap("Bail out! the kernel host run ended early")


def machine(config, gdir, rundir):
    """The kernel host's devices, for guestlib.Qemu."""
    ir = "on" if config == "intremap" else "off"
    a = ["-smp", "2",
         "-device", f"intel-iommu,intremap={ir}",
         # The boot VGA: bochs-drm drives it, fbcon draws on it.
         "-device", "VGA,addr=02.0"]
    shares = [("hostroot", "/", ",readonly=on,multidevs=remap"),
              ("modules", os.path.join(gdir, "kernel", "lib", "modules"), ",readonly=on"),
              ("vfiotest", rundir, "")]
    for i, (tag, path, opts) in enumerate(shares):
        a += ["-fsdev", f"local,id={tag},path={path},security_model=none{opts}",
              "-device", f"virtio-9p-pci,fsdev={tag},mount_tag={tag},addr={0x10 + i:x}.0"]
    # Two NICs alone in their root ports, and a two-function NIC in a third.
    # No network behind them (QEMU warns that they have no peer).
    ports = (("04.0", (("a", ""),)), ("05.0", (("b", ""),)),
             ("06.0", (("mf0", ",addr=00.0,multifunction=on"), ("mf1", ",addr=00.1"))))
    for chassis, (slot, nics) in enumerate(ports, 1):
        a += ["-device", f"pcie-root-port,id=rp{chassis},chassis={chassis},addr={slot}"]
        for role, where in nics:
            a += ["-device", f"e1000e,bus=rp{chassis},mac={MACS[role]}{where}"]
    # What the host itself needs (the pre-flight scenarios): a disk on an
    # NVMe controller, which the scenarios partition, mount and swap on, and
    # the host's only keyboard on an xHCI controller (no i8042: -machine).
    disk = os.path.join(rundir, "hostdisk.img")
    with open(disk, "wb") as f:
        f.truncate(HOSTDISK_MIB << 20)
    a += ["-drive", f"if=none,id=hostdisk,format=raw,file={disk}",
          "-device", f"nvme,serial={HOSTDISK_SERIAL},drive=hostdisk,addr=07.0",
          "-device", "qemu-xhci,id=xhci,addr=08.0", "-device", "usb-kbd,bus=xhci.0"]
    return a


def main():
    config = sys.argv[1]
    only = sys.argv[2:]
    started = time.monotonic()
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            gdir = guestlib.build_guest()
    except guestlib.Skip as e:
        diag(out.getvalue())
        tap(f"1..0 # SKIP QEMU cannot run the kernel host here: {e}")
        return 0
    except guestlib.Failure as e:
        diag(out.getvalue())
        broken(0, 0, str(e))
        return 0
    diag(out.getvalue())
    diag(f"kernel host: building the guest took {time.monotonic() - started:.2f} s")

    with tempfile.TemporaryDirectory(prefix="vfio-kernel-host-") as rundir:
        # The trees the kernel host runs from, where its fresh /tmp and /run
        # would hide them (a clone in /tmp): tools/kernel-host/init keeps them.
        keep = []
        for d in (src, build, gdir):
            d = os.path.realpath(d)
            if d.startswith(("/tmp/", "/run/")) and not any(d == k or d.startswith(k + "/") for k in keep):
                keep = [k for k in keep if not k.startswith(d + "/")] + [d]
        with open(os.path.join(rundir, "keep"), "w") as f:
            f.writelines(k + "\n" for k in keep)
        # PID 1 of the kernel host (tools/kernel-host/init runs it).
        with open(os.path.join(rundir, "run"), "w") as f:
            q = shlex.quote
            f.write("#!/bin/sh\n# Written by tests/kernel/kernel-host.py.\n"
                    "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "
                    "HOME=/root LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1\n"
                    f"/bin/bash {q(os.path.join(src, 'tools', 'kernel-host', 'setup'))} &&\n"
                    f"\tpython3 {q(os.path.join(src, 'tests', 'kernel', 'scenarios.py'))} "
                    f"--config {q(config)} --builddir {q(build)} {' '.join(q(o) for o in only)}\n"
                    'echo "VFIO-HOST: done $?"\n'
                    "echo o >/proc/sysrq-trigger\n"
                    "while :; do :; done\n")
        boot = time.monotonic()
        kh = guestlib.Qemu(gdir, "intel_iommu=on iommu=pt quiet", extra=machine(config, gdir, rundir),
                           machine="q35,kernel-irqchip=split,i8042=off", memory="1536", initrd="kernel-host.img")
        planned = done = 0
        try:
            at = 0
            while True:
                m, at = kh.wait_line(r"VFIO-HOST: (\S+) ?(.*)$", BOOT_S, at)
                if m.group(1) in ("ready", "error"):
                    break
                diag(f"kernel host: {m.group(1)} {m.group(2)}")
            if m.group(1) == "error":
                kh.fail(f"the kernel host did not come up: {m.group(2)}")
            diag(f"kernel host: booted and set up in {time.monotonic() - boot:.2f} s "
                 f"(its uptime {m.group(2)} s), intremap={'on' if config == 'intremap' else 'off'}")
            while True:
                # Every console line: the scenarios' TAP, and whatever else
                # (a traceback, the kernel's emergencies) as a diagnostic.
                m, at = kh.wait_line(r"^(?:.*VFIO-(TAP|HOST): )?(.*)$", LINE_S, at)
                if m.group(1) is None:
                    diag("console: " + m.group(2))
                    continue
                if m.group(1) == "HOST":
                    break
                line = m.group(2)
                tap(line)
                if line.startswith("1.."):
                    planned = int(line[3:].split()[0])
                elif line.startswith(("ok ", "not ok ")):
                    done += 1
            if done != planned:
                kh.fail(f"the scenarios stopped after {done} of {planned} ({m.group(0)})")
            kh.wait_exit(60)
        except guestlib.Failure as e:
            broken(planned, done, str(e))
            return 0
        finally:
            kh.close()
    diag(f"kernel host: {config} took {time.monotonic() - started:.2f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
