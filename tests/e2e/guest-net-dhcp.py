#!/usr/bin/env python3
"""e2e: with vfiotest=net on QEMU user networking the guest gets its address by
DHCP (slirp hands out 10.0.2.15), reaches the gateway 10.0.2.2 with ping, and
powers off by itself."""

import guestlib


def test(gdir):
    q = guestlib.Qemu(gdir, "vfiotest=net vfiotest.ping=10.0.2.2",
                      extra=["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"])
    try:
        m, at = q.wait_line(r"VFIO-TEST: (dhcp \S+)$", 120)
        if m.group(1) != "dhcp 10.0.2.15":
            q.fail(f"guest reported {m.group(1)!r}, expected 'dhcp 10.0.2.15' from QEMU's user networking")
        m, at = q.wait_line(r"VFIO-TEST: (ping \S+)$", 60, at)
        if m.group(1) != "ping ok":
            q.fail(f"guest reported {m.group(1)!r}, expected 'ping ok' for the gateway 10.0.2.2")
        rc = q.wait_exit(60)
        if rc != 0:
            q.fail(f"QEMU exited with status {rc}, expected 0")
    finally:
        q.close()


if __name__ == "__main__":
    guestlib.main(test)
