/* CPU topology from sysfs: which logical CPUs exist, whether they are online,
 * and the real SMT sibling of each from topology/thread_siblings_list (the
 * cpuinfo `ht` flag only says the package could do SMT, not who pairs with
 * whom). Also the CPU vendor, for the IOMMU kernel argument to suggest. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostroot.h"
#include "log.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

static int
cpu_thread_cmp(const void *a, const void *b)
{
	const struct cpu_thread *x = a, *y = b;
	return (x->cpu > y->cpu) - (x->cpu < y->cpu);
}

struct sibling_pick {
	int self, sibling;
};

static void
sibling_take(int cpu, void *arg)
{
	struct sibling_pick *p = arg;
	if (cpu != p->self && p->sibling < 0)
		p->sibling = cpu;
}

static int
topology_int(int cpu, const char *attr)
{
	char path[PATH_MAX];
	char *s;
	if (host_path(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, attr) == NULL ||
	    (s = host_read_line(path)) == NULL)
		return -1;
	char *end;
	long v = strtol(s, &end, 10);
	int r = (end != s && *end == '\0' && v >= 0 && v <= INT_MAX) ? (int)v : -1;
	free(s);
	return r;
}

static void
cpu_fill(struct cpu_thread *t)
{
	char path[PATH_MAX];
	unsigned long long v;
	/* The boot CPU usually has no `online` file: it cannot go offline. */
	t->online = true;
	if (host_path(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", t->cpu) != NULL &&
	    snap_read_ulong(path, 10, &v))
		t->online = v != 0;
	t->core_id = topology_int(t->cpu, "core_id");
	t->package_id = topology_int(t->cpu, "physical_package_id");
	t->sibling = -1;
	char *list = NULL;
	if (host_path(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", t->cpu) != NULL)
		list = host_read_line(path);
	if (list != NULL) {
		struct sibling_pick pick = { t->cpu, -1 };
		if (snap_parse_cpulist(list, sibling_take, &pick))
			t->sibling = pick.sibling;
		else
			log_debug("cpu%d: cannot parse thread_siblings_list '%s'", t->cpu, list);
		free(list);
	}
}

static void
cpu_vendor_scan(struct host_snapshot *snap)
{
	char path[PATH_MAX];
	if (host_path(path, sizeof(path), "/proc/cpuinfo") == NULL)
		return;
	char *info = host_read(path, NULL);
	if (info == NULL)
		return;
	for (char *line = info; line != NULL && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (str_startswith(line, "vendor_id")) {
			char *colon = strchr(line, ':');
			if (colon) {
				colon++;
				while (*colon == ' ' || *colon == '\t')
					colon++;
				snap_copy(snap->cpu_vendor, sizeof(snap->cpu_vendor), str_rstrip(colon));
			}
			break;
		}
		line = nl ? nl + 1 : NULL;
	}
	free(info);
}

int
cpu_scan(struct host_snapshot *snap, struct verr *err)
{
	char dir[PATH_MAX];
	if (host_path(dir, sizeof(dir), "/sys/devices/system/cpu") == NULL)
		return verr_set(err, -ENAMETOOLONG, "the host root %s is too long for a path", hostroot_get());
	DIR *d = opendir(dir);
	if (d == NULL)
		return verr_set(err, -errno, "cannot list the host's CPUs in %s: %s; check that sysfs is mounted",
		    dir, strerror(errno));
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "cpu", 3) != 0)
			continue;
		const char *num = de->d_name + 3;
		char *end;
		long cpu = strtol(num, &end, 10);
		if (end == num || *end != '\0' || cpu < 0 || cpu > INT_MAX)
			continue;
		struct cpu_thread *t = snap_grow(&snap->cpus, &snap->n_cpus, &cap, sizeof(*t));
		t->cpu = (int)cpu;
	}
	closedir(d);
	if (snap->n_cpus > 1)
		qsort(snap->cpus, snap->n_cpus, sizeof(*snap->cpus), cpu_thread_cmp);
	for (size_t i = 0; i < snap->n_cpus; i++)
		cpu_fill(&snap->cpus[i]);
	cpu_vendor_scan(snap);
	return 0;
}
