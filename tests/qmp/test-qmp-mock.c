/* The QMP client against qemu-mock: the handshake, commands and ids,
 * events, disconnects and every fault the fake can play. */
#include <errno.h>
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
#include "qmp-priv.h"

#define T 5000 /* generous: a loaded CI machine must not fail these */

static void
send_cmd(struct harness *h, const char *cmd, json_t *args, int timeout, struct harness_reply *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(qmp_send(h->qmp, cmd, args, -1, timeout, harness_reply_cb, r), 0);
}

static json_t *
run_ok(struct harness *h, const char *cmd, json_t *args)
{
	struct harness_reply r;
	send_cmd(h, cmd, args, T, &r);
	harness_run_until(h, &r.done, T);
	if (r.ret == NULL)
		fail_msg("%s failed: %s: %s", cmd, r.cls, r.desc);
	return r.ret;
}

static void
test_handshake_reads_version_and_becomes_ready(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	assert_false(qmp_is_ready(h.qmp));
	harness_run_until(&h, &h.ready, T);
	assert_int_equal(h.ready, 1);
	assert_true(qmp_is_ready(h.qmp));
	const json_t *v = qmp_version(h.qmp);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "qemu"), "major")), 7);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "qemu"), "minor")), 2);
	/* The mock answers anything but qmp_capabilities with an error until
	 * negotiated, so its record proves the client negotiated first. */
	json_t *rec = harness_record(&h);
	assert_int_equal(json_array_size(rec), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rec, 0), "execute")), "qmp_capabilities");
	json_decref(rec);
	harness_stop(&h);
}

static void
test_commands_sent_before_ready_go_out_after_negotiation(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	struct harness_reply r;
	send_cmd(&h, "query-status", NULL, T, &r);
	harness_run_until(&h, &r.done, T);
	assert_non_null(r.ret);
	assert_string_equal(json_string_value(json_object_get(r.ret, "status")), "prelaunch");
	json_t *rec = harness_record(&h);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rec, 0), "execute")), "qmp_capabilities");
	assert_string_equal(json_string_value(json_object_get(json_array_get(rec, 1), "execute")), "query-status");
	json_decref(rec);
	harness_reply_clear(&r);
	harness_stop(&h);
}

static void
test_every_command_gets_a_unique_id(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	harness_run_until(&h, &h.ready, T);
	struct harness_reply r[5];
	for (int i = 0; i < 5; i++)
		send_cmd(&h, "query-status", NULL, T, &r[i]);
	for (int i = 0; i < 5; i++) {
		harness_run_until(&h, &r[i].done, T);
		assert_int_equal(r[i].done, 1);
		harness_reply_clear(&r[i]);
	}
	json_t *rec = harness_record(&h);
	assert_int_equal(json_array_size(rec), 6);
	for (size_t i = 0; i < json_array_size(rec); i++) {
		json_t *id = json_object_get(json_array_get(rec, i), "id");
		assert_non_null(id);
		for (size_t j = 0; j < i; j++)
			assert_false(json_equal(id, json_object_get(json_array_get(rec, j), "id")));
	}
	json_decref(rec);
	harness_stop(&h);
}

static void
test_qemu_error_reaches_the_callback_with_class_and_desc(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	struct harness_reply r;
	send_cmd(&h, "device_del", json_pack("{s:s}", "id", "nosuch"), T, &r);
	harness_run_until(&h, &r.done, T);
	assert_null(r.ret);
	assert_string_equal(r.cls, "DeviceNotFound");
	assert_string_equal(r.desc, "Device 'nosuch' not found");
	harness_stop(&h);
}

static void
test_cont_delivers_resume_to_subscribers(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	json_decref(run_ok(&h, "cont", NULL));
	assert_int_equal(harness_count_events(&h, "RESUME"), 1);
	json_t *st = run_ok(&h, "query-status", NULL);
	assert_string_equal(json_string_value(json_object_get(st, "status")), "running");
	json_decref(st);
	harness_stop(&h);
}

static int named_events;
static void
count_named(struct qmp *qmp, const char *name, const json_t *data, double ts, void *arg)
{
	assert_string_equal(name, "STOP");
	assert_true(ts > 1e9);
	named_events++;
}

static void
test_subscription_by_name_sees_only_that_event(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	named_events = 0;
	int handle = qmp_subscribe(h.qmp, "STOP", count_named, NULL);
	json_decref(run_ok(&h, "cont", NULL));
	json_decref(run_ok(&h, "stop", NULL));
	assert_int_equal(named_events, 1);
	qmp_unsubscribe(h.qmp, handle);
	json_decref(run_ok(&h, "cont", NULL));
	json_decref(run_ok(&h, "stop", NULL));
	assert_int_equal(named_events, 1);
	harness_stop(&h);
}

static void
test_quit_emits_shutdown_then_disconnect_is_reported_once(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	json_decref(run_ok(&h, "quit", NULL));
	harness_run_until(&h, &h.closed, T);
	assert_int_equal(harness_count_events(&h, "SHUTDOWN"), 1);
	json_t *e = json_array_get(h.events, 0);
	assert_false(json_is_true(json_object_get(json_object_get(e, "data"), "guest")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "data"), "reason")), "host-qmp-quit");
	int st = harness_wait_exit(&h, T);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* Run the loop a little more: closed() must not come again. */
	struct harness_reply r;
	assert_int_equal(qmp_send(h.qmp, "query-status", NULL, -1, 0, harness_reply_cb, &r), -ENOTCONN);
	assert_int_equal(h.closed, 1);
	harness_stop(&h);
}

static void
test_powerdown_of_running_guest_ends_in_guest_shutdown(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	json_decref(run_ok(&h, "cont", NULL));
	json_decref(run_ok(&h, "system_powerdown", NULL));
	harness_run_until(&h, &h.closed, T);
	assert_int_equal(harness_count_events(&h, "POWERDOWN"), 1);
	assert_int_equal(harness_count_events(&h, "SHUTDOWN"), 1);
	json_t *e = json_array_get(h.events, json_array_size(h.events) - 1);
	assert_string_equal(json_string_value(json_object_get(e, "event")), "SHUTDOWN");
	assert_true(json_is_true(json_object_get(json_object_get(e, "data"), "guest")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "data"), "reason")), "guest-shutdown");
	assert_int_equal(WEXITSTATUS(harness_wait_exit(&h, T)), 0);
	harness_stop(&h);
}

static void
test_disconnect_fails_every_pending_command_once(void **state)
{
	/* QEMU dies while two commands are outstanding. */
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"query-name\", \"before\": [{\"signal\": \"SIGKILL\"}]}]}", false);
	harness_run_until(&h, &h.ready, T);
	struct harness_reply a, b;
	send_cmd(&h, "query-name", NULL, 0, &a);
	send_cmd(&h, "query-status", NULL, 0, &b);
	harness_run_until(&h, &h.closed, T);
	assert_int_equal(a.done, 1);
	assert_int_equal(b.done, 1);
	assert_string_equal(a.cls, QMP_ERR_DISCONNECTED);
	assert_string_equal(b.cls, QMP_ERR_DISCONNECTED);
	assert_int_equal(h.closed, 1);
	int st = harness_wait_exit(&h, T);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	harness_stop(&h);
}

static void
test_query_cpus_fast_gives_real_thread_ids_of_the_fake(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	json_t *cpus = run_ok(&h, "query-cpus-fast", NULL);
	assert_int_equal(json_array_size(cpus), 2);
	for (size_t i = 0; i < 2; i++) {
		json_int_t tid = json_integer_value(json_object_get(json_array_get(cpus, i), "thread-id"));
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)h.pid, (int)tid);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_int_not_equal(tid, h.pid);
	}
	json_decref(cpus);
	harness_stop(&h);
}

static void
test_fake_records_argv_as_given(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	harness_run_until(&h, &h.ready, T);
	json_error_t err;
	json_t *argv = json_load_file(h.argv, 0, &err);
	assert_non_null(argv);
	assert_string_equal(json_string_value(json_array_get(argv, 1)), "-S");
	assert_string_equal(json_string_value(json_array_get(argv, 11)), "-mon");
	json_decref(argv);
	harness_stop(&h);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_reads_version_and_becomes_ready),
		cmocka_unit_test(test_commands_sent_before_ready_go_out_after_negotiation),
		cmocka_unit_test(test_every_command_gets_a_unique_id),
		cmocka_unit_test(test_qemu_error_reaches_the_callback_with_class_and_desc),
		cmocka_unit_test(test_cont_delivers_resume_to_subscribers),
		cmocka_unit_test(test_subscription_by_name_sees_only_that_event),
		cmocka_unit_test(test_quit_emits_shutdown_then_disconnect_is_reported_once),
		cmocka_unit_test(test_powerdown_of_running_guest_ends_in_guest_shutdown),
		cmocka_unit_test(test_disconnect_fails_every_pending_command_once),
		cmocka_unit_test(test_query_cpus_fast_gives_real_thread_ids_of_the_fake),
		cmocka_unit_test(test_fake_records_argv_as_given),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
