/* CPU lists and masks read and written in the kernel's own syntax. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cpulist.h"

static void
roundtrip(const char *in, const char *out)
{
	struct cpulist s;
	struct verr err = { 0 };
	assert_int_equal(cpulist_parse(&s, in, "test", &err), 0);
	char *f = cpulist_str(&s);
	assert_string_equal(f, out);
	free(f);
}

static void
lists_collapse_into_ranges(void **state)
{
	roundtrip("0-3,8-11", "0-3,8-11");
	roundtrip("3,1,2,0", "0-3");
	roundtrip("0,8\n", "0,8");
	roundtrip("  \n", "");
	roundtrip("5", "5");
}

static void
a_bad_list_names_the_flag(void **state)
{
	struct cpulist s;
	struct verr err = { 0 };
	assert_int_equal(cpulist_parse(&s, "1-x", "-pinvcpus", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "-pinvcpus: '1-x' is not a CPU list"));
	assert_int_equal(cpulist_parse(&s, "4-2", "-pinvcpus", &err), -EINVAL);
	assert_int_equal(cpulist_parse(&s, "99999", "-pinvcpus", &err), -EINVAL);
}

static void
masks_use_the_kernel_layout(void **state)
{
	struct cpulist s;
	struct verr err = { 0 };
	assert_int_equal(cpulist_parse(&s, "0,1,8,9", "t", &err), 0);
	char *m = cpumask_str(&s);
	assert_string_equal(m, "303");
	free(m);
	assert_int_equal(cpulist_parse(&s, "0,32", "t", &err), 0);
	m = cpumask_str(&s);
	assert_string_equal(m, "1,00000001");
	free(m);
	assert_int_equal(cpumask_parse(&s, "ff,ffffffff\n", "t", &err), 0);
	char *l = cpulist_str(&s);
	assert_string_equal(l, "0-39");
	free(l);
	assert_int_equal(cpumask_parse(&s, "zz", "t", &err), -EINVAL);
}

static void
set_operations(void **state)
{
	struct cpulist a, b, c;
	struct verr err = { 0 };
	cpulist_parse(&a, "0-15", "t", &err);
	cpulist_parse(&b, "1-7,9-15", "t", &err);
	cpulist_minus(&c, &a, &b);
	char *s = cpulist_str(&c);
	assert_string_equal(s, "0,8");
	free(s);
	assert_true(cpulist_intersects(&a, &b));
	assert_false(cpulist_intersects(&c, &b));
	assert_int_equal(cpulist_count(&b), 14);
	assert_int_equal(cpulist_first(&b), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lists_collapse_into_ranges),
		cmocka_unit_test(a_bad_list_names_the_flag),
		cmocka_unit_test(masks_use_the_kernel_layout),
		cmocka_unit_test(set_operations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
