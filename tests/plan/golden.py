#!/usr/bin/env python3
"""Golden tests (OpenBSD vmd style .ok files): every example command of the
original README, run through the real vfio binary against the desktop
fixture host, compared byte for byte with tests/plan/golden/NAME.ok.

Regenerate after an intended change with:
    VFIO_REGEN_GOLDEN=1 meson test -C build plan-golden
and review the diff like code.
"""
import os
import shlex
import subprocess
import sys
import tempfile

SRC = os.environ["VFIO_SRCDIR"]
VFIO = os.environ["VFIO"]
MKHOST = os.environ["MKHOST"]
GOLDEN = os.path.join(SRC, "tests", "plan", "golden")
REGEN = os.environ.get("VFIO_REGEN_GOLDEN") == "1"

# Files the README's examples name, created inside the fixture host root.
FILES = [
    "/root/windows.img", "/tmp/Installer.iso", "/dev/zvol/poolName/windows", "/dev/zvol/myPool/myVMDisk",
    "/tmp/Win10_20H2_v2_English_x64.iso", "/nas/common/ISOs/virtio-win-0.1.189.iso", "/tmp/win.qcow2",
    "/boot/vmlinuz-linux", "/boot/initramfs-linux.img", "/zfstmp/kernelbuild/test.ext4.qcow2",
]

# (name, environment additions, arguments). "-run" is left out as the README
# leaves it out ("for obvious reasons"); -json where the structure matters,
# the plain rundown where the text does.
CASES = [
    ("readme-regular-window", {"DISPLAY": ":0"},
     ["-image", "/root/windows.img", "-imageformat", "raw", "-iso", "/tmp/Installer.iso"]),
    ("readme-regular-window-json", {"DISPLAY": ":0"},
     ["-json", "-image", "/root/windows.img", "-imageformat", "raw", "-iso", "/tmp/Installer.iso"]),
    ("readme-pinvcpus-0-5", {},
     ["-json", "-image", "/root/windows.img", "-imageformat", "raw", "-pinvcpus", "0,1,2,3,4,5"]),
    ("readme-passthrough-old-bridge-form", {},
     ["-image", "/dev/zvol/poolName/windows,format=raw", "-bridge", "tap0,br0,eth0",
      "-usb", "SteelSeries|Audio-Technica|Holtek|Xbox", "-pci", "NVIDIA"]),
    ("readme-passthrough", {},
     ["-json", "-image", "/dev/zvol/poolName/windows,format=raw", "-tap", "tap0", "-bridge", "br0",
      "-hostint", "enp3s0", "-usb", "SteelSeries|Audio-Technica|Holtek|Xbox", "-pci", "NVIDIA"]),
    ("readme-kernel-boot", {},
     ["-m", "8G", "-kernel", "/boot/vmlinuz-linux", "-append", "root=/dev/sda1 rw ", "-initramfs",
      "/boot/initramfs-linux.img", "-image", "/zfstmp/kernelbuild/test.ext4.qcow2", "-imageformat", "qcow2",
      "-novirtio"]),
    ("readme-install-windows", {"DISPLAY": ":0"},
     ["-json", "-image", "/dev/zvol/myPool/myVMDisk", "-imageformat", "raw", "-iso",
      "/tmp/Win10_20H2_v2_English_x64.iso", "-iso", "/nas/common/ISOs/virtio-win-0.1.189.iso"]),
    ("readme-install-windows-novirtio", {"DISPLAY": ":0"},
     ["-json", "-image", "/dev/zvol/myPool/myVMDisk", "-imageformat", "raw", "-iso",
      "/tmp/Win10_20H2_v2_English_x64.iso", "-novirtio"]),
    ("readme-veteran-old-bridge-form", {},
     ["-mem", "12G", "-image", "/tmp/win.qcow2", "-imageformat", "qcow2", "-bridge", "tap0,br0,eth0",
      "-pci", "NVIDIA|USB", "-pinvcpus", "0,12,1,13,2,14,3,15", "-ignorevtcon"]),
    ("readme-veteran", {},
     ["-json", "-mem", "12G", "-image", "/tmp/win.qcow2", "-imageformat", "qcow2", "-tap", "tap0", "-bridge",
      "br0", "-hostint", "enp3s0", "-pci", "NVIDIA|USB", "-pinvcpus", "0,8,1,9,2,10,3,11", "-ignorevtcon"]),
    ("readme-pci-nvidia-usb", {}, ["-PCI", "NVIDIA|USB"]),
    ("readme-usb-regex", {}, ["-json", "-usb", "AT2020USB|SteelSeries|Ducky|Xbox|1425:5769"]),
    ("readme-pci-regex", {}, ["-json", "-pci", "Realtek|NVIDIA|10ec:8168"]),
    ("readme-portforward", {}, ["-json", "-portforward", "tcp:2222:22", "-portforward", "tcp:33389:3389"]),
    ("readme-pinvcpus-0-2-4-8", {}, ["-pinvcpus", "0,2,4,8"]),
    ("readme-iommugroups", {}, ["-iommugroups"]),
    ("readme-cputhreads", {}, ["-cputhreads"]),
    ("readme-hyperv-hugepages", {}, ["-json", "-m", "8G", "-hugepages", "-hyperv"]),
    ("readme-win11-no-vars", {}, ["-win11"]),
]


# The other fixture hosts: a shared IOMMU group and identical GPUs, and a
# host with the IOMMU off (error paths and -force).
PRESET_CASES = [
    ("shared-group-sata-alone", "shared-group", {}, ["-pci", "SATA"]),
    ("shared-group-whole", "shared-group", {}, ["-json", "-pci", "SATA|Realtek"]),
    ("shared-group-second-identical-gpu", "shared-group", {}, ["-json", "-pci", "0000:02:00"]),
    ("iommu-off-pci", "iommu-off", {}, ["-pci", "USB"]),
    ("iommu-off-pci-force", "iommu-off", {}, ["-json", "-pci", "USB", "-force"]),
    ("iommu-off-iommugroups", "iommu-off", {}, ["-iommugroups"]),
    ("iommu-off-cputhreads-no-smt", "iommu-off", {}, ["-cputhreads"]),
    ("shared-group-cputhreads", "shared-group", {}, ["-cputhreads"]),
]


def run_case(root, env_add, args):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SUDO_UID", "SUDO_GID", "SUDO_USER", "VFIO_QEMU", "VFIO_SWTPM",
                        "VFIO_DEBUG")}
    env.update({"VFIO_HOST_ROOT": root, "NO_COLOR": "1"})
    env.update(env_add)
    # No terminal, as under systemd: the console goes to console.log.
    p = subprocess.run([VFIO] + args, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    envs = "".join("%s=%s " % kv for kv in sorted(env_add.items()))
    text = "$ %svfio %s\n" % (envs, " ".join(shlex.quote(a) for a in args))
    text += "--- exit %d\n--- stdout\n%s--- stderr\n%s" % (p.returncode, p.stdout, p.stderr)
    return text.replace(root, "@ROOT@")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "desktop")
        subprocess.run([sys.executable, MKHOST, "--preset", "desktop", root], check=True,
                       stdout=subprocess.DEVNULL)
        for f in FILES:
            full = os.path.join(root, f.lstrip("/"))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as fh:
                fh.write(b"\0" * 4096)
        roots = {"desktop": root}
        for preset in sorted({c[1] for c in PRESET_CASES}):
            roots[preset] = os.path.join(tmp, preset)
            subprocess.run([sys.executable, MKHOST, "--preset", preset, roots[preset]], check=True,
                           stdout=subprocess.DEVNULL)
        failed = 0
        cases = [(n, "desktop", e, a) for n, e, a in CASES] + PRESET_CASES
        for name, preset, env_add, args in cases:
            got = run_case(roots[preset], env_add, args)
            path = os.path.join(GOLDEN, name + ".ok")
            if REGEN:
                with open(path, "w") as fh:
                    fh.write(got)
                print("wrote %s" % path)
                continue
            try:
                with open(path) as fh:
                    want = fh.read()
            except FileNotFoundError:
                print("FAIL %s: no golden file %s (run with VFIO_REGEN_GOLDEN=1)" % (name, path))
                failed += 1
                continue
            if got != want:
                import difflib
                print("FAIL %s:" % name)
                sys.stdout.writelines(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                                           path, "actual"))
                failed += 1
            else:
                print("ok %s" % name)
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
