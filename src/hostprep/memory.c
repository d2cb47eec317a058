/* Memory: totals from /proc/meminfo, hugepage pools from
 * /sys/kernel/mm/hugepages, hugetlbfs mounts from /proc/mounts (the mount
 * a guest's memory-backend-file lives on, with the page size it serves),
 * the room in /dev/shm (Looking Glass), and the locked-memory limit QEMU
 * inherits (VFIO pins all guest RAM). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <linux/capability.h>

#include "hostroot.h"
#include "log.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

static void
meminfo_scan(struct host_snapshot *snap)
{
	char path[PATH_MAX];
	if (host_path(path, sizeof(path), "/proc/meminfo") == NULL)
		return;
	char *text = host_read(path, NULL);
	if (text == NULL) {
		log_debug("cannot read %s", path);
		return;
	}
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{ "MemTotal:", offsetof(struct host_snapshot, mem_total_kib) },
		{ "MemAvailable:", offsetof(struct host_snapshot, mem_available_kib) },
		{ "Hugepagesize:", offsetof(struct host_snapshot, default_hugepage_kib) },
	};
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		for (size_t i = 0; i < nitems(keys); i++) {
			if (!str_startswith(line, keys[i].key))
				continue;
			unsigned long long v = strtoull(line + strlen(keys[i].key), NULL, 10);
			*(uint64_t *)((char *)snap + keys[i].off) = v;
		}
		line = nl ? nl + 1 : NULL;
	}
	free(text);
}

static int
hugepool_cmp(const void *a, const void *b)
{
	const struct hugepage_pool *x = a, *y = b;
	return (x->page_kib > y->page_kib) - (x->page_kib < y->page_kib);
}

static void
hugepools_scan(struct host_snapshot *snap)
{
	char dir[PATH_MAX];
	if (host_path(dir, sizeof(dir), "/sys/kernel/mm/hugepages") == NULL)
		return;
	DIR *d = opendir(dir);
	if (d == NULL) {
		log_debug("no hugepage pools: %s: %s", dir, strerror(errno));
		return;
	}
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		unsigned long long kib;
		char kb[3];
		if (sscanf(de->d_name, "hugepages-%llu%2s", &kib, kb) != 2 || strcmp(kb, "kB") != 0)
			continue;
		struct hugepage_pool *p = snap_grow(&snap->hugepools, &snap->n_hugepools, &cap, sizeof(*p));
		p->page_kib = kib;
		char path[PATH_MAX];
		unsigned long long v;
		if (snprintf(path, sizeof(path), "%s/%s/nr_hugepages", dir, de->d_name) < (int)sizeof(path) &&
		    snap_read_ulong(path, 10, &v))
			p->nr = v;
		if (snprintf(path, sizeof(path), "%s/%s/free_hugepages", dir, de->d_name) < (int)sizeof(path) &&
		    snap_read_ulong(path, 10, &v))
			p->free_pages = v;
	}
	closedir(d);
	if (snap->n_hugepools > 1)
		qsort(snap->hugepools, snap->n_hugepools, sizeof(*snap->hugepools), hugepool_cmp);
}

/* /proc/mounts escapes space, tab, newline and backslash as \ooo. */
static void
mount_unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
		    r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* "2M", "1024M", "1G", "2048k": the kernel prints K or M, users write G. */
static uint64_t
pagesize_kib(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return 0;
	switch (*end) {
	case 'k': case 'K': return v;
	case 'm': case 'M': return v * 1024;
	case 'g': case 'G': return v * 1024 * 1024;
	case '\0': case ',': return v / 1024;
	default: return 0;
	}
}

static void
hugemounts_scan(struct host_snapshot *snap)
{
	char path[PATH_MAX];
	if (host_path(path, sizeof(path), "/proc/mounts") == NULL)
		return;
	char *text = host_read(path, NULL);
	if (text == NULL) {
		log_debug("cannot read %s", path);
		return;
	}
	size_t cap = 0;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char *save = NULL;
		strtok_r(line, " ", &save);
		char *dir = strtok_r(NULL, " ", &save);
		char *type = strtok_r(NULL, " ", &save);
		char *opts = strtok_r(NULL, " ", &save);
		if (dir && type && strcmp(type, "hugetlbfs") == 0) {
			struct hugetlbfs_mount *m = snap_grow(&snap->hugemounts, &snap->n_hugemounts, &cap, sizeof(*m));
			mount_unescape(dir);
			snap_copy(m->path, sizeof(m->path), dir);
			m->page_kib = snap->default_hugepage_kib;
			const char *ps = opts ? strstr(opts, "pagesize=") : NULL;
			if (ps != NULL && (ps == opts || ps[-1] == ',')) {
				uint64_t kib = pagesize_kib(ps + strlen("pagesize="));
				if (kib != 0)
					m->page_kib = kib;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	free(text);
}

/* The supervisor's own RLIMIT_MEMLOCK, which QEMU inherits, and whether it
 * may raise it (CAP_SYS_RESOURCE; root without it may not), read from
 * /proc/self under the host root like every other fact (so a fixture can
 * stand for a confined supervisor). */
void
memory_memlock_scan(struct host_snapshot *snap)
{
	char path[PATH_MAX];
	bool capped = false;
	char *text = host_path(path, sizeof(path), "/proc/self/limits") ? host_read(path, NULL) : NULL;
	/* "Max locked memory         8388608              8388608              bytes" */
	const char *line = text ? strstr(text, "Max locked memory") : NULL;
	char soft[32], hard[32];
	if (line != NULL && sscanf(line + strlen("Max locked memory"), "%31s %31s", soft, hard) == 2 &&
	    strcmp(hard, "unlimited") != 0) {
		snap->memlock_max = strtoull(hard, NULL, 10);
		capped = true;
	}
	free(text);
	text = host_path(path, sizeof(path), "/proc/self/status") ? host_read(path, NULL) : NULL;
	line = text ? strstr(text, "\nCapEff:") : NULL;
	if (line != NULL) {
		unsigned long long caps = strtoull(line + strlen("\nCapEff:"), NULL, 16);
		snap->memlock_capped = capped && !((caps >> CAP_SYS_RESOURCE) & 1);
	}
	free(text);
}

static void
shm_scan(struct host_snapshot *snap)
{
	char path[PATH_MAX];
	struct statvfs sv;
	if (host_path(path, sizeof(path), "/dev/shm") == NULL || statvfs(path, &sv) < 0)
		return;
	snap->shm_total_kib = (uint64_t)sv.f_blocks * sv.f_frsize / 1024;
	snap->shm_avail_kib = (uint64_t)sv.f_bavail * sv.f_frsize / 1024;
}

int
memory_scan(struct host_snapshot *snap, struct verr *err)
{
	memory_memlock_scan(snap);
	shm_scan(snap);
	meminfo_scan(snap);
	if (snap->mem_total_kib == 0)
		return verr_set(err, -EIO, "cannot read the host's memory size from %s/proc/meminfo; check that /proc is mounted",
		    hostroot_get());
	hugepools_scan(snap);
	hugemounts_scan(snap);
	return 0;
}
