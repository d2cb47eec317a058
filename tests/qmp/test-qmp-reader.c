/* The QMP reader fed bytes directly: framing (splits, several messages per
 * read, CRLF, big messages), the line bound, invalid input, and routing of
 * messages by their keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qmp-priv.h"

static int
next(struct qmp_reader *r, json_t **msg, struct verr *err)
{
	verr_clear(err);
	return qmp_reader_next(r, msg, err);
}

static void
test_message_split_byte_by_byte_is_assembled(void **state)
{
	const char *m = "{\"return\": {\"status\": \"running\"}, \"id\": 1}\r\n";
	struct qmp_reader r;
	struct verr err;
	json_t *msg;
	qmp_reader_init(&r, 0);
	for (size_t i = 0; m[i + 1] != '\0'; i++) {
		qmp_reader_feed(&r, m + i, 1);
		assert_int_equal(next(&r, &msg, &err), 0);
	}
	qmp_reader_feed(&r, "\n", 1);
	assert_int_equal(next(&r, &msg, &err), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(msg, "return"), "status")), "running");
	json_decref(msg);
	assert_int_equal(next(&r, &msg, &err), 0);
	qmp_reader_free(&r);
}

static void
test_reader_without_bytes_asks_for_more(void **state)
{
	struct qmp_reader r;
	struct verr err;
	json_t *msg;
	qmp_reader_init(&r, 0);
	assert_int_equal(next(&r, &msg, &err), 0);
	qmp_reader_feed(&r, "", 0);
	assert_int_equal(next(&r, &msg, &err), 0);
	qmp_reader_free(&r);
}

static void
test_several_messages_in_one_read_come_out_in_order(void **state)
{
	const char *m = "{\"event\": \"STOP\"}\r\n{\"return\": {}, \"id\": 2}\n\r\n{\"event\": \"RESUME\"}\r\n{\"ev";
	struct qmp_reader r;
	struct verr err;
	json_t *msg;
	qmp_reader_init(&r, 0);
	qmp_reader_feed(&r, m, strlen(m));
	assert_int_equal(next(&r, &msg, &err), 1);
	assert_string_equal(json_string_value(json_object_get(msg, "event")), "STOP");
	json_decref(msg);
	assert_int_equal(next(&r, &msg, &err), 1);
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 2);
	json_decref(msg);
	/* The blank CRLF line between messages is skipped. */
	assert_int_equal(next(&r, &msg, &err), 1);
	assert_string_equal(json_string_value(json_object_get(msg, "event")), "RESUME");
	json_decref(msg);
	assert_int_equal(next(&r, &msg, &err), 0);
	assert_int_equal(qmp_reader_pending(&r), 4);
	qmp_reader_free(&r);
}

static void
test_multi_mib_message_is_parsed(void **state)
{
	size_t big = 8u << 20;
	char *s = malloc(big + 64);
	size_t n = (size_t)sprintf(s, "{\"return\": \"");
	memset(s + n, 'a', big);
	n += big;
	n += (size_t)sprintf(s + n, "\", \"id\": 3}\r\n");
	struct qmp_reader r;
	struct verr err;
	json_t *msg;
	qmp_reader_init(&r, 0);
	/* In 64 KiB reads, as the client receives it. */
	for (size_t off = 0; off < n; off += 65536) {
		size_t k = n - off < 65536 ? n - off : 65536;
		qmp_reader_feed(&r, s + off, k);
		int rc = next(&r, &msg, &err);
		assert_int_equal(rc, off + k == n ? 1 : 0);
	}
	assert_int_equal(json_string_length(json_object_get(msg, "return")), big);
	json_decref(msg);
	free(s);
	qmp_reader_free(&r);
}

static void
test_line_over_the_bound_is_a_protocol_error(void **state)
{
	struct qmp_reader r;
	struct verr err;
	json_t *msg;
	qmp_reader_init(&r, 1000);
	char junk[600];
	memset(junk, 'x', sizeof(junk));
	qmp_reader_feed(&r, junk, sizeof(junk));
	assert_int_equal(next(&r, &msg, &err), 0);
	qmp_reader_feed(&r, junk, sizeof(junk));
	assert_int_equal(next(&r, &msg, &err), -EPROTO);
	assert_null(msg);
	assert_non_null(strstr(err.msg, "longer than 1000 bytes"));
	qmp_reader_free(&r);
}

static void
test_complete_line_over_the_bound_is_a_protocol_error(void **state)
{
	struct qmp_reader r;
	struct verr err;
	json_t *msg;
	qmp_reader_init(&r, 10);
	qmp_reader_feed(&r, "{\"event\": \"STOP\"}\n", 18);
	assert_int_equal(next(&r, &msg, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "over the 10-byte limit"));
	qmp_reader_free(&r);
}

static void
test_invalid_json_is_a_protocol_error_naming_the_text(void **state)
{
	struct qmp_reader r;
	struct verr err;
	json_t *msg;
	qmp_reader_init(&r, 0);
	qmp_reader_feed(&r, "{\"return\": garbage}\n", 20);
	assert_int_equal(next(&r, &msg, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "not valid JSON"));
	assert_non_null(strstr(err.msg, "garbage"));
	qmp_reader_free(&r);
}

static void
test_json_that_is_not_an_object_is_a_protocol_error(void **state)
{
	static const char *const bad[] = { "[1, 2]\n", "42\n", "\"QMP\"\n", "null\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct qmp_reader r;
		struct verr err;
		json_t *msg;
		qmp_reader_init(&r, 0);
		qmp_reader_feed(&r, bad[i], strlen(bad[i]));
		assert_int_equal(next(&r, &msg, &err), -EPROTO);
		assert_non_null(strstr(err.msg, "not an object"));
		qmp_reader_free(&r);
	}
}

static void
test_embedded_nul_byte_is_a_protocol_error(void **state)
{
	struct qmp_reader r;
	struct verr err;
	json_t *msg;
	qmp_reader_init(&r, 0);
	qmp_reader_feed(&r, "{\"event\": \"ST\0P\"}\n", 18);
	assert_int_equal(next(&r, &msg, &err), -EPROTO);
	qmp_reader_free(&r);
}

static enum qmp_msg_kind
classify(const char *text)
{
	json_t *v = json_loads(text, 0, NULL);
	assert_non_null(v);
	struct verr err;
	enum qmp_msg_kind k = qmp_msg_classify(v, &err);
	json_decref(v);
	return k;
}

static void
test_messages_are_routed_by_keys_not_position(void **state)
{
	assert_int_equal(classify("{\"QMP\": {\"version\": {}, \"capabilities\": []}}"), QMP_MSG_GREETING);
	assert_int_equal(classify("{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESET\"}"),
	    QMP_MSG_EVENT);
	assert_int_equal(classify("{\"return\": {}, \"id\": 4}"), QMP_MSG_REPLY);
	assert_int_equal(classify("{\"id\": 4, \"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}}"),
	    QMP_MSG_REPLY);
	assert_int_equal(classify("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}"),
	    QMP_MSG_STRAY_ERROR);
	assert_int_equal(classify("{\"return\": {}}"), QMP_MSG_INVALID);
	assert_int_equal(classify("{\"foo\": 1}"), QMP_MSG_INVALID);
	assert_int_equal(classify("{\"event\": 5}"), QMP_MSG_INVALID);
	assert_int_equal(classify("{\"event\": \"X\", \"data\": [1]}"), QMP_MSG_INVALID);
	assert_int_equal(classify("{\"error\": \"oops\", \"id\": 1}"), QMP_MSG_INVALID);
}

static void
test_event_timestamp_is_seconds_with_microseconds(void **state)
{
	json_t *v = json_loads("{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 250000}, \"event\": \"STOP\"}",
	    0, NULL);
	assert_float_equal(qmp_msg_timestamp(v), 1700000000.25, 1e-6);
	json_decref(v);
}

static void
test_error_without_class_or_desc_is_still_reported(void **state)
{
	json_t *v = json_loads("{\"error\": {}, \"id\": 1}", 0, NULL);
	struct qmp_error e;
	qmp_msg_error(v, &e);
	assert_string_equal(e.class, "GenericError");
	assert_non_null(e.desc);
	json_decref(v);
}

static void
test_device_deleted_matches_exact_id_or_path_never_a_child(void **state)
{
	json_t *dev = json_loads("{\"device\": \"nic0\", \"path\": \"/machine/peripheral/nic0\"}", 0, NULL);
	json_t *child = json_loads("{\"path\": \"/machine/peripheral/nic0/virtio-backend\"}", 0, NULL);
	json_t *pathonly = json_loads("{\"path\": \"/machine/peripheral/nic0\"}", 0, NULL);
	json_t *other = json_loads("{\"device\": \"nic01\", \"path\": \"/machine/peripheral/nic01\"}", 0, NULL);
	assert_true(qmp_device_deleted_matches(dev, "nic0"));
	assert_true(qmp_device_deleted_matches(pathonly, "nic0"));
	assert_false(qmp_device_deleted_matches(child, "nic0"));
	assert_false(qmp_device_deleted_matches(other, "nic0"));
	assert_false(qmp_device_deleted_matches(dev, "nic"));
	assert_false(qmp_device_deleted_matches(NULL, "nic0"));
	json_decref(dev);
	json_decref(child);
	json_decref(pathonly);
	json_decref(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_split_byte_by_byte_is_assembled),
		cmocka_unit_test(test_reader_without_bytes_asks_for_more),
		cmocka_unit_test(test_several_messages_in_one_read_come_out_in_order),
		cmocka_unit_test(test_multi_mib_message_is_parsed),
		cmocka_unit_test(test_line_over_the_bound_is_a_protocol_error),
		cmocka_unit_test(test_complete_line_over_the_bound_is_a_protocol_error),
		cmocka_unit_test(test_invalid_json_is_a_protocol_error_naming_the_text),
		cmocka_unit_test(test_json_that_is_not_an_object_is_a_protocol_error),
		cmocka_unit_test(test_embedded_nul_byte_is_a_protocol_error),
		cmocka_unit_test(test_messages_are_routed_by_keys_not_position),
		cmocka_unit_test(test_event_timestamp_is_seconds_with_microseconds),
		cmocka_unit_test(test_error_without_class_or_desc_is_still_reported),
		cmocka_unit_test(test_device_deleted_matches_exact_id_or_path_never_a_child),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
