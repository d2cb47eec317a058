/* Hugepages for guest memory (-hugepages [MOUNT]): what the guest needs from
 * a hugetlbfs mount (a pure function of the snapshot, for the plan) and the
 * `hugepages-alloc` host change that raises nr_hugepages and gives back, at
 * teardown, only the pages this run allocated.
 *
 * The change, as the plan emits it:
 *   {"action": "hugepages-alloc", "target": "/sys/kernel/mm/hugepages/hugepages-2048kB",
 *    "from": "0", "to": "4096", "args": {"pages": 4096}}
 * args.pages is what the guest needs; from/to are informational (the run
 * re-reads the pool: another guest may have taken pages since the dry run). */
#ifndef VFIO_HUGEPAGES_H
#define VFIO_HUGEPAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "change.h"
#include "snapshot.h"
#include "verr.h"

struct hugepages_need {
	char mount[256];         /* the hugetlbfs mount QEMU gets as -mem-path */
	uint64_t page_kib;       /* its page size */
	uint64_t pages;          /* pages the guest memory needs */
	char pool[128];          /* "/sys/kernel/mm/hugepages/hugepages-2048kB" (host path) */
	uint64_t nr, free_pages; /* the pool now */
	bool alloc;              /* not enough free: the run raises nr_hugepages */
	uint64_t new_nr;         /* what it raises it to (when alloc) */
};

/* For the plan: mount NULL means /dev/hugepages. Refuses a path that is not
 * a hugetlbfs mount, a page size with no pool, and memory that is not a
 * whole number of pages. Touches nothing. */
int hugepages_plan(const struct host_snapshot *snap, const char *mount, uint64_t memory_mib,
    struct hugepages_need *need, struct verr *err);

/* The hugepages-alloc change for need (NULL when need->alloc is false:
 * the free pages suffice and nothing on the host changes). */
json_t *hugepages_change(const struct hugepages_need *need);

/* "6.3.1-arch1" >= 6.3.1 with ZFS loaded: the original skips compaction
 * there (compaction with ZFS's ARC on those kernels could hang the host). */
bool hugepages_skip_compaction(const char *kernel_release, bool zfs_loaded);

/* How long the run waits for the kernel to hand out the pages it asked for.
 * The write to nr_hugepages is synchronous in today's kernels; the bounded
 * re-read only covers slower ones. Runs in the session's startup, before the
 * event loop. */
#define HUGEPAGES_WAIT_MS 3000

extern const struct change_ops hugepages_alloc_ops;

#endif
