/* The -pinvcpus suggestion of -cputhreads: core 0 and its siblings stay with
 * the host; the rest is listed core by core, siblings together. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cpu-suggest.h"

static struct cpu_thread cpus[64];

/* threads per core; "interleaved": siblings are N and N+cores (most Intel
 * and AMD boxes), otherwise adjacent (N, N+1). */
static void
topo(struct host_snapshot *snap, int cores, int threads, bool interleaved)
{
	memset(snap, 0, sizeof(*snap));
	int n = cores * threads;
	for (int cpu = 0; cpu < n; cpu++) {
		int core = interleaved ? cpu % cores : cpu / threads;
		cpus[cpu] = (struct cpu_thread){ .cpu = cpu, .core_id = core, .package_id = 0, .sibling = -1, .online = true };
	}
	snap->cpus = cpus;
	snap->n_cpus = (size_t)n;
}

static void
expect(const struct host_snapshot *snap, const char *want)
{
	struct strbuf sb = { 0 };
	struct verr err = { 0 };
	assert_int_equal(cpu_suggest_pinvcpus(snap, &sb, &err), 0);
	assert_string_equal(sb.s, want);
	strbuf_free(&sb);
}

static void
interleaved_siblings_leave_core_0_and_pair_the_rest(void **state)
{
	struct host_snapshot snap;
	topo(&snap, 8, 2, true);
	expect(&snap, "1,9,2,10,3,11,4,12,5,13,6,14,7,15");
}

static void
adjacent_siblings_leave_cpus_0_and_1(void **state)
{
	struct host_snapshot snap;
	topo(&snap, 4, 2, false);
	expect(&snap, "2,3,4,5,6,7");
}

static void
without_smt_only_cpu_0_stays(void **state)
{
	struct host_snapshot snap;
	topo(&snap, 4, 1, true);
	expect(&snap, "1,2,3");
}

static void
offline_cpus_are_not_suggested(void **state)
{
	struct host_snapshot snap;
	topo(&snap, 4, 2, true);
	cpus[6].online = false;
	expect(&snap, "1,5,2,3,7");
}

static void
a_second_package_keeps_its_own_core_0(void **state)
{
	struct host_snapshot snap;
	topo(&snap, 4, 1, true);
	cpus[2].package_id = cpus[3].package_id = 1;
	cpus[2].core_id = 0;
	cpus[3].core_id = 1;
	/* package 1's core 0 is a different core from the host's */
	expect(&snap, "1,2,3");
}

static void
a_single_core_host_has_nothing_to_suggest(void **state)
{
	struct host_snapshot snap;
	topo(&snap, 1, 2, true);
	struct strbuf sb = { 0 };
	struct verr err = { 0 };
	assert_int_equal(cpu_suggest_pinvcpus(&snap, &sb, &err), -ENODEV);
	assert_non_null(strstr(err.msg, "single core"));
	strbuf_free(&sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(interleaved_siblings_leave_core_0_and_pair_the_rest),
		cmocka_unit_test(adjacent_siblings_leave_cpus_0_and_1),
		cmocka_unit_test(without_smt_only_cpu_0_stays),
		cmocka_unit_test(offline_cpus_are_not_suggested),
		cmocka_unit_test(a_second_package_keeps_its_own_core_0),
		cmocka_unit_test(a_single_core_host_has_nothing_to_suggest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
