/* sched_setaffinity()/sched_setscheduler() per thread of a process. */
#include "threads.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostroot.h"
#include "log.h"
#include "util.h"

static cpu_set_t *
to_cpuset(const struct cpulist *cpus, size_t *size)
{
	cpu_set_t *set = CPU_ALLOC(CPULIST_MAX);
	if (set == NULL)
		fatal("out of memory");
	*size = CPU_ALLOC_SIZE(CPULIST_MAX);
	CPU_ZERO_S(*size, set);
	for (int c = cpulist_first(cpus); c >= 0; c = cpulist_next(cpus, c))
		CPU_SET_S((size_t)c, *size, set);
	return set;
}

int
threads_pin_others(pid_t pid, const pid_t *vcpu_tids, size_t n_vcpu, const struct cpulist *cpus,
    size_t *n_pinned, struct verr *err)
{
	if (cpulist_empty(cpus))
		return verr_set(err, -EINVAL, "pinning QEMU's threads: no host CPUs left for them (all went to vCPUs)");
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return verr_set(err, -errno, "pinning QEMU's threads: cannot list %s: %s", path, strerror(errno));
	size_t size;
	cpu_set_t *set = to_cpuset(cpus, &size);
	size_t pinned = 0;
	int ret = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);
		if (end == de->d_name || *end != '\0')
			continue;
		bool vcpu = false;
		for (size_t i = 0; i < n_vcpu; i++)
			vcpu |= vcpu_tids[i] == (pid_t)tid;
		if (vcpu)
			continue;
		if (sched_setaffinity((pid_t)tid, size, set) < 0) {
			if (errno == ESRCH)
				continue;
			char *l = cpulist_str(cpus);
			ret = verr_set(err, -errno, "cannot pin thread %ld of pid %d to CPUs %s: %s", tid, (int)pid, l,
			    strerror(errno));
			free(l);
			break;
		}
		pinned++;
	}
	closedir(d);
	CPU_FREE(set);
	if (n_pinned != NULL)
		*n_pinned = pinned;
	return ret;
}

int
threads_pin_emulator(pid_t pid, const pid_t *vcpu_tids, size_t n_vcpu, const int *pinvcpus, size_t n_pin,
    struct verr *err)
{
	char *path = host_pathdup("/sys/devices/system/cpu/online");
	char *s = host_read_line(path);
	struct cpulist online, guest, host;
	int ret = 0;
	if (s == NULL)
		ret = verr_set(err, -errno, "pinning QEMU's threads: cannot read %s: %s", path, strerror(errno));
	else if (cpulist_parse(&online, s, path, err) < 0)
		ret = err->code;
	free(s);
	free(path);
	if (ret < 0)
		return ret;
	cpulist_clear(&guest);
	for (size_t i = 0; i < n_pin; i++)
		cpulist_add(&guest, pinvcpus[i]);
	cpulist_minus(&host, &online, &guest);
	return threads_pin_others(pid, vcpu_tids, n_vcpu, &host, NULL, err);
}

int
threads_pin_fifo(pid_t tid, int cpu, int prio, struct verr *err)
{
	if (cpu < 0 || cpu >= CPULIST_MAX)
		return verr_set(err, -EINVAL, "cannot pin thread %d to CPU %d: no such CPU", (int)tid, cpu);
	struct cpulist one;
	cpulist_clear(&one);
	cpulist_add(&one, cpu);
	size_t size;
	cpu_set_t *set = to_cpuset(&one, &size);
	int r = sched_setaffinity(tid, size, set);
	CPU_FREE(set);
	if (r < 0)
		return verr_set(err, -errno, "cannot pin thread %d to CPU %d: %s", (int)tid, cpu, strerror(errno));
	if (prio > 0) {
		struct sched_param sp = { .sched_priority = prio };
		if (sched_setscheduler(tid, SCHED_FIFO, &sp) < 0)
			return verr_set(err, -errno, "cannot give thread %d SCHED_FIFO priority %d: %s", (int)tid, prio,
			    strerror(errno));
	}
	return 0;
}
