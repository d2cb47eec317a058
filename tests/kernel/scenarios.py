#!/usr/bin/env python3
"""The real-kernel scenarios: run inside the kernel host (tools/kernel-host)
by tests/kernel/kernel-host.py, as root, against the real driver core, IOMMU
groups, vfio-pci, fbcon and USB. Each scenario compares the whole host state
(hostlib.state) before and after, and prints each step's time. Output is TAP,
each line prefixed "VFIO-TAP: " on the console for kernel-host.py to relay.

usage: scenarios.py --config intremap|no-intremap --builddir DIR [NAME...]
"""

import argparse
import contextlib
import fcntl
import glob
import os
import pwd
import re
import shutil
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostlib  # noqa: E402
from hostlib import fail  # noqa: E402

# The NICs tests/kernel/kernel-host.py gives the kernel host, by role.
MACS = {"a": "52:54:00:12:34:01", "b": "52:54:00:12:34:02",
        "mf0": "52:54:00:12:34:03", "mf1": "52:54:00:12:34:04"}
NOBODY = 65534
# The NVMe disk tests/kernel/kernel-host.py gives the kernel host (sparse).
HOSTDISK_MIB, HOSTDISK_SERIAL = 64, "vfiohostdisk"


class Tools:
    def __init__(self, builddir):
        self.vfio = os.path.join(builddir, "src", "supervisor", "vfio")
        self.vfioctl = os.path.join(builddir, "tools", "vfioctl")
        # A guest that holds devices and boots nothing: the legacy BIOS finds
        # no disk and idles. QEMU runs as nobody, never as root.
        self.base_args = ["-accel", "tcg", "-m", "64M", "-nonet", "-noBios", "-user", "nobody",
                          "-nocolor"]


def say(text):
    for line in text.splitlines() or [""]:
        print("VFIO-TAP: " + line, flush=True)


def diag(text):
    for line in text.rstrip("\n").splitlines():
        say("# " + line)


class Context:
    def __init__(self, name, tools, layout, gadget):
        self.name, self.tools, self.layout, self.gadget = name, tools, layout, gadget
        self.sups = []

    @contextlib.contextmanager
    def step(self, what):
        t0 = time.monotonic()
        try:
            yield
        finally:
            diag(f"{self.name}: {what}: {time.monotonic() - t0:.2f} s")

    def start(self, *args, timeout=90, tty=True, wrap=()):
        """vfio -run with these flags until its guest runs."""
        sup = hostlib.Supervisor(self.tools, self.name, args, tty=tty, wrap=wrap)
        self.sups.append(sup)
        with self.step("vfio -run until the guest runs"):
            sup.wait_running(timeout)
        return sup

    def quit(self, sup):
        with self.step("vfioctl quit until vfio exits"):
            rc, out = sup.vfioctl("quit")
            if rc != 0:
                fail(f"vfioctl {self.name} quit exited {rc}: {out}")
            rc = sup.wait_exit(60)
        if rc != 0:
            fail(f"vfio -run exited {rc} after quit, want 0")

    def vfio(self, *args, wrap=()):
        """vfio (dry run or -run) to its end, run by the command wrap if
        given: (status, output)."""
        return hostlib.run(list(wrap) + [self.tools.vfio, "-name", self.name] + self.tools.base_args + list(args))

    def same_state(self, before, when):
        with self.step(f"compare the host state {when}"):
            d = hostlib.state_diff(before, hostlib.state())
        if d:
            fail(f"the host state {when} differs from before:\n" + "\n".join(d))

    def cleanup(self):
        """After a failure: nothing of ours left running, the journal undone."""
        for sup in self.sups:
            sup.kill()
        if os.path.exists(f"/run/vfio/{self.name}"):
            rc, out = hostlib.run([self.tools.vfio, "-restore", self.name])
            diag(f"cleanup: vfio -restore {self.name} exited {rc}\n{out}")

    def outputs(self):
        return "".join(f"--- {' '.join(s.argv)}\n{s.output()}" for s in self.sups)


def expect_driver(addr, want):
    got = hostlib.pci_driver(addr)
    if got != want:
        fail(f"{addr} is bound to {got}, want {want}")


def expect_in_guest(sup, addr):
    """QEMU itself (its object tree, over its own QMP socket) has a vfio-pci
    device for the host device addr; its id."""
    guest = hostlib.guest_devices(sup.qmp_path)
    ids = [i for i, (t, host) in guest.items() if t == "vfio-pci" and host == addr]
    if not ids:
        fail(f"QEMU has no vfio-pci device for {addr}; its devices: {guest}")
    return ids[0]


def expect_holds(pid, path, what):
    held = hostlib.fds(pid)
    if path not in held:
        fail(f"QEMU (pid {pid}) does not hold {path} ({what}); its fds: {sorted(set(held))}")


# --- the scenarios -----------------------------------------------------------------

def passthrough_at_start(c):
    """-pci ADDR at start: the NIC goes to vfio-pci, QEMU (not root) holds its
    group's /dev/vfio/N and the guest has the device; quit gives it back."""
    a, g = c.layout.addr["a"], c.layout.group["a"]
    before = hostlib.state()
    sup = c.start("-pci", hostlib.regex_of(a))
    with c.step("check the device, the group node and QEMU"):
        expect_driver(a, "vfio-pci")
        override = hostlib.read(f"{hostlib.PCI}/{a}/driver_override")
        if override != "vfio-pci":
            fail(f"driver_override of {a} is {override!r} while it is passed through, want vfio-pci")
        node = f"/dev/vfio/{g}"
        st = os.stat(node)
        if st.st_uid != NOBODY:
            fail(f"{node} is owned by uid {st.st_uid}, want QEMU's user nobody ({NOBODY})")
        pid = sup.qemu_pid()
        if hostlib.uid_of(pid) != NOBODY:
            fail(f"QEMU runs as uid {hostlib.uid_of(pid)}, want nobody ({NOBODY})")
        expect_holds(pid, node, f"IOMMU group {g}")
        expect_in_guest(sup, a)
    c.quit(sup)
    c.same_state(before, "after quit")


def passthrough_as_vfios_own_user(c):
    """As root with nobody behind it (no sudo, no -user), QEMU runs as vfio's
    own user (created first when the host lacks it), under seccomp, and holds
    its group's node, given to that user while the guest runs; quit restores."""
    a, g = c.layout.addr["a"], c.layout.group["a"]
    before = hostlib.state()
    base = c.tools.base_args
    i = base.index("-user")
    c.tools.base_args = base[:i] + base[i + 2:]
    try:
        sup = c.start("-pci", hostlib.regex_of(a))
    finally:
        c.tools.base_args = base
    with c.step("check QEMU's user, its sandbox and the group node"):
        uid = pwd.getpwnam("vfio-qemu").pw_uid
        pid = sup.qemu_pid()
        if uid == 0 or hostlib.uid_of(pid) != uid:
            fail(f"QEMU runs as uid {hostlib.uid_of(pid)}, want vfio-qemu ({uid})")
        seccomp = [l.split()[1] for l in hostlib.read(f"/proc/{pid}/status", "").splitlines()
                   if l.startswith("Seccomp:")]
        if seccomp != ["2"]:
            fail(f"QEMU's Seccomp is {seccomp}, want 2 (its -sandbox filter)")
        node = f"/dev/vfio/{g}"
        if os.stat(node).st_uid != uid:
            fail(f"{node} is owned by uid {os.stat(node).st_uid}, want vfio-qemu ({uid})")
        expect_holds(pid, node, f"IOMMU group {g}")
        expect_in_guest(sup, a)
    c.quit(sup)
    c.same_state(before, "after quit")


def pci_add_mid_session(c):
    """vfioctl NAME pci add ADDR while the guest runs: bound to vfio-pci and in
    the guest (QEMU's query-pci and the supervisor's status agree)."""
    b, g = c.layout.addr["b"], c.layout.group["b"]
    before = hostlib.state()
    sup = c.start()
    with c.step("vfioctl pci add"):
        rc, out = sup.vfioctl("pci", "add", b)
    if rc != 0:
        fail(f"vfioctl {c.name} pci add {b} exited {rc}: {out}")
    with c.step("check the device in the guest"):
        expect_driver(b, "vfio-pci")
        qdev = expect_in_guest(sup, b)
        ids = sup.attached()
        if qdev not in ids:
            fail(f"the supervisor's status lists {ids}, not {qdev}")
        expect_holds(sup.qemu_pid(), f"/dev/vfio/{g}", f"IOMMU group {g}")
    c.quit(sup)
    c.same_state(before, "after quit")


def half_group_refused(c):
    """-pci naming one function of the multi-function pair: the dry run names
    the other function of the group, and -run refuses before any host change."""
    mf0, mf1 = c.layout.addr["mf0"], c.layout.addr["mf1"]
    before = hostlib.state()
    with c.step("dry run"):
        rc, out = c.vfio("-pci", hostlib.regex_of(mf0))
    if rc != 1 or mf1 not in out or "IOMMU group" not in out:
        fail(f"the dry run exited {rc} (want 1) naming {mf1} and its IOMMU group:\n{out}")
    with hostlib.KernelEvents() as events:
        with c.step("vfio -run"):
            rc, out = c.vfio("-run", "-pci", hostlib.regex_of(mf0))
        touched = [e for e in events.read() if e.endswith(("/" + mf0, "/" + mf1))]
    if rc not in (1, 2) or mf1 not in out:
        fail(f"vfio -run exited {rc} (want a refusal naming {mf1}):\n{out}")
    if touched:
        fail(f"vfio -run refused, but only after the kernel saw {touched}")
    c.same_state(before, "after the refusal")


def quit_gives_every_device_back(c):
    """A guest with a NIC and a whole two-function group at start and a NIC
    added while it runs: after vfioctl quit, every device is back on e1000e
    with its interface, and the host state is what it was."""
    L = c.layout
    before = hostlib.state()
    sup = c.start("-pci", "|".join(hostlib.regex_of(L.addr[r]) for r in ("a", "mf0", "mf1")))
    rc, out = sup.vfioctl("pci", "add", L.addr["b"])
    if rc != 0:
        fail(f"vfioctl pci add {L.addr['b']} exited {rc}: {out}")
    for r in ("a", "b", "mf0", "mf1"):
        expect_driver(L.addr[r], "vfio-pci")
    c.quit(sup)
    hostlib.settle()
    for r in ("a", "b", "mf0", "mf1"):
        expect_driver(L.addr[r], "e1000e")
        if not os.path.exists(f"/sys/class/net/{L.iface[r]}"):
            fail(f"the interface {L.iface[r]} of {L.addr[r]} did not come back")
    c.same_state(before, "after quit")


def kill_supervisor(c, sup, pid, group):
    """SIGKILL the supervisor sup; its QEMU (pid) must live on, still holding
    the node of IOMMU group group."""
    with c.step("SIGKILL the supervisor"):
        sup.proc.send_signal(signal.SIGKILL)
        sup.wait_exit(30)
    if not hostlib.alive(pid):
        fail("QEMU died with its supervisor; the guest must outlive it")
    expect_holds(pid, f"/dev/vfio/{group}", f"IOMMU group {group}")


def sigkill_then_restore(c):
    """SIGKILL of the supervisor: QEMU lives on holding the group; vfio
    -restore NAME stops it and gives the device back."""
    a, g = c.layout.addr["a"], c.layout.group["a"]
    before = hostlib.state()
    sup = c.start("-pci", hostlib.regex_of(a))
    pid = sup.qemu_pid()
    kill_supervisor(c, sup, pid, g)
    with c.step("vfio -restore"):
        rc, out = hostlib.run([c.tools.vfio, "-restore", c.name])
    if rc != 0:
        fail(f"vfio -restore {c.name} exited {rc}:\n{out}")
    if hostlib.alive(pid):
        fail(f"QEMU (pid {pid}) still runs after vfio -restore")
    c.same_state(before, "after -restore")


def sigkill_then_same_run_adopts(c):
    """SIGKILL of the supervisor of a guest with a NIC passed through: QEMU
    lives on holding the group; the same vfio -run adopts it (the same QEMU,
    the device listed), vfioctl pci add gives it another NIC, quit gives both
    back and the host state is what it was."""
    a, b, g = c.layout.addr["a"], c.layout.addr["b"], c.layout.group["a"]
    before = hostlib.state()
    args = ("-pci", hostlib.regex_of(a))
    sup = c.start(*args)
    pid = sup.qemu_pid()
    ids = sup.attached()
    kill_supervisor(c, sup, pid, g)
    expect_driver(a, "vfio-pci")
    adopter = hostlib.Supervisor(c.tools, c.name, args)
    c.sups.append(adopter)
    with c.step("the same vfio -run until it adopted the guest"):
        def adopted():
            if adopter.proc.poll() is not None:
                fail(f"vfio -run exited with {adopter.proc.returncode} instead of adopting the guest")
            st = adopter.status()
            return st if st and st.get("pid") == adopter.proc.pid and st.get("adopted") and \
                st.get("state") == "running" else None
        hostlib.wait_until(f"{c.name} to be adopted", adopted, 90)
    if adopter.qemu_pid() != pid:
        fail(f"the adopter runs QEMU {adopter.qemu_pid()}, not the guest's QEMU {pid}")
    if adopter.attached() != ids:
        fail(f"the adopter lists {adopter.attached()}, the guest had {ids}")
    expect_in_guest(adopter, a)
    with c.step("vfioctl pci add after adoption"):
        rc, out = adopter.vfioctl("pci", "add", b)
    if rc != 0:
        fail(f"vfioctl {c.name} pci add {b} after adoption exited {rc}: {out}")
    expect_driver(b, "vfio-pci")
    expect_in_guest(adopter, b)
    c.quit(adopter)
    if hostlib.alive(pid):
        fail(f"QEMU (pid {pid}) still runs after quit")
    c.same_state(before, "after quit")


def fb_on(addr):
    """The framebuffers on the PCI device addr."""
    g = "/sys/class/graphics"
    return [n for n in os.listdir(g) if hostlib.link_name(f"{g}/{n}/device") == addr]


def fbcon_bound():
    """The framebuffer console's vtconsoles that are bound."""
    v = "/sys/class/vtconsole"
    return [n for n in os.listdir(v) if "frame buffer" in (hostlib.read(f"{v}/{n}/name") or "")
            and hostlib.read(f"{v}/{n}/bind") == "1"]


def single_gpu_handoff(c):
    """The boot VGA (bochs-drm, fbcon on it) with -killx: the console comes off
    the card while the guest has it, and goes back afterwards."""
    vga = c.layout.vga
    if hostlib.pci_driver(vga) != "bochs-drm" or not fb_on(vga) or not fbcon_bound():
        fail(f"the kernel host's VGA {vga} is not bochs-drm with fbcon on it: driver "
             f"{hostlib.pci_driver(vga)}, framebuffers {fb_on(vga)}, fbcon bound {fbcon_bound()}")
    before = hostlib.state()
    sup = c.start("-pci", hostlib.regex_of(vga), "-killx")
    with c.step("check the console is off the card"):
        diag("while the guest has the card: " + "; ".join(
            l for l in hostlib.state() if l.startswith(("vtconsole", "graphics"))))
        expect_driver(vga, "vfio-pci")
        if fb_on(vga):
            fail(f"the framebuffer {fb_on(vga)} is still on {vga} while the guest has it")
        if fbcon_bound():
            fail(f"the framebuffer console is still bound ({fbcon_bound()}) while the guest has the card")
        expect_holds(sup.qemu_pid(), f"/dev/vfio/{c.layout.group['vga']}", "the VGA's IOMMU group")
    c.quit(sup)
    with c.step("wait for the console on the card"):
        hostlib.wait_until(f"a framebuffer on {vga}", lambda: fb_on(vga), 10)
    if not fbcon_bound():
        fail("the framebuffer console did not come back")
    c.same_state(before, "after quit")


def usb_gadget_plug_unplug(c):
    """-usb REGEX: a gadget plugged in while the guest runs is attached (QEMU
    opens its usbfs node), unplugged it is detached (QEMU lets go of it)."""
    gadget = c.gadget
    before = hostlib.state()
    sup = c.start("-usb", f"{gadget.VENDOR}:{gadget.PRODUCT}")
    pid = sup.qemu_pid()
    with c.step("plug the gadget until QEMU holds it"):
        node = gadget.plug()
        hostlib.wait_until(f"QEMU to open {node}", lambda: node in hostlib.fds(pid), 30)
    st = os.stat(node)
    if st.st_uid != NOBODY:
        fail(f"{node} is owned by uid {st.st_uid} while QEMU has it, want nobody ({NOBODY})")
    guest = hostlib.guest_devices(sup.qmp_path)
    if not [t for t, _ in guest.values() if t == "usb-host"]:
        fail(f"QEMU has no usb-host device while it holds {node}: {guest}")
    with c.step("unplug the gadget until QEMU lets go"):
        gadget.unplug()
        hostlib.wait_until(f"QEMU to close {node}", lambda: node not in hostlib.fds(pid), 30)
        hostlib.wait_until("the supervisor's status to list no USB device",
                           lambda: not [i for i in sup.attached() if i.startswith("usb")], 30)
    guest = hostlib.guest_devices(sup.qmp_path)
    if [t for t, _ in guest.values() if t == "usb-host"]:
        fail(f"QEMU still has a usb-host device after the unplug: {guest}")
    c.quit(sup)
    c.same_state(before, "after quit")


def sercon():
    """-extras that make SeaBIOS print to the serial port (its "sercon": the
    fw_cfg file etc/sercon-port holds the port, 0x3f8, as a 2-byte integer)."""
    path = "/tmp/sercon-port"
    with open(path, "wb") as f:
        f.write((0x3f8).to_bytes(2, "little"))
    os.chmod(path, 0o644)           # QEMU runs as nobody
    return ["-extras", f"-fw_cfg name=etc/sercon-port,file={path}"]


def qemu_as_user_without_terminal(c):
    """As systemd or a script starts it (no terminal), with QEMU as a user:
    the guest runs and its serial console goes to /run/vfio/NAME/console.log,
    which QEMU holds open (the firmware writes to it: SeaBIOS's sercon)."""
    before = hostlib.state()
    sup = c.start("-pci", hostlib.regex_of(c.layout.addr["a"]), *sercon(), tty=False)
    log = f"{sup.rundir}/console.log"
    pid = sup.qemu_pid()
    with c.step("wait for the firmware on the console log"):
        expect_holds(pid, log, "the console log")
        hostlib.wait_until(f"SeaBIOS's banner in {log}", lambda: "SeaBIOS" in (hostlib.read(log) or ""), 60)
    c.quit(sup)
    c.same_state(before, "after quit")


def console_log_kept_after_the_run(c):
    """Without a terminal, the console log is kept in /var/lib/vfio/NAME/ when
    the guest is done, though /run and /var are different filesystems here,
    as on a real host (tmpfs and disk)."""
    kept = f"/var/lib/vfio/{c.name}/console.log"
    sup = c.start(*sercon(), tty=False)
    log = f"{sup.rundir}/console.log"
    hostlib.wait_until(f"SeaBIOS's banner in {log}", lambda: "SeaBIOS" in (hostlib.read(log) or ""), 60)
    c.quit(sup)
    if not os.path.exists(kept):
        fail(f"no {kept} after the run:\n{sup.output()}")
    if "SeaBIOS" not in (hostlib.read(kept) or ""):
        fail(f"{kept} does not hold the guest's console")


def no_interrupt_remapping_refused(c):
    """Without interrupt remapping (vfio_iommu_type1 refuses it unless
    allow_unsafe_interrupts): the dry run names what is missing, and -run
    refuses before any host change."""
    a = c.layout.addr["a"]
    before = hostlib.state()
    with c.step("dry run"):
        rc, out = c.vfio("-pci", hostlib.regex_of(a))
    dry_named = rc != 0 and "interrupt remapping" in out
    if not dry_named:
        diag(f"the dry run exited {rc} and does not name the missing interrupt remapping")
    with hostlib.KernelEvents() as events:
        with c.step("vfio -run to its end"):
            sup = hostlib.Supervisor(c.tools, c.name, ["-pci", hostlib.regex_of(a)])
            c.sups.append(sup)
            rc, out = sup.wait_exit(90), sup.output()
        touched = [e for e in events.read() if e.endswith("/" + a) and e.split("@")[0] in ("bind", "unbind")]
    changed = [l for l in out.splitlines() if l.startswith("host: ")]
    diag(f"today: vfio -run exited {rc}; {len(changed)} host changes made; kernel events on {a}: {touched}")
    for line in out.splitlines():
        if "error" in line.lower() or "interrupt" in line.lower() or line.startswith(("restored", "host:")):
            diag("  " + line)
    unsafe = hostlib.read("/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts")
    diag(f"vfio_iommu_type1 allow_unsafe_interrupts={unsafe}")
    _, kmsg = hostlib.run(["dmesg"])
    for line in kmsg.splitlines():
        if "remapping" in line.lower():
            diag("  kernel: " + line)
    c.same_state(before, "after the refusal")
    run_refused = rc in (1, 2) and "interrupt remapping" in out and not touched and not changed
    if dry_named and run_refused:
        return
    fail("the dry run and -run disagree about the missing interrupt remapping: "
         f"dry run names it: {dry_named}, -run refused before any change: {run_refused}")


# --- pre-flight on the real kernel (issue 14: every refusal before the host changes) ---

def bind_events(events, *addrs):
    """The kernel's bind and unbind uevents on the PCI devices addrs so far."""
    return [e for e in events.read()
            if e.split("@")[0] in ("bind", "unbind") and e.endswith(tuple("/" + a for a in addrs))]


def expect_dry_run(c, args, rc_want, wants, wrap=()):
    """The dry run with args exits rc_want and says every text of wants; its output."""
    with c.step("dry run " + " ".join(args)):
        rc, out = c.vfio(*args, wrap=wrap)
    missing = [w for w in wants if w not in out]
    if rc != rc_want or missing:
        fail(f"the dry run {' '.join(args)} exited {rc} (want {rc_want}) without {missing}:\n{out}")
    return out


def expect_refused_before_any_change(c, args, addrs, wants, wrap=()):
    """-run with args exits 1 saying every text of wants before any host
    change: no host change reported, no bind or unbind of addrs seen by the
    kernel, no runtime directory made."""
    with hostlib.KernelEvents() as events:
        with c.step("vfio -run until it refuses"):
            rc, out = c.vfio("-run", *args, wrap=wrap)
        touched = bind_events(events, *addrs)
    missing = [w for w in wants if w not in out]
    changed = [l for l in out.splitlines() if l.startswith("host: ")]
    if rc != 1 or missing:
        fail(f"vfio -run {' '.join(args)} exited {rc} (want 1, a refusal) without {missing}:\n{out}")
    if touched or changed:
        fail(f"vfio -run refused only after changing the host: kernel events {touched}, changes {changed}")
    if os.path.exists(f"/run/vfio/{c.name}"):
        fail(f"vfio -run refused, but made /run/vfio/{c.name}")


def no_reset_method_warned(c):
    """The standard VGA has no reset method (QEMU: "Cannot reset device
    0000:00:02.0, no available reset mechanism"): the dry run warns naming
    it, before any change. An e1000e's method, as sysfs lists it, is named."""
    vga, a = c.layout.vga, c.layout.addr["a"]
    methods = hostlib.read(f"{hostlib.PCI}/{vga}/reset_method")
    if methods:
        fail(f"the kernel host's VGA {vga} has the reset methods {methods!r}; the scenario needs one without")
    before = hostlib.state()
    expect_dry_run(c, ["-pci", hostlib.regex_of(vga)], 0,
                   [f"warning: -pci: {vga} VGA compatible controller", "cannot be reset",
                    "no available reset mechanism", "IOMMU group %d, no reset method" % c.layout.group["vga"]])
    methods = hostlib.read(f"{hostlib.PCI}/{a}/reset_method")
    if not methods:
        fail(f"the e1000e {a} has no reset method; the scenario needs one with")
    diag(f"{a} reset_method: {methods}")
    out = expect_dry_run(c, ["-pci", hostlib.regex_of(a)], 0, [f"reset_method {methods},"])
    if "cannot be reset" in out:
        fail(f"the dry run warns that {a} (reset_method {methods}) cannot be reset:\n{out}")
    c.same_state(before, "after the dry runs")


class HostDisk:
    """The NVMe disk kernel-host.py gives the host (blank, found by its
    serial), made into what a host runs on: a partition with an ext4
    filesystem mounted, and a swap partition in use."""

    MOUNT = "/mnt/vfio-hostdisk"
    BLKRRPART = 0x125f

    def __init__(self):
        self.addr = None
        for n in os.listdir("/sys/class/nvme"):
            if hostlib.read(f"/sys/class/nvme/{n}/serial") == HOSTDISK_SERIAL:
                self.addr = os.path.basename(os.path.realpath(f"/sys/class/nvme/{n}/device"))
        if self.addr is None:
            fail(f"no NVMe controller with the serial {HOSTDISK_SERIAL}: the kernel host has no disk")
        self.disk = next((b for b in sorted(os.listdir("/sys/class/block"))
                          if f"/{self.addr}/" in os.path.realpath(f"/sys/class/block/{b}")), None)
        if self.disk is None:
            fail(f"the NVMe controller {self.addr} has no namespace")
        self.part = [f"{self.disk}p1", f"{self.disk}p2"]

    def prepare(self):
        # An MBR: a Linux partition of half the disk from 1 MiB, swap after it.
        half = (HOSTDISK_MIB << 20) // 512 // 2
        mbr = bytearray(512)
        for i, (kind, start, count) in enumerate(((0x83, 2048, half - 2048), (0x82, half, half))):
            mbr[446 + 16 * i + 4] = kind
            mbr[446 + 16 * i + 8:446 + 16 * i + 16] = start.to_bytes(4, "little") + count.to_bytes(4, "little")
        mbr[510:512] = b"\x55\xaa"
        fd = os.open(f"/dev/{self.disk}", os.O_RDWR)
        try:
            os.write(fd, bytes(mbr))
            os.fsync(fd)
            fcntl.ioctl(fd, self.BLKRRPART)
        finally:
            os.close(fd)
        hostlib.settle()
        for p in self.part:
            hostlib.wait_until(f"/dev/{p}", lambda p=p: os.path.exists(f"/dev/{p}"), 10)
        os.makedirs(self.MOUNT, exist_ok=True)
        for argv in (["mkfs.ext4", "-q", "-F", f"/dev/{self.part[0]}"], ["mount", f"/dev/{self.part[0]}", self.MOUNT],
                     ["mkswap", f"/dev/{self.part[1]}"], ["swapon", f"/dev/{self.part[1]}"]):
            rc, out = hostlib.run(argv, timeout=60)
            if rc != 0:
                fail(f"{' '.join(argv)} exited {rc}: {out}")

    def swapped(self):
        return f"/dev/{self.part[1]}" in (hostlib.read("/proc/swaps") or "")

    def mounted(self):
        return f" {self.MOUNT} " in (hostlib.read("/proc/mounts") or "")

    def release(self):
        if self.swapped():
            hostlib.run(["swapoff", f"/dev/{self.part[1]}"], timeout=30)
        if self.mounted():
            rc, _ = hostlib.run(["umount", self.MOUNT], timeout=30)
            if rc != 0:
                hostlib.run(["umount", "-l", self.MOUNT], timeout=30)


def host_disk_refused_unless_forced(c):
    """The NVMe controller of a mounted filesystem and an active swap: -pci
    is refused naming both (-run before any change), -force makes it a
    warning; vfioctl pci add is refused unless `force`, which attaches it."""
    disk = HostDisk()
    with c.step("partition, format, mount and swap on the NVMe disk"):
        disk.prepare()
    nvme, mnt, swap = disk.addr, f"{disk.MOUNT} ({disk.part[0]})", f"swap /dev/{disk.part[1]}"
    pci = ["-pci", hostlib.regex_of(nvme)]
    before = hostlib.state()
    try:
        expect_dry_run(c, pci, 1, [f"error: -pci: {nvme} Non-Volatile memory controller", "holds what the host "
                                   "runs on", mnt, swap])
        expect_refused_before_any_change(c, pci, [nvme], [mnt, swap])
        expect_dry_run(c, pci + ["-force"], 0, [f"warning: -force: -pci: {nvme}", "holds what the host runs on",
                                                mnt, swap])
        sup = c.start()
        with hostlib.KernelEvents() as events:
            with c.step("vfioctl pci add until refused"):
                rc, out = sup.vfioctl("pci", "add", nvme)
            touched = bind_events(events, nvme)
        if rc == 0 or mnt not in out or "force" not in out:
            fail(f"vfioctl pci add {nvme} exited {rc}, want a refusal naming {mnt} and `force`:\n{out}")
        if touched:
            fail(f"pci add refused only after the kernel saw {touched}")
        expect_driver(nvme, "nvme")
        # What force takes from the host goes with it: a swap partition on a
        # disk that is gone cannot be switched off any more, so off it goes
        # first; the filesystem stays mounted.
        hostlib.run(["swapoff", f"/dev/{disk.part[1]}"], timeout=30)
        with c.step("vfioctl pci add force"):
            rc, out = sup.vfioctl("pci", "add", nvme, "force")
        if rc != 0:
            fail(f"vfioctl pci add {nvme} force exited {rc}: {out}")
        expect_driver(nvme, "vfio-pci")
        expect_in_guest(sup, nvme)
        c.quit(sup)
        expect_driver(nvme, "nvme")
    finally:
        disk.release()
    c.same_state(before, "after quit")


def default_route_nic_warned(c):
    """The NIC the host's default route goes through: -pci warns naming its
    interface (the host loses its network), the dry run still passes."""
    b, iface = c.layout.addr["b"], c.layout.iface["b"]
    before = hostlib.state()
    ip = [["ip", "link", "set", iface, "up"], ["ip", "addr", "add", "192.0.2.2/24", "dev", iface],
          ["ip", "route", "add", "default", "via", "192.0.2.1", "dev", iface]]
    try:
        for argv in ip:
            rc, out = hostlib.run(argv)
            if rc != 0:
                fail(f"{' '.join(argv)} exited {rc}: {out}")
        expect_dry_run(c, ["-pci", hostlib.regex_of(b)], 0,
                       [f"warning: -pci: {b} Ethernet controller", f"carries the host's default route ({iface})"])
    finally:
        hostlib.run(["ip", "route", "del", "default", "via", "192.0.2.1", "dev", iface])
        hostlib.run(["ip", "addr", "flush", "dev", iface])
        hostlib.run(["ip", "link", "set", iface, "down"])
    c.same_state(before, "after the dry run")


def only_keyboard_controller_warned(c):
    """The xHCI controller of the host's only keyboard (QEMU's usb-kbd; the
    kernel host has no i8042): -pci warns that the host has no keyboard
    while the guest runs."""
    kbds = []
    for n in sorted(os.listdir("/sys/class/input")):
        caps = (hostlib.read(f"/sys/class/input/{n}/capabilities/key") or "0").split()[-1]
        if n.startswith("input") and int(caps, 16) & 0xfffffffe == 0xfffffffe:
            pcis = [p for p in os.path.realpath(f"/sys/class/input/{n}").split("/")
                    if re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", p)]
            kbds.append((hostlib.read(f"/sys/class/input/{n}/name"), n, pcis[-1] if pcis else None))
    if len(kbds) != 1 or kbds[0][2] is None:
        fail(f"the kernel host has the keyboards {kbds}; the scenario needs one, on a PCI USB controller")
    name, inp, xhci = kbds[0]
    diag(f"the host's only keyboard: {name} ({inp}) on {xhci}")
    before = hostlib.state()
    expect_dry_run(c, ["-pci", hostlib.regex_of(xhci)], 0,
                   [f"warning: -pci: {xhci} USB controller", "is the USB controller of every keyboard the host has",
                    f"{name} ({inp})"])
    c.same_state(before, "after the dry run")


# The supervisor confined as a unit with LimitMEMLOCK=16M and
# CapabilityBoundingSet=~CAP_SYS_RESOURCE would be: root, but held to a hard
# limit it may not raise.
MEMLOCK_KIB = 16384
MEMLOCK_CAPPED = ["prlimit", f"--memlock={MEMLOCK_KIB << 10}:{MEMLOCK_KIB << 10}",
                  "setpriv", "--inh-caps=-sys_resource", "--bounding-set=-sys_resource", "--"]


def memlock_limit_refused(c):
    """A locked-memory limit below guest RAM that the supervisor may not
    raise: -pci is refused naming the limit to set, -run before any change."""
    a = c.layout.addr["a"]
    before = hostlib.state()
    args = ["-pci", hostlib.regex_of(a)]
    wants = [f"the locked-memory limit is {MEMLOCK_KIB} KiB", "CAP_SYS_RESOURCE", "ulimit -l"]
    expect_dry_run(c, args, 1, wants, wrap=MEMLOCK_CAPPED)
    expect_refused_before_any_change(c, args, [a], wants, wrap=MEMLOCK_CAPPED)
    c.same_state(before, "after the refusal")


def memlock_limit_refused_on_pci_add(c):
    """The same limit, for a guest started without a device: vfioctl pci add
    is refused naming the limit before the device is bound (QEMU would fail
    to map guest memory: "VFIO_MAP_DMA failed: Cannot allocate memory")."""
    a = c.layout.addr["a"]
    before = hostlib.state()
    sup = c.start(wrap=MEMLOCK_CAPPED)
    with hostlib.KernelEvents() as events:
        with c.step("vfioctl pci add until refused"):
            rc, out = sup.vfioctl("pci", "add", a)
        touched = bind_events(events, a)
    if rc == 0 or f"the locked-memory limit is {MEMLOCK_KIB} KiB" not in out:
        fail(f"vfioctl pci add {a} exited {rc}, want a refusal naming the locked-memory limit:\n{out}")
    if touched:
        fail(f"pci add refused only after the kernel saw {touched}")
    expect_driver(a, "e1000e")
    c.quit(sup)
    c.same_state(before, "after quit")


def qemu_modules_dir():
    """The directory QEMU loads its modules from (Debian: /usr/lib/ARCH/qemu)."""
    qemu = os.path.realpath(shutil.which("qemu-system-x86_64") or fail("no qemu-system-x86_64"))
    top = os.path.dirname(os.path.dirname(qemu))
    for d in sorted(glob.glob(f"{top}/lib/*/qemu")) + [f"{top}/lib/qemu"]:
        if os.path.exists(f"{d}/ui-spice-core.so"):
            return d
    fail(f"{qemu} has no ui-spice-core module to take away")


def qemu_module_missing_refused(c):
    """QEMU without the module a flag needs (-spice: ui-spice-core, hidden in
    a private mount namespace, as on a machine without it): refused naming
    the module and its Debian package, before any change."""
    a = c.layout.addr["a"]
    moddir = qemu_modules_dir()
    copy = "/tmp/qemu-modules-without-spice"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(moddir, copy, symlinks=True)
    os.unlink(f"{copy}/ui-spice-core.so")
    hidden = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
              'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh", copy, moddir]
    before = hostlib.state()
    args = ["-spice", "-pci", hostlib.regex_of(a)]
    wants = ["-spice: this QEMU", "its module ui-spice-core is not installed", "apt install qemu-system-common"]
    try:
        expect_dry_run(c, args, 1, wants, wrap=hidden)
        expect_refused_before_any_change(c, args, [a], wants, wrap=hidden)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    c.same_state(before, "after the refusal")


def pci_add_without_interrupt_remapping_refused(c):
    """Without interrupt remapping, vfioctl pci add is refused naming it,
    before the device is bound; the guest runs on."""
    a = c.layout.addr["a"]
    before = hostlib.state()
    sup = c.start()
    with hostlib.KernelEvents() as events:
        with c.step("vfioctl pci add until refused"):
            rc, out = sup.vfioctl("pci", "add", a)
        touched = bind_events(events, a)
    if rc == 0 or "does not remap interrupts" not in out or "allow_unsafe_interrupts" not in out:
        fail(f"vfioctl pci add {a} exited {rc}, want a refusal naming the missing interrupt remapping:\n{out}")
    if touched:
        fail(f"pci add refused only after the kernel saw {touched}")
    expect_driver(a, "e1000e")
    if sup.attached():
        fail(f"the supervisor's status lists {sup.attached()} after the refusal")
    c.quit(sup)
    c.same_state(before, "after quit")


SCENARIOS = {
    "intremap": [
        ("passthrough-at-start", passthrough_at_start),
        ("passthrough-as-vfios-own-user", passthrough_as_vfios_own_user),
        ("pci-add-mid-session", pci_add_mid_session),
        ("half-group-refused", half_group_refused),
        ("quit-gives-every-device-back", quit_gives_every_device_back),
        ("sigkill-then-restore", sigkill_then_restore),
        ("sigkill-then-same-run-adopts", sigkill_then_same_run_adopts),
        ("single-gpu-handoff", single_gpu_handoff),
        ("usb-gadget-plug-unplug", usb_gadget_plug_unplug),
        ("qemu-as-user-without-terminal", qemu_as_user_without_terminal),
        ("console-log-kept-after-the-run", console_log_kept_after_the_run),
        ("no-reset-method-warned", no_reset_method_warned),
        ("host-disk-refused-unless-forced", host_disk_refused_unless_forced),
        ("default-route-nic-warned", default_route_nic_warned),
        ("only-keyboard-controller-warned", only_keyboard_controller_warned),
        ("memlock-limit-refused", memlock_limit_refused),
        ("memlock-limit-refused-on-pci-add", memlock_limit_refused_on_pci_add),
        ("qemu-module-missing-refused", qemu_module_missing_refused),
    ],
    "no-intremap": [
        ("no-interrupt-remapping-refused", no_interrupt_remapping_refused),
        ("pci-add-without-interrupt-remapping-refused", pci_add_without_interrupt_remapping_refused),
    ],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, choices=sorted(SCENARIOS))
    ap.add_argument("--builddir", required=True)
    ap.add_argument("only", nargs="*")
    args = ap.parse_args()
    todo = [(n, f) for n, f in SCENARIOS[args.config] if not args.only or n in args.only]
    say(f"1..{len(todo)}")
    tools = Tools(args.builddir)
    try:
        layout = hostlib.Layout(MACS)
        diag("layout: " + layout.describe())
        layout.check()
        gadget = hostlib.Gadget()
    except hostlib.Failure as e:
        # Every scenario fails, saying why (a bail-out alone would read as a skip).
        for i, (name, _) in enumerate(todo, 1):
            say(f"not ok {i} - {name}")
        diag(f"the kernel host is not laid out as the scenarios need: {e}")
        return
    for i, (name, fn) in enumerate(todo, 1):
        c = Context(name, tools, layout, gadget)
        t0 = time.monotonic()
        result = f"ok {i} - {name}"
        try:
            fn(c)
        except Exception as e:     # a failed check, or a broken scenario: report, clean up, go on
            result = f"not ok {i} - {name}"
            diag(f"{name}: {e}" if isinstance(e, hostlib.Failure) else traceback.format_exc())
            diag(c.outputs())
            c.cleanup()
        else:
            for sup in c.sups:
                sup.kill()
        diag(f"{name}: {time.monotonic() - t0:.2f} s")
        say(result)


if __name__ == "__main__":
    main()
