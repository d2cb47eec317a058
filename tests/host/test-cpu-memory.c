/* CPU topology and memory in the host snapshot: SMT siblings from sysfs,
 * online state, vendor, meminfo totals, hugepage pools and hugetlbfs mounts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "hostroot.h"
#include "snapshot.h"
#include "util.h"

static void
cpu_sibling_is_the_other_thread_of_the_core(void **state)
{
	const struct host_snapshot *snap = fixture_cached("desktop");
	assert_int_equal(snap->n_cpus, 16);
	assert_int_equal(snapshot_cpu_find(snap, 0)->sibling, 8);
	assert_int_equal(snapshot_cpu_find(snap, 8)->sibling, 0);
	assert_int_equal(snapshot_cpu_find(snap, 7)->sibling, 15);
	assert_int_equal(snapshot_cpu_find(snap, 3)->core_id, 3);
	assert_int_equal(snapshot_cpu_find(snap, 11)->core_id, 3);
	assert_int_equal(snapshot_cpu_find(snap, 11)->package_id, 0);
	assert_null(snapshot_cpu_find(snap, 16));
	for (size_t i = 0; i < snap->n_cpus; i++) {
		assert_int_equal(snap->cpus[i].cpu, (int)i);
		assert_true(snap->cpus[i].online);
	}
}

static void
cpu_siblings_follow_sysfs_whatever_the_numbering(void **state)
{
	/* Some AMD and ARM hosts number siblings adjacently (0,1 / 2,3): the
	 * snapshot must follow thread_siblings_list, not assume N+cores. */
	char *root = fixture_build(NULL, "{\"cpus\": {\"cores\": 2, \"threads\": 2}}");
	const char *lists[] = { "0-1", "0-1", "2-3", "2-3" };
	for (int c = 0; c < 4; c++) {
		char path[64];
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", c);
		fixture_write(root, path, lists[c]);
	}
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	assert_int_equal(snapshot_cpu_find(&snap, 0)->sibling, 1);
	assert_int_equal(snapshot_cpu_find(&snap, 1)->sibling, 0);
	assert_int_equal(snapshot_cpu_find(&snap, 2)->sibling, 3);
	assert_int_equal(snapshot_cpu_find(&snap, 3)->sibling, 2);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
cpu_without_smt_has_no_sibling(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("iommu-off", NULL, &snap);
	assert_int_equal(snap.n_cpus, 2);
	assert_int_equal(snap.cpus[0].sibling, -1);
	assert_int_equal(snap.cpus[1].sibling, -1);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
cpu_online_state_from_sysfs(void **state)
{
	char *root = fixture_build("desktop", NULL);
	fixture_write(root, "/sys/devices/system/cpu/cpu3/online", "0\n");
	/* the boot CPU has no online file on real hosts: it is always online */
	char *p = xasprintf("%s/sys/devices/system/cpu/cpu0/online", root);
	assert_int_equal(unlink(p), 0);
	free(p);
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	assert_false(snapshot_cpu_find(&snap, 3)->online);
	assert_true(snapshot_cpu_find(&snap, 0)->online);
	assert_true(snapshot_cpu_find(&snap, 4)->online);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
cpu_vendor_from_cpuinfo(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	assert_string_equal(snap.cpu_vendor, "GenuineIntel");
	snapshot_free(&snap);
	fixture_remove(root);
	root = fixture_snapshot("iommu-off", NULL, &snap);
	assert_string_equal(snap.cpu_vendor, "AuthenticAMD");
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
memory_totals_from_meminfo(void **state)
{
	const struct host_snapshot *snap = fixture_cached("desktop");
	assert_int_equal(snap->mem_total_kib, 32768000);
	assert_int_equal(snap->mem_available_kib, 28000000);
	assert_int_equal(snap->default_hugepage_kib, 2048);
}

static void
memory_missing_meminfo_is_an_error_naming_it(void **state)
{
	char *root = fixture_build("desktop", NULL);
	char *p = xasprintf("%s/proc/meminfo", root);
	assert_int_equal(unlink(p), 0);
	free(p);
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_true(snapshot_take(&snap, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "/proc/meminfo"));
	fixture_remove(root);
}

static void
hugepage_pools_per_page_size(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop",
	    "{\"hugepages\": {\"1048576\": [4, 3], \"2048\": [1024, 1000]}}", &snap);
	assert_int_equal(snap.n_hugepools, 2);
	assert_int_equal(snap.hugepools[0].page_kib, 2048);
	assert_int_equal(snap.hugepools[0].nr, 1024);
	assert_int_equal(snap.hugepools[0].free_pages, 1000);
	assert_int_equal(snap.hugepools[1].page_kib, 1048576);
	assert_int_equal(snap.hugepools[1].nr, 4);
	assert_int_equal(snap.hugepools[1].free_pages, 3);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
hugetlbfs_mounts_with_their_page_sizes(void **state)
{
	/* The kernel shows 1G pages as pagesize=1024M; a mount without the
	 * option serves the default size; /proc/mounts escapes spaces. */
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop",
	    "{\"hugepages\": {\"2048\": [0, 0], \"1048576\": [0, 0]},"
	    " \"mounts\": [[\"hugetlbfs\", \"/dev/hugepages\", \"hugetlbfs\", \"rw,relatime,pagesize=2M\"],"
	    "              [\"none\", \"/dev/hugepages1G\", \"hugetlbfs\", \"rw,relatime,pagesize=1024M\"],"
	    "              [\"none\", \"/mnt/huge\\\\040pages\", \"hugetlbfs\", \"rw,relatime\"],"
	    "              [\"tmpfs\", \"/dev/shm\", \"tmpfs\", \"rw,pagesize=2M\"]]}", &snap);
	assert_int_equal(snap.n_hugemounts, 3);
	assert_string_equal(snap.hugemounts[0].path, "/dev/hugepages");
	assert_int_equal(snap.hugemounts[0].page_kib, 2048);
	assert_string_equal(snap.hugemounts[1].path, "/dev/hugepages1G");
	assert_int_equal(snap.hugemounts[1].page_kib, 1048576);
	assert_string_equal(snap.hugemounts[2].path, "/mnt/huge pages");
	assert_int_equal(snap.hugemounts[2].page_kib, 2048);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
host_without_hugepages_records_none(void **state)
{
	char *root = fixture_build(NULL, "{\"hugepages\": {}, \"mounts\": []}");
	char *cmd = xasprintf("rm -rf %s/sys/kernel/mm/hugepages", root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	assert_int_equal(snap.n_hugepools, 0);
	assert_int_equal(snap.n_hugemounts, 0);
	snapshot_free(&snap);
	fixture_remove(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cpu_sibling_is_the_other_thread_of_the_core),
		cmocka_unit_test(cpu_siblings_follow_sysfs_whatever_the_numbering),
		cmocka_unit_test(cpu_without_smt_has_no_sibling),
		cmocka_unit_test(cpu_online_state_from_sysfs),
		cmocka_unit_test(cpu_vendor_from_cpuinfo),
		cmocka_unit_test(memory_totals_from_meminfo),
		cmocka_unit_test(memory_missing_meminfo_is_an_error_naming_it),
		cmocka_unit_test(hugepage_pools_per_page_size),
		cmocka_unit_test(hugetlbfs_mounts_with_their_page_sizes),
		cmocka_unit_test(host_without_hugepages_records_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
