#!/usr/bin/env python3
"""`vfioctl pci add ADDRESS` while the guest runs and `vfio -pci ADDRESS` at
start follow one rulebook (src/hostprep/passthrough.c): over every PCI
device of the desktop fixture host they refuse the same devices for the same
reason (a bridge, an IOMMU group shared with a device on a host driver,
naming the same group and the same blocking device), and for the devices
they take they bind the same way (pci-bind-vfio from the same driver, in the
same group) and give the guest the same device_add (driver, host, id). The
one difference is documented: display functions are cold-plugged at start
and refused by pci add. The run is the real vfio binary under the fake QEMU
and the simulated driver core; every pci add is given back with pci del."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

build = os.environ["VFIO_BUILDDIR"]
MKHOST = os.environ["MKHOST"]
VFIO = os.path.join(build, "src", "supervisor", "vfio")
VFIOCTL = os.path.join(build, "tools", "vfioctl")
MOCK = os.path.join(build, "tests", "qmp-mock", "qemu-mock")
DRVCORE = os.environ.get("DRVCORE", "")
NAME = "agree"

if not DRVCORE or not os.path.exists(DRVCORE):
    print("skip: no drvcore")
    sys.exit(77)

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def dry_run(env, address):
    """What -pci ADDRESS plans: errors, the bind and the device for it."""
    r = subprocess.run([VFIO, "-json", "-nonet", "-name", NAME, "-pci", "^" + re.escape(address) + " "],
                       env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    plan = json.loads(r.stdout)
    binds = [c for c in plan["host_changes"] if c["action"] == "pci-bind-vfio" and c["target"] == address]
    adds = [c["arguments"] for c in plan["qmp"]
            if c["execute"] == "device_add" and c["arguments"].get("host") == address]
    cold = [a for a in plan["argv"] if a.startswith("vfio-pci,host=%s," % address)]
    return plan["errors"], binds, adds, cold


def vfioctl(env, *words):
    r = subprocess.run([VFIOCTL, "-timeout", "60", NAME] + list(words), env=env, capture_output=True, text=True,
                       timeout=90)
    return r.returncode, (r.stdout + r.stderr).strip()


def recorded_adds(record):
    try:
        with open(record) as f:
            lines = [json.loads(l) for l in f if l.strip()]
    except OSError:
        return []
    return [l["arguments"] for l in lines if l.get("execute") == "device_add"]


def journal_binds(host):
    out = []
    try:
        with open(os.path.join(host, "run/vfio", NAME, "journal")) as f:
            for line in f:
                rec = json.loads(line)
                ch = rec.get("change")
                if rec.get("state") == "begin" and ch and ch["action"] == "pci-bind-vfio":
                    out.append(ch)
    except OSError:
        pass
    return out


def group_refusal(msg):
    """(group, blocking address) from either side's message, or None."""
    m = re.search(r"shares IOMMU group (\d+) with (\S+)", msg)
    return (int(m.group(1)), m.group(2)) if m else None


def main():
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o1777)   # the fake QEMU runs as QEMU's user (vfio-qemu) and writes its records here
        host = os.path.join(tmp, "host")
        subprocess.run([sys.executable, MKHOST, "--preset", "desktop", host], check=True, stdout=subprocess.DEVNULL)
        env = {k: v for k, v in os.environ.items() if k not in ("SUDO_UID", "SUDO_GID", "SUDO_USER", "DISPLAY",
                                                                 "WAYLAND_DISPLAY")}
        record = os.path.join(tmp, "record")
        env.update({"VFIO_HOST_ROOT": host, "VFIO_QEMU": MOCK, "QMP_MOCK_RECORD": record,
                    "QMP_MOCK_ARGV": os.path.join(tmp, "argv"), "NO_COLOR": "1"})
        addresses = sorted(os.listdir(os.path.join(host, "sys/bus/pci/devices")))
        planned = {a: dry_run(env, a) for a in addresses}

        run_env = dict(env, LD_PRELOAD=DRVCORE)
        out = open(os.path.join(tmp, "out"), "w")
        sup = subprocess.Popen([VFIO, "-run", "-nonet", "-name", NAME], env=run_env, stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.STDOUT)
        status = os.path.join(host, "run/vfio", NAME, "status.json")
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                with open(status) as f:
                    if json.load(f)["state"] == "running":
                        break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        else:
            sup.kill()
            print("FAIL: the guest did not start:\n" + open(os.path.join(tmp, "out")).read())
            return 1
        seen = {"taken": 0, "refused": 0, "display": 0}
        try:
            for a in addresses:
                errors, binds, adds, cold = planned[a]
                n_adds, n_binds = len(recorded_adds(record)), len(journal_binds(host))
                rc, msg = vfioctl(env, "pci", "add", a)
                new_adds = recorded_adds(record)[n_adds:]
                new_binds = journal_binds(host)[n_binds:]
                seen["display" if cold else "refused" if errors else "taken"] += 1
                if cold:
                    # Display functions: on the command line at start, never hot-added.
                    check(rc == 1 and "is a display device" in msg, "%s: pci add of a display function: %s" % (a, msg))
                    check("id=%s," % ("hostdev-" + re.sub("[:.]", "-", a)) in cold[0], "%s: -pci id %s" % (a, cold[0]))
                    continue
                if errors:
                    check(rc == 1, "%s: -pci refuses (%s) but pci add took it: %s" % (a, errors, msg))
                    check(not new_adds and not new_binds, "%s: pci add changed something it refused" % a)
                    want = [group_refusal(e) for e in errors if group_refusal(e)]
                    got = group_refusal(msg)
                    if want or got:
                        check(got in want, "%s: -pci blocks on %s, pci add on %s (%s)" % (a, want, got, msg))
                    elif "bridges never count" in " ".join(errors):
                        check("bridges stay with the host" in msg, "%s: -pci refuses a bridge, pci add: %s" % (a, msg))
                    continue
                check(rc == 0, "%s: -pci takes it but pci add refused: %s" % (a, msg))
                if rc != 0:
                    continue
                check(len(new_adds) == 1 and len(adds) == 1, "%s: device_add %s vs plan %s" % (a, new_adds, adds))
                if len(new_adds) == 1 and len(adds) == 1:
                    strip = lambda d: {k: v for k, v in d.items() if k != "bus"}  # noqa: E731 (the root port differs)
                    check(strip(new_adds[0]) == strip(adds[0]), "%s: device_add %s vs plan %s" % (a, new_adds[0], adds[0]))
                check(new_binds == binds, "%s: bind %s vs plan %s" % (a, new_binds, binds))
                rc, msg = vfioctl(env, "pci", "del", a, "force")
                check(rc == 0, "%s: pci del: %s" % (a, msg))
        finally:
            sup.terminate()
            sup.wait(timeout=60)
        if sup.returncode != 0:
            failures.append("vfio exited %d" % sup.returncode)
        for f in failures:
            print("FAIL: " + f)
        if failures:
            print("--- vfio output:\n" + open(os.path.join(tmp, "out")).read())
            return 1
        print("ok: -pci and pci add agree on all %d devices (%d taken, %d refused, %d display functions)" %
              (len(addresses), seen["taken"], seen["refused"], seen["display"]))
        return 0


if __name__ == "__main__":
    sys.exit(main())
