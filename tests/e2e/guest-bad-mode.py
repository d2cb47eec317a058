#!/usr/bin/env python3
"""e2e: a vfiotest= value the guest does not know is reported as an error
naming the value and the valid ones, and the guest powers off instead of
hanging (QEMU exits by itself)."""

import guestlib


def test(gdir):
    q = guestlib.Qemu(gdir, "vfiotest=bogus")
    try:
        m, at = q.wait_line(r"VFIO-TEST: error (.*)$", 120)
        if "vfiotest=bogus" not in m.group(1) or "poweroff, wait or net" not in m.group(1):
            q.fail(f"error {m.group(1)!r} does not name the bad value and the valid ones")
        q.wait_line(r"VFIO-TEST: poweroff$", 60, at)
        rc = q.wait_exit(60)
        if rc != 0:
            q.fail(f"QEMU exited with status {rc}, expected 0")
    finally:
        q.close()


if __name__ == "__main__":
    guestlib.main(test)
