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
#include <fcntl.h>
#include <sys/socket.h>
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
	assert_string_equal(json_string_value(json_array_get(argv, 13)), "-mon");
	json_decref(argv);
	harness_stop(&h);
}


/* ---- ordering: events arrive anywhere ---- */

static void
test_events_before_the_greeting_are_delivered(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"start\": [{\"event\": \"RESET\", \"data\": {\"guest\": true, \"reason\": \"guest-reset\"}}]}", false);
	harness_run_until(&h, &h.ready, T);
	assert_int_equal(harness_count_events(&h, "RESET"), 1);
	json_decref(run_ok(&h, "query-status", NULL));
	harness_stop(&h);
}

static void
test_event_before_the_capabilities_reply_is_delivered(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"qmp_capabilities\", \"before\": [{\"event\": \"STOP\"}]}]}", false);
	harness_run_until(&h, &h.ready, T);
	assert_int_equal(harness_count_events(&h, "STOP"), 1);
	assert_int_equal(h.closed, 0);
	harness_stop(&h);
}

static void
test_virtio_child_path_deleted_does_not_match_the_device(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	json_decref(run_ok(&h, "cont", NULL));
	json_decref(run_ok(&h, "device_add", json_pack("{s:s, s:s, s:s}", "driver", "virtio-net-pci", "id", "nic0", "bus", "rp1")));
	json_decref(run_ok(&h, "device_del", json_pack("{s:s}", "id", "nic0")));
	while (harness_count_events(&h, "DEVICE_DELETED") < 2)
		harness_run_for(&h, 20);
	json_t *first = NULL, *second = NULL;
	size_t i;
	json_t *e;
	json_array_foreach(h.events, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "event")), "DEVICE_DELETED") != 0)
			continue;
		if (first == NULL)
			first = json_object_get(e, "data");
		else
			second = json_object_get(e, "data");
	}
	assert_string_equal(json_string_value(json_object_get(first, "path")), "/machine/peripheral/nic0/virtio-backend");
	assert_false(qmp_device_deleted_matches(first, "nic0"));
	assert_true(qmp_device_deleted_matches(second, "nic0"));
	harness_stop(&h);
}

/* ---- timeouts ---- */

static void
test_timeout_fails_the_command_and_its_late_reply_is_dropped(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"commands\": [{\"command\": \"query-status\", \"delay_ms\": 1500}]}", false);
	harness_run_until(&h, &h.ready, T);
	struct harness_reply slow, next;
	send_cmd(&h, "query-status", NULL, 100, &slow);
	harness_run_until(&h, &slow.done, T);
	assert_string_equal(slow.cls, QMP_ERR_TIMEOUT);
	assert_non_null(strstr(slow.desc, "query-status"));
	/* QEMU answers commands in order, so the late reply comes first and
	 * must neither reach anyone nor be taken for a protocol error. */
	send_cmd(&h, "query-name", NULL, T, &next);
	harness_run_until(&h, &next.done, T);
	assert_non_null(next.ret);
	assert_true(json_is_object(next.ret));
	assert_int_equal(slow.done, 1);
	assert_int_equal(h.closed, 0);
	harness_reply_clear(&next);
	harness_stop(&h);
}

static void
test_hanging_qemu_times_out_commands_without_closing(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"commands\": [{\"command\": \"query-status\", \"hang\": true}]}", false);
	harness_run_until(&h, &h.ready, T);
	struct harness_reply a, b;
	send_cmd(&h, "query-status", NULL, 150, &a);
	send_cmd(&h, "query-name", NULL, 150, &b);
	harness_run_until(&h, &b.done, T);
	assert_string_equal(a.cls, QMP_ERR_TIMEOUT);
	assert_string_equal(b.cls, QMP_ERR_TIMEOUT);
	assert_int_equal(h.closed, 0);
	/* The hung fake still records what it was sent. */
	json_t *rec = harness_record(&h);
	assert_int_equal(json_array_size(rec), 3);
	json_decref(rec);
	harness_stop(&h);
}

static void
test_timeout_before_the_handshake_never_sends_the_command(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"start\": [{\"hang\": true}]}", false);
	struct harness_reply r;
	send_cmd(&h, "query-status", NULL, 100, &r);
	harness_run_until(&h, &r.done, T);
	assert_string_equal(r.cls, QMP_ERR_TIMEOUT);
	assert_int_equal(h.ready, 0);
	struct verr err;
	assert_int_equal(qmp_wait_ready(h.qmp, 100, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "handshake"));
	harness_stop(&h);
}

/* ---- faults ---- */

static void
test_garbage_bytes_close_with_a_protocol_error(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"query-status\", \"before\": [{\"raw\": \"this is not json\\r\\n\"}]}]}", false);
	harness_run_until(&h, &h.ready, T);
	struct harness_reply r;
	send_cmd(&h, "query-status", NULL, 0, &r);
	harness_run_until(&h, &h.closed, T);
	assert_int_equal(r.done, 1);
	assert_string_equal(r.cls, QMP_ERR_PROTOCOL);
	assert_non_null(strstr(r.desc, "not valid JSON"));
	assert_non_null(strstr(h.closed_why, "this is not json"));
	assert_int_equal(h.closed, 1);
	harness_stop(&h);
}

static void
test_reply_split_across_delayed_writes_is_assembled(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"query-status\", \"split\": [1, 9, 30], \"split_delay_ms\": 40}]}", false);
	json_t *st = run_ok(&h, "query-status", NULL);
	assert_string_equal(json_string_value(json_object_get(st, "status")), "prelaunch");
	json_decref(st);
	harness_stop(&h);
}

static void
test_multi_mib_reply_arrives_whole(void **state)
{
	size_t big = 6u << 20;
	char *sc = malloc(big + 200);
	int n = sprintf(sc, "{\"commands\": [{\"command\": \"query-qmp-schema\", \"reply\": {\"return\": [{\"name\": \"");
	memset(sc + n, 'q', big);
	strcpy(sc + n + big, "\"}]}}]}");
	struct harness h;
	harness_start(&h, NULL, NULL, sc, false);
	free(sc);
	json_t *ret = run_ok(&h, "query-qmp-schema", NULL);
	assert_int_equal(json_string_length(json_object_get(json_array_get(ret, 0), "name")), big);
	json_decref(ret);
	harness_stop(&h);
}

static void
test_line_over_64_mib_closes_the_connection(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"query-status\", \"before\": [{\"raw\": \"x\", \"repeat\": 67109000}]}]}", false);
	harness_run_until(&h, &h.ready, T);
	struct harness_reply r;
	send_cmd(&h, "query-status", NULL, 0, &r);
	harness_run_until(&h, &h.closed, 4 * T);
	assert_string_equal(r.cls, QMP_ERR_PROTOCOL);
	/* Depending on how reads fall, the client notices while the line
	 * grows or once it is complete; either way it names the bound. */
	if (strstr(h.closed_why, "67108864") == NULL)
		fail_msg("why: %s", h.closed_why);
	harness_stop(&h);
}

static void
test_fake_closing_the_socket_is_a_disconnect(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"query-status\", \"before\": [{\"close\": true}]}]}", false);
	harness_run_until(&h, &h.ready, T);
	struct harness_reply r;
	send_cmd(&h, "query-status", NULL, 0, &r);
	harness_run_until(&h, &h.closed, T);
	assert_string_equal(r.cls, QMP_ERR_DISCONNECTED);
	assert_non_null(strstr(h.closed_why, "closed"));
	harness_stop(&h);
}

static void
test_crash_before_the_greeting_fails_the_handshake(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"start\": [{\"signal\": \"SIGSEGV\"}]}", false);
	struct verr err;
	assert_int_equal(qmp_wait_ready(h.qmp, T, &err), -ENOTCONN);
	assert_non_null(strstr(err.msg, "closed"));
	assert_int_equal(h.ready, 0);
	assert_int_equal(h.closed, 1);
	int st = harness_wait_exit(&h, T);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSEGV);
	harness_stop(&h);
}

static void
test_crash_some_time_after_the_greeting_is_a_disconnect(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"after_greeting\": [{\"delay_ms\": 150, \"signal\": \"SIGABRT\"}]}", false);
	harness_run_until(&h, &h.ready, T);
	harness_run_until(&h, &h.closed, T);
	int st = harness_wait_exit(&h, T);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGABRT);
	harness_stop(&h);
}

static void
test_exit_after_a_command_has_the_given_status(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"commands\": [{\"command\": \"stop\", \"after\": [{\"exit\": 3}]}]}", false);
	json_decref(run_ok(&h, "stop", NULL));
	harness_run_until(&h, &h.closed, T);
	int st = harness_wait_exit(&h, T);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 3);
	harness_stop(&h);
}

static void
test_error_without_id_is_reported_not_matched(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"query-status\", \"before\": [{\"raw\": "
	    "\"{\\\"error\\\": {\\\"class\\\": \\\"GenericError\\\", \\\"desc\\\": \\\"JSON parse error, invalid keyword\\\"}}\\r\\n\"}]}]}",
	    false);
	json_t *st = run_ok(&h, "query-status", NULL);
	assert_string_equal(json_string_value(json_object_get(st, "status")), "prelaunch");
	json_decref(st);
	assert_int_equal(h.stray, 1);
	assert_string_equal(h.stray_desc, "GenericError: JSON parse error, invalid keyword");
	assert_int_equal(h.closed, 0);
	harness_stop(&h);
}

static void
test_reply_to_an_unknown_id_closes_the_connection(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"query-status\", \"before\": [{\"raw\": \"{\\\"return\\\": {}, \\\"id\\\": 999}\\r\\n\"}]}]}",
	    false);
	harness_run_until(&h, &h.ready, T);
	struct harness_reply r;
	send_cmd(&h, "query-status", NULL, 0, &r);
	harness_run_until(&h, &h.closed, T);
	assert_string_equal(r.cls, QMP_ERR_PROTOCOL);
	assert_non_null(strstr(h.closed_why, "999"));
	harness_stop(&h);
}

static void
test_json_array_instead_of_object_closes_the_connection(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"start\": [{\"raw\": \"[1, 2, 3]\\r\\n\"}]}", false);
	harness_run_until(&h, &h.closed, T);
	assert_int_equal(h.ready, 0);
	assert_non_null(strstr(h.closed_why, "not an object"));
	harness_stop(&h);
}

static void
test_refused_capabilities_close_the_connection(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"qmp_capabilities\", \"reply\": {\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}}]}",
	    false);
	harness_run_until(&h, &h.closed, T);
	assert_int_equal(h.ready, 0);
	assert_non_null(strstr(h.closed_why, "refused qmp_capabilities"));
	assert_non_null(strstr(h.closed_why, "nope"));
	harness_stop(&h);
}

static void
test_second_greeting_closes_the_connection(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"query-status\", \"before\": [{\"raw\": \"{\\\"QMP\\\": {\\\"version\\\": {}, \\\"capabilities\\\": []}}\\r\\n\"}]}]}",
	    false);
	harness_run_until(&h, &h.ready, T);
	struct harness_reply r;
	send_cmd(&h, "query-status", NULL, 0, &r);
	harness_run_until(&h, &h.closed, T);
	assert_string_equal(r.cls, QMP_ERR_PROTOCOL);
	assert_non_null(strstr(h.closed_why, "second QMP greeting"));
	harness_stop(&h);
}

static void
test_qmp_new_refuses_a_closed_descriptor(void **state)
{
	struct event_base *base = event_base_new();
	int p[2];
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	close(p[1]);
	errno = 0;
	assert_null(qmp_new(base, p[0], NULL, NULL));
	assert_int_equal(errno, EBADF);
	event_base_free(base);
}

struct late_sub {
	struct qmp *qmp;
	int outer, inner;
};

static void
late_inner(struct qmp *qmp, const char *name, const json_t *data, double ts, void *arg)
{
	((struct late_sub *)arg)->inner++;
}

static void
late_outer(struct qmp *qmp, const char *name, const json_t *data, double ts, void *arg)
{
	struct late_sub *l = arg;
	if (l->outer++ == 0)
		qmp_subscribe(qmp, "STOP", late_inner, l);
}

static void
test_subscriber_added_in_a_callback_starts_with_the_next_event(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	struct late_sub l = { 0 };
	qmp_subscribe(h.qmp, "STOP", late_outer, &l);
	json_decref(run_ok(&h, "cont", NULL));
	json_decref(run_ok(&h, "stop", NULL));
	assert_int_equal(l.outer, 1);
	assert_int_equal(l.inner, 0);
	json_decref(run_ok(&h, "cont", NULL));
	json_decref(run_ok(&h, "stop", NULL));
	assert_int_equal(l.outer, 2);
	assert_int_equal(l.inner, 1);
	harness_stop(&h);
}

/* ---- scenario behaviour the supervisor relies on ---- */

static void
test_canned_reply_overrides_the_default(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"query-status\", \"nth\": 2, \"reply\": {\"return\": {\"status\": \"inmigrate\", \"running\": false}}}]}",
	    false);
	json_t *a = run_ok(&h, "query-status", NULL);
	json_t *b = run_ok(&h, "query-status", NULL);
	json_t *c = run_ok(&h, "query-status", NULL);
	assert_string_equal(json_string_value(json_object_get(a, "status")), "prelaunch");
	assert_string_equal(json_string_value(json_object_get(b, "status")), "inmigrate");
	assert_string_equal(json_string_value(json_object_get(c, "status")), "prelaunch");
	json_decref(a);
	json_decref(b);
	json_decref(c);
	harness_stop(&h);
}

static void
test_event_scheduled_after_a_command(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"cont\", \"after\": [{\"delay_ms\": 500, \"event\": \"SHUTDOWN\", "
	    "\"data\": {\"guest\": true, \"reason\": \"guest-panic\"}}]}]}", false);
	json_decref(run_ok(&h, "cont", NULL));
	assert_int_equal(harness_count_events(&h, "SHUTDOWN"), 0);
	while (harness_count_events(&h, "SHUTDOWN") == 0)
		harness_run_for(&h, 20);
	json_t *e = json_array_get(h.events, json_array_size(h.events) - 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "data"), "reason")), "guest-panic");
	harness_stop(&h);
}

static void
test_guest_that_ignores_powerdown_keeps_running(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"guest\": {\"ignore_powerdown\": true, \"powerdown_delay_ms\": 10}}", false);
	json_decref(run_ok(&h, "cont", NULL));
	json_decref(run_ok(&h, "system_powerdown", NULL));
	harness_run_for(&h, 300);
	assert_int_equal(harness_count_events(&h, "POWERDOWN"), 1);
	assert_int_equal(harness_count_events(&h, "SHUTDOWN"), 0);
	assert_int_equal(h.closed, 0);
	json_t *st = run_ok(&h, "query-status", NULL);
	assert_string_equal(json_string_value(json_object_get(st, "status")), "running");
	json_decref(st);
	harness_stop(&h);
}

static void
test_guest_that_ignores_unplug_never_deletes_until_reset(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"guest\": {\"ignore_unplug\": true, \"unplug_delay_ms\": 10}}", false);
	json_decref(run_ok(&h, "cont", NULL));
	json_decref(run_ok(&h, "device_add", json_pack("{s:s, s:s, s:s}", "driver", "e1000e", "id", "nic0", "bus", "rp1")));
	json_decref(run_ok(&h, "device_del", json_pack("{s:s}", "id", "nic0")));
	harness_run_for(&h, 300);
	assert_int_equal(harness_count_events(&h, "DEVICE_DELETED"), 0);
	struct harness_reply again;
	send_cmd(&h, "device_del", json_pack("{s:s}", "id", "nic0"), T, &again);
	harness_run_until(&h, &again.done, T);
	assert_string_equal(again.desc, "Device nic0 is already in the process of unplug");
	/* As real QEMU 7.2 does: a reset completes the pending unplug. */
	json_decref(run_ok(&h, "system_reset", NULL));
	while (harness_count_events(&h, "DEVICE_DELETED") == 0)
		harness_run_for(&h, 20);
	assert_int_equal(harness_count_events(&h, "RESET"), 1);
	harness_stop(&h);
}

static void
test_unplug_requested_while_paused_completes_after_cont(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"guest\": {\"unplug_delay_ms\": 10}}", false);
	json_decref(run_ok(&h, "device_add", json_pack("{s:s, s:s, s:s}", "driver", "e1000e", "id", "nic0", "bus", "rp2")));
	json_decref(run_ok(&h, "device_del", json_pack("{s:s}", "id", "nic0")));
	harness_run_for(&h, 200);
	assert_int_equal(harness_count_events(&h, "DEVICE_DELETED"), 0);
	json_decref(run_ok(&h, "cont", NULL));
	while (harness_count_events(&h, "DEVICE_DELETED") == 0)
		harness_run_for(&h, 20);
	/* The id is free again. */
	json_decref(run_ok(&h, "device_add", json_pack("{s:s, s:s, s:s}", "driver", "e1000e", "id", "nic0", "bus", "rp2")));
	harness_stop(&h);
}

static void
test_device_add_errors_match_qemu(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	json_decref(run_ok(&h, "device_add", json_pack("{s:s, s:s, s:s}", "driver", "e1000e", "id", "nic0", "bus", "rp1")));
	struct harness_reply dup, bus;
	send_cmd(&h, "device_add", json_pack("{s:s, s:s, s:s}", "driver", "e1000e", "id", "nic0", "bus", "rp2"), T, &dup);
	send_cmd(&h, "device_add", json_pack("{s:s, s:s, s:s}", "driver", "e1000e", "id", "nic1", "bus", "rp9"), T, &bus);
	harness_run_until(&h, &bus.done, T);
	assert_string_equal(dup.desc, "Duplicate device ID 'nic0'");
	assert_string_equal(bus.cls, "GenericError");
	assert_string_equal(bus.desc, "Bus 'rp9' not found");
	harness_stop(&h);
}

/* ---- file descriptors ---- */

static void
test_getfd_passes_a_working_pipe_and_the_caller_keeps_its_copy(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	harness_run_until(&h, &h.ready, T);
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct harness_reply r = { 0 };
	assert_int_equal(qmp_send(h.qmp, "getfd", json_pack("{s:s}", "fdname", "tapfd0"), p[1], T, harness_reply_cb, &r), 0);
	harness_run_until(&h, &r.done, T);
	assert_non_null(r.ret);
	char c = 0;
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'Q');
	assert_true(fcntl(p[1], F_GETFD) >= 0);
	json_t *rec = harness_record(&h);
	json_t *last = json_array_get(rec, json_array_size(rec) - 1);
	assert_string_equal(json_string_value(json_object_get(last, "execute")), "getfd");
	assert_true(json_is_true(json_object_get(last, "fd_received")));
	assert_true(json_is_true(json_object_get(last, "fd_usable")));
	assert_string_equal(json_string_value(json_object_get(last, "fd_kind")), "pipe");
	json_decref(rec);
	harness_reply_clear(&r);
	close(p[0]);
	close(p[1]);
	harness_stop(&h);
}

static void
test_add_fd_passes_an_fd_into_an_fdset(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	harness_run_until(&h, &h.ready, T);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct harness_reply r = { 0 };
	assert_int_equal(qmp_send(h.qmp, "add-fd", json_pack("{s:i}", "fdset-id", 4), sv[0], T, harness_reply_cb, &r), 0);
	harness_run_until(&h, &r.done, T);
	assert_non_null(r.ret);
	assert_int_equal(json_integer_value(json_object_get(r.ret, "fdset-id")), 4);
	assert_true(json_integer_value(json_object_get(r.ret, "fd")) >= 0);
	char c = 0;
	assert_int_equal(read(sv[1], &c, 1), 1);
	harness_reply_clear(&r);
	close(sv[0]);
	close(sv[1]);
	harness_stop(&h);
}

static void
test_getfd_without_an_fd_is_refused_like_qemu(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	struct harness_reply r;
	send_cmd(&h, "getfd", json_pack("{s:s}", "fdname", "x"), T, &r);
	harness_run_until(&h, &r.done, T);
	assert_string_equal(r.cls, "GenericError");
	assert_string_equal(r.desc, "No file descriptor supplied via SCM_RIGHTS");
	json_t *rec = harness_record(&h);
	assert_false(json_is_true(json_object_get(json_array_get(rec, 1), "fd_received")));
	json_decref(rec);
	harness_stop(&h);
}

static void
test_fd_goes_only_with_its_own_command(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	harness_run_until(&h, &h.ready, T);
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct harness_reply a = { 0 }, b = { 0 }, c = { 0 };
	assert_int_equal(qmp_send(h.qmp, "query-status", NULL, -1, T, harness_reply_cb, &a), 0);
	assert_int_equal(qmp_send(h.qmp, "getfd", json_pack("{s:s}", "fdname", "f"), p[1], T, harness_reply_cb, &b), 0);
	assert_int_equal(qmp_send(h.qmp, "query-status", NULL, -1, T, harness_reply_cb, &c), 0);
	harness_run_until(&h, &c.done, T);
	assert_non_null(b.ret);
	json_t *rec = harness_record(&h);
	assert_false(json_is_true(json_object_get(json_array_get(rec, 1), "fd_received")));
	assert_true(json_is_true(json_object_get(json_array_get(rec, 2), "fd_received")));
	assert_false(json_is_true(json_object_get(json_array_get(rec, 3), "fd_received")));
	json_decref(rec);
	harness_reply_clear(&a);
	harness_reply_clear(&b);
	harness_reply_clear(&c);
	close(p[0]);
	close(p[1]);
	harness_stop(&h);
}

static void
test_big_command_goes_out_in_pieces_and_the_fd_rides_with_its_own_command(void **state)
{
	/* 8 MiB does not fit in the socket buffer: the client must write it
	 * across several EV_WRITE rounds and still attach the next
	 * command's fd to that command's first byte. */
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	harness_run_until(&h, &h.ready, T);
	/* 8 MiB through two sanitizer-built processes on a loaded 2-core
	 * machine takes seconds: this test is about framing, not speed. */
	const int slow = 60000;
	size_t big = 8u << 20;
	char *pad = malloc(big + 1);
	memset(pad, 'p', big);
	pad[big] = '\0';
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct harness_reply a = { 0 }, b = { 0 };
	assert_int_equal(qmp_send(h.qmp, "device_add", json_pack("{s:s, s:s, s:s, s:s}", "driver", "e1000e",
	    "id", "big", "bus", "rp1", "romfile", pad), -1, slow, harness_reply_cb, &a), 0);
	free(pad);
	assert_int_equal(qmp_send(h.qmp, "getfd", json_pack("{s:s}", "fdname", "f"), p[1], slow, harness_reply_cb, &b), 0);
	harness_run_until(&h, &b.done, slow);
	assert_non_null(a.ret);
	assert_non_null(b.ret);
	json_t *rec = harness_record(&h);
	assert_int_equal(json_string_length(json_object_get(json_object_get(json_array_get(rec, 1), "arguments"), "romfile")), big);
	assert_false(json_is_true(json_object_get(json_array_get(rec, 1), "fd_received")));
	assert_true(json_is_true(json_object_get(json_array_get(rec, 2), "fd_received")));
	json_decref(rec);
	harness_reply_clear(&a);
	harness_reply_clear(&b);
	close(p[0]);
	close(p[1]);
	harness_stop(&h);
}

static void
test_bad_arguments_to_qmp_send_are_refused(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	struct harness_reply r = { 0 };
	assert_int_equal(qmp_send(h.qmp, "", NULL, -1, 0, harness_reply_cb, &r), -EINVAL);
	assert_int_equal(qmp_send(h.qmp, "device_add", json_array(), -1, 0, harness_reply_cb, &r), -EINVAL);
	assert_int_equal(qmp_send(h.qmp, "query-status", NULL, -1, -5, harness_reply_cb, &r), -EINVAL);
	assert_int_equal(qmp_send(h.qmp, "getfd", NULL, 9999, 0, harness_reply_cb, &r), -EBADF);
	assert_int_equal(r.done, 0);
	harness_run_until(&h, &h.ready, T);
	json_t *rec = harness_record(&h);
	assert_int_equal(json_array_size(rec), 1);
	json_decref(rec);
	harness_stop(&h);
}

/* ---- reentrancy ---- */

struct free_ctx {
	struct harness *h;
	int calls;
};

static void
free_in_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct free_ctx *c = arg;
	c->calls++;
	qmp_free(qmp);
	c->h->qmp = NULL;
}

static void
test_qmp_free_inside_a_reply_callback_fails_the_rest_once(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, false);
	harness_run_until(&h, &h.ready, T);
	struct free_ctx fc = { &h, 0 };
	struct harness_reply other = { 0 };
	assert_int_equal(qmp_send(h.qmp, "query-status", NULL, -1, T, free_in_reply, &fc), 0);
	assert_int_equal(qmp_send(h.qmp, "query-name", NULL, -1, T, harness_reply_cb, &other), 0);
	harness_run_until(&h, &fc.calls, T);
	assert_int_equal(other.done, 1);
	assert_string_equal(other.cls, QMP_ERR_DISCONNECTED);
	harness_run_for(&h, 50);
	assert_int_equal(fc.calls, 1);
	assert_int_equal(other.done, 1);
	assert_int_equal(h.closed, 0); /* the owner closed it: closed() is not called */
	harness_stop(&h);
}

static void
test_qmp_free_inside_a_timeout_callback_is_safe(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"commands\": [{\"command\": \"query-status\", \"hang\": true}]}", false);
	harness_run_until(&h, &h.ready, T);
	struct free_ctx fc = { &h, 0 };
	struct harness_reply other = { 0 };
	assert_int_equal(qmp_send(h.qmp, "query-status", NULL, -1, 100, free_in_reply, &fc), 0);
	assert_int_equal(qmp_send(h.qmp, "query-name", NULL, -1, 0, harness_reply_cb, &other), 0);
	harness_run_until(&h, &fc.calls, T);
	harness_run_for(&h, 50);
	assert_int_equal(fc.calls, 1);
	assert_int_equal(other.done, 1);
	assert_string_equal(other.cls, QMP_ERR_DISCONNECTED);
	harness_stop(&h);
}

static void
free_in_event(struct qmp *qmp, const char *name, const json_t *data, double ts, void *arg)
{
	struct free_ctx *c = arg;
	c->calls++;
	qmp_free(qmp);
	c->h->qmp = NULL;
}

static void
test_qmp_free_inside_an_event_callback_stops_delivery(void **state)
{
	struct harness h;
	/* Two events back to back in one write: the second must not be
	 * delivered to a freed client. */
	harness_start(&h, NULL, NULL,
	    "{\"commands\": [{\"command\": \"query-status\", \"before\": [{\"event\": \"A\"}, {\"event\": \"B\"}]}]}", false);
	harness_run_until(&h, &h.ready, T);
	struct free_ctx fc = { &h, 0 };
	qmp_subscribe(h.qmp, NULL, free_in_event, &fc);
	struct harness_reply r = { 0 };
	assert_int_equal(qmp_send(h.qmp, "query-status", NULL, -1, T, harness_reply_cb, &r), 0);
	harness_run_until(&h, &fc.calls, T);
	harness_run_for(&h, 100);
	assert_int_equal(fc.calls, 1);
	assert_int_equal(r.done, 1);
	assert_string_equal(r.cls, QMP_ERR_DISCONNECTED);
	harness_stop(&h);
}

static void
free_in_closed(struct qmp *qmp, const char *why, void *arg)
{
	struct free_ctx *c = arg;
	c->calls++;
	qmp_free(qmp);
	c->h->qmp = NULL;
}

static void
test_qmp_free_inside_closed_is_safe(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, NULL, true);
	struct free_ctx fc = { &h, 0 };
	const struct qmp_callbacks cbs = { .closed = free_in_closed };
	h.qmp = qmp_new(h.base, h.sock, &cbs, &fc);
	h.raw = false;
	struct harness_reply r = { 0 };
	assert_int_equal(qmp_send(h.qmp, "quit", NULL, -1, T, harness_reply_cb, &r), 0);
	harness_run_until(&h, &fc.calls, T);
	assert_int_equal(r.done, 1);
	assert_int_equal(fc.calls, 1);
	harness_reply_clear(&r);
	harness_stop(&h);
}

/* ---- synchronous helpers ---- */

static void
test_sync_helpers_wait_for_ready_and_replies(void **state)
{
	struct harness h;
	harness_start(&h, NULL, NULL, "{\"commands\": [{\"command\": \"query-name\", \"hang\": true}]}", false);
	struct verr err;
	assert_int_equal(qmp_wait_ready(h.qmp, T, &err), 0);
	json_t *ret = NULL;
	assert_int_equal(qmp_run_sync(h.qmp, "query-status", NULL, T, &ret, &err), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "prelaunch");
	json_decref(ret);
	assert_int_equal(qmp_run_sync(h.qmp, "device_del", json_pack("{s:s}", "id", "gone"), T, NULL, &err), -EIO);
	assert_non_null(strstr(err.msg, "Device 'gone' not found"));
	assert_int_equal(qmp_run_sync(h.qmp, "query-name", NULL, 100, NULL, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "query-name"));
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
		cmocka_unit_test(test_events_before_the_greeting_are_delivered),
		cmocka_unit_test(test_event_before_the_capabilities_reply_is_delivered),
		cmocka_unit_test(test_virtio_child_path_deleted_does_not_match_the_device),
		cmocka_unit_test(test_timeout_fails_the_command_and_its_late_reply_is_dropped),
		cmocka_unit_test(test_hanging_qemu_times_out_commands_without_closing),
		cmocka_unit_test(test_timeout_before_the_handshake_never_sends_the_command),
		cmocka_unit_test(test_garbage_bytes_close_with_a_protocol_error),
		cmocka_unit_test(test_reply_split_across_delayed_writes_is_assembled),
		cmocka_unit_test(test_multi_mib_reply_arrives_whole),
		cmocka_unit_test(test_line_over_64_mib_closes_the_connection),
		cmocka_unit_test(test_fake_closing_the_socket_is_a_disconnect),
		cmocka_unit_test(test_crash_before_the_greeting_fails_the_handshake),
		cmocka_unit_test(test_crash_some_time_after_the_greeting_is_a_disconnect),
		cmocka_unit_test(test_exit_after_a_command_has_the_given_status),
		cmocka_unit_test(test_error_without_id_is_reported_not_matched),
		cmocka_unit_test(test_reply_to_an_unknown_id_closes_the_connection),
		cmocka_unit_test(test_json_array_instead_of_object_closes_the_connection),
		cmocka_unit_test(test_refused_capabilities_close_the_connection),
		cmocka_unit_test(test_second_greeting_closes_the_connection),
		cmocka_unit_test(test_qmp_new_refuses_a_closed_descriptor),
		cmocka_unit_test(test_subscriber_added_in_a_callback_starts_with_the_next_event),
		cmocka_unit_test(test_canned_reply_overrides_the_default),
		cmocka_unit_test(test_event_scheduled_after_a_command),
		cmocka_unit_test(test_guest_that_ignores_powerdown_keeps_running),
		cmocka_unit_test(test_guest_that_ignores_unplug_never_deletes_until_reset),
		cmocka_unit_test(test_unplug_requested_while_paused_completes_after_cont),
		cmocka_unit_test(test_device_add_errors_match_qemu),
		cmocka_unit_test(test_getfd_passes_a_working_pipe_and_the_caller_keeps_its_copy),
		cmocka_unit_test(test_add_fd_passes_an_fd_into_an_fdset),
		cmocka_unit_test(test_getfd_without_an_fd_is_refused_like_qemu),
		cmocka_unit_test(test_fd_goes_only_with_its_own_command),
		cmocka_unit_test(test_big_command_goes_out_in_pieces_and_the_fd_rides_with_its_own_command),
		cmocka_unit_test(test_bad_arguments_to_qmp_send_are_refused),
		cmocka_unit_test(test_qmp_free_inside_a_reply_callback_fails_the_rest_once),
		cmocka_unit_test(test_qmp_free_inside_a_timeout_callback_is_safe),
		cmocka_unit_test(test_qmp_free_inside_an_event_callback_stops_delivery),
		cmocka_unit_test(test_qmp_free_inside_closed_is_safe),
		cmocka_unit_test(test_sync_helpers_wait_for_ready_and_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
