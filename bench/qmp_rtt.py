#!/usr/bin/env python3
"""Benchmark 2: QMP round trips (query-status) against real QEMU, through the
real client (src/qmp) and through a minimal raw loop on the same socket of
the same QEMU, in alternating blocks, so the client's overhead beyond QEMU's own reply time shows. The
measuring is done by bench/qmp-rtt.c; this prints the table."""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

N = int(os.environ.get("BENCH_QMP_N", "10000"))
TARGET_OVERHEAD_S = 50e-6


def main():
    build = sys.argv[2]
    qemu = os.environ.get("VFIO_QEMU") or shutil.which("qemu-system-x86_64")
    title = "2. QMP round trip (query-status) against real QEMU"
    if qemu is None:
        benchlib.table(title, "needs qemu-system-x86_64", [("QMP round trip", "not measured: no QEMU", "", "")])
        return
    out = subprocess.run([os.path.join(build, "bench/qmp-rtt"), qemu, str(N)], capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise SystemExit("qmp_rtt: qmp-rtt failed: " + out.stderr)
    r = json.loads(out.stdout)
    c, raw = r["client"], r["raw"]
    lat_over = c["p50_s"] - raw["p50_s"]
    cpu_over = c["cpu_per_cmd_s"]
    rows = [
        ("commands per second, client", "%.0f /s" % c["per_s"], "", ""),
        ("latency p50 / p99, client", "%s / %s" % (benchlib.fmt_us(c["p50_s"]), benchlib.fmt_us(c["p99_s"])),
         "", ""),
        ("latency p50 / p99, raw loop (QEMU's own reply time)",
         "%s / %s" % (benchlib.fmt_us(raw["p50_s"]), benchlib.fmt_us(raw["p99_s"])), "", ""),
        ("client overhead: p50 latency beyond the raw loop", benchlib.fmt_us(lat_over), "< 50 µs",
         benchlib.verdict(lat_over < TARGET_OVERHEAD_S)),
        ("client CPU per command (user+sys, getrusage)", benchlib.fmt_us(cpu_over), "< 50 µs",
         benchlib.verdict(cpu_over < TARGET_OVERHEAD_S)),
        ("raw loop CPU per command (write + blocking read syscalls only)", benchlib.fmt_us(raw["cpu_per_cmd_s"]),
         "", ""),
        ("client CPU beyond the raw loop's, per command", benchlib.fmt_us(cpu_over - raw["cpu_per_cmd_s"]), "", ""),
    ]
    benchlib.table(
        title,
        "%d sequential query-status commands (one in flight) on a socketpair monitor (`-chardev "
        "socket,id=qmp,fd=3 -mon chardev=qmp,mode=control`) of %s (`-S -machine q35 -accel tcg`), "
        "alternating blocks of 100 by a raw write/read-to-newline loop and by the real client (qmp_send, "
        "libevent loop until the callback) on the same QEMU, so both see the same QEMU reply time; latency is CLOCK_MONOTONIC from before the "
        "send to the reply; CPU is getrusage(RUSAGE_SELF) over each loop's blocks divided by N. "
        "A negative latency overhead means the client's round trips were the shorter ones (here the "
        "blocking read wakes later than the client's epoll): no added latency this method can see, so the "
        "client's CPU beyond the raw loop's is the figure that shows its cost."
        % (N, benchlib.qemu_version(qemu)), rows)


if __name__ == "__main__":
    main()
