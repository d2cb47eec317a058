/* Changes that can block run in a child with a deadline: the result comes
 * back, a hang is cut off and reported, a crash is reported, and the event
 * loop keeps running meanwhile. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "change.h"
#include "child.h"
#include "vfio_bind.h"
#include "util.h"

static json_t *
a_change(void)
{
	return json_pack("{ss ss}", "action", "test-action", "target", "thing-1");
}

static int
fn_fails(const json_t *change, const json_t *saved, struct verr *err)
{
	return verr_set(err, -EIO, "%s failed on purpose (%lld)", json_string_value(json_object_get(change,
	    "target")), (long long)json_integer_value(json_object_get(saved, "n")));
}

static int
fn_note(const json_t *change, const json_t *saved, struct verr *err)
{
	snprintf(err->msg, sizeof(err->msg), "a note for the rundown");
	return 0;
}

static int pidpipe[2];

static int
fn_hangs(const json_t *change, const json_t *saved, struct verr *err)
{
	pid_t me = getpid();
	ssize_t n = write(pidpipe[1], &me, sizeof(me));
	(void)n;
	for (;;)
		pause();
	return 0;
}

static int
fn_crashes(const json_t *change, const json_t *saved, struct verr *err)
{
	raise(SIGKILL);
	return 0;
}

static long long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
child_run_returns_the_functions_result_and_message(void **state)
{
	json_t *c = a_change(), *s = json_pack("{si}", "n", 7);
	struct verr err = { 0 };
	assert_int_equal(child_run(fn_fails, c, s, 5000, &err), -EIO);
	assert_int_equal(err.code, -EIO);
	assert_string_equal(err.msg, "thing-1 failed on purpose (7)");
	assert_int_equal(child_run(fn_note, c, s, 5000, &err), 0);
	assert_string_equal(err.msg, "a note for the rundown");
	json_decref(c);
	json_decref(s);
}

static void
child_run_cuts_off_a_hang_kills_the_child_and_says_so(void **state)
{
	json_t *c = a_change();
	struct verr err = { 0 };
	assert_int_equal(pipe(pidpipe), 0);
	long long t0 = now_ms();
	assert_int_equal(child_run(fn_hangs, c, NULL, 300, &err), -ETIMEDOUT);
	long long took = now_ms() - t0;
	assert_true(took >= 300 && took < 3000);
	assert_string_equal(err.msg, "test-action thing-1 did not finish within 0.3 s (-bindtimeout): the "
	    "kernel is waiting for the device to be let go");
	pid_t pid;
	assert_int_equal(read(pidpipe[0], &pid, sizeof(pid)), (ssize_t)sizeof(pid));
	assert_int_equal(kill(pid, 0), -1);	/* killed and reaped */
	assert_int_equal(errno, ESRCH);
	close(pidpipe[0]);
	close(pidpipe[1]);
	json_decref(c);
}

static void
child_run_reports_a_child_that_died_without_reporting(void **state)
{
	json_t *c = a_change();
	struct verr err = { 0 };
	assert_int_equal(child_run(fn_crashes, c, NULL, 5000, &err), -ECHILD);
	assert_non_null(strstr(err.msg, "test-action thing-1: the process doing it died from signal 9"));
	assert_non_null(strstr(err.msg, "vfio -restore"));
	json_decref(c);
}

struct result {
	int calls;
	int code;
	char msg[1024];
	long long at;
	struct event_base *base;
};

static void
on_done(int code, const struct verr *err, void *arg)
{
	struct result *r = arg;
	r->calls++;
	r->code = code;
	r->at = now_ms();
	snprintf(r->msg, sizeof(r->msg), "%s", err->msg);
}

static void
child_start_reports_through_the_event_loop(void **state)
{
	struct event_base *base = event_base_new();
	json_t *c = a_change(), *s = json_pack("{si}", "n", 3);
	struct result r = { 0 };
	struct verr err = { 0 };
	struct child_job *job = child_start(base, fn_fails, c, s, 5000, on_done, &r, &err);
	assert_non_null(job);
	json_decref(c);	/* the job keeps its own copy */
	json_decref(s);
	assert_int_equal(r.calls, 0);	/* nothing happens outside the loop */
	event_base_dispatch(base);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.code, -EIO);
	assert_string_equal(r.msg, "thing-1 failed on purpose (3)");
	event_base_free(base);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	long long *at = arg;
	*at = now_ms();
}

static void
child_start_times_out_while_the_loop_keeps_running(void **state)
{
	struct event_base *base = event_base_new();
	json_t *c = a_change();
	struct result r = { 0 };
	struct verr err = { 0 };
	assert_int_equal(pipe(pidpipe), 0);
	long long t0 = now_ms(), tick = 0;
	struct child_job *job = child_start(base, fn_hangs, c, NULL, 400, on_done, &r, &err);
	assert_non_null(job);
	struct event *ev = evtimer_new(base, on_tick, &tick);
	struct timeval tv = { 0, 100 * 1000 };
	evtimer_add(ev, &tv);
	event_base_dispatch(base);	/* returns once the killed child is reaped */
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.code, -ETIMEDOUT);
	assert_non_null(strstr(r.msg, "did not finish within 0.4 s"));
	assert_true(tick > 0 && tick < r.at);	/* the loop ran while the child hung */
	assert_true(r.at - t0 >= 380);	/* libevent rounds its clock */
	pid_t pid;
	assert_int_equal(read(pidpipe[0], &pid, sizeof(pid)), (ssize_t)sizeof(pid));
	assert_int_equal(kill(pid, 0), -1);
	close(pidpipe[0]);
	close(pidpipe[1]);
	event_free(ev);
	json_decref(c);
	event_base_free(base);
}

static void
child_cancel_kills_the_child_and_never_calls_back(void **state)
{
	struct event_base *base = event_base_new();
	json_t *c = a_change();
	struct result r = { 0 };
	struct verr err = { 0 };
	assert_int_equal(pipe(pidpipe), 0);
	struct child_job *job = child_start(base, fn_hangs, c, NULL, 5000, on_done, &r, &err);
	pid_t pid;
	assert_int_equal(read(pidpipe[0], &pid, sizeof(pid)), (ssize_t)sizeof(pid));
	child_cancel(job);
	int st;
	waitpid(pid, &st, 0);	/* child_cancel does not wait; make sure it is gone */
	assert_int_equal(kill(pid, 0), -1);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(r.calls, 0);
	close(pidpipe[0]);
	close(pidpipe[1]);
	json_decref(c);
	event_base_free(base);
}

static int ran_here;

static int
fn_mark(const json_t *change, const json_t *saved, struct verr *err)
{
	ran_here = 1;
	return 0;
}

static void
only_changes_that_can_block_run_in_a_child(void **state)
{
	json_t *c = a_change();
	struct verr err = { 0 };
	struct change_ops quick = { .action = "test-action", .apply = fn_mark, .undo = fn_mark };
	struct change_ops slow = quick;
	slow.may_block = true;
	ran_here = 0;
	assert_int_equal(child_run_change(&slow, false, c, NULL, 0, &err), 0);
	assert_int_equal(ran_here, 0);	/* it ran, in another process */
	assert_int_equal(child_run_change(&quick, true, c, NULL, 0, &err), 0);
	assert_int_equal(ran_here, 1);
	struct event_base *base = event_base_new();
	struct result r = { 0 };
	ran_here = 0;
	assert_null(child_start_change(base, &quick, false, c, NULL, 0, on_done, &r, &err));
	assert_int_equal(err.code, 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(ran_here, 1);
	assert_non_null(child_start_change(base, &slow, false, c, NULL, 0, on_done, &r, &err));
	event_base_dispatch(base);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.code, 0);
	event_base_free(base);
	json_decref(c);
}

static void
each_action_gets_the_deadline_its_waits_need(void **state)
{
	json_t *two = json_pack("{s[{}{}]}", "procs");
	assert_int_equal(child_timeout_ms(&vfio_bind_pci_ops, NULL, 5000), vfio_bind_timeout_ms(5000));
	assert_true(vfio_bind_timeout_ms(5000) > 5000 + VFIO_BIND_GROUP_WAIT_MS_DEFAULT);
	assert_int_equal(child_timeout_ms(change_find("gpu-users-stop"), two, 2000), 2000 + 9000);
	assert_true(child_timeout_ms(change_find("display-manager-stop"), NULL, 0) > 30000);
	assert_int_equal(child_timeout_ms(change_find("vtcon-unbind"), NULL, 0), CHILD_TIMEOUT_MS_DEFAULT);
	json_decref(two);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(child_run_returns_the_functions_result_and_message),
		cmocka_unit_test(child_run_cuts_off_a_hang_kills_the_child_and_says_so),
		cmocka_unit_test(child_run_reports_a_child_that_died_without_reporting),
		cmocka_unit_test(child_start_reports_through_the_event_loop),
		cmocka_unit_test(child_start_times_out_while_the_loop_keeps_running),
		cmocka_unit_test(child_cancel_kills_the_child_and_never_calls_back),
		cmocka_unit_test(only_changes_that_can_block_run_in_a_child),
		cmocka_unit_test(each_action_gets_the_deadline_its_waits_need),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
