/* The QMP client against real QEMU 7.2 (qemu-system-x86_64 -accel tcg) on a
 * socketpair monitor given as -chardev socket,id=qmp,fd=3 -mon
 * chardev=qmp,mode=control. Also checks that qemu-mock's answers match real
 * QEMU's for the errors the supervisor handles. Skips (77) without QEMU. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define T 20000 /* QEMU under TCG on a loaded machine can be slow to start */

static char qemu[4096];

static bool
find_qemu(void)
{
	const char *path = getenv("PATH");
	if (path == NULL)
		return false;
	char *p = strdup(path), *save = NULL;
	for (char *dir = strtok_r(p, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
		snprintf(qemu, sizeof(qemu), "%s/qemu-system-x86_64", dir);
		if (access(qemu, X_OK) == 0) {
			free(p);
			return true;
		}
	}
	free(p);
	return false;
}

static json_t *
run_ok(struct harness *h, const char *cmd, json_t *args)
{
	struct harness_reply r = { 0 };
	assert_int_equal(qmp_send(h->qmp, cmd, args, -1, T, harness_reply_cb, &r), 0);
	harness_run_until(h, &r.done, T);
	if (r.ret == NULL)
		fail_msg("%s failed: %s: %s", cmd, r.cls, r.desc);
	return r.ret;
}

static void
run_err(struct harness *h, const char *cmd, json_t *args, int fd, struct harness_reply *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(qmp_send(h->qmp, cmd, args, fd, T, harness_reply_cb, r), 0);
	harness_run_until(h, &r->done, T);
	assert_null(r->ret);
}

static void
wait_event(struct harness *h, const char *name, int n)
{
	for (int waited = 0; harness_count_events(h, name) < n; waited += 20) {
		if (waited > T)
			fail_msg("no %s event from QEMU", name);
		harness_run_for(h, 20);
	}
}

static void
test_real_qemu_negotiates_on_fd_3_and_is_in_prelaunch(void **state)
{
	struct harness h;
	harness_start(&h, qemu, NULL, NULL, false);
	harness_run_until(&h, &h.ready, T);
	const json_t *v = qmp_version(h.qmp);
	assert_true(json_integer_value(json_object_get(json_object_get(v, "qemu"), "major")) >= 7);
	json_t *st = run_ok(&h, "query-status", NULL);
	assert_string_equal(json_string_value(json_object_get(st, "status")), "prelaunch");
	assert_false(json_is_true(json_object_get(st, "running")));
	json_decref(st);
	harness_stop(&h);
}

static void
test_real_qemu_cont_and_stop_send_resume_and_stop(void **state)
{
	struct harness h;
	harness_start(&h, qemu, NULL, NULL, false);
	json_decref(run_ok(&h, "cont", NULL));
	wait_event(&h, "RESUME", 1);
	json_decref(run_ok(&h, "stop", NULL));
	wait_event(&h, "STOP", 1);
	json_t *st = run_ok(&h, "query-status", NULL);
	assert_string_equal(json_string_value(json_object_get(st, "status")), "paused");
	json_decref(st);
	harness_stop(&h);
}

static void
test_real_qemu_device_on_root_port_is_removed_by_reset_while_paused(void **state)
{
	/* Finding: with the guest not running (-S), device_del of a PCIe
	 * device only requests the unplug (the attention button); QEMU 7.2
	 * finishes it on system_reset, without any guest. */
	struct harness h;
	harness_start(&h, qemu, NULL, NULL, false);
	json_decref(run_ok(&h, "device_add", json_pack("{s:s, s:s, s:s}", "driver", "e1000e", "id", "nic0", "bus", "rp1")));
	json_decref(run_ok(&h, "device_del", json_pack("{s:s}", "id", "nic0")));
	harness_run_for(&h, 300);
	assert_int_equal(harness_count_events(&h, "DEVICE_DELETED"), 0);
	json_decref(run_ok(&h, "system_reset", NULL));
	wait_event(&h, "DEVICE_DELETED", 1);
	json_t *e = NULL;
	size_t i;
	json_t *ev;
	json_array_foreach(h.events, i, ev)
		if (strcmp(json_string_value(json_object_get(ev, "event")), "DEVICE_DELETED") == 0)
			e = ev;
	assert_true(qmp_device_deleted_matches(json_object_get(e, "data"), "nic0"));
	/* The id is free again. */
	json_decref(run_ok(&h, "device_add", json_pack("{s:s, s:s, s:s}", "driver", "e1000e", "id", "nic0", "bus", "rp1")));
	harness_stop(&h);
}

static void
test_real_qemu_virtio_unplug_reports_the_child_path_first(void **state)
{
	struct harness h;
	harness_start(&h, qemu, NULL, NULL, false);
	json_decref(run_ok(&h, "device_add", json_pack("{s:s, s:s, s:s}", "driver", "virtio-net-pci", "id", "vnet0", "bus", "rp2")));
	json_decref(run_ok(&h, "device_del", json_pack("{s:s}", "id", "vnet0")));
	json_decref(run_ok(&h, "system_reset", NULL));
	wait_event(&h, "DEVICE_DELETED", 2);
	json_t *first = NULL, *second = NULL;
	size_t i;
	json_t *ev;
	json_array_foreach(h.events, i, ev) {
		if (strcmp(json_string_value(json_object_get(ev, "event")), "DEVICE_DELETED") != 0)
			continue;
		if (first == NULL)
			first = json_object_get(ev, "data");
		else if (second == NULL)
			second = json_object_get(ev, "data");
	}
	assert_string_equal(json_string_value(json_object_get(first, "path")), "/machine/peripheral/vnet0/virtio-backend");
	assert_false(qmp_device_deleted_matches(first, "vnet0"));
	assert_true(qmp_device_deleted_matches(second, "vnet0"));
	harness_stop(&h);
}

static void
test_real_qemu_getfd_takes_a_pipe_passed_with_scm_rights(void **state)
{
	struct harness h;
	harness_start(&h, qemu, NULL, NULL, false);
	harness_run_until(&h, &h.ready, T);
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct harness_reply r = { 0 };
	assert_int_equal(qmp_send(h.qmp, "getfd", json_pack("{s:s}", "fdname", "pipe0"), p[1], T, harness_reply_cb, &r), 0);
	harness_run_until(&h, &r.done, T);
	if (r.ret == NULL)
		fail_msg("getfd: %s: %s", r.cls, r.desc);
	harness_reply_clear(&r);
	/* QEMU holds it under that name: closefd finds it once. */
	json_decref(run_ok(&h, "closefd", json_pack("{s:s}", "fdname", "pipe0")));
	run_err(&h, "closefd", json_pack("{s:s}", "fdname", "pipe0"), -1, &r);
	assert_string_equal(r.desc, "File descriptor named 'pipe0' not found");
	close(p[0]);
	close(p[1]);
	harness_stop(&h);
}

static void
test_real_qemu_vcpu_thread_ids_are_its_threads(void **state)
{
	struct harness h;
	harness_start(&h, qemu, NULL, NULL, false);
	json_t *cpus = run_ok(&h, "query-cpus-fast", NULL);
	assert_int_equal(json_array_size(cpus), 2);
	for (size_t i = 0; i < 2; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)h.pid,
		    (int)json_integer_value(json_object_get(json_array_get(cpus, i), "thread-id")));
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
	}
	json_decref(cpus);
	harness_stop(&h);
}

static void
test_real_qemu_quit_sends_shutdown_and_exits(void **state)
{
	struct harness h;
	harness_start(&h, qemu, NULL, NULL, false);
	json_decref(run_ok(&h, "quit", NULL));
	harness_run_until(&h, &h.closed, T);
	assert_int_equal(harness_count_events(&h, "SHUTDOWN"), 1);
	json_t *data = json_object_get(json_array_get(h.events, json_array_size(h.events) - 1), "data");
	assert_string_equal(json_string_value(json_object_get(data, "reason")), "host-qmp-quit");
	int st = harness_wait_exit(&h, T);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	harness_stop(&h);
}

/* The errors the supervisor reacts to, asked of QEMU and of the mock: the
 * fake must answer with the same class and text. */
static void
collect_errors(const char *prog, json_t *out)
{
	struct harness h;
	harness_start(&h, prog, NULL, NULL, false);
	json_decref(run_ok(&h, "device_add", json_pack("{s:s, s:s, s:s}", "driver", "e1000e", "id", "nic0", "bus", "rp1")));
	struct {
		const char *cmd;
		json_t *args;
	} asks[] = {
		{ "device_add", json_pack("{s:s, s:s, s:s}", "driver", "e1000e", "id", "nic0", "bus", "rp2") },
		{ "device_add", json_pack("{s:s, s:s, s:s}", "driver", "e1000e", "id", "nic1", "bus", "rp9") },
		{ "device_add", json_pack("{s:s}", "id", "nic2") },
		{ "device_del", json_pack("{s:s}", "id", "nosuch") },
		{ "getfd", json_pack("{s:s}", "fdname", "f") },
		{ "add-fd", json_object() },
		{ "closefd", json_pack("{s:s}", "fdname", "f") },
		{ "netdev_del", json_pack("{s:s}", "id", "net9") },
		{ "no-such-command", NULL },
		{ "qmp_capabilities", NULL },
	};
	for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
		struct harness_reply r;
		run_err(&h, asks[i].cmd, asks[i].args, -1, &r);
		json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "cmd", asks[i].cmd, "class", r.cls, "desc", r.desc));
	}
	json_decref(run_ok(&h, "device_del", json_pack("{s:s}", "id", "nic0")));
	struct harness_reply r;
	run_err(&h, "device_del", json_pack("{s:s}", "id", "nic0"), -1, &r);
	json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "cmd", "device_del twice", "class", r.cls, "desc", r.desc));
	harness_stop(&h);
}

static void
test_mock_errors_match_real_qemu(void **state)
{
	json_t *real = json_array(), *fake = json_array();
	collect_errors(qemu, real);
	collect_errors(harness_mock_path(), fake);
	for (size_t i = 0; i < json_array_size(real); i++) {
		json_t *a = json_array_get(real, i), *b = json_array_get(fake, i);
		if (!json_equal(a, b)) {
			char *sa = json_dumps(a, 0), *sb = json_dumps(b, 0);
			fail_msg("QEMU said %s but the mock said %s", sa, sb);
		}
	}
	json_decref(real);
	json_decref(fake);
}

/* The run states the supervisor reads, through the same transitions. */
static void
collect_states(const char *prog, json_t *out)
{
	static const char *const steps[] = { NULL, "cont", "stop", "system_reset", "cont", "system_reset" };
	struct harness h;
	harness_start(&h, prog, NULL, NULL, false);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i] != NULL)
			json_decref(run_ok(&h, steps[i], NULL));
		json_t *st = run_ok(&h, "query-status", NULL);
		json_array_append_new(out, json_pack("{s:s, s:O}", "after", steps[i] ? steps[i] : "start", "status",
		    json_object_get(st, "status")));
		json_decref(st);
	}
	harness_stop(&h);
}

static void
test_mock_run_states_match_real_qemu(void **state)
{
	json_t *real = json_array(), *fake = json_array();
	collect_states(qemu, real);
	collect_states(harness_mock_path(), fake);
	if (!json_equal(real, fake)) {
		char *sa = json_dumps(real, 0), *sb = json_dumps(fake, 0);
		fail_msg("QEMU went %s but the mock went %s", sa, sb);
	}
	json_decref(real);
	json_decref(fake);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (!find_qemu()) {
		fprintf(stderr, "qemu-system-x86_64 is not installed: skipping\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_qemu_negotiates_on_fd_3_and_is_in_prelaunch),
		cmocka_unit_test(test_real_qemu_cont_and_stop_send_resume_and_stop),
		cmocka_unit_test(test_real_qemu_device_on_root_port_is_removed_by_reset_while_paused),
		cmocka_unit_test(test_real_qemu_virtio_unplug_reports_the_child_path_first),
		cmocka_unit_test(test_real_qemu_getfd_takes_a_pipe_passed_with_scm_rights),
		cmocka_unit_test(test_real_qemu_vcpu_thread_ids_are_its_threads),
		cmocka_unit_test(test_real_qemu_quit_sends_shutdown_and_exits),
		cmocka_unit_test(test_mock_errors_match_real_qemu),
		cmocka_unit_test(test_mock_run_states_match_real_qemu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
