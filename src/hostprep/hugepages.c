/* Hugepages: the plan's arithmetic and the `hugepages-alloc` host change.
 * Like the original: use free preallocated pages when there are enough,
 * otherwise drop caches, compact memory (not with ZFS on >= 6.3.1), raise
 * nr_hugepages, and when the kernel cannot find enough contiguous memory say
 * how much -memory would fit instead. Undo puts nr_hugepages back to what it
 * was, so pages preallocated at boot stay, and only this run's go back. */
#include "hugepages.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hostroot.h"
#include "log.h"
#include "util.h"

#define POOL_PREFIX "/sys/kernel/mm/hugepages/hugepages-"

static void
size_str(char *buf, size_t len, uint64_t kib)
{
	if (kib % (1024 * 1024) == 0)
		snprintf(buf, len, "%" PRIu64 "G", kib / (1024 * 1024));
	else if (kib % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 "M", kib / 1024);
	else
		snprintf(buf, len, "%" PRIu64 "K", kib);
}

int
hugepages_plan(const struct host_snapshot *snap, const char *mount, uint64_t memory_mib,
    struct hugepages_need *need, struct verr *err)
{
	memset(need, 0, sizeof(*need));
	if (mount == NULL || *mount == '\0')
		mount = "/dev/hugepages";
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "%s", mount);
	for (size_t n = strlen(want); n > 1 && want[n - 1] == '/'; n--)
		want[n - 1] = '\0';

	const struct hugetlbfs_mount *m = NULL;
	for (size_t i = 0; i < snap->n_hugemounts; i++)
		if (strcmp(snap->hugemounts[i].path, want) == 0)
			m = &snap->hugemounts[i];
	if (m == NULL)
		return verr_set(err, -EINVAL,
		    "-hugepages: %s is not a hugetlbfs mount; mount one there with "
		    "`mount -t hugetlbfs -o pagesize=2M none %s` (or pagesize=1G), or give no path to use /dev/hugepages",
		    want, want);
	uint64_t page_kib = m->page_kib ? m->page_kib : snap->default_hugepage_kib;
	if (page_kib == 0)
		return verr_set(err, -EINVAL, "-hugepages: the page size of %s is unknown (no pagesize= and no default)", want);

	const struct hugepage_pool *pool = NULL;
	for (size_t i = 0; i < snap->n_hugepools; i++)
		if (snap->hugepools[i].page_kib == page_kib)
			pool = &snap->hugepools[i];
	char psz[32];
	size_str(psz, sizeof(psz), page_kib);
	if (pool == NULL)
		return verr_set(err, -ENOENT,
		    "-hugepages: %s uses %s pages but the kernel has no %s hugepage pool "
		    "(" POOL_PREFIX "%" PRIu64 "kB); boot with hugepagesz=%s or use a mount with another pagesize=",
		    want, psz, psz, page_kib, psz);
	uint64_t mem_kib = memory_mib * 1024;
	if (memory_mib == 0 || mem_kib % page_kib != 0)
		return verr_set(err, -EINVAL,
		    "-memory %" PRIu64 "M is not a whole number of the %s pages of %s; use a multiple of %s",
		    memory_mib, psz, want, psz);

	snprintf(need->mount, sizeof(need->mount), "%s", want);
	snprintf(need->pool, sizeof(need->pool), POOL_PREFIX "%" PRIu64 "kB", page_kib);
	need->page_kib = page_kib;
	need->pages = mem_kib / page_kib;
	need->nr = pool->nr;
	need->free_pages = pool->free_pages;
	need->alloc = pool->free_pages < need->pages;
	need->new_nr = need->alloc ? pool->nr + (need->pages - pool->free_pages) : pool->nr;
	return 0;
}

json_t *
hugepages_change(const struct hugepages_need *need)
{
	if (!need->alloc)
		return NULL;
	char from[24], to[24];
	snprintf(from, sizeof(from), "%" PRIu64, need->nr);
	snprintf(to, sizeof(to), "%" PRIu64, need->new_nr);
	return json_pack("{s:s, s:s, s:s, s:s, s:{s:I}}", "action", "hugepages-alloc", "target", need->pool, "from", from,
	    "to", to, "args", "pages", (json_int_t)need->pages);
}

bool
hugepages_skip_compaction(const char *kernel_release, bool zfs_loaded)
{
	if (!zfs_loaded || kernel_release == NULL)
		return false;
	unsigned v[3] = { 0, 0, 0 };
	const char *p = kernel_release;
	for (int i = 0; i < 3; i++) {
		char *end;
		unsigned long x = strtoul(p, &end, 10);
		if (end == p)
			break;
		v[i] = (unsigned)x;
		if (*end != '.')
			break;
		p = end + 1;
	}
	if (v[0] != 6)
		return v[0] > 6;
	if (v[1] != 3)
		return v[1] > 3;
	return v[2] >= 1;
}

/* The pool directory a change targets, validated: only kernel hugepage pools. */
static int
pool_of(const json_t *change, uint64_t *page_kib, struct verr *err)
{
	const char *target = change_str(change, "target");
	char *end;
	if (!str_startswith(target, POOL_PREFIX))
		goto bad;
	errno = 0;
	unsigned long long kib = strtoull(target + strlen(POOL_PREFIX), &end, 10);
	if (errno != 0 || kib == 0 || strcmp(end, "kB") != 0)
		goto bad;
	*page_kib = kib;
	return 0;
bad:
	return verr_set(err, -EINVAL, "hugepages-alloc: target '%s' is not a hugepage pool (" POOL_PREFIX "SIZEkB)",
	    target);
}

static int
pool_read(const char *pool, const char *attr, uint64_t *out, struct verr *err)
{
	char *path = host_pathdup("%s/%s", pool, attr);
	char *s = host_read_line(path);
	int ret = 0;
	char *end;
	if (s == NULL) {
		ret = verr_set(err, -errno, "hugepages: cannot read %s: %s", path, strerror(errno));
	} else {
		errno = 0;
		unsigned long long v = strtoull(s, &end, 10);
		if (errno != 0 || end == s || *end != '\0')
			ret = verr_set(err, -EINVAL, "hugepages: %s holds '%s', not a page count", path, s);
		else
			*out = v;
	}
	free(s);
	free(path);
	return ret;
}

static int
pool_write_nr(const char *pool, uint64_t nr, struct verr *err)
{
	char *path = host_pathdup("%s/nr_hugepages", pool);
	char val[32];
	snprintf(val, sizeof(val), "%" PRIu64 "\n", nr);
	int ret = host_write(path, val);
	if (ret < 0)
		verr_set(err, ret, "hugepages: cannot set %s to %" PRIu64 ": %s", path, nr, strerror(-ret));
	free(path);
	return ret;
}

static int
hugepages_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	uint64_t page_kib, nr, free_pages;
	const char *pool = change_str(change, "target");
	if (pool_of(change, &page_kib, err) < 0)
		return err->code;
	if (change_arg_int(change, "pages", 0) <= 0)
		return verr_set(err, -EINVAL, "hugepages-alloc: args.pages must be a positive page count");
	if (pool_read(pool, "nr_hugepages", &nr, err) < 0 || pool_read(pool, "free_hugepages", &free_pages, err) < 0)
		return err->code;

	char *rel_path = host_pathdup("/proc/sys/kernel/osrelease");
	char *release = host_read_line(rel_path);
	char *zfs_path = host_pathdup("/sys/module/zfs");
	bool skip = hugepages_skip_compaction(release, host_exists(zfs_path));
	*saved = json_pack("{s:I, s:I, s:b}", "nr", (json_int_t)nr, "free", (json_int_t)free_pages,
	    "skip_compaction", skip);
	free(rel_path);
	free(release);
	free(zfs_path);
	return 0;
}

static int
hugepages_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	uint64_t page_kib, nr, free_pages;
	const char *pool = change_str(change, "target");
	if (pool_of(change, &page_kib, err) < 0)
		return err->code;
	uint64_t pages = (uint64_t)change_arg_int(change, "pages", 0);
	json_t *jnr = json_object_get(saved, "nr");
	if (pages == 0 || !json_is_integer(jnr))
		return verr_set(err, -EINVAL, "hugepages-alloc: the change or its saved state is incomplete");
	if (pool_read(pool, "nr_hugepages", &nr, err) < 0 || pool_read(pool, "free_hugepages", &free_pages, err) < 0)
		return err->code;
	if (free_pages >= pages) {
		log_debug("hugepages: %" PRIu64 " free in %s, the guest needs %" PRIu64 ": nothing to allocate",
		    free_pages, pool, pages);
		return 0;
	}

	/* Give the kernel the best chance at contiguous memory first. Neither
	 * step is essential: a refusal only lowers the odds. */
	sync();
	char *p = host_pathdup("/proc/sys/vm/drop_caches");
	int r = host_write(p, "3\n");
	if (r < 0)
		log_debug("hugepages: dropping caches through %s failed: %s", p, strerror(-r));
	free(p);
	if (!json_is_true(json_object_get(saved, "skip_compaction"))) {
		p = host_pathdup("/proc/sys/vm/compact_memory");
		r = host_write(p, "1\n");
		if (r < 0)
			log_debug("hugepages: compacting memory through %s failed: %s", p, strerror(-r));
		free(p);
	} else {
		log_debug("hugepages: ZFS is loaded on a kernel >= 6.3.1: not compacting memory");
	}

	uint64_t want = nr + (pages - free_pages);
	if (pool_write_nr(pool, want, err) < 0)
		return err->code;

	long deadline = time_now_ms() + HUGEPAGES_WAIT_MS;
	for (;;) {
		if (pool_read(pool, "nr_hugepages", &nr, err) < 0 ||
		    pool_read(pool, "free_hugepages", &free_pages, err) < 0)
			break;
		if (free_pages >= pages)
			return 0;
		/* The kernel settles nr_hugepages to what it could get. */
		if (nr < want) {
			/* free_hugepages as it stands with that settled nr */
			pool_read(pool, "free_hugepages", &free_pages, err);
			break;
		}
		if (time_now_ms() >= deadline)
			break;
		time_sleep_ms(50);
	}

	uint64_t orig = (uint64_t)json_integer_value(jnr);
	char psz[32], fit[32], asked[32];
	size_str(psz, sizeof(psz), page_kib);
	size_str(fit, sizeof(fit), free_pages * page_kib);
	size_str(asked, sizeof(asked), pages * page_kib);
	struct verr undo_err = { 0 };
	pool_write_nr(pool, orig, &undo_err);
	if (free_pages == 0)
		return verr_set(err, -ENOMEM,
		    "hugepages: the kernel could not allocate any of the %" PRIu64 " %s pages for -memory %s in %s "
		    "(memory too fragmented or too little free); run without -hugepages, or reserve pages at boot "
		    "with hugepagesz=%s hugepages=%" PRIu64,
		    pages, psz, asked, pool, psz, pages);
	return verr_set(err, -ENOMEM,
	    "hugepages: only %" PRIu64 " of the %" PRIu64 " %s pages for -memory %s could be allocated in %s; "
	    "the largest -memory that fits is %s (nr_hugepages put back to %" PRIu64 "), or reserve pages at boot "
	    "with hugepagesz=%s hugepages=%" PRIu64,
	    free_pages, pages, psz, asked, pool, fit, orig, psz, pages);
}

static int
hugepages_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	uint64_t page_kib, nr;
	const char *pool = change_str(change, "target");
	if (pool_of(change, &page_kib, err) < 0)
		return err->code;
	json_t *jnr = json_object_get(saved, "nr");
	if (!json_is_integer(jnr) || json_integer_value(jnr) < 0)
		return verr_set(err, -EINVAL, "hugepages-alloc: saved state for %s lacks the original nr_hugepages", pool);
	uint64_t orig = (uint64_t)json_integer_value(jnr);
	if (pool_read(pool, "nr_hugepages", &nr, err) < 0)
		return err->code;
	/* Only give back: a pool that someone else shrank meanwhile is theirs. */
	if (nr <= orig)
		return 0;
	return pool_write_nr(pool, orig, err);
}

const struct change_ops hugepages_alloc_ops = {
	.action = "hugepages-alloc",
	.prepare = hugepages_prepare,
	.apply = hugepages_apply,
	.undo = hugepages_undo,
};
