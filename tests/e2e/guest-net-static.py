#!/usr/bin/env python3
"""e2e: with vfiotest=net vfiotest.ip=ADDR/LEN the guest sets that address on
eth0 without DHCP (as on a host tap with no DHCP server), reports it, reaches
QEMU's user-networking gateway with it, and powers off by itself."""

import guestlib


def test(gdir):
    q = guestlib.Qemu(gdir, "vfiotest=net vfiotest.ip=10.0.2.16/24 vfiotest.ping=10.0.2.2",
                      extra=["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"])
    try:
        m, at = q.wait_line(r"VFIO-TEST: (ip \S+)$", 120)
        if m.group(1) != "ip 10.0.2.16/24":
            q.fail(f"guest reported {m.group(1)!r}, expected 'ip 10.0.2.16/24'")
        for r in q.reports():
            if r.startswith("dhcp"):
                q.fail(f"guest ran DHCP ({r!r}) although a static address was given")
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
