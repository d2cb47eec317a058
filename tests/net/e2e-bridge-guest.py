#!/usr/bin/env python3
"""End to end: `vfio -run -bridge br0 -hostint lan0` in a network namespace of
its own, where a veth pair plays the LAN. vfio makes br0 from lan0 (moving
lan0's address to it), makes a tap on br0, hands the tap to real QEMU with
getfd, and the test guest, with a static address on the LAN, pings the host's
address through the tap and the bridge. After the run the namespace's links,
addresses and routes are exactly as before. Skips (77) without root, network
namespaces, or the test guest.
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

src = os.environ["VFIO_SRCDIR"]
build = os.environ["VFIO_BUILDDIR"]
sys.path.insert(0, os.path.join(src, "tests", "e2e"))
import guestlib  # noqa: E402


def fail(msg, out=""):
    print("FAIL: " + msg)
    if out:
        print("--- vfio output:\n" + out)
    sys.exit(1)


def ip(*args):
    subprocess.run(["ip", *args], check=True)


def netdump():
    """Links, addresses and routes, without what changes by itself (counters,
    lifetimes, the kernel's interface indexes)."""
    out = []
    for cmd in (["-j", "link", "show"], ["-j", "addr", "show"],
                ["-j", "route", "show", "table", "all"], ["-j", "-6", "route", "show", "table", "all"]):
        for o in json.loads(subprocess.run(["ip", *cmd], check=True, stdout=subprocess.PIPE,
                                           text=True).stdout or "[]"):
            for k in ("ifindex", "link_index", "stats64", "txqlen", "operstate", "flags", "linkmode",
                      "group", "qdisc", "link"):
                o.pop(k, None)
            for a in o.get("addr_info", []):
                for k in ("valid_life_time", "preferred_life_time"):
                    a.pop(k, None)
            out.append(json.dumps(o, sort_keys=True))
    return sorted(out)


def in_namespace():
    gdir = os.environ["VFIO_E2E_GUEST"]
    ip("link", "set", "lo", "up")
    with open("/proc/sys/net/ipv6/conf/default/accept_dad", "w") as f:
        f.write("0")
    ip("link", "add", "lan0", "address", "02:11:22:33:44:55", "type", "veth", "peer", "name", "lan0p")
    ip("link", "set", "lan0", "up")
    ip("link", "set", "lan0p", "up")
    ip("addr", "add", "192.168.50.2/24", "dev", "lan0")
    ip("route", "add", "default", "via", "192.168.50.1", "dev", "lan0")

    with tempfile.TemporaryDirectory(prefix="vfio-e2e-net-") as tmp:
        host = os.path.join(tmp, "host")
        spec = os.path.join(tmp, "spec.json")
        with open(spec, "w") as f:
            json.dump({"cpus": {"cores": 2, "threads": 1}, "mem_kib": 4096000,
                       "mem_available_kib": 3000000, "kvm": False, "vhost_net": False,
                       "net": [{"name": "lan0", "mac": "02:11:22:33:44:55"}]}, f)
        subprocess.run([sys.executable, os.environ["MKHOST"], "--spec", spec, host], check=True)
        # The session opens the tap through <host root>/dev/net/tun: make it
        # the real device there (the fixture has a plain file).
        tun = os.path.join(host, "dev", "net", "tun")
        os.unlink(tun)
        os.mknod(tun, stat.S_IFCHR | 0o666, os.makedev(10, 200))
        inroot = os.path.join(host, gdir.lstrip("/"))
        os.makedirs(inroot)
        for name in ("vmlinuz", "initrd.img"):
            os.symlink(os.path.join(gdir, name), os.path.join(inroot, name))

        before = netdump()
        env = dict(os.environ, VFIO_HOST_ROOT=host, VFIO_NMCLI="/nonexistent/nmcli")
        env.pop("VFIO_QEMU", None)
        env.pop("SUDO_UID", None)
        env.pop("SUDO_GID", None)
        argv = [os.path.join(build, "src", "supervisor", "vfio"), "-run", "-accel", "tcg",
                "-noBios", "-m", "256M", "-name", "e2enet", "-bridge", "br0", "-hostint", "lan0",
                "-kernel", os.path.join(gdir, "vmlinuz"), "-initrd", os.path.join(gdir, "initrd.img"),
                "-cmdline", "console=ttyS0 panic=-1 vfiotest=net vfiotest.ip=192.168.50.10/24 "
                "vfiotest.ping=192.168.50.2"]
        try:
            r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=240)
        except subprocess.TimeoutExpired as e:
            fail("vfio -run did not finish within 240 s", e.stdout or "")
        out = r.stdout
        console = os.path.join(host, "var", "lib", "vfio", "e2enet", "console.log")
        text = open(console, errors="replace").read() if os.path.exists(console) else ""
        if r.returncode != 0:
            fail("vfio -run exited with %d, want 0\n--- console:\n%s" % (r.returncode, text[-3000:]), out)
        if "VFIO-TEST: ip 192.168.50.10/24" not in text:
            fail("the guest did not set its address\n--- console:\n" + text[-3000:], out)
        if "VFIO-TEST: ping ok" not in text:
            fail("the guest could not ping the host's address 192.168.50.2 (moved to br0) through "
                 "the tap\n--- console:\n" + text[-3000:], out)
        after = netdump()
        if before != after:
            fail("the namespace's network differs after the run:\n" + "\n".join(
                sorted(set(before) ^ set(after))), out)
    print("ok: bridge made from lan0, tap handed to QEMU, the guest pinged the host through it, "
          "network restored")


def main():
    if os.environ.get("VFIO_E2E_NETNS") == "1":
        in_namespace()
        return
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        guestlib.skip("needs root, unshare and ip for a network namespace")
    if subprocess.run(["unshare", "-n", "true"]).returncode != 0:
        guestlib.skip("cannot create a network namespace here")
    gdir = guestlib.guest_dir()     # apt needs the host's network: build it out here
    r = subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__)],
                       env=dict(os.environ, VFIO_E2E_NETNS="1", VFIO_E2E_GUEST=gdir))
    sys.exit(r.returncode)


main()
