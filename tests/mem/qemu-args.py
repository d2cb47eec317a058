#!/usr/bin/env python3
"""Real QEMU accepts the memory, audio, agent, SPICE, Looking Glass and TPM
arguments vfio generates for -hugepages, -hostaudio, -qemu-agent, -spice,
-looking-glass and -tpm (the forms src/supervisor/plan.c emits, ids
included): each set is started with -S (QMP on fd 3 over a socketpair, as the
supervisor does), checked over QMP, then `quit`.
Skips (77) when qemu-system-x86_64 is missing. Python standard library only."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

QEMU = os.environ.get("VFIO_QEMU") or shutil.which("qemu-system-x86_64")
BASE = ["-S", "-accel", "tcg", "-display", "none", "-nodefaults", "-machine", "q35",
        "-chardev", "socket,id=qmp,fd=3", "-mon", "chardev=qmp,mode=control"]


class QMP:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        sock.settimeout(30)

    def recv(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("QMP closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self.recv()
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError("%s: %s" % (name, reply["error"]))
            return reply["return"]


def start(args):
    """QEMU with args; returns (process, qmp)."""
    ours, theirs = socket.socketpair()
    fd = theirs.fileno()

    def child():
        # fd 3 is the monitor, as the supervisor's spawn arranges; listed in
        # pass_fds so the close-everything step after this keeps it.
        os.dup2(fd, 3)

    p = subprocess.Popen([QEMU] + BASE + args, pass_fds=(fd, 3), preexec_fn=child,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    theirs.close()
    q = QMP(ours)
    try:
        greeting = q.recv()
    except Exception:
        p.kill()
        out, err = p.communicate(timeout=30)
        raise RuntimeError("QEMU refused %s: %s" % (" ".join(args), err.decode().strip()))
    assert "QMP" in greeting, greeting
    q.cmd("qmp_capabilities")
    return p, q


def quit_(p, q):
    q.cmd("quit")
    out, err = p.communicate(timeout=30)
    if p.returncode != 0:
        raise RuntimeError("QEMU exited %d: %s" % (p.returncode, err.decode()))
    return err.decode()


def check_hugepages_legacy_form(tmp):
    """-hugepages as the original: -mem-path MOUNT -mem-prealloc."""
    p, q = start(["-m", "64M", "-mem-path", tmp, "-mem-prealloc"])
    mem = q.cmd("query-memdev")
    assert any(m["prealloc"] and m["size"] == 64 << 20 for m in mem), mem
    quit_(p, q)


def check_hugepages_backend_form(tmp):
    """The same through a memory backend object (what -mem-path maps to)."""
    p, q = start(["-m", "64M", "-object",
                  "memory-backend-file,id=mem0,size=64M,mem-path=%s,prealloc=on,share=off" % tmp,
                  "-machine", "memory-backend=mem0"])
    mem = q.cmd("query-memdev")
    assert any(m.get("id") == "mem0" and m["prealloc"] for m in mem), mem
    quit_(p, q)


def check_audio_hda_none(tmp):
    """-hostaudio's devices: ich9-intel-hda + hda-output on an audiodev."""
    p, q = start(["-audiodev", "none,id=snd0", "-device", "ich9-intel-hda",
                  "-device", "hda-output,audiodev=snd0"])
    types = [d["type"] for d in q.cmd("qom-list", path="/machine/peripheral-anon")]
    assert "child<ich9-intel-hda>" in types and "child<hda-output>" in types, types
    quit_(p, q)


def check_audio_pa_form(tmp):
    """The pa audiodev with the user's socket: QEMU parses it and connects
    to exactly that server (a real server when one runs here)."""
    uid = os.getuid()
    for cand in (os.path.join(os.environ.get("XDG_RUNTIME_DIR", ""), "pulse/native"),
                 "/run/user/%d/pulse/native" % uid):
        if os.path.exists(cand):
            p, q = start(["-audiodev", "pa,id=snd0,server=unix:" + cand, "-device", "ich9-intel-hda",
                          "-device", "hda-output,audiodev=snd0"])
            quit_(p, q)
            return
    missing = os.path.join(tmp, "no-server", "native")
    r = subprocess.run([QEMU] + BASE[:-4] + ["-audiodev", "pa,id=snd0,server=unix:" + missing,
                                             "-device", "ich9-intel-hda",
                                             "-device", "hda-output,audiodev=snd0"],
                       capture_output=True, timeout=60)
    err = r.stderr.decode()
    # a syntax error would stop QEMU before it ever tries the server
    assert r.returncode != 0 and "Could not init `pa' audio driver" in err, err
    return "no sound server here: checked QEMU parses the form and tries that socket"


def check_qemu_agent(tmp):
    """-qemu-agent: a virtio-serial port org.qemu.guest_agent.0 on a socket."""
    sock = os.path.join(tmp, "qga.sock")
    p, q = start(["-chardev", "socket,id=qga0,path=%s,server=on,wait=off" % sock,
                  "-device", "virtio-serial-pci,id=vserial",
                  "-device", "virtserialport,bus=vserial.0,chardev=qga0,name=org.qemu.guest_agent.0"])
    chardevs = {c["label"]: c for c in q.cmd("query-chardev")}
    assert "qga0" in chardevs, chardevs
    assert os.path.exists(sock)
    quit_(p, q)


def check_spice(tmp):
    """-spice: SPICE on a UNIX socket, vdagent port, no TCP."""
    sock = os.path.join(tmp, "spice.sock")
    redir = []
    for i in range(1, 5):
        redir += ["-chardev", "spicevmc,id=usbredir%d,name=usbredir" % i,
                  "-device", "usb-redir,chardev=usbredir%d,id=usbredirdev%d,bus=xhci.0" % (i, i)]
    p, q = start(["-device", "qemu-xhci,id=xhci", "-spice", "unix=on,addr=%s,disable-ticketing=on" % sock,
                  "-device", "virtio-serial-pci,id=vserial",
                  "-chardev", "spicevmc,id=vdagent,name=vdagent",
                  "-device", "virtserialport,bus=vserial.0,chardev=vdagent,name=com.redhat.spice.0"] + redir)
    info = q.cmd("query-spice")
    assert info["enabled"], info
    assert os.path.exists(sock)
    quit_(p, q)


def check_looking_glass(tmp):
    """-looking-glass: ivshmem-plain on the shared memory file (64M default)."""
    shm = os.path.join(tmp, "looking-glass")
    with open(shm, "wb") as f:
        f.truncate(64 << 20)
    p, q = start(["-object", "memory-backend-file,id=ivshmem0,share=on,mem-path=%s,size=64M" % shm,
                  "-device", "ivshmem-plain,memdev=ivshmem0"])
    mem = q.cmd("query-memdev")
    assert any(m.get("id") == "ivshmem0" and m["share"] and m["size"] == 64 << 20 for m in mem), mem
    quit_(p, q)


def check_tpm(tmp):
    """-tpm: QEMU on swtpm's control socket (the real swtpm, when installed)."""
    swtpm = shutil.which("swtpm")
    if swtpm is None:
        return "skipped: swtpm not installed"
    state = os.path.join(tmp, "tpm")
    os.mkdir(state, 0o700)
    sock = os.path.join(tmp, "swtpm.sock")
    sw = subprocess.Popen([swtpm, "socket", "--tpmstate", "dir=" + state, "--ctrl",
                           "type=unixio,path=" + sock, "--tpm2"], stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            if os.path.exists(sock):
                break
            time.sleep(0.02)
        assert os.path.exists(sock), "swtpm made no socket"
        p, q = start(["-chardev", "socket,id=chrtpm,path=" + sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
                      "-device", "tpm-tis,tpmdev=tpm0"])
        tpms = q.cmd("query-tpm")
        assert tpms and tpms[0]["model"] == "tpm-tis" and tpms[0]["options"]["type"] == "emulator", tpms
        quit_(p, q)
    finally:
        sw.terminate()
        sw.wait(timeout=30)
    return None


def main():
    if QEMU is None or not os.access(QEMU, os.X_OK):
        print("qemu-system-x86_64 not found; skipped")
        return 77
    checks = [check_hugepages_legacy_form, check_hugepages_backend_form, check_audio_hda_none,
              check_audio_pa_form, check_qemu_agent, check_spice, check_looking_glass, check_tpm]
    failed = 0
    shm_root = "/dev/shm" if os.path.isdir("/dev/shm") else None
    for check in checks:
        tmp = tempfile.mkdtemp(prefix="vfio-e2e-", dir=shm_root)
        try:
            note = check(tmp)
            print("ok   %s%s" % (check.__name__, " (%s)" % note if note else ""))
        except Exception as e:
            failed += 1
            print("FAIL %s: %s" % (check.__name__, e))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
