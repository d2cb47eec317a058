"""Helpers for the scenarios that run inside the kernel host (tools/kernel-host,
tests/kernel/README.md): the host's state as the kernel shows it, the
supervisor run as a user would, the configfs USB gadget, QEMU's own QMP
monitor. Python standard library only; every wait has a deadline.
"""

import json
import os
import pty
import re
import signal
import socket
import subprocess
import tempfile
import time

PCI = "/sys/bus/pci/devices"


class Failure(Exception):
    pass


def fail(why):
    raise Failure(why)


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def link_name(path):
    """The last component of a symlink's target, or None without one."""
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def wait_until(what, fn, timeout):
    """Poll fn() every 50 ms until it returns something true; fail after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


# --- the host's state ----------------------------------------------------------

def pci_driver(addr):
    return link_name(f"{PCI}/{addr}/driver")


def settle():
    """Until udev has handled every event so far (it renames a NIC that comes
    back, eth0 then enp1s0, a moment after the kernel made it)."""
    subprocess.run(["udevadm", "settle", "--timeout=30"], check=True)


def state():
    """Everything a passthrough run may change on the host, one line per fact,
    sorted: drivers and driver_override of every PCI device, /dev/vfio, network
    interfaces, vtconsoles, framebuffers, USB devices and their nodes, what is
    left in /run/vfio (/var/lib/vfio keeps console logs by design). Taken once
    udev has settled."""
    settle()
    lines = []
    for addr in sorted(os.listdir(PCI)):
        lines.append(f"pci {addr} driver={pci_driver(addr)} "
                     f"override={read(f'{PCI}/{addr}/driver_override')}")
    for d in ("/dev/vfio", "/dev/bus/usb"):
        for top, dirs, files in os.walk(d):
            dirs.sort()
            for name in sorted(files):
                p = os.path.join(top, name)
                st = os.stat(p)
                # vfio's container node comes with the module, which stays
                # loaded (as documented for module-load): only a change to it counts.
                if p == "/dev/vfio/vfio" and (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o666):
                    continue
                lines.append(f"node {p} uid={st.st_uid} gid={st.st_gid} mode={st.st_mode & 0o7777:o}")
    for name in sorted(os.listdir("/sys/class/net")):
        n = f"/sys/class/net/{name}"
        lines.append(f"net {name} mac={read(n + '/address')} driver={link_name(n + '/device/driver')} "
                     f"device={link_name(n + '/device')}")
    for name in sorted(os.listdir("/sys/class/vtconsole")):
        v = f"/sys/class/vtconsole/{name}"
        lines.append(f"vtconsole {name} name={read(v + '/name')!r} bind={read(v + '/bind')}")
    for name in sorted(os.listdir("/sys/class/graphics")):
        g = f"/sys/class/graphics/{name}"
        lines.append(f"graphics {name} name={read(g + '/name')!r} device={link_name(g + '/device')}")
    usb = "/sys/bus/usb/devices"
    for name in sorted(os.listdir(usb)):
        u = f"{usb}/{name}"
        lines.append(f"usb {name} driver={link_name(u + '/driver')} "
                     f"id={read(u + '/idVendor', '')}:{read(u + '/idProduct', '')}")
    for entry in sorted(os.listdir("/run/vfio")) if os.path.isdir("/run/vfio") else ():
        lines.append(f"left /run/vfio/{entry}")
    return lines


def state_diff(before, after):
    """The lines that differ, '-' before and '+' after; empty when equal."""
    b, a = set(before), set(after)
    return [f"- {l}" for l in before if l not in a] + [f"+ {l}" for l in after if l not in b]


# --- the devices the kernel host was given (tests/kernel/kernel-host.py) --------

class Layout:
    """Finds the host's passthrough candidates by what the kernel reports:
    the e1000e NICs by MAC (the outer QEMU set them), their IOMMU groups, the
    boot VGA. Fails, naming what it found, when the kernel grouped them
    otherwise than the scenarios need."""

    def __init__(self, macs):
        by_mac = {}
        for name in os.listdir("/sys/class/net"):
            dev = os.path.realpath(f"/sys/class/net/{name}/device")
            by_mac[read(f"/sys/class/net/{name}/address")] = (os.path.basename(dev), name)
        missing = [m for m in macs.values() if m not in by_mac]
        if missing:
            fail(f"no interface with MAC {', '.join(missing)}; the host has {sorted(by_mac)}")
        self.addr = {role: by_mac[mac][0] for role, mac in macs.items()}
        self.iface = {role: by_mac[mac][1] for role, mac in macs.items()}
        self.group = {role: self.group_of(a) for role, a in self.addr.items()}
        self.vga = None
        for addr in sorted(os.listdir(PCI)):
            if read(f"{PCI}/{addr}/boot_vga") == "1":
                self.vga = addr
        if self.vga is None:
            fail("the kernel marks no PCI device as the boot VGA (boot_vga)")
        self.group["vga"] = self.group_of(self.vga)

    @staticmethod
    def group_of(addr):
        g = link_name(f"{PCI}/{addr}/iommu_group")
        if g is None:
            fail(f"{addr} has no IOMMU group: the kernel host runs without an IOMMU")
        return int(g)

    @staticmethod
    def members(group):
        return sorted(os.listdir(f"/sys/kernel/iommu_groups/{group}/devices"))

    def check(self):
        """The group layout the scenarios rely on, or a failure saying what it is."""
        g = self.group
        want = [("a", [self.addr["a"]]), ("b", [self.addr["b"]]),
                ("mf0", sorted([self.addr["mf0"], self.addr["mf1"]])), ("vga", [self.vga])]
        for role, devices in want:
            got = self.members(g[role])
            if got != devices:
                fail(f"IOMMU group {g[role]} ({role}) holds {got}, the scenarios need {devices}")

    def describe(self):
        return ", ".join(f"{role} {self.addr.get(role, self.vga)} group {self.group[role]}"
                         for role in ("a", "b", "mf0", "mf1", "vga"))


def regex_of(addr):
    """A -pci regex that matches exactly one device's lspci -Dnn line."""
    return "^" + re.escape(addr) + " "


# --- the supervisor -------------------------------------------------------------

class Supervisor:
    """`vfio -run` in the background; its output (and, with a terminal, the
    guest's serial console) in a file, its state from /run/vfio/NAME/status.json.
    With tty (the default) it runs as from a terminal, `sudo vfio -run`: its
    stdin is a pseudo-terminal; without, as from systemd or a script. wrap
    is a command that runs vfio (prlimit, setpriv, ...), as a user's shell
    or unit would."""

    def __init__(self, tools, name, args, tty=True, wrap=()):
        self.tools, self.name = tools, name
        self.rundir = f"/run/vfio/{name}"
        self.qmp_path = f"/tmp/{name}.qmp"
        self.out = tempfile.TemporaryFile(mode="w+")
        argv = list(wrap) + [tools.vfio, "-run", "-name", name] + tools.base_args + [
            "-extras", f"-qmp unix:{self.qmp_path},server=on,wait=off"] + list(args)
        self.argv = argv
        self.pty = None
        stdin = subprocess.DEVNULL
        if tty:
            # Our end stays open while the guest runs: nothing is typed, and
            # the terminal never hangs up under QEMU.
            self.pty, stdin = pty.openpty()
        try:
            # The -qmp of -extras is this test's own view of QEMU: vfio refuses
            # a second monitor unless a test says so (src/supervisor/options-extras.c).
            env = dict(os.environ, VFIO_TEST_EXTRAS_UNCHECKED="1")
            self.proc = subprocess.Popen(argv, stdin=stdin, stdout=self.out, stderr=subprocess.STDOUT, env=env)
        finally:
            if tty:
                os.close(stdin)

    def output(self):
        self.out.seek(0)
        return self.out.read()

    def status(self):
        try:
            with open(f"{self.rundir}/status.json") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def wait_running(self, timeout=60):
        def running():
            if self.proc.poll() is not None:
                fail(f"vfio -run exited with {self.proc.returncode} before the guest ran")
            st = self.status()
            return st if st and st.get("state") == "running" else None
        return wait_until(f"{self.name} to reach state running", running, timeout)

    def attached(self):
        """The ids of the devices the supervisor's status lists as attached."""
        st = self.status() or {}
        return [d["id"] for d in st.get("devices", {}).get("attached", [])]

    def qemu_pid(self):
        st = self.status()
        if not st or not st.get("qemu_pid"):
            fail(f"status.json of {self.name} names no QEMU pid: {st}")
        return st["qemu_pid"]

    def vfioctl(self, *words, timeout=60):
        r = subprocess.run([self.tools.vfioctl, self.name] + list(words), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        return r.returncode, r.stdout

    def wait_exit(self, timeout=60):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            fail(f"vfio -run did not exit within {timeout} s")

    def kill(self):
        """Leave nothing running, whatever state the test stopped in."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.pty is not None:
            os.close(self.pty)
            self.pty = None


def run(argv, timeout=120):
    """Run a command to its end; (status, output)."""
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return r.returncode, r.stdout


def fds(pid):
    """What process pid has open: the targets of /proc/PID/fd/*."""
    out = []
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in names:
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


def uid_of(pid):
    for line in read(f"/proc/{pid}/status", "").splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


class KernelEvents:
    """The kernel's uevents from now on, from the netlink socket udevd reads:
    each is in the socket's buffer by the time the write that caused it
    (a bind, an unbind) returned, so read() after an action sees all of it."""

    NETLINK_KOBJECT_UEVENT = 15

    def __enter__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, self.NETLINK_KOBJECT_UEVENT)
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)    # SO_RCVBUFFORCE: none lost
        self.sock.bind((0, 1))                                   # the kernel's group
        self.sock.setblocking(False)
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def read(self):
        """The events so far, as ACTION@DEVPATH."""
        out = []
        while True:
            try:
                msg = self.sock.recv(1 << 16)
            except BlockingIOError:
                return out
            out.append(msg.split(b"\0", 1)[0].decode("utf-8", "replace"))


# --- QEMU's own monitor (the -qmp socket the scenarios add with -extras) -------

def qmp(sock, execute, timeout=20, **arguments):
    """One QMP command on a fresh connection to the socket sock; its "return"."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    buf = b""

    def recv():
        nonlocal buf
        while True:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                if "event" not in msg:
                    return msg
            data = s.recv(65536)
            if not data:
                fail(f"QEMU closed its QMP socket {sock}")
            buf += data

    try:
        s.connect(sock)
        recv()                                      # the greeting
        for cmd, args in (("qmp_capabilities", {}), (execute, arguments)):
            msg = {"execute": cmd}
            if args:
                msg["arguments"] = args
            s.sendall(json.dumps(msg).encode() + b"\n")
            reply = recv()
            if "error" in reply:
                fail(f"QMP {cmd} on {sock}: {reply['error']}")
        return reply["return"]
    except OSError as e:
        fail(f"QMP {execute} on {sock}: {e}")
    finally:
        s.close()


def guest_devices(sock):
    """The devices added to the guest with an id, as QEMU's object tree holds
    them: {id: (QOM type, the host device of a vfio-pci)}."""
    out = {}
    for child in qmp(sock, "qom-list", path="/machine/peripheral"):
        t = child["type"]
        if not t.startswith("child<"):
            continue
        t = t[len("child<"):-1]
        host = None
        if t == "vfio-pci":
            host = qmp(sock, "qom-get", path=f"/machine/peripheral/{child['name']}", property="host")
        out[child["name"]] = (t, host)
    return out


# --- the USB gadget --------------------------------------------------------------

class Gadget:
    """A configfs USB gadget (libcomposite) on dummy_hcd's device controller:
    plugging it in binds it to the UDC, and the host side sees a real USB
    device arrive, with its uevents; unplugging unbinds it."""

    VENDOR, PRODUCT = "1209", "0001"    # pid.codes' test id

    def __init__(self, name="vfiotest"):
        self.dir = f"/sys/kernel/config/usb_gadget/{name}"
        udcs = os.listdir("/sys/class/udc")
        if not udcs:
            fail("no USB device controller (dummy_hcd is not loaded)")
        self.udc = udcs[0]
        if not os.path.isdir(self.dir):
            os.mkdir(self.dir)
            self._write("idVendor", "0x" + self.VENDOR)
            self._write("idProduct", "0x" + self.PRODUCT)
            os.makedirs(f"{self.dir}/strings/0x409")
            self._write("strings/0x409/manufacturer", "vfio tests")
            self._write("strings/0x409/product", "kernel host gadget")
            self._write("strings/0x409/serialnumber", "0001")
            os.makedirs(f"{self.dir}/configs/c.1")
            # A function no host driver claims: the device is QEMU's alone.
            os.makedirs(f"{self.dir}/functions/Loopback.0")
            os.symlink(f"{self.dir}/functions/Loopback.0", f"{self.dir}/configs/c.1/Loopback.0")

    def _write(self, attr, value):
        with open(f"{self.dir}/{attr}", "w") as f:
            f.write(value + "\n")

    def device(self):
        """The host-side sysfs name of the plugged gadget, or None."""
        usb = "/sys/bus/usb/devices"
        for name in os.listdir(usb):
            if read(f"{usb}/{name}/idVendor") == self.VENDOR and read(f"{usb}/{name}/idProduct") == self.PRODUCT:
                return name
        return None

    def node(self):
        """/dev/bus/usb/BBB/DDD of the plugged gadget, or None."""
        dev = self.device()
        if dev is None:
            return None
        d = f"/sys/bus/usb/devices/{dev}"
        return "/dev/bus/usb/%03d/%03d" % (int(read(d + "/busnum")), int(read(d + "/devnum")))

    def plug(self, timeout=30):
        self._write("UDC", self.udc)
        return wait_until("the gadget to appear on the host's USB bus", self.node, timeout)

    def unplug(self, timeout=30):
        self._write("UDC", "")
        wait_until("the gadget to leave the host's USB bus", lambda: self.device() is None, timeout)
