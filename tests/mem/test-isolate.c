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
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "change.h"
#include "cpulist.h"
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
	/* Processes in the root cpuset are moved by writing pids one by one,
	 * which a plain file cannot model: the real-kernel test below does. */
	memtest_write(root, "/sys/fs/cgroup/cpuset/cgroup.procs", "");
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
	/* the shield for everything in the root cpuset */
	assert_file(root, "/sys/fs/cgroup/cpuset/vfio-host-test/cpuset.cpus", "0,8\n");
	assert_file(root, "/sys/fs/cgroup/cpuset/vfio-host-test/cpuset.mems", "0\n");
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
the_plans_three_changes_prepare_and_undo_cleanly(void **state)
{
	char *root = fixture_v2(true);
	char *before = memtest_tree(root);
	json_t *changes = isolate_changes("1-7,9-15", "test");
	assert_int_equal(json_array_size(changes), 3);
	json_t *saved[3];
	struct verr err = { 0 };
	size_t i;
	json_t *c;
	json_array_foreach(changes, i, c) {
		const struct change_ops *o = change_find(change_str(c, "action"));
		assert_non_null(o);
		if (o->prepare(c, &saved[i], &err) < 0 || o->apply(c, saved[i], &err) < 0)
			fail_msg("%s: %s", change_str(c, "action"), err.msg);
	}
	assert_file(root, "/sys/fs/cgroup/system.slice/cpuset.cpus", "0,8\n");
	assert_file(root, "/proc/irq/1/smp_affinity_list", "0,8\n");
	assert_file(root, "/sys/devices/virtual/workqueue/cpumask", "101\n");
	/* teardown: newest first */
	for (i = 3; i-- > 0;) {
		c = json_array_get(changes, i);
		assert_int_equal(change_find(change_str(c, "action"))->undo(c, saved[i], &err), 0);
		json_decref(saved[i]);
	}
	char *after = memtest_tree(root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	json_decref(changes);
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

/* ---- a real cgroup v1 cpuset hierarchy ---------------------------------
 * Where the machine mounts cgroup v1's cpuset (hybrid hosts), a private
 * cpuset under it stands in for the root one: the host root's
 * /sys/fs/cgroup/cpuset is a symlink to it, so the kernel itself moves the
 * processes, narrows their affinity, and lists them back. */

#define REAL_V1 "/sys/fs/cgroup/cpuset"

static void
real_write(const char *path, const char *val)
{
	int r = host_write(path, val);
	if (r < 0)
		fail_msg("writing '%s' to %s: %s", val, path, strerror(-r));
}

static char *
proc_cpuset(pid_t pid)
{
	char *p = xasprintf("/proc/%d/cpuset", (int)pid);
	char *s = host_read_line(p);
	free(p);
	return s;
}

/* What the real-kernel test set up, for its teardown to take down even when
 * an assertion failed halfway. */
static struct {
	char *sub, *root;
	pid_t kids[2];
} real;

static int
real_teardown(void **state)
{
	char *me = xasprintf("%d", (int)getpid());
	host_write(REAL_V1 "/cgroup.procs", me);
	free(me);
	for (int i = 0; i < 2; i++) {
		if (real.kids[i] > 0) {
			kill(real.kids[i], SIGKILL);
			waitpid(real.kids[i], NULL, 0);
		}
		real.kids[i] = 0;
	}
	if (real.sub != NULL) {
		/* what the change may have left inside after a failure */
		char *p = xasprintf("%s/vfio-host-test", real.sub);
		rmdir(p);
		free(p);
		p = xasprintf("%s/vfio-test", real.sub);
		rmdir(p);
		free(p);
		rmdir(real.sub);
	}
	if (real.root != NULL)
		memtest_rmtree(real.root);
	free(real.sub);
	free(real.root);
	real.sub = real.root = NULL;
	return 0;
}

static void
a_real_v1_cpuset_shields_every_process_and_gives_them_back(void **state)
{
	char *online = host_read_line("/sys/devices/system/cpu/online");
	char *mems = host_read_line(REAL_V1 "/cpuset.mems");
	struct cpulist all;
	if (getuid() != 0 || online == NULL || mems == NULL || cpulist_parse(&all, online, "online", NULL) < 0 ||
	    cpulist_count(&all) < 2) {
		free(online);
		free(mems);
		skip();
	}
	real.sub = xasprintf(REAL_V1 "/vfio-memtest-%d", (int)getpid());
	if (mkdir(real.sub, 0755) < 0) {
		free(online);
		free(mems);
		skip();
	}
	char *f = xasprintf("%s/cpuset.cpus", real.sub);
	real_write(f, online);
	free(f);
	f = xasprintf("%s/cpuset.mems", real.sub);
	real_write(f, mems);
	free(f);
	/* Two host processes and this test inside the stand-in root. */
	char *procs = xasprintf("%s/cgroup.procs", real.sub);
	for (int i = 0; i < 2; i++) {
		real.kids[i] = fork();
		if (real.kids[i] == 0) {
			execl("/bin/sleep", "sleep", "1000", (char *)NULL);
			_exit(127);
		}
		char *v = xasprintf("%d", (int)real.kids[i]);
		real_write(procs, v);
		free(v);
	}
	char *me = xasprintf("%d", (int)getpid());
	real_write(procs, me);
	free(me);

	real.root = memtest_tmpdir();
	hostroot_init(real.root);
	memtest_write(real.root, "/sys/devices/system/cpu/online", online);
	memtest_write(real.root, "/proc/self/cgroup", "3:cpuset:/\n");
	memtest_write(real.root, "/sys/fs/cgroup/.keep", "");
	char *link = xasprintf("%s/sys/fs/cgroup/cpuset", real.root);
	assert_int_equal(symlink(real.sub, link), 0);
	char *before = memtest_tree(link);
	char *list_before = host_read(procs, NULL);

	/* the guest gets the last CPU, the host the rest */
	int last = -1;
	for (int c = cpulist_first(&all); c >= 0; c = cpulist_next(&all, c))
		last = c;
	char *guest = xasprintf("%d", last);
	json_t *both = do_apply("cpuset-isolate", "/sys/fs/cgroup", guest);
	char *base = xstrdup(real.sub + strlen(REAL_V1));
	char *want = xasprintf("%s/vfio-host-test", base);
	for (int i = 0; i < 2; i++) {
		char *cs = proc_cpuset(real.kids[i]);
		assert_string_equal(cs, want);
		free(cs);
		cpu_set_t set;
		sched_getaffinity(real.kids[i], sizeof(set), &set);
		assert_false(CPU_ISSET(last, &set));
	}
	free(want);
	want = xasprintf("%s/vfio-test", base);
	char *cs = proc_cpuset(getpid());
	assert_string_equal(cs, want);
	free(cs);

	/* the kernel's side of the move, as /proc/self/cgroup now reads */
	memtest_write(real.root, "/proc/self/cgroup", "3:cpuset:/vfio-test\n");
	do_undo(both);
	memtest_write(real.root, "/proc/self/cgroup", "3:cpuset:/\n");
	for (int i = 0; i < 2; i++) {
		cs = proc_cpuset(real.kids[i]);
		assert_string_equal(cs, base);
		free(cs);
		cpu_set_t set;
		sched_getaffinity(real.kids[i], sizeof(set), &set);
		assert_true(CPU_ISSET(last, &set));
	}
	char *after = memtest_tree(link);
	assert_string_equal(before, after);
	char *list_after = host_read(procs, NULL);
	assert_string_equal(list_before, list_after);
	unlink(link);

	free(list_before);
	free(list_after);
	free(before);
	free(after);
	free(want);
	free(base);
	free(guest);
	free(link);
	free(procs);
	free(online);
	free(mems);
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
		cmocka_unit_test(the_plans_three_changes_prepare_and_undo_cleanly),
		cmocka_unit_test(the_rundown_lists_every_file_with_old_and_new_values),
		cmocka_unit_test_teardown(a_real_v1_cpuset_shields_every_process_and_gives_them_back, real_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
