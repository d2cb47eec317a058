/* vars-create (-createvars): the guest's UEFI variable store copied from the
 * firmware's template under a host root, never overwritten, kept by undo. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "change.h"
#include "hostroot.h"
#include "util.h"
#include "vars.h"

static char root[256];

static void
put(const char *path, const char *content)
{
	char *full = xasprintf("%s%s", root, path);
	FILE *f = fopen(full, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	free(full);
}

static char *
get(const char *path)
{
	char *full = xasprintf("%s%s", root, path);
	char *s = host_read(full, NULL);
	free(full);
	return s;
}

static int
setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/vfio-vars-XXXXXX");
	assert_non_null(mkdtemp(root));
	char *d = xasprintf("%s/vm", root);
	assert_int_equal(mkdir(d, 0755), 0);
	free(d);
	put("/template.fd", "TEMPLATE");
	hostroot_init(root);
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
change(void)
{
	return json_pack("{s:s, s:s, s:{s:s, s:i, s:i}}", "action", "vars-create", "target", "/vm/vars.fd",
	    "args", "template", "/template.fd", "uid", (int)getuid(), "gid", (int)getgid());
}

static void
test_missing_store_is_copied_from_the_template_private_to_the_user(void **state)
{
	const struct change_ops *ops = change_find("vars-create");
	assert_ptr_equal(ops, &vars_create_ops);
	json_t *c = change(), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops->prepare(c, &saved, &err), 0);
	assert_int_equal(ops->apply(c, saved, &err), 0);
	char *s = get("/vm/vars.fd");
	assert_string_equal(s, "TEMPLATE");
	free(s);
	char *full = xasprintf("%s/vm/vars.fd", root);
	struct stat st;
	assert_int_equal(stat(full, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_uid, getuid());
	free(full);
	/* Undo keeps the guest's store. */
	assert_int_equal(ops->undo(c, saved, &err), 0);
	s = get("/vm/vars.fd");
	assert_string_equal(s, "TEMPLATE");
	free(s);
	json_decref(saved);
	json_decref(c);
}

static void
test_existing_store_is_never_overwritten(void **state)
{
	put("/vm/vars.fd", "GUEST KEYS");
	const struct change_ops *ops = change_find("vars-create");
	json_t *c = change(), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops->prepare(c, &saved, &err), 0);
	assert_int_equal(ops->apply(c, saved, &err), 0);
	char *s = get("/vm/vars.fd");
	assert_string_equal(s, "GUEST KEYS");
	free(s);
	json_decref(saved);
	json_decref(c);
}

static void
test_undo_after_a_crash_removes_only_the_half_written_copy(void **state)
{
	put("/vm/vars.fd.vfio-tmp", "TEMPL");
	const struct change_ops *ops = change_find("vars-create");
	json_t *c = change(), *saved = json_pack("{s:b}", "existed", 0);
	struct verr err = { 0 };
	assert_int_equal(ops->undo(c, saved, &err), 0);
	char *full = xasprintf("%s/vm/vars.fd.vfio-tmp", root);
	assert_int_equal(access(full, F_OK), -1);
	free(full);
	/* Idempotent. */
	assert_int_equal(ops->undo(c, saved, &err), 0);
	json_decref(saved);
	json_decref(c);
}

static void
test_missing_template_is_refused_before_anything_changes(void **state)
{
	const struct change_ops *ops = change_find("vars-create");
	json_t *c = json_pack("{s:s, s:s, s:{s:s}}", "action", "vars-create", "target", "/vm/vars.fd",
	    "args", "template", "/nope.fd"), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(ops->prepare(c, &saved, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "-createvars: cannot read the template /nope.fd"));
	assert_null(saved);
	json_decref(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_missing_store_is_copied_from_the_template_private_to_the_user,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_existing_store_is_never_overwritten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_undo_after_a_crash_removes_only_the_half_written_copy, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_template_is_refused_before_anything_changes, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
