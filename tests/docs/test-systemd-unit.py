#!/usr/bin/env python3
"""vfio@.service as built: what keeps the guest alive across a restart of
its supervisor, and what still powers it down on `systemctl stop`. systemd
itself does not run here; what it would do with each directive is in
tools/systemd/vfio@.service.in's comment and vfio(1). Checked:
- KillMode=process: systemd never signals or kills QEMU (mixed or
  control-group would SIGKILL it with the supervisor's cgroup);
- no ExecStartPre running `vfio -restore` (it would stop a guest to adopt);
- the start is `vfio -run -name %i`, which adopts a running guest;
- Restart=on-abnormal: a supervisor killed by a signal comes back and
  adopts, an exit status (the guest ended, a refused start) is final;
- Type=notify with NotifyAccess=main (READY=1 once the guest runs or is
  adopted), SIGTERM as the stop signal (the supervisor powers down on it).
"""
import os
import sys

unit = os.path.join(os.environ["VFIO_BUILDDIR"], "tools", "systemd", "vfio@.service")
directives = {}
section = None
for line in open(unit):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    if line.startswith("["):
        section = line.strip("[]")
        continue
    key, _, value = line.partition("=")
    directives.setdefault((section, key), []).append(value)

failures = []


def want(key, value, why):
    got = directives.get(("Service", key), [])
    if got != [value]:
        failures.append("%s=%s (%s), not %s" % (key, value, why, got or "unset"))


want("KillMode", "process", "QEMU must outlive the supervisor's cgroup on a restart")
want("KillSignal", "SIGTERM", "the supervisor powers the guest down on it, or detaches on a restart")
want("Type", "notify", "started once the guest runs or is adopted")
want("NotifyAccess", "main", "only the supervisor reports")
want("Restart", "on-abnormal", "a killed supervisor is replaced and adopts the guest")
for pre in directives.get(("Service", "ExecStartPre"), []):
    if "-restore" in pre:
        failures.append("ExecStartPre=%s would stop a guest the start is to adopt" % pre)
start = directives.get(("Service", "ExecStart"), [""])
if len(start) != 1 or " -run -name %i " not in start[0] + " ":
    failures.append("ExecStart=%s is not `vfio -run -name %%i ...`" % start)

for f in failures:
    print("FAIL: " + f)
if not failures:
    print("ok: vfio@.service keeps QEMU across restarts; stop still powers the guest down")
sys.exit(1 if failures else 0)
