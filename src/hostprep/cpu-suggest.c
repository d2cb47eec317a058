/* A ready -pinvcpus value from the host topology. */
#include "cpu-suggest.h"

#include <errno.h>
#include <stdlib.h>

static int
cmp_cpu(const void *a, const void *b)
{
	const struct cpu_thread *x = *(const struct cpu_thread *const *)a, *y = *(const struct cpu_thread *const *)b;
	return (x->cpu > y->cpu) - (x->cpu < y->cpu);
}

static bool
same_core(const struct cpu_thread *a, const struct cpu_thread *b)
{
	return a->package_id == b->package_id && a->core_id == b->core_id;
}

int
cpu_suggest_pinvcpus(const struct host_snapshot *snap, struct strbuf *out, struct verr *err)
{
	const struct cpu_thread **cpus = xcalloc(snap->n_cpus + 1, sizeof(*cpus));
	size_t n = 0;
	for (size_t i = 0; i < snap->n_cpus; i++)
		if (snap->cpus[i].online)
			cpus[n++] = &snap->cpus[i];
	if (n > 1)
		qsort(cpus, n, sizeof(*cpus), cmp_cpu);
	bool *done = xcalloc(n + 1, sizeof(*done));
	/* The host keeps the core of the lowest CPU (core 0 on every x86 box). */
	for (size_t i = 0; i < n; i++)
		if (same_core(cpus[i], cpus[0]))
			done[i] = true;
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		if (done[i])
			continue;
		for (size_t j = i; j < n; j++) {
			if (done[j] || !same_core(cpus[j], cpus[i]))
				continue;
			strbuf_printf(out, first ? "%d" : ",%d", cpus[j]->cpu);
			first = false;
			done[j] = true;
		}
	}
	free(done);
	free(cpus);
	if (first)
		return verr_set(err, -ENODEV, "-cputhreads: the host has a single core; there is no CPU to suggest for "
		    "-pinvcpus that leaves the host its own");
	return 0;
}
