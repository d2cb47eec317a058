/* vars-create (-createvars): the guest's UEFI variable store copied from the
 * firmware's template under a host root, never overwritten, kept by undo. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* --- the user behind sudo attacks -createvars ------------------------------ */

#define ATTACKER 65534          /* nobody */
#define RACE_ROUNDS 200  /* the race was won within a few rounds before the fix */

/* Names, owners, modes and contents of every file in dir, one line each. */
static char *
dir_state(const char *dir)
{
	struct strbuf sb = { 0 };
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *p = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		assert_int_equal(lstat(p, &st), 0);
		char *content = S_ISREG(st.st_mode) ? host_read(p, NULL) : NULL;
		strbuf_printf(&sb, "%s %u:%u %o %s\n", de->d_name, (unsigned)st.st_uid, (unsigned)st.st_gid,
		    (unsigned)st.st_mode, content ? content : "-");
		free(content);
		free(p);
	}
	closedir(d);
	return sb.s ? strbuf_steal(&sb) : xstrdup("");
}

/* As nobody, forever: swap the directory the store goes into for a symlink
 * to a root-owned directory and back, and clear what root created. */
static void __attribute__((noreturn))
attacker(void)
{
	gid_t g = ATTACKER;
	if (setgroups(1, &g) < 0 || setresgid(ATTACKER, ATTACKER, ATTACKER) < 0 ||
	    setresuid(ATTACKER, ATTACKER, ATTACKER) < 0)
		_exit(1);
	/* After the uid change, which clears it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	char *d = xasprintf("%s/home/d", root), *real = xasprintf("%s/home/d.real", root);
	char *mine = xasprintf("%s/home/d/victim", root), *mine_tmp = xasprintf("%s/home/d/victim.vfio-tmp", root);
	for (;;) {
		unlink(mine);
		unlink(mine_tmp);
		rename(d, real);
		symlink("../secvic", d);
		unlink(d);
		rename(real, d);
	}
}

static void
test_a_user_swapping_directories_cannot_make_root_touch_another_file(void **state)
{
	if (geteuid() != 0)
		skip();
	/* The attacker must reach its directory: the fixture is not private. */
	assert_int_equal(chmod(root, 0755), 0);
	char *home = xasprintf("%s/home", root), *d = xasprintf("%s/home/d", root);
	char *victims = xasprintf("%s/secvic", root);
	assert_int_equal(mkdir(home, 0755), 0);
	assert_int_equal(mkdir(d, 0755), 0);
	assert_int_equal(chown(home, ATTACKER, ATTACKER), 0);
	assert_int_equal(chown(d, ATTACKER, ATTACKER), 0);
	assert_int_equal(mkdir(victims, 0755), 0);
	put("/secvic/victim", "ROOT'S FILE");
	put("/secvic/victim.vfio-tmp", "ROOT'S OTHER FILE");
	char *p = xasprintf("%s/secvic/victim", root);
	assert_int_equal(chmod(p, 0644), 0);
	free(p);
	char *before = dir_state(victims);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		attacker();
	const struct change_ops *ops = change_find("vars-create");
	json_t *c = json_pack("{s:s, s:s, s:{s:s, s:i, s:i}}", "action", "vars-create", "target", "/home/d/victim",
	    "args", "template", "/template.fd", "uid", ATTACKER, "gid", ATTACKER);
	int created = 0;
	char *after = NULL;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		json_t *saved = NULL;
		struct verr err = { 0 };
		if (ops->prepare(c, &saved, &err) == 0 && ops->apply(c, saved, &err) == 0)
			created++;
		ops->undo(c, saved, &err);
		json_decref(saved);
		free(after);
		after = dir_state(victims);
		if (strcmp(before, after) != 0)
			break;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* Root's directory is exactly as it was: no file replaced, given away or removed. */
	assert_string_equal(after, before);
	print_message("%d of %d rounds created the store in the user's directory\n", created, RACE_ROUNDS);
	free(before);
	free(after);
	free(home);
	free(d);
	free(victims);
	json_decref(c);
}

static void
test_root_does_not_create_the_store_in_another_users_directory(void **state)
{
	if (geteuid() != 0)
		skip();
	char *d = xasprintf("%s/home", root);
	assert_int_equal(mkdir(d, 0755), 0);
	assert_int_equal(chown(d, ATTACKER, ATTACKER), 0);
	/* QEMU runs as root (uid 0): nobody to work as, so the path is walked. */
	json_t *c = json_pack("{s:s, s:s, s:{s:s, s:i, s:i}}", "action", "vars-create", "target", "/home/vars.fd",
	    "args", "template", "/template.fd", "uid", 0, "gid", 0), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(change_find("vars-create")->prepare(c, &saved, &err), -EPERM);
	assert_non_null(strstr(err.msg, "the directory /home belongs to uid 65534"));
	char *p = xasprintf("%s/home/vars.fd", root);
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	free(d);
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
		cmocka_unit_test_setup_teardown(test_a_user_swapping_directories_cannot_make_root_touch_another_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_does_not_create_the_store_in_another_users_directory,
		    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
