/* userdb_lookup(): the same answers as getpwuid()/getgrouplist() give, while
 * the process asking never maps an NSS module (the lookups run in a child;
 * see userdb.h for why a supervisor cares). The comparison runs last, in
 * this process, once the no-module check is done. */
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "userdb.h"
#include "util.h"

static bool
nss_module_mapped(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	assert_non_null(f);
	char line[1024];
	bool found = false;
	while (fgets(line, sizeof(line), f) != NULL)
		found = found || strstr(line, "/libnss_") != NULL;
	fclose(f);
	return found;
}

static struct userdb_user root_answer;

static void
lookup_maps_no_nss_module_here(void **state)
{
	userdb_lookup(0, 0, &root_answer);
	struct userdb_user nobody;
	userdb_lookup(4000000000u, 4000000000u, &nobody);
	assert_false(nss_module_mapped());
	assert_true(root_answer.found);
	assert_string_equal(root_answer.name, "root");
	assert_int_equal(root_answer.groups[0], 0);
	/* No such user: not found, the primary group alone. */
	assert_false(nobody.found);
	assert_int_equal(nobody.n_groups, 1);
	assert_int_equal(nobody.groups[0], 4000000000u);
}

static void
answers_are_the_user_databases(void **state)
{
	struct userdb_user here;
	userdb_lookup_here(0, 0, &here);
	assert_memory_equal(&here, &root_answer, sizeof(here));
	struct passwd *pw = getpwuid(0);
	assert_non_null(pw);
	assert_string_equal(root_answer.home, pw->pw_dir);
	gid_t groups[USERDB_MAX_GROUPS];
	int n = (int)nitems(groups);
	assert_true(getgrouplist(pw->pw_name, 0, groups, &n) >= 0);
	assert_int_equal(root_answer.n_groups, (size_t)n);
	for (int i = 0; i < n; i++)
		assert_int_equal(root_answer.groups[i], groups[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lookup_maps_no_nss_module_here),
		cmocka_unit_test(answers_are_the_user_databases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
