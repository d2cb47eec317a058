/* -hugepages: what the plan computes from the snapshot, and the
 * hugepages-alloc host change against a fixture pool whose nr_hugepages
 * behaves like the kernel's: a thread plays the kernel, granting at most
 * `capacity` pages and settling nr_hugepages/free_hugepages to what it gave. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "change.h"
#include "hostroot.h"
#include "hugepages.h"
#include "memtest.h"
#include "util.h"

#define POOL2M "/sys/kernel/mm/hugepages/hugepages-2048kB"

/* ---- the plan's arithmetic -------------------------------------------- */

static struct hugepage_pool pools[2];
static struct hugetlbfs_mount mounts[2];

static void
snap_init(struct host_snapshot *snap, uint64_t nr2m, uint64_t free2m, uint64_t nr1g, uint64_t free1g)
{
	memset(snap, 0, sizeof(*snap));
	pools[0] = (struct hugepage_pool){ 2048, nr2m, free2m };
	pools[1] = (struct hugepage_pool){ 1048576, nr1g, free1g };
	memset(mounts, 0, sizeof(mounts));
	snprintf(mounts[0].path, sizeof(mounts[0].path), "/dev/hugepages");
	mounts[0].page_kib = 2048;
	snprintf(mounts[1].path, sizeof(mounts[1].path), "/mnt/huge1g");
	mounts[1].page_kib = 1048576;
	snap->hugepools = pools;
	snap->n_hugepools = 2;
	snap->hugemounts = mounts;
	snap->n_hugemounts = 2;
	snap->default_hugepage_kib = 2048;
}

static void
plan_uses_free_preallocated_pages(void **state)
{
	struct host_snapshot snap;
	struct hugepages_need need;
	struct verr err = { 0 };
	snap_init(&snap, 5000, 4096, 0, 0);
	assert_int_equal(hugepages_plan(&snap, NULL, 8192, &need, &err), 0);
	assert_string_equal(need.mount, "/dev/hugepages");
	assert_int_equal(need.pages, 4096);
	assert_false(need.alloc);
	assert_string_equal(need.pool, POOL2M);
}

static void
plan_raises_nr_by_the_shortfall(void **state)
{
	struct host_snapshot snap;
	struct hugepages_need need;
	struct verr err = { 0 };
	snap_init(&snap, 100, 40, 0, 0);
	assert_int_equal(hugepages_plan(&snap, "/dev/hugepages/", 8192, &need, &err), 0);
	assert_true(need.alloc);
	assert_int_equal(need.new_nr, 100 + 4096 - 40);
}

static void
plan_uses_the_1g_mount_page_size(void **state)
{
	struct host_snapshot snap;
	struct hugepages_need need;
	struct verr err = { 0 };
	snap_init(&snap, 0, 0, 16, 16);
	assert_int_equal(hugepages_plan(&snap, "/mnt/huge1g", 12288, &need, &err), 0);
	assert_int_equal(need.page_kib, 1048576);
	assert_int_equal(need.pages, 12);
	assert_false(need.alloc);
	assert_string_equal(need.pool, "/sys/kernel/mm/hugepages/hugepages-1048576kB");
}

static void
plan_refuses_memory_not_a_whole_number_of_1g_pages(void **state)
{
	struct host_snapshot snap;
	struct hugepages_need need;
	struct verr err = { 0 };
	snap_init(&snap, 0, 0, 16, 16);
	assert_int_equal(hugepages_plan(&snap, "/mnt/huge1g", 1500, &need, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "-memory 1500M"));
	assert_non_null(strstr(err.msg, "multiple of 1G"));
}

static void
plan_refuses_a_path_that_is_not_a_hugetlbfs_mount(void **state)
{
	struct host_snapshot snap;
	struct hugepages_need need;
	struct verr err = { 0 };
	snap_init(&snap, 0, 0, 0, 0);
	assert_int_equal(hugepages_plan(&snap, "/tmp", 4096, &need, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "/tmp is not a hugetlbfs mount"));
	assert_non_null(strstr(err.msg, "mount -t hugetlbfs"));
}

static void
plan_refuses_a_page_size_without_a_pool(void **state)
{
	struct host_snapshot snap;
	struct hugepages_need need;
	struct verr err = { 0 };
	snap_init(&snap, 0, 0, 0, 0);
	snap.n_hugepools = 1;         /* no 1G pool on this kernel */
	assert_int_equal(hugepages_plan(&snap, "/mnt/huge1g", 4096, &need, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "hugepagesz=1G"));
}

static void
zfs_guard_skips_compaction_from_6_3_1_only_with_zfs(void **state)
{
	assert_true(hugepages_skip_compaction("6.3.1-arch1-1", true));
	assert_true(hugepages_skip_compaction("6.6.0", true));
	assert_true(hugepages_skip_compaction("7.0.0", true));
	assert_false(hugepages_skip_compaction("6.3.0-1-amd64", true));
	assert_false(hugepages_skip_compaction("6.1.0-28-amd64", true));
	assert_false(hugepages_skip_compaction("5.19.17", true));
	assert_false(hugepages_skip_compaction("6.6.0", false));
}

/* ---- the host change, with a kernel stand-in -------------------------- */

struct fake_kernel {
	char *dir;               /* pool directory in the fixture */
	uint64_t capacity;       /* most pages the "kernel" can find */
	uint64_t used;           /* pages in use by someone else */
	int stop[2];
	int inotify;             /* watching before the test writes anything */
	pthread_t thread;
	bool running;
	int writes;              /* nr_hugepages writes seen */
};

static void
put(const char *dir, const char *name, uint64_t v)
{
	char *tmp = xasprintf("%s/.%s.tmp", dir, name), *dst = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(tmp, "w");
	fprintf(f, "%llu\n", (unsigned long long)v);
	fclose(f);
	rename(tmp, dst);
	free(tmp);
	free(dst);
}

static void
kernel_handle(struct fake_kernel *k)
{
	char *p = xasprintf("%s/nr_hugepages", k->dir);
	char *s = host_read(p, NULL);
	free(p);
	if (s == NULL)
		return;
	uint64_t want = strtoull(s, NULL, 10);
	free(s);
	uint64_t got = want < k->capacity ? want : k->capacity;
	if (got < k->used)
		got = k->used;   /* pages in use cannot be freed */
	/* As the kernel, which does it all inside the write(): free first,
	 * and nr_hugepages only rewritten when it settles below the request
	 * (a granted request already reads back as written). */
	put(k->dir, "free_hugepages", got - k->used);
	if (got != want)
		put(k->dir, "nr_hugepages", got);
	k->writes++;
}

static void *
kernel_main(void *arg)
{
	struct fake_kernel *k = arg;
	int in = k->inotify;
	for (;;) {
		struct pollfd p[2] = { { .fd = in, .events = POLLIN }, { .fd = k->stop[0], .events = POLLIN } };
		poll(p, 2, -1);
		char buf[4096] __attribute__((aligned(8)));
		ssize_t n;
		while ((n = read(in, buf, sizeof(buf))) > 0) {
			for (char *q = buf; q < buf + n;) {
				struct inotify_event *ev = (struct inotify_event *)q;
				if (ev->len > 0 && strcmp(ev->name, "nr_hugepages") == 0)
					kernel_handle(k);
				q += sizeof(*ev) + ev->len;
			}
		}
		if (p[1].revents & POLLIN)
			break;
	}
	close(in);
	return NULL;
}

static void
kernel_start(struct fake_kernel *k, const char *root, uint64_t capacity, uint64_t used)
{
	k->dir = xasprintf("%s" POOL2M, root);
	k->capacity = capacity;
	k->used = used;
	k->writes = 0;
	assert_int_equal(pipe(k->stop), 0);
	k->inotify = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	assert_true(k->inotify >= 0);
	assert_true(inotify_add_watch(k->inotify, k->dir, IN_CLOSE_WRITE) >= 0);
	assert_int_equal(pthread_create(&k->thread, NULL, kernel_main, k), 0);
	k->running = true;
}

/* Stops the stand-in after it has answered every write made so far. */
static void
kernel_stop(struct fake_kernel *k)
{
	if (!k->running)
		return;
	k->running = false;
	if (write(k->stop[1], "x", 1) != 1)
		abort();
	pthread_join(k->thread, NULL);
	close(k->stop[0]);
	close(k->stop[1]);
	free(k->dir);
}

/* One stand-in at a time; the teardown stops it even when a test fails. */
static struct fake_kernel kernel;

static int
kernel_teardown(void **state)
{
	kernel_stop(&kernel);
	return 0;
}

static char *
spec_for(uint64_t nr, uint64_t free_pages, const char *osrelease, bool zfs)
{
	return xasprintf("{\"osrelease\": \"%s\", \"zfs\": %s, \"hugepages\": {\"2048\": [%llu, %llu]}}", osrelease,
	    zfs ? "true" : "false", (unsigned long long)nr, (unsigned long long)free_pages);
}

static json_t *
change_for(uint64_t pages)
{
	return json_pack("{s:s, s:s, s:{s:I}}", "action", "hugepages-alloc", "target", POOL2M, "args", "pages",
	    (json_int_t)pages);
}

static uint64_t
read_u64(const char *root, const char *path)
{
	char *s = memtest_read(root, path);
	assert_non_null(s);
	uint64_t v = strtoull(s, NULL, 10);
	free(s);
	return v;
}

static const struct change_ops *
ops(void)
{
	const struct change_ops *o = change_find("hugepages-alloc");
	assert_non_null(o);
	return o;
}

static void
enough_free_pages_change_nothing(void **state)
{
	char *spec = spec_for(4096, 4096, "6.1.0-28-amd64", false);
	char *root = memtest_fixture(spec);
	char *before = memtest_tree(root);
	json_t *c = change_for(2048), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops()->prepare(c, &saved, &err), 0);
	assert_int_equal(ops()->apply(c, saved, &err), 0);
	char *after = memtest_tree(root);
	assert_string_equal(before, after);      /* no drop_caches, no compaction, same nr */
	assert_int_equal(ops()->undo(c, saved, &err), 0);
	free(after);
	after = memtest_tree(root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	json_decref(c);
	json_decref(saved);
	memtest_rmtree(root);
	free(root);
	free(spec);
}

static void
allocation_raises_nr_and_drops_caches_and_compacts(void **state)
{
	char *spec = spec_for(0, 0, "6.1.0-28-amd64", false);
	char *root = memtest_fixture(spec);
	kernel_start(&kernel, root, 100000, 0);
	json_t *c = change_for(4096), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops()->prepare(c, &saved, &err), 0);
	assert_int_equal(ops()->apply(c, saved, &err), 0);
	kernel_stop(&kernel);
	assert_int_equal(read_u64(root, POOL2M "/nr_hugepages"), 4096);
	assert_int_equal(read_u64(root, POOL2M "/free_hugepages"), 4096);
	char *dc = memtest_read(root, "/proc/sys/vm/drop_caches"), *cm = memtest_read(root, "/proc/sys/vm/compact_memory");
	assert_string_equal(dc, "3\n");
	assert_string_equal(cm, "1\n");
	free(dc);
	free(cm);
	json_decref(c);
	json_decref(saved);
	memtest_rmtree(root);
	free(root);
	free(spec);
}

static void
short_allocation_fails_with_the_largest_memory_that_fits_and_puts_nr_back(void **state)
{
	char *spec = spec_for(0, 0, "6.1.0-28-amd64", false);
	char *root = memtest_fixture(spec);
	kernel_start(&kernel, root, 1536, 0);          /* 3G of 2M pages, 8G wanted */
	json_t *c = change_for(4096), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops()->prepare(c, &saved, &err), 0);
	assert_int_equal(ops()->apply(c, saved, &err), -ENOMEM);
	kernel_stop(&kernel);
	assert_non_null(strstr(err.msg, "only 1536 of the 4096 2M pages"));
	assert_non_null(strstr(err.msg, "largest -memory that fits is 3G"));
	assert_int_equal(read_u64(root, POOL2M "/nr_hugepages"), 0);
	json_decref(c);
	json_decref(saved);
	memtest_rmtree(root);
	free(root);
	free(spec);
}

static void
zfs_on_6_3_1_drops_caches_but_does_not_compact(void **state)
{
	char *spec = spec_for(0, 0, "6.3.1-arch1-1", true);
	char *root = memtest_fixture(spec);
	kernel_start(&kernel, root, 100000, 0);
	json_t *c = change_for(512), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops()->prepare(c, &saved, &err), 0);
	assert_int_equal(ops()->apply(c, saved, &err), 0);
	kernel_stop(&kernel);
	char *dc = memtest_read(root, "/proc/sys/vm/drop_caches"), *cm = memtest_read(root, "/proc/sys/vm/compact_memory");
	assert_string_equal(dc, "3\n");
	assert_string_equal(cm, "");              /* never written */
	assert_int_equal(read_u64(root, POOL2M "/nr_hugepages"), 512);
	free(dc);
	free(cm);
	json_decref(c);
	json_decref(saved);
	memtest_rmtree(root);
	free(root);
	free(spec);
}

static void
undo_releases_only_the_pages_this_run_allocated(void **state)
{
	/* 512 preallocated at boot, 100 of them free, 200 in use elsewhere... */
	char *spec = spec_for(512, 312, "6.1.0-28-amd64", false);
	char *root = memtest_fixture(spec);
	kernel_start(&kernel, root, 100000, 200);
	json_t *c = change_for(1024), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops()->prepare(c, &saved, &err), 0);
	/* ... the journal round trip: undo gets saved back from JSON */
	char *dumped = json_dumps(saved, 0);
	json_decref(saved);
	saved = json_loads(dumped, 0, NULL);
	free(dumped);
	assert_int_equal(ops()->apply(c, saved, &err), 0);
	assert_int_equal(read_u64(root, POOL2M "/nr_hugepages"), 512 + 1024 - 312);
	assert_int_equal(ops()->undo(c, saved, &err), 0);
	assert_int_equal(ops()->undo(c, saved, &err), 0);   /* idempotent */
	kernel_stop(&kernel);
	assert_int_equal(read_u64(root, POOL2M "/nr_hugepages"), 512);
	assert_int_equal(read_u64(root, POOL2M "/free_hugepages"), 312);
	json_decref(c);
	json_decref(saved);
	memtest_rmtree(root);
	free(root);
	free(spec);
}

static void
undo_leaves_a_pool_someone_else_shrank(void **state)
{
	char *spec = spec_for(512, 512, "6.1.0-28-amd64", false);
	char *root = memtest_fixture(spec);
	json_t *c = change_for(1024);
	json_t *saved = json_pack("{s:I, s:I, s:b}", "nr", (json_int_t)600, "free", (json_int_t)600, "skip_compaction", 0);
	struct verr err = { 0 };
	assert_int_equal(ops()->undo(c, saved, &err), 0);
	assert_int_equal(read_u64(root, POOL2M "/nr_hugepages"), 512);
	json_decref(c);
	json_decref(saved);
	memtest_rmtree(root);
	free(root);
	free(spec);
}

static void
the_plans_change_allocates_what_the_plan_computed(void **state)
{
	char *spec = spec_for(512, 312, "6.1.0-28-amd64", false);
	char *root = memtest_fixture(spec);
	struct host_snapshot snap;
	snap_init(&snap, 512, 312, 0, 0);
	struct hugepages_need need;
	struct verr err = { 0 };
	assert_int_equal(hugepages_plan(&snap, NULL, 2048, &need, &err), 0);
	json_t *c = hugepages_change(&need), *saved = NULL;
	assert_non_null(c);
	assert_string_equal(change_str(c, "from"), "512");
	assert_string_equal(change_str(c, "to"), "1224");
	kernel_start(&kernel, root, 100000, 200);
	assert_int_equal(ops()->prepare(c, &saved, &err), 0);
	assert_int_equal(ops()->apply(c, saved, &err), 0);
	kernel_stop(&kernel);
	assert_int_equal(read_u64(root, POOL2M "/nr_hugepages"), 1224);
	json_decref(c);
	json_decref(saved);
	/* enough free: no change at all */
	snap_init(&snap, 2048, 2048, 0, 0);
	assert_int_equal(hugepages_plan(&snap, NULL, 2048, &need, &err), 0);
	assert_null(hugepages_change(&need));
	memtest_rmtree(root);
	free(root);
	free(spec);
}

static void
a_target_that_is_not_a_pool_is_refused(void **state)
{
	char *spec = spec_for(0, 0, "6.1.0-28-amd64", false);
	char *root = memtest_fixture(spec);
	json_t *c = json_pack("{s:s, s:s, s:{s:i}}", "action", "hugepages-alloc", "target", "/proc/sys/vm/drop_caches",
	    "args", "pages", 4);
	json_t *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops()->prepare(c, &saved, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a hugepage pool"));
	assert_null(saved);
	json_decref(c);
	memtest_rmtree(root);
	free(root);
	free(spec);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plan_uses_free_preallocated_pages),
		cmocka_unit_test(plan_raises_nr_by_the_shortfall),
		cmocka_unit_test(plan_uses_the_1g_mount_page_size),
		cmocka_unit_test(plan_refuses_memory_not_a_whole_number_of_1g_pages),
		cmocka_unit_test(plan_refuses_a_path_that_is_not_a_hugetlbfs_mount),
		cmocka_unit_test(plan_refuses_a_page_size_without_a_pool),
		cmocka_unit_test(zfs_guard_skips_compaction_from_6_3_1_only_with_zfs),
		cmocka_unit_test_teardown(enough_free_pages_change_nothing, kernel_teardown),
		cmocka_unit_test_teardown(allocation_raises_nr_and_drops_caches_and_compacts, kernel_teardown),
		cmocka_unit_test_teardown(short_allocation_fails_with_the_largest_memory_that_fits_and_puts_nr_back, kernel_teardown),
		cmocka_unit_test_teardown(zfs_on_6_3_1_drops_caches_but_does_not_compact, kernel_teardown),
		cmocka_unit_test_teardown(undo_releases_only_the_pages_this_run_allocated, kernel_teardown),
		cmocka_unit_test(undo_leaves_a_pool_someone_else_shrank),
		cmocka_unit_test_teardown(the_plans_change_allocates_what_the_plan_computed, kernel_teardown),
		cmocka_unit_test(a_target_that_is_not_a_pool_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
