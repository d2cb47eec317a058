#!/usr/bin/env python3
"""The dry run is the run: for the same flags on the same host, what `vfio
-run` does is exactly what `vfio -json` prints. The real binary runs under
the fake QEMU (which records its argv and every QMP command) on the desktop
fixture host, with and without a terminal on stdin (a pty from Python's pty
module, or /dev/null as under systemd), with and without USB regexes and
networking, and as root or for another user (-user nobody: device nodes
handed over; not SUDO_UID, under which vfio ignores the VFIO_* variables
this test needs, src/common/vfioenv.h).
Compared exactly: QEMU's argv, the QMP commands up to cont, and the host
changes the journal recorded, in order; the guest's MAC is the same in two
dry runs and the run.
Then the supervisor is killed (SIGKILL) and the dry run for the same name,
with one flag changed, must say -run adopts the running guest (its QEMU pid)
and name the flag that differs; -run then adopts it: the same QEMU, nothing
started or changed again, the difference reported."""
import json
import os
import pty
import signal
import subprocess
import sys
import tempfile
import time

build = os.environ["VFIO_BUILDDIR"]
MKHOST = os.environ["MKHOST"]
VFIO = os.path.join(build, "src", "supervisor", "vfio")
MOCK = os.path.join(build, "tests", "qmp-mock", "qemu-mock")

CASES = [
    # (name, terminal, flags, QEMU as another user)
    ("tty-user-net", True, ["-name", "pr1"], False),
    ("no-tty-user-net-usb", False, ["-name", "pr2", "-usb", "Logitech|SteelSeries"], False),
    ("no-tty-nonet-usb-other-user-disk", False, ["-name", "pr3", "-nonet", "-usb", "Logitech", "-image",
                                           "/dev/sdb,format=raw"], True),
    ("tty-portforward-usb-other-user", True, ["-name", "pr4", "-portforward", "tcp:2222:22", "-usb", "SteelSeries"],
     True),
]

failures = []


def env_for(tmp, host, sudo):
    env = {k: v for k, v in os.environ.items() if k not in ("SUDO_UID", "SUDO_GID", "SUDO_USER", "DISPLAY",
                                                             "WAYLAND_DISPLAY")}
    env.update({"VFIO_HOST_ROOT": host, "VFIO_QEMU": MOCK, "NO_COLOR": "1",
                "QMP_MOCK_ARGV": os.path.join(tmp, "argv"), "QMP_MOCK_RECORD": os.path.join(tmp, "record")})
    return env


def spawn(args, env, terminal, out):
    """vfio with a terminal on stdin (a pty) or /dev/null."""
    if terminal:
        master, slave = pty.openpty()
        p = subprocess.Popen(args, env=env, stdin=slave, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        os.close(slave)
        return p, master
    return subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT), None


def dry_run(flags, env, terminal, tmp):
    path = os.path.join(tmp, "plan.json")
    with open(path, "w") as out:
        p, master = spawn([VFIO, "-json"] + flags, env, terminal, out)
        p.wait(timeout=60)
    if master is not None:
        os.close(master)
    with open(path) as f:
        return json.load(f)


def wait_running(host, name, proc):
    status = os.path.join(host, "run/vfio", name, "status.json")
    end = time.monotonic() + 30
    while time.monotonic() < end and proc.poll() is None:
        try:
            with open(status) as f:
                if json.load(f)["state"] == "running":
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return False


def journal_changes(host, name):
    with open(os.path.join(host, "run/vfio", name, "journal")) as f:
        recs = [json.loads(l) for l in f if l.strip()]
    return [r["change"] for r in recs if r.get("state") == "begin"]


def sent_until_cont(record):
    with open(record) as f:
        cmds = [json.loads(l) for l in f if l.strip()]
    out = []
    for c in cmds:
        if c["execute"] == "cont":
            break
        if c["execute"] in ("qmp_capabilities", "query-cpus-fast"):
            continue
        out.append({"execute": c["execute"], **({"arguments": c["arguments"]} if "arguments" in c else {})})
    return out


def planned_qmp(plan):
    # "fd" tells the supervisor which descriptor to pass; QEMU gets the command.
    return [{k: v for k, v in c.items() if k != "fd"} for c in plan["qmp"]]


def status_of(host, name):
    with open(os.path.join(host, "run/vfio", name, "status.json")) as f:
        return json.load(f)


def adopt_case(case, tmp, host, name, flags, env, terminal, proc, argv):
    """SIGKILL the supervisor; the dry run says it would adopt the guest and
    which flag differs; -run adopts the same QEMU and starts nothing."""
    qemu_pid = status_of(host, name)["qemu_pid"]
    proc.kill()
    proc.wait()
    changed = flags + ["-memory", "1G"]
    plan = dry_run(changed, env, terminal, tmp)
    check(case, plan["running"].get("run") == "adopt" and plan["running"].get("qemu_pid") == qemu_pid,
          "after the supervisor was killed the dry run says %s, not adopt QEMU %d" % (plan["running"], qemu_pid))
    check(case, not plan["errors"], "the dry run of an adoption has errors: %s" % plan["errors"])
    check(case, any("-memory: 1G now" in d for d in plan["running"]["differences"]),
          "the dry run does not name the flag that differs: %s" % plan["running"]["differences"])
    before = journal_changes(host, name)
    with open(os.path.join(tmp, "out"), "w") as out:
        proc, master = spawn([VFIO, "-run"] + changed, env, terminal, out)
    st = None
    end = time.monotonic() + 30
    while time.monotonic() < end and proc.poll() is None:
        try:
            st = status_of(host, name)
            if st.get("adopted") and st["state"] == "running":
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    out = open(os.path.join(tmp, "out")).read()
    check(case, st is not None and st.get("adopted") and st["qemu_pid"] == qemu_pid,
          "-run did not adopt QEMU %d: %s\n%s" % (qemu_pid, st, out))
    with open(os.path.join(tmp, "argv")) as f:
        check(case, json.load(f) == argv, "a second QEMU was started")
    check(case, journal_changes(host, name) == before, "adopting changed the host again")
    check(case, "-memory: 1G now" in out, "-run does not report the flag that differs:\n" + out)
    if master is not None:
        os.close(master)
    return proc


def check(case, cond, msg):
    if not cond:
        failures.append("%s: %s" % (case, msg))


def run_case(case, terminal, flags, sudo):
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o1777)   # the fake QEMU runs as QEMU's user and writes its records here
        host = os.path.join(tmp, "host")
        spec = os.path.join(tmp, "spec.json")
        with open(spec, "w") as f:
            json.dump({"disks": [{"name": "sdb", "serial": "WD-0001"}]}, f)
        subprocess.run([sys.executable, MKHOST, "--preset", "desktop", "--spec", spec, host], check=True,
                       stdout=subprocess.DEVNULL)
        env = env_for(tmp, host, sudo)
        name = flags[flags.index("-name") + 1]
        if sudo:
            flags = flags + ["-user", "nobody"]
        plan = dry_run(flags, env, terminal, tmp)
        again = dry_run(flags, env, terminal, tmp)
        check(case, plan == again, "two dry runs differ")
        check(case, not plan["errors"], "the plan has errors: %s" % plan["errors"])
        # The console is a socket QEMU serves (fd 5) and logs to console.log
        # (fd 4), terminal or not: the supervisor relays it to its terminal.
        argv = plan["argv"]
        serial = argv[argv.index("-serial") + 1]
        check(case, serial == "chardev:console" and
              "socket,id=console,fd=5,server=on,wait=off,logfile=/dev/fdset/1" in argv and
              argv[argv.index("-add-fd") + 1] == "fd=4,set=1,opaque=console-log",
              "the console is %s" % serial)
        check(case, "socket,id=qmp,fd=3,server=on,wait=off" in argv, "QEMU's monitor is not a listening socket")
        check(case, "%s/run/vfio/%s/console.log" % (host, name) in " ".join(plan["rundown"]),
              "the dry run does not say where the console log goes")
        check(case, plan["running"]["run"] == "start", "the dry run of a new guest says %s" % plan["running"])
        if sudo:
            chowns = [c["target"] for c in plan["host_changes"] if c["action"] == "dev-chown"]
            check(case, "/dev/kvm" in chowns, "the plan does not give /dev/kvm to QEMU's user: %s" % chowns)
            if "-image" in flags:
                check(case, "/dev/sdb" in chowns, "the plan does not give /dev/sdb to QEMU's user: %s" % chowns)

        with open(os.path.join(tmp, "out"), "w") as out:
            proc, master = spawn([VFIO, "-run"] + flags, env, terminal, out)
        try:
            if not wait_running(host, name, proc):
                check(case, False, "the guest did not start:\n" + open(os.path.join(tmp, "out")).read())
                return
            with open(os.path.join(tmp, "argv")) as f:
                argv = json.load(f)
            check(case, argv == plan["argv"], "QEMU's argv differs from the plan's:\n  run:  %s\n  plan: %s" %
                  (argv, plan["argv"]))
            sent = sent_until_cont(os.path.join(tmp, "record"))
            check(case, sent == planned_qmp(plan), "QMP differs from the plan's:\n  run:  %s\n  plan: %s" %
                  (sent, planned_qmp(plan)))
            changes = journal_changes(host, name)
            check(case, changes == plan["host_changes"], "host changes differ from the plan's:\n  run:  %s\n"
                  "  plan: %s" % (changes, plan["host_changes"]))
            proc = adopt_case(case, tmp, host, name, flags, env, terminal, proc, argv)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if master is not None:
                os.close(master)
        check(case, proc.returncode == 0, "vfio -run exited %d:\n%s" % (proc.returncode,
                                                                         open(os.path.join(tmp, "out")).read()))


def main():
    if os.geteuid() != 0:
        print("skip: the run changes device nodes and starts QEMU as another user: needs root")
        return 77
    for case, terminal, flags, sudo in CASES:
        run_case(case, terminal, flags, sudo)
        print("%s %s" % ("FAIL" if any(f.startswith(case + ":") for f in failures) else "ok", case))
    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
