#!/usr/bin/env python3
"""e2e: QMP system_powerdown (the ACPI power button) makes the running test
guest power off by itself: it reports "powerdown", QEMU emits SHUTDOWN with
guest: true, and the QEMU process exits with status 0."""

import guestlib


def test(gdir):
    q = guestlib.Qemu(gdir, "vfiotest=wait", qmp=True)
    try:
        q.wait_line(r"VFIO-TEST: ready$", 120)
        q.command("system_powerdown")
        q.wait_line(r"VFIO-TEST: powerdown$", 60)
        ev = q.wait_event("SHUTDOWN", 60)
        if ev["data"].get("guest") is not True:
            q.fail(f"SHUTDOWN event {ev['data']!r}: expected guest: true (a power off by the guest)")
        rc = q.wait_exit(60)
        if rc != 0:
            q.fail(f"QEMU exited with status {rc}, expected 0")
    finally:
        q.close()


if __name__ == "__main__":
    guestlib.main(test)
