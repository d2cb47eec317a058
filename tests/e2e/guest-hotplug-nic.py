#!/usr/bin/env python3
"""e2e: a virtio NIC hot-added over QMP into a spare pcie-root-port shows up in
the running guest (as a PCI device bound to virtio-pci, then as an interface
with the MAC given), and goes away again after device_del (the guest releases
it, QEMU reports DEVICE_DELETED). Uses the test guest in vfiotest=wait mode."""

import guestlib

MAC = "52:54:00:00:00:02"


def test(gdir):
    q = guestlib.Qemu(gdir, "vfiotest=wait", qmp=True, extra=[
        "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01",
        "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1"])
    try:
        _, at = q.wait_line(r"VFIO-TEST: ready$", 120)
        q.command("netdev_add", type="user", id="net1")
        q.command("device_add", driver="virtio-net-pci", id="nic1", netdev="net1", bus="rp1", mac=MAC)
        # First the PCI device behind the root port (modern virtio-net,
        # 1af4:1041, bound to virtio-pci), then its interface.
        m, at = q.wait_line(r"VFIO-TEST: pci-added (\S+) (\S+) (\S+)$", 60, at)
        if m.group(2) != "1af4:1041" or m.group(3) != "virtio-pci":
            q.fail(f"hot-added PCI device reported as {m.group(0)!r}, expected 1af4:1041 bound to virtio-pci")
        pci_addr = m.group(1)
        m, at = q.wait_line(r"VFIO-TEST: iface-added (\S+) (\S+) (\S+)$", 60, at)
        if m.group(2) != MAC or m.group(3) != "virtio_net":
            q.fail(f"hot-added interface reported as {m.group(0)!r}, expected MAC {MAC} driver virtio_net")
        name = m.group(1)
        q.command("device_del", id="nic1")
        q.wait_line(rf"VFIO-TEST: iface-removed {name}$", 60, at)
        q.wait_line(rf"VFIO-TEST: pci-removed {pci_addr}$", 60, at)
        # QEMU also reports its virtio-backend child (a path, no device id).
        q.wait_event("DEVICE_DELETED", 60, device="nic1")
        # End cleanly: the guest powers off on the ACPI power button.
        q.command("system_powerdown")
        q.wait_event("SHUTDOWN", 60)
        q.wait_exit(60)
    finally:
        q.close()


if __name__ == "__main__":
    guestlib.main(test)
