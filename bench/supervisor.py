#!/usr/bin/env python3
"""Benchmarks 4 and 5: the supervisor while a guest runs, and its start-up.

4. Footprint: the real `vfio -run` supervises a guest; once status.json says
   "running" and 2 s have passed, the supervisor's resident memory (VmRSS,
   VmHWM) is read from /proc/PID/status, and its wakeups are counted over
   10 s of idle: voluntary + involuntary context switches of every thread
   (/proc/PID/task/*/status) and the run count in /proc/PID/schedstat. The
   syscall it sleeps in (/proc/PID/syscall) shows the timeout its event loop
   asked for: -1 means no timer is armed at all. Run with the fake QEMU
   (tests/qmp-mock) and, when the test guest is built, with real QEMU booting
   it (tcg, the guest waits for the power button).
5. Start-up: the fake QEMU records each QMP command it receives into a FIFO
   this script reads, timestamping lines as they arrive; start-up is the time
   from starting `vfio -run` to `cont` arriving, minus the fake QEMU's own
   time from exec to its QMP greeting (measured by starting it directly with
   the argv the supervisor gave it, on a socketpair). Median of RUNS runs.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "10"))
IDLE_S = 10.0
TARGET_RSS_KIB = 4096
TARGET_STARTUP_S = 0.020


class Recorder(threading.Thread):
    """Reads the fake QEMU's command record (a FIFO) and timestamps lines."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.cont_at = None
        self.got = threading.Event()

    def run(self):
        with open(self.path, "rb") as f:      # blocks until the fake QEMU opens it
            for line in f:
                t = time.perf_counter()
                try:
                    cmd = json.loads(line).get("execute")
                except ValueError:
                    continue
                if cmd == "cont" and self.cont_at is None:
                    self.cont_at = t
                    self.got.set()


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)    # the harness polls; the supervisor under test does not
    raise SystemExit("supervisor bench: timed out waiting for " + what)


def status(host, name):
    try:
        with open(os.path.join(host, "run/vfio", name, "status.json")) as f:
            st = json.load(f)
        return st if st.get("state") == "running" else None
    except (OSError, ValueError):
        return None


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def switches(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        st = proc_status(int(tid)) if os.path.exists("/proc/%s/status" % tid) else {}
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                if "ctxt_switches" in line:
                    total += int(line.split()[1])
        del st
    return total


def schedstat_runs(pid):
    with open("/proc/%d/schedstat" % pid) as f:
        return int(f.read().split()[2])


SYSCALLS = {7: "poll", 232: "epoll_wait", 271: "ppoll", 281: "epoll_pwait", 441: "epoll_pwait2"}


def int32(v):
    v &= 0xffffffff
    return v - (1 << 32) if v >= (1 << 31) else v


def sleeping_in(pid):
    """(syscall name, timeout argument as the loop asked for it)."""
    with open("/proc/%d/syscall" % pid) as f:
        fields = f.read().split()
    nr = int(fields[0]) if fields and fields[0].lstrip("-").isdigit() else -1
    name = SYSCALLS.get(nr, "syscall %d" % nr)
    args = [int(a, 16) for a in fields[1:7]] if len(fields) >= 7 else []
    timeout = None
    # The timeout of epoll_wait/poll is a C int: the low 32 bits, signed.
    if nr in (232, 281) and len(args) >= 4:
        timeout = int32(args[3])
    elif nr == 7 and len(args) >= 3:
        timeout = int32(args[2])
    elif nr in (271, 441) and len(args) >= 3:
        timeout = "none" if args[2] == 0 else "a timeout"
    return name, timeout


def greeting_time(mock, argv_file, runs):
    """The fake QEMU's own time from exec to its greeting, with the supervisor's
    argv: as the supervisor hands them over, fd 3 and fd 5 are listening
    sockets (the monitor, the console) and fd 4 the console log; the time is
    from the fork to the greeting read by a client of fd 3."""
    with open(argv_file) as f:
        argv = json.load(f)
    times = []
    env = dict(os.environ)
    for k in ("QMP_MOCK_RECORD", "QMP_MOCK_ARGV", "QMP_MOCK_SCENARIO"):
        env.pop(k, None)
    d = tempfile.mkdtemp(prefix="vfio-bench-greet-")
    qmp_path, con_path = os.path.join(d, "qmp.sock"), os.path.join(d, "console.sock")
    for _ in range(runs):
        listeners = []
        for path in (qmp_path, con_path):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            s.listen(1)
            listeners.append(s)
        log = open(os.devnull, "wb")
        fds = (listeners[0].fileno(), log.fileno(), listeners[1].fileno())

        def handover(fds=fds):
            # Out of the way first, then into place: fds 3 to 5 as QEMU gets them.
            moved = [os.dup(fd) for fd in fds]
            for target, fd in zip((3, 4, 5), moved):
                os.dup2(fd, target)
            for fd in moved:
                if fd not in (3, 4, 5):
                    os.close(fd)
        t0 = time.perf_counter()
        # close_fds=False: subprocess would otherwise close fds 3 to 5 made here.
        p = subprocess.Popen([mock] + argv[1:], close_fds=False, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, preexec_fn=handover)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(30)
        c.connect(qmp_path)
        if not c.recv(1):
            raise SystemExit("supervisor bench: the fake QEMU closed its monitor before its greeting")
        times.append(time.perf_counter() - t0)
        p.kill()
        p.wait()
        c.close()
        log.close()
        for s in listeners:
            s.close()
        os.unlink(qmp_path)
        os.unlink(con_path)
    os.rmdir(d)
    return benchlib.percentile(times, 50)


def start(vfio, host, name, args, env, logf):
    return subprocess.Popen([vfio, "-run", "-name", name] + args, env=env, stdin=subprocess.DEVNULL,
                            stdout=logf, stderr=subprocess.STDOUT)


def stop(p):
    p.send_signal(signal.SIGTERM)       # asks the guest to power down
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)   # a second signal quits QEMU now
        p.wait(timeout=60)


def footprint(vfio, host, env, args, tmp, label):
    name = "benchfp"
    with open(os.path.join(tmp, "fp-%s.log" % label), "w") as logf:
        p = start(vfio, host, name, args, env, logf)
        try:
            st = wait_for(lambda: status(host, name) if p.poll() is None else "exited", 240, "the guest to run")
            if st == "exited":
                raise SystemExit("supervisor bench: vfio -run exited with %d; see %s" % (p.returncode, logf.name))
            pid = st["pid"]
            time.sleep(2)
            s = proc_status(pid)
            sw0, runs0 = switches(pid), schedstat_runs(pid)
            time.sleep(IDLE_S)
            sw1, runs1 = switches(pid), schedstat_runs(pid)
            sc = sleeping_in(pid)
            s1 = proc_status(pid)
            threads = len(os.listdir("/proc/%d/task" % pid))
        finally:
            stop(p)
    return {"rss": int(s1["VmRSS"].split()[0]), "hwm": int(s1["VmHWM"].split()[0]), "threads": threads,
            "switches": sw1 - sw0, "runs": runs1 - runs0, "syscall": sc}


def main():
    src, build = sys.argv[1], sys.argv[2]
    vfio = os.path.join(build, "src/supervisor/vfio")
    mock = os.path.join(build, "tests/qmp-mock/qemu-mock")
    mkhost = os.path.join(src, "tests/fixtures/mkhost.py")
    guest = os.environ.get("VFIO_GUEST_DIR") or os.path.join(build, "guest")
    tmp = tempfile.mkdtemp(prefix="vfio-bench-sup-")
    os.chmod(tmp, 0o755)
    host = os.path.join(tmp, "host")
    spec = os.path.join(tmp, "spec.json")
    with open(spec, "w") as f:
        json.dump({"cpus": {"cores": 2, "threads": 1}, "mem_kib": 4096000, "mem_available_kib": 3000000,
                   "kvm": False}, f)
    subprocess.run([sys.executable, mkhost, "--preset", "desktop", "--spec", spec, host], check=True,
                   stdout=subprocess.DEVNULL)
    base_env = dict(os.environ, VFIO_HOST_ROOT=host, NO_COLOR="1",
                    VFIO_TEST_QEMU_ENV="QMP_MOCK_RECORD,QMP_MOCK_ARGV")
    for k in ("SUDO_UID", "SUDO_GID", "SUDO_USER", "NOTIFY_SOCKET"):
        base_env.pop(k, None)
    args = ["-accel", "tcg", "-noBios", "-m", "256M", "-nonet"]

    # 5. start-up, with the fake QEMU
    rec_dir = os.path.join(tmp, "rec")
    os.mkdir(rec_dir)
    os.chmod(rec_dir, 0o777)            # the fake QEMU may run as another user
    fifo = os.path.join(rec_dir, "record")
    argv_file = os.path.join(rec_dir, "argv.json")
    totals = []
    for i in range(RUNS):
        if os.path.exists(fifo):
            os.unlink(fifo)
        os.mkfifo(fifo, 0o666)
        os.chmod(fifo, 0o666)
        rec = Recorder(fifo)
        rec.start()
        env = dict(base_env, VFIO_QEMU=mock, QMP_MOCK_RECORD=fifo, QMP_MOCK_ARGV=argv_file)
        with open(os.path.join(tmp, "start-%d.log" % i), "w") as logf:
            t0 = time.perf_counter()
            p = start(vfio, host, "benchstart", args, env, logf)
            if not rec.got.wait(60):
                p.kill()
                raise SystemExit("supervisor bench: no cont within 60 s; see " + logf.name)
            totals.append(rec.cont_at - t0)
            # A signal before the reply to cont counts as a failed start: let it run first.
            wait_for(lambda: status(host, "benchstart") or p.poll() is not None, 60, "the guest to run")
            stop(p)
        rec.join(10)
    total = benchlib.percentile(totals, 50)
    greet = greeting_time(mock, argv_file, RUNS)
    overhead = total - greet

    # 4. footprint, with the fake QEMU and (when built) real QEMU and the test guest
    fps = [("fake QEMU (tests/qmp-mock)", footprint(vfio, host, dict(base_env, VFIO_QEMU=mock), args, tmp, "mock"))]
    if os.path.exists(os.path.join(guest, "vmlinuz")):
        inroot = os.path.join(host, guest.lstrip("/"))
        os.makedirs(inroot, exist_ok=True)
        for n in ("vmlinuz", "initrd.img"):
            if not os.path.lexists(os.path.join(inroot, n)):
                os.symlink(os.path.join(guest, n), os.path.join(inroot, n))
        env = dict(base_env)
        env.pop("VFIO_QEMU", None)
        gargs = args + ["-kernel", os.path.join(guest, "vmlinuz"), "-initrd", os.path.join(guest, "initrd.img"),
                        "-cmdline", "console=ttyS0 panic=-1 vfiotest=wait"]
        fps.append(("real QEMU 7.2 (tcg) running the test guest", footprint(vfio, host, env, gargs, tmp, "real")))
    else:
        fps.append(("real QEMU running the test guest", None))

    rows = []
    for label, fp in fps:
        if fp is None:
            rows.append(("supervisor footprint, " + label, "not measured: the test guest is not built "
                         "(tools/build-test-guest BUILDDIR/guest)", "", ""))
            continue
        rows.append(("resident memory, " + label, "%d KiB (peak %d KiB), %d thread%s" % (
            fp["rss"], fp["hwm"], fp["threads"], "" if fp["threads"] == 1 else "s"), "< 4 MiB",
            benchlib.verdict(fp["rss"] < TARGET_RSS_KIB)))
        rows.append(("wakeups per second while idle, " + label, "%.1f /s (%d context switches, %d runs in %d s)" % (
            fp["switches"] / IDLE_S, fp["switches"], fp["runs"], IDLE_S), "0", benchlib.verdict(fp["switches"] == 0)))
        name, timeout = fp["syscall"]
        rows.append(("timer armed while idle, " + label, "sleeps in %s with timeout %s" % (name, timeout),
                     "none (timeout -1)", benchlib.verdict(timeout == -1 or timeout == "none")))
    rows.append(("start-up: vfio -run to cont, fake QEMU", benchlib.fmt_ms(total), "", ""))
    rows.append(("fake QEMU's own exec to QMP greeting", benchlib.fmt_ms(greet), "", ""))
    rows.append(("start-up overhead (difference)", benchlib.fmt_ms(overhead), "< 20 ms",
                 benchlib.verdict(overhead < TARGET_STARTUP_S)))
    benchlib.table(
        "4 and 5. Supervisor footprint while a guest runs; start-up",
        "`vfio -run %s` on the desktop fixture host (2 host CPUs, no KVM: 1 vCPU, no host changes in the "
        "plan). Footprint: VmRSS/VmHWM from /proc/PID/status 2 s after status.json says running; wakeups = "
        "voluntary + involuntary context switches of all its threads over %d s idle, also the schedstat run "
        "count; the loop's sleep timeout from /proc/PID/syscall. Start-up: time from starting vfio to `cont` "
        "arriving at the fake QEMU (its command record is a FIFO read here), minus the fake QEMU's own time "
        "from exec to greeting with the same argv; medians of %d runs each. Load average when measured: %s."
        % (" ".join(args), IDLE_S, RUNS, benchlib.loadavg()), rows)
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
