"""Shared pieces of the benchmarks: the machine line, percentiles, and the
markdown table every benchmark prints (figure, target, verdict, method), so
runs on different machines and commits can be compared."""
import os
import platform
import subprocess


def machine():
    """One line naming the machine: CPU model, cores, kernel, memory."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = ", %.1f GiB RAM" % (kib / 1048576)
    except (OSError, ValueError, IndexError):
        pass
    return "%s, %d CPUs%s, Linux %s" % (model, os.cpu_count() or 0, mem, platform.release())


def qemu_version(qemu="qemu-system-x86_64"):
    try:
        out = subprocess.run([qemu, "-version"], capture_output=True, text=True, timeout=30).stdout
        return out.splitlines()[0].strip() if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "not available"


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def fmt_us(seconds):
    return "%.1f µs" % (seconds * 1e6)


def fmt_ms(seconds):
    return "%.2f ms" % (seconds * 1e3)


def table(title, method, rows, notes=()):
    """Print one benchmark's section. rows: (what, figure, target, verdict)."""
    print("## %s\n" % title)
    print("Machine: %s  " % machine())
    print("Method: %s\n" % method)
    print("| what | figure | target | verdict |")
    print("|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %s |" % tuple(r))
    for n in notes:
        print("\n%s" % n)
    print()


def verdict(ok):
    return "met" if ok else "**missed**"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"
