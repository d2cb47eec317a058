#!/usr/bin/env python3
"""Benchmark 1: plan + dry-run time against host-root fixtures of growing
size: the desktop preset, then 10, 100, 1 000 and 10 000 PCI devices and
1 000 USB devices added to it. The real vfio binary runs the whole dry run
(read the host, plan, print) with its output to /dev/null; each size is
timed as wall clock from fork to exit, median of RUNS runs (after one
warm-up run, so the fixture is in the page cache). Growth is judged from the
cost per added device between sizes, which must stay flat (linear)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
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


def time_run(vfio, root, args):
    env = dict(os.environ, VFIO_HOST_ROOT=root, VFIO_MAC_SEED="1", NO_COLOR="1")
    cmd = [vfio] + args
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)   # warm-up
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        times.append(time.perf_counter() - t0)
        if rc not in (0, 1):
            raise SystemExit("plan_time: %s exited %d on %s" % (" ".join(cmd), rc, root))
    times.sort()
    return times[len(times) // 2]


def main():
    src, build = sys.argv[1], sys.argv[2]
    vfio = os.path.join(build, "src/supervisor/vfio")
    mkhost = os.path.join(src, "tests/fixtures/mkhost.py")
    base = preset(src)
    sizes = [("desktop preset", 0, 0), ("+10 PCI", 10, 0), ("+100 PCI", 100, 0), ("+1 000 PCI", 1000, 0),
             ("+10 000 PCI", 10000, 0), ("+1 000 USB", 0, 1000)]
    args = ["-pci", "NVIDIA|0000:00:17.0", "-usb", "Logitech", "-memory", "8G", "-nonet"]
    tmp = tempfile.mkdtemp(prefix="vfio-bench-plan-")
    results = []
    try:
        for label, n_pci, n_usb in sizes:
            root = os.path.join(tmp, "h%d-%d" % (n_pci, n_usb))
            spec_file = root + ".json"
            with open(spec_file, "w") as f:
                json.dump(spec_with(base, n_pci, n_usb), f)
            subprocess.run([sys.executable, mkhost, "--spec", spec_file, root], check=True,
                           stdout=subprocess.DEVNULL)
            t = time_run(vfio, root, args)
            results.append((label, n_pci, n_usb, t, len(base["pci"]) + n_pci, len(base["usb"]) + n_usb))
            shutil.rmtree(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    t0 = results[0][3]
    rows.append(("dry run, desktop preset (%d PCI, %d USB devices)" % (results[0][4], results[0][5]),
                 benchlib.fmt_ms(t0), "< 10 ms", benchlib.verdict(t0 < TARGET_DESKTOP_S)))
    per_pci = {}
    for label, n_pci, n_usb, t, tot_pci, tot_usb in results[1:]:
        added = n_pci + n_usb
        cost = (t - t0) / added
        if n_pci:
            per_pci[n_pci] = cost
        rows.append(("dry run, %s (%d PCI, %d USB)" % (label, tot_pci, tot_usb),
                     "%s; %s per added device" % (benchlib.fmt_ms(t), benchlib.fmt_us(cost)), "", ""))
    # Linear: the cost of one more device at 10 000 is within 2x of that at 1 000.
    ratio = per_pci[10000] / per_pci[1000] if per_pci.get(1000, 0) > 0 else float("inf")
    rows.append(("growth: cost per added PCI device, 10 000 vs 1 000", "%.2fx" % ratio,
                 "linear (ratio ≤ 2)", benchlib.verdict(ratio <= 2.0)))
    benchlib.table(
        "1. Plan and dry-run time by host size",
        "wall clock of the real `vfio %s` (whole process: read the fixture host under "
        "VFIO_HOST_ROOT, plan, print to /dev/null), median of %d runs after a warm-up run; fixtures "
        "from tests/fixtures/mkhost.py (the desktop preset plus generated devices, each PCI device in its "
        "own IOMMU group). Per added device = (time - desktop time) / devices added." % (" ".join(args), RUNS),
        rows)


if __name__ == "__main__":
    main()
