/* Pinning QEMU's threads. The session pins each vCPU thread (tids from
 * query-cpus-fast) to its -pinvcpus CPU with SCHED_FIFO (threads_pin_fifo);
 * every other thread of QEMU (main loop, iothreads, workers) goes to the host
 * CPUs not given to vCPUs (threads_pin_others), so they stop landing on the
 * guest's cores. These are the real process's threads: /proc is the real one. */
#ifndef VFIO_THREADS_H
#define VFIO_THREADS_H

#include <stddef.h>
#include <sys/types.h>

#include "cpulist.h"
#include "verr.h"

/* Pin every thread of pid except vcpu_tids to cpus. Threads that end
 * meanwhile are skipped. *n_pinned (may be NULL) counts the pinned ones. */
int threads_pin_others(pid_t pid, const pid_t *vcpu_tids, size_t n_vcpu, const struct cpulist *cpus,
    size_t *n_pinned, struct verr *err);
/* The session's call: every thread of QEMU (pid) but its vCPU threads goes
 * to the online CPUs (host root's /sys/devices/system/cpu/online) not in
 * pinvcpus. */
int threads_pin_emulator(pid_t pid, const pid_t *vcpu_tids, size_t n_vcpu, const int *pinvcpus, size_t n_pin,
    struct verr *err);

/* Pin tid to one CPU and, when prio > 0, give it SCHED_FIFO priority prio
 * (the original used 20 for vCPUs). */
int threads_pin_fifo(pid_t tid, int cpu, int prio, struct verr *err);

#endif
