#!/usr/bin/env python3
"""Fault injection at every step: the supervisor is killed (SIGKILL, as an
OOM kill or a crash would) right after each journal record of a phase
(VFIO_TEST_CRASH_AT=N, src/supervisor/journal.h), or while a bind or unbind
child of it is blocked in the "kernel" (tests/drvcore's unbind-block), and
then the guest is taken over again or the host put back:

  - a guest that was running (its QEMU alive, the journal says it started)
    is adopted by the same run (vfio -run again: same QEMU pid), then quit;
  - anything else is recovered by -restore or by -run again (which gives
    the leftovers back first), alternately, and that run is quit.

After each, the host root must be byte for byte as before (tests/session/
treesnap.py; in the network namespace also its interfaces), no runtime
directory left, and QEMU must have been alive after the kill wherever it
was alive before it. The fake QEMU (tests/qmp-mock) and the simulated
driver core (tests/drvcore) stand in for QEMU and the kernel.

    fault-injection.py PHASE    (start, pci-add, pci-del, usb-add, usb-del,
                                 net-add, net-del, net-bridge, net-bridge-del,
                                 teardown, adoption, blocked-child)

Prints the table of the injection points it covered ("INJECTION POINTS").
Needs root (device nodes change owner; net-bridge makes a bridge and taps
in a network namespace of its own). Python standard library only."""
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

B = os.environ["VFIO_BUILDDIR"]
SRC = os.environ["VFIO_SRCDIR"]
DRIVER = os.path.join(B, "tests", "session", "session-driver")
VFIOCTL = os.path.join(B, "tools", "vfioctl")
MOCK = os.path.join(B, "tests", "qmp-mock", "qemu-mock")
TREESNAP = os.path.join(SRC, "tests", "session", "treesnap.py")
NAME = "fi"
PCI = "0000:02:00.0"
HOSTDEV = "hostdev-0000-02-00-0"
DEADLINE = 30


class Failure(Exception):
    pass


def wait_for(what, cond, secs=DEADLINE):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            if cond():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise Failure("timed out waiting for " + what)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Host:
    def __init__(self, phase):
        self.phase = phase
        self.tmp = tempfile.mkdtemp(prefix="vfio-fi-")
        os.chmod(self.tmp, 0o1777)   # the fake QEMU runs as uid 1000 and writes its records here
        self.root = os.path.join(self.tmp, "host")
        subprocess.run([sys.executable, os.environ["MKHOST"], "--preset", "desktop", self.root], check=True,
                       stdout=subprocess.DEVNULL)
        os.makedirs(os.path.join(self.root, ".drvcore"), exist_ok=True)
        if phase.startswith("net-bridge"):
            # the real tun device where the fixture has a placeholder: taps are made for real
            tun = os.path.join(self.root, "dev", "net", "tun")
            os.remove(tun)
            os.mknod(tun, 0o666 | stat.S_IFCHR, os.makedev(10, 200))
        self.rundir = os.path.join(self.root, "run", "vfio", NAME)
        self.env = {k: v for k, v in os.environ.items() if k not in ("SUDO_UID", "SUDO_GID", "DISPLAY")}
        self.env.update({"VFIO_HOST_ROOT": self.root, "VFIO_QEMU": MOCK, "SUDO_UID": "1000", "SUDO_GID": "1000",
                         "LD_PRELOAD": os.environ["DRVCORE"], "QMP_MOCK_SCENARIO": os.path.join(self.tmp, "scenario"),
                         "QMP_MOCK_RECORD": os.path.join(self.tmp, "record"),
                         "VFIO_TEST_DETACH_TIMEOUT_MS": "300"})
        self.scenario({})
        self.before = self.snap()
        self.rows = []
        self.n = 0
        self.sup = None
        self.crash = None

    def scenario(self, s):
        with open(self.env["QMP_MOCK_SCENARIO"], "w") as f:
            json.dump(s, f)

    def snap(self):
        out = subprocess.run([sys.executable, TREESNAP, self.root], check=True, capture_output=True, text=True).stdout
        if self.phase.startswith("net-bridge"):
            # the interfaces of the namespace, by name (taps made and removed)
            links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
            out += "".join("link %s\n" % l.split(": ")[1].split("@")[0] for l in links.splitlines() if ": " in l)
        return out

    def plan(self, extra_changes=(), extra_qmp=()):
        argv = ["qemu-system-x86_64", "-name", NAME, "-machine", "q35", "-nodefaults", "-S",
                "-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control", "-m", "512"]
        for i in range(1, 5):
            argv += ["-device", "pcie-root-port,id=rp%d,bus=pcie.0,chassis=%d,port=%d,addr=0x1c.%d" % (i, i, i, i - 1)]
        argv += ["-device", "qemu-xhci,id=xhci,bus=pcie.0", "-add-fd", "fd=4,set=1,opaque=console-log",
                 "-chardev", "socket,id=console,fd=5,server=on,wait=off,logfile=/dev/fdset/1",
                 "-serial", "chardev:console"]
        plan = {"argv": argv,
                "qmp": [{"execute": "netdev_add", "arguments": {"type": "user", "id": "net0"}},
                        {"execute": "device_add", "arguments": {"driver": "virtio-net-pci", "id": "nic0",
                                                                "netdev": "net0", "bus": "rp1"}}] + list(extra_qmp),
                "host_changes": list(extra_changes) + [
                    {"action": "dev-chown", "target": "/dev/kvm", "args": {"uid": 1000, "gid": 1000}}],
                "n_root_ports": 4, "memory_mib": 512, "has_xhci": True}
        with open(os.path.join(self.tmp, "plan.json"), "w") as f:
            json.dump(plan, f)

    def faults(self, text):
        with open(os.path.join(self.root, ".drvcore", "faults"), "w") as f:
            f.write(text)

    # --- the supervisor ---------------------------------------------------
    def run(self, crash_at=None):
        env = dict(self.env)
        if crash_at is not None:
            env["VFIO_TEST_CRASH_AT"] = str(crash_at)
        self.out = open(os.path.join(self.tmp, "out"), "a")
        self.out.write("=== run%s\n" % ("" if crash_at is None else " crash at %d" % crash_at))
        self.out.flush()
        self.sup = subprocess.Popen([DRIVER, "run", os.path.join(self.tmp, "plan.json"), "-name", NAME],
                                    env=env, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out)
        return self.sup

    def status(self):
        with open(os.path.join(self.rundir, "status.json")) as f:
            return json.load(f)

    def running(self):
        st = self.status()
        return st["pid"] == self.sup.pid and st["state"] == "running"

    def wait_running(self):
        wait_for("the guest to run under pid %d" % self.sup.pid,
                 lambda: self.running() or self.sup.poll() is not None)
        if self.sup.poll() is not None:
            raise Failure("the supervisor exited %d before the guest ran" % self.sup.returncode)

    def ctl_env(self):
        """vfioctl as root acting for itself (with SUDO_UID set it would
        ignore $VFIO_HOST_ROOT, as vfio does)."""
        return {k: v for k, v in self.env.items() if k not in ("SUDO_UID", "SUDO_GID", "LD_PRELOAD")}

    def ctl(self, *words, timeout=DEADLINE):
        r = subprocess.run([VFIOCTL, "-timeout", str(timeout), NAME] + list(words), env=self.ctl_env(),
                           capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr

    def ctl_ok(self, *words):
        rc, out = self.ctl(*words)
        if rc != 0:
            raise Failure("vfioctl %s exited %d: %s" % (" ".join(words), rc, out))
        return out

    def ctl_bg(self, *words):
        """A command whose supervisor may die before it answers."""
        return subprocess.Popen([VFIOCTL, "-timeout", str(DEADLINE), NAME] + list(words), env=self.ctl_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def quit(self):
        self.ctl_ok("quit")
        rc = self.sup.wait(DEADLINE)
        if rc != 0:
            raise Failure("the run ended %d after quit" % rc)

    def journal(self):
        try:
            with open(os.path.join(self.rundir, "journal")) as f:
                return [json.loads(l) for l in f if l.strip()]
        except OSError:
            return []

    def qemu(self):
        for r in self.journal():
            if "qemu" in r:
                return r["qemu"]["pid"]
        return None

    def killed(self):
        rc = self.sup.wait(DEADLINE)
        if rc != -signal.SIGKILL:
            raise Failure("the supervisor ended %d, not by SIGKILL at its record" % rc)

    # --- after a kill -------------------------------------------------------
    def recover(self, point, what, qemu_expected):
        """Take the guest over or put the host back; check it all."""
        self.n += 1
        recs = self.journal()
        started = any("started" in r for r in recs)
        qpid = self.qemu()
        qalive = qpid is not None and alive(qpid)
        if qemu_expected is not None and qalive != qemu_expected:
            raise Failure("%s: QEMU %s after the kill, expected %s" % (point, "alive" if qalive else "gone",
                                                                        "alive" if qemu_expected else "gone"))
        last = describe(recs[-1], recs) if recs else "-"
        if qalive and started:
            how = "adopted (same QEMU), quit"
            self.faults("")
            self.run()
            self.wait_running()
            if self.status()["qemu_pid"] != qpid or not self.status().get("adopted"):
                raise Failure("%s: not adopted: %s" % (point, self.status()))
            self.quit()
        elif self.n % 2 == 1:
            how = "-restore"
            self.faults("")
            r = subprocess.run([DRIVER, "restore", NAME], env=self.env, capture_output=True, text=True)
            if r.returncode != 0:
                raise Failure("%s: restore exited %d: %s" % (point, r.returncode, r.stdout + r.stderr))
        else:
            how = "-run again (gives back first), quit"
            self.faults("")
            self.run()
            self.wait_running()
            self.quit()
        if qpid is not None and alive(qpid):
            raise Failure("%s: QEMU %d outlived the recovery" % (point, qpid))
        if os.path.exists(self.rundir):
            raise Failure("%s: the runtime directory was left" % point)
        shutil.rmtree(os.path.join(self.root, "var", "lib", "vfio"), ignore_errors=True)   # console logs, kept
        after = self.snap()
        if after != self.before:
            import difflib
            diff = "".join(difflib.unified_diff(self.before.splitlines(True), after.splitlines(True)))
            raise Failure("%s: the host differs from before:\n%s" % (point, diff))
        self.rows.append((self.phase, point, what or last, "alive" if qalive else "not running", how))

    def table(self):
        print("INJECTION POINTS (%s): the supervisor killed at each, then recovered; host byte for byte as "
              "before, QEMU alive after the kill wherever it was running" % self.phase)
        print("| phase | point | killed right after | QEMU after the kill | recovered by |")
        print("|---|---|---|---|---|")
        for r in self.rows:
            print("| %s |" % " | ".join(r))

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def describe(r, recs):
    """A journal record in a few words (recs: the journal, for what a
    done/undone record closes)."""
    if "version" in r:
        return "run record"
    if "qemu" in r:
        return "QEMU's pid"
    if "device" in r:
        return "device_add %s" % r["device"].get("id")
    if "device-del" in r:
        return "device_del %s accepted" % r["device-del"]
    if "device-gone" in r:
        return "%s given back" % r["device-gone"]
    if "started" in r:
        return "guest started"
    if "adopted" in r:
        return "adopted"
    if r.get("state") == "begin":
        c = r["change"]
        return "begin %s %s%s" % (c["action"], c["target"], " (for %s)" % r["for"] if "for" in r else "")
    for b in recs:
        if b.get("state") == "begin" and b.get("seq") == r.get("seq"):
            return "%s %s %s" % (r.get("state"), b["change"]["action"], b["change"]["target"])
    return "%s #%d" % (r.get("state"), r.get("seq", 0))


# --- the phases: how to get there, what to do, how many records it writes ---

def base(h):
    """A running guest: nic0 (plan), /dev/kvm to QEMU's user."""
    h.run(h.crash)
    h.wait_running()


def with_pci(h):
    base(h)
    h.ctl_ok("pci", "add", PCI)


def with_usb(h):
    base(h)
    h.ctl_ok("usb", "add", "SteelSeries")


def with_everything(h):
    base(h)
    h.ctl_ok("pci", "add", PCI)
    h.ctl_ok("usb", "add", "SteelSeries")
    h.ctl_ok("net", "add", "user")


PHASES = {
    # name: (prepare, act as vfioctl words, wait after the act)
    "pci-add": (base, ["pci", "add", PCI]),
    "pci-del": (with_pci, ["pci", "del", HOSTDEV, "force"]),
    "usb-add": (base, ["usb", "add", "SteelSeries"]),
    "usb-del": (with_usb, ["usb", "del", "usb-1-3"]),
    "net-add": (base, ["net", "add", "user"]),
    "net-del": (base, ["net", "del", "nic0"]),
    "net-bridge": (base, ["net", "add", "bridge=vfiofibr0"]),
    "net-bridge-del": (lambda h: (base(h), h.ctl_ok("net", "add", "bridge=vfiofibr0")), ["net", "del", "nic1"]),
    "teardown": (with_everything, ["quit"]),
}


def measure(h, prepare, act):
    """Records written before the act and by it, in a run not killed."""
    h.crash = None
    prepare(h)
    before = len(h.journal())
    rc, out = h.ctl(*act)
    if rc != 0:
        raise Failure("measuring: vfioctl %s exited %d: %s" % (" ".join(act), rc, out))
    # the reply comes once the act is over, its records written
    n = len(h.journal()) - before
    h.quit()
    return before, n


def phase_commands(h, name):
    prepare, act = PHASES[name]
    if name == "teardown":
        # the records teardown writes: one "undone" per change in force
        h.crash = None
        prepare(h)
        before = len(h.journal())
        in_force = len(h.status()["host_changes"])
        h.quit()
        n = in_force
    else:
        before, n = measure(h, prepare, act)
    if h.snap() != h.before:
        raise Failure("measuring: the host was not given back")
    if n <= 0:
        raise Failure("measuring: %s writes no journal record" % name)
    for k in range(1, n + 1):
        h.crash = before + k
        prepare(h)
        cmd = h.ctl_bg(*act)
        h.killed()
        cmd.kill()
        cmd.wait()
        # QEMU runs through every hot-plug step; quit ends it before teardown's records.
        h.recover("%s record %d" % (name, k), None, name != "teardown")


def phase_start(h):
    """The records of a start: a bind, its group node, /dev/kvm, QEMU, the
    plan's devices, the guest started."""
    h.plan(extra_changes=[
        {"action": "pci-bind-vfio", "target": PCI, "from": "nvme", "to": "vfio-pci",
         "args": {"group": 11, "display": False}},
        {"action": "dev-chown", "target": "/dev/vfio/11", "args": {"uid": 1000, "gid": 1000}}],
        extra_qmp=[{"execute": "device_add", "arguments": {"driver": "vfio-pci", "host": PCI, "id": HOSTDEV,
                                                          "bus": "rp2"}}])
    h.crash = None
    base(h)
    n = len(h.journal())
    h.quit()
    qemu_at = None
    for k in range(1, n + 1):
        h.crash = k
        h.run(k)
        h.killed()
        recs = h.journal()
        if qemu_at is None and any("qemu" in r for r in recs):
            qemu_at = k
        h.recover("start record %d" % k, None, qemu_at is not None and k >= qemu_at)


def phase_adoption(h):
    """A guest with a hot-added device, a USB device and a removal the
    guest acks while no supervisor runs; the adopter is killed at each of
    its records (adopted, then giving back what left)."""
    h.scenario({"guest": {"ignore_unplug": True}})

    def prepare():
        h.crash = None
        base(h)
        h.ctl_ok("pci", "add", PCI)
        h.ctl_ok("usb", "add", "SteelSeries")
        rc, out = h.ctl("pci", "del", HOSTDEV, "force")
        if rc != 3:
            raise Failure("the removal is not pending: %d %s" % (rc, out))
        qpid = h.status()["qemu_pid"]
        h.sup.kill()
        h.sup.wait()
        reset_guest(h)     # the guest lets go while nobody watches
        return qpid

    prepare()
    before = len(h.journal())
    h.run()
    h.wait_running()
    wait_for("the device back on nvme", lambda: driver_of(h, PCI) == "nvme")
    wait_for("its journal entry closed", lambda: any(r.get("device-gone") == HOSTDEV for r in h.journal()))
    n = len(h.journal()) - before
    h.quit()
    for k in range(1, n + 1):
        prepare()
        h.run(k)
        h.killed()
        h.recover("adoption record %d" % k, None, True)


def phase_blocked_child(h):
    """The supervisor killed while its bind or unbind child is blocked in
    the kernel: binding for pci add, giving back after pci del, at
    teardown. The child dies with it and finishes nothing behind the
    recovery."""
    block = "unbind-block %s 30\n" % PCI

    def child_blocked():
        """A child of the supervisor asleep in the fault's sleep: blocked."""
        kids = subprocess.run(["pgrep", "-P", str(h.sup.pid)], capture_output=True, text=True).stdout.split()
        for k in kids:
            try:
                with open("/proc/%s/syscall" % k) as f:
                    if f.read().split()[0] in ("35", "230"):   # nanosleep, clock_nanosleep
                        return True
            except (OSError, IndexError):
                pass
        return False

    # pci add: unbinding nvme blocks
    h.crash = None
    base(h)
    h.faults(block)
    cmd = h.ctl_bg("pci", "add", PCI)
    wait_for("the bind to begin", lambda: any(r.get("change", {}).get("action") == "pci-bind-vfio"
                                               for r in h.journal()))
    wait_for("the bind child", child_blocked)
    h.sup.kill()
    h.sup.wait()
    cmd.kill()
    cmd.wait()
    h.recover("pci add, bind child blocked", "bind child blocked unbinding nvme", True)
    # pci del: giving back (unbinding vfio-pci) blocks
    base(h)
    h.ctl_ok("pci", "add", PCI)
    h.faults(block)
    cmd = h.ctl_bg("pci", "del", HOSTDEV, "force")
    wait_for("the give-back child", child_blocked)
    h.sup.kill()
    h.sup.wait()
    cmd.kill()
    cmd.wait()
    h.recover("pci del, unbind child blocked", "unbind child blocked giving the device back", True)
    # teardown: the undo of the bind blocks (QEMU is gone by then)
    base(h)
    h.ctl_ok("pci", "add", PCI)
    h.faults(block)
    h.ctl_ok("quit")
    wait_for("the teardown's unbind child", child_blocked)
    h.sup.kill()
    h.sup.wait()
    h.recover("teardown, unbind child blocked", "unbind child blocked at teardown", False)


def reset_guest(h):
    """system_reset on QEMU's monitor socket: a pending unplug completes, as
    in QEMU 7.2 (nobody else is connected)."""
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(DEADLINE)
    s.connect(os.path.join(h.rundir, "qmp.sock"))
    f = s.makefile("rwb")
    f.readline()
    for cmd in ("qmp_capabilities", "system_reset"):
        f.write(json.dumps({"execute": cmd}).encode() + b"\n")
        f.flush()
        while "return" not in json.loads(f.readline()):
            pass
    s.close()


def driver_of(h, addr):
    return os.path.basename(os.readlink(os.path.join(h.root, "sys/bus/pci/devices", addr, "driver")))


def main():
    phase = sys.argv[1]
    if os.geteuid() != 0:
        print("SKIP: device nodes change owner and QEMU runs as another user: needs root")
        return 77
    if phase.startswith("net-bridge") and not os.environ.get("VFIO_FI_IN_NETNS"):
        if shutil.which("unshare") is None or shutil.which("ip") is None:
            print("SKIP: needs unshare and ip")
            return 77
        env = dict(os.environ, VFIO_FI_IN_NETNS="1")
        return subprocess.run(["unshare", "-n", sys.executable] + sys.argv, env=env).returncode
    if phase.startswith("net-bridge"):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "link", "add", "vfiofibr0", "type", "bridge"], check=True)
    h = Host(phase)
    h.plan()
    try:
        if phase == "start":
            phase_start(h)
        elif phase == "adoption":
            phase_adoption(h)
        elif phase == "blocked-child":
            phase_blocked_child(h)
        else:
            phase_commands(h, phase)
    except Failure as e:
        print("FAIL: %s" % e)
        print("--- supervisor output (end):")
        try:
            print(open(os.path.join(h.tmp, "out")).read()[-6000:])
        except OSError:
            pass
        h.table()
        if h.sup is not None and h.sup.poll() is None:
            h.sup.kill()
        qpid = h.qemu()
        if qpid:
            try:
                os.kill(qpid, signal.SIGKILL)
            except OSError:
                pass
        return 1
    finally:
        for p in subprocess.run(["pgrep", "-f", "^" + MOCK], capture_output=True, text=True).stdout.split():
            try:
                with open("/proc/%s/environ" % p, "rb") as f:
                    if ("VFIO_HOST_ROOT=" + h.root).encode() in f.read():
                        os.kill(int(p), signal.SIGKILL)
            except OSError:
                pass
    h.table()
    h.close()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
