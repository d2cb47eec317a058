/* Pinning QEMU's threads, on this process's own real threads: every thread
 * but the "vCPUs" goes to the host CPUs; a vCPU gets one CPU and SCHED_FIFO. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hostroot.h"
#include "threads.h"

struct worker {
	pthread_t thread;
	pid_t tid;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int started;
static bool quit;

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_mutex_lock(&lock);
	w->tid = (pid_t)syscall(SYS_gettid);
	started++;
	pthread_cond_broadcast(&cond);
	while (!quit)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return NULL;
}

static struct worker workers[3];

static int
setup(void **state)
{
	/* Start from every CPU we may use. */
	cpu_set_t all;
	CPU_ZERO(&all);
	sched_getaffinity(0, sizeof(all), &all);
	quit = false;
	started = 0;
	for (int i = 0; i < 3; i++)
		pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
	pthread_mutex_lock(&lock);
	while (started < 3)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return 0;
}

static int
teardown(void **state)
{
	pthread_mutex_lock(&lock);
	quit = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < 3; i++)
		pthread_join(workers[i].thread, NULL);
	return 0;
}

static int
usable_cpus(int *a, int *b)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	sched_getaffinity(0, sizeof(set), &set);
	*a = *b = -1;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (*a < 0)
			*a = c;
		else if (*b < 0)
			*b = c;
	}
	return CPU_COUNT(&set);
}

static void
other_threads_go_to_the_host_cpus_and_vcpus_are_left_alone(void **state)
{
	int host, guest;
	if (usable_cpus(&host, &guest) < 2)
		skip();
	cpu_set_t before;
	sched_getaffinity(workers[0].tid, sizeof(before), &before);
	struct cpulist cpus;
	cpulist_clear(&cpus);
	cpulist_add(&cpus, host);
	pid_t vcpus[] = { workers[0].tid, workers[1].tid };
	size_t n = 0;
	struct verr err = { 0 };
	assert_int_equal(threads_pin_others(getpid(), vcpus, 2, &cpus, &n, &err), 0);
	assert_int_equal(n, 2);    /* the main thread and worker 2 */
	cpu_set_t got;
	sched_getaffinity(workers[2].tid, sizeof(got), &got);
	assert_int_equal(CPU_COUNT(&got), 1);
	assert_true(CPU_ISSET(host, &got));
	sched_getaffinity(getpid(), sizeof(got), &got);
	assert_int_equal(CPU_COUNT(&got), 1);
	assert_true(CPU_ISSET(host, &got));
	sched_getaffinity(workers[0].tid, sizeof(got), &got);
	assert_true(CPU_EQUAL(&got, &before));
	/* back to every CPU for the next test */
	sched_setaffinity(getpid(), sizeof(before), &before);
	sched_setaffinity(workers[2].tid, sizeof(before), &before);
}

static void
the_emulator_threads_get_every_online_cpu_but_the_vcpus(void **state)
{
	int first, second;
	if (usable_cpus(&first, &second) < 2)
		skip();
	hostroot_init("");
	cpu_set_t before;
	sched_getaffinity(workers[0].tid, sizeof(before), &before);
	/* vCPU 0 runs on the second CPU: the emulator keeps the others */
	int pin[] = { second };
	pid_t vcpus[] = { workers[0].tid };
	struct verr err = { 0 };
	assert_int_equal(threads_pin_emulator(getpid(), vcpus, 1, pin, 1, &err), 0);
	cpu_set_t got;
	sched_getaffinity(workers[1].tid, sizeof(got), &got);
	assert_false(CPU_ISSET(second, &got));
	assert_true(CPU_ISSET(first, &got));
	sched_getaffinity(workers[0].tid, sizeof(got), &got);
	assert_true(CPU_EQUAL(&got, &before));
	sched_setaffinity(getpid(), sizeof(before), &before);
	for (int i = 1; i < 3; i++)
		sched_setaffinity(workers[i].tid, sizeof(before), &before);
}

static void
a_vcpu_gets_one_cpu_and_fifo_priority(void **state)
{
	int host, guest;
	if (usable_cpus(&host, &guest) < 2)
		skip();
	struct verr err = { 0 };
	int r = threads_pin_fifo(workers[1].tid, guest, 20, &err);
	if (r == -EPERM)
		skip();    /* no CAP_SYS_NICE (not root, or a container without it) */
	assert_int_equal(r, 0);
	cpu_set_t got;
	sched_getaffinity(workers[1].tid, sizeof(got), &got);
	assert_int_equal(CPU_COUNT(&got), 1);
	assert_true(CPU_ISSET(guest, &got));
	assert_int_equal(sched_getscheduler(workers[1].tid), SCHED_FIFO);
	struct sched_param sp;
	sched_getparam(workers[1].tid, &sp);
	assert_int_equal(sp.sched_priority, 20);
}

static void
pinning_to_a_cpu_that_does_not_exist_names_it(void **state)
{
	struct verr err = { 0 };
	assert_int_equal(threads_pin_fifo(workers[0].tid, 9999, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "CPU 9999"));
	assert_int_equal(threads_pin_fifo(workers[0].tid, -1, 0, &err), -EINVAL);
}

static void
no_host_cpus_left_is_an_error(void **state)
{
	struct cpulist none;
	cpulist_clear(&none);
	struct verr err = { 0 };
	assert_int_equal(threads_pin_others(getpid(), NULL, 0, &none, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no host CPUs left"));
}

static void
a_process_that_is_gone_is_reported(void **state)
{
	struct cpulist cpus;
	cpulist_clear(&cpus);
	cpulist_add(&cpus, 0);
	struct verr err = { 0 };
	/* pid_max is at most 4194304 */
	assert_int_equal(threads_pin_others(4194305, NULL, 0, &cpus, NULL, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/proc/4194305/task"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(other_threads_go_to_the_host_cpus_and_vcpus_are_left_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(the_emulator_threads_get_every_online_cpu_but_the_vcpus, setup, teardown),
		cmocka_unit_test_setup_teardown(a_vcpu_gets_one_cpu_and_fifo_priority, setup, teardown),
		cmocka_unit_test_setup_teardown(pinning_to_a_cpu_that_does_not_exist_names_it, setup, teardown),
		cmocka_unit_test(no_host_cpus_left_is_an_error),
		cmocka_unit_test(a_process_that_is_gone_is_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
