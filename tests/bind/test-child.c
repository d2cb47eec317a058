/* Changes that can block run in a child with a deadline: the result comes
 * back, a hang is cut off and reported, a crash is reported, and the event
 * loop keeps running meanwhile. A child that reported in time runs the next
 * job (the spare), never one killed or forked under other settings, and it
 * does not outlive the supervisor. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/syscall.h>
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

/* The deadline of each kind comes from its own ops: -bindtimeout plus the
 * waits inside that report their own failure. pci-bind-vfio gets 11 s by
 * default, as vfio(1) says: once, never padded twice. */
static void
each_action_gets_the_deadline_its_waits_need(void **state)
{
	json_t *two = json_pack("{s[{}{}]}", "procs");
	vfio_bind_set_waits(0, 0);
	assert_int_equal(change_deadline_ms(&vfio_bind_pci_ops, NULL, NULL, 0), 11000);
	assert_int_equal(change_deadline_ms(&vfio_bind_pci_ops, NULL, NULL, 2000), 2000 + 5000 + 1000);
	assert_int_equal(change_deadline_ms(change_find("gpu-users-stop"), NULL, two, 2000), 2000 + 9000);
	assert_int_equal(change_deadline_ms(change_find("display-manager-stop"), NULL, NULL, 0), 35000);
	assert_int_equal(change_deadline_ms(change_find("module-load"), NULL, NULL, 0), 15000);
	assert_int_equal(change_deadline_ms(change_find("vtcon-unbind"), NULL, NULL, 0), CHANGE_BINDTIMEOUT_MS_DEFAULT);
	json_decref(two);
}

/* ---- the spare: a child that reported in time runs the next job ---- */

/* Writes its pid to the file saved.path names, then returns saved.n. A
 * file, not a pipe: a spare was forked before this test's descriptors. */
static int
fn_pid(const json_t *change, const json_t *saved, struct verr *err)
{
	FILE *f = fopen(json_string_value(json_object_get(saved, "path")), "w");
	if (f == NULL)
		return verr_set(err, -errno, "cannot write the pid file");
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	int n = (int)json_integer_value(json_object_get(saved, "n"));
	if (n < 0)
		return verr_set(err, n, "%s failed on purpose", json_string_value(json_object_get(change, "target")));
	return n;
}

static char pidfile[] = "/tmp/vfio-test-child-pid-XXXXXX";

static pid_t
pid_from_file(void)
{
	FILE *f = fopen(pidfile, "r");
	int pid = -1;
	if (f != NULL) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = -1;
		fclose(f);
	}
	return (pid_t)pid;
}

/* One child_start job of fn_pid through the loop: its code, message and
 * the pid of the child that ran it. */
static pid_t
run_pid_job(struct event_base *base, const char *target, int n, struct result *r)
{
	json_t *c = json_pack("{ss ss}", "action", "test-action", "target", target);
	json_t *s = json_pack("{ss si}", "path", pidfile, "n", n);
	struct verr err = { 0 };
	memset(r, 0, sizeof(*r));
	unlink(pidfile);
	assert_non_null(child_start(base, fn_pid, c, s, 5000, on_done, r, &err));
	json_decref(c);
	json_decref(s);
	event_base_dispatch(base);
	assert_int_equal(r->calls, 1);
	return pid_from_file();
}

static int
make_pidfile(void **state)
{
	int fd = mkstemp(pidfile);
	assert_true(fd >= 0);
	close(fd);
	return 0;
}

static int
drop_spare(void **state)
{
	child_spare_drop();
	return 0;
}

static void
the_next_job_runs_in_the_child_of_the_last_with_its_own_arguments(void **state)
{
	struct event_base *base = event_base_new();
	struct result r;
	pid_t first = run_pid_job(base, "thing-1", 0, &r);
	assert_true(first > 0);
	assert_int_equal(r.code, 0);
	assert_int_equal(kill(first, 0), 0);	/* still there, idle */
	pid_t second = run_pid_job(base, "thing-2", -EIO, &r);
	assert_int_equal(second, first);
	assert_int_equal(r.code, -EIO);
	assert_string_equal(r.msg, "thing-2 failed on purpose");
	pid_t third = run_pid_job(base, "thing-3", 7, &r);
	assert_int_equal(third, first);
	assert_int_equal(r.code, 7);
	assert_string_equal(r.msg, "");
	child_spare_drop();
	assert_int_equal(kill(first, 0), -1);	/* let go and reaped */
	assert_int_equal(errno, ESRCH);
	event_base_free(base);
}

static void
a_spare_forked_under_another_host_root_is_not_used(void **state)
{
	struct event_base *base = event_base_new();
	struct result r;
	char *old = getenv("VFIO_HOST_ROOT") ? xstrdup(getenv("VFIO_HOST_ROOT")) : NULL;
	pid_t first = run_pid_job(base, "thing-1", 0, &r);
	setenv("VFIO_HOST_ROOT", "/tmp/vfio-test-child-another-root", 1);
	pid_t second = run_pid_job(base, "thing-2", 0, &r);
	assert_true(second > 0);
	assert_int_not_equal(second, first);
	assert_int_equal(kill(first, 0), -1);	/* the unfit spare was reaped */
	if (old != NULL)
		setenv("VFIO_HOST_ROOT", old, 1);
	else
		unsetenv("VFIO_HOST_ROOT");
	free(old);
	event_base_free(base);
}

static void
a_spare_killed_while_idle_is_replaced_by_a_new_child(void **state)
{
	struct event_base *base = event_base_new();
	struct result r;
	pid_t first = run_pid_job(base, "thing-1", 0, &r);
	assert_int_equal(kill(first, SIGKILL), 0);
	pid_t second = run_pid_job(base, "thing-2", 5, &r);
	assert_int_equal(r.code, 5);
	assert_true(second > 0);
	assert_int_not_equal(second, first);
	assert_int_equal(kill(first, 0), -1);	/* reaped, not left a zombie */
	event_base_free(base);
}

static void
a_child_killed_for_its_deadline_is_not_kept(void **state)
{
	struct event_base *base = event_base_new();
	struct result r;
	json_t *c = a_change();
	struct verr err = { 0 };
	assert_int_equal(pipe(pidpipe), 0);
	memset(&r, 0, sizeof(r));
	assert_non_null(child_start(base, fn_hangs, c, NULL, 300, on_done, &r, &err));
	event_base_dispatch(base);
	assert_int_equal(r.code, -ETIMEDOUT);
	pid_t hung;
	assert_int_equal(read(pidpipe[0], &hung, sizeof(hung)), (ssize_t)sizeof(hung));
	pid_t next = run_pid_job(base, "thing-2", 0, &r);
	assert_true(next > 0);
	assert_int_not_equal(next, hung);
	close(pidpipe[0]);
	close(pidpipe[1]);
	json_decref(c);
	event_base_free(base);
}

static void
an_idle_spare_dies_with_its_supervisor(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t sup = fork();
	assert_true(sup >= 0);
	if (sup == 0) {
		/* a supervisor that leaves a spare behind and dies */
		struct event_base *base = event_base_new();
		struct result r;
		pid_t spare = run_pid_job(base, "thing-1", 0, &r);
		ssize_t n = write(p[1], &spare, sizeof(spare));
		_exit(n == (ssize_t)sizeof(spare) ? 0 : 1);
	}
	close(p[1]);
	pid_t spare = -1;
	assert_int_equal(read(p[0], &spare, sizeof(spare)), (ssize_t)sizeof(spare));
	close(p[0]);
	assert_true(spare > 0);
	int pfd = (int)syscall(SYS_pidfd_open, spare, 0);
	int st;
	assert_int_equal(waitpid(sup, &st, 0), sup);
	if (pfd >= 0) {
		/* readable once the spare has exited */
		struct pollfd pf = { .fd = pfd, .events = POLLIN };
		assert_int_equal(poll(&pf, 1, 10000), 1);
		close(pfd);
	} else {
		assert_int_equal(errno, ESRCH);	/* gone already */
	}
}

int
main(void)
{
	/* Each case starts without a spare: one forked by an earlier case
	 * holds that case's memory (the pid pipe), not this one's. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(child_run_returns_the_functions_result_and_message, drop_spare),
		cmocka_unit_test_teardown(child_run_cuts_off_a_hang_kills_the_child_and_says_so, drop_spare),
		cmocka_unit_test_teardown(child_run_reports_a_child_that_died_without_reporting, drop_spare),
		cmocka_unit_test_teardown(child_start_reports_through_the_event_loop, drop_spare),
		cmocka_unit_test_teardown(child_start_times_out_while_the_loop_keeps_running, drop_spare),
		cmocka_unit_test_teardown(child_cancel_kills_the_child_and_never_calls_back, drop_spare),
		cmocka_unit_test_teardown(each_action_gets_the_deadline_its_waits_need, drop_spare),
		cmocka_unit_test_teardown(the_next_job_runs_in_the_child_of_the_last_with_its_own_arguments,
		    drop_spare),
		cmocka_unit_test_teardown(a_spare_forked_under_another_host_root_is_not_used, drop_spare),
		cmocka_unit_test_teardown(a_spare_killed_while_idle_is_replaced_by_a_new_child, drop_spare),
		cmocka_unit_test_teardown(a_child_killed_for_its_deadline_is_not_kept, drop_spare),
		cmocka_unit_test_teardown(an_idle_spare_dies_with_its_supervisor, drop_spare),
	};
	int rc = cmocka_run_group_tests(tests, make_pidfile, NULL);
	unlink(pidfile);
	return rc;
}
