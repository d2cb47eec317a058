#!/usr/bin/env python3
"""Benchmark 1: plan + dry-run time against host-root fixtures of growing
size: the desktop preset, then 10, 100, 1 000 and 10 000 PCI devices and
1 000 USB devices added to it. The real vfio binary runs the whole dry run
(read the host, plan, print) with its output to /dev/null. Each size is
timed by the median of RUNS runs of the process's CPU time (user + sys, so
other load on the machine counts less than in wall clock, which is shown
too), after one warm-up run so the fixture is in the page cache. Growth is
judged from the cost per added device, which must stay flat (linear)."""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "15"))
TARGET_DESKTOP_S = 0.010


def preset(src):
    with open(os.path.join(src, "tests/fixtures/presets/desktop.json")) as f:
        return json.load(f)


def spec_with(base, n_pci, n_usb):
    """The desktop plus n_pci endpoints (each in its own IOMMU group, on buses
    0x10 and up, eight functions per slot) and n_usb devices on extra buses."""
    spec = json.loads(json.dumps(base))
    group = 100
    for i in range(n_pci):
        bus, rest = divmod(i, 256)
        dev, fn = divmod(rest, 8)
        spec["pci"].append({
            "addr": "0000:%02x:%02x.%d" % (0x10 + bus, dev, fn), "vendor": 0x8086, "device": 0x1533,
            "class": 0x020000, "rev": 3, "driver": "igb", "group": group, "multifunction": fn == 0,
            "subsys": [0x1043, 0x8694]})
        group += 1
    for i in range(n_usb):
        bus, port = divmod(i, 100)
        spec["usb"].append({
            "bus": 10 + bus, "dev": port + 2, "port": "%d-%d" % (10 + bus, port + 1), "vendor": 0x1d50,
            "product": 0x6089 + i % 16, "class": 0, "manufacturer": "Bench", "product_name": "Device %d" % i,
            "controller": "0000:00:14.0"})
    return spec


def fixture(cache, mkhost, spec, name):
    """The fixture tree for spec, built once and reused while the spec is the same."""
    root = os.path.join(cache, name)
    text = json.dumps(spec, sort_keys=True)
    try:
        with open(root + ".json") as f:
            if f.read() == text and os.path.isdir(root):
                return root
    except OSError:
        pass
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(cache, exist_ok=True)
    with open(root + ".json", "w") as f:
        f.write(text)
    subprocess.run([sys.executable, mkhost, "--spec", root + ".json", root], check=True,
                   stdout=subprocess.DEVNULL)
    return root


def time_run(vfio, root, args):
    """Median CPU time (user + sys of the vfio process, from wait4) and median
    wall time over RUNS runs, after one warm-up run."""
    env = dict(os.environ, VFIO_HOST_ROOT=root, NO_COLOR="1")
    cmd = [vfio] + args
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)   # warm-up
    cpu, wall = [], []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall.append(time.perf_counter() - t0)
        p.returncode = os.waitstatus_to_exitcode(status)
        cpu.append(ru.ru_utime + ru.ru_stime)
        if p.returncode not in (0, 1):
            raise SystemExit("plan_time: %s exited %d on %s" % (" ".join(cmd), p.returncode, root))
    return benchlib.percentile(cpu, 50), benchlib.percentile(wall, 50)


def main():
    src, build = sys.argv[1], sys.argv[2]
    vfio = os.path.join(build, "src/supervisor/vfio")
    mkhost = os.path.join(src, "tests/fixtures/mkhost.py")
    base = preset(src)
    sizes = [("desktop preset", 0, 0), ("+10 PCI", 10, 0), ("+100 PCI", 100, 0), ("+1 000 PCI", 1000, 0),
             ("+10 000 PCI", 10000, 0), ("+1 000 USB", 0, 1000)]
    args = ["-pci", "NVIDIA|0000:00:17.0", "-usb", "Logitech", "-memory", "8G", "-nonet"]
    # Building a 10 000-device tree takes minutes: keep the trees between runs.
    cache = os.path.join(build, "bench-fixtures")
    results = []
    try:
        for label, n_pci, n_usb in sizes:
            root = fixture(cache, mkhost, spec_with(base, n_pci, n_usb), "h%d-%d" % (n_pci, n_usb))
            t = time_run(vfio, root, args)
            print("plan_time: %s: %.2f ms CPU" % (label, t[0] * 1e3), file=sys.stderr)
            results.append((label, n_pci, n_usb, t, len(base["pci"]) + n_pci, len(base["usb"]) + n_usb))
    finally:
        pass

    rows = []
    c0, w0 = results[0][3]
    rows.append(("dry run, desktop preset (%d PCI, %d USB devices)" % (results[0][4], results[0][5]),
                 "%s CPU (%s wall)" % (benchlib.fmt_ms(c0), benchlib.fmt_ms(w0)), "< 10 ms",
                 benchlib.verdict(c0 < TARGET_DESKTOP_S)))
    per_pci = {}
    for label, n_pci, n_usb, (c, w), tot_pci, tot_usb in results[1:]:
        added = n_pci + n_usb
        cost = (c - c0) / added
        if n_pci:
            per_pci[n_pci] = cost
        rows.append(("dry run, %s (%d PCI, %d USB)" % (label, tot_pci, tot_usb),
                     "%s CPU (%s wall); %s CPU per added device" % (benchlib.fmt_ms(c), benchlib.fmt_ms(w),
                                                                    benchlib.fmt_us(cost)), "", ""))
    # Linear: one more device costs the same at 10 000 as at 1 000 (within 2x).
    ratio = per_pci[10000] / per_pci[1000] if per_pci.get(1000, 0) > 0 else float("inf")
    rows.append(("growth: CPU per added PCI device, 10 000 vs 1 000", "%.2fx" % ratio,
                 "linear (ratio ≤ 2)", benchlib.verdict(ratio <= 2.0)))
    benchlib.table(
        "1. Plan and dry-run time by host size",
        "the real `vfio %s` as a whole process (read the fixture host under VFIO_HOST_ROOT, plan, print to "
        "/dev/null); CPU = user + sys of the process from wait4(), wall = fork to exit; medians of %d runs "
        "after a warm-up run. Fixtures from tests/fixtures/mkhost.py: the desktop preset plus generated "
        "devices, each PCI device in its own IOMMU group. Per added device = (CPU - desktop CPU) / devices "
        "added. Load average when measured: %s." % (" ".join(args), RUNS, benchlib.loadavg()),
        rows)

if __name__ == "__main__":
    main()
