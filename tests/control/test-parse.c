/* The control FIFO's line parser: what a line means, and every line it
 * refuses, with the tag kept for the error reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "control.h"

static int
parse(const char *s, struct control_line *l, struct verr *err)
{
	memset(err, 0, sizeof(*err));
	return control_parse(s, strlen(s), l, err);
}

static void
words_split_at_blanks(void **state)
{
	struct control_line l;
	struct verr err;
	assert_int_equal(parse("  pci\tadd   0000:02:00.0 ", &l, &err), 0);
	assert_null(l.tag);
	assert_int_equal(l.words.n, 3);
	assert_string_equal(l.words.v[0], "pci");
	assert_string_equal(l.words.v[1], "add");
	assert_string_equal(l.words.v[2], "0000:02:00.0");
	control_line_free(&l);
}

static void
single_quotes_keep_spaces_and_backslashes(void **state)
{
	struct control_line l;
	struct verr err;
	assert_int_equal(parse("pci add 'Non-Volatile memory|SATA \\(AHCI\\)'", &l, &err), 0);
	assert_int_equal(l.words.n, 3);
	assert_string_equal(l.words.v[2], "Non-Volatile memory|SATA \\(AHCI\\)");
	control_line_free(&l);
}

static void
quoted_and_unquoted_pieces_join(void **state)
{
	struct control_line l;
	struct verr err;
	assert_int_equal(parse("usb add Log'itech U'nifying ''", &l, &err), 0);
	assert_int_equal(l.words.n, 4);
	assert_string_equal(l.words.v[2], "Logitech Unifying");
	assert_string_equal(l.words.v[3], "");
	control_line_free(&l);
}

static void
tag_is_read_first(void **state)
{
	struct control_line l;
	struct verr err;
	assert_int_equal(parse("@req-1.a:b_c status", &l, &err), 0);
	assert_string_equal(l.tag, "req-1.a:b_c");
	assert_int_equal(l.words.n, 1);
	control_line_free(&l);
}

static void
tag_kept_when_the_rest_is_bad(void **state)
{
	struct control_line l;
	struct verr err;
	assert_int_equal(parse("@t1 pci add 'open", &l, &err), -EINVAL);
	assert_string_equal(l.tag, "t1");
	assert_non_null(strstr(err.msg, "never closed"));
	control_line_free(&l);
}

static void
bad_tags_refused(void **state)
{
	struct control_line l;
	struct verr err;
	const char *bad[] = { "@ status", "@a/b status", "@x'y' status",
	    "@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa status" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &l, &err), -EINVAL);
		assert_null(l.tag);
		assert_non_null(strstr(err.msg, "request tag"));
		control_line_free(&l);
	}
}

static void
tag_alone_is_an_error(void **state)
{
	struct control_line l;
	struct verr err;
	assert_int_equal(parse("@t2   ", &l, &err), -EINVAL);
	assert_string_equal(l.tag, "t2");
	assert_non_null(strstr(err.msg, "carries no command"));
	control_line_free(&l);
}

static void
blank_line_is_nothing(void **state)
{
	struct control_line l;
	struct verr err;
	assert_int_equal(parse(" \t ", &l, &err), 1);
	assert_int_equal(parse("", &l, &err), 1);
	control_line_free(&l);
}

static void
nul_byte_refused(void **state)
{
	struct control_line l;
	struct verr err = { 0 };
	assert_int_equal(control_parse("@n sta\0tus", 10, &l, &err), -EINVAL);
	assert_string_equal(l.tag, "n");
	assert_non_null(strstr(err.msg, "NUL byte (at byte 7)"));
	control_line_free(&l);
}

static void
binary_garbage_refused(void **state)
{
	struct control_line l;
	struct verr err;
	assert_int_equal(parse("status \xff\xfe", &l, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not UTF-8"));
	control_line_free(&l);
	assert_int_equal(parse("status \xc0\xaf", &l, &err), -EINVAL);   /* overlong '/' */
	control_line_free(&l);
	assert_int_equal(parse("status \xed\xa0\x80", &l, &err), -EINVAL);   /* a surrogate */
	control_line_free(&l);
	assert_int_equal(parse("status \x07", &l, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "control character 0x07"));
	control_line_free(&l);
}

static void
utf8_text_accepted(void **state)
{
	struct control_line l;
	struct verr err;
	assert_int_equal(parse("usb add 'Gerät ✓ \xf0\x9f\x98\x80'", &l, &err), 0);
	assert_string_equal(l.words.v[2], "Gerät ✓ \xf0\x9f\x98\x80");
	control_line_free(&l);
}

static void
line_over_the_limit_refused(void **state)
{
	char buf[CONTROL_LINE_MAX + 20];
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "@big pci add ", 13);
	struct control_line l;
	struct verr err = { 0 };
	assert_int_equal(control_parse(buf, CONTROL_LINE_MAX + 1, &l, &err), -EINVAL);
	assert_string_equal(l.tag, "big");
	assert_non_null(strstr(err.msg, "more than the 4096 allowed"));
	control_line_free(&l);
	assert_int_equal(control_parse(buf, CONTROL_LINE_MAX, &l, &err), 0);
	control_line_free(&l);
}

static void
carriage_return_ends_the_line(void **state)
{
	struct control_line l;
	struct verr err;
	assert_int_equal(parse("status\r", &l, &err), 0);
	assert_int_equal(l.words.n, 1);
	assert_string_equal(l.words.v[0], "status");
	control_line_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(words_split_at_blanks),
		cmocka_unit_test(single_quotes_keep_spaces_and_backslashes),
		cmocka_unit_test(quoted_and_unquoted_pieces_join),
		cmocka_unit_test(tag_is_read_first),
		cmocka_unit_test(tag_kept_when_the_rest_is_bad),
		cmocka_unit_test(bad_tags_refused),
		cmocka_unit_test(tag_alone_is_an_error),
		cmocka_unit_test(blank_line_is_nothing),
		cmocka_unit_test(nul_byte_refused),
		cmocka_unit_test(binary_garbage_refused),
		cmocka_unit_test(utf8_text_accepted),
		cmocka_unit_test(line_over_the_limit_refused),
		cmocka_unit_test(carriage_return_ends_the_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
