/* CPU sets as the kernel writes them: lists ("0-3,8-11": cpuset.cpus,
 * smp_affinity_list, /sys/devices/system/cpu/online) and hex masks
 * ("ff,ffffffff": workqueue cpumask, smp_affinity). One fixed-size bitmap is
 * enough for every machine Linux runs on today (CPULIST_MAX). */
#ifndef VFIO_CPULIST_H
#define VFIO_CPULIST_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"
#include "verr.h"

#define CPULIST_MAX 8192

struct cpulist {
	uint64_t bits[CPULIST_MAX / 64];
};

void cpulist_clear(struct cpulist *set);
void cpulist_add(struct cpulist *set, int cpu);
bool cpulist_has(const struct cpulist *set, int cpu);
int cpulist_count(const struct cpulist *set);
bool cpulist_empty(const struct cpulist *set);
/* Lowest CPU in the set, -1 when empty. */
int cpulist_first(const struct cpulist *set);
/* Next CPU after `cpu`, -1 past the end. */
int cpulist_next(const struct cpulist *set, int cpu);
/* out = a & ~b, a & b */
void cpulist_minus(struct cpulist *out, const struct cpulist *a, const struct cpulist *b);
void cpulist_and(struct cpulist *out, const struct cpulist *a, const struct cpulist *b);
bool cpulist_intersects(const struct cpulist *a, const struct cpulist *b);
bool cpulist_equal(const struct cpulist *a, const struct cpulist *b);

/* Parse "0-3,8,10-11" (whitespace around it ignored, "" is the empty set).
 * what names the thing in the error ("-pinvcpus", a file path). */
int cpulist_parse(struct cpulist *set, const char *s, const char *what, struct verr *err);
/* Parse a kernel hex mask ("ff,ffffffff"). */
int cpumask_parse(struct cpulist *set, const char *s, const char *what, struct verr *err);
/* "0-3,8-11" (ranges collapsed; "" when empty). Appends to sb. */
void cpulist_format(const struct cpulist *set, struct strbuf *sb);
/* The same, allocated. */
char *cpulist_str(const struct cpulist *set);
/* Hex mask in the kernel's %*pb layout: groups of 32 bits, comma separated,
 * most significant first, no leading zero groups ("303", "1,00000000"). */
char *cpumask_str(const struct cpulist *set);

#endif
