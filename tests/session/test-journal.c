/* The journal: durable before a change, readable after a crash (torn last
 * line), undone newest first, and safe to undo twice. */
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
#include "hostroot.h"
#include "journal.h"
#include "log.h"

static char root[256];
static char dir[300];

static int
setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/vfio-test-journal-XXXXXX");
	assert_non_null(mkdtemp(root));
	hostroot_init(root);
	snprintf(dir, sizeof(dir), "%s/run", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	char dev[300];
	snprintf(dev, sizeof(dev), "%s/dev", root);
	mkdir(dev, 0755);
	snprintf(dev, sizeof(dev), "%s/dev/node", root);
	int fd = open(dev, O_CREAT | O_WRONLY, 0640);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chown(dev, 0, 0), 0);
	assert_int_equal(chmod(dev, 0640), 0);
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

static json_t *
chown_change(int uid)
{
	return json_pack("{s:s, s:s, s:{s:i, s:i}}", "action", "dev-chown", "target", "/dev/node",
	    "args", "uid", uid, "gid", uid);
}

static void
node_owner(uid_t *uid, mode_t *mode)
{
	char *p = host_pathdup("/dev/node");
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	*uid = st.st_uid;
	*mode = st.st_mode & 07777;
	free(p);
}

static char *
journal_text(void)
{
	char *p = xasprintf("%s/journal", dir);
	char *s = host_read(p, NULL);
	free(p);
	assert_non_null(s);
	return s;
}

static void
append_raw(const char *text)
{
	char *p = xasprintf("%s/journal", dir);
	int fd = open(p, O_WRONLY | O_APPEND | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	free(p);
}

static void
test_begin_is_on_disk_before_apply(void **state)
{
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	json_t *c = chown_change(1000);
	json_t *saved = json_pack("{s:i, s:i, s:i}", "uid", 0, "gid", 0, "mode", 0640);
	size_t idx;
	assert_int_equal(journal_begin(&j, c, saved, &idx, &err), 0);

	/* What a restore after a crash right now would read. */
	struct journal k;
	assert_int_equal(journal_open(&k, dir, &err), 0);
	assert_int_equal(k.n, 1);
	assert_int_equal(k.entries[0].state, JOURNAL_BEGIN);
	assert_true(json_equal(k.entries[0].change, c));
	assert_true(json_equal(k.entries[0].saved, saved));
	assert_true(journal_in_force(&k));
	journal_close(&k);

	assert_int_equal(journal_done(&j, idx, &err), 0);
	assert_int_equal(journal_open(&k, dir, &err), 0);
	assert_int_equal(k.entries[0].state, JOURNAL_DONE);
	journal_close(&k);
	journal_close(&j);
	json_decref(c);
	json_decref(saved);
}

static void
test_torn_last_line_is_dropped_and_cut(void **state)
{
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	json_t *c = chown_change(1000);
	size_t idx;
	assert_int_equal(journal_begin(&j, c, NULL, &idx, &err), 0);
	journal_close(&j);
	append_raw("{\"seq\": 1, \"sta");   /* the crash cut this write short */

	assert_int_equal(journal_open(&j, dir, &err), 0);
	assert_int_equal(j.n, 1);
	assert_int_equal(j.entries[0].state, JOURNAL_BEGIN);
	/* Appends after the cut start on a clean line. */
	assert_int_equal(journal_done(&j, 0, &err), 0);
	journal_close(&j);
	char *text = journal_text();
	assert_null(strstr(text, "\"sta\n"));
	assert_non_null(strstr(text, "\"state\":\"done\"}\n"));
	free(text);
	assert_int_equal(journal_open(&j, dir, &err), 0);
	assert_int_equal(j.entries[0].state, JOURNAL_DONE);
	journal_close(&j);
	json_decref(c);
}

static void
test_a_torn_tail_left_while_running_is_cut_before_the_next_record(void **state)
{
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	json_t *c = chown_change(1000);
	size_t idx;
	assert_int_equal(journal_begin(&j, c, NULL, &idx, &err), 0);
	/* A full disk cut a write short and the cut could not be undone. */
	append_raw("{\"seq\": 2, \"state\": \"TORN");
	assert_int_equal(journal_done(&j, idx, &err), 0);
	journal_close(&j);
	char *text = journal_text();
	assert_null(strstr(text, "TORN"));
	free(text);
	assert_int_equal(journal_open(&j, dir, &err), 0);
	assert_int_equal(j.n, 1);
	assert_int_equal(j.entries[0].state, JOURNAL_DONE);
	journal_close(&j);
	json_decref(c);
}

static void
test_damaged_line_in_the_middle_is_refused(void **state)
{
	append_raw("{\"seq\":1,\"state\":\"begin\",\"change\":{\"action\":\"dev-chown\"},\"saved\":null}\n");
	append_raw("garbage\n");
	append_raw("{\"seq\":1,\"state\":\"done\"}\n");
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "line 2"));
	assert_non_null(strstr(err.msg, "by hand"));
}

static void
test_undo_runs_newest_first(void **state)
{
	/* Two changes to one node: only newest-first ends at the original owner. */
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	const struct change_ops *ops = change_find("dev-chown");
	for (int uid = 1000; uid <= 1001; uid++) {
		json_t *c = chown_change(uid), *saved = NULL;
		size_t idx;
		assert_int_equal(ops->prepare(c, &saved, &err), 0);
		assert_int_equal(journal_begin(&j, c, saved, &idx, &err), 0);
		assert_int_equal(ops->apply(c, saved, &err), 0);
		assert_int_equal(journal_done(&j, idx, &err), 0);
		json_decref(c);
		json_decref(saved);
	}
	uid_t uid;
	mode_t mode;
	node_owner(&uid, &mode);
	assert_int_equal(uid, 1001);
	assert_int_equal(mode, 0640);
	struct strv failed = { 0 };
	assert_int_equal(journal_undo_all(&j, 0, &failed), 0);
	node_owner(&uid, &mode);
	assert_int_equal(uid, 0);
	assert_int_equal(mode, 0640);
	assert_false(journal_in_force(&j));
	journal_close(&j);
	strv_free(&failed);
}

static void
test_undo_twice_is_safe(void **state)
{
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	const struct change_ops *ops = change_find("dev-chown");
	json_t *c = chown_change(1000), *saved = NULL;
	size_t idx;
	assert_int_equal(ops->prepare(c, &saved, &err), 0);
	assert_int_equal(journal_begin(&j, c, saved, &idx, &err), 0);
	assert_int_equal(ops->apply(c, saved, &err), 0);
	struct strv failed = { 0 };
	assert_int_equal(journal_undo_all(&j, 0, &failed), 0);
	journal_close(&j);
	/* Someone changes the node after the restore: a second restore must not
	 * touch it again, the journal says it is undone. */
	char *p = host_pathdup("/dev/node");
	assert_int_equal(chown(p, 5, 5), 0);
	assert_int_equal(journal_open(&j, dir, &err), 0);
	assert_false(journal_in_force(&j));
	assert_int_equal(journal_undo_all(&j, 0, &failed), 0);
	uid_t uid;
	mode_t mode;
	node_owner(&uid, &mode);
	assert_int_equal(uid, 5);
	journal_close(&j);
	free(p);
	json_decref(c);
	json_decref(saved);
	strv_free(&failed);
}

static void
test_begun_but_not_done_is_undone(void **state)
{
	/* A crash between begin and done: apply may have run; undo anyway. */
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	const struct change_ops *ops = change_find("dev-chown");
	json_t *c = chown_change(1000), *saved = NULL;
	size_t idx;
	assert_int_equal(ops->prepare(c, &saved, &err), 0);
	assert_int_equal(journal_begin(&j, c, saved, &idx, &err), 0);
	assert_int_equal(ops->apply(c, saved, &err), 0);
	journal_close(&j);
	assert_int_equal(journal_open(&j, dir, &err), 0);
	struct strv failed = { 0 };
	assert_int_equal(journal_undo_all(&j, 0, &failed), 0);
	uid_t uid;
	mode_t mode;
	node_owner(&uid, &mode);
	assert_int_equal(uid, 0);
	journal_close(&j);
	json_decref(c);
	json_decref(saved);
	strv_free(&failed);
}

static void
test_unknown_action_is_listed_as_not_restored(void **state)
{
	append_raw("{\"seq\":1,\"state\":\"begin\",\"change\":{\"action\":\"frobnicate\",\"target\":\"x\"},"
	    "\"saved\":{\"was\":1}}\n");
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	struct strv failed = { 0 };
	assert_int_equal(journal_undo_all(&j, 0, &failed), 1);
	assert_int_equal(failed.n, 1);
	assert_non_null(strstr(failed.v[0], "frobnicate x"));
	assert_non_null(strstr(failed.v[0], "{\"was\":1}"));
	assert_non_null(strstr(failed.v[0], "by hand"));
	assert_true(journal_in_force(&j));
	journal_close(&j);
	strv_free(&failed);
}

static void
test_qemu_pid_is_recorded(void **state)
{
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	assert_int_equal(journal_record_qemu(&j, 4242, 987654321ULL, &err), 0);
	journal_close(&j);
	assert_int_equal(journal_open(&j, dir, &err), 0);
	assert_int_equal(j.qemu_pid, 4242);
	assert_true(j.qemu_start == 987654321ULL);
	journal_close(&j);
}

int
main(void)
{
	log_init(LOG_LEVEL_ERROR, false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_begin_is_on_disk_before_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_last_line_is_dropped_and_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_torn_tail_left_while_running_is_cut_before_the_next_record, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_damaged_line_in_the_middle_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_undo_runs_newest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_undo_twice_is_safe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_begun_but_not_done_is_undone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_action_is_listed_as_not_restored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qemu_pid_is_recorded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
