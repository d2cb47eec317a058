/* -isolate: keep the host off the guest's CPUs while it runs, without a
 * reboot, and put everything back at teardown. Three host changes, each
 * saving every value it alters byte for byte:
 *
 *   {"action": "cpuset-isolate", "target": "/sys/fs/cgroup",
 *    "args": {"guest_cpus": "2-7,10-15", "name": "win11"}}
 *     cgroup v2 (or v1's cpuset hierarchy): the top-level slices (init.scope,
 *     system.slice, user.slice, machine.slice, those present) get
 *     cpuset.cpus = the host CPUs; a cgroup "vfio-NAME" with every online CPU
 *     is created and the supervisor moves into it, so QEMU (its child) can
 *     still reach the guest CPUs; its vCPUs are then pinned there and its
 *     other threads to the host CPUs (threads.h).
 *   {"action": "irq-affinity", "target": "/proc/irq", "args": {"guest_cpus": ...}}
 *     every IRQ whose smp_affinity_list touches a guest CPU is narrowed to
 *     its host CPUs (or all host CPUs), and default_smp_affinity too. IRQs
 *     the kernel refuses to move (EIO for the timer, some MSI) are reported
 *     and left alone, as the kernel leaves them.
 *   {"action": "workqueue-cpumask", "target": "/sys/devices/virtual/workqueue/cpumask",
 *    "args": {"guest_cpus": ...}}
 *     unbound workqueues run on the host CPUs only.
 *
 * The host CPUs are the online CPUs minus the guest's; at least one must be
 * left. Cpuset partitions (cpuset.cpus.partition=isolated) are not used: a
 * partition needs the whole QEMU process inside it, which would drag its
 * emulator threads onto the guest CPUs. */
#ifndef VFIO_ISOLATE_H
#define VFIO_ISOLATE_H

#include <jansson.h>

#include "change.h"
#include "util.h"
#include "verr.h"

extern const struct change_ops cpuset_isolate_ops;
extern const struct change_ops irq_affinity_ops;
extern const struct change_ops workqueue_cpumask_ops;

/* The three changes for -isolate, in order (cpuset, IRQs, workqueues), for
 * guest CPUs guest_cpus ("2-7,10-15") of guest name. A new array. */
json_t *isolate_changes(const char *guest_cpus, const char *name);

/* For the rundown: what a prepared change (its saved state) will alter, one
 * line per file: "/sys/fs/cgroup/user.slice/cpuset.cpus: '' -> '0-1,8-9'". */
void isolate_describe(const json_t *change, const json_t *saved, struct strv *lines);

#endif
