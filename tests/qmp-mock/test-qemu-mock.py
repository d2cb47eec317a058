#!/usr/bin/env python3
"""qemu-mock's own behaviour: its command line, its loud failures, the
-qmp unix form, signals, and the QEMU 7.2 behaviours the client tests do not
reach. Python stdlib only; run by meson with QEMU_MOCK set."""
import fcntl
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

MOCK = os.environ.get("QEMU_MOCK", "")
MON = ["-chardev", "socket,id=qmp,fd=3", "-mon", "chardev=qmp,mode=control"]
TIMEOUT = 10


LISTEN = ["-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control",
          "-add-fd", "fd=4,set=1,opaque=console-log",
          "-chardev", "socket,id=console,fd=5,server=on,wait=off,logfile=/dev/fdset/1", "-serial", "chardev:console"]


class Mock:
    """qemu-mock on a socketpair monitor at fd 3; or (listen=True) as the
    supervisor runs it: listening sockets for the monitor (fd 3) and the
    console (fd 5), the console log at fd 4, and a client connected."""

    def __init__(self, args, scenario=None, monitor=True, listen=False):
        self.dir = tempfile.TemporaryDirectory()
        env = dict(os.environ)
        env["QMP_MOCK_ARGV"] = os.path.join(self.dir.name, "argv")
        env["QMP_MOCK_RECORD"] = os.path.join(self.dir.name, "record")
        env.pop("QMP_MOCK_SCENARIO", None)
        if scenario is not None:
            path = os.path.join(self.dir.name, "scenario.json")
            with open(path, "w") as f:
                f.write(scenario if isinstance(scenario, str) else json.dumps(scenario))
            env["QMP_MOCK_SCENARIO"] = path
        self.sock = None
        self.buf = b""
        if listen:
            self.qmp_path = os.path.join(self.dir.name, "qmp.sock")
            self.console_path = os.path.join(self.dir.name, "console.sock")
            self.log_path = os.path.join(self.dir.name, "console.log")
            fds = []
            for path in (self.qmp_path, None, self.console_path):
                if path is None:
                    fds.append(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
                    continue
                ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                ls.bind(path)
                ls.listen(4)
                fds.append(ls.detach())
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 20) for fd in fds]
            for fd in fds:
                os.close(fd)

            def into_place():
                for i, fd in enumerate(high):
                    os.dup2(fd, 3 + i)
            self.proc = subprocess.Popen([MOCK] + args, env=env, pass_fds=(3, 4, 5), preexec_fn=into_place,
                                         stderr=subprocess.PIPE, stdout=subprocess.PIPE)
            for fd in high:
                os.close(fd)
            self.connect()
        elif monitor:
            a, b = socket.socketpair()
            self.sock = a
            self.proc = subprocess.Popen([MOCK] + args, env=env, pass_fds=(3,) if b.fileno() == 3 else (),
                                         preexec_fn=lambda: os.dup2(b.fileno(), 3), close_fds=False,
                                         stderr=subprocess.PIPE, stdout=subprocess.PIPE)
            b.close()
            self.sock.settimeout(TIMEOUT)
        else:
            self.proc = subprocess.Popen([MOCK] + args, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE)

    def connect(self):
        """A new client of the listening monitor (a supervisor that adopts)."""
        if self.sock is not None:
            self.sock.close()
        self.buf = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(self.qmp_path)
        return self

    def read(self):
        while b"\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("monitor closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None, events=None, fd=None):
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        data = (json.dumps(msg) + "\n").encode()
        if fd is None:
            self.sock.sendall(data)
        else:
            socket.send_fds(self.sock, [data], [fd])
        while True:
            m = self.read()
            if "event" in m:
                if events is not None:
                    events.append(m)
                continue
            return m

    def start(self):
        self.greeting = self.read()
        assert self.cmd("qmp_capabilities") == {"return": {}}
        return self

    def wait(self):
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.stderr = err.decode()
        self.stdout = out.decode()
        return self.proc.returncode

    def close(self):
        if self.sock is not None:
            self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()
        self.dir.cleanup()

    def argv(self):
        with open(os.path.join(self.dir.name, "argv")) as f:
            return json.loads(f.read())

    def record(self):
        with open(os.path.join(self.dir.name, "record")) as f:
            return [json.loads(l) for l in f]


class TestCommandLine(unittest.TestCase):
    def test_no_monitor_fails_loudly_and_says_how(self):
        m = Mock(["-S", "-m", "1G"], monitor=False)
        self.assertEqual(m.wait(), 2)
        self.assertIn("no QMP monitor", m.stderr)
        self.assertIn("-chardev socket,id=X,fd=N", m.stderr)
        m.close()

    def test_mon_naming_a_missing_chardev_fails_like_qemu(self):
        m = Mock(["-mon", "chardev=nope,mode=control"], monitor=False)
        self.assertEqual(m.wait(), 2)
        self.assertIn('chardev "nope" not found', m.stderr)
        m.close()

    def test_monitor_fd_that_is_not_a_socket_fails(self):
        m = Mock(["-chardev", "socket,id=qmp,fd=0", "-mon", "chardev=qmp,mode=control"], monitor=False)
        self.assertEqual(m.wait(), 2)
        self.assertIn("not a socket", m.stderr)
        m.close()

    def test_version_prints_qemu_7_2(self):
        m = Mock(["-version"], monitor=False)
        self.assertEqual(m.wait(), 0)
        self.assertIn("QEMU emulator version 7.2", m.stdout)
        m.close()

    def test_argv_is_recorded_as_a_json_array(self):
        args = ["-S", "-name", "guest=win,debug-threads=on", "-foo-unknown", "bar"] + MON
        m = Mock(args).start()
        self.assertEqual(m.argv(), [MOCK] + args)
        self.assertEqual(m.cmd("query-name"), {"return": {"name": "win"}})
        m.close()

    def test_unknown_options_are_ignored(self):
        m = Mock(["-S", "-m", "4G", "-drive", "file=x.img,if=virtio", "-enable-kvm", "-bogus", "v"] + MON).start()
        self.assertEqual(m.cmd("query-status")["return"]["status"], "prelaunch")
        m.close()

    def test_without_dash_s_the_guest_runs(self):
        m = Mock(MON).start()
        self.assertEqual(m.cmd("query-status")["return"]["status"], "running")
        m.close()

    def test_smp_forms_give_that_many_vcpu_threads(self):
        for smp, n in (("3", 3), ("cpus=4,sockets=1,cores=4,threads=1", 4), ("sockets=2,cores=2,threads=2", 8)):
            m = Mock(["-S", "-smp", smp] + MON).start()
            cpus = m.cmd("query-cpus-fast")["return"]
            self.assertEqual(len(cpus), n, smp)
            tids = {c["thread-id"] for c in cpus}
            self.assertEqual(len(tids), n)
            for t in tids:
                self.assertTrue(os.path.exists("/proc/%d/task/%d" % (m.proc.pid, t)))
            # The supervisor pins them: that must work on these ids.
            cpu = min(os.sched_getaffinity(0))
            for t in tids:
                os.sched_setaffinity(t, {cpu})
                self.assertEqual(os.sched_getaffinity(t), {cpu})
            m.close()

    def test_qmp_unix_socket_server(self):
        d = tempfile.TemporaryDirectory()
        path = os.path.join(d.name, "qmp.sock")
        m = Mock(["-S", "-qmp", "unix:%s,server=on,wait=off" % path], monitor=False)
        deadline = time.monotonic() + TIMEOUT
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                s.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        s.settimeout(TIMEOUT)
        m.sock = s
        m.start()
        self.assertEqual(m.greeting["QMP"]["version"]["qemu"]["major"], 7)
        events = []
        self.assertEqual(m.cmd("quit", events=events), {"return": {}})
        self.assertEqual(events[0]["data"], {"guest": False, "reason": "host-qmp-quit"})
        self.assertEqual(m.wait(), 0)
        m.close()
        d.cleanup()


class TestLoudFailures(unittest.TestCase):
    def test_invalid_json_from_the_client_exits_2(self):
        m = Mock(["-S"] + MON).start()
        m.sock.sendall(b'{"execute": nope}\n')
        self.assertEqual(m.wait(), 2)
        self.assertIn("invalid JSON", m.stderr)
        m.close()

    def test_unexpected_member_from_the_client_exits_2(self):
        m = Mock(["-S"] + MON).start()
        m.sock.sendall(b'{"execute": "query-status", "fd": 3}\n')
        self.assertEqual(m.wait(), 2)
        self.assertIn("member 'fd'", m.stderr)
        m.close()

    def test_scenario_that_is_not_json_exits_2_naming_the_line(self):
        m = Mock(["-S"] + MON, scenario='{"commands": [\n  {oops}\n]}')
        self.assertEqual(m.wait(), 2)
        self.assertIn("line 2", m.stderr)
        m.close()

    def test_scenario_typo_exits_2_naming_the_key(self):
        m = Mock(["-S"] + MON, scenario={"commands": [{"command": "cont", "aftr": []}]})
        self.assertEqual(m.wait(), 2)
        self.assertIn('unknown key "aftr"', m.stderr)
        m.close()

    def test_unknown_command_is_command_not_found_and_warned(self):
        m = Mock(["-S"] + MON, scenario={"exit_on_disconnect": True}).start()
        r = m.cmd("x-nothing")
        self.assertEqual(r["error"], {"class": "CommandNotFound", "desc": "The command x-nothing has not been found"})
        m.sock.close()
        m.sock = None
        self.assertEqual(m.wait(), 0)
        self.assertIn("command 'x-nothing' is not known to the mock", m.stderr)
        m.close()


class TestQemuBehaviour(unittest.TestCase):
    def test_sigterm_emits_shutdown_host_signal_and_exits_0(self):
        m = Mock(["-S"] + MON).start()
        m.proc.send_signal(signal.SIGTERM)
        ev = m.read()
        self.assertEqual(ev["event"], "SHUTDOWN")
        self.assertEqual(ev["data"], {"guest": False, "reason": "host-signal"})
        self.assertEqual(m.wait(), 0)
        m.close()

    def test_no_shutdown_keeps_the_process_after_guest_shutdown(self):
        m = Mock(["-no-shutdown"] + MON, scenario={"guest": {"powerdown_delay_ms": 10}}).start()
        m.cmd("system_powerdown")
        names = []
        while "STOP" not in names:
            names.append(m.read()["event"])
        self.assertEqual(names, ["SHUTDOWN", "STOP"])
        self.assertEqual(m.cmd("query-status")["return"]["status"], "shutdown")
        self.assertEqual(m.cmd("cont")["error"]["desc"], "Resetting the Virtual Machine is required")
        m.cmd("system_reset")
        self.assertEqual(m.cmd("query-status")["return"]["status"], "prelaunch")
        m.close()

    def test_usb_device_unplug_is_immediate_even_while_paused(self):
        m = Mock(["-S", "-device", "qemu-xhci,id=xhci"] + MON).start()
        self.assertEqual(m.cmd("device_add", {"driver": "usb-host", "id": "usb-1-4.2", "bus": "xhci.0",
                                              "hostbus": 1, "hostaddr": 5}), {"return": {}})
        events = []
        self.assertEqual(m.cmd("device_del", {"id": "usb-1-4.2"}, events=events), {"return": {}})
        ev = events[0] if events else m.read()
        self.assertEqual(ev["data"], {"device": "usb-1-4.2", "path": "/machine/peripheral/usb-1-4.2"})
        m.close()

    def test_cold_plugged_device_ids_are_taken(self):
        m = Mock(["-S", "-device", "vfio-pci,host=0000:01:00.0,id=hostdev-0000-01-00-0,bus=pcie.0"] + MON).start()
        r = m.cmd("device_add", {"driver": "e1000e", "id": "hostdev-0000-01-00-0"})
        self.assertEqual(r["error"]["desc"], "Duplicate device ID 'hostdev-0000-01-00-0'")
        m.close()

    def test_netdev_add_consumes_the_named_fd(self):
        m = Mock(["-S"] + MON).start()
        r, w = os.pipe()
        msg = json.dumps({"execute": "getfd", "arguments": {"fdname": "tapfd0"}}) + "\n"
        socket.send_fds(m.sock, [msg.encode()], [w])
        self.assertEqual(m.read(), {"return": {}})
        self.assertEqual(m.cmd("netdev_add", {"type": "tap", "id": "net0", "fd": "tapfd0"}), {"return": {}})
        r2 = m.cmd("netdev_add", {"type": "tap", "id": "net1", "fd": "tapfd0"})
        self.assertEqual(r2["error"]["desc"], "File descriptor named 'tapfd0' has not been found")
        r3 = m.cmd("netdev_add", {"type": "user", "id": "net0"})
        self.assertEqual(r3["error"]["desc"], "Duplicate ID 'net0'")
        self.assertEqual(m.cmd("netdev_del", {"id": "net0"}), {"return": {}})
        rec = m.record()
        self.assertTrue(rec[1]["fd_received"])
        self.assertTrue(rec[1]["fd_usable"])
        self.assertEqual(os.read(r, 1), b"Q")
        os.close(r)
        os.close(w)
        m.close()

    def test_raw_hex_bytes_are_sent_exactly(self):
        m = Mock(["-S"] + MON, scenario={"start": [{"raw_hex": "ff00fe0d0a"}]})
        data = b""
        while len(data) < 5:
            data += m.sock.recv(5 - len(data))
        self.assertEqual(data, b"\xff\x00\xfe\r\n")
        m.close()

    def test_mock_keeps_running_after_the_client_goes_like_qemu(self):
        m = Mock(["-S"] + MON).start()
        m.sock.close()
        m.sock = None
        time.sleep(0.3)
        self.assertIsNone(m.proc.poll())
        # ... until someone kills it, as the supervisor does with QEMU.
        m.proc.send_signal(signal.SIGTERM)
        self.assertEqual(m.wait(), 0)
        self.assertIn("still running, as QEMU would", m.stderr)
        m.close()

    def test_orphaned_mock_exits_after_orphan_exit_ms(self):
        m = Mock(["-S"] + MON, scenario={"orphan_exit_ms": 100}).start()
        m.sock.close()
        m.sock = None
        self.assertEqual(m.wait(), 0)
        self.assertIn("orphan_exit_ms", m.stderr)
        m.close()

    def test_exit_on_disconnect_exits_when_the_client_goes(self):
        m = Mock(["-S"] + MON, scenario={"exit_on_disconnect": True}).start()
        m.sock.close()
        m.sock = None
        self.assertEqual(m.wait(), 0)
        m.close()


class TestPlans(unittest.TestCase):
    def test_every_planned_argv_and_qmp_command_runs_on_the_mock(self):
        """The plan's golden outputs (tests/plan/golden) are what the
        supervisor will give QEMU: the mock must start from each argv and
        accept each QMP command, fds passed as the session passes them."""
        import glob
        src = os.environ.get("VFIO_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
        plans = []
        for f in sorted(glob.glob(os.path.join(src, "tests", "plan", "golden", "*.ok"))):
            with open(f) as fh:
                text = fh.read()
            if '"qmp": [' not in text or "--- stdout\n" not in text:
                continue
            try:
                plan = json.loads(text.split("--- stdout\n", 1)[1].split("\n--- stderr", 1)[0])
            except ValueError:
                continue
            if isinstance(plan, dict) and isinstance(plan.get("argv"), list):
                plans.append((os.path.basename(f), plan))
        if not plans:
            self.skipTest("no plan goldens with argv and qmp")
        for name, plan in plans:
            # The plan's monitor and console listen (server=on): as the session runs it.
            m = Mock(plan["argv"][1:], listen="socket,id=qmp,fd=3,server=on,wait=off" in plan["argv"]).start()
            for c in plan["qmp"]:
                fd = None
                if "fd" in c:
                    # The session opens a tap or vhost-net; a pipe stands in.
                    r, fd = os.pipe()
                reply = m.cmd(c["execute"], c.get("arguments"), fd=fd)
                if fd is not None:
                    os.close(r)
                    os.close(fd)
                self.assertNotIn("error", reply, "%s: %s" % (name, json.dumps(c)))
            m.close()


class TestAdoption(unittest.TestCase):
    """A monitor that listens on a socket handed over (-chardev
    socket,fd=N,server=on) serves a later supervisor as QEMU does."""

    def test_listening_monitor_serves_one_client_after_another(self):
        m = Mock(["-S"] + LISTEN + ["-device", "pcie-root-port,id=rp1"], listen=True).start()
        self.assertEqual(m.cmd("device_add", {"driver": "virtio-net-pci", "id": "nic0", "bus": "rp1"}),
                         {"return": {}})
        m.cmd("cont")
        m.connect()
        # A new conversation: its own greeting, capabilities again.
        self.assertIn("QMP", m.read())
        self.assertIn("Expecting capabilities negotiation", m.cmd("query-status")["error"]["desc"])
        self.assertEqual(m.cmd("qmp_capabilities"), {"return": {}})
        self.assertEqual(m.cmd("query-status")["return"]["status"], "running")
        names = {p["name"]: p["type"] for p in m.cmd("qom-list", {"path": "/machine/peripheral"})["return"]}
        self.assertEqual(names, {"type": "string", "rp1": "child<pcie-root-port>",
                                 "nic0": "child<virtio-net-pci>"})
        m.close()

    def test_a_reply_meant_for_a_client_that_left_never_reaches_the_next(self):
        m = Mock(LISTEN, scenario={"commands": [{"command": "query-status", "delay_ms": 300}]}, listen=True).start()
        m.sock.sendall(b'{"execute": "query-status", "id": 7}\n')
        m.connect()
        greeting = m.read()
        self.assertIn("QMP", greeting)
        m.cmd("qmp_capabilities")
        time.sleep(0.5)
        self.assertEqual(m.cmd("query-name"), {"return": {}})
        m.close()

    def test_unplug_completed_while_no_client_was_connected_shows_in_qom_list(self):
        m = Mock(LISTEN + ["-device", "pcie-root-port,id=rp1"], listen=True).start()
        m.cmd("device_add", {"driver": "virtio-net-pci", "id": "nic0", "bus": "rp1"})
        m.cmd("device_del", {"id": "nic0"})
        m.sock.close()
        m.sock = None
        time.sleep(0.3)    # the guest acks after unplug_delay_ms (50): nobody hears DEVICE_DELETED
        m.connect().start()
        names = [p["name"] for p in m.cmd("qom-list", {"path": "/machine/peripheral"})["return"]]
        self.assertNotIn("nic0", names)
        m.close()

    def test_console_socket_answers_typed_lines_and_logs_with_or_without_a_client(self):
        m = Mock(LISTEN, scenario={"guest": {"console": "boot: ok\r\n"}}, listen=True).start()
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(TIMEOUT)
        c.connect(m.console_path)
        c.sendall(b"hello\r")
        got = b""
        while b"guest: hello" not in got:
            got += c.recv(4096)
        c.close()
        with open(m.log_path, "rb") as f:
            self.assertEqual(f.read(), b"boot: ok\r\nguest: hello\r\n")
        m.close()


if __name__ == "__main__":
    if not MOCK:
        raise SystemExit("QEMU_MOCK is not set: run through meson")
    unittest.main(verbosity=2)
