/* -isolate: cgroup cpusets (v2 and v1), IRQ affinity and the workqueue mask
 * moved off the guest CPUs and restored byte for byte. The fixtures are laid
 * out as the kernel lays out /sys/fs/cgroup and /proc/irq on a 16-thread
 * (8 cores x 2) machine with systemd's top-level slices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "change.h"
#include "hostroot.h"
#include "isolate.h"
#include "memtest.h"
#include "util.h"

static const char spec[] = "{\"cpus\": {\"cores\": 8, \"threads\": 2}}";

static void
add_irqs(const char *root)
{
	memtest_write(root, "/proc/irq/0/smp_affinity_list", "0\n");          /* host only: untouched */
	memtest_write(root, "/proc/irq/1/smp_affinity_list", "0-15\n");       /* everywhere */
	memtest_write(root, "/proc/irq/9/smp_affinity_list", "0-15\n");
	memtest_write(root, "/proc/irq/16/smp_affinity_list", "3\n");         /* guest only */
	memtest_write(root, "/proc/irq/24/smp_affinity_list", "0-3\n");       /* both */
	memtest_write(root, "/proc/irq/default_smp_affinity", "ffff\n");
	memtest_write(root, "/sys/devices/virtual/workqueue/cpumask", "ffff\n");
}

static char *
fixture_v2(bool machine_slice)
{
	char *root = memtest_fixture(spec);
	memtest_write(root, "/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
	memtest_write(root, "/sys/fs/cgroup/cgroup.subtree_control", "cpuset cpu io memory pids\n");
	memtest_write(root, "/sys/fs/cgroup/cgroup.procs", "1\n");
	const char *slices[] = { "init.scope", "system.slice", "user.slice", "machine.slice" };
	for (size_t i = 0; i < nitems(slices) - (machine_slice ? 0 : 1); i++) {
		char *p = xasprintf("/sys/fs/cgroup/%s/cpuset.cpus", slices[i]);
		memtest_write(root, p, "\n");
		free(p);
		p = xasprintf("/sys/fs/cgroup/%s/cpuset.cpus.effective", slices[i]);
		memtest_write(root, p, "0-15\n");
		free(p);
	}
	memtest_write(root, "/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope/cgroup.procs", "4242\n");
	memtest_write(root, "/proc/self/cgroup", "0::/user.slice/user-0.slice/session-1.scope\n");
	add_irqs(root);
	return root;
}

static char *
fixture_v1(void)
{
	char *root = memtest_fixture(spec);
	memtest_write(root, "/sys/fs/cgroup/cpuset/cpuset.cpus", "0-15\n");
	memtest_write(root, "/sys/fs/cgroup/cpuset/cpuset.mems", "0\n");
	memtest_write(root, "/sys/fs/cgroup/cpuset/cgroup.procs", "1\n4242\n");
	memtest_write(root, "/sys/fs/cgroup/cpuset/system.slice/cpuset.cpus", "0-15\n");
	memtest_write(root, "/sys/fs/cgroup/cpuset/user.slice/cpuset.cpus", "0-15\n");
	memtest_write(root, "/proc/self/cgroup",
	    "12:cpuset:/\n11:memory:/user.slice\n1:name=systemd:/user.slice/user-0.slice/session-1.scope\n0::/\n");
	add_irqs(root);
	return root;
}

static json_t *
change(const char *action, const char *target, const char *guest)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s}}", "action", action, "target", target, "args", "guest_cpus", guest,
	    "name", "test");
}

static const struct change_ops *
ops(const char *action)
{
	const struct change_ops *o = change_find(action);
	assert_non_null(o);
	return o;
}

static void
assert_file(const char *root, const char *path, const char *want)
{
	char *s = memtest_read(root, path);
	if (s == NULL)
		fail_msg("%s is missing", path);
	if (strcmp(s, want) != 0)
		fail_msg("%s holds '%s', expected '%s'", path, s, want);
	free(s);
}

/* prepare + apply, check, then undo from the JSON the journal would hold,
 * and the fixture must be exactly as it was. */
static json_t *
do_apply(const char *action, const char *target, const char *guest)
{
	json_t *c = change(action, target, guest), *saved = NULL;
	struct verr err = { 0 };
	if (ops(action)->prepare(c, &saved, &err) < 0)
		fail_msg("prepare: %s", err.msg);
	if (ops(action)->apply(c, saved, &err) < 0)
		fail_msg("apply: %s", err.msg);
	char *d = json_dumps(saved, 0);
	json_decref(saved);
	saved = json_loads(d, 0, NULL);
	free(d);
	json_t *both = json_pack("{s:o, s:o}", "change", c, "saved", saved);
	return both;
}

static void
do_undo(json_t *both)
{
	struct verr err = { 0 };
	json_t *c = json_object_get(both, "change");
	const char *action = change_str(c, "action");
	if (ops(action)->undo(c, json_object_get(both, "saved"), &err) < 0)
		fail_msg("undo: %s", err.msg);
	/* a second undo (teardown, then -restore) finds nothing to do */
	if (ops(action)->undo(c, json_object_get(both, "saved"), &err) < 0)
		fail_msg("second undo: %s", err.msg);
	json_decref(both);
}

static void
cgroup_v2_slices_get_the_host_cpus_and_come_back_byte_for_byte(void **state)
{
	char *root = fixture_v2(true);
	char *before = memtest_tree(root);
	json_t *both = do_apply("cpuset-isolate", "/sys/fs/cgroup", "1-7,9-15");
	assert_file(root, "/sys/fs/cgroup/init.scope/cpuset.cpus", "0,8\n");
	assert_file(root, "/sys/fs/cgroup/system.slice/cpuset.cpus", "0,8\n");
	assert_file(root, "/sys/fs/cgroup/user.slice/cpuset.cpus", "0,8\n");
	assert_file(root, "/sys/fs/cgroup/machine.slice/cpuset.cpus", "0,8\n");
	/* vfio's own cgroup keeps every CPU, so QEMU can reach the guest's */
	assert_file(root, "/sys/fs/cgroup/vfio-test/cpuset.cpus", "0-15\n");
	char *pid = xasprintf("%d\n", (int)getpid());
	assert_file(root, "/sys/fs/cgroup/vfio-test/cgroup.procs", pid);
	free(pid);
	do_undo(both);
	char *after = memtest_tree(root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	memtest_rmtree(root);
	free(root);
}

static void
cgroup_v2_without_machine_slice_touches_only_the_slices_present(void **state)
{
	char *root = fixture_v2(false);
	char *before = memtest_tree(root);
	json_t *both = do_apply("cpuset-isolate", "/sys/fs/cgroup", "2-7,10-15");
	assert_file(root, "/sys/fs/cgroup/user.slice/cpuset.cpus", "0-1,8-9\n");
	char *p = xasprintf("%s/sys/fs/cgroup/machine.slice", root);
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	do_undo(both);
	char *after = memtest_tree(root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	memtest_rmtree(root);
	free(root);
}

static void
cgroup_v1_cpuset_slices_get_the_host_cpus_and_come_back_byte_for_byte(void **state)
{
	char *root = fixture_v1();
	char *before = memtest_tree(root);
	json_t *both = do_apply("cpuset-isolate", "/sys/fs/cgroup", "1-7,9-15");
	assert_file(root, "/sys/fs/cgroup/cpuset/system.slice/cpuset.cpus", "0,8\n");
	assert_file(root, "/sys/fs/cgroup/cpuset/user.slice/cpuset.cpus", "0,8\n");
	assert_file(root, "/sys/fs/cgroup/cpuset/vfio-test/cpuset.cpus", "0-15\n");
	/* v1 takes no task into a cpuset without memory nodes */
	assert_file(root, "/sys/fs/cgroup/cpuset/vfio-test/cpuset.mems", "0\n");
	do_undo(both);
	char *after = memtest_tree(root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	memtest_rmtree(root);
	free(root);
}

static void
irqs_touching_guest_cpus_move_to_host_cpus_and_come_back(void **state)
{
	char *root = fixture_v2(true);
	char *before = memtest_tree(root);
	json_t *both = do_apply("irq-affinity", "/proc/irq", "2-7,10-15");
	assert_file(root, "/proc/irq/0/smp_affinity_list", "0\n");
	assert_file(root, "/proc/irq/1/smp_affinity_list", "0-1,8-9\n");
	assert_file(root, "/proc/irq/9/smp_affinity_list", "0-1,8-9\n");
	assert_file(root, "/proc/irq/16/smp_affinity_list", "0-1,8-9\n");
	assert_file(root, "/proc/irq/24/smp_affinity_list", "0-1\n");
	assert_file(root, "/proc/irq/default_smp_affinity", "303\n");
	do_undo(both);
	char *after = memtest_tree(root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	memtest_rmtree(root);
	free(root);
}

/* A real IRQ file that refuses writes with EIO, as the kernel does for IRQs
 * it cannot move: effective_affinity_list is readable and never writable. */
static char *
refusing_irq_file(void)
{
	DIR *d = opendir("/proc/irq");
	if (d == NULL)
		return NULL;
	struct dirent *de;
	char *found = NULL;
	while (found == NULL && (de = readdir(d)) != NULL) {
		char *p = xasprintf("/proc/irq/%s/effective_affinity_list", de->d_name);
		char *s = host_read(p, NULL);
		int cpu = s ? atoi(s) : -1;
		/* one whose CPUs the test gives to the guest (0-7) */
		if (s != NULL && *s >= '0' && *s <= '9' && cpu < 8 && strpbrk(s, ",-") == NULL)
			found = p;
		else
			free(p);
		free(s);
	}
	closedir(d);
	return found;
}

static void
an_irq_the_kernel_refuses_to_move_is_left_and_the_rest_still_move(void **state)
{
	char *real = refusing_irq_file();
	if (real == NULL)
		skip();
	char *root = fixture_v2(true);
	char *link = xasprintf("%s/proc/irq/7", root);
	assert_int_equal(mkdir(link, 0755), 0);
	free(link);
	link = xasprintf("%s/proc/irq/7/smp_affinity_list", root);
	assert_int_equal(symlink(real, link), 0);
	char *before = memtest_tree(root);
	json_t *both = do_apply("irq-affinity", "/proc/irq", "0-7");
	assert_file(root, "/proc/irq/1/smp_affinity_list", "8-15\n");
	assert_file(root, "/proc/irq/16/smp_affinity_list", "8-15\n");
	/* the refused one is still the kernel's own file, untouched */
	char t[256] = { 0 };
	assert_true(readlink(link, t, sizeof(t) - 1) > 0);
	assert_string_equal(t, real);
	do_undo(both);
	char *after = memtest_tree(root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	free(link);
	free(real);
	memtest_rmtree(root);
	free(root);
}

static void
workqueue_mask_moves_to_host_cpus_and_comes_back(void **state)
{
	char *root = fixture_v2(true);
	char *before = memtest_tree(root);
	json_t *both = do_apply("workqueue-cpumask", "/sys/devices/virtual/workqueue/cpumask", "1-7,9-15");
	assert_file(root, "/sys/devices/virtual/workqueue/cpumask", "101\n");
	do_undo(both);
	char *after = memtest_tree(root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	memtest_rmtree(root);
	free(root);
}

static void
refuse(const char *guest, const char *expect)
{
	char *root = fixture_v2(true);
	char *before = memtest_tree(root);
	const char *actions[] = { "cpuset-isolate", "irq-affinity", "workqueue-cpumask" };
	for (size_t i = 0; i < nitems(actions); i++) {
		json_t *c = change(actions[i], "/", guest), *saved = NULL;
		struct verr err = { 0 };
		assert_int_equal(ops(actions[i])->prepare(c, &saved, &err), -EINVAL);
		if (strstr(err.msg, expect) == NULL)
			fail_msg("%s: '%s' lacks '%s'", actions[i], err.msg, expect);
		assert_null(saved);
		json_decref(c);
	}
	char *after = memtest_tree(root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	memtest_rmtree(root);
	free(root);
}

static void
guest_cpus_that_are_not_online_are_refused_and_nothing_changes(void **state)
{
	refuse("2-7,20", "CPUs 20 are not online (online: 0-15)");
}

static void
giving_every_cpu_to_the_guest_is_refused(void **state)
{
	refuse("0-15", "leave at least core 0 to the host");
}

static void
without_any_cpuset_hierarchy_isolation_is_refused_with_the_reason(void **state)
{
	char *root = memtest_fixture(spec);
	json_t *c = change("cpuset-isolate", "/sys/fs/cgroup", "2-7"), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops("cpuset-isolate")->prepare(c, &saved, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "neither cgroup v2"));
	json_decref(c);
	memtest_rmtree(root);
	free(root);
}

static void
the_rundown_lists_every_file_with_old_and_new_values(void **state)
{
	char *root = fixture_v2(true);
	json_t *c = change("cpuset-isolate", "/sys/fs/cgroup", "1-7,9-15"), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops("cpuset-isolate")->prepare(c, &saved, &err), 0);
	struct strv lines = { 0 };
	isolate_describe(c, saved, &lines);
	assert_int_equal(lines.n, 5);
	assert_string_equal(lines.v[0], "create cgroup /sys/fs/cgroup/vfio-test with CPUs 0-15 and move vfio (and so QEMU) into it");
	assert_string_equal(lines.v[3], "/sys/fs/cgroup/user.slice/cpuset.cpus: '' -> '0,8'");
	strv_free(&lines);
	json_decref(saved);
	json_decref(c);

	c = change("irq-affinity", "/proc/irq", "2-7,10-15");
	saved = NULL;
	assert_int_equal(ops("irq-affinity")->prepare(c, &saved, &err), 0);
	isolate_describe(c, saved, &lines);
	assert_int_equal(lines.n, 5);
	assert_string_equal(lines.v[0], "/proc/irq/1/smp_affinity_list: '0-15' -> '0-1,8-9' (left alone if the kernel refuses)");
	assert_string_equal(lines.v[4], "/proc/irq/default_smp_affinity: 'ffff' -> '303'");
	strv_free(&lines);
	json_decref(saved);
	json_decref(c);
	memtest_rmtree(root);
	free(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cgroup_v2_slices_get_the_host_cpus_and_come_back_byte_for_byte),
		cmocka_unit_test(cgroup_v2_without_machine_slice_touches_only_the_slices_present),
		cmocka_unit_test(cgroup_v1_cpuset_slices_get_the_host_cpus_and_come_back_byte_for_byte),
		cmocka_unit_test(irqs_touching_guest_cpus_move_to_host_cpus_and_come_back),
		cmocka_unit_test(an_irq_the_kernel_refuses_to_move_is_left_and_the_rest_still_move),
		cmocka_unit_test(workqueue_mask_moves_to_host_cpus_and_comes_back),
		cmocka_unit_test(guest_cpus_that_are_not_online_are_refused_and_nothing_changes),
		cmocka_unit_test(giving_every_cpu_to_the_guest_is_refused),
		cmocka_unit_test(without_any_cpuset_hierarchy_isolation_is_refused_with_the_reason),
		cmocka_unit_test(the_rundown_lists_every_file_with_old_and_new_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
