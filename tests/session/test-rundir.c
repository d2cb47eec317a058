/* The runtime directory: one owner per name (what an earlier run left is
 * adopt.h's: tests/session/test-adopt.c),
 * names are checked, removal leaves nothing behind. Also the dev-chown change
 * and the device bookkeeping status.json shows. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "change.h"
#include "devices.h"
#include "hostroot.h"
#include "journal.h"
#include "log.h"
#include "rundir.h"

static char root[256];

static int
setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/vfio-test-rundir-XXXXXX");
	assert_non_null(mkdtemp(root));
	hostroot_init(root);
	char *p = host_pathdup("/run");
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
	p = host_pathdup("/dev");
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
	return 0;
}

static int
teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static void
test_create_makes_a_private_directory_with_our_pid(void **state)
{
	struct rundir rd;
	struct verr err = { 0 };
	assert_int_equal(rundir_create(&rd, "win10", &err), 0);
	struct stat st;
	char *p = host_pathdup("/run/vfio/win10");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	free(p);
	p = host_pathdup("/run/vfio/win10/pid");
	char *pid = host_read_line(p);
	assert_int_equal(atoi(pid), getpid());
	free(pid);
	free(p);
	rundir_close(&rd);
}

static void
test_second_owner_is_refused_naming_the_pid(void **state)
{
	struct rundir a, b;
	struct verr err = { 0 };
	assert_int_equal(rundir_create(&a, "win10", &err), 0);
	assert_int_equal(rundir_create(&b, "win10", &err), -EBUSY);
	char want[64];
	snprintf(want, sizeof(want), "already run by the supervisor with pid %d", (int)getpid());
	assert_non_null(strstr(err.msg, want));
	assert_non_null(strstr(err.msg, "win10"));
	/* -restore must not take it either while the owner lives. */
	assert_int_equal(rundir_claim(&b, "win10", &err), -EBUSY);
	rundir_close(&a);
	/* The owner gone, the name is free again. */
	assert_int_equal(rundir_create(&b, "win10", &err), 0);
	rundir_close(&b);
}

static void
test_finished_journal_does_not_block(void **state)
{
	struct rundir rd;
	struct verr err = { 0 };
	assert_int_equal(rundir_create(&rd, "g", &err), 0);
	struct journal j;
	assert_int_equal(journal_open(&j, rd.path, &err), 0);
	journal_close(&j);
	rundir_close(&rd);
	assert_int_equal(rundir_create(&rd, "g", &err), 0);
	rundir_close(&rd);
}

static void
test_bad_names_are_refused(void **state)
{
	struct rundir rd;
	struct verr err = { 0 };
	const char *bad[] = { "", "../etc", "a/b", ".hidden", "-x", "sp ace" };
	for (size_t i = 0; i < nitems(bad); i++) {
		assert_int_equal(rundir_create(&rd, bad[i], &err), -EINVAL);
		assert_non_null(strstr(err.msg, "-name"));
	}
	char *p = host_pathdup("/run/vfio");
	assert_false(host_exists(p));
	free(p);
}

static void
test_remove_leaves_run_as_it_was(void **state)
{
	struct rundir rd;
	struct verr err = { 0 };
	assert_int_equal(rundir_create(&rd, "g", &err), 0);
	struct journal j;
	assert_int_equal(journal_open(&j, rd.path, &err), 0);
	journal_close(&j);
	assert_int_equal(rundir_remove(&rd, &err), 0);
	rundir_close(&rd);
	char *p = host_pathdup("/run/vfio");
	assert_false(host_exists(p));
	free(p);
}

static void
test_remove_keeps_a_run_vfio_that_was_there_before(void **state)
{
	char *p = host_pathdup("/run/vfio");
	assert_int_equal(mkdir(p, 0755), 0);
	struct rundir rd;
	struct verr err = { 0 };
	assert_int_equal(rundir_create(&rd, "g", &err), 0);
	assert_int_equal(rundir_remove(&rd, &err), 0);
	rundir_close(&rd);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	free(p);
}

static void
test_restore_after_a_crash_removes_the_run_vfio_the_run_made(void **state)
{
	struct rundir rd;
	struct verr err = { 0 };
	assert_int_equal(rundir_create(&rd, "g", &err), 0);
	rundir_close(&rd);      /* killed: the directory stays */
	assert_int_equal(rundir_claim(&rd, "g", &err), 0);
	assert_int_equal(rundir_remove(&rd, &err), 0);
	rundir_close(&rd);
	char *p = host_pathdup("/run/vfio");
	assert_false(host_exists(p));
	free(p);
}

static void
test_run_vfio_stays_while_another_guest_is_in_it(void **state)
{
	struct rundir a, b;
	struct verr err = { 0 };
	assert_int_equal(rundir_create(&a, "a", &err), 0);
	assert_int_equal(rundir_create(&b, "b", &err), 0);
	assert_int_equal(rundir_remove(&a, &err), 0);
	rundir_close(&a);
	char *p = host_pathdup("/run/vfio/b");
	assert_true(host_exists(p));
	free(p);
	/* The last one out removes what the first one made. */
	assert_int_equal(rundir_remove(&b, &err), 0);
	rundir_close(&b);
	p = host_pathdup("/run/vfio");
	assert_false(host_exists(p));
	free(p);
}

static void
test_claim_without_directory_says_nothing_to_restore(void **state)
{
	struct rundir rd;
	struct verr err = { 0 };
	assert_int_equal(rundir_claim(&rd, "none", &err), -ENOENT);
	assert_non_null(strstr(err.msg, "nothing to restore"));
}

/* dev-chown */

static char *
make_node(mode_t mode)
{
	char *p = host_pathdup("/dev/vfio-1");
	int fd = open(p, O_CREAT | O_WRONLY, mode);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(p, mode), 0);
	assert_int_equal(chown(p, 0, 0), 0);
	return p;
}

static void
test_devchown_gives_the_node_and_takes_it_back(void **state)
{
	char *p = make_node(0600);
	const struct change_ops *ops = change_find("dev-chown");
	assert_non_null(ops);
	json_t *c = json_pack("{s:s, s:s, s:{s:i, s:i}}", "action", "dev-chown", "target", "/dev/vfio-1",
	    "args", "uid", 1000, "gid", 1001);
	json_t *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops->prepare(c, &saved, &err), 0);
	assert_int_equal(ops->apply(c, saved, &err), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1001);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ops->undo(c, saved, &err), 0);
	assert_int_equal(ops->undo(c, saved, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	json_decref(c);
	json_decref(saved);
	free(p);
}

static void
test_devchown_of_a_missing_node_names_it(void **state)
{
	const struct change_ops *ops = change_find("dev-chown");
	json_t *c = json_pack("{s:s, s:s, s:{s:i, s:i}}", "action", "dev-chown", "target", "/dev/vfio/9",
	    "args", "uid", 1000, "gid", 1000);
	json_t *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops->prepare(c, &saved, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/dev/vfio/9"));
	assert_null(saved);
	json_decref(c);
}

static void
test_devchown_undo_after_the_node_went_away_is_fine(void **state)
{
	char *p = make_node(0660);
	const struct change_ops *ops = change_find("dev-chown");
	json_t *c = json_pack("{s:s, s:s, s:{s:i, s:i}}", "action", "dev-chown", "target", "/dev/vfio-1",
	    "args", "uid", 1000, "gid", 1000);
	json_t *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops->prepare(c, &saved, &err), 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(ops->undo(c, saved, &err), 0);
	json_decref(c);
	json_decref(saved);
	free(p);
}

static void
test_devchown_follows_roots_own_links_to_the_node(void **state)
{
	char *p = make_node(0600);
	char *dir = host_pathdup("/dev/disk");
	assert_int_equal(mkdir(dir, 0755), 0);
	char *link = host_pathdup("/dev/disk/by-id-x");
	assert_int_equal(symlink("../vfio-1", link), 0);
	const struct change_ops *ops = change_find("dev-chown");
	json_t *c = json_pack("{s:s, s:s, s:{s:i, s:i}}", "action", "dev-chown", "target", "/dev/disk/by-id-x",
	    "args", "uid", 1000, "gid", 1000), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops->prepare(c, &saved, &err), 0);
	assert_int_equal(ops->apply(c, saved, &err), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(ops->undo(c, saved, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, 0);
	json_decref(c);
	json_decref(saved);
	free(link);
	free(dir);
	free(p);
}

static void
test_devchown_refuses_a_path_through_another_users_link(void **state)
{
	char *p = make_node(0600);
	char *home = host_pathdup("/home"), *u = host_pathdup("/home/u"), *link = host_pathdup("/home/u/disk");
	assert_int_equal(mkdir(home, 0755), 0);
	assert_int_equal(mkdir(u, 0755), 0);
	assert_int_equal(symlink("../../dev/vfio-1", link), 0);
	assert_int_equal(lchown(link, 1000, 1000), 0);
	const struct change_ops *ops = change_find("dev-chown");
	json_t *c = json_pack("{s:s, s:s, s:{s:i, s:i}}", "action", "dev-chown", "target", "/home/u/disk",
	    "args", "uid", 1000, "gid", 1000), *saved = NULL;
	struct verr err = { 0 };
	/* A link the user owns could point anywhere by the time root follows it. */
	assert_int_equal(ops->prepare(c, &saved, &err), -EPERM);
	assert_non_null(strstr(err.msg, "the symlink /home/u/disk belongs to uid 1000"));
	/* Nor through a directory the user owns. */
	assert_int_equal(lchown(link, 0, 0), 0);
	assert_int_equal(chown(u, 1000, 1000), 0);
	assert_int_equal(ops->prepare(c, &saved, &err), -EPERM);
	assert_non_null(strstr(err.msg, "the directory /home/u belongs to uid 1000"));
	json_t *as_before = json_pack("{s:i, s:i, s:i}", "uid", 0, "gid", 0, "mode", 0600);
	assert_int_equal(ops->apply(c, as_before, &err), -EPERM);
	json_decref(as_before);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, 0);
	json_decref(c);
	free(home);
	free(u);
	free(link);
	free(p);
}

/* devices */

static void
test_devices_track_root_ports(void **state)
{
	struct devices d;
	devices_init(&d, 3);
	json_t *a = json_pack("{s:s, s:s, s:s}", "driver", "vfio-pci", "id", "hostdev-0000-02-00-0", "bus", "rp1");
	json_t *b = json_pack("{s:s, s:s, s:s}", "driver", "virtio-net-pci", "id", "nic0", "bus", "rp2");
	devices_attached(&d, a);
	devices_attached(&d, b);
	char buf[16];
	assert_string_equal(devices_free_port(&d, buf, sizeof(buf)), "rp3");
	assert_int_equal(devices_removed(&d, "hostdev-0000-02-00-0"), 0);
	assert_string_equal(devices_free_port(&d, buf, sizeof(buf)), "rp1");
	assert_int_equal(devices_removed(&d, "hostdev-0000-02-00-0"), -ENOENT);
	json_t *j = devices_json(&d);
	json_t *want = json_pack("{s:[{s:s, s:s, s:s, s:s}], s:[s, s]}", "attached", "id", "nic0",
	    "driver", "virtio-net-pci", "bus", "rp2", "state", "attached", "free_root_ports", "rp1", "rp3");
	assert_true(json_equal(j, want));
	json_decref(j);
	json_decref(want);
	json_decref(a);
	json_decref(b);
	devices_free(&d);
}

int
main(void)
{
	log_init(LOG_LEVEL_ERROR, false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_makes_a_private_directory_with_our_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_owner_is_refused_naming_the_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finished_journal_does_not_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_leaves_run_as_it_was, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_keeps_a_run_vfio_that_was_there_before, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_after_a_crash_removes_the_run_vfio_the_run_made, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_run_vfio_stays_while_another_guest_is_in_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_without_directory_says_nothing_to_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_devchown_gives_the_node_and_takes_it_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_devchown_of_a_missing_node_names_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_devchown_undo_after_the_node_went_away_is_fine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_devchown_follows_roots_own_links_to_the_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_devchown_refuses_a_path_through_another_users_link, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_devices_track_root_ports, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
