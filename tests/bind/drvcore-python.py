#!/usr/bin/env python3
"""The simulated driver core works for Python test scripts too (other areas'
end-to-end tests are Python or shell): plain open().write() on the fixture
moves drivers and reports the kernel's errnos. Run with the mock preloaded."""
import errno
import os
import shutil
import subprocess
import sys
import tempfile

if "drvcore" not in os.environ.get("LD_PRELOAD", ""):
    print("drvcore-python: the mock is not preloaded", file=sys.stderr)
    sys.exit(1)

top = tempfile.mkdtemp(prefix="vfio-drvcore-py-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
root = os.path.join(top, "root")
env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "VFIO_HOST_ROOT")}
subprocess.run([sys.executable, os.environ["MKHOST"], "--preset", "desktop", root], env=env, check=True)
os.environ["VFIO_HOST_ROOT"] = root
failures = 0


def check(what, cond):
    global failures
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures += 1


def write(path, value):
    try:
        with open(root + path, "w") as f:
            f.write(value)
        return 0
    except OSError as e:
        return e.errno


def driver(addr):
    p = root + "/sys/bus/pci/devices/%s/driver" % addr
    return os.path.basename(os.readlink(p)) if os.path.lexists(p) else ""


nvme = "0000:02:00.0"
check("override written", write("/sys/bus/pci/devices/%s/driver_override" % nvme, "vfio-pci\n") == 0)
check("unbind from nvme", write("/sys/bus/pci/drivers/nvme/unbind", nvme) == 0)
check("probe", write("/sys/bus/pci/drivers_probe", nvme) == 0)
check("now on vfio-pci", driver(nvme) == "vfio-pci")
check("/dev/vfio/11 appeared", os.path.exists(root + "/dev/vfio/11"))
check("second bind is EBUSY", write("/sys/bus/pci/drivers/vfio-pci/bind", nvme) == errno.EBUSY)
check("unbind from the wrong driver is ENODEV", write("/sys/bus/pci/drivers/nvme/unbind", nvme) == errno.ENODEV)
check("remove is not simulated: EIO", write("/sys/bus/pci/devices/%s/remove" % nvme, "1") == errno.EIO)
shutil.rmtree(top)
sys.exit(1 if failures else 0)
